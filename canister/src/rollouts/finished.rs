//! Finished rollouts, stored with their children apart (memories 27 and 28): one entry per
//! child, so that reading one child's history off the heap costs the same for 10 children as
//! for 100,000, in id order. A checkpoint of schema 1 held every child in one value, and decoding
//! it for one child cost 141 M instructions at 1,000 children.
//!
//! A rollout that becomes inactive moves here: its children with their positions (memory 27), in
//! runs of [`CHILDREN_PER_ENTRY`] by id, each under the last id it holds, [`RUNS_PER_SLICE`]
//! runs per message, then its record without its children (memory 28); its checkpoint (memory
//! 6) is removed. Storing 100,000 children in one message cost 11.9 B instructions (CBOR of their
//! histories and the inserts), a third of the update limit. Each child is encoded once,
//! as the checkpoint would have encoded it. Runs, not one entry per child: a `StableBTreeMap`
//! insert rewrites every value of its node, and per child that cost 0.16 M instructions more
//! than the checkpoint (1.25 M to 1.41 M per child at 200 children); in runs of 32, 0.02 M
//! (1.28 M), and reading one child costs 4.6 M instructions at any fleet size. Loading it (a rollback of the whole
//! rollout makes it active again) puts the children back in order. A build that does not know
//! these memories sees such a rollout as one whose details were pruned: its overview stays.
//! Rollouts finished before these memories existed keep their checkpoints.
//!
//! The children of a rollout whose record was pruned are removed a slice at a time, so no
//! message pays for a whole fleet's.

use candid::Deserialize;
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Serialize;

use super::journal::RolloutRecord;
use crate::backup::SectionVisitor;
use crate::cbor::CborBytes;
use crate::engine::{Child, ChildId, ChildrenApart, Rollout, MAX_CHILD_ID_BYTES};
use crate::memory::ByteKey;

/// Children stored in one entry: reading one decodes this many (about 4 M instructions).
pub(super) const CHILDREN_PER_ENTRY: usize = 32;

/// Runs a finished rollout stores per message (about 10 M instructions): a rollout of 100,000
/// children stores its children in 782 messages rather than in one of 12 B instructions.
pub(super) const RUNS_PER_SLICE: usize = 4;

/// Entries of pruned rollouts removed per commit.
pub(super) const PRUNE_SLICE: usize = 4;

const ROLLOUT_ID_BYTES: usize = 8;

/// The rollout id (u64 big-endian, so a rollout's children are one range) and the principal
/// bytes of the last child of the run.
pub(super) type FinishedChildKey = ByteKey<{ ROLLOUT_ID_BYTES + MAX_CHILD_ID_BYTES }>;

impl FinishedChildKey {
    fn new(rollout_id: u64, child: &ChildId) -> Self {
        Self::of(&[&rollout_id.to_be_bytes(), child.as_bytes()])
    }

    /// Sorts before every child of the rollout (and after every child of earlier ones).
    fn first_of(rollout_id: u64) -> Self {
        Self::of(&[&rollout_id.to_be_bytes()])
    }

    pub(super) fn rollout_id(&self) -> u64 {
        let mut id = [0; ROLLOUT_ID_BYTES];
        id.copy_from_slice(&self.as_bytes()[..ROLLOUT_ID_BYTES]);
        u64::from_be_bytes(id)
    }
}

/// A child of a finished rollout as stored, in a run sorted by id; written from a reference
/// (`FinishedChild<&Child>`, the same bytes). The serde names are stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(super) struct FinishedChild<C = Child> {
    /// Its place among the rollout's children.
    position: u32,
    child: C,
}

/// The finished rollouts stored apart, see the module docs.
pub(super) struct FinishedRollouts<M: Memory> {
    /// Each rollout's record, its engine without children.
    records: StableBTreeMap<u64, CborBytes<RolloutRecord>, M>,
    children: StableBTreeMap<FinishedChildKey, CborBytes<Vec<FinishedChild>>, M>,
}

impl<M: Memory> FinishedRollouts<M> {
    pub(super) fn init(records: M, children: M) -> Self {
        Self {
            records: StableBTreeMap::init(records),
            children: StableBTreeMap::init(children),
        }
    }

    /// Stores the next [`RUNS_PER_SLICE`] runs of a finished rollout's children, in id order,
    /// starting after the child `after` (from the first when `None`). Returns the last child
    /// stored if children remain after it, `None` once every child is stored. The runs are the
    /// same whatever the slices, so storing them again from the first (after an upgrade)
    /// overwrites them with equal bytes. `stored` sees each child of the slice.
    pub(super) fn store_children_slice(
        &mut self,
        rollout_id: u64,
        engine: &Rollout,
        after: Option<&ChildId>,
        mut stored: impl FnMut(&ChildId),
    ) -> Option<ChildId> {
        let mut children = engine.children_by_id_after(after);
        let slice: Vec<FinishedChild<&Child>> = children
            .by_ref()
            .take(RUNS_PER_SLICE * CHILDREN_PER_ENTRY)
            .map(|(position, child)| FinishedChild { position, child })
            .inspect(|finished| stored(finished.child.id()))
            .collect();
        for run in slice.chunks(CHILDREN_PER_ENTRY) {
            let last = run.last().expect("chunks are not empty").child.id();
            let key = FinishedChildKey::new(rollout_id, last);
            self.children.insert(key, CborBytes::encode_items(run));
        }
        let more = children.next().is_some();
        slice
            .last()
            .filter(|_| more)
            .map(|stored| stored.child.id().clone())
    }

