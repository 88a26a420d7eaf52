use ic_stable_structures::{StableBTreeMap, VectorMemory};

use serde_bytes::ByteArray;

use super::*;
use crate::cbor::Cbor;
use crate::hash::hex;
use crate::release_store::ReleaseStoreConfig;
use crate::releases::ReleaseRecord;
use crate::roles::{Role, RoleSet};
use crate::wasm_check::ModuleEncoding;

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

/// Golden bytes: stored data must stay readable by later versions, so a change here is a schema
/// change, not a refactoring.
#[test]
fn header_encoding_is_pinned() {
    assert_eq!(
        Header {
            magic: MAGIC,
            schema_version: 2,
            journal_writer: JournalWriter {
                format: 1,
                engine_revision: 1,
            },
        }
        .into_bytes(),
        b"DPLY\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x01"
    );
}

/// Golden bytes of a roles-table value: a CBOR array of the role names.
#[test]
fn role_set_encoding_is_pinned() {
    let roles = Cbor(RoleSet::from([Role::Operator, Role::Admin]));
    assert_eq!(
        roles.into_bytes(),
        b"\x82\x65Admin\x68Operator",
        "CBOR array(2) of text(5) \"Admin\", text(8) \"Operator\""
    );
}

#[test]
fn header_decoding_ignores_fields_appended_by_later_versions() {
    let bytes = b"DPLY\x00\x00\x00\x07\x00\x00\x00\x02\x00\x00\x00\x03later fields";
    assert_eq!(
        Header::from_bytes(Cow::Borrowed(bytes)),
        Header {
            magic: MAGIC,
            schema_version: 7,
            journal_writer: JournalWriter {
                format: 2,
                engine_revision: 3,
            },
        }
    );
}

#[test]
fn formatted_memory_opens() {
    let memory = VectorMemory::default();
    Memories::format(memory.clone());
    assert!(Memories::open(memory).is_ok());
}

#[test]
fn empty_memory_is_refused() {
    assert_eq!(
        Memories::open(VectorMemory::default()).err(),
        Some(LayoutError::Empty)
    );
}

#[test]
fn memory_without_a_memory_manager_is_refused_and_left_untouched() {
    let memory = VectorMemory::default();
    memory.grow(1);
    memory.write(0, b"someone else's data");
    let before = memory.borrow().clone();

    assert_eq!(
        Memories::open(memory.clone()).err(),
        Some(LayoutError::NotDeployer)
    );
    assert_eq!(*memory.borrow(), before);
}

/// A canister that also uses a `MemoryManager`, but keeps a map where the deployer keeps its
/// header.
#[test]
fn another_structure_in_the_header_memory_is_refused() {
    let memory = VectorMemory::default();
    let mut foreign: StableBTreeMap<u64, u64, _> =
        StableBTreeMap::init(MemoryManager::init(memory.clone()).get(HEADER_MEMORY_ID));
    foreign.insert(1, 1);

    assert_eq!(Memories::open(memory).err(), Some(LayoutError::NotDeployer));
}

#[test]
fn memory_manager_without_a_header_is_refused() {
    let memory = VectorMemory::default();
    MemoryManager::init(memory.clone());
    assert_eq!(Memories::open(memory).err(), Some(LayoutError::NotDeployer));
}

fn memory_with_header(header: Header) -> VectorMemory {
    let memory = VectorMemory::default();
    let memories = Memories::format(memory.clone());
    StableCell::new(memories.header(), header);
    memory
}

#[test]
fn a_header_with_another_magic_is_refused() {
    let memory = memory_with_header(Header {
        magic: *b"XXXX",
        ..Header::current()
    });
    assert_eq!(Memories::open(memory).err(), Some(LayoutError::NotDeployer));
}

#[test]
fn a_newer_schema_is_refused() {
    let memory = memory_with_header(Header {
        schema_version: SCHEMA_VERSION + 1,
        ..Header::current()
    });
    let error = Memories::open(memory).err().expect("refused");
    assert_eq!(
        error,
        LayoutError::NewerSchema {
            found: SCHEMA_VERSION + 1
        }
    );
    assert!(error.to_string().contains(&format!(
        "install a deployer Wasm that supports schema {}",
        SCHEMA_VERSION + 1
    )));
}

