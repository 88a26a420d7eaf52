use candid::Principal;
use ic_stable_structures::VectorMemory;
use serde_bytes::ByteBuf;

use super::event_log::EventRetention;
use super::planning::interleave_subnets;
use super::*;
use crate::cbor::Cbor;
use crate::engine::{
    ActionKind, CallCosts, EventKind, Observation, PauseReason, Reply, RolloutPhase, RunStatus,
    SnapshotId,
};
use crate::fleet::{FleetError, Selector};
use crate::governance::RolloutPreview;
use crate::hash::sha256;
use crate::releases::{
    ListReleasesArg, Release, ReleaseReference, ReleaseReferences, ReleaseSelector,
};
use crate::state::{InitArg, State};
use crate::uploads::{UploadChunkArg, UploadOpenArg};

const T0: u64 = 1_000_000_000_000;

fn admin() -> Principal {
    Principal::from_slice(&[1; 29])
}

fn subnet() -> Principal {
    Principal::from_slice(&[2; 29])
}

fn child(n: u16) -> Principal {
    Principal::from_slice(&[10, (n >> 8) as u8, n as u8])
}

/// A deployer state with `children` adopted, running release `child@1`, and release `child@2`
/// (returned) to roll out.
fn setup(children: u16) -> (State<VectorMemory>, Release) {
    setup_on(VectorMemory::default(), children)
}

fn setup_on(memory: VectorMemory, children: u16) -> (State<VectorMemory>, Release) {
    let mut state = State::init(memory, InitArg::default(), admin()).unwrap();
    let running = commit(&mut state, RUNNING_MODULE.to_vec(), "1");
    let running = ModuleHash(<[u8; 32]>::try_from(running.summary.sha256.as_slice()).unwrap());
    for n in 0..children {
        state
            .fleet
            .adopt(child(n), subnet(), Some(running), &[], T0, admin())
            .unwrap();
    }
    let release = commit(&mut state, RELEASE_MODULE.to_vec(), "2");
    (state, release)
}

/// The module of release `child@1`, which `setup`'s children run.
const RUNNING_MODULE: &[u8] = b"\0asm\x01\x00\x00\x00\x00\x00";
/// The module of release `child@2`, which `setup` returns.
const RELEASE_MODULE: &[u8] = b"\0asm\x01\x00\x00\x00";

/// Commits `module` as release `child@version`.
fn commit(state: &mut State<VectorMemory>, module: Vec<u8>, version: &str) -> Release {
    let upload = state
        .release_store
        .open_upload(
            UploadOpenArg {
                sha256: ByteBuf::from(sha256(&module).to_vec()),
                size: module.len() as u64,
                chunk_size: None,
                name: "child".into(),
                version: version.into(),
                notes: None,
            },
            admin(),
            T0,
        )
        .unwrap();
    state
        .release_store
        .put_chunk(
            UploadChunkArg {
                upload_id: upload.upload_id,
                index: 0,
                bytes: ByteBuf::from(module),
            },
            T0,
        )
        .unwrap();
    state
        .release_store
        .commit_upload(upload.upload_id, admin(), T0)
        .unwrap()
}

fn start(
    state: &mut State<VectorMemory>,
    release: &Release,
    selector: Selector,
) -> Result<u64, Error> {
    let State {
        release_store,
        fleet,
        rollouts,
        ..
    } = state;
    let arg = StartRolloutArg {
        plan_sha256: None,
        release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
        selector,
        policy: Some(PolicyArg {
            bake_nanos: Some(0),
            ..PolicyArg::default()
        }),
    };
    rollouts.start(fleet, release_store, arg, subnet(), admin(), T0)
}

/// A cycle balance of `liquid_balance` at the IC's 13-node prices.
fn funds(liquid_balance: u128) -> Funds {
    Funds {
        liquid_balance,
        costs: CallCosts {
            per_call: 42_102_412_000,
            per_payload_byte: 1_000,
            reserved_per_call: 0,
        },
    }
}

/// The children the rollout upgraded, as reads show it.
fn upgraded_count(state: &State<VectorMemory>, rollout_id: u64) -> u32 {
    state
        .rollouts
        .info(rollout_id)
        .unwrap()
        .summary
        .counts
        .upgraded
}

/// Answers every action as a healthy child would until the rollout issues nothing more.
fn run_to_end(state: &mut State<VectorMemory>, rollout_id: u64) {
    run_steps(state, rollout_id, T0, u32::MAX);
}

/// What a child that does everything asked answers to `action` (it runs `release` once read).
fn success(action: &Action, release: ModuleHash) -> Outcome {
    Outcome::Ok(match action.kind {
        ActionKind::TakeSnapshot { .. } => Reply::Snapshot(SnapshotId(vec![action.id.0 as u8])),
        ActionKind::CheckCycles | ActionKind::ReadStatus { .. } | ActionKind::Reconcile { .. } => {
            Reply::Status(Observation {
                status: RunStatus::Running,
                module_hash: Some(release),
                snapshots: None,
                funds: Some(crate::engine::ChildFunds {
                    cycles: u128::MAX,
                    idle_cycles_burned_per_day: 0,
                    freezing_threshold_seconds: 0,
                }),
            })
        }
        _ => Reply::Done,
    })
}

/// Answers up to `steps` batches of actions, from `now` on, as a healthy child would; returns
/// the time reached.
fn run_steps(state: &mut State<VectorMemory>, rollout_id: u64, mut now: u64, steps: u32) -> u64 {
    let release = state.rollouts.release_of(rollout_id).unwrap().module_hash;
    for _ in 0..steps {
        now += 1;
        // `None` once the rollout finished.
        let dispatched =
            state
                .rollouts
                .dispatch(rollout_id, &mut state.fleet, now, &funds(u128::MAX));
        let Some((actions, next_due)) = dispatched else {
            break;
        };
        if actions.is_empty() && next_due.is_none() {
            break;
        }
        for action in actions {
            state.rollouts.record_outcome(
                rollout_id,
                action.id,
                success(&action, release),
                &mut state.fleet,
                now,
            );
        }
        now = next_due.map_or(now, |due| due.max(now));
    }
    now
}

#[test]
fn an_active_rollout_holds_its_children_and_its_release_until_it_completes() {
    let (mut state, release) = setup(3);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let sha256: [u8; 32] = release.summary.sha256.as_slice().try_into().unwrap();

    assert_eq!(
        state.rollouts.references(&sha256),
        vec![ReleaseReference::Rollout { rollout_id }]
    );
    let second = start(&mut state, &release, Selector::Explicit(vec![child(1)]));
    assert_eq!(
        second.unwrap_err().kind(),
        &ErrorKind::Fleet(FleetError::ClaimConflict {
            conflicts: vec![fleet::ChildClaim {
                canister_id: child(1),
                rollout_id,
            }],
            total: 1,
        })
    );

    run_to_end(&mut state, rollout_id);

    let info = state.rollouts.info(rollout_id).unwrap();
    assert_eq!(info.summary.counts.upgraded, 3);
    assert!(state.rollouts.references(&sha256).is_empty());
    for n in 0..3 {
        let record = state.fleet.get(&child(n)).unwrap();
        assert_eq!(state.fleet.claim_of(&child(n)), None, "the claim ended");
        assert_eq!(record.module_hash.map(|h| h.0), Some(sha256));
        assert_eq!(record.snapshots.len(), 1, "the snapshot is the deployer's");
    }
    assert!(
        start(&mut state, &release, Selector::All).is_ok(),
        "free again"
    );
}

#[test]
fn events_are_logged_in_order_and_filtered_by_rollout() {
    let (mut state, release) = setup(2);
    let first = start(&mut state, &release, Selector::Explicit(vec![child(0)])).unwrap();
    let second = start(&mut state, &release, Selector::Explicit(vec![child(1)])).unwrap();
    run_to_end(&mut state, first);

    let all = state.rollouts.events(&ListEventsArg::default());
    let sequences: Vec<u64> = all.events.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, (0..all.events.len() as u64).collect::<Vec<_>>());
    let of_second = state.rollouts.events(&ListEventsArg {
        rollout_id: Some(second),
        ..ListEventsArg::default()
    });
    assert_eq!(of_second.events.len(), 1, "only its Created event");
    assert!(matches!(
        of_second.events[0].kind,
        EventKind::Created { .. }
    ));

    let page = state.rollouts.events(&ListEventsArg {
        limit: Some(3),
        ..ListEventsArg::default()
    });
    assert_eq!(page.events, all.events[..3]);
    assert_eq!(page.next, Some(3));
}

#[test]
fn an_unknown_rollout_and_a_command_out_of_phase_are_typed_errors() {
    let (mut state, release) = setup(1);
    assert_eq!(
        state.rollouts.info(9).unwrap_err().kind(),
        &ErrorKind::RolloutNotFound { rollout_id: 9 }
    );
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let refused = state
        .rollouts
        .control(rollout_id, Command::Resume, &mut state.fleet, T0)
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        &ErrorKind::RolloutCommandRefused {
            rollout_id,
            command: Command::Resume,
            phase: crate::engine::RolloutPhase::Running,
        }
    );
}

#[test]
fn a_command_refused_on_a_finished_rollout_leaves_it_off_the_heap() {
    let (mut state, release) = setup(1);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    run_to_end(&mut state, rollout_id);
    assert!(!state.rollouts.live.contains_key(&rollout_id));

    let refused = state
        .rollouts
        .control(rollout_id, Command::Pause, &mut state.fleet, T0);

    assert!(refused.is_err(), "a completed rollout cannot pause");
    assert!(
        !state.rollouts.live.contains_key(&rollout_id),
        "loaded to check the command, then dropped"
    );
}

#[test]
fn the_checkpoint_with_its_journal_replayed_is_the_live_rollout() {
    let (mut state, release) = setup(200);
    state.rollouts.fold_every = 64;
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let fold_at = 64;
    let mut now = T0;
    let mut batch = 0;
    let mut longest = 0;
    let mut folds = 0;
    while state.rollouts.live.contains_key(&rollout_id) {
        batch += 1;
        let live = &state.rollouts.live[&rollout_id];
        let replayed = state.rollouts.load(rollout_id).unwrap();
        assert_eq!(
            &replayed.record.engine, &live.record.engine,
            "after batch {batch}"
        );
        assert_eq!(replayed.unfolded, live.unfolded, "after batch {batch}");
        let journaled = state.rollouts.journal().len();
        assert!(
            journaled < fold_at,
            "{journaled} lines: folded at {fold_at}"
        );
        if journaled < longest {
            folds += 1;
        }
        longest = journaled;
        now = run_steps(&mut state, rollout_id, now, 1);
    }
    assert!(folds >= 1, "the journal was folded at least once");
    assert_eq!(upgraded_count(&state, rollout_id), 200);
}

