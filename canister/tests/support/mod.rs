//! Shared by the deployer's scenario tests: the deployer installed from its real Wasm on an
//! [`IcEnv`] (the simulator, or PocketIC when `POCKET_IC_BIN` is set), a typed client for its
//! release methods, and builders of test modules.
//!
//! Each test binary uses part of this module.
#![allow(dead_code)]

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use deployer::{
    Error, InitArg, ListReleasesArg, Release, ReleaseChunkArg, ReleasePage, ReleaseSelector, Role,
    StorageStats, UploadChunkArg, UploadOpenArg, UploadSettings, UploadSettingsUpdate,
    UploadStatus,
};
use ic_sim::scenario::{from_env, IcEnv, IcEnvExt};
use ic_sim::{artifacts, InstallMode, Reject, SimConfig};
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::io::Write;

pub const MIB: usize = 1024 * 1024;
pub const HOUR_NANOS: u64 = 3600 * 1_000_000_000;

/// Upgrades `deployer` to its own Wasm as the admin, as a new release of the deployer would.
pub fn upgrade_deployer(env: &mut dyn IcEnv, deployer: Principal) {
    env.install_code(
        admin(),
        deployer,
        &artifacts::wasm("deployer"),
        candid::encode_args(()).unwrap(),
        InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: false,
        },
    )
    .expect("upgrade the deployer");
}

pub fn admin() -> Principal {
    Principal::from_slice(&[0xad; 29])
}

pub fn operator() -> Principal {
    Principal::from_slice(&[0x0e; 29])
}

pub fn stranger() -> Principal {
    Principal::from_slice(&[0x57; 29])
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The deployer on an IC: `admin()` is its admin and controller, `operator()` an operator.
pub struct Deployer {
    pub env: Box<dyn IcEnv>,
    pub canister: Principal,
}

impl Deployer {
    pub fn install() -> Self {
        Self::install_on(from_env(SimConfig::default()))
    }

    pub fn install_on(env: Box<dyn IcEnv>) -> Self {
        let mut deployer = Self {
            env,
            canister: Principal::anonymous(),
        };
        deployer.install_fresh();
        deployer
    }

    /// Replaces `canister` by a newly created deployer on the same IC (which keeps its compiled
    /// modules, so this is cheap).
    pub fn install_fresh(&mut self) {
        self.canister = self.env.create_canister(0, vec![admin()]);
        let init = candid::encode_one(InitArg {
            admins: Some(vec![admin()]),
        })
        .unwrap();
        self.env
            .install_code(
                admin(),
                self.canister,
                &artifacts::wasm("deployer"),
                init,
                InstallMode::Install,
            )
            .expect("install the deployer");
        self.call::<_, Result<(), Error>>(admin(), "add_role", (operator(), Role::Operator))
            .expect("grant Operator");
    }

    /// Upgrades the deployer to its own Wasm (what a new release of it does to its state).
    pub fn upgrade(&mut self) {
        upgrade_deployer(self.env.as_mut(), self.canister);
    }

    /// An update call as ingress; a reject (such as an `inspect_message` refusal) panics.
    pub fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        caller: Principal,
        method: &str,
        args: A,
    ) -> R {
        self.try_call(caller, method, args)
            .unwrap_or_else(|reject| panic!("{method} was rejected: {reject}"))
    }

    pub fn try_call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        caller: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Reject> {
        let (reply,): (R,) = self.env.update(caller, self.canister, method, args)?;
        Ok(reply)
    }

    pub fn query<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        caller: Principal,
        method: &str,
        args: A,
    ) -> R {
        let (reply,): (R,) = self
            .env
            .query(caller, self.canister, method, args)
            .unwrap_or_else(|reject| panic!("{method} was rejected: {reject}"));
        reply
    }

    pub fn open(&mut self, arg: &UploadOpenArg) -> Result<UploadStatus, Error> {
        self.call(operator(), "upload_open", (arg,))
    }

    pub fn chunk(
        &mut self,
        upload_id: u64,
        index: u32,
        bytes: &[u8],
    ) -> Result<UploadStatus, Error> {
        self.call(
            operator(),
            "upload_chunk",
            (chunk_arg(upload_id, index, bytes),),
        )
    }

    pub fn status(&mut self, upload_id: u64) -> Result<UploadStatus, Error> {
        self.query(operator(), "upload_status", (upload_id,))
    }

    pub fn commit(&mut self, upload_id: u64) -> Result<Release, Error> {
        self.call(operator(), "upload_commit", (upload_id,))
    }

    pub fn abort(&mut self, upload_id: u64) -> Result<(), Error> {
        self.call(operator(), "upload_abort", (upload_id,))
    }

    pub fn set_settings(&mut self, update: UploadSettingsUpdate) -> Result<UploadSettings, Error> {
        self.call(admin(), "set_upload_settings", (update,))
    }

    pub fn list(&mut self, before: Option<u64>, limit: Option<u32>) -> ReleasePage {
        self.query(
            stranger(),
            "list_releases",
            (ListReleasesArg { before, limit },),
        )
    }

    pub fn get(&mut self, selector: ReleaseSelector) -> Result<Release, Error> {
        self.query(stranger(), "get_release", (selector,))
    }

    pub fn release_chunk(&mut self, sha256: &[u8], index: u32) -> Result<ByteBuf, Error> {
        let arg = ReleaseChunkArg {
            sha256: ByteBuf::from(sha256.to_vec()),
            index,
        };
        self.query(stranger(), "release_chunk", (arg,))
    }

    pub fn delete(&mut self, sha256: &[u8]) -> Result<(), Error> {
        self.call(
            operator(),
            "delete_release",
            (ByteBuf::from(sha256.to_vec()),),
        )
    }

    pub fn storage_stats(&mut self) -> StorageStats {
        self.query(stranger(), "storage_stats", ())
    }

    /// Opens, sends every chunk in order and commits.
    pub fn upload(
        &mut self,
        module: &[u8],
        chunk_size: usize,
        name: &str,
        version: &str,
    ) -> Release {
        let status = self
            .open(&open_arg(module, Some(chunk_size), name, version))
            .expect("open");
        for (index, chunk) in module.chunks(chunk_size).enumerate() {
            self.chunk(status.upload_id, index as u32, chunk)
                .expect("chunk");
        }
        self.commit(status.upload_id).expect("commit")
    }

    /// Downloads every chunk of a release and joins them.
    pub fn download(&mut self, release: &Release) -> Vec<u8> {
        let mut module = Vec::new();
        for index in 0..release.summary.chunk_count {
            let chunk = self
                .release_chunk(&release.summary.sha256, index)
                .expect("release chunk");
            module.extend_from_slice(&chunk);
        }
        module
    }
}

