use std::fmt;

use ic_stable_structures::VectorMemory;

use super::*;
use crate::block_store::BLOCK_BYTES;
use crate::releases::{NoReferences, ReleaseReference};
use crate::uploads::NANOS_PER_SECOND;
use crate::wasm_check::ModuleEncoding;

type TestStore = ReleaseStore<StoredMemory<VectorMemory>>;

const T0: u64 = 1_000 * NANOS_PER_SECOND;
const DAY: u64 = 24 * 3600 * NANOS_PER_SECOND;

fn store() -> TestStore {
    ReleaseStore::open(&Memories::format(VectorMemory::default()))
}

fn operator() -> Principal {
    Principal::from_slice(&[9; 29])
}

/// A valid Wasm module of `len` bytes: header and one custom section of bytes drawn from `seed`.
fn wasm(len: usize, seed: u8) -> Vec<u8> {
    assert!((11..128 + 10).contains(&len));
    let mut bytes = b"\0asm\x01\x00\x00\x00".to_vec();
    bytes.extend_from_slice(&[0, (len - 10) as u8, 1, b'x']);
    while bytes.len() < len {
        bytes.push(seed.wrapping_mul(31).wrapping_add(bytes.len() as u8));
    }
    bytes
}

fn open_arg(module: &[u8], chunk_size: u32, version: &str) -> UploadOpenArg {
    UploadOpenArg {
        sha256: ByteBuf::from(sha256(module).to_vec()),
        size: module.len() as u64,
        chunk_size: Some(chunk_size),
        name: "app".to_string(),
        version: version.to_string(),
        notes: Some("notes".to_string()),
    }
}

fn chunk(upload_id: u64, index: u32, bytes: &[u8]) -> UploadChunkArg {
    UploadChunkArg {
        upload_id,
        index,
        bytes: ByteBuf::from(bytes.to_vec()),
    }
}

fn open(store: &mut TestStore, module: &[u8], chunk_size: u32, version: &str) -> u64 {
    store
        .open_upload(open_arg(module, chunk_size, version), operator(), T0)
        .expect("open")
        .upload_id
}

fn send_all(store: &mut TestStore, upload_id: u64, module: &[u8], chunk_size: u32) {
    for (index, bytes) in module.chunks(chunk_size as usize).enumerate() {
        store
            .put_chunk(chunk(upload_id, index as u32, bytes), T0)
            .expect("chunk");
    }
}

fn upload(store: &mut TestStore, module: &[u8], chunk_size: u32, version: &str) -> Release {
    let upload_id = open(store, module, chunk_size, version);
    send_all(store, upload_id, module, chunk_size);
    store
        .commit_upload(upload_id, operator(), T0)
        .expect("commit")
}

fn kind<T: fmt::Debug>(result: Result<T, Error>) -> ErrorKind {
    result.expect_err("refused").kind().clone()
}

#[test]
fn opening_declares_the_chunks_to_come() {
    let mut store = store();
    let module = wasm(50, 1);
    let status = store
        .open_upload(open_arg(&module, 20, "1"), operator(), T0)
        .unwrap();
    assert_eq!(status.upload_id, 1);
    assert_eq!(status.chunk_count, 3);
    assert_eq!(status.missing_chunks, vec![0, 1, 2]);
    assert_eq!(status.bytes_received, 0);
    assert_eq!(status.opened_by, operator());
    assert_eq!(status.expires_at, T0 + DAY);
}

#[test]
fn chunks_arrive_in_any_order_and_the_status_names_the_missing_ones() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    store.put_chunk(chunk(id, 2, &module[40..]), T0).unwrap();
    let status = store
        .put_chunk(chunk(id, 0, &module[..20]), T0 + 5)
        .unwrap();
    assert_eq!(status.missing_chunks, vec![1]);
    assert_eq!(status.bytes_received, 30);
    assert_eq!(
        status.expires_at,
        T0 + 5 + DAY,
        "a chunk extends the expiry"
    );
    assert_eq!(store.upload_status(id, T0 + 6).unwrap(), status);
}

#[test]
fn a_resent_chunk_is_accepted_and_stored_once() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    store.put_chunk(chunk(id, 0, &module[..20]), T0).unwrap();
    let blocks = store.storage_stats(T0).block_bytes;
    let status = store.put_chunk(chunk(id, 0, &module[..20]), T0).unwrap();
    assert_eq!(status.bytes_received, 20);
    assert_eq!(store.storage_stats(T0).block_bytes, blocks);
}

