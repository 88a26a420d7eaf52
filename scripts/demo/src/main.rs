//! The demo a newcomer watches: a deployer and a fleet of three children on the simulator.
//!
//! Everything runs the real compiled Wasm of `artifacts/` on the simulated IC; nothing is mocked.

use candid::{CandidType, Principal};
use ic_sim::{artifacts, CanisterRunStatus, InstallMode, Sim, SimConfig};

#[derive(CandidType)]
struct DeployerInitArgs {
    admins: Option<Vec<Principal>>,
}

fn operator() -> Principal {
    Principal::from_slice(&[0xde, 0x40])
}

fn short_hash(hash: Option<[u8; 32]>) -> String {
    hash.map(|h| hex::encode(&h[..6]))
        .unwrap_or_else(|| "empty".into())
}

fn call<R: candid::CandidType + for<'de> candid::Deserialize<'de>>(
    sim: &mut Sim,
    canister: Principal,
    method: &str,
) -> R {
    let reply = sim
        .update_call(
            operator(),
            canister,
            method,
            candid::encode_args(()).unwrap(),
        )
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    candid::decode_one(&reply).unwrap_or_else(|e| panic!("{method} reply: {e}"))
}

fn query<R: candid::CandidType + for<'de> candid::Deserialize<'de>>(
    sim: &mut Sim,
    canister: Principal,
    method: &str,
) -> R {
    let reply = sim
        .query_call(
            operator(),
            canister,
            method,
            candid::encode_args(()).unwrap(),
        )
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    candid::decode_one(&reply).unwrap_or_else(|e| panic!("{method} reply: {e}"))
}

fn mgmt(sim: &mut Sim, method: &str, canister: Principal) {
    #[derive(CandidType)]
    struct CanisterIdRecord {
        canister_id: Principal,
    }
    let arg = candid::encode_one(CanisterIdRecord {
        canister_id: canister,
    })
    .unwrap();
    sim.update_call(operator(), Principal::management_canister(), method, arg)
        .unwrap_or_else(|e| panic!("{method}: {e}"));
}

fn print_fleet(sim: &mut Sim, children: &[Principal]) {
    println!(
        "    {:<29} {:<8} {:<8} {:<14} counter",
        "child", "status", "version", "module"
    );
    for &child in children {
        let view = sim.canister(child).expect("child exists");
        let version: String = query(sim, child, "version");
        let counter: u64 = query(sim, child, "counter");
        let status = match view.status {
            CanisterRunStatus::Running => "running",
            CanisterRunStatus::Stopping => "stopping",
            CanisterRunStatus::Stopped => "stopped",
        };
        println!(
            "    {:<29} {:<8} {:<8} {:<14} {counter}",
            child.to_text(),
            status,
            version,
            short_hash(view.module_hash)
        );
    }
}

fn main() {
    let mut sim = Sim::new(SimConfig {
        seed: 7,
        ..SimConfig::default()
    });
    println!("Deployer demo on the IC simulator (seed 7, one subnet, real canister Wasm)\n");

    let deployer = sim.create_canister(0, vec![operator()]);
    let init = candid::encode_one(DeployerInitArgs { admins: None }).unwrap();
    sim.install_code(
        operator(),
        deployer,
        &artifacts::wasm("deployer"),
        init,
        InstallMode::Install,
    )
    .expect("install deployer");
    let view = sim.canister(deployer).unwrap();
    println!(
        "1. Installed the deployer {} (module {}, {} KiB of Wasm heap).",
        deployer.to_text(),
        short_hash(view.module_hash),
        view.wasm_memory_size / 1024
    );

    let children: Vec<Principal> = (0..3)
        .map(|_| {
            let child = sim.create_canister(0, vec![operator(), deployer]);
            sim.install_code(
                operator(),
                child,
                &artifacts::wasm("child_v1"),
                candid::encode_args(()).unwrap(),
                InstallMode::Install,
            )
            .expect("install child");
            child
        })
        .collect();
    for (i, &child) in children.iter().enumerate() {
        for _ in 0..=i {
            let _: u64 = call(&mut sim, child, "increment");
        }
    }
    println!("2. Installed three children running v1 and gave each some state (its counter):");
    print_fleet(&mut sim, &children);

    let target = children[1];
    println!("\n3. Upgrading {} to v2, the safe way:", target.to_text());
    let start_round = sim.round();
    mgmt(&mut sim, "stop_canister", target);
    println!(
        "   - stop_canister: the child is {:?} (round {})",
        sim.canister(target).unwrap().status,
        sim.round()
    );
    sim.install_code(
        operator(),
        target,
        &artifacts::wasm("child_v2"),
        candid::encode_args(()).unwrap(),
        InstallMode::Upgrade {
            skip_pre_upgrade: false,
            keep_wasm_memory: false,
        },
    )
    .expect("upgrade child");
    println!(
        "   - install_code (upgrade): module is now {}",
        short_hash(sim.canister(target).unwrap().module_hash)
    );
    mgmt(&mut sim, "start_canister", target);
    println!(
        "   - start_canister: the child is {:?} again, {} rounds after the stop",
        sim.canister(target).unwrap().status,
        sim.round() - start_round
    );

    println!("\n4. The fleet now; the upgraded child kept its counter in stable memory:");
    print_fleet(&mut sim, &children);

    let stats = sim.stats();
    println!(
        "\nSimulator totals: {} rounds, {} messages, {} instructions, {} bytes moved.",
        stats.rounds, stats.messages, stats.instructions, stats.bytes_moved
    );
}
