use candid::Principal;
use proptest::prelude::*;

use super::*;
use crate::engine::{ChildSpec, Delivery, Operation, SubnetIndex, TargetRelease};
use crate::rollouts::RolloutInfo;

const RELEASE: ModuleHash = ModuleHash([9; 32]);

fn child(n: u8, module: Option<ModuleHash>) -> ChildSpec {
    ChildSpec {
        id: ChildId::new(vec![n, 1, 1]).unwrap(),
        module_hash: module,
        subnet: SubnetIndex(0),
        snapshots: vec![],
    }
}

fn plan(children: Vec<ChildSpec>) -> Plan {
    Plan {
        operation: Operation::Upgrade(TargetRelease {
            module_hash: RELEASE,
            delivery: Delivery::ChunkStore,
        }),
        children,
        policy: Policy::default(),
    }
}

fn preview(from: Vec<FromModule>) -> RolloutPreview {
    RolloutPreview {
        release_name: "shard".into(),
        release_version: "1.4.0".into(),
        module_sha256: ByteBuf::from(vec![9; 32]),
        module_size: 1_234_567,
        chunk_count: 2,
        install_arg_sha256: ByteBuf::from(vec![3; 32]),
        install_arg_size: 12,
        targets: from.iter().map(|from| from.children).sum(),
        skipped: 1,
        from,
        from_others: None,
        wave_sizes: vec![1, 10, 89],
        policy: Policy::default(),
        plan_sha256: ByteBuf::from(vec![0xab; 32]),
        release_blessing: None,
        prepared_at: None,
    }
}

#[test]
fn a_plan_hash_changes_with_what_the_rollout_would_do_and_only_with_it() {
    let base = plan(vec![child(1, Some(ModuleHash([1; 32]))), child(2, None)]);
    let same = plan_sha256(&base);
    let mut moved = base.clone();
    moved.children[0].subnet = SubnetIndex(3);
    moved.children[0].snapshots = vec![crate::engine::ExistingSnapshot {
        id: crate::engine::SnapshotId(vec![1]),
        made_by_deployer: true,
    }];
    assert_eq!(
        plan_sha256(&moved),
        same,
        "subnets and snapshots are not voted on"
    );
    let mut upgraded_meanwhile = base.clone();
    upgraded_meanwhile.children[1].module_hash = Some(ModuleHash([2; 32]));
    let mut adopted_meanwhile = base.clone();
    adopted_meanwhile.children.push(child(3, None));
    let mut reordered = base.clone();
    reordered.children.reverse();
    let mut other_argument = base.clone();
    other_argument.policy.install.arg = vec![1];
    let mut other_release = base.clone();
    other_release.operation = Operation::Upgrade(TargetRelease {
        module_hash: ModuleHash([8; 32]),
        delivery: Delivery::ChunkStore,
    });
    for changed in [
        upgraded_meanwhile,
        adopted_meanwhile,
        reordered,
        other_argument,
        other_release,
    ] {
        assert_ne!(plan_sha256(&changed), same, "{changed:?}");
    }
}

#[test]
fn targets_are_counted_by_the_module_they_run_most_first() {
    let v1 = ModuleHash([1; 32]);
    let plan = plan(vec![
        child(1, Some(v1)),
        child(2, None),
        child(3, Some(v1)),
        child(4, Some(RELEASE)),
    ]);
    let mut counts = BTreeMap::new();
    for child in plan
        .children
        .iter()
        .filter(|child| child.module_hash != Some(RELEASE))
    {
        *counts.entry(child.module_hash).or_default() += 1;
    }
    let (from, others) = targets_by_module(counts, |module| {
        (*module == v1).then(|| "shard@1.3.0".to_string())
    });
    assert_eq!(others, None);
    assert_eq!(
        from,
        [
            FromModule {
                module_sha256: Some(ByteBuf::from(v1.0.to_vec())),
                release: Some("shard@1.3.0".into()),
                children: 2,
            },
            FromModule {
                module_sha256: None,
                release: None,
                children: 1,
            },
        ]
    );
}

