//! The `icp` CLI's proxy interface (`proxy(record { canister_id; method; args; cycles })`), so
//! that `icp canister snapshot download <child> <id> --proxy <deployer>` works for a child only
//! the deployer controls. Only for operators, only to the management canister, only for the
//! methods of [`ALLOWED_METHODS`] (status, snapshot listing, snapshot reads and uploads), only
//! about an adopted child; every call an operator makes is kept in an audit log
//! ([`ProxyAudit`]) that role holders read with `list_proxy_calls`.
//!
//! The reply type is the CLI's (`ProxyResult`), not the deployer's `Error`: the CLI decodes it.
//! Refusals are `CallFailed` with a reason that says what to do instead.

use candid::{CandidType, Nat, Principal};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::backup::SectionVisitor;
use crate::cbor::Cbor;

/// What the proxy forwards: snapshot reads and uploads (the CLI's download and upload), the
/// listing they start from, and status. Nothing that installs, loads, deletes or changes
/// settings: those go through rollouts, which journal them.
pub const ALLOWED_METHODS: [&str; 6] = [
    "canister_status",
    "list_canister_snapshots",
    "read_canister_snapshot_metadata",
    "read_canister_snapshot_data",
    "upload_canister_snapshot_metadata",
    "upload_canister_snapshot_data",
];

/// The largest `args` forwarded: a data upload of 2,000,000 bytes (the IC's slice limit) and
/// its Candid framing, well under the 2 MiB of a message.
pub const MAX_PROXY_ARGS_BYTES: usize = 2_000_000 + 4 * 1024;

/// The audit entries kept: the oldest go first.
pub const MAX_AUDIT_ENTRIES: u64 = 10_000;

/// The largest page of `list_proxy_calls`.
pub const MAX_AUDIT_PAGE: u32 = 500;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProxyArgs {
    /// The callee: the management canister (`aaaaa-aa`).
    pub canister_id: Principal,
    pub method: String,
    /// The method's Candid argument.
    pub args: ByteBuf,
    /// Cycles attached, from the deployer's balance.
    pub cycles: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ProxyResult {
    Ok(ProxyOk),
    Err(ProxyError),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProxyOk {
    /// The callee's Candid reply.
    pub result: ByteBuf,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    InsufficientCycles {
        available: Nat,
        required: Nat,
    },
    CallFailed {
        reason: String,
    },
    /// The caller holds no Operator role on the deployer.
    UnauthorizedUser,
}

/// The part of every allowed method's argument the proxy checks: the canister it is about.
#[derive(Deserialize, CandidType)]
struct AboutCanister {
    canister_id: Principal,
}

/// The child `args` is about, if the proxy forwards it; `is_child` says whether a canister
/// is an adopted child.
pub fn admit(
    args: &ProxyArgs,
    is_child: impl Fn(&Principal) -> bool,
) -> Result<Principal, ProxyError> {
    let refuse = |reason: String| Err(ProxyError::CallFailed { reason });
    if args.canister_id != Principal::management_canister() {
        return refuse(format!(
            "the deployer proxies calls to the management canister (aaaaa-aa) only, not to {}: \
             call that canister directly",
            args.canister_id
        ));
    }
    if !ALLOWED_METHODS.contains(&args.method.as_str()) {
        return refuse(format!(
            "the deployer does not proxy {:?}: it proxies {}; installs, loads and deletions go \
             through rollouts",
            truncated(&args.method),
            ALLOWED_METHODS.join(", ")
        ));
    }
    if args.args.len() > MAX_PROXY_ARGS_BYTES {
        return refuse(format!(
            "the argument has {} bytes, more than the {MAX_PROXY_ARGS_BYTES} the proxy forwards: \
             upload snapshot data in slices of at most 2,000,000 bytes",
            args.args.len()
        ));
    }
    let about = match candid::decode_one::<AboutCanister>(&args.args) {
        Ok(about) => about.canister_id,
        Err(error) => {
            return refuse(format!(
                "the argument of {} does not decode as a record with a canister_id: {}",
                args.method,
                truncated(&error.to_string())
            ))
        }
    };
    if !is_child(&about) {
        return refuse(format!(
            "{about} is not one of the deployer's children: the proxy serves adopted children \
             only (adopt_children adopts a canister the deployer controls)"
        ));
    }
    Ok(about)
}

fn truncated(text: &str) -> &str {
    crate::text::prefix(text, 200)
}

/// One proxied call (or refusal) of a role holder.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProxyCall {
    pub sequence: u64,
    pub at: u64,
    pub caller: Principal,
    pub method: String,
    /// The child the call was about, once the proxy admitted it.
    pub child: Option<Principal>,
    pub args_bytes: u64,
    /// The reply's size, when the callee replied.
    pub reply_bytes: Option<u64>,
    /// Why the call was refused or failed.
    pub error: Option<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListProxyCallsArg {
    /// The first sequence number the page may hold: the `next` of the previous page.
    pub from: Option<u64>,
    /// At most [`MAX_AUDIT_PAGE`] (the default).
    pub limit: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProxyCallPage {
    /// Oldest first.
    pub calls: Vec<ProxyCall>,
    /// Pass as `from` for the next page; null once the log was read to its end.
    pub next: Option<u64>,
}

/// The audit log of proxied calls: sequence number to call, the newest
/// [`MAX_AUDIT_ENTRIES`] kept.
pub struct ProxyAudit<M: Memory> {
    calls: StableBTreeMap<u64, Cbor<ProxyCall>, M>,
}

impl<M: Memory> ProxyAudit<M> {
    pub fn init(memory: M) -> Self {
        Self {
            calls: StableBTreeMap::init(memory),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// See [`crate::backup`].
    pub fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.map("proxy_audit", &mut self.calls);
    }

    /// Records a call (its `sequence` is assigned here) and drops the oldest beyond the bound.
    pub fn record(&mut self, mut call: ProxyCall) -> u64 {
        let sequence = self.calls.last_key_value().map_or(0, |(last, _)| last + 1);
        call.sequence = sequence;
        self.calls.insert(sequence, Cbor(call));
        while self.calls.len() > MAX_AUDIT_ENTRIES {
            self.calls.pop_first();
        }
        sequence
    }

    pub fn list(&self, arg: &ListProxyCallsArg) -> ProxyCallPage {
        let limit = arg.limit.unwrap_or(MAX_AUDIT_PAGE).clamp(1, MAX_AUDIT_PAGE) as usize;
        let mut calls: Vec<ProxyCall> = self
            .calls
            .range(arg.from.unwrap_or(0)..)
            .take(limit + 1)
            .map(|entry| entry.value().0)
            .collect();
        let next = (calls.len() > limit).then(|| calls[limit].sequence);
        calls.truncate(limit);
        ProxyCallPage { calls, next }
    }
}

#[cfg(test)]
mod tests;
