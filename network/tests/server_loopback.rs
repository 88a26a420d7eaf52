//! The `local-network` binary over loopback: it starts with the deployer and fixtures
//! installed, describes itself in the JSON file, and ic-agent (reqwest over TCP) calls it with
//! the root key it fetched; rounds run on the server's own clock.

mod support;

use candid::{Decode, Encode, Principal};
use deployer::{Role, VersionInfo};
use std::process::Command;
use support::*;

#[tokio::test]
async fn agents_call_the_deployer_on_the_server_the_binary_starts() {
    let state_file =
        std::env::temp_dir().join(format!("local-network-{}.json", std::process::id()));
    let (server, description) = start_server(&state_file, principal_of(&admin()));
    let url = description["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"));
    let deployer = Principal::from_text(description["deployer"].as_str().unwrap()).unwrap();
    let fixture =
        |name: &str| Principal::from_text(description["fixtures"][name].as_str().unwrap()).unwrap();

    let agent = loopback_agent(url, admin()).await;
    assert_eq!(
        hex::encode(agent.read_root_key()),
        description["root_key"].as_str().unwrap()
    );

    let reply = agent
        .query(&deployer, "version")
        .with_arg(Encode!().unwrap())
        .call()
        .await
        .unwrap();
    Decode!(&reply, VersionInfo).unwrap();
    let viewer = principal_of(&secp256k1_identity(7));
    let reply = agent
        .update(&deployer, "add_role")
        .with_arg(Encode!(&viewer, &Role::Viewer).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    Decode!(&reply, Result<(), deployer::Error>)
        .unwrap()
        .unwrap();

    let candid = agent
        .read_state_canister_metadata(deployer, "candid:service")
        .await
        .unwrap();
    assert!(String::from_utf8(candid).unwrap().contains("add_role"));
    let controllers = agent
        .read_state_canister_controllers(deployer)
        .await
        .unwrap();
    assert!(controllers.contains(&principal_of(&admin())));
    assert!(controllers.contains(&Principal::anonymous()));
    // The children are the deployer's to manage.
    for child in ["child_1", "child_2"] {
        let controllers = agent
            .read_state_canister_controllers(fixture(child))
            .await
            .unwrap();
        assert!(controllers.contains(&deployer), "{child}: {controllers:?}");
    }
    let reply = agent
        .query(&fixture("probe"), "caller")
        .with_arg(Encode!().unwrap())
        .call()
        .await
        .unwrap();
    assert_eq!(Decode!(&reply, Principal).unwrap(), principal_of(&admin()));

    // Stopped (SIGTERM, as `kill` sends), it exits cleanly and removes its description.
    let mut server = server;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").arg(&pid).status().unwrap().success());
    assert!(server.0.wait().unwrap().success());
    assert!(!state_file.exists());
}
