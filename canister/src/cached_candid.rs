//! Candid with each type's table encoded once per heap: the entry points' replies and the
//! arguments of the management calls. Candid's own `encode_one` serializes the type table on
//! every call, and the table of `Result<_, Error>` (the error type has dozens of variants) is
//! most of a small method's cost: natively 30 µs of the 83 µs that
//! `encode_one(Ok::<(), Error>(()))` takes, against 31 ns for its value. On the simulator,
//! before and after: `add_role` for a role already held 1.77 M and 76 K instructions, a
//! query's typed error 2.1 M and 40 K (bench `deployer_trivial_calls`), a rollout's cost per
//! child 1.82 M and 1.25 M (`fleet_rollout_200_children`).
//!
//! The bytes are those of `candid::encode_one` (tested below): `DIDL`, the type table and the
//! argument's type, then the value. Entry points reply themselves (ic-cdk's `manual_reply`)
//! through [`reply`]; their declared [`Replied`] type keeps the exported interface what
//! `candid/deployer.did` says (ic-cdk's `encode_with` would export `blob`).

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use candid::ser::{TypeSerialize, ValueSerializer};
use candid::CandidType;

thread_local! {
    /// `DIDL`, the type table and the one argument type, by reply type.
    static HEADERS: RefCell<BTreeMap<TypeId, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
}

/// What an entry point returns once it has replied itself (ic-cdk's `manual_reply`): the
/// interface export reads the reply type `T` from it.
pub type Replied<T> = PhantomData<T>;

/// Replies with what `answer` gives: the entry points' reply.
pub fn reply<T: CandidType + 'static>(answer: impl FnOnce() -> T) -> Replied<T> {
    ic_cdk::api::msg_reply(encode(&answer()));
    PhantomData
}

/// The bytes `candid::encode_one(value)` gives.
pub fn encode<T: CandidType + 'static>(value: &T) -> Vec<u8> {
    warm::<T>();
    let mut values = ValueSerializer::new();
    value
        .idl_serialize(&mut values)
        .unwrap_or_else(|error| panic!("a reply encodes in Candid: {error}"));
    let values = values.get_result();
    // Allocated once at its size: growing it cost a copy per call made.
    HEADERS.with_borrow(|headers| {
        let header = &headers[&TypeId::of::<T>()];
        let mut bytes = Vec::with_capacity(header.len() + values.len());
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(values);
        bytes
    })
}

/// Encodes `T`'s header now. A query's changes to the heap are dropped with it, so the types
/// queries reply with are warmed where the heap is kept: in `init` and `post_upgrade`.
pub fn warm<T: CandidType + 'static>() {
    HEADERS.with_borrow_mut(|headers| {
        headers.entry(TypeId::of::<T>()).or_insert_with(header::<T>);
    });
}

fn header<T: CandidType>() -> Vec<u8> {
    let mut types = TypeSerialize::new();
    types
        .push_type(&T::ty())
        .and_then(|()| types.serialize())
        .unwrap_or_else(|error| panic!("a reply type encodes in Candid: {error}"));
    [b"DIDL".as_slice(), types.get_result()].concat()
}

#[cfg(test)]
mod tests;
