//! Planning a rollout: the release as the engine installs it, from the release store, and the
//! selected children, from the fleet registry, in rollout order, with the policy. A start plans
//! [`PLAN_SLICE`] children per message ([`StartPlan`]), so that no message grows with the
//! selection. A preview (a query, as a proposal's validation is) plans the same way at once up
//! to [`PREVIEW_AT_ONCE`] children; `prepare_rollout` plans a larger selection a slice per
//! message, claiming nothing, and keeps its preview ([`Preparation`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use candid::Principal;
use ic_stable_structures::Memory;

use super::gates::{GateCheck, KnownRelease};
use super::{
    fleet_error, PolicyArg, RestoreChildArg, Rollouts, StartBackupRunArg, StartRolloutArg,
};
use crate::engine::{
    BackupRun, ChildSpec, Delivery, FailureBudget, InstallOptions, ModuleHash, Nanos, OnFailure,
    Operation, Plan, PlanError, Policy, RestoreRun, Rollout, RolloutBuilder, SnapshotId,
    SubnetIndex, TargetRelease, WasmMemoryPersistence,
};
use crate::error::{Error, ErrorKind};
use crate::fleet::{self, ChildRecord, ClaimConflicts, Fleet, SelectionReader, Selector};
use crate::governance::{self, PlanHasher, RolloutPreview};
use crate::hash::{sha256, Sha256Hash};
use crate::release_store::ReleaseStore;
use crate::releases::{Release, ReleaseModule, ReleaseSelector};
use crate::uploads::parse_sha256;
use serde_bytes::ByteBuf;

/// The largest module installed with a single `install_code`: a larger one (or one of several
/// chunks) goes through a chunk store, so that no message approaches the 2 MiB limit.
pub const MAX_INLINE_MODULE_BYTES: u64 = 1_900 * 1024;

/// Children a start reads from the registry (checks and claims), or plans (makes and stores),
/// per message: reading cost about 40 K instructions a child, planning about 35 K, so a message
/// stays near 20 M however many children are selected (starting 10,000 children in one message
/// cost 718 M, 100,000 cost 7.8 B).
pub const PLAN_SLICE: usize = 500;

/// A rollout being planned, a slice of children per step (see [`Rollouts::start_some`]): first
/// the selection is read from the registry, each child checked (gates, memory persistence),
/// claimed, and queued by subnet; then the children are taken from the queues in rollout order,
/// each made into the engine's child and hashed into the plan's hash. A preview plans the
/// same way, all at once, without claims.
pub struct StartPlan {
    /// The rollout's id, reserved, when the plan claims its children (a start).
    rollout_id: Option<u64>,
    pinned: Option<Sha256Hash>,
    goal: StartGoal,
    stage: PlanStage,
}

/// What a start asks for: a rollout of a release, or a backup run.
pub enum StartArg {
    Rollout(StartRolloutArg),
    Backup(StartBackupRunArg),
}

impl From<StartRolloutArg> for StartArg {
    fn from(arg: StartRolloutArg) -> Self {
        Self::Rollout(arg)
    }
}

impl From<StartBackupRunArg> for StartArg {
    fn from(arg: StartBackupRunArg) -> Self {
        Self::Backup(arg)
    }
}

/// What a start plans: an upgrade to a release, or a backup run (the engine's
/// [`Operation`] once planned).
enum StartGoal {
    Upgrade(ReleaseModule),
    Backup(BackupRun),
}

impl StartGoal {
    /// The module an upgrade installs.
    fn release_hash(&self) -> Option<ModuleHash> {
        match self {
            Self::Upgrade(release) => Some(ModuleHash(release.sha256)),
            Self::Backup(_) => None,
        }
    }

    /// Whether a child running `module_hash` is a target (see [`Operation::applies_to`]).
    fn targets(&self, module_hash: Option<ModuleHash>) -> bool {
        self.release_hash()
            .is_none_or(|release_hash| module_hash != Some(release_hash))
    }
}

enum PlanStage {
    Reading(Box<Reading>),
    Planning(Box<Planning>),
    /// Only while reading turns into planning, or after a refusal.
    Between,
}

