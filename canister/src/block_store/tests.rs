use ic_stable_structures::{Storable, VectorMemory};

use super::*;
use crate::hash::sha256;

fn store() -> BlockStore<VectorMemory> {
    BlockStore::init(
        VectorMemory::default(),
        VectorMemory::default(),
        VectorMemory::default(),
    )
}

fn bytes(len: usize, fill: u8) -> Vec<u8> {
    (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
}

const BLOCK: usize = BLOCK_BYTES as usize;

#[test]
fn staged_bytes_read_back_across_blocks() {
    let mut store = store();
    let chunk = bytes(2 * BLOCK + 10, 1);
    let extent = store.stage(&chunk);
    assert_eq!(extent.len as usize, chunk.len());
    assert_eq!(extent.runs, vec![BlockRun { first: 0, count: 3 }]);
    assert_eq!(store.read(&extent), chunk);
}

#[test]
fn freed_blocks_are_reused_before_memory_grows() {
    let mut store = store();
    let first = store.stage(&bytes(BLOCK, 1));
    let _second = store.stage(&bytes(BLOCK, 2));
    store.discard(first);
    assert_eq!(store.stats().free_block_bytes, BLOCK_BYTES);

    let third = store.stage(&bytes(BLOCK, 3));
    assert_eq!(third.runs, vec![BlockRun { first: 0, count: 1 }]);
    assert_eq!(store.stats().block_bytes, 2 * BLOCK_BYTES);
    assert_eq!(store.stats().free_block_bytes, 0);
}

#[test]
fn a_chunk_may_span_a_free_run_and_new_blocks() {
    let mut store = store();
    let small = store.stage(&bytes(BLOCK, 1));
    let _pinned = store.stage(&bytes(BLOCK, 2));
    store.discard(small);

    let chunk = bytes(3 * BLOCK, 3);
    let extent = store.stage(&chunk);
    assert_eq!(
        extent.runs,
        vec![
            BlockRun { first: 0, count: 1 },
            BlockRun { first: 2, count: 2 }
        ]
    );
    assert_eq!(store.read(&extent), chunk);
}

#[test]
fn adjacent_free_runs_merge() {
    let mut store = store();
    let extents: Vec<Extent> = (0..4).map(|i| store.stage(&bytes(BLOCK, i))).collect();
    let mut extents = extents.into_iter();
    let (a, b, c, _d) = (
        extents.next().unwrap(),
        extents.next().unwrap(),
        extents.next().unwrap(),
        extents.next().unwrap(),
    );
    store.discard(a);
    store.discard(c);
    store.discard(b);
    assert_eq!(
        store
            .free_runs
            .iter()
            .map(|e| e.into_pair())
            .collect::<Vec<_>>(),
        vec![(0, 3)]
    );
    let merged = store.stage(&bytes(3 * BLOCK, 9));
    assert_eq!(merged.runs, vec![BlockRun { first: 0, count: 3 }]);
}

#[test]
fn adopting_a_known_chunk_adds_a_reference_and_frees_the_copy() {
    let mut store = store();
    let chunk = bytes(100, 5);
    let hash = sha256(&chunk);
    let first = store.stage(&chunk);
    store.adopt(hash, first);
    let copy = store.stage(&chunk);
    store.adopt(hash, copy);

    assert_eq!(store.refs(&hash), 2);
    let stats = store.stats();
    assert_eq!((stats.chunks, stats.indexed_bytes), (1, 100));
    assert_eq!(
        stats.free_block_bytes, BLOCK_BYTES,
        "the copy's block is free"
    );
    assert_eq!(store.get(&hash), Some(chunk));
}

#[test]
fn the_last_release_of_a_chunk_frees_it() {
    let mut store = store();
    let chunk = bytes(10, 1);
    let hash = sha256(&chunk);
    let extent = store.stage(&chunk);
    store.adopt(hash, extent);
    let extent = store.stage(&chunk);
    store.adopt(hash, extent);

    store.release(&hash);
    assert_eq!(store.get(&hash), Some(chunk));
    store.release(&hash);
    assert_eq!(store.get(&hash), None);
    assert_eq!(store.stats().free_block_bytes, store.stats().block_bytes);
}

#[test]
#[should_panic(expected = "is not indexed")]
fn releasing_an_unknown_chunk_is_a_broken_invariant() {
    store().release(&[0; 32]);
}

#[test]
fn an_empty_chunk_takes_no_block() {
    let mut store = store();
    let extent = store.stage(&[]);
    assert!(extent.runs.is_empty());
    assert_eq!(store.read(&extent), Vec::<u8>::new());
}

/// Golden bytes of an index entry: stored data must stay readable by later versions.
#[test]
fn chunk_entry_encoding_is_pinned() {
    let entry = Cbor(ChunkEntry {
        extent: Extent {
            len: 5,
            runs: vec![BlockRun { first: 1, count: 2 }],
        },
        refs: 3,
    });
    let mut expected = vec![0xa2]; // map(2)
    expected.extend_from_slice(b"\x66extent\xa2\x63len\x05\x64runs\x81");
    expected.extend_from_slice(b"\xa2\x65first\x01\x65count\x02");
    expected.extend_from_slice(b"\x64refs\x03");
    assert_eq!(entry.into_bytes(), expected);
}
