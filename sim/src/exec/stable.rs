//! Stable memory: paged (`PagedMemory`), with an undo journal so that a trap costs only the pages
//! it touched.
//!
//! Pages are allocated on first write (absent pages read as zeros), so growing by many pages is
//! free, and they are shared copy-on-write with the canister's snapshots. While a transaction is
//! open, the first write to a page saves a reference to its previous content; rolling back puts
//! those back and restores the size. One message therefore costs a copy of the pages it writes,
//! never of the whole stable memory.

use super::pages::{Page, PagedMemory, PAGE_SIZE};
use crate::types::limits::WASM_PAGE_SIZE;
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct StableMemory {
    memory: PagedMemory,
    journal: Option<Journal>,
}

struct Journal {
    len: u64,
    /// Previous content of every page written since the transaction began (`None`: absent).
    saved: HashMap<u64, Option<Page>>,
}

/// A stable memory access outside the current size.
#[derive(Debug)]
pub(super) struct OutOfBounds;

impl StableMemory {
    pub(super) fn size_pages(&self) -> u64 {
        self.memory.len() / WASM_PAGE_SIZE
    }

    pub(super) fn size_bytes(&self) -> u64 {
        self.memory.len()
    }

    /// Grows by `new_pages` up to `max_pages`; returns the previous size, or `None` when the new
    /// size would exceed `max_pages`.
    pub(super) fn grow(&mut self, new_pages: u64, max_pages: u64) -> Option<u64> {
        let old = self.size_pages();
        let new = old.checked_add(new_pages).filter(|&n| n <= max_pages)?;
        self.memory.set_len(new * WASM_PAGE_SIZE);
        Some(old)
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size_bytes() => Ok(()),
            _ => Err(OutOfBounds),
        }
    }

    pub(super) fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, dst.len())?;
        self.memory.read(offset, dst);
        Ok(())
    }

    pub(super) fn write(&mut self, offset: u64, src: &[u8]) -> Result<(), OutOfBounds> {
        self.check(offset, src.len())?;
        if src.is_empty() {
            return Ok(());
        }
        if let Some(journal) = &mut self.journal {
            let first = offset / PAGE_SIZE as u64;
            let last = (offset + src.len() as u64 - 1) / PAGE_SIZE as u64;
            for index in first..=last {
                journal
                    .saved
                    .entry(index)
                    .or_insert_with(|| self.memory.page(index).cloned());
            }
        }
        self.memory.write(offset, src);
        Ok(())
    }

    /// Starts recording changes so that `rollback` can undo them. A transaction already open stays
    /// open (an upgrade spans pre_upgrade and post_upgrade).
    pub(super) fn begin(&mut self) {
        if self.journal.is_none() {
            self.journal = Some(Journal {
                len: self.memory.len(),
                saved: HashMap::new(),
            });
        }
    }

    /// Keeps the changes; the pages written are interned (shared with equal pages held
    /// elsewhere).
    pub(super) fn commit(&mut self) {
        if let Some(journal) = self.journal.take() {
            let mut written: Vec<u64> = journal.saved.into_keys().collect();
            written.sort_unstable();
            for index in written {
                self.memory.intern_page(index);
            }
        }
    }

    pub(super) fn rollback(&mut self) {
        if let Some(journal) = self.journal.take() {
            for (index, previous) in journal.saved {
                self.memory.restore_page(index, previous);
            }
            self.memory.set_len(journal.len);
        }
    }

    /// The memory as of the last commit (snapshots); no transaction may be open.
    pub(super) fn committed(&self) -> &PagedMemory {
        assert!(
            self.journal.is_none(),
            "stable memory read as committed inside a transaction"
        );
        &self.memory
    }

    /// A stable memory holding `memory` (a snapshot's), which must be whole Wasm pages.
    pub(super) fn from_paged(memory: PagedMemory) -> Result<StableMemory, String> {
        if !memory.len().is_multiple_of(WASM_PAGE_SIZE) {
            return Err(format!(
                "stable memory size {} is not a multiple of the Wasm page size",
                memory.len()
            ));
        }
        Ok(StableMemory {
            memory,
            journal: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_content_and_size() {
        let mut memory = StableMemory::default();
        memory.grow(1, 10).unwrap();
        memory.write(10, b"before").unwrap();
        memory.begin();
        assert_eq!(memory.grow(2, 10), Some(1));
        memory.write(10, b"after!").unwrap();
        memory.write(2 * WASM_PAGE_SIZE, b"new page").unwrap();
        memory.rollback();
        assert_eq!(memory.size_pages(), 1);
        let mut buffer = [0u8; 6];
        memory.read(10, &mut buffer).unwrap();
        assert_eq!(&buffer, b"before");
        memory.grow(2, 10).unwrap();
        let mut grown = [1u8; 8];
        memory.read(2 * WASM_PAGE_SIZE, &mut grown).unwrap();
        assert_eq!(
            grown, [0; 8],
            "a chunk written after a rolled-back grow must read as zeros"
        );
    }

    #[test]
    fn access_crossing_chunks_and_bounds() {
        let mut memory = StableMemory::default();
        memory.grow(1, 10).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        memory.write(100, &data).unwrap();
        let mut back = vec![0; data.len()];
        memory.read(100, &mut back).unwrap();
        assert_eq!(back, data);
        assert!(memory.read(WASM_PAGE_SIZE - 1, &mut [0; 2]).is_err());
        assert!(memory.write(u64::MAX, &[1]).is_err());
        assert_eq!(memory.grow(10, 10), None);
        let snapshot = memory.committed().clone();
        let rebuilt = StableMemory::from_paged(snapshot.clone()).unwrap();
        assert_eq!(rebuilt.committed().to_vec(), snapshot.to_vec());
    }
}