/// Two rollouts share the journal: folding writes both checkpoints, and each replays only its
/// own lines.
#[test]
fn rollouts_sharing_the_journal_each_replay_their_own_lines() {
    let (mut state, release) = setup(40);
    let first = start(
        &mut state,
        &release,
        Selector::Explicit((0..20).map(child).collect()),
    );
    let second = start(
        &mut state,
        &release,
        Selector::Explicit((20..40).map(child).collect()),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut now = T0;
    while state.rollouts.live.contains_key(&first) || state.rollouts.live.contains_key(&second) {
        for rollout_id in [first, second] {
            if let Some(live) = state.rollouts.live.get(&rollout_id) {
                let replayed = state.rollouts.load(rollout_id).unwrap();
                assert_eq!(replayed.record.engine, live.record.engine);
                now = run_steps(&mut state, rollout_id, now, 1);
            }
        }
    }
    for rollout_id in [first, second] {
        let info = state.rollouts.info(rollout_id).unwrap();
        assert_eq!(info.summary.counts.upgraded, 20, "rollout {rollout_id}");
    }
    assert_eq!(state.rollouts.active.len(), 0, "no rollout is left active");
}

/// The journal's entries are stored: their CBOR bytes must not change by accident.
#[test]
fn journal_entry_encoding_is_pinned() {
    use ic_stable_structures::Storable;
    let entries = [
        JournalEntry::Dispatched {
            at: 5,
            max_new: u32::MAX,
        },
        JournalEntry::Dispatched { at: 5, max_new: 3 },
        JournalEntry::PausedForCycles {
            balance: 1,
            required: 2,
            at: 9,
        },
        JournalEntry::Command {
            command: Command::Pause,
            at: 6,
        },
        JournalEntry::Outcome {
            action: ActionId(7),
            outcome: Outcome::Unknown,
            at: 8,
        },
    ];
    let hex: Vec<String> = entries
        .into_iter()
        .map(|entry| crate::hash::hex(&Cbor(entry).into_bytes()))
        .collect();
    assert_eq!(
        hex,
        [
            // {"Dispatched": {"at": 5}}: no limit, as before limits were journaled
            "a16a44697370617463686564a162617405",
            // {"Dispatched": {"at": 5, "max_new": 3}}
            "a16a44697370617463686564a262617405676d61785f6e657703",
            // {"PausedForCycles": {"balance": 1, "required": 2, "at": 9}}
            "a16f506175736564466f724379636c6573a36762616c616e6365016872657175697265640262617409",
            // {"Command": {"command": "Pause", "at": 6}}
            "a167436f6d6d616e64a267636f6d6d616e6465506175736562617406",
            // {"Outcome": {"action": 7, "outcome": "Unknown", "at": 8}}
            "a1674f7574636f6d65a366616374696f6e07676f7574636f6d6567556e6b6e6f776e62617408",
        ]
    );
}

/// Rollouts together never keep more calls in flight than the management canister's queue
/// leaves them, however many children their concurrency would start.
#[test]
fn calls_in_flight_stay_within_the_management_queue() {
    let (mut state, release) = setup(500);
    let policy = |concurrency| PolicyArg {
        max_concurrency: Some(concurrency),
        waves: Some(crate::engine::WavePlan {
            canary: 0,
            then: vec![],
        }),
        ..PolicyArg::default()
    };
    let mut rollouts = Vec::new();
    for range in [0..250u16, 250..500] {
        let arg = StartRolloutArg {
            plan_sha256: None,
            release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
            selector: Selector::Explicit(range.map(child).collect()),
            policy: Some(policy(300)),
        };
        let started = state.rollouts.start(
            &mut state.fleet,
            &state.release_store,
            arg,
            subnet(),
            admin(),
            T0,
        );
        rollouts.push(started.unwrap());
    }
    let mut issued = 0;
    for &rollout_id in &rollouts {
        let (actions, _) = state
            .rollouts
            .dispatch(rollout_id, &mut state.fleet, T0, &funds(u128::MAX))
            .unwrap();
        issued += actions.len() as u32;
    }
    assert_eq!(issued, MAX_ROLLOUT_CALLS_IN_FLIGHT);
    assert_eq!(
        state.rollouts.calls_in_flight(),
        MAX_ROLLOUT_CALLS_IN_FLIGHT
    );
    // One call of the first rollout returns: the second, held back, gets exactly its place.
    let returned = state.rollouts.live[&rollouts[0]]
        .record
        .engine
        .in_flight()
        .next()
        .unwrap()
        .clone();
    let release = state.rollouts.release_of(rollouts[0]).unwrap().module_hash;
    let reply = success(&returned, release);
    let fleet = &mut state.fleet;
    state
        .rollouts
        .record_outcome(rollouts[0], returned.id, reply, fleet, T0 + 1);
    let (actions, _) = state
        .rollouts
        .dispatch(rollouts[1], &mut state.fleet, T0 + 1, &funds(u128::MAX))
        .unwrap();
    assert_eq!(actions.len(), 1);
}

/// A deployer that cannot pay for a child's next call pauses the rollout before calling
/// anything, with the balance and what the held-back steps need; the pause is journaled, and
/// after a top-up the rollout resumes and completes.
#[test]
fn a_rollout_the_deployer_cannot_pay_for_pauses_with_the_cycles_it_needs() {
    let (mut state, release) = setup(3);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let poor = funds(CYCLES_KEPT_BACK + 1_000);
    let (actions, next_due) = state
        .rollouts
        .dispatch(rollout_id, &mut state.fleet, T0 + 1, &poor)
        .unwrap();
    assert!(actions.is_empty(), "nothing is called: {actions:?}");
    assert_eq!(next_due, None, "a paused rollout waits for the operator");
    let info = state.rollouts.info(rollout_id).unwrap();
    let RolloutPhase::Paused(PauseReason::InsufficientCycles { balance, required }) =
        info.summary.phase
    else {
        panic!("expected a pause for cycles, got {:?}", info.summary.phase);
    };
    assert_eq!(balance, poor.liquid_balance);
    assert!(required > poor.liquid_balance, "{required} cycles needed");
    assert_eq!(
        state.fleet.claim_of(&child(0)),
        Some(rollout_id),
        "the children stay claimed while paused"
    );
    let replayed = state.rollouts.load(rollout_id).unwrap();
    assert_eq!(
        replayed.record.engine, state.rollouts.live[&rollout_id].record.engine,
        "the pause is journaled"
    );
    state
        .rollouts
        .control(rollout_id, Command::Resume, &mut state.fleet, T0 + 2)
        .unwrap();
    run_steps(&mut state, rollout_id, T0 + 2, u32::MAX);
    let info = state.rollouts.info(rollout_id).unwrap();
    assert_eq!(info.summary.counts.upgraded, 3);
}

#[test]
fn children_are_taken_round_robin_over_their_subnets() {
    let items = vec![(0, 'a'), (0, 'b'), (0, 'c'), (1, 'd'), (2, 'e'), (2, 'f')];
    let interleaved = interleave_subnets(items, |(subnet, _)| *subnet);
    let order: String = interleaved.iter().map(|(_, name)| name).collect();
    assert_eq!(order, "adebfc");
}

/// A rollout that wrote nothing while the journal was folded (started, not yet driven) still
/// replays the lines it writes afterwards: folding moved its checkpoint to the new log.
#[test]
fn a_rollout_idle_across_a_fold_replays_its_later_lines() {
    let (mut state, release) = setup(60);
    state.rollouts.fold_every = 200;
    let busy = start(
        &mut state,
        &release,
        Selector::Explicit((1..60).map(child).collect()),
    );
    let busy = busy.unwrap();
    let mut now = T0;
    while state.rollouts.journal().len() < 150 {
        now = run_steps(&mut state, busy, now, 1);
    }
    let idle = start(&mut state, &release, Selector::Explicit(vec![child(0)])).unwrap();
    let mut journaled = state.rollouts.journal().len();
    loop {
        now = run_steps(&mut state, busy, now, 1);
        let after = state.rollouts.journal().len();
        if after < journaled {
            break;
        }
        journaled = after;
    }
    run_steps(&mut state, idle, now, 2);
    let replayed = state.rollouts.load(idle).unwrap();
    assert_eq!(
        replayed.record.engine,
        state.rollouts.live[&idle].record.engine
    );
}

#[test]
fn a_policy_asks_only_for_bounded_waits_retries_and_texts() {
    use super::api::{
        MAX_ATTEMPTS, MAX_BACKOFF_NANOS, MAX_BAKE_NANOS, MAX_HEALTH_METHOD_BYTES,
        MAX_INSTALL_ARG_BYTES, MAX_WAVES, MIN_BACKOFF_NANOS,
    };
    use crate::engine::{InstallOptions, RetryPolicy, Verification, WavePlan, WaveSize};
    assert!(PolicyArg::default().into_policy().is_ok());
    let retry = |max_attempts, base_backoff_nanos, max_backoff_nanos| PolicyArg {
        retry: Some(RetryPolicy {
            max_attempts,
            base_backoff_nanos,
            max_backoff_nanos,
        }),
        ..PolicyArg::default()
    };
    let refused = [
        PolicyArg {
            bake_nanos: Some(MAX_BAKE_NANOS + 1),
            ..PolicyArg::default()
        },
        retry(MAX_ATTEMPTS + 1, MIN_BACKOFF_NANOS, MAX_BACKOFF_NANOS),
        retry(5, 0, MAX_BACKOFF_NANOS),
        retry(5, MIN_BACKOFF_NANOS, u64::MAX),
        PolicyArg {
            waves: Some(WavePlan {
                canary: 1,
                then: vec![WaveSize::Count(1); MAX_WAVES + 1],
            }),
            ..PolicyArg::default()
        },
        PolicyArg {
            verification: Some(Verification {
                health_method: Some("m".repeat(MAX_HEALTH_METHOD_BYTES + 1)),
            }),
            ..PolicyArg::default()
        },
        PolicyArg {
            install: Some(InstallOptions {
                arg: vec![0; MAX_INSTALL_ARG_BYTES + 1],
                ..InstallOptions::default()
            }),
            ..PolicyArg::default()
        },
    ];
    for policy in refused {
        let reason = policy.clone().into_policy().expect_err("out of bounds");
        assert!(
            reason.contains("at most") || reason.contains("at least"),
            "{reason}"
        );
    }
    // One attempt never waits, so its backoff does not matter.
    assert!(retry(1, 0, 0).into_policy().is_ok());
    assert!(retry(MAX_ATTEMPTS, MIN_BACKOFF_NANOS, MAX_BACKOFF_NANOS)
        .into_policy()
        .is_ok());
}

/// Held for an upgrade, a rollout issues nothing; the outcomes of what it had issued are
/// journaled, and once the last one is in, the journal is folded: nothing is left for another
/// engine to replay. Lifting the hold hands back the rollouts to drive.
#[test]
fn prepare_upgrade_holds_rollouts_and_folds_the_journal_once_their_calls_are_back() {
    let (mut state, release) = setup(6);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let (actions, _) = state
        .rollouts
        .dispatch(rollout_id, &mut state.fleet, T0 + 1, &funds(u128::MAX))
        .unwrap();
    assert!(!actions.is_empty());

    let (to_drive, readiness) = state.rollouts.prepare_upgrade(true);
    assert!(to_drive.is_empty());
    assert_eq!(
        readiness,
        UpgradeReadiness {
            holding: true,
            actions_in_flight: actions.len() as u32,
            journal_lines: 1,
            ready: false,
        }
    );
    assert_eq!(
        state
            .rollouts
            .dispatch(rollout_id, &mut state.fleet, T0 + 2, &funds(u128::MAX)),
        None,
        "held: nothing is issued"
    );
    let release = state.rollouts.release_of(rollout_id).unwrap().module_hash;
    for action in &actions {
        state.rollouts.record_outcome(
            rollout_id,
            action.id,
            success(action, release),
            &mut state.fleet,
            T0 + 3,
        );
    }
    let readiness = state.rollouts.upgrade_readiness();
    assert!(readiness.ready, "{readiness:?}");
    assert_eq!(readiness.journal_lines, 0);
    // The checkpoint alone is the rollout: no line to replay.
    let live = &state.rollouts.live[&rollout_id].record.engine;
    assert_eq!(
        &state.rollouts.load(rollout_id).unwrap().record.engine,
        live
    );

    let (to_drive, readiness) = state.rollouts.prepare_upgrade(false);
    assert_eq!(to_drive, vec![rollout_id]);
    assert!(!readiness.holding && !readiness.ready);
    run_steps(&mut state, rollout_id, T0 + 4, u32::MAX);
    let counts = state.rollouts.info(rollout_id).unwrap().summary.counts;
    assert_eq!(counts.upgraded, 6);
}

/// A finished rollout is read from its overview: the same info as its checkpoint gives, without
/// decoding the checkpoint (here removed to show it is not read). A rollout release 0.1 finished
/// has no overview and is still read from its checkpoint.
#[test]
fn a_finished_rollout_is_read_from_its_overview_not_its_checkpoint() {
    let (mut state, release) = setup(30);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    run_to_end(&mut state, rollout_id);
    assert!(!state.rollouts.live.contains_key(&rollout_id));
    let from_overview = state.rollouts.info(rollout_id).unwrap();
    assert_eq!(from_overview.summary.counts.upgraded, 30);

    let overview = state.rollouts.overviews.remove(&rollout_id).unwrap();
    assert_eq!(state.rollouts.info(rollout_id).unwrap(), from_overview);
    state.rollouts.overviews.insert(rollout_id, overview);
    let page = state.rollouts.list(&ListRolloutsArg::default());
    assert_eq!(page.rollouts, vec![from_overview.clone()]);
    state.rollouts.finished.remove(rollout_id);
    assert_eq!(state.rollouts.info(rollout_id).unwrap(), from_overview);
}

fn history_of(state: &State<VectorMemory>, rollout_id: u64, n: u16) -> Result<ChildHistory, Error> {
    state.rollouts.child_history(&ChildHistoryArg {
        rollout_id,
        canister_id: child(n),
        from: None,
        limit: None,
    })
}

#[test]
fn a_rollout_stored_apart_loads_as_it_was() {
    let (mut state, release) = setup(40);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    run_steps(&mut state, rollout_id, T0, 8);
    let midway = state.rollouts.live[&rollout_id].record.clone();
    let states: std::collections::BTreeSet<_> = midway
        .engine
        .children()
        .iter()
        .map(|child| format!("{:?}", child.state()))
        .collect();
    assert!(states.len() > 2, "children in several states: {states:?}");

    let finished = &mut state.rollouts.finished;
    let mut after = None;
    while let Some(last) = finished.store_children_slice(99, &midway.engine, after.as_ref(), |_| ())
    {
        after = Some(last);
    }
    finished.store_record(99, midway.clone());

    assert_eq!(state.rollouts.finished.children_stored(99), 40);
    // On the heap the flag says its checkpoint stores its children apart; loaded, it holds them.
    let midway = RolloutRecord {
        children_apart: false,
        ..midway
    };
    assert_eq!(state.rollouts.finished.load(99).as_ref(), Some(&midway));

    // A record as schemas before 2 stored it, with the claimed ids and the wave order (its
    // children in memory 27 all the same), loads as it was too.
    let mut schema_1 = ciborium::Value::serialized(&midway).unwrap();
    fn field<'a>(map: &'a mut ciborium::Value, name: &str) -> &'a mut ciborium::Value {
        let entries = map.as_map_mut().expect("a struct is a map");
        let (_, value) = entries
            .iter_mut()
            .find(|(key, _)| key.as_text() == Some(name))
            .expect("the field is stored");
        value
    }
    let engine = field(&mut schema_1, "engine");
    *field(engine, "children") = ciborium::Value::Array(vec![]);
    *field(engine, "index") = ciborium::Value::Map(vec![]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&schema_1, &mut bytes).unwrap();
    state.rollouts.finished.insert_record_bytes(99, bytes);
    assert_eq!(state.rollouts.finished.load(99), Some(midway));
}

