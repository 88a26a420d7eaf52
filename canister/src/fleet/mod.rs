//! The fleet registry: the child canisters the deployer manages, their labels and the module each
//! is known to run.
//!
//! Plain Rust over stable memory: the caller passes the time, the caller's principal and what it
//! read from the IC; nothing here calls the IC.
//!
//! # The driver's contract
//!
//! - **Adoption.** Before [`Fleet::adopt`], read the canister's `canister_status` and check that
//!   the deployer is among `settings.controllers` (a successful read alone proves nothing: the
//!   canister itself and `status_visibility` viewers may read it too). Pass the `module_hash`
//!   read there and the subnet the canister runs on. Adopting a child twice is refused with
//!   [`FleetError::AlreadyAdopted`] and changes nothing (labels included): a retried request can
//!   treat that answer as success, and nobody overwrites another administrator's labels by
//!   accident.
//! - **Subnets.** The registry numbers subnets in the order it first sees them
//!   ([`SubnetIndex`], what the rollout engine groups children by) and never renumbers them, so
//!   a persisted rollout's indexes stay valid. [`Fleet::subnet`] maps an index back to the
//!   subnet's principal, where the driver finds or creates the chunk store.
//! - **Claims.** Before creating a rollout, [`Fleet::claim`] its children under the rollout id:
//!   it fails, claiming nothing, if another active rollout holds one of them. When the rollout
//!   ends (completed, aborted, rolled back), [`Fleet::end_claims`] frees them all at once, and
//!   [`Fleet::sweep_claims`] removes their entries a slice of children at a time after it
//!   ([`Fleet::release_claim`] frees named children at once, for a claim taken back).
//!   A claimed child cannot be released from the fleet. Claims live on the heap: they are the
//!   children of the active rollouts, which are stored with the rollouts, so after an upgrade
//!   the rollouts [`Fleet::restore_claim`] theirs as they are reloaded (before any message but
//!   `post_upgrade` runs). Taking or freeing a claim then writes no stable memory.
//! - **Observations.** When a rollout is done with a child, [`Fleet::record_child_end`] records
//!   in one write the module it left the child running and the snapshots the deployer owns of
//!   it (taken, and replaced ones forgotten). [`ChildRecord::spec`] then marks which of the
//!   child's snapshots are the deployer's, and the engine replaces only those.
//!
//! # Storage
//!
//! Four stable maps, each in its own virtual memory:
//!
//! | map        | key                                         | value                  |
//! |------------|---------------------------------------------|------------------------|
//! | children   | child id: principal bytes (≤ 29 B)          | CBOR [`ChildRecord`]   |
//! | index      | tag, 16-byte digest, child id (≤ 46 B)      | `()`                   |
//! | subnets    | subnet index (u32, big-endian)              | subnet principal bytes |
//! | counts     | tag, subnet index or module hash (≤ 33 B)   | u64: children counted  |
//!
//! The index entries are drawn in `index.rs`: one per label of each child (tag 0, digest of the
//! label) and one per child with a known module (tag 1, the module hash's first 16 bytes). Every
//! update keeps them equal to what a scan of the children implies, which the tests check after
//! every operation.
//!
//! Child ids are ordered by their bytes (not by `Principal`'s own `Ord`, which compares lengths
//! first): listings come in that order and their cursors are child ids.

mod claims;
mod composition;
mod error;
mod index;
mod labels;
mod listing;
mod record;

use candid::Principal;
use ic_stable_structures::{Memory, StableBTreeMap};

use crate::backup::SectionVisitor;
use crate::cbor::CborBytes;
use crate::engine::{
    ChildId, ModuleHash, Nanos, SnapshotId, SubnetIndex, MAX_SNAPSHOTS_PER_CANISTER,
};
use claims::Claims;
use composition::Composition;
use index::{label_prefix, module_prefix, Children, Index, IndexKey};

pub use error::{ChildClaim, FleetError, MAX_ADOPTED_PER_CALL, MAX_LISTED_CHILDREN};
pub use labels::{Label, Labels, MAX_LABELS_PER_CHILD, MAX_LABEL_KEY_BYTES, MAX_LABEL_VALUE_BYTES};
pub use listing::{
    ChildIdPage, ChildPage, ListChildrenArg, SelectionReader, Selector, MAX_CHILD_PAGE,
    MAX_ID_PAGE, SCAN_BUDGET,
};
pub use record::{ChildInfo, ChildRecord};

use error::Listed;

/// Children held by other rollouts, found by [`Fleet::check_claims`].
#[derive(Debug, Default)]
pub struct ClaimConflicts(Listed<ChildClaim>);

