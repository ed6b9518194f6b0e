//! Export configuration: the standard `OTEL_*` environment variables, then CLI overrides.
use crate::Error;
use gotap_spans::{semconv as sc, Resource, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    pub fn parse(s: &str) -> Result<Protocol, Error> {
        match s.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Err(Error::Config(
                "OTLP protocol http/json is not supported; use grpc or http/protobuf".into(),
            )),
            other => Err(Error::Config(format!(
                "unknown OTLP protocol {other:?}; use grpc or http/protobuf"
            ))),
        }
    }
    fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        }
    }
}

/// Where and how OTLP exports go.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    pub protocol: Protocol,
    /// gRPC: `http://host:port`. HTTP: the full URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Queue, batch, retry and shutdown bounds of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    /// Spans waiting for the export thread; beyond it `send` drops (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub max_queue_size: usize,
    /// Spans per export request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub max_export_batch_size: usize,
    /// A batch is also cut once its spans' protobuf encodings add up to this many bytes, so a
    /// request stays under the 4 MiB a Collector's OTLP gRPC receiver accepts by default however
    /// long the spans' texts (SQL up to 4 KiB) are.
    pub max_export_batch_bytes: usize,
    /// A partial batch is exported after this long (`OTEL_BSP_SCHEDULE_DELAY`, ms).
    pub schedule_delay: Duration,
    /// Spans each exporter keeps for retry while its destination is down; oldest dropped beyond.
    pub max_buffered_spans: usize,
    /// First retry delay; doubles per failure up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Bound of one export call (`OTEL_EXPORTER_OTLP_TIMEOUT`, ms).
    pub export_timeout: Duration,
    /// How long [`crate::Pipeline::shutdown`] may take to flush.
    pub shutdown_timeout: Duration,
    /// While spans are being dropped, a status line with the count since the last one is logged
    /// at most this often (so an outage is seen while it happens, not only in the exit summary).
    pub drop_report_interval: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            // The SDK default is 2048, sized for one in-process tracer. gotap drains a whole
            // process's ring buffer every few ms (bursts of thousands of spans at high rates) and
            // must not drop while a batch is on the wire: 16384 queued spans ≈ 200 ms at 80k/s.
            max_queue_size: 16384,
            // The SDK's 512 costs gotap 0.2-0.5 us more per span at 8000 spans/s than 2048 (one
            // request, its headers and syscalls, per 512 spans): docs/benchmarks.md, probe sites.
            // Bytes, not spans, bound a request's size (max_export_batch_bytes).
            max_export_batch_size: 2048,
            max_export_batch_bytes: 2 << 20,
            schedule_delay: Duration::from_millis(200),
            max_buffered_spans: 8192,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            export_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            drop_report_interval: Duration::from_secs(10),
        }
    }
}

/// Everything the pipeline needs; build it with [`ExportConfig::from_env`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportConfig {
    pub otlp: Option<OtlpConfig>,
    pub console: bool,
    /// OTLP/JSON lines file (the collector `file` exporter's format).
    pub json_file: Option<PathBuf>,
    pub batch: BatchConfig,
    /// `OTEL_SERVICE_NAME`.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded.
    pub resource_attributes: Vec<(String, String)>,
}

/// What the command line may override; `None` leaves the environment's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Base endpoint, like `OTEL_EXPORTER_OTLP_ENDPOINT` (turns OTLP export on).
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: Option<Protocol>,
    /// Extra headers, added after (and replacing) those from the environment.
    pub otlp_headers: Vec<(String, String)>,
    pub console: Option<bool>,
    pub json_file: Option<PathBuf>,
    pub service_name: Option<String>,
}

impl ExportConfig {
    /// Reads the process environment, then applies `overrides`.
    pub fn from_env(overrides: &Overrides) -> Result<ExportConfig, Error> {
        Self::from_lookup(|k| std::env::var(k).ok(), overrides)
    }

