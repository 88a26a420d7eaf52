//! Conformance tests: the Wasm chunk store and chunked installation (IC interface specification,
//! "The IC management canister": `upload_chunk`, `stored_chunks`, `clear_chunk_store`,
//! `install_chunked_code`, `uninstall_code`; `canister_metadata`).

mod replica_support;

use candid::{CandidType, Principal};
use ic_management_canister_types::{
    CanisterInfoArgs, CanisterInfoResult, CanisterInstallMode, CanisterMetadataArgs,
    CanisterMetadataResult, CanisterStatusResult, ChangeDetails, ChunkHash, InstallChunkedCodeArgs,
    UninstallCodeArgs, UploadChunkArgs,
};
use ic_sim::{Reject, RejectCode, Sim, SimConfig, TraceKind};
use replica_support::*;
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

fn upload_args(canister: Principal, chunk: &[u8]) -> UploadChunkArgs {
    UploadChunkArgs {
        canister_id: canister,
        chunk: chunk.to_vec(),
    }
}

/// `upload_chunk` sent as ingress by [`user`].
fn upload(sim: &mut Sim, canister: Principal, chunk: &[u8]) -> Result<Vec<u8>, Reject> {
    management_ingress(sim, user(), "upload_chunk", &upload_args(canister, chunk))
        .map(|reply| decode::<ChunkHash>(&reply).hash)
}

fn stored_chunks(sim: &mut Sim, canister: Principal) -> Vec<Vec<u8>> {
    let reply = management_ingress(sim, user(), "stored_chunks", &id_record(canister)).unwrap();
    decode::<Vec<ChunkHash>>(&reply)
        .into_iter()
        .map(|c| c.hash)
        .collect()
}

fn chunked_install_args(
    target: Principal,
    store: Option<Principal>,
    hashes: &[Vec<u8>],
    wasm_module_hash: Vec<u8>,
    arg: Vec<u8>,
) -> InstallChunkedCodeArgs {
    InstallChunkedCodeArgs {
        mode: CanisterInstallMode::Install,
        target_canister: target,
        store_canister: store,
        chunk_hashes_list: hashes
            .iter()
            .map(|h| ChunkHash { hash: h.clone() })
            .collect(),
        wasm_module_hash,
        arg,
        sender_canister_version: None,
    }
}

fn expect_reject(answer: Forwarded) -> (u32, String) {
    match answer {
        Forwarded::Reject { code, message, .. } => (code, message),
        other => panic!("expected a reject, got {other:?}"),
    }
}

// `upload_chunk` returns the chunk's SHA-256; `stored_chunks` lists it; each chunk is charged as a
// full 1 MiB (`memory_metrics.wasm_chunk_store_size`); the payload counts as bytes moved.
#[test]
fn upload_chunk_returns_the_sha256_and_stored_chunks_lists_it() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let chunk = vec![7u8; 1000];
    let moved_before = sim.stats().bytes_moved;
    let hash = upload(&mut sim, canister, &chunk).unwrap();
    assert_eq!(hash, sha256(&chunk));
    assert!(sim.stats().bytes_moved >= moved_before + chunk.len() as u64);
    assert_eq!(stored_chunks(&mut sim, canister), vec![hash]);
    assert_eq!(sim.canister(canister).unwrap().stored_chunks, 1);
    let status: CanisterStatusResult = decode(
        &management_ingress(&mut sim, user(), "canister_status", &id_record(canister)).unwrap(),
    );
    assert_eq!(status.memory_metrics.wasm_chunk_store_size, MIB as u64);
    assert!(status.memory_size >= MIB as u64);
}

// `upload_chunk`: a chunk is at most 1 MiB.
#[test]
fn chunk_over_1_mib_is_refused() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    upload(&mut sim, canister, &vec![1u8; MIB]).unwrap();
    let err = upload(&mut sim, canister, &vec![2u8; MIB + 1]).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0504"));
    assert_eq!(
        err.message,
        format!(
            "Error from Wasm chunk store: Wasm chunk size {} exceeds the maximum chunk size of {MIB}.",
            MIB + 1
        )
    );
    assert_eq!(stored_chunks(&mut sim, canister).len(), 1);
}