#[test]
fn a_finished_childs_history_is_read_from_its_own_entry_not_the_whole_rollout() {
    let (mut state, release) = setup(70);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    run_to_end(&mut state, rollout_id);
    assert!(!state.rollouts.live.contains_key(&rollout_id));
    assert!(!state.rollouts.rollouts.contains_key(&rollout_id));
    assert_eq!(state.rollouts.finished.children_stored(rollout_id), 70);
    let finished = state.rollouts.load(rollout_id).unwrap().record;
    assert_eq!(finished.engine.children().len(), 70);
    let histories: Vec<ChildHistory> = (0..70)
        .map(|n| history_of(&state, rollout_id, n).unwrap())
        .collect();
    for (n, history) in (0..).zip(&histories) {
        let child = finished.engine.child(&fleet::child_id(&child(n))).unwrap();
        assert_eq!(history.steps, child.history());
        assert_eq!(history.state, child.state());
        assert!(!history.steps.is_empty());
    }

    // Three runs of children; a record that cannot be decoded: reads of a child never decode it.
    state.rollouts.finished.garble_record(rollout_id);
    for (n, history) in (0..).zip(&histories) {
        assert_eq!(&history_of(&state, rollout_id, n).unwrap(), history);
    }
    assert_eq!(
        history_of(&state, rollout_id, 71).unwrap_err().kind(),
        &ErrorKind::NotInRollout {
            rollout_id,
            canister_id: child(71)
        }
    );
}

#[test]
fn a_rollout_finished_with_its_checkpoint_is_read_from_it() {
    let (mut state, release) = setup(5);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    run_to_end(&mut state, rollout_id);
    let apart = history_of(&state, rollout_id, 3).unwrap();
    // As a rollout finished by a build that kept finished checkpoints is stored.
    let record = state.rollouts.load(rollout_id).unwrap().record;
    state.rollouts.finished.remove(rollout_id);
    while state.rollouts.finished.prune_slice(|_| false) {}
    assert_eq!(state.rollouts.finished.children_stored(rollout_id), 0);
    state
        .rollouts
        .rollouts
        .insert(rollout_id, CborBytes::encode(&record));

    assert_eq!(history_of(&state, rollout_id, 3).unwrap(), apart);
    assert_eq!(
        history_of(&state, rollout_id, 9).unwrap_err().kind(),
        &ErrorKind::NotInRollout {
            rollout_id,
            canister_id: child(9)
        }
    );
    assert_eq!(state.rollouts.started(), rollout_id + 1);
}

#[test]
fn a_pruned_rollouts_children_are_removed_a_slice_per_commit() {
    let per_commit = (finished::PRUNE_SLICE * finished::CHILDREN_PER_ENTRY) as u16;
    let large = 2 * per_commit + 50;
    let later = RETAINED_FINISHED_CHECKPOINTS as u16 + 1;
    let (mut state, release) = setup(large + later);
    let first = start(
        &mut state,
        &release,
        Selector::Explicit((0..large).map(child).collect()),
    )
    .unwrap();
    run_to_end(&mut state, first);
    let stored = |state: &State<VectorMemory>| state.rollouts.finished.children_stored(first);
    assert_eq!(stored(&state), usize::from(large));
    let mut remaining = Vec::new();
    for n in large..large + later {
        let rollout_id = start(&mut state, &release, Selector::Explicit(vec![child(n)])).unwrap();
        run_to_end(&mut state, rollout_id);
        remaining.push(stored(&state));
    }

    assert_eq!(
        history_of(&state, first, 0).unwrap_err().kind(),
        &ErrorKind::RolloutDetailsPruned { rollout_id: first }
    );
    assert_eq!(stored(&state), 0);
    // Pruned when the rollout that made 101 finished ended, a slice per call of its driver.
    let pruned_from = remaining
        .iter()
        .position(|&left| left < usize::from(large))
        .expect("the first rollout was pruned");
    assert_eq!(pruned_from, RETAINED_FINISHED_CHECKPOINTS as usize - 1);
    assert_eq!(remaining[pruned_from], 0);
    assert!(!state.rollouts.children_to_prune);
    let newest = first + u64::from(later);
    assert_eq!(state.rollouts.started(), newest + 1);
    assert_eq!(state.rollouts.finished.children_stored(newest), 1);
    assert!(history_of(&state, newest, large + later - 1).is_ok());
}

/// The ids of a page's rollouts.
fn ids(page: &RolloutPage) -> Vec<u64> {
    page.rollouts.iter().map(|info| info.rollout_id).collect()
}

fn filtered(phase: Option<RolloutPhaseFilter>, release: Option<ByteBuf>) -> ListRolloutsArg {
    ListRolloutsArg {
        phase,
        release,
        ..ListRolloutsArg::default()
    }
}

#[test]
fn rollouts_are_listed_by_phase_and_release_with_their_total() {
    let (mut state, release) = setup(3);
    let explicit = |n| Selector::Explicit(vec![child(n)]);
    let completed = start(&mut state, &release, explicit(0)).unwrap();
    run_to_end(&mut state, completed);
    let paused = start(&mut state, &release, explicit(1)).unwrap();
    let State {
        fleet, rollouts, ..
    } = &mut state;
    rollouts.control(paused, Command::Pause, fleet, T0).unwrap();
    let running = start(&mut state, &release, explicit(2)).unwrap();
    use RolloutPhaseFilter::*;
    for (phase, expected) in [
        (Active, vec![running, paused]),
        (Running, vec![running]),
        (Paused, vec![paused]),
        (Finished, vec![completed]),
        (Completed, vec![completed]),
        (RolledBack, vec![]),
    ] {
        let page = state.rollouts.list(&filtered(Some(phase), None));
        assert_eq!(ids(&page), expected, "{phase:?}");
        assert_eq!(page.total, Some(expected.len() as u64), "{phase:?}");
        assert_eq!(page.next_before, None);
    }
    let of_release = state
        .rollouts
        .list(&filtered(None, Some(release.summary.sha256.clone())));
    assert_eq!(ids(&of_release), [running, paused, completed]);
    let other = state
        .rollouts
        .list(&filtered(None, Some(ByteBuf::from(vec![9; 32]))));
    assert_eq!((ids(&other), other.total), (vec![], Some(0)));

    // Paged: the total counts from the page's start.
    let first = state.rollouts.list(&ListRolloutsArg {
        limit: Some(1),
        ..filtered(Some(Active), None)
    });
    assert_eq!(
        (ids(&first), first.next_before, first.total),
        (vec![running], Some(running), Some(2))
    );
    let second = state.rollouts.list(&ListRolloutsArg {
        limit: Some(1),
        before: first.next_before,
        ..filtered(Some(Active), None)
    });
    assert_eq!(
        (ids(&second), second.next_before, second.total),
        (vec![paused], None, Some(1))
    );

    // A finished rollout whose checkpoint was pruned is listed from its overview.
    assert!(state.rollouts.finished.contains(completed));
    state.rollouts.finished.remove(completed);
    let all = state.rollouts.list(&ListRolloutsArg::default());
    assert_eq!(ids(&all), [running, paused, completed]);
}

