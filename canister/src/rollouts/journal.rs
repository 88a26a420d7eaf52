//! The checkpoints, the write-ahead journal and the event log of the rollouts.
//!
//! A rollout is a checkpoint and a write-ahead journal. The checkpoint is one CBOR
//! [`RolloutRecord`] under the rollout id (memory 6): the engine state, whose children carry
//! their step histories, who started it, and `next_entry`, the first journal line it does not
//! include. The journal (memories 7 and 17) is one append-only log shared by every rollout: a
//! small CBOR [`JournalLine`] per change, naming its rollout, appended by [`Rollouts::dispatch`]
//! after the engine issued a batch of actions and *before* their calls are made, and by
//! [`Rollouts::record_outcome`] when each outcome arrives. The engine is deterministic, so the
//! checkpoint with its later lines replayed is the rollout. A step costs one append, not a
//! rewrite of the rollout.
//!
//! The journal is folded when it holds [`CHECKPOINT_EVERY`] lines: every rollout with unfolded
//! lines writes its checkpoint, and the log starts again empty. A checkpoint keeps the
//! rollout's children apart, in runs (memory 29, `checkpoint_children`), and rewrites only the
//! runs whose children changed since the last one, so a fold costs what the lines it folds
//! changed, whatever the rollouts' sizes, and no deletion per line. A rollout also writes its checkpoint whenever it
//! becomes active or inactive, and the ids of the active ones are kept apart (memory 19), so
//! that the deployer's upgrade reads only those. Every checkpoint write also writes the
//! rollout's [`RolloutOverview`] (memory 20), which reads of a rollout off the heap use. A
//! rollout that becomes inactive leaves memory 6 for memories 27 and 28, its children stored
//! apart (`finished`), which reads of one child's history use: a slice of its children per
//! message, and its record once they are all stored, so that no message stores a whole fleet's.
//! Until then it stays on the heap and in the active set, its checkpoint and its journal lines
//! still making it up; a fold checkpoints it as it does an active rollout.
//!
//! While the deployer runs, the rollouts it touched stay on the heap (rebuilt from stable
//! memory on demand); every active rollout is among them, which is what lets folding reach
//! every unfolded line. The journal's lines are inputs that mean what they mean to the engine
//! that wrote them (`crate::memory`, "The journal's writer"): [`Rollouts::prepare_upgrade`]
//! holds every rollout and folds the journal once no call is in flight, so that a build with
//! another engine starts from checkpoints alone. After its own upgrade, [`Rollouts::recover`]
//! journals that every action
//! in flight is unknown, so the engine reads each such child before going on. Every engine
//! event is appended to the event log (`event_log`) with its rollout id.

use candid::{Deserialize, Principal};
use ic_stable_structures::{Log, Memory, StableBTreeMap};
use serde::Serialize;

use super::checkpoint_children::CheckpointChildren;
use super::Rollouts;
use crate::backup::{SectionVisitor, JOURNAL_SECTION};
use crate::cbor::{Cbor, CborBytes};
use crate::engine::{
    ActionId, Child, ChildId, Command, Event, EventKind, ModuleHash, Nanos, Operation, Outcome,
    Policy, RollbackCause, Rollout, Summary, Verdict,
};
use crate::error::{Error, ErrorKind};
use crate::fleet::{self, Fleet};
use crate::hash::{sha256, Sha256Hash};

/// Journal lines the log holds before it is folded into the checkpoints of the rollouts in
/// progress and starts again. A fold rewrites the runs of the children these lines changed
/// and each rollout's record without its children, and an upgrade replays at most this many
/// lines. Four lines per child while checkpoints held every child: 368 M instructions in one
/// fold at 10,000 children. Every 1,024 lines, folds cost 1.49 M instructions per child at
/// 1,000 children (the records and the runs of the children in progress written 8 times).
pub const CHECKPOINT_EVERY: u64 = 4096;

/// Children of a rollout stored apart freed from the heap per message (about 5 M instructions).
const FREE_SLICE: usize = 2048;

/// Finished rollouts whose checkpoints (their children and step histories) are kept; older
/// finished rollouts keep only their overview, so stored rollouts do not grow without bound
/// with the fleet's size times the rollouts run.
pub const RETAINED_FINISHED_CHECKPOINTS: u64 = 100;

