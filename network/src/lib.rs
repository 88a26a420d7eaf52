//! The simulator as a local IC network: real clients (ic-agent, the `icp` CLI, the JS agent, a
//! browser through the HTTP gateway protocol) talk to canisters running on [`ic_sim::Sim`].
//!
//! Parts: [`keys`] (root, subnet and node keys from the seed), [`tree`] (certified state
//! trees), [`envelope`] (sender authentication), [`network`] (the endpoints without an HTTP
//! stack), [`gateway`] (the HTTP gateway protocol), [`http`] (routing, waiting for rounds, the server), [`setup`] (the demo's canisters).

pub mod cbor;
pub mod envelope;
pub mod gateway;
pub mod http;
pub mod keys;
pub mod network;
pub mod setup;
pub mod tree;

pub use http::{RoundDriver, SharedNetwork};
#[cfg(feature = "test-knobs")]
pub use network::Tamper;
pub use network::{ApiError, CallSubmission, LocalNetwork, NetworkConfig, ReadStateTarget};