impl ClaimConflicts {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn verdict(&self) -> Result<(), FleetError> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(FleetError::ClaimConflict {
            conflicts: self.0.items.clone(),
            total: self.0.total,
        })
    }
}

/// The children of the deployer.
pub struct Fleet<M: Memory> {
    children: Children<M>,
    index: Index<M>,
    subnets: StableBTreeMap<u32, Principal, M>,
    composition: Composition<M>,
    /// The active rollout holding each claimed child (see the module docs).
    claims: Claims,
}

impl<M: Memory> Fleet<M> {
    /// Opens the registry stored in the four memories, creating it where they are empty.
    pub fn init(memories: FleetMemories<M>) -> Self {
        let children = StableBTreeMap::init(memories.children);
        Self {
            composition: Composition::init(memories.composition, &children),
            children,
            index: StableBTreeMap::init(memories.index),
            subnets: StableBTreeMap::init(memories.subnets),
            claims: Claims::default(),
        }
    }

    pub fn len(&self) -> u64 {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// See [`crate::backup`]. Claims are not exported: the active rollouts take them again.
    pub fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.map("fleet_children", &mut self.children);
        sections.map("fleet_index", &mut self.index);
        sections.map("fleet_subnets", &mut self.subnets);
        self.composition.visit_sections(sections);
    }

    pub fn get(&self, canister_id: &Principal) -> Option<ChildRecord> {
        self.children
            .get(&child_id(canister_id))
            .map(|stored| stored.decode())
    }

    /// The child as replies show it.
    pub fn info(&self, canister_id: &Principal) -> Result<ChildInfo, FleetError> {
        let (id, record) = self.child(canister_id)?;
        Ok(self.info_of(&id, &record))
    }

    /// The fleet by subnet and by module, from running counts: a few entries read, whatever
    /// the fleet's size.
    pub fn composition(&self) -> FleetComposition {
        FleetComposition {
            children: self.len(),
            claimed: self.claims.claimed(),
            by_subnet: self
                .composition
                .by_subnet()
                .into_iter()
                .map(|(index, count)| {
                    let subnet = self.subnet(index).expect("a counted subnet is numbered");
                    (subnet, count)
                })
                .collect(),
            by_module: self.composition.by_module(),
        }
    }

    /// The principal of a subnet the registry numbered.
    pub fn subnet(&self, index: SubnetIndex) -> Option<Principal> {
        self.subnets.get(&index.0)
    }

    /// Makes `canister_id` a child. See the module docs for what the driver checks first.
    pub fn adopt(
        &mut self,
        canister_id: Principal,
        subnet: Principal,
        module_hash: Option<ModuleHash>,
        labels: &[Label],
        now: Nanos,
        by: Principal,
    ) -> Result<(), FleetError> {
        let labels = labels::validate(labels)?;
        let id = child_id(&canister_id);
        if let Some(existing) = self.children.get(&id).map(|stored| stored.decode()) {
            return Err(FleetError::AlreadyAdopted {
                canister_id,
                adopted_at: existing.adopted_at,
                adopted_by: existing.adopted_by,
            });
        }
        for (key, value) in &labels {
            self.index
                .insert(IndexKey::new(&label_prefix(key, value), &id), ());
        }
        if let Some(hash) = &module_hash {
            self.index
                .insert(IndexKey::new(&module_prefix(hash), &id), ());
        }
        let subnet = self.intern_subnet(subnet);
        self.composition.add(subnet, module_hash);
        let record = ChildRecord {
            subnet,
            labels,
            module_hash,
            adopted_at: now,
            adopted_by: by,
            last_checked_at: now,
            snapshots: Vec::new(),
        };
        self.children.insert(id, CborBytes::encode(&record));
        Ok(())
    }

    /// Sets each given label, replacing the value of a key the child already carries. Labels not
    /// named keep their values.
    pub fn set_labels(
        &mut self,
        canister_id: &Principal,
        labels: &[Label],
    ) -> Result<(), FleetError> {
        let updates = labels::validate(labels)?;
        let (id, mut record) = self.child(canister_id)?;
        let added = updates
            .keys()
            .filter(|key| !record.labels.contains_key(*key))
            .count();
        if record.labels.len() + added > MAX_LABELS_PER_CHILD {
            return Err(labels::too_many(record.labels.len() + added));
        }
        for (key, value) in updates {
            let old = record.labels.insert(key.clone(), value.clone());
            if old.as_ref() == Some(&value) {
                continue;
            }
            if let Some(old) = old {
                self.index
                    .remove(&IndexKey::new(&label_prefix(&key, &old), &id));
            }
            self.index
                .insert(IndexKey::new(&label_prefix(&key, &value), &id), ());
        }
        self.children.insert(id, CborBytes::encode(&record));
        Ok(())
    }

