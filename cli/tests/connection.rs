//! How the CLI reaches a deployer: `local`, a URL with its root key (hex or a file), identities
//! from PEM files (Ed25519, secp256k1) or anonymous; an unreachable network and a caller
//! without a role each get their own exit status.

mod support;

use support::*;

#[test]
fn networks_root_keys_and_identities() {
    let net = TestNetwork::start("connection", 20);
    let url_args = |key: &str| {
        vec![
            "--network".to_string(),
            net.url.clone(),
            "--root-key".to_string(),
            key.to_string(),
            "--canister".to_string(),
            net.deployer.to_text(),
        ]
    };
    let whoami = |identity: Option<&std::path::Path>, extra: &[String]| {
        let mut args: Vec<&str> = extra.iter().map(String::as_str).collect();
        args.extend(["whoami", "--json"]);
        net.run(identity, &args).ok().json()
    };
    assert_eq!(whoami(Some(&net.admin.path), &[])["roles"][0], "Admin");
    let by_hex = whoami(Some(&net.admin.path), &url_args(&net.root_key));
    assert_eq!(by_hex["principal"], net.admin.principal.to_text().as_str());
    let key_file = net.file("root.key", net.root_key.as_bytes());
    whoami(None, &url_args(&key_file));
    whoami(None, &url_args("fetch"));

    // A secp256k1 identity, granted a role by the admin.
    let secp = secp256k1_pem(&net.dir, "operator", 9);
    let me = whoami(Some(&secp.path), &[]);
    assert_eq!(me["principal"], secp.principal.to_text().as_str());
    assert_eq!(me["roles"], serde_json::json!([]));
    net.run(Some(&secp.path), &["fleet", "list"])
        .code(3)
        .stderr_has("NotAuthorized");
    net.admin(&["role", "add", &secp.principal.to_text(), "viewer"])
        .ok();
    net.run(Some(&secp.path), &["fleet", "list"]).ok();
    let named_by_env = net
        .command(None)
        .env("DEPLOYER_IDENTITY", &secp.path)
        .args(["whoami", "--json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&named_by_env.stdout).contains("Viewer"));
}

#[test]
fn bad_connections_are_told_apart_from_refusals() {
    let net = TestNetwork::start("connection-bad", 20);
    // Nothing listens on port 9 of loopback.
    net.run(
        None,
        &[
            "--network",
            "http://127.0.0.1:9",
            "--root-key",
            &net.root_key,
            "--canister",
            &net.deployer.to_text(),
            "release",
            "list",
        ],
    )
    .code(5)
    .stderr_has("network");
    let json = net
        .run(
            None,
            &[
                "--network",
                "http://127.0.0.1:9",
                "--root-key",
                &net.root_key,
                "--canister",
                &net.deployer.to_text(),
                "release",
                "list",
                "--json",
            ],
        )
        .code(5)
        .json();
    assert_eq!(json["error"], "transport");
    net.run(None, &["--network", &net.url, "release", "list"])
        .code(2)
        .stderr_has("--root-key");
    net.run(None, &["--network", "mainnet", "release", "list"])
        .code(2);
    net.run(None, &["--local-file", "elsewhere.json", "release", "list"])
        .code(2)
        .stderr_has("elsewhere.json");
    let bad_pem = net.file(
        "bad.pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    net.run(Some(std::path::Path::new(&bad_pem)), &["whoami"])
        .code(2)
        .stderr_has("bad.pem");
    net.run(None, &["--canister", "aaaaa-aa-x", "whoami"])
        .code(2);
}
