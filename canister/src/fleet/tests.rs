use std::collections::{BTreeMap, BTreeSet};

use ic_stable_structures::{Memory, Storable, VectorMemory};
use serde_bytes::ByteBuf;

use super::index::{Matches, Posting, Scan};
use super::*;

/// A canister id shaped like the IC's: a 64-bit index, then `0x01 0x01`.
pub(super) fn canister(n: u64) -> Principal {
    let mut bytes = n.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[1, 1]);
    Principal::from_slice(&bytes)
}

pub(super) fn subnet(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

pub(super) fn admin() -> Principal {
    Principal::from_slice(&[0xad; 29])
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(key, value)| Label::new(*key, *value))
        .collect()
}

pub(super) fn empty_fleet() -> Fleet<VectorMemory> {
    Fleet::init(FleetMemories {
        children: VectorMemory::default(),
        index: VectorMemory::default(),
        subnets: VectorMemory::default(),
        composition: VectorMemory::default(),
    })
}

const V1: ModuleHash = ModuleHash([1; 32]);
const V2: ModuleHash = ModuleHash([2; 32]);

/// Adopts `canister(n)` on subnet 1 running V1, at time `n`.
fn adopt(fleet: &mut Fleet<VectorMemory>, n: u64, pairs: &[(&str, &str)]) {
    fleet
        .adopt(canister(n), subnet(1), Some(V1), &labels(pairs), n, admin())
        .unwrap();
    assert_indexes_agree(fleet);
}

/// The index holds exactly the entries a scan of the children implies, and every child's subnet
/// is numbered.
pub(super) fn assert_indexes_agree<M: Memory>(fleet: &Fleet<M>) {
    let mut expected = BTreeSet::new();
    for entry in fleet.children.iter() {
        let (id, record) = (entry.key().clone(), entry.value().decode());
        for (key, value) in &record.labels {
            expected.insert(IndexKey::new(&label_prefix(key, value), &id));
        }
        if let Some(hash) = &record.module_hash {
            expected.insert(IndexKey::new(&module_prefix(hash), &id));
        }
        assert!(fleet.subnet(record.subnet).is_some());
    }
    let actual: BTreeSet<IndexKey> = fleet.index.keys().collect();
    assert_eq!(actual, expected);
    assert_counts_agree(fleet);
}

/// The running counts equal what a scan of the children counts.
fn assert_counts_agree<M: Memory>(fleet: &Fleet<M>) {
    let mut by_subnet: BTreeMap<SubnetIndex, u64> = BTreeMap::new();
    let mut by_module: BTreeMap<Option<ModuleHash>, u64> = BTreeMap::new();
    for entry in fleet.children.iter() {
        let record = entry.value().decode();
        *by_subnet.entry(record.subnet).or_default() += 1;
        *by_module.entry(record.module_hash).or_default() += 1;
    }
    let composition = fleet.composition();
    assert_eq!(composition.children, fleet.len());
    let expected_subnets: Vec<(Principal, u64)> = by_subnet
        .into_iter()
        .map(|(index, count)| (fleet.subnet(index).unwrap(), count))
        .collect();
    assert_eq!(composition.by_subnet, expected_subnets);
    // `None` (no module) sorts first in a map, last in the counts.
    let mut expected_modules: Vec<_> = by_module.into_iter().collect();
    let none_first = expected_modules
        .first()
        .is_some_and(|(module, _)| module.is_none());
    expected_modules.rotate_left(usize::from(none_first));
    assert_eq!(composition.by_module, expected_modules);
}

/// Every id the filter lists, page after page.
pub(super) fn list_all_ids<M: Memory>(
    fleet: &Fleet<M>,
    mut arg: ListChildrenArg,
) -> Vec<Principal> {
    let mut ids = Vec::new();
    loop {
        let page = fleet.list_ids(&arg).unwrap();
        ids.extend(page.canister_ids);
        match page.next {
            Some(next) => arg.from = Some(next),
            None => return ids,
        }
    }
}

fn by_labels(pairs: &[(&str, &str)]) -> ListChildrenArg {
    ListChildrenArg {
        labels: labels(pairs),
        ..ListChildrenArg::default()
    }
}

fn by_module(hash: ModuleHash) -> ListChildrenArg {
    ListChildrenArg {
        module_hash: Some(ByteBuf::from(hash.0.to_vec())),
        ..ListChildrenArg::default()
    }
}