    /// Removes the label `key`; `false` if the child did not carry it.
    pub fn remove_label(&mut self, canister_id: &Principal, key: &str) -> Result<bool, FleetError> {
        let (id, mut record) = self.child(canister_id)?;
        let Some(value) = record.labels.remove(key) else {
            return Ok(false);
        };
        self.index
            .remove(&IndexKey::new(&label_prefix(key, &value), &id));
        self.children.insert(id, CborBytes::encode(&record));
        Ok(true)
    }

    /// Forgets a child, which the deployer then no longer upgrades. Refused while an active
    /// rollout holds it. Returns what was recorded of it.
    pub fn release(&mut self, canister_id: &Principal) -> Result<ChildRecord, FleetError> {
        let (id, record) = self.child(canister_id)?;
        if let Some(rollout_id) = self.claims.holder(&id) {
            return Err(FleetError::Claimed {
                canister_id: *canister_id,
                rollout_id,
            });
        }
        for (key, value) in &record.labels {
            self.index
                .remove(&IndexKey::new(&label_prefix(key, value), &id));
        }
        if let Some(hash) = &record.module_hash {
            self.index.remove(&IndexKey::new(&module_prefix(hash), &id));
        }
        self.children.remove(&id);
        self.composition.remove(record.subnet, record.module_hash);
        Ok(record)
    }

    /// Records what a rollout left a child with, in one write: the module it runs, if the
    /// rollout knows it (`Some(None)`: no module installed), as read at `now`; and the
    /// snapshots the deployer now owns of it, oldest first. Refused, recording nothing, when
    /// that is more snapshots than the IC lets a canister hold.
    pub fn record_child_end(
        &mut self,
        canister_id: &Principal,
        module_hash: Option<Option<ModuleHash>>,
        snapshots: Vec<SnapshotId>,
        now: Nanos,
    ) -> Result<(), FleetError> {
        let (id, mut record) = self.child(canister_id)?;
        if snapshots.len() > MAX_SNAPSHOTS_PER_CANISTER {
            return Err(FleetError::SnapshotLimit {
                canister_id: *canister_id,
                max: MAX_SNAPSHOTS_PER_CANISTER as u64,
            });
        }
        record.snapshots = snapshots;
        if let Some(module_hash) = module_hash {
            if record.module_hash != module_hash {
                if let Some(old) = &record.module_hash {
                    self.index.remove(&IndexKey::new(&module_prefix(old), &id));
                }
                if let Some(new) = &module_hash {
                    self.index
                        .insert(IndexKey::new(&module_prefix(new), &id), ());
                }
                self.composition
                    .move_module(record.module_hash, module_hash);
                record.module_hash = module_hash;
            }
            record.last_checked_at = now;
        }
        self.children.insert(id, CborBytes::encode(&record));
        Ok(())
    }

    /// The active rollout that holds the child, if any.
    pub fn claim_of(&self, canister_id: &Principal) -> Option<u64> {
        self.claims.holder(&child_id(canister_id))
    }

    /// Marks every named child as held by `rollout_id`, or none of them: fails if one is not a
    /// child, or is held by another rollout. Children it already holds stay held, so a retried
    /// claim succeeds.
    pub fn claim(&mut self, canister_ids: &[Principal], rollout_id: u64) -> Result<(), FleetError> {
        let mut unknown = Listed::default();
        for canister_id in canister_ids {
            if !self.children.contains_key(&child_id(canister_id)) {
                unknown.push(*canister_id);
            }
        }
        if !unknown.is_empty() {
            return Err(FleetError::UnknownChildren {
                canister_ids: unknown.items,
                total: unknown.total,
            });
        }
        self.claim_selected(canister_ids, rollout_id)
    }

    /// As [`Self::claim`], for children just selected from the registry in the same message:
    /// they are children, so only the claims (on the heap) are checked, without a lookup of each
    /// in stable memory (at 1,000 children, 60 M instructions of the 127 M that starting a
    /// rollout cost).
    pub fn claim_selected(
        &mut self,
        canister_ids: &[Principal],
        rollout_id: u64,
    ) -> Result<(), FleetError> {
        let mut conflicts = ClaimConflicts::default();
        self.check_claims(canister_ids, rollout_id, &mut conflicts);
        conflicts.verdict()?;
        self.restore_claim(canister_ids, rollout_id);
        Ok(())
    }