/// One rollout as stored. The serde names are stored: renaming a field is a schema change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RolloutRecord {
    pub created_by: Principal,
    pub created_at: Nanos,
    /// The children the rollout claimed, in selection order.
    pub children: Vec<Principal>,
    /// Whether the claims are held: from the start (or a rollback) to a final phase.
    pub claimed: bool,
    /// The first journal line (log index) not applied to `engine`; lines of other rollouts
    /// are skipped.
    pub next_entry: u64,
    /// The engine state as of the checkpoint.
    pub engine: Rollout,
    /// Schema 2: the engine's children (and `children`, their ids) are stored apart, in runs
    /// (memory 29, `checkpoint_children`; a finished record's in memory 27), and the wave order
    /// is made from them. Absent in schema 1's records, which hold them (a finished one, all but
    /// the children).
    #[serde(default, skip_serializing_if = "is_false")]
    pub children_apart: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl RolloutRecord {
    pub(super) fn is_active(&self) -> bool {
        self.engine.finished_at().is_none()
    }

    /// Puts back children stored apart, and the ids of the children claimed: the same
    /// children, in selection order.
    pub(super) fn put_back_children(&mut self, children: Vec<Child>) {
        self.children = children
            .iter()
            .map(|child| fleet::canister_id(child.id()))
            .collect();
        self.engine.put_back_children_and_order(children);
    }
}

/// What reads show of a rollout, stored beside its checkpoint whenever the checkpoint is written,
/// so that reading a rollout that is not on the heap (a finished one) costs the same for 10
/// children as for 100,000. The install argument (up to 64 KiB, perhaps configuration or a
/// secret) stays in the checkpoint only: the overview holds the policy without it, and its hash
/// and size. The serde names are stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RolloutOverview {
    pub created_by: Principal,
    pub created_at: Nanos,
    /// Named `release` in the stored form, as before backup runs existed.
    #[serde(rename = "release")]
    pub operation: Operation,
    /// `install.arg` left empty.
    pub policy: Policy,
    pub install_arg_sha256: Sha256Hash,
    pub install_arg_size: u64,
    pub summary: Summary,
}

impl RolloutOverview {
    pub(super) fn of(record: &RolloutRecord, install_arg: &InstallArgDigest) -> Self {
        let mut policy = record.engine.policy().clone();
        policy.install.arg = Vec::new();
        Self {
            created_by: record.created_by,
            created_at: record.created_at,
            operation: record.engine.operation().clone(),
            policy,
            install_arg_sha256: install_arg.sha256,
            install_arg_size: install_arg.size,
            summary: record.engine.summary(),
        }
    }
}

/// The install argument's hash and size. The argument (up to 64 KiB) never changes, so a
/// rollout on the heap hashes it once, not at every overview (each `get_rollout` of it, each
/// checkpoint write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct InstallArgDigest {
    sha256: Sha256Hash,
    size: u64,
}

impl InstallArgDigest {
    pub(super) fn of(record: &RolloutRecord) -> Self {
        let arg = &record.engine.policy().install.arg;
        Self {
            sha256: sha256(arg),
            size: arg.len() as u64,
        }
    }
}

/// Writes a rollout's checkpoint and its overview: its record without its children (memory
/// 6), and the runs of its children (29) changed since its last checkpoint (all of them the
/// first time, or when its stored checkpoint holds its children, as schema 1's do).
fn store_checkpoint<M: Memory>(
    records: &mut StableBTreeMap<u64, CborBytes<RolloutRecord>, M>,
    children: &mut CheckpointChildren<M>,
    overviews: &mut StableBTreeMap<u64, CborBytes<RolloutOverview>, M>,
    rollout_id: u64,
    live: &mut Live,
) {
    let changed = live.record.engine.take_changed();
    let changed = live.children_apart_stored.then_some(&changed);
    children.store(rollout_id, &live.record.engine, changed);
    live.children_apart_stored = true;
    let record = &mut live.record;
    record.children_apart = true;
    let claimed = std::mem::take(&mut record.children);
    let apart = record.engine.take_children_apart();
    records.insert(rollout_id, CborBytes::encode(&*record));
    record.engine.undo_children_apart(apart);
    record.children = claimed;
    store_overview(overviews, rollout_id, live);
}

fn store_overview<M: Memory>(
    overviews: &mut StableBTreeMap<u64, CborBytes<RolloutOverview>, M>,
    rollout_id: u64,
    live: &Live,
) {
    let overview = RolloutOverview::of(&live.record, &live.install_arg);
    overviews.insert(rollout_id, CborBytes::encode(&overview));
}

/// An event of the log, as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    pub rollout_id: u64,
    pub event: Event,
}

