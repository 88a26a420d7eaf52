//! The typed client of the deployer canister: the one place that knows how its endpoints are
//! called. The scenario tests, the bench and the demo stand on it; a new endpoint of
//! `candid/deployer.did` is wrapped here once (a test fails while one is missing).
//!
//! - [`Deployer`]: a deployer on an IC reached through a [`Transport`]: the scenario interface
//!   ([`ic_sim::scenario::IcEnv`]: the simulator, PocketIC) through a blanket impl, or an agent on
//!   a real network (the `deployer` CLI's `ic-agent` transport). Every endpoint has a plain method that returns `Result<T, CallError>` (the IC's
//!   reject or the deployer's typed [`deployer::Error`]) and an `_ok` method that expects success,
//!   for tests and set-up code. Both take the caller explicitly, as every IC message has one.
//! - [`modules`]: the one deterministic generator of Wasm modules, and the module builders.
//! - [`fleet`]: on the simulator, children created, given state and adopted, chunk stores
//!   registered, and the child fixture's reads.
//! - [`trace`]: what the simulator's trace says the deployer did.
//! - [`dashboard`]: the deployer's HTTP pages, `/metrics` parsed as Prometheus reads it.
//! - [`governance`]: a DAO's governance as SNS runs generic proposals (the probe canister).
//! - [`snapshots`]: a child's snapshot read through the deployer's proxy and written as
//!   `icp canister snapshot download` writes it.

pub mod dashboard;
mod endpoints;
pub mod fleet;
pub mod governance;
pub mod modules;
pub mod snapshots;
pub mod state_backup;
pub mod trace;

pub use endpoints::{Endpoint, ENDPOINTS};

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::Principal;
use deployer::{Error, InitArg, PolicyArg, Release, RolloutInfo, UpgradeArg, WavePlan, WaveSize};
use ic_sim::scenario::IcEnv;
use ic_sim::{artifacts, InstallMode, Reject};
use serde_bytes::ByteBuf;

/// The largest chunk the deployer takes: 1 MiB, half the ingress limit.
pub const MIB: usize = 1024 * 1024;

/// Why a call did not give the reply it was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The IC refused or rejected the message (the deployer's `canister_inspect_message`, a trap,
    /// a stopped canister); the method did not run to its reply.
    Rejected(Reject),
    /// The method ran and answered with the deployer's typed error.
    Deployer(Error),
    /// The message did not reach the IC or its answer did not come back (network unreachable, an
    /// HTTP error, a certificate that does not verify): only a network transport reports this.
    Transport(String),
}

impl CallError {
    /// The deployer's error; a reject is a test failure here.
    #[track_caller]
    pub fn deployer_error(self) -> Error {
        match self {
            CallError::Deployer(error) => error,
            CallError::Rejected(reject) => panic!("expected the deployer's error, got {reject}"),
            CallError::Transport(error) => panic!("expected the deployer's error, got {error}"),
        }
    }

    /// The IC's reject; a deployer error is a test failure here.
    #[track_caller]
    pub fn reject(self) -> Reject {
        match self {
            CallError::Rejected(reject) => reject,
            CallError::Deployer(error) => panic!("expected a reject, got the deployer's {error}"),
            CallError::Transport(error) => panic!("expected a reject, got {error}"),
        }
    }
}

/// The deployer's answer to a call that reached it: its value or its typed error, with the IC's
/// reject as a test failure. For tests that hold the deployer's errors against expectations.
pub trait Answer<T> {
    fn answer(self) -> Result<T, Error>;
}

impl<T> Answer<T> for Result<T, CallError> {
    #[track_caller]
    fn answer(self) -> Result<T, Error> {
        self.map_err(CallError::deployer_error)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rejected(reject) => write!(f, "{reject}"),
            CallError::Deployer(error) => write!(f, "{error}"),
            CallError::Transport(error) => write!(f, "transport: {error}"),
        }
    }
}

/// How the client's messages reach the IC: an update (awaited to its reply) or a query, as
/// `sender`. Every [`IcEnv`] is one (the simulator, PocketIC); a network client implements it
/// over its agent. The endpoint methods of [`Deployer`] need nothing else.
pub trait Transport {
    fn update_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError>;
    fn query_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError>;
}

impl<T: IcEnv + ?Sized> Transport for T {
    fn update_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        IcEnv::update_raw(self, sender, canister, method, arg).map_err(CallError::Rejected)
    }
    fn query_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        IcEnv::query_raw(self, sender, canister, method, arg).map_err(CallError::Rejected)
    }
}

/// The deployer `canister` on the IC `env`.
pub struct Deployer<E> {
    pub env: E,
    pub canister: Principal,
}

