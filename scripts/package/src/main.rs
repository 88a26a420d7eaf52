//! `wasm-package <input.wasm> <service.did> <endpoints.hidden> <output.wasm.gz>`: see the library docs
//! for what packaging does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, did, hidden, output] = args.as_slice() else {
        eprintln!(
            "usage: wasm-package <input.wasm> <service.did> <endpoints.hidden> <output.wasm.gz>"
        );
        return ExitCode::from(2);
    };
    match run(input, did, hidden, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wasm-package: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &Path, did: &Path, hidden: &Path, output: &Path) -> Result<(), String> {
    let wasm = std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let service =
        std::fs::read_to_string(did).map_err(|e| format!("cannot read {}: {e}", did.display()))?;
    let packaged = wasm_package::package(&wasm, &service, hidden)
        .map_err(|e| format!("{}: {e}", input.display()))?;
    std::fs::write(output, packaged).map_err(|e| format!("cannot write {}: {e}", output.display()))
}
