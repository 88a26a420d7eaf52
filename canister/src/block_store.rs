//! The block store: the release store's content-addressed chunk bytes in stable memory. Each
//! distinct chunk's bytes are kept once, however many uploads and releases use them. (Not an IC
//! chunk store: those are the per-subnet canisters of [`crate::rollouts::SubnetStore`], which
//! rollouts upload release chunks into.)
//!
//! Bytes live in whole 64 KiB blocks of their own memory (see [`crate::memory`] for why not in a
//! map). A chunk's bytes are an [`Extent`]: its length and the runs of blocks holding it. An
//! upload owns the extents of the chunks it has received ("staged"); at commit it hands each one
//! to the index ([`BlockStore::adopt`]), keyed by the chunk's SHA-256 with a reference count, so
//! committing moves no bytes. Freed blocks are merged into free runs and reused before the
//! memory grows.

use candid::Deserialize;
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Serialize;

use crate::cbor::Cbor;
use crate::hash::{hex, Sha256Hash};
use crate::memory::WASM_PAGE_BYTES;

/// The allocation unit of chunk bytes: one Wasm page, so the blocks memory's size in pages is
/// the number of blocks ever allocated.
pub const BLOCK_BYTES: u64 = WASM_PAGE_BYTES;

/// Consecutive blocks `first .. first + count`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRun {
    pub first: u32,
    pub count: u32,
}

/// Where the bytes of one chunk are: `len` bytes laid over `runs` in order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Extent {
    pub len: u32,
    pub runs: Vec<BlockRun>,
}

/// An indexed chunk. `refs` counts the places that use it: one per chunk position in each
/// release. The bytes are freed when it drops to zero.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct ChunkEntry {
    extent: Extent,
    refs: u32,
}

/// Totals for `storage_stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockStoreStats {
    /// Distinct chunks in the index.
    pub chunks: u64,
    /// Their bytes, each counted once.
    pub indexed_bytes: u64,
    /// Blocks ever allocated, in bytes: the blocks memory's size.
    pub block_bytes: u64,
    /// Of those, bytes in free runs.
    pub free_block_bytes: u64,
}

/// Chunk bytes in blocks, their free runs and the index of committed chunks.
pub struct BlockStore<M: Memory> {
    blocks: M,
    /// First block of a free run to its length in blocks.
    free_runs: StableBTreeMap<u32, u32, M>,
    index: StableBTreeMap<Sha256Hash, Cbor<ChunkEntry>, M>,
}

impl<M: Memory> BlockStore<M> {
    /// Opens the store kept in the three memories, creating empty structures in empty ones.
    pub fn init(blocks: M, free_runs: M, index: M) -> Self {
        Self {
            blocks,
            free_runs: StableBTreeMap::init(free_runs),
            index: StableBTreeMap::init(index),
        }
    }

    /// Writes `bytes` to newly allocated blocks; the caller owns the returned extent until it
    /// [`adopt`](Self::adopt)s or [`discard`](Self::discard)s it.
    pub fn stage(&mut self, bytes: &[u8]) -> Extent {
        let blocks = bytes.len().div_ceil(BLOCK_BYTES as usize) as u32;
        let runs = self.allocate(blocks);
        let mut rest = bytes;
        for run in &runs {
            let (head, tail) = rest.split_at(rest.len().min(run_bytes(run)));
            self.blocks.write(block_offset(run.first), head);
            rest = tail;
        }
        Extent {
            len: bytes.len() as u32,
            runs,
        }
    }

    pub fn read(&self, extent: &Extent) -> Vec<u8> {
        let mut bytes = vec![0; extent.len as usize];
        let mut rest = bytes.as_mut_slice();
        for run in &extent.runs {
            let (head, tail) = rest.split_at_mut(rest.len().min(run_bytes(run)));
            self.blocks.read(block_offset(run.first), head);
            rest = tail;
        }
        bytes
    }

    /// Frees the blocks of a staged extent.
    pub fn discard(&mut self, extent: Extent) {
        for run in extent.runs {
            self.free(run);
        }
    }

    /// Indexes a staged extent whose bytes hash to `hash`, with one reference. If the chunk is
    /// already indexed, adds a reference to it instead and frees the duplicate's blocks.
    /// Returns the bytes newly indexed (0 for a chunk indexed before).
    pub fn adopt(&mut self, hash: Sha256Hash, extent: Extent) -> u64 {
        match self.index.get(&hash) {
            Some(Cbor(mut entry)) => {
                entry.refs += 1;
                self.index.insert(hash, Cbor(entry));
                self.discard(extent);
                0
            }
            None => {
                let len = u64::from(extent.len);
                self.index
                    .insert(hash, Cbor(ChunkEntry { extent, refs: 1 }));
                len
            }
        }
    }

