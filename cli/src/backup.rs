//! `deployer backup`: the deployer's own state exported into a directory and restored from it
//! into a freshly installed deployer (`deployer_client::state_backup`), backup runs (a snapshot
//! of each selected child, with a rollout's waves and concurrency), and a child's snapshot
//! downloaded through the deployer's proxy (the child needs no other controller), written in the
//! layout of `icp canister snapshot download` so that `icp canister snapshot upload` takes it
//! back.

use std::path::PathBuf;

use clap::Subcommand;
use deployer_client::snapshots::{SnapshotError, MAX_READ_BYTES};
use deployer_client::state_backup::{BackupError, StateBackup};
use ic_sim::{Reject, RejectCode};

use crate::connect::parse_principal;
use crate::fail::{Failure, Outcome};
use crate::rollout::{self, Selection};
use crate::{json, text, Context};
use deployer::{RestoreChildArg, RolloutInfo, StartBackupRunArg};
use serde_bytes::ByteBuf;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Exports the deployer's whole state into a directory: manifest.bin, document.cbor and
    /// chunks/<sha256>.bin. Chunks already in the directory are not downloaded again, so
    /// exporting into the same directory fetches only new releases' bytes. Needs the Admin role.
    Export {
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
    /// Restores a directory written by `backup export` into a freshly installed deployer
    /// (`--canister`); every piece is checked by the deployer and the whole is committed at
    /// once. Rollouts active at the export come back paused: make the restored deployer a
    /// controller of the fleet, then resume them. Needs the Admin role.
    Restore { directory: PathBuf },
    /// Starts a backup run: a snapshot of each selected child (every child by default) with the
    /// policy's waves, concurrency, retries, failure budget and `keep_snapshots` retention,
    /// installing nothing; watched, paused and aborted as a rollout. Needs the Operator role.
    Run {
        #[command(flatten)]
        selection: Selection,
        /// Stops each child for its snapshot and starts it again; by default the running child
        /// is snapshotted as it serves.
        #[arg(long)]
        stop: bool,
        /// Watch it once started (and exit as `rollout watch` does).
        #[arg(long)]
        watch: bool,
        /// Seconds between reads while watching.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Restores a child to one of its snapshots: the deployer stops it, loads the snapshot,
    /// starts it and checks it runs, journaled as a rollout (watched, shown and listed as one).
    /// Needs the Operator role.
    RestoreChild {
        canister_id: String,
        /// The snapshot's id in hex (as `icp canister snapshot list` prints it).
        #[arg(long)]
        snapshot: String,
        /// Watch it once started (and exit as `rollout watch` does).
        #[arg(long)]
        watch: bool,
        /// Seconds between reads while watching.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Downloads a child's snapshot (the newest unless `--snapshot`) into a new or empty
    /// directory: metadata.json, wasm_module.bin, wasm_memory.bin, stable_memory.bin and
    /// wasm_chunk_store/. Needs the Operator role.
    Child {
        canister_id: String,
        /// The snapshot's id in hex (as `icp canister snapshot list` prints it).
        #[arg(long)]
        snapshot: Option<String>,
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
}

impl BackupCommand {
    /// What can be refused without the network.
    pub fn check_input(&self) -> Outcome<()> {
        match self {
            BackupCommand::Export { .. } => Ok(()),
            BackupCommand::Run { selection, .. } => selection.check(),
            BackupCommand::RestoreChild {
                canister_id,
                snapshot,
                ..
            } => {
                parse_principal(canister_id, "canister id")?;
                parse_snapshot_id(snapshot)?;
                Ok(())
            }
            BackupCommand::Restore { directory } => {
                StateBackup::read_manifest(directory).map_err(backup_failure)?;
                Ok(())
            }
            BackupCommand::Child {
                canister_id,
                snapshot,
                ..
            } => {
                parse_principal(canister_id, "canister id")?;
                snapshot.as_deref().map(parse_snapshot_id).transpose()?;
                Ok(())
            }
        }
    }

    /// The exit status: a watched backup run's is `rollout watch`'s.
    pub fn run(self, context: &Context) -> Outcome<u8> {
        match self {
            BackupCommand::Export { output } => export(context, &output).map(|()| 0),
            BackupCommand::Restore { directory } => restore(context, &directory).map(|()| 0),
            BackupCommand::Run {
                selection,
                stop,
                watch,
                interval,
            } => {
                let info = context.connection.deployer().start_backup_run(
                    context.connection.me,
                    StartBackupRunArg {
                        selector: selection.selector()?,
                        policy: Some(selection.policy()?),
                        stop_children: stop,
                    },
                )?;
                started(context, &info, "backup run", watch.then_some(interval))
            }
            BackupCommand::RestoreChild {
                canister_id,
                snapshot,
                watch,
                interval,
            } => {
                let info = context.connection.deployer().restore_child(
                    context.connection.me,
                    RestoreChildArg {
                        canister_id: parse_principal(&canister_id, "canister id")?,
                        snapshot_id: ByteBuf::from(parse_snapshot_id(&snapshot)?),
                    },
                )?;
                started(context, &info, "restore", watch.then_some(interval))
            }
            BackupCommand::Child {
                canister_id,
                snapshot,
                output,
            } => {
                let canister_id = parse_principal(&canister_id, "canister id")?;
                let me = context.connection.me;
                let mut deployer = context.connection.deployer();
                let snapshot_id = match snapshot.as_deref().map(parse_snapshot_id).transpose()? {
                    Some(id) => id,
                    None => {
                        deployer
                            .child_snapshots(me, canister_id)
                            .map_err(failure)?
                            .pop()
                            .ok_or(SnapshotError::NoSnapshot { canister_id })
                            .map_err(failure)?
                            .id
                    }
                };
                let downloaded = deployer
                    .download_child_snapshot(me, canister_id, &snapshot_id, MAX_READ_BYTES)
                    .map_err(failure)?;
                downloaded.write_to(&output).map_err(failure)?;
                let value = serde_json::json!({
                    "canister_id": canister_id.to_text(),
                    "snapshot_id": hex::encode(&snapshot_id),
                    "directory": output.display().to_string(),
                    "taken_at": downloaded.metadata.taken_at_timestamp,
                    "bytes": downloaded.data_bytes(),
                });
                context.print(&value, || {
                    format!(
                        "snapshot {} of {canister_id} (taken {}) written to {}: {}",
                        hex::encode(&snapshot_id),
                        text::time(downloaded.metadata.taken_at_timestamp),
                        output.display(),
                        text::bytes(downloaded.data_bytes())
                    )
                });
                Ok(0)
            }
        }
    }
}

fn export(context: &Context, output: &std::path::Path) -> Outcome<()> {
    let have = StateBackup::chunks_in(output);
    let backup = context
        .connection
        .deployer()
        .export_state(context.connection.me, &have)?;
    backup.write_to(output).map_err(backup_failure)?;
    let manifest = &backup.manifest;
    let reused = manifest
        .release_chunks
        .iter()
        .filter(|chunk| have.contains_key(chunk.sha256.as_slice()))
        .count();
    let value = serde_json::json!({
        "exported_at": manifest.exported_at,
        "directory": output.display().to_string(),
        "document_bytes": manifest.document_size,
        "document_sha256": hex::encode(&manifest.document_sha256),
        "chunks": manifest.release_chunks.len(),
        "chunks_reused": reused,
    });
    context.print(&value, || {
        format!(
            "state exported at {} to {}: a document of {}, {} release chunks ({reused} already \
             there)",
            text::time(manifest.exported_at),
            output.display(),
            text::bytes(manifest.document_size),
            manifest.release_chunks.len()
        )
    });
    Ok(())
}

fn restore(context: &Context, directory: &std::path::Path) -> Outcome<()> {
    let backup = StateBackup::read_from(directory).map_err(backup_failure)?;
    let summary =
        context
            .connection
            .deployer()
            .restore_state(context.connection.me, &backup, |_| {})?;
    let value = serde_json::json!({
        "exported_at": summary.exported_at,
        "sections": summary.sections,
        "entries": summary.entries,
        "chunks": summary.chunks,
    });
    context.print(&value, || {
        format!(
            "restored the state exported at {}: {} entries in {} sections, {} release chunks. \
             Rollouts active at the export are paused: make this deployer a controller of the \
             fleet, then resume them",
            text::time(summary.exported_at),
            summary.entries,
            summary.sections,
            summary.chunks
        )
    });
    Ok(())
}

/// Says that `what` started, then follows it every `watch` seconds when asked (and exits as
/// `rollout watch` does).
fn started(context: &Context, info: &RolloutInfo, what: &str, watch: Option<f64>) -> Outcome<u8> {
    if let Some(interval) = watch {
        if !context.json {
            println!("{what} {} started", info.rollout_id);
        }
        return rollout::watch(context, info.rollout_id, interval);
    }
    context.print(&json::to_json(info), || {
        format!(
            "{what} {} started\n{}",
            info.rollout_id,
            rollout::describe(info)
        )
    });
    Ok(0)
}

fn backup_failure(error: BackupError) -> Failure {
    match error {
        BackupError::Call(error) => error.into(),
        BackupError::Files(reason) => Failure::input(reason),
    }
}

fn parse_snapshot_id(text: &str) -> Outcome<Vec<u8>> {
    hex::decode(text.trim())
        .ok()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Failure::input(format!("snapshot `{text}`: expected its id in hex")))
}

/// A failed download as the exit statuses tell it: the proxy's refusal or the management
/// canister's reject as a reject, a reply that does not decode as a failed verification.
fn failure(error: SnapshotError) -> Failure {
    match error {
        SnapshotError::Call(error) => error.into(),
        SnapshotError::Proxy { .. } => Failure::Rejected(Reject {
            code: RejectCode::CanisterReject,
            message: error.to_string(),
            error_code: None,
        }),
        SnapshotError::Decode { .. } => Failure::Integrity(error.to_string()),
        SnapshotError::NoSnapshot { .. } | SnapshotError::Output(_) => {
            Failure::input(error.to_string())
        }
    }
}
