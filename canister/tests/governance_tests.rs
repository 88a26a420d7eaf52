//! Rollouts by proposal on the real deployer Wasm, through a governance fixture that behaves as
//! SNS does with generic functions (`deployer_client::governance`): the validator renders the
//! payload, the execute method runs the same bytes, a reject fails the proposal.

mod failure_support;
mod rollout_support;
mod support;

use deployer::governance::{ControlProposal, MAX_RENDER_BYTES};
use deployer::{Command, ReleaseSelector, RolloutInfo, RolloutPhase, Selector, StartRolloutArg};
use deployer_client::governance::{Governance, ProposalOutcome};
use failure_support::Scenario;
use ic_sim::scenario::IcEnv;
use rollout_support::{create_children, hex, policy};
use support::{admin, operator, stranger, Answer};

const ROUNDS: u64 = 2_000;

/// The scenario's fleet with governance installed and granted the Operator role.
fn governed(children: usize) -> (Scenario, Governance) {
    let mut scenario = Scenario::new(children, "child_v2");
    let governance = Governance::install(&mut scenario.fleet, admin());
    scenario
        .fleet
        .add_role_ok(admin(), governance.canister, deployer::Role::Operator);
    (scenario, governance)
}

fn rollout_of(scenario: &Scenario) -> StartRolloutArg {
    StartRolloutArg {
        release: ReleaseSelector::Sha256(scenario.release.summary.sha256.clone()),
        selector: Selector::All,
        policy: Some(policy(1, vec![], 2)),
        plan_sha256: None,
    }
}

/// The payload a proposer submits: the rollout with the plan hash `preview_rollout` gives now.
fn pinned(scenario: &mut Scenario) -> StartRolloutArg {
    let mut rollout = rollout_of(scenario);
    let preview = scenario
        .fleet
        .preview_rollout_ok(operator(), rollout.clone());
    rollout.plan_sha256 = Some(preview.plan_sha256);
    rollout
}

fn executed(outcome: ProposalOutcome) -> (String, Vec<u8>) {
    match outcome {
        ProposalOutcome::Executed { render, reply } => (render, reply),
        other => panic!("the proposal did not execute: {other:?}"),
    }
}

#[test]
fn a_rollout_by_proposal_runs_the_plan_voters_saw() {
    let (mut scenario, governance) = governed(3);
    let rollout = rollout_of(&scenario);
    let preview = scenario
        .fleet
        .preview_rollout_ok(operator(), rollout.clone());
    assert_eq!(preview.targets, 3);
    assert_eq!(preview.skipped, 0);
    assert_eq!(preview.wave_sizes, [1, 2]);
    assert_eq!(preview.from.len(), 1);
    assert_eq!(preview.from[0].children, 3);
    let payload = candid::encode_one(pinned(&mut scenario)).unwrap();
    let (render, reply) =
        executed(governance.propose(&mut scenario.fleet, "start_rollout_by_proposal", payload));
    assert!(render.len() <= MAX_RENDER_BYTES, "{} bytes", render.len());
    for expected in [
        "## Roll out child 2 to 3 children".to_string(),
        hex(&scenario.release.summary.sha256),
        format!("Plan SHA-256: {}", hex(&preview.plan_sha256)),
        "Waves: canary of 1, then 2".to_string(),
        "3 from module".to_string(),
    ] {
        assert!(render.contains(&expected), "{expected} not in:\n{render}");
    }
    let started: RolloutInfo = candid::decode_one(&reply).unwrap();
    assert_eq!(started.created_by, governance.canister);
    let done = scenario
        .fleet
        .run_to_end(operator(), started.rollout_id, ROUNDS);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    for index in 0..3 {
        scenario.assert_upgraded(index);
    }
}

