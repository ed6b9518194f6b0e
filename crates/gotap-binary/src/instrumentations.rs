//! Which gotap instrumentations apply to a binary, decided from its functions and modules.
//! Adding one is adding a row to [`TABLE`].
use crate::GoBinary;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instrumentation {
    pub name: &'static str,
    pub applies: bool,
    /// Why: the function found, or the module and its version, or what is missing.
    pub detail: String,
}

/// What must be in the binary for an instrumentation to apply.
#[derive(Debug, Clone, Copy)]
pub enum Requirement {
    /// One of these functions (by exact pclntab name) is present.
    AnyFunction(&'static [&'static str]),
    /// The module is a dependency (its version is reported); if `functions` is not empty, one of
    /// them must also be linked in (a module can be required but its client/server side unused).
    Module {
        path: &'static str,
        functions: &'static [&'static str],
    },
}

pub struct Spec {
    pub name: &'static str,
    pub requires: Requirement,
}

pub const TABLE: &[Spec] = &[
    Spec {
        name: "net/http server",
        requires: Requirement::AnyFunction(&["net/http.serverHandler.ServeHTTP"]),
    },
    Spec {
        name: "net/http client",
        requires: Requirement::AnyFunction(&["net/http.(*Transport).roundTrip"]),
    },
    Spec {
        name: "database/sql",
        requires: Requirement::AnyFunction(&[
            "database/sql.(*DB).QueryContext",
            "database/sql.(*DB).ExecContext",
            "database/sql.(*DB).queryDC",
            "database/sql.(*DB).execDC",
        ]),
    },
    Spec {
        name: "grpc server",
        requires: Requirement::Module {
            path: "google.golang.org/grpc",
            functions: &[
                "google.golang.org/grpc.(*Server).handleStream",
                "google.golang.org/grpc.(*Server).processUnaryRPC",
            ],
        },
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
    },
];

pub fn detect(bin: &GoBinary) -> Vec<Instrumentation> {
    TABLE.iter().map(|spec| check(bin, spec)).collect()
}

fn check(bin: &GoBinary, spec: &Spec) -> Instrumentation {
    let first_present =
        |fns: &[&'static str]| fns.iter().copied().find(|f| bin.function(f).is_some());
    let (applies, detail) = match spec.requires {
        Requirement::AnyFunction(fns) => match first_present(fns) {
            Some(f) => (true, format!("{f} present")),
            None => (false, format!("{} not linked in", fns[0])),
        },
        Requirement::Module { path, functions } => match bin.build_info().module(path) {
            None => (false, format!("module {path} not a dependency")),
            Some(m) => {
                let version = m.replace.as_ref().map_or(&m.version, |r| &r.version);
                match first_present(functions) {
                    _ if functions.is_empty() => (true, format!("{path} {version}")),
                    Some(f) => (true, format!("{path} {version} ({f} present)")),
                    None => (
                        false,
                        format!("{path} {version}, but {} not linked in", functions[0]),
                    ),
                }
            }
        },
    };
    Instrumentation {
        name: spec.name,
        applies,
        detail,
    }
}
