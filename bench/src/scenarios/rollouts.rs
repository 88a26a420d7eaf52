//! Fleet rollouts: what upgrading children costs the deployer (instructions per child), how
//! many rounds a staged rollout takes, and the bytes a chunked release moves.

use super::{delta, wasm_module, Deployer, Figures, MIB};
use candid::Principal;
use deployer::fleet::{ChildInfo, Selector};
use deployer::rollout::{WavePlan, WaveSize};
use deployer::rollouts::{AdoptChildrenArg, PolicyArg, RolloutInfo, StartRolloutArg};
use deployer::{Error, Release, ReleaseSelector, StorageStats};
use ic_sim::{artifacts, InstallMode, MessageId, SimConfig, TraceKind};
use std::collections::BTreeMap;

/// A deployer on subnet 0 of `subnets` subnets, with `children` children running child_v1
/// spread as evenly as possible over them (the first subnets take the remainder), adopted, and
/// a registered chunk store on every other subnet (the deployer serves its own).
pub(super) fn fleet(subnets: usize, children: usize) -> Deployer {
    let mut deployer = Deployer::install_on(SimConfig {
        subnets,
        ..SimConfig::default()
    });
    let child_v1 = artifacts::wasm("child_v1");
    let arg = candid::encode_one(None::<String>).unwrap();
    // Every install is sent before any is awaited: they run side by side in a few rounds,
    // where one at a time takes a round each.
    let installs: Vec<(usize, Principal, MessageId)> = (0..subnets)
        .flat_map(|subnet| {
            let on_subnet = children / subnets + usize::from(subnet < children % subnets);
            std::iter::repeat_n(subnet, on_subnet)
        })
        .map(|subnet| {
            let child = deployer
                .sim
                .create_canister(subnet, vec![super::controller(), deployer.canister]);
            let install = InstallMode::Install.install_code_payload(child, &child_v1, arg.clone());
            let sent = deployer
                .sim
                .submit_update(
                    super::controller(),
                    Principal::management_canister(),
                    "install_code",
                    install,
                )
                .expect("submit install_code");
            (subnet, child, sent)
        })
        .collect();
    for &(_, _, sent) in &installs {
        deployer
            .sim
            .await_ingress(sent, 100)
            .expect("install child_v1");
    }
    for subnet in 0..subnets {
        let on_subnet: Vec<Principal> = installs
            .iter()
            .filter(|(on, _, _)| *on == subnet)
            .map(|&(_, child, _)| child)
            .collect();
        let subnet_id = deployer.sim.subnet_id(subnet);
        for batch in on_subnet.chunks(100) {
            let arg = AdoptChildrenArg {
                canister_ids: batch.to_vec(),
                subnet: Some(subnet_id),
                labels: Vec::new(),
            };
            let adopted: Result<Vec<Result<ChildInfo, Error>>, Error> =
                deployer.call("adopt_children", (arg,));
            for child in adopted.expect("adopt_children") {
                child.expect("adopt a child");
            }
        }
    }
    for subnet in 1..subnets {
        let store = deployer
            .sim
            .create_canister(subnet, vec![deployer.canister]);
        let subnet_id = deployer.sim.subnet_id(subnet);
        let registered: Result<(), Error> =
            deployer.call("register_chunk_store", (subnet_id, store));
        registered.expect("register_chunk_store");
    }
    deployer
}

/// Rounds after which a rollout counts as stuck: far beyond any scenario's.
const STUCK_AFTER_ROUNDS: u64 = 20_000;

/// Starts a rollout of `release` to every child and ticks until it finished; returns the
/// figures of that span, with the deployer's own instructions per upgraded child.
pub(super) fn roll_out(deployer: &mut Deployer, release: &Release, policy: PolicyArg) -> Figures {
    let memory_before = deployer_memory(deployer);
    let before = deployer.sim.stats();
    let trace_from = deployer.sim.trace().len();
    let start_round = deployer.sim.round();
    let arg = StartRolloutArg {
        release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
        selector: Selector::All,
        policy: Some(policy),
    };
    let started: Result<RolloutInfo, Error> = deployer.call("start_rollout", (arg,));
    let rollout_id = started.expect("start_rollout").rollout_id;
    let upgraded = loop {
        let reply = deployer
            .sim
            .query_call(
                super::controller(),
                deployer.canister,
                "get_rollout",
                candid::encode_one(rollout_id).unwrap(),
            )
            .expect("get_rollout");
        let info: Result<RolloutInfo, Error> = candid::decode_one(&reply).unwrap();
        let summary = info.expect("get_rollout").summary;
        if summary.finished_at.is_some() {
            break u64::from(summary.counts.upgraded);
        }
        assert!(
            deployer.sim.round() - start_round < STUCK_AFTER_ROUNDS,
            "rollout {rollout_id} unfinished after {STUCK_AFTER_ROUNDS} rounds: {summary:?}"
        );
        deployer.sim.tick();
    };
    let mut figures = delta(&before, &deployer.sim.stats());
    let deployer_instructions: u64 = replicated_executions(deployer, trace_from).sum();
    figures.insert("children_upgraded".to_string(), upgraded);
    figures.insert(
        "deployer_instructions_per_child".to_string(),
        deployer_instructions / upgraded,
    );
    let (stable_after, heap_after) = deployer_memory(deployer);
    let (stable_before, heap_before) = memory_before;
    figures.insert(
        "deployer_stable_bytes_per_child".to_string(),
        (stable_after - stable_before) / upgraded,
    );
    figures.insert(
        "deployer_heap_bytes_per_child".to_string(),
        (heap_after - heap_before) / upgraded,
    );
    let downtime = child_downtime_rounds(deployer, trace_from);
    figures.insert(
        "child_downtime_rounds_median".to_string(),
        downtime[downtime.len() / 2],
    );
    figures.insert(
        "child_downtime_rounds_max".to_string(),
        *downtime.last().expect("children were stopped"),
    );
    figures
}

