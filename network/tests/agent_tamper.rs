//! The agent's checks are real: a certificate signed over another root hash, or a query
//! response signed over another request id, is refused by ic-agent. A network of its own, as
//! the fault applies to everything it serves; two subnets, so a canister on the second is
//! served under that subnet's delegation.

mod support;

use candid::{Decode, Encode, Principal};
use ic_agent::identity::AnonymousIdentity;
use ic_agent::{Agent, AgentError};
use ic_local_network::{LocalNetwork, NetworkConfig, RoundDriver, SharedNetwork, Tamper};
use ic_sim::{InstallMode, SimConfig};
use std::sync::Arc;
use support::*;

fn two_subnets_with_probes() -> (Arc<SharedNetwork>, [Principal; 2]) {
    let mut network = LocalNetwork::new(NetworkConfig {
        sim: SimConfig {
            subnets: 2,
            start_time_nanos: wall_clock_nanos(),
            round_duration_nanos: 100_000_000,
            ..SimConfig::default()
        },
        sync_call_rounds: 30,
    });
    let probes = [0, 1].map(|subnet| {
        let sim = network.sim_mut();
        let probe = sim.create_canister(subnet, vec![Principal::anonymous()]);
        let wasm = ic_sim::artifacts::wasm("probe");
        sim.install_code(
            Principal::anonymous(),
            probe,
            &wasm,
            Encode!().unwrap(),
            InstallMode::Install,
        )
        .unwrap();
        probe
    });
    (SharedNetwork::new(network, RoundDriver::Requests), probes)
}

async fn echo(agent: &Agent, probe: Principal) -> Result<Vec<u8>, AgentError> {
    agent
        .update(&probe, "echo")
        .with_arg(Encode!(&serde_bytes::ByteBuf::from(b"hi".to_vec())).unwrap())
        .call_and_wait()
        .await
}

async fn caller(agent: &Agent, probe: Principal) -> Result<Vec<u8>, AgentError> {
    agent
        .query(&probe, "caller")
        .with_arg(Encode!().unwrap())
        .call()
        .await
}

#[tokio::test]
async fn the_agent_refuses_what_the_server_signs_wrongly() {
    let (network, probes) = two_subnets_with_probes();
    // Honest: updates, queries and read_state verify on both subnets, each under its own
    // subnet's delegation ("Delegation": canister ranges of the delegation's subnet).
    for probe in probes {
        let agent = in_process_agent(&network, AnonymousIdentity).await;
        let reply = echo(&agent, probe).await.unwrap();
        assert_eq!(
            Decode!(&reply, serde_bytes::ByteBuf).unwrap().as_ref(),
            b"hi"
        );
        let reply = caller(&agent, probe).await.unwrap();
        assert_eq!(Decode!(&reply, Principal).unwrap(), Principal::anonymous());
        let subnet = agent.get_subnet_by_canister(&probe).await.unwrap();
        let index = network.lock().sim().subnet_of(probe).unwrap();
        assert_eq!(subnet.id(), network.lock().sim().subnet_id(index));
        assert_eq!(
            agent.read_state_canister_controllers(probe).await.unwrap(),
            vec![Principal::anonymous()]
        );
    }
    let probe = probes[1];

    // A certificate whose signature does not cover its tree.
    network.lock().set_tamper(Tamper::CertificateSignature);
    let agent = in_process_agent(&network, AnonymousIdentity).await;
    let update = echo(&agent, probe).await;
    assert!(
        matches!(update, Err(AgentError::CertificateVerificationFailed())),
        "{update:?}"
    );
    let read = agent.read_state_canister_module_hash(probe).await;
    assert!(
        matches!(read, Err(AgentError::CertificateVerificationFailed())),
        "{read:?}"
    );

    // A query response signed for another request.
    network.lock().set_tamper(Tamper::QueryRequestId);
    let agent = in_process_agent(&network, AnonymousIdentity).await;
    let query = caller(&agent, probe).await;
    assert!(
        matches!(query, Err(AgentError::QuerySignatureVerificationFailed)),
        "{query:?}"
    );

    // Honest again: the same agent accepts it.
    network.lock().set_tamper(Tamper::Nothing);
    assert!(caller(&agent, probe).await.is_ok());
}

/// "Request: Read state" at `/api/v3/subnet/<id>/read_state`: the subnet's key, node keys and
/// canister ranges, certified under the delegation to that subnet.
#[tokio::test]
async fn subnet_read_state_certifies_keys_and_ranges() {
    let (network, probes) = two_subnets_with_probes();
    let agent = in_process_agent(&network, AnonymousIdentity).await;
    let subnet_id = network.lock().sim().subnet_id(1);
    let subnet = agent.fetch_subnet_by_id(&subnet_id).await.unwrap();
    assert!(subnet.contains_canister(&probes[1]));
    assert!(!subnet.contains_canister(&probes[0]));
    assert_eq!(subnet.iter_node_keys().count(), 1);
    // Another subnet's id in the URL of a canister's read_state: refused.
    let wrong = agent
        .read_subnet_state_raw(vec![vec!["time".into()]], Principal::anonymous())
        .await;
    assert!(
        matches!(wrong, Err(AgentError::HttpError(ref p)) if p.status == 404),
        "{wrong:?}"
    );
}