/// A fleet whose children run many modules: the preview lists the 100 that most targets run
/// (ties by module) and counts the others together; only the listed are named, and the render
/// sums what it does not show of either.
#[test]
fn targets_by_module_list_at_most_a_hundred_modules_and_count_the_others() {
    // Module n runs on n % 7 + 1 targets, and 10 run none: 151 entries.
    let counts: BTreeMap<Option<ModuleHash>, u32> = (0..150u8)
        .map(|n| (Some(ModuleHash([n; 32])), u32::from(n % 7) + 1))
        .chain([(None, 10)])
        .collect();
    let targets: u32 = counts.values().sum();
    let named = std::cell::Cell::new(0);
    let (from, others) = targets_by_module(counts.clone(), |_| {
        named.set(named.get() + 1);
        Some("shard@1".into())
    });
    assert_eq!(from.len(), MAX_FROM_MODULES);
    assert_eq!(
        from[0].module_sha256, None,
        "the most targets run no module"
    );
    assert_eq!(named.get(), MAX_FROM_MODULES - 1);
    let others = others.expect("51 modules left out");
    assert_eq!(others.modules, 51);
    assert_eq!(
        from.iter().map(|from| from.children).sum::<u32>() + others.children,
        targets
    );
    // Most first, ties by module: the same list as sorting them all.
    let mut all: Vec<(Option<ModuleHash>, u32)> = counts.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let listed: Vec<(Option<ByteBuf>, u32)> = from
        .iter()
        .map(|from| (from.module_sha256.clone(), from.children))
        .collect();
    let expected: Vec<(Option<ByteBuf>, u32)> = all[..MAX_FROM_MODULES]
        .iter()
        .map(|(module, children)| (module.map(|m| ByteBuf::from(m.0.to_vec())), *children))
        .collect();
    assert_eq!(listed, expected);

    let mut shown = preview(from);
    shown.targets = targets;
    shown.from_others = Some(others.clone());
    let render = render_rollout(&shown);
    let beyond: u32 = shown.from[MAX_FROM_LINES..]
        .iter()
        .map(|from| from.children)
        .sum();
    let line = format!(
        "  - {} from {} other modules",
        beyond + others.children,
        MAX_FROM_MODULES - MAX_FROM_LINES + 51
    );
    assert!(render.contains(&line), "{render}");
}

#[test]
fn a_rollout_render_names_the_release_targets_waves_policy_and_plan() {
    let render = render_rollout(&preview(vec![FromModule {
        module_sha256: Some(ByteBuf::from(vec![1; 32])),
        release: Some("shard@1.3.0".into()),
        children: 99,
    }]));
    for expected in [
        "## Roll out shard 1.4.0 to 99 children",
        &format!("module SHA-256 {}", "09".repeat(32)),
        "1234567 bytes in 2 chunk(s)",
        &format!("Install argument: SHA-256 {}, 12 bytes", "03".repeat(32)),
        "(1 selected children already run the release)",
        &format!("99 from shard@1.3.0 ({})", "01".repeat(32)),
        "Waves: canary of 1, then 10, 89",
        &format!("Plan SHA-256: {}", "ab".repeat(32)),
        "Upgrade gates: all checked",
    ] {
        assert!(render.contains(expected), "{expected:?} not in:\n{render}");
    }
    // An overridden gate is named with the reason voters weigh.
    let mut overriding = preview(vec![]);
    overriding.policy.gate_overrides = Some(vec![crate::engine::GateOverride {
        gate: crate::engine::UpgradeGate::KnownModule,
        reason: "first rollout of modules installed by the factory".into(),
    }]);
    let render = render_rollout(&overriding);
    assert!(
        render.contains(
            "Upgrade gate KnownModule NOT checked, because: first rollout of modules installed \
             by the factory"
        ),
        "{render}"
    );
    // A plan prepared earlier says when, so that voters know how old it is.
    assert!(!render.contains("prepared at"), "{render}");
    overriding.prepared_at = Some(1_700_000_000_000_000_000);
    let render = render_rollout(&overriding);
    assert!(
        render.contains("The plan was prepared at 1700000000000000000 ns."),
        "{render}"
    );
}

#[test]
fn a_control_render_says_what_happens_to_which_rollout() {
    let info = RolloutInfo {
        rollout_id: 4,
        release_sha256: ByteBuf::from(vec![9; 32]),
        operation: None,
        created_by: Principal::anonymous(),
        created_at: 0,
        policy: Policy::default(),
        install_arg_sha256: None,
        install_arg_size: None,
        summary: crate::engine::Summary {
            phase: crate::engine::RolloutPhase::Running,
            current_wave: Some(1),
            waves: vec![],
            counts: crate::engine::StateCounts {
                upgraded: 7,
                ..Default::default()
            },
            in_flight: 0,
            started_at: 0,
            finished_at: None,
            next_wave_at: None,
            failures_by_kind: None,
        },
    };
    let proposal = ControlProposal {
        rollout_id: 4,
        command: Command::RollBackAll,
    };
    let render = render_control(&proposal, &info);
    assert!(
        render.starts_with("## Roll back every child upgraded by rollout 4"),
        "{render}"
    );
    assert!(render.contains("Running; 7 upgraded"), "{render}");
}

proptest! {
    /// Whatever the names and however many modules the targets run, a render stays within its
    /// limit and ends on a whole character.
    #[test]
    fn renders_stay_within_their_limit(
        name in "[a-zé]{1,64}",
        version in "[0-9.]{1,64}",
        modules in 0usize..200,
    ) {
        let from = (0..modules)
            .map(|n| FromModule {
                module_sha256: Some(ByteBuf::from(vec![n as u8; 32])),
                release: Some(format!("{name}@{n}")),
                children: 1,
            })
            .collect();
        let mut preview = preview(from);
        preview.release_name = name;
        preview.release_version = version;
        let render = render_rollout(&preview);
        prop_assert!(render.len() <= MAX_RENDER_BYTES);
        prop_assert!(render.contains("Plan SHA-256") || render.ends_with("..."));
    }
}

