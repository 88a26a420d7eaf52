//! A DAO's governance as SNS runs generic proposals, played by the probe canister: for each
//! proposal it calls the validator with the payload bytes and keeps the render (a reject or an
//! `Err` makes the proposal invalid, and it never executes); then it calls the execute method
//! with the same bytes, counting a reject as a failed proposal and any reply as executed (SNS
//! ignores the reply). Calls come from a canister, as governance's do: replicated, past
//! `canister_inspect_message`.

use candid::{CandidType, Deserialize, Principal};
use ic_sim::scenario::{IcEnv, IcEnvExt};
use ic_sim::{artifacts, InstallMode};
use serde_bytes::ByteBuf;

use crate::Deployer;

/// The probe's `forward` request: one call with raw argument bytes.
#[derive(CandidType)]
struct ForwardRequest {
    callee: Principal,
    method: String,
    arg: ByteBuf,
    cycles: candid::Nat,
    timeout_seconds: Option<u32>,
}

/// The probe's answer when its call was rejected.
#[derive(CandidType, Deserialize, Debug)]
struct ForwardError {
    code: u32,
    message: String,
}

/// What became of a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalOutcome {
    /// The validator refused it (`Err`, or a reject): it is not put to a vote.
    Invalid(String),
    /// Adopted and executed: the render voters saw, and the execute method's reply.
    Executed { render: String, reply: Vec<u8> },
    /// Adopted, and the execute method rejected: the proposal failed.
    Failed { render: String, reject: String },
}

/// The governance canister (a probe), and the controller that installed it.
pub struct Governance {
    pub canister: Principal,
    controller: Principal,
}

impl Governance {
    /// Installs the probe on the deployer's IC as governance, controlled by `controller`.
    pub fn install<E: IcEnv>(deployer: &mut Deployer<E>, controller: Principal) -> Governance {
        let canister = deployer.env.create_canister(0, vec![controller]);
        deployer
            .env
            .install_code(
                controller,
                canister,
                &artifacts::wasm("probe"),
                candid::encode_args(()).expect("no argument"),
                InstallMode::Install,
            )
            .expect("install the probe as governance");
        Governance {
            canister,
            controller,
        }
    }

    /// Validates, then (as if adopted at once) executes `method` with `payload`, as SNS does.
    pub fn propose<E: IcEnv>(
        &self,
        deployer: &mut Deployer<E>,
        method: &str,
        payload: Vec<u8>,
    ) -> ProposalOutcome {
        let render = match self.validate(deployer, method, payload.clone()) {
            Ok(render) => render,
            Err(refusal) => return ProposalOutcome::Invalid(refusal),
        };
        match self.execute(deployer, method, payload) {
            Ok(reply) => ProposalOutcome::Executed { render, reply },
            Err(reject) => ProposalOutcome::Failed { render, reject },
        }
    }

    /// What SNS does when the proposal is made: `{method}_validate` renders it, or refuses it
    /// (an `Err`, a reject, or a reply that is not `Result<String, String>`).
    pub fn validate<E: IcEnv>(
        &self,
        deployer: &mut Deployer<E>,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<String, String> {
        let reply = self.call(deployer, &format!("{method}_validate"), payload)?;
        candid::decode_one::<Result<String, String>>(&reply)
            .map_err(|error| format!("the render does not decode: {error}"))?
    }

    /// What SNS does once the proposal is adopted: `method` with the same bytes; a reject
    /// fails the proposal, any reply executes it.
    pub fn execute<E: IcEnv>(
        &self,
        deployer: &mut Deployer<E>,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.call(deployer, method, payload)
    }

    fn call<E: IcEnv>(
        &self,
        deployer: &mut Deployer<E>,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let request = ForwardRequest {
            callee: deployer.canister,
            method: method.to_string(),
            arg: ByteBuf::from(payload),
            cycles: candid::Nat::from(0u32),
            timeout_seconds: None,
        };
        let (answer,): (Result<ByteBuf, ForwardError>,) = deployer
            .env
            .update(self.controller, self.canister, "forward", (request,))
            .expect("the governance probe answers");
        answer
            .map(ByteBuf::into_vec)
            .map_err(|error| format!("reject {}: {}", error.code, error.message))
    }
}
