//! google.golang.org/grpc function probes: the plan for one binary (which functions, at which
//! instructions, with which struct offsets). The BPF side is bpf/grpc.bpf.h (slot numbers
//! `GRPC_*` there match `slot::*` here); README.md says what is traced and the limits.
use gotap_binary::modoffsets::{self, ModField, ModOffset};
use gotap_binary::offsets as off;
use gotap_binary::GoBinary;

use crate::abi::OFF_ABSENT;
use crate::library::{LibPlan, Library};
use crate::plan::{fast_entry, ProbeSite};
use crate::EbpfError;
use iced_x86::{Decoder, DecoderOptions, Mnemonic, Register};

pub static LIBRARY: Library = Library::new(
    "google.golang.org/grpc",
    &[
        "grpc_headers",
        "grpc_server_start",
        "grpc_server_status",
        "grpc_client_start",
        "grpc_client_stream",
        "grpc_client_finish",
    ],
    plan,
);

const GRPC: &str = "google.golang.org/grpc";
const XNET: &str = "golang.org/x/net";
/// genproto was one module until 2023, then split; the struct's name stayed.
const GENPROTO_RPC: &str = "google.golang.org/genproto/googleapis/rpc";
const GENPROTO: &str = "google.golang.org/genproto";

/// Server span start: grpc < 1.84 has one per RPC kind, 1.84 and later one for both.
pub const SERVER_STARTS: &[&str] = &[
    "google.golang.org/grpc.(*Server).processUnaryRPC",
    "google.golang.org/grpc.(*Server).processStreamingRPC",
    "google.golang.org/grpc.(*Server).processRPC",
];
/// The status the server writes: exported until grpc 1.68, unexported (behind
/// ServerStream.WriteStatus) since; same registers (t, stream, status).
pub const SERVER_STATUS: &[&str] = &[
    "google.golang.org/grpc/internal/transport.(*http2Server).WriteStatus",
    "google.golang.org/grpc/internal/transport.(*http2Server).writeStatus",
];
pub const OPERATE_HEADERS: &str =
    "google.golang.org/grpc/internal/transport.(*http2Server).operateHeaders";
/// Whether the binary makes gRPC calls at all.
pub const CLIENT_START: &str = "google.golang.org/grpc.newClientStream";
/// The client span's start: its first attempt (a retry's attempt finds the span there).
pub const CLIENT_ATTEMPT: &str = "google.golang.org/grpc.(*clientStream).newAttemptLocked";
/// The attempt's transport stream: the site after its `NewStream` call (an interface call, the
/// stream in RAX) writes the same-host link.
pub const CLIENT_NEW_STREAM: &str = "google.golang.org/grpc.(*csAttempt).newStream";
/// The end of a client span: `(*clientStream).finish`'s call of the attempt's finish, past its
/// "already finished" check (clientStream.finish runs twice for streams: the goroutine watching
/// the context calls it again; csAttempt.finish also ends attempts that are retried).
pub const CLIENT_FINISH: &str = "google.golang.org/grpc.(*csAttempt).finish";
pub const CLIENT_STREAM_FINISH: &str = "google.golang.org/grpc.(*clientStream).finish";
const STATUS_ERROR_ERROR: &str = "google.golang.org/grpc/internal/status.(*Error).Error";
const ERRSTRING_ERROR: &str = "errors.(*errorString).Error";

