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
    Export::new(sections(), chunks, 7)
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

#[test]
fn a_document_of_a_newer_format_is_refused_at_the_commit() {
    let mut document_bytes = Vec::new();
    let document = Document {
        format: EXPORT_FORMAT + 1,
        schema: SCHEMA_VERSION,
        journal_format: 1,
        engine_revision: 1,
        exported_at: 7,
        sections: Sections::default(),
    };
    ciborium::into_writer(&document, &mut document_bytes).unwrap();
    let manifest = ExportManifest {
        document_size: document_bytes.len() as u64,
        document_sha256: ByteBuf::from(sha256(&document_bytes).to_vec()),
        document_pieces: vec![ExportPiece {
            sha256: ByteBuf::from(sha256(&document_bytes).to_vec()),
            size: document_bytes.len() as u64,
        }],
        ..export(vec![]).manifest
    };
    let mut restore = Restore::begin(manifest).unwrap();
    restore.received_document_piece(0, document_bytes);
    assert!(matches!(
        kind(checked(&mut restore)),
        ErrorKind::BackupVersionUnsupported { format, .. } if format == EXPORT_FORMAT + 1
    ));
}