struct Reading {
    policy: Policy,
    selection: SelectionReader,
    /// Checked for an upgrade only.
    gates: Option<GateCheck>,
    /// The first child the memory persistence check refused.
    persistence: Result<(), ErrorKind>,
    conflicts: ClaimConflicts,
    queues: SubnetQueues,
    subnets: BTreeSet<SubnetIndex>,
    targets: u32,
    from: BTreeMap<Option<ModuleHash>, u32>,
}

struct Planning {
    queues: SubnetQueues,
    hasher: PlanHasher,
    builder: RolloutBuilder,
    /// Whether the children are made into the engine's (a start), or only hashed and counted
    /// (a preview: building 100,000 children, then dropping them, is work it does not need).
    build: bool,
    children: Vec<Principal>,
    /// Children planned (in `children` when built).
    planned: u32,
    /// Children whose runs are stored (a start stores them as it plans).
    stored: usize,
    from: BTreeMap<Option<ModuleHash>, u32>,
}

/// The selected children queued by subnet, taken out one subnet after another (round robin),
/// keeping each subnet's order, so that every wave, and every batch the concurrency admits,
/// spreads over the subnets: each subnet runs its own management messages (snapshots,
/// installs) in parallel with the others. An explicit selection is one queue: the operator's
/// order.
struct SubnetQueues<K = SubnetIndex, T = (Principal, ChildSpec)> {
    queues: BTreeMap<K, VecDeque<T>>,
    /// The subnets still to give an item in this round.
    round: VecDeque<K>,
    len: usize,
}

impl<K: Ord + Copy, T> SubnetQueues<K, T> {
    fn new() -> Self {
        Self {
            queues: BTreeMap::new(),
            round: VecDeque::new(),
            len: 0,
        }
    }

    fn push(&mut self, subnet: K, item: T) {
        self.queues.entry(subnet).or_default().push_back(item);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<T> {
        if self.round.is_empty() {
            self.round = self.queues.keys().copied().collect();
        }
        let subnet = self.round.pop_front()?;
        let queue = self.queues.get_mut(&subnet).expect("a subnet of the round");
        let item = queue.pop_front().expect("a queue is dropped once empty");
        if queue.is_empty() {
            self.queues.remove(&subnet);
        }
        self.len -= 1;
        Some(item)
    }
}

/// What a start's plan made: the engine's rollout and its children's canister ids in rollout
/// order.
pub(super) struct Planned {
    pub(super) engine: Rollout,
    pub(super) children: Vec<Principal>,
}

impl StartPlan {
    /// Checks what a start asks for before any child is read: its policy, release and
    /// selector.
    fn begin<M: Memory>(
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: StartArg,
    ) -> Result<Self, Error> {
        let (policy, selector, pinned) = match &arg {
            StartArg::Rollout(arg) => (&arg.policy, &arg.selector, &arg.plan_sha256),
            StartArg::Backup(arg) => (&arg.policy, &arg.selector, &None),
        };
        let pinned = parse_pin(pinned)?;
        let mut policy = policy
            .clone()
            .unwrap_or_default()
            .into_policy()
            .map_err(|reason| ErrorKind::InvalidRolloutPlan { reason })?;
        let (goal, gates) = match &arg {
            StartArg::Rollout(arg) => {
                let release = release_store.release_module(&arg.release)?;
                let release_hash = ModuleHash(release.sha256);
                let target = known_release(release_store, &release_hash)
                    .expect("a committed release is a release");
                let gates = GateCheck::new(
                    &release_hash,
                    target,
                    policy.gate_overrides.as_deref().unwrap_or_default(),
                );
                (StartGoal::Upgrade(release), Some(gates))
            }
            StartArg::Backup(arg) => {
                if policy.install != InstallOptions::default() {
                    return Err(ErrorKind::InvalidRolloutPlan {
                        reason: "a backup run installs nothing: leave the policy's install \
                                 options out"
                            .into(),
                    }
                    .into());
                }
                policy.snapshot_before_install = true;
                let run = BackupRun {
                    stop_children: arg.stop_children,
                };
                (StartGoal::Backup(run), None)
            }
        };
        let selector = selector.clone();
        let selection = fleet.selection(selector).map_err(fleet_error)?;
        Ok(Self {
            rollout_id: None,
            pinned,
            goal,
            stage: PlanStage::Reading(Box::new(Reading {
                policy,
                selection,
                gates,
                persistence: Ok(()),
                conflicts: ClaimConflicts::default(),
                queues: SubnetQueues::new(),
                subnets: BTreeSet::new(),
                targets: 0,
                from: BTreeMap::new(),
            })),
        })
    }

