//! Host memory per idle canister: creates N children of the `child` fixture (N from the first
//! argument, default 2,000), then snapshots each, and prints the process's resident memory
//! (VmRSS, VmHWM) per canister after each step.
//!
//! `cargo run --release -p ic-sim --example idle_memory -- 2000`

use candid::Principal;
use ic_management_canister_types::TakeCanisterSnapshotArgs;
use ic_sim::{artifacts, InstallMode, MessageId, Sim, SimConfig};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(step: &str, n: u64, rss_before: u64, sim: &Sim) {
    let rss = status_kib("VmRSS:");
    let hwm = status_kib("VmHWM:");
    println!(
        "{step}: VmRSS {} MiB, VmHWM {} MiB, {} bytes RSS per canister, sim-counted {} bytes per canister",
        rss / 1024,
        hwm / 1024,
        (rss.saturating_sub(rss_before)) * 1024 / n,
        sim.host_bytes() / n,
    );
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let controller = Principal::from_slice(&[0xbe, 0x7c, 0x4e]);
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        ..SimConfig::default()
    });
    let child_v1 = artifacts::wasm("child_v1");
    // Compile once before measuring (the compiled module is shared by every canister).
    let warm = sim.create_canister(0, vec![controller]);
    let arg = candid::encode_one(None::<String>).unwrap();
    sim.install_code(
        controller,
        warm,
        &child_v1,
        arg.clone(),
        InstallMode::Install,
    )
    .unwrap();
    let rss_before = status_kib("VmRSS:");
    println!("before: VmRSS {} MiB", rss_before / 1024);
    let started = std::time::Instant::now();
    let mut children = Vec::new();
    for batch in 0..n.div_ceil(500) {
        let sent: Vec<(Principal, MessageId)> = (batch * 500..((batch + 1) * 500).min(n))
            .map(|i| {
                let child = sim.create_canister((i % 2) as usize, vec![controller]);
                let install =
                    InstallMode::Install.install_code_payload(child, &child_v1, arg.clone());
                let id = sim
                    .submit_update(
                        controller,
                        Principal::management_canister(),
                        "install_code",
                        install,
                    )
                    .unwrap();
                (child, id)
            })
            .collect();
        for (child, id) in sent {
            sim.await_ingress(id, 1_000).expect("install");
            children.push(child);
        }
    }
    println!("installed {n} in {} ms", started.elapsed().as_millis());
    report("idle after install", n, rss_before, &sim);
    let started = std::time::Instant::now();
    for child in &children {
        let _: Vec<u8> = sim
            .update_call(
                controller,
                *child,
                "increment",
                candid::encode_args(()).unwrap(),
            )
            .expect("increment");
    }
    println!("one update each in {} ms", started.elapsed().as_millis());
    report("after one update each", n, rss_before, &sim);
    let started = std::time::Instant::now();
    for child in &children {
        let arg = TakeCanisterSnapshotArgs {
            canister_id: *child,
            replace_snapshot: None,
            uninstall_code: None,
            sender_canister_version: None,
        };
        sim.update_call(
            controller,
            Principal::management_canister(),
            "take_canister_snapshot",
            candid::encode_one(arg).unwrap(),
        )
        .expect("take_canister_snapshot");
    }
    println!("snapshots in {} ms", started.elapsed().as_millis());
    report("after a snapshot each", n, rss_before, &sim);
}
