use candid::Principal;
use ic_stable_structures::VectorMemory;
use serde_bytes::ByteBuf;

use super::*;
use crate::chunk_store::sha256;
use crate::fleet::{FleetError, Selector};
use crate::releases::ReleaseSelector;
use crate::rollout::{ActionKind, Observation, Reply, RunStatus, SnapshotId};
use crate::state::{InitArg, State};
use crate::uploads::{UploadChunkArg, UploadOpenArg};

const T0: u64 = 1_000_000_000_000;

fn admin() -> Principal {
    Principal::from_slice(&[1; 29])
}

fn subnet() -> Principal {
    Principal::from_slice(&[2; 29])
}

fn child(n: u8) -> Principal {
    Principal::from_slice(&[10, n])
}

/// A deployer state with `children` adopted (running module `[7; 32]`) and one small release.
fn setup(children: u8) -> (State<VectorMemory>, Release) {
    let mut state = State::init(VectorMemory::default(), InitArg::default(), admin()).unwrap();
    for n in 0..children {
        state
            .fleet
            .adopt(
                child(n),
                subnet(),
                Some(ModuleHash([7; 32])),
                &[],
                T0,
                admin(),
            )
            .unwrap();
    }
    let module = b"\0asm\x01\x00\x00\x00".to_vec();
    let upload = state
        .registry
        .open_upload(
            UploadOpenArg {
                sha256: ByteBuf::from(sha256(&module).to_vec()),
                size: module.len() as u64,
                chunk_size: None,
                name: "child".into(),
                version: "2".into(),
                notes: None,
            },
            admin(),
            T0,
        )
        .unwrap();
    state
        .registry
        .put_chunk(
            UploadChunkArg {
                upload_id: upload.upload_id,
                index: 0,
                bytes: ByteBuf::from(module),
            },
            T0,
        )
        .unwrap();
    let release = state
        .registry
        .commit_upload(upload.upload_id, admin(), T0)
        .unwrap();
    (state, release)
}

fn start(
    state: &mut State<VectorMemory>,
    release: &Release,
    selector: Selector,
) -> Result<u64, Error> {
    let State {
        registry,
        fleet,
        rollouts,
        ..
    } = state;
    let arg = StartRolloutArg {
        release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
        selector,
        policy: Some(PolicyArg {
            bake_nanos: Some(0),
            ..PolicyArg::default()
        }),
    };
    rollouts.start(fleet, registry, arg, subnet(), admin(), T0)
}

/// Answers every action as a healthy child would until the rollout issues nothing more.
fn run_to_end(state: &mut State<VectorMemory>, rollout_id: u64) {
    run_steps(state, rollout_id, T0, u32::MAX);
}

/// Answers up to `steps` batches of actions, from `now` on, as a healthy child would; returns
/// the time reached.
fn run_steps(state: &mut State<VectorMemory>, rollout_id: u64, mut now: u64, steps: u32) -> u64 {
    let release = state.rollouts.release_of(rollout_id).unwrap().module_hash;
    for _ in 0..steps {
        now += 1;
        // `None` once the rollout finished.
        let Some((actions, next_due)) = state.rollouts.dispatch(rollout_id, &mut state.fleet, now)
        else {
            break;
        };
        if actions.is_empty() && next_due.is_none() {
            break;
        }
        for action in actions {
            let reply = match action.kind {
                ActionKind::TakeSnapshot { .. } => {
                    Reply::Snapshot(SnapshotId(vec![action.id.0 as u8]))
                }
                ActionKind::ReadStatus { .. } => Reply::Status(Observation {
                    status: RunStatus::Running,
                    module_hash: Some(release),
                    snapshots: None,
                }),
                _ => Reply::Done,
            };
            state.rollouts.record_outcome(
                rollout_id,
                action.id,
                Outcome::Ok(reply),
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
        assert_eq!(record.rollout_id, None, "the claim ended");
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
            phase: crate::rollout::RolloutPhase::Running,
        }
    );
}

#[test]
fn the_checkpoint_with_its_journal_replayed_is_the_live_rollout() {
    let (mut state, release) = setup(40);
    let rollout_id = start(&mut state, &release, Selector::All).unwrap();
    let mut now = T0;
    let mut batch = 0;
    let mut entries = 0;
    while state.rollouts.live.contains_key(&rollout_id) {
        batch += 1;
        entries = state.rollouts.live[&rollout_id].next_seq;
        let live = &state.rollouts.live[&rollout_id].record;
        let replayed = state.rollouts.load(rollout_id).unwrap().record;
        assert_eq!(&replayed.engine, &live.engine, "after batch {batch}");
        let stored = state.rollouts.rollouts.get(&rollout_id).unwrap().0;
        let pending = state.rollouts.live[&rollout_id].next_seq - stored.next_entry;
        assert!(
            pending < CHECKPOINT_EVERY.max(CHECKPOINT_ENTRIES_PER_CHILD * 40),
            "{pending} entries since the checkpoint"
        );
        assert_eq!(
            state.rollouts.journal.len(),
            pending,
            "folded entries are removed"
        );
        now = run_steps(&mut state, rollout_id, now, 1);
    }
    assert!(
        entries > CHECKPOINT_ENTRIES_PER_CHILD * 40,
        "{entries} entries: at least one periodic checkpoint"
    );
    assert_eq!(
        state
            .rollouts
            .info(rollout_id)
            .unwrap()
            .summary
            .counts
            .upgraded,
        40
    );
}

/// The journal's entries are stored: their CBOR bytes must not change by accident.
#[test]
fn journal_entry_encoding_is_pinned() {
    use ic_stable_structures::Storable;
    let entries = [
        JournalEntry::Dispatched { at: 5 },
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
        .map(|entry| crate::chunk_store::hex(&Cbor(entry).into_bytes()))
        .collect();
    assert_eq!(
        hex,
        [
            // {"Dispatched": {"at": 5}}
            "a16a44697370617463686564a162617405",
            // {"Command": {"command": "Pause", "at": 6}}
            "a167436f6d6d616e64a267636f6d6d616e6465506175736562617406",
            // {"Outcome": {"action": 7, "outcome": "Unknown", "at": 8}}
            "a1674f7574636f6d65a366616374696f6e07676f7574636f6d6567556e6b6e6f776e62617408",
        ]
    );
}
