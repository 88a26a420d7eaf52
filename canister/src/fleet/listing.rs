//! Listing children page by page, and selecting them for a rollout.
//!
//! A page is bounded twice: by its size (so the reply stays far below the 3 MiB query reply
//! limit) and by the index entries its scan may read, [`SCAN_BUDGET`] (so the work stays far
//! below the 5 B query instruction limit even when a filter of several labels matches few
//! children). A page cut by the budget may hold fewer children than asked, even none, and still
//! name a `next` child: keep paging until `next` is null.

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

    /// The children a rollout selects, with their records: lazily, in canister-id byte order
    /// (`All`, `Labels`) or in the given order (`Explicit`). Without a page bound: meant for an
    /// update call, whose instruction limit is eight times a query's.
    pub fn select(
        &self,
        selector: &Selector,
    ) -> Result<Box<dyn Iterator<Item = (Principal, ChildRecord)> + '_>, FleetError> {
        let ids: Box<dyn Iterator<Item = ChildId> + '_> = match selector {
            // One walk over the records: no lookup per child.
            Selector::All => {
                let all = self.children.iter().map(|entry| {
                    let (id, stored) = entry.into_pair();
                    (canister_id(&id), stored.decode())
                });
                return Ok(Box::new(all));
            }
            Selector::Labels(labels) => {
                let postings = label_postings(labels)?;
                Box::new(self.matches(postings, None))
            }
            Selector::Explicit(canister_ids) => Box::new(self.explicit(canister_ids)?.into_iter()),
        };
        Ok(Box::new(ids.map(|id| {
            let record = self.stored(&id);
            (canister_id(&id), record)
        })))
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

    /// Checks an explicit selection: every child adopted, none named twice.
    fn explicit(&self, canister_ids: &[Principal]) -> Result<Vec<ChildId>, FleetError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut repeated = Listed::default();
        let mut unknown = Listed::default();
        let ids: Vec<ChildId> = canister_ids.iter().map(child_id).collect();
        for (canister_id, id) in canister_ids.iter().zip(&ids) {
            if !seen.insert(id) {
                repeated.push(*canister_id);
            } else if !self.children.contains_key(id) {
                unknown.push(*canister_id);
            }
        }
        if !repeated.is_empty() {
            return Err(FleetError::RepeatedChildren {
                canister_ids: repeated.items,
                total: repeated.total,
            });
        }
        if !unknown.is_empty() {
            return Err(FleetError::UnknownChildren {
                canister_ids: unknown.items,
                total: unknown.total,
            });
        }
        Ok(ids)
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