#[test]
fn adopt_records_the_child_as_observed() {
    let mut fleet = empty_fleet();
    fleet
        .adopt(
            canister(7),
            subnet(3),
            Some(V1),
            &labels(&[("tier", "gold"), ("region", "eu")]),
            1_000,
            admin(),
        )
        .unwrap();

    assert_eq!(fleet.len(), 1);
    assert_eq!(
        fleet.get(&canister(7)),
        Some(ChildRecord {
            subnet: SubnetIndex(0),
            labels: [("region", "eu"), ("tier", "gold")]
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            module_hash: Some(V1),
            adopted_at: 1_000,
            adopted_by: admin(),
            last_checked_at: 1_000,
            snapshots: vec![],
        })
    );
    assert_eq!(
        fleet.info(&canister(7)).unwrap(),
        ChildInfo {
            canister_id: canister(7),
            subnet: subnet(3),
            labels: labels(&[("region", "eu"), ("tier", "gold")]),
            module_hash: Some(ByteBuf::from(vec![1; 32])),
            adopted_at: 1_000,
            adopted_by: admin(),
            last_checked_at: 1_000,
            snapshots: vec![],
            rollout_id: None,
        }
    );
    assert_indexes_agree(&fleet);
}

#[test]
fn adopting_a_child_twice_is_refused_and_changes_nothing() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[("tier", "gold")]);
    let before = fleet.get(&canister(1));

    let again = fleet.adopt(
        canister(1),
        subnet(2),
        Some(V2),
        &labels(&[("tier", "free")]),
        99,
        subnet(9),
    );

    assert_eq!(
        again,
        Err(FleetError::AlreadyAdopted {
            canister_id: canister(1),
            adopted_at: 1,
            adopted_by: admin(),
        })
    );
    assert_eq!(fleet.get(&canister(1)), before);
    assert_eq!(list_all_ids(&fleet, by_labels(&[("tier", "free")])), vec![]);
    assert_indexes_agree(&fleet);
}

#[test]
fn invalid_labels_are_refused_with_the_offending_label() {
    let long_key = "k".repeat(MAX_LABEL_KEY_BYTES + 1);
    // A multi-byte character straddles the cut: the echoed key ends before it.
    let long_multibyte_key = format!("{}é", "k".repeat(MAX_LABEL_KEY_BYTES - 1));
    let long_value = "v".repeat(MAX_LABEL_VALUE_BYTES + 1);
    let too_many: Vec<Label> = (0..=MAX_LABELS_PER_CHILD)
        .map(|n| Label::new(format!("key{n}"), ""))
        .collect();
    let cases = [
        (
            labels(&[("", "x")]),
            FleetError::LabelKeyLength {
                key: String::new(),
                length: 0,
                max: MAX_LABEL_KEY_BYTES as u64,
            },
        ),
        (
            labels(&[(&long_key, "x")]),
            FleetError::LabelKeyLength {
                key: "k".repeat(MAX_LABEL_KEY_BYTES),
                length: MAX_LABEL_KEY_BYTES as u64 + 1,
                max: MAX_LABEL_KEY_BYTES as u64,
            },
        ),
        (
            labels(&[(&long_multibyte_key, "x")]),
            FleetError::LabelKeyLength {
                key: "k".repeat(MAX_LABEL_KEY_BYTES - 1),
                length: MAX_LABEL_KEY_BYTES as u64 + 1,
                max: MAX_LABEL_KEY_BYTES as u64,
            },
        ),
        (
            labels(&[("tier", &long_value)]),
            FleetError::LabelValueLength {
                key: "tier".into(),
                length: MAX_LABEL_VALUE_BYTES as u64 + 1,
                max: MAX_LABEL_VALUE_BYTES as u64,
            },
        ),
        (
            labels(&[("tier", "a"), ("tier", "b")]),
            FleetError::RepeatedLabelKey { key: "tier".into() },
        ),
        (
            too_many,
            FleetError::TooManyLabels {
                count: MAX_LABELS_PER_CHILD as u64 + 1,
                max: MAX_LABELS_PER_CHILD as u64,
            },
        ),
    ];
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[]);
    for (bad, error) in cases {
        assert_eq!(
            fleet.adopt(canister(2), subnet(1), None, &bad, 0, admin()),
            Err(error.clone())
        );
        assert_eq!(fleet.set_labels(&canister(1), &bad), Err(error.clone()));
        let filter = ListChildrenArg {
            labels: bad.clone(),
            ..ListChildrenArg::default()
        };
        assert_eq!(fleet.list_ids(&filter), Err(error.clone()));
        assert_eq!(fleet.select(&Selector::Labels(bad)).err(), Some(error));
    }
    assert_eq!(fleet.len(), 1);
    assert_eq!(fleet.get(&canister(1)).unwrap().labels, Labels::new());
    assert_indexes_agree(&fleet);
}

#[test]
fn largest_valid_labels_are_accepted_and_indexed() {
    let mut fleet = empty_fleet();
    let widest: Vec<Label> = (0..MAX_LABELS_PER_CHILD)
        .map(|n| {
            Label::new(
                format!("{n:0>width$}", width = MAX_LABEL_KEY_BYTES),
                "v".repeat(MAX_LABEL_VALUE_BYTES),
            )
        })
        .collect();
    fleet
        .adopt(canister(1), subnet(1), Some(V1), &widest, 0, admin())
        .unwrap();
    assert_indexes_agree(&fleet);
    let filter = ListChildrenArg {
        labels: widest,
        ..ListChildrenArg::default()
    };
    assert_eq!(list_all_ids(&fleet, filter), vec![canister(1)]);
}

