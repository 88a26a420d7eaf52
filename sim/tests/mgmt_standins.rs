//! The management methods whose service lives outside a replica, served by deterministic
//! stand-ins behind the IC's argument checks, fees and errors (see `management::standins`).
//! Spec: IC interface specification, management canister: "IC method ecdsa_public_key",
//! "sign_with_ecdsa", "schnorr_public_key", "sign_with_schnorr", "vetkd_public_key",
//! "vetkd_derive_key", "http_request", the bitcoin API, "subnet_info", "node_metrics_history".

mod replica_support;
use candid::{Encode, Nat};
use ic_management_canister_types::*;
use ic_sim::RejectCode;
use replica_support::*;

fn ecdsa_key(name: &str) -> EcdsaKeyId {
    EcdsaKeyId {
        curve: EcdsaCurve::Secp256k1,
        name: name.to_string(),
    }
}

fn call_with_cycles<A: candid::CandidType>(
    sim: &mut ic_sim::Sim,
    from: candid::Principal,
    method: &str,
    arg: &A,
    cycles: u64,
) -> Forwarded {
    let mut call = Call::new(management(), method, candid::encode_one(arg).unwrap());
    call.cycles = cycles;
    forward(sim, from, &call)
}

fn reject_of(answer: Forwarded) -> (u32, String) {
    match answer {
        Forwarded::Reject { code, message, .. } => (code, message),
        other => panic!("expected a reject, got {other:?}"),
    }
}

#[test]
fn ecdsa_keys_and_signatures_are_deterministic_and_checked() {
    let mut sim = new_sim();
    let canister = forwarder(&mut sim, 0);
    let args = |path: &[u8], name: &str| EcdsaPublicKeyArgs {
        canister_id: None,
        derivation_path: vec![path.to_vec()],
        key_id: ecdsa_key(name),
    };
    let key = |sim: &mut ic_sim::Sim, path: &[u8]| -> EcdsaPublicKeyResult {
        decode(
            &forward_management(sim, canister, "ecdsa_public_key", &args(path, "test_key_1"))
                .reply_data(),
        )
    };
    let a = key(&mut sim, b"a");
    assert_eq!(a.public_key.len(), 33);
    assert_eq!(a.chain_code.len(), 32);
    assert_eq!(key(&mut sim, b"a"), a, "deterministic");
    assert_ne!(
        key(&mut sim, b"b").public_key,
        a.public_key,
        "per derivation path"
    );
    // An unknown key: CANISTER_REJECT with the replica's wording.
    let (code, message) = reject_of(forward_management(
        &mut sim,
        canister,
        "ecdsa_public_key",
        &args(b"a", "nope"),
    ));
    assert_eq!(code, RejectCode::CanisterReject as u32);
    assert!(
        message.starts_with("Requested unknown threshold key: ecdsa:Secp256k1:nope, existing keys: [ecdsa:Secp256k1:dfx_test_key"),
        "{message}"
    );

    let sign = SignWithEcdsaArgs {
        message_hash: vec![7; 32],
        derivation_path: vec![],
        key_id: ecdsa_key("key_1"),
    };
    // The fee (26_153_846_153 cycles for key_1) must be attached.
    let (code, message) = reject_of(call_with_cycles(
        &mut sim,
        canister,
        "sign_with_ecdsa",
        &sign,
        1_000,
    ));
    assert_eq!(code, RejectCode::CanisterReject as u32);
    assert_eq!(
        message,
        "sign_with_ecdsa request sent with 1000 cycles, but 26153846153 cycles are required."
    );
    match call_with_cycles(
        &mut sim,
        canister,
        "sign_with_ecdsa",
        &sign,
        26_153_846_153 + 5_000,
    ) {
        Forwarded::Reply { refund, data } => {
            assert_eq!(refund, 5_000, "the rest of the attached cycles comes back");
            let result: SignWithEcdsaResult = decode(&data);
            assert_eq!(result.signature.len(), 64);
        }
        other => panic!("{other:?}"),
    }
    // A message hash must be 32 bytes.
    let short = SignWithEcdsaArgs {
        message_hash: vec![7; 31],
        ..sign
    };
    let (code, message) = reject_of(call_with_cycles(
        &mut sim,
        canister,
        "sign_with_ecdsa",
        &short,
        30_000_000_000,
    ));
    assert_eq!(code, RejectCode::CanisterReject as u32);
    assert!(
        message.contains("message_hash must be 32 bytes"),
        "{message}"
    );
    // Not by ingress.
    let err =
        management_ingress(&mut sim, user(), "ecdsa_public_key", &args(b"a", "key_1")).unwrap_err();
    assert!(
        err.message
            .contains("Only canisters can call ic00 method ecdsa_public_key"),
        "{err}"
    );
}

