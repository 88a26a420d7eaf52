//! The whole state into a backup document and back, see [`crate::backup`].

use ic_stable_structures::Memory;

use super::State;
use crate::backup::commit::Slice;
use crate::backup::{
    stream_missing, Checking, Emptying, Export, ExportManifest, ExportStream, ReadExportArg,
    Restore, RestorePieceArg, RestoreProgress, RestoreSummary, SectionVisitor, Writing,
};
use crate::error::{Error, ErrorKind};
use crate::release_store::ReleaseStore;

impl<M: Memory + Clone> State<M> {
    /// Begins an export of the state as it stands, in place of any earlier one: freezes the
    /// memories (see [`crate::memory::freezable`]), from which [`State::continue_export`] takes
    /// the document, whatever is written meanwhile.
    pub fn start_export(&mut self, now: u64) {
        self.memories.freeze();
        let export = Export::begin(self.release_store.release_chunks(), now);
        self.backup.export = Some(export);
    }

    /// Takes the next slice of the export begun at `exported_at`, or once it is taken (and the
    /// memories thawed) hashes its next piece: its manifest once every piece is hashed. Refused
    /// when another export replaced it, or when the state changed too much while it was taken
    /// (the freeze was given up).
    pub fn continue_export(&mut self, exported_at: u64) -> Result<Option<ExportManifest>, Error> {
        let not_held = ErrorKind::ExportNotHeld { exported_at };
        let export = self
            .backup
            .export
            .as_mut()
            .filter(|export| export.manifest.exported_at == exported_at)
            .ok_or(not_held.clone())?;
        if export.taken() {
            return Ok(export.hash_next_piece().then(|| export.manifest.clone()));
        }
        let Some(frozen) = self.memories.frozen() else {
            self.let_go_of_export();
            return Err(not_held.into());
        };
        let mut frozen = State::with_memories(frozen);
        if export.take_slice(|taker| frozen.visit_sections(taker)) {
            self.memories.thaw();
        }
        Ok(None)
    }

    /// Lets go of the export begun at `exported_at` if it is still being taken (its call cannot
    /// go on): the memories are thawed.
    pub fn abandon_export(&mut self, exported_at: u64) {
        let taking =
            self.backup.export.as_ref().is_some_and(|export| {
                export.manifest.exported_at == exported_at && !export.taken()
            });
        if taking {
            self.let_go_of_export();
        }
    }

    /// Drops the export held and thaws the memories it was being taken from.
    fn let_go_of_export(&mut self) {
        self.backup.export = None;
        self.memories.thaw();
    }

    /// Every stored structure a backup holds, as its section.
    pub(crate) fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.cell("governance", &mut self.governance);
        sections.cell("dashboard", &mut self.dashboard);
        self.roles.visit_sections(sections);
        self.release_store.visit_sections(sections);
        self.fleet.visit_sections(sections);
        self.rollouts.visit_sections(sections);
        self.proxy_audit.visit_sections(sections);
    }

    /// A stream of the export taken at `arg.exported_at`.
    pub fn read_export(&self, arg: &ReadExportArg) -> Result<Vec<u8>, Error> {
        let export = self
            .backup
            .export
            .as_ref()
            .filter(|export| export.manifest.exported_at == arg.exported_at && export.hashed())
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
        self.backup.committed = None;
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

    /// One slice of the commit of the restore begun, once every piece arrived (see
    /// [`crate::backup::commit`]): `None` while slices are left, the summary after the last,
    /// which reopens the state as an upgrade would, with every active rollout paused (see
    /// [`crate::rollouts::Rollouts::recover_paused`]). A refusal while checking leaves nothing
    /// written and the restore open. Once committed, the same summary again.
    pub fn commit_restore(mut self, now: u64) -> (Self, Result<Option<RestoreSummary>, Error>) {
        if self.backup.restore.is_none() {
            if let Some(committed) = &self.backup.committed {
                let summary = committed.clone();
                return (self, Ok(Some(summary)));
            }
        }
        match self.commit_slice() {
            Ok(true) => {}
            other => return (self, other.map(|_| None)),
        }
        let restore = self.backup.restore.take().expect("written");
        let summary = restore.summary();
        self.release_store
            .index_restored_chunks(restore.into_chunks());
        self.memories.record_this_build();
        let mut state = Self::with_memories(self.into_memories());
        state.rollouts.recover_paused(&mut state.fleet, now);
        state.backup.committed = Some(summary.clone());
        (state, Ok(Some(summary)))
    }

    /// Takes one slice; whether it was the last.
    fn commit_slice(&mut self) -> Result<bool, Error> {
        let restore = self
            .backup
            .restore
            .as_ref()
            .ok_or(ErrorKind::RestoreNotBegun)?;
        if restore.writing().is_none() {
            if let Some(holds) = self.held_state() {
                return Err(ErrorKind::RestoreIntoDeployerWithState {
                    holds: holds.to_string(),
                }
                .into());
            }
        }
        let restore = self.backup.restore.as_mut().expect("checked above");
        match restore.next_commit_slice()? {
            Slice::Check(entries) => {
                self.visit_sections(&mut Checking(&entries));
                let named = ReleaseStore::<M>::chunks_named_by(&entries);
                let restore = self.backup.restore.as_mut().expect("committing");
                restore.check_named_chunks(named)?;
                Ok(false)
            }
            Slice::Empty => {
                self.visit_sections(&mut Emptying);
                Ok(false)
            }
            Slice::Write { mut entries, last } => {
                self.visit_sections(&mut Writing(&mut entries));
                Ok(last)
            }
        }
    }

    /// The refusal of other methods while a restore's commit writes the state.
    pub fn restore_being_written(&self) -> Option<Error> {
        self.backup.restore.as_ref().and_then(Restore::writing)
    }

    /// Where a restore's commit begun stands, if one is.
    pub fn restore_committing(&self) -> Option<Error> {
        self.backup.restore.as_ref().and_then(Restore::committing)
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
