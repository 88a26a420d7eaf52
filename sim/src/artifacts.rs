//! Locates the canister Wasm that `scripts/build.sh` writes to `artifacts/` at the workspace root.

use std::path::PathBuf;

/// The workspace's `artifacts/` folder (overridable with `IC_SIM_ARTIFACTS`).
pub fn dir() -> PathBuf {
    match std::env::var_os("IC_SIM_ARTIFACTS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("artifacts"),
    }
}

/// Reads `artifacts/<name>.wasm.gz` (gzipped Wasm as it is installed on the IC).
/// Panics with the command to run when the artifact was not built.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.wasm.gz"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build the canisters first with `scripts/build.sh`",
            path.display()
        )
    })
}
