use super::*;

fn sections() -> Sections {
    let mut sections = Sections::default();
    sections.0.insert(
        "roles".to_string(),
        vec![(ByteBuf::from(vec![1; 29]), ByteBuf::from(vec![0x80]))],
    );
    sections
}

fn export(chunks: Vec<(Sha256Hash, u64)>) -> Export {
    hashed(Export::of_sections(sections(), chunks, 7))
}

fn hashed(mut export: Export) -> Export {
    while !export.hash_next_piece() {}
    export
}

fn kind(result: Result<impl std::fmt::Debug, Error>) -> ErrorKind {
    result.expect_err("refused").kind().clone()
}

/// Runs the commit's check to its end: the entries it read, merged.
fn checked(restore: &mut Restore) -> Result<Sections, Error> {
    let mut read = Sections::default();
    loop {
        match restore.next_commit_slice()? {
            Slice::Check(entries) => {
                for (name, entries) in entries.0 {
                    read.0.entry(name).or_default().extend(entries);
                }
            }
            Slice::Empty => return Ok(read),
            Slice::Write { .. } => panic!("writes come after the check"),
        }
    }
}

#[test]
fn the_document_is_versioned_cbor_whose_pieces_hash_to_the_manifest() {
    let export = export(vec![([5; 32], 10)]);
    let manifest = &export.manifest;
    assert_eq!(
        (manifest.format, manifest.schema),
        (EXPORT_FORMAT, SCHEMA_VERSION)
    );
    let bytes = export.document_piece(0).unwrap();
    assert_eq!(manifest.document_sha256.as_slice(), sha256(&bytes));
    assert_eq!(manifest.document_size, bytes.len() as u64);
    let document: Document = ciborium::from_reader(bytes.as_slice()).unwrap();
    assert_eq!(document.exported_at, 7);
    assert_eq!(document.sections, sections());
    assert_eq!(manifest.release_chunks[0].size, 10);
    assert_eq!(
        kind(export.document_piece(1)),
        ErrorKind::ExportStreamMissing {
            stream: ExportStream::DocumentPiece(1)
        }
    );
}

#[test]
fn a_tampered_piece_is_refused_and_the_restore_goes_on() {
    let export = export(vec![]);
    let mut restore = Restore::begin(export.manifest.clone()).unwrap();
    let mut piece = export.document_piece(0).unwrap();
    piece[3] ^= 1;
    let stream = ExportStream::DocumentPiece(0);
    assert!(matches!(
        kind(restore.check_piece(&stream, &piece)),
        ErrorKind::RestorePieceMismatch { .. }
    ));
    assert!(matches!(
        kind(checked(&mut restore)),
        ErrorKind::RestoreIncomplete { missing: 1, .. }
    ));
    let piece = export.document_piece(0).unwrap();
    restore.check_piece(&stream, &piece).unwrap();
    restore.received_document_piece(0, piece);
    assert_eq!(checked(&mut restore).unwrap(), sections());
    assert_eq!(restore.progress().received, 1);
}

#[test]
fn a_manifest_of_another_version_or_size_is_refused_before_any_piece() {
    let manifest = export(vec![]).manifest;
    let newer = ExportManifest {
        schema: SCHEMA_VERSION + 1,
        ..manifest.clone()
    };
    assert_eq!(
        kind(Restore::begin(newer)),
        ErrorKind::BackupVersionUnsupported {
            format: EXPORT_FORMAT,
            schema: SCHEMA_VERSION + 1,
            supported_format: EXPORT_FORMAT,
            supported_schema: SCHEMA_VERSION,
        }
    );
    let empty = ExportManifest {
        document_pieces: vec![],
        ..manifest
    };
    assert!(matches!(
        kind(Restore::begin(empty)),
        ErrorKind::RestoreInvalid { .. }
    ));
}

#[test]
fn a_stream_the_manifest_does_not_list_is_refused() {
    let restore = Restore::begin(export(vec![([5; 32], 3)]).manifest).unwrap();
    let unlisted = ExportStream::ReleaseChunk(ByteBuf::from(vec![6; 32]));
    assert!(matches!(
        kind(restore.check_piece(&unlisted, b"abc")),
        ErrorKind::RestoreInvalid { .. }
    ));
    assert_eq!(
        restore.progress().missing,
        vec![
            ExportStream::DocumentPiece(0),
            ExportStream::ReleaseChunk(ByteBuf::from(vec![5; 32]))
        ]
    );
}

