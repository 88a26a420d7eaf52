//! Shared by the CLI tests: a local network served on loopback from inside the test process
//! (the simulator with the real deployer Wasm and its fixtures), PEM identities as dfx and `icp`
//! write them, and the built `deployer` binary run against it from a directory holding the
//! network's `.local-network.json`.

#![allow(dead_code)] // each test file uses its own part of the support

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use candid::Principal;
use ic_agent::identity::{BasicIdentity, Secp256k1Identity};
use ic_agent::Identity;
use ic_local_network::http::serve;
use ic_local_network::setup::{install_deployer_and_fixtures, Controllers};
use ic_local_network::{LocalNetwork, NetworkConfig, RoundDriver, SharedNetwork};
use ic_sim::{artifacts, InstallMode, SimConfig};

/// A PEM identity on disk and its principal.
pub struct Pem {
    pub path: PathBuf,
    pub principal: Principal,
}

/// An Ed25519 key as `icp identity new` and dfx store it (PKCS #8).
pub fn ed25519_pem(dir: &Path, name: &str, seed: u8) -> Pem {
    let key = ic_ed25519::PrivateKey::generate_from_seed(&[seed; 32]);
    let pem = key.serialize_pkcs8_pem(ic_ed25519::PrivateKeyFormat::Pkcs8v1);
    let principal = BasicIdentity::from_pem(pem.as_bytes())
        .unwrap()
        .sender()
        .unwrap();
    write_pem(dir, name, pem.as_bytes(), principal)
}

/// A secp256k1 key as `EC PRIVATE KEY` (dfx's and `icp --key-type secp256k1`'s format).
pub fn secp256k1_pem(dir: &Path, name: &str, seed: u8) -> Pem {
    let key = ic_secp256k1::PrivateKey::generate_from_seed(&[seed; 32]);
    let pem = key.serialize_rfc5915_pem();
    let principal = Secp256k1Identity::from_pem(pem.as_bytes())
        .unwrap()
        .sender()
        .unwrap();
    write_pem(dir, name, pem.as_bytes(), principal)
}

fn write_pem(dir: &Path, name: &str, pem: &[u8], principal: Principal) -> Pem {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, pem).unwrap();
    Pem { path, principal }
}

/// A network served on a loopback port by this process, and a working directory whose
/// `.local-network.json` points at it. The admin (Ed25519, `admin.pem`) installed everything.
pub struct TestNetwork {
    pub shared: Arc<SharedNetwork>,
    pub url: String,
    pub root_key: String,
    pub deployer: Principal,
    pub child_1: Principal,
    pub child_2: Principal,
    pub dir: PathBuf,
    pub admin: Pem,
    _runtime: tokio::runtime::Runtime,
}

fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

