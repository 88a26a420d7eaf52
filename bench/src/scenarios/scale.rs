//! Rollouts at fleet scale on three subnets: 1,000 children against the rounds the simulator's
//! scheduling model says such a rollout needs at least, and a 20 MiB release whose module
//! crosses once per subnet's chunk store, never once per child.

use super::rollouts::{fleet, large_child, roll_out};
use super::{controller, upload, Deployer, Figures};
use candid::Principal;
use deployer::{ReleaseSelector, Selector, StartRolloutArg};
use deployer_client::staged_policy as policy;
use ic_sim::{artifacts, TraceKind, Workload};
use std::collections::BTreeMap;
use std::ops::Range;

const SUBNETS: usize = 3;

/// 1,000 children (334/333/333) on three subnets: a canary of 10, then the rest, 100 at a time.
/// `lower_bound_rounds` is the scheduling model's bound for the work the trace shows, as one
/// batch; `staged_lower_bound_rounds` the canary's bound then the other children's.
pub fn thousand_children() -> Figures {
    const CHILDREN: u64 = 1_000;
    const CONCURRENCY: u32 = 100;
    let mut deployer = fleet(SUBNETS, CHILDREN as usize);
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    const CANARY: usize = 10;
    // What voters and operators read first: the preview (a query, as the proposal validators
    // are) plans every selected child at once.
    let arg = StartRolloutArg {
        plan_sha256: None,
        release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
        selector: Selector::All,
        policy: Some(policy(CANARY as u32, vec![], CONCURRENCY)),
    };
    deployer.preview_rollout_ok(controller(), arg.clone());
    let preview = deployer.env.last_instructions(deployer.canister);
    // A larger selection is prepared (an update, a slice per message), then previewed and
    // validated from the plan kept: the same 1,000 children prepared.
    let trace_from = deployer.env.trace().len();
    deployer.prepare_rollout_ok(controller(), arg.clone());
    let preparing: Vec<u64> = deployer
        .replicated_executions(trace_from)
        .map(|(_, instructions)| instructions)
        .collect();
    deployer.preview_rollout_ok(controller(), arg);
    let prepared_preview = deployer.env.last_instructions(deployer.canister);
    let trace_from = deployer.env.trace().len();
    let mut figures = roll_out(
        &mut deployer,
        &release,
        policy(CANARY as u32, vec![], CONCURRENCY),
    );
    figures.insert(
        "preview_rollout_instructions_per_child".to_string(),
        preview / CHILDREN,
    );
    figures.insert(
        "prepare_rollout_messages".to_string(),
        preparing.len() as u64,
    );
    figures.insert(
        "prepare_rollout_largest_message_instructions".to_string(),
        preparing.iter().copied().max().unwrap_or(0),
    );
    figures.insert(
        "preview_rollout_prepared_instructions".to_string(),
        prepared_preview,
    );
    assert_eq!(
        figures["children_upgraded"], CHILDREN,
        "every child upgraded"
    );
    // Reads of a finished rollout come from its overview: at most 1 % of the 5 B instruction
    // limit of a query, whatever the number of children (the same figures at 200 children).
    // (`child_history_instructions` is reported, not bounded: it decodes the checkpoint.)
    for read in ["get_rollout", "list_rollouts", "storage_stats"] {
        let instructions = figures[&format!("{read}_instructions")];
        assert!(
            instructions < 50_000_000,
            "{read} costs {instructions} instructions"
        );
    }
    let executions_per_child = deployer.replicated_executions(trace_from).count() as u64 / CHILDREN;
    let (rounds_went, canary_ended) = where_the_rounds_go(&deployer, trace_from, CANARY);
    figures.extend(rounds_went);
    let canary_end = deployer
        .env
        .trace()
        .iter()
        .position(|event| event.round >= canary_ended)
        .expect("the rollout went on after its canary");
    let measure = |trace: Range<usize>, operations: u64, concurrency: u32| {
        let workload = measured_workload(
            &deployer,
            trace,
            operations,
            u64::from(concurrency),
            (
                figures["deployer_instructions_per_child"],
                executions_per_child,
            ),
        );
        let terms = deployer
            .env
            .scheduling_model()
            .lower_bound_rounds(&workload);
        (workload, terms)
    };
    let end = deployer.env.trace().len();
    let (workload, whole) = measure(trace_from..end, CHILDREN, CONCURRENCY);
    let (_, canary) = measure(trace_from..canary_end, CANARY as u64, CANARY as u32);
    let rest = CHILDREN - CANARY as u64;
    let (_, after_canary) = measure(canary_end..end, rest, CONCURRENCY);
    let rounds = figures["rounds"];
    let after_canary_rounds = rounds - figures["start_rounds"] - figures["canary_rounds"];
    // The wave after the canary waits for the canary's verdict: its bound comes after the
    // canary's.
    let staged = canary.then(&after_canary);
    figures.extend([
        ("lower_bound_rounds".to_string(), whole.rounds()),
        (
            "rounds_percent_of_lower_bound".to_string(),
            rounds * 100 / whole.rounds(),
        ),
        ("lower_bound_latency_rounds".to_string(), whole.latency),
        (
            "lower_bound_subnet_messages_rounds".to_string(),
            whole.subnet_messages,
        ),
        ("lower_bound_pipeline_rounds".to_string(), whole.pipeline),
        (
            "lower_bound_chain_rounds".to_string(),
            workload.rounds_per_operation,
        ),
        ("staged_lower_bound_rounds".to_string(), staged),
        (
            "rounds_percent_of_staged_lower_bound".to_string(),
            rounds * 100 / staged,
        ),
        (
            "after_canary_lower_bound_rounds".to_string(),
            after_canary.rounds(),
        ),
        (
            "after_canary_rounds_percent_of_lower_bound".to_string(),
            after_canary_rounds * 100 / after_canary.rounds(),
        ),
    ]);
    // A lower bound that a measured rollout beats is not one.
    assert!(
        staged <= rounds && after_canary.rounds() <= after_canary_rounds,
        "the bounds ({staged} in all, {} after the canary) exceed the rounds measured \
         ({rounds}, {after_canary_rounds})",
        after_canary.rounds(),
    );
    figures
}

