//! google.golang.org/grpc's rows of `gotap inspect`: compiled into gotap-binary as
//! `crate::instrumentations::libs::grpc` (crates/gotap-binary/build.rs, from
//! instrumentations/registry.txt). The module must be a dependency and its server or client side
//! linked in: a program may require grpc and use one side only.
use crate::instrumentations::{Requirement, Spec, ALL};

pub const SPECS: &[Spec] = &[
    Spec {
        name: "grpc server",
        requires: Requirement::Module {
            path: "google.golang.org/grpc",
            functions: &[
                "google.golang.org/grpc.(*Server).handleStream",
                "google.golang.org/grpc.(*Server).processUnaryRPC",
            ],
        },
        strategies: ALL,
    },
    Spec {
        name: "grpc client",
        requires: Requirement::Module {
            path: "google.golang.org/grpc",
            functions: &[
                "google.golang.org/grpc.(*ClientConn).Invoke",
                "google.golang.org/grpc.invoke",
            ],
        },
        strategies: ALL,
    },
];
