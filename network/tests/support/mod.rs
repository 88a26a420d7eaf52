//! Shared by the ic-agent tests: identities from PEM bytes, a network with the deployer and
//! fixtures, and an agent that reaches it in-process (no socket) or over loopback.

#![allow(dead_code)] // each test file uses its own part of the support

use async_trait::async_trait;
use bytes::Bytes;
use candid::Principal;
use ic_agent::agent::HttpService;
use ic_agent::identity::{BasicIdentity, Prime256v1Identity, Secp256k1Identity};
use ic_agent::{Agent, AgentError, Identity};
use ic_local_network::setup::{install_deployer_and_fixtures, Controllers, Installed};
use ic_local_network::{LocalNetwork, NetworkConfig, RoundDriver, SharedNetwork};
use ic_sim::SimConfig;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// An Ed25519 identity, as `icp identity new` stores it (PKCS #8 PEM).
pub fn ed25519_identity(seed: u8) -> BasicIdentity {
    let key = ic_ed25519::PrivateKey::generate_from_seed(&[seed; 32]);
    let pem = key.serialize_pkcs8_pem(ic_ed25519::PrivateKeyFormat::Pkcs8v1);
    BasicIdentity::from_pem(pem.as_bytes()).expect("Ed25519 PEM")
}

/// A secp256k1 identity from an `EC PRIVATE KEY` PEM (what `icp identity new --key-type
/// secp256k1` and dfx write).
pub fn secp256k1_identity(seed: u8) -> Secp256k1Identity {
    let key = ic_secp256k1::PrivateKey::generate_from_seed(&[seed; 32]);
    Secp256k1Identity::from_pem(key.serialize_rfc5915_pem().as_bytes()).expect("secp256k1 PEM")
}

/// A P-256 identity from an `EC PRIVATE KEY` PEM (the JS agent's `ECDSAKeyIdentity` curve).
pub fn p256_identity(seed: u64) -> Prime256v1Identity {
    let key = ic_secp256r1::PrivateKey::generate_insecure_key_for_testing(seed);
    Prime256v1Identity::from_pem(key.serialize_rfc5915_pem().as_bytes()).expect("P-256 PEM")
}

pub fn principal_of(identity: &dyn Identity) -> Principal {
    identity.sender().expect("identity has a principal")
}

/// The admin and controller of everything the test network installs.
pub fn admin() -> BasicIdentity {
    ed25519_identity(1)
}

pub fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A network whose simulated time starts at the wall clock (agents compare certified times
/// with their own clock), 100 ms rounds, and rounds run only by the requests themselves.
pub fn test_network(sync_call_rounds: u64) -> (Arc<SharedNetwork>, Installed) {
    let mut network = LocalNetwork::new(NetworkConfig {
        sim: SimConfig {
            start_time_nanos: wall_clock_nanos(),
            round_duration_nanos: 100_000_000,
            ..SimConfig::default()
        },
        sync_call_rounds,
    });
    let installed = install_deployer_and_fixtures(
        network.sim_mut(),
        &Controllers {
            installer: principal_of(&admin()),
            others: vec![],
            admins: None,
        },
    );
    (
        SharedNetwork::new(network, RoundDriver::Requests),
        installed,
    )
}

/// ic-agent's HTTP hook answered by the network in-process.
#[derive(Clone)]
pub struct InProcess(pub Arc<SharedNetwork>);

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

#[async_trait]
impl HttpService for InProcess {
    async fn call<'a>(
        &'a self,
        request: &'a (dyn Fn() -> Result<http::Request<Bytes>, AgentError> + Send + Sync),
        _max_retries: usize,
        _size_limit: Option<usize>,
    ) -> Result<http::Response<Bytes>, AgentError> {
        Ok(self.0.handle(request()?).await)
    }
}

/// An agent talking to `network` in-process, with the root key fetched from `/api/v2/status`.
pub async fn in_process_agent(
    network: &Arc<SharedNetwork>,
    identity: impl Identity + 'static,
) -> Agent {
    let builder = Agent::builder()
        .with_url("http://in-process.localhost")
        .with_arc_http_middleware(Arc::new(InProcess(network.clone())));
    with_fetched_root_key(builder, identity).await
}

/// An agent talking to a server at `url`, with the root key fetched.
pub async fn loopback_agent(url: &str, identity: impl Identity + 'static) -> Agent {
    with_fetched_root_key(Agent::builder().with_url(url), identity).await
}

/// The agent `builder` describes, acting as `identity`, with the root key from `/api/v2/status`.
async fn with_fetched_root_key(
    builder: ic_agent::agent::AgentBuilder,
    identity: impl Identity + 'static,
) -> Agent {
    let agent = builder.with_identity(identity).build().expect("agent");
    agent
        .fetch_root_key()
        .await
        .expect("status serves the root key");
    agent
}

/// Stops the server when the test ends, however it ends.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `local-network` binary (20 ms rounds) with `controller` as the deployer's
/// installer and admin; returns it with the description it wrote to `state_file`, after
/// checking that it printed the same.
pub fn start_server(
    state_file: &std::path::Path,
    controller: Principal,
) -> (Server, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-network"))
        .args(["--port", "0", "--round-interval-ms", "20", "--controller"])
        .arg(controller.to_text())
        .arg("--state-file")
        .arg(state_file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start local-network");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("written to") {
            break;
        }
    }
    let description: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_file).expect("state file written")).unwrap();
    for key in ["url", "root_key", "deployer"] {
        let value = description[key].as_str().unwrap();
        assert!(
            printed.contains(value),
            "{key} {value} not printed in:\n{printed}"
        );
    }
    (server, description)
}