// `upload_chunk`: the store holds `CHUNK_STORE_SIZE` = 100 chunks; uploading a chunk that is
// already stored is a no-op, even when the store is full. `clear_chunk_store` empties it.
#[test]
fn store_holds_100_chunks_and_reupload_is_a_noop_even_when_full() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    for i in 0..100u32 {
        upload(&mut sim, canister, &i.to_le_bytes()).unwrap();
    }
    let err = upload(&mut sim, canister, b"one too many").unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0504"));
    assert_eq!(
        err.message,
        "Error from Wasm chunk store: Wasm chunk store has already reached maximum capacity of 104857600 bytes or the maximum number of entries, 100."
    );
    let again = upload(&mut sim, canister, &7u32.to_le_bytes()).unwrap();
    assert_eq!(again, sha256(&7u32.to_le_bytes()));
    assert_eq!(stored_chunks(&mut sim, canister).len(), 100);

    management_ingress(&mut sim, user(), "clear_chunk_store", &id_record(canister)).unwrap();
    assert!(stored_chunks(&mut sim, canister).is_empty());
    assert_eq!(sim.canister(canister).unwrap().stored_chunks, 0);
}

// `upload_chunk`, `stored_chunks`, `clear_chunk_store`: callable by the controllers and by the
// canister itself, by no one else.
#[test]
fn chunk_store_is_for_controllers_and_the_canister_itself() {
    let mut sim = new_sim();
    let target = echo(&mut sim);
    let stranger = forwarder(&mut sim, 0);
    for (method, payload) in [
        (
            "upload_chunk",
            candid::encode_one(upload_args(target, b"x")).unwrap(),
        ),
        (
            "stored_chunks",
            candid::encode_one(id_record(target)).unwrap(),
        ),
        (
            "clear_chunk_store",
            candid::encode_one(id_record(target)).unwrap(),
        ),
    ] {
        let (code, message) = expect_reject(forward(
            &mut sim,
            stranger,
            &Call::new(management(), method, payload.clone()),
        ));
        assert_eq!(code, RejectCode::CanisterError as u32, "{method}");
        assert!(message.starts_with("Only the controllers"), "{message}");
        let err = sim
            .submit_update(other_user(), management(), method, payload)
            .unwrap_err();
        assert_eq!(err.error_code.as_deref(), Some("IC0512"), "{method}");
    }
    assert_eq!(sim.canister(target).unwrap().stored_chunks, 0);

    // The forwarder is not its own controller, yet it may use its own store.
    let hash: ChunkHash = decode(
        &forward_management(
            &mut sim,
            stranger,
            "upload_chunk",
            &upload_args(stranger, b"own"),
        )
        .reply_data(),
    );
    assert_eq!(hash.hash, sha256(b"own"));
    let listed: Vec<ChunkHash> = decode(
        &forward_management(&mut sim, stranger, "stored_chunks", &id_record(stranger)).reply_data(),
    );
    assert_eq!(listed, vec![hash]);
}

// `install_chunked_code`: the chunks are concatenated in list order, the SHA-256 is checked, and
// the module is installed as by `install_code` (a module over the 2 MiB ingress limit included).
// The install request itself only carries hashes.
#[test]
fn install_chunked_code_installs_a_module_too_large_for_one_message() {
    let mut sim = new_sim();
    let wasm = ic_sim::artifacts::wasm("child_large");
    assert!(wasm.len() > 2 * MIB);
    let canister = sim.create_canister(0, vec![user()]);
    let hashes: Vec<Vec<u8>> = wasm
        .chunks(MIB)
        .map(|chunk| upload(&mut sim, canister, chunk).unwrap())
        .collect();
    let args = chunked_install_args(
        canister,
        None,
        &hashes,
        sha256(&wasm),
        candid::encode_args(()).unwrap(),
    );
    management_ingress(&mut sim, user(), "install_chunked_code", &args).unwrap();

    let view = sim.canister(canister).unwrap();
    assert_eq!(view.module_hash.map(|h| h.to_vec()), Some(sha256(&wasm)));
    let request_bytes = sim
        .trace()
        .iter()
        .find_map(|e| match &e.kind {
            TraceKind::Ingress { method, bytes, .. } if method == "install_chunked_code" => {
                Some(*bytes)
            }
            _ => None,
        })
        .unwrap();
    assert!(request_bytes < 1024, "{request_bytes} bytes");
}

