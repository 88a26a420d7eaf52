//! The JS agent (`@icp-sdk/core` 6.1.0) against the `local-network` binary: `tests/js/smoke.mjs`
//! run by node. Needs the package installed: `npm install --prefix DIR @icp-sdk/core@6.1.0`, then
//! `JS_AGENT_DIR=DIR cargo test -p ic-local-network --test js_agent -- --ignored`.

mod support;

use std::process::Command;
use support::*;

#[test]
#[ignore = "needs node and @icp-sdk/core: set JS_AGENT_DIR"]
fn the_js_agent_verifies_queries_updates_and_read_state() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("JS_AGENT_DIR").expect("JS_AGENT_DIR holds node_modules/@icp-sdk/core"),
    );
    // ES modules resolve packages from the script's own folder.
    let script = dir.join("local-network-smoke.mjs");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/smoke.mjs"),
        &script,
    )
    .unwrap();
    let state_file = dir.join("local-network.json");
    let (_server, _description) = start_server(&state_file, principal_of(&admin()));
    let output = Command::new("node")
        .arg(&script)
        .arg(&state_file)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for identity in ["ed25519", "p256"] {
        assert!(stdout.contains(&format!(
            "{identity}: query, update and read_state verified"
        )));
    }
    std::fs::remove_file(script).unwrap();
}