#[test]
fn different_bytes_for_a_received_chunk_conflict_and_change_nothing() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    store.put_chunk(chunk(id, 1, &module[20..40]), T0).unwrap();
    let before = store.upload_status(id, T0).unwrap();
    let other = [0u8; 20];
    assert_eq!(
        kind(store.put_chunk(chunk(id, 1, &other), T0 + 1)),
        ErrorKind::ChunkConflict {
            index: 1,
            stored_sha256: ByteBuf::from(sha256(&module[20..40]).to_vec()),
            sent_sha256: ByteBuf::from(sha256(&other).to_vec()),
        }
    );
    assert_eq!(store.upload_status(id, T0 + 1).unwrap(), before);
}

#[test]
fn chunks_of_the_wrong_index_or_size_are_refused() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    assert_eq!(
        kind(store.put_chunk(chunk(id, 3, &module[..10]), T0)),
        ErrorKind::ChunkIndexOutOfRange {
            index: 3,
            chunk_count: 3
        }
    );
    assert_eq!(
        kind(store.put_chunk(chunk(id, 2, &module[..20]), T0)),
        ErrorKind::ChunkSizeMismatch {
            index: 2,
            size: 20,
            expected: 10
        }
    );
    let huge = vec![0; MAX_CHUNK_BYTES as usize + 1];
    assert_eq!(
        kind(store.put_chunk(chunk(id, 0, &huge), T0)),
        ErrorKind::ChunkTooLarge {
            size: huge.len() as u64,
            max: MAX_CHUNK_BYTES
        }
    );
    assert_eq!(
        kind(store.put_chunk(chunk(99, 0, &module[..20]), T0)),
        ErrorKind::UnknownUpload { upload_id: 99 }
    );
}

#[test]
fn opening_the_same_module_again_resumes_its_upload() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    store.put_chunk(chunk(id, 1, &module[20..40]), T0).unwrap();
    let mut again = open_arg(&module, 10, "other");
    again.notes = None;
    let status = store.open_upload(again, operator(), T0 + 9).unwrap();
    assert_eq!(status.upload_id, id);
    assert_eq!(status.chunk_size, 20, "the upload keeps its chunk size");
    assert_eq!(status.missing_chunks, vec![0, 2]);
    assert_eq!(status.expires_at, T0 + 9 + DAY);
}

#[test]
fn commit_makes_a_release_without_moving_bytes() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    send_all(&mut store, id, &module, 20);
    let blocks = store.storage_stats(T0).block_bytes;

    let release = store.commit_upload(id, operator(), T0 + 1).unwrap();
    let summary = &release.summary;
    assert_eq!(summary.sha256.as_slice(), sha256(&module));
    assert_eq!(
        (summary.name.as_str(), summary.version.as_str()),
        ("app", "1")
    );
    assert_eq!(summary.notes.as_deref(), Some("notes"));
    assert_eq!((summary.size, summary.uncompressed_size), (50, 50));
    assert_eq!(summary.encoding, ModuleEncoding::Wasm);
    assert_eq!((summary.chunk_size, summary.chunk_count), (20, 3));
    assert_eq!(
        (summary.created_at, summary.created_by),
        (T0 + 1, operator())
    );
    assert_eq!(summary.sequence, 1);
    let expected_chunks: Vec<ByteBuf> = module
        .chunks(20)
        .map(|bytes| ByteBuf::from(sha256(bytes).to_vec()))
        .collect();
    assert_eq!(release.chunk_sha256, expected_chunks);

    let stats = store.storage_stats(T0 + 1);
    assert_eq!(stats.block_bytes, blocks, "commit allocates nothing");
    assert_eq!((stats.releases, stats.release_bytes), (1, 50));
    assert_eq!((stats.open_uploads, stats.staged_bytes), (0, 0));
    assert_eq!((stats.chunks, stats.chunk_bytes), (3, 50));
    for (index, bytes) in module.chunks(20).enumerate() {
        let arg = ReleaseChunkArg {
            sha256: summary.sha256.clone(),
            index: index as u32,
        };
        assert_eq!(store.release_chunk(&arg).unwrap(), bytes);
    }
}

