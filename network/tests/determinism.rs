//! The same requests in the same order give the same simulator trace and the same answers,
//! byte for byte (certificates and query signatures included), when rounds run only inside
//! the requests.

use bytes::Bytes;
use candid::{Encode, Principal};
use ic_local_network::{LocalNetwork, NetworkConfig, RoundDriver, SharedNetwork};
use ic_sim::{InstallMode, SimConfig, TraceEvent};
use ic_transport_types::{Envelope, EnvelopeContent};
use std::borrow::Cow;

const START: u64 = 1_800_000_000_000_000_000;

fn signed(content: EnvelopeContent, key: &ic_ed25519::PrivateKey) -> Bytes {
    let signature = key.sign_message(&content.to_request_id().signable());
    Bytes::from(
        Envelope {
            content: Cow::Owned(content),
            sender_pubkey: Some(key.public_key().serialize_rfc8410_der()),
            sender_sig: Some(signature.to_vec()),
            sender_delegation: None,
        }
        .encode_bytes(),
    )
}

/// Runs a fixed script of requests on a fresh network; returns every answer and the trace.
async fn run_script() -> (Vec<(u16, Bytes)>, Vec<TraceEvent>) {
    let mut network = LocalNetwork::new(NetworkConfig {
        sim: SimConfig {
            start_time_nanos: START,
            ..SimConfig::default()
        },
        sync_call_rounds: 30,
    });
    let key = ic_ed25519::PrivateKey::generate_from_seed(&[1; 32]);
    let sender = Principal::self_authenticating(key.public_key().serialize_rfc8410_der());
    let sim = network.sim_mut();
    let probe = sim.create_canister(0, vec![sender]);
    let wasm = ic_sim::artifacts::wasm("probe");
    sim.install_code(
        sender,
        probe,
        &wasm,
        Encode!().unwrap(),
        InstallMode::Install,
    )
    .unwrap();
    let network = SharedNetwork::new(network, RoundDriver::Requests);
    let expiry = START + 60_000_000_000;
    let call = |method: &str, arg: Vec<u8>, nonce: u8| EnvelopeContent::Call {
        nonce: Some(vec![nonce]),
        ingress_expiry: expiry,
        sender,
        canister_id: probe,
        method_name: method.into(),
        arg,
        sender_info: None,
    };
    let requests = [
        (
            "call",
            signed(
                call(
                    "set_heap",
                    Encode!(&serde_bytes::ByteBuf::from(vec![7; 100])).unwrap(),
                    1,
                ),
                &key,
            ),
        ),
        (
            "call",
            signed(call("raw_rand", Encode!().unwrap(), 2), &key),
        ),
        (
            "query",
            signed(
                EnvelopeContent::Query {
                    ingress_expiry: expiry,
                    sender,
                    canister_id: probe,
                    method_name: "get_heap".into(),
                    arg: Encode!().unwrap(),
                    nonce: None,
                    sender_info: None,
                },
                &key,
            ),
        ),
        (
            "read_state",
            signed(
                EnvelopeContent::ReadState {
                    ingress_expiry: expiry,
                    sender,
                    paths: vec![vec![
                        "canister".into(),
                        probe.as_slice().into(),
                        "module_hash".into(),
                    ]],
                },
                &key,
            ),
        ),
    ];
    let mut answers = Vec::new();
    for (endpoint, body) in requests {
        let version = if endpoint == "call" { "v4" } else { "v3" };
        let request = http::Request::post(format!("/api/{version}/canister/{probe}/{endpoint}"))
            .body(body)
            .unwrap();
        let response = network.handle(request).await;
        answers.push((response.status().as_u16(), response.into_body()));
    }
    let trace = network.lock().sim().trace().to_vec();
    (answers, trace)
}

#[tokio::test]
async fn the_same_requests_give_the_same_trace_and_answers() {
    let (first_answers, first_trace) = run_script().await;
    assert!(
        first_answers.iter().all(|(status, _)| *status == 200),
        "{first_answers:?}"
    );
    assert!(!first_trace.is_empty());
    let (second_answers, second_trace) = run_script().await;
    assert_eq!(first_trace, second_trace);
    assert_eq!(first_answers, second_answers);
}
