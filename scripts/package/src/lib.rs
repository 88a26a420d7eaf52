//! Turns a freshly compiled canister module into the artifact that gets installed: the Candid interface
//! embedded as the public `candid:service` metadata section, every other non-`icp:` custom section (debug
//! info, names, producers) removed, unused items dropped, and the result gzipped deterministically (fixed
//! header, level 9) so the same input always yields the same bytes and module hash. Packaging fails
//! when the module's exports and its Candid interface disagree (`ic-wasm`'s `check-endpoints`:
//! every method of the `.did` exported with its mode, nothing else exported but the lifecycle
//! entry points a `.hidden` file beside the `.did` lists).

use std::fmt;
use std::io::Write;

use std::path::Path;

use flate2::{Compression, GzBuilder};
use ic_wasm::check_endpoints::check_endpoints;
use ic_wasm::metadata::{add_metadata, Kind};

/// Metadata name under which the IC and tooling look for a canister's Candid interface.
pub const CANDID_SERVICE_METADATA: &str = "candid:service";

#[derive(Debug)]
pub enum PackageError {
    /// The input is neither Wasm nor gzipped Wasm, or does not parse.
    InvalidWasm(ic_wasm::Error),
    /// The exports and the Candid interface disagree (what differs is printed on stderr).
    ExportsMismatch(String),
    Gzip(std::io::Error),
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::InvalidWasm(error) => write!(f, "invalid input module: {error}"),
            PackageError::ExportsMismatch(error) => write!(f, "exports against the .did: {error}"),
            PackageError::Gzip(error) => write!(f, "gzip failed: {error}"),
        }
    }
}

impl std::error::Error for PackageError {}

/// Packages `wasm` (raw or gzipped) with `candid_service` (the `.did` text) and returns the
/// gzipped module, once its exports are the service's methods plus the entry points listed in
/// the file `hidden_endpoints` (one export name a line, such as `canister_init`).
pub fn package(
    wasm: &[u8],
    candid_service: &str,
    hidden_endpoints: &Path,
) -> Result<Vec<u8>, PackageError> {
    let mut module = ic_wasm::utils::parse_wasm(wasm, false).map_err(PackageError::InvalidWasm)?;
    ic_wasm::shrink::shrink(&mut module);
    add_metadata(
        &mut module,
        Kind::Public,
        CANDID_SERVICE_METADATA,
        candid_service.as_bytes().to_vec(),
    );
    // The embedded `candid:service` is what the check reads.
    check_endpoints(&module, None, Some(hidden_endpoints))
        .map_err(|error| PackageError::ExportsMismatch(error.to_string()))?;
    gzip_deterministic(&module.emit_wasm()).map_err(PackageError::Gzip)
}

/// Gzip with header mtime 0 and no file name, so the output depends only on the input bytes.
fn gzip_deterministic(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_wasm::metadata::{get_metadata, list_metadata};
    use std::io::Read;

    const SERVICE: &str = "service : { ping : () -> (nat64) query }";

    /// A hidden-endpoints file with these lines, in a fresh temporary folder.
    fn hidden(lines: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "wasm-package-test-{}-{}",
            std::process::id(),
            lines.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("endpoints.hidden");
        std::fs::write(&path, lines).unwrap();
        path
    }

    fn package_ping(wasm: &[u8]) -> Result<Vec<u8>, PackageError> {
        package(wasm, SERVICE, &hidden(""))
    }

    /// A module with one exported function and two custom sections a packaged artifact must not carry.
    fn module_with_debug_sections() -> Vec<u8> {
        let mut module = minimal_module();
        append_custom_section(&mut module, ".debug_info", b"dwarf bytes");
        append_custom_section(&mut module, "producers", b"rustc");
        module
    }

    /// `(module (func (export "canister_query ping")))` encoded by hand.
    fn minimal_module() -> Vec<u8> {
        let export_name = b"canister_query ping";
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type section: () -> ()
        module.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]); // function section: one function of type 0
        let mut export = vec![0x01, export_name.len() as u8];
        export.extend_from_slice(export_name);
        export.extend_from_slice(&[0x00, 0x00]); // function index 0
        module.push(0x07);
        module.push(export.len() as u8);
        module.extend_from_slice(&export);
        module.extend_from_slice(&[0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]); // code section: empty body
        module
    }

    fn append_custom_section(module: &mut Vec<u8>, name: &str, data: &[u8]) {
        let mut payload = vec![name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(data);
        module.push(0x00);
        module.push(payload.len() as u8);
        module.extend_from_slice(&payload);
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut wasm = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut wasm)
            .expect("valid gzip");
        wasm
    }

    #[test]
    fn packaged_module_carries_the_candid_service_as_public_metadata() {
        let packaged = package_ping(&module_with_debug_sections()).unwrap();
        let module = ic_wasm::utils::parse_wasm(&gunzip(&packaged), false).unwrap();
        assert_eq!(list_metadata(&module), vec!["icp:public candid:service"]);
        assert_eq!(
            get_metadata(&module, CANDID_SERVICE_METADATA)
                .unwrap()
                .as_ref(),
            SERVICE.as_bytes()
        );
    }

    #[test]
    fn packaging_strips_debug_and_producer_sections_but_keeps_exports() {
        let packaged = package_ping(&module_with_debug_sections()).unwrap();
        let module = ic_wasm::utils::parse_wasm(&gunzip(&packaged), true).unwrap();
        let custom_sections: Vec<&str> = module
            .customs
            .iter()
            .map(|(_, section)| section.name())
            .collect();
        assert_eq!(custom_sections, vec!["icp:public candid:service"]);
        assert!(module
            .exports
            .iter()
            .any(|export| export.name == "canister_query ping"));
    }

    #[test]
    fn packaging_is_deterministic_with_a_zero_gzip_mtime() {
        let first = package_ping(&module_with_debug_sections()).unwrap();
        let second = package_ping(&module_with_debug_sections()).unwrap();
        assert_eq!(first, second);
        assert_eq!(
            &first[..3],
            &[0x1f, 0x8b, 0x08],
            "gzip magic and deflate method"
        );
        assert_eq!(&first[4..8], &[0, 0, 0, 0], "header mtime");
    }

    #[test]
    fn packaging_accepts_gzipped_input_and_rejects_non_wasm() {
        let packaged = package_ping(&module_with_debug_sections()).unwrap();
        assert_eq!(package_ping(&packaged).unwrap(), packaged);
        assert!(matches!(
            package_ping(b"not wasm"),
            Err(PackageError::InvalidWasm(_))
        ));
    }

    #[test]
    fn packaging_refuses_a_module_whose_exports_disagree_with_its_did() {
        let module = module_with_debug_sections();
        let two_methods = "service : { ping : () -> (nat64) query; pong : () -> () }";
        assert!(matches!(
            package(&module, two_methods, &hidden("")),
            Err(PackageError::ExportsMismatch(_))
        ));
        let as_update = "service : { ping : () -> (nat64) }";
        assert!(matches!(
            package(&module, as_update, &hidden("")),
            Err(PackageError::ExportsMismatch(_))
        ));
        // A lifecycle entry point listed as hidden but not exported is a mismatch too.
        assert!(matches!(
            package(&module, SERVICE, &hidden("canister_init\n")),
            Err(PackageError::ExportsMismatch(_))
        ));
    }
}
