//! Fleet rollouts: what upgrading children costs the deployer (instructions per child), how
//! many rounds a staged rollout takes, and the bytes a chunked release moves.

use super::{controller, delta, install_on, upload, Deployer, Figures, MIB};
use deployer::{PolicyArg, Release, Selector, WaveSize};
use deployer_client::modules::grown;
use deployer_client::staged_policy as policy;
use ic_sim::{artifacts, SimConfig};

/// A deployer on subnet 0 of `subnets` subnets, with `children` children running child_v1
/// spread as evenly as possible over them (the first subnets take the remainder), adopted, and
/// a registered chunk store on every other subnet (the deployer serves its own).
pub(super) fn fleet(subnets: usize, children: usize) -> Deployer {
    let mut deployer = install_on(SimConfig {
        subnets,
        ..SimConfig::default()
    });
    let per_subnet: Vec<usize> = (0..subnets)
        .map(|subnet| children / subnets + usize::from(subnet < children % subnets))
        .collect();
    let subnet_children = deployer.create_children(controller(), &per_subnet);
    deployer.adopt_all(controller(), &subnet_children);
    for subnet in 1..subnets {
        deployer.register_store(controller(), subnet);
    }
    deployer
}

/// Rounds after which a rollout counts as stuck: far beyond any scenario's.
const STUCK_AFTER_ROUNDS: u64 = 20_000;

/// Starts a rollout of `release` to every child and ticks until it finished; returns the
/// figures of that span, with the deployer's own instructions per upgraded child.
pub(super) fn roll_out(deployer: &mut Deployer, release: &Release, policy: PolicyArg) -> Figures {
    let memory_before = deployer_memory(deployer);
    let before = deployer.env.stats();
    let trace_from = deployer.env.trace().len();
    let rollout_id = deployer
        .start_rollout_of(controller(), release, Selector::All, policy)
        .expect("start_rollout")
        .rollout_id;
    let finished = deployer.run_to_end(controller(), rollout_id, STUCK_AFTER_ROUNDS);
    let upgraded = u64::from(finished.summary.counts.upgraded);
    let mut figures = delta(&before, &deployer.env.stats());
    figures.extend(execution_figures(deployer, trace_from, upgraded));
    figures.extend(instructions_by_entry(deployer, trace_from, upgraded));
    figures.insert("children_upgraded".to_string(), upgraded);
    let (stable_after, heap_after) = deployer_memory(deployer);
    let (stable_before, heap_before) = memory_before;
    figures.insert(
        "deployer_stable_bytes_per_child".to_string(),
        (stable_after - stable_before) / upgraded,
    );
    figures.insert(
        "deployer_heap_bytes_per_child".to_string(),
        (heap_after - heap_before) / upgraded,
    );
    let downtime = deployer.child_downtime_rounds(trace_from);
    figures.insert(
        "child_downtime_rounds_median".to_string(),
        downtime[downtime.len() / 2],
    );
    figures.insert(
        "child_downtime_rounds_max".to_string(),
        *downtime.last().expect("children were stopped"),
    );
    figures.extend(read_costs(deployer, rollout_id));
    figures
}

/// The instructions of the reads a dashboard makes of the finished rollout (queries, as a
/// dashboard calls them): they must not grow with its children.
pub(crate) fn read_costs(deployer: &mut Deployer, rollout_id: u64) -> Figures {
    let canister = deployer.canister;
    let mut figures = Figures::new();
    deployer.get_rollout_ok(controller(), rollout_id);
    let cost = deployer.env.last_instructions(canister);
    figures.insert("get_rollout_instructions".to_string(), cost);
    deployer.list_rollouts_ok(controller(), deployer::ListRolloutsArg::default());
    let cost = deployer.env.last_instructions(canister);
    figures.insert("list_rollouts_instructions".to_string(), cost);
    deployer.storage_stats_ok(controller());
    let cost = deployer.env.last_instructions(canister);
    figures.insert("storage_stats_instructions".to_string(), cost);
    // An upgraded child's history: read from its own entry, not the rollout's checkpoint (141 M
    // instructions at 1,000 children when the checkpoint was decoded whole).
    let child = deployer
        .list_children_ok(controller(), deployer::ListChildrenArg::default())
        .children[0]
        .canister_id;
    let arg = deployer::ChildHistoryArg {
        rollout_id,
        canister_id: child,
        from: None,
        limit: None,
    };
    let history = deployer.child_history_ok(controller(), arg);
    assert!(!history.steps.is_empty(), "the child was upgraded");
    let cost = deployer.env.last_instructions(canister);
    figures.insert("child_history_instructions".to_string(), cost);
    figures
}

/// The deployer's stable memory (as its `storage_stats` counts it, page by page) and Wasm
/// memory, in bytes. Wasm memory never shrinks, so after a rollout it is the rollout's peak.
fn deployer_memory(deployer: &mut Deployer) -> (u64, u64) {
    let stats = deployer.storage_stats_ok(controller());
    let heap = deployer
        .env
        .canister(deployer.canister)
        .expect("the deployer exists")
        .wasm_memory_size;
    (stats.stable_memory_bytes, heap)
}

/// 200 children on two subnets, canary 5, then 25 percent, then the rest, 50 at a time.
pub fn two_hundred_children() -> Figures {
    let mut deployer = fleet(2, 200);
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    roll_out(
        &mut deployer,
        &release,
        policy(5, vec![WaveSize::Percent(25)], 50),
    )
}

/// A 20 MiB release (21 chunks) to 4 children on each of two subnets through the chunk
/// stores: `bytes_moved` is about two copies of the module, one per subnet.
pub fn chunked_20_mib() -> Figures {
    let mut deployer = fleet(2, 8);
    let release = upload(&mut deployer, &large_child());
    let mut figures = roll_out(&mut deployer, &release, policy(1, vec![], 4));
    figures.insert("module_bytes".to_string(), release.summary.size);
    figures
}

