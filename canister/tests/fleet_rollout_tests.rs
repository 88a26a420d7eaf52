//! Fleet rollouts end to end on the real deployer Wasm and real child canisters: waves across
//! two subnets, per-child management call order (stop, snapshot, install, start), counters
//! surviving the upgrade, and chunked releases uploaded once per subnet.
//! IC interface specification: "IC method `install_code`", "`install_chunked_code`",
//! "`take_canister_snapshot`", "`stop_canister`" / "`start_canister`".

mod rollout_support;
mod support;

use candid::Principal;
use deployer::Selector;
use deployer::{RolloutPhase, WaveSize};
use ic_sim::artifacts;
use rollout_support::*;

/// The order of effects the deployer applies to each child it upgrades, installing with
/// `install` (`install_code` when some subnet has no chunk store, else `install_chunked_code`).
fn upgrade_calls(install: &str) -> [&str; 4] {
    [
        "stop_canister",
        "take_canister_snapshot",
        install,
        "start_canister",
    ]
}

#[test]
fn a_small_rollout_upgrades_every_child_in_order_and_keeps_its_counter() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 6);
    let counters = counters_of(&mut fleet, &children);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");

    let started = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::All,
            policy(1, vec![WaveSize::Percent(50)], 2),
        )
        .answer()
        .expect("start");
    let done = fleet.run_to_end(operator(), started.rollout_id, 500);

    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 6);
    for (child, counter) in children.iter().zip(counters) {
        assert_eq!(version_of(&mut fleet, *child), "v2");
        assert_eq!(
            counter_of(&mut fleet, *child),
            counter,
            "the counter survived"
        );
        assert_eq!(fleet.effects_on(*child), upgrade_calls(INSTALL_METHOD));
    }
}

#[test]
fn two_hundred_children_on_two_subnets_are_upgraded_in_three_waves() {
    let mut fleet = fleet(2);
    let subnet_children = vec![
        create_children(&mut fleet, 0, 100),
        create_children(&mut fleet, 1, 100),
    ];
    let children: Vec<_> = subnet_children.concat();
    let counters = counters_of(&mut fleet, &children);
    fleet.adopt_all(admin(), &subnet_children);
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");
    let rounds_before = fleet.env.round();

    let started = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::All,
            policy(5, vec![WaveSize::Percent(25)], 50),
        )
        .answer()
        .expect("start");
    let done = fleet.run_to_end(operator(), started.rollout_id, 2_000);

    let waves: Vec<u32> = done.summary.waves.iter().map(|wave| wave.size).collect();
    assert_eq!(waves, [5, 50, 145]);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 200);
    for wave in done.summary.waves.windows(2) {
        assert!(
            wave[0].finished_at <= wave[1].started_at,
            "waves never overlap: {wave:?}"
        );
    }
    for (child, counter) in children.iter().zip(counters) {
        assert_eq!(version_of(&mut fleet, *child), "v2");
        assert_eq!(
            counter_of(&mut fleet, *child),
            counter,
            "the counter survived"
        );
        // Subnet 1 has no chunk store: the small release travels inline.
        let calls = fleet.effects_on(*child);
        assert_eq!(calls, upgrade_calls("install_code"), "calls on {child}");
        let view = fleet.env.canister(*child).unwrap();
        assert_eq!(view.snapshots, 1, "the deployer's pre-install snapshot");
        let info: Result<deployer::ChildInfo, deployer::Error> =
            fleet.get_child(operator(), *child).answer();
        let info = info.unwrap();
        assert_eq!(info.snapshots.len(), 1, "the registry knows the snapshot");
        assert_eq!(
            info.module_hash.map(|h| h.to_vec()),
            view.module_hash.map(|h| h.to_vec())
        );
        assert_eq!(info.rollout_id, None, "the claim ended with the rollout");
    }
    eprintln!(
        "200 children, 2 subnets, concurrency 50: {} rounds",
        fleet.env.round() - rounds_before
    );
}

