//! Planning a rollout: the release as the engine installs it, from the release store, and the
//! selected children, from the fleet registry, in rollout order, with the policy.

use std::collections::{BTreeMap, BTreeSet};

use candid::Principal;
use ic_stable_structures::Memory;

use super::gates::{self, KnownRelease};
use super::{fleet_error, RestoreChildArg, Rollouts, StartBackupRunArg, StartRolloutArg};
use crate::engine::{
    BackupRun, ChildSpec, Delivery, FailureBudget, InstallOptions, ModuleHash, Nanos, OnFailure,
    Operation, Plan, Policy, RestoreRun, Rollout, SnapshotId, TargetRelease, WasmMemoryPersistence,
};
use crate::error::{Error, ErrorKind};
use crate::fleet::{self, ChildRecord, Fleet};
use crate::governance::{self, RolloutPreview};
use crate::hash::sha256;
use crate::release_store::ReleaseStore;
use crate::releases::ReleaseModule;
use crate::uploads::parse_sha256;
use serde_bytes::ByteBuf;

/// The largest module installed with a single `install_code`: a larger one (or one of several
/// chunks) goes through a chunk store, so that no message approaches the 2 MiB limit.
pub const MAX_INLINE_MODULE_BYTES: u64 = 1_900 * 1024;

impl<M: Memory> Rollouts<M> {
    /// Plans a rollout of the selected children: the release, how its module reaches them
    /// (refused when it needs a chunk store a subnet lacks), the children in rollout order and
    /// the policy. Returns the plan and the children it names, in order.
    pub(super) fn plan(
        &self,
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: StartRolloutArg,
        own_subnet: Principal,
    ) -> Result<(Plan, Vec<Principal>), Error> {
        let pinned = match &arg.plan_sha256 {
            Some(hash) => Some(parse_sha256(hash)?),
            None => None,
        };
        let policy = arg
            .policy
            .unwrap_or_default()
            .into_policy()
            .map_err(|reason| ErrorKind::InvalidRolloutPlan { reason })?;
        let release = release_store.release_module(&arg.release)?;
        let selected: Vec<_> = fleet.select(&arg.selector).map_err(fleet_error)?.collect();
        check_memory_persistence(
            policy.install.wasm_memory_persistence,
            &release,
            selected
                .iter()
                .map(|(canister_id, record)| (*canister_id, record.module_hash)),
            |module| {
                release_store
                    .module_by_sha256(&module.0)
                    .ok()
                    .and_then(|running| running.enhanced_orthogonal_persistence)
            },
        )?;
        let known = |module: &ModuleHash| {
            let record = release_store.release_record(&module.0).ok()?;
            Some(KnownRelease {
                name: record.name,
                version: record.version,
                candid_service: record.candid_service,
            })
        };
        let release_hash = ModuleHash(release.sha256);
        let target = known(&release_hash).expect("a committed release is a release");
        gates::check_gates(
            (&release_hash, &target),
            selected
                .iter()
                .map(|(canister_id, record)| (*canister_id, record.module_hash)),
            known,
            policy.gate_overrides.as_deref().unwrap_or_default(),
        )?;
        let selected = in_rollout_order(&arg.selector, selected);
        // Each subnet looked up once, not once per child.
        let subnets: BTreeSet<_> = selected.iter().map(|(_, record)| record.subnet).collect();
        let without_store = subnets
            .into_iter()
            .map(|subnet| fleet.subnet(subnet).expect("a child's subnet is numbered"))
            .find(|&subnet| self.store_for(subnet, own_subnet).is_none());
        let delivery = delivery_of(&release, without_store.is_none());
        if let (Delivery::ChunkStore, Some(subnet)) = (delivery, without_store) {
            return Err(ErrorKind::NoChunkStore { subnet }.into());
        }
        let plan = Plan {
            operation: Operation::Upgrade(TargetRelease {
                module_hash: ModuleHash(release.sha256),
                delivery,
            }),
            children: specs(&selected),
            policy,
        };
        if let Some(expected) = pinned {
            let actual = governance::plan_sha256(&plan);
            if actual != expected {
                return Err(ErrorKind::PlanChanged {
                    expected: ByteBuf::from(expected.to_vec()),
                    actual: ByteBuf::from(actual.to_vec()),
                }
                .into());
            }
        }
        let children = selected.into_iter().map(|(id, _)| id).collect();
        Ok((plan, children))
    }

