//! What the registry keeps per child ([`ChildRecord`], stored as CBOR), and how it is shown
//! ([`ChildInfo`], Candid) and handed to the rollout engine ([`ChildRecord::spec`]).

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;

use super::labels::{self, Label, Labels};
use crate::engine::{
    ChildId, ChildSpec, ExistingSnapshot, ModuleHash, Nanos, SnapshotId, SubnetIndex,
};

/// One child, as stored under its canister id. The serde names are stored: renaming a field is
/// a schema change (`fleet::tests` pins the bytes). New fields must be `Option`s or carry
/// `#[serde(default)]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChildRecord {
    /// The subnet the child runs on, numbered by the registry (see `Fleet::subnet`).
    pub subnet: SubnetIndex,
    pub labels: Labels,
    /// The module hash last read from `canister_status`; `None` when no module was installed.
    pub module_hash: Option<ModuleHash>,
    pub adopted_at: Nanos,
    pub adopted_by: Principal,
    /// When `module_hash` was last read.
    pub last_checked_at: Nanos,
    /// The snapshots the deployer took of the child and has not seen deleted, oldest first.
    /// Only these may ever be replaced or deleted by the deployer.
    pub snapshots: Vec<SnapshotId>,
}

impl ChildRecord {
    /// The child as the rollout engine plans it. `held` is every snapshot the child holds, as
    /// `list_canister_snapshots` returned them (oldest first); those the deployer took are marked
    /// as its own, so the engine replaces only those.
    pub fn spec(&self, id: ChildId, held: Vec<SnapshotId>) -> ChildSpec {
        let snapshots = held
            .into_iter()
            .map(|id| ExistingSnapshot {
                made_by_deployer: self.snapshots.contains(&id),
                id,
            })
            .collect();
        ChildSpec {
            id,
            module_hash: self.module_hash,
            subnet: self.subnet,
            snapshots,
        }
    }

    /// The child as replies show it; `subnet` is the principal behind [`ChildRecord::subnet`],
    /// `rollout_id` the rollout that holds the child.
    pub fn info(
        &self,
        canister_id: Principal,
        subnet: Principal,
        rollout_id: Option<u64>,
    ) -> ChildInfo {
        ChildInfo {
            canister_id,
            subnet,
            labels: labels::to_list(&self.labels),
            module_hash: self.module_hash.map(|hash| ByteBuf::from(hash.0.to_vec())),
            adopted_at: self.adopted_at,
            adopted_by: self.adopted_by,
            last_checked_at: self.last_checked_at,
            snapshots: self
                .snapshots
                .iter()
                .map(|id| ByteBuf::from(id.0.clone()))
                .collect(),
            rollout_id,
        }
    }
}

/// A child as `list_children` shows it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    pub canister_id: Principal,
    pub subnet: Principal,
    /// In key order.
    pub labels: Vec<Label>,
    pub module_hash: Option<ByteBuf>,
    /// Nanoseconds since the epoch, like every time in the interface.
    pub adopted_at: u64,
    pub adopted_by: Principal,
    pub last_checked_at: u64,
    /// Ids of the snapshots the deployer took of the child, oldest first.
    pub snapshots: Vec<ByteBuf>,
    /// The active rollout that holds the child.
    pub rollout_id: Option<u64>,
}
