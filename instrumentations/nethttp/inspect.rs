//! net/http's rows of `gotap inspect`: compiled into gotap-binary as
//! `crate::instrumentations::libs::nethttp` (crates/gotap-binary/build.rs, from
//! instrumentations/registry.txt). The server is found by the function every server request goes
//! through, the client by the one every round trip goes through.
use crate::instrumentations::{Requirement, Spec, ALL};

pub const SPECS: &[Spec] = &[
    Spec {
        name: "net/http server",
        requires: Requirement::AnyFunction(&["net/http.serverHandler.ServeHTTP"]),
        strategies: ALL,
    },
    Spec {
        name: "net/http client",
        requires: Requirement::AnyFunction(&["net/http.(*Transport).roundTrip"]),
        strategies: ALL,
    },
];