#[test]
fn subnets_are_numbered_in_order_of_first_sight_and_never_renumbered() {
    let mut fleet = empty_fleet();
    for (n, on) in [(1, subnet(5)), (2, subnet(6)), (3, subnet(5))] {
        fleet.adopt(canister(n), on, None, &[], 0, admin()).unwrap();
    }
    let numbers: Vec<SubnetIndex> = (1..=3)
        .map(|n| fleet.get(&canister(n)).unwrap().subnet)
        .collect();
    assert_eq!(numbers, [SubnetIndex(0), SubnetIndex(1), SubnetIndex(0)]);
    assert_eq!(fleet.subnet(SubnetIndex(1)), Some(subnet(6)));
    assert_eq!(fleet.subnet(SubnetIndex(2)), None);

    for n in 1..=3 {
        fleet.release(&canister(n)).unwrap();
    }
    fleet
        .adopt(canister(4), subnet(6), None, &[], 0, admin())
        .unwrap();
    assert_eq!(fleet.get(&canister(4)).unwrap().subnet, SubnetIndex(1));
}

#[test]
fn set_labels_adds_and_replaces_and_keeps_the_rest() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[("tier", "free"), ("region", "eu")]);

    fleet
        .set_labels(
            &canister(1),
            &labels(&[("tier", "gold"), ("tenant", "acme")]),
        )
        .unwrap();

    assert_eq!(
        fleet.info(&canister(1)).unwrap().labels,
        labels(&[("region", "eu"), ("tenant", "acme"), ("tier", "gold")])
    );
    assert_eq!(list_all_ids(&fleet, by_labels(&[("tier", "free")])), vec![]);
    assert_eq!(
        list_all_ids(&fleet, by_labels(&[("tier", "gold"), ("region", "eu")])),
        vec![canister(1)]
    );
    assert_indexes_agree(&fleet);
}

#[test]
fn set_labels_refuses_to_exceed_the_label_count() {
    let mut fleet = empty_fleet();
    let full: Vec<Label> = (0..MAX_LABELS_PER_CHILD)
        .map(|n| Label::new(format!("key{n}"), "a"))
        .collect();
    fleet
        .adopt(canister(1), subnet(1), None, &full, 0, admin())
        .unwrap();

    assert_eq!(
        fleet.set_labels(&canister(1), &labels(&[("key0", "b"), ("extra", "c")])),
        Err(FleetError::TooManyLabels {
            count: MAX_LABELS_PER_CHILD as u64 + 1,
            max: MAX_LABELS_PER_CHILD as u64,
        })
    );
    assert_eq!(fleet.get(&canister(1)).unwrap().labels["key0"], "a");
    // Replacing values adds no key, so a full child can still be relabelled.
    fleet
        .set_labels(&canister(1), &labels(&[("key0", "b")]))
        .unwrap();
    assert_eq!(fleet.get(&canister(1)).unwrap().labels["key0"], "b");
    assert_indexes_agree(&fleet);
}

#[test]
fn remove_label_unindexes_the_label_and_reports_whether_it_was_there() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[("tier", "gold"), ("region", "eu")]);

    assert_eq!(fleet.remove_label(&canister(1), "tier"), Ok(true));
    assert_eq!(fleet.remove_label(&canister(1), "tier"), Ok(false));

    assert_eq!(list_all_ids(&fleet, by_labels(&[("tier", "gold")])), vec![]);
    assert_eq!(
        fleet.info(&canister(1)).unwrap().labels,
        labels(&[("region", "eu")])
    );
    assert_indexes_agree(&fleet);
}

#[test]
fn operations_on_a_canister_that_is_not_a_child_report_it() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[]);
    let stranger = canister(2);
    let not_adopted = FleetError::NotAdopted {
        canister_id: stranger,
    };
    let snapshot = SnapshotId(vec![1]);

    assert_eq!(fleet.get(&stranger), None);
    assert_eq!(fleet.info(&stranger), Err(not_adopted.clone()));
    assert_eq!(
        fleet.set_labels(&stranger, &labels(&[("a", "b")])),
        Err(not_adopted.clone())
    );
    assert_eq!(fleet.remove_label(&stranger, "a"), Err(not_adopted.clone()));
    assert_eq!(fleet.release(&stranger), Err(not_adopted.clone()));
    assert_eq!(
        fleet.record_child_end(&stranger, Some(Some(V1)), vec![snapshot], 5),
        Err(not_adopted)
    );
    assert_eq!(fleet.len(), 1);
    assert_indexes_agree(&fleet);
}