impl<E: IcEnv> Deployer<E> {
    /// Creates a canister on subnet 0 controlled by `controller` and installs the deployer's
    /// Wasm (`artifacts/deployer.wasm.gz`) with `init`.
    pub fn install(env: E, controller: Principal, init: InitArg) -> Self {
        Self::install_wasm(env, controller, init, &artifacts::wasm("deployer"))
    }

    /// As [`Deployer::install`], with another build of the deployer: an earlier release's.
    pub fn install_wasm(mut env: E, controller: Principal, init: InitArg, wasm: &[u8]) -> Self {
        let canister = env.create_canister(0, vec![controller]);
        let mut deployer = Self { env, canister };
        deployer.install_code(controller, init, wasm);
        deployer
    }

    /// Replaces `canister` by a newly created and installed deployer on the same IC.
    pub fn reinstall_fresh(&mut self, controller: Principal, init: InitArg) {
        self.canister = self.env.create_canister(0, vec![controller]);
        self.install_code(controller, init, &artifacts::wasm("deployer"));
    }

    fn install_code(&mut self, controller: Principal, init: InitArg, wasm: &[u8]) {
        let arg = candid::encode_one(init).expect("encode InitArg");
        self.env
            .install_code(controller, self.canister, wasm, arg, InstallMode::Install)
            .expect("install the deployer");
    }

    /// Upgrades the deployer to its own Wasm, as a new release of it would, with `arg` (none
    /// at all when `None`). The deployer refuses while its calls are outstanding: see
    /// [`Deployer::upgrade_stopped`].
    pub fn upgrade(
        &mut self,
        controller: Principal,
        arg: Option<UpgradeArg>,
    ) -> Result<(), Reject> {
        self.upgrade_to(controller, &artifacts::wasm("deployer"), arg)
    }

    /// As [`Deployer::upgrade`], to another build of the deployer.
    pub fn upgrade_to(
        &mut self,
        controller: Principal,
        wasm: &[u8],
        arg: Option<UpgradeArg>,
    ) -> Result<(), Reject> {
        let arg = match arg {
            Some(arg) => candid::encode_one(Some(arg)),
            None => candid::encode_args(()),
        };
        self.env.install_code(
            controller,
            self.canister,
            wasm,
            arg.expect("encode the upgrade argument"),
            InstallMode::Upgrade {
                skip_pre_upgrade: false,
                keep_wasm_memory: false,
            },
        )
    }

    /// The safe upgrade, whatever the deployer is doing: stop it (its outstanding calls finish,
    /// its rollouts wait), upgrade it, start it again (its rollouts go on).
    pub fn upgrade_stopped(
        &mut self,
        controller: Principal,
        arg: Option<UpgradeArg>,
    ) -> Result<(), Reject> {
        self.upgrade_stopped_to(controller, &artifacts::wasm("deployer"), arg)
    }

    /// As [`Deployer::upgrade_stopped`], to another build of the deployer. The deployer is
    /// started again whether the upgrade succeeded or was refused (a refused upgrade keeps the
    /// previous build and its state).
    pub fn upgrade_stopped_to(
        &mut self,
        controller: Principal,
        wasm: &[u8],
        arg: Option<UpgradeArg>,
    ) -> Result<(), Reject> {
        self.env.stop_canister(controller, self.canister)?;
        let upgraded = self.upgrade_to(controller, wasm, arg);
        self.env.start_canister(controller, self.canister)?;
        upgraded
    }

    /// Reads the rollout every round (as `sender`) and executes rounds until `done` holds for it;
    /// more than `max_rounds` rounds is a test failure.
    pub fn run_until(
        &mut self,
        sender: Principal,
        rollout_id: u64,
        max_rounds: u64,
        mut done: impl FnMut(&RolloutInfo) -> bool,
    ) -> RolloutInfo {
        for _ in 0..max_rounds {
            let info = self.get_rollout_ok(sender, rollout_id);
            if done(&info) {
                return info;
            }
            self.env.tick();
        }
        panic!(
            "rollout {rollout_id}: the condition did not hold in {max_rounds} rounds: {:?}",
            self.get_rollout_ok(sender, rollout_id).summary
        );
    }

    /// Executes rounds until the rollout reached a final phase.
    pub fn run_to_end(
        &mut self,
        sender: Principal,
        rollout_id: u64,
        max_rounds: u64,
    ) -> RolloutInfo {
        self.run_until(sender, rollout_id, max_rounds, |info| {
            info.summary.finished_at.is_some()
        })
    }
}

