use ic_stable_structures::VectorMemory;

use super::*;

fn catalog() -> ReleaseCatalog<VectorMemory> {
    ReleaseCatalog::init(
        VectorMemory::default(),
        VectorMemory::default(),
        VectorMemory::default(),
    )
}

fn record(n: u8, sequence: u64) -> ReleaseRecord {
    ReleaseRecord {
        sha256: ByteArray::new([n; 32]),
        name: "app".to_string(),
        version: format!("1.{n}"),
        notes: None,
        size: 10,
        uncompressed_size: 10,
        encoding: ModuleEncoding::Wasm,
        chunk_size: 10,
        chunk_sha256: vec![ByteArray::new([n; 32])],
        candid_service: None,
        enhanced_orthogonal_persistence: Some(false),
        created_at: 0,
        created_by: Principal::anonymous(),
        sequence,
    }
}

fn sequences(page: &ReleasePage) -> Vec<u64> {
    page.releases.iter().map(|r| r.sequence).collect()
}

#[test]
fn releases_are_found_by_hash_and_by_name_and_version() {
    let mut catalog = catalog();
    catalog.insert(record(1, 1));
    assert_eq!(catalog.get(&[1; 32]), Some(record(1, 1)));
    assert_eq!(catalog.find("app", "1.1"), Some([1; 32]));
    assert_eq!(catalog.find("app", "1.2"), None);
}

#[test]
fn pages_go_newest_first_and_chain_by_sequence() {
    let mut catalog = catalog();
    for n in 1..=5 {
        catalog.insert(record(n, u64::from(n)));
    }
    let first = catalog.page(&ListReleasesArg {
        before: None,
        limit: Some(2),
    });
    assert_eq!(sequences(&first), vec![5, 4]);
    assert_eq!(first.next_before, Some(4));
    let second = catalog.page(&ListReleasesArg {
        before: first.next_before,
        limit: Some(2),
    });
    assert_eq!(sequences(&second), vec![3, 2]);
    let last = catalog.page(&ListReleasesArg {
        before: second.next_before,
        limit: Some(2),
    });
    assert_eq!(sequences(&last), vec![1]);
    assert_eq!(last.next_before, None);
}

#[test]
fn page_size_is_bounded() {
    let mut catalog = catalog();
    for n in 1..=(MAX_PAGE_SIZE as u8 + 1) {
        catalog.insert(record(n, u64::from(n)));
    }
    let page = catalog.page(&ListReleasesArg {
        before: None,
        limit: Some(u32::MAX),
    });
    assert_eq!(page.releases.len(), MAX_PAGE_SIZE as usize);
    let default = catalog.page(&ListReleasesArg::default());
    assert_eq!(default.releases.len(), DEFAULT_PAGE_SIZE as usize);
}

#[test]
fn removal_clears_every_index() {
    let mut catalog = catalog();
    catalog.insert(record(1, 1));
    assert_eq!(catalog.remove(&[1; 32]), Some(record(1, 1)));
    assert_eq!(catalog.find("app", "1.1"), None);
    assert!(catalog
        .page(&ListReleasesArg::default())
        .releases
        .is_empty());
    assert_eq!(catalog.remove(&[1; 32]), None);
}

#[test]
fn name_version_keys_keep_the_boundary_between_name_and_version() {
    assert_ne!(
        NameVersionKey::new("ab", "c"),
        NameVersionKey::new("a", "bc")
    );
    assert_eq!(NameVersionKey::new("ab", "c").as_bytes(), b"\x02abc");
}

#[test]
fn a_release_lists_its_chunk_hashes_in_order() {
    let mut record = record(1, 1);
    record.chunk_sha256 = vec![ByteArray::new([7; 32]), ByteArray::new([8; 32])];
    record.candid_service = Some("service : {}".to_string());
    let release = record.release();
    assert_eq!(release.summary.chunk_count, 2);
    assert!(release.summary.has_candid_service);
    assert_eq!(
        release.chunk_sha256,
        vec![ByteBuf::from(vec![7; 32]), ByteBuf::from(vec![8; 32])]
    );
}

#[test]
fn nothing_references_a_release_yet() {
    assert!(NoReferences.references(&[1; 32]).is_empty());
}
