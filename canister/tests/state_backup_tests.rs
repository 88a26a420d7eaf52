//! The deployer's own state on the real Wasm: exported while a rollout runs, restored into a
//! freshly installed deployer that answers every query as the original did and goes on with
//! the fleet; and every way a restore can be refused, each with a typed error that changes
//! nothing.

mod rollout_support;
mod support;

use std::collections::BTreeMap;

use candid::Principal;
use deployer::backup::commit::SLICE_ENTRIES;
use deployer::backup::RestoreSummary;
use deployer::dashboard::FleetSummary;
use deployer::governance::GovernanceSettings;
use deployer::{
    ChildHistory, ChildHistoryArg, ChildInfo, ErrorKind, EventKind, ExportManifest, ExportStream,
    ListChildrenArg, ListEventsArg, ListProxyCallsArg, ListReleasesArg, ListRolloutsArg,
    ProxyCallPage, ReadExportArg, Release, ReleasePage, ReleaseSelector, RestorePieceArg, Role,
    RoleAssignment, RolloutEvent, RolloutInfo, RolloutPhase, Selector, UploadSettings,
};
use deployer_client::state_backup::StateBackup;
use ic_sim::artifacts;
use ic_sim::scenario::IcEnv;
use rollout_support::*;
use serde_bytes::ByteBuf;

/// Everything the queries answer about the deployer's state, read by its admin.
#[derive(Debug, PartialEq)]
struct Answers {
    roles: Vec<RoleAssignment>,
    governance: GovernanceSettings,
    upload_settings: UploadSettings,
    releases: ReleasePage,
    release: Vec<Release>,
    /// Releases, their bytes, chunks and chunk bytes (the blocks behind them are laid out anew).
    stored: [u64; 4],
    fleet: FleetSummary,
    children: Vec<ChildInfo>,
    finished: Vec<RolloutInfo>,
    histories: Vec<ChildHistory>,
    proxy_calls: ProxyCallPage,
}