#[test]
fn a_proposal_executed_after_the_fleet_changed_fails_and_starts_nothing() {
    let (mut scenario, governance) = governed(2);
    let payload = candid::encode_one(pinned(&mut scenario)).unwrap();
    let method = "start_rollout_by_proposal";
    governance
        .validate(&mut scenario.fleet, method, payload.clone())
        .expect("valid when proposed");
    // While voters vote, a child is adopted: the plan they saw did not include it.
    let newcomer = create_children(&mut scenario.fleet, 0, 1);
    scenario.fleet.adopt_all(admin(), &[newcomer]);
    let revalidated = governance.validate(&mut scenario.fleet, method, payload.clone());
    assert!(
        revalidated
            .as_ref()
            .is_err_and(|refusal| refusal.contains("plan now has hash")),
        "{revalidated:?}"
    );
    let reject = governance
        .execute(&mut scenario.fleet, method, payload.clone())
        .expect_err("the proposal fails");
    assert!(
        reject.contains("start_rollout_by_proposal refused"),
        "{reject}"
    );
    assert!(reject.contains("plan now has hash"), "{reject}");
    // An operator's start pinned to the old plan gets the typed error, with both hashes.
    let stale: StartRolloutArg = candid::decode_one(&payload).unwrap();
    let expected = stale.plan_sha256.clone().unwrap();
    let refused = scenario.fleet.start_rollout(operator(), stale).answer();
    assert!(
        matches!(refused.unwrap_err().kind(), deployer::ErrorKind::PlanChanged { expected: e, actual } if *e == expected && *actual != expected)
    );
    let listed = scenario
        .fleet
        .list_rollouts_ok(operator(), deployer::ListRolloutsArg::default());
    assert!(listed.rollouts.is_empty(), "nothing started");
}

/// Issue 19: a fleet larger than a query plans at once. The preview and the validator refuse
/// with what to do; `prepare_rollout` plans the children a slice per message (the deployer
/// calling itself between two), and the validator then renders that plan without planning,
/// and execution runs it.
#[test]
fn a_proposal_for_more_children_than_a_query_plans_is_validated_from_a_prepared_plan() {
    let children = deployer::rollouts::PREVIEW_AT_ONCE + 1;
    let (mut scenario, governance) = governed(children);
    let rollout = rollout_of(&scenario);
    let refused = scenario
        .fleet
        .preview_rollout(operator(), rollout.clone())
        .answer()
        .unwrap_err();
    assert!(
        matches!(refused.kind(), deployer::ErrorKind::PlanNotPrepared { at_once } if *at_once == children as u64 - 1),
        "{refused}"
    );
    let method = "start_rollout_by_proposal";
    let unprepared = StartRolloutArg {
        plan_sha256: Some(serde_bytes::ByteBuf::from(vec![0; 32])),
        ..rollout.clone()
    };
    let validation = governance.validate(
        &mut scenario.fleet,
        method,
        candid::encode_one(&unprepared).unwrap(),
    );
    assert!(
        validation
            .as_ref()
            .is_err_and(|refusal| refusal.contains("call prepare_rollout")),
        "{validation:?}"
    );

    // The CLI's and proposers' way: preview, and prepare when the preview asks for it.
    let trace_from = scenario.fleet.env.trace().len();
    let prepared = scenario
        .fleet
        .preview_or_prepare(stranger(), rollout.clone())
        .answer();
    assert!(
        matches!(
            prepared.as_ref().unwrap_err().kind(),
            deployer::ErrorKind::NotAuthorized { .. }
        ),
        "{prepared:?}"
    );
    let prepared = scenario
        .fleet
        .preview_or_prepare(operator(), rollout.clone())
        .answer()
        .unwrap();
    assert_eq!(prepared.targets, children as u32);
    assert!(prepared.prepared_at.is_some());
    let preparing: Vec<u64> = scenario
        .fleet
        .replicated_executions(trace_from)
        .filter(|(entry, _)| *entry == "update:prepare_rollout" || *entry == "response:version")
        .map(|(_, instructions)| instructions)
        .collect();
    // Three slices read, three planned (500 children each at most), and the end.
    assert!(preparing.len() >= 6, "{preparing:?}");

    let mut payload_arg = rollout.clone();
    payload_arg.plan_sha256 = Some(prepared.plan_sha256.clone());
    let payload = candid::encode_one(&payload_arg).unwrap();
    let (render, reply) = executed(governance.propose(&mut scenario.fleet, method, payload));
    for expected in [
        format!("## Roll out child 2 to {children} children"),
        format!("Plan SHA-256: {}", hex(&prepared.plan_sha256)),
        format!(
            "The plan was prepared at {} ns.",
            prepared.prepared_at.unwrap()
        ),
    ] {
        assert!(render.contains(&expected), "{expected} not in:\n{render}");
    }
    let started: RolloutInfo = candid::decode_one(&reply).unwrap();
    let sizes: Vec<u32> = started.summary.waves.iter().map(|wave| wave.size).collect();
    assert_eq!(sizes, prepared.wave_sizes);
}

