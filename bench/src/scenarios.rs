//! The named scenarios. Each builds its own simulator from a fixed seed and measures one thing
//! as deltas of [`Stats`] around the measured step, so set-up work never counts.

use crate::report::Report;
use candid::Principal;
use deployer::{InitArg, Release, UploadChunkArg, UploadOpenArg};
use deployer_client::modules::{sha256, wasm_module};
use deployer_client::{chunk_arg, MIB};
use ic_sim::{artifacts, InstallMode, Sim, SimConfig, Stats};
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

mod cli_upload;
mod dashboard;
mod gates;
mod network;
mod rollouts;
mod scale;
mod sim_memory;
mod state_export;

type Figures = BTreeMap<String, u64>;

/// A named measurement; each builds its own simulator.
type Scenario = (&'static str, fn() -> Figures);

const SCENARIOS: &[Scenario] = &[
    ("empty_update_call", empty_update_call),
    ("deployer_trivial_calls", deployer_trivial_calls),
    ("deployer_self_upgrade_empty", deployer_self_upgrade_empty),
    ("deployer_self_upgrade_1_gib", deployer_self_upgrade_1_gib),
    ("deployer_chunk_ingestion_20_mib", deployer_chunk_ingestion),
    ("deployer_commit_20_mib", deployer_commit),
    ("deployer_release_overhead", deployer_release_overhead),
    ("fleet_rollout_200_children", rollouts::two_hundred_children),
    (
        "fleet_backup_run_200_children",
        rollouts::backup_run_200_children,
    ),
    ("fleet_rollout_20_mib_chunked", rollouts::chunked_20_mib),
    (
        "fleet_repeated_rollouts_200_children",
        rollouts::repeated_200_children,
    ),
    (
        "fleet_rollout_1000_children_3_subnets",
        scale::thousand_children,
    ),
    ("fleet_rollout_20_mib_3_subnets", scale::chunked_20_mib),
    ("local_network_served_calls", network::served_calls),
    ("cli_upload_30_mib", cli_upload::thirty_mib),
    ("dashboard_10_rollouts", dashboard::ten_rollouts),
    ("upgrade_gates_candid_check", gates::candid_check),
    (
        "sim_memory_1000_children_rollout",
        sim_memory::thousand_children,
    ),
    (
        "deployer_state_export_1000_children",
        state_export::thousand_children,
    ),
];

/// Runs every scenario whose name contains `only` (all of them for `""`) and prints each one's
/// wall time: a figure of the machine, not of the deployer, so it stays out of the report.
///
/// Scenarios run on as many threads as the machine has cores, each taking the next one left:
/// each builds its own simulator, so its figures do not depend on what runs beside it (the
/// check runs in 50 s instead of 98 s on 2 cores).
pub fn run_all(only: &str) -> Report {
    let selected: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|(name, _)| name.contains(only))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let measured = std::sync::Mutex::new(BTreeMap::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(selected.len()) {
            std::thread::Builder::new()
                // The main thread's stack: a canister's deepest calls run on it.
                .stack_size(8 * MIB)
                .spawn_scoped(scope, || loop {
                    let taken = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((name, scenario)) = selected.get(taken) else {
                        break;
                    };
                    let started = std::time::Instant::now();
                    let figures = scenario();
                    println!("{name}: {} ms wall", started.elapsed().as_millis());
                    measured
                        .lock()
                        .expect("no scenario panicked while recording")
                        .insert(name.to_string(), figures);
                })
                .expect("start a bench thread");
        }
    });
    Report {
        scenarios: measured.into_inner().expect("every scenario recorded"),
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

/// The deployer on a fresh simulator: `controller()` installed it and is its admin.
type Deployer = deployer_client::Deployer<Sim>;

fn install() -> Deployer {
    install_on(SimConfig::default())
}

fn install_on(config: SimConfig) -> Deployer {
    Deployer::install(
        Sim::new(config),
        controller(),
        InitArg {
            admins: None,
            ..Default::default()
        },
    )
}

/// Opens an upload of `module` in 1 MiB chunks, named after its hash.
fn open(deployer: &mut Deployer, module: &[u8]) -> u64 {
    let arg = UploadOpenArg {
        sha256: ByteBuf::from(sha256(module).to_vec()),
        size: module.len() as u64,
        chunk_size: None,
        name: "bench".to_string(),
        version: format!("{:x?}", &sha256(module)[..8]),
        notes: None,
    };
    deployer.upload_open_ok(controller(), arg).upload_id
}

fn send_chunks(deployer: &mut Deployer, upload_id: u64, module: &[u8]) {
    for (index, bytes) in module.chunks(MIB).enumerate() {
        let arg: UploadChunkArg = chunk_arg(upload_id, index as u32, bytes);
        deployer.upload_chunk_ok(controller(), arg);
    }
}

fn upload(deployer: &mut Deployer, module: &[u8]) -> Release {
    let upload_id = open(deployer, module);
    send_chunks(deployer, upload_id, module);
    deployer.upload_commit_ok(controller(), upload_id)
}

/// Lets a week pass and runs until idle (the sweep's timer message included), so the sweep
/// removes the committed uploads' tombstones: per-upload records that `post_upgrade` reads
/// (about 15 k instructions each) when it schedules the next sweep, and that the release
/// scenarios should not count.
fn purge_tombstones(deployer: &mut Deployer) {
    deployer.env.advance_time(8 * 24 * 3600 * 1_000_000_000);
    deployer.env.run_until_idle(100);
    // Only the watchdog's timer is left, due within its interval; a sweep would be days away.
    let timer = deployer
        .env
        .canister(deployer.canister)
        .unwrap()
        .global_timer;
    let watchdog = deployer::rollouts::WATCHDOG_INTERVAL_NANOS;
    assert!(
        timer <= deployer.env.time_nanos() + watchdog,
        "no sweep is pending: the deployer's timer is at {timer}"
    );
}

/// Upgrades the deployer to its own Wasm and returns what that cost.
fn upgrade(deployer: &mut Deployer) -> Figures {
    let before = deployer.env.stats();
    deployer
        .upgrade(controller(), None)
        .expect("deployer upgrade");
    delta(&before, &deployer.env.stats())
}

/// Calls that do next to nothing, once the deployer has answered each reply type before (the
/// Candid type table of a reply is encoded once per heap): an update that changes nothing
/// (`add_role` for a role held), the typed error of a query (`get_rollout` of no rollout), and
/// `version`.
fn deployer_trivial_calls() -> Figures {
    let mut deployer = install();
    let instructions = |deployer: &mut Deployer, call: &dyn Fn(&mut Deployer)| {
        call(deployer);
        call(deployer);
        deployer.env.last_instructions(deployer.canister)
    };
    let add_role_held = instructions(&mut deployer, &|deployer| {
        deployer.add_role_ok(controller(), controller(), deployer::Role::Admin);
    });
    let error_reply = instructions(&mut deployer, &|deployer| {
        let refused = deployer.get_rollout(controller(), 7);
        assert!(
            matches!(refused, Err(deployer_client::CallError::Deployer(_))),
            "there is no rollout 7"
        );
    });
    let version = instructions(&mut deployer, &|deployer| {
        deployer.version_ok(controller());
    });
    BTreeMap::from([
        ("add_role_held_instructions".to_string(), add_role_held),
        ("error_reply_instructions".to_string(), error_reply),
        ("version_instructions".to_string(), version),
    ])
}

/// The deployer upgrading itself with nothing stored: the baseline of
/// `deployer_self_upgrade_1_gib`.
fn deployer_self_upgrade_empty() -> Figures {
    upgrade(&mut install())
}

/// The deployer upgrading itself with 1 GiB of releases (ten 100 MiB modules and one of
/// 24 MiB) stored. Nothing is serialized in an upgrade, so it must cost what the empty upgrade
/// costs (within 5%).
fn deployer_self_upgrade_1_gib() -> Figures {
    let empty = upgrade(&mut install())["instructions"];
    let mut deployer = install();
    for seed in 0..10 {
        upload(&mut deployer, &wasm_module(100 * MIB, seed));
    }
    upload(&mut deployer, &wasm_module(24 * MIB, 10));
    let stored = deployer.storage_stats_ok(controller()).release_bytes;
    assert_eq!(stored, 1024 * MIB as u64);
    purge_tombstones(&mut deployer);
    let mut figures = upgrade(&mut deployer);
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
    let mut deployer = install();
    let module = wasm_module(20 * MIB, 1);
    let upload_id = open(&mut deployer, &module);
    let before = deployer.env.stats();
    send_chunks(&mut deployer, upload_id, &module);
    let mut figures = delta(&before, &deployer.env.stats());
    let per_mib = figures["instructions"] / 20;
    assert!(per_mib <= 25_000_000, "{per_mib} instructions per MiB");
    figures.insert("instructions_per_mib".to_string(), per_mib);
    figures
}

/// Committing a complete 20 MiB upload: SHA-256 of the module and of each chunk, the Wasm
/// walk, and indexing 20 chunks.
fn deployer_commit() -> Figures {
    let mut deployer = install();
    let module = wasm_module(20 * MIB, 2);
    let upload_id = open(&mut deployer, &module);
    send_chunks(&mut deployer, upload_id, &module);
    let before = deployer.env.stats();
    deployer.upload_commit_ok(controller(), upload_id);
    let mut figures = delta(&before, &deployer.env.stats());
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
    let mut deployer = install();
    let more_than_the_default_quota = deployer::UploadSettingsUpdate {
        max_releases: Some(RELEASES as u32),
        ..Default::default()
    };
    deployer.set_upload_settings_ok(controller(), more_than_the_default_quota);
    let before = deployer.storage_stats_ok(controller()).stable_memory_bytes;
    for seed in 0..RELEASES {
        upload(&mut deployer, &wasm_module(SIZE, seed));
    }
    purge_tombstones(&mut deployer);
    let stats = deployer.storage_stats_ok(controller());
    // `storage_stats` answers from running totals: under 1 % of a query's 5 B instructions
    // however many releases there are (a scan of 1,024 releases cost 60.6 M).
    let stats_instructions = deployer.env.last_instructions(deployer.canister);
    assert!(stats_instructions < 50_000_000, "{stats_instructions}");
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
        (
            "storage_stats_instructions_1024_releases".to_string(),
            stats_instructions,
        ),
    ])
}
