//! Raw stable memory that can be frozen, so that a reader spread over many messages (an
//! export's document, see [`crate::backup`]) sees the memory of one moment while every other
//! message goes on writing it.
//!
//! While frozen, the first write to a 4 KiB page below the size at the freeze keeps the page's
//! earlier bytes on the heap (copy on write); a view reads those, and the live memory for every
//! page not written since. The cost while not frozen is one flag read per write; while frozen,
//! the heap grows by the pages written, up to [`MAX_KEPT_BYTES`], past which the freeze is given
//! up (the view is gone: its reader starts again).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use ic_stable_structures::Memory;

use super::WASM_PAGE_BYTES;

/// Granularity of what a freeze keeps: the IC's own page size for stable memory accounting.
const PAGE_BYTES: u64 = 4096;

/// Bytes of earlier pages a freeze keeps at most (the heap is 4 GiB on wasm32, and an export's
/// document is on it too).
pub const MAX_KEPT_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Default)]
struct Freeze {
    /// The memory's size when frozen, in Wasm pages: a view reads no further.
    size: u64,
    kept: BTreeMap<u64, Box<[u8]>>,
    max_kept: u64,
    /// Set once more than `max_kept` bytes were written: the view is gone.
    given_up: bool,
}

/// See the [module docs](self). Clones share the memory (the IC's stable memory, or a test's
/// vector, whose clones share it) and its freeze.
#[derive(Clone)]
pub struct FreezableMemory<M> {
    memory: M,
    freeze: Rc<SharedFreeze>,
}

/// The memory as it was frozen: read only, while the freeze holds.
#[derive(Clone)]
pub struct FrozenMemory<M> {
    memory: M,
    freeze: Rc<SharedFreeze>,
}

/// The freeze shared by a memory's clones and views. The live memory's writes check `frozen`
/// alone and its reads nothing, so a freeze costs it nothing otherwise: measured on the
/// deployer's Wasm (bench `fleet_rollout_1000_children_3_subnets`), borrowing the freeze on every
/// write and telling views apart on every read cost 22 K instructions a child of a rollout.
#[derive(Default)]
struct SharedFreeze {
    frozen: Cell<bool>,
    freeze: RefCell<Option<Freeze>>,
}

impl<M: Memory + Clone> FreezableMemory<M> {
    pub fn new(memory: M) -> Self {
        Self {
            memory,
            freeze: Rc::default(),
        }
    }

    /// Freezes the memory as it is now, in place of any earlier freeze.
    pub fn freeze(&self) {
        self.freeze_keeping_at_most(MAX_KEPT_BYTES);
    }

    fn freeze_keeping_at_most(&self, max_kept: u64) {
        *self.freeze.freeze.borrow_mut() = Some(Freeze {
            size: self.memory.size(),
            max_kept,
            ..Freeze::default()
        });
        self.freeze.frozen.set(true);
    }

    /// Ends the freeze: the pages kept are let go.
    pub fn thaw(&self) {
        self.freeze.frozen.set(false);
        *self.freeze.freeze.borrow_mut() = None;
    }

    /// The memory as it was frozen, while a freeze holds.
    pub fn frozen_view(&self) -> Option<FrozenMemory<M>> {
        let holds = matches!(&*self.freeze.freeze.borrow(), Some(freeze) if !freeze.given_up);
        holds.then(|| FrozenMemory {
            memory: self.memory.clone(),
            freeze: Rc::clone(&self.freeze),
        })
    }

    /// Bytes of earlier pages the freeze keeps now.
    #[cfg(test)]
    fn kept_bytes(&self) -> u64 {
        self.freeze
            .freeze
            .borrow()
            .as_ref()
            .map_or(0, |freeze| freeze.kept.len() as u64 * PAGE_BYTES)
    }