#[test]
fn schnorr_and_vetkd_stand_ins_check_their_arguments() {
    let mut sim = new_sim();
    let canister = forwarder(&mut sim, 0);
    let key_id = |algorithm| SchnorrKeyId {
        algorithm,
        name: "test_key_1".into(),
    };
    for (algorithm, len) in [
        (SchnorrAlgorithm::Ed25519, 32),
        (SchnorrAlgorithm::Bip340secp256k1, 33),
    ] {
        let args = SchnorrPublicKeyArgs {
            canister_id: None,
            derivation_path: vec![],
            key_id: key_id(algorithm),
        };
        let key: SchnorrPublicKeyResult = decode(
            &forward_management(&mut sim, canister, "schnorr_public_key", &args).reply_data(),
        );
        assert_eq!(key.public_key.len(), len);
    }
    let sign = SignWithSchnorrArgs {
        message: b"any length".to_vec(),
        derivation_path: vec![],
        key_id: key_id(SchnorrAlgorithm::Ed25519),
        aux: Some(SchnorrAux::Bip341(Bip341 {
            merkle_root_hash: vec![0; 32],
        })),
    };
    let (_, message) = reject_of(call_with_cycles(
        &mut sim,
        canister,
        "sign_with_schnorr",
        &sign,
        10_000_000_000,
    ));
    assert!(
        message.contains("only allowed for bip340secp256k1"),
        "{message}"
    );
    let sign = SignWithSchnorrArgs { aux: None, ..sign };
    let signed: SignWithSchnorrResult = decode(
        &call_with_cycles(
            &mut sim,
            canister,
            "sign_with_schnorr",
            &sign,
            10_000_000_000,
        )
        .reply_data(),
    );
    assert_eq!(signed.signature.len(), 64);

    let vetkd_key = VetKDKeyId {
        curve: VetKDCurve::Bls12_381_G2,
        name: "test_key_1".into(),
    };
    let public: VetKDPublicKeyResult = decode(
        &forward_management(
            &mut sim,
            canister,
            "vetkd_public_key",
            &VetKDPublicKeyArgs {
                canister_id: None,
                context: b"ctx".to_vec(),
                key_id: vetkd_key.clone(),
            },
        )
        .reply_data(),
    );
    assert_eq!(public.public_key.len(), 96);
    let derive = |transport: usize| VetKDDeriveKeyArgs {
        input: b"me".to_vec(),
        context: b"ctx".to_vec(),
        transport_public_key: vec![1; transport],
        key_id: vetkd_key.clone(),
    };
    let (_, message) = reject_of(call_with_cycles(
        &mut sim,
        canister,
        "vetkd_derive_key",
        &derive(47),
        10_000_000_000,
    ));
    assert!(
        message.contains("transport_public_key must be a 48-byte G1 point"),
        "{message}"
    );
    let derived: VetKDDeriveKeyResult = decode(
        &call_with_cycles(
            &mut sim,
            canister,
            "vetkd_derive_key",
            &derive(48),
            10_000_000_000,
        )
        .reply_data(),
    );
    assert_eq!(derived.encrypted_key.len(), 192);
}

/// A canister whose query `transform` answers a fixed `http_request_result` (status 201, body
/// "transformed"), whatever it is given.
fn transformer_wasm() -> Vec<u8> {
    let reply = Encode!(&HttpRequestResult {
        status: Nat::from(201u16),
        headers: vec![],
        body: b"transformed".to_vec(),
    })
    .unwrap();
    let escaped: String = reply.iter().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data (i32.const 0) "{escaped}")
  (func (export "canister_query transform")
    (call $append (i32.const 0) (i32.const {len}))
    (call $reply)))"#,
        len = reply.len()
    ))
    .unwrap()
}

