//! The demo a newcomer watches: a deployer, a release uploaded into it, and a fleet of three
//! children on the simulator.
//!
//! Everything runs the real compiled Wasm of `artifacts/` on the simulated IC; nothing is mocked.

use candid::{CandidType, Principal};
use deployer::{
    AdoptChildrenArg, CallResult, ChildHistoryArg, ChildState, FailureBudget, GateOverride,
    InitArg, Label, ListReleasesArg, PolicyArg, Release, RollbackCause, Selector, StepRecord,
    UpgradeGate, Verdict, WavePlan, WaveSize,
};
use deployer_client::fleet::{child_counter, child_version};
use deployer_client::{chunk_arg, open_arg, MIB};
use ic_sim::scenario::IcEnvExt;
use ic_sim::{
    artifacts, CanisterRunStatus, Fault, FaultCount, InstallMode, RejectCode, Sim, SimConfig,
};

type Deployer = deployer_client::Deployer<Sim>;

fn operator() -> Principal {
    Principal::from_slice(&[0xde, 0x40])
}

fn short_hash(hash: Option<[u8; 32]>) -> String {
    hash.map(|h| hex::encode(&h[..6]))
        .unwrap_or_else(|| "empty".into())
}

/// Uploads `module` as release `name` `version` in 1 MiB chunks and narrates the progress.
fn upload_release(deployer: &mut Deployer, name: &str, version: &str, module: &[u8]) -> Release {
    let open = deployer::UploadOpenArg {
        notes: Some("uploaded by the demo".to_string()),
        ..open_arg(module, Some(MIB), name, version)
    };
    let status = deployer.upload_open_ok(operator(), open);
    println!(
        "   - upload_open: upload {} expects {} chunks of up to {} KiB",
        status.upload_id,
        status.chunk_count,
        status.chunk_size / 1024
    );
    for (index, bytes) in module.chunks(MIB).enumerate() {
        let progress =
            deployer.upload_chunk_ok(operator(), chunk_arg(status.upload_id, index as u32, bytes));
        println!(
            "   - upload_chunk {index}: {:>9} of {} bytes received ({:>3}%), missing {:?}",
            progress.bytes_received,
            progress.size,
            progress.bytes_received * 100 / progress.size,
            progress.missing_chunks
        );
    }
    let release = deployer.upload_commit_ok(operator(), status.upload_id);
    let summary = &release.summary;
    println!(
        "   - upload_commit: release {} {} = module {}, {:?}, {} bytes ({} uncompressed), \
         Candid interface {}",
        summary.name,
        summary.version,
        hex::encode(&summary.sha256[..6]),
        summary.encoding,
        summary.size,
        summary.uncompressed_size,
        if summary.has_candid_service {
            "recorded"
        } else {
            "absent"
        }
    );
    for (index, hash) in release.chunk_sha256.iter().enumerate() {
        println!("     chunk {index} sha256 {}", hex::encode(hash));
    }
    release
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
        let version = child_version(sim, operator(), child);
        let counter = child_counter(sim, operator(), child);
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

/// One history line: the step, why it ran, which try, and how it ended.
fn describe_step(record: &StepRecord) -> String {
    let result = match &record.result {
        Some(CallResult::Replied) => "replied".to_string(),
        Some(CallResult::Rejected { code, message }) => {
            format!("REJECTED (code {code}: {message})")
        }
        Some(CallResult::Unknown) => "outcome unknown".to_string(),
        None => "in flight".to_string(),
    };
    format!(
        "{:<9} {:<13} try {} -> {result}",
        format!("{:?}", record.path),
        format!("{:?}", record.step),
        record.attempt
    )
}

/// Prints what the deployer recorded for `child` in the rollout: its verdict and every step.
fn print_child_history(deployer: &mut Deployer, rollout_id: u64, child: Principal) {
    let arg = ChildHistoryArg {
        rollout_id,
        canister_id: child,
        from: None,
        limit: None,
    };
    let history = deployer.child_history_ok(operator(), arg);
    let verdict = match &history.state {
        ChildState::Finished(Verdict::RolledBack(RollbackCause::Failure(failure))) => format!(
            "rolled back because its {:?} failed after {} attempt(s): {:?}",
            failure.step, failure.attempts, failure.kind
        ),
        other => format!("{other:?}"),
    };
    println!(
        "   - child_history of {}: wave {}, {verdict}",
        child.to_text(),
        history.wave.map_or(0, |wave| wave + 1)
    );
    for record in &history.steps {
        println!("       {}", describe_step(record));
    }
}

/// Adopts the children and five more, releases child_v3, and lets the deployer roll it out in
/// waves (one canary, then half of the rest, then the rest; two children at a time), printing
/// a progress line per round. The first start of `refused` after its install is refused, so the
/// deployer rolls that child back from the snapshot it took before the install.
fn staged_rollout(deployer: &mut Deployer, first: &[Principal], refused: Principal) {
    let mut children = first.to_vec();
    children.extend(deployer.create_children(operator(), &[5]).concat());
    let adopt = AdoptChildrenArg {
        canister_ids: children.clone(),
        subnet: None,
        labels: vec![Label::new("tier", "demo")],
    };
    let adopted = deployer.adopt_children_ok(operator(), adopt);
    let adopted = adopted.iter().filter(|result| result.is_ok()).count();
    println!(
        "\n6. A staged rollout by the deployer: {adopted} children adopted (the deployer read each \
         one's status: it is a controller), child_v3 released:"
    );
    let v3 = artifacts::wasm("child_v3");
    let release = upload_release(deployer, "child", "v3", &v3);
    let policy = PolicyArg {
        waves: Some(WavePlan {
            canary: 1,
            then: vec![WaveSize::Percent(50)],
        }),
        max_concurrency: Some(2),
        bake_nanos: Some(2_000_000_000),
        // The injected failure below is tolerated, so the rollout goes on after it.
        failure_budget: Some(FailureBudget::Count(1)),
        ..PolicyArg::default()
    };
    let selector = Selector::Labels(vec![Label::new("tier", "demo")]);
    // The children run modules installed by hand, not releases: the KnownModule gate refuses
    // the rollout before touching any, and an override with a reason lets it through.
    let gate_closed = deployer
        .start_rollout_of(operator(), &release, selector.clone(), policy.clone())
        .expect_err("the KnownModule gate refuses");
    println!("   - start_rollout refused: {gate_closed}");
    let policy = PolicyArg {
        gate_overrides: Some(vec![GateOverride {
            gate: UpgradeGate::KnownModule,
            reason: "the demo installed v1 and v2 by hand".into(),
        }]),
        ..policy
    };
    let started = deployer
        .start_rollout_of(operator(), &release, selector, policy)
        .expect("start_rollout");
    let sizes: Vec<u32> = started.summary.waves.iter().map(|wave| wave.size).collect();
    println!(
        "   - start_rollout, the KnownModule gate skipped (\"the demo installed v1 and v2 by \
         hand\"): rollout {} in waves of {sizes:?}, 2 children at a time, 2 s bake, one failure \
         per wave tolerated",
        started.rollout_id
    );
    // A permanent reject (not retried): the child is installed but cannot run the release, so
    // the deployer's policy (on failure: roll back) restores it from its pre-install snapshot.
    deployer.env.inject(Fault::RejectManagement {
        method: "start_canister".into(),
        targets: vec![refused],
        code: RejectCode::CanisterError,
        message: "injected: start refused".into(),
        count: FaultCount::Times(1),
    });
    println!(
        "   - injecting: start_canister of {} will be refused once",
        refused.to_text()
    );
    let info = loop {
        deployer.env.tick();
        let info = deployer.get_rollout_ok(operator(), started.rollout_id);
        let summary = &info.summary;
        println!(
            "     round {:>3}: {:<9} wave {} | upgraded {}/{} rolled back {} active {} in flight {}",
            deployer.env.round(),
            format!("{:?}", summary.phase),
            summary.current_wave.map_or(0, |wave| wave + 1),
            summary.counts.upgraded,
            children.len(),
            summary.counts.rolled_back,
            summary.counts.active,
            summary.in_flight
        );
        if summary.finished_at.is_some() {
            break info;
        }
    };
    let summary = &info.summary;
    let seconds = (summary.finished_at.unwrap() - summary.started_at) / 1_000_000_000;
    println!(
        "   - {:?} in {seconds} s: {} upgraded, {} rolled back, {} failed, {} skipped; every \
         upgraded child was stopped, snapshotted, upgraded, started and verified:",
        summary.phase,
        summary.counts.upgraded,
        summary.counts.rolled_back,
        summary.counts.failed,
        summary.counts.skipped
    );
    print_fleet(&mut deployer.env, &children);
    println!(
        "\n7. The injected failure: the deployer loaded {}'s pre-install snapshot, started it \
         and verified its previous module:",
        refused.to_text()
    );
    print_child_history(deployer, started.rollout_id, refused);
    println!("   - the child now: back on the module and counter it had in step 5");
    print_fleet(&mut deployer.env, &[refused]);
}

fn main() {
    let sim = Sim::new(SimConfig {
        seed: 7,
        ..SimConfig::default()
    });
    println!("Deployer demo on the IC simulator (seed 7, one subnet, real canister Wasm)\n");

    let mut deployer = Deployer::install(
        sim,
        operator(),
        InitArg {
            admins: None,
            ..Default::default()
        },
    );
    let view = deployer.env.canister(deployer.canister).unwrap();
    println!(
        "1. Installed the deployer {} (module {}, {} KiB of Wasm heap).",
        deployer.canister.to_text(),
        short_hash(view.module_hash),
        view.wasm_memory_size / 1024
    );

    let large = artifacts::wasm("child_large");
    println!(
        "\n2. Uploading child_large ({} bytes of gzipped Wasm, more than one 2 MiB ingress \
         message holds) as a release:",
        large.len()
    );
    upload_release(&mut deployer, "child", "large", &large);
    let page = deployer.list_releases_ok(operator(), ListReleasesArg::default());
    let listed: Vec<String> = page
        .releases
        .iter()
        .map(|release| format!("{} {}", release.name, release.version))
        .collect();
    println!("   - list_releases: {listed:?}\n");

    let children = deployer.create_children(operator(), &[3]).concat();
    for (i, &child) in children.iter().enumerate() {
        for _ in 0..=i {
            let _: (u64,) = deployer
                .env
                .update(operator(), child, "increment", ())
                .expect("increment");
        }
    }
    println!("3. Installed three children running v1 and gave each some state (its counter):");
    print_fleet(&mut deployer.env, &children);

    let target = children[1];
    let sim = &mut deployer.env;
    println!("\n4. Upgrading {} to v2, the safe way:", target.to_text());
    let start_round = sim.round();
    mgmt(sim, "stop_canister", target);
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
    mgmt(sim, "start_canister", target);
    println!(
        "   - start_canister: the child is {:?} again, {} rounds after the stop",
        sim.canister(target).unwrap().status,
        sim.round() - start_round
    );

    println!("\n5. The fleet now; the upgraded child kept its counter in stable memory:");
    print_fleet(sim, &children);

    // The child upgraded by hand in step 4: rolled back, it must be on v2 again, not v1.
    staged_rollout(&mut deployer, &children, target);

    let stats = deployer.env.stats();
    println!(
        "\nSimulator totals: {} rounds, {} messages, {} instructions, {} bytes moved.",
        stats.rounds, stats.messages, stats.instructions, stats.bytes_moved
    );
}
