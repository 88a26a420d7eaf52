//! The IC chunk store that serves each subnet: the deployer itself on its own subnet, an
//! empty canister registered for it (memory 16) on any other. Chunked installs name it; the
//! driver uploads a release's chunks into it first.

use candid::Principal;
use ic_stable_structures::Memory;

use super::{ChunkStore, Rollouts};
use crate::engine::{Delivery, ModuleHash, SubnetIndex};
use crate::error::ErrorKind;

/// Where a subnet's children get chunked modules from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubnetStore {
    /// The deployer shares the subnet and is the store itself.
    Deployer,
    Canister(Principal),
}

impl<M: Memory> Rollouts<M> {
    /// Records `store` as the chunk store for children on `subnet`; replaces an earlier one.
    pub fn register_store(&mut self, subnet: Principal, store: Principal) {
        self.stores.insert(subnet, store);
    }

    /// The registered stores, by subnet.
    pub fn stores(&self) -> Vec<ChunkStore> {
        self.stores
            .iter()
            .map(|entry| ChunkStore {
                subnet: *entry.key(),
                canister_id: entry.value(),
            })
            .collect()
    }

    /// Forgets the store of `subnet` (the canister itself is left as it is). Refused while an
    /// active rollout installs through chunk stores: its next install there would find none.
    pub fn unregister_store(&mut self, subnet: Principal) -> Result<ChunkStore, ErrorKind> {
        let Some(canister_id) = self.stores.get(&subnet) else {
            return Err(ErrorKind::NoChunkStore { subnet });
        };
        let chunked = self.live.iter().find(|(_, live)| {
            live.record.is_active()
                && live
                    .record
                    .engine
                    .release()
                    .is_some_and(|release| release.delivery == Delivery::ChunkStore)
        });
        if let Some((&rollout_id, _)) = chunked {
            return Err(ErrorKind::StoreInUse { subnet, rollout_id });
        }
        self.stores.remove(&subnet);
        Ok(ChunkStore {
            subnet,
            canister_id,
        })
    }

    /// The rollout's chunked release and the subnets of its children: the stores to fill before
    /// the first install there. Uploading at a subnet's first install left its installs waiting
    /// behind the upload (16 of the canary's 48 rounds at 1,000 children); begun with the
    /// rollout, it overlaps the children's stops and snapshots. `None` for a release installed
    /// inline. One pass over the children, marking a flag per subnet (about 15 instructions a
    /// child), once per rollout and deployer run.
    pub fn stores_to_fill(&self, rollout_id: u64) -> Option<(ModuleHash, Vec<SubnetIndex>)> {
        let engine = &self.live.get(&rollout_id)?.record.engine;
        let release = engine
            .release()
            .filter(|release| release.delivery == Delivery::ChunkStore)?;
        let mut present: Vec<bool> = Vec::new();
        for child in engine.children() {
            let index = child.subnet().0 as usize;
            if index >= present.len() {
                present.resize(index + 1, false);
            }
            present[index] = true;
        }
        let subnets = (0u32..)
            .zip(present)
            .filter(|(_, present)| *present)
            .map(|(index, _)| SubnetIndex(index))
            .collect();
        Some((release.module_hash, subnets))
    }

    /// Whether `canister` is registered as some subnet's chunk store.
    pub fn is_store(&self, canister: Principal) -> bool {
        self.stores.iter().any(|entry| entry.value() == canister)
    }

    /// The store serving `subnet`, the deployer's own subnet being `own_subnet`.
    pub fn store_for(&self, subnet: Principal, own_subnet: Principal) -> Option<SubnetStore> {
        if subnet == own_subnet {
            return Some(SubnetStore::Deployer);
        }
        self.stores.get(&subnet).map(SubnetStore::Canister)
    }
}