/// Where a rollout's rounds go beyond the bound, from the management calls the trace shows:
/// rounds before the first child's first call (the start's messages), the canary wave's rounds
/// (until the first call to a child after the `canary` first ones: the next wave waits for
/// it), and a child's chain from its first call's execution to its last's, on average (the
/// bound counts one round trip per call); and the round the canary ended in (the first call
/// after it).
fn where_the_rounds_go(deployer: &Deployer, trace_from: usize, canary: usize) -> (Figures, u64) {
    let trace = &deployer.env.trace()[trace_from..];
    let started = trace.first().map_or(0, |event| event.round);
    // Per target: its first and last call, and whether it was stopped (a child, not a store).
    let mut chains: BTreeMap<Principal, (u64, u64, bool)> = BTreeMap::new();
    for call in deployer.management_calls_since(trace_from) {
        let chain = chains
            .entry(call.target)
            .or_insert((call.round, call.round, false));
        chain.1 = call.round;
        chain.2 |= call.method == "stop_canister";
    }
    chains.retain(|_, (_, _, stopped)| *stopped);
    let mut firsts: Vec<u64> = chains.values().map(|(first, ..)| *first).collect();
    firsts.sort_unstable();
    let chain_sum: u64 = chains.values().map(|(first, last, _)| last - first).sum();
    let figures = Figures::from([
        ("start_rounds".to_string(), firsts[0] - started),
        ("canary_rounds".to_string(), firsts[canary] - firsts[0]),
        (
            "child_chain_rounds_mean".to_string(),
            chain_sum / chains.len() as u64,
        ),
    ]);
    (figures, firsts[canary])
}

