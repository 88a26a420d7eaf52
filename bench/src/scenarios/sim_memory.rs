//! The simulator's own memory per canister, as it counts it (`Sim::host_memory`: the pages,
//! chunks and module binaries it holds, each counted once however many canisters and snapshots
//! share it): 1,000 idle children, then the same fleet after a rollout that snapshots every child
//! before installing. Deterministic, unlike the process's resident memory; the wall time per
//! canister is printed, not stored.

use super::rollouts::{fleet, roll_out};
use super::{upload, Figures};
use deployer::PolicyArg;
use deployer_client::staged_policy as policy;
use ic_sim::{artifacts, HostMemory, Sim};

const SUBNETS: usize = 3;
const CHILDREN: u64 = 1_000;

/// Per canister: bytes held, page references held (what it would hold, times 4 KiB, without
/// sharing), and the bytes only snapshots hold.
fn per_canister(sim: &Sim, prefix: &str) -> Figures {
    let memory: HostMemory = sim.host_memory();
    let canisters = memory.canisters.max(1);
    Figures::from([
        (
            format!("{prefix}sim_bytes_per_canister"),
            memory.total_bytes() / canisters,
        ),
        (
            format!("{prefix}sim_page_references_per_canister"),
            memory.page_references / canisters,
        ),
        (
            format!("{prefix}sim_snapshot_only_bytes_per_canister"),
            memory.snapshot_only_bytes / canisters,
        ),
    ])
}

/// 1,000 children of child_v1 on three subnets, idle; then upgraded to child_v2 with a snapshot
/// of each taken before its install (canary 10, then 100 at a time).
pub fn thousand_children() -> Figures {
    let started = std::time::Instant::now();
    let mut deployer = fleet(SUBNETS, CHILDREN as usize);
    let mut figures = per_canister(&deployer.env, "idle_");
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    let snapshots = PolicyArg {
        snapshot_before_install: Some(true),
        ..policy(10, vec![], 100)
    };
    let rollout = roll_out(&mut deployer, &release, snapshots);
    assert_eq!(
        rollout["children_upgraded"], CHILDREN,
        "every child upgraded"
    );
    let snapshots_taken: u64 = deployer
        .env
        .canister_ids()
        .iter()
        .filter_map(|id| deployer.env.canister(*id))
        .map(|view| view.snapshots as u64)
        .sum();
    assert!(
        snapshots_taken >= CHILDREN,
        "every child has its snapshot: {snapshots_taken}"
    );
    figures.extend(per_canister(&deployer.env, ""));
    figures.insert(
        "canisters".to_string(),
        deployer.env.host_memory().canisters,
    );
    println!(
        "sim_memory: {} us wall per canister (fleet built and rolled out)",
        started.elapsed().as_micros() / u128::from(CHILDREN)
    );
    figures
}

/// The on-demand fleet run (an ignored test).
#[cfg(test)]
mod on_demand {
    use super::*;
    use crate::report::{Report, ON_DEMAND_PREFIX};
    use crate::scenarios::rollouts::{execution_figures, read_costs};

    /// The process's resident memory now and at its peak (VmRSS, VmHWM), in KiB.
    fn resident_kib() -> (u64, u64) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// As `rollouts::fleet`, with the installs sent 500 at a time: each carries the module, and
    /// 100,000 of them in flight at once would take 15 GB.
    fn batched_fleet(subnets: usize, children: usize) -> crate::scenarios::Deployer {
        let controller = crate::scenarios::controller();
        let mut deployer = crate::scenarios::install_on(ic_sim::SimConfig {
            subnets,
            ..ic_sim::SimConfig::default()
        });
        let child_v1 = artifacts::wasm("child_v1");
        let arg = candid::encode_one(None::<String>).expect("encode the child's argument");
        let subnet_of = |index: usize| index % subnets;
        let mut subnet_children = vec![Vec::new(); subnets];
        for batch in (0..children).collect::<Vec<_>>().chunks(500) {
            let sent: Vec<_> = batch
                .iter()
                .map(|&index| {
                    let child = deployer
                        .env
                        .create_canister(subnet_of(index), vec![controller, deployer.canister]);
                    let install = ic_sim::InstallMode::Install.install_code_payload(
                        child,
                        &child_v1,
                        arg.clone(),
                    );
                    let sent = deployer
                        .env
                        .submit_update(
                            controller,
                            candid::Principal::management_canister(),
                            "install_code",
                            install,
                        )
                        .expect("submit install_code");
                    (index, child, sent)
                })
                .collect();
            for (index, child, sent) in sent {
                deployer
                    .env
                    .await_ingress(sent, 1_000)
                    .expect("install child_v1");
                subnet_children[subnet_of(index)].push(child);
            }
        }
        deployer.adopt_all(controller, &subnet_children);
        for subnet in 1..subnets {
            deployer.register_store(controller, subnet);
        }
        deployer
    }

