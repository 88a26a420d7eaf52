//! The named scenarios. Each builds its own simulator from a fixed seed and measures one thing
//! as deltas of [`Stats`] around the measured step, so set-up work never counts.

use crate::report::Report;
use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use deployer::chunk_store::sha256;
use deployer::{
    Error, InitArg, Release, StorageStats, UploadChunkArg, UploadOpenArg, UploadStatus,
};
use ic_sim::{artifacts, InstallMode, Sim, SimConfig, Stats};
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

mod rollouts;
mod scale;

type Figures = BTreeMap<String, u64>;

/// A named measurement; each builds its own simulator.
type Scenario = (&'static str, fn() -> Figures);

const SCENARIOS: &[Scenario] = &[
    ("empty_update_call", empty_update_call),
    ("deployer_self_upgrade_empty", deployer_self_upgrade_empty),
    ("deployer_self_upgrade_1_gib", deployer_self_upgrade_1_gib),
    ("deployer_chunk_ingestion_20_mib", deployer_chunk_ingestion),
    ("deployer_commit_20_mib", deployer_commit),
    ("deployer_release_overhead", deployer_release_overhead),
    ("fleet_rollout_200_children", rollouts::two_hundred_children),
    ("fleet_rollout_20_mib_chunked", rollouts::chunked_20_mib),
    (
        "fleet_rollout_1000_children_3_subnets",
        scale::thousand_children,
    ),
    ("fleet_rollout_20_mib_3_subnets", scale::chunked_20_mib),
];

const MIB: usize = 1024 * 1024;

/// Runs every scenario and prints each one's wall time: a figure of the machine, not of the
/// deployer, so it stays out of the report.
pub fn run_all() -> Report {
    Report {
        scenarios: SCENARIOS
            .iter()
            .map(|(name, scenario)| {
                let started = std::time::Instant::now();
                let figures = scenario();
                println!("{name}: {} ms wall", started.elapsed().as_millis());
                (name.to_string(), figures)
            })
            .collect(),
    }
}

fn controller() -> Principal {
    Principal::from_slice(&[0xbe, 0x7c, 0x4e])
}

/// The figures every scenario reports: what the measured step cost.
fn delta(before: &Stats, after: &Stats) -> Figures {
    BTreeMap::from([
        (
            "instructions".to_string(),
            after.instructions - before.instructions,
        ),
        ("messages".to_string(), after.messages - before.messages),
        ("rounds".to_string(), after.rounds - before.rounds),
        (
            "bytes_moved".to_string(),
            after.bytes_moved - before.bytes_moved,
        ),
    ])
}

fn installed(sim: &mut Sim, name: &str, arg: Vec<u8>) -> Principal {
    let canister = sim.create_canister(0, vec![controller()]);
    sim.install_code(
        controller(),
        canister,
        &artifacts::wasm(name),
        arg,
        InstallMode::Install,
    )
    .unwrap_or_else(|e| panic!("install {name}: {e}"));
    canister
}

/// An update call that does nothing but reply: the floor every deployer call stands on.
fn empty_update_call() -> Figures {
    let mut sim = Sim::new(SimConfig::default());
    let probe = installed(&mut sim, "probe", candid::encode_args(()).unwrap());
    let before = sim.stats();
    let arg = candid::encode_one(serde_bytes::ByteBuf::new()).unwrap();
    sim.update_call(controller(), probe, "echo", arg)
        .expect("echo");
    delta(&before, &sim.stats())
}

/// The deployer on a fresh simulator, with `controller()` as its admin.
struct Deployer {
    sim: Sim,
    canister: Principal,
}

impl Deployer {
    fn install() -> Self {
        Self::install_on(SimConfig::default())
    }

    fn install_on(config: SimConfig) -> Self {
        let mut sim = Sim::new(config);
        let init = candid::encode_one(InitArg { admins: None }).unwrap();
        let canister = installed(&mut sim, "deployer", init);
        Self { sim, canister }
    }

    fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        method: &str,
        args: A,
    ) -> R {
        let arg = candid::encode_args(args).unwrap();
        let reply = self
            .sim
            .update_call(controller(), self.canister, method, arg)
            .unwrap_or_else(|reject| panic!("{method}: {reject}"));
        candid::decode_one(&reply).unwrap_or_else(|e| panic!("{method} reply: {e}"))
    }

    fn open(&mut self, module: &[u8]) -> u64 {
        let arg = UploadOpenArg {
            sha256: ByteBuf::from(sha256(module).to_vec()),
            size: module.len() as u64,
            chunk_size: None,
            name: "bench".to_string(),
            version: format!("{:x?}", &sha256(module)[..8]),
            notes: None,
        };
        let status: Result<UploadStatus, Error> = self.call("upload_open", (arg,));
        status.expect("upload_open").upload_id
    }

    fn send_chunks(&mut self, upload_id: u64, module: &[u8]) {
        for (index, bytes) in module.chunks(MIB).enumerate() {
            let arg = UploadChunkArg {
                upload_id,
                index: index as u32,
                bytes: ByteBuf::from(bytes.to_vec()),
            };
            let status: Result<UploadStatus, Error> = self.call("upload_chunk", (arg,));
            status.expect("upload_chunk");
        }
    }

    fn commit(&mut self, upload_id: u64) -> Release {
        let release: Result<Release, Error> = self.call("upload_commit", (upload_id,));
        release.expect("upload_commit")
    }

    fn upload(&mut self, module: &[u8]) -> Release {
        let upload_id = self.open(module);
        self.send_chunks(upload_id, module);
        self.commit(upload_id)
    }

    /// Lets a week pass and runs until idle (the sweep's timer message included), so the sweep
    /// removes the committed uploads' tombstones: per-upload
    /// records that `post_upgrade` reads (about 15 k instructions each) when it schedules the
    /// next sweep, and that the release scenarios should not count.
    fn purge_tombstones(&mut self) {
        self.sim.advance_time(8 * 24 * 3600 * 1_000_000_000);
        self.sim.run_until_idle(100);
        assert_eq!(
            self.sim.canister(self.canister).unwrap().global_timer,
            0,
            "no sweep is pending"
        );
    }

    fn storage_stats(&mut self) -> StorageStats {
        let arg = candid::encode_args(()).unwrap();
        let reply = self
            .sim
            .query_call(controller(), self.canister, "storage_stats", arg)
            .expect("storage_stats");
        candid::decode_one(&reply).expect("storage_stats reply")
    }

    /// Upgrades the deployer to its own Wasm and returns what that cost.
    fn upgrade(&mut self) -> Figures {
        let before = self.sim.stats();
        let upgrade = InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: false,
        };
        self.sim
            .install_code(
                controller(),
                self.canister,
                &artifacts::wasm("deployer"),
                candid::encode_args(()).unwrap(),
                upgrade,
            )
            .expect("deployer upgrade");
        delta(&before, &self.sim.stats())
    }
}

