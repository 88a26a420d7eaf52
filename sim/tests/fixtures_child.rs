//! The child fixture's variants, run as real ic-cdk Wasm: what a fleet upgrade meets in practice.
//! IC interface specification, management canister: "IC method install_code" (upgrade keeps stable
//! memory; a trap in a hook leaves the canister as it was), "IC method stop_canister" (a canister
//! with open call contexts stays stopping; the stop call errors after a timeout).

mod replica_support;

use candid::Principal;
use ic_sim::{artifacts, CanisterRunStatus, IngressStatus, InstallMode, RejectCode, Sim};
use replica_support::*;

const UPGRADE: InstallMode = InstallMode::Upgrade {
    skip_pre_upgrade: false,
    keep_wasm_memory: false,
};

fn no_arg() -> Vec<u8> {
    candid::encode_args(()).unwrap()
}

fn child(sim: &mut Sim, variant: &str) -> Principal {
    install_on(sim, 0, &artifacts::wasm(variant), no_arg())
}

fn query<R: candid::CandidType + serde::de::DeserializeOwned>(
    sim: &mut Sim,
    canister: Principal,
    method: &str,
) -> R {
    decode(&sim.query_call(user(), canister, method, no_arg()).unwrap())
}

fn increment(sim: &mut Sim, canister: Principal, times: u64) {
    for _ in 0..times {
        let reply = sim
            .update_call(user(), canister, "increment", no_arg())
            .unwrap();
        let _: u64 = decode(&reply);
    }
}

fn module_hash(sim: &Sim, canister: Principal) -> Option<[u8; 32]> {
    sim.canister(canister).unwrap().module_hash
}

#[test]
fn counter_in_stable_memory_survives_upgrade_and_argument_arrives() {
    let mut sim = new_sim();
    let canister = child(&mut sim, "child_v1");
    increment(&mut sim, canister, 3);
    let arg = candid::encode_one(Some("to v2")).unwrap();
    sim.install_code(user(), canister, &artifacts::wasm("child_v2"), arg, UPGRADE)
        .expect("upgrade v1 -> v2");
    assert_eq!(query::<String>(&mut sim, canister, "version"), "v2");
    assert_eq!(query::<u64>(&mut sim, canister, "counter"), 3);
    assert_eq!(query::<u64>(&mut sim, canister, "upgrades"), 1);
    assert_eq!(
        query::<Option<String>>(&mut sim, canister, "last_arg"),
        Some("to v2".to_string())
    );
}

#[test]
fn reinstall_wipes_stable_memory() {
    let mut sim = new_sim();
    let canister = child(&mut sim, "child_v1");
    increment(&mut sim, canister, 2);
    sim.install_code(
        user(),
        canister,
        &artifacts::wasm("child_v2"),
        no_arg(),
        InstallMode::Reinstall,
    )
    .expect("reinstall");
    assert_eq!(query::<u64>(&mut sim, canister, "counter"), 0);
}

#[test]
fn trapping_post_upgrade_leaves_old_module_and_state() {
    let mut sim = new_sim();
    let canister = child(&mut sim, "child_v1");
    increment(&mut sim, canister, 4);
    let before = module_hash(&sim, canister);
    let reject = sim
        .install_code(
            user(),
            canister,
            &artifacts::wasm("child_trap_post_upgrade"),
            no_arg(),
            UPGRADE,
        )
        .expect_err("post_upgrade traps");
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert_eq!(reject.error_code.as_deref(), Some("IC0503"));
    assert!(
        reject.message.contains("post_upgrade always traps"),
        "{reject}"
    );
    assert_eq!(module_hash(&sim, canister), before);
    assert_eq!(query::<String>(&mut sim, canister, "version"), "v1");
    assert_eq!(query::<u64>(&mut sim, canister, "counter"), 4);
    assert_eq!(query::<u64>(&mut sim, canister, "upgrades"), 0);
}

#[test]
fn trapping_pre_upgrade_blocks_upgrade_until_skipped() {
    let mut sim = new_sim();
    let canister = child(&mut sim, "child_trap_pre_upgrade");
    increment(&mut sim, canister, 5);
    let before = module_hash(&sim, canister);
    let reject = sim
        .install_code(
            user(),
            canister,
            &artifacts::wasm("child_v2"),
            no_arg(),
            UPGRADE,
        )
        .expect_err("pre_upgrade traps");
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert_eq!(module_hash(&sim, canister), before);
    assert_eq!(query::<u64>(&mut sim, canister, "counter"), 5);

    let skip = InstallMode::Upgrade {
        skip_pre_upgrade: true,
        keep_wasm_memory: false,
    };
    sim.install_code(
        user(),
        canister,
        &artifacts::wasm("child_v2"),
        no_arg(),
        skip,
    )
    .expect("upgrade with skip_pre_upgrade");
    assert_eq!(query::<String>(&mut sim, canister, "version"), "v2");
    assert_eq!(query::<u64>(&mut sim, canister, "counter"), 5);
}

#[test]
fn open_call_keeps_child_stopping_and_stop_errors_after_timeout() {
    let mut sim = new_sim();
    let probe = install_on(&mut sim, 0, &artifacts::wasm("probe"), no_arg());
    let canister = child(&mut sim, "child_hold_call");
    let hold = sim
        .submit_update(user(), canister, "hold", candid::encode_one(probe).unwrap())
        .unwrap();
    for _ in 0..3 {
        sim.tick();
    }
    assert_eq!(sim.canister(canister).unwrap().open_call_contexts, 1);

    let stop_arg = candid::encode_one(id_record(canister)).unwrap();
    let stop = sim
        .submit_update(user(), management(), "stop_canister", stop_arg)
        .unwrap();
    let started = sim.time_nanos();
    let timeout = sim.config().stop_timeout_nanos;
    while sim.time_nanos() < started + timeout - sim.config().round_duration_nanos {
        sim.tick();
        assert_eq!(
            sim.canister(canister).unwrap().status,
            CanisterRunStatus::Stopping
        );
        assert_eq!(sim.ingress_status(stop), IngressStatus::Processing);
    }
    let reject = sim.await_ingress(stop, 5).expect_err("stop times out");
    assert_eq!(reject.code, RejectCode::SysTransient);
    assert_eq!(reject.error_code.as_deref(), Some("IC0206"));
    assert_eq!(
        sim.canister(canister).unwrap().status,
        CanisterRunStatus::Stopping
    );

    // Starting it again is the way out; releasing the probe then closes the held call.
    management_ingress(&mut sim, user(), "start_canister", &id_record(canister)).unwrap();
    assert_eq!(
        sim.canister(canister).unwrap().status,
        CanisterRunStatus::Running
    );
    sim.update_call(user(), probe, "release", no_arg()).unwrap();
    sim.await_ingress(hold, 50)
        .expect("hold returns once released");
    assert_eq!(sim.canister(canister).unwrap().open_call_contexts, 0);
}

#[test]
fn module_over_ingress_limit_cannot_be_installed_in_one_message() {
    let mut sim = new_sim();
    let wasm = artifacts::wasm("child_large");
    assert!(wasm.len() > 2 * 1024 * 1024);
    let canister = sim.create_canister(0, vec![user()]);
    let reject = sim
        .install_code(user(), canister, &wasm, no_arg(), InstallMode::Install)
        .expect_err("over the 2 MiB ingress limit");
    assert_eq!(reject.code, RejectCode::SysFatal);
    assert_eq!(module_hash(&sim, canister), None);
}
