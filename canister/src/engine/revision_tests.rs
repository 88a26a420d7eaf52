//! Pins the engine's decisions to [`ENGINE_REVISION`]: a journal is replayed through the engine
//! of the build that reads it, so a change to what the engine decides from the same inputs is a
//! new revision (the upgrade then asks for `prepare_upgrade` instead of misreading the journal).
//! The fingerprint is a hash of the actions and events of scenarios that exercise the dispatch
//! order, retries, backoffs, waves, a failure with its rollback, and an operator's commands.

use super::world::{failing, is, plan, policy, Fate, Harness};
use super::*;
use crate::hash::{hex, sha256};

/// Each revision's fingerprint. A failure here means the engine now decides differently: if
/// that is intended, give [`ENGINE_REVISION`] a new number and add its fingerprint.
/// Revision 1 (release 0.1) is gone from the code; revision 2 added the cycles check before a
/// child's stop, the requeue of stopped children on a pause for cycles, and the end of an
/// upgrade whose stop is refused for good without a start; revision 3 deletes the deployer's
/// snapshots beyond `keep_snapshots` after the new one is taken; revision 4 holds a child's
/// snapshot while its subnet has `SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET` in flight (1,000,00x:
/// the alternate builds). Only the current revisions are pinned: the transcript grows with each.
const FINGERPRINTS: [(u32, &str); 2] = [
    (
        4,
        "6866076ff223753c778c81a38e500ffacadb691580deb78c86bcc177f5a1410b",
    ),
    (
        1_000_004,
        "2d706eef4da95f59e99541e602bdbfd89e856ffc00d442c795738847b062da60",
    ),
];

fn transcript() -> String {
    let mut out = String::new();
    let staged = Policy {
        max_concurrency: 3,
        waves: WavePlan {
            canary: 2,
            then: vec![WaveSize::Count(4), WaveSize::Percent(100)],
        },
        bake_nanos: 50,
        ..policy()
    };
    let mut harness = Harness::new(plan(12, staged.clone()));
    harness
        .run(1_000, failing(2, is(Step::Install), Fate::Transient))
        .expect("settles");
    record(&mut out, &mut harness);

    let mut harness = Harness::new(plan(9, staged.clone()));
    harness
        .run(1_000, failing(1, is(Step::Verify), Fate::Permanent))
        .expect("settles");
    record(&mut out, &mut harness);

    let mut harness = Harness::new(plan(8, staged));
    harness.dispatch().expect("dispatch");
    harness.answer(0, Fate::Ok).expect("answer");
    harness.command(Command::Pause).expect("pause");
    harness.dispatch().expect("dispatch");
    harness.command(Command::RollBackAll).expect("rollback");
    harness.run(1_000, |_| Fate::Ok).expect("settles");
    record(&mut out, &mut harness);

    let mut harness = Harness::new(plan(6, policy()));
    harness.dispatch().expect("dispatch");
    harness.answer(0, Fate::Ok).expect("answer");
    harness.dispatch().expect("dispatch");
    harness.answer(0, Fate::Ok).expect("answer");
    let now = harness.now;
    harness.rollout.pause_for_cycles(1, 2, now).expect("pause");
    harness.run(1_000, |_| Fate::Ok).expect("settles");
    harness.command(Command::Resume).expect("resume");
    harness.run(1_000, |_| Fate::Ok).expect("settles");
    record(&mut out, &mut harness);

    // Retention lowered: each child holds three of the deployer's snapshots and keeps one.
    let mut retention = plan(
        4,
        Policy {
            keep_snapshots: Some(1),
            ..policy()
        },
    );
    for (n, child) in (0u32..).zip(&mut retention.children) {
        child.snapshots = (0..3)
            .map(|k| ExistingSnapshot {
                id: SnapshotId(vec![n as u8, k]),
                made_by_deployer: true,
            })
            .collect();
    }
    let mut harness = Harness::new(retention);
    harness
        .run(1_000, failing(1, is(Step::DeleteSnapshot), Fate::Transient))
        .expect("settles");
    record(&mut out, &mut harness);

    // More children at once on one subnet than it may have snapshots in flight.
    let many = SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET + 4;
    let mut harness = Harness::new(plan(
        many,
        Policy {
            max_concurrency: many,
            ..policy()
        },
    ));
    harness
        .run(1_000, failing(1, is(Step::TakeSnapshot), Fate::Transient))
        .expect("settles");
    record(&mut out, &mut harness);
    out
}

fn record(out: &mut String, harness: &mut Harness) {
    for action in &harness.issued {
        out.push_str(&format!("{action:?}\n"));
    }
    for event in harness.rollout.drain_events() {
        out.push_str(&format!("{event:?}\n"));
    }
    // `failures_by_kind` and `backed_up` (added after revision 2 was pinned) only count the
    // verdicts the events above record: views of decisions, not decisions, so they are left
    // out (no scenario here is a backup run).
    let summary = Summary {
        failures_by_kind: None,
        ..harness.rollout.summary()
    };
    let summary = format!("{summary:?}")
        .replace(", failures_by_kind: None", "")
        .replace(", backed_up: None", "");
    out.push_str(&format!("{summary}\n"));
}

#[test]
fn the_engine_decides_as_its_revision_says() {
    let fingerprint = hex(&sha256(transcript().as_bytes()));
    let pinned = FINGERPRINTS
        .iter()
        .find(|(revision, _)| *revision == ENGINE_REVISION)
        .map(|(_, pinned)| *pinned);
    assert_eq!(
        pinned,
        Some(fingerprint.as_str()),
        "the engine's decisions changed (fingerprint {fingerprint}): give ENGINE_REVISION a new \
         number and pin this fingerprint for it, so that no build replays a journal another \
         engine wrote"
    );
}