/// An update call to the deployer with raw argument bytes; a reject's message on refusal.
fn update_raw(
    scenario: &mut Scenario,
    sender: candid::Principal,
    method: &str,
    arg: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let canister = scenario.fleet.canister;
    scenario
        .fleet
        .env
        .update_raw(sender, canister, method, arg)
        .map_err(|reject| reject.message)
}

#[test]
fn unpinned_malformed_and_unauthorized_proposals_are_refused_by_both_methods() {
    let (mut scenario, governance) = governed(1);
    // No plan hash: voters could not tell what runs.
    let unpinned = candid::encode_one(rollout_of(&scenario)).unwrap();
    let outcome = governance.propose(
        &mut scenario.fleet,
        "start_rollout_by_proposal",
        unpinned.clone(),
    );
    assert!(
        matches!(&outcome, ProposalOutcome::Invalid(refusal) if refusal.contains("pins its plan")),
        "{outcome:?}"
    );
    let executed = update_raw(
        &mut scenario,
        operator(),
        "start_rollout_by_proposal",
        unpinned,
    );
    assert!(executed.unwrap_err().contains("pins its plan"));
    // Bytes that are not the payload's Candid: both methods reject.
    for method in [
        "start_rollout_by_proposal_validate",
        "start_rollout_by_proposal",
        "control_rollout_by_proposal_validate",
        "control_rollout_by_proposal",
    ] {
        let malformed = b"DIDL\x00\x01\x71\x03abc".to_vec();
        let refused = update_raw(&mut scenario, operator(), method, malformed);
        assert!(refused.is_err(), "{method} took a malformed payload");
    }
    // Someone without a role cannot execute (refused before it runs).
    let payload = candid::encode_one(pinned(&mut scenario)).unwrap();
    let refused = update_raw(
        &mut scenario,
        stranger(),
        "start_rollout_by_proposal",
        payload,
    );
    assert!(refused.unwrap_err().contains("requires the Operator role"));
}

/// An operator's rollout of the scenario's release to every child, one at a time.
fn start_one_at_a_time(scenario: &mut Scenario) -> RolloutInfo {
    let release = scenario.release.clone();
    scenario
        .fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 1))
        .answer()
        .unwrap()
}

#[test]
fn a_rollout_is_paused_resumed_and_rolled_back_by_proposal() {
    let (mut scenario, governance) = governed(3);
    let started = start_one_at_a_time(&mut scenario);
    let id = started.rollout_id;
    let propose = |scenario: &mut Scenario, command| {
        let payload = candid::encode_one(ControlProposal {
            rollout_id: id,
            command,
        })
        .unwrap();
        governance.propose(&mut scenario.fleet, "control_rollout_by_proposal", payload)
    };
    let (render, reply) = executed(propose(&mut scenario, Command::Pause));
    assert!(
        render.starts_with(&format!("## Pause rollout {id}")),
        "{render}"
    );
    let paused: RolloutInfo = candid::decode_one(&reply).unwrap();
    assert!(matches!(paused.summary.phase, RolloutPhase::Paused(_)));
    // Pausing a paused rollout does not apply: the validator says why, nothing is voted on.
    let outcome = propose(&mut scenario, Command::Pause);
    assert!(
        matches!(outcome, ProposalOutcome::Invalid(_)),
        "{outcome:?}"
    );
    executed(propose(&mut scenario, Command::Resume));
    let done = scenario.fleet.run_to_end(operator(), id, ROUNDS);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    let (render, _) = executed(propose(&mut scenario, Command::RollBackAll));
    assert!(
        render.contains("Roll back every child upgraded by rollout"),
        "{render}"
    );
    let rolled_back = scenario.fleet.run_to_end(operator(), id, ROUNDS);
    assert_eq!(rolled_back.summary.phase, RolloutPhase::RolledBack);
    for index in 0..3 {
        scenario.assert_restored(index);
    }
}