    /// Stores a finished rollout's record without its children, once every child was stored
    /// by [`Self::store_children_slice`].
    /// Without the ids of the children it claimed and its wave order either, which loading
    /// makes again from the children (writing them, with freeing the children at once, cost
    /// 26 M instructions at 10,000 children in the rollout's last message); `children_apart`
    /// tells such a record from one stored with them (before schema 2).
    /// Returns the children, for the caller to free a slice at a time.
    pub(super) fn store_record(
        &mut self,
        rollout_id: u64,
        mut record: RolloutRecord,
    ) -> ChildrenApart {
        let apart = record.engine.take_children_apart();
        record.children = Vec::new();
        record.children_apart = true;
        self.records.insert(rollout_id, CborBytes::encode(&record));
        apart
    }

    /// The rollout's record with its children put back, if it is stored here.
    pub(super) fn load(&self, rollout_id: u64) -> Option<RolloutRecord> {
        let mut record = self.records.get(&rollout_id)?.decode();
        let mut children: Vec<FinishedChild> =
            self.runs(rollout_id).flat_map(|run| run.decode()).collect();
        children.sort_unstable_by_key(|stored| stored.position);
        let children = children.into_iter().map(|stored| stored.child).collect();
        if record.children_apart {
            record.put_back_children(children);
            record.children_apart = false;
        } else {
            record.engine.put_back_children(children);
        }
        Some(record)
    }

    fn runs(&self, rollout_id: u64) -> impl Iterator<Item = CborBytes<Vec<FinishedChild>>> + '_ {
        self.children
            .range(FinishedChildKey::first_of(rollout_id)..)
            .take_while(move |entry| entry.key().rollout_id() == rollout_id)
            .map(|entry| entry.value())
    }

    pub(super) fn contains(&self, rollout_id: u64) -> bool {
        self.records.contains_key(&rollout_id)
    }

    /// One child of a rollout stored here: from the first run whose last id is not before it.
    pub(super) fn child(&self, rollout_id: u64, child: &ChildId) -> Option<Child> {
        let run = self
            .children
            .range(FinishedChildKey::new(rollout_id, child)..)
            .next()
            .filter(|entry| entry.key().rollout_id() == rollout_id)?
            .value()
            .decode();
        run.into_iter()
            .find(|stored| stored.child.id() == child)
            .map(|stored| stored.child)
    }

    /// Removes the record (rollouts active again are checkpointed, pruned ones keep their
    /// overview); the children go a slice at a time, see [`Self::prune_slice`].
    pub(super) fn remove(&mut self, rollout_id: u64) {
        self.records.remove(&rollout_id);
    }

    pub(super) fn len(&self) -> u64 {
        self.records.len()
    }

    pub(super) fn first_id(&self) -> Option<u64> {
        self.records.keys().next()
    }

    pub(super) fn last_id(&self) -> Option<u64> {
        self.records.keys().next_back()
    }

    /// Removes up to [`PRUNE_SLICE`] runs of the oldest rollout here whose record is gone;
    /// `is_checkpointed` says which rollouts are active again (their children stay here until
    /// they finish again). Records are pruned oldest first, so the scan stops at the first
    /// rollout still stored. Returns whether children of pruned rollouts may remain.
    pub(super) fn prune_slice(&mut self, is_checkpointed: impl Fn(u64) -> bool) -> bool {
        for _ in 0..PRUNE_SLICE {
            let Some(key) = self.children.keys().next() else {
                return false;
            };
            let rollout_id = key.rollout_id();
            if self.contains(rollout_id) || is_checkpointed(rollout_id) {
                return false;
            }
            self.children.remove(&key);
        }
        true
    }

    /// The children stored for a rollout.
    #[cfg(test)]
    pub(super) fn children_stored(&self, rollout_id: u64) -> usize {
        self.runs(rollout_id).map(|run| run.decode().len()).sum()
    }

    /// Replaces a record with bytes that do not decode.
    #[cfg(test)]
    pub(super) fn garble_record(&mut self, rollout_id: u64) {
        self.insert_record_bytes(rollout_id, vec![0xff]);
    }

    #[cfg(test)]
    pub(super) fn insert_record_bytes(&mut self, rollout_id: u64, bytes: Vec<u8>) {
        use ic_stable_structures::Storable;
        let stored = CborBytes::from_bytes(std::borrow::Cow::Owned(bytes));
        self.records.insert(rollout_id, stored);
    }

    pub(super) fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.map("finished_rollouts", &mut self.records);
        sections.map("finished_children", &mut self.children);
    }
}