#[test]
fn committing_again_returns_the_same_release() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    send_all(&mut store, id, &module, 20);
    let release = store.commit_upload(id, operator(), T0).unwrap();
    assert_eq!(store.commit_upload(id, operator(), T0 + 1), Ok(release));
    assert_eq!(
        kind(store.upload_status(id, T0 + 1)),
        ErrorKind::UploadCommitted {
            upload_id: id,
            release_sha256: ByteBuf::from(sha256(&module).to_vec()),
        }
    );
    assert_eq!(
        kind(store.commit_upload(id, operator(), T0 + 8 * DAY)),
        ErrorKind::UnknownUpload { upload_id: id },
        "the tombstone is gone after a week"
    );
}

#[test]
fn the_same_module_uploaded_twice_is_one_release() {
    let mut store = store();
    let module = wasm(50, 1);
    let first = upload(&mut store, &module, 20, "1");
    let blocks = store.storage_stats(T0).block_bytes;
    let second = upload(&mut store, &module, 25, "2");
    assert_eq!(
        second, first,
        "the existing release, under its own name and version"
    );
    let stats = store.storage_stats(T0);
    assert_eq!(stats.releases, 1);
    assert_eq!(
        stats.free_block_bytes,
        stats.block_bytes - blocks,
        "the second copy's blocks are free again"
    );
}

#[test]
fn releases_sharing_a_chunk_store_it_once() {
    let mut store = store();
    let shared = wasm(40, 1);
    let mut other = shared.clone();
    other[39] ^= 1; // same first chunk of 20 bytes, different second chunk
    upload(&mut store, &shared, 20, "1");
    let second = upload(&mut store, &other, 20, "2");
    let stats = store.storage_stats(T0);
    assert_eq!((stats.releases, stats.release_bytes), (2, 80));
    assert_eq!((stats.chunks, stats.chunk_bytes), (3, 60));

    store
        .delete_release(&second.summary.sha256, &NoReferences)
        .unwrap();
    let stats = store.storage_stats(T0);
    assert_eq!((stats.chunks, stats.chunk_bytes), (2, 40));
    let first_chunk = ReleaseChunkArg {
        sha256: ByteBuf::from(sha256(&shared).to_vec()),
        index: 0,
    };
    assert_eq!(store.release_chunk(&first_chunk).unwrap(), &shared[..20]);
}

#[test]
fn commit_refuses_incomplete_wrong_and_invalid_modules_and_keeps_the_upload() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    store.put_chunk(chunk(id, 1, &module[20..40]), T0).unwrap();
    assert_eq!(
        kind(store.commit_upload(id, operator(), T0)),
        ErrorKind::MissingChunks {
            missing: vec![0, 2]
        }
    );

    let mut declared = open_arg(&module, 20, "2");
    declared.sha256 = ByteBuf::from(vec![7; 32]);
    let wrong = store.open_upload(declared, operator(), T0).unwrap();
    send_all(&mut store, wrong.upload_id, &module, 20);
    assert_eq!(
        kind(store.commit_upload(wrong.upload_id, operator(), T0)),
        ErrorKind::HashMismatch {
            expected: ByteBuf::from(vec![7; 32]),
            actual: ByteBuf::from(sha256(&module).to_vec()),
        }
    );
    assert!(store.upload_status(wrong.upload_id, T0).is_ok());

    let not_wasm = b"this is not a wasm module".to_vec();
    let id = open(&mut store, &not_wasm, 10, "3");
    send_all(&mut store, id, &not_wasm, 10);
    assert!(matches!(
        kind(store.commit_upload(id, operator(), T0)),
        ErrorKind::InvalidWasm { .. }
    ));
    assert_eq!(store.upload_status(id, T0).unwrap().bytes_received, 25);
    assert_eq!(store.storage_stats(T0).releases, 0);
}