fn answers(fleet: &mut Fleet) -> Answers {
    let releases = fleet.list_releases_ok(admin(), ListReleasesArg::default());
    let release = releases
        .releases
        .iter()
        .map(|summary| {
            fleet.get_release_ok(admin(), ReleaseSelector::Sha256(summary.sha256.clone()))
        })
        .collect();
    let stats = fleet.storage_stats_ok(admin());
    let mut children = Vec::new();
    let mut from = None;
    loop {
        let page = fleet.list_children_ok(
            admin(),
            ListChildrenArg {
                labels: vec![],
                module_hash: None,
                from,
                limit: None,
            },
        );
        children.extend(page.children);
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    let finished: Vec<RolloutInfo> = all_rollouts(fleet)
        .into_iter()
        .filter(|info| info.summary.finished_at.is_some())
        .collect();
    let histories = finished
        .iter()
        .flat_map(|info| [(info.rollout_id, children[0].canister_id)])
        .map(|(rollout_id, canister_id)| {
            fleet.child_history_ok(
                admin(),
                ChildHistoryArg {
                    rollout_id,
                    canister_id,
                    from: None,
                    limit: None,
                },
            )
        })
        .collect();
    Answers {
        roles: fleet.list_roles_ok(admin()),
        governance: fleet.governance_settings_ok(admin()),
        upload_settings: fleet.upload_settings_ok(admin()),
        releases,
        release,
        stored: [
            stats.releases,
            stats.release_bytes,
            stats.chunks,
            stats.chunk_bytes,
        ],
        fleet: FleetSummary {
            cycles: 0u8.into(),
            ..fleet.fleet_summary_ok(admin())
        },
        children,
        finished,
        histories,
        proxy_calls: fleet.list_proxy_calls_ok(admin(), ListProxyCallsArg::default()),
    }
}

fn all_rollouts(fleet: &mut Fleet) -> Vec<RolloutInfo> {
    fleet
        .list_rollouts_ok(
            admin(),
            ListRolloutsArg {
                before: None,
                limit: Some(100),
                phase: None,
                release: None,
            },
        )
        .rollouts
}

fn all_events(fleet: &mut Fleet) -> Vec<RolloutEvent> {
    let mut events = Vec::new();
    let mut from = None;
    loop {
        let page = fleet.list_events_ok(
            admin(),
            ListEventsArg {
                rollout_id: None,
                from,
                limit: None,
            },
        );
        events.extend(page.events);
        match page.next {
            Some(next) => from = Some(next),
            None => return events,
        }
    }
}

/// A new deployer on the same IC, installed fresh (the one before stays where it was).
/// 1,000 children rolled out to v2, then a rollout of v3 to the first `moving` of them at
/// `concurrency`: the fleet, its children, v3 and the rollout's id.
fn rolling_out_v3(moving: usize, concurrency: u32) -> (Fleet, Vec<Principal>, Release, u64) {
    let (mut fleet, children, _, finished) = v2_rollout(1_000, 100);
    fleet.run_to_end(operator(), finished, 2_000);
    let v3 = release(&mut fleet, &artifacts::wasm("child_v3"), "3");
    let active = fleet
        .start_rollout_of(
            operator(),
            &v3,
            Selector::Explicit(children[..moving].to_vec()),
            policy(1, vec![], concurrency),
        )
        .answer()
        .expect("start")
        .rollout_id;
    (fleet, children, v3, active)
}

/// The restored deployer (`fleet.canister`) made a controller of the fleet, resumed, finishes
/// the rollout with every moving child on v3.
fn finishes_handed_the_fleet(
    fleet: &mut Fleet,
    children: &[Principal],
    moving: &[Principal],
    active: u64,
) {
    let restored = fleet.canister;
    for &child in children {
        set_controllers(fleet, child, vec![admin(), restored]);
    }
    fleet.resume_rollout_ok(operator(), active);
    let done = fleet.run_to_end(operator(), active, 2_000);
    assert_eq!(
        done.summary.counts.upgraded,
        moving.len() as u32,
        "{:?}",
        done.summary
    );
    for &child in moving {
        assert_eq!(version_of(fleet, child), "v3");
    }
}

#[test]
fn a_deployer_exported_mid_rollout_is_restored_whole_and_goes_on_with_its_fleet() {
    let (mut fleet, children, v3, active) = rolling_out_v3(40, 5);
    let moving = children[..40].to_vec();
    fleet.run_until(operator(), active, 200, |info| {
        info.summary.counts.upgraded >= 6
    });
    // Paused and with nothing in flight, the deployer answers after the export as at its first
    // message, to compare with the restored one (an export while a rollout runs: the next test).
    fleet.pause_rollout_ok(operator(), active);
    fleet.run_until(operator(), active, 200, |info| info.summary.in_flight == 0);

    let backup = fleet.export_state(admin(), &BTreeMap::new()).unwrap();
    let original = answers(&mut fleet);
    let events = all_events(&mut fleet);
    let active_before = fleet.get_rollout_ok(admin(), active);
    assert!(active_before.summary.finished_at.is_none());
    // The old deployer is gone from here on: stopped, its children handed over.
    let old = fleet.canister;
    fleet.env.stop_canister(admin(), old).unwrap();
    assert!(
        backup.manifest.document_pieces.len() > 1,
        "{:?}",
        backup.manifest.document_size
    );

    support::reinstall(&mut fleet);
    fleet
        .send_backup(admin(), &backup, |_| {})
        .expect("send the backup to a fresh deployer");
    let summary = commit_interrupted_while_writing(&mut fleet);
    assert_eq!(summary.exported_at, backup.manifest.exported_at);
    assert!(summary.entries > 2 * SLICE_ENTRIES, "{summary:?}");
    assert_eq!(answers(&mut fleet), original);
    let restored_events = all_events(&mut fleet);
    assert_eq!(restored_events[..events.len()], events[..]);

    // The rollout that ran at the export is back, paused, with the same plan and children.
    let info = fleet.get_rollout_ok(admin(), active);
    assert!(
        matches!(info.summary.phase, RolloutPhase::Paused(_)),
        "{:?}",
        info.summary
    );
    assert_eq!(
        (
            info.policy.clone(),
            info.created_at,
            info.summary.waves.len()
        ),
        (
            active_before.policy.clone(),
            active_before.created_at,
            active_before.summary.waves.len()
        )
    );

    // The operator hands the fleet to the restored deployer.
    finishes_handed_the_fleet(&mut fleet, &children, &moving, active);

    // And it rolls out anew.
    let next = fleet
        .start_rollout_of(
            operator(),
            &v3,
            Selector::Explicit(children[40..60].to_vec()),
            policy(1, vec![], 10),
        )
        .answer()
        .expect("a new rollout on the restored deployer")
        .rollout_id;
    let done = fleet.run_to_end(operator(), next, 1_000);
    assert_eq!(done.summary.counts.upgraded, 20, "{:?}", done.summary);
}

#[test]
fn an_export_taken_while_a_rollout_runs_is_the_state_of_its_first_message() {
    let (mut fleet, children, _, active) = rolling_out_v3(300, 30);
    let moving = children[..300].to_vec();
    let running = fleet.run_until(operator(), active, 200, |info| {
        info.summary.counts.upgraded >= 40 && info.summary.in_flight > 0
    });
    let events_before = all_events(&mut fleet).len();

    let trace_from = fleet.env.trace().len();
    let backup = fleet.export_state(admin(), &BTreeMap::new()).unwrap();
    // The document was taken over several messages, the rollout's callbacks landing between
    // them (the freeze keeps what they overwrite).
    let executions: Vec<String> = fleet
        .replicated_executions(trace_from)
        .map(|(entry, _)| entry.to_string())
        .collect();
    // The export's messages: its call, then the replies of its calls to itself.
    let exporting = |entry: &String| entry == "update:start_export" || entry == "response:version";
    let export_messages: Vec<usize> = executions
        .iter()
        .enumerate()
        .filter(|(_, entry)| exporting(entry))
        .map(|(at, _)| at)
        .collect();
    let take_messages = export_messages.len() - backup.manifest.document_pieces.len();
    assert!(take_messages >= 3, "{executions:?}");
    let (first, last_take) = (export_messages[0], export_messages[take_messages - 1]);
    let between = executions[first..last_take]
        .iter()
        .filter(|entry| !exporting(entry))
        .count();
    assert!(between > 0, "{executions:?}");
    let events_after = all_events(&mut fleet);
    let upgraded_after = fleet
        .get_rollout_ok(admin(), active)
        .summary
        .counts
        .upgraded;
    assert!(upgraded_after > running.summary.counts.upgraded);
    let old = fleet.canister;
    fleet.env.stop_canister(admin(), old).unwrap();

    support::reinstall(&mut fleet);
    fleet
        .send_backup(admin(), &backup, |_| {})
        .expect("send the backup to a fresh deployer");
    fleet.commit_restore(admin()).expect("commit");
    // The restored events are those logged before the export's first message: none written
    // while it was taken.
    let restored_events = all_events(&mut fleet);
    let common = restored_events
        .iter()
        .zip(&events_after)
        .take_while(|(restored, original)| restored == original)
        .count();
    assert!(common >= events_before, "{common} < {events_before}");
    assert!(common < events_after.len(), "{common}");
    // After them, only the restored deployer's own, later than any of the original's: the
    // steps in flight at the export settled by reading their children, and its pause.
    let own = &restored_events[common..];
    let last_original = events_after.last().expect("events").at;
    assert!(
        own.iter()
            .all(|event| event.rollout_id == active && event.at > last_original),
        "{own:?}"
    );
    assert!(own
        .iter()
        .any(|event| matches!(event.kind, EventKind::Reconciling { .. })));
    // The rollout is back where it stood then: paused, its counts adding up to its children.
    let info = fleet.get_rollout_ok(admin(), active);
    assert!(
        matches!(info.summary.phase, RolloutPhase::Paused(_)),
        "{:?}",
        info.summary
    );
    let counts = &info.summary.counts;
    assert!(counts.upgraded >= running.summary.counts.upgraded);
    assert!(counts.upgraded < upgraded_after, "{counts:?}");

    finishes_handed_the_fleet(&mut fleet, &children, &moving, active);
}

/// Commits the restore sent, a slice per message: while it writes, every other method is
/// refused with where it stands; stopping the deployer ends the commit's call with the same
/// answer and its upgrade is refused (the restore's pieces are on the heap); a second call,
/// once the deployer runs again, finishes it.
fn commit_interrupted_while_writing(fleet: &mut Fleet) -> RestoreSummary {
    let commit = fleet
        .env
        .submit_update(
            admin(),
            fleet.canister,
            "commit_restore",
            candid::encode_args(()).unwrap(),
        )
        .expect("submit the commit");
    let mut rounds = 0;
    let writing = loop {
        fleet.env.tick();
        rounds += 1;
        assert!(rounds < 500, "the commit never began writing");
        if let Err(error) = fleet.fleet_summary(admin()) {
            break error.deployer_error().kind().clone();
        }
    };
    let ErrorKind::RestoreCommitting { written, entries } = writing else {
        panic!("{writing:?}")
    };
    assert!(written < entries, "{writing:?}");
    assert!(matches!(
        refused(fleet.add_role(admin(), operator(), Role::Viewer)),
        ErrorKind::RestoreCommitting { .. }
    ));
    let upgrade = fleet.upgrade_stopped(admin(), None).unwrap_err();
    assert!(
        upgrade.message.contains("a restore is being written"),
        "{upgrade:?}"
    );
    let interrupted: Result<RestoreSummary, deployer::Error> =
        candid::decode_one(&fleet.env.await_ingress(commit, 10).unwrap()).unwrap();
    assert!(matches!(
        interrupted.unwrap_err().kind(),
        ErrorKind::RestoreCommitting { .. }
    ));
    fleet.commit_restore_ok(admin())
}

/// An export whose message traps while it takes the document (its call to itself answered in
/// a callback that traps; ic-cdk drops the export's call in the cleanup) lets go of its freeze:
/// the pages written afterwards are not kept on the heap. Without that, each page written was
/// kept until 512 MiB were.
#[test]
fn an_export_whose_callback_trapped_lets_go_of_its_freeze() {
    // 150 children with 14 labels each: more index entries than one message takes.
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 150);
    let labels: Vec<deployer::Label> = (0..14)
        .map(|index| deployer::Label {
            key: format!("key-{index}"),
            value: format!("value-{index}"),
        })
        .collect();
    for batch in children.chunks(100) {
        let arg = deployer::AdoptChildrenArg {
            canister_ids: batch.to_vec(),
            subnet: None,
            labels: labels.clone(),
        };
        for adopted in fleet.adopt_children_ok(admin(), arg) {
            adopted.expect("adopted");
        }
    }
    assert!(children.len() * labels.len() > SLICE_ENTRIES as usize);
    let large = artifacts::wasm("child_large");
    // Once before, so that the heap already holds what an upload needs while it runs.
    let rewrite_release = |fleet: &mut Fleet| {
        let uploaded = release(fleet, &large, "large");
        fleet.delete_release_ok(operator(), uploaded.summary.sha256);
    };
    rewrite_release(&mut fleet);
    let entry = "response:version";
    fleet.env.inject(ic_sim::Fault::TrapExecution {
        canister: fleet.canister,
        entry: entry.to_string(),
        count: ic_sim::FaultCount::Times(1),
    });

    let reject = fleet
        .start_export(admin())
        .expect_err("the export's callback trapped")
        .reject();
    assert_eq!(reject.code, ic_sim::RejectCode::CanisterError, "{reject:?}");
    let heap = |fleet: &Fleet| fleet.env.canister(fleet.canister).unwrap().wasm_memory_size;
    let before = heap(&fleet);
    rewrite_release(&mut fleet);

    let grown = heap(&fleet) - before;
    assert!(
        grown < large.len() as u64 / 2,
        "the heap grew by {grown} bytes rewriting {} bytes of stable memory",
        large.len()
    );
    fleet
        .export_state(admin(), &BTreeMap::new())
        .expect("a new export is taken whole");
}

