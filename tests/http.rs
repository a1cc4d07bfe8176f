//! The HTTP API against real engines on a temporary store: every status and stable error code a client can
//! provoke, idempotent retries, optimistic concurrency, reads, the changes feed, views, OpenAPI and metrics.

use std::sync::Arc;

use anthill::http::{router, AppState};
use anthill::metrics::Metrics;
use anthill::serve::{open_engines, EngineArgs};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    engine: EngineArgs,
}

struct Server {
    app: axum::Router,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(tokens: Vec<String>) -> Server {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = Args::parse_from(["test", "--partitions", "2"]).engine.config();
        let engines = Arc::new(open_engines(dir.path(), config).expect("the engines open"));
        let state = Arc::new(AppState {
            backend: engines,
            metrics: Arc::new(Metrics::default()),
            tokens,
            catalog_html: "<html>catalog</html>".into(),
            openapi_json: anthill::openapi::document(anthill::DOMAINS).to_string(),
        });
        Server { app: router(state), _dir: dir }
    }

    async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.app.clone().oneshot(request.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &[("content-type", "application/json")], &body.to_string()).await
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn commands_are_answered_with_their_events_or_a_coded_rejection() {
    let s = Server::start(vec![]);
    let (status, body) = s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 100})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["events"][0]["event"], json!({"type": "opened", "owner": "ann", "overdraft-limit": "100.00"}));
    let (status, body) = s.post("/ledger/account/acc-1/withdraw", json!({"amount": "50"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> =
        body["events"].as_array().unwrap().iter().map(|e| e["event"]["type"].as_str().unwrap()).collect();
    assert_eq!(names, ["withdrawn", "overdrawn"], "the relaxed policy reacts in the same commit");
    assert_eq!(body["version"], 3);
    let (status, body) = s.post("/ledger/account/acc-1/withdraw", json!({"amount": 200})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!((body["error"].as_str(), body["code"].as_str()), (Some("rejected"), Some("non-negative")));
    let (status, body) = s.post("/ledger/account/acc-2/deposit", json!({"amount": 1})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("not-open")));
}

#[tokio::test]
async fn bad_requests_get_a_4xx_with_a_stable_code() {
    let s = Server::start(vec![]);
    let check = |status: StatusCode, body: &Value, want_status: StatusCode, want: &str| {
        assert_eq!((status, body["error"].as_str()), (want_status, Some(want)), "{body}");
        assert!(body["message"].is_string(), "{body}");
    };
    let (st, b) = s.post("/nowhere/account/a/open", json!({})).await;
    check(st, &b, StatusCode::NOT_FOUND, "not-found");
    let (st, b) = s.post("/ledger/nobody/a/open", json!({})).await;
    check(st, &b, StatusCode::NOT_FOUND, "not-found");
    let (st, b) = s.post("/ledger/account/a/explode", json!({})).await;
    check(st, &b, StatusCode::NOT_FOUND, "not-found");
    let (st, b) = s.call("POST", "/ledger/account/a/deposit", &[], "{\"amount\": 1}").await;
    check(st, &b, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let (st, b) = s.call("POST", "/ledger/account/a/deposit", &[JSON], "{\"amount\": ").await;
    check(st, &b, StatusCode::BAD_REQUEST, "invalid-json");
    let (st, b) = s.call("POST", "/ledger/account/a/deposit", &[JSON], "[1, 2]").await;
    check(st, &b, StatusCode::BAD_REQUEST, "invalid-json");
    let (st, b) = s.post("/ledger/account/a/deposit", json!({"amount": "1.234"})).await;
    check(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameters");
    let (st, b) = s.post("/ledger/account/a/deposit", json!({"amount": 1, "extra": true})).await;
    check(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameters");
    let (st, b) = s.post("/ledger/account/a/deposit", json!({})).await;
    check(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameters");
    let big = format!("{{\"owner\": \"{}\", \"overdraft-limit\": 1}}", "x".repeat(100_000));
    let (st, b) = s.call("POST", "/ledger/account/a/open", &[JSON], &big).await;
    check(st, &b, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
    let long_id = "k".repeat(300);
    let (st, b) = s.post(&format!("/ledger/account/{long_id}/deposit"), json!({"amount": 1})).await;
    assert!(st.is_client_error(), "an over-long id is the client's error: {st} {b}");
    let (st, b) =
        s.call("POST", "/ledger/account/a/deposit", &[JSON, ("idempotency-key", "")], "{\"amount\": 1}").await;
    check(st, &b, StatusCode::BAD_REQUEST, "invalid-idempotency-key");
    let (st, b) =
        s.call("POST", "/ledger/account/a/deposit", &[JSON, ("expected-version", "soon")], "{\"amount\": 1}").await;
    check(st, &b, StatusCode::BAD_REQUEST, "invalid-expected-version");
    let (st, b) = s.call("GET", "/ledger/events?limit=0", &[], "").await;
    check(st, &b, StatusCode::BAD_REQUEST, "invalid-query");
    let (st, b) = s.call("GET", "/ledger/events?since=-1", &[], "").await;
    check(st, &b, StatusCode::BAD_REQUEST, "invalid-query");
    let (st, b) = s.call("DELETE", "/ledger/account/a", &[], "").await;
    check(st, &b, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    let (st, b) = s.call("GET", "/ledger/account/never-written", &[], "").await;
    check(st, &b, StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn a_retried_request_returns_the_first_answer_and_runs_once() {
    let s = Server::start(vec![]);
    s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    let body = json!({"amount": 10}).to_string();
    let key = ("idempotency-key", "pay-7");
    let first = s.call("POST", "/ledger/account/acc-1/deposit", &[JSON, key], &body).await;
    let second = s.call("POST", "/ledger/account/acc-1/deposit", &[JSON, key], &body).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(first, second, "the same answer, byte for byte");
    let (_, state) = s.call("GET", "/ledger/account/acc-1", &[], "").await;
    assert_eq!(state["state"]["balance"], "10.00", "the deposit ran once: {state}");
    assert_eq!(state["version"], 2);
}

#[tokio::test]
async fn expected_versions_guard_read_then_write() {
    let s = Server::start(vec![]);
    s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    let (status, _) =
        s.call("POST", "/ledger/account/acc-1/deposit", &[JSON, ("expected-version", "1")], "{\"amount\": 5}").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        s.call("POST", "/ledger/account/acc-1/deposit", &[JSON, ("expected-version", "1")], "{\"amount\": 5}").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("version-conflict")), "{body}");
}

#[tokio::test]
async fn reads_state_events_the_changes_feed_and_views() {
    let s = Server::start(vec![]);
    s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    s.post("/ledger/account/acc-1/deposit", json!({"amount": "2.50"})).await;
    s.post("/ledger/account/acc-2/open", json!({"owner": "bob", "overdraft-limit": 0})).await;
    let (status, events) = s.call("GET", "/ledger/account/acc-1/events", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let versions: Vec<u64> =
        events["events"].as_array().unwrap().iter().map(|e| e["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 2]);
    let (_, feed) = s.call("GET", "/ledger/events?since=0&limit=2", &[], "").await;
    let seqs: Vec<u64> = feed["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(feed["next"], 2);
    let (_, rest) = s.call("GET", "/ledger/events?since=2", &[], "").await;
    assert_eq!(rest["events"][0]["seq"], 3, "gapless and in order");
    assert_eq!(rest["events"][0]["id"], "acc-2");
    let (_, empty) = s.call("GET", "/ledger/events?since=3&wait_ms=50", &[], "").await;
    assert_eq!(empty, json!({"events": [], "next": 3}));
    let (status, row) = s.call("GET", "/ledger/views/account-activity/acc-1", &[], "").await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!((row["deposits"].as_u64(), row["total-in"].as_str()), (Some(1), Some("2.50")));
    let (_, rows) = s.call("GET", "/ledger/views/account-activity?limit=10", &[], "").await;
    let keys: Vec<&str> = rows["rows"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["acc-1", "acc-2"]);
    let (status, _) = s.call("GET", "/ledger/views/account-activity/nobody", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call("GET", "/ledger/views/no-such-view/x", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_metrics_and_auth() {
    let s = Server::start(vec!["s3cret".into()]);
    let (status, body) = s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let auth = ("authorization", "Bearer s3cret");
    let body = json!({"owner": "ann", "overdraft-limit": 0}).to_string();
    let (status, _) = s.call("POST", "/ledger/account/acc-1/open", &[JSON, auth], &body).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.call("POST", "/ledger/account/acc-1/open", &[JSON, auth], &body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, doc) = s.call("GET", "/openapi.json", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/ledger/account/{id}/deposit"]["post"].is_object());
    let (status, metrics) = s.call("GET", "/metrics", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    assert!(text.contains("anthill_commands_total{outcome=\"accepted\"} 1"), "{text}");
    assert!(text.contains("anthill_rejections_total{code=\"already-open\"} 1"), "{text}");
}
