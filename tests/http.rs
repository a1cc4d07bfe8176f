//! The HTTP API against real engines on a temporary store: every status and stable error code a client can
//! provoke, idempotent retries, optimistic concurrency, reads, the changes feed, views, OpenAPI and metrics.

use std::sync::Arc;

use anthill::feed::Indexer;
use anthill::http::{router, AppState, Backend};
use anthill::metrics::Metrics;
use anthill::serve::{open_engines, start_feed, EngineArgs};
use anthill::service::Engines;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    engine: EngineArgs,
}

struct Server {
    app: axum::Router,
    indexer: Option<Indexer>,
    engines: Option<Arc<Engines>>,
    stop: tokio::sync::watch::Sender<bool>,
    dir: Arc<tempfile::TempDir>,
}

impl Server {
    fn start(tokens: Vec<String>) -> Server {
        Server::start_in(Arc::new(tempfile::tempdir().expect("a temporary folder")), tokens)
    }

    /// A server on the stores in `dir` (a restart when another server used them before).
    fn start_in(dir: Arc<tempfile::TempDir>, tokens: Vec<String>) -> Server {
        Server::start_with(dir, tokens, &["--partitions", "2"])
    }

    /// A server whose engines take these `serve` options.
    fn start_with(dir: Arc<tempfile::TempDir>, tokens: Vec<String>, engine_args: &[&str]) -> Server {
        let config = Args::parse_from(std::iter::once("test").chain(engine_args.iter().copied())).engine.config();
        let engines = Arc::new(open_engines(dir.path(), config).expect("the engines open"));
        let (feed, indexer) = start_feed(dir.path(), &engines).expect("the feed index opens");
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState {
            backend: engines.clone(),
            metrics: Arc::new(Metrics::default()),
            tokens,
            catalog_html: "<html>catalog</html>".into(),
            openapi_json: anthill::openapi::document(anthill::DOMAINS).to_string(),
            feed: Some(feed),
            shutdown,
        });
        Server { app: router(state), indexer: Some(indexer), engines: Some(engines), stop, dir }
    }

    /// Stops everything (as the server does on shutdown) and gives back the folder of the stores.
    fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.stop.send_replace(true);
        if let Some(mut indexer) = self.indexer.take() {
            indexer.stop();
        }
        let dir = Arc::clone(&self.dir);
        let engines = self.engines.take();
        drop(self);
        drop(engines);
        dir
    }

    async fn get_json(&self, uri: &str, headers: &[(&str, &str)]) -> Value {
        let (status, body) = self.call("GET", uri, headers, "").await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
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
    // A whole number written as a float (valid for JSON Schema) reads as the integer.
    let (status, body) = s.post("/ledger/account/acc-1/deposit", json!({"amount": 750.0})).await;
    assert_eq!((status, body["events"][0]["event"]["amount"].as_str()), (StatusCode::OK, Some("750.00")), "{body}");
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
    // Too long, or with a byte a batch item's key may not hold either: the same rule for both routes.
    for key in ["k".repeat(129), "a\tb".to_owned()] {
        let (st, b) =
            s.call("POST", "/ledger/account/a/deposit", &[JSON, ("idempotency-key", &key)], "{\"amount\": 1}").await;
        check(st, &b, StatusCode::BAD_REQUEST, "invalid-idempotency-key");
    }
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

/// The `command_id` of the last event of `acc-1`, as the changes feed shows it.
async fn last_command_id(s: &Server) -> String {
    let (_, events) = s.call("GET", "/ledger/account/acc-1/events", &[], "").await;
    let last = events["events"].as_array().and_then(|events| events.last()).cloned().unwrap_or_default();
    let (_, feed) =
        s.call("GET", &format!("/ledger/events?since={}", last["seq"].as_u64().unwrap() - 1), &[], "").await;
    feed["events"][0]["command_id"].as_str().unwrap_or_default().to_owned()
}

/// A deposit of 1 to `acc-1` under this idempotency key, sent twice: it must run once, and `expected_prefix`
/// says what the first 12 hex digits of its command id are (`None`: anything but the key's).
async fn deposit_twice(s: &Server, key: &str, balance: &str, expected_prefix: Option<&str>) {
    let body = json!({"amount": 1}).to_string();
    let first = s.call("POST", "/ledger/account/acc-1/deposit", &[JSON, ("idempotency-key", key)], &body).await;
    let second = s.call("POST", "/ledger/account/acc-1/deposit", &[JSON, ("idempotency-key", key)], &body).await;
    assert_eq!(first.0, StatusCode::OK, "{key}: {}", first.1);
    assert_eq!(first, second, "{key}: the same answer");
    let (_, state) = s.call("GET", "/ledger/account/acc-1", &[], "").await;
    assert_eq!(state["state"]["balance"], balance, "{key}: ran once: {state}");
    let command_id = last_command_id(s).await.replace('-', "");
    let key_prefix = key.replace('-', "")[..12].to_ascii_lowercase();
    match expected_prefix {
        Some(prefix) => assert_eq!(&command_id[..12], prefix, "{key}: {command_id}"),
        None => assert_ne!(command_id[..12], key_prefix, "{key}: {command_id}"),
    }
}

#[tokio::test]
async fn uuid_v7_idempotency_keys_are_recorded_under_time_prefixed_ids_once_the_store_maps_them() {
    let s = Server::start(vec![]);
    s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    // A new store: a UUIDv7 key (either case) keeps its time prefix, so its record is not a random insert.
    let v7 = "0190A1B2-C3D4-7abc-9def-0123456789ab";
    deposit_twice(&s, v7, "1.00", Some("0190a1b2c3d4")).await;
    // The same key for another request is another command, under another id with the same time prefix.
    let (status, _) =
        s.call("POST", "/ledger/account/acc-1/deposit", &[JSON, ("idempotency-key", v7)], "{\"amount\": 2}").await;
    assert_eq!(status, StatusCode::OK);
    let (_, state) = s.call("GET", "/ledger/account/acc-1", &[], "").await;
    assert_eq!(state["state"]["balance"], "3.00", "{state}");
    // Other keys are hashed: a UUIDv4, a UUIDv7 with a wrong variant, any string.
    deposit_twice(&s, "0190a1b2-c3d4-4abc-9def-0123456789ab", "4.00", None).await;
    deposit_twice(&s, "0190a1b2-c3d4-7abc-cdef-0123456789ab", "5.00", None).await;
    deposit_twice(&s, "0190a1b2c3d4-7abc-9def-0123456789ab-", "6.00", None).await;
    let dir = s.stop();

    // The same store as an older format left it: marked format 6 on opening, its clients' UUIDv7 keys keep
    // their hashed ids for a day (a request sent before the upgrade is retried with its old id), and
    // newer ones are time-prefixed.
    let store = dir.path().join("ledger");
    let reader = anthill_runtime::engine::Engine::<anthill::ledger::Ledger>::open_read_only(
        &store,
        anthill_runtime::engine::Config::default(),
    )
    .expect("the store opens for reads");
    reader.store().put_raw("meta", b"format", &5u32.to_le_bytes()).expect("the meta record is written");
    drop(reader);
    let s = Server::start_in(dir, vec![]);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let v7_at = |ms: u64| {
        let h = format!("{ms:012x}");
        format!("{}-{}-7000-8000-000000000001", &h[..8], &h[8..])
    };
    deposit_twice(&s, &v7_at(now_ms), "7.00", None).await;
    let later = v7_at(now_ms + 2 * 24 * 60 * 60 * 1_000);
    deposit_twice(&s, &later, "8.00", Some(&later.replace('-', "")[..12])).await;
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
    for uri in ["/events", "/events/stream", "/ledger/events/stream"] {
        let (status, body) = s.call("GET", uri, &[], "").await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{uri}");
    }
    let (status, _) = s.call("GET", "/events?wait_ms=0", &[auth], "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, doc) = s.call("GET", "/openapi.json", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/ledger/account/{id}/deposit"]["post"].is_object());
    let (status, metrics) = s.call("GET", "/metrics", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    assert!(text.contains("anthill_commands_total{outcome=\"accepted\"} 1"), "{text}");
    assert!(text.contains("anthill_rejections_total{code=\"already-open\"} 1"), "{text}");
    // The engine's side: two commands sent one after the other made two batches of one.
    assert!(text.contains("anthill_batches_total{domain=\"ledger\"} 2\n"), "{text}");
    assert!(text.contains("anthill_batch_commands_bucket{domain=\"ledger\",le=\"1\"} 2\n"), "{text}");
    assert!(text.contains("anthill_batch_commands_sum{domain=\"ledger\"} 2\n"), "{text}");
    assert!(text.contains("anthill_commit_seconds_bucket{domain=\"ledger\",le=\"+Inf\"} 2\n"), "{text}");
    assert!(text.contains("anthill_commit_seconds_count{domain=\"ledger\"} 2\n"), "{text}");
    assert!(text.contains("anthill_queue_depth{domain=\"ledger\"} 0\n"), "{text}");
    assert!(text.contains("# TYPE anthill_commit_seconds histogram\n"), "{text}");
    // Two events are far from a checkpoint step (they come every 8,192 events by default).
    assert!(text.contains("anthill_checkpoint_steps_total{domain=\"ledger\"} 0\n"), "{text}");
    assert!(text.contains("anthill_failed_checkpoints_total{domain=\"ledger\"} 0\n"), "{text}");
    // Each phase of the writers took some time for those two batches.
    for phase in ["decide", "write", "commit"] {
        let prefix = format!("anthill_writer_seconds_total{{domain=\"ledger\",phase=\"{phase}\"}} ");
        let line = text.lines().find(|line| line.starts_with(&prefix)).unwrap_or_else(|| panic!("{prefix}: {text}"));
        let seconds: f64 = line[prefix.len()..].parse().expect("a number");
        assert!(seconds > 0.0, "{line}");
    }
}

/// Reads the global feed from `since` until it holds `count` events, by long polls (each answers as soon as
/// there is something new, so this takes as many rounds as the indexer takes batches).
async fn global_events(s: &Server, since: u64, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut next = since;
    // Bounded: every round but the last adds at least one event, or waits up to its 30 s.
    for _ in 0..count + 2 {
        if events.len() >= count {
            break;
        }
        let page = s.get_json(&format!("/events?since={next}&limit=7&wait_ms=30000"), &[]).await;
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        next = page["next"].as_u64().unwrap();
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_feed_is_gapless_and_ordered_across_domains_and_survives_a_restart() {
    let s = Arc::new(Server::start(vec![]));
    let mut tasks = Vec::new();
    for n in 0..3 {
        let server = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let s = server;
            let account = format!("/ledger/account/acc-{n}");
            let (status, body) =
                s.post(&format!("{account}/open"), json!({"owner": "ann", "overdraft-limit": 0})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            for _ in 0..5 {
                let (status, body) = s.post(&format!("{account}/deposit"), json!({"amount": 1})).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }));
        let server = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let s = server;
            let sku = format!("/factory/stock-item/sku-00{n}");
            let (status, body) =
                s.post(&format!("{sku}/register"), json!({"availability": "rare", "back-order-tolerance": 0})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            for _ in 0..5 {
                let (status, body) = s.post(&format!("{sku}/receive"), json!({"qty": 2, "source": "delivery"})).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = global_events(&s, 0, 36).await;
    assert_eq!(events.len(), 36);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=36).collect::<Vec<u64>>(), "gapless and in order");
    for domain in ["ledger", "factory"] {
        let mine: Vec<&Value> = events.iter().filter(|e| e["domain"] == domain).collect();
        let domain_seqs: Vec<u64> = mine.iter().map(|e| e["domain_seq"].as_u64().unwrap()).collect();
        assert_eq!(domain_seqs, (1..=18).collect::<Vec<u64>>(), "each domain's events, in its order");
        let (_, own) = s.call("GET", &format!("/{domain}/events?limit=100"), &[], "").await;
        for (global, local) in mine.iter().zip(own["events"].as_array().unwrap()) {
            assert_eq!(global["event"], local["event"]);
            assert_eq!(global["event_id"], local["event_id"]);
        }
    }
    let (_, empty) = s.call("GET", "/events?since=36&wait_ms=10", &[], "").await;
    assert_eq!(empty, json!({"events": [], "next": 36}));

    // A restart keeps the numbering: the same answer, and new events continue it.
    let before = s.get_json("/events?since=0&limit=100", &[]).await;
    let dir = Arc::into_inner(s).expect("the tasks are done").stop();
    let s = Server::start_in(dir, vec![]);
    assert_eq!(s.get_json("/events?since=0&limit=100", &[]).await, before);
    s.post("/ledger/account/acc-0/deposit", json!({"amount": 1})).await;
    let after = global_events(&s, 36, 1).await;
    assert_eq!((after[0]["seq"].as_u64(), after[0]["domain_seq"].as_u64()), (Some(37), Some(19)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_of_the_global_feed_wakes_on_a_new_event() {
    let s = Arc::new(Server::start(vec![]));
    let waiting = {
        let s = Arc::clone(&s);
        tokio::spawn(async move { s.get_json("/events?since=0&wait_ms=30000", &[]).await })
    };
    let (status, _) = s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    assert_eq!(status, StatusCode::OK);
    let page = waiting.await.unwrap();
    assert_eq!(page["events"][0]["event"]["type"], "opened", "{page}");
    assert_eq!(page["next"], 1);
    let (st, b) = s.call("GET", "/events?limit=0", &[], "").await;
    assert_eq!((st, b["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid-query")));
    let (st, b) = s.call("GET", "/events/stream", &[("last-event-id", "x")], "").await;
    assert_eq!((st, b["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid-last-event-id")));
}

/// The `(id, data)` of each message of an event stream.
fn sse_messages(text: &str) -> Vec<(u64, Value)> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("data:")))
        .map(|block| {
            let field = |name: &str| {
                block.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_owned()
            };
            (field("id:").parse().unwrap(), serde_json::from_str(&field("data:")).unwrap())
        })
        .collect()
}

/// An open event stream, read frame by frame.
struct Stream {
    body: axum::body::BodyDataStream,
    text: String,
}

impl Stream {
    async fn open(s: &Server, uri: &str, headers: &[(&str, &str)]) -> Stream {
        let mut request = Request::builder().uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = s.app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Stream { body: response.into_body().into_data_stream(), text: String::new() }
    }

    /// Reads until the stream holds a message with id `id` (the stream's own order: every event arrives).
    async fn until(&mut self, id: u64) -> Vec<(u64, Value)> {
        while !sse_messages(&self.text).iter().any(|(i, _)| *i == id) {
            let frame = self.body.next().await.expect("the stream goes on").expect("a frame");
            self.text.push_str(&String::from_utf8_lossy(&frame));
        }
        sse_messages(&self.text)
    }

    /// Reads to the end (the server shut down).
    async fn rest(mut self) -> Vec<(u64, Value)> {
        while let Some(frame) = self.body.next().await {
            self.text.push_str(&String::from_utf8_lossy(&frame.expect("a frame")));
        }
        sse_messages(&self.text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_carry_ids_follow_live_resume_after_last_event_id_and_end_on_shutdown() {
    let s = Server::start(vec![]);
    s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    for _ in 0..3 {
        s.post("/ledger/account/acc-1/deposit", json!({"amount": 1})).await;
    }
    global_events(&s, 0, 4).await;
    let mut global = Stream::open(&s, "/events/stream?since=1", &[]).await;
    let mut domain = Stream::open(&s, "/ledger/events/stream", &[]).await;
    let ids: Vec<u64> = global.until(4).await.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 3, 4]);
    domain.until(4).await;
    // Live: a new event reaches both open streams.
    s.post("/ledger/account/acc-1/deposit", json!({"amount": 1})).await;
    let messages = global.until(5).await;
    assert_eq!(messages.last().map(|(_, data)| data["domain_seq"].as_u64()), Some(Some(5)));
    assert!(messages.iter().all(|(id, data)| data["seq"].as_u64() == Some(*id)));
    domain.until(5).await;
    let resumed = Stream::open(&s, "/events/stream?since=0", &[("last-event-id", "3")]).await;
    // Shutting down ends every stream once it has sent what there is.
    s.stop.send_replace(true);
    let ids: Vec<u64> = global.rest().await.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 3, 4, 5]);
    let ids: Vec<u64> = resumed.rest().await.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [4, 5], "Last-Event-ID wins over since");
    let domain = domain.rest().await;
    assert_eq!(domain.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(domain[0].1["event"]["type"], "opened");
}

#[tokio::test]
async fn a_view_rebuilds_over_http() {
    let s = Server::start(vec!["s3cret".into()]);
    let auth = ("authorization", "Bearer s3cret");
    let body = json!({"owner": "ann", "overdraft-limit": 0}).to_string();
    s.call("POST", "/ledger/account/acc-1/open", &[JSON, auth], &body).await;
    let (status, _) = s.call("POST", "/_admin/ledger/views/account-activity/rebuild", &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = s.call("POST", "/_admin/ledger/views/account-activity/rebuild", &[auth], "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], 1);
    let (status, _) = s.call("POST", "/_admin/ledger/views/nope/rebuild", &[auth], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_feed_index_catches_up_on_start_with_events_committed_without_it() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    {
        // Engines alone, as if the server had stopped before indexing these.
        let config = Args::parse_from(["test"]).engine.config();
        let engines = open_engines(dir.path(), config).unwrap();
        let meta = anthill::http::RequestMeta::default();
        let open = br#"{"owner": "ann", "overdraft-limit": 0}"#;
        for id in ["a", "b", "c"] {
            engines.submit("ledger", "account", id, "open", open, meta).unwrap().await.unwrap();
        }
    }
    let s = Server::start_in(dir, vec![]);
    // No waiting: the server catches the index up before it answers.
    let page = s.get_json("/events?since=0", &[]).await;
    let ids: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(page["next"], 3);
}

/// The results of a batch answer, checked to be one per item.
async fn batch(s: &Server, headers: &[(&str, &str)], items: &Value) -> (StatusCode, Value) {
    let mut all = vec![JSON];
    all.extend_from_slice(headers);
    s.call("POST", "/ledger/commands", &all, &items.to_string()).await
}

#[tokio::test]
async fn a_batch_answers_each_command_in_order_as_the_single_route_would() {
    let s = Server::start(vec![]);
    let items = json!([
        {"aggregate": "account", "id": "acc-1", "command": "open", "body": {"owner": "ann", "overdraft-limit": 100}},
        {"aggregate": "account", "id": "acc-2", "command": "open", "body": {"owner": "bob", "overdraft-limit": 0}},
        {"aggregate": "account", "id": "acc-1", "command": "deposit", "body": {"amount": "2.50"}},
        {"aggregate": "account", "id": "acc-2", "command": "withdraw", "body": {"amount": 1}},
        {"aggregate": "account", "id": "acc-1", "command": "explode", "body": {}},
        {"aggregate": "nobody", "id": "x", "command": "open"},
        {"aggregate": "account", "id": "acc-3", "command": "deposit", "body": {"amount": "1.234"}},
        {"aggregate": "account", "id": "acc-3", "command": "deposit", "body": [1]},
        {"aggregate": "account", "id": "acc-3", "command": "deposit", "body": {"amount": 1}, "idempotency_key": ""},
        {"aggregate": "account", "command": "deposit"},
        "not an object",
        {"aggregate": "account", "id": "acc-1", "command": "deposit", "body": {"amount": 1.0}, "expected_version": 0},
        {"aggregate": "account", "id": "acc-9", "command": "deposit", "body": {"amount": 1.0}}
    ]);
    let (status, body) = batch(&s, &[], &items).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), items.as_array().unwrap().len(), "{body}");
    let summary: Vec<(u64, &str)> = results
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["error"].as_str().or(r["code"].as_str()).unwrap_or("ok")))
        .collect();
    assert_eq!(
        summary,
        [
            (200, "ok"),
            (200, "ok"),
            (200, "ok"),
            (409, "rejected"),
            (404, "not-found"),
            (404, "not-found"),
            (422, "invalid-parameters"),
            (400, "invalid-json"),
            (400, "invalid-idempotency-key"),
            (400, "invalid-json"),
            (400, "invalid-json"),
            (409, "version-conflict"),
            (409, "rejected"),
        ]
    );
    assert_eq!(results[0]["events"][0]["event"]["owner"], "ann");
    assert_eq!(results[0]["events"][0]["id"], "acc-1");
    assert_eq!(results[2]["version"], 2);
    assert_eq!(results[2]["events"][0]["event"], json!({"type": "deposited", "amount": "2.50"}));
    assert_eq!(results[3]["code"], "non-negative");
    assert_eq!(results[12]["code"], "not-open");
    // The single route answers the same commands the same way.
    let (status, single) = s.post("/ledger/account/acc-2/withdraw", json!({"amount": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut from_batch = results[3].clone();
    from_batch.as_object_mut().unwrap().remove("status");
    assert_eq!(single, from_batch);
    let (_, state) = s.call("GET", "/ledger/account/acc-1", &[], "").await;
    assert_eq!((state["version"].as_u64(), state["state"]["balance"].as_str()), (Some(2), Some("2.50")), "{state}");
    let (_, metrics) = s.call("GET", "/metrics", &[], "").await;
    let text = metrics.as_str().unwrap();
    assert!(text.contains("anthill_commands_total{outcome=\"accepted\"} 3"), "{text}");
    assert!(text.contains("anthill_rejections_total{code=\"not-open\"} 1"), "{text}");
}

#[tokio::test]
async fn a_retried_batch_returns_the_first_answers_and_runs_each_command_once() {
    let s = Server::start(vec![]);
    s.post("/ledger/account/acc-1/open", json!({"owner": "ann", "overdraft-limit": 0})).await;
    let items = json!([
        {"aggregate": "account", "id": "acc-1", "command": "deposit", "body": {"amount": 10}, "idempotency_key": "k-1"},
        {"aggregate": "account", "id": "acc-1", "command": "deposit", "body": {"amount": 5}, "idempotency_key": "k-2"},
        {"aggregate": "account", "id": "acc-1", "command": "withdraw", "body": {"amount": 100}, "idempotency_key": "k-3"}
    ]);
    let first = batch(&s, &[], &items).await;
    let second = batch(&s, &[], &items).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first, second, "the same answers, byte for byte");
    let (_, state) = s.call("GET", "/ledger/account/acc-1", &[], "").await;
    assert_eq!(state["state"]["balance"], "15.00", "each deposit ran once: {state}");
    assert_eq!(state["version"], 3);
    // The key is scoped to the command's body: another amount under the same key is another command.
    let other = json!([{"aggregate": "account", "id": "acc-1", "command": "deposit", "body": {"amount": 1},
                        "idempotency_key": "k-1"}]);
    let (_, body) = batch(&s, &[], &other).await;
    assert_eq!(body["results"][0]["version"], 4, "{body}");
    // The same keyed command twice in one batch runs once; both get its answer.
    let twice = json!([
        {"aggregate": "account", "id": "acc-1", "command": "deposit", "body": {"amount": 7}, "idempotency_key": "k-4"},
        {"aggregate": "account", "id": "acc-1", "command": "deposit", "body": {"amount": 7}, "idempotency_key": "k-4"}
    ]);
    let (_, body) = batch(&s, &[], &twice).await;
    assert_eq!(body["results"][0], body["results"][1], "{body}");
    let (_, state) = s.call("GET", "/ledger/account/acc-1", &[], "").await;
    assert_eq!((state["version"].as_u64(), state["state"]["balance"].as_str()), (Some(5), Some("23.00")), "{state}");
}

#[tokio::test]
async fn a_malformed_batch_is_refused_as_a_whole() {
    let s = Server::start(vec!["s3cret".into()]);
    let auth = ("authorization", "Bearer s3cret");
    let one = json!({"aggregate": "account", "id": "acc-1", "command": "open",
                     "body": {"owner": "ann", "overdraft-limit": 0}});
    let (status, body) = batch(&s, &[], &json!([one])).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (status, body) = batch(&s, &[auth], &json!([one])).await;
    assert_eq!((status, body["results"][0]["status"].as_u64()), (StatusCode::OK, Some(200)), "{body}");
    let check = |(status, body): (StatusCode, Value), want_status: StatusCode, want: &str| {
        assert_eq!((status, body["error"].as_str()), (want_status, Some(want)), "{body}");
        assert!(body["message"].is_string(), "{body}");
    };
    check(batch(&s, &[auth], &json!({"commands": []})).await, StatusCode::BAD_REQUEST, "invalid-json");
    check(s.call("POST", "/ledger/commands", &[JSON, auth], "[{").await, StatusCode::BAD_REQUEST, "invalid-json");
    check(
        s.call("POST", "/ledger/commands", &[auth], "[]").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    assert_eq!(batch(&s, &[auth], &json!([])).await, (StatusCode::OK, json!({"results": []})));
    let items: Vec<Value> = (0..=anthill::http::BATCH_COMMANDS_MAX)
        .map(|i| json!({"aggregate": "account", "id": format!("a-{i}"), "command": "deposit", "body": {"amount": 1}}))
        .collect();
    check(batch(&s, &[auth], &json!(items)).await, StatusCode::PAYLOAD_TOO_LARGE, "too-many-commands");
    // Within the batch limit, past the single route's: 1,000 commands of about 100 bytes each.
    let (status, body) = batch(&s, &[auth], &json!(items[..anthill::http::BATCH_COMMANDS_MAX])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"].as_array().map(Vec::len), Some(anthill::http::BATCH_COMMANDS_MAX));
    assert!(body["results"].as_array().unwrap().iter().all(|r| r["code"] == "not-open"), "{body}");
    let big = format!("[{{\"aggregate\": \"account\", \"id\": \"{}\", \"command\": \"open\"}}]", "x".repeat(2 << 20));
    check(
        s.call("POST", "/ledger/commands", &[JSON, auth], &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
    );
    let (status, body) = s.call("POST", "/nowhere/commands", &[JSON, auth], "[]").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not-found")));
    let (status, body) = s.call("GET", "/ledger/commands", &[auth], "").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method-not-allowed")));
}

#[tokio::test]
async fn a_batch_with_shed_commands_says_when_to_retry() {
    // Queues of one command: a batch of many is bound to find the queue full for some.
    let dir = Arc::new(tempfile::tempdir().expect("a temporary folder"));
    let s = Server::start_with(dir, vec![], &["--partitions", "1", "--queue-max", "1"]);
    let items: Vec<Value> = (0..anthill::http::BATCH_COMMANDS_MAX)
        .map(|i| json!({"aggregate": "account", "id": format!("a-{i}"), "command": "deposit", "body": {"amount": 1}}))
        .collect();
    let request = Request::post("/ledger/commands")
        .header("content-type", "application/json")
        .body(Body::from(json!(items).to_string()))
        .unwrap();
    let response = s.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let retry_after = response.headers().get("retry-after").cloned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), items.len());
    let mut shed = 0;
    for result in results {
        match (result["status"].as_u64(), result["error"].as_str()) {
            (Some(409), Some("rejected")) => assert_eq!(result["code"], "not-open"),
            (Some(503), Some("overloaded")) => shed += 1,
            other => panic!("unexpected {other:?}: {result}"),
        }
    }
    assert_eq!(retry_after.is_some(), shed > 0, "Retry-After comes with shed commands ({shed} shed)");
    let (_, metrics) = s.call("GET", "/metrics", &[], "").await;
    assert!(metrics.as_str().unwrap().contains(&format!("anthill_shed_total {shed}\n")), "{metrics}");
}

#[tokio::test]
async fn a_state_with_maps_keyed_by_records_reads_as_json_pairs() {
    let s = Server::start(vec![]);
    let order = json!({"order": "o-1", "trader": "t-ann", "side": "buy", "price": "100.00", "qty": 10});
    let (status, body) = s.post("/exchange/order-book/ACME/place-order", order).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let state = s.get_json("/exchange/order-book/ACME", &[]).await;
    // `bids` is keyed by (price, arrival): JSON has no such object keys, so it is a list of [key, value] pairs.
    let bids = state["state"]["bids"].as_array().unwrap_or_else(|| panic!("bids as a list of pairs: {state}"));
    assert_eq!(bids.len(), 1, "{state}");
    assert_eq!(bids[0][1], "o-1", "{state}");
}
