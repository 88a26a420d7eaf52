//! Types shared by every part of the simulator and by its users.
//!
//! Reject codes and error codes follow the IC interface specification, "Reject codes" (https-interface)
//! and the replica's `IC0xxx` error codes.

pub use candid::Principal;
use serde::{Deserialize, Serialize};

/// Reject codes, IC interface specification "Reject codes".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RejectCode {
    SysFatal = 1,
    SysTransient = 2,
    DestinationInvalid = 3,
    CanisterReject = 4,
    CanisterError = 5,
    SysUnknown = 6,
}

impl RejectCode {
    pub fn from_u32(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::SysFatal,
            2 => Self::SysTransient,
            3 => Self::DestinationInvalid,
            4 => Self::CanisterReject,
            5 => Self::CanisterError,
            6 => Self::SysUnknown,
            _ => return None,
        })
    }
}

/// A reject as seen by a caller: the code, the message, and the replica's textual error code
/// (`"IC0509"` and so on) where the replica attaches one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub code: RejectCode,
    pub message: String,
    pub error_code: Option<String>,
}

impl Reject {
    pub fn new(code: RejectCode, error_code: &str, message: impl Into<String>) -> Self {
        Reject {
            code,
            message: message.into(),
            error_code: Some(error_code.to_string()),
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_code {
            Some(ec) => write!(f, "reject {:?} ({}): {}", self.code, ec, self.message),
            None => write!(f, "reject {:?}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for Reject {}

/// `canister_status` status field; the numbers are those of `ic0.canister_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CanisterRunStatus {
    Running = 1,
    Stopping = 2,
    Stopped = 3,
}

/// Instruction limits, IC resource limits page and `subnet_config.rs`.
pub mod limits {
    pub const MAX_INSTRUCTIONS_PER_UPDATE: u64 = 40_000_000_000;
    pub const MAX_INSTRUCTIONS_PER_QUERY: u64 = 5_000_000_000;
    pub const MAX_INSTRUCTIONS_PER_INSTALL_CODE: u64 = 300_000_000_000;
    pub const MAX_INSTRUCTIONS_PER_INSPECT_MESSAGE: u64 = 200_000_000;
    /// Ingress and cross-subnet request payloads.
    pub const MAX_INGRESS_PAYLOAD: usize = 2 * 1024 * 1024;
    pub const MAX_XNET_PAYLOAD: usize = 2 * 1024 * 1024;
    pub const MAX_SAME_SUBNET_PAYLOAD: usize = 10 * 1024 * 1024;
    pub const MAX_RESPONSE_PAYLOAD: usize = 2 * 1024 * 1024;
    pub const MAX_QUERY_RESPONSE_PAYLOAD: usize = 3 * 1024 * 1024;
    /// Capacity of the queue between one pair of canisters.
    pub const QUEUE_CAPACITY: usize = 500;
    pub const MAX_CALL_TIMEOUT_SECONDS: u32 = 300;
    pub const MAX_WASM_MODULE_SIZE: usize = 100 * 1024 * 1024;
    pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;
    pub const CHUNK_STORE_CAPACITY: usize = 100;
    pub const MAX_SNAPSHOTS_PER_CANISTER: usize = 10;
    pub const MAX_CONTROLLERS: usize = 10;
    pub const WASM_PAGE_SIZE: u64 = 65536;
    pub const MAX_STABLE_MEMORY_BYTES: u64 = 500 * 1024 * 1024 * 1024;
    pub const MAX_WASM32_HEAP_BYTES: u64 = 4 * 1024 * 1024 * 1024;
    /// The Wasm heap of a wasm64 canister (resource limits: 6 GiB).
    pub const MAX_WASM64_HEAP_BYTES: u64 = 6 * 1024 * 1024 * 1024;
}
