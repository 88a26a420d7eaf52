//! The `icp` CLI (npm `@icp-sdk/icp-cli-linux-x64` 1.5.0) against the `local-network` binary:
//! calls, status, metadata and an upgrade install, as an operator runs them. Needs the binary:
//! `ICP_BIN=/path/to/icp cargo test -p ic-local-network --test icp_cli -- --ignored`.

mod support;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

struct Icp {
    bin: PathBuf,
    home: PathBuf,
}

impl Icp {
    /// Runs `icp` with its own home (identities) and telemetry off; panics unless it succeeds.
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(&self.bin)
            .args(args)
            .env("HOME", &self.home)
            .env("DO_NOT_TRACK", "1")
            .output()
            .expect("run icp");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "icp {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

fn module_hash_hex(artifact: &str) -> String {
    hex::encode(Sha256::digest(ic_sim::artifacts::wasm(artifact)))
}

#[test]
#[ignore = "needs the icp binary: set ICP_BIN"]
fn icp_calls_inspects_and_upgrades_canisters_on_the_local_network() {
    let bin = std::env::var_os("ICP_BIN")
        .expect("ICP_BIN names the icp binary")
        .into();
    let home = std::env::temp_dir().join(format!("icp-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let icp = Icp { bin, home };
    icp.run(&[
        "identity",
        "new",
        "operator",
        "--storage",
        "plaintext",
        "--quiet",
    ]);
    icp.run(&["identity", "default", "operator"]);
    let principal = icp.run(&["identity", "principal"]);
    let principal = candid::Principal::from_text(principal.trim()).unwrap();

    let state_file = icp.home.join("local-network.json");
    let (_server, description) = start_server(&state_file, principal);
    let text = |key: &str| description[key].as_str().unwrap().to_string();
    let (url, key, deployer) = (text("url"), text("root_key"), text("deployer"));
    let child = description["fixtures"]["child_1"]
        .as_str()
        .unwrap()
        .to_string();
    let network = ["-n", url.as_str(), "-k", key.as_str()];
    let with_network = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(network.iter())
            .map(|a| a.to_string())
            .collect()
    };
    let run = |args: &[&str]| {
        let args = with_network(args);
        icp.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // Updates and queries, the interface read from the candid:service metadata.
    let version = format!("version = \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(run(&["canister", "call", &deployer, "version", "()"]).contains(&version));
    assert!(run(&["canister", "call", &deployer, "version", "()", "--query"]).contains(&version));
    assert!(run(&["canister", "metadata", &deployer, "candid:service"]).contains("add_role"));

    let status = run(&["canister", "status", &child]);
    assert!(status.contains("Status: Running"), "{status}");
    assert!(status.contains(&module_hash_hex("child_v1")), "{status}");

    // Upgrade: canister_status, stop, install_code, start, with the Candid compatibility check.
    let wasm: &Path = &ic_sim::artifacts::dir().join("child_v2.wasm.gz");
    run(&[
        "canister",
        "install",
        &child,
        "--mode",
        "upgrade",
        "--wasm",
        wasm.to_str().unwrap(),
    ]);
    let status = run(&["canister", "status", &child]);
    assert!(status.contains("Status: Running"), "{status}");
    assert!(status.contains(&module_hash_hex("child_v2")), "{status}");
    std::fs::remove_dir_all(&icp.home).unwrap();
}