    /// Reads the next `max` selected children, checks and queues them; returns their ids (for
    /// the claims) and, when reading is over, the reading itself.
    fn read_some<M: Memory>(
        &mut self,
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        max: usize,
    ) -> Vec<Principal> {
        let PlanStage::Reading(reading) = &mut self.stage else {
            return Vec::new();
        };
        let read = fleet.select_some(&mut reading.selection, max);
        let modules = || {
            read.iter()
                .map(|(canister_id, record)| (*canister_id, record.module_hash))
        };
        if let (StartGoal::Upgrade(release), Ok(())) = (&self.goal, &reading.persistence) {
            reading.persistence = check_memory_persistence(
                reading.policy.install.wasm_memory_persistence,
                release,
                modules(),
                |module| {
                    release_store
                        .module_by_sha256(&module.0)
                        .ok()
                        .and_then(|running| running.enhanced_orthogonal_persistence)
                },
            );
        }
        if let Some(gates) = &mut reading.gates {
            gates.add(modules(), |module| known_release(release_store, module));
        }
        let explicit = matches!(reading.selection.selector(), fleet::Selector::Explicit(_));
        let mut ids = Vec::with_capacity(read.len());
        for (canister_id, record) in read {
            if self.goal.targets(record.module_hash) {
                reading.targets += 1;
                *reading.from.entry(record.module_hash).or_default() += 1;
            }
            reading.subnets.insert(record.subnet);
            let queue = if explicit {
                SubnetIndex(0)
            } else {
                record.subnet
            };
            let spec = record.spec(fleet::child_id(&canister_id), record.snapshots.clone());
            reading.queues.push(queue, (canister_id, spec));
            ids.push(canister_id);
        }
        ids
    }

    fn is_read(&self) -> bool {
        match &self.stage {
            PlanStage::Reading(reading) => reading.selection.is_done(),
            PlanStage::Planning(_) | PlanStage::Between => true,
        }
    }

    /// The selection read: refuses it as planning all at once refused it (the children named
    /// wrong, memory persistence, the gates, a subnet without the chunk store the module needs,
    /// children held by other rollouts), or decides how the module travels and begins the plan.
    fn end_reading<M: Memory>(
        &mut self,
        fleet: &Fleet<M>,
        has_store: impl Fn(Principal) -> bool,
    ) -> Result<(), Error> {
        let PlanStage::Reading(reading) = std::mem::replace(&mut self.stage, PlanStage::Between)
        else {
            return Ok(());
        };
        let Reading {
            policy,
            selection,
            gates,
            persistence,
            conflicts,
            queues,
            subnets,
            targets,
            from,
        } = *reading;
        selection.verdict().map_err(fleet_error)?;
        persistence?;
        gates.map_or(Ok(()), GateCheck::verdict)?;
        let operation = match &self.goal {
            StartGoal::Upgrade(release) => {
                // Each subnet looked up once, not once per child.
                let without_store = subnets
                    .into_iter()
                    .map(|subnet| fleet.subnet(subnet).expect("a child's subnet is numbered"))
                    .find(|&subnet| !has_store(subnet));
                let delivery = delivery_of(release, without_store.is_none());
                if let (Delivery::ChunkStore, Some(subnet)) = (delivery, without_store) {
                    return Err(ErrorKind::NoChunkStore { subnet }.into());
                }
                Operation::Upgrade(TargetRelease {
                    module_hash: ModuleHash(release.sha256),
                    delivery,
                })
            }
            StartGoal::Backup(run) => Operation::Backup(*run),
        };
        let hasher = PlanHasher::new(&operation, &policy, queues.len as u32);
        let builder = RolloutBuilder::new(operation, policy, targets).map_err(plan_error)?;
        conflicts.verdict().map_err(fleet_error)?;
        let build = self.rollout_id.is_some();
        self.stage = PlanStage::Planning(Box::new(Planning {
            children: Vec::with_capacity(if build { queues.len } else { 0 }),
            queues,
            hasher,
            builder,
            build,
            planned: 0,
            stored: 0,
            from,
        }));
        Ok(())
    }

