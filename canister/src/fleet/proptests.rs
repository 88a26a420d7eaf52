//! Property test: the registry against a `BTreeMap` model under random sequences of adoptions,
//! label changes, module observations, releases, claims and claim releases. After every
//! operation the results must agree, the secondary index must equal what a full scan of the
//! children implies, and filtered listings must equal the model's filter. Child ids of several
//! lengths, some prefixes of others, exercise the byte order the index relies on.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::tests::{admin, assert_indexes_agree, empty_fleet, list_all_ids, subnet};
use super::*;

const KEYS: [&str; 3] = ["tier", "region", "shard"];
const VALUES: [&str; 3] = ["a", "b", ""];
const MODULES: [ModuleHash; 3] = [
    ModuleHash([1; 32]),
    ModuleHash([2; 32]),
    ModuleHash([3; 32]),
];
const CHILDREN: u8 = 12;

/// Child `n`: bytes `[n / 3]` repeated `1 + n % 3` times, so `[0]` is a prefix of `[0, 0]`.
fn child(n: u8) -> Principal {
    Principal::from_slice(&vec![n / 3; 1 + usize::from(n % 3)])
}

type LabelPicks = Vec<(usize, usize)>;

#[derive(Clone, Debug)]
enum RegistryOp {
    Adopt {
        child: u8,
        subnet: u8,
        module: Option<usize>,
        labels: LabelPicks,
    },
    SetLabels {
        child: u8,
        labels: LabelPicks,
    },
    RemoveLabel {
        child: u8,
        key: usize,
    },
    Release {
        child: u8,
    },
    RecordModule {
        child: u8,
        module: Option<usize>,
    },
    Claim {
        children: Vec<u8>,
        rollout: u64,
    },
    ReleaseClaim {
        children: Vec<u8>,
        rollout: u64,
    },
    EndClaims {
        rollout: u64,
    },
    SweepClaims {
        children: Vec<u8>,
        rollout: u64,
    },
}

fn label_picks() -> impl Strategy<Value = LabelPicks> {
    prop::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..4)
}

fn op() -> impl Strategy<Value = RegistryOp> {
    let child = 0..CHILDREN;
    let module = prop::option::of(0..MODULES.len());
    let children = prop::collection::vec(0..CHILDREN, 0..5);
    prop_oneof![
        6 => (child.clone(), 0..3u8, module.clone(), label_picks())
            .prop_map(|(child, subnet, module, labels)| RegistryOp::Adopt { child, subnet, module, labels }),
        3 => (child.clone(), label_picks()).prop_map(|(child, labels)| RegistryOp::SetLabels { child, labels }),
        2 => (child.clone(), 0..KEYS.len()).prop_map(|(child, key)| RegistryOp::RemoveLabel { child, key }),
        2 => child.clone().prop_map(|child| RegistryOp::Release { child }),
        2 => (child, module).prop_map(|(child, module)| RegistryOp::RecordModule { child, module }),
        2 => (children.clone(), 1..4u64).prop_map(|(children, rollout)| RegistryOp::Claim { children, rollout }),
        2 => (children.clone(), 1..4u64).prop_map(|(children, rollout)| RegistryOp::ReleaseClaim { children, rollout }),
        1 => (1..4u64).prop_map(|rollout| RegistryOp::EndClaims { rollout }),
        2 => (children, 1..4u64).prop_map(|(children, rollout)| RegistryOp::SweepClaims { children, rollout }),
    ]
}

#[derive(Clone, Debug)]
struct ModelChild {
    subnet: Principal,
    labels: Labels,
    module: Option<ModuleHash>,
    adopted_at: Nanos,
    rollout: Option<u64>,
}

/// Children by id bytes: the registry's listing order.
#[derive(Default)]
struct Model {
    children: BTreeMap<Vec<u8>, ModelChild>,
}

/// Labels as a request names them; the model's own validation mirrors the registry's.
fn to_labels(picks: &LabelPicks) -> Vec<Label> {
    picks
        .iter()
        .map(|&(key, value)| Label::new(KEYS[key], VALUES[value]))
        .collect()
}

fn model_validate(picks: &LabelPicks) -> Result<Labels, FleetError> {
    let mut labels = Labels::new();
    for &(key, value) in picks {
        if labels
            .insert(KEYS[key].into(), VALUES[value].into())
            .is_some()
        {
            return Err(FleetError::RepeatedLabelKey {
                key: KEYS[key].into(),
            });
        }
    }
    Ok(labels)
}

