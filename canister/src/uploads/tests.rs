use super::*;

fn arg(size: u64, chunk_size: Option<u32>) -> UploadOpenArg {
    UploadOpenArg {
        sha256: ByteBuf::from(vec![1; 32]),
        size,
        chunk_size,
        name: "app".to_string(),
        version: "1.0.0".to_string(),
        notes: None,
    }
}

fn upload(size: u64, chunk_size: u32) -> OpenUpload {
    OpenUpload {
        sha256: ByteArray::new([1; 32]),
        size,
        chunk_size,
        name: "app".to_string(),
        version: "1".to_string(),
        notes: None,
        opened_by: Principal::anonymous(),
        opened_at: 0,
        expires_at: 10,
        chunks: vec![None; size.div_ceil(u64::from(chunk_size)) as usize],
    }
}

#[test]
fn chunk_size_defaults_to_one_mib() {
    assert_eq!(
        validate_open(&arg(100, None)),
        Ok(([1; 32], MAX_CHUNK_BYTES))
    );
}

#[test]
fn every_chunk_but_a_shorter_last_one_has_the_chunk_size() {
    let upload = upload(250, 100);
    assert_eq!(upload.chunk_count(), 3);
    assert_eq!(
        (0..3).map(|i| upload.expected_len(i)).collect::<Vec<_>>(),
        vec![100, 100, 50]
    );
    assert_eq!(upload.missing_chunks(), vec![0, 1, 2]);
}

#[test]
fn a_hash_must_be_32_bytes() {
    let mut open = arg(100, None);
    open.sha256 = ByteBuf::from(vec![0; 64]);
    assert_eq!(
        validate_open(&open),
        Err(ErrorKind::InvalidSha256 { length: 64 })
    );
}

#[test]
fn release_texts_have_bounded_lengths() {
    let mut open = arg(100, None);
    open.name = String::new();
    assert_eq!(
        validate_open(&open),
        Err(ErrorKind::InvalidTextLength {
            field: TextField::Name,
            length: 0,
            min: 1,
            max: MAX_NAME_BYTES as u64,
        })
    );
    let mut open = arg(100, None);
    open.notes = Some("n".repeat(MAX_NOTES_BYTES + 1));
    assert!(matches!(
        validate_open(&open),
        Err(ErrorKind::InvalidTextLength {
            field: TextField::Notes,
            ..
        })
    ));
}

#[test]
fn module_size_is_bounded_on_both_sides() {
    assert_eq!(
        validate_open(&arg(MAX_MODULE_BYTES + 1, None)),
        Err(ErrorKind::ModuleTooLarge {
            size: MAX_MODULE_BYTES + 1,
            max: MAX_MODULE_BYTES,
        })
    );
    assert!(matches!(
        validate_open(&arg(7, None)),
        Err(ErrorKind::InvalidWasm { .. })
    ));
    assert!(validate_open(&arg(MAX_MODULE_BYTES, None)).is_ok());
}

#[test]
fn chunk_size_must_be_between_one_byte_and_one_mib() {
    for chunk_size in [0, MAX_CHUNK_BYTES + 1] {
        assert_eq!(
            validate_open(&arg(100, Some(chunk_size))),
            Err(ErrorKind::InvalidChunkSize {
                chunk_size,
                max: MAX_CHUNK_BYTES,
            })
        );
    }
}

#[test]
fn at_most_a_chunk_store_of_chunks() {
    assert_eq!(
        validate_open(&arg(1001, Some(10))),
        Err(ErrorKind::TooManyChunks {
            chunk_count: 101,
            max: MAX_CHUNKS,
            min_chunk_size: 11,
        })
    );
    assert!(validate_open(&arg(1001, Some(11))).is_ok());
}

#[test]
fn settings_update_only_the_given_fields_within_range() {
    let defaults = UploadSettings::default();
    let updated = defaults
        .updated(&UploadSettingsUpdate {
            max_open_uploads: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        updated,
        UploadSettings {
            max_open_uploads: 3,
            ..defaults.clone()
        }
    );
    assert_eq!(
        defaults.updated(&UploadSettingsUpdate {
            upload_ttl_seconds: Some(59),
            ..Default::default()
        }),
        Err(ErrorKind::SettingOutOfRange {
            setting: UploadSetting::UploadTtlSeconds,
            value: 59,
            min: 60,
            max: 30 * 24 * 3600,
        })
    );
}

/// Golden bytes of a tombstone: stored data must stay readable by later versions.
#[test]
fn tombstone_encoding_is_pinned() {
    use ic_stable_structures::Storable;
    let record = Cbor(UploadRecord::Expired { expired_at: 7 });
    assert_eq!(
        record.into_bytes(),
        b"\xa1\x67Expired\xa1\x6aexpired_at\x07",
        "CBOR map {{ \"Expired\": {{ \"expired_at\": 7 }} }}"
    );
}
