//! Starts a local IC network with the deployer and its fixtures installed, serves it on a
//! loopback port until interrupted, and writes where it is to a JSON file:
//! `{"url", "root_key" (hex DER), "deployer", "fixtures": {name: id}}`.

use candid::Principal;
use clap::Parser;
use ic_local_network::http::serve;
use ic_local_network::setup::{install_deployer_and_fixtures, Controllers};
use ic_local_network::{LocalNetwork, NetworkConfig, RoundDriver, SharedNetwork};
use ic_sim::SimConfig;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(about = "A local IC network on the simulator, with the deployer installed")]
struct Args {
    /// Port to serve on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Seed of the simulator and of every key (same seed, same root key).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Application subnets (canisters are installed on the first).
    #[arg(long, default_value_t = 1)]
    subnets: usize,
    /// Real time between rounds, in milliseconds (also the simulated round duration).
    #[arg(long, default_value_t = 500)]
    round_interval_ms: u64,
    /// Rounds a synchronous call waits before answering 202 Accepted.
    #[arg(long, default_value_t = 30)]
    sync_call_rounds: u64,
    /// Extra controller of every installed canister (repeatable), e.g. `icp identity principal`.
    #[arg(long = "controller")]
    controllers: Vec<Principal>,
    /// Initial admin of the deployer (repeatable); default: the first --controller, else the
    /// network's built-in installer principal.
    #[arg(long = "admin")]
    admins: Vec<Principal>,
    /// Do not make the anonymous principal a controller of the installed canisters.
    #[arg(long)]
    no_anonymous_controller: bool,
    /// Where to write the network's description.
    #[arg(long, default_value = ".local-network.json")]
    state_file: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let round_duration = Duration::from_millis(args.round_interval_ms.max(1));
    let mut network = LocalNetwork::new(NetworkConfig {
        sim: SimConfig {
            seed: args.seed,
            subnets: args.subnets,
            start_time_nanos: now,
            round_duration_nanos: round_duration.as_nanos() as u64,
            ..SimConfig::default()
        },
        sync_call_rounds: args.sync_call_rounds,
    });
    let installer = args
        .controllers
        .first()
        .copied()
        .unwrap_or_else(|| Principal::self_authenticating(b"ic-local-network installer"));
    let mut others: Vec<Principal> = args.controllers.iter().skip(1).copied().collect();
    if !args.no_anonymous_controller {
        others.push(Principal::anonymous());
    }
    let installed = install_deployer_and_fixtures(
        network.sim_mut(),
        &Controllers {
            installer,
            others,
            admins: (!args.admins.is_empty()).then(|| args.admins.clone()),
        },
    );
    let root_key = hex::encode(network.root_key());
    let shared = SharedNetwork::new(network, RoundDriver::Clock);

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let fixtures: serde_json::Map<String, serde_json::Value> = installed
            .fixtures
            .iter()
            .map(|(name, id)| (name.clone(), id.to_text().into()))
            .collect();
        let description = serde_json::json!({
            "url": url,
            "root_key": root_key,
            "deployer": installed.deployer.to_text(),
            "fixtures": fixtures,
        });
        std::fs::write(
            &args.state_file,
            serde_json::to_string_pretty(&description)? + "\n",
        )?;
        println!("Local IC network at {url}");
        println!("root key: {root_key}");
        println!("deployer: {}", installed.deployer);
        for (name, id) in &installed.fixtures {
            println!("{name}: {id}");
        }
        println!("written to {}", args.state_file.display());
        let _clock = shared.spawn_clock(round_duration);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            served = serve(shared.clone(), listener) => served?,
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        // A stopped network's description would send clients to a closed port.
        std::fs::remove_file(&args.state_file)?;
        eprintln!("stopped; removed {}", args.state_file.display());
        Ok(())
    })
}