/// A page reads at most `ROLLOUT_SCAN_BUDGET` rollouts: a filter that matches nothing among
/// more says where to go on, and the total is left out.
#[test]
fn a_filtered_listing_gives_up_after_its_budget_and_says_where_to_go_on() {
    let (mut state, release) = setup(1);
    let first = start(&mut state, &release, Selector::All).unwrap();
    run_to_end(&mut state, first);
    // The child runs the release: every later rollout finds nothing to do and completes.
    let extra = 5;
    for _ in 0..ROLLOUT_SCAN_BUDGET as u64 + extra - 1 {
        start(&mut state, &release, Selector::All).unwrap();
    }
    let unfiltered = state.rollouts.list(&ListRolloutsArg::default());
    assert_eq!(unfiltered.rollouts.len(), MAX_ROLLOUT_PAGE as usize);
    assert_eq!(unfiltered.total, None, "more than the budget match");
    let paused = state
        .rollouts
        .list(&filtered(Some(RolloutPhaseFilter::Paused), None));
    assert_eq!(ids(&paused), Vec::<u64>::new());
    assert_eq!(paused.total, None);
    assert_eq!(paused.next_before, Some(extra));
    let rest = state.rollouts.list(&ListRolloutsArg {
        before: paused.next_before,
        ..filtered(Some(RolloutPhaseFilter::Paused), None)
    });
    assert_eq!(
        (ids(&rest), rest.next_before, rest.total),
        (vec![], None, Some(0))
    );
}

/// The install argument may carry configuration or a secret, and weighs up to 64 KiB: reads show
/// it by hash and size, on the heap copy and on the stored overview alike.
#[test]
fn reads_show_the_install_argument_by_hash_and_size_only() {
    let (mut state, release) = setup(2);
    let secret = b"DIDL\x00\x01\x71\x06secret".to_vec();
    let State {
        release_store,
        fleet,
        rollouts,
        ..
    } = &mut state;
    let arg = StartRolloutArg {
        plan_sha256: None,
        release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
        selector: Selector::All,
        policy: Some(PolicyArg {
            install: Some(crate::engine::InstallOptions {
                arg: secret.clone(),
                ..crate::engine::InstallOptions::default()
            }),
            ..PolicyArg::default()
        }),
    };
    let rollout_id = rollouts
        .start(fleet, release_store, arg, subnet(), admin(), T0)
        .unwrap();
    let info = state.rollouts.info(rollout_id).unwrap();
    assert!(info.policy.install.arg.is_empty());
    assert_eq!(
        info.install_arg_sha256.unwrap().as_slice(),
        sha256(&secret).as_slice()
    );
    assert_eq!(info.install_arg_size, Some(secret.len() as u64));
    // The overview written with the checkpoint does not keep a second copy either.
    let stored = state.rollouts.overviews.get(&rollout_id).unwrap().decode();
    assert!(stored.policy.install.arg.is_empty());
    assert_eq!(stored.install_arg_sha256, sha256(&secret));
    // The checkpoint keeps it: the engine installs it.
    let record = state.rollouts.load(rollout_id).unwrap().record;
    assert_eq!(record.engine.policy().install.arg, secret);
}

/// The event log is bounded: it keeps one to two generations of its newest events, their
/// sequence numbers unchanged, and a page asked from before them starts at the oldest kept.
/// The bound survives a reopening of the stable memory (an upgrade).
#[test]
fn the_event_log_keeps_its_newest_events_with_their_sequence_numbers() {
    let memory = VectorMemory::default();
    let (mut state, release) = setup_on(memory.clone(), 6);
    state
        .rollouts
        .events
        .set_retention(EventRetention { per_generation: 6 });
    let unbounded = {
        let (mut reference, release) = setup(6);
        let rollout_id = start(&mut reference, &release, Selector::All).unwrap();
        run_to_end(&mut reference, rollout_id);
        reference.rollouts.events(&ListEventsArg {
            limit: Some(1_000),
            ..ListEventsArg::default()
        })
    };
    assert!(
        unbounded.events.len() > 24,
        "{} events",
        unbounded.events.len()
    );
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    run_to_end(&mut state, rollout_id);

    let kept = state.rollouts.events(&ListEventsArg {
        from: Some(0),
        limit: Some(1_000),
        ..ListEventsArg::default()
    });
    assert!(
        (6..=12).contains(&kept.events.len()),
        "{} kept",
        kept.events.len()
    );
    // The newest events, as the unbounded log numbers and tells them.
    let newest = &unbounded.events[unbounded.events.len() - kept.events.len()..];
    assert_eq!(kept.events, newest);
    // Upgraded, the log and its first sequence number read the same; so does a copy restored
    // from an export, which carries both generations as they are.
    drop(state);
    let mut upgraded = State::post_upgrade(memory, crate::UpgradeArg::default()).unwrap();
    let all = ListEventsArg {
        limit: Some(1_000),
        ..ListEventsArg::default()
    };
    assert_eq!(upgraded.rollouts.events(&all), kept);
    let restored = restored_copy(&mut upgraded, T0);
    assert_eq!(restored.rollouts.events(&all), kept);
}

mod memory_persistence {
    use std::cell::Cell;

    use super::super::planning::check_memory_persistence;
    use super::*;
    use crate::engine::WasmMemoryPersistence::{Keep, Replace};
    use crate::releases::ReleaseModule;

    const MARKED: ModuleHash = ModuleHash([1; 32]);
    const UNMARKED: ModuleHash = ModuleHash([2; 32]);
    const NOT_A_RELEASE: ModuleHash = ModuleHash([3; 32]);

    fn release(sha256: ModuleHash, marked: Option<bool>) -> ReleaseModule {
        ReleaseModule {
            sha256: sha256.0,
            size: 1,
            chunk_sha256: vec![sha256.0],
            enhanced_orthogonal_persistence: marked,
        }
    }

    fn marked(module: &ModuleHash) -> Option<bool> {
        match *module {
            MARKED => Some(true),
            UNMARKED => Some(false),
            _ => None,
        }
    }

    fn on(modules: &[Option<ModuleHash>]) -> Vec<(Principal, Option<ModuleHash>)> {
        (0..).map(child).zip(modules.iter().copied()).collect()
    }

    #[test]
    fn keep_needs_a_marked_release_unless_the_release_predates_the_mark() {
        let check = |release| check_memory_persistence(Some(Keep), &release, on(&[]), marked);
        assert!(matches!(
            check(release(UNMARKED, Some(false))),
            Err(ErrorKind::InvalidRolloutPlan { reason }) if reason.contains("choose Replace")
        ));
        assert_eq!(check(release(MARKED, Some(true))), Ok(()));
        assert_eq!(
            check(release(NOT_A_RELEASE, None)),
            Ok(()),
            "not known passes"
        );
        let replace = check_memory_persistence(
            Some(Replace),
            &release(UNMARKED, Some(false)),
            on(&[Some(MARKED)]),
            marked,
        );
        assert_eq!(replace, Ok(()));
    }

    #[test]
    fn no_option_is_refused_only_for_a_child_known_to_run_a_marked_module() {
        let target = release(UNMARKED, Some(false));
        let passes = [Some(UNMARKED), Some(NOT_A_RELEASE), None];
        assert_eq!(
            check_memory_persistence(None, &target, on(&passes), marked),
            Ok(())
        );
        let refused = check_memory_persistence(
            None,
            &target,
            on(&[Some(NOT_A_RELEASE), Some(MARKED)]),
            marked,
        );
        assert!(matches!(
            refused,
            Err(ErrorKind::InvalidRolloutPlan { reason })
                if reason.contains(&child(1).to_string()) && reason.contains("choose Keep")
        ));
        // Children already on a marked release are skipped by the rollout, not installed.
        let on_target = release(MARKED, Some(true));
        assert_eq!(
            check_memory_persistence(None, &on_target, on(&[Some(MARKED)]), marked),
            Ok(())
        );
    }

    #[test]
    fn each_distinct_module_is_looked_up_once() {
        let lookups = Cell::new(0);
        let counting = |module: &ModuleHash| {
            lookups.set(lookups.get() + 1);
            marked(module)
        };
        let fleet = on(&[Some(UNMARKED); 1_000]);
        let result = check_memory_persistence(None, &release(NOT_A_RELEASE, None), fleet, counting);
        assert_eq!(result, Ok(()));
        assert_eq!(lookups.get(), 1);
    }
}

/// What may happen to the fleet between a proposal's validation and its execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meanwhile {
    Nothing,
    /// Another child is adopted: `Selector::All` now selects it too.
    AnotherAdopted,
    /// A child was upgraded to the release by hand: it would now be skipped.
    UpgradedByHand,
    /// A child was released from the fleet.
    Released,
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Issue 15: for random fleets and plans, what the validator renders is the plan execution
    /// runs (targets, skipped children, waves, release, plan hash), or execution refuses with
    /// `PlanChanged` because the fleet changed since.
    #[test]
    fn a_proposal_runs_the_plan_its_render_names_or_is_refused(
        on_release in proptest::collection::vec(proptest::prelude::any::<bool>(), 1..12),
        canary in 1u32..4,
        then_percent in 0u8..=100,
        concurrency in 1u32..5,
        meanwhile in proptest::prop_oneof![
            proptest::strategy::Just(Meanwhile::Nothing),
            proptest::strategy::Just(Meanwhile::AnotherAdopted),
            proptest::strategy::Just(Meanwhile::UpgradedByHand),
            proptest::strategy::Just(Meanwhile::Released),
        ],
    ) {
        let (mut state, release) = setup(0);
        let target = ModuleHash(sha256(RELEASE_MODULE));
        let running = ModuleHash(sha256(RUNNING_MODULE));
        for (n, on) in on_release.iter().enumerate() {
            let module = if *on { target } else { running };
            state.fleet.adopt(child(n as u16), subnet(), Some(module), &[], T0, admin()).unwrap();
        }
        let arg = StartRolloutArg {
            plan_sha256: None,
            release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
            selector: Selector::All,
            policy: Some(PolicyArg {
                waves: Some(crate::engine::WavePlan {
                    canary,
                    then: vec![crate::engine::WaveSize::Percent(then_percent)],
                }),
                max_concurrency: Some(concurrency),
                bake_nanos: Some(0),
                ..PolicyArg::default()
            }),
        };
        let preview = match state
            .rollouts
            .preview(&state.fleet, &state.release_store, arg.clone(), subnet())
        {
            Ok(preview) => preview,
            Err(refusal) => {
                // The validator refuses (a 0 % wave, say): so does execution, for the same reason.
                let State { release_store, fleet, rollouts, .. } = &mut state;
                let executed = rollouts.start(fleet, release_store, arg, subnet(), admin(), T0);
                proptest::prop_assert_eq!(executed.map_err(|error| error.kind().clone()), Err(refusal.kind().clone()));
                return Ok(());
            }
        };
        let render = crate::governance::render_rollout(&preview);
        proptest::prop_assert!(render.len() <= crate::governance::MAX_RENDER_BYTES);
        let heading = format!("## Roll out child 2 to {} children", preview.targets);
        let plan = crate::hash::hex(&preview.plan_sha256);
        proptest::prop_assert!(render.contains(&heading), "{}", render);
        proptest::prop_assert!(render.contains(&plan), "{}", render);

        match meanwhile {
            Meanwhile::Nothing => {}
            Meanwhile::AnotherAdopted => {
                state.fleet.adopt(child(99), subnet(), Some(running), &[], T0, admin()).unwrap();
            }
            Meanwhile::UpgradedByHand => {
                let first = on_release.iter().position(|on| !on);
                let n = first.unwrap_or(0) as u16;
                let module = if first.is_some() { target } else { running };
                state.fleet.record_child_end(&child(n), Some(Some(module)), vec![], T0).unwrap();
            }
            Meanwhile::Released => {
                state.fleet.release(&child(0)).unwrap();
            }
        }
        let pinned = StartRolloutArg {
            plan_sha256: Some(preview.plan_sha256.clone()),
            ..arg
        };
        let State { release_store, fleet, rollouts, .. } = &mut state;
        match rollouts.start(fleet, release_store, pinned, subnet(), admin(), T0) {
            Ok(rollout_id) => {
                proptest::prop_assert_eq!(meanwhile, Meanwhile::Nothing);
                let info = rollouts.info(rollout_id).unwrap();
                let summary = &info.summary;
                proptest::prop_assert_eq!(summary.counts.skipped, preview.skipped);
                let sizes: Vec<u32> = summary.waves.iter().map(|wave| wave.size).collect();
                proptest::prop_assert_eq!(&sizes, &preview.wave_sizes);
                proptest::prop_assert_eq!(sizes.iter().sum::<u32>(), preview.targets);
                proptest::prop_assert_eq!(&info.release_sha256, &preview.module_sha256);
            }
            Err(error) => {
                proptest::prop_assert_ne!(meanwhile, Meanwhile::Nothing);
                let plan_changed = matches!(error.kind(), ErrorKind::PlanChanged { .. });
                proptest::prop_assert!(plan_changed, "{}", error);
            }
        }
    }
}