#[test]
fn a_name_and_version_names_one_module() {
    let mut store = store();
    let first = wasm(50, 1);
    let taken = upload(&mut store, &first, 20, "1");
    let second = wasm(50, 2);
    let expected = ErrorKind::ReleaseVersionTaken {
        name: "app".to_string(),
        version: "1".to_string(),
        sha256: taken.summary.sha256.clone(),
    };
    assert_eq!(
        kind(store.open_upload(open_arg(&second, 20, "1"), operator(), T0)),
        expected
    );

    // Two uploads racing for one version: the first commit wins.
    let a = open(&mut store, &second, 20, "2");
    let third = wasm(50, 3);
    let b = open(&mut store, &third, 20, "2");
    send_all(&mut store, a, &second, 20);
    send_all(&mut store, b, &third, 20);
    let won = store.commit_upload(a, operator(), T0).unwrap();
    assert_eq!(
        kind(store.commit_upload(b, operator(), T0)),
        ErrorKind::ReleaseVersionTaken {
            name: "app".to_string(),
            version: "2".to_string(),
            sha256: won.summary.sha256,
        }
    );
}

#[test]
fn an_idle_upload_expires_and_its_space_is_reused() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    send_all(&mut store, id, &module, 20);
    let blocks = store.storage_stats(T0).block_bytes;
    let expired = ErrorKind::UploadExpired {
        upload_id: id,
        expired_at: T0 + DAY,
    };
    assert_eq!(
        kind(store.upload_status(id, T0 + DAY)),
        expired,
        "expired by time alone, before any sweep"
    );
    assert_eq!(kind(store.commit_upload(id, operator(), T0 + DAY)), expired);
    assert_eq!(store.storage_stats(T0 + DAY).free_block_bytes, blocks);

    let other = wasm(50, 2);
    let reopened = store
        .open_upload(open_arg(&other, 20, "1"), operator(), T0 + DAY)
        .unwrap();
    send_all(&mut store, reopened.upload_id, &other, 20);
    assert_eq!(store.storage_stats(T0 + DAY).block_bytes, blocks);
    assert_eq!(
        kind(store.put_chunk(chunk(id, 0, &module[..20]), T0 + 2 * DAY)),
        expired,
        "the tombstone still answers"
    );
    assert_eq!(
        kind(store.abort_upload(id, T0 + DAY + TOMBSTONE_RETENTION_NANOS)),
        ErrorKind::UnknownUpload { upload_id: id }
    );
}

#[test]
fn the_sweep_expires_uploads_and_purges_tombstones_when_due() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    store.put_chunk(chunk(id, 0, &module[..20]), T0).unwrap();
    assert_eq!(store.next_deadline(), Some(T0 + DAY));

    store.sweep(T0 + DAY - 1);
    assert_eq!(store.storage_stats(T0).staged_bytes, 20);
    store.sweep(T0 + DAY);
    assert_eq!(
        store.uploads.get(id),
        Some(UploadRecord::Expired {
            expired_at: T0 + DAY
        })
    );
    assert_eq!(
        store.next_deadline(),
        Some(T0 + DAY + TOMBSTONE_RETENTION_NANOS)
    );
    store.sweep(T0 + DAY + TOMBSTONE_RETENTION_NANOS);
    assert_eq!(store.uploads.get(id), None);
    assert_eq!(store.next_deadline(), None);
}

#[test]
fn abort_discards_the_upload_and_frees_its_chunks() {
    let mut store = store();
    let module = wasm(50, 1);
    let id = open(&mut store, &module, 20, "1");
    send_all(&mut store, id, &module, 20);
    store.abort_upload(id, T0).unwrap();
    let stats = store.storage_stats(T0);
    assert_eq!(stats.free_block_bytes, stats.block_bytes);
    assert_eq!(stats.block_bytes, 3 * BLOCK_BYTES);
    assert_eq!(
        kind(store.upload_status(id, T0)),
        ErrorKind::UnknownUpload { upload_id: id }
    );
}

#[test]
fn quotas_bound_open_uploads_and_their_declared_bytes() {
    let mut store = store();
    store
        .update_upload_settings(&UploadSettingsUpdate {
            max_open_uploads: Some(2),
            max_staged_bytes: Some(u64::from(MAX_CHUNK_BYTES)),
            ..Default::default()
        })
        .unwrap();
    open(&mut store, &wasm(50, 1), 20, "1");
    open(&mut store, &wasm(50, 2), 20, "2");
    assert_eq!(
        kind(store.open_upload(open_arg(&wasm(50, 3), 20, "3"), operator(), T0)),
        ErrorKind::QuotaExceeded {
            quota: Quota::OpenUploads,
            limit: 2,
            in_use: 2,
            requested: 1,
        }
    );

    store
        .update_upload_settings(&UploadSettingsUpdate {
            max_open_uploads: Some(10),
            ..Default::default()
        })
        .unwrap();
    let mut big = open_arg(&wasm(50, 3), 1024, "3");
    big.size = u64::from(MAX_CHUNK_BYTES) - 99;
    big.chunk_size = None;
    assert_eq!(
        kind(store.open_upload(big, operator(), T0)),
        ErrorKind::QuotaExceeded {
            quota: Quota::StagedBytes,
            limit: u64::from(MAX_CHUNK_BYTES),
            in_use: 100,
            requested: u64::from(MAX_CHUNK_BYTES) - 99,
        }
    );
}

