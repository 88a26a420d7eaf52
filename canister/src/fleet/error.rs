//! Why the fleet registry refused a request. Every variant carries the facts a client needs to
//! react programmatically, and [`FleetError::message`] says what to do next.

use std::fmt;

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

/// The most canister ids an error lists; `total` says how many there were. A claim over a
/// whole fleet could otherwise produce an error larger than the 2 MiB reply limit.
pub const MAX_LISTED_CHILDREN: usize = 100;
/// The most canisters one `adopt_children` call takes: each costs a `canister_status` call, all
/// made at once, and the IC queues at most 500 calls to the management canister; and the reply
/// (a `ChildInfo` each) must stay under the 2 MiB reply limit.
pub const MAX_ADOPTED_PER_CALL: usize = 100;

/// Why the fleet registry refused a request. Match on this, not on the message.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum FleetError {
    /// The canister is not a child: it was never adopted, or it was released.
    NotAdopted { canister_id: Principal },
    /// The canister is already a child. Adopting it again changed nothing.
    AlreadyAdopted {
        canister_id: Principal,
        adopted_at: u64,
        adopted_by: Principal,
    },
    /// Some of the named canisters are not children (the first [`MAX_LISTED_CHILDREN`]).
    UnknownChildren {
        canister_ids: Vec<Principal>,
        total: u64,
    },
    /// An explicit selection names these canisters more than once.
    RepeatedChildren {
        canister_ids: Vec<Principal>,
        total: u64,
    },
    /// A label key is empty or too long (UTF-8 bytes). `key` is cut to `max` bytes.
    LabelKeyLength { key: String, length: u64, max: u64 },
    /// A label value is too long (UTF-8 bytes).
    LabelValueLength { key: String, length: u64, max: u64 },
    /// The same label key appears twice in one request.
    RepeatedLabelKey { key: String },
    /// A child would carry more labels than allowed, or a filter names more labels than a child
    /// can carry.
    TooManyLabels { count: u64, max: u64 },
    /// A module hash filter is not a 32-byte SHA-256.
    InvalidModuleHash { length: u64 },
    /// Some children are held by other active rollouts (the first [`MAX_LISTED_CHILDREN`]).
    ClaimConflict {
        conflicts: Vec<ChildClaim>,
        total: u64,
    },
    /// The child is held by an active rollout and cannot be released.
    Claimed {
        canister_id: Principal,
        rollout_id: u64,
    },
    /// The deployer already records as many snapshots of the child as the IC lets it hold.
    SnapshotLimit { canister_id: Principal, max: u64 },
    /// One adoption names more canisters than [`MAX_ADOPTED_PER_CALL`].
    TooManyToAdopt { count: u64, max: u64 },
    /// The canister is the deployer itself or a registered chunk store: never a child.
    NotAChildCanister { canister_id: Principal },
}

/// A child and the active rollout that holds it.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ChildClaim {
    pub canister_id: Principal,
    pub rollout_id: u64,
}

impl FleetError {
    /// A sentence that says what went wrong and what to do next.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAdopted { canister_id } => write!(
                f,
                "{canister_id} is not a child of the deployer: adopt it first (list_children \
                 shows the children)"
            ),
            Self::AlreadyAdopted {
                canister_id,
                adopted_at,
                adopted_by,
            } => write!(
                f,
                "{canister_id} is already a child, adopted by {adopted_by} at {adopted_at} ns; \
                 nothing changed: change its labels with set_labels"
            ),
            Self::UnknownChildren {
                canister_ids,
                total,
            } => write!(
                f,
                "{total} of the named canisters are not children ({}): adopt them first or \
                 leave them out",
                listed(canister_ids, *total)
            ),
            Self::RepeatedChildren {
                canister_ids,
                total,
            } => write!(
                f,
                "{total} canisters are named more than once ({}): name each child once",
                listed(canister_ids, *total)
            ),
            Self::LabelKeyLength { key, length, max } => write!(
                f,
                "label key {key:?} is {length} bytes of UTF-8; a key must be 1 to {max} bytes"
            ),
            Self::LabelValueLength { key, length, max } => write!(
                f,
                "the value of label {key:?} is {length} bytes of UTF-8; a value may be at most \
                 {max} bytes"
            ),
            Self::RepeatedLabelKey { key } => write!(
                f,
                "label key {key:?} appears more than once: give each key one value"
            ),
            Self::TooManyLabels { count, max } => write!(
                f,
                "{count} labels are more than the {max} a child may carry: remove some with \
                 remove_label first, or name fewer"
            ),
            Self::InvalidModuleHash { length } => write!(
                f,
                "a module hash is a 32-byte SHA-256, this one is {length} bytes: pass the raw \
                 digest, not its hex text"
            ),
            Self::ClaimConflict { conflicts, total } => {
                let shown: Vec<String> = conflicts
                    .iter()
                    .map(|claim| format!("{} by rollout {}", claim.canister_id, claim.rollout_id))
                    .collect();
                write!(
                    f,
                    "{total} children are held by other active rollouts ({}{}): wait for those \
                     rollouts to end or abort them, or leave these children out",
                    shown.join(", "),
                    more(shown.len(), *total)
                )
            }
            Self::Claimed {
                canister_id,
                rollout_id,
            } => write!(
                f,
                "{canister_id} is held by active rollout {rollout_id}: wait for the rollout to \
                 end or abort it, then release the child"
            ),
            Self::SnapshotLimit { canister_id, max } => write!(
                f,
                "the deployer already records {max} snapshots of {canister_id}, the IC's limit: \
                 forget the snapshot that was replaced or deleted before recording a new one"
            ),
            Self::TooManyToAdopt { count, max } => write!(
                f,
                "{count} canisters in one adoption, more than the {max} one call takes: adopt \
                 them in calls of at most {max}"
            ),
            Self::NotAChildCanister { canister_id } => write!(
                f,
                "{canister_id} is the deployer itself or one of its chunk stores, which it does \
                 not upgrade as a child: adopt only the fleet's canisters"
            ),
        }
    }
}

impl std::error::Error for FleetError {}

fn listed(canister_ids: &[Principal], total: u64) -> String {
    let shown: Vec<String> = canister_ids.iter().map(Principal::to_text).collect();
    format!("{}{}", shown.join(", "), more(shown.len(), total))
}

fn more(shown: usize, total: u64) -> String {
    match total.saturating_sub(shown as u64) {
        0 => String::new(),
        hidden => format!(" and {hidden} more"),
    }
}

/// Collects the first [`MAX_LISTED_CHILDREN`] items of an error list and counts them all.
#[derive(Debug)]
pub(super) struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            total: 0,
        }
    }
}

impl<T> Listed<T> {
    pub fn push(&mut self, item: T) {
        if self.items.len() < MAX_LISTED_CHILDREN {
            self.items.push(item);
        }
        self.total += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}