/// A one-piece manifest of `bytes`, as an export of them lists it.
fn manifest_of(bytes: &[u8]) -> ExportManifest {
    let piece = ExportPiece {
        sha256: ByteBuf::from(sha256(bytes).to_vec()),
        size: bytes.len() as u64,
    };
    ExportManifest {
        document_size: piece.size,
        document_sha256: piece.sha256.clone(),
        document_pieces: vec![piece],
        ..export(vec![]).manifest
    }
}

/// A restore of `bytes` as a one-piece document, received whole.
fn restore_of(bytes: Vec<u8>) -> Restore {
    let mut restore = Restore::begin(manifest_of(&bytes)).unwrap();
    restore.received_document_piece(0, bytes);
    restore
}

fn encoded(document: &Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(document, &mut bytes).unwrap();
    bytes
}

#[test]
fn a_document_of_a_newer_format_is_refused_at_the_commit() {
    let mut restore = restore_of(encoded(&Document {
        format: EXPORT_FORMAT + 1,
        schema: SCHEMA_VERSION,
        journal_format: 1,
        engine_revision: 1,
        exported_at: 7,
        sections: Sections::default(),
    }));
    assert!(matches!(
        kind(checked(&mut restore)),
        ErrorKind::BackupVersionUnsupported { format, .. } if format == EXPORT_FORMAT + 1
    ));
}

/// `entries` entries of `value_bytes` bytes each, over three sections.
fn many(entries: usize, value_bytes: usize) -> Sections {
    let mut sections = Sections::default();
    for index in 0..entries {
        let name = ["events", "fleet_children", "journal"][index % 3];
        let key = ByteBuf::from((index as u64).to_be_bytes().to_vec());
        sections.push(name, (key, ByteBuf::from(vec![index as u8; value_bytes])));
    }
    sections
}

#[test]
fn an_export_is_hashed_a_piece_at_a_time_and_its_manifest_is_complete_after_the_last() {
    let mut export = Export::of_sections(many(9, 300_000), vec![], 7);
    assert!(!export.hashed());
    let mut steps = 1;
    while !export.hash_next_piece() {
        assert!(export.manifest.document_sha256.is_empty());
        steps += 1;
    }
    let manifest = &export.manifest;
    assert_eq!(steps, manifest.document_pieces.len());
    assert_eq!(steps, 3, "2.7 MB in pieces of 1 MB");
    assert_eq!(
        manifest.document_sha256.as_slice(),
        sha256(&export.document)
    );
    for (index, piece) in manifest.document_pieces.iter().enumerate() {
        let bytes = export.document_piece(index as u32).unwrap();
        assert_eq!(piece.sha256.as_slice(), sha256(&bytes));
        assert_eq!(piece.size, bytes.len() as u64);
    }
    assert!(export.hash_next_piece(), "hashed once");
    assert_eq!(export.manifest.document_pieces.len(), 3);
}

/// A document of `entries` entries of `value_bytes` bytes each, over three sections, taken
/// whole into a restore.
fn received(entries: usize, value_bytes: usize) -> (Sections, Restore) {
    let export = hashed(Export::of_sections(many(entries, value_bytes), vec![], 7));
    let mut restore = Restore::begin(export.manifest.clone()).unwrap();
    for index in 0..export.manifest.document_pieces.len() as u32 {
        restore.received_document_piece(index, export.document_piece(index).unwrap());
    }
    let Document { sections, .. } = ciborium::from_reader(export.document.as_slice()).unwrap();
    (sections, restore)
}

