//! A tiny model of the children a rollout drives, for tests: each child's run status, module,
//! state and snapshots, changed only by the actions applied to it, so reads (Verify,
//! Reconcile) answer consistently with what was done. It also records every rule a real
//! subnet or a careful operator would hold the deployer to.

use std::collections::BTreeMap;

use super::*;

/// How the world answers one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Ok,
    /// `SYS_TRANSIENT`, no effect.
    Transient,
    /// `CANISTER_ERROR`, no effect (a trap in `post_upgrade`, a failing health method...).
    /// Start, LoadSnapshot and reads never fail for good here: only a lost controllership
    /// does that on the IC, which this world does not model; they fail transiently instead.
    Permanent,
    /// `SYS_UNKNOWN`; the action took effect or not.
    Unknown {
        applied: bool,
    },
    /// For a stop: it times out and the child stays stopping. Transient for other actions.
    StopHangs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSnapshot {
    pub id: SnapshotId,
    pub module: Option<ModuleHash>,
    pub state: u64,
    pub by_deployer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimChild {
    pub status: RunStatus,
    pub module: Option<ModuleHash>,
    /// Stands in for the child's memory: every install changes it.
    pub state: u64,
    pub installs: u32,
    pub snapshots: Vec<SimSnapshot>,
    /// Ids of snapshots taken during this rollout.
    pub taken: Vec<SnapshotId>,
    /// What a cycles check reads; [`AMPLE_FUNDS`] unless a test lowers it.
    pub funds: ChildFunds,
}

/// A balance far above what any upgrade needs: a 1 T cycles/day burn, 30-day threshold.
pub const AMPLE_FUNDS: ChildFunds = ChildFunds {
    cycles: 1_000_000_000_000_000,
    idle_cycles_burned_per_day: 1_000_000_000_000,
    freezing_threshold_seconds: 30 * 86_400,
};

pub struct World {
    pub children: BTreeMap<ChildId, SimChild>,
    /// `None` in a backup run: any install is a violation.
    pub release: Option<ModuleHash>,
    /// A backup run that does not stop its children snapshots them running.
    snapshots_of_running: bool,
    next_snapshot: u64,
    /// Broken rules, described; a correct engine leaves this empty.
    pub violations: Vec<String>,
}

/// The memory an install of `release` leaves behind (a migration in `post_upgrade`).
pub fn upgraded_state(state: u64) -> u64 {
    state.wrapping_mul(31).wrapping_add(7)
}

impl World {
    pub fn new(plan: &Plan) -> Self {
        let children = (0u64..)
            .zip(&plan.children)
            .map(|(n, spec)| {
                let snapshots = spec
                    .snapshots
                    .iter()
                    .map(|snapshot| SimSnapshot {
                        id: snapshot.id.clone(),
                        module: spec.module_hash,
                        state: 0,
                        by_deployer: snapshot.made_by_deployer,
                    })
                    .collect();
                let child = SimChild {
                    status: RunStatus::Running,
                    module: spec.module_hash,
                    state: 1000 + n,
                    installs: 0,
                    snapshots,
                    taken: Vec::new(),
                    funds: AMPLE_FUNDS,
                };
                (spec.id.clone(), child)
            })
            .collect();
        Self {
            children,
            release: plan.operation.release().map(|release| release.module_hash),
            snapshots_of_running: matches!(
                plan.operation,
                Operation::Backup(BackupRun {
                    stop_children: false
                })
            ),
            next_snapshot: 0,
            violations: Vec::new(),
        }
    }

    pub fn child(&self, id: &ChildId) -> &SimChild {
        &self.children[id]
    }

    /// Performs `action` as `fate` says and returns what the driver would see.
    pub fn perform(&mut self, action: &Action, fate: Fate) -> Outcome {
        let never_permanent = matches!(
            action.kind,
            ActionKind::Start
                | ActionKind::LoadSnapshot { .. }
                | ActionKind::CheckCycles
                | ActionKind::ReadStatus { .. }
                | ActionKind::Reconcile { .. }
        );
        match fate {
            Fate::Ok => match self.apply(action) {
                Ok(reply) => Outcome::Ok(reply),
                Err(message) => Outcome::Rejected {
                    code: reject_code::CANISTER_ERROR,
                    message,
                },
            },
            Fate::Permanent if !never_permanent => Outcome::Rejected {
                code: reject_code::CANISTER_ERROR,
                message: "injected permanent failure".into(),
            },
            Fate::StopHangs if action.kind == ActionKind::Stop => {
                let child = self.children.get_mut(&action.child).expect("known child");
                if child.status == RunStatus::Running {
                    child.status = RunStatus::Stopping;
                }
                Outcome::Rejected {
                    code: reject_code::SYS_TRANSIENT,
                    message: "IC0206: Stop canister request timed out".into(),
                }
            }
            Fate::Unknown { applied } => {
                if applied {
                    // What the call did is lost with its reply.
                    let _ = self.apply(action);
                }
                Outcome::Rejected {
                    code: reject_code::SYS_UNKNOWN,
                    message: "injected unknown outcome".into(),
                }
            }
            Fate::Transient | Fate::Permanent | Fate::StopHangs => Outcome::Rejected {
                code: reject_code::SYS_TRANSIENT,
                message: "injected transient failure".into(),
            },
        }
    }

    /// Applies an action that reached the child; `Err` is the reject a subnet would give.
    fn apply(&mut self, action: &Action) -> Result<Reply, String> {
        let release = self.release;
        let child = self.children.get_mut(&action.child).expect("known child");
        let id = &action.child;
        let mut must_be_stopped = |what: &str, child: &SimChild| {
            if child.status != RunStatus::Stopped {
                self.violations
                    .push(format!("{what} on child {id:?} while {:?}", child.status));
            }
        };
        match &action.kind {
            ActionKind::Stop => {
                child.status = RunStatus::Stopped;
                Ok(Reply::Done)
            }
            ActionKind::Start => {
                child.status = RunStatus::Running;
                Ok(Reply::Done)
            }
            ActionKind::TakeSnapshot { replace } => {
                if !self.snapshots_of_running {
                    must_be_stopped("TakeSnapshot", child);
                }
                if let Some(replace) = replace {
                    let Some(old) = child.snapshots.iter().find(|s| &s.id == replace) else {
                        return Err("the snapshot to replace does not exist".into());
                    };
                    if !old.by_deployer {
                        self.violations.push(format!(
                            "child {id:?}: replaced a snapshot the deployer did not make"
                        ));
                    }
                } else if child.snapshots.len() >= MAX_SNAPSHOTS_PER_CANISTER {
                    return Err("the canister has reached its snapshot limit".into());
                }
                // A prefix keeps the world's ids apart from those a test plan invents.
                let snapshot =
                    SnapshotId([b"sim".as_slice(), &self.next_snapshot.to_be_bytes()].concat());
                self.next_snapshot += 1;
                child.snapshots.retain(|s| Some(&s.id) != replace.as_ref());
                child.snapshots.push(SimSnapshot {
                    id: snapshot.clone(),
                    module: child.module,
                    state: child.state,
                    by_deployer: true,
                });
                child.taken.push(snapshot.clone());
                Ok(Reply::Snapshot(snapshot))
            }
            ActionKind::InstallCode { module_hash, .. }
            | ActionKind::InstallChunked { module_hash, .. } => {
                must_be_stopped("Install", child);
                if Some(*module_hash) != release {
                    self.violations
                        .push(format!("child {id:?}: installed another module"));
                }
                child.module = Some(*module_hash);
                child.state = upgraded_state(child.state);
                child.installs += 1;
                Ok(Reply::Done)
            }
            ActionKind::LoadSnapshot { snapshot } => {
                must_be_stopped("LoadSnapshot", child);
                let Some(loaded) = child.snapshots.iter().find(|s| &s.id == snapshot) else {
                    return Err("the snapshot does not exist".into());
                };
                child.module = loaded.module;
                child.state = loaded.state;
                Ok(Reply::Done)
            }
            ActionKind::DeleteSnapshot { snapshot } => {
                let Some(held) = child.snapshots.iter().find(|s| &s.id == snapshot) else {
                    return Err("the snapshot does not exist".into());
                };
                if !held.by_deployer {
                    self.violations.push(format!(
                        "child {id:?}: deleted a snapshot the deployer did not make"
                    ));
                }
                child.snapshots.retain(|s| &s.id != snapshot);
                Ok(Reply::Done)
            }
            ActionKind::HealthCheck { .. } => match child.status {
                RunStatus::Running => Ok(Reply::Done),
                _ => Err("IC0508: the child is not running".into()),
            },
            ActionKind::CheckCycles => Ok(Reply::Status(Observation {
                status: child.status,
                module_hash: child.module,
                snapshots: None,
                funds: Some(child.funds),
            })),
            ActionKind::ReadStatus { .. } => Ok(Reply::Status(Observation {
                status: child.status,
                module_hash: child.module,
                snapshots: None,
                funds: Some(child.funds),
            })),
            ActionKind::Reconcile { list_snapshots } => Ok(Reply::Status(Observation {
                status: child.status,
                module_hash: child.module,
                snapshots: list_snapshots
                    .then(|| child.snapshots.iter().map(|s| s.id.clone()).collect()),
                funds: Some(child.funds),
            })),
        }
    }
}

/// A rollout, the world it acts on, a clock, and every action issued, with the checks that
/// must hold after every step.
pub struct Harness {
    pub rollout: Rollout,
    pub world: World,
    pub now: Nanos,
    pub in_flight: Vec<Action>,
    pub issued: Vec<Action>,
    /// Waves stop mattering once the whole rollout is rolled back.
    pub rollback_all_requested: bool,
    /// The most actions one dispatch may issue (`u32::MAX` by default: no limit).
    pub max_new: u32,
}

pub const START: Nanos = 1_700_000_000_000_000_000;

impl Harness {
    pub fn new(plan: Plan) -> Self {
        let world = World::new(&plan);
        let rollout = Rollout::new(plan, START).expect("valid plan");
        Self {
            rollout,
            world,
            now: START,
            in_flight: Vec::new(),
            issued: Vec::new(),
            rollback_all_requested: false,
            max_new: u32::MAX,
        }
    }

    /// Applies an operator command as the deployer's endpoint would.
    pub fn command(&mut self, command: Command) -> Result<(), ControlError> {
        let now = self.now;
        match command {
            Command::Pause => self.rollout.pause(now),
            Command::Resume => self.rollout.resume(now),
            Command::Abort => self.rollout.abort(now),
            Command::RollBackAll => {
                self.rollout.rollback_all(now)?;
                self.rollback_all_requested = true;
                Ok(())
            }
        }
    }

    /// Answers the in-flight action at `position` with an outcome the world did not produce.
    pub fn answer_raw(&mut self, position: usize, outcome: Outcome) -> Result<(), String> {
        let action = self.in_flight.remove(position);
        self.rollout
            .on_outcome(action.id, outcome, self.now)
            .map_err(|error| format!("on_outcome refused: {error}"))?;
        self.check_invariants()
    }

    /// The position of `child`'s in-flight action.
    pub fn position(&self, child: &ChildId) -> usize {
        self.in_flight
            .iter()
            .position(|action| &action.child == child)
            .expect("the child has an action in flight")
    }

    /// The (path, step) of every action issued for `child`, in order.
    pub fn steps(&self, child: &ChildId) -> Vec<(Path, Step)> {
        self.issued
            .iter()
            .filter(|action| &action.child == child)
            .map(|action| (action.path, action.kind.step()))
            .collect()
    }

    pub fn verdict(&self, child: &ChildId) -> Verdict {
        match self.rollout.child(child).expect("known child").state() {
            ChildState::Finished(verdict) => verdict,
            state => panic!("child {child:?} is not finished: {state:?}"),
        }
    }

    /// Asks the engine for actions, checks them, and returns when to ask again.
    pub fn dispatch(&mut self) -> Result<Option<Nanos>, String> {
        // A rollout that polls every active child (as one just loaded does) decides the same.
        let mut polling_all = self.rollout.clone();
        polling_all.put_back_children(self.rollout.children().to_vec());
        let expected = polling_all.next_actions(self.now, self.max_new);
        let dispatch = self.rollout.next_actions(self.now, self.max_new);
        if dispatch != expected || polling_all != self.rollout {
            return Err(format!(
                "dispatched {dispatch:?}; polling every active child, {expected:?}"
            ));
        }
        let issued = dispatch.actions.len() as u32;
        if issued > self.max_new || (dispatch.held_back > 0 && issued < self.max_new) {
            return Err(format!(
                "{issued} actions issued and {} held back with a limit of {}",
                dispatch.held_back, self.max_new
            ));
        }
        for action in dispatch.actions {
            self.check_issue(&action)?;
            self.in_flight.push(action.clone());
            self.issued.push(action);
        }
        self.check_invariants()?;
        Ok(dispatch.next_due)
    }

    /// Dispatches, answers every cycles check the dispatch issued (the children can pay) and
    /// dispatches again: the children it started then stand at their stop.
    pub fn dispatch_past_cycles_checks(&mut self) -> Result<Option<Nanos>, String> {
        let mut next_due = self.dispatch()?;
        while let Some(position) = self
            .in_flight
            .iter()
            .position(|action| action.kind == ActionKind::CheckCycles)
        {
            self.answer(position, Fate::Ok)?;
            next_due = self.dispatch()?;
        }
        Ok(next_due)
    }

    /// Answers the in-flight action at `position` with `fate`.
    pub fn answer(&mut self, position: usize, fate: Fate) -> Result<(), String> {
        let action = self.in_flight.remove(position);
        let outcome = self.world.perform(&action, fate);
        self.rollout
            .on_outcome(action.id, outcome, self.now)
            .map_err(|error| format!("on_outcome refused: {error}"))?;
        self.check_invariants()
    }

    /// The deployer is upgraded: calls in flight took effect or not, their replies are lost,
    /// and the rollout is restored from its CBOR bytes.
    pub fn upgrade_deployer(&mut self, applied: impl Fn(usize) -> bool) -> Result<(), String> {
        for (n, action) in std::mem::take(&mut self.in_flight).iter().enumerate() {
            self.world.perform(
                action,
                Fate::Unknown {
                    applied: applied(n),
                },
            );
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&self.rollout, &mut bytes).map_err(|e| e.to_string())?;
        let restored: Rollout =
            ciborium::from_reader(bytes.as_slice()).map_err(|e| e.to_string())?;
        if restored != self.rollout {
            return Err("the rollout changed in a CBOR round trip".into());
        }
        self.rollout = restored;
        self.rollout.mark_in_flight_unknown(self.now);
        self.check_invariants()
    }

    /// Answers every action with `fate` until the rollout settles, jumping the clock to each
    /// due time. Fails if it does not settle within `max_rounds` dispatches.
    pub fn run(
        &mut self,
        max_rounds: usize,
        mut fate: impl FnMut(&Action) -> Fate,
    ) -> Result<(), String> {
        for _ in 0..max_rounds {
            let next_due = self.dispatch()?;
            if self.in_flight.is_empty() {
                match next_due {
                    Some(at) => self.now = self.now.max(at),
                    None => return Ok(()),
                }
                continue;
            }
            while !self.in_flight.is_empty() {
                let action = self.in_flight[0].clone();
                self.answer(0, fate(&action))?;
            }
        }
        Err(format!(
            "not settled after {max_rounds} rounds: {:?}",
            self.rollout.summary()
        ))
    }

    fn check_issue(&self, action: &Action) -> Result<(), String> {
        if self
            .in_flight
            .iter()
            .any(|other| other.child == action.child)
        {
            return Err(format!(
                "two actions in flight for child {:?}",
                action.child
            ));
        }
        let is_install = matches!(
            action.kind,
            ActionKind::InstallCode { .. } | ActionKind::InstallChunked { .. }
        );
        if is_install && self.rollout.policy().snapshot_before_install {
            let child = self.rollout.child(&action.child).expect("known child");
            let snapshot = child
                .rollout_snapshot()
                .ok_or_else(|| format!("install without a snapshot for {:?}", action.child))?;
            if !self.world.child(&action.child).taken.contains(snapshot) {
                return Err(format!(
                    "install after a snapshot the world never took: {snapshot:?}"
                ));
            }
        }
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), String> {
        if let Some(violation) = self.world.violations.first() {
            return Err(violation.clone());
        }
        let summary = self.rollout.summary();
        let limit = self.rollout.policy().max_concurrency;
        if summary.counts.active > limit {
            return Err(format!(
                "{} children active, limit {limit}",
                summary.counts.active
            ));
        }
        if self.in_flight.len() > limit as usize {
            return Err(format!(
                "{} actions in flight, concurrency {limit}",
                self.in_flight.len()
            ));
        }
        if let Some(limit) = self.rollout.policy().max_stopped_per_subnet {
            let mut stopped: BTreeMap<SubnetIndex, u32> = BTreeMap::new();
            for child in self.rollout.children() {
                let active = matches!(child.state(), ChildState::Active { .. });
                if active && self.world.child(child.id()).status != RunStatus::Running {
                    *stopped.entry(child.subnet()).or_default() += 1;
                }
            }
            if let Some((subnet, count)) = stopped.iter().find(|(_, &count)| count > limit) {
                return Err(format!(
                    "{count} children of subnet {subnet:?} stopped, limit {limit}"
                ));
            }
        }
        let mut snapshot_work: BTreeMap<SubnetIndex, u32> = BTreeMap::new();
        for action in &self.in_flight {
            if action.kind.step().is_snapshot_work() {
                let child = self
                    .rollout
                    .children()
                    .iter()
                    .find(|c| c.id() == &action.child);
                let subnet = child.expect("an in-flight action's child").subnet();
                *snapshot_work.entry(subnet).or_default() += 1;
            }
        }
        if let Some((subnet, count)) = snapshot_work
            .iter()
            .find(|(_, &count)| count > SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET)
        {
            return Err(format!(
                "{count} snapshots in flight on subnet {subnet:?}, limit {SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET}"
            ));
        }
        let in_flight_children: std::collections::BTreeSet<&ChildId> =
            self.in_flight.iter().map(|action| &action.child).collect();
        if in_flight_children.len() != self.in_flight.len() {
            return Err("two actions in flight for one child".into());
        }
        if !self.rollback_all_requested {
            let active_waves: std::collections::BTreeSet<u32> = self
                .rollout
                .children()
                .iter()
                .filter(|child| matches!(child.state(), ChildState::Active { .. }))
                .filter_map(|child| child.wave())
                .collect();
            if active_waves.len() > 1 {
                return Err(format!("waves overlap: {active_waves:?} active"));
            }
            if let (Some(&wave), Some(current)) = (active_waves.first(), summary.current_wave) {
                if wave != current {
                    return Err(format!(
                        "a child of wave {wave} is active in wave {current}"
                    ));
                }
            }
            let earlier_unfinished = summary.waves[..summary.current_wave.unwrap_or(0) as usize]
                .iter()
                .any(|wave| wave.finished_at.is_none());
            if earlier_unfinished {
                return Err("a wave started before the previous one finished".into());
            }
        }
        Ok(())
    }
}

// Fixtures shared by the scenario tests.

/// The module every fixture child runs before the rollout.
pub const PREVIOUS: ModuleHash = ModuleHash([1; 32]);
pub const RELEASE: ModuleHash = ModuleHash([9; 32]);
/// Dispatch rounds a scenario may take to settle.
pub const ROUNDS: usize = 1_000;

pub fn id(n: u32) -> ChildId {
    ChildId::new(n.to_be_bytes()).expect("4 bytes fit a principal")
}

pub fn snapshot(n: u32, made_by_deployer: bool) -> ExistingSnapshot {
    ExistingSnapshot {
        id: SnapshotId(n.to_le_bytes().to_vec()),
        made_by_deployer,
    }
}

/// One wave, generous budget, 3 attempts with a backoff of 10, 20, 40 ns.
pub fn policy() -> Policy {
    Policy {
        waves: WavePlan {
            canary: 100,
            then: vec![],
        },
        max_concurrency: 10,
        max_stopped_per_subnet: None,
        bake_nanos: 0,
        snapshot_before_install: true,
        keep_snapshots: None,
        install: InstallOptions::default(),
        verification: Verification::default(),
        retry: RetryPolicy {
            max_attempts: 3,
            base_backoff_nanos: 10,
            max_backoff_nanos: 40,
        },
        on_failure: OnFailure::RollBack,
        failure_budget: FailureBudget::Count(100),
        gate_overrides: None,
    }
}

pub fn spec(n: u32) -> ChildSpec {
    ChildSpec {
        id: id(n),
        module_hash: Some(PREVIOUS),
        subnet: SubnetIndex(0),
        snapshots: vec![],
    }
}

/// `children` children on [`PREVIOUS`], on subnet 0, without snapshots, to get [`RELEASE`].
pub fn plan(children: u32, policy: Policy) -> Plan {
    Plan {
        operation: Operation::Upgrade(TargetRelease {
            module_hash: RELEASE,
            delivery: Delivery::InstallCode,
        }),
        children: (0..children).map(spec).collect(),
        policy,
    }
}

pub fn is(step: Step) -> impl Fn(&Action) -> bool {
    move |action| action.kind.step() == step
}

/// `Fate::Ok` for everything except the first `times` actions matching `which`.
pub fn failing(
    times: usize,
    which: impl Fn(&Action) -> bool,
    fate: Fate,
) -> impl FnMut(&Action) -> Fate {
    let mut left = times;
    move |action| {
        if left > 0 && which(action) {
            left -= 1;
            fate
        } else {
            Fate::Ok
        }
    }
}

pub fn upgrade_steps(health: bool) -> Vec<(Path, Step)> {
    let mut steps = vec![
        (Path::Upgrade, Step::CheckCycles),
        (Path::Upgrade, Step::Stop),
        (Path::Upgrade, Step::TakeSnapshot),
        (Path::Upgrade, Step::Install),
        (Path::Upgrade, Step::Start),
        (Path::Upgrade, Step::Verify),
    ];
    if health {
        steps.push((Path::Upgrade, Step::HealthCheck));
    }
    steps
}
