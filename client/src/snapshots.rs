//! A child's snapshot read through the deployer's proxy (the `icp` CLI's proxy interface, for a
//! child only the deployer controls) and written in the directory layout of
//! `icp canister snapshot download`, so that `icp canister snapshot upload` takes it back:
//! `metadata.json` (the management canister's `read_canister_snapshot_metadata` reply as JSON),
//! `wasm_module.bin`, `wasm_memory.bin`, `stable_memory.bin`, and `wasm_chunk_store/<hash>.bin`.
//! IC interface specification, management canister, "IC method read_canister_snapshot_data":
//! at most 2,000,000 bytes a read.

use std::fmt;
use std::path::Path;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Nat, Principal};
use deployer::{ProxyArgs, ProxyError, ProxyResult};
use ic_management_canister_types::{
    CanisterIdRecord, ReadCanisterSnapshotDataArgs, ReadCanisterSnapshotDataResult,
    ReadCanisterSnapshotMetadataArgs, ReadCanisterSnapshotMetadataResult, Snapshot,
    SnapshotDataKind,
};
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use crate::{CallError, Deployer, Transport};

/// The most bytes one `read_canister_snapshot_data` returns.
pub const MAX_READ_BYTES: u64 = 2_000_000;

/// A snapshot's metadata and every byte of it.
#[derive(Clone, Debug)]
pub struct ChildSnapshot {
    pub metadata: ReadCanisterSnapshotMetadataResult,
    pub wasm_module: Vec<u8>,
    pub wasm_memory: Vec<u8>,
    pub stable_memory: Vec<u8>,
    /// The Wasm chunk store's chunks: (hash, bytes).
    pub wasm_chunks: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why a snapshot could not be read through the proxy or written.
#[derive(Debug)]
pub enum SnapshotError {
    /// The call to the deployer failed (refused, rejected, unreachable).
    Call(CallError),
    /// The deployer did not forward the call, or the management canister refused it.
    Proxy { method: String, error: ProxyError },
    /// The management canister's reply does not decode as the method's result.
    Decode { method: String, reason: String },
    /// The child has no snapshot to download.
    NoSnapshot { canister_id: Principal },
    /// The output directory holds files already, or a file could not be written.
    Output(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Call(error) => write!(f, "{error:?}"),
            SnapshotError::Proxy { method, error } => {
                write!(f, "{method} through the deployer's proxy: {error:?}")
            }
            SnapshotError::Decode { method, reason } => {
                write!(f, "the reply of {method} does not decode: {reason}")
            }
            SnapshotError::NoSnapshot { canister_id } => write!(
                f,
                "canister {canister_id} has no snapshot: take one (a rollout takes one of each \
                 child it upgrades) and try again"
            ),
            SnapshotError::Output(reason) => write!(f, "{reason}"),
        }
    }
}

impl From<CallError> for SnapshotError {
    fn from(error: CallError) -> Self {
        SnapshotError::Call(error)
    }
}

