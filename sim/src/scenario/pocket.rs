//! [`IcEnv`] on a real PocketIC server (`POCKET_IC_BIN`), so the same scenarios run against the
//! replica's own execution environment.

use super::{status_view, IcEnv, PendingCall, StatusView};
use crate::replica::InstallMode;
use crate::types::{Principal, Reject, RejectCode};
use pocket_ic::common::rest::{RawEffectivePrincipal, RawMessageId};
use pocket_ic::{PocketIc, PocketIcBuilder, RejectResponse};

/// Cycles given to each canister the scenario creates (PocketIC's own default).
const CANISTER_CYCLES: u128 = 100_000_000_000_000;

pub struct PocketIcEnv {
    pic: PocketIc,
    subnets: Vec<Principal>,
}

impl PocketIcEnv {
    /// A PocketIC instance with `subnets` application subnets.
    pub fn new(subnets: usize) -> Self {
        let mut builder = PocketIcBuilder::new();
        for _ in 0..subnets.max(1) {
            builder = builder.with_application_subnet();
        }
        let pic = builder.build();
        let subnets = pic.topology().get_app_subnets();
        PocketIcEnv { pic, subnets }
    }
}

fn reject(response: RejectResponse) -> Reject {
    Reject {
        code: RejectCode::from_u32(response.reject_code as u32).unwrap_or(RejectCode::SysFatal),
        message: response.reject_message,
        error_code: Some(response.error_code.to_string()),
    }
}

impl IcEnv for PocketIcEnv {
    fn backend(&self) -> &'static str {
        "pocket-ic"
    }

    fn subnet_count(&self) -> usize {
        self.subnets.len()
    }

    fn create_canister(&mut self, subnet: usize, controllers: Vec<Principal>) -> Principal {
        let settings = pocket_ic::CanisterSettings {
            controllers: Some(controllers),
            ..Default::default()
        };
        let canister =
            self.pic
                .create_canister_on_subnet(None, Some(settings), self.subnets[subnet]);
        self.pic.add_cycles(canister, CANISTER_CYCLES);
        canister
    }

    fn install_code(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        mode: InstallMode,
    ) -> Result<(), Reject> {
        let payload = mode.install_code_payload(canister, wasm, arg);
        self.pic
            .update_call_with_effective_principal(
                Principal::management_canister(),
                RawEffectivePrincipal::CanisterId(canister.as_slice().to_vec()),
                sender,
                "install_code",
                payload,
            )
            .map(|_| ())
            .map_err(reject)
    }

    fn submit_update_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<PendingCall, Reject> {
        let message = self
            .pic
            .submit_call(canister, sender, method, arg)
            .map_err(reject)?;
        Ok(PendingCall::Pocket {
            message_id: message.message_id,
            effective_canister: canister,
        })
    }

    fn await_update_raw(&mut self, call: PendingCall) -> Result<Vec<u8>, Reject> {
        match call {
            PendingCall::Pocket {
                message_id,
                effective_canister,
            } => self
                .pic
                .await_call(RawMessageId {
                    effective_principal: RawEffectivePrincipal::CanisterId(
                        effective_canister.as_slice().to_vec(),
                    ),
                    message_id,
                })
                .map_err(reject),
            PendingCall::Sim(_) => panic!("a simulator call handle was given to PocketIC"),
        }
    }

    fn query_raw(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.pic
            .query_call(canister, sender, method, arg)
            .map_err(reject)
    }

    fn tick(&mut self) {
        self.pic.tick()
    }

    fn advance_time(&mut self, nanos: u64) {
        self.pic
            .advance_time(std::time::Duration::from_nanos(nanos))
    }

    fn time_nanos(&self) -> u64 {
        self.pic.get_time().as_nanos_since_unix_epoch()
    }

    fn canister_status(
        &mut self,
        sender: Principal,
        canister: Principal,
    ) -> Result<StatusView, Reject> {
        self.pic
            .canister_status(canister, Some(sender))
            // pocket-ic speaks an older ic-management-canister-types than the simulator; the
            // Candid bytes are the common ground.
            .map(|status| {
                let bytes = candid::encode_one(status).expect("encode canister status");
                status_view(candid::decode_one(&bytes).expect("canister status round trip"))
            })
            .map_err(reject)
    }

    fn stop_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.pic
            .stop_canister(canister, Some(sender))
            .map_err(reject)
    }

    fn start_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.pic
            .start_canister(canister, Some(sender))
            .map_err(reject)
    }
}
