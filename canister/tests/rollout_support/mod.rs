//! Shared by the rollout scenario tests: the real deployer Wasm and a fleet of real child
//! canisters on the simulator, driven directly (`Sim`), so that tests can read its trace and
//! its counters as well as the deployer's replies.
#![allow(dead_code)]

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use deployer::fleet::{ChildInfo, Label, Selector};
use deployer::rollout::{WavePlan, WaveSize};
use deployer::rollouts::{AdoptChildrenArg, PolicyArg, RolloutInfo, StartRolloutArg};
use deployer::{Error, InitArg, Release, ReleaseSelector, Role};
use ic_sim::scenario::IcEnvExt;
use ic_sim::{artifacts, InstallMode, Sim, SimConfig, TraceKind};
use serde::de::DeserializeOwned;

use crate::support::{admin, open_arg, operator, upgrade_deployer, MIB};

/// The management method the deployer installs children with: every child's subnet has a
/// chunk store in these fleets (the deployer serves its own subnet), so releases go through
/// the stores, one upload per subnet, and each install carries only chunk hashes.
pub const INSTALL_METHOD: &str = "install_chunked_code";

pub struct Fleet {
    pub sim: Sim,
    pub deployer: Principal,
}

impl Fleet {
    /// The deployer on subnet 0 of a simulated IC with `subnets` subnets.
    pub fn new(subnets: usize) -> Self {
        let mut sim = Sim::new(SimConfig {
            subnets,
            ..SimConfig::default()
        });
        let deployer = sim.create_canister(0, vec![admin()]);
        let init = candid::encode_one(InitArg {
            admins: Some(vec![admin()]),
        })
        .unwrap();
        sim.install_code(
            admin(),
            deployer,
            &artifacts::wasm("deployer"),
            init,
            InstallMode::Install,
        )
        .expect("install the deployer");
        let mut fleet = Self { sim, deployer };
        fleet
            .call::<_, Result<(), Error>>(admin(), "add_role", (operator(), Role::Operator))
            .expect("grant Operator");
        fleet
    }

