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
    /// The gotap strategies that trace this library (see [`Strategy`]).
    pub strategies: &'static [Strategy],
}

/// A way gotap traces a library: as `gotap inspect` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// `gotap run` / `gotap attach` on the unmodified binary (function uprobes).
    Uprobes,
    /// `gotap build`.
    Woven,
    /// `gotap build --probes` + `gotap run`.
    ProbeSites,
}

impl Strategy {
    pub fn label(self) -> &'static str {
        match self {
            Strategy::Uprobes => "uprobes",
            Strategy::Woven => "woven",
            Strategy::ProbeSites => "probe sites",
        }
    }
}

/// How a binary is already instrumented by gotap, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltWith {
    /// Neither woven nor with probe sites: traced, if at all, by uprobes.
    Plain,
    /// `gotap build`: it exports its own spans (`gotap run` refuses it).
    Woven,
    /// `gotap build --probes`: `gotap run` traces it through its sites.
    ProbeSites,
}

/// The module `gotap build` links into every binary it weaves.
pub const WOVEN_RUNTIME_MODULE: &str = "gotap.dev/gotaprt";

pub fn built_with(bin: &GoBinary) -> BuiltWith {
    let prefix = format!("{WOVEN_RUNTIME_MODULE}.");
    if bin.build_info().module(WOVEN_RUNTIME_MODULE).is_some()
        || bin.functions().iter().any(|f| f.name.starts_with(&prefix))
    {
        return BuiltWith::Woven;
    }
    let sites = crate::usdt::read_probes(bin.data())
        .is_ok_and(|ps| ps.iter().any(|p| p.provider == "gotap"));
    if sites {
        BuiltWith::ProbeSites
    } else {
        BuiltWith::Plain
    }
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
    pub strategies: &'static [Strategy],
}

const ALL: &[Strategy] = &[Strategy::Uprobes, Strategy::Woven, Strategy::ProbeSites];
const COMPILE_TIME: &[Strategy] = &[Strategy::Woven, Strategy::ProbeSites];

pub const TABLE: &[Spec] = &[
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
    Spec {
        name: "database/sql",
        requires: Requirement::AnyFunction(&[
            "database/sql.(*DB).QueryContext",
            "database/sql.(*DB).ExecContext",
            "database/sql.(*DB).queryDC",
            "database/sql.(*DB).execDC",
        ]),
        strategies: COMPILE_TIME,
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
        strategies: COMPILE_TIME,
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
        strategies: COMPILE_TIME,
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
        strategies: spec.strategies,
    }
}
