//! The local network's cost to the canisters it serves: the same query and update sent through
//! the IC's HTTP interface (in-process, no socket: envelope, authentication, certificate or node
//! signature) and straight into the simulator execute exactly the same instructions. The wire
//! bytes of the answers (signed query response, certified call status) are reported too.
//! Requests per second are a figure of the machine, not of the canister: the bench prints them
//! beside its wall times, outside the report.

use super::{Figures, MIB};
use candid::Principal;
use ic_local_network::setup::{install_deployer_and_fixtures, Controllers};
use ic_local_network::{CallSubmission, LocalNetwork, NetworkConfig};
use ic_sim::SimConfig;
use ic_transport_types::{Envelope, EnvelopeContent};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// An anonymous request (no key, no signature) for `content`, as an agent encodes it.
fn anonymous_envelope(content: EnvelopeContent) -> Vec<u8> {
    Envelope {
        content: Cow::Owned(content),
        sender_pubkey: None,
        sender_sig: None,
        sender_delegation: None,
    }
    .encode_bytes()
}

/// The `counter` query and `increment` update of the child fixture, straight into the simulator
/// and through the network: `instructions_percent_of_direct` is 100 when the network adds none.
pub fn served_calls() -> Figures {
    let mut network = LocalNetwork::new(NetworkConfig {
        sim: SimConfig::default(),
        sync_call_rounds: 30,
    });
    let installer = Principal::from_slice(&[0xbe, 0x7c, 0x4e]);
    let installed = install_deployer_and_fixtures(
        network.sim_mut(),
        &Controllers {
            installer,
            others: vec![],
            admins: None,
        },
    );
    // Two children installed alike, each brought to the same state: one called directly, the
    // other through the network (a call's cost depends on the state the calls before it left).
    let (direct, served) = (installed.fixtures["child_1"], installed.fixtures["child_2"]);
    let anonymous = Principal::anonymous();
    let empty = candid::encode_args(()).expect("encode ()");
    let expiry = network.sim().time_nanos() + 60_000_000_000;

    let sim = network.sim_mut();
    for canister in [direct, served] {
        sim.update_call(anonymous, canister, "increment", empty.clone())
            .expect("warm-up update");
    }
    sim.query_call(anonymous, direct, "counter", empty.clone())
        .expect("direct query");
    let query_direct = sim.last_instructions(direct);
    sim.update_call(anonymous, direct, "increment", empty.clone())
        .expect("direct update");
    let update_direct = sim.last_instructions(direct);

    let query = anonymous_envelope(EnvelopeContent::Query {
        ingress_expiry: expiry,
        sender: anonymous,
        canister_id: served,
        method_name: "counter".into(),
        arg: empty.clone(),
        nonce: None,
        sender_info: None,
    });
    let answer = network.query(served, &query).expect("query served");
    let query_served = network.sim().last_instructions(served);
    let call = anonymous_envelope(EnvelopeContent::Call {
        nonce: None,
        ingress_expiry: expiry,
        sender: anonymous,
        canister_id: served,
        method_name: "increment".into(),
        arg: empty,
        sender_info: None,
    });
    let CallSubmission::Accepted { request_id } =
        network.submit_call(served, &call).expect("call served")
    else {
        panic!("the call was refused");
    };
    let mut rounds = 0;
    let certified = loop {
        if let Some(reply) = network.sync_call_reply(&request_id) {
            break reply;
        }
        rounds += 1;
        assert!(rounds < 100, "the call did not finish");
        network.tick();
    };
    let update_served = network.sim().last_instructions(served);
    assert!(answer.len() < MIB && certified.len() < MIB);

    let percent = (query_served + update_served) * 100 / (query_direct + update_direct).max(1);
    BTreeMap::from([
        ("query_instructions_direct".to_string(), query_direct),
        ("query_instructions_served".to_string(), query_served),
        ("update_instructions_direct".to_string(), update_direct),
        ("update_instructions_served".to_string(), update_served),
        ("instructions_percent_of_direct".to_string(), percent),
        ("query_request_bytes".to_string(), query.len() as u64),
        ("query_response_bytes".to_string(), answer.len() as u64),
        ("call_request_bytes".to_string(), call.len() as u64),
        (
            "call_certificate_response_bytes".to_string(),
            certified.len() as u64,
        ),
    ])
}
