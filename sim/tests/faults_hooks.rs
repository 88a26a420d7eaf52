//! Hooks run before a chosen round ([`ic_sim::Sim::at_round`]): e.g. a controller's own upgrade
//! of a canister injected in the middle of a scenario.

mod replica_support;

use ic_sim::{InstallMode, Sim, SimConfig, TraceKind};
use replica_support::*;
use sha2::{Digest, Sha256};

// The hook runs just before its round, and what it submits executes in that round.
#[test]
fn hook_runs_just_before_its_round() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let round = sim.round() + 5;
    sim.at_round(round, move |sim: &mut Sim| {
        assert_eq!(sim.round(), round - 1);
        sim.submit_update(user(), canister, "write", b"from the hook".to_vec())
            .unwrap();
    });
    for _ in 0..5 {
        assert_ne!(
            sim.query_call(user(), canister, "read", Vec::new())
                .unwrap(),
            b"from the hook"
        );
        sim.tick();
    }
    assert_eq!(sim.round(), round);
    assert_eq!(
        sim.query_call(user(), canister, "read", Vec::new())
            .unwrap(),
        b"from the hook"
    );
    let hooks: Vec<u64> = sim
        .trace()
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::Hook { round } => Some(round),
            _ => None,
        })
        .collect();
    assert_eq!(hooks, vec![round]);
}

// A hook may run calls to completion: here the callee is upgraded while a slow cross-subnet call
// to it is in flight; the call then reaches the new module.
#[test]
fn hook_upgrades_a_canister_while_a_call_is_in_flight() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 10,
        ..SimConfig::default()
    });
    let callee = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let v2 = echo_wasm_version(2);
    let upgrade_round = sim.round() + 4;
    let wasm = v2.clone();
    sim.at_round(upgrade_round, move |sim: &mut Sim| {
        let mode = InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: false,
        };
        sim.install_code(user(), callee, &wasm, Vec::new(), mode)
            .unwrap();
    });
    // `v2` only exists in the new module.
    let answer = forward(&mut sim, caller, &Call::new(callee, "v2", Vec::new()));
    assert!(matches!(answer, Forwarded::Reply { .. }), "{answer:?}");
    let hash: [u8; 32] = Sha256::digest(&v2).into();
    assert_eq!(sim.canister(callee).unwrap().module_hash, Some(hash));
}