#[test]
fn release_forgets_the_child_and_its_index_entries() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[("tier", "gold")]);
    adopt(&mut fleet, 2, &[("tier", "gold")]);

    let released = fleet.release(&canister(1)).unwrap();

    assert_eq!(released.labels["tier"], "gold");
    assert_eq!(fleet.len(), 1);
    assert_eq!(fleet.get(&canister(1)), None);
    assert_eq!(
        list_all_ids(&fleet, by_labels(&[("tier", "gold")])),
        vec![canister(2)]
    );
    assert_eq!(list_all_ids(&fleet, by_module(V1)), vec![canister(2)]);
    assert_indexes_agree(&fleet);
}

#[test]
fn a_claimed_child_cannot_be_released_until_its_rollout_lets_go() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[]);
    fleet.claim(&[canister(1)], 8).unwrap();

    assert_eq!(
        fleet.release(&canister(1)),
        Err(FleetError::Claimed {
            canister_id: canister(1),
            rollout_id: 8,
        })
    );
    assert_eq!(fleet.len(), 1);

    assert_eq!(fleet.release_claim(&[canister(1)], 8), 1);
    assert!(fleet.release(&canister(1)).is_ok());
}

#[test]
fn a_recorded_module_moves_the_child_between_module_filters() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[]);
    adopt(&mut fleet, 2, &[]);
    let record_module = |fleet: &mut Fleet<_>, n, module, now| {
        fleet
            .record_child_end(&canister(n), Some(module), vec![], now)
            .unwrap()
    };

    record_module(&mut fleet, 1, Some(V2), 50);

    assert_eq!(list_all_ids(&fleet, by_module(V1)), vec![canister(2)]);
    assert_eq!(list_all_ids(&fleet, by_module(V2)), vec![canister(1)]);
    let record = fleet.get(&canister(1)).unwrap();
    assert_eq!((record.module_hash, record.last_checked_at), (Some(V2), 50));
    assert_indexes_agree(&fleet);

    // An uninstalled child runs no module: it leaves every module filter.
    record_module(&mut fleet, 1, None, 60);
    assert_eq!(list_all_ids(&fleet, by_module(V2)), vec![]);
    assert_eq!(fleet.get(&canister(1)).unwrap().last_checked_at, 60);
    assert_indexes_agree(&fleet);

    // The same hash again only updates the check time.
    record_module(&mut fleet, 2, Some(V1), 70);
    assert_eq!(fleet.get(&canister(2)).unwrap().last_checked_at, 70);
    assert_indexes_agree(&fleet);
}

#[test]
fn a_childs_snapshots_are_recorded_as_given_up_to_the_ic_limit() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[]);
    let adopted_at = fleet.get(&canister(1)).unwrap().last_checked_at;
    let snapshots = |range: std::ops::Range<u8>| -> Vec<SnapshotId> {
        range.map(|n| SnapshotId(vec![n; 3])).collect()
    };
    let at_limit = snapshots(0..MAX_SNAPSHOTS_PER_CANISTER as u8);
    fleet
        .record_child_end(&canister(1), None, at_limit.clone(), 40)
        .unwrap();
    assert_eq!(
        fleet.record_child_end(
            &canister(1),
            Some(Some(V2)),
            snapshots(0..MAX_SNAPSHOTS_PER_CANISTER as u8 + 1),
            50,
        ),
        Err(FleetError::SnapshotLimit {
            canister_id: canister(1),
            max: MAX_SNAPSHOTS_PER_CANISTER as u64,
        })
    );
    let record = fleet.get(&canister(1)).unwrap();
    assert_eq!(record.snapshots, at_limit, "a refusal records nothing");
    assert_eq!(record.module_hash, Some(V1));
    // Without a module reading, only the snapshots change.
    assert_eq!(record.last_checked_at, adopted_at);
}

#[test]
fn spec_marks_only_the_deployers_snapshots_as_its_own() {
    let mut fleet = empty_fleet();
    fleet
        .adopt(canister(1), subnet(1), Some(V1), &[], 0, admin())
        .unwrap();
    fleet
        .adopt(canister(2), subnet(2), None, &[], 0, admin())
        .unwrap();
    fleet
        .record_child_end(&canister(2), None, vec![SnapshotId(vec![2])], 0)
        .unwrap();
    let held = vec![SnapshotId(vec![1]), SnapshotId(vec![2])];

    let spec = fleet
        .get(&canister(2))
        .unwrap()
        .spec(child_id(&canister(2)), held);

    assert_eq!(spec.id.as_bytes(), canister(2).as_slice());
    assert_eq!(spec.subnet, SubnetIndex(1));
    assert_eq!(spec.module_hash, None);
    let mine: Vec<bool> = spec.snapshots.iter().map(|s| s.made_by_deployer).collect();
    assert_eq!(mine, [false, true]);
    assert_eq!(canister_id(&spec.id), canister(2));
}