    /// Plans the next `max` children in rollout order; returns whether every one is.
    fn plan_some(&mut self, max: usize) -> Result<bool, Error> {
        let PlanStage::Planning(planning) = &mut self.stage else {
            return Ok(false);
        };
        for _ in 0..max {
            let Some((canister_id, spec)) = planning.queues.pop() else {
                break;
            };
            planning.hasher.push(&spec.id, &spec.module_hash);
            planning.planned += 1;
            if planning.build {
                planning.children.push(canister_id);
                planning.builder.push(spec).map_err(plan_error)?;
            }
        }
        Ok(planning.queues.len == 0)
    }

    /// The plan made, checked against the pinned hash.
    fn finish(self, now: Nanos) -> Result<Planned, Error> {
        let PlanStage::Planning(planning) = self.stage else {
            unreachable!("finished once planned")
        };
        let Planning {
            hasher,
            builder,
            children,
            ..
        } = *planning;
        check_pin(self.pinned, &hasher.finish())?;
        Ok(Planned {
            engine: builder.finish(now).map_err(plan_error)?,
            children,
        })
    }

    /// What a preview shows of the plan made, without the engine's rollout: the waves and
    /// policy the builder checked, refused as the rollout's finish refuses it.
    fn finish_preview(self) -> Result<PreviewedPlan, Error> {
        let PlanStage::Planning(planning) = self.stage else {
            unreachable!("finished once planned")
        };
        let Planning {
            hasher,
            builder,
            planned,
            from,
            ..
        } = *planning;
        if planned == 0 {
            return Err(plan_error(PlanError::NoChildren));
        }
        let wave_sizes = builder.wave_sizes().to_vec();
        let targets = wave_sizes.iter().sum();
        Ok(PreviewedPlan {
            plan_sha256: hasher.finish(),
            targets,
            skipped: planned - targets,
            wave_sizes,
            policy: builder.into_policy(),
            from,
        })
    }
}

/// What a preview plans: see [`StartPlan::finish_preview`].
struct PreviewedPlan {
    plan_sha256: Sha256Hash,
    targets: u32,
    skipped: u32,
    wave_sizes: Vec<u32>,
    policy: Policy,
    from: BTreeMap<Option<ModuleHash>, u32>,
}

fn known_release<M: Memory>(
    release_store: &ReleaseStore<M>,
    module: &ModuleHash,
) -> Option<KnownRelease> {
    let record = release_store.release_record(&module.0).ok()?;
    Some(KnownRelease {
        name: record.name,
        version: record.version,
        candid_service: record.candid_service,
    })
}

fn plan_error(error: PlanError) -> Error {
    ErrorKind::InvalidRolloutPlan {
        reason: error.to_string(),
    }
    .into()
}

impl<M: Memory> Rollouts<M> {
    /// Begins planning the rollout `arg` asks for (see [`StartPlan`]): checks its policy,
    /// release and selector, and reserves its id, under which its children are claimed as they
    /// are read.
    pub fn begin_start(
        &mut self,
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: impl Into<StartArg>,
    ) -> Result<StartPlan, Error> {
        let mut plan = StartPlan::begin(fleet, release_store, arg.into())?;
        let rollout_id = self.next_rollout_id();
        self.planning.insert(rollout_id);
        plan.rollout_id = Some(rollout_id);
        Ok(plan)
    }

