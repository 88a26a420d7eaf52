//! Listing children page by page, and selecting them for a rollout.
//!
//! A page is bounded twice: by its size (so the reply stays far below the 3 MiB query reply
//! limit) and by the index entries its scan may read, [`SCAN_BUDGET`] (so the work stays far
//! below the 5 B query instruction limit even when a filter of several labels matches few
//! children). A page cut by the budget may hold fewer children than asked, even none, and still
//! name a `next` child: keep paging until `next` is null.

use std::ops::Bound;

use candid::{CandidType, Deserialize, Principal};
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

use super::error::{FleetError, Listed};
use super::index::{label_prefix, module_prefix, Matches, Posting, Scan};
use super::labels::{self, Label};
use super::record::{ChildInfo, ChildRecord};
use super::{canister_id, child_id, Fleet};
use crate::engine::{ChildId, ModuleHash};

/// Most children per `list_children` page, and the default: a child with every label at its
/// largest and ten snapshots is about 4 KiB of Candid, so a page stays under 1 MiB.
pub const MAX_CHILD_PAGE: u32 = 200;
/// Most canister ids per id page, and the default.
pub const MAX_ID_PAGE: u32 = 1000;
/// Most index entries one page may read. A read is one seek in a stable B-tree (a few node
/// reads), so a page costs a small fraction of the query instruction limit.
pub const SCAN_BUDGET: u64 = 10_000;

/// Which children to list, and where to start.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListChildrenArg {
    /// Only children carrying every one of these labels.
    pub labels: Vec<Label>,
    /// Only children last seen running this module (SHA-256).
    pub module_hash: Option<ByteBuf>,
    /// The first canister id the page may hold: the `next` of the previous page.
    pub from: Option<Principal>,
    /// Default and maximum [`MAX_CHILD_PAGE`] (or [`MAX_ID_PAGE`] for ids).
    pub limit: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChildPage {
    /// In canister-id byte order.
    pub children: Vec<ChildInfo>,
    /// Pass as `from` for the next page; null once every child was considered.
    pub next: Option<Principal>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChildIdPage {
    /// In canister-id byte order.
    pub canister_ids: Vec<Principal>,
    /// Pass as `from` for the next page; null once every child was considered.
    pub next: Option<Principal>,
}

/// The children a rollout is to upgrade.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Every child.
    All,
    /// The children carrying every one of these labels.
    Labels(Vec<Label>),
    /// Exactly these children, in this order; each must be adopted and named once.
    Explicit(Vec<Principal>),
}

/// A selection read some children at a time, over several messages: where the last read
/// stopped, and for an explicit selection the canisters named twice or not adopted so far.
#[derive(Debug)]
pub struct SelectionReader {
    selector: Selector,
    /// `None` once every child was read.
    next: Option<SelectionNext>,
    seen: std::collections::BTreeSet<ChildId>,
    repeated: Listed<Principal>,
    unknown: Listed<Principal>,
}

#[derive(Debug)]
enum SelectionNext {
    /// The first child id to read (`All`, `Labels`).
    From(Option<ChildId>),
    /// The place in the list of the next canister (`Explicit`).
    At(usize),
}

impl SelectionReader {
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// Refuses an explicit selection that named a canister twice, or one that is no child:
    /// among those read so far (every one, once the selection is done).
    pub fn verdict(&self) -> Result<(), FleetError> {
        if !self.repeated.is_empty() {
            return Err(FleetError::RepeatedChildren {
                canister_ids: self.repeated.items.clone(),
                total: self.repeated.total,
            });
        }
        if !self.unknown.is_empty() {
            return Err(FleetError::UnknownChildren {
                canister_ids: self.unknown.items.clone(),
                total: self.unknown.total,
            });
        }
        Ok(())
    }
}

/// The ids of one page, and (for the tests' bounds) how many entries scanning them read.
pub(super) struct IdScan {
    pub ids: Vec<ChildId>,
    pub next: Option<ChildId>,
    #[cfg(test)]
    pub touched: u64,
}

impl<M: Memory> Fleet<M> {
    /// A page of children matching the filter, with their records.
    pub fn list(&self, arg: &ListChildrenArg) -> Result<ChildPage, FleetError> {
        let scan = self.scan_ids(arg, MAX_CHILD_PAGE)?;
        let children = scan
            .ids
            .iter()
            .map(|id| self.info_of(id, &self.stored(id)))
            .collect();
        Ok(ChildPage {
            children,
            next: scan.next.as_ref().map(canister_id),
        })
    }

    /// A page of the canister ids of children matching the filter.
    pub fn list_ids(&self, arg: &ListChildrenArg) -> Result<ChildIdPage, FleetError> {
        let scan = self.scan_ids(arg, MAX_ID_PAGE)?;
        Ok(ChildIdPage {
            canister_ids: scan.ids.iter().map(canister_id).collect(),
            next: scan.next.as_ref().map(canister_id),
        })
    }

    /// The children a rollout selects, with their records, in canister-id byte order (`All`,
    /// `Labels`) or in the given order (`Explicit`), all at once (see [`Self::select_some`]).
    pub fn select(&self, selector: &Selector) -> Result<Vec<(Principal, ChildRecord)>, FleetError> {
        let mut selection = self.selection(selector.clone())?;
        let mut selected = Vec::new();
        while !selection.is_done() {
            selected.extend(self.select_some(&mut selection, usize::MAX));
        }
        selection.verdict()?;
        Ok(selected)
    }