/// child_v2 with a 20 MiB custom section appended: a real child module, 21 chunks.
fn child_of_20_mib() -> Vec<u8> {
    deployer_client::modules::grown(&artifacts::wasm("child_v2"), 20 * support::MIB, 20)
}

#[test]
fn a_20_mib_release_is_uploaded_once_per_subnet_ahead_of_its_installs_and_installed_from_the_chunk_store(
) {
    let mut fleet = fleet(2);
    let subnet_children = vec![
        create_children(&mut fleet, 0, 8),
        create_children(&mut fleet, 1, 8),
    ];
    let children: Vec<_> = subnet_children.concat();
    let counters = counters_of(&mut fleet, &children);
    fleet.adopt_all(admin(), &subnet_children);
    let store = fleet.register_store(admin(), 1);
    let module = child_of_20_mib();
    let release = release(&mut fleet, &module, "2-large");
    assert_eq!(release.summary.chunk_count, 21);
    let bytes_before = fleet.env.stats().bytes_moved;

    let started = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(2, vec![], 8))
        .answer()
        .expect("start");
    let done = fleet.run_to_end(operator(), started.rollout_id, 2_000);

    assert_eq!(done.summary.counts.upgraded, 16);
    let chunked_calls = [
        "stop_canister",
        "take_canister_snapshot",
        "install_chunked_code",
        "start_canister",
    ];
    for (child, counter) in children.iter().zip(counters) {
        assert_eq!(version_of(&mut fleet, *child), "v2");
        assert_eq!(counter_of(&mut fleet, *child), counter);
        assert_eq!(fleet.effects_on(*child), chunked_calls, "calls on {child}");
    }
    for chunk_store in [fleet.canister, store] {
        let uploads = fleet
            .management_calls(chunk_store)
            .iter()
            .filter(|(method, ok)| method == "upload_chunk" && *ok)
            .count();
        assert_eq!(uploads, 21, "each chunk once into {chunk_store}");
    }
    // The upload into subnet 1's store began with the rollout, not when the first child there
    // (one of the canary's two) was due for its install: it ran while that child stopped and
    // its snapshot was taken (begun at the install, the rollout took 18 rounds more).
    let rounds_of = |method: &str, targets: &[Principal]| -> Vec<u64> {
        fleet
            .management_calls_since(0)
            .filter(|call| call.ok && call.method == method && targets.contains(&call.target))
            .map(|call| call.round)
            .collect()
    };
    let first_upload = rounds_of("upload_chunk", &[store]).into_iter().min();
    let first_snapshot = rounds_of("take_canister_snapshot", &subnet_children[1])
        .into_iter()
        .min();
    assert!(
        first_upload < first_snapshot,
        "first upload into {store} in round {first_upload:?}, first snapshot on its subnet in \
         round {first_snapshot:?}"
    );
    let moved = fleet.env.stats().bytes_moved - bytes_before;
    let module_bytes = module.len() as u64;
    assert!(
        moved > 2 * module_bytes && moved < 2 * module_bytes + module_bytes / 4,
        "two copies of the module and small messages: {moved} bytes for {module_bytes}"
    );
    eprintln!("20 MiB release to 16 children on 2 subnets: {moved} bytes moved");
}

