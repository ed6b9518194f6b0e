//! database/sql's probe sites of `gotap build --probes` (the fragment in probes/): compiled into
//! gotap-binary as `crate::usdt::libs::databasesql` (crates/gotap-binary/build.rs, from
//! instrumentations/registry.txt). The USDT notes gotap writes after linking, the BPF program
//! the site gets, and its line in `gotap probes bpftrace`. The event layout is in
//! crates/gotap-ebpf/layout/records.json.
use crate::usdt::{
    BatchSite, BpftraceRow, LibSite, SiteDef, GOTAP_ARGS, GOTAP_BATCH_ARGS, GOTAP_PROVIDER,
};

pub const SITES: &[LibSite] = &[LibSite {
    def: SiteDef {
        provider: GOTAP_PROVIDER,
        name: "sql_query",
        function: "database/sql.gotapProbeSQLQuery",
        args: GOTAP_ARGS,
    },
    program: "site_sql_query",
    instrumentation: "database/sql",
    // probes/gotap_probes.go: database/sql's own semaphore.
    semaphore: b"gotap-sema-sql",
    // A failed query's record has the error's Go type where a server record has the Host.
    bpftrace: BpftraceRow {
        format: r#"sql %s query=\"%s\" failed=%d duration_us=%d error=\"%s\" error_type=\"%s\""#,
        args: "str(arg0, arg1), str(arg2, arg3), arg4, arg5 / 1000, str($a6, $a7), str($r->host_ptr, $r->host_len)",
    },
}];

pub const BATCH: Option<BatchSite> = Some(BatchSite {
    def: SiteDef {
        provider: GOTAP_PROVIDER,
        name: "sql_batch",
        function: "database/sql.gotapProbeBatch",
        args: GOTAP_BATCH_ARGS,
    },
    prefix: "sql_",
    package: 2,
});
