//! The round scheduling model (`ic_sim::SchedulingConfig`): per-round instruction budgets,
//! round-robin order, the subnet message budget, and deterministic time slicing of long installs
//! (replica `subnet_config.rs` and scheduler: round limit per thread, 1/16 of it for subnet
//! messages, only one long `install_code` per subnet at a time).

mod replica_support;

use ic_management_canister_types::TakeCanisterSnapshotArgs;
use ic_sim::{
    InstallMode, MessageId, Principal, SchedulingConfig, Sim, SimConfig, TraceKind, Workload,
};
use replica_support::*;

/// `spin`: loops as many times as its little-endian u32 argument says, then replies;
/// `canister_init` does the same with the install argument.
fn spin_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (global $sink (mut i32) (i32.const 0))
  (func $spin
    (local $n i32)
    (if (i32.ge_u (call $arg_size) (i32.const 4))
      (then
        (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 4))
        (local.set $n (i32.load (i32.const 0)))))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (global.set $sink (i32.add (global.get $sink) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))
  (func (export "canister_init") (call $spin))
  (func (export "canister_update spin") (call $spin) (call $reply))
)"#,
    )
    .expect("spin WAT")
}

const SPINS: u32 = 20_000;

fn spin_arg() -> Vec<u8> {
    SPINS.to_le_bytes().to_vec()
}

/// Overheads off, so budgets are counted in the canisters' own instructions.
fn scheduling(round_instruction_limit: u64, execution_threads: u64) -> SchedulingConfig {
    SchedulingConfig {
        execution_threads,
        round_instruction_limit,
        execution_overhead_instructions: 0,
        canister_round_overhead_instructions: 0,
        ..SchedulingConfig::default()
    }
}

fn sim_with(scheduling: SchedulingConfig, subnets: usize) -> Sim {
    Sim::new(SimConfig {
        subnets,
        scheduling,
        ..SimConfig::default()
    })
}

/// Instructions of one `spin` execution, measured on a throwaway simulator.
fn spin_instructions() -> u64 {
    let mut sim = sim_with(SchedulingConfig::default(), 1);
    let canister = install_on(&mut sim, 0, &spin_wasm(), Vec::new());
    sim.update_call(user(), canister, "spin", spin_arg())
        .unwrap();
    sim.last_instructions(canister)
}

fn done_round(sim: &Sim, id: MessageId) -> u64 {
    sim.trace()
        .iter()
        .find_map(|e| match e.kind {
            TraceKind::IngressDone { id: done, .. } if done == id => Some(e.round),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id:?} never completed"))
}

/// (round, canister) of every `spin` execution, in trace order.
fn spin_executions(sim: &Sim) -> Vec<(u64, Principal)> {
    sim.trace()
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::Execution {
                canister, entry, ..
            } if entry == "update:spin" => Some((e.round, *canister)),
            _ => None,
        })
        .collect()
}

// A canister gets at most one thread's round limit per round: a message starts while the
// canister has budget left, the rest of its inbox waits for the next round.
#[test]
fn an_inbox_beyond_the_round_budget_spills_into_the_next_round() {
    let per_message = spin_instructions();
    // Room for two messages and a bit: the third starts, the fourth waits.
    let mut sim = sim_with(scheduling(per_message * 5 / 2, 4), 1);
    let canister = install_on(&mut sim, 0, &spin_wasm(), Vec::new());
    let ids: Vec<MessageId> = (0..5)
        .map(|_| {
            sim.submit_update(user(), canister, "spin", spin_arg())
                .unwrap()
        })
        .collect();
    sim.run_until_idle(10);
    let rounds: Vec<u64> = ids.iter().map(|id| done_round(&sim, *id)).collect();
    let first = rounds[0];
    assert_eq!(rounds, vec![first, first, first, first + 1, first + 1]);
}

// Canisters take turns from a start position that rotates every round; with a one-thread budget
// that one canister's inbox exhausts, the other canister runs first in the next round. Two runs
// give the same order.
#[test]
fn canisters_take_turns_in_a_deterministic_rotating_order() {
    let per_message = spin_instructions();
    let run = || {
        let mut sim = sim_with(scheduling(per_message * 5 / 2, 1), 1);
        let a = install_on(&mut sim, 0, &spin_wasm(), Vec::new());
        let b = install_on(&mut sim, 0, &spin_wasm(), Vec::new());
        for canister in [a, b] {
            for _ in 0..3 {
                sim.submit_update(user(), canister, "spin", spin_arg())
                    .unwrap();
            }
        }
        sim.run_until_idle(10);
        (spin_executions(&sim), a, b)
    };
    let (executions, a, b) = run();
    assert_eq!(executions.len(), 6);
    let first_round = executions[0].0;
    // The round's start position is `round % 2` among [a, b] (ids in order).
    let (first, second) = if first_round % 2 == 0 { (a, b) } else { (b, a) };
    assert_eq!(
        executions,
        vec![
            (first_round, first),
            (first_round, first),
            (first_round, first),
            (first_round + 1, second),
            (first_round + 1, second),
            (first_round + 1, second),
        ]
    );
    assert_eq!(run().0, executions);
}

