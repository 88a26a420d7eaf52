//! The packaged deployer Wasm names no path of the machine that built it, so the same commit
//! builds the same bytes in any checkout and cargo home (`scripts/build.sh` remaps them): a
//! voter rebuilds a release and compares its hash with the one proposed.

use std::path::Path;

use deployer_client::modules::gunzip;

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn the_deployer_wasm_names_neither_its_checkout_nor_its_cargo_home() {
    let wasm = gunzip(&ic_sim::artifacts::wasm("deployer"));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .canonicalize()
        .unwrap();
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap()));
    for path in [workspace.display().to_string(), cargo_home] {
        assert!(
            !holds(&wasm, path.as_bytes()),
            "the deployer's Wasm names {path}: build it with scripts/build.sh"
        );
    }
    // Panic locations still name their files, relative to the remapped roots.
    assert!(holds(&wasm, b"/cargo/registry/"));
}