#[test]
fn the_commit_checks_every_entry_then_writes_the_same_entries_a_bounded_slice_at_a_time() {
    let (sections, mut restore) = received(2 * commit::SLICE_ENTRIES as usize + 500, 40);
    let mut checked = Vec::new();
    while let Slice::Check(entries) = restore.next_commit_slice().unwrap() {
        assert!(
            restore.writing().is_none(),
            "nothing is written while checking"
        );
        checked.push(entries);
    }
    assert!(
        restore.writing().is_some(),
        "checked and emptied: writing began"
    );
    let mut written = Vec::new();
    loop {
        match restore.next_commit_slice().unwrap() {
            Slice::Write { entries, last } => {
                assert!(restore.writing().is_some());
                written.push(entries);
                if last {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, written);
    assert_eq!(checked.len(), 3, "two full slices and one of 500 entries");
    assert!(checked
        .iter()
        .all(|slice| slice.entries() <= commit::SLICE_ENTRIES));
    let mut whole = Sections::default();
    for (name, entries) in written.into_iter().flat_map(|slice| slice.0) {
        whole.0.entry(name).or_default().extend(entries);
    }
    assert_eq!(whole, sections);
    assert_eq!(
        restore.summary(),
        RestoreSummary {
            exported_at: 7,
            sections: 3,
            entries: 2 * commit::SLICE_ENTRIES + 500,
            chunks: 0
        }
    );
}

#[test]
fn a_slice_reads_at_most_a_megabyte_of_document_and_entries_may_span_pieces() {
    let (sections, mut restore) = received(9, 300_000);
    assert!(restore.manifest.document_pieces.len() >= 3);
    let mut whole = Sections::default();
    let mut slices = 0;
    while let Slice::Check(entries) = restore.next_commit_slice().unwrap() {
        slices += 1;
        assert!(entries.entries() <= 4, "{} entries", entries.entries());
        for (name, entries) in entries.0 {
            whole.0.entry(name).or_default().extend(entries);
        }
    }
    assert!(slices >= 3, "{slices} slices");
    assert_eq!(whole, sections);
}

#[test]
fn a_manifest_altered_with_its_pieces_is_refused_at_the_end_of_the_check_and_nothing_is_written() {
    let (_, mut restore) = received(2_500, 40);
    restore.manifest.document_sha256 = ByteBuf::from(vec![0; 32]);
    let refusal = loop {
        match restore.next_commit_slice() {
            Ok(Slice::Check(_)) => assert!(restore.writing().is_none()),
            Ok(other) => panic!("{other:?}"),
            Err(error) => break error,
        }
    };
    assert!(
        matches!(refusal.kind(), ErrorKind::RestoreInvalid { reason } if reason.contains("document_sha256")),
        "{refusal:?}"
    );
    assert!(restore.writing().is_none() && restore.committing().is_none());
    // A later commit checks again from the start.
    assert!(matches!(restore.next_commit_slice(), Ok(Slice::Check(_))));
}

#[test]
fn a_piece_received_again_while_checking_begins_the_check_again() {
    let (_, mut restore) = received(2_500, 40);
    let Slice::Check(first) = restore.next_commit_slice().unwrap() else {
        panic!("a check first")
    };
    assert!(restore.committing().is_some());
    let piece = restore.document_pieces[0].clone().unwrap();
    restore.received_document_piece(0, piece);
    assert!(restore.committing().is_none());
    let Slice::Check(again) = restore.next_commit_slice().unwrap() else {
        panic!("a check first")
    };
    assert_eq!(first, again);
}

#[test]
fn bytes_after_the_document_or_pieces_of_other_sizes_are_refused() {
    let mut bytes = export(vec![]).document;
    bytes.push(0);
    let manifest = manifest_of(&bytes);
    let mut restore = restore_of(bytes);
    assert!(matches!(
        kind(restore.next_commit_slice()),
        ErrorKind::RestoreInvalid { reason } if reason.contains("after its end")
    ));
    let uneven = ExportManifest {
        document_pieces: vec![manifest.document_pieces[0].clone(); 2],
        document_size: 2 * manifest.document_size,
        ..manifest
    };
    assert!(matches!(
        kind(Restore::begin(uneven)),
        ErrorKind::RestoreInvalid { reason } if reason.contains("bytes each but the last")
    ));
}

#[test]
fn a_journal_of_another_engine_is_refused_before_any_write() {
    let mut sections = Sections::default();
    sections.push(JOURNAL_SECTION, (ByteBuf::new(), ByteBuf::from(vec![1])));
    let writer = JournalWriter::current();
    let mut restore = restore_of(encoded(&Document {
        format: EXPORT_FORMAT,
        schema: SCHEMA_VERSION,
        journal_format: writer.format,
        engine_revision: writer.engine_revision + 1,
        exported_at: 7,
        sections,
    }));
    assert!(matches!(
        kind(restore.next_commit_slice()),
        ErrorKind::RestoreInvalid { reason } if reason.contains("restore it into the build that exported it")
    ));
    assert!(restore.committing().is_none());
}