// `install_chunked_code`: the caller may use its own chunk store (`store_canister` = caller) for a
// canister it controls on the same subnet, without controlling itself; the result is recorded
// like an `install_code` (history `code_deployment`), and the module runs.
#[test]
fn a_controller_canister_installs_from_its_own_store() {
    let mut sim = new_sim();
    let deployer = forwarder(&mut sim, 0);
    let child = sim.create_canister(0, vec![deployer]);
    let wasm = echo_wasm();
    let hashes: Vec<Vec<u8>> = wasm
        .chunks(wasm.len() / 3 + 1)
        .map(|chunk| {
            let reply = forward_management(
                &mut sim,
                deployer,
                "upload_chunk",
                &upload_args(deployer, chunk),
            );
            decode::<ChunkHash>(&reply.reply_data()).hash
        })
        .collect();
    assert_eq!(hashes.len(), 3);
    let args = chunked_install_args(
        child,
        Some(deployer),
        &hashes,
        sha256(&wasm),
        b"installed from chunks".to_vec(),
    );
    forward_management(&mut sim, deployer, "install_chunked_code", &args).reply_data();

    assert_eq!(
        sim.query_call(user(), child, "read", Vec::new()).unwrap(),
        b"installed from chunks"
    );
    let info: CanisterInfoResult = decode(
        &forward_management(
            &mut sim,
            deployer,
            "canister_info",
            &CanisterInfoArgs {
                canister_id: child,
                num_requested_changes: Some(1),
            },
        )
        .reply_data(),
    );
    match &info.recent_changes[0].details {
        Some(ChangeDetails::CodeDeployment(record)) => {
            assert_eq!(record.module_hash, sha256(&wasm))
        }
        other => panic!("expected a code deployment, got {other:?}"),
    }
}

// `install_chunked_code` refusals: a hash mismatch, a missing chunk, a caller that neither
// controls nor is the store, a store on another subnet, a caller that does not control the
// target. The target stays empty.
#[test]
fn install_chunked_code_refusals() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        ..SimConfig::default()
    });
    let installer = forwarder(&mut sim, 0);
    let target = sim.create_canister(0, vec![installer]);
    let foreign_store = sim.create_canister(0, vec![user()]);
    let far_store = sim.create_canister(1, vec![installer]);
    let wasm = echo_wasm();
    let hash = upload(&mut sim, foreign_store, &wasm).unwrap();
    let far_hash: ChunkHash = decode(
        &forward_management(
            &mut sim,
            installer,
            "upload_chunk",
            &upload_args(far_store, &wasm),
        )
        .reply_data(),
    );
    let own: ChunkHash = decode(
        &forward_management(
            &mut sim,
            installer,
            "upload_chunk",
            &upload_args(installer, &wasm),
        )
        .reply_data(),
    );
    let install = |sim: &mut Sim, store: Principal, hashes: &[Vec<u8>], module_hash: Vec<u8>| {
        let args = chunked_install_args(target, Some(store), hashes, module_hash, Vec::new());
        expect_reject(forward_management(
            sim,
            installer,
            "install_chunked_code",
            &args,
        ))
    };

    let (code, message) = install(&mut sim, installer, &[own.hash], vec![0; 32]);
    assert_eq!(code, RejectCode::CanisterError as u32);
    assert_eq!(
        message,
        format!(
            "Error from Wasm chunk store: Wasm module hash {} does not match given hash {}.",
            hex::encode(sha256(&wasm)),
            hex::encode([0u8; 32])
        )
    );

    let missing = sha256(b"never uploaded");
    let missing_hex = hex::encode(&missing);
    let (code, message) = install(&mut sim, installer, &[missing], sha256(&wasm));
    assert_eq!(code, RejectCode::CanisterError as u32);
    assert!(message.contains(&missing_hex), "{message}");

    let (code, message) = install(&mut sim, foreign_store, &[hash], sha256(&wasm));
    assert_eq!(code, RejectCode::CanisterError as u32);
    assert!(
        message.starts_with(&format!(
            "Only the controllers of the canister {foreign_store} can control it."
        )),
        "{message}"
    );

    let (code, message) = install(&mut sim, far_store, &[far_hash.hash], sha256(&wasm));
    assert_eq!(code, RejectCode::DestinationInvalid as u32);
    assert_eq!(message, format!("Canister {far_store} not found"));

    assert_eq!(sim.canister(target).unwrap().module_hash, None);

    // Controlling the store is not enough: the caller must control the target.
    let args = chunked_install_args(target, Some(foreign_store), &[], sha256(b""), Vec::new());
    let err = management_ingress(&mut sim, user(), "install_chunked_code", &args).unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0512"));
}

