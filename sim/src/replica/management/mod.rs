//! The management canister (`aaaaa-aa`): one function per method, found through [`METHODS`].
//!
//! IC interface specification, "The IC management canister". Arguments and results are the Candid
//! types of `ic-management-canister-types` (records missing newer `opt` fields decode as `null`).
//! A call runs on the subnet of its effective canister id; its answer travels back to the caller
//! like any response.

mod chunks;
mod snapshots;
mod standins;

pub use standins::HttpOutcallResponder;

use super::errors;
use super::ids;
use super::state::{
    default_settings, nat_to_u128, CallOrigin, CanisterState, ChunkStore, PendingStop,
};
use super::trace::Replication;
use super::Sim;
use crate::exec::{
    CanisterInstance, CompiledModule, ExecOutcome, UpgradeOptions, CREATE_CANISTER_FEE,
};
use crate::types::{limits, CanisterRunStatus, Principal, Reject};
use crate::{InstallMode, TraceKind};
use candid::{CandidType, Nat};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInfoArgs, CanisterInstallMode, CanisterMetadataArgs,
    CanisterMetadataResult, CanisterSettings, CanisterStatusResult, CanisterStatusType,
    ChangeDetails, ChangeOrigin, CodeDeploymentMode, CodeDeploymentRecord, ControllersChangeRecord,
    CreateCanisterArgs, CreationRecord, DefiniteCanisterSettings, FromCanisterRecord,
    FromUserRecord, InstallCodeArgs, MemoryMetrics, ProvisionalCreateCanisterWithCyclesArgs,
    ProvisionalTopUpCanisterArgs, QueryStats, StatusVisibility, UninstallCodeArgs,
    UpdateSettingsArgs, WasmMemoryPersistence,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A call to the management canister, executed on `subnet`.
#[derive(Clone, Debug)]
pub(crate) struct ManagementCall {
    pub origin: CallOrigin,
    /// The principal the management canister acts for: the user of an ingress message or the
    /// calling canister.
    pub caller: Principal,
    pub method: String,
    pub payload: Vec<u8>,
    /// Attached cycles not yet taken by the method; refunded with the answer.
    pub cycles: u128,
    pub subnet: usize,
    /// The effective canister id, for the trace.
    pub target: Option<Principal>,
}

impl ManagementCall {
    pub(crate) fn new(
        origin: CallOrigin,
        caller: Principal,
        method: String,
        payload: Vec<u8>,
        cycles: u128,
        subnet: usize,
    ) -> ManagementCall {
        let target = effective_canister_id(&method, &payload);
        ManagementCall {
            origin,
            caller,
            method,
            payload,
            cycles,
            subnet,
            target,
        }
    }
}

/// How a method answers.
pub(crate) enum Answer {
    Now(Vec<u8>),
    /// `stop_canister`: answered once the canister is stopped or the stop timed out.
    Later,
}

/// Who may send a method as ingress (the replica's ingress filter).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IngressAccess {
    CanistersOnly,
    ControllersOfTarget,
    Anyone,
}

type Handler = fn(&mut Sim, &mut ManagementCall) -> Result<Answer, Reject>;

pub(crate) struct Method {
    pub name: &'static str,
    pub ingress: IngressAccess,
    handler: Handler,
}