/// The deployer's stable memory (as its `storage_stats` counts it, page by page) and Wasm
/// memory, in bytes. Wasm memory never shrinks, so after a rollout it is the rollout's peak.
fn deployer_memory(deployer: &mut Deployer) -> (u64, u64) {
    let reply = deployer
        .sim
        .query_call(
            super::controller(),
            deployer.canister,
            "storage_stats",
            candid::encode_args(()).unwrap(),
        )
        .expect("storage_stats");
    let stats: StorageStats = candid::decode_one(&reply).expect("storage_stats reply");
    let heap = deployer
        .sim
        .canister(deployer.canister)
        .expect("the deployer exists")
        .wasm_memory_size;
    (stats.stable_memory_bytes, heap)
}

/// For each child the deployer stopped since trace position `trace_from`: the rounds from its
/// stop to its start (the time it could not serve its users), sorted.
fn child_downtime_rounds(deployer: &Deployer, trace_from: usize) -> Vec<u64> {
    let mut stopped_at: BTreeMap<Principal, u64> = BTreeMap::new();
    let mut downtime = Vec::new();
    for event in &deployer.sim.trace()[trace_from..] {
        let TraceKind::Management {
            caller,
            method,
            target: Some(child),
            ok: true,
        } = &event.kind
        else {
            continue;
        };
        if *caller != deployer.canister {
            continue;
        }
        match method.as_str() {
            "stop_canister" => {
                stopped_at.insert(*child, event.round);
            }
            "start_canister" => {
                if let Some(stopped) = stopped_at.remove(child) {
                    downtime.push(event.round - stopped);
                }
            }
            _ => {}
        }
    }
    downtime.sort_unstable();
    downtime
}

/// The instructions of each of the deployer's replicated executions since trace position
/// `trace_from`. The queries polling the rollout (and inspect_message) run on one node and are
/// the dashboard's cost, not the rollout's.
pub(super) fn replicated_executions(
    deployer: &Deployer,
    trace_from: usize,
) -> impl Iterator<Item = u64> + '_ {
    deployer.sim.trace()[trace_from..]
        .iter()
        .filter_map(|event| match &event.kind {
            TraceKind::Execution {
                canister,
                instructions,
                entry,
                ..
            } if *canister == deployer.canister
                && !entry.starts_with("query:")
                && !entry.starts_with("inspect_message:") =>
            {
                Some(*instructions)
            }
            _ => None,
        })
}

pub(super) fn policy(canary: u32, then: Vec<WaveSize>, concurrency: u32) -> PolicyArg {
    PolicyArg {
        waves: Some(WavePlan { canary, then }),
        max_concurrency: Some(concurrency),
        bake_nanos: Some(0),
        ..PolicyArg::default()
    }
}

/// 200 children on two subnets, canary 5, then 25 percent, then the rest, 50 at a time.
pub fn two_hundred_children() -> Figures {
    let mut deployer = fleet(2, 200);
    let release = deployer.upload(&artifacts::wasm("child_v2"));
    roll_out(
        &mut deployer,
        &release,
        policy(5, vec![WaveSize::Percent(25)], 50),
    )
}

/// A 20 MiB release (21 chunks) to 4 children on each of two subnets through the chunk
/// stores: `bytes_moved` is about two copies of the module, one per subnet.
pub fn chunked_20_mib() -> Figures {
    let mut deployer = fleet(2, 8);
    let release = deployer.upload(&large_child());
    let mut figures = roll_out(&mut deployer, &release, policy(1, vec![], 4));
    figures.insert("module_bytes".to_string(), release.summary.size);
    figures
}

/// child_v2 with 20 MiB of incompressible custom section appended: a real child, 21 chunks.
pub(super) fn large_child() -> Vec<u8> {
    use std::io::Read;
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(&artifacts::wasm("child_v2")[..])
        .read_to_end(&mut wasm)
        .expect("child_v2 is gzip");
    // A whole module is a valid run of sections: drop its 8-byte header and append.
    let payload = wasm_module(20 * MIB, 20);
    wasm.extend_from_slice(&payload[8..]);
    wasm
}
