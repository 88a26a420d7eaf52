//! The fleet's composition as running counts: children per subnet and per module, changed with
//! every adoption, release and recorded module, so that dashboards (`/metrics`, `/status`,
//! `fleet_summary`) read a few entries instead of scanning 100,000 children.
//!
//! The counts are slots of a `StableVec` (memory 22), one per thing counted, each a fixed 41
//! bytes written in place when its count changes; a heap mirror maps each thing to its slot and
//! count, so a change costs one slot write and a read touches no stable memory. Measured on a
//! rollout of 1,000 children (two counts change per child): a `StableBTreeMap` of counts cost
//! 116,000 instructions per child (reads and writes of tree nodes), these slots 10,000. Slots are never
//! removed: a subnet or module no child has left keeps a zero, skipped when listed; the slots
//! number the subnets and modules the fleet ever had.
//!
//! A slot: a tag byte, what is counted (32 bytes, zero-padded), the count (u64, big-endian).
//!
//! ```text
//! 0x00 | 0…                  the counts are complete (always slot 0; count 0)
//! 0x01 | subnet index (BE) 0…  children on the subnet
//! 0x02 | module SHA-256      children running the module
//! 0x03 | 0…                  children with no module installed
//! ```
//!
//! Release 0.1 had no counts: the first open of its memory by this build counts the children
//! once (in `post_upgrade`) and writes slot 0 last.

use std::borrow::Cow;
use std::collections::BTreeMap;

use ic_stable_structures::storable::{Bound, Storable};
use ic_stable_structures::{Memory, StableVec};

use super::index::Children;
use crate::backup::SectionVisitor;
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

/// One stored count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) counted: Counted,
    pub(super) count: u64,
}

const COMPLETE_TAG: u8 = 0;
const SUBNET_TAG: u8 = 1;
const MODULE_TAG: u8 = 2;
const NO_MODULE_TAG: u8 = 3;
const SLOT_BYTES: usize = 1 + 32 + 8;

impl Storable for Slot {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned((*self).into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut bytes = vec![0; SLOT_BYTES];
        let (tag, counted) = match self.counted {
            Counted::Complete => (COMPLETE_TAG, [0; 32]),
            Counted::Subnet(SubnetIndex(index)) => {
                let mut counted = [0; 32];
                counted[..4].copy_from_slice(&index.to_be_bytes());
                (SUBNET_TAG, counted)
            }
            Counted::Module(ModuleHash(hash)) => (MODULE_TAG, hash),
            Counted::NoModule => (NO_MODULE_TAG, [0; 32]),
        };
        bytes[0] = tag;
        bytes[1..33].copy_from_slice(&counted);
        bytes[33..].copy_from_slice(&self.count.to_be_bytes());
        bytes
    }

    /// Panics on bytes no build wrote: only a bug or corrupt memory could have stored them.
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let counted: [u8; 32] = bytes[1..33].try_into().expect("a slot is 41 bytes");
        let counted = match bytes[0] {
            COMPLETE_TAG => Counted::Complete,
            SUBNET_TAG => Counted::Subnet(SubnetIndex(u32::from_be_bytes(
                counted[..4].try_into().expect("4 bytes"),
            ))),
            MODULE_TAG => Counted::Module(ModuleHash(counted)),
            NO_MODULE_TAG => Counted::NoModule,
            tag => panic!("a stored count slot has the unknown tag {tag}"),
        };
        let count = u64::from_be_bytes(bytes[33..].try_into().expect("8 bytes"));
        Slot { counted, count }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: SLOT_BYTES as u32,
        is_fixed_size: true,
    };
}

/// The fleet's running counts, see the module docs.
pub(super) struct Composition<M: Memory> {
    slots: StableVec<Slot, M>,
    /// Each counted thing's slot index and count: the stored slots, mirrored.
    mirror: BTreeMap<Counted, (u64, u64)>,
}

impl<M: Memory> Composition<M> {
    /// Opens the counts, counting `children` first when they were never counted (a trap undoes
    /// a partial count with the rest of the message).
    pub(super) fn init(memory: M, children: &Children<M>) -> Self {
        let slots = StableVec::init(memory);
        let mirror = slots
            .iter()
            .enumerate()
            .map(|(index, slot): (usize, Slot)| (slot.counted, (index as u64, slot.count)))
            .collect();
        let mut composition = Self { slots, mirror };
        if composition.slots.is_empty() {
            composition.slots.push(&Slot {
                counted: Counted::Complete,
                count: 0,
            });
            for entry in children.iter() {
                let record = entry.value().decode();
                composition.add(record.subnet, record.module_hash);
            }
        }
        composition
    }

    pub(super) fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.vec("fleet_counts", &self.slots);
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

    /// Children per subnet index, in index order; subnets with none are left out.
    pub(super) fn by_subnet(&self) -> Vec<(SubnetIndex, u64)> {
        self.counts()
            .filter_map(|(counted, count)| match counted {
                Counted::Subnet(subnet) => Some((subnet, count)),
                _ => None,
            })
            .collect()
    }

    /// Children per module (`None`: no module installed), modules in hash order, then `None`;
    /// modules no child runs are left out.
    pub(super) fn by_module(&self) -> Vec<(Option<ModuleHash>, u64)> {
        self.counts()
            .filter_map(|(counted, count)| match counted {
                Counted::Module(module) => Some((Some(module), count)),
                Counted::NoModule => Some((None, count)),
                _ => None,
            })
            .collect()
    }

    /// The stored slots, in order: for the tests of their bytes.
    #[cfg(test)]
    pub(super) fn stored_slots(&self) -> Vec<Slot> {
        self.slots.iter().collect()
    }

    fn counts(&self) -> impl Iterator<Item = (Counted, u64)> + '_ {
        self.mirror
            .iter()
            .filter(|(_, (_, count))| *count > 0)
            .map(|(counted, (_, count))| (*counted, *count))
    }

    /// Adds `delta` to a count: one slot written, a new one appended for a thing first counted.
    fn change(&mut self, counted: Counted, delta: i64) {
        let next_slot = self.slots.len();
        let (slot, count) = self.mirror.entry(counted).or_insert((next_slot, 0));
        *count = count
            .checked_add_signed(delta)
            .expect("a count never goes below zero");
        let stored = Slot {
            counted,
            count: *count,
        };
        if *slot == next_slot {
            self.slots.push(&stored);
        } else {
            self.slots.set(*slot, &stored);
        }
    }
}
