//! Certified data in queries through the local network: the certificate a non-replicated query
//! reads with `ic0.data_certificate_copy` is signed by the subnet's key, delegated by the root
//! key canisters read with `ic0.root_key_copy`, and reveals the canister's certified data.
//! Spec: IC interface specification, "Certified data", "Certification" (signature over
//! `"\x0Dic-state-root" · root hash`), "Delegation".

use candid::Principal;
use ic_certification::{Certificate, LookupResult};
use ic_local_network::{LocalNetwork, NetworkConfig};
use ic_sim::InstallMode;

/// `set_cert` stores its argument as certified data; `cert` replies with the certificate.
const CANISTER: &str = r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "certified_data_set" (func $cert_set (param i32 i32)))
  (import "ic0" "data_certificate_size" (func $cert_size (result i32)))
  (import "ic0" "data_certificate_copy" (func $cert_copy (param i32 i32 i32)))
  (memory 1)
  (func (export "canister_update set_cert")
    (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size))
    (call $cert_set (i32.const 0) (call $arg_size))
    (call $reply))
  (func (export "canister_query cert")
    (call $cert_copy (i32.const 0) (i32.const 0) (call $cert_size))
    (call $append (i32.const 0) (call $cert_size))
    (call $reply)))"#;

/// The BLS key inside a DER-framed IC public key (its last 96 bytes).
fn bls_key(der: &[u8]) -> &[u8] {
    &der[der.len() - 96..]
}

fn check_signature(certificate: &Certificate, der_key: &[u8]) {
    let mut message = b"\x0Dic-state-root".to_vec();
    message.extend_from_slice(&certificate.tree.digest());
    ic_verify_bls_signature::verify_bls_signature(
        &certificate.signature,
        &message,
        bls_key(der_key),
    )
    .expect("the signature verifies");
}

fn found<'a>(certificate: &'a Certificate, path: &[&[u8]]) -> &'a [u8] {
    match certificate.tree.lookup_path(path) {
        LookupResult::Found(value) => value,
        other => panic!("{path:?}: {other:?}"),
    }
}

#[test]
fn a_query_reads_a_certificate_that_verifies_against_the_root_key() {
    let mut network = LocalNetwork::new(NetworkConfig::default());
    let root_key = network.root_key().to_vec();
    let user = Principal::self_authenticating(b"query certificates");
    let sim = network.sim_mut();
    let canister = sim.create_canister(0, vec![user]);
    let wasm = wat::parse_str(CANISTER).unwrap();
    sim.install_code(user, canister, &wasm, vec![], InstallMode::Install)
        .unwrap();
    sim.update_call(user, canister, "set_cert", b"certified!".to_vec())
        .unwrap();
    let bytes = sim.query_call(user, canister, "cert", vec![]).unwrap();
    let subnet = sim.subnet_id(0);

    let certificate: Certificate = serde_cbor::from_slice(&bytes).expect("a certificate");
    assert_eq!(
        found(
            &certificate,
            &[b"canister", canister.as_slice(), b"certified_data"]
        ),
        b"certified!"
    );
    let delegation = certificate.delegation.as_ref().expect("delegated");
    assert_eq!(delegation.subnet_id, subnet.as_slice());
    let delegation_certificate: Certificate =
        serde_cbor::from_slice(&delegation.certificate).unwrap();
    check_signature(&delegation_certificate, &root_key);
    let subnet_key = found(
        &delegation_certificate,
        &[b"subnet", subnet.as_slice(), b"public_key"],
    )
    .to_vec();
    check_signature(&certificate, &subnet_key);
}
