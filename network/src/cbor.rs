//! CBOR as the HTTP interface uses it: every response body and CBOR-valued tree leaf is a
//! self-described item (tag 55799, "CBOR encoding of requests and responses").

use serde::{de::DeserializeOwned, Serialize};

const SELF_DESCRIBED: u64 = 55799;

pub fn to_self_described<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(
        &ciborium::tag::Required::<&T, SELF_DESCRIBED>(value),
        &mut out,
    )
    .expect("serializing to memory cannot fail");
    out
}

/// Decodes a request body; the self-described tag is optional. serde_cbor, as the agents'
/// types are tested with it (see Cargo.toml).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_cbor::from_slice(bytes).map_err(|e| e.to_string())
}
