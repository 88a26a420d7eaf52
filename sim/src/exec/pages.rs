//! Paged memory: a canister's heap or stable memory as 4 KiB pages, all-zero pages not stored,
//! pages shared copy-on-write (`Arc`) between a canister, its snapshots and its copies.
//!
//! This is how the simulator holds memory between executions: an idle canister costs the pages it
//! has written and nothing more, and a snapshot costs a map of page references, not a copy. A page
//! is copied only when one holder writes it while another still refers to it.
//!
//! Pages that executions leave behind are interned: a page whose content equals a page some memory
//! already holds is shared with it (canisters of one module mostly hold the same pages: its data,
//! the allocator's structures, the same values at the same places). Pages are only ever shared,
//! never changed in place while shared, so interning changes no memory's content.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Bytes per page (the IC's OS page size, a divisor of the Wasm page size).
pub const PAGE_SIZE: usize = 4096;

/// A page. The content is boxed so that the interner's weak reference to a page nobody holds any
/// more keeps only the small shared header alive, not the 4 KiB.
pub(super) type Page = Arc<Box<[u8; PAGE_SIZE]>>;

static ZEROS: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

fn zero_page() -> Page {
    Arc::new(Box::new([0; PAGE_SIZE]))
}

fn is_zero(bytes: &[u8]) -> bool {
    *bytes == ZEROS[..bytes.len()]
}

/// A page with `piece` at its start (and zeros after it).
fn page_of(piece: &[u8]) -> Box<[u8; PAGE_SIZE]> {
    let mut page = Box::new([0; PAGE_SIZE]);
    page[..piece.len()].copy_from_slice(piece);
    page
}

/// Pages by a hash of their content (weak references: a page lives as long as a memory holds it).
#[derive(Default)]
struct Interner {
    buckets: HashMap<u64, Vec<Weak<Box<[u8; PAGE_SIZE]>>>>,
    /// Pages interned since the last sweep of references to pages nobody holds.
    since_sweep: usize,
}

/// A fast hash of a page's content (FxHash's mix over 64-bit words).
fn content_hash(page: &[u8; PAGE_SIZE]) -> u64 {
    page.chunks_exact(8).fold(0u64, |hash, word| {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        (hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
    })
}

/// The page some memory holds with `page`'s content, or `page`, now interned.
fn intern(page: Box<[u8; PAGE_SIZE]>) -> Page {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    let hash = content_hash(&page);
    let mut interner = INTERNER
        .get_or_init(Default::default)
        .lock()
        .expect("page interner lock");
    let bucket = interner.buckets.entry(hash).or_default();
    let mut found = None;
    bucket.retain(|weak| match weak.upgrade() {
        Some(held) => {
            if found.is_none() && **held == *page {
                found = Some(held);
            }
            true
        }
        None => false,
    });
    let page = match found {
        Some(held) => return held,
        None => Arc::new(page),
    };
    bucket.push(Arc::downgrade(&page));
    interner.since_sweep += 1;
    if interner.since_sweep > interner.buckets.len().max(1 << 16) {
        interner.since_sweep = 0;
        interner.buckets.retain(|_, bucket| {
            bucket.retain(|weak| weak.strong_count() > 0);
            !bucket.is_empty()
        });
    }
    page
}

/// A memory of `len` bytes; absent pages read as zeros. Cloning shares every page.
#[derive(Clone, Default)]
pub struct PagedMemory {
    len: u64,
    pages: BTreeMap<u64, Page>,
}

impl std::fmt::Debug for PagedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedMemory")
            .field("len", &self.len)
            .field("stored_pages", &self.pages.len())
            .finish()
    }
}

impl PartialEq for PagedMemory {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.to_vec() == other.to_vec()
    }
}

impl Eq for PagedMemory {}

impl PagedMemory {
    /// All zeros, `len` bytes.
    pub fn zeros(len: u64) -> PagedMemory {
        PagedMemory {
            len,
            pages: BTreeMap::new(),
        }
    }

    /// The pages of `bytes`; all-zero pages are not stored.
    pub fn from_bytes(bytes: &[u8]) -> PagedMemory {
        let mut memory = PagedMemory::zeros(bytes.len() as u64);
        memory.sync_from(bytes);
        memory
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages held (the others read as zeros).
    pub fn stored_pages(&self) -> usize {
        self.pages.len()
    }

    /// The address of each stored page, to count pages shared between memories once.
    pub fn page_addresses(&self) -> impl Iterator<Item = usize> + '_ {
        self.pages.values().map(|page| Arc::as_ptr(page) as usize)
    }

