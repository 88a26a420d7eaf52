//! The deployer upgraded across builds in the middle of a rollout: from the committed release
//! 0.1 to this build, and between two builds whose rollout engines decide differently. The
//! journal holds inputs that the engine replays, so a build with another engine refuses to
//! replay it and asks for `prepare_upgrade`, which holds the rollouts and folds the journal into
//! checkpoints; after that any build of the schema takes over and finishes the rollout.
//! IC interface specification: "IC method `install_code`" (a trap in `canister_post_upgrade`
//! fails the upgrade and keeps the previous module and state), "IC method `stop_canister`".

mod failure_support;
mod rollout_support;
mod support;

use candid::types::value::{IDLArgs, IDLValue};
use candid::{idl_hash, Principal};
use deployer::{
    EventKind, FailureBudget, InitArg, ListEventsArg, OnFailure, PolicyArg, PrepareUpgradeArg,
    Role, RolloutPhase, Step, UpgradeReadiness, WavePlan,
};
use deployer_client::Transport;
use failure_support::*;
use ic_sim::{artifacts, FaultCount, RejectCode, Sim, SimConfig};
use rollout_support::{assert_metrics_agree, successful_installs, Fleet, INSTALL_METHOD};
use support::{admin, operator};

/// The deployer as release 0.1 shipped it: its stable layout (schema 1) and journal format are
/// the contract every later build keeps.
fn release_0_1() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/releases/deployer-0.1.wasm.gz"
    );
    std::fs::read(path).unwrap_or_else(|error| panic!("read {path}: {error}"))
}

fn fleet_running(wasm: &[u8]) -> Fleet {
    let sim = Sim::new(SimConfig {
        subnets: 1,
        ..SimConfig::default()
    });
    let init = InitArg {
        admins: Some(vec![admin()]),
        ..Default::default()
    };
    let mut fleet = Fleet::install_wasm(sim, admin(), init, wasm);
    fleet.add_role_ok(admin(), operator(), Role::Operator);
    fleet
}

/// Every child in one wave, `concurrency` at a time, rolled back on failure.
fn one_wave(children: u32, concurrency: u32) -> PolicyArg {
    PolicyArg {
        waves: Some(WavePlan {
            canary: children,
            then: vec![],
        }),
        ..failure_policy(OnFailure::RollBack, FailureBudget::Count(1), concurrency)
    }
}