/// A line of the journal: one change to one rollout. The serde names are stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct JournalLine {
    pub rollout_id: u64,
    pub entry: JournalEntry,
}

/// One change to a rollout's engine, in the order it was applied. The engine is
/// deterministic, so replaying the entries after a checkpoint on that checkpoint reproduces it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum JournalEntry {
    /// `next_actions(at, max_new)`: the actions it issued are in flight from then on.
    Dispatched {
        at: Nanos,
        #[serde(default = "unlimited", skip_serializing_if = "is_unlimited")]
        max_new: u32,
    },
    Outcome {
        action: ActionId,
        outcome: Outcome,
        at: Nanos,
    },
    Command {
        command: Command,
        at: Nanos,
    },
    /// `mark_in_flight_unknown(at)` after the deployer's upgrade.
    LostInFlight {
        at: Nanos,
    },
    /// `pause_for_cycles(balance, required, at)`: the deployer could not pay for the next steps.
    PausedForCycles {
        balance: u128,
        required: u128,
        at: Nanos,
    },
}

fn unlimited() -> u32 {
    u32::MAX
}

fn is_unlimited(max_new: &u32) -> bool {
    *max_new == u32::MAX
}

impl JournalEntry {
    fn apply(&self, engine: &mut Rollout) {
        match self {
            Self::Dispatched { at, max_new } => {
                engine.next_actions(*at, *max_new);
            }
            Self::Outcome {
                action,
                outcome,
                at,
            } => engine
                .on_outcome(*action, outcome.clone(), *at)
                .expect("a journaled outcome was accepted when it was recorded"),
            Self::Command { command, at } => {
                let applied = match command {
                    Command::Pause => engine.pause(*at),
                    Command::Resume => engine.resume(*at),
                    Command::Abort => engine.abort(*at),
                    Command::RollBackAll => engine.rollback_all(*at),
                };
                applied.expect("a journaled command was accepted when it was recorded");
            }
            Self::LostInFlight { at } => {
                engine.mark_in_flight_unknown(*at);
            }
            Self::PausedForCycles {
                balance,
                required,
                at,
            } => engine
                .pause_for_cycles(*balance, *required, *at)
                .expect("a journaled pause was accepted when it was recorded"),
        }
    }
}

/// A rollout as the heap holds it while the deployer runs: the record with the journal
/// lines after its checkpoint applied.
pub(super) struct Live {
    pub(super) record: RolloutRecord,
    /// Its journal lines not folded into the stored checkpoint.
    pub(super) unfolded: u64,
    /// The stored checkpoint's `next_entry`: a fold must move it to the new log's start even
    /// when the rollout wrote nothing since.
    pub(super) stored_next_entry: u64,
    /// Whether the rollout is stored as active: its checkpoint in memory 6 and its id in 19,
    /// which it keeps while finished until its children are stored apart. `None` before its
    /// first checkpoint.
    pub(super) stored_active: Option<bool>,
    /// Finished and storing its children apart a slice per message: the last child stored
    /// (`None` before the first slice, and on the heap only: after an upgrade the slices start
    /// again from the first, rewriting the same runs).
    pub(super) stored_apart_through: Option<ChildId>,
    /// Whether its stored checkpoint keeps its children apart (memory 29) as they were at the
    /// last checkpoint, so that the next one rewrites only the runs changed since.
    pub(super) children_apart_stored: bool,
    pub(super) install_arg: InstallArgDigest,
}

impl Live {
    /// Finished, and its children not yet all stored apart: it stays on the heap, in memory 6
    /// and in the active set (whose checkpoint and journal lines still make it up) until they are.
    pub(super) fn is_storing_apart(&self) -> bool {
        !self.record.is_active() && self.stored_active == Some(true)
    }
}

pub(super) type StableLog<T, M> = Log<Cbor<T>, M, M>;

impl<M: Memory> Rollouts<M> {
    /// Whether no rollout and no event was ever kept (a fresh deployer).
    pub fn is_empty(&self) -> bool {
        self.rollouts.is_empty() && self.finished.len() == 0 && self.events.is_empty()
    }

