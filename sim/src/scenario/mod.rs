//! The scenario-test interface: what a deployer scenario needs from an IC, implemented on the
//! simulator ([`Sim`]) and, behind the `pocket-ic` feature, on a real PocketIC server
//! ([`pocket::PocketIcEnv`], used when `POCKET_IC_BIN` is set).
//!
//! Scenarios are written once against [`IcEnv`] (raw bytes) and [`IcEnvExt`] (Candid), and pick
//! their backend with [`from_env`].

#[cfg(feature = "pocket-ic")]
pub mod pocket;

use crate::replica::{InstallMode, Sim, SimConfig};
use crate::types::{CanisterRunStatus, Principal, Reject};
use candid::utils::{ArgumentDecoder, ArgumentEncoder};

/// An ingress update submitted but not yet awaited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingCall {
    Sim(crate::replica::MessageId),
    /// PocketIC's raw message id, kept as bytes plus the effective canister.
    Pocket {
        message_id: Vec<u8>,
        effective_canister: Principal,
    },
}

/// What a scenario reads of a canister.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusView {
    pub status: CanisterRunStatus,
    pub module_hash: Option<Vec<u8>>,
    pub controllers: Vec<Principal>,
    pub cycles: u128,
}

/// The operations a scenario may perform on an IC. Raw Candid bytes in and out; see [`IcEnvExt`].
pub trait IcEnv {
    /// "sim" or "pocket-ic", for messages.
    fn backend(&self) -> &'static str;
    fn subnet_count(&self) -> usize;
    /// Creates an empty canister with cycles on application subnet `subnet`.
    fn create_canister(&mut self, subnet: usize, controllers: Vec<Principal>) -> Principal;
    fn install_code(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        mode: InstallMode,
    ) -> Result<(), Reject>;
    fn submit_update_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<PendingCall, Reject>;
    fn await_update_raw(&mut self, call: PendingCall) -> Result<Vec<u8>, Reject>;
    fn query_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject>;
    /// Executes one round.
    fn tick(&mut self);
    fn advance_time(&mut self, nanos: u64);
    fn time_nanos(&self) -> u64;
    /// The management canister's view of `canister`, as its controller `sender` sees it.
    fn canister_status(
        &mut self,
        sender: Principal,
        canister: Principal,
    ) -> Result<StatusView, Reject>;
    /// Stops `canister` as its controller `sender`, returning once it is stopped.
    fn stop_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject>;
    fn start_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject>;

    fn update_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        let call = self.submit_update_raw(sender, canister, method, arg)?;
        self.await_update_raw(call)
    }
}

/// A boxed backend (what [`from_env`] gives) is a backend.
impl<T: IcEnv + ?Sized> IcEnv for Box<T> {
    fn backend(&self) -> &'static str {
        (**self).backend()
    }
    fn subnet_count(&self) -> usize {
        (**self).subnet_count()
    }
    fn create_canister(&mut self, subnet: usize, controllers: Vec<Principal>) -> Principal {
        (**self).create_canister(subnet, controllers)
    }
    fn install_code(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        mode: InstallMode,
    ) -> Result<(), Reject> {
        (**self).install_code(sender, canister, wasm, arg, mode)
    }
    fn submit_update_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<PendingCall, Reject> {
        (**self).submit_update_raw(sender, canister, method, arg)
    }
    fn await_update_raw(&mut self, call: PendingCall) -> Result<Vec<u8>, Reject> {
        (**self).await_update_raw(call)
    }
    fn query_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        (**self).query_raw(sender, canister, method, arg)
    }
    fn tick(&mut self) {
        (**self).tick()
    }
    fn advance_time(&mut self, nanos: u64) {
        (**self).advance_time(nanos)
    }
    fn time_nanos(&self) -> u64 {
        (**self).time_nanos()
    }
    fn canister_status(
        &mut self,
        sender: Principal,
        canister: Principal,
    ) -> Result<StatusView, Reject> {
        (**self).canister_status(sender, canister)
    }
    fn stop_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        (**self).stop_canister(sender, canister)
    }
    fn start_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        (**self).start_canister(sender, canister)
    }
}

/// Candid conveniences over [`IcEnv`]. A reply that does not decode as `R` is a test failure
/// (panic), not a reject: it means the interface and the scenario disagree.
pub trait IcEnvExt: IcEnv {
    fn update<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Reject> {
        let arg = candid::encode_args(args).expect("encode Candid arguments");
        let reply = self.update_raw(sender, canister, method, arg)?;
        Ok(decode_reply(method, &reply))
    }