#[test]
fn a_claim_takes_all_children_or_none_and_names_the_conflicts() {
    let mut fleet = empty_fleet();
    for n in 1..=4 {
        adopt(&mut fleet, n, &[]);
    }
    fleet.claim(&[canister(1), canister(2)], 10).unwrap();
    // Retrying the same claim succeeds.
    fleet.claim(&[canister(2), canister(1)], 10).unwrap();

    assert_eq!(
        fleet.claim(&[canister(3), canister(2), canister(1)], 11),
        Err(FleetError::ClaimConflict {
            conflicts: vec![
                ChildClaim {
                    canister_id: canister(2),
                    rollout_id: 10,
                },
                ChildClaim {
                    canister_id: canister(1),
                    rollout_id: 10,
                },
            ],
            total: 2,
        })
    );
    assert_eq!(fleet.claim_of(&canister(3)), None);

    assert_eq!(
        fleet.claim(&[canister(4), canister(8), canister(9)], 11),
        Err(FleetError::UnknownChildren {
            canister_ids: vec![canister(8), canister(9)],
            total: 2,
        })
    );
    assert_eq!(fleet.claim_of(&canister(4)), None);

    // Releasing frees only the children the rollout holds.
    assert_eq!(
        fleet.release_claim(&[canister(1), canister(3), canister(8)], 10),
        1
    );
    assert_eq!(fleet.release_claim(&[canister(2)], 11), 0);
    fleet.claim(&[canister(1), canister(3)], 11).unwrap();
    let holders: Vec<Option<u64>> = (1..=4).map(|n| fleet.claim_of(&canister(n))).collect();
    assert_eq!(holders, [Some(11), Some(10), Some(11), None]);
    assert_eq!(fleet.info(&canister(2)).unwrap().rollout_id, Some(10));
}

#[test]
fn long_error_lists_are_cut_and_counted() {
    let mut fleet = empty_fleet();
    let strangers: Vec<Principal> = (0..MAX_LISTED_CHILDREN as u64 + 5).map(canister).collect();

    let Err(FleetError::UnknownChildren {
        canister_ids,
        total,
    }) = fleet.claim(&strangers, 1)
    else {
        panic!("strangers cannot be claimed");
    };

    assert_eq!(canister_ids, strangers[..MAX_LISTED_CHILDREN]);
    assert_eq!(total, MAX_LISTED_CHILDREN as u64 + 5);
    let message = FleetError::UnknownChildren {
        canister_ids,
        total,
    }
    .message();
    assert!(message.ends_with("and 5 more): adopt them first or leave them out"));
}

#[test]
fn list_pages_follow_child_id_bytes_and_resume_at_next() {
    let mut fleet = empty_fleet();
    // Principal's own order compares lengths first; listing follows the bytes.
    let short = Principal::from_slice(&[9]);
    let long = Principal::from_slice(&[1, 5]);
    for (canister_id, module) in [(short, V1), (long, V1)] {
        fleet
            .adopt(canister_id, subnet(1), Some(module), &[], 0, admin())
            .unwrap();
    }
    for n in 1..=3 {
        adopt(&mut fleet, n, &[]);
    }
    let mut expected = vec![short, long, canister(1), canister(2), canister(3)];
    expected.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
    assert_eq!(expected[0], canister(1));
    assert!(expected.iter().position(|p| *p == long) < expected.iter().position(|p| *p == short));

    let first = fleet
        .list(&ListChildrenArg {
            limit: Some(2),
            ..ListChildrenArg::default()
        })
        .unwrap();
    let ids: Vec<Principal> = first.children.iter().map(|c| c.canister_id).collect();
    assert_eq!(ids, expected[..2]);
    assert_eq!(first.next, Some(expected[2]));

    let rest = fleet
        .list(&ListChildrenArg {
            from: first.next,
            limit: Some(10),
            ..ListChildrenArg::default()
        })
        .unwrap();
    let ids: Vec<Principal> = rest.children.iter().map(|c| c.canister_id).collect();
    assert_eq!(ids, expected[2..]);
    assert_eq!(rest.next, None);
    assert_eq!(list_all_ids(&fleet, by_module(V1)), expected);
}

#[test]
fn page_limits_are_clamped() {
    let mut fleet = empty_fleet();
    for n in 0..MAX_CHILD_PAGE as u64 + 1 {
        fleet
            .adopt(canister(n), subnet(1), None, &[], 0, admin())
            .unwrap();
    }
    let page = |limit| {
        fleet
            .list(&ListChildrenArg {
                limit,
                ..ListChildrenArg::default()
            })
            .unwrap()
    };
    assert_eq!(page(Some(0)).children.len(), 1);
    assert_eq!(page(None).children.len(), MAX_CHILD_PAGE as usize);
    let over = page(Some(u32::MAX));
    assert_eq!(over.children.len(), MAX_CHILD_PAGE as usize);
    assert_eq!(over.next, Some(canister(MAX_CHILD_PAGE as u64)));
    let ids = fleet.list_ids(&ListChildrenArg::default()).unwrap();
    assert_eq!(ids.canister_ids.len(), MAX_CHILD_PAGE as usize + 1);
    assert_eq!(ids.next, None);
}