/// child_v2 with 20 MiB of incompressible custom section appended: a real child, 21 chunks.
pub(super) fn large_child() -> Vec<u8> {
    grown(&artifacts::wasm("child_v2"), 20 * MIB, 20)
}

/// A backup run over the 200 children of [`two_hundred_children`], with its policy: a snapshot of
/// each running child and no install, so it costs the deployer three management calls a child
/// (cycles check, snapshot, verification) where an upgrade costs six.
pub fn backup_run_200_children() -> Figures {
    let mut deployer = fleet(2, 200);
    let before = deployer.env.stats();
    let trace_from = deployer.env.trace().len();
    let arg = deployer::StartBackupRunArg {
        selector: Selector::All,
        policy: Some(policy(5, vec![WaveSize::Percent(25)], 50)),
        stop_children: false,
    };
    let rollout_id = deployer.start_backup_run_ok(controller(), arg).rollout_id;
    let finished = deployer.run_to_end(controller(), rollout_id, STUCK_AFTER_ROUNDS);
    let backed_up = u64::from(finished.summary.counts.backed_up.unwrap_or(0));
    assert_eq!(backed_up, 200, "every child was backed up");
    let mut figures = delta(&before, &deployer.env.stats());
    figures.extend(execution_figures(&mut deployer, trace_from, backed_up));
    figures.insert("children_backed_up".to_string(), backed_up);
    figures
}

/// The deployer's own instructions per child since `trace_from`, its largest single execution,
/// and its largest after the one that started the rollout, which drive it: outcomes, timers,
/// folds, the end (issue 19: no message may grow with the fleet; `start_rollout` still plans
/// every child in one message). A finished rollout stores its children apart in the messages
/// after its end, a slice each: they are run and counted.
pub(crate) fn execution_figures(
    deployer: &mut Deployer,
    trace_from: usize,
    children: u64,
) -> Figures {
    // A slice of 128 children a message, then the checkpoint's runs 16 a message (512
    // children), each message up to two rounds: 100,000 children need about 1,960.
    deployer.env.run_until_idle(children / 32 + 100);
    let instructions: u64 = deployer
        .replicated_executions(trace_from)
        .map(|(_, instructions)| instructions)
        .sum();
    let largest = |starts: bool| {
        deployer
            .replicated_executions(trace_from)
            .filter(|(entry, _)| starts || !entry.starts_with("update:start_"))
            .map(|(_, instructions)| instructions)
            .max()
            .unwrap_or(0)
    };
    Figures::from([
        (
            "deployer_instructions_per_child".to_string(),
            instructions / children,
        ),
        (
            "largest_deployer_execution_instructions".to_string(),
            largest(true),
        ),
        (
            "largest_driving_execution_instructions".to_string(),
            largest(false),
        ),
    ])
}

/// Where the deployer's instructions per child go: the executions since `trace_from` summed by
/// entry point (`response:stop_canister` is the callback of a `stop_canister` call, with all it
/// started next), per child.
fn instructions_by_entry(deployer: &Deployer, trace_from: usize, children: u64) -> Figures {
    let mut figures = Figures::new();
    for (entry, instructions) in deployer.replicated_executions(trace_from) {
        let entry: String = entry
            .replace("<ic-cdk internal> ", "")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = format!("per_child_instructions_{entry}");
        *figures.entry(name).or_default() += instructions;
    }
    figures.values_mut().for_each(|sum| *sum /= children);
    figures
}

/// Rollouts run one after another over the same 200 children (child_v2, child_v3, and back):
/// what the fifth costs the deployer per child against the first (issue 19: flat; each earlier
/// rollout added about 28 K instructions per child to the next). Each keeps one snapshot per
/// child, replacing the last: by default the deployer keeps every snapshot it took, up to the
/// IC's 10 per canister, and each of them is one more id in the child's record and engine state
/// (measured: 1.03 M, 1.05 M, 1.08 M, 1.08 M, 1.11 M per child over five rollouts, flat from the
/// tenth).
pub fn repeated_200_children() -> Figures {
    const ROLLOUTS: usize = 5;
    let mut deployer = fleet(2, 200);
    let releases = [
        upload(&mut deployer, &artifacts::wasm("child_v2")),
        upload(&mut deployer, &artifacts::wasm("child_v3")),
    ];
    let per_child: Vec<u64> = (0..ROLLOUTS)
        .map(|n| {
            let mut policy = PolicyArg {
                keep_snapshots: Some(1),
                ..policy(5, vec![WaveSize::Percent(25)], 50)
            };
            if n > 0 {
                // Back and forth between two releases: every second one is not higher.
                policy.gate_overrides = Some(vec![deployer::GateOverride {
                    gate: deployer::UpgradeGate::HigherVersion,
                    reason: "the bench alternates two releases".into(),
                }]);
            }
            let figures = roll_out(&mut deployer, &releases[n % 2], policy);
            assert_eq!(figures["children_upgraded"], 200, "rollout {n}");
            figures["deployer_instructions_per_child"]
        })
        .collect();
    let (first, second, last) = (per_child[0], per_child[1], per_child[ROLLOUTS - 1]);
    // The first takes each child's first snapshot; from the second on, each replaces one.
    Figures::from([
        ("first_deployer_instructions_per_child".to_string(), first),
        ("second_deployer_instructions_per_child".to_string(), second),
        ("fifth_deployer_instructions_per_child".to_string(), last),
        ("fifth_percent_of_first".to_string(), last * 100 / first),
        ("fifth_percent_of_second".to_string(), last * 100 / second),
    ])
}
