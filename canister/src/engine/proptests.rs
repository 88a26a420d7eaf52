//! Property tests: random fleets, policies and scripts of outcomes, completions in random
//! order, operator commands, cycle pauses, deployer upgrades, and a random dispatch limit per
//! call (0 and 1 included). The harness checks after every step that no child has two actions
//! in flight, no install lacks its snapshot, the concurrency limit holds for active children
//! and for actions in flight, a dispatch issues no more than its limit (and holds back only
//! when it reached it), and waves never overlap; after driving the rollout to its end (still
//! under a limit), every child runs the release or its previous module (or is stopped because
//! the policy said so, with the reason).
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::world::{upgraded_state, Fate, Harness, SimChild};
use super::*;

const RELEASE: ModuleHash = ModuleHash([9; 32]);
const OLD_MODULES: [ModuleHash; 2] = [ModuleHash([1; 32]), ModuleHash([2; 32])];

#[derive(Clone, Debug)]
enum EngineOp {
    /// Answers the in-flight action at `pick` (modulo their number): completions interleave.
    Answer {
        pick: usize,
        fate: Fate,
    },
    Tick(Nanos),
    Command(Command),
    /// The driver finds the balance too low for the next steps.
    PauseForCycles,
    /// In-flight calls take effect where `applied` has a bit set, then their replies are lost.
    UpgradeDeployer {
        applied: u32,
    },
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        12 => Just(Fate::Ok),
        2 => Just(Fate::Transient),
        1 => Just(Fate::Permanent),
        2 => any::<bool>().prop_map(|applied| Fate::Unknown { applied }),
        1 => Just(Fate::StopHangs),
    ]
}

fn op() -> impl Strategy<Value = EngineOp> {
    prop_oneof![
        60 => (any::<usize>(), fate()).prop_map(|(pick, fate)| EngineOp::Answer { pick, fate }),
        8 => (0..100u64).prop_map(EngineOp::Tick),
        2 => Just(EngineOp::Command(Command::Pause)),
        4 => Just(EngineOp::Command(Command::Resume)),
        1 => Just(EngineOp::Command(Command::Abort)),
        1 => Just(EngineOp::Command(Command::RollBackAll)),
        1 => Just(EngineOp::PauseForCycles),
        3 => any::<u32>().prop_map(|applied| EngineOp::UpgradeDeployer { applied }),
    ]
}

/// The `max_new` of one dispatch: often none or one, sometimes a few, sometimes no limit.
fn dispatch_limit() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(0u32),
        3 => Just(1u32),
        2 => 2..4u32,
        2 => Just(u32::MAX),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    let waves = (
        0..4u32,
        prop::collection::vec(
            prop_oneof![
                (0..4u32).prop_map(WaveSize::Count),
                (1..=100u8).prop_map(WaveSize::Percent)
            ],
            0..3,
        ),
    )
        .prop_map(|(canary, then)| WavePlan { canary, then });
    let budget = prop_oneof![
        (0..3u32).prop_map(FailureBudget::Count),
        (0..=100u8).prop_map(FailureBudget::Percent)
    ];
    (
        waves,
        1..5u32,
        0..50u64,
        any::<bool>(),
        any::<bool>(),
        1..4u32,
        1..10u64,
        budget,
        any::<bool>(),
        prop_oneof![Just(None), (1..3u32).prop_map(Some)],
        prop_oneof![Just(None), (1..4u8).prop_map(Some)],
    )
        .prop_map(
            |(
                waves,
                max_concurrency,
                bake_nanos,
                snapshots,
                roll_back,
                attempts,
                base,
                budget,
                health,
                max_stopped_per_subnet,
                keep_snapshots,
            )| {
                Policy {
                    waves,
                    max_concurrency,
                    max_stopped_per_subnet,
                    bake_nanos,
                    snapshot_before_install: snapshots,
                    keep_snapshots,
                    install: InstallOptions::default(),
                    verification: Verification {
                        health_method: health.then(|| "health".into()),
                    },
                    retry: RetryPolicy {
                        max_attempts: attempts,
                        base_backoff_nanos: base,
                        max_backoff_nanos: base * 4,
                    },
                    on_failure: if roll_back && snapshots {
                        OnFailure::RollBack
                    } else {
                        OnFailure::LeaveStopped
                    },
                    failure_budget: budget,
                    gate_overrides: None,
                }
            },
        )
}