    /// Reads or plans the next slice of children ([`PLAN_SLICE`]); returns whether the plan is
    /// made. Refused, the plan is abandoned: its claims are freed, its id and stored runs let go.
    pub fn start_some(
        &mut self,
        plan: &mut StartPlan,
        fleet: &mut Fleet<M>,
        release_store: &ReleaseStore<M>,
        own_subnet: Principal,
    ) -> Result<bool, Error> {
        let rollout_id = plan.rollout_id.expect("a start claims");
        let result = if plan.is_read() {
            let planned = plan.plan_some(PLAN_SLICE);
            if let (Ok(done), PlanStage::Planning(planning)) = (&planned, &mut plan.stage) {
                planning.stored = self.checkpoint_children.store_from(
                    rollout_id,
                    planning.builder.children(),
                    planning.stored,
                    *done,
                );
            }
            planned
        } else {
            let read = plan.read_some(fleet, release_store, PLAN_SLICE);
            if let PlanStage::Reading(reading) = &mut plan.stage {
                fleet.check_claims(&read, rollout_id, &mut reading.conflicts);
                if reading.conflicts.is_empty() {
                    fleet.restore_claim(&read, rollout_id);
                }
            }
            if plan.is_read() {
                plan.end_reading(fleet, |subnet| self.store_for(subnet, own_subnet).is_some())
                    .map(|()| false)
            } else {
                Ok(false)
            }
        };
        if result.is_err() {
            self.abandon_start(plan, fleet);
        }
        result
    }

    /// The plan made (every slice planned): checks it against the pinned hash and hands its
    /// rollout over, or abandons it.
    pub(super) fn end_start(
        &mut self,
        plan: StartPlan,
        fleet: &mut Fleet<M>,
        now: Nanos,
    ) -> Result<(u64, Planned), Error> {
        let rollout_id = plan.rollout_id.expect("a start claims");
        self.planning.remove(&rollout_id);
        plan.finish(now)
            .map(|planned| (rollout_id, planned))
            .inspect_err(|_| self.let_go(rollout_id, fleet))
    }

    /// Frees what a refused plan took: its claims, its id, the runs it stored.
    pub fn abandon_start(&mut self, plan: &StartPlan, fleet: &mut Fleet<M>) {
        if let Some(rollout_id) = plan.rollout_id {
            if self.planning.remove(&rollout_id) {
                self.let_go(rollout_id, fleet);
            }
        }
    }

    fn let_go(&mut self, rollout_id: u64, fleet: &mut Fleet<M>) {
        fleet.end_claims(rollout_id);
        // Its runs go a slice at a time, as a removed checkpoint's do.
        self.children_to_prune = true;
    }

    /// What the rollout `arg` asks for would do if started now, and the hash that pins its plan
    /// (`arg.plan_sha256` is checked as `start` checks it): the preview `prepare_rollout` kept
    /// for the same release, selector and policy, or else planned here, at once (a query cannot
    /// spread its work over messages), when at most [`PREVIEW_AT_ONCE`] children are selected.
    pub fn preview(
        &self,
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: StartRolloutArg,
        own_subnet: Principal,
    ) -> Result<RolloutPreview, Error> {
        let release = release_store.get_release(&arg.release)?;
        let pinned = parse_pin(&arg.plan_sha256)?;
        // A release deleted and uploaded again under its name is another module.
        let prepared = self
            .prepared
            .get(&arg)
            .filter(|prepared| prepared.module_sha256 == release.summary.sha256);
        let mut preview = match prepared {
            Some(prepared) => prepared.clone(),
            None => {
                let mut plan = StartPlan::begin(fleet, release_store, arg.into())?;
                plan.pinned = None;
                plan.read_some(fleet, release_store, PREVIEW_AT_ONCE);
                if !plan.is_read() {
                    return Err(ErrorKind::PlanNotPrepared {
                        at_once: PREVIEW_AT_ONCE as u64,
                    }
                    .into());
                }
                plan.end_reading(fleet, |subnet| self.store_for(subnet, own_subnet).is_some())?;
                plan.plan_some(usize::MAX)?;
                preview_of(plan.finish_preview()?, &release, release_store)
            }
        };
        // Blessings come and go after a plan is prepared: read now.
        preview.release_blessing = release.blessing;
        check_pin(pinned, &preview.plan_sha256)?;
        Ok(preview)
    }