    /// Adds to `conflicts` the named children another rollout than `rollout_id` holds: a
    /// selection read over several messages is checked a part at a time, and refused at its end.
    pub fn check_claims(
        &self,
        canister_ids: &[Principal],
        rollout_id: u64,
        conflicts: &mut ClaimConflicts,
    ) {
        for canister_id in canister_ids {
            if let Some(holder) = self
                .claims
                .holder(&child_id(canister_id))
                .filter(|&held_by| held_by != rollout_id)
            {
                conflicts.0.push(ChildClaim {
                    canister_id: *canister_id,
                    rollout_id: holder,
                });
            }
        }
    }

    /// Marks the named children as held by `rollout_id` without checking them: for the claims
    /// of a stored active rollout, checked when they were first taken, as it is reloaded.
    pub fn restore_claim(&mut self, canister_ids: &[Principal], rollout_id: u64) {
        for canister_id in canister_ids {
            self.claims.insert(child_id(canister_id), rollout_id);
        }
    }

    /// Ends every claim of `rollout_id` at once (its end: completed, aborted, rolled back); the
    /// children are free at once, and the heap's entries go with [`Self::sweep_claims`].
    pub fn end_claims(&mut self, rollout_id: u64) {
        self.claims.end(rollout_id);
    }

    /// Removes the named children's entries of claims of `rollout_id` that ended, a slice at a
    /// time; claims that hold are left.
    pub fn sweep_claims<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a ChildId>,
        rollout_id: u64,
    ) {
        self.claims.sweep(ids, rollout_id);
    }

    /// Entries of claims on the heap, void ones (not yet swept) included.
    #[cfg(test)]
    pub fn claim_entries(&self) -> usize {
        self.claims.entries()
    }

    /// Frees the named children that `rollout_id` holds; others are left as they are. Returns
    /// how many were freed.
    pub fn release_claim(&mut self, canister_ids: &[Principal], rollout_id: u64) -> u64 {
        let mut freed = 0;
        for canister_id in canister_ids {
            if self.claims.remove(&child_id(canister_id), rollout_id) {
                freed += 1;
            }
        }
        freed
    }

    fn child(&self, canister_id: &Principal) -> Result<(ChildId, ChildRecord), FleetError> {
        let id = child_id(canister_id);
        match self.children.get(&id).map(|stored| stored.decode()) {
            Some(record) => Ok((id, record)),
            None => Err(FleetError::NotAdopted {
                canister_id: *canister_id,
            }),
        }
    }

    /// The record of a child the index or a check has just shown to exist.
    fn stored(&self, id: &ChildId) -> ChildRecord {
        self.children
            .get(id)
            .expect("an indexed child is stored")
            .decode()
    }

    fn info_of(&self, id: &ChildId, record: &ChildRecord) -> ChildInfo {
        let subnet = self
            .subnet(record.subnet)
            .expect("a child's subnet is numbered");
        record.info(canister_id(id), subnet, self.claims.holder(id))
    }

    /// The subnet's number, numbering it if it is new. Scans the numbered subnets: the IC has a
    /// few dozen, so the scan costs about as much as the child's own insert.
    fn intern_subnet(&mut self, subnet: Principal) -> SubnetIndex {
        let known = self
            .subnets
            .iter()
            .find(|entry| entry.value() == subnet)
            .map(|entry| *entry.key());
        let index = known.unwrap_or_else(|| {
            let index = self.subnets.len() as u32;
            self.subnets.insert(index, subnet);
            index
        });
        SubnetIndex(index)
    }
}

/// How many children the fleet has, where, running what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetComposition {
    pub children: u64,
    /// Children held by an active rollout.
    pub claimed: u64,
    /// Subnets in the order the registry first saw them.
    pub by_subnet: Vec<(Principal, u64)>,
    /// `None`: no module installed.
    pub by_module: Vec<(Option<ModuleHash>, u64)>,
}

/// The stable memories of [`Fleet`], see [`crate::memory`].
pub struct FleetMemories<M: Memory> {
    pub children: M,
    pub index: M,
    pub subnets: M,
    pub composition: M,
}

/// The rollout engine's id of a canister.
pub fn child_id(canister_id: &Principal) -> ChildId {
    ChildId::new(canister_id.as_slice()).expect("a principal is at most 29 bytes")
}

/// The canister a rollout engine id names.
pub fn canister_id(child: &ChildId) -> Principal {
    Principal::from_slice(child.as_bytes())
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;