    /// What the rollout `arg` asks for would do if started now, and the hash that pins its plan
    /// (`arg.plan_sha256` is checked as `start` checks it).
    pub fn preview(
        &self,
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: StartRolloutArg,
        own_subnet: Principal,
        now: Nanos,
    ) -> Result<RolloutPreview, Error> {
        let release = release_store.get_release(&arg.release)?.summary;
        let (plan, _) = self.plan(fleet, release_store, arg, own_subnet)?;
        let plan_sha256 = governance::plan_sha256(&plan);
        let release_blessing = plan
            .operation
            .release()
            .and_then(|target| release_store.blessing(&target.module_hash.0));
        let from =
            governance::targets_by_module(&plan, |module| release_store.release_name(&module.0));
        let selected = plan.children.len() as u32;
        let mut policy = plan.policy.clone();
        let install_arg = std::mem::take(&mut policy.install.arg);
        let engine = Rollout::new(plan, now).map_err(|error| ErrorKind::InvalidRolloutPlan {
            reason: error.to_string(),
        })?;
        let summary = engine.summary();
        Ok(RolloutPreview {
            release_name: release.name,
            release_version: release.version,
            module_sha256: release.sha256,
            module_size: release.size,
            chunk_count: release.chunk_count,
            install_arg_sha256: ByteBuf::from(sha256(&install_arg).to_vec()),
            install_arg_size: install_arg.len() as u64,
            targets: selected - summary.counts.skipped,
            skipped: summary.counts.skipped,
            from,
            wave_sizes: summary.waves.iter().map(|wave| wave.size).collect(),
            policy,
            plan_sha256: ByteBuf::from(plan_sha256.to_vec()),
            release_blessing,
        })
    }
}

/// Plans a backup run: the selected children in rollout order, each to be snapshotted.
pub(super) fn plan_backup<M: Memory>(
    fleet: &Fleet<M>,
    arg: StartBackupRunArg,
) -> Result<(Plan, Vec<Principal>), Error> {
    let mut policy = arg
        .policy
        .unwrap_or_default()
        .into_policy()
        .map_err(|reason| ErrorKind::InvalidRolloutPlan { reason })?;
    if policy.install != InstallOptions::default() {
        return Err(ErrorKind::InvalidRolloutPlan {
            reason: "a backup run installs nothing: leave the policy's install options out".into(),
        }
        .into());
    }
    policy.snapshot_before_install = true;
    let selected: Vec<_> = fleet.select(&arg.selector).map_err(fleet_error)?.collect();
    let selected = in_rollout_order(&arg.selector, selected);
    let plan = Plan {
        operation: Operation::Backup(BackupRun {
            stop_children: arg.stop_children,
        }),
        children: specs(&selected),
        policy,
    };
    Ok((plan, selected.into_iter().map(|(id, _)| id).collect()))
}

/// The longest snapshot id a restore takes: the IC's are a canister id and a 64-bit number.
pub const MAX_SNAPSHOT_ID_BYTES: usize = 64;

/// Plans a restore: the child, to load the chosen snapshot, with the default policy's retries.
pub(super) fn plan_restore<M: Memory>(
    fleet: &Fleet<M>,
    arg: RestoreChildArg,
) -> Result<(Plan, Vec<Principal>), Error> {
    if arg.snapshot_id.is_empty() || arg.snapshot_id.len() > MAX_SNAPSHOT_ID_BYTES {
        return Err(ErrorKind::InvalidRolloutPlan {
            reason: format!(
                "a snapshot id of {} bytes: pass the id list_canister_snapshots gives (at most \
                 {MAX_SNAPSHOT_ID_BYTES} bytes)",
                arg.snapshot_id.len()
            ),
        }
        .into());
    }
    let selector = fleet::Selector::Explicit(vec![arg.canister_id]);
    let selected: Vec<_> = fleet.select(&selector).map_err(fleet_error)?.collect();
    let plan = Plan {
        operation: Operation::Restore(RestoreRun {
            snapshot: SnapshotId(arg.snapshot_id.into_vec()),
        }),
        children: specs(&selected),
        policy: Policy {
            // No snapshot is taken: the restore loads one.
            snapshot_before_install: false,
            on_failure: OnFailure::LeaveStopped,
            // One child: a failed restore completes the rollout with its verdict, rather than
            // pausing it with nothing left to resume.
            failure_budget: FailureBudget::Percent(100),
            ..Policy::default()
        },
    };
    Ok((plan, selected.into_iter().map(|(id, _)| id).collect()))
}

