//! Dev tool behind `scripts/gen-offsets.sh`: measures table rows from the DWARF of unstripped
//! builds of go/offsetgen and writes the offsets table.
//!
//! Usage: gen_offsets TABLE.json GOVERSION=BINARY...
//! Rows for versions not given are kept from TABLE.json if it exists (so a machine lacking one
//! toolchain does not drop its row); fields no longer in `offsets::ALL` are dropped.
use std::process::ExitCode;

use gotap_binary::offsets::Table;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_offsets: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: gen_offsets TABLE.json GOVERSION=BINARY...")?;
    let mut table: Table = match std::fs::read_to_string(&out) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{out}: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::default(),
        Err(e) => return Err(format!("{out}: {e}")),
    };
    for arg in args {
        let (version, path) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?} is not GOVERSION=BINARY"))?;
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let row = Table::measure(&bytes, version).map_err(|e| format!("{path}: {e}"))?;
        eprintln!("gen_offsets: {} row measured with {version}", row.go);
        table.upsert(row);
    }
    table.retain_registered();
    std::fs::write(&out, table.to_json()).map_err(|e| format!("{out}: {e}"))
}