impl<T: Transport> Deployer<T> {
    /// Calls the management canister's `method` with `arg` through the deployer's proxy.
    fn through_proxy<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        caller: Principal,
        method: &str,
        arg: A,
    ) -> Result<R, SnapshotError> {
        let args = ProxyArgs {
            canister_id: Principal::management_canister(),
            method: method.to_string(),
            args: ByteBuf::from(candid::encode_args(arg).expect("a Candid value encodes")),
            cycles: Nat::from(0u8),
        };
        match self.proxy(caller, args)? {
            ProxyResult::Ok(ok) => {
                candid::decode_one(&ok.result).map_err(|error| SnapshotError::Decode {
                    method: method.to_string(),
                    reason: error.to_string(),
                })
            }
            ProxyResult::Err(error) => Err(SnapshotError::Proxy {
                method: method.to_string(),
                error,
            }),
        }
    }

    /// The child's snapshots (the deployer's and any other controller's), oldest first.
    pub fn child_snapshots(
        &mut self,
        caller: Principal,
        canister_id: Principal,
    ) -> Result<Vec<Snapshot>, SnapshotError> {
        let mut snapshots: Vec<Snapshot> = self.through_proxy(
            caller,
            "list_canister_snapshots",
            (CanisterIdRecord { canister_id },),
        )?;
        snapshots.sort_by_key(|snapshot| snapshot.taken_at_timestamp);
        Ok(snapshots)
    }

    /// Reads snapshot `snapshot_id` of the child: its metadata, then its data in reads of at
    /// most `read_bytes` (at most [`MAX_READ_BYTES`]).
    pub fn download_child_snapshot(
        &mut self,
        caller: Principal,
        canister_id: Principal,
        snapshot_id: &[u8],
        read_bytes: u64,
    ) -> Result<ChildSnapshot, SnapshotError> {
        let read_bytes = read_bytes.clamp(1, MAX_READ_BYTES);
        let metadata: ReadCanisterSnapshotMetadataResult = self.through_proxy(
            caller,
            "read_canister_snapshot_metadata",
            (ReadCanisterSnapshotMetadataArgs {
                canister_id,
                snapshot_id: snapshot_id.to_vec(),
            },),
        )?;
        let mut read = |kind: SnapshotDataKind| -> Result<Vec<u8>, SnapshotError> {
            let data: ReadCanisterSnapshotDataResult = self.through_proxy(
                caller,
                "read_canister_snapshot_data",
                (ReadCanisterSnapshotDataArgs {
                    canister_id,
                    snapshot_id: snapshot_id.to_vec(),
                    kind,
                },),
            )?;
            Ok(data.chunk)
        };
        let mut part = |size: u64, kind: fn(u64, u64) -> SnapshotDataKind| {
            let mut bytes = Vec::with_capacity(size as usize);
            while (bytes.len() as u64) < size {
                let offset = bytes.len() as u64;
                let chunk = read(kind(offset, (size - offset).min(read_bytes)))?;
                if chunk.is_empty() {
                    return Err(SnapshotError::Decode {
                        method: "read_canister_snapshot_data".to_string(),
                        reason: format!("an empty slice at offset {offset} of {size} bytes"),
                    });
                }
                bytes.extend(chunk);
            }
            Ok(bytes)
        };
        let wasm_module = part(metadata.wasm_module_size, |offset, size| {
            SnapshotDataKind::WasmModule { offset, size }
        })?;
        let wasm_memory = part(metadata.wasm_memory_size, |offset, size| {
            SnapshotDataKind::WasmMemory { offset, size }
        })?;
        let stable_memory = part(metadata.stable_memory_size, |offset, size| {
            SnapshotDataKind::StableMemory { offset, size }
        })?;
        let mut wasm_chunks = Vec::new();
        for chunk in &metadata.wasm_chunk_store {
            let bytes = read(SnapshotDataKind::WasmChunk {
                hash: chunk.hash.clone(),
            })?;
            wasm_chunks.push((chunk.hash.clone(), bytes));
        }
        Ok(ChildSnapshot {
            metadata,
            wasm_module,
            wasm_memory,
            stable_memory,
            wasm_chunks,
        })
    }
}

impl ChildSnapshot {
    /// Writes the snapshot into `dir` (created if missing) in the layout of
    /// `icp canister snapshot download`; refuses a directory that holds anything.
    pub fn write_to(&self, dir: &Path) -> Result<(), SnapshotError> {
        let output =
            |error: std::io::Error| SnapshotError::Output(format!("{}: {error}", dir.display()));
        std::fs::create_dir_all(dir).map_err(output)?;
        if std::fs::read_dir(dir).map_err(output)?.next().is_some() {
            return Err(SnapshotError::Output(format!(
                "{} is not empty: choose an empty or new directory",
                dir.display()
            )));
        }
        let chunk_store = dir.join("wasm_chunk_store");
        std::fs::create_dir_all(&chunk_store).map_err(output)?;
        let metadata =
            serde_json::to_vec_pretty(&self.metadata).expect("the metadata is plain data");
        for (name, bytes) in [
            ("metadata.json", &metadata),
            ("wasm_module.bin", &self.wasm_module),
            ("wasm_memory.bin", &self.wasm_memory),
            ("stable_memory.bin", &self.stable_memory),
        ] {
            std::fs::write(dir.join(name), bytes).map_err(output)?;
        }
        for (hash, bytes) in &self.wasm_chunks {
            let name = format!("{}.bin", hex::encode(hash));
            std::fs::write(chunk_store.join(name), bytes).map_err(output)?;
        }
        Ok(())
    }

    /// Bytes of data: module, memories and chunks.
    pub fn data_bytes(&self) -> u64 {
        let chunks: usize = self.wasm_chunks.iter().map(|(_, bytes)| bytes.len()).sum();
        (self.wasm_module.len() + self.wasm_memory.len() + self.stable_memory.len() + chunks) as u64
    }
}
