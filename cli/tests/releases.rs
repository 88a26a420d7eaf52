//! `deployer release` against a local network with the real deployer Wasm: upload (and resume
//! after the CLI was killed), list, show, download (verified), delete; and bad input.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use deployer_client::modules::{sha256, wasm_module};
use support::*;

#[test]
fn a_release_is_uploaded_listed_shown_downloaded_and_deleted() {
    let net = TestNetwork::start("release-cycle", 20);
    let module = std::fs::read(artifact("child_v2")).unwrap();
    let uploaded = net
        .admin(&[
            "release",
            "upload",
            &artifact("child_v2"),
            "--name",
            "child",
            "--version",
            "2.0.0",
            "--notes",
            "second",
            "--json",
        ])
        .ok()
        .json();
    let hash = hex::encode(sha256(&module));
    assert_eq!(uploaded["sha256"], hash.as_str());
    assert_eq!(uploaded["notes"], "second");
    assert_eq!(uploaded["upload"]["chunks_sent"], 1);

    // Anyone reads the catalogue.
    let listed = net.run(None, &["release", "list", "--json"]).ok().json();
    assert_eq!(listed[0]["version"], "2.0.0");
    net.run(None, &["release", "list"])
        .ok()
        .stdout_has("child")
        .stdout_has(&hash[..16]);
    for selector in [hash.as_str(), "child@2.0.0"] {
        let shown = net
            .run(None, &["release", "show", selector, "--json"])
            .ok()
            .json();
        assert_eq!(shown["summary"]["sha256"], hash.as_str());
    }

    let out = net.dir.join("child.wasm.gz");
    let downloaded = net
        .run(
            None,
            &[
                "release",
                "download",
                "child@2.0.0",
                "-o",
                out.to_str().unwrap(),
                "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(downloaded["verified"], true);
    assert_eq!(std::fs::read(&out).unwrap(), module);

    let blessed = net
        .admin(&["release", "bless", "child@2.0.0", "--json"])
        .ok()
        .json();
    assert!(blessed["blessing"]["blessed_at"].is_u64(), "{blessed}");
    net.run(None, &["release", "show", "child@2.0.0"])
        .ok()
        .stdout_has("blessed  20");
    net.admin(&["release", "unbless", "child@2.0.0"])
        .ok()
        .stdout_has("blessed  no");

    net.admin(&["release", "delete", "child@2.0.0"])
        .ok()
        .stdout_has("deleted child@2.0.0");
    net.run(None, &["release", "show", &hash])
        .code(3)
        .stderr_has("ReleaseNotFound");
}

#[test]
fn an_upload_killed_midway_sends_only_the_missing_chunks_when_started_again() {
    let net = TestNetwork::start("release-resume", 40);
    let module = wasm_module(12 * 1024 * 1024, 7);
    let file = net.file("big.wasm", &module);
    let args = [
        "release",
        "upload",
        file.as_str(),
        "--name",
        "big",
        "--version",
        "1",
    ];

    let mut first = net
        .command(Some(&net.admin.path))
        .args(args)
        .args(["--parallel", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sent = 0;
    for line in BufReader::new(first.stderr.take().unwrap()).lines() {
        if line.unwrap().starts_with("sent chunk") {
            sent += 1;
            if sent == 3 {
                break;
            }
        }
    }
    assert_eq!(sent, 3, "the first run sent chunks");
    first.kill().unwrap();
    assert!(!first.wait().unwrap().success());

    let second = net.admin(&[&args[..], &["--json"]].concat()).ok().json();
    let upload = &second["upload"];
    assert_eq!(upload["chunks"], 12);
    let resumed = upload["chunks_resumed"].as_u64().unwrap();
    assert!((3..12).contains(&resumed), "{upload}");
    assert_eq!(upload["chunks_sent"].as_u64().unwrap(), 12 - resumed);
    assert_eq!(second["sha256"], hex::encode(sha256(&module)).as_str());

    // Released now: another run sends nothing and gives the same release.
    let third = net.admin(&[&args[..], &["--json"]].concat()).ok().json();
    assert_eq!(third["sha256"], second["sha256"]);
    assert_eq!(third["upload"]["chunks_sent"], 0);

    let out = net.dir.join("big.out");
    net.run(
        None,
        &["release", "download", "big@1", "-o", out.to_str().unwrap()],
    )
    .ok()
    .stdout_has("SHA-256 verified");
    assert_eq!(std::fs::read(&out).unwrap(), module);
}

#[test]
fn bad_release_input_is_refused_with_a_message_and_its_own_status() {
    let net = TestNetwork::start("release-input", 20);
    let upload =
        |file: &str| net.admin(&["release", "upload", file, "--name", "x", "--version", "1"]);
    upload("no-such-file.wasm")
        .code(2)
        .stderr_has("no-such-file.wasm");
    let text = net.file("notes.txt", b"this is not wasm");
    upload(&text).code(2).stderr_has("not a Wasm module");

    net.run(None, &["release", "show", "abc123"])
        .code(2)
        .stderr_has("64 hex digits");
    net.run(None, &["release", "show", &"00".repeat(32)])
        .code(3)
        .stderr_has("ReleaseNotFound");
    let refused = net
        .run(
            None,
            &["release", "download", "child@9.9", "-o", "x", "--json"],
        )
        .code(3);
    let json = refused.json();
    assert_eq!(json["error"], "refused");
    assert!(json["kind"]["ReleaseNotFound"].is_object(), "{json}");
    assert!(!net.dir.join("x").exists());

    // A caller without a role: the deployer's message filter refuses the upload.
    let module = net.file("small.wasm", &wasm_module(1000, 1));
    net.run(
        None,
        &[
            "release",
            "upload",
            &module,
            "--name",
            "x",
            "--version",
            "1",
        ],
    )
    .code(4)
    .stderr_has("rejected");
}