#[test]
fn governance_only_refuses_every_change_but_governance_s_and_no_read() {
    let governance = Principal::from_slice(&[7; 29]);
    let admin = Principal::from_slice(&[1; 29]);
    let settings = GovernanceSettings::default()
        .updated(GovernanceUpdate {
            governance: Some(governance),
            governance_only: Some(true),
            ..GovernanceUpdate::default()
        })
        .unwrap();
    assert_eq!(
        settings.check(admin, Method::StartRollout),
        Err(ErrorKind::GovernanceOnly { governance })
    );
    assert!(settings.check(admin, Method::AddRole).is_err());
    assert_eq!(
        settings.check(governance, Method::StartRolloutByProposal),
        Ok(())
    );
    for read in Method::ALL.into_iter().filter(|method| method.is_query()) {
        assert_eq!(settings.check(admin, read), Ok(()), "{read:?}");
    }
    // A backup of the state changes nothing; a restore does.
    assert_eq!(settings.check(admin, Method::StartExport), Ok(()));
    assert!(settings.check(admin, Method::CommitRestore).is_err());
    // Nor does preparing a preview: whoever may preview prepares what they propose.
    assert_eq!(settings.check(admin, Method::PrepareRollout), Ok(()));
    // Lifted by an upgrade; governance is kept.
    let lifted = settings
        .updated(GovernanceUpdate {
            governance_only: Some(false),
            ..GovernanceUpdate::default()
        })
        .unwrap();
    assert_eq!(lifted.governance, Some(governance));
    assert_eq!(lifted.check(admin, Method::StartRollout), Ok(()));
    // Governance-only needs someone to govern.
    assert!(GovernanceSettings::default()
        .updated(GovernanceUpdate {
            governance_only: Some(true),
            ..GovernanceUpdate::default()
        })
        .unwrap_err()
        .contains("needs a governance principal"));
}

/// Stored in memory 23: the bytes are a contract with the next build.
#[test]
fn governance_settings_keep_their_bytes() {
    use ic_stable_structures::Storable;
    let settings = GovernanceSettings {
        governance: Some(Principal::from_slice(&[7; 3])),
        governance_only: true,
        require_blessed_releases: true,
    };
    let bytes = crate::cbor::Cbor(settings.clone()).to_bytes().into_owned();
    // {"governance": h'070707', "governance_only": true, "require_blessed_releases": true}
    assert_eq!(
        crate::hash::hex(&bytes),
        "a36a676f7665726e616e6365430707076f676f7665726e616e63655f6f6e6c79f5781872657175697265\
         5f626c65737365645f72656c6561736573f5"
    );
    let read = crate::cbor::Cbor::<GovernanceSettings>::from_bytes(bytes.into()).0;
    assert_eq!(read, settings);
    // As written before blessings existed: none required.
    let written: Vec<u8> = "a26a676f7665726e616e6365430707076f676f7665726e616e63655f6f6e6c79f5"
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect();
    let read = crate::cbor::Cbor::<GovernanceSettings>::from_bytes(written.into()).0;
    assert_eq!(
        read,
        GovernanceSettings {
            require_blessed_releases: false,
            ..settings
        }
    );
}

/// The form plans were hashed in before their hash was made as the children come: the CBOR of
/// this struct. Pinned hashes (proposals in flight across an upgrade) must stay valid.
#[derive(Serialize)]
struct PinnedPlan<'a> {
    release: Option<&'a ModuleHash>,
    policy: &'a Policy,
    children: Vec<(&'a ChildId, &'a Option<ModuleHash>)>,
}

fn hash_of_whole(plan: &Plan) -> Sha256Hash {
    let pinned = PinnedPlan {
        release: plan.operation.release().map(|release| &release.module_hash),
        policy: &plan.policy,
        children: plan
            .children
            .iter()
            .map(|child| (&child.id, &child.module_hash))
            .collect(),
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(&pinned, &mut bytes).unwrap();
    crate::hash::sha256(&bytes)
}

#[test]
fn a_plan_hashed_as_its_children_come_hashes_as_its_whole_cbor() {
    // Each length where the CBOR array head changes form.
    for len in [0u32, 1, 23, 24, 255, 256, 65_535, 65_536] {
        let children = (0..len)
            .map(|n| ChildSpec {
                id: ChildId::new(n.to_be_bytes().to_vec()).unwrap(),
                module_hash: (n % 3 != 0).then_some(ModuleHash([(n % 7) as u8; 32])),
                subnet: SubnetIndex(n % 4),
                snapshots: vec![],
            })
            .collect();
        let mut plan = plan(children);
        plan.policy.install.arg = vec![7; 300];
        assert_eq!(plan_sha256(&plan), hash_of_whole(&plan), "{len} children");
    }
}

#[test]
#[should_panic(expected = "as many children as announced")]
fn a_plan_hash_refuses_fewer_children_than_announced() {
    let plan = plan(vec![]);
    PlanHasher::new(&plan.operation, &plan.policy, 1).finish();
}