/// What an operation returns, for comparison: every operation's `Ok` value as a number.
type RegistryOutcome = Result<u64, FleetError>;

impl Model {
    fn apply(&mut self, op: &RegistryOp, now: Nanos) -> RegistryOutcome {
        match op {
            RegistryOp::Adopt {
                child: n,
                subnet: s,
                module,
                labels,
            } => {
                let labels = model_validate(labels)?;
                let id = child(*n);
                if let Some(existing) = self.children.get(id.as_slice()) {
                    return Err(FleetError::AlreadyAdopted {
                        canister_id: id,
                        adopted_at: existing.adopted_at,
                        adopted_by: admin(),
                    });
                }
                self.children.insert(
                    id.as_slice().to_vec(),
                    ModelChild {
                        subnet: subnet(*s),
                        labels,
                        module: module.map(|m| MODULES[m]),
                        adopted_at: now,
                        rollout: None,
                    },
                );
                Ok(0)
            }
            RegistryOp::SetLabels { child: n, labels } => {
                let labels = model_validate(labels)?;
                let stored = self.known(*n)?;
                stored.labels.extend(labels);
                Ok(0)
            }
            RegistryOp::RemoveLabel { child: n, key } => {
                let stored = self.known(*n)?;
                Ok(stored.labels.remove(KEYS[*key]).is_some().into())
            }
            RegistryOp::Release { child: n } => {
                let stored = self.known(*n)?;
                if let Some(rollout_id) = stored.rollout {
                    return Err(FleetError::Claimed {
                        canister_id: child(*n),
                        rollout_id,
                    });
                }
                self.children.remove(child(*n).as_slice());
                Ok(0)
            }
            RegistryOp::RecordModule { child: n, module } => {
                self.known(*n)?.module = module.map(|m| MODULES[m]);
                Ok(0)
            }
            RegistryOp::Claim { children, rollout } => {
                let unknown: Vec<Principal> = children
                    .iter()
                    .map(|n| child(*n))
                    .filter(|id| !self.children.contains_key(id.as_slice()))
                    .collect();
                if !unknown.is_empty() {
                    return Err(FleetError::UnknownChildren {
                        total: unknown.len() as u64,
                        canister_ids: unknown,
                    });
                }
                let conflicts: Vec<ChildClaim> = children
                    .iter()
                    .filter_map(|n| {
                        let holder = self.children[child(*n).as_slice()].rollout?;
                        (holder != *rollout).then(|| ChildClaim {
                            canister_id: child(*n),
                            rollout_id: holder,
                        })
                    })
                    .collect();
                if !conflicts.is_empty() {
                    return Err(FleetError::ClaimConflict {
                        total: conflicts.len() as u64,
                        conflicts,
                    });
                }
                for n in children {
                    self.known(*n)?.rollout = Some(*rollout);
                }
                Ok(0)
            }
            RegistryOp::ReleaseClaim { children, rollout } => {
                let mut freed = 0;
                for n in children {
                    if let Ok(stored) = self.known(*n) {
                        if stored.rollout == Some(*rollout) {
                            stored.rollout = None;
                            freed += 1;
                        }
                    }
                }
                Ok(freed)
            }
            RegistryOp::EndClaims { rollout } => {
                for stored in self.children.values_mut() {
                    if stored.rollout == Some(*rollout) {
                        stored.rollout = None;
                    }
                }
                Ok(0)
            }
            // Only entries of ended claims go: nothing a reader sees.
            RegistryOp::SweepClaims { .. } => Ok(0),
        }
    }

    fn known(&mut self, n: u8) -> Result<&mut ModelChild, FleetError> {
        self.children
            .get_mut(child(n).as_slice())
            .ok_or(FleetError::NotAdopted {
                canister_id: child(n),
            })
    }

    fn filtered(&self, labels: &Labels, module: Option<ModuleHash>) -> Vec<Principal> {
        self.children
            .iter()
            .filter(|(_, stored)| {
                labels
                    .iter()
                    .all(|(key, value)| stored.labels.get(key) == Some(value))
                    && module.is_none_or(|hash| stored.module == Some(hash))
            })
            .map(|(id, _)| Principal::from_slice(id))
            .collect()
    }
}

