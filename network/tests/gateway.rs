//! The HTTP gateway protocol: a browser's request reaches the canister's `http_request` by
//! `<id>.raw.localhost:<port>` or `?canisterId=<id>`, and `http_request_update` when the query's
//! reply sets `upgrade = opt true`.

use bytes::Bytes;
use candid::Principal;
use ic_local_network::gateway::HttpResponse;
use ic_local_network::{LocalNetwork, NetworkConfig, RoundDriver, SharedNetwork};
use ic_sim::InstallMode;
use serde_bytes::ByteBuf;
use std::sync::Arc;

fn response(body: &str, upgrade: Option<bool>) -> Vec<u8> {
    candid::encode_one(HttpResponse {
        status_code: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        body: ByteBuf::from(body.as_bytes()),
        upgrade,
    })
    .unwrap()
}

fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A canister whose `http_request` answers `query_reply` and `http_request_update` answers
/// `update_reply`, whatever the request.
fn http_canister(query_reply: &[u8], update_reply: &[u8]) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
          (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
          (import "ic0" "msg_reply" (func $reply))
          (memory 1)
          (data (i32.const 0) "{}")
          (data (i32.const 32768) "{}")
          (func (export "canister_query http_request")
            (call $append (i32.const 0) (i32.const {})) (call $reply))
          (func (export "canister_update http_request_update")
            (call $append (i32.const 32768) (i32.const {})) (call $reply)))"#,
        wat_bytes(query_reply),
        wat_bytes(update_reply),
        query_reply.len(),
        update_reply.len(),
    ))
    .unwrap()
}

fn network_with(wasm: &[&[u8]]) -> (Arc<SharedNetwork>, Vec<Principal>) {
    let mut network = LocalNetwork::new(NetworkConfig::default());
    let ids = wasm
        .iter()
        .map(|wasm| {
            let sim = network.sim_mut();
            let id = sim.create_canister(0, vec![Principal::anonymous()]);
            sim.install_code(
                Principal::anonymous(),
                id,
                wasm,
                vec![],
                InstallMode::Install,
            )
            .unwrap();
            id
        })
        .collect();
    (SharedNetwork::new(network, RoundDriver::Requests), ids)
}

fn get(uri: &str, host: &str) -> http::Request<Bytes> {
    http::Request::get(uri)
        .header("host", host)
        .body(Bytes::new())
        .unwrap()
}

#[tokio::test]
async fn pages_are_served_by_host_or_canister_id_parameter() {
    let page = http_canister(&response("<h1>query</h1>", None), &response("unused", None));
    let (network, ids) = network_with(&[&page]);
    let id = ids[0];
    let by_host = network
        .handle(get("/index.html", &format!("{id}.raw.localhost:4943")))
        .await;
    assert_eq!(by_host.status(), 200);
    assert_eq!(by_host.headers()["content-type"], "text/html");
    assert_eq!(by_host.body().as_ref(), b"<h1>query</h1>");
    let by_parameter = network
        .handle(get(&format!("/?canisterId={id}"), "127.0.0.1:4943"))
        .await;
    assert_eq!(by_parameter.body().as_ref(), b"<h1>query</h1>");
    let nowhere = network.handle(get("/", "127.0.0.1:4943")).await;
    assert_eq!(nowhere.status(), 400);
}

/// "Upgrade to update calls": the gateway ignores the query's response and answers with the
/// update's.
#[tokio::test]
async fn an_upgrade_flag_turns_the_request_into_an_update_call() {
    let upgrading = http_canister(
        &response("stale", Some(true)),
        &response("<h1>update</h1>", None),
    );
    let (network, ids) = network_with(&[&upgrading]);
    let rounds_before = network.lock().sim().round();
    let page = network
        .handle(get("/", &format!("{}.raw.localhost", ids[0])))
        .await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.body().as_ref(), b"<h1>update</h1>");
    assert!(
        network.lock().sim().round() > rounds_before,
        "an update call takes rounds"
    );
}

/// A canister without `http_request` answers with a reject: 502 with its text.
#[tokio::test]
async fn a_canister_without_http_request_answers_502() {
    let empty = wat::parse_str("(module)").unwrap();
    let (network, ids) = network_with(&[&empty]);
    let page = network
        .handle(get("/", &format!("{}.raw.localhost", ids[0])))
        .await;
    assert_eq!(page.status(), 502);
    assert!(String::from_utf8_lossy(page.body()).contains("http_request"));
}
