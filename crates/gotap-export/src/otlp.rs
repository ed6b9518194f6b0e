//! Span → OTLP protobuf (the one conversion every OTLP exporter uses), and OTLP/JSON as the
//! collector's `file` exporter writes it.
use gotap_spans::sink::{SpanSink, StatusRef, ValueRef};
use gotap_spans::SpanFrame;
use gotap_spans::{Resource, Span, SpanKind, Status, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1::{
    status::StatusCode, ResourceSpans, ScopeSpans, Span as PbSpan, Status as PbStatus,
};
use std::sync::Arc;

/// Items of one resource, by instrumentation scope.
type Groups<'a, T> = Vec<(&'a Arc<Resource>, Vec<(&'static str, Vec<&'a T>)>)>;

/// What groups an item in a request: its resource and instrumentation scope.
trait Grouped {
    fn resource(&self) -> &Arc<Resource>;
    fn scope(&self) -> &'static str;
}

impl Grouped for Span {
    fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }
    fn scope(&self) -> &'static str {
        self.scope
    }
}

impl Grouped for EncodedSpan {
    fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }
    fn scope(&self) -> &'static str {
        self.scope
    }
}

/// Groups items by resource, then by instrumentation scope, keeping first-seen order. The agent
/// shares one resource `Arc` between all its spans, so the pointer check almost always decides.
fn group<T: Grouped>(items: &[T]) -> Groups<'_, T> {
    let mut groups: Groups<'_, T> = Vec::new();
    for s in items {
        let gi = match groups
            .iter()
            .position(|(r, _)| Arc::ptr_eq(r, s.resource()) || ***r == **s.resource())
        {
            Some(i) => i,
            None => {
                groups.push((s.resource(), Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[gi].1;
        let si = match scopes.iter().position(|(n, _)| *n == s.scope()) {
            Some(i) => i,
            None => {
                scopes.push((s.scope(), Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[si].1.push(s);
    }
    groups
}

/// One span already encoded as the body of an OTLP `Span` message, with what groups it in a
/// request. Encoding where the span was built (its strings still in that thread's cache, and
/// freed by the thread that allocated them) costs less than on the export thread.
#[derive(Debug, Clone)]
pub struct EncodedSpan {
    pub resource: Arc<Resource>,
    pub scope: &'static str,
    pub bytes: Vec<u8>,
}

impl EncodedSpan {
    pub fn new(s: Span) -> EncodedSpan {
        let mut bytes = Vec::with_capacity(pb::span_len(&s));
        pb::write_span(&s, &mut bytes);
        EncodedSpan {
            resource: s.resource,
            scope: s.scope,
            bytes,
        }
    }
}

/// Something [`encode_items`] can write as a span: its encoded length and bytes.
trait SpanMessage: Grouped {
    fn len(&self) -> usize;
    fn write(&self, out: &mut Vec<u8>);
}

impl SpanMessage for Span {
    fn len(&self) -> usize {
        pb::span_len(self)
    }
    fn write(&self, out: &mut Vec<u8>) {
        pb::write_span(self, out)
    }
}

impl SpanMessage for EncodedSpan {
    fn len(&self) -> usize {
        self.bytes.len()
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes)
    }
}

const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Groups spans by resource, then by instrumentation scope, keeping first-seen order.
pub fn to_request(spans: &[Span]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group(spans)
            .into_iter()
            .map(|(r, scopes)| ResourceSpans {
                resource: Some(PbResource {
                    attributes: r.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
                    ..Default::default()
                }),
                scope_spans: scopes
                    .into_iter()
                    .map(|(name, spans)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: name.to_owned(),
                            version: SCOPE_VERSION.to_owned(),
                            ..Default::default()
                        }),
                        spans: spans.into_iter().map(span).collect(),
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

/// `to_request(spans).encode_to_vec()` without building the request: the export thread's hot
/// path. Written field by field with prost's wire primitives, in prost's order (by tag) and with
/// its proto3 rule (fields at their default value are left out), so the bytes are identical.
pub fn encode_request(spans: &[Span]) -> Vec<u8> {
    encode_items(spans)
}

/// [`encode_request`] of the spans these were encoded from (the same bytes).
pub fn encode_request_encoded(spans: &[EncodedSpan]) -> Vec<u8> {
    encode_items(spans)
}

fn encode_items<T: SpanMessage>(spans: &[T]) -> Vec<u8> {
    use pb::*;
    let groups = group(spans);
    // Lengths first (each nested message is length-prefixed), then one pass of writes.
    let span_lens: Vec<Vec<usize>> = groups
        .iter()
        .flat_map(|(_, scopes)| {
            scopes
                .iter()
                .map(|(_, ss)| ss.iter().map(|s| s.len()).collect())
        })
        .collect();
    let mut scope_lens = Vec::with_capacity(span_lens.len());
    let mut resource_lens = Vec::with_capacity(groups.len());
    let mut total = 0;
    let mut lens = span_lens.iter();
    for (r, scopes) in &groups {
        let mut rs_len = field_len(
            1,
            attrs_len(r.attributes.iter().map(|(k, v)| (k.as_str(), v))),
        );
        for (name, _) in scopes {
            let spans: usize = lens
                .next()
                .expect("one entry per scope")
                .iter()
                .map(|l| field_len(2, *l))
                .sum();
            let ss_len = field_len(1, scope_len(name)) + spans;
            scope_lens.push(ss_len);
            rs_len += field_len(2, ss_len);
        }
        resource_lens.push(rs_len);
        total += field_len(1, rs_len);
    }
    let mut out = Vec::with_capacity(total);
    let (mut scope_lens, mut span_lens) = (scope_lens.into_iter(), span_lens.iter());
    for ((r, scopes), rs_len) in groups.iter().zip(resource_lens) {
        message_key(1, rs_len, &mut out);
        message_key(
            1,
            attrs_len(r.attributes.iter().map(|(k, v)| (k.as_str(), v))),
            &mut out,
        );
        for (k, v) in &r.attributes {
            write_kv(1, k, v.as_value_ref(), &mut out);
        }
        for (name, spans) in scopes {
            message_key(
                2,
                scope_lens.next().expect("one length per scope"),
                &mut out,
            );
            message_key(1, scope_len(name), &mut out);
            write_str(1, name, &mut out);
            write_str(2, SCOPE_VERSION, &mut out);
            for (s, len) in spans
                .iter()
                .zip(span_lens.next().expect("one entry per scope"))
            {
                message_key(2, *len, &mut out);
                s.write(&mut out);
            }
        }
    }
    debug_assert_eq!(out.len(), total);
    out
}

/// Spans of one (resource, instrumentation scope), each already written as a `ScopeSpans.spans`
/// field (key, length, `Span` message), back to back.
#[derive(Debug)]
struct SpanRun {
    resource: Arc<Resource>,
    scope: &'static str,
    bytes: Vec<u8>,
}

/// A batch encoded span by span as it was produced ([`BatchWriter`]): the request's span
/// messages, grouped, waiting only for the resource and scope headers
/// ([`encode_request_batch`]).
#[derive(Debug, Default)]
pub struct EncodedBatch {
    runs: Vec<SpanRun>,
    spans: usize,
}

impl EncodedBatch {
    pub fn len(&self) -> usize {
        self.spans
    }
    pub fn is_empty(&self) -> bool {
        self.spans == 0
    }
    /// Encoded size of the spans.
    pub fn bytes(&self) -> usize {
        self.runs.iter().map(|r| r.bytes.len()).sum()
    }
}

/// A [`SpanSink`] that writes each span's protobuf straight into its batch: no [`Span`], no
/// per-span buffer, the strings copied once from where the strategy read them. The span's length
/// prefix is reserved as two bytes (spans of 128 bytes to 16 KiB, nearly all) and fixed up at
/// `end`.
#[derive(Debug, Default)]
pub struct BatchWriter {
    batch: EncodedBatch,
    /// Run of the span being streamed, and where its body starts.
    cur: Option<(usize, usize)>,
    /// Size of the largest run of the batches taken so far: new runs reserve a quarter more, so
    /// that a run grows without being moved.
    hint: usize,
}

const LEN_GAP: usize = 2;

impl BatchWriter {
    pub fn new() -> BatchWriter {
        BatchWriter::default()
    }
    /// Spans written since the last [`BatchWriter::take`].
    pub fn len(&self) -> usize {
        self.batch.spans
    }
    pub fn is_empty(&self) -> bool {
        self.batch.spans == 0
    }
    pub fn bytes(&self) -> usize {
        self.batch.bytes()
    }
    /// The spans written so far; a span begun and not ended is discarded.
    pub fn take(&mut self) -> EncodedBatch {
        self.abandon();
        // The largest run seen so far: a small batch (taken on a timer) must not shrink the
        // buffers of the full ones that follow.
        let largest = self.batch.runs.iter().map(|r| r.bytes.len()).max();
        self.hint = self.hint.max(largest.unwrap_or(0));
        std::mem::take(&mut self.batch)
    }
    /// Drops the span being streamed (begun, not ended): it is not in the batch.
    pub fn discard(&mut self) {
        self.abandon();
    }
    /// Removes the bytes of a span begun and not ended, which would otherwise corrupt the run.
    fn abandon(&mut self) {
        if let Some((i, body)) = self.cur.take() {
            self.batch.runs[i].bytes.truncate(body - 1 - LEN_GAP);
        }
    }
    fn run(&mut self, resource: &Arc<Resource>, scope: &'static str) -> usize {
        // Few runs per batch (one per scope of each traced process): a scan beats a map.
        if let Some(i) = self
            .batch
            .runs
            .iter()
            .position(|r| r.scope == scope && Arc::ptr_eq(&r.resource, resource))
        {
            return i;
        }
        self.batch.runs.push(SpanRun {
            resource: resource.clone(),
            scope,
            // A quarter more than the last batch's largest run: a run that outgrows its buffer
            // is copied whole (glibc serves these sizes from the heap, not with mremap).
            bytes: Vec::with_capacity((self.hint + self.hint / 4).min(4 << 20)),
        });
        self.batch.runs.len() - 1
    }
}

impl SpanSink for BatchWriter {
    fn begin(&mut self, frame: &SpanFrame, scope: &'static str) {
        self.abandon();
        let i = self.run(&frame.resource, scope);
        let out = &mut self.batch.runs[i].bytes;
        out.reserve(512);
        out.push(2 << 3 | 2); // ScopeSpans.spans, length-delimited
        out.extend_from_slice(&[0; LEN_GAP]);
        let body = out.len();
        pb::write_span_head(frame, out);
        self.cur = Some((i, body));
    }
    fn attr(&mut self, key: &'static str, value: ValueRef<'_>) {
        if let Some((i, _)) = self.cur {
            pb::write_kv(9, key, value, &mut self.batch.runs[i].bytes);
        }
    }
    fn end(&mut self, name: &[&str], kind: SpanKind, status: StatusRef<'_>) {
        let Some((i, body)) = self.cur.take() else {
            return;
        };
        let out = &mut self.batch.runs[i].bytes;
        pb::write_span_tail_parts(name, kind, status, out);
        let (len, n) = pb::varint_bytes((out.len() - body) as u64);
        if n == LEN_GAP {
            out[body - LEN_GAP..body].copy_from_slice(&len[..n]);
        } else {
            out.splice(body - LEN_GAP..body, len[..n].iter().copied());
        }
        self.batch.spans += 1;
    }
    fn span(&mut self, span: Span) {
        self.abandon();
        let i = self.run(&span.resource, span.scope);
        let out = &mut self.batch.runs[i].bytes;
        pb::message_key(2, pb::span_len(&span), out);
        pb::write_span(&span, out);
        self.batch.spans += 1;
    }
}

/// The request of an [`EncodedBatch`]: the bytes [`encode_request`] makes of the same spans, up
/// to the order of fields inside each span.
pub fn encode_request_batch(b: &EncodedBatch) -> Vec<u8> {
    use pb::*;
    // Runs by resource, then scope, in first-seen order: runs of equal resources in distinct
    // `Arc`s, or of one scope, are merged (their spans stay in run order).
    type Scopes<'a> = Vec<(&'static str, Vec<&'a SpanRun>)>;
    let mut resources: Vec<(&Arc<Resource>, Scopes<'_>)> = Vec::new();
    // A run can be empty only when its one span was discarded unfinished.
    for r in b.runs.iter().filter(|r| !r.bytes.is_empty()) {
        let scopes = match resources
            .iter_mut()
            .position(|(res, _)| Arc::ptr_eq(res, &r.resource) || ***res == *r.resource)
        {
            Some(i) => &mut resources[i].1,
            None => {
                resources.push((&r.resource, Vec::new()));
                &mut resources.last_mut().expect("just pushed").1
            }
        };
        match scopes.iter_mut().find(|(name, _)| *name == r.scope) {
            Some((_, runs)) => runs.push(r),
            None => scopes.push((r.scope, vec![r])),
        }
    }
    let scope_spans_len = |name: &str, runs: &[&SpanRun]| {
        field_len(1, scope_len(name)) + runs.iter().map(|r| r.bytes.len()).sum::<usize>()
    };
    let attrs = |res: &Resource| attrs_len(res.attributes.iter().map(|(k, v)| (k.as_str(), v)));
    let rs_len = |res: &Resource, scopes: &Scopes<'_>| {
        field_len(1, attrs(res))
            + scopes
                .iter()
                .map(|(name, runs)| field_len(2, scope_spans_len(name, runs)))
                .sum::<usize>()
    };
    let total: usize = resources
        .iter()
        .map(|(res, scopes)| field_len(1, rs_len(res, scopes)))
        .sum();
    let mut out = Vec::with_capacity(total);
    for (res, scopes) in &resources {
        message_key(1, rs_len(res, scopes), &mut out);
        message_key(1, attrs(res), &mut out);
        for (k, v) in &res.attributes {
            write_kv(1, k, v.as_value_ref(), &mut out);
        }
        for (name, runs) in scopes {
            message_key(2, scope_spans_len(name, runs), &mut out);
            message_key(1, scope_len(name), &mut out);
            write_str(1, name, &mut out);
            write_str(2, SCOPE_VERSION, &mut out);
            for r in runs {
                out.extend_from_slice(&r.bytes);
            }
        }
    }
    debug_assert_eq!(out.len(), total);
    out
}

/// Protobuf wire helpers for [`encode_request`].
pub(crate) mod pb {
    use super::{kind_number, status_ref_parts};
    use gotap_spans::sink::{StatusRef, ValueRef};
    use gotap_spans::SpanFrame;
    use gotap_spans::{Span, SpanKind, Value};
    use prost::encoding::{encoded_len_varint, key_len, WireType};

    /// prost's `encode_varint`, for a `Vec` (its generic `BufMut` version was not inlined and
    /// checked the capacity per byte: a tenth of the export thread). `out` is sized up front.
    #[inline(always)]
    fn encode_varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    #[inline(always)]
    fn encode_key(tag: u32, wire: WireType, out: &mut Vec<u8>) {
        encode_varint(u64::from(tag << 3 | wire as u32), out);
    }

    /// Key + length + body of a length-delimited field.
    pub fn field_len(tag: u32, len: usize) -> usize {
        key_len(tag) + encoded_len_varint(len as u64) + len
    }
    fn str_len(tag: u32, s: &str) -> usize {
        if s.is_empty() {
            0
        } else {
            field_len(tag, s.len())
        }
    }
    pub fn message_key(tag: u32, len: usize, out: &mut Vec<u8>) {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(len as u64, out);
    }
    pub fn write_str(tag: u32, s: &str, out: &mut Vec<u8>) {
        if !s.is_empty() {
            message_key(tag, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
    }
    pub fn scope_len(name: &str) -> usize {
        str_len(1, name) + str_len(2, super::SCOPE_VERSION)
    }

    /// AnyValue: a oneof, written even at its default value.
    fn any_len(v: ValueRef<'_>) -> usize {
        match v {
            ValueRef::Str(s) | ValueRef::Static(s) => field_len(1, s.len()),
            ValueRef::Bool(_) => key_len(2) + 1,
            ValueRef::Int(i) => key_len(3) + encoded_len_varint(i as u64),
            ValueRef::Double(_) => key_len(4) + 8,
        }
    }
    fn kv_len(k: &str, v: ValueRef<'_>) -> usize {
        str_len(1, k) + field_len(2, any_len(v))
    }
    pub fn attrs_len<'a>(attrs: impl Iterator<Item = (&'a str, &'a Value)>) -> usize {
        attrs
            .map(|(k, v)| field_len(1, kv_len(k, v.as_value_ref())))
            .sum()
    }
    pub fn write_kv(tag: u32, k: &str, v: ValueRef<'_>, out: &mut Vec<u8>) {
        // Nearly every attribute has a key and a string or integer value short enough for
        // one-byte lengths: its framing is then a few fixed bytes, written without computing
        // each nested length (this function was a sixth of the eBPF reader's time per span).
        if !k.is_empty() && k.len() < 100 && tag < 16 {
            match v {
                ValueRef::Str(s) | ValueRef::Static(s) if s.len() < 100 => {
                    let any = 2 + s.len();
                    let kv = 2 + k.len() + 2 + any;
                    if kv < 128 {
                        out.reserve(2 + kv);
                        out.extend_from_slice(&[
                            (tag << 3 | 2) as u8,
                            kv as u8,
                            0x0a,
                            k.len() as u8,
                        ]);
                        out.extend_from_slice(k.as_bytes());
                        out.extend_from_slice(&[0x12, any as u8, 0x0a, s.len() as u8]);
                        out.extend_from_slice(s.as_bytes());
                        return;
                    }
                }
                ValueRef::Int(i) => {
                    let any = 1 + encoded_len_varint(i as u64);
                    let kv = 2 + k.len() + 2 + any;
                    if kv < 128 {
                        out.reserve(2 + kv);
                        out.extend_from_slice(&[
                            (tag << 3 | 2) as u8,
                            kv as u8,
                            0x0a,
                            k.len() as u8,
                        ]);
                        out.extend_from_slice(k.as_bytes());
                        out.extend_from_slice(&[0x12, any as u8, 3 << 3]);
                        encode_varint(i as u64, out);
                        return;
                    }
                }
                _ => {}
            }
        }
        message_key(tag, kv_len(k, v), out);
        write_str(1, k, out);
        message_key(2, any_len(v), out);
        match v {
            ValueRef::Str(s) | ValueRef::Static(s) => {
                message_key(1, s.len(), out);
                out.extend_from_slice(s.as_bytes());
            }
            ValueRef::Bool(b) => {
                encode_key(2, WireType::Varint, out);
                encode_varint(b as u64, out);
            }
            ValueRef::Int(i) => {
                encode_key(3, WireType::Varint, out);
                encode_varint(i as u64, out);
            }
            ValueRef::Double(d) => {
                encode_key(4, WireType::SixtyFourBit, out);
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
    }

    fn status_len(s: &Span) -> usize {
        status_ref_len(s.status.as_status_ref())
    }
    fn status_ref_len(s: StatusRef<'_>) -> usize {
        let (code, msg) = status_ref_parts(s);
        str_len(2, msg)
            + if code != 0 {
                key_len(3) + encoded_len_varint(code as u64)
            } else {
                0
            }
    }
    fn fixed64_len(tag: u32, v: u64) -> usize {
        if v != 0 {
            key_len(tag) + 8
        } else {
            0
        }
    }
    pub fn span_len(s: &Span) -> usize {
        field_len(1, s.trace_id.len())
            + field_len(2, s.span_id.len())
            + s.parent_span_id.map_or(0, |p| field_len(4, p.len()))
            + str_len(5, &s.name)
            + key_len(6)
            + encoded_len_varint(kind_number(s.kind) as u64)
            + fixed64_len(7, s.start_unix_nano)
            + fixed64_len(8, s.end_unix_nano)
            + attrs_len(s.attributes.iter().map(|(k, v)| (*k, v)))
            + field_len(15, status_len(s))
    }
    fn write_bytes(tag: u32, b: &[u8], out: &mut Vec<u8>) {
        message_key(tag, b.len(), out);
        out.extend_from_slice(b);
    }
    fn write_fixed64(tag: u32, v: u64, out: &mut Vec<u8>) {
        if v != 0 {
            encode_key(tag, WireType::SixtyFourBit, out);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    pub fn write_span(s: &Span, out: &mut Vec<u8>) {
        write_bytes(1, &s.trace_id, out);
        write_bytes(2, &s.span_id, out);
        if let Some(p) = &s.parent_span_id {
            write_bytes(4, p, out);
        }
        write_str(5, &s.name, out);
        encode_key(6, WireType::Varint, out);
        encode_varint(kind_number(s.kind) as u64, out);
        write_fixed64(7, s.start_unix_nano, out);
        write_fixed64(8, s.end_unix_nano, out);
        for (k, v) in &s.attributes {
            write_kv(9, k, v.as_value_ref(), out);
        }
        write_status(s.status.as_status_ref(), out);
    }
    fn write_status(s: StatusRef<'_>, out: &mut Vec<u8>) {
        message_key(15, status_ref_len(s), out);
        let (code, msg) = status_ref_parts(s);
        write_str(2, msg, out);
        if code != 0 {
            encode_key(3, WireType::Varint, out);
            encode_varint(code as u64, out);
        }
    }

    /// The fields of a span streamed into a [`super::BatchWriter`]: what the frame says first
    /// (ids, times), then its attributes as they come, then what the builder knows last (name,
    /// kind, status). Protobuf fields may come in any order; decoders see the same message.
    pub fn write_span_head(f: &SpanFrame, out: &mut Vec<u8>) {
        write_bytes(1, &f.trace_id, out);
        write_bytes(2, &f.span_id, out);
        if let Some(p) = &f.parent_span_id {
            write_bytes(4, p, out);
        }
        write_fixed64(7, f.start_unix_nano, out);
        write_fixed64(8, f.end_unix_nano, out);
    }
    pub fn write_span_tail_parts(
        name: &[&str],
        kind: SpanKind,
        status: StatusRef<'_>,
        out: &mut Vec<u8>,
    ) {
        let len: usize = name.iter().map(|p| p.len()).sum();
        if len > 0 {
            message_key(5, len, out);
            for p in name {
                out.extend_from_slice(p.as_bytes());
            }
        }
        encode_key(6, WireType::Varint, out);
        encode_varint(kind_number(kind) as u64, out);
        write_status(status, out);
    }
    /// A varint in exactly `n` bytes when it fits (a length written into a reserved gap).
    pub fn varint_bytes(v: u64) -> ([u8; 10], usize) {
        let mut b = [0u8; 10];
        let mut n = 0;
        let mut v = v;
        while v >= 0x80 {
            b[n] = v as u8 | 0x80;
            v >>= 7;
            n += 1;
        }
        b[n] = v as u8;
        (b, n + 1)
    }
}

/// OTLP status code and message.
fn status_ref_parts(s: StatusRef<'_>) -> (i32, &str) {
    match s {
        StatusRef::Unset => (StatusCode::Unset as i32, ""),
        StatusRef::Ok => (StatusCode::Ok as i32, ""),
        StatusRef::Error(m) => (StatusCode::Error as i32, m),
    }
}

fn span(s: &Span) -> PbSpan {
    let (code, message) = match &s.status {
        Status::Unset => (StatusCode::Unset, String::new()),
        Status::Ok => (StatusCode::Ok, String::new()),
        Status::Error(m) => (StatusCode::Error, m.clone()),
    };
    PbSpan {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        name: s.name.clone(),
        kind: kind_number(s.kind),
        start_time_unix_nano: s.start_unix_nano,
        end_time_unix_nano: s.end_unix_nano,
        attributes: s.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
        status: Some(PbStatus {
            code: code as i32,
            message,
        }),
        ..Default::default()
    }
}

/// OTLP's numeric span kind.
pub fn kind_number(k: SpanKind) -> i32 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn kv(k: &str, v: &Value) -> KeyValue {
    let value = match v {
        Value::Str(s) => any_value::Value::StringValue(s.to_string()),
        Value::Int(i) => any_value::Value::IntValue(*i),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Double(d) => any_value::Value::DoubleValue(*d),
    };
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// One line of OTLP/JSON, shaped like the collector `file` exporter's output: camelCase keys, hex
/// ids, 64-bit integers as strings, enums as numbers, and fields at their default value left out
/// (protobuf JSON's rule), except inside attribute values and the `resource`/`scope`/`status`
/// objects the collector always writes.
pub fn to_json_line(req: &ExportTraceServiceRequest) -> String {
    let mut v = serde_json::to_value(req).expect("OTLP request serializes");
    prune_defaults(&mut v);
    v.to_string()
}

/// [`to_json_line`] of `to_request(spans)`, written straight from the spans into `out` (no
/// request, no `serde_json::Value` tree: the file exporter's hot path). serde_json has no
/// `preserve_order` here, so `to_json_line` sorts every object's keys; this writes them in that
/// order, and leaves out what it prunes.
pub fn write_json_line(spans: &[Span], out: &mut Vec<u8>) {
    if spans.is_empty() {
        // An empty list is pruned.
        out.extend_from_slice(b"{}");
        return;
    }
    out.extend_from_slice(b"{\"resourceSpans\":[");
    for (gi, (r, scopes)) in group(spans).iter().enumerate() {
        sep(gi, out);
        out.extend_from_slice(b"{\"resource\":{");
        if !r.attributes.is_empty() {
            json_attrs(r.attributes.iter().map(|(k, v)| (k.as_str(), v)), out);
        }
        out.extend_from_slice(b"},\"scopeSpans\":[");
        for (si, (name, spans)) in scopes.iter().enumerate() {
            sep(si, out);
            out.extend_from_slice(b"{\"scope\":{");
            let mut first = true;
            for (key, val) in [("name", *name), ("version", SCOPE_VERSION)] {
                if !val.is_empty() {
                    json_key(&mut first, key, out);
                    json_str(val, out);
                }
            }
            out.extend_from_slice(b"},\"spans\":[");
            for (i, s) in spans.iter().enumerate() {
                sep(i, out);
                json_span(s, out);
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
}

fn sep(i: usize, out: &mut Vec<u8>) {
    if i > 0 {
        out.push(b',');
    }
}

fn json_key(first: &mut bool, key: &str, out: &mut Vec<u8>) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn json_str(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Lower-case hex in quotes, as the OTLP/JSON ids.
fn json_hex(b: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for x in b {
        out.push(DIGITS[(x >> 4) as usize]);
        out.push(DIGITS[(x & 15) as usize]);
    }
    out.push(b'"');
}

/// A 64-bit integer: a string in OTLP/JSON.
fn json_u64_str(v: impl std::fmt::Display, out: &mut Vec<u8>) {
    use std::io::Write;
    write!(out, "\"{v}\"").expect("writing to a Vec cannot fail");
}

/// `"attributes":[…]` (the caller skips an empty list, which is pruned).
fn json_attrs<'a>(attrs: impl Iterator<Item = (&'a str, &'a Value)>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"attributes\":[");
    for (i, (k, v)) in attrs.enumerate() {
        sep(i, out);
        out.push(b'{');
        if !k.is_empty() {
            out.extend_from_slice(b"\"key\":");
            json_str(k, out);
            out.push(b',');
        }
        out.extend_from_slice(b"\"value\":{");
        match v {
            Value::Str(s) => {
                out.extend_from_slice(b"\"stringValue\":");
                json_str(s, out);
            }
            Value::Bool(b) => out.extend_from_slice(if *b {
                b"\"boolValue\":true"
            } else {
                b"\"boolValue\":false"
            }),
            Value::Int(n) => {
                out.extend_from_slice(b"\"intValue\":");
                json_u64_str(n, out);
            }
            Value::Double(d) => {
                out.extend_from_slice(b"\"doubleValue\":");
                serde_json::to_writer(&mut *out, d).expect("writing to a Vec cannot fail");
            }
        }
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
}

fn json_span(s: &Span, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    if !s.attributes.is_empty() {
        first = false;
        json_attrs(s.attributes.iter().map(|(k, v)| (*k, v)), out);
    }
    if s.end_unix_nano != 0 {
        json_key(&mut first, "endTimeUnixNano", out);
        json_u64_str(s.end_unix_nano, out);
    }
    json_key(&mut first, "kind", out);
    serde_json::to_writer(&mut *out, &kind_number(s.kind)).expect("writing to a Vec cannot fail");
    if !s.name.is_empty() {
        json_key(&mut first, "name", out);
        json_str(&s.name, out);
    }
    if let Some(p) = &s.parent_span_id {
        json_key(&mut first, "parentSpanId", out);
        json_hex(p, out);
    }
    json_key(&mut first, "spanId", out);
    json_hex(&s.span_id, out);
    if s.start_unix_nano != 0 {
        json_key(&mut first, "startTimeUnixNano", out);
        json_u64_str(s.start_unix_nano, out);
    }
    json_key(&mut first, "status", out);
    out.push(b'{');
    let (code, msg) = status_ref_parts(s.status.as_status_ref());
    let mut sfirst = true;
    if code != 0 {
        json_key(&mut sfirst, "code", out);
        serde_json::to_writer(&mut *out, &code).expect("writing to a Vec cannot fail");
    }
    if !msg.is_empty() {
        json_key(&mut sfirst, "message", out);
        json_str(msg, out);
    }
    out.push(b'}');
    json_key(&mut first, "traceId", out);
    json_hex(&s.trace_id, out);
    out.push(b'}');
}

fn prune_defaults(v: &mut serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Object(map) => {
            map.retain(|k, child| {
                // An attribute value is a oneof: "" or 0 there is the value itself.
                if k == "value" || k == "values" {
                    prune_inside_any_value(child);
                    return true;
                }
                prune_defaults(child);
                !is_default(child) || matches!(k.as_str(), "resource" | "scope" | "status")
            });
        }
        J::Array(items) => items.iter_mut().for_each(prune_defaults),
        _ => {}
    }
}

/// Keeps the variant of an AnyValue (or each of an array's values) but prunes nested key/values.
fn prune_inside_any_value(v: &mut serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Array(items) => items.iter_mut().for_each(prune_inside_any_value),
        J::Object(map) => {
            for (k, child) in map.iter_mut() {
                match k.as_str() {
                    "arrayValue" | "kvlistValue" => prune_defaults(child),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn is_default(v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match v {
        J::Null => true,
        J::Bool(b) => !b,
        J::Number(n) => n.as_f64() == Some(0.0),
        // 64-bit integers are strings in OTLP/JSON ("0" is their default).
        J::String(s) => s.is_empty() || s == "0",
        J::Array(a) => a.is_empty(),
        J::Object(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(resource: Arc<Resource>, scope: &'static str, id: u8) -> Span {
        Span {
            trace_id: [id; 16],
            span_id: [id; 8],
            parent_span_id: None,
            name: format!("s{id}"),
            kind: SpanKind::Server,
            start_unix_nano: 1,
            end_unix_nano: 2,
            attributes: vec![("k", Value::Int(0)), ("e", Value::from(""))],
            status: Status::Unset,
            resource,
            scope,
        }
    }

    #[test]
    fn groups_by_resource_then_scope() {
        let mut a = Resource::default();
        a.set("service.name", "a");
        let a = Arc::new(a);
        let a_copy = Arc::new((*a).clone());
        let b = Arc::new(Resource::default());
        let spans = vec![
            sample(a.clone(), "x", 1),
            sample(b.clone(), "x", 2),
            sample(a_copy, "y", 3),
            sample(a.clone(), "x", 4),
        ];
        let req = to_request(&spans);
        assert_eq!(req.resource_spans.len(), 2);
        let rs = &req.resource_spans[0];
        assert_eq!(rs.scope_spans.len(), 2);
        assert_eq!(
            rs.scope_spans[0]
                .spans
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["s1", "s4"]
        );
        assert_eq!(rs.scope_spans[1].spans[0].name, "s3");
    }

    /// Spans covering every case the direct writers handle differently: resources shared, equal
    /// and empty; scopes; each value type at and off its default (negative, NaN, escapes, empty
    /// keys); parent or not; every status; zero times; empty name and attributes.
    fn varied() -> Vec<Span> {
        let mut a = Resource::default();
        a.set("service.name", "a \"quoted\" \u{7} é");
        a.set("process.pid", -42i64);
        let a = Arc::new(a);
        let a_copy = Arc::new((*a).clone());
        let empty = Arc::new(Resource::default());
        let values = [
            Value::from(""),
            Value::from("x\ny/\\ü"),
            Value::Int(0),
            Value::Int(i64::MIN),
            Value::Int(300),
            Value::Bool(false),
            Value::Bool(true),
            Value::Double(0.0),
            Value::Double(-1.5e300),
            Value::Double(f64::NAN),
            Value::Double(0.1),
        ];
        let statuses = [
            Status::Unset,
            Status::Ok,
            Status::Error(String::new()),
            Status::Error("boom \"x\"".into()),
        ];
        let kinds = [
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ];
        (0..40u8)
            .map(|i| {
                let mut s = sample(
                    [a.clone(), a_copy.clone(), empty.clone()][i as usize % 3].clone(),
                    ["x", "y", ""][i as usize / 3 % 3],
                    i,
                );
                s.kind = kinds[i as usize % 5];
                s.status = statuses[i as usize % 4].clone();
                s.parent_span_id = (i % 2 == 1).then_some([i ^ 0xff; 8]);
                s.attributes = (0..i as usize % 7)
                    .map(|j| {
                        (
                            ["k", "", "http.response.status_code"][j % 3],
                            values[(i as usize + j) % values.len()].clone(),
                        )
                    })
                    .collect();
                if i % 6 == 0 {
                    s.name.clear();
                    s.start_unix_nano = 0;
                }
                if i % 4 == 0 {
                    s.end_unix_nano = u64::MAX;
                }
                s
            })
            .collect()
    }

    /// A request with each scope's spans in span-id order, re-encoded by prost (fields in tag
    /// order): equal for requests that hold the same spans.
    fn canonical(mut req: ExportTraceServiceRequest) -> Vec<u8> {
        use prost::Message;
        for r in &mut req.resource_spans {
            for s in &mut r.scope_spans {
                s.spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
            }
        }
        req.encode_to_vec()
    }

    #[test]
    fn written_batches_decode_to_the_request_of_the_same_spans() {
        use prost::Message;
        let mut spans = varied();
        // Length prefixes of one byte (a bare span) and of three (a span over 16 KiB), around
        // the two bytes the writer reserves.
        let mut tiny = sample(Arc::new(Resource::default()), "t", 200);
        tiny.attributes.clear();
        tiny.name.clear();
        spans.push(tiny);
        let mut big = sample(spans[0].resource.clone(), "x", 201);
        big.attributes
            .push(("db.query.text", Value::from("q".repeat(20_000))));
        spans.push(big);
        let mut w = BatchWriter::new();
        for (i, s) in spans.iter().enumerate() {
            if i % 2 == 0 {
                // Streamed as a builder does it.
                let frame = SpanFrame {
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent_span_id: s.parent_span_id,
                    start_unix_nano: s.start_unix_nano,
                    end_unix_nano: s.end_unix_nano,
                    resource: s.resource.clone(),
                };
                w.begin(&frame, s.scope);
                for (k, v) in &s.attributes {
                    w.attr(k, v.as_value_ref());
                }
                w.end(&[&s.name], s.kind, s.status.as_status_ref());
            } else {
                w.span(s.clone());
            }
        }
        assert_eq!(w.len(), spans.len());
        let batch = w.take();
        assert!(w.is_empty(), "take leaves an empty writer");
        assert_eq!(batch.len(), spans.len());
        let back = ExportTraceServiceRequest::decode(&encode_request_batch(&batch)[..])
            .expect("a written batch decodes");
        assert_eq!(canonical(back), canonical(to_request(&spans)));
    }

    /// A span begun and never ended (a builder bug) leaves no bytes behind: the spans around it
    /// still decode.
    #[test]
    fn unfinished_spans_are_discarded() {
        use prost::Message;
        let spans = varied();
        let frame = |s: &Span| SpanFrame {
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            start_unix_nano: s.start_unix_nano,
            end_unix_nano: s.end_unix_nano,
            resource: s.resource.clone(),
        };
        let mut w = BatchWriter::new();
        w.span(spans[0].clone());
        w.begin(&frame(&spans[1]), spans[1].scope);
        w.attr("k", ValueRef::Int(1));
        w.span(spans[2].clone());
        w.begin(&frame(&spans[3]), spans[3].scope);
        w.begin(&frame(&spans[4]), spans[4].scope);
        w.end(
            &[&spans[4].name],
            spans[4].kind,
            spans[4].status.as_status_ref(),
        );
        w.begin(&frame(&spans[5]), spans[5].scope);
        let batch = w.take();
        assert_eq!(batch.len(), 3);
        let back =
            ExportTraceServiceRequest::decode(&encode_request_batch(&batch)[..]).expect("decodes");
        let mut want = vec![spans[0].clone(), spans[2].clone(), spans[4].clone()];
        want[2].attributes.clear();
        assert_eq!(canonical(back), canonical(to_request(&want)));
    }

    #[test]
    fn direct_protobuf_matches_prost() {
        use prost::Message;
        let spans = varied();
        for n in [0, 1, 2, 7, spans.len()] {
            let want = to_request(&spans[..n]).encode_to_vec();
            assert_eq!(encode_request(&spans[..n]), want, "first {n} spans");
        }
        // And the collector's side of the wire reads it back as the same request.
        let back = ExportTraceServiceRequest::decode(&encode_request(&spans)[..]).unwrap();
        assert_eq!(back.resource_spans.len(), 2);
        assert_eq!(
            back.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>(),
            spans.len()
        );
    }

    /// Spans encoded one by one where they are sent, then put in a request: the same bytes.
    #[test]
    fn pre_encoded_spans_match_prost() {
        use prost::Message;
        let spans = varied();
        for n in [0, 1, 2, 7, spans.len()] {
            let pre: Vec<EncodedSpan> = spans[..n].iter().cloned().map(EncodedSpan::new).collect();
            assert_eq!(
                encode_request_encoded(&pre),
                to_request(&spans[..n]).encode_to_vec(),
                "first {n} spans"
            );
        }
    }

    #[test]
    fn direct_json_matches_pruned_serde() {
        let spans = varied();
        for n in [0, 1, 2, 7, spans.len()] {
            let mut mine = Vec::new();
            write_json_line(&spans[..n], &mut mine);
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                to_json_line(&to_request(&spans[..n])),
                "first {n} spans"
            );
        }
    }

    #[test]
    fn json_keeps_zero_attribute_values_and_drops_defaults() {
        let req = to_request(&[sample(Arc::new(Resource::default()), "x", 1)]);
        let line = to_json_line(&req);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "01010101010101010101010101010101");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1");
        assert!(span.get("parentSpanId").is_none(), "{line}");
        assert!(span.get("droppedAttributesCount").is_none(), "{line}");
        assert_eq!(span["status"], serde_json::json!({}));
        assert_eq!(
            span["attributes"][0]["value"],
            serde_json::json!({"intValue": "0"})
        );
        assert_eq!(
            span["attributes"][1]["value"],
            serde_json::json!({"stringValue": ""})
        );
        assert_eq!(v["resourceSpans"][0]["resource"], serde_json::json!({}));
    }
}