/// What every transport offers: calls by name, and the helpers built on the endpoints.
impl<E: Transport> Deployer<E> {
    /// A call by name: an update as ingress, or a query.
    fn call<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &mut self,
        query: bool,
        sender: Principal,
        method: &str,
        args: A,
    ) -> Result<R, CallError> {
        let arg = candid::encode_args(args).expect("encode Candid arguments");
        let reply = if query {
            Transport::query_raw(&mut self.env, sender, self.canister, method, arg)?
        } else {
            Transport::update_raw(&mut self.env, sender, self.canister, method, arg)?
        };
        Ok(candid::decode_args(&reply)
            .unwrap_or_else(|error| panic!("the reply of `{method}` does not decode: {error}")))
    }

    /// Opens an upload of `module` in chunks of `chunk_size`, sends every chunk in order and
    /// commits.
    pub fn upload(
        &mut self,
        sender: Principal,
        module: &[u8],
        chunk_size: usize,
        name: &str,
        version: &str,
    ) -> Result<Release, CallError> {
        let status = self.upload_open(sender, open_arg(module, Some(chunk_size), name, version))?;
        for (index, bytes) in module.chunks(chunk_size).enumerate() {
            self.upload_chunk(sender, chunk_arg(status.upload_id, index as u32, bytes))?;
        }
        self.upload_commit(sender, status.upload_id)
    }

    /// [`Deployer::upload`], expected to succeed.
    pub fn upload_ok(
        &mut self,
        sender: Principal,
        module: &[u8],
        chunk_size: usize,
        name: &str,
        version: &str,
    ) -> Release {
        self.upload(sender, module, chunk_size, name, version)
            .unwrap_or_else(|error| panic!("upload {name} {version}: {error}"))
    }

    /// Every chunk of `release`, joined.
    pub fn download(&mut self, sender: Principal, release: &Release) -> Result<Vec<u8>, CallError> {
        let mut module = Vec::with_capacity(release.summary.size as usize);
        for index in 0..release.summary.chunk_count {
            let arg = deployer::ReleaseChunkArg {
                sha256: release.summary.sha256.clone(),
                index,
            };
            module.extend_from_slice(&self.release_chunk(sender, arg)?);
        }
        Ok(module)
    }

    /// What `start_rollout(arg)` would do: `preview_rollout`, or, when more children are
    /// selected than a preview plans at once (`PlanNotPrepared`), `prepare_rollout`, which
    /// plans them a slice per message and keeps the preview for the proposal validators too.
    pub fn preview_or_prepare(
        &mut self,
        sender: Principal,
        arg: deployer::StartRolloutArg,
    ) -> Result<deployer::governance::RolloutPreview, CallError> {
        match self.preview_rollout(sender, arg.clone()) {
            Err(CallError::Deployer(error))
                if matches!(error.kind(), deployer::ErrorKind::PlanNotPrepared { .. }) =>
            {
                self.prepare_rollout(sender, arg)
            }
            answer => answer,
        }
    }

    /// Starts a rollout of `release` (by its hash) to the children `selector` picks.
    pub fn start_rollout_of(
        &mut self,
        sender: Principal,
        release: &Release,
        selector: deployer::Selector,
        policy: PolicyArg,
    ) -> Result<RolloutInfo, CallError> {
        self.start_rollout(
            sender,
            deployer::StartRolloutArg {
                plan_sha256: None,
                release: deployer::ReleaseSelector::Sha256(release.summary.sha256.clone()),
                selector,
                policy: Some(policy),
            },
        )
    }
}

/// The argument that opens an upload of `module`.
pub fn open_arg(
    module: &[u8],
    chunk_size: Option<usize>,
    name: &str,
    version: &str,
) -> deployer::UploadOpenArg {
    deployer::UploadOpenArg {
        sha256: ByteBuf::from(modules::sha256(module).to_vec()),
        size: module.len() as u64,
        chunk_size: chunk_size.map(|size| size as u32),
        name: name.to_string(),
        version: version.to_string(),
        notes: None,
    }
}

/// The argument that sends chunk `index` of upload `upload_id`.
pub fn chunk_arg(upload_id: u64, index: u32, bytes: &[u8]) -> deployer::UploadChunkArg {
    deployer::UploadChunkArg {
        upload_id,
        index,
        bytes: ByteBuf::from(bytes.to_vec()),
    }
}

/// A canary of `canary` children, then the waves `then`, then everything else; `concurrency`
/// children at a time; no bake time; the gates [`fixture_gates`] skips.
pub fn staged_policy(canary: u32, then: Vec<WaveSize>, concurrency: u32) -> PolicyArg {
    PolicyArg {
        waves: Some(WavePlan { canary, then }),
        max_concurrency: Some(concurrency),
        bake_nanos: Some(0),
        gate_overrides: fixture_gates(),
        ..PolicyArg::default()
    }
}

/// The upgrade gate a fleet of fixture children fails, and why it may: they run `child_v1`
/// (or another fixture), installed by the scenario rather than rolled out from a release.
pub fn fixture_gates() -> Option<Vec<deployer::GateOverride>> {
    Some(vec![deployer::GateOverride {
        gate: deployer::UpgradeGate::KnownModule,
        reason: "fixture children run a module installed by the scenario, not a release".into(),
    }])
}