#[test]
fn a_governance_only_deployer_takes_changes_from_governance_alone() {
    let (mut scenario, governance) = governed(2);
    let arg = deployer::UpgradeArg {
        governance: Some(governance.canister),
        governance_only: Some(true),
        ..Default::default()
    };
    scenario
        .fleet
        .upgrade(admin(), Some(arg))
        .expect("the controller sets governance");
    let settings = scenario.fleet.governance_settings_ok(stranger());
    assert_eq!(settings.governance, Some(governance.canister));
    assert!(settings.governance_only);

    // An admin's change is refused before it runs, saying why; reads stay open.
    let refused = scenario
        .fleet
        .start_rollout_of(
            admin(),
            &scenario.release.clone(),
            Selector::All,
            policy(1, vec![], 2),
        )
        .unwrap_err()
        .reject();
    assert!(refused.message.contains("governance-only"), "{refused}");
    scenario
        .fleet
        .list_rollouts_ok(operator(), deployer::ListRolloutsArg::default());

    // Governance executes the proposal.
    let payload = candid::encode_one(pinned(&mut scenario)).unwrap();
    let (_, reply) =
        executed(governance.propose(&mut scenario.fleet, "start_rollout_by_proposal", payload));
    let started: RolloutInfo = candid::decode_one(&reply).unwrap();
    let done = scenario
        .fleet
        .run_to_end(operator(), started.rollout_id, ROUNDS);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);

    // The controllers lift the mode: admins act again.
    let lift = deployer::UpgradeArg {
        governance_only: Some(false),
        ..Default::default()
    };
    scenario.fleet.upgrade(admin(), Some(lift)).expect("lifted");
    scenario
        .fleet
        .add_role_ok(admin(), stranger(), deployer::Role::Viewer);
}

#[test]
fn other_actions_go_through_one_pair_whose_validator_changes_nothing() {
    use deployer::governance::GovernedAction;
    let (mut scenario, governance) = governed(2);
    let child = scenario.before[0].child;
    let label = deployer::Label {
        key: "tier".into(),
        value: "gold".into(),
    };
    let labelling = GovernedAction::SetLabels {
        canister_id: child,
        labels: vec![label.clone()],
    };
    let payload = candid::encode_one(&labelling).unwrap();
    // The validator applies the action and discards it: nothing changed yet.
    let render = governance
        .validate(&mut scenario.fleet, "apply_by_proposal", payload.clone())
        .expect("valid");
    assert!(
        render.contains(&format!("## Label child {child}")),
        "{render}"
    );
    assert!(render.contains("tier=gold"), "{render}");
    assert!(scenario
        .fleet
        .get_child_ok(operator(), child)
        .labels
        .is_empty());
    let reply = governance
        .execute(&mut scenario.fleet, "apply_by_proposal", payload)
        .expect("executed");
    let done: String = candid::decode_one(&reply).unwrap();
    assert_eq!(done, render);
    assert_eq!(
        scenario.fleet.get_child_ok(operator(), child).labels,
        [label]
    );

    // A release in use by a running rollout cannot be deleted: the validator says so.
    let started = start_one_at_a_time(&mut scenario);
    let delete = GovernedAction::DeleteRelease {
        sha256: scenario.release.summary.sha256.clone(),
    };
    let outcome = governance.propose(
        &mut scenario.fleet,
        "apply_by_proposal",
        candid::encode_one(&delete).unwrap(),
    );
    assert!(
        matches!(&outcome, ProposalOutcome::Invalid(refusal) if refusal.contains("still referenced")),
        "{outcome:?}"
    );
    let done = scenario
        .fleet
        .run_to_end(operator(), started.rollout_id, ROUNDS);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);

    // Governance holds Operator: an admin's action is refused by both methods.
    let grant = candid::encode_one(GovernedAction::AddRole {
        principal: stranger(),
        role: deployer::Role::Admin,
    })
    .unwrap();
    let refusal = governance
        .validate(&mut scenario.fleet, "apply_by_proposal", grant.clone())
        .unwrap_err();
    assert!(
        refusal.contains("does not hold the Admin role"),
        "{refusal}"
    );
    let reject = governance
        .execute(&mut scenario.fleet, "apply_by_proposal", grant)
        .unwrap_err();
    assert!(reject.contains("apply_by_proposal refused"), "{reject}");
    assert!(scenario.fleet.my_roles_ok(stranger()).is_empty());
}