#[test]
fn a_label_selection_upgrades_only_the_labelled_children_and_listings_follow() {
    use deployer::Error;
    use deployer::{ChildInfo, ChildPage, Label, ListChildrenArg};
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 4);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let canary = Label::new("tier", "canary");
    for &child in &children[..2] {
        let labelled: Result<ChildInfo, Error> = fleet
            .set_labels(support::operator(), child, vec![canary.clone()])
            .answer();
        assert_eq!(labelled.unwrap().labels, vec![canary.clone()]);
    }
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");

    let id = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::Labels(vec![canary.clone()]),
            policy(1, vec![], 2),
        )
        .answer()
        .unwrap()
        .rollout_id;
    let done = fleet.run_to_end(operator(), id, 500);

    assert_eq!(done.summary.counts.upgraded, 2);
    for &child in &children[..2] {
        assert_eq!(version_of(&mut fleet, child), "v2");
    }
    for &child in &children[2..] {
        assert_eq!(version_of(&mut fleet, child), "v1");
        assert!(fleet.effects_on(child).is_empty(), "{child} never touched");
    }
    let on_release: Result<ChildPage, Error> = fleet
        .list_children(
            operator(),
            ListChildrenArg {
                module_hash: Some(release.summary.sha256.clone()),
                ..ListChildrenArg::default()
            },
        )
        .answer();
    let mut listed: Vec<_> = on_release
        .unwrap()
        .children
        .iter()
        .map(|child| child.canister_id)
        .collect();
    listed.sort();
    let mut expected = children[..2].to_vec();
    expected.sort();
    assert_eq!(
        listed, expected,
        "the registry records the module each now runs"
    );
}

/// A chunk store holds at most 100 chunks: a release that does not fit beside the chunks an
/// earlier rollout left in the deployer's own store has the store cleared first, once.
#[test]
fn a_full_chunk_store_is_cleared_for_the_next_release() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 2);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    for (name, version) in [("child_v2", "2"), ("child_v3", "3")] {
        let module = artifacts::wasm(name);
        let release = fleet.upload_ok(
            operator(),
            &module,
            module.len().div_ceil(60),
            "child",
            version,
        );
        assert_eq!(release.summary.chunk_count, 60);
        let started = fleet
            .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 2))
            .answer();
        let done = fleet.run_to_end(operator(), started.unwrap().rollout_id, 1_000);
        assert_eq!(done.summary.counts.upgraded, 2, "release {version}");
    }
    let clears = fleet
        .management_calls(fleet.canister)
        .into_iter()
        .filter(|(method, ok)| method == "clear_chunk_store" && *ok)
        .count();
    assert_eq!(clears, 1);
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v3");
    }
}

/// `max_stopped_per_subnet` is an availability budget: with 8 children on one subnet and a
/// concurrency of 8, the simulator never sees more than 2 of them stopped at once (from the
/// stop it executed to the start that ran the child again), and every child is upgraded.
#[test]
fn a_subnet_never_has_more_children_stopped_than_the_policy_allows() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 8);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");
    let from = fleet.env.trace().len();
    let mut policy = policy(8, vec![], 8);
    policy.max_stopped_per_subnet = Some(2);
    let id = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy)
        .answer()
        .expect("start")
        .rollout_id;

    let done = fleet.run_to_end(operator(), id, 2_000);

    assert_eq!(done.summary.counts.upgraded, 8);
    let mut stopped = std::collections::BTreeSet::new();
    let mut most_stopped = 0;
    for event in &fleet.env.trace()[from..] {
        if let ic_sim::TraceKind::Management {
            method,
            target: Some(child),
            ok: true,
            ..
        } = &event.kind
        {
            match method.as_str() {
                "stop_canister" => {
                    stopped.insert(*child);
                }
                "start_canister" => {
                    stopped.remove(child);
                }
                _ => {}
            }
            most_stopped = most_stopped.max(stopped.len());
        }
    }
    assert_eq!(
        most_stopped, 2,
        "at most 2 stopped, and the budget was used"
    );
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
    }
}

