//! The secondary index over children, and the scans that list and select from it.
//!
//! One stable map holds two kinds of entries, told apart by a leading tag byte:
//!
//! ```text
//! label entry:  0x00 | SHA-256(len(key) (u8) | key | len(value) (u8) | value)[..16] | child id
//! module entry: 0x01 | module SHA-256[..16]                                         | child id
//! ```
//!
//! Everything before the child id is a *posting prefix* of fixed length: the entries sharing it
//! are the children with that label (or module), contiguous and in child-id order, because map
//! order is byte order. The children map is keyed by the same child id bytes, so every list, and
//! the children map itself, is sorted the same way and a scan can intersect them by seeking (see
//! [`Matches`]).
//!
//! Labels are digested rather than stored in the key because a stable B-tree sizes its nodes
//! for the largest key its bound allows: with the label text inline (up to 224 bytes), a fleet of
//! 100,000 children with four labels used about 2.4 KB of stable memory per child, against
//! under 1 KB with 46-byte keys. Two label pairs (or modules) would share a list only if their
//! SHA-256 agreed on 128 bits, which no one can arrange (about 2^64 work); the lengths inside the
//! digested text keep `("ab", "c")` and `("a", "bc")` apart.

use std::borrow::Cow;
use std::ops::Bound;

use ic_stable_structures::storable::{Bound as StorableBound, Storable};
use ic_stable_structures::{Memory, StableBTreeMap};

use super::record::ChildRecord;
use crate::cbor::CborBytes;
use crate::engine::{ChildId, ModuleHash, MAX_CHILD_ID_BYTES};
use crate::hash::sha256;
use crate::memory::ByteKey;

const LABEL_TAG: u8 = 0;
const MODULE_TAG: u8 = 1;

/// Bytes of a digest kept in a posting prefix.
const DIGEST_BYTES: usize = 16;
const PREFIX_BYTES: usize = 1 + DIGEST_BYTES;
const MAX_INDEX_KEY_BYTES: usize = PREFIX_BYTES + MAX_CHILD_ID_BYTES;

/// The fixed-length head of an index entry: tag and digest.
pub(super) type PostingPrefix = [u8; PREFIX_BYTES];

pub(super) type Children<M> = StableBTreeMap<ChildId, CborBytes<ChildRecord>, M>;
pub(super) type Index<M> = StableBTreeMap<IndexKey, (), M>;

/// A child id is stored as its principal bytes, so map order is byte order.
impl Storable for ChildId {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// Panics on more than 29 bytes: only a bug or corrupt memory could have stored them.
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        ChildId::new(bytes.into_owned()).expect("a stored child id is a principal")
    }

    const BOUND: StorableBound = StorableBound::Bounded {
        max_size: MAX_CHILD_ID_BYTES as u32,
        is_fixed_size: false,
    };
}

/// An entry of the secondary index: a posting prefix followed by a child id.
pub(super) type IndexKey = ByteKey<MAX_INDEX_KEY_BYTES>;

impl IndexKey {
    pub fn new(prefix: &[u8], child: &ChildId) -> Self {
        Self::of(&[prefix, child.as_bytes()])
    }
}

/// The prefix of the children labelled `key = value`. The lengths fit in a byte because labels
/// are validated before they reach the index.
pub(super) fn label_prefix(key: &str, value: &str) -> PostingPrefix {
    let mut text = Vec::with_capacity(2 + key.len() + value.len());
    text.push(key.len() as u8);
    text.extend_from_slice(key.as_bytes());
    text.push(value.len() as u8);
    text.extend_from_slice(value.as_bytes());
    posting_prefix(LABEL_TAG, &sha256(&text))
}

/// The prefix of the children last seen running `hash`.
pub(super) fn module_prefix(hash: &ModuleHash) -> PostingPrefix {
    posting_prefix(MODULE_TAG, &hash.0)
}

fn posting_prefix(tag: u8, digest: &[u8; 32]) -> PostingPrefix {
    let mut prefix = [0; PREFIX_BYTES];
    prefix[0] = tag;
    prefix[1..].copy_from_slice(&digest[..DIGEST_BYTES]);
    prefix
}