/// The dispatch table: a row and a function per method.
pub(crate) const METHODS: &[Method] = &[
    Method {
        name: "create_canister",
        ingress: IngressAccess::CanistersOnly,
        handler: create_canister,
    },
    Method {
        name: "update_settings",
        ingress: IngressAccess::ControllersOfTarget,
        handler: update_settings,
    },
    Method {
        name: "install_code",
        ingress: IngressAccess::ControllersOfTarget,
        handler: install_code,
    },
    Method {
        name: "upload_chunk",
        ingress: IngressAccess::ControllersOfTarget,
        handler: chunks::upload_chunk,
    },
    Method {
        name: "clear_chunk_store",
        ingress: IngressAccess::ControllersOfTarget,
        handler: chunks::clear_chunk_store,
    },
    Method {
        name: "stored_chunks",
        ingress: IngressAccess::ControllersOfTarget,
        handler: chunks::stored_chunks,
    },
    Method {
        name: "install_chunked_code",
        ingress: IngressAccess::ControllersOfTarget,
        handler: chunks::install_chunked_code,
    },
    Method {
        name: "uninstall_code",
        ingress: IngressAccess::ControllersOfTarget,
        handler: uninstall_code,
    },
    Method {
        name: "start_canister",
        ingress: IngressAccess::ControllersOfTarget,
        handler: start_canister,
    },
    Method {
        name: "stop_canister",
        ingress: IngressAccess::ControllersOfTarget,
        handler: stop_canister,
    },
    Method {
        name: "canister_status",
        ingress: IngressAccess::ControllersOfTarget,
        handler: canister_status,
    },
    Method {
        name: "canister_info",
        ingress: IngressAccess::CanistersOnly,
        handler: canister_info,
    },
    Method {
        name: "canister_metadata",
        ingress: IngressAccess::CanistersOnly,
        handler: canister_metadata,
    },
    Method {
        name: "take_canister_snapshot",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::take_canister_snapshot,
    },
    Method {
        name: "load_canister_snapshot",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::load_canister_snapshot,
    },
    Method {
        name: "list_canister_snapshots",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::list_canister_snapshots,
    },
    Method {
        name: "read_canister_snapshot_metadata",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::read_canister_snapshot_metadata,
    },
    Method {
        name: "read_canister_snapshot_data",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::read_canister_snapshot_data,
    },
    Method {
        name: "upload_canister_snapshot_metadata",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::upload_canister_snapshot_metadata,
    },
    Method {
        name: "upload_canister_snapshot_data",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::upload_canister_snapshot_data,
    },
    Method {
        name: "delete_canister_snapshot",
        ingress: IngressAccess::ControllersOfTarget,
        handler: snapshots::delete_canister_snapshot,
    },
    Method {
        name: "delete_canister",
        ingress: IngressAccess::ControllersOfTarget,
        handler: delete_canister,
    },
    Method {
        name: "deposit_cycles",
        ingress: IngressAccess::CanistersOnly,
        handler: deposit_cycles,
    },
    Method {
        name: "raw_rand",
        ingress: IngressAccess::CanistersOnly,
        handler: raw_rand,
    },
    Method {
        name: "ecdsa_public_key",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::ecdsa_public_key,
    },
    Method {
        name: "sign_with_ecdsa",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::sign_with_ecdsa,
    },
    Method {
        name: "schnorr_public_key",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::schnorr_public_key,
    },
    Method {
        name: "sign_with_schnorr",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::sign_with_schnorr,
    },
    Method {
        name: "vetkd_public_key",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::vetkd_public_key,
    },
    Method {
        name: "vetkd_derive_key",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::vetkd_derive_key,
    },
    Method {
        name: "http_request",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::http_request,
    },
    Method {
        name: "bitcoin_get_balance",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::bitcoin,
    },
    Method {
        name: "bitcoin_get_utxos",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::bitcoin,
    },
    Method {
        name: "bitcoin_send_transaction",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::bitcoin,
    },
    Method {
        name: "bitcoin_get_current_fee_percentiles",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::bitcoin,
    },
    Method {
        name: "bitcoin_get_block_headers",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::bitcoin,
    },
    Method {
        name: "subnet_info",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::subnet_info,
    },
    Method {
        name: "node_metrics_history",
        ingress: IngressAccess::CanistersOnly,
        handler: standins::node_metrics_history,
    },
    Method {
        name: "provisional_create_canister_with_cycles",
        ingress: IngressAccess::Anyone,
        handler: provisional_create_canister_with_cycles,
    },
    Method {
        name: "provisional_top_up_canister",
        ingress: IngressAccess::Anyone,
        handler: provisional_top_up_canister,
    },
];

/// The names of the management methods the simulator serves.
pub fn management_method_names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name).collect()
}