pub fn open_arg(
    module: &[u8],
    chunk_size: Option<usize>,
    name: &str,
    version: &str,
) -> UploadOpenArg {
    UploadOpenArg {
        sha256: ByteBuf::from(sha256(module).to_vec()),
        size: module.len() as u64,
        chunk_size: chunk_size.map(|size| size as u32),
        name: name.to_string(),
        version: version.to_string(),
        notes: None,
    }
}

pub fn chunk_arg(upload_id: u64, index: u32, bytes: &[u8]) -> UploadChunkArg {
    UploadChunkArg {
        upload_id,
        index,
        bytes: ByteBuf::from(bytes.to_vec()),
    }
}

/// A valid Wasm module of exactly `size` bytes: the header and one custom section named
/// `payload` full of pseudo-random bytes drawn from `seed` (incompressible, distinct per seed).
pub fn wasm_module(size: usize, seed: u64) -> Vec<u8> {
    const HEADER: &[u8] = b"\0asm\x01\x00\x00\x00";
    const NAME: &[u8] = b"payload";
    // id, size (5-byte LEB128, so the layout does not depend on the size), name length, name.
    let framing = HEADER.len() + 1 + 5 + 1 + NAME.len();
    assert!(
        size >= framing,
        "a test module has at least {framing} bytes"
    );
    let body = size - HEADER.len() - 1 - 5;
    let mut module = Vec::with_capacity(size);
    module.extend_from_slice(HEADER);
    module.push(0);
    module.extend_from_slice(&padded_leb128(body as u32));
    module.push(NAME.len() as u8);
    module.extend_from_slice(NAME);
    module.extend(pseudo_random_bytes(size - module.len(), seed));
    module
}

/// A valid Wasm module with `candid:service` metadata.
pub fn wasm_with_candid(service: &str) -> Vec<u8> {
    let name = b"icp:public candid:service";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(service.as_bytes());
    let mut module = b"\0asm\x01\x00\x00\x00".to_vec();
    module.push(0);
    module.extend_from_slice(&padded_leb128(body.len() as u32));
    module.extend_from_slice(&body);
    module
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn padded_leb128(value: u32) -> [u8; 5] {
    let mut bytes = [0; 5];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = ((value >> (7 * i)) & 0x7f) as u8 | if i < 4 { 0x80 } else { 0 };
    }
    bytes
}

/// xorshift64*: deterministic, fast in the dev profile, and incompressible enough.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
