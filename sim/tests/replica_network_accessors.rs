//! What a network serving the simulator reads from it and sets on it: the routing table's
//! ranges, a module's `icp:` custom sections, and the root key canisters see
//! (IC interface specification: "Canister ranges", "Canister information", `ic0.root_key_copy`).

mod replica_support;

use ic_sim::{InstallMode, Sim, SimConfig};
use replica_support::*;

/// Replies to the update `root_key` (`ic0.root_key_*` are replicated-mode only) with the bytes of `ic0.root_key_copy`; carries one public
/// and one private metadata section.
fn root_key_wasm() -> Vec<u8> {
    let mut wasm = wat::parse_str(
        r#"(module
          (import "ic0" "root_key_size" (func $size (result i32)))
          (import "ic0" "root_key_copy" (func $copy (param i32 i32 i32)))
          (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
          (import "ic0" "msg_reply" (func $reply))
          (memory 1)
          (func (export "canister_update root_key")
            (call $copy (i32.const 0) (i32.const 0) (call $size))
            (call $append (i32.const 0) (call $size))
            (call $reply)))"#,
    )
    .unwrap();
    for (name, content) in [
        ("icp:public candid:service", "service : {}"),
        ("icp:private secret", "s3cr3t"),
    ] {
        let mut payload = leb128(name.len());
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(content.as_bytes());
        wasm.push(0); // custom section id
        wasm.extend(leb128(payload.len()));
        wasm.extend(payload);
    }
    wasm
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn canisters_read_the_root_key_the_network_sets() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, &root_key_wasm(), vec![]);
    let default_key = sim
        .update_call(user(), canister, "root_key", vec![])
        .unwrap();
    assert_eq!(default_key, sim.root_key());
    let network_key = vec![7u8; 133];
    sim.set_root_key(network_key.clone());
    assert_eq!(
        sim.update_call(user(), canister, "root_key", vec![])
            .unwrap(),
        network_key
    );
}

#[test]
fn metadata_sections_are_read_with_their_visibility() {
    let mut sim = new_sim();
    let empty = sim.create_canister(0, vec![user()]);
    assert!(sim.canister_metadata(empty).is_none());
    let wasm = root_key_wasm();
    sim.install_code(user(), empty, &wasm, vec![], InstallMode::Install)
        .unwrap();
    let metadata = sim.canister_metadata(empty).unwrap();
    assert_eq!(metadata["candid:service"], (true, b"service : {}".to_vec()));
    assert_eq!(metadata["secret"], (false, b"s3cr3t".to_vec()));
}

#[test]
fn canister_id_ranges_cover_the_ids_each_subnet_gives_out() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        ..SimConfig::default()
    });
    for subnet in 0..2 {
        let (low, high) = sim.canister_id_range(subnet);
        let id = sim.create_canister(subnet, vec![user()]);
        assert!(
            low <= id && id <= high,
            "{id} outside subnet {subnet}'s range"
        );
        assert_eq!(sim.subnet_of_id(low), Some(subnet));
        assert_eq!(sim.subnet_of_id(high), Some(subnet));
    }
    assert!(sim.canister_id_range(0).1 < sim.canister_id_range(1).0);
    assert_eq!(sim.subnet_of_id(candid::Principal::anonymous()), None);
}