/// lib_cfg slots (bpf/grpc.bpf.h `GRPC_*`).
mod slot {
    pub const G_GOID: usize = 0;
    pub const STREAM_REG: usize = 1;
    pub const SS_INNER: usize = 2;
    pub const STREAM_METHOD: usize = 3;
    pub const STREAM_ID: usize = 4;
    pub const STREAM_ST: usize = 5;
    pub const H2S_ADDR: usize = 6;
    pub const TCPADDR_IP: usize = 7;
    pub const TCPADDR_PORT: usize = 8;
    pub const STATUS_S: usize = 9;
    pub const SPB_CODE: usize = 10;
    pub const SPB_MESSAGE: usize = 11;
    pub const CC_TARGET: usize = 12;
    pub const ERROR_S: usize = 13;
    pub const FN_STATUS_ERROR: usize = 14;
    pub const FN_ERRSTRING: usize = 15;
    pub const FINISH_VADDR: usize = 16;
    pub const FRAME_REG: usize = 17;
    pub const MHF_HF: usize = 18;
    pub const HF_STREAMID: usize = 19;
    pub const MHF_FIELDS: usize = 20;
    pub const HFIELD_NAME: usize = 21;
    pub const HFIELD_VALUE: usize = 22;
    pub const HFIELD_SIZE: usize = 23;
    pub const CSA_CS: usize = 24;
    pub const CS_FINISHED: usize = 25;
    /// struct tcp_offs (bpf/types.h) in this order: NETCONN_FD .. NETCONN_FD + 4.
    pub const NETCONN_FD: usize = 26;
    pub const H2S_CONN: usize = 31;
    pub const CLI_INNER: usize = 32;
    pub const CLI_ID: usize = 33;
    pub const CLI_CT: usize = 34;
    pub const CLI_CT_IFACE: usize = 35;
    pub const H2C_CONN: usize = 36;
    pub const CS_CALLHDR: usize = 37;
    pub const CALLHDR_METHOD: usize = 38;
    pub const CS_CC: usize = 39;
    pub const CS_ATTEMPT: usize = 40;
}

/// The struct offsets read_conn_tuple needs, in struct tcp_offs' order (slot::NETCONN_FD..).
const TCP_OFFS: [off::FieldRef; 5] = [
    off::NET_CONN_FD,
    off::NETFD_LADDR,
    off::NETFD_RADDR,
    off::TCPADDR_IP,
    off::TCPADDR_PORT,
];

pub const STREAM_METHOD: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.Stream",
    "method",
);
pub const STREAM_ID: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.Stream",
    "id",
);
pub const STREAM_ST: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.Stream",
    "st",
);
pub const SS_STREAM: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.ServerStream",
    "Stream",
);
pub const SS_ST: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.ServerStream",
    "st",
);
pub const H2S_REMOTE_ADDR: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.http2Server",
    "remoteAddr",
);
pub const H2S_PEER: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.http2Server",
    "peer",
);
pub const PEER_ADDR: ModField = ModField::new(GRPC, "google.golang.org/grpc/peer.Peer", "Addr");
pub const STATUS_S: ModField =
    ModField::new(GRPC, "google.golang.org/grpc/internal/status.Status", "s");
pub const ERROR_S: ModField =
    ModField::new(GRPC, "google.golang.org/grpc/internal/status.Error", "s");
pub const CSA_CS: ModField = ModField::new(GRPC, "google.golang.org/grpc.csAttempt", "cs");
pub const CS_FINISHED: ModField =
    ModField::new(GRPC, "google.golang.org/grpc.clientStream", "finished");
pub const CC_TARGET: ModField = ModField::new(GRPC, "google.golang.org/grpc.ClientConn", "target");
/// The same-host link (README.md, "Same-host link"): the client's transport stream, its
/// connection, and the server's connection.
pub const STREAM_CT: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.Stream",
    "ct",
);
pub const CLI_STREAM: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.ClientStream",
    "Stream",
);
pub const CLI_CT: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.ClientStream",
    "ct",
);
pub const H2C_CONN: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.http2Client",
    "conn",
);
pub const H2S_CONN: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.http2Server",
    "conn",
);
/// The client span starts at newAttemptLocked's entry: the clientStream's method, ClientConn and
/// attempt (nil before its first attempt).
pub const CS_CALLHDR: ModField =
    ModField::new(GRPC, "google.golang.org/grpc.clientStream", "callHdr");
pub const CS_CC: ModField = ModField::new(GRPC, "google.golang.org/grpc.clientStream", "cc");
pub const CS_ATTEMPT: ModField =
    ModField::new(GRPC, "google.golang.org/grpc.clientStream", "attempt");
pub const CALLHDR_METHOD: ModField = ModField::new(
    GRPC,
    "google.golang.org/grpc/internal/transport.CallHdr",
    "Method",
);
pub const SPB_CODE: ModField = ModField::new(
    GENPROTO_RPC,
    "google.golang.org/genproto/googleapis/rpc/status.Status",
    "Code",
);
pub const SPB_MESSAGE: ModField = ModField::new(
    GENPROTO_RPC,
    "google.golang.org/genproto/googleapis/rpc/status.Status",
    "Message",
);
pub const MHF_HF: ModField = ModField::new(
    XNET,
    "golang.org/x/net/http2.MetaHeadersFrame",
    "HeadersFrame",
);
pub const MHF_FIELDS: ModField =
    ModField::new(XNET, "golang.org/x/net/http2.MetaHeadersFrame", "Fields");