/// The release quota is checked when an upload opens and again when it commits (others may have
/// become releases meanwhile); a refused commit keeps the upload, which commits once a release
/// was deleted. Uploading a module that already is a release makes no new one and passes.
#[test]
fn the_release_quota_bounds_the_releases_kept() {
    let mut store = store();
    store
        .update_upload_settings(&UploadSettingsUpdate {
            max_releases: Some(2),
            ..Default::default()
        })
        .unwrap();
    let first = upload(&mut store, &wasm(50, 1), 20, "1");
    let waiting = open(&mut store, &wasm(50, 3), 20, "3");
    send_all(&mut store, waiting, &wasm(50, 3), 20);
    upload(&mut store, &wasm(50, 2), 20, "2");
    let full = ErrorKind::QuotaExceeded {
        quota: Quota::Releases,
        limit: 2,
        in_use: 2,
        requested: 1,
    };
    assert_eq!(
        kind(store.open_upload(open_arg(&wasm(50, 4), 20, "4"), operator(), T0)),
        full
    );
    assert_eq!(kind(store.commit_upload(waiting, operator(), T0)), full);
    assert!(full_error_says_what_to_do(&full));
    // The same module again is no new release.
    store
        .open_upload(open_arg(&wasm(50, 1), 20, "1"), operator(), T0)
        .expect("an existing release's module opens");

    store
        .delete_release(&first.summary.sha256, &NoReferences)
        .unwrap();
    store
        .commit_upload(waiting, operator(), T0)
        .expect("room again: the kept upload commits");
    assert_eq!(
        kind(store.update_upload_settings(&UploadSettingsUpdate {
            max_releases: Some(0),
            ..Default::default()
        })),
        ErrorKind::SettingOutOfRange {
            setting: crate::uploads::UploadSetting::MaxReleases,
            value: 0,
            min: 1,
            max: 10_000,
        }
    );
}

fn full_error_says_what_to_do(kind: &ErrorKind) -> bool {
    let message = kind.to_string();
    message.contains("delete_release") && message.contains("max_releases")
}

#[test]
fn expired_uploads_do_not_count_against_the_quota() {
    let mut store = store();
    store
        .update_upload_settings(&UploadSettingsUpdate {
            max_open_uploads: Some(1),
            ..Default::default()
        })
        .unwrap();
    open(&mut store, &wasm(50, 1), 20, "1");
    let later = store.open_upload(open_arg(&wasm(50, 2), 20, "2"), operator(), T0 + DAY);
    assert_eq!(later.unwrap().upload_id, 2);
}

#[test]
fn releases_are_found_by_name_and_listed_newest_first() {
    let mut store = store();
    let first = upload(&mut store, &wasm(50, 1), 20, "1");
    let second = upload(&mut store, &wasm(50, 2), 20, "2");
    let by_name = ReleaseSelector::NameVersion {
        name: "app".to_string(),
        version: "1".to_string(),
    };
    assert_eq!(store.get_release(&by_name), Ok(first.clone()));
    let page = store.list_releases(&ListReleasesArg::default());
    assert_eq!(page.releases, vec![second.summary, first.summary]);

    let missing = ReleaseSelector::NameVersion {
        name: "app".to_string(),
        version: "9".to_string(),
    };
    assert_eq!(
        kind(store.get_release(&missing)),
        ErrorKind::ReleaseNotFound { release: missing }
    );
    assert_eq!(
        kind(store.get_release(&ReleaseSelector::Sha256(ByteBuf::from(vec![1; 3])))),
        ErrorKind::InvalidSha256 { length: 3 }
    );
    // A name no release can have is refused by its length, not echoed back whole.
    let too_long = ReleaseSelector::NameVersion {
        name: "n".repeat(1 << 20),
        version: "1".to_string(),
    };
    assert_eq!(
        kind(store.get_release(&too_long)),
        ErrorKind::InvalidTextLength {
            field: TextField::Name,
            length: 1 << 20,
            min: 1,
            max: MAX_NAME_BYTES as u64
        }
    );
}