    /// [`ExportConfig::from_env`] with an explicit variable lookup (tests, embedding).
    pub fn from_lookup(
        env: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<ExportConfig, Error> {
        // Empty values count as unset, as the spec asks.
        let var = |k: &str| {
            env(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let mut cfg = ExportConfig::default();
        if let Some(v) = var("OTEL_BSP_MAX_QUEUE_SIZE") {
            cfg.batch.max_queue_size = parse_positive("OTEL_BSP_MAX_QUEUE_SIZE", &v)? as usize;
        }
        if let Some(v) = var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            cfg.batch.max_export_batch_size =
                parse_positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)? as usize;
        }
        if let Some(v) = var("OTEL_BSP_SCHEDULE_DELAY") {
            cfg.batch.schedule_delay =
                Duration::from_millis(parse_positive("OTEL_BSP_SCHEDULE_DELAY", &v)?);
        }

        cfg.service_name = overrides
            .service_name
            .clone()
            .or_else(|| var("OTEL_SERVICE_NAME"));
        if let Some(v) = var("OTEL_RESOURCE_ATTRIBUTES") {
            cfg.resource_attributes = parse_key_values("OTEL_RESOURCE_ATTRIBUTES", &v)?;
        }

        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        // OTEL_TRACES_EXPORTER: a comma list of otlp | console | none.
        let (mut want_otlp, mut want_console, listed) = match var("OTEL_TRACES_EXPORTER") {
            None => (false, false, false),
            Some(list) => {
                let names: Vec<&str> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .collect();
                for n in &names {
                    if !matches!(*n, "otlp" | "console" | "none") {
                        return Err(Error::Config(format!("OTEL_TRACES_EXPORTER: unknown exporter {n:?}; use otlp, console or none")));
                    }
                }
                if names.contains(&"none") && names.len() > 1 {
                    return Err(Error::Config(
                        "OTEL_TRACES_EXPORTER: \"none\" cannot be combined with other exporters"
                            .into(),
                    ));
                }
                (names.contains(&"otlp"), names.contains(&"console"), true)
            }
        };

        let signal_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let base_endpoint = overrides
            .otlp_endpoint
            .clone()
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        // gotap exports OTLP when asked by name or when given an endpoint; without either it does not
        // send to the spec's default localhost endpoint, where usually nothing listens.
        if !listed && (signal_endpoint.is_some() || base_endpoint.is_some()) {
            want_otlp = true;
        }
        if want_otlp {
            let protocol = match overrides.otlp_protocol {
                Some(p) => p,
                None => match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
                {
                    Some(p) => Protocol::parse(&p)?,
                    None => Protocol::HttpProtobuf,
                },
            };
            // A CLI endpoint beats both variables; otherwise the signal-specific one is used as is.
            let endpoint = match (&overrides.otlp_endpoint, &signal_endpoint) {
                (None, Some(e)) => normalize_endpoint(e, protocol, false)?,
                _ => normalize_endpoint(
                    base_endpoint
                        .as_deref()
                        .unwrap_or(protocol.default_endpoint()),
                    protocol,
                    true,
                )?,
            };
            let mut headers = Vec::new();
            for name in [
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            ] {
                if let Some(v) = var(name) {
                    merge_headers(&mut headers, parse_key_values(name, &v)?);
                }
            }
            merge_headers(&mut headers, overrides.otlp_headers.clone());
            let timeout = match var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
                .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
            {
                Some(v) => Duration::from_millis(parse_positive("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?),
                None => Duration::from_secs(10),
            };
            cfg.batch.export_timeout = timeout;
            cfg.otlp = Some(OtlpConfig {
                protocol,
                endpoint,
                headers,
                timeout,
            });
        }

        cfg.json_file = overrides.json_file.clone();
        if !listed && cfg.otlp.is_none() && cfg.json_file.is_none() {
            // Nothing configured at all: show spans on the console rather than drop them silently.
            want_console = true;
        }
        cfg.console = overrides.console.unwrap_or(want_console);
        if disabled {
            cfg.otlp = None;
            cfg.console = false;
            cfg.json_file = None;
        }
        Ok(cfg)
    }

    /// [`resource_for_process`] with this configuration's service name and resource attributes.
    pub fn resource_for_process(
        &self,
        pid: u32,
        exe_path: &Path,
        go_version: &str,
        override_service_name: Option<&str>,
    ) -> Resource {
        build_resource(
            pid,
            exe_path,
            go_version,
            override_service_name.or(self.service_name.as_deref()),
            &self.resource_attributes,
        )
    }
}

/// The resource of an instrumented Go process. `service.name`: `override_service_name`, else
/// `OTEL_SERVICE_NAME`, else `service.name` from `OTEL_RESOURCE_ATTRIBUTES`, else the executable's
/// file name. Other `OTEL_RESOURCE_ATTRIBUTES` entries are added and win over detected values.
/// An invalid `OTEL_RESOURCE_ATTRIBUTES` is ignored here (config parsing reports it).
pub fn resource_for_process(
    pid: u32,
    exe_path: &Path,
    go_version: &str,
    override_service_name: Option<&str>,
) -> Resource {
    let env_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let attrs = std::env::var("OTEL_RESOURCE_ATTRIBUTES")
        .ok()
        .and_then(|v| parse_key_values("OTEL_RESOURCE_ATTRIBUTES", &v).ok())
        .unwrap_or_default();
    build_resource(
        pid,
        exe_path,
        go_version,
        override_service_name.or(env_name.as_deref()),
        &attrs,
    )
}

fn build_resource(
    pid: u32,
    exe_path: &Path,
    go_version: &str,
    service_name: Option<&str>,
    user_attrs: &[(String, String)],
) -> Resource {
    let mut r = Resource::default();
    let from_attrs = user_attrs
        .iter()
        .find(|(k, _)| k == sc::SERVICE_NAME)
        .map(|(_, v)| v.as_str());
    let exe_name = exe_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let service = service_name
        .map(str::to_owned)
        .or(from_attrs.map(str::to_owned))
        .or(exe_name)
        .unwrap_or_else(|| "unknown_service".to_owned());
    r.set(sc::SERVICE_NAME, service);
    r.set(sc::PROCESS_PID, Value::Int(pid as i64));
    r.set(
        sc::PROCESS_EXECUTABLE_PATH,
        exe_path.to_string_lossy().into_owned(),
    );
    r.set(sc::PROCESS_RUNTIME_NAME, "go");
    if !go_version.is_empty() {
        r.set(sc::PROCESS_RUNTIME_VERSION, go_version);
    }
    r.set(sc::TELEMETRY_DISTRO_NAME, "gotap");
    r.set(sc::TELEMETRY_DISTRO_VERSION, env!("CARGO_PKG_VERSION"));
    if let Some(h) = hostname() {
        r.set(sc::HOST_NAME, h);
    }
    for (k, v) in user_attrs {
        if k != sc::SERVICE_NAME {
            r.set(k.clone(), v.clone());
        }
    }
    r
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_owned())
}

fn parse_positive(name: &str, v: &str) -> Result<u64, Error> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Config(format!(
            "{name} must be a positive integer, not {v:?}"
        ))),
    }
}