    /// Begins preparing the preview of the rollout `arg` asks for (see [`Preparation`]): checks
    /// its policy, release and selector, as a start does.
    pub fn begin_prepare(
        &mut self,
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: StartRolloutArg,
    ) -> Result<Preparation, Error> {
        if self.prepared.in_flight >= PREPARES_IN_FLIGHT {
            return Err(ErrorKind::PreparesInFlight {
                max: PREPARES_IN_FLIGHT,
            }
            .into());
        }
        let key = PreviewKey::of(&arg);
        let mut plan = StartPlan::begin(fleet, release_store, arg.into())?;
        let pinned = plan.pinned.take();
        self.prepared.in_flight += 1;
        Ok(Preparation {
            key,
            pinned,
            plan,
            counted: true,
        })
    }

    /// Reads or plans the next slice of children ([`PLAN_SLICE`]), claiming none; returns
    /// whether the plan is made.
    pub fn prepare_some(
        &self,
        preparation: &mut Preparation,
        fleet: &Fleet<M>,
        release_store: &ReleaseStore<M>,
        own_subnet: Principal,
    ) -> Result<bool, Error> {
        let plan = &mut preparation.plan;
        if plan.is_read() {
            return plan.plan_some(PLAN_SLICE);
        }
        plan.read_some(fleet, release_store, PLAN_SLICE);
        if plan.is_read() {
            plan.end_reading(fleet, |subnet| self.store_for(subnet, own_subnet).is_some())?;
        }
        Ok(false)
    }

    /// The plan made: its preview, kept for later previews and validations (replacing the
    /// oldest kept beyond [`PREPARED_KEPT`]), then checked against the pinned hash.
    pub fn end_prepare(
        &mut self,
        mut preparation: Preparation,
        release_store: &ReleaseStore<M>,
        now: Nanos,
    ) -> Result<RolloutPreview, Error> {
        self.let_go_of_preparation(&mut preparation);
        let Preparation {
            key, pinned, plan, ..
        } = preparation;
        let release_hash = plan.goal.release_hash().expect("an upgrade's plan");
        let release = release_store.release_by_sha256(&release_hash.0)?;
        let mut preview = preview_of(plan.finish_preview()?, &release, release_store);
        preview.prepared_at = Some(now);
        self.prepared.keep(key, preview.clone());
        check_pin(pinned, &preview.plan_sha256)?;
        Ok(preview)
    }

    /// Ends a preparation that will not finish (refused, or its call cannot go on).
    pub fn let_go_of_preparation(&mut self, preparation: &mut Preparation) {
        if std::mem::take(&mut preparation.counted) {
            self.prepared.in_flight -= 1;
        }
    }
}

/// Selected children a preview (a query, as the proposal validators are) plans at once: about
/// 43 K instructions a child (bench `preview_rollout_instructions_per_child`), so about 50 M at
/// most. A larger selection is planned by `prepare_rollout`, a slice per message, and previewed
/// from the plan it keeps.
pub const PREVIEW_AT_ONCE: usize = 1_000;
/// Previews `prepare_rollout` keeps: a few rollouts under review at once.
pub const PREPARED_KEPT: usize = 16;
/// `prepare_rollout` calls planning at once: each holds its selection's plan on the heap until
/// it answers.
pub const PREPARES_IN_FLIGHT: u32 = 2;

/// A rollout's plan being prepared for previews ([`Rollouts::begin_prepare`]): a start's plan,
/// read and planned a slice per message, that claims no child.
pub struct Preparation {
    key: PreviewKey,
    pinned: Option<Sha256Hash>,
    plan: StartPlan,
    /// Counted among the preparations in flight.
    counted: bool,
}

/// The previews `prepare_rollout` made, by [`PreviewKey`], and the preparations in flight. On
/// the heap only: an upgrade drops them, and a preview then asks for another preparation.
#[derive(Default)]
pub(super) struct PreparedPreviews {
    kept: Vec<(PreviewKey, RolloutPreview)>,
    in_flight: u32,
}

impl PreparedPreviews {
    fn get(&self, arg: &StartRolloutArg) -> Option<&RolloutPreview> {
        self.kept
            .iter()
            .find(|(key, _)| key.previews(arg))
            .map(|(_, preview)| preview)
    }

