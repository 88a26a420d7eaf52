//! The IC chunk store that serves each subnet: the deployer itself on its own subnet, an
//! empty canister registered for it (memory 16) on any other. Chunked installs name it; the
//! driver uploads a release's chunks into it first.

use candid::Principal;
use ic_stable_structures::Memory;

use super::Rollouts;

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