fn all_children(release: &Release) -> StartRolloutArg {
    StartRolloutArg {
        plan_sha256: None,
        release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
        selector: Selector::All,
        policy: Some(PolicyArg {
            bake_nanos: Some(0),
            ..PolicyArg::default()
        }),
    }
}

/// `prepare_rollout`'s work: every slice until the plan is made; returns the slices taken.
fn prepare(
    state: &mut State<VectorMemory>,
    arg: StartRolloutArg,
    now: u64,
) -> (Result<RolloutPreview, Error>, u32) {
    let mut preparation = state
        .rollouts
        .begin_prepare(&state.fleet, &state.release_store, arg)
        .unwrap();
    let mut slices = 1;
    while !state
        .rollouts
        .prepare_some(
            &mut preparation,
            &state.fleet,
            &state.release_store,
            subnet(),
        )
        .unwrap()
    {
        assert_eq!(
            state.fleet.claim_entries(),
            0,
            "a preparation claims no child"
        );
        slices += 1;
    }
    let State {
        release_store,
        rollouts,
        ..
    } = state;
    (
        rollouts.end_prepare(preparation, release_store, now),
        slices,
    )
}

/// Issue 19: a preview (a query, as a proposal's validation is) of more children than it plans
/// at once is refused with what to do; `prepare_rollout` plans them a slice per message,
/// claiming none, and the preview and the validator then answer its plan, which a start pinned
/// to it runs.
#[test]
fn a_selection_too_large_for_a_query_is_previewed_from_the_plan_prepared_in_slices() {
    let children = PREVIEW_AT_ONCE as u16 + 201;
    let (mut state, release) = setup(children);
    let arg = all_children(&release);
    let preview = |state: &State<VectorMemory>, arg: StartRolloutArg| {
        state
            .rollouts
            .preview(&state.fleet, &state.release_store, arg, subnet())
    };
    let refused = preview(&state, arg.clone()).unwrap_err();
    assert_eq!(
        refused.kind(),
        &ErrorKind::PlanNotPrepared {
            at_once: PREVIEW_AT_ONCE as u64
        }
    );
    assert!(
        refused.to_string().contains("call prepare_rollout"),
        "{refused}"
    );

    let (prepared, slices) = prepare(&mut state, arg.clone(), T0 + 5);
    let prepared = prepared.unwrap();
    // 1,201 children: read in three slices of at most PLAN_SLICE, then planned in three.
    assert_eq!(slices, 6);
    assert_eq!(prepared.prepared_at, Some(T0 + 5));
    assert_eq!((prepared.targets, prepared.skipped), (children as u32, 0));
    assert_eq!(prepared.wave_sizes.iter().sum::<u32>(), children as u32);
    // The same argument, pinned or not, is answered from the plan kept; another is not.
    assert_eq!(preview(&state, arg.clone()), Ok(prepared.clone()));
    let pinned = StartRolloutArg {
        plan_sha256: Some(prepared.plan_sha256.clone()),
        ..arg.clone()
    };
    assert_eq!(preview(&state, pinned.clone()), Ok(prepared.clone()));
    let wrong_pin = StartRolloutArg {
        plan_sha256: Some(ByteBuf::from(vec![7; 32])),
        ..arg.clone()
    };
    assert!(matches!(
        preview(&state, wrong_pin).unwrap_err().kind(),
        ErrorKind::PlanChanged { .. }
    ));
    let other_policy = StartRolloutArg {
        policy: None,
        ..arg.clone()
    };
    assert!(matches!(
        preview(&state, other_policy).unwrap_err().kind(),
        ErrorKind::PlanNotPrepared { .. }
    ));

    let State {
        release_store,
        fleet,
        rollouts,
        ..
    } = &mut state;
    let rollout_id = rollouts
        .start(fleet, release_store, pinned, subnet(), admin(), T0)
        .unwrap();
    let summary = rollouts.info(rollout_id).unwrap().summary;
    let sizes: Vec<u32> = summary.waves.iter().map(|wave| wave.size).collect();
    assert_eq!(sizes, prepared.wave_sizes);
}

/// The plan a preparation makes is the one a preview plans at once, and a selection of at most
/// [`PREVIEW_AT_ONCE`] children is still previewed without one.
#[test]
fn a_prepared_plan_is_the_plan_a_preview_makes_at_once() {
    let (mut state, release) = setup(PREVIEW_AT_ONCE as u16);
    let arg = all_children(&release);
    let at_once = state
        .rollouts
        .preview(&state.fleet, &state.release_store, arg.clone(), subnet())
        .unwrap();
    assert_eq!(at_once.prepared_at, None);
    let (prepared, slices) = prepare(&mut state, arg, T0);
    assert_eq!(slices, 4);
    assert_eq!(
        RolloutPreview {
            prepared_at: None,
            ..prepared.unwrap()
        },
        at_once
    );
}

/// Prepared previews are bounded: the newest [`PREPARED_KEPT`] are kept, and at most two
/// preparations run at once, each counted until it ends or is let go.
#[test]
fn prepared_previews_and_preparations_in_flight_are_bounded() {
    let (mut state, release) = setup(3);
    let with_concurrency = |concurrency: u32| StartRolloutArg {
        policy: Some(PolicyArg {
            max_concurrency: Some(concurrency),
            ..PolicyArg::default()
        }),
        ..all_children(&release)
    };
    for concurrency in 1..=PREPARED_KEPT as u32 + 1 {
        let (prepared, _) = prepare(
            &mut state,
            with_concurrency(concurrency),
            T0 + concurrency as u64,
        );
        prepared.unwrap();
    }
    let prepared_at = |state: &State<VectorMemory>, concurrency: u32| {
        state
            .rollouts
            .preview(
                &state.fleet,
                &state.release_store,
                with_concurrency(concurrency),
                subnet(),
            )
            .unwrap()
            .prepared_at
    };
    // The oldest was replaced (previewed at once now), the newest kept.
    assert_eq!(prepared_at(&state, 1), None);
    assert_eq!(prepared_at(&state, 2), Some(T0 + 2));
    assert_eq!(prepared_at(&state, PREPARED_KEPT as u32 + 1), Some(T0 + 17));
    // Prepared again, a rollout's preview replaces its own, and no other.
    prepare(&mut state, with_concurrency(5), T0 + 100)
        .0
        .unwrap();
    assert_eq!(prepared_at(&state, 5), Some(T0 + 100));
    assert_eq!(prepared_at(&state, 2), Some(T0 + 2));

    let begin = |state: &mut State<VectorMemory>| {
        let State {
            release_store,
            fleet,
            rollouts,
            ..
        } = state;
        rollouts.begin_prepare(fleet, release_store, with_concurrency(1))
    };
    let mut first = begin(&mut state).unwrap();
    let _second = begin(&mut state).unwrap();
    assert_eq!(
        begin(&mut state).err().expect("refused").kind(),
        &ErrorKind::PreparesInFlight { max: 2 }
    );
    state.rollouts.let_go_of_preparation(&mut first);
    state.rollouts.let_go_of_preparation(&mut first);
    let mut third = begin(&mut state).unwrap();
    assert_eq!(
        begin(&mut state).err().expect("refused").kind(),
        &ErrorKind::PreparesInFlight { max: 2 }
    );
    state.rollouts.let_go_of_preparation(&mut third);
}

/// `require_blessed_releases`: the entry points check the blessing before planning, and a
/// blessing proposal applied by governance records who blessed the release and when.
#[test]
fn a_deployer_that_requires_blessings_refuses_unblessed_releases_until_one_is_blessed() {
    use crate::governance::{GovernanceUpdate, GovernedAction};
    use crate::releases::{Blessing, SetReleaseBlessingArg};
    let (mut state, release) = setup(2);
    let selector = ReleaseSelector::Sha256(release.summary.sha256.clone());
    assert_eq!(state.check_blessing(&selector), Ok(()), "not required yet");
    let governance = Principal::from_slice(&[7; 29]);
    state
        .govern(GovernanceUpdate {
            governance: Some(governance),
            require_blessed_releases: Some(true),
            ..GovernanceUpdate::default()
        })
        .unwrap();
    assert_eq!(
        state.check_blessing(&selector).unwrap_err().kind(),
        &ErrorKind::ReleaseNotBlessed {
            sha256: release.summary.sha256.clone()
        }
    );

    let bless = GovernedAction::SetReleaseBlessing(SetReleaseBlessingArg {
        sha256: release.summary.sha256.clone(),
        blessed: true,
    });
    let render = bless.render(&state);
    assert!(
        render.starts_with("## Bless release child 2 for rollouts"),
        "{render}"
    );
    assert!(render.contains("Now: not blessed"), "{render}");
    assert!(render.contains("Blessing: required"), "{render}");
    bless.apply(&mut state, governance, T0 + 5).unwrap();
    assert_eq!(state.check_blessing(&selector), Ok(()));
    let blessing = state.release_store.get_release(&selector).unwrap().blessing;
    assert_eq!(
        blessing,
        Some(Blessing {
            blessed_at: T0 + 5,
            blessed_by: governance
        })
    );
    let preview = state
        .rollouts
        .preview(
            &state.fleet,
            &state.release_store,
            StartRolloutArg {
                plan_sha256: None,
                release: selector.clone(),
                selector: Selector::All,
                policy: None,
            },
            subnet(),
        )
        .unwrap();
    assert_eq!(preview.release_blessing, blessing);
    assert!(
        crate::governance::render_rollout(&preview).contains(&format!(
            "- Blessed for rollouts by {governance} at {} ns",
            T0 + 5
        ))
    );

    let withdraw = GovernedAction::SetReleaseBlessing(SetReleaseBlessingArg {
        sha256: release.summary.sha256.clone(),
        blessed: false,
    });
    assert!(withdraw
        .render(&state)
        .starts_with("## Withdraw the blessing of release child 2"));
    withdraw.apply(&mut state, governance, T0 + 6).unwrap();
    assert!(state.check_blessing(&selector).is_err());
}

