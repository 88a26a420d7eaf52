//! The Wasm chunk store and chunked installation (IC interface specification, "IC method
//! upload_chunk", "IC method clear_chunk_store", "IC method stored_chunks", "IC method
//! install_chunked_code").

use super::{change_origin, decode, empty_reply, encode, install_mode, Answer, ManagementCall};
use crate::replica::errors;
use crate::replica::state::ChunkStore;
use crate::replica::Sim;
use crate::types::Reject;
use ic_management_canister_types::{
    ChunkHash, ClearChunkStoreArgs, InstallChunkedCodeArgs, StoredChunksArgs, UploadChunkArgs,
};
use sha2::{Digest, Sha256};

pub(super) fn upload_chunk(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: UploadChunkArgs = decode(call)?;
    sim.controlled_or_self(args.canister_id, call.caller)?;
    let hash = sim
        .canister_mut(args.canister_id)?
        .chunk_store
        .insert(args.chunk)
        .map_err(|message| errors::chunk_store_error(&message))?;
    Ok(Answer::Now(encode(&ChunkHash {
        hash: hash.to_vec(),
    })))
}

pub(super) fn clear_chunk_store(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: ClearChunkStoreArgs = decode(call)?;
    sim.controlled_or_self(args.canister_id, call.caller)?;
    sim.canister_mut(args.canister_id)?.chunk_store = ChunkStore::default();
    Ok(empty_reply())
}

pub(super) fn stored_chunks(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: StoredChunksArgs = decode(call)?;
    sim.controlled_or_self(args.canister_id, call.caller)?;
    let hashes: Vec<ChunkHash> = sim.canisters[&args.canister_id]
        .chunk_store
        .hashes()
        .map(|hash| ChunkHash {
            hash: hash.to_vec(),
        })
        .collect();
    Ok(Answer::Now(encode(&hashes)))
}

/// Assembles the module from the store canister's chunks, checks its hash, then installs it
/// exactly as `install_code` would.
pub(super) fn install_chunked_code(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: InstallChunkedCodeArgs = decode(call)?;
    let target = args.target_canister;
    sim.controlled_canister(target, call.caller)?;
    let store = args.store_canister.unwrap_or(target);
    // The call runs on the target's subnet, whose state holds no canister of another subnet: a
    // store elsewhere is not found.
    let target_subnet = sim.canisters[&target].subnet;
    let store_state = sim
        .canisters
        .get(&store)
        .filter(|s| s.subnet == target_subnet)
        .ok_or_else(|| errors::canister_not_found(store))?;
    if call.caller != store && !store_state.is_controller(&call.caller) {
        return Err(errors::not_a_controller(
            store,
            &store_state.settings.controllers,
            call.caller,
        ));
    }
    let mut wasm = Vec::new();
    for ChunkHash { hash } in &args.chunk_hashes_list {
        let chunk = store_state
            .chunk_store
            .get(hash)
            .ok_or_else(|| errors::chunk_not_found(store, hash))?;
        wasm.extend_from_slice(chunk);
    }
    let wasm_hash = Sha256::digest(&wasm);
    if wasm_hash[..] != args.wasm_module_hash[..] {
        return Err(errors::chunked_module_hash_mismatch(
            &wasm_hash,
            &args.wasm_module_hash,
        ));
    }
    let origin = change_origin(call, args.sender_canister_version);
    sim.install_module(
        target,
        &wasm,
        args.arg,
        install_mode(args.mode),
        call.caller,
        origin,
    )?;
    Ok(empty_reply())
}