/// A valid Wasm module of `size` bytes: the header and one custom section of pseudo-random
/// (incompressible, distinct per `seed`) bytes.
fn wasm_module(size: usize, seed: u64) -> Vec<u8> {
    const FRAMING: usize = 8 + 1 + 5 + 1; // header, section id, 5-byte size, empty name
    assert!(size >= FRAMING);
    let body = (size - 8 - 1 - 5) as u32;
    let mut module = b"\0asm\x01\x00\x00\x00\x00".to_vec();
    for shift in [0, 7, 14, 21, 28] {
        let more = if shift < 28 { 0x80 } else { 0 };
        module.push(((body >> shift) & 0x7f) as u8 | more);
    }
    module.push(0); // an empty custom section name
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while module.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        module.extend_from_slice(&state.to_le_bytes());
    }
    module.truncate(size);
    module
}

/// The deployer upgrading itself with nothing stored: the baseline of
/// `deployer_self_upgrade_1_gib`.
fn deployer_self_upgrade_empty() -> Figures {
    Deployer::install().upgrade()
}

/// The deployer upgrading itself with 1 GiB of releases (ten 100 MiB modules and one of
/// 24 MiB) stored. Nothing is serialized in an upgrade, so it must cost what the empty upgrade
/// costs (within 5%).
fn deployer_self_upgrade_1_gib() -> Figures {
    let empty = Deployer::install().upgrade()["instructions"];
    let mut deployer = Deployer::install();
    for seed in 0..10 {
        deployer.upload(&wasm_module(100 * MIB, seed));
    }
    deployer.upload(&wasm_module(24 * MIB, 10));
    let stored = deployer.storage_stats().release_bytes;
    assert_eq!(stored, 1024 * MIB as u64);
    deployer.purge_tombstones();
    let mut figures = deployer.upgrade();
    let percent_of_empty = figures["instructions"] * 100 / empty;
    assert!(
        percent_of_empty <= 105,
        "an upgrade with 1 GiB stored costs {percent_of_empty}% of an empty one"
    );
    figures.insert("percent_of_empty_upgrade".to_string(), percent_of_empty);
    figures
}

