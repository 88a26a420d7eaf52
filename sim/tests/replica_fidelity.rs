//! Divergences from the IC interface specification found by running canisters nobody here wrote
//! (issue 14), each pinned here with its section.

mod replica_support;
use candid::Principal;
use ic_management_canister_types::{CanisterSettings, UpdateSettingsArgs};
use ic_sim::{InstallMode, RejectCode, Sim};
use replica_support::*;

fn set_minimum_incoming_cycles(sim: &mut Sim, canister: Principal, minimum: u64) {
    let args = UpdateSettingsArgs {
        canister_id: canister,
        settings: CanisterSettings {
            minimum_incoming_canister_call_cycles: Some(candid::Nat::from(minimum)),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management_ingress(sim, user(), "update_settings", &args).expect("update_settings");
}

/// Abstract behaviour, "Calls with insufficient cycles are rejected" (and the changelog of
/// 0.64): a call from another canister attaching fewer cycles than the callee's
/// `minimum_incoming_canister_call_cycles` is rejected with CANISTER_ERROR and every attached
/// cycle refunded; at the minimum it goes through; ingress is not affected.
#[test]
fn calls_below_minimum_incoming_canister_call_cycles_are_rejected_and_refunded() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    set_minimum_incoming_cycles(&mut sim, callee, 1_000_000);
    let mut call = Call::new(callee, "reply_arg", b"hi".to_vec());
    call.cycles = 999_999;
    match forward(&mut sim, caller, &call) {
        Forwarded::Reject {
            code,
            refund,
            message,
        } => {
            assert_eq!(code, RejectCode::CanisterError as u32);
            assert_eq!(refund, 999_999, "all attached cycles come back");
            assert!(message.contains("1000000"), "{message}");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
    call.cycles = 1_000_000;
    assert_eq!(forward(&mut sim, caller, &call).reply_data(), b"hi");
    // Ingress carries no cycles and is not affected.
    assert_eq!(
        sim.update_call(user(), callee, "reply_arg", b"ingress".to_vec())
            .unwrap(),
        b"ingress"
    );
    // Without the setting (0) a call without cycles goes through.
    set_minimum_incoming_cycles(&mut sim, callee, 0);
    call.cycles = 0;
    assert_eq!(forward(&mut sim, caller, &call).reply_data(), b"hi");
}

/// A canister that records `ic0.canister_version` as `canister_init`, `canister_pre_upgrade` and
/// `canister_post_upgrade` see it (stable memory bytes 0, 8, 16) and answers `seen` with them
/// and the version an update and a query see (bytes 24, 32).
fn version_probe() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "ic0" "canister_version" (func $version (result i64)))
  (import "ic0" "stable64_size" (func $stable_size (result i64)))
  (import "ic0" "stable64_grow" (func $stable_grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $stable_write (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $stable_read (param i64 i64 i64)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func $record (param $at i64)
    (if (i64.eqz (call $stable_size)) (then (drop (call $stable_grow (i64.const 1)))))
    (i64.store (i32.const 0) (call $version))
    (call $stable_write (local.get $at) (i64.const 0) (i64.const 8)))
  (func (export "canister_init") (call $record (i64.const 0)))
  (func (export "canister_pre_upgrade") (call $record (i64.const 8)))
  (func (export "canister_post_upgrade") (call $record (i64.const 16)))
  (func (export "canister_update update") (call $record (i64.const 24)) (call $reply))
  (func (export "canister_query query")
    (i64.store (i32.const 0) (call $version))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply))
  (func (export "canister_query seen")
    (call $stable_read (i64.const 64) (i64.const 0) (i64.const 32))
    (call $append (i32.const 64) (i32.const 32))
    (call $reply)))"#,
    )
    .unwrap()
}

fn words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
        .collect()
}

