//! Is an uploaded module something the IC can install? Checked as the bytes stream past, once, at
//! commit.
//!
//! A module is either Wasm (`\0asm`, version 1) or gzip (`1f 8b 08`) whose content is such Wasm.
//! The check walks the Wasm section framing (id, LEB128 size, body) so that a truncated module
//! is refused, and picks up the `candid:service` metadata (custom section `icp:public
//! candid:service` or `icp:private candid:service`) and the mark of enhanced orthogonal
//! persistence (`icp:private enhanced-orthogonal-persistence`) on the way. It is deliberately not a Wasm
//! validator: the IC validates the code when the module is installed, and a full parser would
//! be the biggest dependency in the canister.
//!
//! Input is pushed in pieces ([`ModuleInspector::write`]) so that a 100 MiB module, or its
//! decompressed content, never has to sit in the heap at once.

use std::io::{self, Write};

use candid::{CandidType, Deserialize};
use flate2::write::GzDecoder;
use serde::Serialize;

/// The largest module the IC installs, compressed or not (100 MiB): the limit of
/// `install_chunked_code`, and of a module's decompressed size.
pub const MAX_MODULE_BYTES: u64 = 100 * 1024 * 1024;

/// The Wasm header: magic `\0asm` and binary format version 1.
const WASM_HEADER: [u8; 8] = *b"\0asm\x01\x00\x00\x00";
/// Gzip magic (`1f 8b`) and the deflate method (`08`), the only method gzip defines.
const GZIP_PREFIX: [u8; 3] = [0x1f, 0x8b, 0x08];
/// The last known section id (13, the tag section of the exception-handling proposal).
const MAX_SECTION_ID: u8 = 13;
/// Custom sections up to this size are buffered to read their name. `icp:` sections total at
/// most 1 MiB on the IC, so a larger custom section cannot be the Candid metadata.
const MAX_METADATA_SECTION_BYTES: u32 = 1024 * 1024 + 64;
const CANDID_SERVICE_SECTIONS: [&str; 2] =
    ["icp:public candid:service", "icp:private candid:service"];
/// IC interface specification, "IC method `install_code`": a module that exports this private
/// custom section keeps its Wasm memory across upgrades (Motoko's enhanced orthogonal
/// persistence); the IC refuses its upgrade without `wasm_memory_persistence`, and `opt keep`
/// into a module without it.
const EOP_SECTION: &str = "icp:private enhanced-orthogonal-persistence";

/// How the module bytes are stored. Stored in release records (CBOR, by name).
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleEncoding {
    /// Plain Wasm.
    Wasm,
    /// Gzip-compressed Wasm, which the IC decompresses on install.
    Gzip,
}

/// What the check learned about a valid module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFacts {
    pub encoding: ModuleEncoding,
    /// Size of the Wasm itself: the module size, or its decompressed size for gzip.
    pub uncompressed_size: u64,
    /// The `candid:service` metadata, if the module carries it.
    pub candid_service: Option<String>,
    /// It exports the private section `enhanced-orthogonal-persistence`.
    pub enhanced_orthogonal_persistence: bool,
}

/// Why a module cannot be installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleError {
    /// Not Wasm or gzipped Wasm; the reason is a sentence for the user.
    Invalid(String),
    /// Gzip whose content is larger than [`MAX_MODULE_BYTES`].
    UncompressedTooLarge,
}

/// Consumes a module piece by piece and tells whether it is installable Wasm.
pub struct ModuleInspector {
    stage: ScanStage,
    /// The first error; later input is ignored.
    error: Option<ModuleError>,
}

enum ScanStage {
    /// Fewer bytes than it takes to tell gzip from Wasm.
    Detecting(Vec<u8>),
    Wasm(SectionWalker),
    Gzip(Box<GzDecoder<SectionWalker>>),
}

impl Default for ModuleInspector {
    fn default() -> Self {
        Self {
            stage: ScanStage::Detecting(Vec::with_capacity(GZIP_PREFIX.len())),
            error: None,
        }
    }
}

impl ModuleInspector {
    pub fn write(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(error) = self.try_write(bytes) {
            self.error = Some(error);
        }
    }

    fn try_write(&mut self, bytes: &[u8]) -> Result<(), ModuleError> {
        match &mut self.stage {
            ScanStage::Detecting(prefix) => {
                let wanted = GZIP_PREFIX.len() - prefix.len();
                let (head, rest) = bytes.split_at(wanted.min(bytes.len()));
                prefix.extend_from_slice(head);
                if prefix.len() < GZIP_PREFIX.len() {
                    return Ok(());
                }
                let prefix = std::mem::take(prefix);
                self.stage = if prefix == GZIP_PREFIX {
                    ScanStage::Gzip(Box::new(GzDecoder::new(SectionWalker::default())))
                } else {
                    ScanStage::Wasm(SectionWalker::default())
                };
                self.try_write(&prefix)?;
                self.try_write(rest)
            }
            ScanStage::Wasm(walker) => walker.push(bytes),
            ScanStage::Gzip(decoder) => write_gzip(decoder, bytes),
        }
    }

