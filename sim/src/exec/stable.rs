//! Stable memory: sparse, with an undo journal so that a trap costs only the pages it touched.
//!
//! Memory is kept in 4 KiB chunks allocated on first write (absent chunks read as zeros), so growing
//! by many pages is free. While a transaction is open, the first write to a chunk saves its previous
//! content; rolling back puts those back and restores the size. One message therefore costs a copy
//! of the chunks it writes, never of the whole stable memory.

use crate::types::limits::WASM_PAGE_SIZE;
use std::collections::HashMap;

const CHUNK: usize = 4096;

#[derive(Default)]
pub(super) struct StableMemory {
    /// Size in Wasm pages.
    pages: u64,
    chunks: HashMap<u64, Box<[u8; CHUNK]>>,
    journal: Option<Journal>,
}

struct Journal {
    pages: u64,
    /// Previous content of every chunk written since the transaction began (`None`: absent).
    saved: HashMap<u64, Option<Box<[u8; CHUNK]>>>,
}

/// A stable memory access outside the current size.
#[derive(Debug)]
pub(super) struct OutOfBounds;

impl StableMemory {
    pub(super) fn size_pages(&self) -> u64 {
        self.pages
    }

    pub(super) fn size_bytes(&self) -> u64 {
        self.pages * WASM_PAGE_SIZE
    }

    /// Grows by `new_pages` up to `max_pages`; returns the previous size, or `None` when the new
    /// size would exceed `max_pages`.
    pub(super) fn grow(&mut self, new_pages: u64, max_pages: u64) -> Option<u64> {
        let old = self.pages;
        let new = old.checked_add(new_pages).filter(|&n| n <= max_pages)?;
        self.pages = new;
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
        let mut done = 0;
        while done < dst.len() {
            let position = offset + done as u64;
            let (index, within) = (position / CHUNK as u64, (position % CHUNK as u64) as usize);
            let n = (CHUNK - within).min(dst.len() - done);
            match self.chunks.get(&index) {
                Some(chunk) => dst[done..done + n].copy_from_slice(&chunk[within..within + n]),
                None => dst[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }

    pub(super) fn write(&mut self, offset: u64, src: &[u8]) -> Result<(), OutOfBounds> {
        self.check(offset, src.len())?;
        let mut done = 0;
        while done < src.len() {
            let position = offset + done as u64;
            let (index, within) = (position / CHUNK as u64, (position % CHUNK as u64) as usize);
            let n = (CHUNK - within).min(src.len() - done);
            if let Some(journal) = &mut self.journal {
                journal
                    .saved
                    .entry(index)
                    .or_insert_with(|| self.chunks.get(&index).cloned());
            }
            let chunk = self
                .chunks
                .entry(index)
                .or_insert_with(|| Box::new([0; CHUNK]));
            chunk[within..within + n].copy_from_slice(&src[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Starts recording changes so that `rollback` can undo them. A transaction already open stays
    /// open (an upgrade spans pre_upgrade and post_upgrade).
    pub(super) fn begin(&mut self) {
        if self.journal.is_none() {
            self.journal = Some(Journal {
                pages: self.pages,
                saved: HashMap::new(),
            });
        }
    }

    pub(super) fn commit(&mut self) {
        self.journal = None;
    }

    pub(super) fn rollback(&mut self) {
        if let Some(journal) = self.journal.take() {
            for (index, previous) in journal.saved {
                match previous {
                    Some(chunk) => {
                        self.chunks.insert(index, chunk);
                    }
                    None => {
                        self.chunks.remove(&index);
                    }
                }
            }
            self.pages = journal.pages;
        }
    }

    /// The whole memory as one buffer (snapshots).
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.size_bytes() as usize];
        for (index, chunk) in &self.chunks {
            let start = *index as usize * CHUNK;
            if start < bytes.len() {
                let end = (start + CHUNK).min(bytes.len());
                bytes[start..end].copy_from_slice(&chunk[..end - start]);
            }
        }
        bytes
    }

    /// Rebuilds a memory from `to_bytes`'s output; all-zero chunks stay absent.
    pub(super) fn from_bytes(bytes: &[u8]) -> Result<StableMemory, String> {
        if !(bytes.len() as u64).is_multiple_of(WASM_PAGE_SIZE) {
            return Err(format!(
                "stable memory size {} is not a multiple of the Wasm page size",
                bytes.len()
            ));
        }
        let mut chunks = HashMap::new();
        for (index, piece) in bytes.chunks(CHUNK).enumerate() {
            if piece.iter().any(|&b| b != 0) {
                let mut chunk = Box::new([0; CHUNK]);
                chunk[..piece.len()].copy_from_slice(piece);
                chunks.insert(index as u64, chunk);
            }
        }
        Ok(StableMemory {
            pages: bytes.len() as u64 / WASM_PAGE_SIZE,
            chunks,
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
        let snapshot = memory.to_bytes();
        let rebuilt = StableMemory::from_bytes(&snapshot).unwrap();
        assert_eq!(rebuilt.to_bytes(), snapshot);
    }
}