fn plan() -> impl Strategy<Value = Plan> {
    let child = (
        prop_oneof![8 => (0..2usize).prop_map(Some), 1 => Just(None)],
        0..3u32,
        prop::collection::vec(any::<bool>(), 0..=MAX_SNAPSHOTS_PER_CANISTER),
    );
    let operation = prop_oneof![
        4 => any::<bool>().prop_map(|chunked| Operation::Upgrade(TargetRelease {
            module_hash: RELEASE,
            delivery: if chunked {
                Delivery::ChunkStore
            } else {
                Delivery::InstallCode
            },
        })),
        1 => any::<bool>().prop_map(|stop_children| Operation::Backup(BackupRun { stop_children })),
        // The snapshot is fixed below, once the child is known: its first, or one it lacks.
        1 => Just(Operation::Restore(RestoreRun { snapshot: SnapshotId(vec![]) })),
    ];
    (prop::collection::vec(child, 1..10), policy(), operation).prop_map(
        |(children, policy, operation)| {
            restore_of_one(Plan {
                operation,
                children: (0u32..)
                    .zip(children)
                    .map(|(n, (module, subnet, snapshots))| ChildSpec {
                        id: ChildId::new(n.to_be_bytes()).expect("4 bytes fit a principal"),
                        module_hash: Some(module.map_or(RELEASE, |m| OLD_MODULES[m])),
                        subnet: SubnetIndex(subnet),
                        snapshots: (0u32..)
                            .zip(snapshots)
                            .map(|(k, made_by_deployer)| ExistingSnapshot {
                                id: SnapshotId([n.to_be_bytes(), k.to_be_bytes()].concat()),
                                made_by_deployer,
                            })
                            .collect(),
                    })
                    .collect(),
                policy,
            })
        },
    )
}

/// A restore plan as `restore_child` makes it: the first child, its first snapshot (or one it
/// does not hold), no snapshot of its own, no rollback policy. Other plans are left as they are.
fn restore_of_one(mut plan: Plan) -> Plan {
    if let Operation::Restore(run) = &mut plan.operation {
        plan.children.truncate(1);
        run.snapshot = match plan.children[0].snapshots.first() {
            Some(snapshot) => snapshot.id.clone(),
            None => SnapshotId(b"not held".to_vec()),
        };
        plan.policy.snapshot_before_install = false;
        plan.policy.on_failure = OnFailure::LeaveStopped;
    }
    plan
}

/// Runs `ops`, each followed by a dispatch under its limit, then answers everything with
/// success until the rollout settles, dispatching under `final_limit` (at least 1), and checks
/// the end state against the world.
fn run(plan: Plan, ops: Vec<(EngineOp, u32)>, final_limit: u32) -> Result<(), String> {
    let initial: Vec<(ChildId, SimChild)> = {
        let world = super::world::World::new(&plan);
        world.children.into_iter().collect()
    };
    let previous: std::collections::BTreeMap<ChildId, Option<ModuleHash>> = plan
        .children
        .iter()
        .map(|spec| (spec.id.clone(), spec.module_hash))
        .collect();
    let keep_snapshots = plan.policy.keep_snapshots;
    let upgrade = plan.operation.release().is_some();
    let restore = matches!(plan.operation, Operation::Restore(_));
    let mut h = Harness::new(plan);
    let mut stored = h.rollout.children().to_vec();
    h.dispatch()?;
    for (step, (op, max_new)) in ops.into_iter().enumerate() {
        check_checkpoint(&mut h.rollout, &mut stored)?;
        check_summary(&mut h.rollout, step % 2 == 0)?;
        match op {
            EngineOp::Answer { pick, fate } => {
                if !h.in_flight.is_empty() {
                    h.answer(pick % h.in_flight.len(), fate)?;
                }
            }
            EngineOp::Tick(nanos) => h.now += nanos,
            EngineOp::Command(command) => {
                // Commands refused in the current phase are part of the script, not a failure.
                let _refused = h.command(command);
            }
            EngineOp::PauseForCycles => {
                // Refused unless running, like an operator pause.
                let _refused = h.rollout.pause_for_cycles(1, 2, h.now);
            }
            EngineOp::UpgradeDeployer { applied } => {
                h.upgrade_deployer(|n| applied >> (n % 32) & 1 == 1)?;
            }
        }
        h.max_new = max_new;
        h.dispatch()?;
    }
    h.max_new = final_limit;
    // A rollout paused for cycles is resumed once the deployer is topped up.
    if matches!(
        h.rollout.phase(),
        RolloutPhase::Paused(PauseReason::InsufficientCycles { .. })
    ) {
        h.command(Command::Resume)
            .map_err(|error| error.to_string())?;
    }
    h.run(100_000, |_| Fate::Ok)?;
    check_checkpoint(&mut h.rollout, &mut stored)?;
    check_summary(&mut h.rollout, false)?;

    if !h.rollout.is_settled() || !h.in_flight.is_empty() {
        return Err(format!("not settled: {:?}", h.rollout.summary()));
    }
    for (id, start) in initial {
        let child = h.rollout.child(&id).expect("selected child");
        let sim = h.world.child(&id);
        let previous = previous[&id];
        let running_on = |module: Option<ModuleHash>, state: u64| {
            sim.status == RunStatus::Running && sim.module == module && sim.state == state
        };
        let ChildState::Finished(verdict) = child.state() else {
            if child.state() == ChildState::Queued && running_on(previous, start.state) {
                continue;
            }
            return Err(format!("{id:?} ended {:?} with {sim:?}", child.state()));
        };
        let consistent = match &verdict {
            Verdict::Upgraded => upgrade && running_on(Some(RELEASE), upgraded_state(start.state)),
            // Running what it ran, its state untouched, and holding the snapshot the run took.
            Verdict::BackedUp => {
                !upgrade
                    && running_on(previous, start.state)
                    && child.rollout_snapshot().is_some_and(|snapshot| {
                        sim.taken.contains(snapshot)
                            && sim.snapshots.iter().any(|held| &held.id == snapshot)
                    })
            }
            Verdict::Skipped(_) => running_on(Some(RELEASE), start.state),
            Verdict::Failed(_) | Verdict::Cancelled | Verdict::NotStarted => {
                running_on(previous, start.state)
            }
            // The world's snapshots taken before the rollout hold the child's module and state 0.
            Verdict::RolledBack(RollbackCause::Restore) => {
                restore && running_on(previous, 0) && sim.installs == 0
            }
            Verdict::RolledBack(_) => running_on(previous, start.state),
            Verdict::LeftStopped(_) => sim.status == RunStatus::Stopped,
            // Running, as it was or as far as it got: a restore's load may have happened.
            Verdict::NeedsAttention { .. } => {
                running_on(previous, start.state)
                    || running_on(Some(RELEASE), upgraded_state(start.state))
                    || restore && running_on(previous, 0)
            }
        };
        if !consistent {
            return Err(format!(
                "{id:?} ended {verdict:?} but the world shows {sim:?}"
            ));
        }
        let own = |snapshots: &[super::world::SimSnapshot]| {
            snapshots.iter().filter(|s| s.by_deployer).count()
        };
        // A child that took its snapshot and went on to the end of its path holds no more of
        // the deployer's snapshots than it keeps (one whose deletion failed for good no
        // longer counts it as the deployer's).
        let went_on = matches!(verdict, Verdict::Upgraded | Verdict::BackedUp);
        if let (Some(keep), Some(_), true) = (keep_snapshots, child.rollout_snapshot(), went_on) {
            let kept = child
                .snapshots()
                .iter()
                .filter(|s| s.made_by_deployer)
                .count();
            if kept > usize::from(keep) {
                return Err(format!(
                    "{id:?} ended {verdict:?} keeping {kept} snapshots, kept {keep}"
                ));
            }
        }
        if let Some(keep) = keep_snapshots {
            let (before, after) = (own(&start.snapshots), own(&sim.snapshots));
            if after > before.max(usize::from(keep)) {
                return Err(format!(
                    "{id:?} holds {after} of the deployer's snapshots, kept {keep}, had {before}"
                ));
            }
        }
        if sim.installs > 1 {
            return Err(format!("{id:?} was installed {} times", sim.installs));
        }
        let known: Vec<&SnapshotId> = child.snapshots().iter().map(|s| &s.id).collect();
        let actual: Vec<&SnapshotId> = sim.snapshots.iter().map(|s| &s.id).collect();
        if known != actual {
            return Err(format!(
                "{id:?}: engine knows snapshots {known:?}, world has {actual:?}"
            ));
        }
    }
    Ok(())
}