#[test]
fn filters_combine_labels_and_module_hash() {
    let mut fleet = empty_fleet();
    // n: tier by n % 2, region by n % 3, module by n % 4 == 0.
    for n in 0..24u64 {
        let tier = ["free", "gold"][(n % 2) as usize];
        let region = ["eu", "us", "ap"][(n % 3) as usize];
        let module = if n.is_multiple_of(4) { V2 } else { V1 };
        fleet
            .adopt(
                canister(n),
                subnet(1),
                Some(module),
                &labels(&[("tier", tier), ("region", region)]),
                0,
                admin(),
            )
            .unwrap();
    }
    let expect = |keep: fn(u64) -> bool| -> Vec<Principal> {
        (0..24).filter(|n| keep(*n)).map(canister).collect()
    };

    assert_eq!(
        list_all_ids(&fleet, by_labels(&[("tier", "gold")])),
        expect(|n| n % 2 == 1)
    );
    assert_eq!(
        list_all_ids(&fleet, by_labels(&[("tier", "gold"), ("region", "us")])),
        expect(|n| n % 2 == 1 && n % 3 == 1)
    );
    assert_eq!(
        list_all_ids(&fleet, by_module(V2)),
        expect(|n| n.is_multiple_of(4))
    );
    let both = ListChildrenArg {
        labels: labels(&[("region", "eu")]),
        module_hash: Some(ByteBuf::from(V2.0.to_vec())),
        limit: Some(1),
        from: None,
    };
    assert_eq!(list_all_ids(&fleet, both), expect(|n| n.is_multiple_of(12)));
    assert_eq!(
        list_all_ids(&fleet, by_labels(&[("tier", "gold"), ("region", "mars")])),
        vec![]
    );
    assert_eq!(
        fleet.list(&ListChildrenArg {
            module_hash: Some(ByteBuf::from(vec![0; 31])),
            ..ListChildrenArg::default()
        }),
        Err(FleetError::InvalidModuleHash { length: 31 })
    );
}

#[test]
fn a_scan_cut_by_its_touch_limit_resumes_without_losing_matches() {
    let mut fleet = empty_fleet();
    // Two interleaved lists that meet every sixth child: a costly intersection.
    for n in 0..60u64 {
        let even = if n.is_multiple_of(2) { "yes" } else { "no" };
        let third = if n.is_multiple_of(3) { "yes" } else { "no" };
        fleet
            .adopt(
                canister(n),
                subnet(1),
                None,
                &labels(&[("even", even), ("third", third)]),
                0,
                admin(),
            )
            .unwrap();
    }
    let postings = vec![
        Posting::Prefix(label_prefix("even", "yes")),
        Posting::Prefix(label_prefix("third", "yes")),
    ];
    let touch_limit = 4;
    let mut found = Vec::new();
    let mut from = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let mut matches = Matches::new(&fleet.children, &fleet.index, postings.clone(), from);
        let resume = loop {
            match matches.step(touch_limit) {
                Scan::Match(id) => found.push(canister_id(&id)),
                Scan::Cut { resume } => break Some(resume),
                Scan::Exhausted => break None,
            }
        };
        assert!(matches.touched() <= touch_limit + 1);
        match resume {
            Some(resume) => from = Some(resume),
            None => break,
        }
    }
    let expected: Vec<Principal> = (0..60u64)
        .filter(|n| n.is_multiple_of(6))
        .map(canister)
        .collect();
    assert_eq!(found, expected);
    assert!(
        pages > expected.len(),
        "the limit cut the scan {pages} times"
    );
}

/// Issue 19: a rollout reads its selection a slice per message; labels whose lists never meet
/// (two dense lists interleaved) are read within the scan budget per slice, not in one pass
/// over both lists, and the selection still ends, empty.
#[test]
fn a_selection_by_labels_that_never_meet_is_read_within_the_scan_budget_per_slice() {
    let mut fleet = empty_fleet();
    let children = 3 * SCAN_BUDGET;
    for n in 0..children {
        let label = if n.is_multiple_of(2) {
            ("side", "left")
        } else {
            ("hand", "right")
        };
        // Adopted without `adopt`'s check of the whole index after each child.
        fleet
            .adopt(
                canister(n),
                subnet(1),
                Some(V1),
                &labels(&[label]),
                n,
                admin(),
            )
            .unwrap();
    }
    assert_indexes_agree(&fleet);
    let selector = Selector::Labels(labels(&[("side", "left"), ("hand", "right")]));
    let mut selection = fleet.selection(selector.clone()).unwrap();
    let mut slices = 0;
    while !selection.is_done() {
        assert!(fleet.select_some(&mut selection, 500).is_empty());
        slices += 1;
    }
    // About one index entry read per child, SCAN_BUDGET a slice.
    assert!((3..=4).contains(&slices), "{slices} slices");
    assert_eq!(fleet.select(&selector).unwrap(), vec![]);
    // A slice cut by the budget goes on where it stopped: every match is read once.
    let selector = Selector::Labels(labels(&[("side", "left")]));
    assert_eq!(fleet.select(&selector).unwrap().len() as u64, children / 2);
}