    /// Ends the input: the module is valid if everything written forms complete Wasm.
    pub fn finish(self) -> Result<ModuleFacts, ModuleError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        match self.stage {
            ScanStage::Detecting(prefix) => Err(ModuleError::Invalid(format!(
                "the module is {} bytes long, too short for a Wasm header",
                prefix.len()
            ))),
            ScanStage::Wasm(walker) => walker.finish(ModuleEncoding::Wasm),
            ScanStage::Gzip(mut decoder) => {
                if let Err(error) = decoder.try_finish() {
                    return Err(walker_error(decoder.get_mut()).unwrap_or_else(|| {
                        ModuleError::Invalid(format!("the gzip stream is incomplete: {error}"))
                    }));
                }
                let walker = decoder.finish().expect("try_finish succeeded");
                walker.finish(ModuleEncoding::Gzip)
            }
        }
    }
}

/// Feeds compressed bytes to the decoder. Its `write` consumes part of the input at a time and
/// returns 0 once the gzip member has ended.
fn write_gzip(decoder: &mut GzDecoder<SectionWalker>, mut bytes: &[u8]) -> Result<(), ModuleError> {
    while !bytes.is_empty() {
        match decoder.write(bytes) {
            Ok(0) => {
                return Err(ModuleError::Invalid(
                    "bytes follow the end of the gzip stream".to_string(),
                ))
            }
            Ok(written) => bytes = &bytes[written..],
            Err(error) => {
                return Err(walker_error(decoder.get_mut()).unwrap_or_else(|| {
                    ModuleError::Invalid(format!("the gzip stream does not decompress: {error}"))
                }))
            }
        }
    }
    Ok(())
}

/// The walker's own error, if the decoder failed because the walker refused its output.
fn walker_error(walker: &mut SectionWalker) -> Option<ModuleError> {
    walker.error.take()
}

/// Walks Wasm section framing as bytes arrive.
#[derive(Default)]
struct SectionWalker {
    position: Position,
    /// Bytes consumed so far: the Wasm size.
    size: u64,
    candid_service: Option<String>,
    enhanced_orthogonal_persistence: bool,
    /// Kept for the gzip decoder, which only passes an `io::Error` through.
    error: Option<ModuleError>,
}

enum Position {
    /// Inside the 8-byte header, with the bytes seen so far.
    Header(Vec<u8>),
    /// Between sections.
    SectionStart,
    /// Reading a section's LEB128 size.
    SectionSize { id: u8, leb: Leb128 },
    /// Skipping a section's body.
    Skipping { remaining: u32 },
    /// Collecting a custom section's body to read its name.
    Collecting { body: Vec<u8>, remaining: u32 },
}

impl Default for Position {
    fn default() -> Self {
        Self::Header(Vec::with_capacity(WASM_HEADER.len()))
    }
}

impl SectionWalker {
    fn push(&mut self, mut bytes: &[u8]) -> Result<(), ModuleError> {
        self.size += bytes.len() as u64;
        if self.size > MAX_MODULE_BYTES {
            return Err(ModuleError::UncompressedTooLarge);
        }
        while !bytes.is_empty() {
            bytes = self.step(bytes)?;
        }
        Ok(())
    }