#[test]
fn a_chunk_outside_the_release_is_refused() {
    let mut store = store();
    let release = upload(&mut store, &wasm(50, 1), 20, "1");
    let arg = ReleaseChunkArg {
        sha256: release.summary.sha256,
        index: 3,
    };
    assert_eq!(
        kind(store.release_chunk(&arg)),
        ErrorKind::ChunkIndexOutOfRange {
            index: 3,
            chunk_count: 3
        }
    );
}

struct ReferencedByRollout(u64);

impl ReleaseReferences for ReferencedByRollout {
    fn references(&self, _sha256: &Sha256Hash) -> Vec<ReleaseReference> {
        vec![ReleaseReference::Rollout { rollout_id: self.0 }]
    }
}

#[test]
fn a_referenced_release_cannot_be_deleted() {
    let mut store = store();
    let release = upload(&mut store, &wasm(50, 1), 20, "1");
    let sha256 = release.summary.sha256.clone();
    assert_eq!(
        kind(store.delete_release(&sha256, &ReferencedByRollout(4))),
        ErrorKind::ReleaseInUse {
            sha256: sha256.clone(),
            references: vec![ReleaseReference::Rollout { rollout_id: 4 }],
        }
    );
    assert_eq!(
        store.get_release(&ReleaseSelector::Sha256(sha256.clone())),
        Ok(release)
    );

    store.delete_release(&sha256, &NoReferences).unwrap();
    assert_eq!(
        kind(store.delete_release(&sha256, &NoReferences)),
        ErrorKind::ReleaseNotFound {
            release: ReleaseSelector::Sha256(sha256)
        }
    );
    let stats = store.storage_stats(T0);
    assert_eq!((stats.releases, stats.chunks), (0, 0));
    assert_eq!(stats.free_block_bytes, stats.block_bytes);
}

#[test]
fn gzipped_modules_are_released_with_their_decompressed_facts() {
    use std::io::Write;
    let wasm = wasm(120, 1);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&wasm).unwrap();
    let gz = encoder.finish().unwrap();
    let release = upload(&mut store(), &gz, 16, "1");
    assert_eq!(release.summary.encoding, ModuleEncoding::Gzip);
    assert_eq!(release.summary.size, gz.len() as u64);
    assert_eq!(release.summary.uncompressed_size, 120);
}

#[test]
fn settings_survive_reopening_the_release_store() {
    let memory = VectorMemory::default();
    let memories = Memories::format(memory.clone());
    let mut store = ReleaseStore::open(&memories);
    let settings = store
        .update_upload_settings(&UploadSettingsUpdate {
            upload_ttl_seconds: Some(600),
            ..Default::default()
        })
        .unwrap();
    upload(&mut store, &wasm(50, 1), 20, "1");
    drop(store);

    let mut reopened = ReleaseStore::open(&Memories::open(memory).unwrap());
    assert_eq!(reopened.upload_settings(), settings);
    let status = reopened
        .open_upload(open_arg(&wasm(50, 2), 20, "2"), operator(), T0)
        .unwrap();
    assert_eq!(status.upload_id, 2, "ids are never reused");
    assert_eq!(status.expires_at, T0 + 600 * NANOS_PER_SECOND);
}

/// The running totals of `storage_stats` match what a scan of the releases and chunks finds,
/// through commits that share chunks and deletions that free them.
#[test]
fn storage_stats_totals_follow_commits_and_deletions() {
    let mut store = store();
    let scanned = |store: &TestStore| {
        let release_bytes: u64 = store.releases.records().map(|record| record.size).sum();
        (release_bytes, store.chunks.stats().indexed_bytes)
    };
    let totals = |store: &TestStore| {
        let stats = store.storage_stats(T0);
        (stats.release_bytes, stats.chunk_bytes)
    };
    let shared = wasm(100, 7);
    let mut other = shared.clone();
    other[90] ^= 0xff; // the first chunks are shared
    let first = upload(&mut store, &shared, 20, "1");
    upload(&mut store, &other, 20, "2");
    upload(&mut store, &wasm(60, 9), 20, "3");
    assert_eq!(totals(&store), scanned(&store));
    assert_eq!(store.storage_stats(T0).releases, 3);
    store
        .delete_release(&first.summary.sha256, &NoReferences)
        .unwrap();
    assert_eq!(totals(&store), scanned(&store));
    assert_eq!(store.storage_stats(T0).releases, 2);
}