    fn env_or(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    }

    /// Where the deployer's largest messages are: the 12 largest executions, each with its entry
    /// point, its round and its instructions.
    fn print_largest_executions(deployer: &crate::scenarios::Deployer, from: usize) {
        let mut executions: Vec<(u64, u64, &str)> = deployer.env.trace()[from..]
            .iter()
            .filter_map(|event| match &event.kind {
                ic_sim::TraceKind::Execution {
                    canister,
                    entry,
                    instructions,
                    ..
                } if *canister == deployer.canister && !entry.starts_with("query:") => {
                    Some((*instructions, event.round, entry.as_str()))
                }
                _ => None,
            })
            .collect();
        executions.sort_unstable_by(|a, b| b.cmp(a));
        for (instructions, round, entry) in executions.iter().take(12) {
            println!("largest execution: {instructions} instructions in round {round}: {entry}");
        }
    }

    /// On demand, not in CI: a fleet of `FLEET_CHILDREN` children (default 100,000) on
    /// `FLEET_SUBNETS` subnets (default 10), rolled out to child_v2 with a snapshot of each child
    /// (canary 10, then `FLEET_CONCURRENCY` at a time, default 400); prints the wall time, the peak
    /// resident memory and the simulator's own count of what it holds, per canister, and writes
    /// them into `bench/report.json` as `on_demand_fleet_<children>_children`, with the
    /// deployer's instructions per child, its largest execution and the reads of the finished
    /// rollout (kept there by `--write`, their targets checked by the report's tests).
    ///
    /// `FLEET_CHILDREN=10000 FLEET_CONCURRENCY=100 cargo test --release -p bench --bin bench fleet_on_demand -- --ignored --nocapture`
    /// (`--bin bench`: the report's test needs the bench binary, built with the release
    /// profile's `panic = "abort"`, and its dependencies then collide with the tests' own)
    /// (the report's 10,000-child entry: the concurrency of the 1,000-child scenario, whose bound it shares)
    #[test]
    #[ignore = "on demand: minutes of wall time and gigabytes of memory"]
    fn fleet_on_demand() {
        let children = env_or("FLEET_CHILDREN", 100_000);
        let subnets = env_or("FLEET_SUBNETS", 10) as usize;
        let concurrency = env_or("FLEET_CONCURRENCY", 400) as u32;
        let started = std::time::Instant::now();
        let report = |step: &str, sim: &Sim| {
            let memory = sim.host_memory();
            let (rss, peak) = resident_kib();
            println!(
                "{step} after {:.0} s: {} canisters, round {}; resident {} MiB (peak {} MiB), {} bytes \
                 per canister; simulator holds {} bytes per canister ({} page references, {} bytes \
                 only in snapshots)",
                started.elapsed().as_secs_f64(),
                memory.canisters,
                sim.round(),
                rss / 1024,
                peak / 1024,
                rss * 1024 / memory.canisters.max(1),
                memory.total_bytes() / memory.canisters.max(1),
                memory.page_references / memory.canisters.max(1),
                memory.snapshot_only_bytes / memory.canisters.max(1),
            );
        };
        let mut deployer = batched_fleet(subnets, children as usize);
        report("fleet built", &deployer.env);
        let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
        let policy = PolicyArg {
            snapshot_before_install: Some(true),
            ..policy(10, vec![], concurrency)
        };
        let controller = crate::scenarios::controller();
        let mut arg = deployer::StartRolloutArg {
            plan_sha256: None,
            release: deployer::ReleaseSelector::Sha256(release.summary.sha256.clone()),
            selector: deployer::Selector::All,
            policy: Some(policy),
        };
        // What a proposer does first: the preview, prepared a slice per message; then the
        // preview and the validator read it, and the start is pinned to it.
        let prepare_from = deployer.env.trace().len();
        let prepared = deployer.preview_or_prepare(controller, arg.clone());
        let prepared = prepared.expect("prepare_rollout");
        let preparing: Vec<u64> = deployer
            .replicated_executions(prepare_from)
            .map(|(_, instructions)| instructions)
            .collect();
        println!(
            "prepare_rollout: {} messages, the last three {:?}",
            preparing.len(),
            &preparing[preparing.len().saturating_sub(3)..]
        );
        deployer.preview_rollout_ok(controller, arg.clone());
        let prepared_preview = deployer.env.last_instructions(deployer.canister);
        arg.plan_sha256 = Some(prepared.plan_sha256);
        report("prepared", &deployer.env);
        let rollout_started = std::time::Instant::now();
        let rounds_before = deployer.env.round();
        let trace_from = deployer.env.trace().len();
        let mut next_report = rounds_before + 1_000;
        let rollout_id = deployer.start_rollout_ok(controller, arg).rollout_id;
        // Reads cost instructions and wall time too: look every 100 rounds.
        let info = loop {
            let info = deployer.get_rollout_ok(crate::scenarios::controller(), rollout_id);
            if info.summary.finished_at.is_some() {
                break info;
            }
            for _ in 0..100 {
                deployer.env.tick();
            }
            if deployer.env.round() >= next_report {
                report("rolling out", &deployer.env);
                next_report += 1_000;
            }
        };
        assert_eq!(u64::from(info.summary.counts.upgraded), children);
        report("rolled out", &deployer.env);
        let rounds = deployer.env.round() - rounds_before;
        let wall = rollout_started.elapsed();
        println!(
            "rollout of {children} children on {subnets} subnets: {rounds} rounds, {:.0} s wall \
             ({} us per child); total {:.0} s wall",
            wall.as_secs_f64(),
            wall.as_micros() / u128::from(children),
            started.elapsed().as_secs_f64(),
        );
        let mut figures = execution_figures(&mut deployer, trace_from, children);
        print_largest_executions(&deployer, trace_from);
        figures.extend(read_costs(&mut deployer, rollout_id));
        figures.extend(per_canister(&deployer.env, ""));
        let canisters = deployer.env.host_memory().canisters;
        let (_, peak_kib) = resident_kib();
        figures.extend([
            (
                "prepare_rollout_messages".to_string(),
                preparing.len() as u64,
            ),
            (
                "prepare_rollout_largest_message_instructions".to_string(),
                preparing.iter().copied().max().unwrap_or(0),
            ),
            (
                "preview_rollout_prepared_instructions".to_string(),
                prepared_preview,
            ),
            ("children".to_string(), children),
            ("subnets".to_string(), subnets as u64),
            ("max_concurrency".to_string(), u64::from(concurrency)),
            ("rounds".to_string(), rounds),
            ("peak_resident_bytes".to_string(), peak_kib * 1024),
            (
                "peak_resident_bytes_per_canister".to_string(),
                peak_kib * 1024 / canisters.max(1),
            ),
            (
                "rollout_wall_micros_per_child".to_string(),
                (wall.as_micros() / u128::from(children)) as u64,
            ),
            (
                "total_wall_seconds".to_string(),
                started.elapsed().as_secs(),
            ),
        ]);
        let name = format!("{ON_DEMAND_PREFIX}fleet_{children}_children");
        for (figure, value) in &figures {
            println!("{name}.{figure} = {value}");
        }
        let path = crate::report_path();
        let mut report = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| Report::from_json(&text).ok())
            .unwrap_or_default();
        report.scenarios.insert(name, figures);
        std::fs::write(&path, report.to_json()).expect("write bench report");
        println!("wrote {}", path.display());
    }
}
