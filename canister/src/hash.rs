//! SHA-256 as the deployer uses it: release modules and their chunks are addressed by it, and
//! fleet index keys digest labels with it.

use sha2::{Digest, Sha256};

pub type Sha256Hash = [u8; 32];

pub fn sha256(bytes: &[u8]) -> Sha256Hash {
    Sha256::digest(bytes).into()
}

/// Lowercase hex, as error messages show hashes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