#[test]
fn http_request_charges_its_fee_answers_from_the_responder_and_applies_the_transform() {
    let mut sim = new_sim();
    let canister = forwarder(&mut sim, 0);
    sim.set_http_outcall_responder(std::sync::Arc::new(|args: &HttpRequestArgs| {
        HttpRequestResult {
            status: Nat::from(200u16),
            headers: vec![],
            body: format!("you asked for {}", args.url).into_bytes(),
        }
    }));
    let request = HttpRequestArgs {
        url: "https://example.org/x".into(),
        max_response_bytes: Some(1_000),
        method: HttpMethod::GET,
        headers: vec![],
        body: None,
        transform: None,
        is_replicated: None,
        pricing_version: None,
    };
    let (code, message) = reject_of(call_with_cycles(
        &mut sim,
        canister,
        "http_request",
        &request,
        0,
    ));
    assert_eq!(code, RejectCode::CanisterReject as u32);
    assert!(
        message.starts_with("http_request request sent with 0 cycles, but "),
        "{message}"
    );
    let result: HttpRequestResult = decode(
        &call_with_cycles(&mut sim, canister, "http_request", &request, 1_000_000_000).reply_data(),
    );
    assert_eq!(result.body, b"you asked for https://example.org/x");
    // The response limit is checked, and max_response_bytes itself is bounded.
    let too_big = HttpRequestArgs {
        max_response_bytes: Some(2_000_001),
        ..request.clone()
    };
    let (_, message) = reject_of(call_with_cycles(
        &mut sim,
        canister,
        "http_request",
        &too_big,
        1_000_000_000,
    ));
    assert!(
        message
            .contains("max_response_bytes expected to be in the range [0..2000000], got 2000001"),
        "{message}"
    );
    // With a transform, the canister's query shapes the answer.
    let transformer = install_on(&mut sim, 0, &transformer_wasm(), vec![]);
    let with_transform = HttpRequestArgs {
        transform: Some(TransformContext {
            function: TransformFunc(candid::Func {
                principal: transformer,
                method: "transform".into(),
            }),
            context: vec![],
        }),
        ..request
    };
    let result: HttpRequestResult = decode(
        &call_with_cycles(
            &mut sim,
            canister,
            "http_request",
            &with_transform,
            1_000_000_000,
        )
        .reply_data(),
    );
    assert_eq!(result.status, Nat::from(201u16));
    assert_eq!(result.body, b"transformed");
}

#[test]
fn bitcoin_subnet_info_and_node_metrics_stand_ins() {
    let mut sim = new_sim();
    let canister = forwarder(&mut sim, 0);
    let subnet = sim.subnet_id(0);
    #[derive(candid::CandidType, serde::Serialize)]
    #[allow(non_camel_case_types)]
    enum Network {
        mainnet,
    }
    #[derive(candid::CandidType)]
    struct Balance {
        address: String,
        network: Network,
    }
    let balance = Balance {
        address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into(),
        network: Network::mainnet,
    };
    let (_, message) = reject_of(call_with_cycles(
        &mut sim,
        canister,
        "bitcoin_get_balance",
        &balance,
        0,
    ));
    assert!(
        message.contains("but 100000000 cycles are required"),
        "{message}"
    );
    let satoshi: u64 = decode(
        &call_with_cycles(
            &mut sim,
            canister,
            "bitcoin_get_balance",
            &balance,
            100_000_000,
        )
        .reply_data(),
    );
    assert_eq!(satoshi, 0);

    let info: SubnetInfoResult = decode(
        &forward_management(
            &mut sim,
            canister,
            "subnet_info",
            &SubnetInfoArgs { subnet_id: subnet },
        )
        .reply_data(),
    );
    assert_eq!(info.replica_version, "ic-sim");
    let (code, message) = reject_of(forward_management(
        &mut sim,
        canister,
        "subnet_info",
        &SubnetInfoArgs { subnet_id: user() },
    ));
    assert_eq!(code, RejectCode::CanisterReject as u32);
    assert_eq!(message, format!("Subnet {} not found", user()));

    let history: Vec<NodeMetricsHistoryRecord> = decode(
        &forward_management(
            &mut sim,
            canister,
            "node_metrics_history",
            &NodeMetricsHistoryArgs {
                subnet_id: subnet,
                start_at_timestamp_nanos: 0,
            },
        )
        .reply_data(),
    );
    assert!(!history.is_empty() && history.len() <= 30);
    assert!(history.iter().all(|r| r.node_metrics.len() == 13));
}