#[test]
fn an_older_schema_without_migration_is_refused() {
    let memory = memory_with_header(Header {
        schema_version: OLDEST_MIGRATED_SCHEMA - 1,
        ..Header::current()
    });
    assert_eq!(
        Memories::open(memory).err(),
        Some(LayoutError::NoMigration {
            found: OLDEST_MIGRATED_SCHEMA - 1
        })
    );
}

#[test]
fn a_journal_is_replayed_only_by_the_engine_that_wrote_it() {
    let current = JournalWriter::current();
    assert_eq!(current.check(5), Ok(()));
    let other_engine = JournalWriter {
        engine_revision: current.engine_revision + 1,
        ..current.clone()
    };
    let error = other_engine.check(5).expect_err("refused");
    assert_eq!(
        error,
        LayoutError::JournalOfAnotherEngine {
            found: other_engine.clone(),
            lines: 5
        }
    );
    assert!(error.to_string().contains("prepare_upgrade"), "{error}");
    // Folded (empty), any writer's journal is accepted.
    assert_eq!(other_engine.check(0), Ok(()));
}

#[test]
fn a_newer_journal_format_is_refused() {
    let newer = JournalWriter {
        format: JOURNAL_FORMAT + 1,
        ..JournalWriter::current()
    };
    let error = newer.check(3).expect_err("refused");
    assert_eq!(
        error,
        LayoutError::NewerJournal {
            found: JOURNAL_FORMAT + 1,
            lines: 3
        }
    );
    assert!(error.to_string().contains("newer than format 1"), "{error}");
    assert_eq!(newer.check(0), Ok(()));
}

#[test]
fn the_journal_writer_and_the_schema_are_recorded_in_the_header() {
    let memory = memory_with_header(Header {
        schema_version: OLDEST_MIGRATED_SCHEMA,
        journal_writer: JournalWriter {
            format: 1,
            engine_revision: 77,
        },
        ..Header::current()
    });
    let memories = Memories::open(memory).expect("schema 1 is migrated");
    assert_eq!(memories.journal_writer().engine_revision, 77);
    memories.record_this_build();
    assert_eq!(memories.journal_writer(), JournalWriter::current());
    let header = StableCell::init(memories.header(), Header::current());
    assert_eq!(header.get().schema_version, SCHEMA_VERSION);
}

/// The release store config cell as release 0.1 wrote it (schema 1): the contract every later
/// build reads.
const RELEASE_0_1_STORE_CONFIG: &str = concat!(
    "a3",                                           // map(3)
    "6f75706c6f61645f73657474696e6773",             // "upload_settings"
    "a3",                                           // map(3)
    "7275706c6f61645f74746c5f7365636f6e6473",       // "upload_ttl_seconds"
    "1a00015180",                                   // 86400
    "706d61785f6f70656e5f75706c6f616473",           // "max_open_uploads"
    "0a",                                           // 10
    "706d61785f7374616765645f6279746573",           // "max_staged_bytes"
    "1a40000000",                                   // 1 GiB
    "6e6e6578745f75706c6f61645f6964",               // "next_upload_id"
    "01",                                           // 1
    "756e6578745f72656c656173655f73657175656e6365", // "next_release_sequence"
    "01",                                           // 1
);

/// Golden bytes of the release store config cell, as a fresh install writes it.
#[test]
fn release_store_config_encoding_is_pinned() {
    let config = Cbor(ReleaseStoreConfig::default());
    assert_eq!(
        hex(&config.into_bytes()),
        concat!(
            "a4",                                           // map(4)
            "6f75706c6f61645f73657474696e6773",             // "upload_settings"
            "a4",                                           // map(4)
            "7275706c6f61645f74746c5f7365636f6e6473",       // "upload_ttl_seconds"
            "1a00015180",                                   // 86400
            "706d61785f6f70656e5f75706c6f616473",           // "max_open_uploads"
            "0a",                                           // 10
            "706d61785f7374616765645f6279746573",           // "max_staged_bytes"
            "1a40000000",                                   // 1 GiB
            "6c6d61785f72656c6561736573",                   // "max_releases"
            "1903e8",                                       // 1000
            "6e6e6578745f75706c6f61645f6964",               // "next_upload_id"
            "01",                                           // 1
            "756e6578745f72656c656173655f73657175656e6365", // "next_release_sequence"
            "01",                                           // 1
            "66746f74616c73",                               // "totals"
            "a2",                                           // map(2)
            "6d72656c656173655f6279746573",                 // "release_bytes"
            "00",                                           // 0
            "6b6368756e6b5f6279746573",                     // "chunk_bytes"
            "00",                                           // 0
        )
    );
}

