//! Small WAT canisters and helpers shared by the replica and management canister conformance
//! tests. Each test file uses a subset.
#![allow(dead_code)]

use candid::{CandidType, Principal};
use ic_sim::{FaultEvent, FaultSource, InstallMode, Reject, Sim, SimConfig, TraceKind};
use serde::de::DeserializeOwned;

/// The user that controls the canisters the tests create.
pub fn user() -> Principal {
    Principal::self_authenticating(b"replica conformance test user")
}

pub fn other_user() -> Principal {
    Principal::self_authenticating(b"someone else")
}

pub fn management() -> Principal {
    Principal::management_canister()
}

const ECHO_IMPORTS: &str = r#"
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "msg_caller_size" (func $caller_size (result i32)))
  (import "ic0" "msg_caller_copy" (func $caller_copy (param i32 i32 i32)))
  (import "ic0" "msg_method_name_size" (func $method_size (result i32)))
  (import "ic0" "msg_method_name_copy" (func $method_copy (param i32 i32 i32)))
  (import "ic0" "accept_message" (func $accept_message))
  (import "ic0" "msg_cycles_accept128" (func $accept128 (param i64 i64 i32)))
  (import "ic0" "msg_deadline" (func $deadline (result i64)))
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
  (import "ic0" "time" (func $time (result i64)))
  (import "ic0" "stable64_size" (func $stable_size (result i64)))
  (import "ic0" "stable64_grow" (func $stable_grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $stable_write (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $stable_read (param i64 i64 i64)))
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
"#;

/// The echo canister. Heap: 0x100 timer counter, 0x104 "pre_upgrade traps" flag, 0x200 stored
/// length + 0x204 stored bytes, 0x20000 argument buffer.
const ECHO_BODY: &str = r#"
  (memory 64)
  (data (i32.const 0x300) "timer fired")
  (data (i32.const 0x310) "pre_upgrade trap")
  (data (i32.const 0x320) "refused")
  (data (i32.const 0x330) "inspect_trap")
  (data (i32.const 0x340) "trap")
  (data (i32.const 0x350) "post_upgrade trap")

  (func $load_arg (result i32)
    (local $n i32)
    (local.set $n (call $arg_size))
    (call $arg_copy (i32.const 0x20000) (i32.const 0) (local.get $n))
    (local.get $n))
  (func $reply_bytes (param $src i32) (param $len i32)
    (call $reply_append (local.get $src) (local.get $len))
    (call $reply))
  (func $store_arg
    (i32.store (i32.const 0x200) (call $arg_size))
    (call $arg_copy (i32.const 0x204) (i32.const 0) (i32.load (i32.const 0x200))))
  ;; 1 when `len` bytes at `a` equal those at `b`.
  (func $equal (param $a i32) (param $b i32) (param $len i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "canister_init") (call $store_arg))
  (func (export "canister_pre_upgrade")
    (if (i32.load (i32.const 0x104)) (then (call $trap (i32.const 0x310) (i32.const 16)))))
  (func (export "canister_post_upgrade")
    (local $n i32)
    (local.set $n (call $load_arg))
    (if (i32.and (i32.eq (local.get $n) (i32.const 4))
                 (call $equal (i32.const 0x20000) (i32.const 0x340) (i32.const 4)))
      (then (call $trap (i32.const 0x350) (i32.const 17)))))
  (func (export "canister_inspect_message")
    (local $n i32)
    (local.set $n (call $method_size))
    (call $method_copy (i32.const 0x400) (i32.const 0) (local.get $n))
    (if (i32.and (i32.eq (local.get $n) (i32.const 7))
                 (call $equal (i32.const 0x400) (i32.const 0x320) (i32.const 7)))
      (then (return)))
    (if (i32.and (i32.eq (local.get $n) (i32.const 12))
                 (call $equal (i32.const 0x400) (i32.const 0x330) (i32.const 12)))
      (then (call $trap (i32.const 0x330) (i32.const 12))))
    (call $accept_message))
  (func (export "canister_global_timer")
    (i32.store (i32.const 0x100) (i32.add (i32.load (i32.const 0x100)) (i32.const 1)))
    (call $print (i32.const 0x300) (i32.const 11)))

  (func (export "canister_update reply_arg") (call $reply_bytes (i32.const 0x20000) (call $load_arg)))
  (func (export "canister_query query_arg") (call $reply_bytes (i32.const 0x20000) (call $load_arg)))
  (func (export "canister_update reject") (call $reject (i32.const 0x20000) (call $load_arg)))
  (func (export "canister_update trap") (call $trap (i32.const 0x20000) (call $load_arg)))
  (func (export "canister_update noreply"))
  (func (export "canister_update refused") (call $reply))
  (func (export "canister_update inspect_trap") (call $reply))
  (func (export "canister_update write") (call $store_arg) (call $reply))
  (func (export "canister_query write_in_query") (call $store_arg) (call $reply))
  (func (export "canister_query read") (call $reply_bytes (i32.const 0x204) (i32.load (i32.const 0x200))))
  (func (export "canister_update stable_write")
    (local $n i32)
    (local.set $n (call $load_arg))
    (if (i64.eqz (call $stable_size)) (then (drop (call $stable_grow (i64.const 1)))))
    (i32.store (i32.const 0) (local.get $n))
    (call $stable_write (i64.const 0) (i64.const 0) (i64.const 4))
    (call $stable_write (i64.const 4) (i64.const 0x20000) (i64.extend_i32_u (local.get $n)))
    (call $reply))
  (func (export "canister_query stable_read")
    (local $n i32)
    (if (i64.eqz (call $stable_size)) (then (call $reply) (return)))
    (call $stable_read (i64.const 0) (i64.const 0) (i64.const 4))
    (local.set $n (i32.load (i32.const 0)))
    (call $stable_read (i64.const 0x20000) (i64.const 4) (i64.extend_i32_u (local.get $n)))
    (call $reply_bytes (i32.const 0x20000) (local.get $n)))
  (func (export "canister_update caller")
    (local $n i32)
    (local.set $n (call $caller_size))
    (call $caller_copy (i32.const 0x20000) (i32.const 0) (local.get $n))
    (call $reply_bytes (i32.const 0x20000) (local.get $n)))
  (func (export "canister_update set_timer")
    (drop (call $load_arg))
    (drop (call $timer_set (i64.load (i32.const 0x20000))))
    (call $reply))
  (func (export "canister_query timer_count") (call $reply_bytes (i32.const 0x100) (i32.const 4)))
  (func (export "canister_update accept")
    (drop (call $load_arg))
    (call $accept128 (i64.const 0) (i64.load (i32.const 0x20000)) (i32.const 0))
    (call $reply_bytes (i32.const 0) (i32.const 16)))
  (func (export "canister_update time")
    (i64.store (i32.const 0) (call $time))
    (call $reply_bytes (i32.const 0) (i32.const 8)))
  (func (export "canister_update deadline")
    (i64.store (i32.const 0) (call $deadline))
    (call $reply_bytes (i32.const 0) (i32.const 8)))
  (func (export "canister_update arg_size")
    (i32.store (i32.const 0) (call $arg_size))
    (call $reply_bytes (i32.const 0) (i32.const 4)))
  ;; Replies with as many bytes as the little-endian u32 argument says.
  (func (export "canister_update big_reply")
    (drop (call $load_arg))
    (call $reply_bytes (i32.const 0x20000) (i32.load (i32.const 0x20000))))
  (func (export "canister_update break_pre_upgrade")
    (i32.store (i32.const 0x104) (i32.const 1))
    (call $reply))
"#;

/// The echo canister; `version` > 1 adds an update method `v<version>` so the module hash differs.
pub fn echo_wasm_version(version: u32) -> Vec<u8> {
    let extra = if version > 1 {
        format!("(func (export \"canister_update v{version}\") (call $reply))")
    } else {
        String::new()
    };
    wat::parse_str(format!("(module {ECHO_IMPORTS} {ECHO_BODY} {extra})")).expect("echo WAT")
}

pub fn echo_wasm() -> Vec<u8> {
    echo_wasm_version(1)
}

/// The forwarder canister: `forward` makes one call described by its argument (see
/// [`forward_arg`]) and replies with what came back (see [`Forwarded`]); `burst` makes many calls
/// and reports how many `call_perform` accepted.
pub fn forwarder_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject_code" (func $reject_code (result i32)))
  (import "ic0" "msg_reject_msg_size" (func $reject_msg_size (result i32)))
  (import "ic0" "msg_reject_msg_copy" (func $reject_msg_copy (param i32 i32 i32)))
  (import "ic0" "msg_cycles_refunded128" (func $refunded128 (param i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_data_append" (func $call_data_append (param i32 i32)))
  (import "ic0" "call_cycles_add128" (func $call_cycles_add128 (param i64 i64)))
  (import "ic0" "call_with_best_effort_response" (func $best_effort (param i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 240)
  (table 2 funcref)
  (elem (i32.const 0) $on_response $ignore)

  ;; Reply: 'R' refund(u64) data. Reject: 'J' code(u32) refund(u64) message.
  (func $on_response (param $env i32)
    (local $code i32)
    (local $n i32)
    (local.set $code (call $reject_code))
    (call $refunded128 (i32.const 0x20))
    (if (i32.eqz (local.get $code))
      (then
        (i32.store8 (i32.const 0x40) (i32.const 82))
        (i64.store (i32.const 0x41) (i64.load (i32.const 0x20)))
        (call $reply_append (i32.const 0x40) (i32.const 9))
        (local.set $n (call $arg_size))
        (call $arg_copy (i32.const 0x10000) (i32.const 0) (local.get $n))
        (call $reply_append (i32.const 0x10000) (local.get $n)))
      (else
        (i32.store8 (i32.const 0x40) (i32.const 74))
        (i32.store (i32.const 0x41) (local.get $code))
        (i64.store (i32.const 0x45) (i64.load (i32.const 0x20)))
        (call $reply_append (i32.const 0x40) (i32.const 13))
        (local.set $n (call $reject_msg_size))
        (call $reject_msg_copy (i32.const 0x10000) (i32.const 0) (local.get $n))
        (call $reply_append (i32.const 0x10000) (local.get $n))))
    (call $reply))
  (func $ignore (param $env i32))

  ;; Argument: callee_len(u8) callee method_len(u8) method cycles(u64) timeout(u32, 0 = unbounded)
  ;; zero_payload(u32, 0 = the rest of the argument is the payload) payload.
  (func (export "canister_update forward")
    (local $n i32) (local $p i32) (local $callee i32) (local $callee_len i32)
    (local $method i32) (local $method_len i32) (local $cycles i64) (local $timeout i32)
    (local $zeros i32) (local $r i32)
    (local.set $n (call $arg_size))
    (call $arg_copy (i32.const 0x10000) (i32.const 0) (local.get $n))
    (local.set $callee_len (i32.load8_u (i32.const 0x10000)))
    (local.set $callee (i32.const 0x10001))
    (local.set $p (i32.add (local.get $callee) (local.get $callee_len)))
    (local.set $method_len (i32.load8_u (local.get $p)))
    (local.set $method (i32.add (local.get $p) (i32.const 1)))
    (local.set $p (i32.add (local.get $method) (local.get $method_len)))
    (local.set $cycles (i64.load (local.get $p)))
    (local.set $timeout (i32.load (i32.add (local.get $p) (i32.const 8))))
    (local.set $zeros (i32.load (i32.add (local.get $p) (i32.const 12))))
    (local.set $p (i32.add (local.get $p) (i32.const 16)))
    (call $call_new (local.get $callee) (local.get $callee_len)
                    (local.get $method) (local.get $method_len)
                    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (if (local.get $zeros)
      (then (call $call_data_append (i32.const 0x400000) (local.get $zeros)))
      (else (call $call_data_append (local.get $p)
                (i32.sub (i32.add (i32.const 0x10000) (local.get $n)) (local.get $p)))))
    (if (i64.ne (local.get $cycles) (i64.const 0))
      (then (call $call_cycles_add128 (i64.const 0) (local.get $cycles))))
    (if (local.get $timeout) (then (call $best_effort (local.get $timeout))))
    (local.set $r (call $call_perform))
    (if (local.get $r)
      (then
        (i32.store8 (i32.const 0x40) (i32.const 70))
        (i32.store (i32.const 0x41) (local.get $r))
        (call $reply_append (i32.const 0x40) (i32.const 5))
        (call $reply))))

  ;; Argument: callee_len(u8) callee method_len(u8) method count(u32). Replies accepted(u32)
  ;; first_failure(u32).
  (func (export "canister_update burst")
    (local $callee_len i32) (local $method i32) (local $method_len i32) (local $count i32)
    (local $ok i32) (local $failure i32) (local $r i32)
    (call $arg_copy (i32.const 0x10000) (i32.const 0) (call $arg_size))
    (local.set $callee_len (i32.load8_u (i32.const 0x10000)))
    (local.set $method_len (i32.load8_u (i32.add (i32.const 0x10001) (local.get $callee_len))))
    (local.set $method (i32.add (i32.const 0x10002) (local.get $callee_len)))
    (local.set $count (i32.load (i32.add (local.get $method) (local.get $method_len))))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $count)))
        (call $call_new (i32.const 0x10001) (local.get $callee_len)
                        (local.get $method) (local.get $method_len)
                        (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0))
        (local.set $r (call $call_perform))
        (if (i32.eqz (local.get $r))
          (then (local.set $ok (i32.add (local.get $ok) (i32.const 1))))
          (else (if (i32.eqz (local.get $failure)) (then (local.set $failure (local.get $r))))))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $next)))
    (i32.store (i32.const 0x40) (local.get $ok))
    (i32.store (i32.const 0x44) (local.get $failure))
    (call $reply_append (i32.const 0x40) (i32.const 8))
    (call $reply))
)"#,
    )
    .expect("forwarder WAT")
}