/// A sorted list of children: all of them, or those sharing an index prefix.
#[derive(Clone, Debug)]
pub(super) enum Posting {
    Children,
    Prefix(PostingPrefix),
}

/// What one scan step found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Scan {
    /// A child in every posting list.
    Match(ChildId),
    /// No further child is in every list.
    Exhausted,
    /// The touch limit was reached; no child below `resume` matches that was not returned, and
    /// `resume` itself is undecided.
    Cut { resume: ChildId },
}

/// The children present in every one of its posting lists, in child-id order: a leapfrog
/// intersection. Each step seeks the next list to the current candidate or beyond; a child
/// every list agrees on in turn is a match, and a list that jumps ahead makes its child the new
/// candidate. A lone list is a plain ordered scan. Every seek reads one index entry and counts as
/// one *touch*, which is what bounds the work of a page.
pub(super) struct Matches<'a, M: Memory> {
    children: &'a Children<M>,
    index: &'a Index<M>,
    postings: Vec<Posting>,
    /// Every child below the target has been decided.
    target: Bound<ChildId>,
    next_posting: usize,
    /// How many lists in a row found exactly the candidate.
    agreeing: usize,
    exhausted: bool,
    touched: u64,
}

impl<'a, M: Memory> Matches<'a, M> {
    /// Scans from `from` (inclusive). No postings means every child.
    pub fn new(
        children: &'a Children<M>,
        index: &'a Index<M>,
        mut postings: Vec<Posting>,
        from: Option<ChildId>,
    ) -> Self {
        if postings.is_empty() {
            postings.push(Posting::Children);
        }
        Self {
            children,
            index,
            postings,
            target: from.map_or(Bound::Unbounded, Bound::Included),
            next_posting: 0,
            agreeing: 0,
            exhausted: false,
            touched: 0,
        }
    }

    /// Index entries (or children keys) read so far.
    #[cfg(test)]
    pub fn touched(&self) -> u64 {
        self.touched
    }

    /// Runs to the next match, or stops once `touch_limit` entries were read and the scan can
    /// resume at an undecided child. Right after a match one more entry may be read, so a cut
    /// happens after at most `touch_limit + 1` touches.
    pub fn step(&mut self, touch_limit: u64) -> Scan {
        loop {
            if self.exhausted {
                return Scan::Exhausted;
            }
            if self.touched >= touch_limit {
                if let Bound::Included(resume) = &self.target {
                    return Scan::Cut {
                        resume: resume.clone(),
                    };
                }
            }
            let Some(found) = self.seek(&self.postings[self.next_posting]) else {
                self.exhausted = true;
                return Scan::Exhausted;
            };
            self.touched += 1;
            self.next_posting = (self.next_posting + 1) % self.postings.len();
            self.agreeing = match &self.target {
                Bound::Included(candidate) if *candidate == found => self.agreeing + 1,
                _ => 1,
            };
            if self.agreeing == self.postings.len() {
                self.agreeing = 0;
                self.target = Bound::Excluded(found.clone());
                return Scan::Match(found);
            }
            self.target = Bound::Included(found);
        }
    }

    /// The first child of `posting` at or beyond the target.
    fn seek(&self, posting: &Posting) -> Option<ChildId> {
        match posting {
            Posting::Children => self
                .children
                .keys_range((self.target.clone(), Bound::Unbounded))
                .next(),
            Posting::Prefix(prefix) => {
                let start = match &self.target {
                    Bound::Included(child) => Bound::Included(IndexKey::new(prefix, child)),
                    Bound::Excluded(child) => Bound::Excluded(IndexKey::new(prefix, child)),
                    Bound::Unbounded => Bound::Included(IndexKey::of(&[prefix])),
                };
                let entry = self.index.keys_range((start, Bound::Unbounded)).next()?;
                let child = entry.as_bytes().strip_prefix(prefix.as_slice())?;
                Some(ChildId::new(child).expect("an indexed child id is a principal"))
            }
        }
    }
}

impl<M: Memory> Iterator for Matches<'_, M> {
    type Item = ChildId;

    fn next(&mut self) -> Option<ChildId> {
        match self.step(u64::MAX) {
            Scan::Match(child) => Some(child),
            Scan::Exhausted | Scan::Cut { .. } => None,
        }
    }
}