// `uninstall_code` drops the chunk store with the code (replica `uninstall_canister`).
#[test]
fn uninstall_code_clears_the_chunk_store() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    upload(&mut sim, canister, b"chunk").unwrap();
    let args = UninstallCodeArgs {
        canister_id: canister,
        sender_canister_version: None,
    };
    management_ingress(&mut sim, user(), "uninstall_code", &args).unwrap();
    assert!(stored_chunks(&mut sim, canister).is_empty());
}

/// The echo canister with one public and one private metadata section.
fn echo_with_metadata() -> Vec<u8> {
    let mut wasm = echo_wasm();
    for (name, content) in [
        ("icp:public candid:service", "service : {}"),
        ("icp:private notes", "for controllers"),
    ] {
        let mut section = vec![name.len() as u8];
        section.extend_from_slice(name.as_bytes());
        section.extend_from_slice(content.as_bytes());
        wasm.push(0); // custom section id
        wasm.push(section.len() as u8);
        wasm.extend_from_slice(&section);
    }
    wasm
}

#[derive(CandidType)]
struct Metadata<'a> {
    canister_id: Principal,
    name: &'a str,
}

// `canister_metadata`: `icp:public` sections for any canister, `icp:private` ones for controllers
// only; canisters only, never ingress.
#[test]
fn canister_metadata_public_and_private_sections() {
    let mut sim = new_sim();
    let reader = forwarder(&mut sim, 0);
    let canister = install_on(&mut sim, 0, &echo_with_metadata(), Vec::new());
    let read = |sim: &mut Sim, name: &str| {
        forward_management(
            sim,
            reader,
            "canister_metadata",
            &Metadata {
                canister_id: canister,
                name,
            },
        )
    };
    let public: CanisterMetadataResult = decode(&read(&mut sim, "candid:service").reply_data());
    assert_eq!(public.value, b"service : {}");
    let (code, message) = expect_reject(read(&mut sim, "notes"));
    assert_eq!(code, RejectCode::CanisterError as u32);
    assert!(message.starts_with("Only the controllers"), "{message}");
    let (code, message) = expect_reject(read(&mut sim, "absent"));
    assert_eq!(code, RejectCode::CanisterReject as u32);
    assert_eq!(
        message,
        format!("The canister {canister} has no metadata section with the name absent.")
    );
    let args = CanisterMetadataArgs {
        canister_id: canister,
        name: "candid:service".to_string(),
    };
    let err = management_ingress(&mut sim, user(), "canister_metadata", &args).unwrap_err();
    assert_eq!(
        err.message,
        "Only canisters can call ic00 method canister_metadata"
    );
}