    /// Keeps the earlier bytes of the pages `[offset, offset + len)` overlaps that the freeze
    /// does not hold yet.
    #[cold]
    #[inline(never)]
    fn keep(&self, offset: u64, len: u64) {
        let mut freeze = self.freeze.freeze.borrow_mut();
        let Some(freeze) = freeze.as_mut() else {
            return;
        };
        let frozen_end = freeze.size * WASM_PAGE_BYTES;
        let end = (offset + len).min(frozen_end);
        if freeze.given_up || offset >= end {
            return;
        }
        for page in offset / PAGE_BYTES..end.div_ceil(PAGE_BYTES) {
            if freeze.kept.contains_key(&page) {
                continue;
            }
            if (freeze.kept.len() as u64 + 1) * PAGE_BYTES > freeze.max_kept {
                freeze.kept.clear();
                freeze.given_up = true;
                return;
            }
            let mut bytes = vec![0; PAGE_BYTES as usize].into_boxed_slice();
            self.memory.read(page * PAGE_BYTES, &mut bytes);
            freeze.kept.insert(page, bytes);
        }
    }
}

impl<M: Memory + Clone> Memory for FreezableMemory<M> {
    #[inline]
    fn size(&self) -> u64 {
        self.memory.size()
    }

    #[inline]
    fn grow(&self, pages: u64) -> i64 {
        self.memory.grow(pages)
    }

    #[inline]
    fn read(&self, offset: u64, dst: &mut [u8]) {
        self.memory.read(offset, dst);
    }

    #[inline]
    unsafe fn read_unsafe(&self, offset: u64, dst: *mut u8, count: usize) {
        // The live memory's own (the IC's reads into uninitialized buffers).
        self.memory.read_unsafe(offset, dst, count);
    }

    #[inline]
    fn write(&self, offset: u64, src: &[u8]) {
        if self.freeze.frozen.get() {
            self.keep(offset, src.len() as u64);
        }
        self.memory.write(offset, src);
    }
}

impl<M: Memory + Clone> Memory for FrozenMemory<M> {
    fn size(&self) -> u64 {
        self.freeze
            .freeze
            .borrow()
            .as_ref()
            .map_or(0, |freeze| freeze.size)
    }

    fn grow(&self, _: u64) -> i64 {
        panic!("a frozen memory never grows")
    }

    /// Each page from what the freeze kept, or else from the live memory.
    fn read(&self, offset: u64, dst: &mut [u8]) {
        let freeze = self.freeze.freeze.borrow();
        let freeze = freeze
            .as_ref()
            .filter(|freeze| !freeze.given_up)
            .expect("a frozen memory is read only while its freeze holds");
        assert!(
            offset + dst.len() as u64 <= freeze.size * WASM_PAGE_BYTES,
            "a frozen memory is read within its size when frozen"
        );
        let mut done = 0;
        while done < dst.len() {
            let at = offset + done as u64;
            let page = at / PAGE_BYTES;
            let within = (at % PAGE_BYTES) as usize;
            let len = (PAGE_BYTES as usize - within).min(dst.len() - done);
            let part = &mut dst[done..done + len];
            match freeze.kept.get(&page) {
                Some(bytes) => part.copy_from_slice(&bytes[within..within + len]),
                None => self.memory.read(at, part),
            }
            done += len;
        }
    }