/// Who reads what: the fleet, a rollout (whose install argument may carry configuration), its
/// children's histories and the event log need a role, anonymous callers and strangers get a
/// typed refusal; a Viewer (a dashboard, an auditor) reads them all and can change nothing; the
/// release catalogue and the version stay public.
#[test]
fn sensitive_reads_need_a_role_and_a_viewer_reads_without_changing_anything() {
    use candid::Principal;
    use deployer::{
        ChildHistoryArg, Error, ErrorKind, ListChildrenArg, ListEventsArg, ListReleasesArg,
        ListRolloutsArg, Role,
    };
    let (mut fleet, children, _, id) = v2_rollout(2, 2);
    let viewer = Principal::from_slice(&[0x71; 29]);
    fleet.add_role_ok(admin(), viewer, Role::Viewer);

    let history = || ChildHistoryArg {
        rollout_id: id,
        canister_id: children[0],
        from: None,
        limit: None,
    };
    for reader in [stranger(), Principal::anonymous()] {
        let refused = |result: Result<(), Error>| {
            assert!(
                matches!(
                    result.map_err(|error| error.kind().clone()),
                    Err(ErrorKind::NotAuthorized {
                        required: Role::Viewer,
                        ..
                    })
                ),
                "{reader} is refused"
            )
        };
        refused(fleet.get_rollout(reader, id).answer().map(drop));
        refused(
            fleet
                .list_rollouts(reader, ListRolloutsArg::default())
                .answer()
                .map(drop),
        );
        refused(fleet.child_history(reader, history()).answer().map(drop));
        refused(
            fleet
                .list_events(reader, ListEventsArg::default())
                .answer()
                .map(drop),
        );
        refused(fleet.get_child(reader, children[0]).answer().map(drop));
        refused(
            fleet
                .list_children(reader, ListChildrenArg::default())
                .answer()
                .map(drop),
        );
        // Public: the catalogue and the version.
        let page = fleet.list_releases_ok(reader, ListReleasesArg::default());
        assert_eq!(page.releases.len(), 1);
        fleet.version_ok(reader);
    }

    assert_eq!(fleet.get_rollout_ok(viewer, id).rollout_id, id);
    assert_eq!(
        fleet
            .list_rollouts_ok(viewer, ListRolloutsArg::default())
            .rollouts
            .len(),
        1
    );
    fleet.child_history_ok(viewer, history());
    fleet.list_events_ok(viewer, ListEventsArg::default());
    assert_eq!(
        fleet.get_child_ok(viewer, children[1]).canister_id,
        children[1]
    );
    let refusal = fleet
        .pause_rollout(viewer, id)
        .expect_err("a viewer changes nothing")
        .reject()
        .message;
    assert!(refusal.contains("requires the Operator role"), "{refusal}");
    fleet.run_to_end(operator(), id, 1_000);
}

/// Another controller clears a chunk store in the middle of a rollout: the next install names
/// chunks the store no longer holds and is refused ("Error from Wasm chunk store"), without
/// touching the child. The deployer stops taking the store as ready, uploads the chunks again
/// and retries the install: every child is upgraded, none fails.
/// IC interface specification: "IC method `install_chunked_code`", "`clear_chunk_store`".
#[test]
fn a_chunk_store_cleared_by_another_controller_is_filled_again() {
    use candid::Principal;
    use ic_sim::scenario::IcEnvExt;
    #[derive(candid::CandidType)]
    struct CanisterIdRecord {
        canister_id: Principal,
    }
    let mut fleet = fleet(2);
    let children = create_children(&mut fleet, 1, 3);
    fleet.adopt_all(admin(), &[vec![], children.clone()]);
    // A store the admin controls too, as another team's tooling might.
    let store = fleet.env.create_canister(1, vec![fleet.canister, admin()]);
    let subnet = fleet.env.subnet_id(1);
    fleet.register_chunk_store_ok(admin(), subnet, store);
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");
    let id = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 1))
        .answer()
        .expect("start")
        .rollout_id;
    fleet.run_until(operator(), id, 500, |info| {
        info.summary.counts.upgraded >= 1
    });

    let cleared: Result<(), _> = fleet.env.update(
        admin(),
        Principal::management_canister(),
        "clear_chunk_store",
        (&CanisterIdRecord { canister_id: store },),
    );
    cleared.expect("the admin clears the store");
    let done = fleet.run_to_end(operator(), id, 1_000);

    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 3, "{:?}", done.summary.counts);
    let refused = fleet
        .management_calls(children[1])
        .into_iter()
        .chain(fleet.management_calls(children[2]))
        .filter(|(method, ok)| method == INSTALL_METHOD && !ok)
        .count();
    assert_eq!(refused, 1, "one install met the emptied store");
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
    }
}