    pub fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        caller: Principal,
        method: &str,
        args: A,
    ) -> R {
        let (reply,): (R,) = self
            .sim
            .update(caller, self.deployer, method, args)
            .unwrap_or_else(|reject| panic!("{method} was rejected: {reject}"));
        reply
    }

    pub fn query<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        method: &str,
        args: A,
    ) -> R {
        let (reply,): (R,) = self
            .sim
            .query(operator(), self.deployer, method, args)
            .unwrap_or_else(|reject| panic!("{method} was rejected: {reject}"));
        reply
    }

    /// `count` children on `subnet` running `child_v1`, controlled by the admin and the
    /// deployer, each incremented `index % 7 + 1` times so their counters differ.
    pub fn create_children(&mut self, subnet: usize, count: usize) -> Vec<Principal> {
        let wasm = artifacts::wasm("child_v1");
        (0..count)
            .map(|index| {
                let child = self
                    .sim
                    .create_canister(subnet, vec![admin(), self.deployer]);
                self.sim
                    .install_code(
                        admin(),
                        child,
                        &wasm,
                        candid::encode_one(None::<String>).unwrap(),
                        InstallMode::Install,
                    )
                    .expect("install child_v1");
                for _ in 0..index % 7 + 1 {
                    let _: (u64,) = self
                        .sim
                        .update(admin(), child, "increment", ())
                        .expect("increment");
                }
                child
            })
            .collect()
    }

    pub fn counter(&mut self, child: Principal) -> u64 {
        let (counter,): (u64,) = self
            .sim
            .query(admin(), child, "counter", ())
            .expect("counter");
        counter
    }

    pub fn version(&mut self, child: Principal) -> String {
        let (version,): (String,) = self
            .sim
            .query(admin(), child, "version", ())
            .expect("version");
        version
    }

    /// Adopts `children` (on `subnet`, or the deployer's own) with `labels`.
    pub fn adopt(
        &mut self,
        children: &[Principal],
        subnet: Option<Principal>,
        labels: &[Label],
    ) -> Vec<Result<ChildInfo, Error>> {
        let arg = AdoptChildrenArg {
            canister_ids: children.to_vec(),
            subnet,
            labels: labels.to_vec(),
        };
        let adopted: Result<Vec<Result<ChildInfo, Error>>, Error> =
            self.call(admin(), "adopt_children", (arg,));
        adopted.expect("adopt_children")
    }

    /// Adopts every child of `subnet_children[i]` as running on subnet `i`.
    pub fn adopt_all(&mut self, subnet_children: &[Vec<Principal>]) {
        for (subnet, children) in subnet_children.iter().enumerate() {
            let subnet_id = self.sim.subnet_id(subnet);
            for batch in children.chunks(100) {
                for adopted in self.adopt(batch, Some(subnet_id), &[]) {
                    adopted.expect("adopt a child");
                }
            }
        }
    }

    /// Registers a new empty canister on `subnet`, controlled by the deployer, as its store.
    pub fn register_store(&mut self, subnet: usize) -> Principal {
        let store = self.sim.create_canister(subnet, vec![self.deployer]);
        let subnet_id = self.sim.subnet_id(subnet);
        let registered: Result<(), Error> =
            self.call(admin(), "register_chunk_store", (subnet_id, store));
        registered.expect("register the chunk store");
        store
    }

    /// Uploads `module` as a release through the deployer's upload methods.
    pub fn release(&mut self, module: &[u8], version: &str) -> Release {
        self.release_in_chunks(module, version, MIB)
    }

    /// Uploads `module` as a release of chunks of `chunk_size` bytes.
    pub fn release_in_chunks(
        &mut self,
        module: &[u8],
        version: &str,
        chunk_size: usize,
    ) -> Release {
        let status: Result<deployer::UploadStatus, Error> = self.call(
            operator(),
            "upload_open",
            (open_arg(module, Some(chunk_size), "child", version),),
        );
        let status = status.expect("open");
        for (index, chunk) in module.chunks(chunk_size).enumerate() {
            let sent: Result<deployer::UploadStatus, Error> = self.call(
                operator(),
                "upload_chunk",
                (crate::support::chunk_arg(
                    status.upload_id,
                    index as u32,
                    chunk,
                ),),
            );
            sent.expect("chunk");
        }
        let release: Result<Release, Error> =
            self.call(operator(), "upload_commit", (status.upload_id,));
        release.expect("commit")
    }

    pub fn start(
        &mut self,
        release: &Release,
        selector: Selector,
        policy: PolicyArg,
    ) -> Result<RolloutInfo, Error> {
        let arg = StartRolloutArg {
            release: ReleaseSelector::Sha256(release.summary.sha256.clone()),
            selector,
            policy: Some(policy),
        };
        self.call(operator(), "start_rollout", (arg,))
    }

    pub fn rollout(&mut self, rollout_id: u64) -> RolloutInfo {
        let info: Result<RolloutInfo, Error> = self.query("get_rollout", (rollout_id,));
        info.expect("get_rollout")
    }

    /// Ticks until the rollout reached a final phase (or `max_rounds` passed: a failure).
    pub fn run_to_end(&mut self, rollout_id: u64, max_rounds: u64) -> RolloutInfo {
        for _ in 0..max_rounds {
            let info = self.rollout(rollout_id);
            if info.summary.finished_at.is_some() {
                return info;
            }
            self.sim.tick();
        }
        panic!(
            "rollout {rollout_id} did not finish in {max_rounds} rounds: {:?}",
            self.rollout(rollout_id).summary
        );
    }

    /// Ticks until `done` holds for the rollout.
    pub fn run_until(
        &mut self,
        rollout_id: u64,
        max_rounds: u64,
        done: impl Fn(&RolloutInfo) -> bool,
    ) -> RolloutInfo {
        for _ in 0..max_rounds {
            let info = self.rollout(rollout_id);
            if done(&info) {
                return info;
            }
            self.sim.tick();
        }
        panic!("the condition did not hold in {max_rounds} rounds");
    }

    /// The management methods the deployer called on `target`, in order, successful or not.
    pub fn management_calls(&self, target: Principal) -> Vec<(String, bool)> {
        self.sim
            .trace()
            .iter()
            .filter_map(|event| match &event.kind {
                TraceKind::Management {
                    caller,
                    method,
                    target: Some(called),
                    ok,
                } if *caller == self.deployer && *called == target => Some((method.clone(), *ok)),
                _ => None,
            })
            .collect()
    }

    /// The successful management calls of the deployer on `target`, without status reads.
    pub fn effects_on(&self, target: Principal) -> Vec<String> {
        self.management_calls(target)
            .into_iter()
            .filter(|(method, ok)| *ok && !is_read(method))
            .map(|(method, _)| method)
            .collect()
    }

    /// Upgrades the deployer to its own Wasm, mid-flight, as a new deployer release would.
    pub fn upgrade_deployer(&mut self) {
        upgrade_deployer(&mut self.sim, self.deployer);
    }
}

fn is_read(method: &str) -> bool {
    matches!(
        method,
        "canister_status" | "list_canister_snapshots" | "stored_chunks"
    )
}

/// Canary `canary`, then `then`, everything else after; no bake time; `concurrency` children
/// at a time.
pub fn policy(canary: u32, then: Vec<WaveSize>, concurrency: u32) -> PolicyArg {
    PolicyArg {
        waves: Some(WavePlan { canary, then }),
        max_concurrency: Some(concurrency),
        bake_nanos: Some(0),
        ..PolicyArg::default()
    }
}