    /// Reads `dst.len()` bytes at `offset`; bytes past the end read as zeros.
    pub fn read(&self, offset: u64, dst: &mut [u8]) {
        let mut done = 0;
        while done < dst.len() {
            let position = offset + done as u64;
            let (index, within) = split(position);
            let n = (PAGE_SIZE - within).min(dst.len() - done);
            match self.pages.get(&index) {
                Some(page) if position < self.len => {
                    dst[done..done + n].copy_from_slice(&page[within..within + n])
                }
                _ => dst[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// The whole memory as one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.len as usize];
        self.copy_into(&mut bytes);
        bytes
    }

    /// Sets the length; pages past it are dropped, new bytes read as zeros.
    pub fn set_len(&mut self, len: u64) {
        if len < self.len {
            let first_dropped = len.div_ceil(PAGE_SIZE as u64);
            self.pages.split_off(&first_dropped);
            let (index, within) = split(len);
            if within > 0 {
                if let Some(page) = self.pages.get_mut(&index) {
                    Arc::make_mut(page)[within..].fill(0);
                }
            }
        }
        self.len = len;
    }

    /// The stored page `index`, if any.
    pub(super) fn page(&self, index: u64) -> Option<&Page> {
        self.pages.get(&index)
    }

    /// Interns stored page `index` (after writes to it are done).
    pub(super) fn intern_page(&mut self, index: u64) {
        if let Some(page) = self.pages.get_mut(&index) {
            let content: Box<[u8; PAGE_SIZE]> = Box::new(***page);
            if is_zero(&content[..]) {
                self.pages.remove(&index);
            } else {
                *page = intern(content);
            }
        }
    }

    /// Puts `page` back as page `index` (`None`: absent), as an undo journal saved it.
    pub(super) fn restore_page(&mut self, index: u64, page: Option<Page>) {
        match page {
            Some(page) => self.pages.insert(index, page),
            None => self.pages.remove(&index),
        };
    }

    /// Writes `src` at `offset`, which the caller has checked to be within the length. A page
    /// shared with another holder is copied first.
    pub(super) fn write(&mut self, offset: u64, src: &[u8]) {
        let mut done = 0;
        while done < src.len() {
            let position = offset + done as u64;
            let (index, within) = split(position);
            let n = (PAGE_SIZE - within).min(src.len() - done);
            let page = self.pages.entry(index).or_insert_with(zero_page);
            Arc::make_mut(page)[within..within + n].copy_from_slice(&src[done..done + n]);
            done += n;
        }
    }

    /// Makes this memory equal to `bytes` (an instance's heap after an execution): changed pages
    /// replaced, pages that became zero dropped, unchanged pages kept (and still shared).
    /// Returns how many pages changed.
    pub(super) fn sync_from(&mut self, bytes: &[u8]) -> usize {
        self.set_len(bytes.len() as u64);
        let mut changed = 0;
        for (index, piece) in bytes.chunks(PAGE_SIZE).enumerate() {
            changed += usize::from(self.sync_page(index as u64, piece));
        }
        changed
    }

    /// As `sync_from` when only the pages `written` can differ from `bytes`.
    pub(super) fn sync_pages(&mut self, bytes: &[u8], written: &[u64]) -> usize {
        self.set_len(bytes.len() as u64);
        let mut changed = 0;
        for &index in written {
            if let Some(piece) = page_slice(bytes, index) {
                changed += usize::from(self.sync_page(index, piece));
            }
        }
        changed
    }

    /// Makes page `index` equal to `piece`; returns whether it changed.
    fn sync_page(&mut self, index: u64, piece: &[u8]) -> bool {
        match self.pages.get_mut(&index) {
            Some(page) if page[..piece.len()] == *piece => false,
            Some(_) if is_zero(piece) => {
                self.pages.remove(&index);
                true
            }
            Some(page) => {
                *page = intern(page_of(piece));
                true
            }
            None if is_zero(piece) => false,
            None => {
                self.pages.insert(index, intern(page_of(piece)));
                true
            }
        }
    }

    /// As `copy_into` when only the pages `written` can differ.
    pub(super) fn copy_pages_into(&self, bytes: &mut [u8], written: &[u64]) {
        for &index in written {
            let start = index as usize * PAGE_SIZE;
            if start >= bytes.len() {
                continue;
            }
            let end = (start + PAGE_SIZE).min(bytes.len());
            let piece = &mut bytes[start..end];
            match self.pages.get(&index) {
                Some(page) => piece.copy_from_slice(&page[..piece.len()]),
                None => piece.fill(0),
            }
        }
    }

    /// The first page where `bytes` differs from this memory (a check for debug builds).
    pub(super) fn first_difference(&self, bytes: &[u8]) -> Option<u64> {
        if bytes.len() as u64 != self.len {
            return Some(0);
        }
        bytes
            .chunks(PAGE_SIZE)
            .enumerate()
            .find(|(index, piece)| match self.pages.get(&(*index as u64)) {
                Some(page) => page[..piece.len()] != **piece,
                None => !is_zero(piece),
            })
            .map(|(index, _)| index as u64)
    }

    /// Makes `bytes` (at most `len` long) equal to the start of this memory: stored pages copied
    /// where they differ, other pages zeroed where they are not zero already.
    pub(super) fn copy_into(&self, bytes: &mut [u8]) {
        for (index, piece) in bytes.chunks_mut(PAGE_SIZE).enumerate() {
            match self.pages.get(&(index as u64)) {
                Some(page) => {
                    if page[..piece.len()] != *piece {
                        piece.copy_from_slice(&page[..piece.len()]);
                    }
                }
                None => {
                    if !is_zero(piece) {
                        piece.fill(0);
                    }
                }
            }
        }
    }
}

/// Page `index` of `bytes`, if it has one.
fn page_slice(bytes: &[u8], index: u64) -> Option<&[u8]> {
    let start = usize::try_from(index).ok()?.checked_mul(PAGE_SIZE)?;
    (start < bytes.len()).then(|| &bytes[start..(start + PAGE_SIZE).min(bytes.len())])
}

/// Page index and offset within the page.
fn split(position: u64) -> (u64, usize) {
    (
        position / PAGE_SIZE as u64,
        (position % PAGE_SIZE as u64) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_pages_are_not_stored_and_clones_share_pages() {
        let mut bytes = vec![0u8; 5 * PAGE_SIZE];
        bytes[PAGE_SIZE + 7] = 1;
        bytes[4 * PAGE_SIZE] = 2;
        let mut memory = PagedMemory::from_bytes(&bytes);
        assert_eq!(memory.stored_pages(), 2);
        assert_eq!(memory.to_vec(), bytes);
        let snapshot = memory.clone();
        assert_eq!(
            snapshot.page_addresses().collect::<Vec<_>>(),
            memory.page_addresses().collect::<Vec<_>>()
        );
        memory.write(PAGE_SIZE as u64 + 8, &[3]);
        assert_eq!(
            snapshot.to_vec(),
            bytes,
            "the snapshot's page is not changed"
        );
        let shared: Vec<usize> = memory
            .page_addresses()
            .filter(|a| snapshot.page_addresses().any(|b| b == *a))
            .collect();
        assert_eq!(shared.len(), 1, "only the written page was copied");
        bytes[PAGE_SIZE + 8] = 3;
        assert_eq!(memory.to_vec(), bytes);
    }

    #[test]
    fn sync_keeps_unchanged_pages_and_drops_zeroed_ones() {
        let mut bytes = vec![0u8; 4 * PAGE_SIZE];
        bytes[0] = 1;
        bytes[2 * PAGE_SIZE] = 1;
        let mut memory = PagedMemory::from_bytes(&bytes);
        let before: Vec<usize> = memory.page_addresses().collect();
        bytes[0] = 0;
        bytes[3 * PAGE_SIZE + 1] = 9;
        bytes.extend_from_slice(&[0; PAGE_SIZE]);
        assert_eq!(memory.sync_from(&bytes), 2);
        assert_eq!(memory.len(), 5 * PAGE_SIZE as u64);
        assert_eq!(memory.stored_pages(), 2);
        assert!(memory.page_addresses().any(|a| a == before[1]));
        assert_eq!(memory.to_vec(), bytes);
        let mut fresh = vec![7u8; bytes.len()];
        memory.copy_into(&mut fresh);
        assert_eq!(fresh, bytes);
    }

    #[test]
    fn reads_past_the_end_and_shrinking() {
        let mut memory = PagedMemory::zeros(2 * PAGE_SIZE as u64);
        memory.write(PAGE_SIZE as u64 - 2, &[1, 2, 3, 4]);
        let mut out = [9u8; 6];
        memory.read(PAGE_SIZE as u64 - 3, &mut out);
        assert_eq!(out, [0, 1, 2, 3, 4, 0]);
        memory.set_len(PAGE_SIZE as u64 - 1);
        assert_eq!(memory.stored_pages(), 1);
        memory.set_len(2 * PAGE_SIZE as u64);
        memory.read(PAGE_SIZE as u64 - 3, &mut out);
        assert_eq!(out, [0, 1, 0, 0, 0, 0]);
    }
}
