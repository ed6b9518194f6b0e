//! grpc's probe sites of `gotap build --probes` (the fragment in probes/): compiled into
//! gotap-binary as `crate::usdt::libs::grpc` (crates/gotap-binary/build.rs, from
//! instrumentations/registry.txt). The USDT notes gotap writes after linking, the BPF program
//! each site gets, and its line in `gotap probes bpftrace`. The event layouts are in
//! crates/gotap-ebpf/layout/records.json.
use crate::usdt::{
    BatchSite, BpftraceRow, LibSite, SiteDef, GOTAP_ARGS, GOTAP_BATCH_ARGS, GOTAP_PROVIDER,
};

/// probes/gotap_probes.go: grpc's own semaphore, shared by its two sites.
const SEMAPHORE: &[u8] = b"gotap-sema-rpc";

pub const SITES: &[LibSite] = &[
    LibSite {
        def: SiteDef {
            provider: GOTAP_PROVIDER,
            name: "grpc_server",
            function: "google.golang.org/grpc.gotapProbeGRPCServer",
            args: GOTAP_ARGS,
        },
        program: "site_grpc_server",
        instrumentation: "grpc server",
        semaphore: SEMAPHORE,
        bpftrace: BpftraceRow {
            format: r#"grpc-server %s peer=%s code=%d duration_us=%d message=\"%s\""#,
            args: "str(arg0, arg1), str(arg2, arg3), arg4, arg5 / 1000, str($a6, $a7)",
        },
    },
    LibSite {
        def: SiteDef {
            provider: GOTAP_PROVIDER,
            name: "grpc_client",
            function: "google.golang.org/grpc.gotapProbeGRPCClient",
            args: GOTAP_ARGS,
        },
        program: "site_grpc_client",
        instrumentation: "grpc client",
        semaphore: SEMAPHORE,
        bpftrace: BpftraceRow {
            format: r#"grpc-client %s target=%s code=%d duration_us=%d message=\"%s\""#,
            args: "str(arg0, arg1), str(arg2, arg3), arg4, arg5 / 1000, str($a6, $a7)",
        },
    },
];

pub const BATCH: Option<BatchSite> = Some(BatchSite {
    def: SiteDef {
        provider: GOTAP_PROVIDER,
        name: "grpc_batch",
        function: "google.golang.org/grpc.gotapProbeBatch",
        args: GOTAP_BATCH_ARGS,
    },
    prefix: "grpc_",
    package: 3,
});