/// The operator's order for an explicit selection; otherwise the subnets interleaved.
fn in_rollout_order(
    selector: &fleet::Selector,
    selected: Vec<(Principal, ChildRecord)>,
) -> Vec<(Principal, ChildRecord)> {
    match selector {
        fleet::Selector::Explicit(_) => selected,
        _ => interleave_subnets(selected, |(_, record)| record.subnet),
    }
}

/// What the engine is told of each selected child.
fn specs(selected: &[(Principal, ChildRecord)]) -> Vec<ChildSpec> {
    selected
        .iter()
        .map(|(canister_id, record)| {
            record.spec(fleet::child_id(canister_id), record.snapshots.clone())
        })
        .collect()
}

/// IC interface specification, "IC method `install_code`": `opt keep` needs a new module that
/// exports the private section `enhanced-orthogonal-persistence`, and a child whose module
/// exports it cannot be upgraded with the option null. Refused at planning, before any child is
/// stopped, rather than by every child's install. What is not known passes: a release 0.1
/// committed without looking, or a child running a module that is not a release (the IC
/// decides at its install, and the child is rolled back). `marked` tells whether a module is
/// marked, looked up once per distinct module.
pub(super) fn check_memory_persistence(
    persistence: Option<WasmMemoryPersistence>,
    release: &ReleaseModule,
    children: impl IntoIterator<Item = (Principal, Option<ModuleHash>)>,
    marked: impl Fn(&ModuleHash) -> Option<bool>,
) -> Result<(), ErrorKind> {
    let release_hash = ModuleHash(release.sha256);
    let refuse = |reason: String| Err(ErrorKind::InvalidRolloutPlan { reason });
    match persistence {
        Some(WasmMemoryPersistence::Keep)
            if release.enhanced_orthogonal_persistence == Some(false) =>
        {
            refuse(format!(
                "wasm_memory_persistence Keep needs a module with enhanced orthogonal persistence \
                 (the private custom section enhanced-orthogonal-persistence), and release \
                 {release_hash} has none: choose Replace, or no wasm_memory_persistence"
            ))
        }
        Some(_) => Ok(()),
        None => {
            let mut known: BTreeMap<ModuleHash, Option<bool>> = BTreeMap::new();
            for (child, module) in children {
                // A child already on the release is skipped, not installed.
                let Some(module) = module.filter(|module| *module != release_hash) else {
                    continue;
                };
                if *known.entry(module).or_insert_with(|| marked(&module)) == Some(true) {
                    return refuse(format!(
                        "child {child} runs release {module}, which has enhanced orthogonal \
                         persistence: the IC refuses its upgrade without wasm_memory_persistence; \
                         choose Keep to keep its Wasm memory, or Replace to start it afresh"
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Takes the children one subnet after another (round robin), keeping each subnet's order, so
/// that every wave, and every batch the concurrency admits, spreads over the subnets: each
/// subnet runs its own management messages (snapshots, installs) in parallel with the others.
pub(super) fn interleave_subnets<T, K: Ord + Copy>(
    items: Vec<T>,
    subnet: impl Fn(&T) -> K,
) -> Vec<T> {
    let mut queues: BTreeMap<K, std::collections::VecDeque<T>> = BTreeMap::new();
    for item in items {
        queues.entry(subnet(&item)).or_default().push_back(item);
    }
    let mut interleaved = Vec::new();
    while !queues.is_empty() {
        queues.retain(|_, queue| {
            interleaved.extend(queue.pop_front());
            !queue.is_empty()
        });
    }
    interleaved
}

/// Through the chunk stores whenever every child's subnet has one: the module then crosses
/// once per subnet, and each install carries only chunk hashes (an inline install copies the
/// whole module into every message, which costs the deployer instructions and the subnets
/// bandwidth per child). Without stores, small single-chunk modules travel inline; larger ones
/// need the stores.
pub fn delivery_of(release: &ReleaseModule, stores_everywhere: bool) -> Delivery {
    let fits_inline = release.chunk_sha256.len() == 1 && release.size <= MAX_INLINE_MODULE_BYTES;
    if fits_inline && !stores_everywhere {
        Delivery::InstallCode
    } else {
        Delivery::ChunkStore
    }
}
