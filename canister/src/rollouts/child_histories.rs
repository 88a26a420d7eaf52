//! Each finished rollout's children, one entry per child (memory 27), so that reading one
//! child's history of a rollout off the heap costs the same for 10 children as for 100,000: the
//! checkpoint holds every child in one value, and decoding it for one child cost 141 M
//! instructions at 1,000 children.
//!
//! The entries are written when a rollout becomes inactive (with its final checkpoint, which is
//! as long), and rewritten if a rollback makes it active and it finishes again. A rollout has at
//! least one child, so a rollout with any entry was indexed; one finished before the index
//! existed (or restored from a document without it) has none and is read from its checkpoint.
//! The entries of a rollout whose checkpoint was pruned are removed a slice at a time, so no
//! message pays for a whole fleet's.

use std::borrow::Cow;

use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};

use crate::cbor::CborBytes;
use crate::engine::{Child, ChildId, Rollout, MAX_CHILD_ID_BYTES};

/// Entries of pruned rollouts removed per commit.
pub(super) const PRUNE_SLICE: usize = 100;

const ROLLOUT_ID_BYTES: usize = 8;

/// The rollout id (u64 big-endian, so a rollout's children are one range) and the child's
/// principal bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ChildHistoryKey(Vec<u8>);

impl ChildHistoryKey {
    fn new(rollout_id: u64, child: &ChildId) -> Self {
        let mut bytes = Self::first_of(rollout_id).0;
        bytes.extend_from_slice(child.as_bytes());
        Self(bytes)
    }

    /// Sorts before every child of the rollout (and after every child of earlier ones).
    fn first_of(rollout_id: u64) -> Self {
        Self(rollout_id.to_be_bytes().to_vec())
    }

    fn rollout_id(&self) -> u64 {
        let mut id = [0; ROLLOUT_ID_BYTES];
        id.copy_from_slice(&self.0[..ROLLOUT_ID_BYTES]);
        u64::from_be_bytes(id)
    }
}

impl Storable for ChildHistoryKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Self(bytes.into_owned())
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: (ROLLOUT_ID_BYTES + MAX_CHILD_ID_BYTES) as u32,
        is_fixed_size: false,
    };
}

pub(super) type ChildHistories<M> = StableBTreeMap<ChildHistoryKey, CborBytes<Child>, M>;

/// Writes every child of a rollout that became inactive.
pub(super) fn index<M: Memory>(
    histories: &mut ChildHistories<M>,
    rollout_id: u64,
    engine: &Rollout,
) {
    for child in engine.children() {
        histories.insert(
            ChildHistoryKey::new(rollout_id, child.id()),
            CborBytes::encode(child),
        );
    }
}

/// Whether the rollout's children were written: `None` when it was not indexed (see the module
/// docs), else the child if it is one of them.
pub(super) fn lookup<M: Memory>(
    histories: &ChildHistories<M>,
    rollout_id: u64,
    child: &ChildId,
) -> Option<Option<Child>> {
    if let Some(entry) = histories.get(&ChildHistoryKey::new(rollout_id, child)) {
        return Some(Some(entry.decode()));
    }
    let indexed = histories
        .range(ChildHistoryKey::first_of(rollout_id)..)
        .next()
        .is_some_and(|entry| entry.key().rollout_id() == rollout_id);
    indexed.then_some(None)
}

/// Removes up to [`PRUNE_SLICE`] entries of the oldest indexed rollout if `is_pruned` says its
/// checkpoint is gone. Returns whether entries of pruned rollouts may remain.
pub(super) fn prune_slice<M: Memory>(
    histories: &mut ChildHistories<M>,
    is_pruned: impl Fn(u64) -> bool,
) -> bool {
    for _ in 0..PRUNE_SLICE {
        let Some(key) = histories.first_key_value().map(|(key, _)| key) else {
            return false;
        };
        if !is_pruned(key.rollout_id()) {
            // Checkpoints are pruned oldest first: a later rollout's are not either.
            return false;
        }
        histories.remove(&key);
    }
    true
}