/// What the forwarder's `forward` replied.
#[derive(Debug, PartialEq, Eq)]
pub enum Forwarded {
    Reply {
        refund: u64,
        data: Vec<u8>,
    },
    Reject {
        code: u32,
        refund: u64,
        message: String,
    },
    PerformFailed(u32),
}

impl Forwarded {
    pub fn parse(bytes: &[u8]) -> Forwarded {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        match bytes[0] {
            b'R' => Forwarded::Reply {
                refund: u64_at(1),
                data: bytes[9..].to_vec(),
            },
            b'J' => Forwarded::Reject {
                code: u32_at(1),
                refund: u64_at(5),
                message: String::from_utf8(bytes[13..].to_vec()).unwrap(),
            },
            b'F' => Forwarded::PerformFailed(u32_at(1)),
            other => panic!("unexpected forwarder answer tag {other}"),
        }
    }

    pub fn reply_data(self) -> Vec<u8> {
        match self {
            Forwarded::Reply { data, .. } => data,
            other => panic!("expected a reply, got {other:?}"),
        }
    }
}

/// A call the forwarder makes.
pub struct Call {
    pub callee: Principal,
    pub method: String,
    pub payload: Vec<u8>,
    pub cycles: u64,
    pub timeout_seconds: u32,
    /// Send this many zero bytes instead of `payload`.
    pub zero_payload: u32,
}