// Subnet messages that do real work share 1/16 of the round limit and start while it is
// positive: a snapshot (2 B instructions) uses up a round, so two snapshots on one subnet take
// two rounds; `canister_status` does not count and runs in the same round.
#[test]
fn snapshots_on_one_subnet_take_one_round_each() {
    let mut sim = sim_with(SchedulingConfig::default(), 1);
    let a = echo(&mut sim);
    let b = echo(&mut sim);
    let snapshot = |canister| {
        candid::encode_one(TakeCanisterSnapshotArgs {
            canister_id: canister,
            replace_snapshot: None,
            uninstall_code: None,
            sender_canister_version: None,
        })
        .unwrap()
    };
    let take_a = sim
        .submit_update(user(), management(), "take_canister_snapshot", snapshot(a))
        .unwrap();
    let take_b = sim
        .submit_update(user(), management(), "take_canister_snapshot", snapshot(b))
        .unwrap();
    let status = sim
        .submit_update(
            user(),
            management(),
            "canister_status",
            candid::encode_one(id_record(b)).unwrap(),
        )
        .unwrap();
    sim.run_until_idle(10);
    let (round_a, round_b) = (done_round(&sim, take_a), done_round(&sim, take_b));
    assert_eq!(round_b, round_a + 1);
    assert_eq!(done_round(&sim, status), round_a);

    // The model's lower bound for the same work: one snapshot per round.
    let bound = sim.scheduling_model().lower_bound_rounds(&Workload {
        operations: 2,
        subnets: 1,
        concurrency: 2,
        rounds_per_operation: 1,
        management_instructions_per_operation: vec![sim.scheduling_model().snapshot_instructions],
        ..Workload::default()
    });
    assert_eq!(bound.subnet_messages, 2);
    assert_eq!(bound.rounds(), round_b - round_a + 1);
}

// Deterministic time slicing of `install_code`: an install longer than a slice takes
// ceil(instructions / slice) rounds, its answer comes after the last one, and only one long
// install runs per subnet at a time; on another subnet one runs in parallel.
#[test]
fn a_long_install_blocks_a_second_long_install_on_the_same_subnet() {
    let mut probe = sim_with(SchedulingConfig::default(), 1);
    let measured = install_on(&mut probe, 0, &spin_wasm(), spin_arg());
    let init_instructions = probe.last_instructions(measured);
    let slice = init_instructions / 3 + 1; // three slices
    let config = SchedulingConfig {
        install_slice_instruction_limit: slice,
        ..SchedulingConfig::default()
    };
    let mut sim = sim_with(config, 2);
    let first = sim.create_canister(0, vec![user()]);
    let second = sim.create_canister(0, vec![user()]);
    let elsewhere = sim.create_canister(1, vec![user()]);
    let install =
        |canister| InstallMode::Install.install_code_payload(canister, &spin_wasm(), spin_arg());
    let ids: Vec<MessageId> = [first, second, elsewhere]
        .into_iter()
        .map(|canister| {
            sim.submit_update(user(), management(), "install_code", install(canister))
                .unwrap()
        })
        .collect();
    sim.run_until_idle(20);
    let started: Vec<u64> = [first, second, elsewhere]
        .iter()
        .map(|canister| {
            sim.trace()
                .iter()
                .find_map(|e| match &e.kind {
                    TraceKind::Execution {
                        canister: c, entry, ..
                    } if c == canister && entry == "install" => Some(e.round),
                    _ => None,
                })
                .unwrap()
        })
        .collect();
    let done: Vec<u64> = ids.iter().map(|id| done_round(&sim, *id)).collect();
    // Three slices: rounds s, s+1, s+2; the answer at the end of s+2.
    assert_eq!(done[0], started[0] + 2);
    assert_eq!(
        started[1],
        done[0] + 1,
        "the second install waits for the first"
    );
    assert_eq!(done[1], started[1] + 2);
    assert_eq!(
        started[2], started[0],
        "another subnet installs in parallel"
    );
    assert_eq!(done[2], done[0]);

    let bound = sim.scheduling_model().lower_bound_rounds(&Workload {
        operations: 2,
        subnets: 1,
        concurrency: 2,
        rounds_per_operation: 1,
        management_instructions_per_operation: vec![init_instructions],
        ..Workload::default()
    });
    assert_eq!(bound.long_installs, 6);
    assert_eq!(bound.rounds(), done[1] - started[0] + 1);
}

// The lower bound's other terms: waves of `concurrency` operations in sequence, and the
// coordinator's instructions against one thread's round limit.
#[test]
fn lower_bound_counts_latency_waves_and_the_coordinator_thread() {
    let model = SchedulingConfig::default();
    let bound = model.lower_bound_rounds(&Workload {
        operations: 1_000,
        subnets: 3,
        concurrency: 100,
        rounds_per_operation: 8,
        management_instructions_per_operation: vec![10_000_000],
        coordinator_instructions_per_operation: 38_000_000,
        coordinator_executions_per_operation: 1,
        ..Workload::default()
    });
    assert_eq!(bound.latency, 10 * 8);
    // 334 installs of 10 M on the busiest subnet, 25 per round (250 M budget).
    assert_eq!(bound.subnet_messages, 14);
    assert_eq!(bound.long_installs, 0);
    // 1_000 x (38 M + 2 M overhead) = 40 B over 4 B per round.
    assert_eq!(bound.coordinator, 10);
    assert_eq!(bound.pipeline, 0, "no round trips given");
    assert_eq!(bound.rounds(), 80);
}