pub const HF_FRAME_HEADER: ModField =
    ModField::new(XNET, "golang.org/x/net/http2.HeadersFrame", "FrameHeader");
pub const FH_STREAM_ID: ModField =
    ModField::new(XNET, "golang.org/x/net/http2.FrameHeader", "StreamID");
pub const HFIELD_NAME: ModField =
    ModField::new(XNET, "golang.org/x/net/http2/hpack.HeaderField", "Name");
pub const HFIELD_VALUE: ModField =
    ModField::new(XNET, "golang.org/x/net/http2/hpack.HeaderField", "Value");
pub const HFIELD_SENSITIVE: ModField = ModField::new(
    XNET,
    "golang.org/x/net/http2/hpack.HeaderField",
    "Sensitive",
);

/// Every module field the planner may read: what scripts/gen-grpc-offsets.sh measures.
pub const ALL_FIELDS: &[ModField] = &[
    STREAM_METHOD,
    STREAM_ID,
    STREAM_ST,
    SS_STREAM,
    SS_ST,
    H2S_REMOTE_ADDR,
    H2S_PEER,
    PEER_ADDR,
    STATUS_S,
    ERROR_S,
    CSA_CS,
    CS_FINISHED,
    CC_TARGET,
    SPB_CODE,
    SPB_MESSAGE,
    MHF_HF,
    MHF_FIELDS,
    HF_FRAME_HEADER,
    FH_STREAM_ID,
    HFIELD_NAME,
    HFIELD_VALUE,
    HFIELD_SENSITIVE,
    STREAM_CT,
    CLI_STREAM,
    CLI_CT,
    H2C_CONN,
    H2S_CONN,
    CS_CALLHDR,
    CS_CC,
    CS_ATTEMPT,
    CALLHDR_METHOD,
];

/// The resolved offsets of one binary; `need` fails with the sentence naming version and field.
struct Offsets<'a> {
    bin: &'a GoBinary,
    got: Vec<(ModField, ModOffset)>,
}

impl Offsets<'_> {
    fn get(&self, f: ModField) -> Result<Option<u64>, String> {
        match self.got.iter().find(|(g, _)| *g == f).map(|(_, o)| o) {
            Some(ModOffset::Found { offset, .. }) => Ok(Some(*offset)),
            Some(ModOffset::Absent) => Ok(None),
            Some(ModOffset::Unknown(why)) => Err(why.clone()),
            None => Err(format!("{} was not resolved", f.field)),
        }
    }
    fn need(&self, f: ModField) -> Result<u64, String> {
        let version =
            modoffsets::module_version(self.bin, f.module).unwrap_or_else(|| "(no version)".into());
        self.get(f)?.ok_or_else(|| {
            format!(
                "{} has no field {} in {} {version}",
                f.field.strukt, f.field.field, f.module
            )
        })
    }
}

/// genproto's status struct is resolved against whichever genproto module the binary links.
fn with_genproto(bin: &GoBinary, f: ModField) -> ModField {
    if f.module == GENPROTO_RPC && modoffsets::module_version(bin, GENPROTO_RPC).is_none() {
        ModField {
            module: GENPROTO,
            ..f
        }
    } else {
        f
    }
}