/// Adopting children and registering a chunk store read canisters' statuses before they change
/// anything: the validator checks what the deployer's state tells, the execution reads the
/// statuses as `adopt_children` and `register_chunk_store` do, and fails the proposal on any
/// refusal.
#[test]
fn children_are_adopted_and_a_chunk_store_registered_by_proposal() {
    use deployer::governance::GovernedAction;
    use deployer::AdoptChildrenArg;
    let (mut scenario, governance) = governed(1);
    scenario
        .fleet
        .add_role_ok(admin(), governance.canister, deployer::Role::Admin);
    let newcomers = create_children(&mut scenario.fleet, 0, 2);
    let adopt = |canister_ids: Vec<candid::Principal>| {
        candid::encode_one(GovernedAction::AdoptChildren(AdoptChildrenArg {
            canister_ids,
            subnet: None,
            labels: vec![deployer::Label {
                key: "cohort".into(),
                value: "b".into(),
            }],
        }))
        .unwrap()
    };
    let (render, _) = executed(governance.propose(
        &mut scenario.fleet,
        "apply_by_proposal",
        adopt(newcomers.clone()),
    ));
    assert!(render.contains("## Adopt 2 children"), "{render}");
    assert!(render.contains("cohort=b"), "{render}");
    for child in &newcomers {
        assert!(render.contains(&child.to_text()), "{render}");
        let info = scenario.fleet.get_child_ok(operator(), *child);
        assert_eq!(info.labels[0].value, "b");
    }

    // Adopted already: the validator refuses before the vote.
    let again = governance.propose(
        &mut scenario.fleet,
        "apply_by_proposal",
        adopt(vec![newcomers[0]]),
    );
    assert!(
        matches!(&again, ProposalOutcome::Invalid(refusal) if refusal.contains("already")),
        "{again:?}"
    );
    // Not controlled by the deployer: only its status tells, so the execution fails the
    // proposal, and adopts neither canister it names (its trap undoes the message).
    let stranger_owned = scenario.fleet.env.create_canister(0, vec![admin()]);
    let another = create_children(&mut scenario.fleet, 0, 1)[0];
    let outcome = governance.propose(
        &mut scenario.fleet,
        "apply_by_proposal",
        adopt(vec![another, stranger_owned]),
    );
    assert!(
        matches!(&outcome, ProposalOutcome::Failed { reject, .. } if reject.contains("1 of 2 canisters were refused")),
        "{outcome:?}"
    );
    let not_adopted = scenario.fleet.get_child(operator(), another).answer();
    assert!(not_adopted.is_err(), "{not_adopted:?}");

    // A chunk store for the deployer's subnet: empty and controlled by the deployer.
    let subnet = scenario.fleet.env.subnet_id(0);
    let store = scenario
        .fleet
        .env
        .create_canister(0, vec![scenario.fleet.canister]);
    let register = candid::encode_one(GovernedAction::RegisterChunkStore {
        subnet,
        canister_id: store,
    })
    .unwrap();
    let (render, _) =
        executed(governance.propose(&mut scenario.fleet, "apply_by_proposal", register));
    assert!(render.contains("as the chunk store of subnet"), "{render}");
    let stores = scenario.fleet.list_chunk_stores_ok(operator());
    assert!(
        stores.iter().any(|listed| listed.canister_id == store),
        "{stores:?}"
    );
}

/// With `require_blessed_releases`, a DAO votes once on a release (blessing it), then on the
/// rollouts of it; operators' rollouts of an unblessed release are refused with a typed error.
#[test]
fn a_release_is_blessed_by_proposal_before_it_can_be_rolled_out() {
    use deployer::governance::GovernedAction;
    use deployer::SetReleaseBlessingArg;
    let (mut scenario, governance) = governed(2);
    let arg = deployer::UpgradeArg {
        governance: Some(governance.canister),
        require_blessed_releases: Some(true),
        ..Default::default()
    };
    scenario
        .fleet
        .upgrade(admin(), Some(arg))
        .expect("upgraded");
    assert!(
        scenario
            .fleet
            .governance_settings_ok(stranger())
            .require_blessed_releases
    );
    let sha256 = scenario.release.summary.sha256.clone();
    let refused = scenario
        .fleet
        .start_rollout(operator(), rollout_of(&scenario))
        .answer();
    assert_eq!(
        refused.unwrap_err().kind(),
        &deployer::ErrorKind::ReleaseNotBlessed {
            sha256: sha256.clone()
        }
    );
    // Blessing is checked first: before it, no plan can be previewed to pin.
    let proposal = candid::encode_one(StartRolloutArg {
        plan_sha256: Some(vec![0; 32].into()),
        ..rollout_of(&scenario)
    })
    .unwrap();
    let unblessed = governance.validate(&mut scenario.fleet, "start_rollout_by_proposal", proposal);
    assert!(
        unblessed
            .as_ref()
            .is_err_and(|refusal| refusal.contains("not blessed for rollouts")),
        "{unblessed:?}"
    );

    let bless = |blessed| {
        candid::encode_one(GovernedAction::SetReleaseBlessing(SetReleaseBlessingArg {
            sha256: sha256.clone(),
            blessed,
        }))
        .unwrap()
    };
    let (render, _) =
        executed(governance.propose(&mut scenario.fleet, "apply_by_proposal", bless(true)));
    for expected in [
        "## Bless release child 2 for rollouts".to_string(),
        hex(&sha256),
        "Now: not blessed".to_string(),
        "Blessing: required".to_string(),
    ] {
        assert!(render.contains(&expected), "{expected} not in:\n{render}");
    }
    let release = scenario
        .fleet
        .get_release_ok(stranger(), ReleaseSelector::Sha256(sha256.clone()));
    let blessing = release.blessing.expect("blessed");
    assert_eq!(blessing.blessed_by, governance.canister);

    // The rollout proposal now renders the blessing and runs.
    let payload = candid::encode_one(pinned(&mut scenario)).unwrap();
    let (render, reply) =
        executed(governance.propose(&mut scenario.fleet, "start_rollout_by_proposal", payload));
    assert!(
        render.contains(&format!("Blessed for rollouts by {}", governance.canister)),
        "{render}"
    );
    let started: RolloutInfo = candid::decode_one(&reply).unwrap();
    let done = scenario
        .fleet
        .run_to_end(operator(), started.rollout_id, ROUNDS);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);

    // Withdrawn: previews refuse it again. Blessing needs Admin, which an operator lacks.
    executed(governance.propose(&mut scenario.fleet, "apply_by_proposal", bless(false)));
    let preview = scenario
        .fleet
        .preview_rollout(operator(), rollout_of(&scenario))
        .answer();
    assert!(matches!(
        preview.unwrap_err().kind(),
        deployer::ErrorKind::ReleaseNotBlessed { .. }
    ));
    let by_operator = scenario
        .fleet
        .set_release_blessing(
            operator(),
            SetReleaseBlessingArg {
                sha256,
                blessed: true,
            },
        )
        .unwrap_err()
        .reject();
    assert!(
        by_operator.message.contains("requires the Admin role"),
        "{by_operator}"
    );
}

