//! `Cbor<T>`: makes any serde type a stable-structures value, encoded as CBOR.
//!
//! CBOR keeps field and variant names in the bytes, so a value type evolves the serde way:
//! new fields are `Option`s or carry `#[serde(default)]`, and old bytes still decode. It is also
//! cheaper in instructions than Candid for the small records stored here.

use std::borrow::Cow;

use ic_stable_structures::storable::{Bound, Storable};
use serde::{de::DeserializeOwned, Serialize};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cbor<T>(pub T);

impl<T: Serialize + DeserializeOwned> Storable for Cbor<T> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode(&self.0))
    }

    fn into_bytes(self) -> Vec<u8> {
        encode(&self.0)
    }

    /// Panics on bytes that do not decode: they can only come from a bug or corrupt memory,
    /// and continuing on a guessed value would be worse than trapping.
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        match ciborium::from_reader(bytes.as_ref()) {
            Ok(value) => Self(value),
            Err(error) => panic!("stored CBOR value does not decode: {error}"),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail, and the stored types serialize without custom logic.
    ciborium::into_writer(value, &mut bytes).expect("CBOR encoding into memory cannot fail");
    bytes
}