    fn query<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Reject> {
        let arg = candid::encode_args(args).expect("encode Candid arguments");
        let reply = self.query_raw(sender, canister, method, arg)?;
        Ok(decode_reply(method, &reply))
    }
}

impl<T: IcEnv + ?Sized> IcEnvExt for T {}

fn decode_reply<R: for<'a> ArgumentDecoder<'a>>(method: &str, reply: &[u8]) -> R {
    candid::decode_args(reply)
        .unwrap_or_else(|e| panic!("reply of `{method}` does not decode: {e}"))
}

/// The backend for scenario tests: a real PocketIC when the `pocket-ic` feature is on and
/// `POCKET_IC_BIN` names a server binary, else the simulator with `config`.
pub fn from_env(config: SimConfig) -> Box<dyn IcEnv> {
    #[cfg(feature = "pocket-ic")]
    if std::env::var_os("POCKET_IC_BIN").is_some() {
        return Box::new(pocket::PocketIcEnv::new(config.subnets));
    }
    Box::new(Sim::new(config))
}

impl IcEnv for Sim {
    fn backend(&self) -> &'static str {
        "sim"
    }

    fn subnet_count(&self) -> usize {
        self.config().subnets
    }

    fn create_canister(&mut self, subnet: usize, controllers: Vec<Principal>) -> Principal {
        Sim::create_canister(self, subnet, controllers)
    }

    fn install_code(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        mode: InstallMode,
    ) -> Result<(), Reject> {
        Sim::install_code(self, sender, canister, wasm, arg, mode)
    }

    fn submit_update_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<PendingCall, Reject> {
        self.submit_update(sender, canister, method, arg)
            .map(PendingCall::Sim)
    }

    fn await_update_raw(&mut self, call: PendingCall) -> Result<Vec<u8>, Reject> {
        match call {
            PendingCall::Sim(id) => self.await_ingress(id, AWAIT_ROUNDS),
            PendingCall::Pocket { .. } => {
                panic!("a PocketIC call handle was given to the simulator")
            }
        }
    }

    fn query_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.query_call(sender, canister, method, arg)
    }

    fn tick(&mut self) {
        Sim::tick(self)
    }

    fn advance_time(&mut self, nanos: u64) {
        Sim::advance_time(self, nanos)
    }

    fn time_nanos(&self) -> u64 {
        Sim::time_nanos(self)
    }

    fn canister_status(
        &mut self,
        sender: Principal,
        canister: Principal,
    ) -> Result<StatusView, Reject> {
        let arg = candid::encode_one(ic_management_canister_types::CanisterIdRecord {
            canister_id: canister,
        })
        .expect("encode canister id");
        let reply = self.update_call(
            sender,
            Principal::management_canister(),
            "canister_status",
            arg,
        )?;
        let status: ic_management_canister_types::CanisterStatusResult =
            candid::decode_one(&reply).expect("decode canister_status reply");
        Ok(status_view(status))
    }

    fn stop_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        management_lifecycle(self, sender, canister, "stop_canister")
    }

    fn start_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        management_lifecycle(self, sender, canister, "start_canister")
    }
}

/// A management method whose only argument is the canister's id, as ingress.
fn management_lifecycle(
    sim: &mut Sim,
    sender: Principal,
    canister: Principal,
    method: &str,
) -> Result<(), Reject> {
    let arg = candid::encode_one(ic_management_canister_types::CanisterIdRecord {
        canister_id: canister,
    })
    .expect("encode canister id");
    sim.update_call(sender, Principal::management_canister(), method, arg)
        .map(|_| ())
}

/// Rounds an awaited ingress message may take before the scenario is considered hung.
pub const AWAIT_ROUNDS: u64 = 10_000;

pub(crate) fn status_view(
    status: ic_management_canister_types::CanisterStatusResult,
) -> StatusView {
    use ic_management_canister_types::CanisterStatusType;
    StatusView {
        status: match status.status {
            CanisterStatusType::Running => CanisterRunStatus::Running,
            CanisterStatusType::Stopping => CanisterRunStatus::Stopping,
            CanisterStatusType::Stopped => CanisterRunStatus::Stopped,
        },
        module_hash: status.module_hash,
        controllers: status.settings.controllers,
        cycles: u128::try_from(status.cycles.0).unwrap_or(u128::MAX),
    }
}
