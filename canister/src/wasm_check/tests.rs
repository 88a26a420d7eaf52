use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::*;

const HEADER: &[u8] = b"\0asm\x01\x00\x00\x00";

fn section(id: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![id];
    let mut size = body.len() as u32;
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(body);
    bytes
}

fn custom_section(name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(content);
    section(0, &body)
}

fn module(sections: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = HEADER.to_vec();
    for section in sections {
        bytes.extend_from_slice(section);
    }
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Inspects `bytes` fed in pieces of `piece` bytes.
fn inspect_in_pieces(bytes: &[u8], piece: usize) -> Result<ModuleFacts, ModuleError> {
    let mut inspector = ModuleInspector::default();
    for part in bytes.chunks(piece) {
        inspector.write(part);
    }
    inspector.finish()
}

fn inspect(bytes: &[u8]) -> Result<ModuleFacts, ModuleError> {
    inspect_in_pieces(bytes, bytes.len().max(1))
}

fn invalid_reason(result: Result<ModuleFacts, ModuleError>) -> String {
    match result {
        Err(ModuleError::Invalid(reason)) => reason,
        other => panic!("expected an invalid module, got {other:?}"),
    }
}

#[test]
fn a_module_with_code_and_candid_metadata_is_valid() {
    let bytes = module(&[
        section(1, &[0x01, 0x60, 0x00, 0x00]),
        custom_section("icp:public candid:service", b"service : {}"),
        section(10, &[0x00]),
    ]);
    assert_eq!(
        inspect(&bytes),
        Ok(ModuleFacts {
            encoding: ModuleEncoding::Wasm,
            uncompressed_size: bytes.len() as u64,
            candid_service: Some("service : {}".to_string()),
            enhanced_orthogonal_persistence: false,
        })
    );
}

/// IC interface specification, "IC method `install_code`": only the *private* section marks
/// enhanced orthogonal persistence.
#[test]
fn the_private_enhanced_orthogonal_persistence_section_is_noticed() {
    let marked = module(&[custom_section(
        "icp:private enhanced-orthogonal-persistence",
        b"",
    )]);
    assert!(inspect(&marked).unwrap().enhanced_orthogonal_persistence);
    assert!(
        inspect_in_pieces(&gzip(&marked), 3)
            .unwrap()
            .enhanced_orthogonal_persistence
    );
    for other in [
        "icp:public enhanced-orthogonal-persistence",
        "enhanced-orthogonal-persistence",
    ] {
        let unmarked = module(&[custom_section(other, b"")]);
        assert!(
            !inspect(&unmarked).unwrap().enhanced_orthogonal_persistence,
            "{other}"
        );
    }
}

#[test]
fn the_result_does_not_depend_on_how_the_bytes_are_split() {
    let bytes = module(&[
        custom_section("name", b"whatever"),
        custom_section("icp:private candid:service", b"service : { f : () -> () }"),
        section(3, &[0x00]),
    ]);
    let whole = inspect(&bytes);
    assert!(whole.is_ok());
    for piece in [1, 2, 3, 7, 13] {
        assert_eq!(inspect_in_pieces(&bytes, piece), whole, "pieces of {piece}");
    }
}

#[test]
fn a_header_only_module_is_valid_without_metadata() {
    let facts = inspect(HEADER).unwrap();
    assert_eq!(facts.candid_service, None);
    assert_eq!(facts.uncompressed_size, 8);
}

#[test]
fn gzipped_wasm_reports_its_decompressed_size_and_metadata() {
    let wasm = module(&[
        custom_section("icp:public candid:service", b"service : {}"),
        custom_section("padding", &[7; 10_000]),
    ]);
    let compressed = gzip(&wasm);
    assert!(compressed.len() < wasm.len());
    let facts = inspect_in_pieces(&compressed, 100).unwrap();
    assert_eq!(facts.encoding, ModuleEncoding::Gzip);
    assert_eq!(facts.uncompressed_size, wasm.len() as u64);
    assert_eq!(facts.candid_service.as_deref(), Some("service : {}"));
}

#[test]
fn other_bytes_are_refused_by_their_first_bytes() {
    let reason = invalid_reason(inspect(b"PK\x03\x04 a zip archive"));
    assert!(reason.contains("neither the Wasm magic"), "{reason}");
}

#[test]
fn another_wasm_version_is_refused() {
    let reason = invalid_reason(inspect(b"\0asm\x0d\x00\x01\x00"));
    assert!(reason.contains("version"), "{reason}");
}

#[test]
fn a_truncated_section_is_refused() {
    let mut bytes = module(&[section(1, &[1, 2, 3, 4, 5])]);
    bytes.truncate(bytes.len() - 2);
    let reason = invalid_reason(inspect(&bytes));
    assert!(reason.contains("ends 2 bytes before"), "{reason}");
}

#[test]
fn too_short_input_is_refused() {
    assert!(invalid_reason(inspect(b"\0a")).contains("too short"));
    assert!(invalid_reason(inspect(b"\0asm\x01")).contains("header"));
}

#[test]
fn an_unknown_section_id_is_refused() {
    let reason = invalid_reason(inspect(&module(&[section(42, &[])])));
    assert!(reason.contains("unknown Wasm section id 42"), "{reason}");
}

#[test]
fn an_overlong_leb128_size_is_refused() {
    let mut bytes = HEADER.to_vec();
    bytes.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    let reason = invalid_reason(inspect(&bytes));
    assert!(reason.contains("32 bits"), "{reason}");
}

#[test]
fn two_candid_service_sections_are_refused() {
    let bytes = module(&[
        custom_section("icp:public candid:service", b"a"),
        custom_section("icp:private candid:service", b"b"),
    ]);
    assert!(invalid_reason(inspect(&bytes)).contains("two candid:service"));
}

#[test]
fn candid_metadata_that_is_not_utf8_is_refused() {
    let bytes = module(&[custom_section("icp:public candid:service", &[0xff, 0xfe])]);
    assert!(invalid_reason(inspect(&bytes)).contains("not UTF-8"));
}

#[test]
fn a_custom_section_name_past_its_section_is_refused() {
    let bytes = module(&[section(0, &[10, b'a'])]);
    assert!(invalid_reason(inspect(&bytes)).contains("name runs past"));
}

#[test]
fn gzip_of_something_else_is_refused_for_its_content() {
    let reason = invalid_reason(inspect(&gzip(b"not wasm at all")));
    assert!(reason.contains("neither the Wasm magic"), "{reason}");
}

#[test]
fn a_corrupt_gzip_stream_is_refused() {
    let mut compressed = gzip(&module(&[custom_section("x", &[1; 1000])]));
    let last = compressed.len() - 5;
    compressed[last] ^= 0xff; // inside the CRC-32 trailer
    let reason = invalid_reason(inspect(&compressed));
    assert!(reason.contains("gzip"), "{reason}");
}

#[test]
fn a_truncated_gzip_stream_is_refused() {
    let compressed = gzip(&module(&[custom_section("x", &[1; 1000])]));
    let reason = invalid_reason(inspect(&compressed[..compressed.len() - 10]));
    assert!(reason.contains("gzip stream is incomplete"), "{reason}");
}

#[test]
fn bytes_after_the_gzip_stream_are_refused() {
    let mut compressed = gzip(HEADER);
    compressed.extend_from_slice(b"trailing");
    let reason = invalid_reason(inspect(&compressed));
    assert!(
        reason.contains("follow the end of the gzip stream"),
        "{reason}"
    );
}

#[test]
fn gzip_decompressing_past_the_module_limit_is_refused() {
    // A custom section declared just over the limit, filled with zeros: a small gzip stream.
    let size = MAX_MODULE_BYTES as u32;
    let mut wasm = HEADER.to_vec();
    wasm.push(0);
    wasm.extend_from_slice(&[
        (size & 0x7f) as u8 | 0x80,
        ((size >> 7) & 0x7f) as u8 | 0x80,
        ((size >> 14) & 0x7f) as u8 | 0x80,
        ((size >> 21) & 0x7f) as u8,
    ]);
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(&wasm).unwrap();
    let zeros = vec![0; 1024 * 1024];
    for _ in 0..=MAX_MODULE_BYTES / zeros.len() as u64 {
        encoder.write_all(&zeros).unwrap();
    }
    let compressed = encoder.finish().unwrap();
    assert_eq!(
        inspect_in_pieces(&compressed, 1024 * 1024),
        Err(ModuleError::UncompressedTooLarge)
    );
}