fn apply<M: Memory>(fleet: &mut Fleet<M>, op: &RegistryOp, now: Nanos) -> RegistryOutcome {
    match op {
        RegistryOp::Adopt {
            child: n,
            subnet: s,
            module,
            labels,
        } => fleet
            .adopt(
                child(*n),
                subnet(*s),
                module.map(|m| MODULES[m]),
                &to_labels(labels),
                now,
                admin(),
            )
            .map(|()| 0),
        RegistryOp::SetLabels { child: n, labels } => {
            fleet.set_labels(&child(*n), &to_labels(labels)).map(|()| 0)
        }
        RegistryOp::RemoveLabel { child: n, key } => {
            fleet.remove_label(&child(*n), KEYS[*key]).map(u64::from)
        }
        RegistryOp::Release { child: n } => fleet.release(&child(*n)).map(|_| 0),
        RegistryOp::RecordModule { child: n, module } => fleet
            .record_child_end(&child(*n), Some(module.map(|m| MODULES[m])), vec![], now)
            .map(|()| 0),
        RegistryOp::Claim { children, rollout } => {
            let ids: Vec<Principal> = children.iter().map(|n| child(*n)).collect();
            fleet.claim(&ids, *rollout).map(|()| 0)
        }
        RegistryOp::ReleaseClaim { children, rollout } => {
            let ids: Vec<Principal> = children.iter().map(|n| child(*n)).collect();
            Ok(fleet.release_claim(&ids, *rollout))
        }
        RegistryOp::EndClaims { rollout } => {
            fleet.end_claims(*rollout);
            Ok(0)
        }
        RegistryOp::SweepClaims { children, rollout } => {
            let ids: Vec<ChildId> = children.iter().map(|n| child_id(&child(*n))).collect();
            fleet.sweep_claims(&ids, *rollout);
            Ok(0)
        }
    }
}

fn assert_same_children<M: Memory>(fleet: &Fleet<M>, model: &Model) {
    assert_eq!(fleet.len(), model.children.len() as u64);
    for (id, expected) in &model.children {
        let record = fleet.get(&Principal::from_slice(id)).expect("adopted");
        assert_eq!(record.labels, expected.labels);
        assert_eq!(record.module_hash, expected.module);
        assert_eq!(fleet.claim_of(&Principal::from_slice(id)), expected.rollout);
        assert_eq!(fleet.subnet(record.subnet), Some(expected.subnet));
    }
    let claimed = model
        .children
        .values()
        .filter(|child| child.rollout.is_some());
    assert_eq!(fleet.composition().claimed, claimed.count() as u64);
}

/// Every filter of at most two labels, with and without each module, listed two at a time and
/// selected, against the model.
fn assert_filters_agree<M: Memory>(fleet: &Fleet<M>, model: &Model) {
    let singles = (0..KEYS.len()).flat_map(|key| (0..VALUES.len()).map(move |value| (key, value)));
    let mut filters: Vec<LabelPicks> = vec![vec![]];
    for (key, value) in singles {
        filters.push(vec![(key, value)]);
        for other_value in 0..VALUES.len() {
            filters.push(vec![(key, value), ((key + 1) % KEYS.len(), other_value)]);
        }
    }
    let modules = std::iter::once(None).chain(MODULES.iter().copied().map(Some));
    let modules: Vec<Option<ModuleHash>> = modules.collect();
    for picks in &filters {
        let labels = model_validate(picks).expect("filters name distinct keys");
        for module in &modules {
            let arg = ListChildrenArg {
                labels: to_labels(picks),
                module_hash: module.map(|hash| serde_bytes::ByteBuf::from(hash.0.to_vec())),
                from: None,
                limit: Some(2),
            };
            assert_eq!(
                list_all_ids(fleet, arg),
                model.filtered(&labels, *module),
                "filter {picks:?} {module:?}"
            );
        }
        let selected: Vec<Principal> = fleet
            .select(&Selector::Labels(to_labels(picks)))
            .unwrap()
            .into_iter()
            .map(|(canister_id, _)| canister_id)
            .collect();
        assert_eq!(selected, model.filtered(&labels, None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn registry_agrees_with_a_btreemap_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut fleet = empty_fleet();
        let mut model = Model::default();
        for (now, op) in ops.iter().enumerate() {
            let expected = model.apply(op, now as Nanos);
            let actual = apply(&mut fleet, op, now as Nanos);
            prop_assert_eq!(actual, expected, "op {}: {:?}", now, op);
            assert_indexes_agree(&fleet);
            assert_same_children(&fleet, &model);
        }
        assert_filters_agree(&fleet, &model);
    }
}
