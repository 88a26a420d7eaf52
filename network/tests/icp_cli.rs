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

/// The `icp` CLI with an identity of its own (`operator`), and a local network started with that
/// identity as its first controller: the deployer's admin, a controller of every fixture.
struct Session {
    icp: Icp,
    _server: Server,
    description: serde_json::Value,
    network: [String; 4],
}

impl Session {
    fn start(name: &str) -> Session {
        let bin = std::env::var_os("ICP_BIN")
            .expect("ICP_BIN names the icp binary")
            .into();
        let home = std::env::temp_dir().join(format!("icp-home-{name}-{}", std::process::id()));
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
        let (server, description) = start_server(&state_file, principal);
        let text = |key: &str| description[key].as_str().unwrap().to_string();
        let network = ["-n".into(), text("url"), "-k".into(), text("root_key")];
        Session {
            icp,
            _server: server,
            description,
            network,
        }
    }

    /// Runs `icp` on the local network.
    fn run(&self, args: &[&str]) -> String {
        let network = self.network.iter().map(String::as_str);
        self.icp
            .run(&args.iter().copied().chain(network).collect::<Vec<_>>())
    }

    fn deployer(&self) -> String {
        self.description["deployer"].as_str().unwrap().to_string()
    }

    fn fixture(&self, name: &str) -> String {
        self.description["fixtures"][name]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.icp.home);
    }
}

fn module_hash_hex(artifact: &str) -> String {
    hex::encode(Sha256::digest(ic_sim::artifacts::wasm(artifact)))
}

#[test]
#[ignore = "needs the icp binary: set ICP_BIN"]
fn icp_calls_inspects_and_upgrades_canisters_on_the_local_network() {
    let session = Session::start("calls");
    let run = |args: &[&str]| session.run(args);
    let (deployer, child) = (session.deployer(), session.fixture("child_1"));

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
}

/// Issue 18: `icp canister snapshot download --proxy <deployer>` reads a child's snapshot
/// through the deployer's proxy interface; `upload --proxy` writes it into another child the
/// same way; loaded there, that child holds the first one's state. The deployer's audit log
/// shows the calls it forwarded.
#[test]
#[ignore = "needs the icp binary: set ICP_BIN"]
fn icp_downloads_and_uploads_a_childs_snapshot_through_the_deployers_proxy() {
    let session = Session::start("proxy");
    let run = |args: &[&str]| session.run(args);
    let deployer = session.deployer();
    let (source, target) = (session.fixture("child_1"), session.fixture("child_2"));
    run(&[
        "canister",
        "call",
        &deployer,
        "adopt_children",
        &format!(
            "(record {{ canister_ids = vec {{ principal \"{source}\"; principal \"{target}\" }}; \
             subnet = null; labels = vec {{}} }})"
        ),
    ]);
    for _ in 0..3 {
        run(&["canister", "call", &source, "increment", "()"]);
    }
    let counter = run(&["canister", "call", &source, "counter", "()", "--query"]);
    run(&["canister", "stop", &source]);
    let snapshot = run(&["canister", "snapshot", "create", &source, "--quiet"]);
    let snapshot = snapshot.trim();
    run(&["canister", "start", &source]);
    run(&["canister", "call", &source, "increment", "()"]);

    let dir = session.icp.home.join("snapshot");
    let dir = dir.to_str().unwrap();
    run(&[
        "canister", "snapshot", "download", &source, snapshot, "-o", dir, "--proxy", &deployer,
    ]);
    for file in [
        "metadata.json",
        "wasm_module.bin",
        "wasm_memory.bin",
        "stable_memory.bin",
    ] {
        assert!(Path::new(dir).join(file).exists(), "{file} downloaded");
    }
    let module = std::fs::read(Path::new(dir).join("wasm_module.bin")).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&module)),
        module_hash_hex("child_v1")
    );

    let uploaded = run(&[
        "canister", "snapshot", "upload", &target, "-i", dir, "--quiet", "--proxy", &deployer,
    ]);
    run(&["canister", "stop", &target]);
    run(&["canister", "snapshot", "restore", &target, uploaded.trim()]);
    run(&["canister", "start", &target]);
    assert_eq!(
        run(&["canister", "call", &target, "counter", "()", "--query"]),
        counter,
        "the target holds the source's state at its snapshot"
    );

    let audit = run(&[
        "canister",
        "call",
        &deployer,
        "list_proxy_calls",
        "(record { from = null; limit = null })",
        "--query",
    ]);
    for method in [
        "read_canister_snapshot_metadata",
        "read_canister_snapshot_data",
        "upload_canister_snapshot_metadata",
        "upload_canister_snapshot_data",
    ] {
        assert!(
            audit.contains(method),
            "{method} went through the proxy: {audit}"
        );
    }
}