    fn write(&self, _: u64, _: &[u8]) {
        panic!("a frozen memory never writes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    fn memory_of(pages: u64) -> FreezableMemory<VectorMemory> {
        let memory = FreezableMemory::new(VectorMemory::default());
        memory.grow(pages);
        memory
    }

    fn read(memory: &impl Memory, offset: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        memory.read(offset, &mut bytes);
        bytes
    }

    #[test]
    fn a_view_reads_the_memory_as_it_was_frozen() {
        let memory = memory_of(2);
        memory.write(4090, &[1; 20]);
        memory.freeze();
        let view = memory.frozen_view().expect("frozen");
        // Across a page boundary, into a page never written, and past the frozen size.
        memory.write(4000, &[2; 200]);
        memory.grow(1);
        memory.write(2 * WASM_PAGE_BYTES, &[3; 10]);
        assert_eq!(read(&memory, 4090, 20), vec![2; 20]);
        let mut expected = vec![0; 90];
        expected.extend([1; 20]);
        expected.extend([0; 90]);
        assert_eq!(read(&view, 4000, 200), expected);
        assert_eq!(view.size(), 2);
        assert_eq!(memory.size(), 3);
        // Two pages kept: 0 and 1 (the writes past the frozen size keep nothing).
        assert_eq!(memory.kept_bytes(), 2 * PAGE_BYTES);
        // A second write to a kept page keeps the first earlier bytes.
        memory.write(4090, &[4; 4]);
        assert_eq!(read(&view, 4090, 4), [1; 4]);
        memory.thaw();
        assert!(memory.frozen_view().is_none());
        assert_eq!(memory.kept_bytes(), 0);
    }

    #[test]
    #[should_panic(expected = "a frozen memory never writes")]
    fn a_view_refuses_writes() {
        let memory = memory_of(1);
        memory.freeze();
        memory.frozen_view().expect("frozen").write(0, &[1]);
    }

    #[test]
    fn a_freeze_written_past_its_bound_is_given_up() {
        let max_kept = 4 * PAGE_BYTES;
        let memory = memory_of(1);
        memory.freeze_keeping_at_most(max_kept);
        memory.write(0, &[1; 3 * PAGE_BYTES as usize]);
        assert!(memory.frozen_view().is_some());
        memory.write(max_kept - PAGE_BYTES, &[1; 2 * PAGE_BYTES as usize]);
        assert!(memory.frozen_view().is_none());
        assert_eq!(memory.kept_bytes(), 0);
        // The live memory took every write.
        assert_eq!(read(&memory, max_kept, 4), [1; 4]);
    }

    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    #[derive(Clone, Debug)]
    enum MemoryOp {
        Write { offset: u64, len: usize, byte: u8 },
        Grow,
        Freeze,
        Thaw,
        ReadView { offset: u64, len: usize },
    }

    /// Offsets and lengths that cross 4 KiB pages and reach past the first Wasm page.
    fn op() -> impl Strategy<Value = MemoryOp> {
        let offset = 0..2 * WASM_PAGE_BYTES;
        let len = 1..3 * PAGE_BYTES as usize;
        prop_oneof![
            6 => (offset.clone(), len.clone(), any::<u8>())
                .prop_map(|(offset, len, byte)| MemoryOp::Write { offset, len, byte }),
            1 => Just(MemoryOp::Grow),
            1 => Just(MemoryOp::Freeze),
            1 => Just(MemoryOp::Thaw),
            4 => (offset, len).prop_map(|(offset, len)| MemoryOp::ReadView { offset, len }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
            ..ProptestConfig::default()
        })]

        /// Model: the live bytes, and a copy of them taken at each freeze. The live memory
        /// always reads the live bytes; a view, while a freeze holds, the copy.
        #[test]
        fn a_view_reads_the_bytes_of_the_freeze_whatever_is_written(
            ops in prop::collection::vec(op(), 1..80)
        ) {
            let memory = memory_of(3);
            let mut live = vec![0u8; 3 * WASM_PAGE_BYTES as usize];
            let mut frozen: Option<Vec<u8>> = None;
            for op in ops {
                match op {
                    MemoryOp::Write { offset, len, byte } => {
                        let end = (offset as usize + len).min(live.len());
                        let bytes = vec![byte; end - offset as usize];
                        memory.write(offset, &bytes);
                        live[offset as usize..end].copy_from_slice(&bytes);
                    }
                    MemoryOp::Grow => {
                        memory.grow(1);
                        live.resize(live.len() + WASM_PAGE_BYTES as usize, 0);
                    }
                    MemoryOp::Freeze => {
                        memory.freeze();
                        frozen = Some(live.clone());
                    }
                    MemoryOp::Thaw => {
                        memory.thaw();
                        frozen = None;
                    }
                    MemoryOp::ReadView { offset, len } => {
                        let view = memory.frozen_view();
                        prop_assert_eq!(view.is_some(), frozen.is_some());
                        if let (Some(view), Some(frozen)) = (view, &frozen) {
                            prop_assert_eq!(view.size() * WASM_PAGE_BYTES, frozen.len() as u64);
                            let end = (offset as usize + len).min(frozen.len());
                            let read = read(&view, offset, end - offset as usize);
                            prop_assert_eq!(&read[..], &frozen[offset as usize..end]);
                        }
                    }
                }
                prop_assert_eq!(read(&memory, 0, live.len()), live.clone());
            }
        }
    }
}
