//! What build of the deployer is running.

use candid::{CandidType, Deserialize};

use crate::memory::SCHEMA_VERSION;

/// Reply of the `version` query.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The crate version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The stable memory layout version, see [`crate::memory`].
    pub schema_version: u32,
    /// The commit the Wasm was built from, when the build set `DEPLOYER_GIT_COMMIT`.
    pub git_commit: Option<String>,
}

impl VersionInfo {
    pub fn of_this_build() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            schema_version: SCHEMA_VERSION,
            git_commit: option_env!("DEPLOYER_GIT_COMMIT").map(str::to_string),
        }
    }
}
