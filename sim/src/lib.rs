//! A deterministic, in-process Internet Computer test replica that runs real canister Wasm.
//!
//! - [`exec`]: one message on one canister (wasmtime, the `ic0` System API, instruction counting,
//!   rollback on trap).
//! - [`replica`]: subnets, rounds, time, message queues, the management canister, timers, the trace.
//!
//! The public entry point is [`Sim`] (re-exported from `replica`).

pub mod artifacts;
pub mod exec;
pub mod replica;
pub mod scenario;
pub mod types;

pub use replica::*;
pub use types::*;