/// A DAO backs its fleet up and restores a child by proposal, through the same pair.
#[test]
fn a_backup_run_and_a_restore_go_through_proposals() {
    use deployer::governance::GovernedAction;
    use deployer::{ChildHistoryArg, ChildState, RollbackCause, StartBackupRunArg, Verdict};
    let (mut scenario, governance) = governed(3);
    let backup = candid::encode_one(GovernedAction::StartBackupRun(StartBackupRunArg {
        selector: Selector::All,
        policy: None,
        stop_children: true,
    }))
    .unwrap();
    let (render, _) =
        executed(governance.propose(&mut scenario.fleet, "apply_by_proposal", backup));
    assert!(render.contains("## Back up every child"), "{render}");
    assert!(render.contains("stopped for its snapshot"), "{render}");
    let listed = scenario
        .fleet
        .list_rollouts_ok(operator(), Default::default());
    let run = &listed.rollouts[0];
    assert_eq!(run.created_by, governance.canister);
    let done = scenario
        .fleet
        .run_to_end(operator(), run.rollout_id, ROUNDS);
    assert_eq!(done.summary.counts.backed_up, Some(3));

    let child = scenario.before[0].child;
    let history = scenario.fleet.child_history_ok(
        operator(),
        ChildHistoryArg {
            rollout_id: run.rollout_id,
            canister_id: child,
            from: None,
            limit: None,
        },
    );
    let snapshot_id = history.snapshot.expect("the run's snapshot");
    let restore = candid::encode_one(GovernedAction::RestoreChild(deployer::RestoreChildArg {
        canister_id: child,
        snapshot_id: snapshot_id.clone(),
    }))
    .unwrap();
    let (render, _) =
        executed(governance.propose(&mut scenario.fleet, "apply_by_proposal", restore));
    assert!(
        render.contains(&format!("## Restore child {child}")),
        "{render}"
    );
    assert!(render.contains(&hex(&snapshot_id)), "{render}");
    let listed = scenario
        .fleet
        .list_rollouts_ok(operator(), Default::default());
    let restored = scenario
        .fleet
        .run_to_end(operator(), listed.rollouts[0].rollout_id, ROUNDS);
    assert_eq!(restored.summary.counts.rolled_back, 1);
    let state = scenario
        .fleet
        .child_history_ok(
            operator(),
            ChildHistoryArg {
                rollout_id: listed.rollouts[0].rollout_id,
                canister_id: child,
                from: None,
                limit: None,
            },
        )
        .state;
    assert_eq!(
        state,
        ChildState::Finished(Verdict::RolledBack(RollbackCause::Restore))
    );
}
