//! `deployer backup child`: a child's snapshot downloaded through the deployer's proxy into the
//! layout `icp canister snapshot download` writes; the `icp` CLI uploads that directory into
//! another child, which then holds the first one's state (needs the binary:
//! `ICP_BIN=/path/to/icp cargo test -p deployer-cli --test backups -- --ignored`).

mod support;

use candid::Principal;
use ic_management_canister_types::{
    ReadCanisterSnapshotMetadataResult, Snapshot, TakeCanisterSnapshotArgs,
};
use ic_sim::scenario::IcEnvExt;
use sha2::{Digest, Sha256};
use support::*;

/// A child of the deployer (the admin controls it too) incremented 3 times, and a snapshot of it.
fn child_with_snapshot(net: &TestNetwork) -> (Principal, Snapshot) {
    let child = net.create_child("child_v1", true);
    net.admin(&["fleet", "adopt", &child.to_text()]).ok();
    let mut network = net.shared.lock();
    let sim = network.sim_mut();
    for _ in 0..3 {
        let _: (u64,) = sim
            .update(net.admin.principal, child, "increment", ())
            .unwrap();
    }
    let (snapshot,): (Snapshot,) = sim
        .update(
            net.admin.principal,
            Principal::management_canister(),
            "take_canister_snapshot",
            (TakeCanisterSnapshotArgs {
                canister_id: child,
                replace_snapshot: None,
                uninstall_code: None,
                sender_canister_version: None,
            },),
        )
        .unwrap();
    (child, snapshot)
}

#[test]
fn a_childs_snapshot_is_written_as_icp_lays_it_out() {
    let net = TestNetwork::start("backup-child", 20);
    let (child, snapshot) = child_with_snapshot(&net);

    let dir = net.dir.join("backup");
    let out = dir.to_str().unwrap();
    let written = net
        .admin(&["backup", "child", &child.to_text(), "-o", out, "--json"])
        .ok()
        .json();
    assert_eq!(written["snapshot_id"], hex::encode(&snapshot.id).as_str());
    let metadata: ReadCanisterSnapshotMetadataResult =
        serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(metadata.taken_at_timestamp, snapshot.taken_at_timestamp);
    let module = std::fs::read(dir.join("wasm_module.bin")).unwrap();
    let installed = std::fs::read(artifact("child_v1")).unwrap();
    assert_eq!(Sha256::digest(&module), Sha256::digest(&installed));
    for (file, size) in [
        ("wasm_memory.bin", metadata.wasm_memory_size),
        ("stable_memory.bin", metadata.stable_memory_size),
    ] {
        assert_eq!(
            std::fs::metadata(dir.join(file)).unwrap().len(),
            size,
            "{file}"
        );
    }
    assert!(dir.join("wasm_chunk_store").is_dir());
    assert_eq!(
        written["bytes"],
        module.len() as u64 + metadata.wasm_memory_size + metadata.stable_memory_size
    );

    // The same snapshot named by its id; a directory with files is refused before any write.
    let named = net.dir.join("named");
    net.admin(&[
        "backup",
        "child",
        &child.to_text(),
        "--snapshot",
        &hex::encode(&snapshot.id),
        "-o",
        named.to_str().unwrap(),
    ])
    .ok()
    .stdout_has("written to");
    assert_eq!(
        std::fs::read(named.join("stable_memory.bin")).unwrap(),
        std::fs::read(dir.join("stable_memory.bin")).unwrap()
    );
    net.admin(&["backup", "child", &child.to_text(), "-o", out])
        .code(2)
        .stderr_has("is not empty");
    net.admin(&[
        "backup",
        "child",
        &child.to_text(),
        "--snapshot",
        "xyz",
        "-o",
        out,
    ])
    .code(2)
    .stderr_has("expected its id in hex");
    // A child with no snapshot says so; a stranger is refused by the deployer's filter.
    let bare = net.create_child("child_v1", true);
    net.admin(&["fleet", "adopt", &bare.to_text()]).ok();
    let empty = net.dir.join("empty");
    net.admin(&[
        "backup",
        "child",
        &bare.to_text(),
        "-o",
        empty.to_str().unwrap(),
    ])
    .code(2)
    .stderr_has("has no snapshot");
    net.run(
        None,
        &[
            "backup",
            "child",
            &child.to_text(),
            "-o",
            empty.to_str().unwrap(),
        ],
    )
    .code(4);
}

