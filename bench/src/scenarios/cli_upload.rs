//! A 30 MiB release uploaded through the command line's upload (`deployer_cli::release::
//! upload_module`: ic-agent, the IC's HTTP interface on a loopback port, 4 chunks in flight)
//! against the same bytes uploaded in-process (`deployer_client::Deployer` straight on the
//! simulator). Both move the same messages (open, 30 chunks, commit) and the deployer executes
//! the same instructions per MiB; the served path's wall time is printed beside the in-process
//! one (a figure of the machine, kept out of the report).
//!
//! Self-contained (it returns plain figures), so that `cli/tests/bench_scenario.rs` runs it too.

use std::collections::BTreeMap;
use std::time::Instant;

use candid::Principal;
use deployer::InitArg;
use deployer_cli::connect::{Connection, RootKey};
use deployer_cli::Context;
use deployer_client::modules::wasm_module;
use deployer_client::{Deployer, MIB};
use ic_agent::identity::BasicIdentity;
use ic_agent::Identity;
use ic_local_network::http::serve;
use ic_local_network::setup::{install_deployer_and_fixtures, Controllers};
use ic_local_network::{LocalNetwork, NetworkConfig, RoundDriver, SharedNetwork};
use ic_sim::{Sim, SimConfig, Stats};

const SIZE: usize = 30 * MIB;

fn wall_clock_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos() as u64
}

/// Deployer instructions, messages and bytes between two readings.
fn delta(before: &Stats, after: &Stats) -> (u64, u64, u64) {
    (
        after.instructions - before.instructions,
        after.messages - before.messages,
        after.bytes_moved - before.bytes_moved,
    )
}

pub fn thirty_mib() -> BTreeMap<String, u64> {
    let module = wasm_module(SIZE, 30);
    let identity = BasicIdentity::from_raw_key(&[0x30; 32]);
    let operator = identity.sender().expect("a principal");

    // In-process: the typed client straight on the simulator.
    let mut direct = Deployer::install(
        Sim::new(SimConfig::default()),
        operator,
        InitArg {
            admins: None,
            ..Default::default()
        },
    );
    let before = direct.env.stats();
    let started = Instant::now();
    direct
        .upload(operator, &module, MIB, "bench", "30mib")
        .expect("in-process upload");
    let direct_wall = started.elapsed();
    let (direct_instructions, direct_messages, direct_bytes) = delta(&before, &direct.env.stats());

    // Through the command line's upload: ic-agent over loopback HTTP. Rounds run only for the
    // requests (no clock), so no timer of the deployer's runs between them.
    let mut network = LocalNetwork::new(NetworkConfig {
        sim: SimConfig {
            start_time_nanos: wall_clock_nanos(),
            ..SimConfig::default()
        },
        sync_call_rounds: 30,
    });
    let installed = install_deployer_and_fixtures(
        network.sim_mut(),
        &Controllers {
            installer: operator,
            others: vec![],
            admins: None,
        },
    );
    let root_key = network.root_key().to_vec();
    let shared = SharedNetwork::new(network, RoundDriver::Requests);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    runtime.spawn(serve(shared.clone(), listener));
    let context = Context {
        connection: Connection::new(
            &url,
            RootKey::Key(root_key),
            installed.deployer,
            Box::new(identity),
        )
        .expect("a connection"),
        json: true,
    };
    let _: Principal = context.connection.me;
    let before = shared.lock().sim().stats();
    let started = Instant::now();
    let uploaded =
        deployer_cli::release::upload_module(&context, &module, "bench", "30mib", None, 4)
            .unwrap_or_else(|failure| panic!("upload through the CLI: {failure}"));
    let cli_wall = started.elapsed();
    let (cli_instructions, cli_messages, cli_bytes) = delta(&before, &shared.lock().sim().stats());
    assert_eq!(uploaded.chunks_sent, 30);
    println!(
        "cli_upload_30_mib: {} ms through the CLI over loopback, {} ms in-process ({:.1}x)",
        cli_wall.as_millis(),
        direct_wall.as_millis(),
        cli_wall.as_secs_f64() / direct_wall.as_secs_f64().max(1e-9)
    );
    let mib = (SIZE / MIB) as u64;
    BTreeMap::from([
        ("messages".to_string(), cli_messages),
        ("messages_in_process".to_string(), direct_messages),
        ("instructions_per_mib".to_string(), cli_instructions / mib),
        (
            "instructions_per_mib_in_process".to_string(),
            direct_instructions / mib,
        ),
        (
            "instructions_percent_of_in_process".to_string(),
            (cli_instructions * 100 + direct_instructions / 2) / direct_instructions.max(1),
        ),
        ("bytes_moved".to_string(), cli_bytes),
        ("bytes_moved_in_process".to_string(), direct_bytes),
    ])
}
