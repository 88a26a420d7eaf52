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
    let mut bytes = Vec::with_capacity(256);
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

impl<E: Serialize + DeserializeOwned> CborBytes<Vec<E>> {
    /// The bytes of a `Vec` of `items`, without copying them into one: a slice encodes as a
    /// `Vec` does (a CBOR array). `I` is `E` or a form of it that encodes as `E` does (one
    /// holding references to `E`'s parts), which a test of each such form pins.
    pub fn encode_items<I: Serialize>(items: &[I]) -> Self {
        Self {
            bytes: encode(&items),
            value: PhantomData,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    // Runs of finished children are encoded from slices and decoded as `Vec`s: the bytes must be
    // the same as the `Vec`'s.
    #[test]
    fn items_encode_as_their_vec() {
        let items = vec![(1u32, "a".to_string()), (2, "b".to_string())];
        let from_slice = CborBytes::encode_items(&items[..]);
        assert_eq!(from_slice, CborBytes::encode(&items));
        assert_eq!(from_slice.decode(), items);
    }
}