impl TestNetwork {
    /// Rounds every `round_ms` milliseconds of real time.
    pub fn start(name: &str, round_ms: u64) -> TestNetwork {
        let dir = std::env::temp_dir().join(format!("deployer-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let admin = ed25519_pem(&dir, "admin", 1);
        let round = Duration::from_millis(round_ms);
        let mut network = LocalNetwork::new(NetworkConfig {
            sim: SimConfig {
                start_time_nanos: wall_clock_nanos(),
                round_duration_nanos: round.as_nanos() as u64,
                ..SimConfig::default()
            },
            sync_call_rounds: 30,
        });
        let installed = install_deployer_and_fixtures(
            network.sim_mut(),
            &Controllers {
                installer: admin.principal,
                others: vec![],
                admins: None,
            },
        );
        let root_key = hex::encode(network.root_key());
        let shared = SharedNetwork::new(network, RoundDriver::Clock);
        shared.spawn_clock(round);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(serve(shared.clone(), listener));
        let fixture = |name: &str| installed.fixtures[name];
        let description = serde_json::json!({
            "url": url,
            "root_key": root_key,
            "deployer": installed.deployer.to_text(),
            "fixtures": {"child_1": fixture("child_1").to_text(), "child_2": fixture("child_2").to_text()},
        });
        std::fs::write(dir.join(".local-network.json"), description.to_string()).unwrap();
        TestNetwork {
            shared,
            url,
            root_key,
            deployer: installed.deployer,
            child_1: fixture("child_1"),
            child_2: fixture("child_2"),
            dir,
            admin,
            _runtime: runtime,
        }
    }

    /// A new canister on subnet 0 running `artifact`, controlled by the admin and, when
    /// `managed`, by the deployer.
    pub fn create_child(&self, artifact: &str, managed: bool) -> Principal {
        let mut network = self.shared.lock();
        let sim = network.sim_mut();
        let mut controllers = vec![self.admin.principal];
        if managed {
            controllers.push(self.deployer);
        }
        let canister = sim.create_canister(0, controllers);
        sim.install_code(
            self.admin.principal,
            canister,
            &artifacts::wasm(artifact),
            candid::encode_args(()).unwrap(),
            InstallMode::Install,
        )
        .unwrap();
        canister
    }

    /// The CLI as the admin.
    pub fn admin(&self, args: &[&str]) -> Run {
        self.run(Some(&self.admin.path), args)
    }

    /// The CLI as `identity` (anonymous when `None`), in the network's directory.
    pub fn run(&self, identity: Option<&Path>, args: &[&str]) -> Run {
        let mut command = self.command(identity);
        command.args(args);
        Run::from(command.output().unwrap())
    }

    pub fn command(&self, identity: Option<&Path>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
        command.current_dir(&self.dir);
        for var in [
            "DEPLOYER_NETWORK",
            "DEPLOYER_ROOT_KEY",
            "DEPLOYER_CANISTER",
            "DEPLOYER_IDENTITY",
        ] {
            command.env_remove(var);
        }
        if let Some(identity) = identity {
            command.arg("--identity").arg(identity);
        }
        command
    }

    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A finished run of the CLI.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:#?}");
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "{self:#?}");
        self
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:#?}"))
    }

    #[track_caller]
    pub fn stderr_has(self, text: &str) -> Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}: {self:#?}"
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, text: &str) -> Run {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}: {self:#?}"
        );
        self
    }
}

/// The artifact's path, for uploads.
pub fn artifact(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    root.join("artifacts")
        .join(format!("{name}.wasm.gz"))
        .display()
        .to_string()
}

/// Adopts `children` as the admin with `env=prod`, and uploads child_v2 (and child_v1 to name
/// what the children run).
pub fn fleet_and_release(net: &TestNetwork, children: &[String]) {
    let ids: Vec<&str> = children.iter().map(String::as_str).collect();
    net.admin(&[&["fleet", "adopt", "--label", "env=prod"][..], &ids].concat())
        .ok();
    for (name, version) in [("child_v1", "1.0.0"), ("child_v2", "2.0.0")] {
        net.admin(&[
            "release",
            "upload",
            &artifact(name),
            "--name",
            "child",
            "--version",
            version,
        ])
        .ok();
    }
}

/// Reads the rollout until `done` holds (at most 60 s).
pub fn wait_for(
    net: &TestNetwork,
    id: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let info = net
            .admin(&["rollout", "show", &id.to_string(), "--json"])
            .ok()
            .json();
        if done(&info) {
            return info;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "rollout {id}: {info:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The two fixture children adopted on child@1.0.0 with child@2.0.0 uploaded, and child@2.0.1-bad,
/// whose `post_upgrade` traps: a rollout of it fails its canary.
pub fn failing_fleet(net: &TestNetwork) {
    fleet_and_release(net, &[net.child_1.to_text(), net.child_2.to_text()]);
    net.admin(&[
        "release",
        "upload",
        &artifact("child_trap_post_upgrade"),
        "--name",
        "child",
        "--version",
        "2.0.1-bad",
    ])
    .ok();
}