/// A store whose config release 0.1 wrote (no totals) counts them when it is opened.
#[test]
fn totals_missing_from_a_release_0_1_config_are_counted_when_opened() {
    let memory = VectorMemory::default();
    let memories = Memories::format(memory.clone());
    let mut store = ReleaseStore::open(&memories);
    upload(&mut store, &wasm(100, 7), 20, "1");
    upload(&mut store, &wasm(60, 9), 20, "2");
    let expected = store.storage_stats(T0);
    store.update_config(|config| config.totals = None);

    let reopened = ReleaseStore::open(&Memories::open(memory).unwrap());
    assert_eq!(reopened.storage_stats(T0), expected);
    assert_eq!(expected.release_bytes, 160);
}

#[test]
fn a_blessing_is_kept_until_withdrawn_or_its_release_is_deleted() {
    let memory = VectorMemory::default();
    let mut store = ReleaseStore::open(&Memories::format(memory.clone()));
    let release = upload(&mut store, &wasm(50, 1), 20, "1");
    let sha256 = release.summary.sha256.clone();
    let selector = ReleaseSelector::Sha256(sha256.clone());
    let admin = Principal::from_slice(&[5; 29]);
    let first = Blessing {
        blessed_at: T0,
        blessed_by: admin,
    };
    assert_eq!(
        kind(store.require_blessing(&selector)),
        ErrorKind::ReleaseNotBlessed {
            sha256: sha256.clone()
        }
    );
    store.set_blessing(&sha256, Some(first)).unwrap();
    // Blessing again keeps the first blessing.
    let later = Blessing {
        blessed_at: T0 + DAY,
        blessed_by: operator(),
    };
    store.set_blessing(&sha256, Some(later)).unwrap();
    drop(store);

    let mut store = ReleaseStore::open(&Memories::open(memory).unwrap());
    assert_eq!(store.get_release(&selector).unwrap().blessing, Some(first));
    assert_eq!(store.require_blessing(&selector), Ok(()));
    store.set_blessing(&sha256, None).unwrap();
    assert_eq!(store.get_release(&selector).unwrap().blessing, None);
    assert!(store.require_blessing(&selector).is_err());

    store.set_blessing(&sha256, Some(later)).unwrap();
    store.delete_release(&sha256, &NoReferences).unwrap();
    let again = upload(&mut store, &wasm(50, 1), 20, "1");
    assert_eq!(
        again.blessing, None,
        "a deleted release's blessing goes with it"
    );
}

#[test]
fn only_a_release_can_be_blessed() {
    let mut store = store();
    let blessing = Some(Blessing {
        blessed_at: T0,
        blessed_by: operator(),
    });
    let unknown = ByteBuf::from(vec![4; 32]);
    assert_eq!(
        kind(store.set_blessing(&unknown, blessing)),
        ErrorKind::ReleaseNotFound {
            release: ReleaseSelector::Sha256(unknown)
        }
    );
    assert!(matches!(
        kind(store.set_blessing(&[4; 31], blessing)),
        ErrorKind::InvalidSha256 { .. }
    ));
}

/// Stored in memory 26: the bytes are a contract with the next build.
#[test]
fn a_blessing_keeps_its_bytes() {
    use ic_stable_structures::Storable;
    let blessing = Blessing {
        blessed_at: 7,
        blessed_by: Principal::from_slice(&[1, 2]),
    };
    let bytes = Cbor(blessing).to_bytes().into_owned();
    // {"blessed_at": 7, "blessed_by": h'0102'}
    assert_eq!(
        crate::hash::hex(&bytes),
        "a26a626c65737365645f6174076a626c65737365645f6279420102"
    );
    assert_eq!(Cbor::<Blessing>::from_bytes(bytes.into()).0, blessing);
}
