//! Wasm modules for releases: one deterministic generator of modules of any size, and builders
//! of modules with metadata or grown from a real artifact.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// The bytes every Wasm module starts with: magic and version 1.
const HEADER: &[u8; 8] = b"\0asm\x01\x00\x00\x00";

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A valid Wasm module of exactly `size` bytes (at least 15): the header and one custom section
/// with an empty name full of pseudo-random bytes drawn from `seed` (xorshift64, so
/// incompressible and distinct per seed). The bench's figures are measured on these bytes.
pub fn wasm_module(size: usize, seed: u64) -> Vec<u8> {
    // Header, section id, the size as a 5-byte LEB128 (so the layout does not depend on the
    // size), the empty name's length.
    const FRAMING: usize = HEADER.len() + 1 + 5 + 1;
    assert!(
        size >= FRAMING,
        "a generated module has at least {FRAMING} bytes"
    );
    let mut module = Vec::with_capacity(size + 8);
    module.extend_from_slice(HEADER);
    module.push(0);
    module.extend_from_slice(&padded_leb128((size - HEADER.len() - 1 - 5) as u32));
    module.push(0);
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while module.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        module.extend_from_slice(&state.to_le_bytes());
    }
    module.truncate(size);
    module
}

/// A valid Wasm module whose only section is the `candid:service` metadata `service`.
pub fn wasm_with_candid(service: &str) -> Vec<u8> {
    let mut module = HEADER.to_vec();
    module.extend_from_slice(&candid_section(service));
    module
}

/// A gzipped artifact (a real canister) whose `candid:service` metadata is `service` instead of
/// its own: the same code behind another interface, for the Candid-compatibility gate.
pub fn with_candid_service(gzipped: &[u8], service: &str) -> Vec<u8> {
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut wasm)
        .expect("the artifact is gzipped");
    let mut module = HEADER.to_vec();
    let mut rest = &wasm[HEADER.len()..];
    while let Some(&id) = rest.first() {
        let (size, width) = read_leb128(&rest[1..]);
        let end = 1 + width + size as usize;
        let body = &rest[1 + width..end];
        let is_candid_service = id == 0 && {
            let (name_len, name_width) = read_leb128(body);
            let name = &body[name_width..name_width + name_len as usize];
            name.ends_with(b" candid:service")
        };
        if !is_candid_service {
            module.extend_from_slice(&rest[..end]);
        }
        rest = &rest[end..];
    }
    module.extend_from_slice(&candid_section(service));
    module
}

/// A custom section holding the public `candid:service` metadata `service`.
fn candid_section(service: &str) -> Vec<u8> {
    let name = b"icp:public candid:service";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(service.as_bytes());
    let mut section = vec![0];
    section.extend_from_slice(&padded_leb128(body.len() as u32));
    section.extend_from_slice(&body);
    section
}

/// An unsigned LEB128 number at the start of `bytes`, and how many bytes it took.
fn read_leb128(bytes: &[u8]) -> (u32, usize) {
    let mut value = 0u32;
    for (index, byte) in bytes.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return (value, index + 1);
        }
    }
    panic!("a section size is LEB128 of at most 5 bytes")
}

/// A gzipped artifact (a real canister) with `extra` bytes of incompressible custom section
/// appended (drawn from `seed`): a module that still runs, of any size.
pub fn grown(gzipped: &[u8], extra: usize, seed: u64) -> Vec<u8> {
    let mut wasm = gunzip(gzipped);
    // A whole module is a run of sections after its header: drop the header and append.
    wasm.extend_from_slice(&wasm_module(extra, seed)[HEADER.len()..]);
    wasm
}

/// The Wasm inside a gzipped artifact.
pub fn gunzip(gzipped: &[u8]) -> Vec<u8> {
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut wasm)
        .expect("the artifact is gzipped");
    wasm
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn padded_leb128(value: u32) -> [u8; 5] {
    let mut bytes = [0; 5];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = ((value >> (7 * i)) & 0x7f) as u8 | if i < 4 { 0x80 } else { 0 };
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_modules_have_the_size_asked_and_differ_by_seed() {
        for size in [15, 16, 40, 1000, 1 << 20] {
            let module = wasm_module(size, 1);
            assert_eq!(module.len(), size);
            assert_eq!(&module[..8], HEADER);
            if size >= 40 {
                assert_ne!(module, wasm_module(size, 2));
            }
        }
    }

    /// The section's size field covers exactly the rest of the module, so a parser reads one
    /// custom section with an empty name.
    #[test]
    fn a_generated_module_is_one_custom_section() {
        let module = wasm_module(300, 3);
        let mut size = 0usize;
        for (i, byte) in module[9..14].iter().enumerate() {
            size |= usize::from(byte & 0x7f) << (7 * i);
        }
        assert_eq!(module[8], 0, "custom section id");
        assert_eq!(size, module.len() - 14);
        assert_eq!(module[14], 0, "empty name");
    }

    #[test]
    fn a_grown_artifact_keeps_its_sections_and_gains_the_extra_bytes() {
        let base = wasm_with_candid("service : {}");
        let grown = grown(&gzip(&base), 1000, 4);
        assert_eq!(&grown[..base.len()], &base[..]);
        assert_eq!(grown.len(), base.len() + 1000 - HEADER.len());
    }
}