    /// A selection to read some children at a time (see [`Self::select_some`]); refuses a
    /// label filter that could never match.
    pub fn selection(&self, selector: Selector) -> Result<SelectionReader, FleetError> {
        if let Selector::Labels(labels) = &selector {
            label_postings(labels)?;
        }
        let next = match selector {
            Selector::Explicit(_) => SelectionNext::At(0),
            Selector::All | Selector::Labels(_) => SelectionNext::From(None),
        };
        Ok(SelectionReader {
            selector,
            next: Some(next),
            seen: std::collections::BTreeSet::new(),
            repeated: Listed::default(),
            unknown: Listed::default(),
        })
    }

    /// The selection's next children (at most `max`) with their records, in its order; none
    /// once every one was read. An explicit selection passes over the canisters it named
    /// before and those that are no children, which [`SelectionReader::verdict`] refuses. A
    /// label selection reads at most [`SCAN_BUDGET`] index entries, and may return fewer than
    /// `max` children (even none) before it is done.
    pub fn select_some(
        &self,
        selection: &mut SelectionReader,
        max: usize,
    ) -> Vec<(Principal, ChildRecord)> {
        let Some(next) = selection.next.take() else {
            return Vec::new();
        };
        let mut selected = Vec::new();
        match (next, &selection.selector) {
            (SelectionNext::At(at), Selector::Explicit(canister_ids)) => {
                let end = at.saturating_add(max).min(canister_ids.len());
                for canister_id in &canister_ids[at..end] {
                    let id = child_id(canister_id);
                    if selection.seen.contains(&id) {
                        selection.repeated.push(*canister_id);
                        continue;
                    }
                    match self.children.get(&id) {
                        Some(stored) => selected.push((*canister_id, stored.decode())),
                        None => selection.unknown.push(*canister_id),
                    }
                    selection.seen.insert(id);
                }
                selection.next = (end < canister_ids.len()).then_some(SelectionNext::At(end));
            }
            (SelectionNext::From(from), Selector::All) => {
                // One walk over the records: no lookup per child.
                let start = from.map_or(Bound::Unbounded, Bound::Included);
                let mut walk = self.children.range((start, Bound::Unbounded));
                for entry in walk.by_ref().take(max) {
                    let (id, stored) = entry.into_pair();
                    selected.push((canister_id(&id), stored.decode()));
                }
                selection.next = walk
                    .next()
                    .map(|entry| SelectionNext::From(Some(entry.key().clone())));
            }
            (SelectionNext::From(from), Selector::Labels(labels)) => {
                let postings = label_postings(labels).expect("checked by `selection`");
                let mut matches = self.matches(postings, from);
                // As a listing's page, a read gives up after its budget of index entries, so
                // that labels which together match few children cost a slice no more.
                selection.next = loop {
                    match matches.step(SCAN_BUDGET) {
                        Scan::Match(id) if selected.len() == max => {
                            break Some(SelectionNext::From(Some(id)))
                        }
                        Scan::Match(id) => {
                            let record = self.stored(&id);
                            selected.push((canister_id(&id), record));
                        }
                        Scan::Exhausted => break None,
                        Scan::Cut { resume } => break Some(SelectionNext::From(Some(resume))),
                    }
                };
            }
            _ => unreachable!("a selection's place fits its selector"),
        }
        selected
    }

    pub(super) fn scan_ids(
        &self,
        arg: &ListChildrenArg,
        max_page: u32,
    ) -> Result<IdScan, FleetError> {
        let mut postings = label_postings(&arg.labels)?;
        if let Some(hash) = &arg.module_hash {
            let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| {
                FleetError::InvalidModuleHash {
                    length: hash.len() as u64,
                }
            })?;
            postings.push(Posting::Prefix(module_prefix(&ModuleHash(hash))));
        }
        let limit = arg.limit.unwrap_or(max_page).clamp(1, max_page) as usize;
        let mut matches = self.matches(postings, arg.from.as_ref().map(child_id));
        let mut ids = Vec::with_capacity(limit);
        let next = loop {
            match matches.step(SCAN_BUDGET) {
                // The match after a full page is where the next page starts.
                Scan::Match(id) if ids.len() == limit => break Some(id),
                Scan::Match(id) => ids.push(id),
                Scan::Exhausted => break None,
                Scan::Cut { resume } => break Some(resume),
            }
        };
        Ok(IdScan {
            ids,
            next,
            #[cfg(test)]
            touched: matches.touched(),
        })
    }

    fn matches(&self, postings: Vec<Posting>, from: Option<ChildId>) -> Matches<'_, M> {
        Matches::new(&self.children, &self.index, postings, from)
    }
}

/// One posting list per label. A filter may name no more labels than a child can carry, and is
/// validated like labels: a key named twice could never match.
fn label_postings(filter: &[Label]) -> Result<Vec<Posting>, FleetError> {
    let valid = labels::validate(filter)?;
    Ok(valid
        .iter()
        .map(|(key, value)| Posting::Prefix(label_prefix(key, value)))
        .collect())
}