#[test]
fn select_yields_children_by_selector() {
    let mut fleet = empty_fleet();
    for n in 1..=5u64 {
        let tier = if n.is_multiple_of(2) { "gold" } else { "free" };
        adopt(&mut fleet, n, &[("tier", tier)]);
    }
    let selected = |selector: Selector| -> Vec<Principal> {
        fleet
            .select(&selector)
            .unwrap()
            .into_iter()
            .map(|(canister_id, record)| {
                assert_eq!(Some(record), fleet.get(&canister_id));
                canister_id
            })
            .collect()
    };

    assert_eq!(
        selected(Selector::All),
        (1..=5).map(canister).collect::<Vec<_>>()
    );
    assert_eq!(
        selected(Selector::Labels(labels(&[("tier", "gold")]))),
        [canister(2), canister(4)]
    );
    // An explicit selection keeps its order: it may put canaries first.
    assert_eq!(
        selected(Selector::Explicit(vec![canister(5), canister(1)])),
        [canister(5), canister(1)]
    );
}

#[test]
fn an_explicit_selection_must_name_adopted_children_once() {
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[]);

    assert_eq!(
        fleet
            .select(&Selector::Explicit(vec![
                canister(1),
                canister(7),
                canister(8)
            ]))
            .err(),
        Some(FleetError::UnknownChildren {
            canister_ids: vec![canister(7), canister(8)],
            total: 2,
        })
    );
    assert_eq!(
        fleet
            .select(&Selector::Explicit(vec![
                canister(1),
                canister(7),
                canister(1)
            ]))
            .err(),
        Some(FleetError::RepeatedChildren {
            canister_ids: vec![canister(1)],
            total: 1,
        })
    );
}

#[test]
fn error_messages_say_what_to_do_next() {
    let cases = [
        (
            FleetError::AlreadyAdopted {
                canister_id: canister(1),
                adopted_at: 5,
                adopted_by: admin(),
            },
            "change its labels with set_labels",
        ),
        (
            FleetError::ClaimConflict {
                conflicts: vec![ChildClaim {
                    canister_id: canister(1),
                    rollout_id: 3,
                }],
                total: 1,
            },
            "by rollout 3): wait for those rollouts to end or abort them",
        ),
        (
            FleetError::SnapshotLimit {
                canister_id: canister(1),
                max: 10,
            },
            "forget the snapshot that was replaced or deleted",
        ),
    ];
    for (error, remedy) in cases {
        assert!(error.message().contains(remedy), "{}", error.message());
    }
}

/// The persisted encodings: changing any of these bytes is a schema change.
#[test]
fn stored_bytes_are_pinned() {
    let child = child_id(&Principal::from_slice(&[0xab, 0xcd]));
    assert_eq!(child.to_bytes().as_ref(), [0xab, 0xcd]);
    // Label entry: tag 0, then SHA-256(01 'k' 02 'v' 'v') cut to 16 bytes.
    assert_eq!(
        hex(IndexKey::new(&label_prefix("k", "vv"), &child).as_bytes()),
        format!("00{}abcd", &hex(&crate::hash::sha256(b"\x01k\x02vv"))[..32])
    );
    assert_eq!(
        hex(&label_prefix("k", "vv")),
        "00762aac46bb2ab397d95936e26a15339e"
    );
    // Module entry: tag 1, then the module hash cut to 16 bytes.
    let mut module_entry = vec![0x01];
    module_entry.extend([7; 16]);
    module_entry.extend([0xab, 0xcd]);
    assert_eq!(
        IndexKey::new(&module_prefix(&ModuleHash([7; 32])), &child).as_bytes(),
        module_entry
    );

    let record = ChildRecord {
        subnet: SubnetIndex(1),
        labels: [("k".to_owned(), "v".to_owned())].into_iter().collect(),
        module_hash: Some(ModuleHash([7; 32])),
        adopted_at: 2,
        adopted_by: Principal::from_slice(&[3]),
        last_checked_at: 4,
        snapshots: vec![SnapshotId(vec![5])],
    };
    assert_eq!(
        hex(&crate::cbor::CborBytes::encode(&record).into_bytes()),
        GOLDEN_RECORD_CBOR,
        "the stored ChildRecord encoding changed"
    );
}