pub(crate) fn find_method(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// The canister a management call is about (its "effective canister id"), if the method names one
/// and the argument decodes.
pub(crate) fn effective_canister_id(method: &str, payload: &[u8]) -> Option<Principal> {
    #[derive(CandidType, Deserialize)]
    struct Target {
        canister_id: Principal,
    }
    #[derive(CandidType, Deserialize)]
    struct ChunkedTarget {
        target_canister: Principal,
    }
    #[derive(CandidType, Deserialize)]
    struct SpecifiedId {
        specified_id: Option<Principal>,
    }
    match method {
        "install_chunked_code" => candid::decode_one::<ChunkedTarget>(payload)
            .ok()
            .map(|t| t.target_canister),
        "provisional_create_canister_with_cycles" => candid::decode_one::<SpecifiedId>(payload)
            .ok()
            .and_then(|t| t.specified_id),
        _ => candid::decode_one::<Target>(payload)
            .ok()
            .map(|t| t.canister_id),
    }
}

fn decode<T: CandidType + DeserializeOwned>(call: &ManagementCall) -> Result<T, Reject> {
    candid::decode_one(&call.payload)
        .map_err(|e| errors::invalid_management_payload(&call.method, &e.to_string()))
}

fn encode<T: CandidType>(value: &T) -> Vec<u8> {
    candid::encode_one(value).expect("management canister results encode")
}

fn empty_reply() -> Answer {
    Answer::Now(candid::encode_args(()).expect("() encodes"))
}

fn change_origin(call: &ManagementCall, sender_canister_version: Option<u64>) -> ChangeOrigin {
    match call.origin {
        CallOrigin::Canister { .. } => ChangeOrigin::FromCanister(FromCanisterRecord {
            canister_id: call.caller,
            canister_version: sender_canister_version,
        }),
        CallOrigin::Ingress { .. } | CallOrigin::System => ChangeOrigin::FromUser(FromUserRecord {
            user_id: call.caller,
        }),
    }
}

/// The simulator's install mode for a `canister_install_mode` argument, and whether an upgrade
/// names `wasm_memory_persistence` at all (`opt keep` or `opt replace`, not `null`).
fn install_mode(mode: CanisterInstallMode) -> (InstallMode, bool) {
    match mode {
        CanisterInstallMode::Install => (InstallMode::Install, false),
        CanisterInstallMode::Reinstall => (InstallMode::Reinstall, false),
        CanisterInstallMode::Upgrade(flags) => {
            let flags = flags.unwrap_or_default();
            let mode = InstallMode::Upgrade {
                skip_pre_upgrade: flags.skip_pre_upgrade.unwrap_or(false),
                keep_wasm_memory: flags.wasm_memory_persistence
                    == Some(WasmMemoryPersistence::Keep),
            };
            (mode, flags.wasm_memory_persistence.is_some())
        }
    }
}

/// The private custom section that marks a Motoko module with enhanced orthogonal persistence.
const EOP_SECTION: &str = "enhanced-orthogonal-persistence";

fn has_eop_section(module: &CompiledModule) -> bool {
    module
        .metadata()
        .get(EOP_SECTION)
        .is_some_and(|(is_public, _)| !is_public)
}

/// IC interface specification, "IC Management Canister: Code upgrade": when the installed module
/// exports the private section `enhanced-orthogonal-persistence`, `wasm_memory_persistence` must
/// not be `null`; `opt keep` requires the new module to export that section.
fn check_upgrade_persistence(
    old: &CompiledModule,
    new: &CompiledModule,
    keep_wasm_memory: bool,
    persistence_set: bool,
) -> Result<(), Reject> {
    if !persistence_set && has_eop_section(old) {
        return Err(errors::missing_upgrade_option(
            "Enhanced orthogonal persistence requires the `wasm_memory_persistence` upgrade option.",
        ));
    }
    if keep_wasm_memory && !has_eop_section(new) {
        return Err(errors::invalid_upgrade_option(
            "The `wasm_memory_persistence: opt Keep` upgrade option requires that the new canister module supports enhanced orthogonal persistence.",
        ));
    }
    Ok(())
}

/// Settings validation (management canister `canister_settings`): at most 10 controllers,
/// environment variables within the resource limits.
fn validate_settings(settings: &CanisterSettings) -> Result<(), Reject> {
    if let Some(controllers) = &settings.controllers {
        if controllers.len() > limits::MAX_CONTROLLERS {
            return Err(errors::invalid_settings(&format!(
                "Invalid settings: 'controllers' length exceeds maximum size allowed of {}.",
                limits::MAX_CONTROLLERS
            )));
        }
    }
    if let Some(variables) = &settings.environment_variables {
        const MAX_VARIABLES: usize = 20;
        const MAX_LENGTH: usize = 128;
        if variables.len() > MAX_VARIABLES {
            return Err(errors::invalid_settings(&format!(
                "Too many environment variables: {} (maximum {MAX_VARIABLES}).",
                variables.len()
            )));
        }
        if let Some(v) = variables
            .iter()
            .find(|v| v.name.len() > MAX_LENGTH || v.value.len() > MAX_LENGTH)
        {
            return Err(errors::invalid_settings(&format!(
                "Environment variable '{}' exceeds the maximum length of {MAX_LENGTH} bytes.",
                v.name
            )));
        }
    }
    Ok(())
}

/// Applies the fields an `update_settings` / `create_canister` argument sets; the others keep
/// their value.
fn apply_settings(current: &mut DefiniteCanisterSettings, update: CanisterSettings) {
    let CanisterSettings {
        controllers,
        compute_allocation,
        memory_allocation,
        freezing_threshold,
        reserved_cycles_limit,
        minimum_incoming_canister_call_cycles,
        log_visibility,
        log_memory_limit,
        snapshot_visibility,
        status_visibility,
        wasm_memory_limit,
        wasm_memory_threshold,
        environment_variables,
    } = update;
    fn set<T>(field: &mut T, value: Option<T>) {
        if let Some(value) = value {
            *field = value;
        }
    }
    set(&mut current.controllers, controllers);
    set(&mut current.compute_allocation, compute_allocation);
    set(&mut current.memory_allocation, memory_allocation);
    set(&mut current.freezing_threshold, freezing_threshold);
    set(&mut current.reserved_cycles_limit, reserved_cycles_limit);
    set(
        &mut current.minimum_incoming_canister_call_cycles,
        minimum_incoming_canister_call_cycles,
    );
    set(&mut current.log_visibility, log_visibility);
    set(&mut current.log_memory_limit, log_memory_limit);
    set(&mut current.snapshot_visibility, snapshot_visibility);
    set(&mut current.status_visibility, status_visibility);
    set(&mut current.wasm_memory_limit, wasm_memory_limit);
    set(&mut current.wasm_memory_threshold, wasm_memory_threshold);
    set(&mut current.environment_variables, environment_variables);
}

impl Sim {
    /// Runs one management call; `None` when it answers later (`stop_canister`).
    pub(crate) fn execute_management(
        &mut self,
        call: &mut ManagementCall,
    ) -> Option<Result<Vec<u8>, Reject>> {
        if let Some(reject) = self.management_fault(call) {
            return Some(Err(reject));
        }
        let result = match find_method(&call.method) {
            None => Err(errors::unknown_management_method(&call.method)),
            Some(method)
                if method.ingress == IngressAccess::CanistersOnly
                    && !matches!(call.origin, CallOrigin::Canister { .. }) =>
            {
                Err(errors::only_canisters_can_call(&call.method))
            }
            Some(method) => (method.handler)(self, call),
        };
        match result {
            Ok(Answer::Later) => None,
            Ok(Answer::Now(reply)) => Some(Ok(reply)),
            Err(reject) => {
                debug_assert!(
                    errors::management_error_listed(&call.method, &reject),
                    "{} answered {reject}, which MANAGEMENT_METHOD_ERRORS does not list",
                    call.method
                );
                Some(Err(reject))
            }
        }
    }

    /// Traces a management call's result and sends it, with the cycles the method did not take.
    pub(crate) fn finish_management(
        &mut self,
        call: &ManagementCall,
        result: Result<Vec<u8>, Reject>,
    ) {
        self.record(TraceKind::Management {
            caller: call.caller,
            method: call.method.clone(),
            target: call.target,
            ok: result.is_ok(),
        });
        self.answer(
            Principal::management_canister(),
            call.subnet,
            &call.origin,
            result,
            call.cycles,
        );
    }

    /// The target of a controller-only method: it must exist and `sender` must control it.
    fn controlled_canister(&self, canister: Principal, sender: Principal) -> Result<(), Reject> {
        let state = self
            .canisters
            .get(&canister)
            .ok_or_else(|| errors::canister_not_found(canister))?;
        if state.is_controller(&sender) {
            Ok(())
        } else {
            Err(errors::not_a_controller(
                canister,
                &state.settings.controllers,
                sender,
            ))
        }
    }

    /// The target of a method its controllers and the canister itself may call.
    fn controlled_or_self(&self, canister: Principal, sender: Principal) -> Result<(), Reject> {
        if sender == canister && self.canisters.contains_key(&canister) {
            return Ok(());
        }
        self.controlled_canister(canister, sender)
    }

    fn canister_mut(&mut self, canister: Principal) -> Result<&mut CanisterState, Reject> {
        self.canisters
            .get_mut(&canister)
            .ok_or_else(|| errors::canister_not_found(canister))
    }

    /// Creates an empty, running canister on `subnet` (or with `specified_id`).
    pub(crate) fn new_canister(
        &mut self,
        subnet: usize,
        specified_id: Option<Principal>,
        settings: CanisterSettings,
        default_controller: Principal,
        cycles: u128,
        origin: ChangeOrigin,
    ) -> Result<Principal, Reject> {
        validate_settings(&settings)?;
        let (id, subnet) = match specified_id {
            Some(id) => {
                let id_subnet = ids::subnet_of_id(&id, self.subnets.len())
                    .filter(|_| !self.used_canister_ids.contains(&id))
                    .ok_or_else(|| errors::specified_id_unavailable(id))?;
                (id, id_subnet)
            }
            None => (self.fresh_canister_id(subnet), subnet),
        };
        let mut definite = default_settings(vec![default_controller]);
        apply_settings(&mut definite, settings);
        let mut state = CanisterState::new(id, subnet, definite, cycles, self.time_nanos);
        let controllers = state.settings.controllers.clone();
        state.history.push(
            self.time_nanos,
            state.version,
            origin,
            ChangeDetails::Creation(CreationRecord {
                controllers,
                environment_variables_hash: None,
            }),
        );
        self.canisters.insert(id, state);
        self.used_canister_ids.insert(id);
        self.subnets[subnet].add_member(id);
        Ok(id)
    }

    /// The next never-used id of `subnet`'s range (deleted ids are never reused).
    fn fresh_canister_id(&mut self, subnet: usize) -> Principal {
        loop {
            let offset = self.subnets[subnet].next_canister_offset;
            assert!(
                offset < ids::CANISTER_IDS_PER_SUBNET,
                "subnet {subnet} has used up its canister id range"
            );
            self.subnets[subnet].next_canister_offset += 1;
            let id = ids::canister_id(subnet as u64 * ids::CANISTER_IDS_PER_SUBNET + offset);
            if !self.used_canister_ids.contains(&id) {
                return id;
            }
        }
    }

    /// `install_code` semantics (IC interface specification, "IC method install_code"): atomic,
    /// deactivates the global timer, bumps the version and records a history entry.
    pub(crate) fn install_module(
        &mut self,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        // The mode, and whether an upgrade names `wasm_memory_persistence` (see `install_mode`).
        (mode, persistence_set): (InstallMode, bool),
        installer: Principal,
        origin: ChangeOrigin,
    ) -> Result<(), Reject> {
        // The exec layer checks the size limit and caches compiled modules by hash.
        let module =
            CompiledModule::compile(wasm).map_err(|e| errors::invalid_wasm(canister, &e))?;
        let state = self.canister_mut(canister)?;
        match (&mode, &state.instance) {
            (InstallMode::Install, Some(_)) => return Err(errors::canister_non_empty(canister)),
            (InstallMode::Upgrade { .. }, None) => {
                return Err(errors::wasm_module_not_found(canister))
            }
            (
                InstallMode::Upgrade {
                    keep_wasm_memory, ..
                },
                Some(instance),
            ) => check_upgrade_persistence(
                instance.module(),
                &module,
                *keep_wasm_memory,
                persistence_set,
            )?,
            _ => {}
        }
        let prepayment = self
            .check_prepayment(canister, limits::MAX_INSTRUCTIONS_PER_INSTALL_CODE)
            .map_err(|missing| errors::install_out_of_cycles(canister, missing))?;
        let state = &self.canisters[&canister];
        let mut env = self.exec_env(
            state,
            installer,
            arg,
            limits::MAX_INSTRUCTIONS_PER_INSTALL_CODE,
        );
        env.cycle_balance -= prepayment;
        env.global_timer = 0;
        // The version is bumped before `canister_init` / `canister_post_upgrade` run: they see
        // the new one (spec, "IC Management Canister: Code installation" / "Code upgrade").
        env.canister_version += 1;
        let state = self.canisters.get_mut(&canister).expect("checked above");
        let (label, deployment_mode, outcome) = match mode {
            InstallMode::Install | InstallMode::Reinstall => {
                let (label, deployment_mode) = if mode == InstallMode::Install {
                    ("install", CodeDeploymentMode::Install)
                } else {
                    ("reinstall", CodeDeploymentMode::Reinstall)
                };
                let outcome = match CanisterInstance::install(&module, &env) {
                    Ok((instance, outcome)) => {
                        state.instance = Some(instance);
                        state.certified_data.clear();
                        outcome
                    }
                    Err(outcome) => outcome,
                };
                (label, deployment_mode, outcome)
            }
            InstallMode::Upgrade {
                skip_pre_upgrade,
                keep_wasm_memory,
            } => {
                let options = UpgradeOptions {
                    skip_pre_upgrade,
                    keep_wasm_memory,
                };
                let instance = state.instance.as_mut().expect("checked above");
                let outcome = instance.upgrade(&module, &env, options);
                ("upgrade", CodeDeploymentMode::Upgrade, outcome)
            }
        };
        self.record_execution(
            canister,
            label.to_string(),
            &outcome,
            Replication::Replicated,
        );
        self.charge_execution(canister, outcome.instructions);
        if let Some(trap) = &outcome.trap {
            return Err(errors::trapped(canister, trap));
        }
        self.finish_deployment(canister, &module, outcome, deployment_mode, origin);
        Ok(())
    }

    fn finish_deployment(
        &mut self,
        canister: Principal,
        module: &CompiledModule,
        outcome: ExecOutcome,
        mode: CodeDeploymentMode,
        origin: ChangeOrigin,
    ) {
        let time = self.time_nanos;
        // A timer set by `canister_init` or `canister_post_upgrade`, a heartbeat exported.
        self.note_may_have_work(canister);
        let state = self.canisters.get_mut(&canister).expect("installed");
        state.global_timer = outcome.global_timer.unwrap_or(0);
        if let Some(data) = outcome.certified_data {
            state.certified_data = data;
        }
        state.debit_cycles(outcome.cycles_burned);
        state.version += 1;
        state.history.push(
            time,
            state.version,
            origin,
            ChangeDetails::CodeDeployment(CodeDeploymentRecord {
                mode,
                module_hash: module.module_hash().to_vec(),
            }),
        );
    }

    /// `uninstall_code` semantics: code, state and chunk store dropped, open call contexts
    /// rejected, callbacks of outstanding calls will not run.
    fn uninstall(&mut self, canister: Principal, origin: ChangeOrigin) {
        let time = self.time_nanos;
        let state = self
            .canisters
            .get_mut(&canister)
            .expect("checked by caller");
        state.instance = None;
        state.chunk_store = ChunkStore::default();
        state.global_timer = 0;
        state.certified_data.clear();
        state.version += 1;
        state
            .history
            .push(time, state.version, origin, ChangeDetails::CodeUninstall);
        self.reject_open_contexts(canister);
    }

    /// A canister that cannot pay for its storage: the IC uninstalls it; its chunk store and
    /// snapshots go too (and `cycles` leaves it 0 cycles).
    pub(crate) fn uninstall_out_of_cycles(&mut self, canister: Principal) {
        let origin = ChangeOrigin::FromUser(FromUserRecord {
            user_id: Principal::management_canister(),
        });
        self.uninstall(canister, origin);
        if let Some(state) = self.canisters.get_mut(&canister) {
            state.snapshots.clear();
        }
    }

    /// End-of-round check of `subnet`'s stopping canisters: a canister without open call contexts
    /// becomes stopped and its stop calls succeed; stop calls past their timeout fail.
    pub(crate) fn advance_stopping_canisters(&mut self, subnet: usize) {
        // The members that began stopping and still are, in id order.
        let canisters = &self.canisters;
        let mut stopping = Vec::new();
        self.subnets[subnet].stopping.retain(|id| {
            let still = canisters
                .get(id)
                .is_some_and(|state| state.status == CanisterRunStatus::Stopping);
            if still {
                stopping.push(*id);
            }
            still
        });
        for canister in stopping {
            let time = self.time_nanos;
            let idle = self.canisters[&canister].contexts.is_empty();
            let can_stop = idle && !self.stop_held(canister);
            let state = self.canisters.get_mut(&canister).expect("member");
            let answered: Vec<(PendingStop, Result<Vec<u8>, Reject>)> = if can_stop {
                state.status = CanisterRunStatus::Stopped;
                state.version += 1;
                let unit = candid::encode_args(()).expect("() encodes");
                std::mem::take(&mut state.pending_stops)
                    .into_iter()
                    .map(|stop| (stop, Ok(unit.clone())))
                    .collect()
            } else {
                let (timed_out, waiting) = std::mem::take(&mut state.pending_stops)
                    .into_iter()
                    .partition(|stop| stop.timeout_at_nanos <= time);
                state.pending_stops = waiting;
                timed_out
                    .into_iter()
                    .map(|stop| (stop, Err(errors::stop_timed_out(canister))))
                    .collect::<Vec<_>>()
            };
            for (stop, result) in answered {
                self.finish_stop(canister, subnet, stop, result);
            }
        }
    }

    fn finish_stop(
        &mut self,
        canister: Principal,
        subnet: usize,
        stop: PendingStop,
        result: Result<Vec<u8>, Reject>,
    ) {
        let call = ManagementCall {
            origin: stop.origin,
            caller: stop.caller,
            method: "stop_canister".to_string(),
            payload: Vec::new(),
            cycles: stop.cycles,
            subnet,
            target: Some(canister),
        };
        self.finish_management(&call, result);
    }

    fn canister_status_result(&self, canister: Principal) -> CanisterStatusResult {
        let state = &self.canisters[&canister];
        let (wasm_memory, stable_memory, binary_size, custom_sections) =
            state.instance.as_ref().map_or((0, 0, 0, 0), |i| {
                let module = i.module();
                let custom_sections: usize = module.metadata().values().map(|(_, b)| b.len()).sum();
                (
                    i.wasm_memory_size(),
                    i.stable_memory_size(),
                    module.wasm_binary_size() as u64,
                    custom_sections as u64,
                )
            });
        let zero = || Nat::from(0u8);
        CanisterStatusResult {
            status: match state.status {
                CanisterRunStatus::Running => CanisterStatusType::Running,
                CanisterRunStatus::Stopping => CanisterStatusType::Stopping,
                CanisterRunStatus::Stopped => CanisterStatusType::Stopped,
            },
            ready_for_migration: state.status == CanisterRunStatus::Stopped
                && state.input.is_empty(),
            version: state.version,
            settings: state.settings.clone(),
            module_hash: state
                .instance
                .as_ref()
                .map(|i| i.module().module_hash().to_vec()),
            memory_size: Nat::from(state.memory_size()),
            memory_metrics: MemoryMetrics {
                wasm_memory_size: Nat::from(wasm_memory),
                stable_memory_size: Nat::from(stable_memory),
                global_memory_size: zero(),
                wasm_binary_size: Nat::from(binary_size),
                custom_sections_size: Nat::from(custom_sections),
                canister_history_size: zero(),
                wasm_chunk_store_size: Nat::from(state.chunk_store.billed_size()),
                snapshots_size: Nat::from(state.snapshots_size()),
                log_memory_store_size: zero(),
            },
            cycles: Nat::from(state.cycles),
            reserved_cycles: zero(),
            idle_cycles_burned_per_day: Nat::from(self.idle_cycles_burned_per_day_of(state)),
            query_stats: QueryStats {
                num_calls_total: zero(),
                num_instructions_total: zero(),
                request_payload_bytes_total: zero(),
                response_payload_bytes_total: zero(),
            },
        }
    }

    /// `canister_status` answered at once, outside of any round (users' query form, CL 0.51).
    pub(crate) fn management_query(
        &mut self,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        if method != "canister_status" {
            return Err(errors::unknown_management_method(method));
        }
        let mut call = ManagementCall::new(
            CallOrigin::System,
            sender,
            method.to_string(),
            payload,
            0,
            0,
        );
        match canister_status(self, &mut call)? {
            Answer::Now(reply) => Ok(reply),
            Answer::Later => unreachable!("canister_status answers at once"),
        }
    }

    /// The next 32 bytes of the seeded, deterministic `raw_rand` stream.
    fn next_random_bytes(&mut self) -> Vec<u8> {
        let mut hasher = Sha256::new();
        hasher.update(b"ic-sim raw_rand");
        hasher.update(self.config.seed.to_le_bytes());
        hasher.update(self.random_draws.to_le_bytes());
        self.random_draws += 1;
        hasher.finalize().to_vec()
    }
}

fn create_canister(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CreateCanisterArgs = decode(call)?;
    if call.cycles < CREATE_CANISTER_FEE {
        return Err(errors::create_canister_fee(
            call.cycles,
            CREATE_CANISTER_FEE,
        ));
    }
    let origin = change_origin(call, args.sender_canister_version);
    let canister_id = sim.new_canister(
        call.subnet,
        None,
        args.settings.unwrap_or_default(),
        call.caller,
        call.cycles - CREATE_CANISTER_FEE,
        origin,
    )?;
    call.cycles = 0;
    Ok(Answer::Now(encode(&CanisterIdRecord { canister_id })))
}

fn provisional_create_canister_with_cycles(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: ProvisionalCreateCanisterWithCyclesArgs = decode(call)?;
    let cycles = args
        .amount
        .as_ref()
        .map_or(sim.config.default_cycles, nat_to_u128);
    let origin = change_origin(call, args.sender_canister_version);
    let canister_id = sim.new_canister(
        call.subnet,
        args.specified_id,
        args.settings.unwrap_or_default(),
        call.caller,
        cycles,
        origin,
    )?;
    Ok(Answer::Now(encode(&CanisterIdRecord { canister_id })))
}

fn provisional_top_up_canister(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: ProvisionalTopUpCanisterArgs = decode(call)?;
    let state = sim.canister_mut(args.canister_id)?;
    state.credit_cycles(nat_to_u128(&args.amount));
    Ok(empty_reply())
}

fn update_settings(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: UpdateSettingsArgs = decode(call)?;
    sim.controlled_canister(args.canister_id, call.caller)?;
    validate_settings(&args.settings)?;
    let origin = change_origin(call, args.sender_canister_version);
    let time = sim.time_nanos;
    let state = sim.canister_mut(args.canister_id)?;
    let new_controllers = args.settings.controllers.clone();
    apply_settings(&mut state.settings, args.settings);
    state.version += 1;
    if let Some(controllers) = new_controllers {
        state.history.push(
            time,
            state.version,
            origin,
            ChangeDetails::ControllersChange(ControllersChangeRecord { controllers }),
        );
    }
    Ok(empty_reply())
}

fn install_code(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: InstallCodeArgs = decode(call)?;
    sim.controlled_canister(args.canister_id, call.caller)?;
    let origin = change_origin(call, args.sender_canister_version);
    sim.install_module(
        args.canister_id,
        &args.wasm_module,
        args.arg,
        install_mode(args.mode),
        call.caller,
        origin,
    )?;
    Ok(empty_reply())
}

fn uninstall_code(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: UninstallCodeArgs = decode(call)?;
    sim.controlled_canister(args.canister_id, call.caller)?;
    let origin = change_origin(call, args.sender_canister_version);
    sim.uninstall(args.canister_id, origin);
    Ok(empty_reply())
}

fn start_canister(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CanisterIdRecord = decode(call)?;
    sim.controlled_canister(args.canister_id, call.caller)?;
    let state = sim.canister_mut(args.canister_id)?;
    let cancelled = std::mem::take(&mut state.pending_stops);
    if state.status != CanisterRunStatus::Running {
        state.status = CanisterRunStatus::Running;
        state.version += 1;
    }
    // Its timer or heartbeat runs again.
    sim.note_may_have_work(args.canister_id);
    for stop in cancelled {
        let subnet = call.subnet;
        sim.finish_stop(
            args.canister_id,
            subnet,
            stop,
            Err(errors::stop_cancelled(args.canister_id)),
        );
    }
    Ok(empty_reply())
}

fn stop_canister(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CanisterIdRecord = decode(call)?;
    sim.controlled_canister(args.canister_id, call.caller)?;
    let timeout_at_nanos = sim.time_nanos + sim.config.stop_timeout_nanos;
    let state = sim.canister_mut(args.canister_id)?;
    let begins_stopping = match state.status {
        CanisterRunStatus::Stopped => return Ok(empty_reply()),
        CanisterRunStatus::Running => {
            state.status = CanisterRunStatus::Stopping;
            state.version += 1;
            true
        }
        CanisterRunStatus::Stopping => false,
    };
    let subnet = state.subnet;
    state.pending_stops.push(PendingStop {
        origin: call.origin.clone(),
        caller: call.caller,
        cycles: std::mem::take(&mut call.cycles),
        timeout_at_nanos,
    });
    if begins_stopping {
        sim.subnets[subnet].stopping.insert(args.canister_id);
        sim.maybe_hang_stop(args.canister_id);
    }
    Ok(Answer::Later)
}

fn canister_status(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CanisterIdRecord = decode(call)?;
    let canister = args.canister_id;
    let state = sim
        .canisters
        .get(&canister)
        .ok_or_else(|| errors::canister_not_found(canister))?;
    let visible = match &state.settings.status_visibility {
        StatusVisibility::Public => true,
        StatusVisibility::AllowedViewers(viewers) => viewers.contains(&call.caller),
        StatusVisibility::Controllers => false,
    };
    if !(visible || call.caller == canister || state.is_controller(&call.caller)) {
        return Err(errors::not_a_controller(
            canister,
            &state.settings.controllers,
            call.caller,
        ));
    }
    Ok(Answer::Now(encode(&sim.canister_status_result(canister))))
}

/// `canister_info_result` as `ic.did` has it: each change's `details : change_details` is not
/// optional (the Rust crate's `Change` makes it `opt` for schema evolution; a canister decoding
/// with the `ic.did` types needs the plain variant, and one decoding with the crate's type still
/// reads it, Candid's `opt` rule wrapping the value).
#[derive(CandidType)]
struct InfoResult {
    total_num_changes: u64,
    recent_changes: Vec<InfoChange>,
    module_hash: Option<Vec<u8>>,
    controllers: Vec<Principal>,
}

#[derive(CandidType)]
struct InfoChange {
    timestamp_nanos: u64,
    canister_version: u64,
    origin: ChangeOrigin,
    details: ChangeDetails,
}

fn canister_info(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CanisterInfoArgs = decode(call)?;
    let state = sim
        .canisters
        .get(&args.canister_id)
        .ok_or_else(|| errors::canister_not_found(args.canister_id))?;
    let requested = args.num_requested_changes.unwrap_or(0);
    let result = InfoResult {
        total_num_changes: state.history.total(),
        recent_changes: state
            .history
            .most_recent(usize::try_from(requested).unwrap_or(usize::MAX))
            .into_iter()
            .map(|change| InfoChange {
                timestamp_nanos: change.timestamp_nanos,
                canister_version: change.canister_version,
                origin: change.origin,
                details: change
                    .details
                    .expect("the simulator records every change with its details"),
            })
            .collect(),
        module_hash: state
            .instance
            .as_ref()
            .map(|i| i.module().module_hash().to_vec()),
        controllers: state.settings.controllers.clone(),
    };
    Ok(Answer::Now(encode(&result)))
}

/// A `icp:public <name>` section for any canister, a `icp:private <name>` one for controllers
/// (IC interface specification, "IC method canister_metadata").
fn canister_metadata(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CanisterMetadataArgs = decode(call)?;
    let canister = args.canister_id;
    let state = sim
        .canisters
        .get(&canister)
        .ok_or_else(|| errors::canister_not_found(canister))?;
    let module = state
        .instance
        .as_ref()
        .ok_or_else(|| errors::metadata_without_module(canister))?
        .module();
    let (public, value) = module
        .metadata()
        .get(&args.name)
        .ok_or_else(|| errors::metadata_section_not_found(canister, &args.name))?;
    if !public && !state.is_controller(&call.caller) {
        return Err(errors::not_a_controller(
            canister,
            &state.settings.controllers,
            call.caller,
        ));
    }
    Ok(Answer::Now(encode(&CanisterMetadataResult {
        value: value.clone(),
    })))
}

fn delete_canister(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CanisterIdRecord = decode(call)?;
    let canister = args.canister_id;
    sim.controlled_canister(canister, call.caller)?;
    if call.caller == canister {
        return Err(errors::delete_self(canister));
    }
    let state = &sim.canisters[&canister];
    if state.status != CanisterRunStatus::Stopped {
        return Err(errors::delete_not_stopped(canister));
    }
    let subnet = state.subnet;
    sim.canisters.remove(&canister);
    sim.subnets[subnet].remove_member(&canister);
    Ok(empty_reply())
}

fn deposit_cycles(sim: &mut Sim, call: &mut ManagementCall) -> Result<Answer, Reject> {
    let args: CanisterIdRecord = decode(call)?;
    let cycles = call.cycles;
    let state = sim.canister_mut(args.canister_id)?;
    state.credit_cycles(cycles);
    call.cycles = 0;
    Ok(empty_reply())
}

fn raw_rand(sim: &mut Sim, _call: &mut ManagementCall) -> Result<Answer, Reject> {
    let bytes = sim.next_random_bytes();
    Ok(Answer::Now(encode(&bytes)))
}