/// A checkpoint that keeps the children apart (`crate::rollouts`) rewrites only the children the
/// rollout says changed since the last one ([`Rollout::take_changed`]): `stored` is its copy. It
/// must equal the rollout's children, and the rollout without them
/// ([`Rollout::take_children_apart`]) with them put back must be the rollout, wave order
/// included.
fn check_checkpoint(rollout: &mut Rollout, stored: &mut [Child]) -> Result<(), String> {
    for position in rollout.take_changed() {
        stored[position as usize] = rollout.children()[position as usize].clone();
    }
    if let Some((kept, child)) = stored
        .iter()
        .zip(rollout.children())
        .find(|(kept, child)| kept != child)
    {
        return Err(format!(
            "{:?} changed without being counted: stored {kept:?}, now {child:?}",
            child.id()
        ));
    }
    let mut rebuilt = rollout.clone();
    rebuilt.take_children_apart();
    rebuilt.put_back_children_and_order(stored.to_vec());
    if &rebuilt != rollout {
        return Err("the rollout rebuilt from its checkpoint's parts differs".into());
    }
    Ok(())
}

/// The summary from the counts kept as children change ([`Rollout::settle_summary`]) is the
/// summary of every child counted afresh; `settle` settles the counts after the check.
fn check_summary(rollout: &mut Rollout, settle: bool) -> Result<(), String> {
    let mut afresh = rollout.clone();
    afresh.put_back_children(rollout.children().to_vec());
    let (kept, counted) = (rollout.summary(), afresh.summary());
    if kept != counted {
        return Err(format!("summary kept {kept:?}, counted afresh {counted:?}"));
    }
    if settle {
        rollout.settle_summary();
    }
    Ok(())
}

proptest! {
    // Failing seeds are kept beside this file (`proptests.regressions`) and replayed first.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn rollout_keeps_its_invariants_under_random_outcomes(
        plan in plan(),
        ops in prop::collection::vec((op(), dispatch_limit()), 0..80),
        final_limit in prop_oneof![Just(1u32), 2..4u32, Just(u32::MAX)],
    ) {
        let result = run(plan, ops, final_limit);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