// The pipeline term: a subnet's snapshots (one a round) cannot begin before the calls ahead of
// them in a chain were answered, nor the last operation end before the calls after them were;
// on the subnet with the longest round trip. Stages in sequence add up.
#[test]
fn lower_bound_counts_the_pipeline_fill_and_drain_on_the_slowest_subnet() {
    let model = SchedulingConfig::default();
    let workload = Workload {
        operations: 1_000,
        subnets: 3,
        concurrency: 100,
        rounds_per_operation: 28,
        management_instructions_per_operation: vec![model.snapshot_instructions],
        round_trip_rounds: vec![2, 6, 6],
        round_trips_before_counted: 2,
        round_trips_after_counted: 3,
        ..Workload::default()
    };
    let bound = model.lower_bound_rounds(&workload);
    // 334 snapshots on the busiest subnet, one a round.
    assert_eq!(bound.subnet_messages, 334);
    // Every subnet has 333 or more: on a subnet 6 rounds away, the first runs no earlier than
    // 2 round trips and a request (15 rounds) after the start, and the last one's answer comes
    // 3 rounds after it, with 3 more round trips to the end: 6 x 6 + 333 - 1.
    assert_eq!(bound.pipeline, 368);
    assert_eq!(bound.rounds(), 368);
    let canary = model.lower_bound_rounds(&Workload {
        operations: 10,
        concurrency: 10,
        ..workload.clone()
    });
    // 3 snapshots a subnet at least: 6 x 6 + 3 - 1.
    assert_eq!(canary.pipeline, 38);
    assert_eq!(canary.then(&bound), 38 + 368);
    // Without counted messages a chain is only its latency.
    let free = model.lower_bound_rounds(&Workload {
        management_instructions_per_operation: Vec::new(),
        ..workload
    });
    assert_eq!(free.pipeline, 0);
    assert_eq!(free.rounds(), 10 * 28);
}

// Replica install rate limit (`install_code_rate_limit`): a canister pays off that many install
// instructions per round; until its earlier installs are paid off, `install_code` is refused
// with SYS_TRANSIENT (IC0209) without running.
#[test]
fn install_code_is_refused_until_earlier_installs_are_paid_off() {
    let mut probe = sim_with(SchedulingConfig::default(), 1);
    let measured = install_on(&mut probe, 0, &spin_wasm(), spin_arg());
    let init_instructions = probe.last_instructions(measured);
    // Two rounds to pay off the first install.
    let config = SchedulingConfig {
        install_code_rate_limit: init_instructions / 2 + 1,
        ..SchedulingConfig::default()
    };
    let mut sim = sim_with(config, 1);
    let canister = install_on(&mut sim, 0, &spin_wasm(), spin_arg());
    let upgrade = InstallMode::Upgrade {
        skip_pre_upgrade: false,
        keep_wasm_memory: false,
    };
    let version = sim.canister(canister).unwrap().version;
    let err = sim
        .install_code(user(), canister, &spin_wasm(), Vec::new(), upgrade.clone())
        .unwrap_err();
    assert_eq!(err.code, ic_sim::RejectCode::SysTransient);
    assert_eq!(err.error_code.as_deref(), Some("IC0209"));
    assert!(
        err.message.starts_with(&format!(
            "Canister {canister} is rate limited because it executed too many instructions"
        )),
        "{}",
        err.message
    );
    assert_eq!(sim.canister(canister).unwrap().version, version);
    sim.install_code(user(), canister, &spin_wasm(), Vec::new(), upgrade)
        .unwrap();
}

// `Sim::round_trip_rounds`: a call's response executes that many rounds after the call was
// made, on the same subnet and across subnets.
#[test]
fn round_trip_rounds_match_a_measured_call() {
    let mut sim = two_subnets();
    let caller = forwarder(&mut sim, 0);
    for subnet in [0, 1] {
        let callee = install_on(&mut sim, subnet, &echo_wasm(), Vec::new());
        let from = sim.trace().len();
        forward(
            &mut sim,
            caller,
            &Call::new(callee, "reply_arg", b"x".to_vec()),
        );
        let round_of = |entry: &str| {
            sim.trace()[from..]
                .iter()
                .find_map(|e| match &e.kind {
                    TraceKind::Execution {
                        canister,
                        entry: e_entry,
                        ..
                    } if *canister == caller && e_entry == entry => Some(e.round),
                    _ => None,
                })
                .unwrap()
        };
        assert_eq!(
            round_of("response:reply_arg") - round_of("update:forward"),
            sim.round_trip_rounds(0, subnet)
        );
    }
    assert_eq!(sim.round_trip_rounds(0, 0), 2);
    assert_eq!(sim.round_trip_rounds(0, 1), 6);
}