/// A small deployer with a release and children, exported.
fn exported() -> (Fleet, StateBackup) {
    let (mut fleet, _, _, id) = v2_rollout(5, 5);
    fleet.run_to_end(operator(), id, 500);
    let backup = fleet.export_state(admin(), &BTreeMap::new()).unwrap();
    (fleet, backup)
}

fn refused<T: std::fmt::Debug>(result: Result<T, deployer_client::CallError>) -> ErrorKind {
    result.unwrap_err().deployer_error().kind().clone()
}

/// What a fresh deployer shows, and shows still after a refused restore.
fn untouched(fleet: &mut Fleet) -> (usize, u64, u64, Vec<RoleAssignment>) {
    let stats = fleet.storage_stats_ok(admin());
    (
        all_rollouts(fleet).len(),
        stats.releases,
        fleet.fleet_summary_ok(admin()).children,
        fleet.list_roles_ok(admin()),
    )
}

#[test]
fn a_restore_refused_for_any_reason_changes_nothing_and_says_why() {
    let (mut fleet, backup) = exported();
    let exported_at = backup.manifest.exported_at;
    let read = |stream| ReadExportArg {
        exported_at,
        stream,
    };
    let unknown_chunk = ExportStream::ReleaseChunk(ByteBuf::from(vec![7; 32]));
    assert_eq!(
        refused(fleet.read_export(admin(), read(unknown_chunk.clone()))),
        ErrorKind::ExportStreamMissing {
            stream: unknown_chunk.clone()
        }
    );
    let stale = ReadExportArg {
        exported_at: exported_at - 1,
        stream: ExportStream::DocumentPiece(0),
    };
    assert_eq!(
        refused(fleet.read_export(admin(), stale)),
        ErrorKind::ExportNotHeld {
            exported_at: exported_at - 1
        }
    );
    // The deployer holds state: no restore into it.
    assert_eq!(
        refused(fleet.begin_restore(admin(), backup.manifest.clone())),
        ErrorKind::RestoreIntoDeployerWithState {
            holds: "releases or uploads".into()
        }
    );

    support::reinstall(&mut fleet);
    let before = untouched(&mut fleet);
    assert_eq!(
        refused(fleet.commit_restore(admin())),
        ErrorKind::RestoreNotBegun
    );
    let newer = ExportManifest {
        schema: backup.manifest.schema + 1,
        ..backup.manifest.clone()
    };
    assert!(matches!(
        refused(fleet.begin_restore(admin(), newer)),
        ErrorKind::BackupVersionUnsupported { schema, .. } if schema == backup.manifest.schema + 1
    ));
    fleet.begin_restore_ok(admin(), backup.manifest.clone());
    let streams = backup.streams();
    let (chunk, chunk_bytes) = streams
        .iter()
        .find(|(stream, _)| matches!(stream, ExportStream::ReleaseChunk(_)))
        .cloned()
        .expect("the release has chunks");
    let mut tampered = chunk_bytes.to_vec();
    tampered[100] ^= 1;
    assert!(matches!(
        refused(fleet.restore_piece(admin(), RestorePieceArg {
            stream: chunk.clone(),
            bytes: ByteBuf::from(tampered),
        })),
        ErrorKind::RestorePieceMismatch { stream, .. } if stream == chunk
    ));
    assert!(matches!(
        refused(fleet.restore_piece(
            admin(),
            RestorePieceArg {
                stream: unknown_chunk,
                bytes: ByteBuf::from(vec![1]),
            }
        )),
        ErrorKind::RestoreInvalid { .. }
    ));
    // Everything but that chunk: the commit says what is missing.
    for (stream, bytes) in &streams {
        if *stream != chunk {
            fleet.restore_piece_ok(
                admin(),
                RestorePieceArg {
                    stream: stream.clone(),
                    bytes: ByteBuf::from(bytes.to_vec()),
                },
            );
        }
    }
    assert_eq!(
        refused(fleet.commit_restore(admin())),
        ErrorKind::RestoreIncomplete {
            missing: 1,
            first: chunk.clone()
        }
    );
    assert_eq!(untouched(&mut fleet), before);
    // Sent at last, the same restore commits.
    fleet.restore_piece_ok(
        admin(),
        RestorePieceArg {
            stream: chunk,
            bytes: ByteBuf::from(chunk_bytes.to_vec()),
        },
    );
    fleet.commit_restore_ok(admin());
    assert_eq!(fleet.fleet_summary_ok(admin()).children, 5);
    assert_eq!(fleet.storage_stats_ok(admin()).releases, 1);
}