/// Reads `stream` of the export `state` took at `exported_at` and sends it to the restore.
fn copy_stream(
    state: &State<VectorMemory>,
    fresh: &mut State<VectorMemory>,
    exported_at: u64,
    stream: crate::backup::ExportStream,
) {
    use crate::backup::{ReadExportArg, RestorePieceArg};
    let read = ReadExportArg {
        exported_at,
        stream: stream.clone(),
    };
    let bytes = ByteBuf::from(state.read_export(&read).unwrap());
    fresh
        .restore_piece(RestorePieceArg { stream, bytes })
        .unwrap();
}

/// Exports `state` at `now` and restores the document, read stream by stream, into a freshly
/// installed deployer.
fn restored_copy(state: &mut State<VectorMemory>, now: u64) -> State<VectorMemory> {
    let (fresh, summary) = commit_restored(sent_copy(state, now), now);
    summary.unwrap();
    fresh
}

/// A freshly installed deployer sent every stream of an export of `state` at `now`, not yet
/// committed.
fn sent_copy(state: &mut State<VectorMemory>, now: u64) -> State<VectorMemory> {
    use crate::backup::ExportStream;
    let manifest = exported(state, now);
    let mut fresh = State::init(VectorMemory::default(), InitArg::default(), admin()).unwrap();
    fresh.begin_restore(manifest.clone()).unwrap();
    let pieces = (0..manifest.document_pieces.len() as u32).map(ExportStream::DocumentPiece);
    let chunks = manifest
        .release_chunks
        .iter()
        .map(|chunk| ExportStream::ReleaseChunk(chunk.sha256.clone()));
    for stream in pieces.chain(chunks) {
        copy_stream(state, &mut fresh, now, stream);
    }
    fresh
}

/// Takes an export of `state` at `now` and hashes its pieces: its manifest.
fn exported(state: &mut State<VectorMemory>, now: u64) -> crate::backup::ExportManifest {
    state.start_export(now);
    loop {
        if let Some(manifest) = state.continue_export(now).unwrap() {
            return manifest;
        }
    }
}

/// Takes the commit's slices until the last or a refusal.
fn commit_restored(
    mut fresh: State<VectorMemory>,
    now: u64,
) -> (
    State<VectorMemory>,
    Result<crate::backup::RestoreSummary, Error>,
) {
    loop {
        let (state, committed) = fresh.commit_restore(now);
        fresh = state;
        match committed {
            Ok(None) => {}
            Ok(Some(summary)) => return (fresh, Ok(summary)),
            Err(error) => return (fresh, Err(error)),
        }
    }
}

#[test]
fn a_restored_deployer_answers_as_the_exported_one_and_goes_on_with_its_rollouts() {
    let (mut state, release) = setup(12);
    let finished = start(&mut state, &release, Selector::All).unwrap();
    let now = run_steps(&mut state, finished, T0, u32::MAX);
    let newer = commit(
        &mut state,
        b"\0asm\x01\x00\x00\x00\x00\x01\x00".to_vec(),
        "3",
    );
    let active = start(&mut state, &newer, Selector::All).unwrap();
    let now = run_steps(&mut state, active, now, 3);
    // Calls in flight at the export: the restored deployer settles them as unknown.
    let (in_flight, _) = state
        .rollouts
        .dispatch(active, &mut state.fleet, now, &funds(u128::MAX))
        .unwrap();
    assert!(!in_flight.is_empty());

    let mut restored = restored_copy(&mut state, now);

    assert_eq!(restored.roles.list(), state.roles.list());
    let releases = ListReleasesArg::default();
    assert_eq!(
        restored.release_store.list_releases(&releases),
        state.release_store.list_releases(&releases)
    );
    for n in 0..12 {
        assert_eq!(restored.fleet.get(&child(n)), state.fleet.get(&child(n)));
    }
    assert_eq!(restored.fleet.composition(), state.fleet.composition());
    assert_eq!(
        restored.rollouts.info(finished).unwrap(),
        state.rollouts.info(finished).unwrap()
    );
    let events = ListEventsArg::default();
    let before = state.rollouts.events(&events).events;
    assert_eq!(
        restored.rollouts.events(&events).events[..before.len()],
        before[..]
    );
    assert_eq!(
        restored
            .release_store
            .module_chunk(&newer_hash(&newer), 0)
            .unwrap(),
        state
            .release_store
            .module_chunk(&newer_hash(&newer), 0)
            .unwrap()
    );
    let stats = (restored.storage_stats(now), state.storage_stats(now));
    assert_eq!(
        (
            stats.0.releases,
            stats.0.release_bytes,
            stats.0.chunks,
            stats.0.chunk_bytes
        ),
        (
            stats.1.releases,
            stats.1.release_bytes,
            stats.1.chunks,
            stats.1.chunk_bytes
        )
    );

    // The active rollout comes back paused, its children still claimed; resumed, it finishes.
    let info = restored.rollouts.info(active).unwrap();
    assert!(
        matches!(info.summary.phase, RolloutPhase::Paused { .. }),
        "{info:?}"
    );
    assert_eq!(restored.fleet.claim_of(&child(0)), Some(active));
    restored
        .rollouts
        .control(active, Command::Resume, &mut restored.fleet, now)
        .unwrap();
    run_steps(&mut restored, active, now, u32::MAX);
    let info = restored.rollouts.info(active).unwrap();
    assert_eq!(info.summary.counts.upgraded, 12, "{info:?}");
    assert_eq!(restored.fleet.claim_of(&child(0)), None);
}

fn newer_hash(release: &Release) -> crate::hash::Sha256Hash {
    <[u8; 32]>::try_from(release.summary.sha256.as_slice()).unwrap()
}

/// The document of the export `manifest` describes, read piece by piece.
fn document_of(state: &State<VectorMemory>, manifest: &crate::backup::ExportManifest) -> Vec<u8> {
    use crate::backup::{ExportStream, ReadExportArg};
    (0..manifest.document_pieces.len() as u32)
        .flat_map(|index| {
            let arg = ReadExportArg {
                exported_at: manifest.exported_at,
                stream: ExportStream::DocumentPiece(index),
            };
            state.read_export(&arg).unwrap()
        })
        .collect()
}