/// `{subnet: 1, labels: {"k": "v"}, module_hash: h'07..07', adopted_at: 2, adopted_by: h'03',
/// last_checked_at: 4, snapshots: [h'05']}`: field names as text, byte strings
/// for hashes, principals and snapshot ids, the subnet index as a plain integer.
const GOLDEN_RECORD_CBOR: &str = concat!(
    "a7667375626e657401666c6162656c73a1616b61766b6d6f64756c655f68617368",
    "5820",
    "0707070707070707070707070707070707070707070707070707070707070707",
    "6a61646f707465645f6174026a61646f707465645f627941036f6c6173745f636865636b65645f6174",
    "0469736e617073686f7473814105",
);

fn hex(bytes: &[u8]) -> String {
    crate::hash::hex(bytes)
}

#[test]
fn the_fleet_is_counted_by_subnet_and_module_as_it_changes() {
    let mut fleet = empty_fleet();
    for n in 0..6 {
        let module = [Some(V1), Some(V2), None][n as usize % 3];
        fleet
            .adopt(
                canister(n),
                subnet(1 + (n % 2) as u8),
                module,
                &[],
                n,
                admin(),
            )
            .unwrap();
    }
    let composition = fleet.composition();
    assert_eq!(composition.by_subnet, vec![(subnet(1), 3), (subnet(2), 3)]);
    assert_eq!(
        composition.by_module,
        vec![(Some(V1), 2), (Some(V2), 2), (None, 2)]
    );
    // Upgraded, released, claimed: the counts follow, and a module no child runs is gone.
    for n in [0, 3] {
        fleet
            .record_child_end(&canister(n), Some(Some(V2)), vec![], 10)
            .unwrap();
    }
    fleet.release(&canister(2)).unwrap();
    fleet.claim(&[canister(1), canister(4)], 7).unwrap();
    let composition = fleet.composition();
    assert_eq!(composition.children, 5);
    assert_eq!(composition.claimed, 2);
    assert_eq!(composition.by_module, vec![(Some(V2), 4), (None, 1)]);
    assert_eq!(composition.by_subnet, vec![(subnet(1), 2), (subnet(2), 3)]);
    assert_indexes_agree(&fleet);
}

#[test]
fn a_registry_without_counts_is_counted_when_opened_and_not_again() {
    let [children, index, subnets, composition]: [VectorMemory; 4] = Default::default();
    let memories = || FleetMemories {
        children: children.clone(),
        index: index.clone(),
        subnets: subnets.clone(),
        composition: composition.clone(),
    };
    let mut fleet = Fleet::init(memories());
    for n in 0..5 {
        adopt(&mut fleet, n, &[]);
    }
    let counted = fleet.composition();
    // Release 0.1 kept no counts: its children are counted when this build opens them.
    let without_counts = Fleet::init(FleetMemories {
        composition: VectorMemory::default(),
        ..memories()
    });
    assert_eq!(without_counts.composition(), counted);
    assert_indexes_agree(&without_counts);
    // Counts present are read, never recounted: a child removed behind the registry's back
    // is still counted when it is reopened.
    let mut raw: Children<VectorMemory> = StableBTreeMap::init(children.clone());
    raw.remove(&child_id(&canister(0)));
    let reopened = Fleet::init(memories());
    assert_eq!(reopened.composition().by_subnet, counted.by_subnet);
}

/// The count slots are stored (memory 22): their bytes are a contract with the next build.
#[test]
fn count_slots_keep_their_bytes() {
    use super::composition::{Counted, Slot};
    let slot = |counted, count| Slot { counted, count };
    let padded = |head: &[u8], count: u64| {
        let mut bytes = head.to_vec();
        bytes.resize(33, 0);
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes
    };
    let cases = [
        (slot(Counted::Complete, 0), padded(&[0], 0)),
        (
            slot(Counted::Subnet(SubnetIndex(258)), 7),
            padded(&[1, 0, 0, 1, 2], 7),
        ),
        (
            slot(Counted::Module(V2), 1 << 40),
            [vec![2], vec![2; 32], (1u64 << 40).to_be_bytes().to_vec()].concat(),
        ),
        (slot(Counted::NoModule, 3), padded(&[3], 3)),
    ];
    for (slot, bytes) in cases {
        assert_eq!(slot.to_bytes().as_ref(), bytes.as_slice());
        assert_eq!(Slot::from_bytes(bytes.into()), slot);
    }
    // Slot 0 marks the counts complete; each thing counted takes the next slot, kept at zero.
    let mut fleet = empty_fleet();
    adopt(&mut fleet, 1, &[]);
    fleet.release(&canister(1)).unwrap();
    assert_eq!(
        fleet.composition.stored_slots(),
        [
            slot(Counted::Complete, 0),
            slot(Counted::Subnet(SubnetIndex(0)), 0),
            slot(Counted::Module(V1), 0),
        ]
    );
    assert_eq!(
        fleet.composition(),
        FleetComposition {
            children: 0,
            claimed: 0,
            by_subnet: vec![],
            by_module: vec![]
        }
    );
}
