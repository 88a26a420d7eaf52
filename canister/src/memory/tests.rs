use ic_stable_structures::{StableBTreeMap, VectorMemory};

use super::*;
use crate::cbor::Cbor;
use crate::roles::{Role, RoleSet};

/// Golden bytes: stored data must stay readable by later versions, so a change here is a schema
/// change, not a refactoring.
#[test]
fn header_encoding_is_pinned() {
    assert_eq!(Header::current().into_bytes(), b"DPLY\x00\x00\x00\x01");
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
    let bytes = b"DPLY\x00\x00\x00\x07later fields";
    assert_eq!(
        Header::from_bytes(Cow::Borrowed(bytes)),
        Header {
            magic: MAGIC,
            schema_version: 7,
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
        schema_version: SCHEMA_VERSION,
    });
    assert_eq!(Memories::open(memory).err(), Some(LayoutError::NotDeployer));
}

#[test]
fn a_newer_schema_is_refused() {
    let memory = memory_with_header(Header {
        magic: MAGIC,
        schema_version: SCHEMA_VERSION + 1,
    });
    let error = Memories::open(memory).err().expect("refused");
    assert_eq!(
        error,
        LayoutError::NewerSchema {
            found: SCHEMA_VERSION + 1
        }
    );
    assert!(error
        .to_string()
        .contains("install a deployer Wasm that supports schema 2"));
}

#[test]
fn an_older_schema_without_migration_is_refused() {
    let memory = memory_with_header(Header {
        magic: MAGIC,
        schema_version: SCHEMA_VERSION - 1,
    });
    assert_eq!(
        Memories::open(memory).err(),
        Some(LayoutError::NoMigration {
            found: SCHEMA_VERSION - 1
        })
    );
}