    /// See [`crate::backup`]: checkpoints, overviews, the active set, the journal as it stands
    /// (replayed by the restored deployer as after an upgrade), the events and the stores.
    pub fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.map("rollouts", &mut self.rollouts);
        sections.map("active_rollouts", &mut self.active);
        sections.map("rollout_overviews", &mut self.overviews);
        sections.log(JOURNAL_SECTION, self.journal());
        self.events.visit_sections(sections);
        sections.map("store_canisters", &mut self.stores);
        self.finished.visit_sections(sections);
        self.checkpoint_children.visit_sections(sections);
    }

    pub(super) fn journal(&self) -> &StableLog<JournalLine, M> {
        self.journal
            .as_ref()
            .expect("the journal is only absent while folding")
    }

    /// Runs `f` on the rollout as it stands: the heap's copy, or its checkpoint with the
    /// journal replayed.
    pub(super) fn with_current<R>(
        &self,
        rollout_id: u64,
        f: impl FnOnce(&RolloutRecord) -> R,
    ) -> Result<R, Error> {
        match self.live.get(&rollout_id) {
            Some(live) => Ok(f(&live.record)),
            None => self.load(rollout_id).map(|live| f(&live.record)),
        }
    }

    /// The rollout on the heap, loaded from stable memory if it is not there yet. Loading an
    /// active rollout (after an upgrade) restores its claims, which live on the heap.
    pub(super) fn live_mut(
        &mut self,
        rollout_id: u64,
        fleet: &mut Fleet<M>,
    ) -> Result<&mut Live, Error> {
        if !self.live.contains_key(&rollout_id) {
            let live = self.load(rollout_id)?;
            if live.record.claimed {
                fleet.restore_claim(&live.record.children, rollout_id);
            }
            self.live.insert(rollout_id, live);
        }
        Ok(self.live.get_mut(&rollout_id).expect("inserted above"))
    }

    /// The checkpoint with every later journal line of the rollout applied. Their events were
    /// logged when the lines were first applied, so they are dropped here.
    pub(super) fn load(&self, rollout_id: u64) -> Result<Live, Error> {
        let mut record = match self.rollouts.get(&rollout_id) {
            Some(checkpoint) => checkpoint.decode(),
            None => self
                .finished
                .load(rollout_id)
                .ok_or_else(|| self.missing(rollout_id))?,
        };
        // A finished record (28) holds its children's ids, its children being in 27.
        let children_apart_stored =
            self.rollouts.contains_key(&rollout_id) && record.children_apart;
        if children_apart_stored {
            record.put_back_children(self.checkpoint_children.load(rollout_id));
        }
        record.children_apart = children_apart_stored;
        let stored_active = Some(self.active.contains_key(&rollout_id));
        let stored_next_entry = record.next_entry;
        let journal = self.journal();
        let mut unfolded = 0;
        for index in record.next_entry..journal.len() {
            let Cbor(line) = journal.get(index).expect("below the log's length");
            if line.rollout_id == rollout_id {
                line.entry.apply(&mut record.engine);
                unfolded += 1;
            }
        }
        record.engine.drain_events();
        Ok(Live {
            install_arg: InstallArgDigest::of(&record),
            record,
            unfolded,
            stored_next_entry,
            stored_active,
            stored_apart_through: None,
            children_apart_stored,
        })
    }

    /// Appends `entry` to the journal, logs the engine's new events, tells the fleet registry what
    /// they show, frees the claims of a rollout that reached a final phase, writes its
    /// checkpoint when it became active, stores a slice of a finished one's children apart, and
    /// folds the journal when it grew long.
    pub(super) fn commit(
        &mut self,
        rollout_id: u64,
        entry: Option<JournalEntry>,
        fleet: &mut Fleet<M>,
    ) {
        let journal = self.journal.as_ref().expect("not folding");
        let live = self.live.get_mut(&rollout_id).expect("the rollout is live");
        if let Some(entry) = entry {
            append(journal, JournalLine { rollout_id, entry });
            live.unfolded += 1;
        }
        let record = &mut live.record;
        let release = record.engine.release().map(|release| release.module_hash);
        for event in record.engine.drain_events() {
            observe(fleet, &record.engine, release, &event);
            self.events.append(LoggedEvent { rollout_id, event });
        }
        record.engine.settle_summary();
        let active = record.is_active();
        if record.claimed && !active {
            // Freed at once; their entries go with the slices that store the children apart.
            fleet.end_claims(rollout_id);
            record.claimed = false;
        }
        if active && live.stored_active != Some(true) {
            record.next_entry = journal.len();
            store_checkpoint(
                &mut self.rollouts,
                &mut self.checkpoint_children,
                &mut self.overviews,
                rollout_id,
                live,
            );
            self.active.insert(rollout_id, ());
            // Active again (a rollback of the whole rollout): checkpointed from now on.
            self.finished.remove(rollout_id);
            live.stored_active = Some(true);
            live.stored_next_entry = live.record.next_entry;
            live.unfolded = 0;
        }
        if active {
            // Active again before its children were all stored apart: they are stored afresh
            // when it finishes again.
            live.stored_apart_through = None;
        } else {
            self.store_apart_slice(rollout_id, fleet);
        }
        self.prune_children_slice();
        if self.holding && self.calls_in_flight() == 0 {
            // Prepared for an upgrade and nothing left to come back: leave no line that the
            // next build's engine would have to replay.
            self.fold();
        } else {
            self.fold_if_long();
        }
    }

    /// Stores the next slice of a finished rollout's children apart (memory 27), and once none
    /// is left its record (28) in place of its checkpoint (6). A slice per message, so that
    /// finishing costs the same per message for 100,000 children as for 100 (the driver calls
    /// again, see [`Rollouts::dispatch`]). Until then the rollout stays on the heap and in the
    /// active set, and its checkpoint with its journal lines still make it up (a fold
    /// checkpoints it); a rollout never checkpointed (finished in the message that created it)
    /// is checkpointed first if it takes more than one slice.
    fn store_apart_slice(&mut self, rollout_id: u64, fleet: &mut Fleet<M>) {
        let journal_len = self.journal().len();
        let live = self.live.get_mut(&rollout_id).expect("the rollout is live");
        if live.stored_active == Some(false) {
            // Stored apart already (or a checkpoint of release 0.1's): nothing keeps it here.
            fleet.sweep_claims(
                live.record.engine.children().iter().map(Child::id),
                rollout_id,
            );
            self.live.remove(&rollout_id);
            return;
        }
        if live.stored_apart_through.is_none() {
            // What reads off the heap show from now on.
            store_overview(&mut self.overviews, rollout_id, live);
        }
        let more_after = self.finished.store_children_slice(
            rollout_id,
            &live.record.engine,
            live.stored_apart_through.as_ref(),
            |child| fleet.sweep_claims([child], rollout_id),
        );
        if more_after.is_some() {
            live.stored_apart_through = more_after;
            if live.stored_active.is_none() {
                live.record.next_entry = journal_len;
                live.stored_next_entry = journal_len;
                store_checkpoint(
                    &mut self.rollouts,
                    &mut self.checkpoint_children,
                    &mut self.overviews,
                    rollout_id,
                    live,
                );
                self.active.insert(rollout_id, ());
                live.stored_active = Some(true);
            }
            return;
        }
        let mut live = self.live.remove(&rollout_id).expect("the rollout is live");
        live.record.next_entry = journal_len;
        store_overview(&mut self.overviews, rollout_id, &live);
        self.rollouts.remove(&rollout_id);
        // Its runs in memory 29 go a slice at a time.
        self.children_to_prune = true;
        self.active.remove(&rollout_id);
        let children = self.finished.store_record(rollout_id, live.record);
        self.freeing.push(children);
        self.prune_finished_checkpoints();
    }

    /// Removes a slice of what stored rollouts left behind: children of pruned finished
    /// rollouts, runs of removed checkpoints, and on the heap the children of rollouts stored
    /// apart. Returns whether more may be left.
    pub(super) fn prune_children_slice(&mut self) -> bool {
        if let Some(children) = self.freeing.last_mut() {
            if !children.free_some(FREE_SLICE) {
                self.freeing.pop();
            }
        }
        if self.children_to_prune {
            let rollouts = &self.rollouts;
            let planning = &self.planning;
            // A rollout being planned stores its runs before its checkpoint.
            let checkpointed =
                |rollout_id| rollouts.contains_key(&rollout_id) || planning.contains(&rollout_id);
            let finished_left = self.finished.prune_slice(checkpointed);
            let runs_left = self.checkpoint_children.prune_slice(checkpointed);
            self.children_to_prune = finished_left || runs_left;
        }
        self.leftovers()
    }

    /// Whether [`Self::prune_children_slice`] has more to do.
    pub(super) fn leftovers(&self) -> bool {
        self.children_to_prune || !self.freeing.is_empty()
    }

    /// Why a rollout cannot be loaded: it never existed, or its checkpoint was pruned.
    fn missing(&self, rollout_id: u64) -> ErrorKind {
        if self.overviews.contains_key(&rollout_id) {
            ErrorKind::RolloutDetailsPruned { rollout_id }
        } else {
            ErrorKind::RolloutNotFound { rollout_id }
        }
    }

    /// Drops the oldest finished rollout beyond [`RETAINED_FINISHED_CHECKPOINTS`]: its record
    /// and children (stored apart) or its checkpoint (finished before they were); its overview
    /// stays. Runs as each rollout finishes, so it removes at most one a time, skipping the few
    /// active rollouts.
    fn prune_finished_checkpoints(&mut self) {
        let finished = self.rollouts.len() - self.active.len() + self.finished.len();
        if finished <= RETAINED_FINISHED_CHECKPOINTS {
            return;
        }
        let oldest_checkpoint = self.rollouts.keys().find(|rollout_id| {
            !self.active.contains_key(rollout_id) && self.overviews.contains_key(rollout_id)
        });
        match (oldest_checkpoint, self.finished.first_id()) {
            (Some(checkpoint), Some(apart)) if apart < checkpoint => self.prune_apart(apart),
            (Some(checkpoint), _) => {
                self.rollouts.remove(&checkpoint);
                self.children_to_prune = true;
            }
            (None, Some(apart)) => self.prune_apart(apart),
            (None, None) => {}
        }
    }

    fn prune_apart(&mut self, rollout_id: u64) {
        self.finished.remove(rollout_id);
        self.children_to_prune = true;
    }

    /// Also once no rollout is on the heap: none needs the lines, and the fold only empties the
    /// log (up to 4,095 lines, 0.4 MB, were left behind a rollout's end otherwise).
    fn fold_if_long(&mut self) {
        let journal = self.journal();
        if journal.len() >= self.fold_every || self.live.is_empty() && !journal.is_empty() {
            self.fold();
        }
    }

    /// Folds the journal: every live rollout whose checkpoint does not start at the new log's
    /// start (it has unfolded lines, or its checkpoint points into the old log) writes its
    /// checkpoint, and the log starts again empty. Every active rollout is live, so no line is
    /// lost.
    pub(super) fn fold(&mut self) {
        let journal = self.journal.take().expect("not folding");
        if journal.is_empty() {
            self.journal = Some(journal);
            return;
        }
        // Inactive rollouts write no lines (a command that would activate one checkpoints it);
        // one still storing its children apart needs its lines until then, so it is
        // checkpointed, as finished, like an active one (its children unchanged since: its
        // record only). Storing them all here instead cost 1.02 B instructions at 10,000
        // children, when a fold came with a rollout's end.
        let stale = |live: &&mut Live| {
            (live.record.is_active() || live.is_storing_apart())
                && (live.unfolded > 0 || live.stored_next_entry != 0)
        };
        for (&rollout_id, live) in self.live.iter_mut().filter(|(_, live)| stale(live)) {
            live.record.next_entry = 0;
            live.stored_next_entry = 0;
            live.unfolded = 0;
            store_checkpoint(
                &mut self.rollouts,
                &mut self.checkpoint_children,
                &mut self.overviews,
                rollout_id,
                live,
            );
        }
        let (index, data) = journal.into_memories();
        self.journal = Some(Log::new(index, data));
    }
}

