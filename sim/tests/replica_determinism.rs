//! Determinism, the trace and the stats: same seed and same inputs give the same serialized trace;
//! `raw_rand` (IC interface specification, "IC method raw_rand") follows the seed.

mod replica_support;

use ic_sim::{Sim, SimConfig, Stats, TraceKind};
use replica_support::*;

struct Run {
    trace_json: String,
    stats: Stats,
    random: Vec<u8>,
}

/// A scenario touching every kind of event: ingress, same- and cross-subnet calls, management
/// calls from users and canisters, a timer, a trap, a debug print, a stop and start.
fn scenario(seed: u64) -> Run {
    let mut sim = Sim::new(SimConfig {
        seed,
        subnets: 2,
        ..SimConfig::default()
    });
    let near = echo(&mut sim);
    let far = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    for callee in [near, far] {
        forward(
            &mut sim,
            caller,
            &Call::new(callee, "reply_arg", b"x".to_vec()),
        );
        forward(&mut sim, caller, &Call::new(callee, "trap", b"y".to_vec()));
    }
    let at = sim.time_nanos() + 2_000_000_000;
    sim.update_call(user(), near, "set_timer", at.to_le_bytes().to_vec())
        .unwrap();
    sim.update_call(user(), caller, "burst", burst_arg(far, "reply_arg", 20))
        .unwrap();
    management_ingress(&mut sim, user(), "stop_canister", &id_record(far)).unwrap();
    management_ingress(&mut sim, user(), "start_canister", &id_record(far)).unwrap();
    let random: Vec<u8> =
        decode(&forward_management(&mut sim, caller, "raw_rand", &()).reply_data());
    sim.run_until_idle(100);
    Run {
        trace_json: serde_json::to_string(sim.trace()).unwrap(),
        stats: sim.stats(),
        random,
    }
}

#[test]
fn same_seed_same_inputs_give_an_identical_trace() {
    let first = scenario(7);
    let second = scenario(7);
    assert_eq!(first.trace_json, second.trace_json);
    assert_eq!(first.stats, second.stats);
    assert_eq!(first.random, second.random);
}

#[test]
fn different_seed_gives_different_raw_rand() {
    let seven = scenario(7);
    let eight = scenario(8);
    assert_eq!(seven.random.len(), 32);
    assert_ne!(seven.random, eight.random);
}

// The trace records every kind of event and the stats count rounds, messages, instructions and
// bytes (across subnets separately).
#[test]
fn trace_and_stats_cover_the_run() {
    let mut sim = two_subnets();
    let far = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let before = sim.stats();
    forward(
        &mut sim,
        caller,
        &Call::new(far, "reply_arg", vec![1; 1000]),
    );
    let at = sim.time_nanos();
    sim.update_call(user(), far, "set_timer", at.to_le_bytes().to_vec())
        .unwrap();
    sim.run_until_idle(20);
    let stats = sim.stats();
    assert!(stats.rounds > before.rounds);
    // Ingress + request + response for the forward, ingress + timer.
    assert!(stats.messages >= before.messages + 5);
    assert!(stats.instructions > before.instructions);
    assert!(stats.cross_subnet_bytes >= before.cross_subnet_bytes + 2000);
    assert!(stats.bytes_moved >= stats.cross_subnet_bytes);
    assert!(sim.last_instructions(caller) > 0);

    let has = |f: &dyn Fn(&TraceKind) -> bool| sim.trace().iter().any(|e| f(&e.kind));
    assert!(has(&|k| matches!(k, TraceKind::Ingress { .. })));
    assert!(has(&|k| matches!(
        k,
        TraceKind::IngressDone { ok: true, .. }
    )));
    assert!(has(
        &|k| matches!(k, TraceKind::Request { to, bytes: 1000, .. } if *to == far)
    ));
    assert!(has(
        &|k| matches!(k, TraceKind::Response { from, ok: true, .. } if *from == far)
    ));
    assert!(has(
        &|k| matches!(k, TraceKind::Management { method, ok: true, .. } if method == "install_code")
    ));
    assert!(has(
        &|k| matches!(k, TraceKind::Execution { entry, .. } if entry == "update:forward")
    ));
    assert!(has(
        &|k| matches!(k, TraceKind::Timer { canister } if *canister == far)
    ));
    assert!(has(
        &|k| matches!(k, TraceKind::DebugPrint { text, .. } if text == "timer fired")
    ));
    let rounds: Vec<u64> = sim.trace().iter().map(|e| e.round).collect();
    assert!(
        rounds.windows(2).all(|w| w[0] <= w[1]),
        "trace is in round order"
    );
}