/// A deployer installed fresh on the network, with the admin as its admin.
fn fresh_deployer(net: &TestNetwork) -> Principal {
    let mut network = net.shared.lock();
    let sim = network.sim_mut();
    let deployer = sim.create_canister(0, vec![net.admin.principal]);
    let init = deployer::InitArg {
        admins: Some(vec![net.admin.principal]),
        ..Default::default()
    };
    sim.install_code(
        net.admin.principal,
        deployer,
        &ic_sim::artifacts::wasm("deployer"),
        candid::encode_one(init).unwrap(),
        ic_sim::InstallMode::Install,
    )
    .unwrap();
    deployer
}

#[test]
fn the_deployers_state_is_exported_to_a_directory_and_restored_into_a_fresh_deployer() {
    let net = TestNetwork::start("backup-state", 20);
    fleet_and_release(&net, &[net.child_1.to_text(), net.child_2.to_text()]);
    let dir = net.dir.join("state");
    let out = dir.to_str().unwrap();
    let exported = net
        .admin(&["backup", "export", "-o", out, "--json"])
        .ok()
        .json();
    assert_eq!(exported["chunks_reused"], 0);
    let chunks = exported["chunks"].as_u64().unwrap();
    assert!(chunks >= 2, "{exported}");
    assert_eq!(
        std::fs::read_dir(dir.join("chunks")).unwrap().count() as u64,
        chunks
    );
    // Into the same directory again: the chunks are there, none is downloaded.
    let again = net
        .admin(&["backup", "export", "-o", out, "--json"])
        .ok()
        .json();
    assert_eq!(again["chunks_reused"].as_u64(), Some(chunks));

    // Not into a deployer that holds state.
    net.admin(&["backup", "restore", out])
        .code(3)
        .stderr_has("freshly installed deployer");
    let fresh = fresh_deployer(&net);
    let restored = net
        .admin(&[
            "--canister",
            &fresh.to_text(),
            "backup",
            "restore",
            out,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(restored["exported_at"], again["exported_at"]);
    let releases = |canister: &str| {
        net.admin(&["--canister", canister, "release", "list", "--json"])
            .ok()
            .json()
    };
    assert_eq!(
        releases(&fresh.to_text()),
        releases(&net.deployer.to_text())
    );
    let children = |canister: &str| {
        net.admin(&["--canister", canister, "fleet", "list", "--json"])
            .ok()
            .json()
    };
    assert_eq!(
        children(&fresh.to_text()),
        children(&net.deployer.to_text())
    );

    // A directory that is not a backup is refused before any call.
    net.admin(&["backup", "restore", net.dir.to_str().unwrap()])
        .code(2)
        .stderr_has("manifest.bin");
}

#[test]
#[ignore = "needs the icp binary: set ICP_BIN"]
fn icp_uploads_a_backup_into_another_child_which_then_holds_the_first_ones_state() {
    let icp_bin = std::env::var_os("ICP_BIN").expect("ICP_BIN names the icp binary");
    let net = TestNetwork::start("backup-icp", 20);
    let (child, _) = child_with_snapshot(&net);
    let dir = net.dir.join("backup");
    net.admin(&[
        "backup",
        "child",
        &child.to_text(),
        "-o",
        dir.to_str().unwrap(),
    ])
    .ok();
    let target = net.create_child("child_v1", true);
    net.admin(&["fleet", "adopt", &target.to_text()]).ok();

    let home = net.dir.join("icp-home");
    std::fs::create_dir_all(&home).unwrap();
    let icp = |args: &[&str]| -> String {
        let network = ["-n", &net.url, "-k", &net.root_key];
        let mut command = std::process::Command::new(&icp_bin);
        command
            .env("HOME", &home)
            .env("DO_NOT_TRACK", "1")
            .args(args);
        if !matches!(args.first(), Some(&"identity")) {
            command.args(network);
        }
        let output = command.output().expect("run icp");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "icp {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let pem = net.admin.path.to_str().unwrap();
    icp(&[
        "identity",
        "import",
        "admin",
        "--from-pem",
        pem,
        "--storage",
        "plaintext",
    ]);
    icp(&["identity", "default", "admin"]);
    let deployer = net.deployer.to_text();
    let target = target.to_text();
    let counter = |canister: &str| icp(&["canister", "call", canister, "counter", "()", "--query"]);
    let source_counter = counter(&child.to_text());
    assert_ne!(
        counter(&target),
        source_counter,
        "a fresh child counts 0, the source 3"
    );
    let uploaded = icp(&[
        "canister",
        "snapshot",
        "upload",
        &target,
        "-i",
        dir.to_str().unwrap(),
        "--quiet",
        "--proxy",
        &deployer,
    ]);
    icp(&["canister", "stop", &target]);
    icp(&["canister", "snapshot", "restore", &target, uploaded.trim()]);
    icp(&["canister", "start", &target]);
    assert_eq!(
        counter(&target),
        source_counter,
        "the target holds the source's state"
    );
}

#[test]
fn a_backup_run_snapshots_each_child_which_backup_child_then_downloads() {
    let net = TestNetwork::start("backup-run", 20);
    let (child, taken_by_admin) = child_with_snapshot(&net);
    let other = net.create_child("child_v1", true);
    net.admin(&["fleet", "adopt", &other.to_text()]).ok();

    // The deployer's default bake between waves is a minute of the network's (wall) clock.
    let policy = net.file("no-bake.toml", b"canary = 1\nbake = \"0s\"\n");
    let watched = net
        .admin(&[
            "backup",
            "run",
            "--stop",
            "--policy",
            &policy,
            "--watch",
            "--interval",
            "0.2",
        ])
        .ok();
    assert!(watched.stdout.contains("ended: Completed"), "{watched:#?}");
    for canister in [child, other] {
        assert!(
            watched
                .stdout
                .contains(&format!("{canister} finished: BackedUp")),
            "{watched:#?}"
        );
    }
    let shown = net.admin(&["rollout", "show", "0"]).ok();
    assert!(
        shown
            .stdout
            .contains("a backup run (children stopped for it)")
            && shown.stdout.contains("2 backed up"),
        "{shown:#?}"
    );

    // The newest snapshot of the child is the run's, not the one its other controller took.
    let dir = net.dir.join("after-run");
    let written = net
        .admin(&[
            "backup",
            "child",
            &child.to_text(),
            "-o",
            dir.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_ne!(
        written["snapshot_id"],
        hex::encode(&taken_by_admin.id).as_str()
    );
    assert!(written["taken_at"].as_u64().unwrap() > taken_by_admin.taken_at_timestamp);

    // Restored to the snapshot its other controller took (after 3 increments), the child
    // counts 3 again, though it counted on since.
    let counter = |net: &TestNetwork| -> u64 {
        let mut network = net.shared.lock();
        deployer_client::fleet::child_counter(network.sim_mut(), net.admin.principal, child)
    };
    {
        let mut network = net.shared.lock();
        let _: (u64,) = network
            .sim_mut()
            .update(net.admin.principal, child, "increment", ())
            .unwrap();
    }
    assert_eq!(counter(&net), 4);
    let restored = net
        .admin(&[
            "backup",
            "restore-child",
            &child.to_text(),
            "--snapshot",
            &hex::encode(&taken_by_admin.id),
            "--watch",
            "--interval",
            "0.2",
        ])
        .ok();
    assert!(
        restored
            .stdout
            .contains(&format!("{child} finished: RolledBack")),
        "{restored:#?}"
    );
    assert_eq!(counter(&net), 3);

    // Input the deployer would refuse is refused before any call.
    net.admin(&["backup", "run", "--label", "no-equals-sign"])
        .code(2);
    net.admin(&[
        "backup",
        "restore-child",
        &child.to_text(),
        "--snapshot",
        "xyz",
    ])
    .code(2)
    .stderr_has("expected its id in hex");
}
