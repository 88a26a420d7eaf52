//! The deployer's own state taken home and brought back (see `deployer::backup`): an export read
//! stream by stream, kept in a directory, and restored into a freshly installed deployer.
//!
//! The directory: `manifest.bin` (the `ExportManifest`, Candid), `document.cbor` (the whole
//! document) and `chunks/<sha256>.bin` (one file per release chunk, named by its hash). A chunk
//! already in the directory with the right hash is not read again, so exports into the same
//! directory fetch only the releases' new chunks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use candid::Principal;
use deployer::{
    ExportManifest, ExportStream, ReadExportArg, RestorePieceArg, RestoreProgress, RestoreSummary,
};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::{CallError, Deployer, Transport};

/// An export as a client holds it: the manifest, the document and the chunks by hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateBackup {
    pub manifest: ExportManifest,
    pub document: Vec<u8>,
    pub chunks: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Why a backup could not be taken, kept or restored.
#[derive(Debug)]
pub enum BackupError {
    /// The deployer refused or the call failed.
    Call(CallError),
    /// A file could not be read or written, or the directory is not a backup.
    Files(String),
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupError::Call(error) => write!(f, "{error:?}"),
            BackupError::Files(reason) => write!(f, "{reason}"),
        }
    }
}

impl From<CallError> for BackupError {
    fn from(error: CallError) -> Self {
        BackupError::Call(error)
    }
}

fn files(dir: &Path, error: std::io::Error) -> BackupError {
    BackupError::Files(format!(
        "{}: {error} (a backup directory holds manifest.bin, document.cbor and chunks/)",
        dir.display()
    ))
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

impl<T: Transport> Deployer<T> {
    /// Takes an export and reads its streams; chunks found in `have` (by hash, checked) are
    /// not read again.
    pub fn export_state(
        &mut self,
        caller: Principal,
        have: &BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<StateBackup, CallError> {
        let manifest = self.start_export(caller)?;
        let exported_at = manifest.exported_at;
        let mut read = |stream: ExportStream| {
            self.read_export(
                caller,
                ReadExportArg {
                    exported_at,
                    stream,
                },
            )
            .map(ByteBuf::into_vec)
        };
        let mut document = Vec::with_capacity(manifest.document_size as usize);
        for index in 0..manifest.document_pieces.len() as u32 {
            document.extend(read(ExportStream::DocumentPiece(index))?);
        }
        let mut chunks = BTreeMap::new();
        for chunk in &manifest.release_chunks {
            let hash = chunk.sha256.to_vec();
            let bytes = match have.get(&hash) {
                Some(bytes) if sha256(bytes) == hash => bytes.clone(),
                _ => read(ExportStream::ReleaseChunk(chunk.sha256.clone()))?,
            };
            chunks.insert(hash, bytes);
        }
        Ok(StateBackup {
            manifest,
            document,
            chunks,
        })
    }

    /// Restores `backup` into this deployer (freshly installed): the manifest, every stream,
    /// the commit. `on_progress` sees each stream's progress.
    pub fn restore_state(
        &mut self,
        caller: Principal,
        backup: &StateBackup,
        on_progress: impl FnMut(&RestoreProgress),
    ) -> Result<RestoreSummary, CallError> {
        self.send_backup(caller, backup, on_progress)?;
        self.commit_restore(caller)
    }

    /// A restore up to its commit: the manifest and every stream.
    pub fn send_backup(
        &mut self,
        caller: Principal,
        backup: &StateBackup,
        mut on_progress: impl FnMut(&RestoreProgress),
    ) -> Result<(), CallError> {
        on_progress(&self.begin_restore(caller, backup.manifest.clone())?);
        for (stream, bytes) in backup.streams() {
            let arg = RestorePieceArg {
                stream,
                bytes: ByteBuf::from(bytes.to_vec()),
            };
            on_progress(&self.restore_piece(caller, arg)?);
        }
        Ok(())
    }
}

impl StateBackup {
    /// Every stream the manifest lists, with its bytes as this backup holds them (a chunk it
    /// lacks is sent empty, which the deployer refuses by its hash).
    pub fn streams(&self) -> Vec<(ExportStream, &[u8])> {
        let mut offset = 0;
        let mut streams = Vec::new();
        for (index, piece) in self.manifest.document_pieces.iter().enumerate() {
            let end = (offset + piece.size as usize).min(self.document.len());
            streams.push((
                ExportStream::DocumentPiece(index as u32),
                &self.document[offset.min(end)..end],
            ));
            offset = end;
        }
        for chunk in &self.manifest.release_chunks {
            let bytes = self
                .chunks
                .get(chunk.sha256.as_slice())
                .map_or(&[][..], Vec::as_slice);
            streams.push((ExportStream::ReleaseChunk(chunk.sha256.clone()), bytes));
        }
        streams
    }

    /// Writes the backup into `dir` (created if missing), keeping chunk files already there.
    pub fn write_to(&self, dir: &Path) -> Result<(), BackupError> {
        let files =
            |error: std::io::Error| BackupError::Files(format!("{}: {error}", dir.display()));
        std::fs::create_dir_all(dir.join("chunks")).map_err(files)?;
        let manifest = candid::encode_one(&self.manifest).expect("a manifest encodes");
        std::fs::write(dir.join("manifest.bin"), manifest).map_err(files)?;
        std::fs::write(dir.join("document.cbor"), &self.document).map_err(files)?;
        for (hash, bytes) in &self.chunks {
            let path = dir
                .join("chunks")
                .join(format!("{}.bin", hex::encode(hash)));
            if !path.exists() {
                std::fs::write(path, bytes).map_err(files)?;
            }
        }
        Ok(())
    }

    /// Reads a backup written by [`StateBackup::write_to`]. The files are not checked here: the
    /// deployer checks every stream against the manifest's hashes as it arrives.
    pub fn read_from(dir: &Path) -> Result<Self, BackupError> {
        let manifest = Self::read_manifest(dir)?;
        let document =
            std::fs::read(dir.join("document.cbor")).map_err(|error| files(dir, error))?;
        let chunks = Self::chunks_in(dir);
        Ok(Self {
            manifest,
            document,
            chunks,
        })
    }

    /// The manifest of the backup in `dir`: enough to tell a backup directory without reading
    /// its document and chunks.
    pub fn read_manifest(dir: &Path) -> Result<ExportManifest, BackupError> {
        let manifest =
            std::fs::read(dir.join("manifest.bin")).map_err(|error| files(dir, error))?;
        candid::decode_one(&manifest)
            .map_err(|error| BackupError::Files(format!("{}/manifest.bin: {error}", dir.display())))
    }

    /// The chunk files in `dir/chunks` whose bytes hash to their names; none if it is missing.
    pub fn chunks_in(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(dir.join("chunks")) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path()).ok())
            .map(|bytes| (sha256(&bytes), bytes))
            .collect()
    }
}