    /// Consumes a prefix of `bytes`, returns the rest.
    fn step<'a>(&mut self, bytes: &'a [u8]) -> Result<&'a [u8], ModuleError> {
        match &mut self.position {
            Position::Header(seen) => {
                let wanted = WASM_HEADER.len() - seen.len();
                let (head, rest) = bytes.split_at(wanted.min(bytes.len()));
                seen.extend_from_slice(head);
                if seen.len() == WASM_HEADER.len() {
                    check_header(seen)?;
                    self.position = Position::SectionStart;
                }
                Ok(rest)
            }
            Position::SectionStart => {
                let id = bytes[0];
                if id > MAX_SECTION_ID {
                    return Err(ModuleError::Invalid(format!(
                        "unknown Wasm section id {id} at byte {}",
                        self.size_before(bytes)
                    )));
                }
                self.position = Position::SectionSize {
                    id,
                    leb: Leb128::default(),
                };
                Ok(&bytes[1..])
            }
            Position::SectionSize { id, leb } => {
                let id = *id;
                let Some(size) = leb.push(bytes[0])? else {
                    return Ok(&bytes[1..]);
                };
                self.position = if size == 0 {
                    Position::SectionStart
                } else if id == 0 && size <= MAX_METADATA_SECTION_BYTES {
                    Position::Collecting {
                        body: Vec::with_capacity(size as usize),
                        remaining: size,
                    }
                } else {
                    Position::Skipping { remaining: size }
                };
                Ok(&bytes[1..])
            }
            Position::Skipping { remaining } => {
                let taken = (*remaining as usize).min(bytes.len());
                *remaining -= taken as u32;
                if *remaining == 0 {
                    self.position = Position::SectionStart;
                }
                Ok(&bytes[taken..])
            }
            Position::Collecting { body, remaining } => {
                let taken = (*remaining as usize).min(bytes.len());
                body.extend_from_slice(&bytes[..taken]);
                *remaining -= taken as u32;
                if *remaining == 0 {
                    let body = std::mem::take(body);
                    self.position = Position::SectionStart;
                    self.custom_section(&body)?;
                }
                Ok(&bytes[taken..])
            }
        }
    }

    /// The offset of `rest`'s first byte in the module.
    fn size_before(&self, rest: &[u8]) -> u64 {
        self.size - rest.len() as u64
    }

    fn custom_section(&mut self, body: &[u8]) -> Result<(), ModuleError> {
        let mut leb = Leb128::default();
        let mut name_start = None;
        for (offset, &byte) in body.iter().enumerate() {
            if let Some(length) = leb.push(byte)? {
                name_start = Some((offset + 1, length as usize));
                break;
            }
        }
        let Some((start, length)) =
            name_start.filter(|(start, length)| start + length <= body.len())
        else {
            return Err(ModuleError::Invalid(
                "a custom section's name runs past the end of the section".to_string(),
            ));
        };
        let name = &body[start..start + length];
        if name == EOP_SECTION.as_bytes() {
            self.enhanced_orthogonal_persistence = true;
            return Ok(());
        }
        if !CANDID_SERVICE_SECTIONS
            .iter()
            .any(|candid| candid.as_bytes() == name)
        {
            return Ok(());
        }
        if self.candid_service.is_some() {
            return Err(ModuleError::Invalid(
                "the module has two candid:service metadata sections".to_string(),
            ));
        }
        let service = String::from_utf8(body[start + length..].to_vec()).map_err(|_| {
            ModuleError::Invalid("the candid:service metadata is not UTF-8 text".to_string())
        })?;
        self.candid_service = Some(service);
        Ok(())
    }

    fn finish(self, encoding: ModuleEncoding) -> Result<ModuleFacts, ModuleError> {
        match self.position {
            Position::SectionStart => Ok(ModuleFacts {
                encoding,
                uncompressed_size: self.size,
                candid_service: self.candid_service,
                enhanced_orthogonal_persistence: self.enhanced_orthogonal_persistence,
            }),
            Position::Header(_) => Err(ModuleError::Invalid(format!(
                "the Wasm is {} bytes long, shorter than its 8-byte header",
                self.size
            ))),
            Position::SectionSize { id, .. } => Err(ModuleError::Invalid(format!(
                "the Wasm ends inside the size of a section (id {id})"
            ))),
            Position::Skipping { remaining } | Position::Collecting { remaining, .. } => {
                Err(ModuleError::Invalid(format!(
                    "the Wasm ends {remaining} bytes before the end of its last section"
                )))
            }
        }
    }
}

impl Write for SectionWalker {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.push(bytes) {
            Ok(()) => Ok(bytes.len()),
            Err(error) => {
                self.error = Some(error);
                Err(io::Error::other("the decompressed Wasm was refused"))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn check_header(header: &[u8]) -> Result<(), ModuleError> {
    if header[..4] != WASM_HEADER[..4] {
        return Err(ModuleError::Invalid(format!(
            "the module starts with {:02x?}, neither the Wasm magic \\0asm nor gzip",
            &header[..4]
        )));
    }
    if header[4..] != WASM_HEADER[4..] {
        return Err(ModuleError::Invalid(format!(
            "the Wasm binary format version is {:02x?}, not 1",
            &header[4..]
        )));
    }
    Ok(())
}

/// An unsigned LEB128 `u32`, one byte at a time.
#[derive(Default)]
struct Leb128 {
    value: u32,
    shift: u32,
}

impl Leb128 {
    /// Adds a byte; returns the value once its last byte is in.
    fn push(&mut self, byte: u8) -> Result<Option<u32>, ModuleError> {
        let payload = u32::from(byte & 0x7f);
        if self.shift == 28 && (byte & 0x80 != 0 || payload > 0x0f) {
            return Err(ModuleError::Invalid(
                "a LEB128 size in the Wasm does not fit in 32 bits".to_string(),
            ));
        }
        self.value |= payload << self.shift;
        if byte & 0x80 == 0 {
            return Ok(Some(self.value));
        }
        self.shift += 7;
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