impl Call {
    pub fn new(callee: Principal, method: &str, payload: Vec<u8>) -> Call {
        Call {
            callee,
            method: method.to_string(),
            payload,
            cycles: 0,
            timeout_seconds: 0,
            zero_payload: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let callee = self.callee.as_slice();
        let mut arg = vec![callee.len() as u8];
        arg.extend_from_slice(callee);
        arg.push(self.method.len() as u8);
        arg.extend_from_slice(self.method.as_bytes());
        arg.extend_from_slice(&self.cycles.to_le_bytes());
        arg.extend_from_slice(&self.timeout_seconds.to_le_bytes());
        arg.extend_from_slice(&self.zero_payload.to_le_bytes());
        arg.extend_from_slice(&self.payload);
        arg
    }
}

/// Argument of the forwarder's `burst`.
pub fn burst_arg(callee: Principal, method: &str, count: u32) -> Vec<u8> {
    let callee = callee.as_slice();
    let mut arg = vec![callee.len() as u8];
    arg.extend_from_slice(callee);
    arg.push(method.len() as u8);
    arg.extend_from_slice(method.as_bytes());
    arg.extend_from_slice(&count.to_le_bytes());
    arg
}

pub fn new_sim() -> Sim {
    Sim::new(SimConfig::default())
}

pub fn two_subnets() -> Sim {
    Sim::new(SimConfig {
        subnets: 2,
        ..SimConfig::default()
    })
}

/// Creates a canister controlled by [`user`] on `subnet` and installs `wasm` with `arg`.
pub fn install_on(sim: &mut Sim, subnet: usize, wasm: &[u8], arg: Vec<u8>) -> Principal {
    let canister = sim.create_canister(subnet, vec![user()]);
    sim.install_code(user(), canister, wasm, arg, InstallMode::Install)
        .expect("install");
    canister
}

pub fn echo(sim: &mut Sim) -> Principal {
    install_on(sim, 0, &echo_wasm(), Vec::new())
}

pub fn forwarder(sim: &mut Sim, subnet: usize) -> Principal {
    install_on(sim, subnet, &forwarder_wasm(), Vec::new())
}

/// Has `forwarder` make `call` (sent by [`user`]) and returns what came back.
pub fn forward(sim: &mut Sim, forwarder: Principal, call: &Call) -> Forwarded {
    let bytes = sim
        .update_call(user(), forwarder, "forward", call.encode())
        .expect("the forwarder always replies");
    Forwarded::parse(&bytes)
}

/// A management canister call made by `forwarder`.
pub fn forward_management<A: CandidType>(
    sim: &mut Sim,
    forwarder: Principal,
    method: &str,
    arg: &A,
) -> Forwarded {
    let call = Call::new(management(), method, candid::encode_one(arg).unwrap());
    forward(sim, forwarder, &call)
}

/// A management canister call sent as ingress by `sender`.
pub fn management_ingress<A: CandidType>(
    sim: &mut Sim,
    sender: Principal,
    method: &str,
    arg: &A,
) -> Result<Vec<u8>, Reject> {
    sim.update_call(
        sender,
        management(),
        method,
        candid::encode_one(arg).unwrap(),
    )
}

pub fn decode<T: CandidType + DeserializeOwned>(bytes: &[u8]) -> T {
    candid::decode_one(bytes).expect("candid reply")
}

pub fn id_record(canister: Principal) -> ic_management_canister_types::CanisterIdRecord {
    ic_management_canister_types::CanisterIdRecord {
        canister_id: canister,
    }
}

/// Sets a canister's freezing threshold (`update_settings`), as its controller `user()`.
pub fn set_freezing_threshold(sim: &mut Sim, canister: Principal, seconds: u64) {
    let args = ic_management_canister_types::UpdateSettingsArgs {
        canister_id: canister,
        settings: ic_management_canister_types::CanisterSettings {
            freezing_threshold: Some(candid::Nat::from(seconds)),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management_ingress(sim, user(), "update_settings", &args).unwrap();
}

/// Every fault that took effect, in order, with where it came from.
pub fn faults(sim: &Sim) -> Vec<(FaultSource, FaultEvent)> {
    sim.trace()
        .iter()
        .filter_map(|event| match &event.kind {
            TraceKind::Fault { source, event } => Some((*source, event.clone())),
            _ => None,
        })
        .collect()
}
