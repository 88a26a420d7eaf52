//! Certified data in queries and composite queries.
//! Spec: IC interface specification, "Canister interface (System API)", "Certified data"
//! (`ic0.data_certificate_present/size/copy` in non-replicated queries: a certificate whose tree
//! reveals `/canister/<id>/certified_data` and `/time`; "Certification" for its encoding) and
//! "Composite query methods" (a composite query calls query methods of canisters on its subnet;
//! its callbacks see the state it left; nothing persists).

mod replica_support;
use candid::Principal;
use ciborium::Value;
use replica_support::*;

/// A canister with certified data and a composite query.
/// - `set_cert` (update): `certified_data_set(arg)`.
/// - `cert` (query): replies "none" when no certificate is present, else the certificate.
/// - `present` (update): replies `data_certificate_present()` as one byte.
/// - `counter` (query): replies the u32 at 0x100.
/// - `fan` (composite query): argument = callee principal bytes; sets 0x100 to 7, calls the
///   callee's `query_arg` with "ping", and from the reply callback replies
///   [u32 at 0x100] ++ the callee's reply.
/// - `fan_update` (composite query): the same call to the callee's update method `reply_arg`.
fn certifier_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject_code" (func $reject_code (result i32)))
  (import "ic0" "certified_data_set" (func $cert_set (param i32 i32)))
  (import "ic0" "data_certificate_present" (func $present (result i32)))
  (import "ic0" "data_certificate_size" (func $cert_size (result i32)))
  (import "ic0" "data_certificate_copy" (func $cert_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_data_append" (func $call_append (param i32 i32)))
  (import "ic0" "call_perform" (func $perform (result i32)))
  (import "ic0" "in_replicated_execution" (func $replicated (result i32)))
  (import "ic0" "msg_cycles_refunded128" (func $refunded (param i32)))
  (memory 2)
  (table 3 funcref)
  (elem (i32.const 0) $on_answer $on_probe $on_cycles)
  (func $on_probe (param $env i32)
    (i32.store8 (i32.const 0x200) (call $replicated))
    (call $append (i32.const 0x200) (i32.const 1))
    (call $reply))
  (func $on_cycles (param $env i32)
    (call $refunded (i32.const 0x200))
    (call $reply))
  (func $call_with (param $closure i32)
    (call $arg_copy (i32.const 0x800) (i32.const 0) (call $arg_size))
    (call $call_new (i32.const 0x800) (call $arg_size) (i32.const 0x20) (i32.const 9)
                    (local.get $closure) (i32.const 0) (local.get $closure) (i32.const 0))
    (call $call_append (i32.const 0x30) (i32.const 4))
    (drop (call $perform)))
  (func (export "canister_composite_query fan_probe") (call $call_with (i32.const 1)))
  (func (export "canister_composite_query fan_cycles") (call $call_with (i32.const 2)))
  (data (i32.const 0x10) "none")
  (data (i32.const 0x20) "query_arg")
  (data (i32.const 0x30) "ping")
  (data (i32.const 0x40) "reply_arg")
  (func $on_answer (param $env i32)
    (if (call $reject_code)
      (then
        (i32.store (i32.const 0x200) (i32.add (i32.const 1000) (call $reject_code)))
        (call $append (i32.const 0x200) (i32.const 4))
        (call $reply)
        (return)))
    (call $append (i32.const 0x100) (i32.const 4))
    (call $arg_copy (i32.const 0x1000) (i32.const 0) (call $arg_size))
    (call $append (i32.const 0x1000) (call $arg_size))
    (call $reply))
  (func $call (param $method i32)
    (call $arg_copy (i32.const 0x800) (i32.const 0) (call $arg_size))
    (i32.store (i32.const 0x100) (i32.const 7))
    (call $call_new (i32.const 0x800) (call $arg_size) (local.get $method) (i32.const 9)
                    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $call_append (i32.const 0x30) (i32.const 4))
    (drop (call $perform)))
  (func (export "canister_update set_cert")
    (call $arg_copy (i32.const 0x800) (i32.const 0) (call $arg_size))
    (call $cert_set (i32.const 0x800) (call $arg_size))
    (call $reply))
  (func (export "canister_query cert")
    (if (i32.eqz (call $present))
      (then (call $append (i32.const 0x10) (i32.const 4)) (call $reply) (return)))
    (call $cert_copy (i32.const 0x1000) (i32.const 0) (call $cert_size))
    (call $append (i32.const 0x1000) (call $cert_size))
    (call $reply))
  (func (export "canister_update present")
    (i32.store8 (i32.const 0x200) (call $present))
    (call $append (i32.const 0x200) (i32.const 1))
    (call $reply))
  (func (export "canister_query counter")
    (call $append (i32.const 0x100) (i32.const 4))
    (call $reply))
  (func (export "canister_composite_query fan") (call $call (i32.const 0x20)))
  (func (export "canister_composite_query fan_update") (call $call (i32.const 0x40)))
)"#,
    )
    .unwrap()
}

fn certifier(sim: &mut ic_sim::Sim, subnet: usize) -> Principal {
    install_on(sim, subnet, &certifier_wasm(), Vec::new())
}