/// Abstract behaviour, "IC Management Canister: Code installation" (`canister_init` runs with
/// `canister_version = S.canister_version + 1`), "Code upgrade" (Env1 of `canister_pre_upgrade`
/// has the old version, Env2 of `canister_post_upgrade` the incremented one) and "Query call"
/// executed as an update (the version is incremented like after any successful message).
#[test]
fn canister_versions_as_init_upgrade_hooks_and_replicated_queries_see_them() {
    let mut sim = new_sim();
    let canister = sim.create_canister(0, vec![user()]);
    assert_eq!(sim.canister(canister).unwrap().version, 0);
    let wasm = version_probe();
    sim.install_code(user(), canister, &wasm, Vec::new(), InstallMode::Install)
        .unwrap();
    assert_eq!(sim.canister(canister).unwrap().version, 1);
    let seen = |sim: &mut Sim| words(&sim.query_call(user(), canister, "seen", vec![]).unwrap());
    assert_eq!(seen(&mut sim)[0], 1, "canister_init sees the new version");

    sim.update_call(user(), canister, "update", vec![]).unwrap();
    assert_eq!(seen(&mut sim)[3], 1, "an update sees the version before it");
    assert_eq!(sim.canister(canister).unwrap().version, 2);

    // A query executed as an update (replicated) increments the version too.
    let reply = sim.update_call(user(), canister, "query", vec![]).unwrap();
    assert_eq!(words(&reply), [2]);
    assert_eq!(sim.canister(canister).unwrap().version, 3);
    // A non-replicated query does not.
    let reply = sim.query_call(user(), canister, "query", vec![]).unwrap();
    assert_eq!(words(&reply), [3]);
    assert_eq!(sim.canister(canister).unwrap().version, 3);

    sim.install_code(
        user(),
        canister,
        &wasm,
        Vec::new(),
        InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: false,
        },
    )
    .unwrap();
    let seen = seen(&mut sim);
    assert_eq!(seen[1], 3, "canister_pre_upgrade sees the old version");
    assert_eq!(seen[2], 4, "canister_post_upgrade sees the new version");
    assert_eq!(sim.canister(canister).unwrap().version, 4);
}

/// `canister_info_result` with `change` as `ic.did` declares it: `details : change_details`.
#[derive(candid::CandidType, serde::Deserialize, Debug)]
struct IcDidChange {
    timestamp_nanos: u64,
    canister_version: u64,
    origin: ic_management_canister_types::ChangeOrigin,
    details: ic_management_canister_types::ChangeDetails,
}

#[derive(candid::CandidType, serde::Deserialize, Debug)]
struct IcDidInfo {
    total_num_changes: u64,
    recent_changes: Vec<IcDidChange>,
    module_hash: Option<serde_bytes::ByteBuf>,
    controllers: Vec<Principal>,
}

/// Management canister, `canister_info` (ic.did: `change = record { ...; details :
/// change_details }`): a canister decoding the reply with the `ic.did` types reads every change;
/// the reply's wire type has the plain variant, not `opt`.
#[test]
fn canister_info_changes_carry_details_as_a_plain_variant() {
    let mut sim = new_sim();
    let observer = forwarder(&mut sim, 0);
    let canister = echo(&mut sim);
    let args = ic_management_canister_types::CanisterInfoArgs {
        canister_id: canister,
        num_requested_changes: Some(5),
    };
    let reply = forward_management(&mut sim, observer, "canister_info", &args).reply_data();
    let info: IcDidInfo = candid::decode_one(&reply).expect("decodes with the ic.did types");
    assert_eq!(info.total_num_changes, 2, "creation and install");
    assert!(matches!(
        info.recent_changes[1].details,
        ic_management_canister_types::ChangeDetails::CodeDeployment(_)
    ));
    // What the simulator used to send (the crate's `opt change_details`) does not decode with
    // the ic.did types: the check above fails for it.
    let crate_typed: ic_management_canister_types::CanisterInfoResult =
        candid::decode_one(&reply).expect("the crate's type reads it too");
    let opt_encoded = candid::encode_one(&crate_typed).unwrap();
    assert!(candid::decode_one::<IcDidInfo>(&opt_encoded).is_err());
}
