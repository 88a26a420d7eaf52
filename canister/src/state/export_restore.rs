//! The whole state into a backup document and back, see [`crate::backup`].

use ic_stable_structures::Memory;

use super::State;
use crate::backup::{
    stream_missing, Export, ExportManifest, ExportStream, ReadExportArg, Restore, RestorePieceArg,
    RestoreProgress, RestoreSummary, Sections,
};
use crate::error::{Error, ErrorKind};
use crate::memory::JournalWriter;
use crate::release_store::ReleaseStore;
use crate::rollouts::Rollouts;

impl<M: Memory> State<M> {
    /// Takes the document of the state as it stands and holds it for reading, in place of any
    /// earlier export.
    pub fn start_export(&mut self, now: u64) -> ExportManifest {
        let mut sections = Sections::default();
        sections.put_cell("governance", &self.governance);
        sections.put_cell("dashboard", &self.dashboard);
        self.roles.export_sections(&mut sections);
        self.release_store.export_sections(&mut sections);
        self.fleet.export_sections(&mut sections);
        self.rollouts.export_sections(&mut sections);
        self.proxy_audit.export_sections(&mut sections);
        let export = Export::new(sections, self.release_store.release_chunks(), now);
        let manifest = export.manifest.clone();
        self.backup.export = Some(export);
        manifest
    }

    /// A stream of the export taken at `arg.exported_at`.
    pub fn read_export(&self, arg: &ReadExportArg) -> Result<Vec<u8>, Error> {
        let export = self
            .backup
            .export
            .as_ref()
            .filter(|export| export.manifest.exported_at == arg.exported_at)
            .ok_or(ErrorKind::ExportNotHeld {
                exported_at: arg.exported_at,
            })?;
        match &arg.stream {
            ExportStream::DocumentPiece(index) => export.document_piece(*index),
            ExportStream::ReleaseChunk(hash) => <[u8; 32]>::try_from(hash.as_slice())
                .ok()
                .filter(|hash| export.lists_chunk(hash))
                .and_then(|hash| self.release_store.release_chunk_bytes(&hash))
                .ok_or_else(|| stream_missing(arg.stream.clone())),
        }
    }

    /// What this deployer holds that a restore would overwrite, if anything.
    fn held_state(&self) -> Option<&'static str> {
        if !self.release_store.is_empty() {
            Some("releases or uploads")
        } else if !self.fleet.is_empty() {
            Some("children")
        } else if !self.rollouts.is_empty() {
            Some("rollouts or events")
        } else if !self.proxy_audit.is_empty() {
            Some("proxied calls")
        } else {
            None
        }
    }

    /// Begins a restore of the export `manifest` describes, in place of any restore begun
    /// before. Refused on a deployer that holds state.
    pub fn begin_restore(&mut self, manifest: ExportManifest) -> Result<RestoreProgress, Error> {
        if let Some(holds) = self.held_state() {
            return Err(ErrorKind::RestoreIntoDeployerWithState {
                holds: holds.to_string(),
            }
            .into());
        }
        let restore = Restore::begin(manifest)?;
        self.abandon_restore();
        let progress = restore.progress();
        self.backup.restore = Some(restore);
        Ok(progress)
    }

    /// Takes one checked piece of the restore begun.
    pub fn restore_piece(&mut self, arg: RestorePieceArg) -> Result<RestoreProgress, Error> {
        let restore = self
            .backup
            .restore
            .as_mut()
            .ok_or(ErrorKind::RestoreNotBegun)?;
        restore.check_piece(&arg.stream, &arg.bytes)?;
        match arg.stream {
            ExportStream::DocumentPiece(index) => {
                restore.received_document_piece(index, arg.bytes.into_vec());
            }
            ExportStream::ReleaseChunk(hash) => {
                let hash = <[u8; 32]>::try_from(hash.as_slice()).expect("checked: in the manifest");
                let extent = self.release_store.stage_restored_chunk(&arg.bytes);
                if let Some(earlier) = restore.received_chunk(hash, extent) {
                    self.release_store.discard_restored_chunk(earlier);
                }
            }
        }
        Ok(restore.progress())
    }

    /// Commits the restore once every piece arrived: writes every section and reopens the
    /// state as an upgrade would, with every active rollout paused (see
    /// [`Rollouts::recover_paused`]). On an error, nothing is written and the restore stays
    /// open.
    pub fn commit_restore(mut self, now: u64) -> (Self, Result<RestoreSummary, Error>) {
        let checked = self.check_restore();
        let (restore, mut document) = match checked {
            Ok(ready) => ready,
            Err(error) => return (self, Err(error)),
        };
        let sections = &mut document.sections;
        let summary = RestoreSummary {
            exported_at: document.exported_at,
            sections: sections.len(),
            entries: sections.entries(),
            chunks: ReleaseStore::<M>::chunks_named_by(sections).len() as u64,
        };
        sections.take_cell("governance", &mut self.governance);
        sections.take_cell("dashboard", &mut self.dashboard);
        self.roles.restore_sections(sections);
        self.release_store
            .restore_sections(sections, restore.into_chunks());
        self.fleet.restore_sections(sections);
        self.rollouts.restore_sections(sections);
        self.proxy_audit.restore_sections(sections);
        self.memories.record_this_build();
        let mut state = Self::with_memories(self.into_memories());
        state.rollouts.recover_paused(&mut state.fleet, now);
        (state, Ok(summary))
    }

    /// The restore and its document, if the commit may go ahead: held state, missing pieces,
    /// a document of another version or a journal this engine would replay differently, and
    /// a chunk a release names but the manifest did not list are refused.
    fn check_restore(&mut self) -> Result<(Restore, crate::backup::Document), Error> {
        let restore = self
            .backup
            .restore
            .as_ref()
            .ok_or(ErrorKind::RestoreNotBegun)?;
        if let Some(holds) = self.held_state() {
            return Err(ErrorKind::RestoreIntoDeployerWithState {
                holds: holds.to_string(),
            }
            .into());
        }
        let document = restore.document()?;
        JournalWriter {
            format: document.journal_format,
            engine_revision: document.engine_revision,
        }
        .check(Rollouts::<M>::journal_lines_in(&document.sections))
        .map_err(|error| ErrorKind::RestoreInvalid {
            reason: format!("{error}: restore it into the build that exported it"),
        })?;
        let received = restore.received_chunks();
        if let Some(missing) = ReleaseStore::<M>::chunks_named_by(&document.sections)
            .into_iter()
            .find(|hash| !received.contains(hash))
        {
            return Err(stream_missing(ExportStream::ReleaseChunk(
                serde_bytes::ByteBuf::from(missing.to_vec()),
            )));
        }
        let restore = self.backup.restore.take().expect("checked above");
        Ok((restore, document))
    }

    /// Frees the chunks of a restore begun and not committed.
    fn abandon_restore(&mut self) {
        if let Some(restore) = self.backup.restore.take() {
            for extent in restore.into_chunks().into_values() {
                self.release_store.discard_restored_chunk(extent);
            }
        }
    }
}
