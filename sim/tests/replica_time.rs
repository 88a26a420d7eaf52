//! Conformance tests: time, rounds and the global timer (IC interface specification, "Canister
//! interface": `ic0.time`, "Global timer" / `ic0.global_timer_set`, `canister_global_timer`).

mod replica_support;

use ic_sim::{InstallMode, TraceKind};
use replica_support::*;

const SECOND: u64 = 1_000_000_000;

fn set_timer(sim: &mut ic_sim::Sim, canister: candid::Principal, at: u64) {
    sim.update_call(user(), canister, "set_timer", at.to_le_bytes().to_vec())
        .unwrap();
}

fn timer_count(sim: &mut ic_sim::Sim, canister: candid::Principal) -> u32 {
    let bytes = sim
        .query_call(user(), canister, "timer_count", Vec::new())
        .unwrap();
    u32::from_le_bytes(bytes.try_into().unwrap())
}

fn timer_events(sim: &ic_sim::Sim) -> Vec<u64> {
    sim.trace()
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::Timer { .. }))
        .map(|e| e.time_nanos)
        .collect()
}

// `ic0.time`: each round advances the clock by the round duration; an ingress message runs in the
// next round and sees that round's time.
#[test]
fn time_advances_one_round_duration_per_tick() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let round_duration = sim.config().round_duration_nanos;
    let (t0, r0) = (sim.time_nanos(), sim.round());
    sim.tick();
    assert_eq!(sim.time_nanos(), t0 + round_duration);
    assert_eq!(sim.round(), r0 + 1);
    let before = sim.time_nanos();
    let seen = sim
        .update_call(user(), canister, "time", Vec::new())
        .unwrap();
    assert_eq!(
        u64::from_le_bytes(seen.try_into().unwrap()),
        before + round_duration
    );
    // `advance_time` moves the clock without a round.
    let (t1, r1) = (sim.time_nanos(), sim.round());
    sim.advance_time(60 * SECOND);
    assert_eq!((sim.time_nanos(), sim.round()), (t1 + 60 * SECOND, r1));
}

// "Global timer": fires once when the time has come and is then deactivated.
#[test]
fn global_timer_fires_once_at_its_time() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let at = sim.time_nanos() + 5 * SECOND;
    set_timer(&mut sim, canister, at);
    assert_eq!(sim.canister(canister).unwrap().global_timer, at);
    while sim.time_nanos() < at {
        assert_eq!(timer_count(&mut sim, canister), 0, "not before its time");
        sim.tick();
    }
    assert_eq!(timer_count(&mut sim, canister), 1);
    assert_eq!(sim.canister(canister).unwrap().global_timer, 0);
    for _ in 0..10 {
        sim.tick();
    }
    assert_eq!(timer_count(&mut sim, canister), 1, "one-shot");
    let fired = timer_events(&sim);
    assert_eq!(fired.len(), 1);
    assert!(fired[0] >= at);
    assert!(sim.logs(canister).contains(&"timer fired".to_string()));
}

// "Global timer": a time already passed fires at the next round; `advance_time` makes a timer due.
#[test]
fn global_timer_in_the_past_fires_at_the_next_round() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    set_timer(&mut sim, canister, 1);
    sim.tick();
    assert_eq!(timer_count(&mut sim, canister), 1);

    let at = sim.time_nanos() + 3600 * SECOND;
    set_timer(&mut sim, canister, at);
    sim.advance_time(3600 * SECOND);
    assert_eq!(
        timer_count(&mut sim, canister),
        1,
        "advance_time runs nothing"
    );
    sim.tick();
    assert_eq!(timer_count(&mut sim, canister), 2);
}

// "Global timer": `install_code` deactivates it.
#[test]
fn install_code_deactivates_the_global_timer() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let at = sim.time_nanos() + 10 * SECOND;
    set_timer(&mut sim, canister, at);
    sim.install_code(
        user(),
        canister,
        &echo_wasm_version(2),
        Vec::new(),
        InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: false,
        },
    )
    .unwrap();
    assert_eq!(sim.canister(canister).unwrap().global_timer, 0);
    sim.advance_time(20 * SECOND);
    sim.tick();
    assert!(timer_events(&sim).is_empty());
}

// The global timer does not fire while the canister is stopped; it fires once it runs again.
#[test]
fn global_timer_waits_while_the_canister_is_stopped() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let at = sim.time_nanos() + 2 * SECOND;
    set_timer(&mut sim, canister, at);
    management_ingress(&mut sim, user(), "stop_canister", &id_record(canister)).unwrap();
    sim.advance_time(10 * SECOND);
    sim.tick();
    assert!(timer_events(&sim).is_empty());
    management_ingress(&mut sim, user(), "start_canister", &id_record(canister)).unwrap();
    sim.tick();
    assert_eq!(timer_events(&sim).len(), 1);
}

// `run_until_idle` stops once nothing is queued, in flight or due in the next round.
#[test]
fn run_until_idle_waits_for_due_timers_and_messages() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    assert_eq!(sim.run_until_idle(10), 0);
    sim.submit_update(user(), canister, "reply_arg", Vec::new())
        .unwrap();
    assert_eq!(sim.run_until_idle(10), 1);
    let at = sim.time_nanos() + SECOND;
    set_timer(&mut sim, canister, at);
    assert!(sim.run_until_idle(10) >= 1);
    assert_eq!(timer_count(&mut sim, canister), 1);
}

// "Periodic tasks": `canister_heartbeat` runs once per round while the canister is running.
#[test]
fn heartbeat_runs_every_round_while_running() {
    let mut sim = new_sim();
    let heartbeat = wat::parse_str(
        r#"(module
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func (export "canister_heartbeat")
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))))
  (func (export "canister_query beats")
    (call $reply_append (i32.const 0) (i32.const 4))
    (call $reply)))"#,
    )
    .unwrap();
    let canister = install_on(&mut sim, 0, &heartbeat, Vec::new());
    let beats = |sim: &mut ic_sim::Sim| {
        let bytes = sim
            .query_call(user(), canister, "beats", Vec::new())
            .unwrap();
        u32::from_le_bytes(bytes.try_into().unwrap())
    };
    let before = beats(&mut sim);
    for _ in 0..5 {
        sim.tick();
    }
    assert_eq!(beats(&mut sim), before + 5);
    management_ingress(&mut sim, user(), "stop_canister", &id_record(canister)).unwrap();
    management_ingress(&mut sim, user(), "start_canister", &id_record(canister)).unwrap();
    let after_restart = beats(&mut sim);
    sim.tick();
    assert_eq!(beats(&mut sim), after_restart + 1);
    // Heartbeats do not keep the simulation busy.
    assert_eq!(sim.run_until_idle(5), 0);
}