/// The rollout's part at trace positions `trace` as the scheduling model's [`Workload`]: each
/// child's chain of management calls (one round trip each, the next call waits for the
/// answer), the calls that count against its subnet's message budget (snapshots at their fixed
/// count, upgrades at the instructions they ran) and where they are in the chain, and the
/// deployer's instructions and executions per operation (`coordinator`).
fn measured_workload(
    deployer: &Deployer,
    trace: Range<usize>,
    operations: u64,
    concurrency: u64,
    coordinator: (u64, u64),
) -> Workload {
    let sim = &deployer.env;
    let model = sim.scheduling_model();
    // Calls are in the order of their rounds: the range's calls are those before its end's.
    let until_round = sim
        .trace()
        .get(trace.end)
        .map_or(u64::MAX, |event| event.round);
    let mut chains: BTreeMap<Principal, Vec<&str>> = BTreeMap::new();
    for call in deployer
        .management_calls_since(trace.start)
        .take_while(|call| call.round < until_round)
    {
        chains.entry(call.target).or_default().push(call.method);
    }
    let snapshots = chains
        .values()
        .flatten()
        .filter(|method| **method == "take_canister_snapshot")
        .count() as u64;
    let upgrades: Vec<u64> = sim.trace()[trace]
        .iter()
        .filter_map(|event| match &event.kind {
            TraceKind::Execution {
                entry,
                instructions,
                ..
            } if entry == "upgrade" => Some(*instructions),
            _ => None,
        })
        .collect();
    let deployer_subnet = sim
        .subnet_of(deployer.canister)
        .expect("the deployer exists");
    let chain_rounds: u64 = chains
        .iter()
        .map(|(child, calls)| {
            let subnet = sim.subnet_of(*child).expect("a child exists");
            calls.len() as u64 * sim.round_trip_rounds(deployer_subnet, subnet)
        })
        .sum();
    // The fewest calls of a child's chain before its first counted call and after its last
    // (the children, stopped; not the chunk stores).
    let counted = |method: &&str| model.counts_against_subnet_budget(method);
    let outside: Vec<(u64, u64)> = chains
        .values()
        .filter(|calls| calls.contains(&"stop_canister"))
        .filter_map(|calls| {
            let first = calls.iter().position(counted)?;
            let last = calls.iter().rposition(counted)?;
            Some((first as u64, (calls.len() - 1 - last) as u64))
        })
        .collect();
    let before = outside.iter().map(|(before, _)| *before).min().unwrap_or(0);
    let after = outside.iter().map(|(_, after)| *after).min().unwrap_or(0);
    let upgrade_instructions = upgrades.iter().sum::<u64>() / upgrades.len().max(1) as u64;
    // Whole messages per operation, rounded down, so the bound stays a lower bound.
    let management_instructions_per_operation = std::iter::repeat_n(
        model.snapshot_instructions,
        (snapshots / operations) as usize,
    )
    .chain(std::iter::repeat_n(
        upgrade_instructions,
        upgrades.len() / operations as usize,
    ))
    .collect();
    let (coordinator_instructions_per_operation, coordinator_executions_per_operation) =
        coordinator;
    Workload {
        operations,
        subnets: SUBNETS as u64,
        concurrency,
        // The mean chain, rounded down: children on the deployer's subnet have shorter trips.
        rounds_per_operation: chain_rounds / operations,
        management_instructions_per_operation,
        coordinator_instructions_per_operation,
        coordinator_executions_per_operation,
        round_trip_rounds: (0..SUBNETS)
            .map(|subnet| sim.round_trip_rounds(deployer_subnet, subnet))
            .collect(),
        round_trips_before_counted: before,
        round_trips_after_counted: after,
    }
}

/// A 20 MiB release (21 chunks) to 2 children on each of three subnets through the chunk
/// stores: the module should cross once per subnet (`bytes_moved_per_module_byte_percent`
/// about 300 plus framing), never once per child.
pub fn chunked_20_mib() -> Figures {
    const CHILDREN: u32 = 2 * SUBNETS as u32;
    let mut deployer = fleet(SUBNETS, CHILDREN as usize);
    let release = upload(&mut deployer, &large_child());
    let mut figures = roll_out(&mut deployer, &release, policy(1, vec![], CHILDREN));
    assert_eq!(
        figures["children_upgraded"],
        u64::from(CHILDREN),
        "every child upgraded"
    );
    let module_bytes = release.summary.size;
    figures.insert("module_bytes".to_string(), module_bytes);
    figures.insert(
        "bytes_moved_per_module_byte_percent".to_string(),
        figures["bytes_moved"] * 100 / module_bytes,
    );
    figures
}