#[test]
fn an_export_taken_in_slices_is_the_document_encoded_at_once() {
    use crate::backup::{Export, Sections};
    let (mut state, release) = setup(2_000);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let now = run_steps(&mut state, rollout_id, T0, 40);
    let mut sections = Sections::default();
    state.visit_sections(&mut sections);
    let entries = sections.entries();
    assert!(
        entries > 2 * crate::backup::commit::SLICE_ENTRIES,
        "{entries}"
    );
    let mut reference = Export::of_sections(sections, state.release_store.release_chunks(), now);
    while !reference.hash_next_piece() {}

    let manifest = exported(&mut state, now);
    assert_eq!(manifest, reference.manifest);
    assert_eq!(
        document_of(&state, &manifest),
        (0..manifest.document_pieces.len() as u32)
            .flat_map(|index| reference.document_piece(index).unwrap())
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_export_is_the_state_of_its_start_whatever_is_written_while_it_is_taken() {
    // Two deployers alike: the busy one starts a rollout, runs its steps, grants a role and
    // adopts children between the slices of its export.
    let (mut quiet, release) = setup(2_000);
    let (mut busy, _) = setup(2_000);
    let expected = exported(&mut quiet, T0);
    let document = document_of(&quiet, &expected);

    busy.start_export(T0);
    assert_eq!(busy.continue_export(T0).unwrap(), None);
    let rollout_id = start(&mut busy, &release, Selector::All).unwrap();
    let (mut now, mut slices, mut n) = (T0, 1, 3_000);
    let manifest = loop {
        now = run_steps(&mut busy, rollout_id, now, 5);
        busy.roles
            .grant(child(n), crate::roles::Role::Operator)
            .unwrap();
        busy.fleet
            .adopt(child(n), subnet(), None, &[], now, admin())
            .unwrap();
        n += 1;
        if let Some(manifest) = busy.continue_export(T0).unwrap() {
            break manifest;
        }
        slices += 1;
    };
    assert!(slices >= 3, "the document taken in {slices} messages");
    assert_eq!(manifest, expected);
    assert_eq!(document_of(&busy, &manifest), document);

    // What was written meanwhile is in the live state, and in the next export.
    assert_eq!(
        busy.roles.roles_of(child(3_000)),
        vec![crate::roles::Role::Operator]
    );
    assert!(busy.fleet.get(&child(3_000)).is_some());
    assert!(upgraded_count(&busy, rollout_id) > 0);
    let next = exported(&mut busy, now);
    assert_ne!(next.document_sha256, expected.document_sha256);
}

#[test]
fn an_export_is_read_once_hashed_and_a_newer_export_replaces_it() {
    use crate::backup::{ExportStream, ReadExportArg};
    let (mut state, _) = setup(2);
    state.start_export(T0);
    let read = |exported_at| ReadExportArg {
        exported_at,
        stream: ExportStream::DocumentPiece(0),
    };
    assert_eq!(
        state.read_export(&read(T0)).unwrap_err().kind(),
        &ErrorKind::ExportNotHeld { exported_at: T0 }
    );
    state.start_export(T0 + 1);
    assert_eq!(
        state.continue_export(T0).unwrap_err().kind(),
        &ErrorKind::ExportNotHeld { exported_at: T0 }
    );
    let manifest = loop {
        if let Some(manifest) = state.continue_export(T0 + 1).unwrap() {
            break manifest;
        }
    };
    let piece = state.read_export(&read(T0 + 1)).unwrap();
    assert_eq!(
        manifest.document_pieces[0].sha256.as_slice(),
        crate::hash::sha256(&piece)
    );
}

#[test]
fn while_a_restore_is_written_every_method_but_its_commit_is_refused_and_the_commit_goes_on_for_anyone(
) {
    use crate::access::Method;
    let (mut state, _) = setup(1_200);
    let mut fresh = sent_copy(&mut state, T0);
    let mut slices = 0;
    while fresh.restore_being_written().is_none() {
        assert!(fresh.authorize(admin(), Method::ListChildren).is_ok());
        let (state, committed) = fresh.commit_restore(T0);
        assert_eq!(committed.unwrap(), None);
        fresh = state;
        slices += 1;
    }
    assert!(slices >= 2, "a check of {slices} slices, then the emptying");
    let stranger = Principal::from_slice(&[9; 29]);
    for (caller, method) in [
        (admin(), Method::ListChildren),
        (admin(), Method::RestorePiece),
        (admin(), Method::BeginRestore),
        (admin(), Method::StartRollout),
    ] {
        assert!(matches!(
            fresh.authorize(caller, method).unwrap_err().kind(),
            ErrorKind::RestoreCommitting { written: 0, entries }
                if *entries > crate::backup::commit::SLICE_ENTRIES
        ));
    }
    assert!(fresh.authorize(stranger, Method::CommitRestore).is_ok());
    let (fresh, summary) = commit_restored(fresh, T0);
    let summary = summary.unwrap();
    assert_eq!(summary.exported_at, T0);
    assert!(fresh.restore_being_written().is_none());
    assert_eq!(fresh.fleet.len(), 1_200);
    assert!(fresh.authorize(stranger, Method::CommitRestore).is_err());
    // A commit called again (a retry, or the other of two calls that drove it) answers the same.
    let (fresh, again) = fresh.commit_restore(T0 + 1);
    assert_eq!(again.unwrap(), Some(summary));
    assert_eq!(fresh.fleet.len(), 1_200);
}

#[test]
fn a_restore_into_a_deployer_with_state_or_without_a_chunk_changes_nothing() {
    use crate::backup::ExportStream;
    let (mut state, _) = setup(2);
    let manifest = exported(&mut state, T0);
    let (mut other, _) = setup(1);
    let refused = other.begin_restore(manifest.clone()).unwrap_err();
    assert_eq!(
        refused.kind(),
        &ErrorKind::RestoreIntoDeployerWithState {
            holds: "releases or uploads".into()
        }
    );

    let mut fresh = State::init(VectorMemory::default(), InitArg::default(), admin()).unwrap();
    let roles = fresh.roles.list();
    fresh.begin_restore(manifest.clone()).unwrap();
    copy_stream(&state, &mut fresh, T0, ExportStream::DocumentPiece(0));
    let (fresh, refused) = commit_restored(fresh, T0);
    assert!(matches!(
        refused.unwrap_err().kind(),
        ErrorKind::RestoreIncomplete {
            missing: 2,
            first: ExportStream::ReleaseChunk(_)
        }
    ));
    assert_eq!(fresh.roles.list(), roles);
    assert_eq!(
        fresh
            .release_store
            .list_releases(&ListReleasesArg::default())
            .releases,
        vec![]
    );
    assert_eq!(fresh.storage_stats(T0).chunks, 0);
}

/// Children of a rollout stored apart per message, and a rollout of `children` run until its
/// final outcome (which stores the first slice): the state, and the rollout as it finished.
fn finished_with_slices_left(memory: VectorMemory) -> (State<VectorMemory>, u64, RolloutRecord) {
    let (mut state, release) = setup_on(memory, 2 * SLICE as u16 + 44);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let mut now = T0;
    while state.rollouts.live[&rollout_id].record.is_active() {
        now = run_steps(&mut state, rollout_id, now, 1);
    }
    let at_end = state.rollouts.live[&rollout_id].record.clone();
    (state, rollout_id, at_end)
}

const SLICE: usize = finished::RUNS_PER_SLICE * finished::CHILDREN_PER_ENTRY;

/// Drives a finished rollout until its children are stored apart; returns the children stored
/// after each message.
fn store_apart(state: &mut State<VectorMemory>, rollout_id: u64) -> Vec<usize> {
    let mut stored = Vec::new();
    while let Some((actions, next_due)) =
        state
            .rollouts
            .dispatch(rollout_id, &mut state.fleet, T0, &funds(u128::MAX))
    {
        assert!(actions.is_empty());
        stored.push(state.rollouts.finished.children_stored(rollout_id));
        if next_due.is_none() {
            break;
        }
        assert_eq!(next_due, Some(T0), "the next slice goes at once");
    }
    stored
}

/// The record as stored apart equals the rollout as it finished, and nothing else holds it.
fn assert_stored_apart(state: &State<VectorMemory>, rollout_id: u64, at_end: &RolloutRecord) {
    assert!(!state.rollouts.live.contains_key(&rollout_id));
    assert!(!state.rollouts.rollouts.contains_key(&rollout_id));
    assert!(!state.rollouts.active.contains_key(&rollout_id));
    let stored = state.rollouts.finished.load(rollout_id).unwrap();
    assert_eq!(stored.engine, at_end.engine);
    assert_eq!(stored.children, at_end.children);
    assert!(!stored.claimed);
}

#[test]
fn a_finished_rollout_stores_its_children_apart_a_slice_per_message() {
    let (mut state, rollout_id, at_end) = finished_with_slices_left(VectorMemory::default());
    let children = at_end.children.len();
    let last = child(children as u16 - 1);

    // Between slices: finished for every read, still on the heap and in the active set.
    assert_eq!(state.rollouts.finished.children_stored(rollout_id), SLICE);
    assert!(state.rollouts.live[&rollout_id].is_storing_apart());
    assert!(state.rollouts.active.contains_key(&rollout_id));
    let info = state.rollouts.info(rollout_id).unwrap();
    assert_eq!(info.summary.counts.upgraded, children as u32);
    assert_eq!(
        state.rollouts.list(&ListRolloutsArg::default()).rollouts,
        vec![info.clone()]
    );
    assert!(state.rollouts.active_infos().is_empty());
    assert!(history_of(&state, rollout_id, children as u16 - 1).is_ok());
    assert_eq!(state.fleet.claim_of(&last), None, "its children are free");
    assert_eq!(state.fleet.composition().claimed, 0);
    assert_eq!(
        state.fleet.claim_entries(),
        children - SLICE,
        "the claims' entries go with the slices"
    );

    assert_eq!(
        store_apart(&mut state, rollout_id),
        vec![2 * SLICE, children]
    );
    assert_stored_apart(&state, rollout_id, &at_end);
    assert_eq!(state.fleet.claim_entries(), 0);
    assert_eq!(state.rollouts.info(rollout_id).unwrap(), info);
    assert!(history_of(&state, rollout_id, children as u16 - 1).is_ok());
}

#[test]
fn an_upgrade_between_slices_stores_the_children_apart_again_from_the_first() {
    let memory = VectorMemory::default();
    let (state, rollout_id, at_end) = finished_with_slices_left(memory.clone());
    drop(state);
    let mut upgraded = State::post_upgrade(memory, crate::UpgradeArg::default()).unwrap();
    let to_drive = upgraded.rollouts.recover(&mut upgraded.fleet, T0);
    assert_eq!(to_drive, vec![rollout_id]);
    let stored = store_apart(&mut upgraded, rollout_id);

    assert_eq!(stored.last(), Some(&at_end.children.len()));
    assert_stored_apart(&upgraded, rollout_id, &at_end);
    let last = child(at_end.children.len() as u16 - 1);
    assert_eq!(upgraded.fleet.claim_of(&last), None);
}

/// A fold between slices checkpoints the finished rollout (its lines are gone), and the slices
/// go on from it, after an upgrade too.
#[test]
fn a_fold_between_slices_checkpoints_the_finished_rollout() {
    let memory = VectorMemory::default();
    let (mut state, rollout_id, at_end) = finished_with_slices_left(memory.clone());
    assert!(state.rollouts.journal_lines() > 0);
    state.rollouts.fold();
    assert_eq!(state.rollouts.journal_lines(), 0);
    assert_eq!(state.rollouts.finished.children_stored(rollout_id), SLICE);
    assert_eq!(state.rollouts.load(rollout_id).unwrap().record, at_end);
    drop(state);

    let mut upgraded = State::post_upgrade(memory, crate::UpgradeArg::default()).unwrap();
    assert_eq!(
        upgraded.rollouts.recover(&mut upgraded.fleet, T0),
        vec![rollout_id]
    );
    assert_eq!(
        upgraded.rollouts.journal_lines(),
        0,
        "a finished rollout journals nothing"
    );
    store_apart(&mut upgraded, rollout_id);
    assert_stored_apart(&upgraded, rollout_id, &at_end);
}

#[test]
fn a_rollback_between_slices_activates_the_rollout_and_stores_it_again_when_it_ends() {
    let (mut state, rollout_id, _) = finished_with_slices_left(VectorMemory::default());
    state
        .rollouts
        .control(rollout_id, Command::RollBackAll, &mut state.fleet, T0)
        .unwrap();
    let live = &state.rollouts.live[&rollout_id];
    assert!(live.record.is_active() && !live.is_storing_apart());
    assert_eq!(state.rollouts.active_infos().len(), 1);
    // Claimed again, the children swept with the first slice as the others.
    let children = live.record.children.len();
    for n in [0, children as u16 - 1] {
        assert_eq!(state.fleet.claim_of(&child(n)), Some(rollout_id));
    }
    assert_eq!(state.fleet.composition().claimed, children as u64);

    run_to_end(&mut state, rollout_id);
    assert_eq!(state.fleet.claim_of(&child(0)), None);
    assert_eq!(state.fleet.claim_entries(), 0);
    let stored = state.rollouts.finished.load(rollout_id).unwrap();
    assert_eq!(stored.engine.phase(), &RolloutPhase::RolledBack);
    assert_eq!(
        state.rollouts.finished.children_stored(rollout_id),
        stored.children.len()
    );
    assert!(!state.rollouts.rollouts.contains_key(&rollout_id));
}

/// A rollout with nothing to do ends in the message that starts it; with more than a slice of
/// children it is checkpointed, so that the slices after that message find it after an upgrade.
#[test]
fn a_rollout_finished_as_it_starts_is_checkpointed_until_its_children_are_stored_apart() {
    let memory = VectorMemory::default();
    let (mut state, rollout_id, _) = finished_with_slices_left(memory.clone());
    store_apart(&mut state, rollout_id);
    let release = state.rollouts.release_of(rollout_id).unwrap();
    let sha256 = ByteBuf::from(release.module_hash.0.to_vec());
    let again = state
        .rollouts
        .start(
            &mut state.fleet,
            &state.release_store,
            StartRolloutArg {
                plan_sha256: None,
                release: ReleaseSelector::Sha256(sha256),
                selector: Selector::All,
                policy: None,
            },
            subnet(),
            admin(),
            T0,
        )
        .unwrap();
    let live = &state.rollouts.live[&again];
    assert!(live.is_storing_apart(), "{:?}", live.record.engine.phase());
    let at_end = live.record.clone();
    assert!(state.rollouts.rollouts.contains_key(&again));
    drop(state);

    let mut upgraded = State::post_upgrade(memory, crate::UpgradeArg::default()).unwrap();
    assert_eq!(
        upgraded.rollouts.recover(&mut upgraded.fleet, T0),
        vec![again]
    );
    store_apart(&mut upgraded, again);
    assert_stored_apart(&upgraded, again, &at_end);
}

/// While a finished rollout stores its children apart, the journal folds as ever: the finished
/// rollout's children changed no more, so the fold writes its record and none of its runs.
#[test]
fn a_fold_while_a_finished_rollout_stores_its_children_apart_writes_none_of_its_runs() {
    let (mut state, first, at_end) = finished_with_slices_left(VectorMemory::default());
    state.rollouts.fold_every = 64;
    let next = commit(
        &mut state,
        b"\0asm\x01\x00\x00\x00\x00\x02\x01a".to_vec(),
        "3",
    );
    let written_before = state.rollouts.checkpoint_children.runs_written;
    let second = start(&mut state, &next, Selector::All).unwrap();
    let second_runs = state.rollouts.checkpoint_children.runs_written - written_before;
    let mut folds = 0;
    let mut now = T0;
    while state.rollouts.live[&second].record.is_active() {
        let written = state.rollouts.checkpoint_children.runs_written;
        let lines = state.rollouts.journal_lines();
        now = run_steps(&mut state, second, now, 1);
        if state.rollouts.journal_lines() < lines {
            folds += 1;
            let at_fold = state.rollouts.checkpoint_children.runs_written - written;
            assert!(
                at_fold < second_runs,
                "a fold wrote {at_fold} runs, the active rollout has {second_runs}"
            );
        }
    }
    assert!(folds >= 2, "{folds} folds");
    assert_eq!(state.rollouts.load(first).unwrap().record, at_end);
    store_apart(&mut state, first);
    assert_stored_apart(&state, first, &at_end);
}

/// A checkpoint of schema 1 (release 0.1's, its children inline) loads as it is; the next
/// checkpoint stores every run and the record without its children, and loads as it was.
#[test]
fn a_schema_1_checkpoint_loads_and_its_next_checkpoint_stores_its_children_apart() {
    let memory = VectorMemory::default();
    let (mut state, release) = setup_on(memory.clone(), 100);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let now = run_steps(&mut state, rollout_id, T0, 3);
    state.rollouts.fold();
    let mut schema_1 = state.rollouts.live[&rollout_id].record.clone();
    schema_1.children_apart = false;
    state
        .rollouts
        .rollouts
        .insert(rollout_id, CborBytes::encode(&schema_1));
    state.rollouts.checkpoint_children.remove_all(rollout_id);
    drop(state);

    let mut upgraded = State::post_upgrade(memory, crate::UpgradeArg::default()).unwrap();
    assert_eq!(upgraded.rollouts.load(rollout_id).unwrap().record, schema_1);
    upgraded.rollouts.recover(&mut upgraded.fleet, now);
    upgraded.rollouts.fold();
    assert_eq!(
        upgraded
            .rollouts
            .checkpoint_children
            .runs_stored(rollout_id),
        100usize.div_ceil(checkpoint_children::CHILDREN_PER_RUN)
    );
    let live = upgraded.rollouts.live[&rollout_id].record.clone();
    assert!(live.children_apart);
    assert_eq!(upgraded.rollouts.load(rollout_id).unwrap().record, live);
    run_steps(&mut upgraded, rollout_id, now, u32::MAX);
    assert_eq!(upgraded_count(&upgraded, rollout_id), 100);
}

/// Once a finished rollout's children are stored apart, its checkpoint's runs go, a slice per
/// message, its driver calling again until none is left.
#[test]
fn a_finished_rollouts_checkpoint_runs_are_removed_a_slice_per_message() {
    let (mut state, release) = setup(1_000);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let mut now = T0;
    while state.rollouts.live[&rollout_id].record.is_active() {
        now = run_steps(&mut state, rollout_id, now, 1);
    }
    let runs = state.rollouts.checkpoint_children.runs_stored(rollout_id);
    assert_eq!(
        runs,
        1_000usize.div_ceil(checkpoint_children::CHILDREN_PER_RUN)
    );
    store_apart(&mut state, rollout_id);
    assert_eq!(
        state.rollouts.checkpoint_children.runs_stored(rollout_id),
        0
    );
    assert!(!state.rollouts.children_to_prune);
    assert_eq!(
        state.rollouts.journal_lines(),
        0,
        "no rollout on the heap: the journal was emptied"
    );
    let late = state
        .rollouts
        .dispatch(rollout_id, &mut state.fleet, now, &funds(u128::MAX));
    assert_eq!(late, None);
}

/// A restored deployer has its finished rollout still storing children apart to drive (its
/// other rollouts come back paused), and the slices go on from the restored checkpoint.
#[test]
fn a_restored_deployer_goes_on_storing_a_finished_rollouts_children_apart() {
    let (mut state, rollout_id, at_end) = finished_with_slices_left(VectorMemory::default());
    assert_eq!(state.rollouts.storing_apart(), vec![rollout_id]);
    let mut restored = restored_copy(&mut state, T0);
    assert_eq!(restored.rollouts.storing_apart(), vec![rollout_id]);
    store_apart(&mut restored, rollout_id);
    assert_stored_apart(&restored, rollout_id, &at_end);
    assert!(restored.rollouts.storing_apart().is_empty());
}

fn start_arg(release: &Release, plan_sha256: Option<ByteBuf>) -> StartRolloutArg {
    StartRolloutArg {
        plan_sha256,
        release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
        selector: Selector::All,
        policy: None,
    }
}

fn begin_start(state: &mut State<VectorMemory>, arg: impl Into<StartArg>) -> StartPlan {
    let State {
        release_store,
        fleet,
        rollouts,
        ..
    } = state;
    rollouts.begin_start(fleet, release_store, arg).unwrap()
}

fn create_started(state: &mut State<VectorMemory>, plan: StartPlan) -> Result<u64, Error> {
    let State {
        fleet, rollouts, ..
    } = state;
    rollouts.create_started(plan, fleet, admin(), T0)
}

/// Plans a slice of the start; returns whether it is planned.
fn start_step(state: &mut State<VectorMemory>, plan: &mut StartPlan) -> Result<bool, Error> {
    let State {
        release_store,
        fleet,
        rollouts,
        ..
    } = state;
    rollouts.start_some(plan, fleet, release_store, subnet())
}

#[test]
fn a_start_reads_then_plans_a_slice_of_children_per_step_holding_them_as_it_reads() {
    let children = 2 * PLAN_SLICE as u16 + 200;
    let (mut state, release) = setup(children);
    // More than a preview plans at once: prepared first, as a proposer would.
    let preview = prepare(&mut state, start_arg(&release, None), T0)
        .0
        .unwrap();
    let mut plan = begin_start(
        &mut state,
        start_arg(&release, Some(preview.plan_sha256.clone())),
    );
    let rollout_id = state.rollouts.next_rollout_id() - 1;
    assert!(!start_step(&mut state, &mut plan).unwrap());
    // Read children are held: another rollout cannot take them.
    assert_eq!(state.fleet.claim_of(&child(0)), Some(rollout_id));
    assert_eq!(state.fleet.claim_of(&child(children - 1)), None);
    let refused = start(&mut state, &release, Selector::Explicit(vec![child(0)]));
    assert!(
        matches!(
            refused.as_ref().map_err(|error| error.kind()),
            Err(ErrorKind::Fleet(FleetError::ClaimConflict { .. }))
        ),
        "a child read by a start is held"
    );
    let mut steps = 1;
    while !start_step(&mut state, &mut plan).unwrap() {
        steps += 1;
        // What a plan stores as it goes is not taken for a removed checkpoint's leftovers.
        state.rollouts.children_to_prune = true;
        while state.rollouts.prune_children_slice() {}
    }
    steps += 1;
    // Three slices read, three planned.
    assert_eq!(steps, 6);
    assert_eq!(state.fleet.claim_of(&child(children - 1)), Some(rollout_id));
    let started = create_started(&mut state, plan).unwrap();
    assert_eq!(started, rollout_id);
    // The same rollout as one planned all at once, stored as it is held.
    let (mut at_once, release) = setup(children);
    let at_once_id = start(&mut at_once, &release, Selector::All).unwrap();
    let info = state.rollouts.info(rollout_id).unwrap();
    assert_eq!(
        info.summary,
        at_once.rollouts.info(at_once_id).unwrap().summary
    );
    assert_eq!(info.summary.counts.queued, u32::from(children));
    let stored = state.rollouts.load(rollout_id).unwrap().record;
    assert_eq!(stored, state.rollouts.live[&rollout_id].record);
    assert_eq!(
        state.rollouts.checkpoint_children.runs_stored(rollout_id),
        usize::from(children).div_ceil(checkpoint_children::CHILDREN_PER_RUN)
    );
}

#[test]
fn a_refused_start_frees_its_children_and_its_runs_and_its_id_waits_for_them() {
    let (mut state, release) = setup(PLAN_SLICE as u16 + 100);
    let mut plan = begin_start(
        &mut state,
        start_arg(&release, Some(ByteBuf::from(vec![7; 32]))),
    );
    let rollout_id = state.rollouts.next_rollout_id() - 1;
    while !start_step(&mut state, &mut plan).unwrap() {}
    assert!(state.rollouts.checkpoint_children.runs_stored(rollout_id) > 0);
    let refused = create_started(&mut state, plan);
    assert!(matches!(
        refused.as_ref().map_err(|error| error.kind()),
        Err(ErrorKind::PlanChanged { .. })
    ));
    assert_eq!(state.fleet.claim_of(&child(0)), None);
    // Its id is not given again while its runs remain; they go a slice at a time.
    assert_eq!(state.rollouts.next_rollout_id(), rollout_id + 1);
    while state.rollouts.prune_children_slice() {}
    assert_eq!(
        state.rollouts.checkpoint_children.runs_stored(rollout_id),
        0
    );
    assert_eq!(state.rollouts.next_rollout_id(), rollout_id);

    // A start abandoned half-way (a refusal, or a trap in one of its messages) frees its
    // children too.
    let mut plan = begin_start(&mut state, start_arg(&release, None));
    assert!(!start_step(&mut state, &mut plan).unwrap());
    assert_eq!(state.fleet.claim_of(&child(0)), Some(rollout_id));
    let State {
        fleet, rollouts, ..
    } = &mut state;
    rollouts.abandon_start(&plan, fleet);
    assert_eq!(state.fleet.claim_of(&child(0)), None);
    assert!(state
        .rollouts
        .start(
            &mut state.fleet,
            &state.release_store,
            start_arg(&release, None),
            subnet(),
            admin(),
            T0
        )
        .is_ok());
}

#[test]
fn a_backup_run_is_read_then_planned_a_slice_per_step_as_a_rollout_is() {
    let children = PLAN_SLICE as u16 + 100;
    let arg = || StartBackupRunArg {
        selector: Selector::All,
        policy: None,
        stop_children: false,
    };
    let (mut state, _) = setup(children);
    let mut plan = begin_start(&mut state, arg());
    let mut steps = 1;
    while !start_step(&mut state, &mut plan).unwrap() {
        steps += 1;
    }
    // Two slices read, two planned.
    assert_eq!(steps, 4);
    let rollout_id = create_started(&mut state, plan).unwrap();
    let (mut at_once, _) = setup(children);
    let at_once_id = {
        let State {
            release_store,
            fleet,
            rollouts,
            ..
        } = &mut at_once;
        rollouts
            .start_backup(fleet, release_store, arg(), admin(), T0)
            .unwrap()
    };
    let info = state.rollouts.info(rollout_id).unwrap();
    assert_eq!(info, at_once.rollouts.info(at_once_id).unwrap());
    assert!(info.operation.is_some(), "a backup run");
    assert_eq!(info.summary.counts.queued, u32::from(children));
}

#[test]
fn a_chunked_rollout_names_the_subnets_whose_stores_to_fill_and_an_inline_one_none() {
    let (mut state, release) = setup(3);
    let (other, third) = (
        Principal::from_slice(&[3; 29]),
        Principal::from_slice(&[4; 29]),
    );
    let running = state.fleet.get(&child(0)).unwrap().module_hash;
    for (n, on) in [(3, third), (4, other)] {
        state
            .fleet
            .adopt(child(n), on, running, &[], T0, admin())
            .unwrap();
    }
    state
        .rollouts
        .register_store(other, Principal::from_slice(&[5; 29]));
    state
        .rollouts
        .register_store(third, Principal::from_slice(&[6; 29]));
    let chunked = start(&mut state, &release, Selector::All).unwrap();
    let module = ModuleHash(<[u8; 32]>::try_from(release.summary.sha256.as_slice()).unwrap());
    let (filled, subnets) = state.rollouts.stores_to_fill(chunked).unwrap();
    assert_eq!(filled, module);
    let named: Vec<Principal> = subnets
        .iter()
        .map(|index| state.fleet.subnet(*index).unwrap())
        .collect();
    assert_eq!(named.len(), 3, "each subnet once: {subnets:?}");
    for on in [subnet(), third, other] {
        assert!(named.contains(&on), "{on} among {named:?}");
    }

    // Without a store on the third subnet, the small release travels inline: nothing to fill.
    let (mut state, release) = setup(1);
    state
        .fleet
        .adopt(child(1), third, running, &[], T0, admin())
        .unwrap();
    let inline = start(&mut state, &release, Selector::All).unwrap();
    assert_eq!(state.rollouts.stores_to_fill(inline), None);
}
