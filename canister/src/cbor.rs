//! `Cbor<T>`: makes any serde type a stable-structures value, encoded as CBOR.
//!
//! CBOR keeps field and variant names in the bytes, so a value type evolves the serde way:
//! new fields are `Option`s or carry `#[serde(default)]`, and old bytes still decode. It is also
//! cheaper in instructions than Candid for the small records stored here.

use std::borrow::Cow;
use std::marker::PhantomData;

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

/// The CBOR bytes of a `T`, decoded only on request. For large values replaced whole (a
/// rollout's checkpoint): a map's `insert` returns the value it replaces, and with [`Cbor`]
/// it would decode that old value only to drop it. The stored bytes are the same as
/// [`Cbor`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CborBytes<T> {
    bytes: Vec<u8>,
    value: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned> CborBytes<T> {
    pub fn encode(value: &T) -> Self {
        Self {
            bytes: encode(value),
            value: PhantomData,
        }
    }

    pub fn decode(&self) -> T {
        Cbor::<T>::from_bytes(Cow::Borrowed(&self.bytes)).0
    }
}

impl<T> Storable for CborBytes<T> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Self {
            bytes: bytes.into_owned(),
            value: PhantomData,
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}