pub(super) fn append<T: Serialize + serde::de::DeserializeOwned, M: Memory>(
    log: &StableLog<T, M>,
    item: T,
) {
    log.append(&Cbor(item))
        .expect("stable memory grows while the subnet has room");
}

/// Records in the fleet registry what a finished child shows: one write per child and rollout
/// (its snapshots taken and replaced along the way included), not one per event. The fleet
/// registry refuses only children it does not hold, and a claimed child cannot leave it, so a
/// refusal is ignored.
fn observe<M: Memory>(
    fleet: &mut Fleet<M>,
    engine: &Rollout,
    release: Option<ModuleHash>,
    event: &Event,
) {
    let EventKind::ChildFinished { child, verdict } = &event.kind else {
        return;
    };
    let Some(state) = engine.child(child) else {
        return;
    };
    let module = match verdict {
        Verdict::Upgraded => Some(release),
        Verdict::RolledBack(RollbackCause::Restore) => Some(state.restored_module()),
        Verdict::RolledBack(_) => Some(state.previous_module()),
        _ => None,
    };
    let snapshots = state
        .snapshots()
        .iter()
        .filter(|snapshot| snapshot.made_by_deployer)
        .map(|snapshot| snapshot.id.clone())
        .collect();
    let canister_id = fleet::canister_id(child);
    let _ = fleet.record_child_end(&canister_id, module, snapshots, event.at);
}