fn plan(bin: &GoBinary, lp: &mut LibPlan) -> Result<(), EbpfError> {
    let starts: Vec<_> = SERVER_STARTS
        .iter()
        .filter_map(|n| bin.function(n).map(|f| (*n, f)))
        .collect();
    let client = bin.function(CLIENT_START);
    if starts.is_empty() && client.is_none() {
        return Ok(());
    }
    let version = modoffsets::module_version(bin, GRPC).unwrap_or_default();
    let Some((1, minor, _, _)) = modoffsets::parse_version(&version) else {
        lp.warnings.push(format!(
            "gRPC is not traced: google.golang.org/grpc version {version:?} from the build info is not a v1 release (the probes' registers depend on it)"
        ));
        return Ok(());
    };
    if minor < 50 {
        lp.warnings.push(format!(
            "gRPC is not traced: google.golang.org/grpc {version} is older than v1.50, the oldest supported"
        ));
        return Ok(());
    }
    let fields: Vec<ModField> = ALL_FIELDS.iter().map(|f| with_genproto(bin, *f)).collect();
    let got = modoffsets::resolve(bin, &fields);
    let offs = Offsets {
        bin,
        got: fields.iter().copied().zip(got).collect(),
    };
    let mut std_fields = vec![off::G_GOID];
    std_fields.extend(TCP_OFFS);
    let std = off::resolve(bin, &std_fields);
    let std_need = |f| off::offset_of(&std, f).map_err(|e| e.to_string());
    let cfg = &mut lp.cfg;
    match std_need(off::G_GOID) {
        Ok(o) => cfg[slot::G_GOID] = o,
        Err(e) => {
            lp.warnings.push(format!("gRPC is not traced: {e}"));
            return Ok(());
        }
    }
    let spb = |f: ModField| offs.need(with_genproto(bin, f));
    let status = (|| -> Result<(u64, u64, u64), String> {
        Ok((offs.need(STATUS_S)?, spb(SPB_CODE)?, spb(SPB_MESSAGE)?))
    })();
    let (status_s, code, message) = match status {
        Ok(v) => v,
        Err(e) => {
            lp.warnings.push(format!("gRPC is not traced: {e}"));
            return Ok(());
        }
    };
    cfg[slot::STATUS_S] = status_s;
    cfg[slot::SPB_CODE] = code;
    cfg[slot::SPB_MESSAGE] = message;
    // The same-host link reads both ends' TCP 4-tuple; without these offsets there is no link
    // (each side says so below), and the spans are traced as before.
    let tcp: Result<Vec<u64>, String> = TCP_OFFS.iter().map(|f| std_need(*f)).collect();
    match &tcp {
        Ok(t) => cfg[slot::NETCONN_FD..slot::NETCONN_FD + 5].copy_from_slice(t),
        Err(_) => cfg[slot::NETCONN_FD..slot::NETCONN_FD + 5].fill(OFF_ABSENT),
    }
    let tcp_err = tcp.err();
    cfg[slot::H2S_CONN] = OFF_ABSENT;
    cfg[slot::H2C_CONN] = OFF_ABSENT;

    // ---- server ----
    let status_fn = SERVER_STATUS
        .iter()
        .find_map(|n| bin.function(n).map(|f| (*n, f)));
    if !starts.is_empty() {
        match (server_cfg(&offs, minor), status_fn) {
            (Ok(s), Some((sname, sf))) => {
                cfg[slot::STREAM_REG] = s.stream_reg;
                cfg[slot::SS_INNER] = s.inner;
                cfg[slot::STREAM_METHOD] = s.method;
                cfg[slot::STREAM_ID] = s.id;
                cfg[slot::STREAM_ST] = s.st;
                // The peer's address: optional (an IPv4 TCP peer is formatted in BPF).
                match (
                    peer_offset(&offs, minor),
                    std_need(off::TCPADDR_IP),
                    std_need(off::TCPADDR_PORT),
                ) {
                    (Ok(a), Ok(ip), Ok(port)) => {
                        cfg[slot::H2S_ADDR] = a;
                        cfg[slot::TCPADDR_IP] = ip;
                        cfg[slot::TCPADDR_PORT] = port;
                    }
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => lp
                        .warnings
                        .push(format!("gRPC server spans carry no peer address ({e})")),
                }
                // The same-host link: the server's connection (its tuple keys the map).
                match (offs.need(H2S_CONN), tcp_err.clone()) {
                    (Ok(c), None) => cfg[slot::H2S_CONN] = c,
                    (Err(e), _) | (_, Some(e)) => lp.warnings.push(format!(
                        "gRPC server spans do not join traced clients on this host ({e})"
                    )),
                }
                for (name, f) in &starts {
                    lp.sites.push(ProbeSite {
                        program: "grpc_server_start",
                        function: name,
                        offset: entry_once(bin, f),
                    });
                }
                lp.sites.push(ProbeSite {
                    program: "grpc_server_status",
                    function: sname,
                    offset: entry_once(bin, sf),
                });
                lp.instrumentations.push("grpc server");
                lp.fills_goroutines = true;
                match (headers_cfg(&offs, minor), bin.function(OPERATE_HEADERS)) {
                    (Ok(h), Some(f)) => {
                        cfg[slot::FRAME_REG] = h[0];
                        cfg[slot::MHF_HF] = h[1];
                        cfg[slot::HF_STREAMID] = h[2];
                        cfg[slot::MHF_FIELDS] = h[3];
                        cfg[slot::HFIELD_NAME] = h[4];
                        cfg[slot::HFIELD_VALUE] = h[5];
                        cfg[slot::HFIELD_SIZE] = h[6];
                        lp.sites.push(ProbeSite { program: "grpc_headers", function: OPERATE_HEADERS, offset: entry_once(bin, f) });
                    }
                    (Err(e), _) => lp.warnings.push(format!(
                        "gRPC server spans do not join an incoming traceparent ({e})"
                    )),
                    (_, None) => lp.warnings.push(format!(
                        "{OPERATE_HEADERS} not found: gRPC server spans do not join an incoming traceparent"
                    )),
                }
            }
            (Err(e), _) => lp
                .warnings
                .push(format!("gRPC server calls are not traced: {e}")),
            (_, None) => lp.warnings.push(format!(
                "gRPC server calls are not traced: none of {} is in the binary",
                SERVER_STATUS.join(", ")
            )),
        }
    }

    // ---- client ----
    if client.is_some() {
        let fns = (
            bin.function(CLIENT_ATTEMPT),
            bin.function(CLIENT_FINISH),
            bin.function(STATUS_ERROR_ERROR),
            bin.function(ERRSTRING_ERROR),
        );
        let need = (|| -> Result<[u64; 8], String> {
            Ok([
                offs.need(CC_TARGET)?,
                offs.need(ERROR_S)?,
                offs.need(CSA_CS)?,
                offs.need(CS_FINISHED)?,
                offs.need(CS_CALLHDR)?,
                offs.need(CALLHDR_METHOD)?,
                offs.need(CS_CC)?,
                offs.need(CS_ATTEMPT)?,
            ])
        })();
        match (need, fns) {
            (
                Ok([target, error_s, csa_cs, finished, callhdr, method, cs_cc, attempt_f]),
                (Some(attempt), Some(finish), Some(se), Some(es)),
            ) => {
                cfg[slot::CC_TARGET] = target;
                cfg[slot::CSA_CS] = csa_cs;
                cfg[slot::CS_FINISHED] = finished;
                cfg[slot::ERROR_S] = error_s;
                cfg[slot::CS_CALLHDR] = callhdr;
                cfg[slot::CALLHDR_METHOD] = method;
                cfg[slot::CS_CC] = cs_cc;
                cfg[slot::CS_ATTEMPT] = attempt_f;
                cfg[slot::FN_STATUS_ERROR] = se.entry;
                cfg[slot::FN_ERRSTRING] = es.entry;
                // The CALL in clientStream.finish (emulated, with the callee's arguments in
                // place), else the callee's entry.
                let finish_at = bin
                    .function(CLIENT_STREAM_FINISH)
                    .and_then(|c| call_site(bin, c, finish.entry))
                    .unwrap_or_else(|| entry_once(bin, finish));
                let finish = bin
                    .functions()
                    .iter()
                    .find(|f| finish_at >= f.offset && finish_at < f.offset + f.size)
                    .unwrap_or(finish);
                cfg[slot::FINISH_VADDR] = finish.entry + (finish_at - finish.offset);
                lp.sites.push(ProbeSite {
                    program: "grpc_client_start",
                    function: CLIENT_ATTEMPT,
                    offset: entry_once(bin, attempt),
                });
                lp.sites.push(ProbeSite {
                    program: "grpc_client_finish",
                    function: CLIENT_FINISH,
                    offset: finish_at,
                });
                lp.instrumentations.push("grpc client");
                // The same-host link: the stream's id and connection, after NewStream.
                let link = (|| -> Result<u64, String> {
                    if let Some(e) = &tcp_err {
                        return Err(e.clone());
                    }
                    let [inner, id, ct, iface] = client_stream_cfg(&offs, minor)?;
                    let conn = offs.need(H2C_CONN)?;
                    let f = bin
                        .function(CLIENT_NEW_STREAM)
                        .ok_or_else(|| format!("{CLIENT_NEW_STREAM} not found"))?;
                    let site = after_new_stream(bin, f).ok_or_else(|| {
                        format!(
                            "no site after the NewStream call in {CLIENT_NEW_STREAM} (grpc {version})"
                        )
                    })?;
                    cfg[slot::CLI_INNER] = inner;
                    cfg[slot::CLI_ID] = id;
                    cfg[slot::CLI_CT] = ct;
                    cfg[slot::CLI_CT_IFACE] = iface;
                    cfg[slot::H2C_CONN] = conn;
                    Ok(site)
                })();
                match link {
                    Ok(site) => lp.sites.push(ProbeSite {
                        program: "grpc_client_stream",
                        function: CLIENT_NEW_STREAM,
                        offset: site,
                    }),
                    Err(e) => lp.warnings.push(format!(
                        "gRPC client spans are not linked to traced servers on this host ({e})"
                    )),
                }
            }
            (Err(e), _) => lp
                .warnings
                .push(format!("gRPC client calls are not traced: {e}")),
            (_, (a, f, se, es)) => {
                let missing: Vec<&str> = [
                    (a.is_none(), CLIENT_ATTEMPT),
                    (f.is_none(), CLIENT_FINISH),
                    (se.is_none(), STATUS_ERROR_ERROR),
                    (es.is_none(), ERRSTRING_ERROR),
                ]
                .iter()
                .filter(|(m, _)| *m)
                .map(|(_, n)| *n)
                .collect();
                lp.warnings.push(format!(
                    "gRPC client calls are not traced: {} not in the binary",
                    missing.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// How the client's transport stream gives its HTTP/2 stream id and its *http2Client, by
/// version: `[hop to the Stream (OFF_ABSENT: none), id from there, ct from the stream, ct is an
/// interface (1) or a pointer (0)]`. Until grpc 1.68 the client's stream is a transport.Stream
/// (its `ct` a *http2Client, a ClientTransport interface in 1.66-1.68); from 1.69 a
/// *ClientStream with its own `ct`, embedding the Stream by pointer until the layout says
/// otherwise (ClientStream.ct right after an 8-byte Stream field), by value after.
fn client_stream_cfg(offs: &Offsets<'_>, minor: u64) -> Result<[u64; 4], String> {
    let id = offs.need(STREAM_ID)?;
    if minor >= 69 {
        let embed = offs.need(CLI_STREAM)?;
        let ct = offs.need(CLI_CT)?;
        if ct == embed + 8 {
            Ok([embed, id, ct, 0])
        } else {
            Ok([OFF_ABSENT, embed + id, ct, 0])
        }
    } else {
        let iface = if (66..=68).contains(&minor) { 1 } else { 0 };
        Ok([OFF_ABSENT, id, offs.need(STREAM_CT)?, iface])
    }
}

/// The site after csAttempt.newStream's call of the transport's NewStream: an indirect CALL (the
/// ClientTransport interface) followed by `TEST RBX, RBX` (err != nil) and its Jcc, which is
/// the site (emulated; RAX still holds the stream, RBX the error's itab). `None` unless exactly
/// one call in the function has that shape.
pub fn after_new_stream(bin: &GoBinary, f: &gotap_binary::Function) -> Option<u64> {
    let code = bin.read_vaddr(f.entry, f.size)?;
    let insns: Vec<_> = Decoder::with_ip(64, code, f.entry, DecoderOptions::NONE)
        .into_iter()
        .collect();
    let mut found = None;
    for (i, call) in insns.iter().enumerate() {
        if call.mnemonic() != Mnemonic::Call || call.op0_kind() != iced_x86::OpKind::Register {
            continue;
        }
        let mut rest = insns[i + 1..]
            .iter()
            .filter(|n| n.mnemonic() != Mnemonic::Nop);
        let (Some(test), Some(jcc)) = (rest.next(), rest.next()) else {
            continue;
        };
        if test.mnemonic() == Mnemonic::Test
            && test.op0_register() == Register::RBX
            && test.op1_register() == Register::RBX
            && jcc.is_jcc_short_or_near()
        {
            if found.is_some() {
                return None;
            }
            found = Some(f.offset + (jcc.ip() - f.entry));
        }
    }
    found
}

struct ServerCfg {
    stream_reg: u64,
    inner: u64,
    method: u64,
    id: u64,
    st: u64,
}

/// Where process*RPC's stream is and how its method, id and transport are reached, by version:
/// grpc 1.59–1.68 pass (ctx, t, stream) (stream in R8), the others (t or ctx, stream) (RDI).
/// From 1.69 the argument is a *ServerStream embedding the Stream, by pointer until the layout
/// says otherwise (ServerStream.st right after an 8-byte Stream field), by value after.
fn server_cfg(offs: &Offsets<'_>, minor: u64) -> Result<ServerCfg, String> {
    let stream_reg = if (59..=68).contains(&minor) { 1 } else { 0 };
    let method = offs.need(STREAM_METHOD)?;
    let id = offs.need(STREAM_ID)?;
    if minor >= 69 {
        let embed = offs.need(SS_STREAM)?;
        let st = offs.need(SS_ST)?;
        if st == embed + 8 {
            Ok(ServerCfg {
                stream_reg,
                inner: embed,
                method,
                id,
                st,
            })
        } else {
            Ok(ServerCfg {
                stream_reg,
                inner: OFF_ABSENT,
                method: embed + method,
                id: embed + id,
                st,
            })
        }
    } else {
        Ok(ServerCfg {
            stream_reg,
            inner: OFF_ABSENT,
            method,
            id,
            st: offs.need(STREAM_ST)?,
        })
    }
}

/// The peer's net.Addr in http2Server: remoteAddr until grpc 1.59, peer.Addr since.
fn peer_offset(offs: &Offsets<'_>, minor: u64) -> Result<u64, String> {
    if minor >= 60 {
        Ok(offs.need(H2S_PEER)? + offs.need(PEER_ADDR)?)
    } else {
        offs.need(H2S_REMOTE_ADDR)
    }
}

/// operateHeaders' frame register (RBX before grpc 1.60, RDI after ctx joined its arguments)
/// and the x/net layout of the frame and its header fields.
fn headers_cfg(offs: &Offsets<'_>, minor: u64) -> Result<[u64; 7], String> {
    let frame_reg = if minor >= 60 { 1 } else { 0 };
    let sensitive = offs.need(HFIELD_SENSITIVE)?;
    // hpack.HeaderField ends with its bool: its size is the next multiple of 8 (its alignment).
    let size = (sensitive + 1).div_ceil(8) * 8;
    Ok([
        frame_reg,
        offs.need(MHF_HF)?,
        offs.need(HF_FRAME_HEADER)? + offs.need(FH_STREAM_ID)?,
        offs.need(MHF_FIELDS)?,
        offs.need(HFIELD_NAME)?,
        offs.need(HFIELD_VALUE)?,
        size,
    ])
}

/// Where an entry probe goes so that it fires once per call: the instruction after the stack
/// check's Jcc when it is the frame's `PUSH RBP` (Go 1.21 and later; the kernel emulates a push),
/// else the Jcc itself (`fast_entry`). A function that must grow the stack first (the first
/// call on a new goroutine, e.g. every stream's handler) restarts from its entry after
/// morestack and passes its Jcc twice, but reaches the push once.
pub fn entry_once(bin: &GoBinary, f: &gotap_binary::Function) -> u64 {
    let jcc = fast_entry(bin, f);
    if jcc == f.offset {
        return jcc;
    }
    let vaddr = f.entry + (jcc - f.offset);
    let Some(code) = bin.read_vaddr(vaddr, 16) else {
        return jcc;
    };
    let mut d = Decoder::with_ip(64, code, vaddr, DecoderOptions::NONE);
    let j = d.decode();
    let next = d.decode();
    if j.is_jcc_short_or_near()
        && next.mnemonic() == Mnemonic::Push
        && next.op0_register() == Register::RBP
    {
        f.offset + (next.ip() - f.entry)
    } else {
        jcc
    }
}

/// File offset of the first direct CALL to the function at `target` (vaddr) inside `caller`.
fn call_site(bin: &GoBinary, caller: &gotap_binary::Function, target: u64) -> Option<u64> {
    let code = bin.read_vaddr(caller.entry, caller.size)?;
    let insn = Decoder::with_ip(64, code, caller.entry, DecoderOptions::NONE)
        .into_iter()
        .find(|i| i.is_call_near() && i.near_branch_target() == target)?;
    Some(caller.offset + (insn.ip() - caller.entry))
}