/// The subtree under `label` of a hash tree in its CBOR form.
fn lookup<'a>(tree: &'a Value, path: &[&[u8]]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(tree);
    };
    let node = tree.as_array()?;
    match node[0].as_integer().map(i128::from)? {
        1 => lookup(&node[1], path).or_else(|| lookup(&node[2], path)),
        2 if node[1].as_bytes()?.as_slice() == *first => lookup(&node[2], rest),
        _ => None,
    }
}

fn leaf(tree: &Value, path: &[&[u8]]) -> Vec<u8> {
    let node = lookup(tree, path).expect("the path is in the tree");
    let node = node.as_array().unwrap();
    assert_eq!(node[0].as_integer().map(i128::from), Some(3), "a leaf");
    node[1].as_bytes().unwrap().clone()
}

fn leb128(mut bytes: &[u8]) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    while let Some((&b, rest)) = bytes.split_first() {
        value |= ((b & 0x7f) as u64) << shift;
        shift += 7;
        bytes = rest;
    }
    value
}

#[test]
fn a_non_replicated_query_reads_a_certificate_of_its_certified_data_and_the_time() {
    let mut sim = new_sim();
    let canister = certifier(&mut sim, 0);
    sim.update_call(user(), canister, "set_cert", b"state root 1".to_vec())
        .unwrap();
    let bytes = sim.query_call(user(), canister, "cert", vec![]).unwrap();
    assert_ne!(bytes, b"none", "a certificate is present");
    assert_eq!(&bytes[..3], [0xd9, 0xd9, 0xf7], "self-describing CBOR");
    let certificate: Value = ciborium::from_reader(&bytes[3..]).expect("CBOR");
    let fields = certificate.as_map().expect("a map");
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let tree = field("tree");
    assert_eq!(field("signature").as_bytes().unwrap().len(), 48);
    assert_eq!(
        leaf(
            &tree,
            &[b"canister", canister.as_slice(), b"certified_data"]
        ),
        b"state root 1"
    );
    assert_eq!(leb128(&leaf(&tree, &[b"time"])), sim.time_nanos());
    // The next query sees the new data.
    sim.update_call(user(), canister, "set_cert", b"root 2".to_vec())
        .unwrap();
    let bytes = sim.query_call(user(), canister, "cert", vec![]).unwrap();
    let certificate: Value = ciborium::from_reader(&bytes[3..]).unwrap();
    let tree = certificate.as_map().unwrap()[0].1.clone();
    assert_eq!(
        leaf(
            &tree,
            &[b"canister", canister.as_slice(), b"certified_data"]
        ),
        b"root 2"
    );
    // Replicated executions have none.
    let present = sim
        .update_call(user(), canister, "present", vec![])
        .unwrap();
    assert_eq!(present, [0]);
    let as_update = sim.update_call(user(), canister, "cert", vec![]).unwrap();
    assert_eq!(as_update, b"none");
}

#[test]
fn a_composite_query_calls_a_query_of_another_canister_and_its_callback_sees_its_state() {
    let mut sim = new_sim();
    let caller = certifier(&mut sim, 0);
    let callee = echo(&mut sim);
    let reply = sim
        .query_call(user(), caller, "fan", callee.as_slice().to_vec())
        .expect("the composite query replies");
    assert_eq!(
        &reply[..4],
        7u32.to_le_bytes(),
        "the callback sees the state"
    );
    assert_eq!(&reply[4..], b"ping", "the callee's query answered");
    // Nothing of the composite query persists.
    let counter = sim.query_call(user(), caller, "counter", vec![]).unwrap();
    assert_eq!(counter, 0u32.to_le_bytes());
}

#[test]
fn a_composite_query_cannot_call_update_methods_or_other_subnets() {
    let mut sim = two_subnets();
    let caller = certifier(&mut sim, 0);
    let local = echo(&mut sim);
    let remote = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    // An update method is not a query method: the callback sees CANISTER_ERROR (5).
    let reply = sim
        .query_call(user(), caller, "fan_update", local.as_slice().to_vec())
        .unwrap();
    assert_eq!(reply, 1005u32.to_le_bytes());
    // A canister on another subnet is out of reach: DESTINATION_INVALID (3).
    let reply = sim
        .query_call(user(), caller, "fan", remote.as_slice().to_vec())
        .unwrap();
    assert_eq!(reply, 1003u32.to_le_bytes());
}

/// "Overview of imports": composite query callbacks run in the CRy/CRt modes, which are not
/// replicated and have no cycles functions.
#[test]
fn composite_query_callbacks_run_in_their_own_modes() {
    let mut sim = new_sim();
    let caller = certifier(&mut sim, 0);
    let callee = echo(&mut sim);
    let reply = sim
        .query_call(user(), caller, "fan_probe", callee.as_slice().to_vec())
        .unwrap();
    assert_eq!(
        reply,
        [0],
        "in_replicated_execution is 0 in a composite reply callback"
    );
    let err = sim
        .query_call(user(), caller, "fan_cycles", callee.as_slice().to_vec())
        .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0504"));
    assert!(
        err.message.contains(
            "\"ic0_msg_cycles_refunded128\" cannot be executed in composite reply callback mode"
        ),
        "{}",
        err.message
    );
}