/// Release 0.1 runs a rollout through chunked installs; child 0 fails after its install and is
/// being rolled back, child 1's install is being retried. This build's engine decides otherwise
/// than 0.1's, so the upgrade is refused until 0.1 is prepared (held, calls back, journal
/// folded); then 0.1 is stopped, upgraded to this build and started, and this build finishes
/// the rollout from 0.1's checkpoints.
#[test]
fn release_0_1_upgrades_to_this_build_in_the_middle_of_a_rollout() {
    let mut scenario = Scenario::on(fleet_running(&release_0_1()), 6, "child_v2");
    reject(
        &mut scenario,
        0,
        "start_canister",
        RejectCode::CanisterError,
        FaultCount::Times(1),
    );
    reject(
        &mut scenario,
        1,
        INSTALL_METHOD,
        RejectCode::SysTransient,
        FaultCount::Times(2),
    );
    let id = scenario.start_all(one_wave(6, 6));
    let child_0 = scenario.before[0].child;
    let mut rounds = 0;
    loop {
        let failed = failed_in_0_1(&mut scenario.fleet, id, child_0);
        let counts = scenario.fleet.get_rollout_ok(operator(), id).summary.counts;
        if failed {
            assert_eq!(counts.rolled_back, 0, "the rollback is in progress");
            assert!(counts.upgraded < 6, "{counts:?}");
            break;
        }
        rounds += 1;
        assert!(rounds < 500, "child 0 did not fail: {counts:?}");
        scenario.fleet.env.tick();
    }
    assert!(
        successful_installs(&scenario.fleet, scenario.before[1].child) == 0,
        "child 1's install is still being retried"
    );

    // 0.1's engine (revision 1) decided otherwise than this one (a cycles check before each
    // stop): this build refuses to replay 0.1's journal until the deployer is prepared.
    let refused = scenario
        .fleet
        .upgrade_stopped(admin(), None)
        .expect_err("an unprepared 0.1 is refused");
    assert!(
        refused.message.contains("engine revision 1"),
        "{}",
        refused.message
    );
    hold_until_ready(&mut scenario.fleet);
    scenario
        .fleet
        .upgrade_stopped(admin(), None)
        .expect("a prepared 0.1 upgrades to this build");
    let version = scenario.fleet.version_ok(operator());
    // Schema 1 migrated: its checkpoints and its event log are read as they are, the header
    // names schema 3.
    assert_eq!(version.schema_version, 3);
    // Back to 0.1 is refused from now on (0.1 would read a checkpoint of schema 2 or later as a
    // rollout without children), and the refusal changes nothing.
    let downgrade = scenario
        .fleet
        .upgrade_stopped_to(admin(), &release_0_1(), None)
        .expect_err("0.1 refuses schema 3");
    assert!(
        downgrade.message.contains("schema version 3"),
        "{}",
        downgrade.message
    );
    // 0.1 stored its upload settings without the release quota, which reads as its default.
    let settings = scenario.fleet.upload_settings_ok(operator());
    assert_eq!(settings.max_releases, 1_000);
    // Nor the running totals of `storage_stats`, which this build counted once on the upgrade.
    let stats = scenario.fleet.storage_stats_ok(operator());
    assert_eq!(stats.releases, 1);
    assert_eq!(stats.release_bytes, scenario.release.summary.size);
    assert_eq!(stats.chunk_bytes, scenario.release.summary.size);
    // Nor the fleet's counts by subnet and module that `/metrics` serves: counted on the upgrade.
    let samples = assert_metrics_agree(&mut scenario.fleet);
    assert_eq!(samples.value("deployer_children", &[]), 6.0);
    // Nor whether a release's module has enhanced orthogonal persistence: not known, so no
    // rollout of it is refused for that.
    let stored = scenario.fleet.get_release_ok(
        operator(),
        deployer::ReleaseSelector::Sha256(scenario.release.summary.sha256.clone()),
    );
    assert_eq!(stored.summary.enhanced_orthogonal_persistence, None);
    assert_eq!(stored.chunk_sha256, scenario.release.chunk_sha256);
    let done = scenario.fleet.run_to_end(operator(), id, 2_000);

    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 5, "{:?}", done.summary.counts);
    assert_eq!(done.summary.counts.rolled_back, 1);
    assert_metrics_agree(&mut scenario.fleet);
    scenario.assert_restored(0);
    for index in 1..6 {
        scenario.assert_upgraded(index);
        assert_eq!(
            successful_installs(&scenario.fleet, scenario.before[index].child),
            1,
            "child {index}"
        );
    }
    let installs: Vec<u32> = scenario
        .history(id, 1)
        .steps
        .iter()
        .filter(|record| record.step == Step::Install)
        .map(|record| record.attempt)
        .collect();
    assert_eq!(
        installs,
        [1, 2, 3],
        "two transient rejects, then the install"
    );
    // 0.1's event log is this build's first generation: its events keep their sequence numbers
    // (child 0's failure among them) and this build's follow, to the rollout's completion.
    let page = scenario.fleet.list_events_ok(
        operator(),
        ListEventsArg {
            rollout_id: None,
            from: None,
            limit: None,
        },
    );
    assert_eq!(page.next, None);
    let sequences: Vec<u64> = page.events.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, (0..page.events.len() as u64).collect::<Vec<_>>());
    assert!(page.events.iter().any(|event| matches!(
        &event.kind,
        EventKind::ChildFailed { child, .. } if child.as_bytes() == child_0.as_slice()
    )));
    assert_eq!(
        page.events.last().map(|event| &event.kind),
        Some(&EventKind::Completed)
    );
}