/// `http://host:port` checks; HTTP base endpoints get `/v1/traces` appended (spec), unless the
/// path already ends with it.
fn normalize_endpoint(e: &str, protocol: Protocol, append_path: bool) -> Result<String, Error> {
    let e = e.trim();
    let e = if e.contains("://") {
        e.to_owned()
    } else {
        format!("http://{e}")
    };
    if e.starts_with("https://") {
        return Err(Error::Config(format!(
            "OTLP endpoint {e}: TLS (https) is not supported yet; use an http:// endpoint"
        )));
    }
    let Some(rest) = e.strip_prefix("http://") else {
        return Err(Error::Config(format!(
            "OTLP endpoint {e:?} must start with http://"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(Error::Config(format!("OTLP endpoint {e:?} has no host")));
    }
    Ok(match protocol {
        Protocol::Grpc => format!("http://{authority}"),
        Protocol::HttpProtobuf if append_path && !path.ends_with("/v1/traces") => {
            format!("http://{authority}{}/v1/traces", path.trim_end_matches('/'))
        }
        Protocol::HttpProtobuf => format!(
            "http://{authority}{}",
            if path.is_empty() { "/" } else { path }
        ),
    })
}

fn merge_headers(into: &mut Vec<(String, String)>, new: Vec<(String, String)>) {
    for (k, v) in new {
        let k = k.to_ascii_lowercase();
        match into.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => into.push((k, v)),
        }
    }
}

/// `k=v,k2=v2` (W3C baggage style, as `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`
/// use): keys and values trimmed and percent-decoded.
pub fn parse_key_values(name: &str, s: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(Error::Config(format!(
                "{name}: entry {item:?} is not key=value"
            )));
        };
        let k = percent_decode(k.trim())
            .ok_or_else(|| Error::Config(format!("{name}: bad percent-encoding in {item:?}")))?;
        let v = percent_decode(v.trim())
            .ok_or_else(|| Error::Config(format!("{name}: bad percent-encoding in {item:?}")))?;
        if k.is_empty() {
            return Err(Error::Config(format!(
                "{name}: entry {item:?} has an empty key"
            )));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)], o: &Overrides) -> Result<ExportConfig, Error> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ExportConfig::from_lookup(|k| m.get(k).cloned(), o)
    }

    #[test]
    fn nothing_configured_means_console_only() {
        let c = cfg(&[], &Overrides::default()).unwrap();
        assert!(c.console);
        assert_eq!(c.otlp, None);
        assert_eq!(c.json_file, None);
    }

    #[test]
    fn base_endpoint_defaults_to_http_protobuf_with_path() {
        let c = cfg(
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")],
            &Overrides::default(),
        )
        .unwrap();
        let o = c.otlp.unwrap();
        assert_eq!(o.protocol, Protocol::HttpProtobuf);
        assert_eq!(o.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert!(
            !c.console,
            "an endpoint alone turns the console default off"
        );
    }

    #[test]
    fn signal_endpoint_is_used_verbatim_and_wins() {
        let c = cfg(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9999/custom"),
            ],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.otlp.unwrap().endpoint, "http://b:9999/custom");
    }

    #[test]
    fn grpc_protocol_and_cli_override() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:1/x"),
        ];
        let c = cfg(&vars, &Overrides::default()).unwrap();
        assert_eq!(c.otlp.as_ref().unwrap().protocol, Protocol::Grpc);
        assert_eq!(c.otlp.unwrap().endpoint, "http://b:1");
        let o = Overrides {
            otlp_endpoint: Some("127.0.0.1:4317".into()),
            ..Default::default()
        };
        assert_eq!(
            cfg(&vars, &o).unwrap().otlp.unwrap().endpoint,
            "http://127.0.0.1:4317"
        );
    }

    #[test]
    fn traces_exporter_list() {
        let c = cfg(
            &[("OTEL_TRACES_EXPORTER", "otlp,console")],
            &Overrides::default(),
        )
        .unwrap();
        assert!(c.console);
        assert_eq!(c.otlp.unwrap().endpoint, "http://localhost:4318/v1/traces");
        let c = cfg(
            &[
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"),
            ],
            &Overrides::default(),
        )
        .unwrap();
        assert!(!c.console && c.otlp.is_none());
        let e = cfg(&[("OTEL_TRACES_EXPORTER", "zipkin")], &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("zipkin"), "{e}");
        assert!(cfg(
            &[("OTEL_TRACES_EXPORTER", "none,otlp")],
            &Overrides::default()
        )
        .is_err());
        let c = cfg(
            &[("OTEL_TRACES_EXPORTER", "console")],
            &Overrides {
                console: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!c.console, "the flag wins");
    }

    #[test]
    fn headers_percent_decoded_and_merged() {
        let c = cfg(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "Authorization=Basic%20abc%3D, x-a = 1",
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-a=2"),
            ],
            &Overrides {
                otlp_headers: vec![("x-b".into(), "3".into())],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.otlp.unwrap().headers,
            vec![
                ("authorization".into(), "Basic abc=".into()),
                ("x-a".into(), "2".into()),
                ("x-b".into(), "3".into())
            ]
        );
    }

    #[test]
    fn bad_values_are_sentences() {
        for (k, v) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://secure:4318"),
        ] {
            let e = cfg(
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"), (k, v)],
                &Overrides::default(),
            )
            .unwrap_err();
            let msg = e.to_string();
            assert!(!msg.contains('\n') && msg.len() > 20, "{k}={v}: {msg}");
        }
    }

    #[test]
    fn bsp_and_sdk_disabled() {
        let c = cfg(
            &[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
                ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.batch.max_queue_size, 10);
        assert_eq!(c.batch.schedule_delay, Duration::from_millis(50));
        let c = cfg(
            &[("OTEL_SDK_DISABLED", "true")],
            &Overrides {
                json_file: Some("/tmp/x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!c.console && c.json_file.is_none() && c.otlp.is_none());
    }

    #[test]
    fn resource_service_name_precedence() {
        let exe = Path::new("/srv/bin/orders");
        let attrs = vec![
            ("service.name".to_owned(), "from-attrs".to_owned()),
            ("deployment.environment.name".to_owned(), "prod".to_owned()),
        ];
        let r = build_resource(7, exe, "go1.26.8", None, &[]);
        assert_eq!(r.service_name(), "orders");
        assert_eq!(r.get(sc::PROCESS_PID), Some(&Value::Int(7)));
        assert_eq!(r.get(sc::PROCESS_RUNTIME_NAME), Some(&Value::from("go")));
        assert_eq!(
            r.get(sc::PROCESS_RUNTIME_VERSION),
            Some(&Value::from("go1.26.8"))
        );
        assert_eq!(
            r.get(sc::PROCESS_EXECUTABLE_PATH),
            Some(&Value::from("/srv/bin/orders"))
        );
        assert_eq!(
            r.get(sc::TELEMETRY_DISTRO_NAME),
            Some(&Value::from("gotap"))
        );
        assert!(r.get(sc::HOST_NAME).is_some());
        assert_eq!(
            build_resource(7, exe, "", None, &attrs).service_name(),
            "from-attrs"
        );
        let r = build_resource(7, exe, "", Some("env-name"), &attrs);
        assert_eq!(r.service_name(), "env-name");
        assert_eq!(
            r.get("deployment.environment.name"),
            Some(&Value::from("prod"))
        );

        let vars = [
            ("OTEL_SERVICE_NAME", "svc"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x,team=a%2Cb"),
        ];
        let c = cfg(&vars, &Overrides::default()).unwrap();
        assert_eq!(
            c.resource_for_process(1, exe, "go1.19.8", None)
                .service_name(),
            "svc"
        );
        assert_eq!(
            c.resource_for_process(1, exe, "go1.19.8", Some("flag"))
                .service_name(),
            "flag"
        );
        assert_eq!(
            c.resource_for_process(1, exe, "go1.19.8", None).get("team"),
            Some(&Value::from("a,b"))
        );
    }
}
