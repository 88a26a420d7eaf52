//! The fleet's composition as running counts: children per subnet and per module, changed with
//! every adoption, release and recorded module, so that dashboards (`/metrics`, `/status`) read
//! a few entries instead of scanning 100,000 children.
//!
//! One stable map (memory 22) of counts, keyed by a tag byte and what is counted:
//!
//! ```text
//! 0x00                     the counts are complete (absent: count the children first)
//! 0x01 | subnet index (BE)  children on the subnet
//! 0x02 | module SHA-256     children running the module
//! 0x03                     children with no module installed
//! ```
//!
//! Release 0.1 had no counts: the first open of its memory by this build counts the children
//! once (in `post_upgrade`) and writes the marker.

use std::borrow::Cow;

use ic_stable_structures::storable::{Bound, Storable};
use ic_stable_structures::{Memory, StableBTreeMap};

use super::index::Children;
use crate::engine::{ModuleHash, SubnetIndex};

/// What one count is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Counted {
    Complete,
    Subnet(SubnetIndex),
    Module(ModuleHash),
    NoModule,
}

impl Counted {
    fn module(module: Option<ModuleHash>) -> Counted {
        module.map_or(Counted::NoModule, Counted::Module)
    }
}

const COMPLETE_TAG: u8 = 0;
const SUBNET_TAG: u8 = 1;
const MODULE_TAG: u8 = 2;
const NO_MODULE_TAG: u8 = 3;

impl Storable for Counted {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned((*self).into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Counted::Complete => vec![COMPLETE_TAG],
            Counted::Subnet(SubnetIndex(index)) => {
                let mut bytes = vec![SUBNET_TAG];
                bytes.extend_from_slice(&index.to_be_bytes());
                bytes
            }
            Counted::Module(ModuleHash(hash)) => {
                let mut bytes = vec![MODULE_TAG];
                bytes.extend_from_slice(&hash);
                bytes
            }
            Counted::NoModule => vec![NO_MODULE_TAG],
        }
    }

    /// Panics on bytes no build wrote: only a bug or corrupt memory could have stored them.
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        match (bytes[0], &bytes[1..]) {
            (COMPLETE_TAG, []) => Counted::Complete,
            (SUBNET_TAG, index) => Counted::Subnet(SubnetIndex(u32::from_be_bytes(
                index.try_into().expect("a subnet index is 4 bytes"),
            ))),
            (MODULE_TAG, hash) => Counted::Module(ModuleHash(
                hash.try_into().expect("a module hash is 32 bytes"),
            )),
            (NO_MODULE_TAG, []) => Counted::NoModule,
            _ => panic!("a stored composition key has a known tag"),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 33,
        is_fixed_size: false,
    };
}

/// The fleet's running counts, see the module docs.
pub(super) struct Composition<M: Memory> {
    counts: StableBTreeMap<Counted, u64, M>,
}

impl<M: Memory> Composition<M> {
    /// Opens the counts, counting `children` first when they were never counted (a trap undoes
    /// a partial count with the rest of the message).
    pub(super) fn init(memory: M, children: &Children<M>) -> Self {
        let mut composition = Self {
            counts: StableBTreeMap::init(memory),
        };
        if !composition.counts.contains_key(&Counted::Complete) {
            for entry in children.iter() {
                let record = entry.value().decode();
                composition.add(record.subnet, record.module_hash);
            }
            composition.counts.insert(Counted::Complete, 0);
        }
        composition
    }

    pub(super) fn add(&mut self, subnet: SubnetIndex, module: Option<ModuleHash>) {
        self.change(Counted::Subnet(subnet), 1);
        self.change(Counted::module(module), 1);
    }

    pub(super) fn remove(&mut self, subnet: SubnetIndex, module: Option<ModuleHash>) {
        self.change(Counted::Subnet(subnet), -1);
        self.change(Counted::module(module), -1);
    }

    pub(super) fn move_module(&mut self, from: Option<ModuleHash>, to: Option<ModuleHash>) {
        if from != to {
            self.change(Counted::module(from), -1);
            self.change(Counted::module(to), 1);
        }
    }

    /// Children per subnet index, in index order; subnets left with none are absent.
    pub(super) fn by_subnet(&self) -> Vec<(SubnetIndex, u64)> {
        self.counts
            .range(Counted::Subnet(SubnetIndex(0))..)
            .map_while(|entry| match *entry.key() {
                Counted::Subnet(subnet) => Some((subnet, entry.value())),
                _ => None,
            })
            .collect()
    }

    /// Children per module (`None`: no module installed), modules in hash order, then `None`.
    pub(super) fn by_module(&self) -> Vec<(Option<ModuleHash>, u64)> {
        self.counts
            .range(Counted::Module(ModuleHash([0; 32]))..)
            .map(|entry| match *entry.key() {
                Counted::Module(module) => (Some(module), entry.value()),
                _ => (None, entry.value()),
            })
            .collect()
    }

    /// Adds `delta` to a count, removing counts that reach zero so that a subnet or module no
    /// child has left costs nothing to list.
    fn change(&mut self, counted: Counted, delta: i64) {
        let count = self.counts.get(&counted).unwrap_or(0);
        let count = count
            .checked_add_signed(delta)
            .expect("a count never goes below zero");
        if count == 0 {
            self.counts.remove(&counted);
        } else {
            self.counts.insert(counted, count);
        }
    }
}