    /// Drops one reference to an indexed chunk; the last one frees its blocks.
    ///
    /// Panics if the chunk is not indexed: references are only dropped by the releases that
    /// took them, so a missing entry is a broken invariant.
    /// Returns the bytes no longer indexed (0 while other references remain).
    pub fn release(&mut self, hash: &Sha256Hash) -> u64 {
        let Cbor(mut entry) = self
            .index
            .get(hash)
            .unwrap_or_else(|| panic!("released chunk {} is not indexed", hex(hash)));
        entry.refs -= 1;
        if entry.refs == 0 {
            self.index.remove(hash);
            let len = u64::from(entry.extent.len);
            self.discard(entry.extent);
            len
        } else {
            self.index.insert(*hash, Cbor(entry));
            0
        }
    }

    /// The bytes of an indexed chunk.
    pub fn get(&self, hash: &Sha256Hash) -> Option<Vec<u8>> {
        self.index
            .get(hash)
            .map(|Cbor(entry)| self.read(&entry.extent))
    }

    /// The reference count of an indexed chunk (0 if it is not indexed).
    pub fn refs(&self, hash: &Sha256Hash) -> u32 {
        self.index.get(hash).map_or(0, |Cbor(entry)| entry.refs)
    }

    /// Every indexed chunk and its length, in hash order.
    pub fn chunk_lengths(&self) -> Vec<(Sha256Hash, u64)> {
        self.index
            .iter()
            .map(|entry| (*entry.key(), u64::from(entry.value().0.extent.len)))
            .collect()
    }

    /// Indexes a staged extent with `refs` references: a restore brings each chunk once and
    /// counts the releases' references itself.
    pub fn index_restored(&mut self, hash: Sha256Hash, extent: Extent, refs: u32) {
        self.index.insert(hash, Cbor(ChunkEntry { extent, refs }));
    }

    /// Reads every index entry: `storage_stats` keeps `indexed_bytes` as a running total and
    /// takes the rest from [`BlockStore::sizes`].
    pub fn stats(&self) -> BlockStoreStats {
        let indexed_bytes = self
            .index
            .values()
            .map(|Cbor(entry)| u64::from(entry.extent.len))
            .sum();
        BlockStoreStats {
            indexed_bytes,
            ..self.sizes()
        }
    }

    /// The counts that need no entry read: chunks, blocks and free blocks (`indexed_bytes` 0).
    pub fn sizes(&self) -> BlockStoreStats {
        BlockStoreStats {
            chunks: self.index.len(),
            indexed_bytes: 0,
            block_bytes: self.blocks.size() * WASM_PAGE_BYTES,
            free_block_bytes: self.free_runs.values().map(u64::from).sum::<u64>() * BLOCK_BYTES,
        }
    }

    /// Takes `count` blocks from the free runs, lowest first, and grows the memory for the rest.
    fn allocate(&mut self, mut count: u32) -> Vec<BlockRun> {
        let mut runs: Vec<BlockRun> = Vec::new();
        while count > 0 {
            let Some((first, free)) = self.free_runs.pop_first() else {
                break;
            };
            let taken = free.min(count);
            if taken < free {
                self.free_runs.insert(first + taken, free - taken);
            }
            push_run(
                &mut runs,
                BlockRun {
                    first,
                    count: taken,
                },
            );
            count -= taken;
        }
        if count > 0 {
            let first = self.blocks.grow(u64::from(count));
            // A grow fails only when the canister reaches its stable memory limit; trapping
            // rolls the whole message back, which leaves the stored data as it was.
            assert!(
                first >= 0,
                "stable memory is full: cannot grow the chunk blocks by {count} blocks"
            );
            push_run(
                &mut runs,
                BlockRun {
                    first: first as u32,
                    count,
                },
            );
        }
        runs
    }

    /// Returns a run to the free runs, merged with free neighbours on either side.
    fn free(&mut self, run: BlockRun) {
        let BlockRun {
            mut first,
            mut count,
        } = run;
        let before = self
            .free_runs
            .range(..first)
            .next_back()
            .map(|entry| (*entry.key(), entry.value()));
        if let Some((before_first, before_count)) = before {
            if before_first + before_count == first {
                self.free_runs.remove(&before_first);
                first = before_first;
                count += before_count;
            }
        }
        if let Some(after_count) = self.free_runs.remove(&(run.first + run.count)) {
            count += after_count;
        }
        self.free_runs.insert(first, count);
    }
}

/// Appends `run`, extending the last run if they are adjacent.
fn push_run(runs: &mut Vec<BlockRun>, run: BlockRun) {
    match runs.last_mut() {
        Some(last) if last.first + last.count == run.first => last.count += run.count,
        _ => runs.push(run),
    }
}

fn block_offset(block: u32) -> u64 {
    u64::from(block) * BLOCK_BYTES
}

fn run_bytes(run: &BlockRun) -> usize {
    run.count as usize * BLOCK_BYTES as usize
}

#[cfg(test)]
mod tests;