/// Twenty 1 MiB `upload_chunk` messages; `instructions_per_mib` must stay within 25 M.
fn deployer_chunk_ingestion() -> Figures {
    let mut deployer = Deployer::install();
    let module = wasm_module(20 * MIB, 1);
    let upload_id = deployer.open(&module);
    let before = deployer.sim.stats();
    deployer.send_chunks(upload_id, &module);
    let mut figures = delta(&before, &deployer.sim.stats());
    let per_mib = figures["instructions"] / 20;
    assert!(per_mib <= 25_000_000, "{per_mib} instructions per MiB");
    figures.insert("instructions_per_mib".to_string(), per_mib);
    figures
}

/// Committing a complete 20 MiB upload: SHA-256 of the module and of each chunk, the Wasm
/// walk, and indexing 20 chunks.
fn deployer_commit() -> Figures {
    let mut deployer = Deployer::install();
    let module = wasm_module(20 * MIB, 2);
    let upload_id = deployer.open(&module);
    deployer.send_chunks(upload_id, &module);
    let before = deployer.sim.stats();
    deployer.commit(upload_id);
    let mut figures = delta(&before, &deployer.sim.stats());
    figures.insert(
        "instructions_per_mib".to_string(),
        figures["instructions"] / 20,
    );
    figures
}

/// Stable memory a release takes beyond its module bytes, averaged over 1024 releases of 12345
/// bytes (one chunk in one 64 KiB block): the rounding of chunks to whole blocks (at most one
/// partly filled block per chunk), and the metadata (release record, indexes, chunk index entry
/// and B-tree slack, measured in 64 KiB pages, so to within 64 bytes per release).
fn deployer_release_overhead() -> Figures {
    const RELEASES: u64 = 1024;
    const SIZE: usize = 12_345;
    let mut deployer = Deployer::install();
    let before = deployer.storage_stats().stable_memory_bytes;
    for seed in 0..RELEASES {
        deployer.upload(&wasm_module(SIZE, seed));
    }
    deployer.purge_tombstones();
    let stats = deployer.storage_stats();
    let overhead = stats.stable_memory_bytes - before - stats.release_bytes;
    let block_rounding = stats.block_bytes - stats.chunk_bytes;
    BTreeMap::from([
        (
            "overhead_bytes_per_release".to_string(),
            overhead / RELEASES,
        ),
        (
            "block_rounding_bytes_per_release".to_string(),
            block_rounding / RELEASES,
        ),
        (
            "metadata_bytes_per_release".to_string(),
            (overhead - block_rounding) / RELEASES,
        ),
    ])
}
