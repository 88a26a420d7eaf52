//! ic-agent 0.49.3 against the network in-process (its HTTP middleware hook, no socket): the
//! agent runs its own CBOR decoding, request ids, certificate, delegation, time and
//! query-signature checks against what the network serves, with the root key it fetched.
//! One network for the whole file; rounds run only inside the requests.

mod support;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use deployer::{Role, RoleAssignment, VersionInfo};
use ic_agent::agent::{CallResponse, RejectCode};
use ic_agent::identity::AnonymousIdentity;
use ic_agent::{Agent, AgentError};
use ic_local_network::setup::Installed;
use ic_local_network::SharedNetwork;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use support::*;

/// Rounds a synchronous call waits here: enough for every call but `spin`.
const SYNC_CALL_ROUNDS: u64 = 30;

fn network() -> &'static (Arc<SharedNetwork>, Installed) {
    static NETWORK: OnceLock<(Arc<SharedNetwork>, Installed)> = OnceLock::new();
    NETWORK.get_or_init(|| test_network(SYNC_CALL_ROUNDS))
}

async fn agent(identity: impl ic_agent::Identity + 'static) -> Agent {
    in_process_agent(&network().0, identity).await
}

fn deployer() -> Principal {
    network().1.deployer
}

fn fixture(name: &str) -> Principal {
    network().1.fixtures[name]
}

fn no_arg() -> Vec<u8> {
    Encode!().unwrap()
}

