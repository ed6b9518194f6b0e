//! database/sql's row of `gotap inspect`: compiled into gotap-binary as
//! `crate::instrumentations::libs::databasesql` (crates/gotap-binary/build.rs, from
//! instrumentations/registry.txt). Any of the functions queries and execs go through.
use crate::instrumentations::{Requirement, Spec, ALL};

pub const SPECS: &[Spec] = &[Spec {
    name: "database/sql",
    requires: Requirement::AnyFunction(&[
        "database/sql.(*DB).QueryContext",
        "database/sql.(*DB).ExecContext",
        "database/sql.(*DB).queryDC",
        "database/sql.(*DB).execDC",
    ]),
    strategies: ALL,
}];
