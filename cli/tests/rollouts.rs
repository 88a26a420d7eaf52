//! `deployer fleet` and `deployer rollout` against a local network with the real deployer Wasm:
//! adopt (ids and @file), label, list by label and module; plan from a policy file; start and
//! watch to the end; pause, resume, roll back, abort; a failing child; histories and events.

mod support;

use support::*;

#[test]
fn the_fleet_is_adopted_labelled_and_listed() {
    let net = TestNetwork::start("fleet", 20);
    let extra = net.create_child("child_v1", true);
    let unmanaged = net.create_child("child_v1", false);
    let list = net.file(
        "children.txt",
        format!("# the fleet\n{}\n{extra}\n", net.child_1).as_bytes(),
    );
    let adopted = net
        .admin(&[
            "fleet",
            "adopt",
            &format!("@{list}"),
            "--label",
            "env=prod",
            "--label",
            "tier=a",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(adopted.as_array().unwrap().len(), 2);
    // One refused among several: the others are adopted, the refusal is shown, the status is 3.
    net.admin(&[
        "fleet",
        "adopt",
        &net.child_2.to_text(),
        &unmanaged.to_text(),
    ])
    .code(3)
    .stdout_has("1 adopted, 1 refused")
    .stdout_has("controller");

    net.admin(&["fleet", "label", &extra.to_text(), "tier=b", "canary=yes"])
        .ok();
    net.admin(&["fleet", "label", &extra.to_text(), "--remove", "canary"])
        .ok()
        .stdout_has("tier=b");
    let tier_a = net
        .admin(&["fleet", "list", "--label", "tier=a", "--json"])
        .ok()
        .json();
    assert_eq!(tier_a.as_array().unwrap().len(), 1);
    assert_eq!(tier_a[0]["canister_id"], net.child_1.to_text().as_str());

    net.admin(&[
        "release",
        "upload",
        &artifact("child_v1"),
        "--name",
        "child",
        "--version",
        "1",
    ])
    .ok();
    let on_v1 = net
        .admin(&["fleet", "list", "--module", "child@1", "--json"])
        .ok()
        .json();
    assert_eq!(on_v1.as_array().unwrap().len(), 3);
    net.admin(&["fleet", "list"])
        .ok()
        .stdout_has("child@1")
        .stdout_has("3 children");
    // Viewers only: anonymous callers are told which role they need.
    net.run(None, &["fleet", "list"])
        .code(3)
        .stderr_has("Viewer");
    // A chunk store must be an empty canister: a child is refused, with the deployer's reason.
    let subnet = tier_a[0]["subnet"].as_str().unwrap().to_string();
    net.admin(&["fleet", "store", &subnet, &extra.to_text()])
        .code(3)
        .stderr_has("refused");
    net.admin(&["fleet", "forget", &extra.to_text()])
        .ok()
        .stdout_has("forgot");
    let stats = net.admin(&["stats", "--json"]).ok().json();
    assert_eq!(stats["storage"]["releases"], 1);
    net.admin(&["prepare-upgrade"]).ok().stdout_has("ready");
    net.admin(&["prepare-upgrade", "--lift"]).ok();
    net.admin(&["fleet", "adopt", "not-a-principal"]).code(2);
    net.admin(&["fleet", "adopt", "@missing.txt"])
        .code(2)
        .stderr_has("missing.txt");
}

/// `rollout propose`: the deployer's render of the rollout for voters and the proposal payload,
/// which `start_rollout_by_proposal` takes as it is.
#[test]
fn a_rollout_proposal_is_rendered_with_its_payload() {
    let net = TestNetwork::start("rollout-propose", 20);
    fleet_and_release(&net, &[net.child_1.to_text(), net.child_2.to_text()]);
    let proposal = net
        .admin(&["rollout", "propose", "child@2.0.0", "--json"])
        .ok()
        .json();
    let render = proposal["render"].as_str().unwrap();
    assert!(
        render.contains("## Roll out child 2.0.0 to 2 children"),
        "{render}"
    );
    let plan = proposal["plan_sha256"].as_str().unwrap();
    assert!(
        render.contains(&format!("Plan SHA-256: {plan}")),
        "{render}"
    );
    assert_eq!(proposal["target_method_name"], "start_rollout_by_proposal");
    assert_eq!(proposal["topic"], "CriticalDappOperations");
    let payload = hex::decode(proposal["payload_hex"].as_str().unwrap()).unwrap();
    let rollout: deployer::StartRolloutArg = candid::decode_one(&payload).unwrap();
    assert_eq!(hex::encode(rollout.plan_sha256.unwrap()), plan);
    net.admin(&["rollout", "propose", "child@2.0.0"])
        .ok()
        .stdout_has("ExecuteGenericNervousSystemFunction payload");
}

#[test]
fn a_rollout_is_planned_started_and_watched_to_its_end() {
    let net = TestNetwork::start("rollout-watch", 20);
    let third = net.create_child("child_v1", true);
    fleet_and_release(
        &net,
        &[
            net.child_1.to_text(),
            net.child_2.to_text(),
            third.to_text(),
        ],
    );
    let policy = net.file(
        "policy.toml",
        b"canary = 1\nwaves = [\"50%\"]\nconcurrency = 2\nbake = \"1s\"\n",
    );

    let plan = net
        .admin(&[
            "rollout",
            "plan",
            "child@2.0.0",
            "--policy",
            &policy,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(plan["targets"], 3);
    assert_eq!(plan["from"]["child@1.0.0"], 3);
    let waves: Vec<usize> = plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_array().unwrap().len())
        .collect();
    assert_eq!(waves, [1, 2]);
    assert_eq!(plan["policy"]["bake_nanos"], 1_000_000_000u64);
    net.admin(&["rollout", "plan", "child@2.0.0", "--policy", &policy])
        .ok()
        .stdout_has("child@1.0.0 -> child@2.0.0: 3 children")
        .stdout_has("bake 1s");

    let watched = net
        .admin(&[
            "rollout",
            "start",
            "child@2.0.0",
            "--policy",
            &policy,
            "--watch",
            "--interval",
            "0.2",
        ])
        .ok();
    assert!(watched.stdout.contains("ended: Completed"), "{watched:#?}");
    assert!(
        watched
            .stdout
            .contains(&format!("{third} finished: Upgraded")),
        "{watched:#?}"
    );
    // Back to 1.0.0 would be a downgrade: the deployer's HigherVersion gate refuses the plan.
    net.admin(&["rollout", "plan", "child@1.0.0"])
        .code(3)
        .stderr_has("HigherVersion");
    // Watched again, it reports the same end as JSON lines.
    let again = net.admin(&["rollout", "watch", "0", "--json"]).ok();
    let last: serde_json::Value =
        serde_json::from_str(again.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["ended"], "Completed");
    assert_eq!(last["counts"]["upgraded"], 3);

    // Everyone is on 2.0.0: planned again, every child is skipped.
    let replan = net
        .admin(&["rollout", "plan", "child@2.0.0", "--json"])
        .ok()
        .json();
    assert_eq!(replan["targets"], 0);
    assert_eq!(replan["skipped"].as_array().unwrap().len(), 3);

    let history = net
        .admin(&["rollout", "history", &third.to_text(), "--json"])
        .ok()
        .json();
    assert_eq!(history["state"]["Finished"], "Upgraded");
    let steps: Vec<String> = history["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect();
    assert!(steps.contains(&"Install".to_string()), "{steps:?}");
    net.admin(&["rollout", "events", "--rollout", "0"])
        .ok()
        .stdout_has("wave 1 finished")
        .stdout_has("Completed");
    net.admin(&["rollout", "list"]).ok().stdout_has("Completed");
}

#[test]
fn a_rollout_is_paused_resumed_rolled_back_and_another_aborted() {
    let net = TestNetwork::start("rollout-control", 20);
    fleet_and_release(&net, &[net.child_1.to_text(), net.child_2.to_text()]);
    let policy = net.file("bake.toml", b"canary = 1\nbake = \"1h\"\n");
    let started = net
        .admin(&[
            "rollout",
            "start",
            "child@2.0.0",
            "--policy",
            &policy,
            "--json",
        ])
        .ok()
        .json();
    let id = started["rollout_id"].as_u64().unwrap();
    // The canary is upgraded; the next wave waits out the bake.
    wait_for(&net, id, |info| {
        !info["summary"]["waves"][0]["finished_at"].is_null()
    });

    let paused = net
        .admin(&["rollout", "pause", &id.to_string(), "--json"])
        .ok()
        .json();
    assert_eq!(paused["summary"]["phase"]["Paused"], "Operator");
    net.admin(&["rollout", "watch", &id.to_string()])
        .code(11)
        .stdout_has(&format!("rollout resume {id}"));
    net.admin(&["rollout", "resume", &id.to_string()])
        .ok()
        .stdout_has("Running");
    // Pausing twice is the deployer's refusal, with its message.
    net.admin(&["rollout", "rollback", &id.to_string()]).ok();
    net.admin(&["rollout", "pause", &id.to_string()])
        .code(3)
        .stderr_has("RolloutCommandRefused");
    net.admin(&["rollout", "watch", &id.to_string(), "--interval", "0.2"])
        .code(13)
        .stdout_has("RolledBack");
    let history = net
        .admin(&[
            "rollout",
            "history",
            &net.child_1.to_text(),
            "--rollout",
            &id.to_string(),
        ])
        .ok();
    assert!(history.stdout.contains("LoadSnapshot"), "{history:#?}");

    let second = net
        .admin(&[
            "rollout",
            "start",
            "child@2.0.0",
            "--policy",
            &policy,
            "--json",
        ])
        .ok()
        .json();
    let second = second["rollout_id"].as_u64().unwrap().to_string();
    net.admin(&["rollout", "abort", &second]).ok();
    net.admin(&["rollout", "watch", &second, "--interval", "0.2"])
        .code(12)
        .stdout_has("Aborted");
    net.admin(&["rollout", "events", "--rollout", &second, "--json"])
        .ok();
}

#[test]
fn a_failing_child_pauses_the_rollout_and_watch_says_why() {
    let net = TestNetwork::start("rollout-failure", 20);
    failing_fleet(&net);
    let watched = net
        .admin(&[
            "rollout",
            "start",
            "child@2.0.1-bad",
            "--watch",
            "--interval",
            "0.2",
            "--json",
        ])
        .code(11);
    let last: serde_json::Value =
        serde_json::from_str(watched.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["ended"], "Paused");
    let failure = &last["failures"][0];
    assert!(!failure["child"].as_str().unwrap().is_empty(), "{last:#}");
    assert!(
        failure["reason"].is_object() || failure["reason"].is_string(),
        "{last:#}"
    );
    // Listed by phase: the paused rollout, and no completed one.
    let paused = net
        .admin(&["rollout", "list", "--phase", "paused", "--json"])
        .ok()
        .json();
    assert_eq!(paused.as_array().unwrap().len(), 1, "{paused:#}");
    let completed = net
        .admin(&["rollout", "list", "--phase", "completed", "--json"])
        .ok()
        .json();
    assert_eq!(completed.as_array().unwrap().len(), 0, "{completed:#}");
    // People read the failures counted by kind.
    let id = last["rollout_id"].as_u64().unwrap().to_string();
    net.admin(&["rollout", "watch", &id])
        .code(11)
        .stdout_has("failures 1 Rejected");
}

#[test]
fn bad_policies_are_refused_before_anything_is_sent() {
    let net = TestNetwork::start("rollout-policy", 20);
    for (name, text, says) in [
        ("key.toml", "bakee = \"10m\"\n", "unknown field `bakee`"),
        (
            "unit.toml",
            "bake = \"10 parsecs\"\n",
            "expected a duration",
        ),
        ("bare.toml", "bake = 600\n", "bake"),
        ("percent.toml", "waves = [\"120%\"]\n", "percent"),
        ("bound.toml", "concurrency = 0\n", "concurrency"),
    ] {
        let policy = net.file(name, text.as_bytes());
        net.admin(&["rollout", "plan", "child@2", "--policy", &policy])
            .code(2)
            .stderr_has(name)
            .stderr_has(says);
    }
    net.admin(&["rollout", "plan", "child@2", "--policy", "missing.toml"])
        .code(2)
        .stderr_has("missing.toml");
    net.admin(&["rollout", "start", "child@2"])
        .code(3)
        .stderr_has("ReleaseNotFound");
}