/// A build whose engine serves children in another order would replay the journal's
/// dispatches differently and apply outcomes to the wrong children: it refuses the upgrade,
/// saying what to do. Prepared (held, calls back, journal folded), the deployer upgrades to it
/// and the new engine finishes the rollout from the checkpoints, every child upgraded once.
#[test]
fn an_engine_that_decides_differently_takes_over_only_a_prepared_deployer() {
    let mut scenario = Scenario::new(8, "child_v2");
    let id = scenario.start_all(one_wave(8, 4));
    scenario.fleet.run_until(operator(), id, 500, |info| {
        info.summary.counts.upgraded >= 1 && info.summary.in_flight > 0
    });
    let alternate = artifacts::wasm("deployer_alternate_engine");

    let refused = scenario
        .fleet
        .upgrade_stopped_to(admin(), &alternate, None)
        .expect_err("refused");
    for needle in [
        "engine revision 4",
        "prepare_upgrade",
        "keeps its current build",
    ] {
        assert!(refused.message.contains(needle), "{}", refused.message);
    }
    // The refused upgrade changed nothing: the rollout goes on under the same build.
    let before = scenario.fleet.get_rollout_ok(operator(), id).summary.counts;
    scenario.fleet.env.tick();

    let readiness = hold_until_ready(&mut scenario.fleet);
    assert_eq!(
        readiness,
        UpgradeReadiness {
            holding: true,
            actions_in_flight: 0,
            journal_lines: 0,
            ready: true,
        }
    );
    // Held: no child takes a new step.
    let held = scenario.fleet.get_rollout_ok(operator(), id).summary;
    for _ in 0..20 {
        scenario.fleet.env.tick();
    }
    assert_eq!(
        scenario.fleet.get_rollout_ok(operator(), id).summary,
        held,
        "held"
    );
    assert!(held.counts.upgraded < 8 && held.counts.upgraded >= before.upgraded);

    scenario
        .fleet
        .upgrade_stopped_to(admin(), &alternate, None)
        .expect("a prepared deployer upgrades");
    let done = scenario.fleet.run_to_end(operator(), id, 2_000);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 8, "{:?}", done.summary.counts);
    for index in 0..8 {
        scenario.assert_upgraded(index);
        assert_eq!(
            successful_installs(&scenario.fleet, scenario.before[index].child),
            1,
            "child {index}"
        );
    }
    // The new build lifted the hold: a prepared deployer that is upgraded needs no second call.
    let readiness = scenario
        .fleet
        .prepare_upgrade_ok(admin(), PrepareUpgradeArg { hold: false });
    assert!(!readiness.holding);
}

/// Holds the deployer's rollouts for its upgrade and waits until its calls are back and its
/// journal is folded.
fn hold_until_ready(fleet: &mut Fleet) -> UpgradeReadiness {
    let mut readiness = fleet.prepare_upgrade_ok(admin(), PrepareUpgradeArg { hold: true });
    let mut rounds = 0;
    while !readiness.ready {
        rounds += 1;
        assert!(rounds < 200, "not ready: {readiness:?}");
        fleet.env.tick();
        readiness = fleet.prepare_upgrade_ok(admin(), PrepareUpgradeArg { hold: true });
    }
    readiness
}

/// Whether 0.1 recorded `ChildFailed` for `child` among the rollout's first events. Read from
/// the raw reply: 0.1's events name children by `blob`, this build's by `principal`, so this
/// build's types do not decode 0.1's events (the one change of the interface since 0.1 that
/// is not a subtype).
fn failed_in_0_1(fleet: &mut Fleet, rollout_id: u64, child: Principal) -> bool {
    let arg = candid::encode_one(ListEventsArg {
        rollout_id: Some(rollout_id),
        from: None,
        limit: None,
    })
    .expect("encode");
    let reply = fleet
        .env
        .query_raw(operator(), fleet.canister, "list_events", arg)
        .expect("list_events");
    let reply = IDLArgs::from_bytes(&reply).expect("a Candid reply");
    names_failure(&reply.args[0], child.as_slice())
}

fn names_failure(value: &IDLValue, child: &[u8]) -> bool {
    match value {
        IDLValue::Variant(variant) if variant.0.id.get_id() == idl_hash("ChildFailed") => {
            let IDLValue::Record(fields) = &variant.0.val else {
                return false;
            };
            fields.iter().any(|field| {
                field.id.get_id() == idl_hash("child")
                    && matches!(&field.val, IDLValue::Blob(bytes) if bytes == child)
            })
        }
        IDLValue::Variant(variant) => names_failure(&variant.0.val, child),
        IDLValue::Opt(inner) => names_failure(inner, child),
        IDLValue::Vec(values) => values.iter().any(|value| names_failure(value, child)),
        IDLValue::Record(fields) => fields.iter().any(|field| names_failure(&field.val, child)),
        _ => false,
    }
}