/// Release 0.1 stored no `max_releases` and no totals: its config reads with the default quota
/// and without totals, which the release store then counts (`release_store::tests`).
#[test]
fn the_release_0_1_store_config_reads_with_the_default_release_quota() {
    let Cbor(config) =
        Cbor::<ReleaseStoreConfig>::from_bytes(Cow::Owned(unhex(RELEASE_0_1_STORE_CONFIG)));
    assert_eq!(
        config,
        ReleaseStoreConfig {
            totals: None,
            ..ReleaseStoreConfig::default()
        }
    );
    assert_eq!(config.upload_settings.max_releases, 1_000);
}

fn release_record(enhanced_orthogonal_persistence: Option<bool>) -> ReleaseRecord {
    ReleaseRecord {
        sha256: ByteArray::new([0xaa; 32]),
        name: "app".to_string(),
        version: "1.0".to_string(),
        notes: None,
        size: 100,
        uncompressed_size: 200,
        encoding: ModuleEncoding::Gzip,
        chunk_size: 64,
        chunk_sha256: vec![ByteArray::new([0xbb; 32])],
        candid_service: Some("service : {}".to_string()),
        enhanced_orthogonal_persistence,
        created_at: 7,
        created_by: candid::Principal::from_slice(&[1, 2]),
        sequence: 1,
    }
}

/// Golden bytes of a release record as release 0.1 wrote it (`map_header` "ad", 13 fields) or
/// as it is written now (`map_header` "ae", the persistence mark after the Candid service):
/// field names, hashes as CBOR byte strings, the encoding by variant name, the principal as
/// its bytes.
fn release_record_hex(map_header: &str, persistence: &[&str]) -> String {
    let aa = "aa".repeat(32);
    let bb = "bb".repeat(32);
    #[rustfmt::skip]
    let head = [
        map_header,
        "66736861323536", "5820", &aa,                         // "sha256": bytes(32)
        "646e616d65", "63617070",                              // "name": "app"
        "6776657273696f6e", "63312e30",                        // "version": "1.0"
        "656e6f746573", "f6",                                  // "notes": null
        "6473697a65", "1864",                                  // "size": 100
        "71756e636f6d707265737365645f73697a65", "18c8",        // "uncompressed_size": 200
        "68656e636f64696e67", "64477a6970",                    // "encoding": "Gzip"
        "6a6368756e6b5f73697a65", "1840",                      // "chunk_size": 64
        "6c6368756e6b5f736861323536", "81", "5820", &bb,       // "chunk_sha256": [bytes(32)]
        "6e63616e6469645f73657276696365",                      // "candid_service"
        "6c73657276696365203a207b7d",                          // "service : {}"
    ];
    #[rustfmt::skip]
    let tail = [
        "6a637265617465645f6174", "07",                        // "created_at": 7
        "6a637265617465645f6279", "420102",                    // "created_by": bytes [1, 2]
        "6873657175656e6365", "01",                            // "sequence": 1
    ];
    [&head[..], persistence, &tail[..]].concat().concat()
}

#[test]
fn release_record_encoding_is_pinned() {
    let record = Cbor(release_record(Some(true)));
    let expected = release_record_hex(
        "ae",
        &[
            // "enhanced_orthogonal_persistence": true
            "781f656e68616e6365645f6f7274686f676f6e616c5f70657273697374656e6365",
            "f5",
        ],
    );
    assert_eq!(hex(&record.into_bytes()), expected);
}

/// Release 0.1 did not record enhanced orthogonal persistence: its records read as not known,
/// and a record that does not know it is written as 0.1 wrote it.
#[test]
fn a_release_0_1_record_reads_with_persistence_not_known() {
    let written_by_0_1 = release_record_hex("ad", &[]);
    let Cbor(record) = Cbor::<ReleaseRecord>::from_bytes(Cow::Owned(unhex(&written_by_0_1)));
    assert_eq!(record, release_record(None));
    assert_eq!(hex(&Cbor(record).into_bytes()), written_by_0_1);
}
