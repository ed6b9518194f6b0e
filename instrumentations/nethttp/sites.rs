//! net/http's probe sites of `gotap build --probes` (the fragment in probes/): compiled into
//! gotap-binary as `crate::usdt::libs::nethttp` (crates/gotap-binary/build.rs, from
//! instrumentations/registry.txt). The USDT notes gotap writes after linking, the BPF program
//! each site gets, and its line in `gotap probes bpftrace`. The event layout of each site kind is
//! in crates/gotap-ebpf/layout/records.json.
use crate::usdt::{
    BatchSite, BpftraceRow, LibSite, SiteDef, GOTAP_ARGS, GOTAP_BATCH_ARGS, GOTAP_PROVIDER,
    GOTAP_SEMAPHORE_MARKER,
};

pub const SITES: &[LibSite] = &[
    LibSite {
        def: SiteDef {
            provider: GOTAP_PROVIDER,
            name: "http_server",
            function: "net/http.gotapProbeHTTPServer",
            args: GOTAP_ARGS,
        },
        program: "site_http_server",
        instrumentation: "net/http server",
        semaphore: GOTAP_SEMAPHORE_MARKER,
        bpftrace: BpftraceRow {
            format: r#"server %s %s status=%d duration_us=%d route=\"%s\""#,
            args: "str(arg0, arg1), str(arg2, arg3), arg4, arg5 / 1000, str($a6, $a7)",
        },
    },
    LibSite {
        def: SiteDef {
            provider: GOTAP_PROVIDER,
            name: "http_client",
            function: "net/http.gotapProbeHTTPClient",
            args: GOTAP_ARGS,
        },
        program: "site_http_client",
        instrumentation: "net/http client",
        semaphore: GOTAP_SEMAPHORE_MARKER,
        bpftrace: BpftraceRow {
            format: r#"client %s %s status=%d duration_us=%d error=\"%s\""#,
            args: "str(arg0, arg1), str(arg2, arg3), arg4, arg5 / 1000, str($a6, $a7)",
        },
    },
];

pub const BATCH: Option<BatchSite> = Some(BatchSite {
    def: SiteDef {
        provider: GOTAP_PROVIDER,
        name: "http_batch",
        function: "net/http.gotapProbeBatch",
        args: GOTAP_BATCH_ARGS,
    },
    prefix: "http_",
    package: 1,
});
