//! `deployer backup`: a child's snapshot downloaded through the deployer's proxy (the child
//! needs no other controller), written in the layout of `icp canister snapshot download` so that
//! `icp canister snapshot upload` takes it back.

use std::path::PathBuf;

use clap::Subcommand;
use deployer_client::snapshots::{SnapshotError, MAX_READ_BYTES};
use ic_sim::{Reject, RejectCode};

use crate::connect::parse_principal;
use crate::fail::{Failure, Outcome};
use crate::{text, Context};

#[derive(Subcommand)]
pub enum BackupCommand {
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

    pub fn run(self, context: &Context) -> Outcome<()> {
        match self {
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
                Ok(())
            }
        }
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