#[tokio::test]
async fn update_and_query_calls_reach_the_deployer() {
    let agent = agent(admin()).await;
    let reply = agent
        .query(&deployer(), "version")
        .with_arg(no_arg())
        .call()
        .await
        .unwrap();
    let version = Decode!(&reply, VersionInfo).unwrap();
    assert_eq!(version.version, env!("CARGO_PKG_VERSION"));

    let operator = principal_of(&ed25519_identity(9));
    let reply = agent
        .update(&deployer(), "add_role")
        .with_arg(Encode!(&operator, &Role::Operator).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    Decode!(&reply, Result<(), deployer::Error>)
        .unwrap()
        .unwrap();
    let reply = agent
        .query(&deployer(), "list_roles")
        .with_arg(no_arg())
        .call()
        .await
        .unwrap();
    let roles = Decode!(&reply, Vec<RoleAssignment>).unwrap();
    assert!(roles
        .iter()
        .any(|r| r.principal == operator && r.roles == vec![Role::Operator]));
}

/// "Canister information": module_hash is the SHA-256 of the installed module, controllers the
/// canister's controllers, metadata/<name> the `icp:public <name>` section.
#[tokio::test]
async fn read_state_certifies_module_hash_controllers_and_candid_service() {
    let agent = agent(AnonymousIdentity).await;
    let module_hash = agent
        .read_state_canister_module_hash(deployer())
        .await
        .unwrap();
    let artifact = ic_sim::artifacts::wasm("deployer");
    assert_eq!(module_hash, Sha256::digest(&artifact).to_vec());
    let controllers = agent
        .read_state_canister_controllers(deployer())
        .await
        .unwrap();
    assert_eq!(controllers, vec![principal_of(&admin())]);
    let candid = agent
        .read_state_canister_metadata(deployer(), "candid:service")
        .await
        .unwrap();
    let candid = String::from_utf8(candid).unwrap();
    assert!(candid.contains("add_role"), "{candid}");
    let missing = agent
        .read_state_canister_metadata(deployer(), "no such section")
        .await;
    assert!(
        matches!(missing, Err(AgentError::LookupPathAbsent(_))),
        "{missing:?}"
    );
}

/// "Request: Read state": `metadata/<name>` of a private section only for controllers; the IC
/// answers others with 403.
#[tokio::test]
async fn private_metadata_is_certified_to_controllers_only() {
    let canister = {
        let mut network = network().0.lock();
        let sim = network.sim_mut();
        let canister = sim.create_canister(0, vec![principal_of(&admin())]);
        let mut wasm = wat::parse_str("(module)").unwrap();
        let name = b"icp:private secret";
        let content = b"s3cr3t";
        wasm.push(0);
        wasm.push((1 + name.len() + content.len()) as u8);
        wasm.push(name.len() as u8);
        wasm.extend_from_slice(name);
        wasm.extend_from_slice(content);
        sim.install_code(
            principal_of(&admin()),
            canister,
            &wasm,
            vec![],
            ic_sim::InstallMode::Install,
        )
        .unwrap();
        canister
    };
    let secret = agent(admin())
        .await
        .read_state_canister_metadata(canister, "secret")
        .await;
    assert_eq!(secret.unwrap(), b"s3cr3t");
    let refused = agent(ed25519_identity(5))
        .await
        .read_state_canister_metadata(canister, "secret")
        .await;
    match refused {
        Err(AgentError::HttpError(payload)) => assert_eq!(payload.status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

/// "Authentication": the sender is the self-authenticating principal of the key that signed,
/// for Ed25519, ECDSA secp256k1 and P-256 keys alike, and the anonymous principal without a key.
#[tokio::test]
async fn identities_are_authenticated_as_their_principals() {
    let probe = fixture("probe");
    let signing: [fn() -> Box<dyn ic_agent::Identity>; 3] = [
        || Box::new(ed25519_identity(2)),
        || Box::new(secp256k1_identity(3)),
        || Box::new(p256_identity(4)),
    ];
    let anonymous: fn() -> Box<dyn ic_agent::Identity> = || Box::new(AnonymousIdentity);
    for identity in signing.iter().chain([&anonymous]) {
        let expected = principal_of(identity().as_ref());
        let agent = agent(BoxedIdentity(identity())).await;
        let reply = agent
            .query(&probe, "caller")
            .with_arg(no_arg())
            .call()
            .await
            .unwrap();
        assert_eq!(Decode!(&reply, Principal).unwrap(), expected);
    }
    // Updates too: made admins, each grants a role, which only an admin may, and reads its own.
    let admin_agent = agent(admin()).await;
    let grant = |agent: Agent, to: Principal, role: Role| async move {
        let reply = agent
            .update(&deployer(), "add_role")
            .with_arg(Encode!(&to, &role).unwrap())
            .call_and_wait()
            .await
            .unwrap();
        Decode!(&reply, Result<(), deployer::Error>).unwrap()
    };
    for identity in signing {
        let principal = principal_of(identity().as_ref());
        grant(admin_agent.clone(), principal, Role::Admin)
            .await
            .unwrap();
        let agent = agent(BoxedIdentity(identity())).await;
        let viewer = principal_of(&ed25519_identity(20));
        grant(agent.clone(), viewer, Role::Viewer).await.unwrap();
        let reply = agent
            .query(&deployer(), "my_roles")
            .with_arg(no_arg())
            .call()
            .await
            .unwrap();
        assert_eq!(Decode!(&reply, Vec<Role>).unwrap(), vec![Role::Admin]);
    }
}

/// Every reject code a user's request can meet reaches the agent as its error: certified
/// (in the state tree) as `CertifiedReject`, refused before execution or by a query as
/// `UncertifiedReject`. SYS_FATAL and SYS_UNKNOWN answer no user request here (the one
/// SYS_FATAL, an oversized ingress message, is refused with 413 first).
#[tokio::test]
async fn reject_codes_reach_the_agent_as_its_errors() {
    let agent = agent(admin()).await;
    let probe = fixture("probe");
    let empty = network()
        .0
        .lock()
        .sim_mut()
        .create_canister(0, vec![principal_of(&admin())]);
    let frozen = network()
        .0
        .lock()
        .sim_mut()
        .create_canister(0, vec![principal_of(&admin())]);
    {
        let mut network = network().0.lock();
        let wasm = ic_sim::artifacts::wasm("probe");
        network
            .sim_mut()
            .install_code(
                principal_of(&admin()),
                frozen,
                &wasm,
                no_arg(),
                ic_sim::InstallMode::Install,
            )
            .unwrap();
    }
    let management = Principal::management_canister();

    let certified = |result: Result<Vec<u8>, AgentError>| match result {
        Err(AgentError::CertifiedReject { reject, .. }) => reject.reject_code,
        other => panic!("expected a certified reject, got {other:?}"),
    };
    let uncertified = |result: Result<Vec<u8>, AgentError>| match result {
        Err(AgentError::UncertifiedReject { reject, .. }) => reject.reject_code,
        other => panic!("expected an uncertified reject, got {other:?}"),
    };

    // SYS_TRANSIENT: a frozen canister (its freezing threshold far above its balance)
    // refuses queries and ingress.
    #[derive(CandidType, Deserialize)]
    struct Settings {
        freezing_threshold: Option<candid::Nat>,
    }
    #[derive(CandidType, Deserialize)]
    struct UpdateSettings {
        canister_id: Principal,
        settings: Settings,
    }
    let freeze = UpdateSettings {
        canister_id: frozen,
        settings: Settings {
            freezing_threshold: Some(candid::Nat::from(u64::MAX)),
        },
    };
    agent
        .update(&management, "update_settings")
        .with_effective_canister_id(frozen)
        .with_arg(Encode!(&freeze).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    let query = agent
        .query(&frozen, "caller")
        .with_arg(no_arg())
        .call()
        .await;
    assert_eq!(uncertified(query), RejectCode::SysTransient);
    let update = agent
        .update(&frozen, "echo")
        .with_arg(Encode!(&serde_bytes::ByteBuf::new()).unwrap())
        .call_and_wait()
        .await;
    assert_eq!(uncertified(update), RejectCode::SysTransient);

    // DESTINATION_INVALID: loading a snapshot that does not exist; a query to no canister.
    #[derive(CandidType, Deserialize)]
    struct LoadSnapshot {
        canister_id: Principal,
        snapshot_id: serde_bytes::ByteBuf,
        sender_canister_version: Option<u64>,
    }
    let load = LoadSnapshot {
        canister_id: empty,
        snapshot_id: serde_bytes::ByteBuf::from(vec![1; 8]),
        sender_canister_version: None,
    };
    let result = agent
        .update(&management, "load_canister_snapshot")
        .with_effective_canister_id(empty)
        .with_arg(Encode!(&load).unwrap())
        .call_and_wait()
        .await;
    assert_eq!(certified(result), RejectCode::DestinationInvalid);
    let nobody = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0x0f, 0xff, 1, 1]);
    let query = agent
        .query(&nobody, "caller")
        .with_arg(no_arg())
        .call()
        .await;
    assert_eq!(uncertified(query), RejectCode::DestinationInvalid);
    let update = agent
        .update(&nobody, "caller")
        .with_arg(no_arg())
        .call_and_wait()
        .await;
    assert_eq!(uncertified(update), RejectCode::DestinationInvalid);

    // CANISTER_REJECT: a snapshot of an empty canister; `canister_inspect_message` refusing.
    #[derive(CandidType, Deserialize)]
    struct TakeSnapshot {
        canister_id: Principal,
        replace_snapshot: Option<serde_bytes::ByteBuf>,
    }
    let take = TakeSnapshot {
        canister_id: empty,
        replace_snapshot: None,
    };
    let result = agent
        .update(&management, "take_canister_snapshot")
        .with_effective_canister_id(empty)
        .with_arg(Encode!(&take).unwrap())
        .call_and_wait()
        .await;
    assert_eq!(certified(result), RejectCode::CanisterReject);
    let result = agent
        .update(&probe, "refused_by_inspect")
        .with_arg(no_arg())
        .call_and_wait()
        .await;
    assert_eq!(uncertified(result), RejectCode::CanisterReject);

    // CANISTER_ERROR: a trap.
    let result = agent
        .update(&probe, "write_then_trap")
        .with_arg(Encode!(&serde_bytes::ByteBuf::from(vec![1])).unwrap())
        .call_and_wait()
        .await;
    assert_eq!(certified(result), RejectCode::CanisterError);
}

/// Calls to the management canister name their target as the effective canister id, as
/// `icp canister install` does: status, stop, status, start.
#[tokio::test]
async fn management_calls_with_an_effective_canister_id_stop_and_start_a_canister() {
    #[derive(CandidType, Deserialize)]
    struct CanisterIdRecord {
        canister_id: Principal,
    }
    #[derive(CandidType, Deserialize, Debug, PartialEq)]
    enum Status {
        #[serde(rename = "running")]
        Running,
        #[serde(rename = "stopping")]
        Stopping,
        #[serde(rename = "stopped")]
        Stopped,
    }
    #[derive(CandidType, Deserialize)]
    struct StatusReply {
        status: Status,
        module_hash: Option<serde_bytes::ByteBuf>,
    }
    let agent = agent(admin()).await;
    let child = fixture("child_2");
    let management = Principal::management_canister();
    let call = |method: &'static str| {
        agent
            .update(&management, method)
            .with_effective_canister_id(child)
            .with_arg(Encode!(&CanisterIdRecord { canister_id: child }).unwrap())
            .call_and_wait()
    };
    let status = Decode!(&call("canister_status").await.unwrap(), StatusReply).unwrap();
    assert_eq!(status.status, Status::Running);
    assert_eq!(
        status.module_hash.unwrap().to_vec(),
        Sha256::digest(ic_sim::artifacts::wasm("child_v1")).to_vec()
    );
    call("stop_canister").await.unwrap();
    let status = Decode!(&call("canister_status").await.unwrap(), StatusReply).unwrap();
    assert_eq!(status.status, Status::Stopped);
    call("start_canister").await.unwrap();
    let status = Decode!(&call("canister_status").await.unwrap(), StatusReply).unwrap();
    assert_eq!(status.status, Status::Running);

    // install_code in upgrade mode, as `icp canister install` sends it; the certified module
    // hash follows.
    let upgrade = ic_sim::InstallMode::Upgrade {
        skip_pre_upgrade: false,
        keep_wasm_memory: false,
    };
    let child_v2 = ic_sim::artifacts::wasm("child_v2");
    agent
        .update(&management, "install_code")
        .with_effective_canister_id(child)
        .with_arg(upgrade.install_code_payload(child, &child_v2, no_arg()))
        .call_and_wait()
        .await
        .unwrap();
    assert_eq!(
        agent.read_state_canister_module_hash(child).await.unwrap(),
        Sha256::digest(&child_v2).to_vec()
    );

    // Sent to another effective canister id than its target: refused with 400.
    let wrong = agent
        .update(&management, "canister_status")
        .with_effective_canister_id(fixture("child_1"))
        .with_arg(Encode!(&CanisterIdRecord { canister_id: child }).unwrap())
        .call_and_wait()
        .await;
    assert!(
        matches!(wrong, Err(AgentError::HttpError(ref p)) if p.status == 400),
        "{wrong:?}"
    );
}

/// "Effective canister id": canister creation may be sent to any effective canister id; the
/// local network's provisional API creates a canister its caller controls.
#[tokio::test]
async fn provisional_canister_creation_is_sent_to_any_effective_canister_id() {
    #[derive(CandidType, Deserialize)]
    struct ProvisionalCreate {
        amount: Option<candid::Nat>,
        settings: Option<()>,
        specified_id: Option<Principal>,
        sender_canister_version: Option<u64>,
    }
    #[derive(CandidType, Deserialize)]
    struct CanisterIdRecord {
        canister_id: Principal,
    }
    let agent = agent(ed25519_identity(8)).await;
    let arg = ProvisionalCreate {
        amount: None,
        settings: None,
        specified_id: None,
        sender_canister_version: None,
    };
    let reply = agent
        .update(
            &Principal::management_canister(),
            "provisional_create_canister_with_cycles",
        )
        .with_effective_canister_id(deployer())
        .with_arg(Encode!(&arg).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    let created = Decode!(&reply, CanisterIdRecord).unwrap().canister_id;
    assert_eq!(
        agent
            .read_state_canister_controllers(created)
            .await
            .unwrap(),
        vec![principal_of(&ed25519_identity(8))]
    );
}

/// "Authentication": a signature that does not verify, and an `ingress_expiry` in the past,
/// are refused with 400 and a plain-text reason.
#[tokio::test]
async fn a_tampered_signature_and_an_expired_request_are_refused_with_400() {
    let agent = agent(ed25519_identity(4)).await;
    let probe = fixture("probe");
    let signed = agent
        .update(&probe, "echo")
        .with_arg(Encode!(&serde_bytes::ByteBuf::new()).unwrap())
        .sign()
        .unwrap();
    let mut envelope: ic_transport_types::Envelope =
        serde_cbor::from_slice(&signed.signed_update).unwrap();
    envelope.sender_sig.as_mut().unwrap()[0] ^= 1;
    let tampered = agent.update_signed(probe, envelope.encode_bytes()).await;
    match tampered {
        Err(AgentError::HttpError(payload)) => {
            assert_eq!(payload.status, 400);
            assert!(String::from_utf8_lossy(&payload.content).contains("Invalid signature"));
        }
        other => panic!("expected 400, got {other:?}"),
    }
    // The untampered envelope goes through.
    assert!(matches!(
        agent.update_signed(probe, signed.signed_update).await,
        Ok(CallResponse::Response(_))
    ));

    let expired = agent
        .update(&probe, "echo")
        .with_arg(Encode!(&serde_bytes::ByteBuf::new()).unwrap())
        .expire_at(SystemTime::now() - Duration::from_secs(60))
        .call_and_wait()
        .await;
    match expired {
        Err(AgentError::HttpError(payload)) => {
            assert_eq!(payload.status, 400);
            assert!(String::from_utf8_lossy(&payload.content).contains("ingress_expiry"));
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

/// "Synchronous canister calling": a call not finished within the bound answers 202 and the
/// agent polls `read_state` for it; the asynchronous v2 endpoint answers 202 at once.
#[tokio::test]
async fn calls_that_do_not_finish_in_time_are_polled_to_their_answer() {
    let (network, installed) = network();
    let probe = installed.fixtures["probe"];
    let agent = agent(admin()).await;
    let response = agent
        .update(&probe, "spin")
        .with_arg(no_arg())
        .call()
        .await
        .unwrap();
    let CallResponse::Poll(request_id) = response else {
        panic!("spin finished within {SYNC_CALL_ROUNDS} rounds")
    };
    agent
        .update(&probe, "release")
        .with_arg(no_arg())
        .call_and_wait()
        .await
        .unwrap();
    let request_id_bytes: [u8; 32] = *request_id;
    while !network.lock().call_finished(&request_id_bytes) {
        network.tick();
    }
    let (reply, _certificate) = agent.wait(&request_id, probe).await.unwrap();
    assert_eq!(reply, Encode!(&()).unwrap());

    // v2: 202 with an empty body, then the answer by polling.
    let signed = agent
        .update(&probe, "echo")
        .with_arg(Encode!(&serde_bytes::ByteBuf::from(b"v2".to_vec())).unwrap())
        .sign()
        .unwrap();
    let request = http::Request::post(format!("/api/v2/canister/{probe}/call"))
        .body(bytes::Bytes::from(signed.signed_update))
        .unwrap();
    let response = network.handle(request).await;
    assert_eq!(response.status(), 202);
    assert!(response.body().is_empty());
    let request_id_bytes: [u8; 32] = *signed.request_id;
    while !network.lock().call_finished(&request_id_bytes) {
        network.tick();
    }
    let (reply, _certificate) = agent.wait(&signed.request_id, probe).await.unwrap();
    assert_eq!(
        Decode!(&reply, serde_bytes::ByteBuf).unwrap().as_ref(),
        b"v2"
    );
}

/// Status codes for bodies the IC refuses outright: malformed CBOR 400, over 5 MiB 413.
#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let (network, installed) = network();
    let post = |body: Vec<u8>| {
        http::Request::post(format!("/api/v4/canister/{}/call", installed.deployer))
            .body(bytes::Bytes::from(body))
            .unwrap()
    };
    let response = network
        .handle(post(b"\xd9\xd9\xf7 not cbor".to_vec()))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let response = network.handle(post(vec![0; 5 * 1024 * 1024 + 1])).await;
    assert_eq!(response.status(), 413);
}

/// Lets a boxed identity be handed to the agent builder.
struct BoxedIdentity(Box<dyn ic_agent::Identity>);

impl ic_agent::Identity for BoxedIdentity {
    fn sender(&self) -> Result<Principal, String> {
        self.0.sender()
    }
    fn public_key(&self) -> Option<Vec<u8>> {
        self.0.public_key()
    }
    fn sign(
        &self,
        content: &ic_agent::agent::EnvelopeContent,
    ) -> Result<ic_agent::Signature, String> {
        self.0.sign(content)
    }
    fn sign_delegation(
        &self,
        content: &ic_agent::identity::Delegation,
    ) -> Result<ic_agent::Signature, String> {
        self.0.sign_delegation(content)
    }
    fn sign_arbitrary(&self, content: &[u8]) -> Result<ic_agent::Signature, String> {
        self.0.sign_arbitrary(content)
    }
}

/// "Request: Read state": which paths may be requested where. `/request_status/<id>` only by
/// the request's sender; `/canister/<id>/...` only at that canister's effective id;
/// `/canister_ranges` only at the subnet endpoint; one request id per request; anything else is
/// not a path of the state tree.
#[tokio::test]
async fn read_state_paths_follow_the_spec_rules() {
    let probe = fixture("probe");
    let sender = agent(ed25519_identity(6)).await;
    let signed = sender
        .update(&probe, "echo")
        .with_arg(Encode!(&serde_bytes::ByteBuf::new()).unwrap())
        .sign()
        .unwrap();
    sender
        .update_signed(probe, signed.signed_update)
        .await
        .unwrap();
    let status_path = |id: &[u8]| vec!["request_status".into(), id.into(), "status".into()];
    let own = sender
        .read_state_raw(vec![status_path(signed.request_id.as_slice())], probe)
        .await
        .unwrap();
    assert_eq!(
        ic_agent::lookup_value(
            &own,
            [
                b"request_status".as_ref(),
                signed.request_id.as_slice(),
                b"status"
            ]
        )
        .unwrap(),
        b"replied"
    );
    let status = |result: Result<ic_agent::Certificate, AgentError>| match result {
        Err(AgentError::HttpError(payload)) => payload.status,
        other => panic!("expected an HTTP error, got {other:?}"),
    };
    let other = agent(ed25519_identity(7)).await;
    let path = vec![status_path(signed.request_id.as_slice())];
    assert_eq!(status(other.read_state_raw(path, probe).await), 403);
    let two_ids = vec![status_path(&[1; 32]), status_path(&[2; 32])];
    assert_eq!(status(other.read_state_raw(two_ids, probe).await), 400);
    let elsewhere = vec![vec![
        "canister".into(),
        deployer().as_slice().into(),
        "module_hash".into(),
    ]];
    assert_eq!(status(other.read_state_raw(elsewhere, probe).await), 400);
    let ranges = vec![vec!["canister_ranges".into()]];
    assert_eq!(status(other.read_state_raw(ranges, probe).await), 404);
    let unknown = vec![vec!["no_such_path".into()]];
    assert_eq!(status(other.read_state_raw(unknown, probe).await), 404);
    // The time is always there, even for no path at all: the simulator's (other tests run
    // rounds meanwhile, so it lies between the times read before and after).
    let before = network().0.lock().sim().time_nanos();
    let time = other.read_state_raw(vec![], probe).await.unwrap();
    let after = network().0.lock().sim().time_nanos();
    let certified = ic_agent::lookup_value(&time, [b"time".as_ref()]).unwrap();
    let certified = certified
        .iter()
        .rev()
        .fold(0u64, |n, byte| (n << 7) | u64::from(byte & 0x7f));
    assert!(
        (before..=after).contains(&certified),
        "{before} {certified} {after}"
    );
}

/// "Effective canister id": it "must be contained in the canister ranges of a subnet,
/// otherwise the corresponding HTTP request is rejected" (400); an id inside a range without
/// a canister is the canister's business (DESTINATION_INVALID, see above).
#[tokio::test]
async fn an_effective_canister_id_outside_every_subnet_is_refused_with_400() {
    let agent = agent(AnonymousIdentity).await;
    let outside = Principal::from_slice(&[0xff; 10]);
    let status = |result: Result<Vec<u8>, AgentError>| match result {
        Err(AgentError::HttpError(payload)) => payload.status,
        other => panic!("expected an HTTP error, got {other:?}"),
    };
    let update = agent
        .update(&outside, "m")
        .with_arg(no_arg())
        .call_and_wait()
        .await;
    assert_eq!(status(update), 400);
    let read = agent.read_state_canister_module_hash(outside).await;
    assert_eq!(status(read), 400);
}