    /// Keeps `preview`, in place of one of the same key, or of the oldest beyond
    /// [`PREPARED_KEPT`].
    fn keep(&mut self, key: PreviewKey, preview: RolloutPreview) {
        self.kept.retain(|(kept, _)| *kept != key);
        self.kept.push((key, preview));
        if self.kept.len() > PREPARED_KEPT {
            let oldest = (0..self.kept.len())
                .min_by_key(|&index| self.kept[index].1.prepared_at)
                .expect("more than one kept");
            self.kept.swap_remove(oldest);
        }
    }
}

/// What a preview previews: the release, selector and policy of its argument (not the pin),
/// kept as they are and compared field by field: keyed by the SHA-256 of their Candid
/// encoding, a preview answered from a kept plan cost 1.91 M instructions, now 0.95 M (bench
/// `preview_rollout_prepared_instructions`).
#[derive(PartialEq)]
struct PreviewKey {
    release: ReleaseSelector,
    selector: Selector,
    policy: Option<PolicyArg>,
}

impl PreviewKey {
    fn of(arg: &StartRolloutArg) -> Self {
        let (release, selector, policy) = previewed(arg);
        Self {
            release: release.clone(),
            selector: selector.clone(),
            policy: policy.clone(),
        }
    }

    fn previews(&self, arg: &StartRolloutArg) -> bool {
        previewed(arg) == (&self.release, &self.selector, &self.policy)
    }
}

/// The parts of `arg` a preview depends on: all but the pin (a field added to the argument
/// must be named here).
fn previewed(arg: &StartRolloutArg) -> (&ReleaseSelector, &Selector, &Option<PolicyArg>) {
    let StartRolloutArg {
        release,
        selector,
        policy,
        plan_sha256: _,
    } = arg;
    (release, selector, policy)
}

fn parse_pin(pin: &Option<ByteBuf>) -> Result<Option<Sha256Hash>, Error> {
    Ok(pin.as_ref().map(|hash| parse_sha256(hash)).transpose()?)
}

/// Refuses a plan whose hash is not the one pinned.
fn check_pin(pinned: Option<Sha256Hash>, actual: &[u8]) -> Result<(), Error> {
    match pinned {
        Some(expected) if expected.as_slice() != actual => Err(ErrorKind::PlanChanged {
            expected: ByteBuf::from(expected.to_vec()),
            actual: ByteBuf::from(actual.to_vec()),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The preview of a plan made, but for the blessing, read when it is answered.
fn preview_of<M: Memory>(
    planned: PreviewedPlan,
    release: &Release,
    release_store: &ReleaseStore<M>,
) -> RolloutPreview {
    let release = &release.summary;
    let mut policy = planned.policy;
    let install_arg = std::mem::take(&mut policy.install.arg);
    let (from, from_others) =
        governance::targets_by_module(planned.from, |module| release_store.release_name(&module.0));
    RolloutPreview {
        release_name: release.name.clone(),
        release_version: release.version.clone(),
        module_sha256: release.sha256.clone(),
        module_size: release.size,
        chunk_count: release.chunk_count,
        install_arg_sha256: ByteBuf::from(sha256(&install_arg).to_vec()),
        install_arg_size: install_arg.len() as u64,
        targets: planned.targets,
        skipped: planned.skipped,
        from,
        from_others,
        wave_sizes: planned.wave_sizes,
        policy,
        plan_sha256: ByteBuf::from(planned.plan_sha256.to_vec()),
        release_blessing: None,
        prepared_at: None,
    }
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
    let selected = fleet.select(&selector).map_err(fleet_error)?;
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

#[cfg(test)]
/// The items in the order of [`SubnetQueues`]: the subnets in turn, each subnet's order kept.
pub(super) fn interleave_subnets<T, K: Ord + Copy>(
    items: Vec<T>,
    subnet: impl Fn(&T) -> K,
) -> Vec<T> {
    let mut queues = SubnetQueues::new();
    for item in items {
        queues.push(subnet(&item), item);
    }
    std::iter::from_fn(|| queues.pop()).collect()
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
