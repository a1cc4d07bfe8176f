//! The HTTP API (axum): routes derived from the domains' metadata, not written per domain.
//!
//! Handlers are thin: they validate the request (path names against the metadata, JSON content type, body
//! size, headers), queue commands with a [`Backend`] and await their answers (the engine answers only once a
//! command is durable; reads run on the blocking pool), and map every outcome to a status and a JSON body
//! with a stable error code. Nothing a client sends can produce a 500.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anthill_runtime::meta::DomainMeta;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::feed::{Entry, Feed, FeedIndex};
use crate::metrics::Metrics;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use tokio::sync::watch;

/// Bodies larger than this are refused with 413 `body-too-large`.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// `limit` query parameters are capped here.
pub const FEED_LIMIT_MAX: usize = 10_000;
pub const VIEW_LIMIT_MAX: usize = 1_000;
/// Long polls of the changes feed wait at most this long.
pub const WAIT_MS_MAX: u64 = 30_000;
/// Events an event stream reads per round (and so holds in memory), at most.
pub const STREAM_BATCH_MAX: usize = 256;
/// How often a stream of one domain's feed looks for new events (the global feed is woken by its indexer).
pub const STREAM_POLL_MS: u64 = 100;
/// Idempotency keys longer than this are refused.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Commands one batch request (`POST /{domain}/commands`) carries at most; more are refused with 413
/// `too-many-commands`.
pub const BATCH_COMMANDS_MAX: usize = 1_000;
/// Bodies of batch requests larger than this are refused with 413 `body-too-large`.
pub const BATCH_BODY_BYTES_MAX: usize = 1024 * 1024;

/// What a command request carries besides its body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// From `Idempotency-Key`, hashed to 128 bits.
    pub command_id: Option<u128>,
    /// The millisecond time of an `Idempotency-Key` that is a UUIDv7: the engine may record the command under
    /// a time-prefixed id instead (see `anthill_runtime::key_time_prefixed_command_id`).
    pub key_time_ms: Option<u64>,
    /// From `Expected-Version`.
    pub expected_version: Option<u64>,
}

/// A committed command, as the API answers it.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandReply {
    Accepted { version: u64, events: Vec<EventAnswer> },
    Rejected { code: String, message: String },
}

/// A committed event, as the API answers it. Typed rather than a `Value` tree: the server builds one per
/// event of every answer. The fields are in name order, as `serde_json`'s objects write them, so the JSON is
/// the same as the single route's and the feed's.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EventAnswer {
    pub aggregate: String,
    pub domain: &'static str,
    pub event: Value,
    pub event_id: String,
    pub id: String,
    pub seq: u64,
    pub version: u64,
}

/// An accepted command's answer: `{"events": [...], "version": N}`, with `"status": 200` inside a batch.
#[derive(serde::Serialize)]
struct AcceptedAnswer {
    events: Vec<EventAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    version: u64,
}

/// One result of a batch request: an accepted command's answer, or the error body the single route would
/// answer, with its `status`.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum BatchResult {
    Accepted(AcceptedAnswer),
    Failed(Value),
}

/// Why the backend could not serve a request. Each maps to one status and stable code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    NotFound(String),
    InvalidId(String),
    InvalidParameters(String),
    VersionConflict(String),
    Overloaded {
        retry_after_ms: u64,
    },
    /// The store cannot take writes now (full, shutting down); the request may be retried later.
    Unavailable(String),
    /// A broken internal invariant or damaged data: logged, answered 500 without details.
    Internal(String),
}

/// A command's durable answer, to await (the engine wakes the task once the batch is synced).
pub type PendingReply =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<CommandReply, BackendError>> + Send + 'static>>;

/// The engine as the HTTP layer sees it: every call by name, JSON in and out. Commands are queued at once and
/// their answers awaited (no thread blocked per command); reads block briefly and run on tokio's blocking pool.
pub trait Backend: Send + Sync + 'static {
    fn domains(&self) -> Vec<&'static DomainMeta>;
    /// Each engine's counters for `/metrics`.
    fn engine_figures(&self) -> Vec<crate::metrics::EngineFigures> {
        Vec::new()
    }
    /// Queues a command; the returned future resolves once its outcome is durable.
    fn submit(
        &self,
        domain: &str,
        aggregate: &str,
        id: &str,
        command: &str,
        body: &[u8],
        meta: RequestMeta,
    ) -> Result<PendingReply, BackendError>;
    /// The state and version of an instance, `None` if it has no events.
    fn state(&self, domain: &str, aggregate: &str, id: &str) -> Result<Option<(u64, Value)>, BackendError>;
    fn events(&self, domain: &str, aggregate: &str, id: &str) -> Result<Vec<Value>, BackendError>;
    /// Up to `limit` envelopes after `since`, and the sequence number to ask from next.
    fn changes(&self, domain: &str, since: u64, limit: usize) -> Result<(Vec<Value>, u64), BackendError>;
    /// Clears a view and folds the whole log into it again; returns the number of events read.
    fn rebuild_view(&self, domain: &str, view: &str) -> Result<u64, BackendError>;
    fn view_get(&self, domain: &str, view: &str, key: &str) -> Result<Option<Value>, BackendError>;
    fn view_range(
        &self,
        domain: &str,
        view: &str,
        from: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, BackendError>;
}

/// Everything a handler needs.
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub metrics: Arc<Metrics>,
    /// Bearer tokens accepted; empty means no authentication.
    pub tokens: Vec<String>,
    pub catalog_html: String,
    pub openapi_json: String,
    /// The global changes feed (`GET /events`); `None` answers those routes 503.
    pub feed: Option<Arc<Feed>>,
    /// Turns true when the server shuts down: long polls answer and event streams end, so that the graceful
    /// shutdown never waits on them.
    pub shutdown: watch::Receiver<bool>,
}

/// An API error: status, stable code, message, and for rejections the model's code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    message: String,
    code: Option<String>,
    retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, error, message: message.into(), code: None, retry_after_s: None }
    }

    fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", what)
    }
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> ApiError {
        match error {
            BackendError::NotFound(m) => ApiError::not_found(m),
            BackendError::InvalidId(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid-id", m),
            BackendError::InvalidParameters(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameters", m)
            }
            BackendError::VersionConflict(m) => ApiError::new(StatusCode::CONFLICT, "version-conflict", m),
            BackendError::Overloaded { retry_after_ms } => ApiError {
                retry_after_s: Some(retry_after_ms.div_ceil(1000).max(1)),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the engine is shedding load")
            },
            BackendError::Unavailable(m) => {
                ApiError { retry_after_s: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m) }
            }
            BackendError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
            }
        }
    }
}

impl ApiError {
    /// The JSON body of the error: `error`, `message`, and `code` for rejections.
    fn body(&self) -> Value {
        let mut body = json!({"error": self.error, "message": self.message});
        if let Some(code) = &self.code {
            body["code"] = json!(code);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

/// Runs blocking backend work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::from(BackendError::Internal(format!("a backend task failed: {e}"))))
}

/// JSON Schema counts `750.0` as an integer; serde does not. Rewrites whole floats within 2^53 as integers so
/// that every schema-valid body reads; tells whether anything changed.
fn normalize_value(value: &mut Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                *value = json!(f as i64);
                return true;
            }
            false
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| normalize_value(v) | changed),
        Value::Object(fields) => fields.values_mut().fold(false, |changed, v| normalize_value(v) | changed),
        _ => false,
    }
}

/// The 128-bit command id of an `Idempotency-Key`: FNV-1a over its bytes, so any client string works.
pub fn command_id_of(key: &str) -> u128 {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in key.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    hash
}

/// The 48-bit millisecond time of a key that is a UUIDv7 in its text form (`xxxxxxxx-xxxx-7xxx-Nxxx-xxxxxxxxxxxx`,
/// hex digits in either case, `N` one of 8, 9, a, b); `None` for any other key.
pub fn uuid_v7_time_ms(key: &str) -> Option<u64> {
    let bytes = key.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    for (at, &byte) in bytes.iter().enumerate() {
        let hyphen = matches!(at, 8 | 13 | 18 | 23);
        if hyphen != (byte == b'-') || (!hyphen && !byte.is_ascii_hexdigit()) {
            return None;
        }
    }
    if bytes[14] != b'7' || !matches!(bytes[19].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b') {
        return None;
    }
    // The first 12 hex digits (the hyphen at 8 skipped), each checked above.
    let digits = bytes[..8].iter().chain(&bytes[9..13]);
    Some(digits.fold(0u64, |time, &digit| (time << 4) | u64::from((digit as char).to_digit(16).unwrap_or(0))))
}

/// The single route's meta: its `Idempotency-Key` (scoped to the route and `body`, see
/// [`RequestMeta::set_key`]) and `Expected-Version` headers.
fn request_meta(headers: &HeaderMap, route: (&str, &str, &str, &str), body: &[u8]) -> Result<RequestMeta, ApiError> {
    let mut meta = RequestMeta::default();
    if let Some(value) = headers.get("idempotency-key") {
        let key = checked_key(value.to_str().unwrap_or(""))?;
        meta.set_key(route, key, &String::from_utf8_lossy(body));
    }
    if let Some(value) = headers.get("expected-version") {
        let version = value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid-expected-version", "an unsigned integer version")
        })?;
        meta.expected_version = Some(version);
    }
    Ok(meta)
}

/// An idempotency key as the header and a batch item both take it: 1 to `IDEMPOTENCY_KEY_BYTES_MAX` visible
/// ASCII bytes (space included).
fn checked_key(key: &str) -> Result<&str, ApiError> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_BYTES_MAX || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let message = format!("1 to {IDEMPOTENCY_KEY_BYTES_MAX} visible ASCII bytes");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid-idempotency-key", message));
    }
    Ok(key)
}

fn check_auth(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.tokens.is_empty() {
        return Ok(());
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if state.tokens.iter().any(|t| constant_time_eq(t.as_bytes(), token.as_bytes())) => Ok(()),
        _ => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn find_domain(state: &AppState, domain: &str) -> Result<&'static DomainMeta, ApiError> {
    state
        .backend
        .domains()
        .into_iter()
        .find(|d| d.name == domain)
        .ok_or_else(|| ApiError::not_found(format!("no domain `{domain}`")))
}

/// The command `aggregate`/`command` of a domain, or 404 `not-found`.
fn find_command(meta_domain: &DomainMeta, aggregate: &str, command: &str) -> Result<(), ApiError> {
    let domain = meta_domain.name;
    let meta_aggregate = meta_domain
        .aggregate(aggregate)
        .ok_or_else(|| ApiError::not_found(format!("domain `{domain}` has no aggregate `{aggregate}`")))?;
    if meta_aggregate.command(command).is_none() {
        return Err(ApiError::not_found(format!("aggregate `{aggregate}` has no command `{command}`")));
    }
    Ok(())
}

/// A body extractor's failure: 413 `body-too-large` over `limit_bytes`, else 400 `invalid-json`.
fn body_error(error: &axum::extract::rejection::BytesRejection, limit_bytes: usize) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", format!("at most {limit_bytes} bytes"))
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", error.body_text())
    }
}

/// 415 `unsupported-media-type` unless the request says `Content-Type: application/json`.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if json_type {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the parameters as Content-Type: application/json",
        ))
    }
}

impl RequestMeta {
    /// Takes an idempotency key, the same way for the single route and a batch's items. A key names one
    /// request: its command id is scoped to its command, instance and body, so a key reused for another
    /// command, instance or body is another command, never the replay of an unrelated answer. A UUIDv7 key
    /// also gives its time (see `key_time_ms`).
    fn set_key(&mut self, (domain, aggregate, id, command): (&str, &str, &str, &str), key: &str, body_text: &str) {
        self.command_id = Some(command_id_of(&format!("{domain}/{aggregate}/{id}/{command}\n{key}\n{body_text}")));
        self.key_time_ms = uuid_v7_time_ms(key);
    }
}

/// Awaits a queued command's durable answer and records it in the metrics. The answer is the single route's
/// 200 body, or its error.
async fn answer_command(
    state: &AppState,
    started: Instant,
    queued: Result<PendingReply, BackendError>,
) -> Result<AcceptedAnswer, ApiError> {
    let reply = match queued {
        Ok(pending) => pending.await,
        Err(error) => Err(error),
    };
    state.metrics.record_command(started.elapsed(), &reply);
    match reply {
        Ok(CommandReply::Accepted { version, events }) => Ok(AcceptedAnswer { events, status: None, version }),
        Ok(CommandReply::Rejected { code, message }) => {
            Err(ApiError { code: Some(code), ..ApiError::new(StatusCode::CONFLICT, "rejected", message) })
        }
        Err(error) => {
            if let BackendError::Overloaded { .. } = error {
                state.metrics.shed.fetch_add(1, Ordering::Relaxed);
            }
            Err(error.into())
        }
    }
}

async fn send_command(
    State(state): State<Arc<AppState>>,
    Path((domain, aggregate, id, command)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    check_auth(&state, &headers)?;
    let started = Instant::now();
    find_command(find_domain(&state, &domain)?, &aggregate, &command)?;
    let body = body.map_err(|e| body_error(&e, BODY_BYTES_MAX))?;
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    // The body as the engine reads it: parsed once here to check it, rewritten only when a number needs it.
    let mut normalized = None;
    if has_body {
        require_json(&headers)?;
        let mut value = match serde_json::from_slice::<Value>(&body) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", "the body is not a JSON object"))
            }
            Err(e) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", e.to_string())),
        };
        if normalize_value(&mut value) {
            normalized = Some(Bytes::from(value.to_string()));
        }
    }
    let meta = request_meta(&headers, (&domain, &aggregate, &id, &command), &body)?;
    let body = normalized.unwrap_or(body);
    // Queueing takes microseconds (never waits: a full queue is refused at once), so it runs here; the answer
    // is awaited without holding a thread.
    let queued = state.backend.submit(&domain, &aggregate, &id, &command, &body, meta);
    let answer = answer_command(&state, started, queued).await?;
    Ok((StatusCode::OK, axum::Json(answer)).into_response())
}

/// One command of a batch request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    aggregate: String,
    id: String,
    command: String,
    /// The command's parameters, as the single route's body; absent or `null` for none.
    #[serde(default)]
    body: Option<Value>,
    /// As the single route's `Idempotency-Key` header.
    #[serde(default)]
    idempotency_key: Option<String>,
    /// As the single route's `Expected-Version` header.
    #[serde(default)]
    expected_version: Option<u64>,
}

/// Checks one item of a batch as the single route checks its path, body and headers; gives the item, its
/// (normalized) body and its metadata.
fn check_item(meta_domain: &'static DomainMeta, item: Value) -> Result<(BatchItem, Bytes, RequestMeta), ApiError> {
    let mut item: BatchItem = serde_json::from_value(item).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            format!("an item is {{\"aggregate\", \"id\", \"command\", \"body\"?, \"idempotency_key\"?, \"expected_version\"?}}: {e}"),
        )
    })?;
    find_command(meta_domain, &item.aggregate, &item.command)?;
    let mut meta = RequestMeta { command_id: None, key_time_ms: None, expected_version: item.expected_version };
    let (body, body_text) = match item.body.take() {
        None | Some(Value::Null) => (Bytes::new(), String::new()),
        Some(mut value @ Value::Object(_)) => {
            let text = value.to_string();
            let body =
                if normalize_value(&mut value) { Bytes::from(value.to_string()) } else { Bytes::from(text.clone()) };
            (body, text)
        }
        Some(_) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", "`body` is not a JSON object"));
        }
    };
    if let Some(key) = &item.idempotency_key {
        let key = checked_key(key)?;
        meta.set_key((meta_domain.name, &item.aggregate, &item.id, &item.command), key, &body_text);
    }
    Ok((item, body, meta))
}

/// `POST /{domain}/commands`: a JSON array of commands, each queued at once (so they commit together), answered
/// in the same order once every one is durable. Each result is what the single route would answer, with its
/// `status`; the request answers 200 when it is itself well formed.
async fn send_batch(
    State(state): State<Arc<AppState>>,
    Path(domain): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    check_auth(&state, &headers)?;
    let started = Instant::now();
    let meta_domain = find_domain(&state, &domain)?;
    let body = body.map_err(|e| body_error(&e, BATCH_BODY_BYTES_MAX))?;
    require_json(&headers)?;
    let items = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-json",
                "the body is not a JSON array of commands",
            ))
        }
        Err(e) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", e.to_string())),
    };
    if items.len() > BATCH_COMMANDS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-commands",
            format!("a batch carries at most {BATCH_COMMANDS_MAX} commands; this one has {}", items.len()),
        ));
    }
    // Every command is queued before any answer is awaited, so that they share batches and syncs.
    let queued: Vec<Result<Result<PendingReply, BackendError>, ApiError>> = items
        .into_iter()
        .map(|item| {
            let (item, body, meta) = check_item(meta_domain, item)?;
            Ok(state.backend.submit(&domain, &item.aggregate, &item.id, &item.command, &body, meta))
        })
        .collect();
    let mut results = Vec::with_capacity(queued.len());
    let mut retry_after_s: Option<u64> = None;
    for queued in queued {
        let answer = match queued {
            Ok(queued) => answer_command(&state, started, queued).await,
            Err(error) => Err(error),
        };
        results.push(match answer {
            Ok(answer) => BatchResult::Accepted(AcceptedAnswer { status: Some(200), ..answer }),
            Err(error) => {
                retry_after_s = retry_after_s.max(error.retry_after_s);
                let mut answer = error.body();
                answer["status"] = json!(error.status.as_u16());
                BatchResult::Failed(answer)
            }
        });
    }
    #[derive(serde::Serialize)]
    struct BatchAnswer {
        results: Vec<BatchResult>,
    }
    let mut response = (StatusCode::OK, axum::Json(BatchAnswer { results })).into_response();
    if let Some(seconds) = retry_after_s {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Ok(response)
}

async fn read_state(
    State(state): State<Arc<AppState>>,
    Path((domain, aggregate, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    find_domain(&state, &domain)?
        .aggregate(&aggregate)
        .ok_or_else(|| ApiError::not_found(format!("no aggregate `{aggregate}`")))?;
    let backend = Arc::clone(&state.backend);
    let (d, a, i) = (domain.clone(), aggregate.clone(), id.clone());
    match blocking(move || backend.state(&d, &a, &i)).await?? {
        Some((version, value)) => Ok(axum::Json(json!({"id": id, "version": version, "state": value})).into_response()),
        None => Err(ApiError::not_found(format!("`{aggregate}` `{id}` has no events"))),
    }
}

async fn read_events(
    State(state): State<Arc<AppState>>,
    Path((domain, aggregate, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    find_domain(&state, &domain)?
        .aggregate(&aggregate)
        .ok_or_else(|| ApiError::not_found(format!("no aggregate `{aggregate}`")))?;
    let backend = Arc::clone(&state.backend);
    let events = blocking(move || backend.events(&domain, &aggregate, &id)).await??;
    Ok(axum::Json(json!({"events": events})).into_response())
}

#[derive(serde::Deserialize)]
struct FeedQuery {
    since: Option<String>,
    limit: Option<String>,
    wait_ms: Option<String>,
}

fn parse_query<T: std::str::FromStr>(name: &str, value: Option<&str>, default: T) -> Result<T, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", format!("`{name}` must be a number"))),
    }
}

async fn read_changes(
    State(state): State<Arc<AppState>>,
    Path(domain): Path<String>,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    find_domain(&state, &domain)?;
    let (since, limit, wait_ms) = feed_params(query)?;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let mut shutdown = state.shutdown.clone();
    loop {
        let backend = Arc::clone(&state.backend);
        let d = domain.clone();
        let (events, next) = blocking(move || backend.changes(&d, since, limit)).await??;
        if !events.is_empty() || Instant::now() >= deadline || *shutdown.borrow() {
            return Ok(axum::Json(json!({"events": events, "next": next})).into_response());
        }
        // Long poll: bounded by the deadline; each round is one short read transaction.
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// `since`, `limit` and `wait_ms` of a feed request, checked.
fn feed_params(
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(u64, usize, u64), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", e.body_text()))?;
    let since: u64 = parse_query("since", query.since.as_deref(), 0)?;
    let limit: usize = parse_query("limit", query.limit.as_deref(), 100)?;
    let wait_ms: u64 = parse_query("wait_ms", query.wait_ms.as_deref(), 0)?;
    if limit == 0 || limit > FEED_LIMIT_MAX || wait_ms > WAIT_MS_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            format!("`limit` is 1 to {FEED_LIMIT_MAX}, `wait_ms` at most {WAIT_MS_MAX}"),
        ));
    }
    Ok((since, limit, wait_ms))
}

fn global_feed(state: &AppState) -> Result<Arc<Feed>, ApiError> {
    state.feed.clone().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "this server keeps no global feed")
    })
}

/// Up to `limit` entries of the global feed after `since` (and at most `until`, the last number handed out), as
/// the per-domain feed's JSON with `seq` the global number and `domain_seq` the domain's; and the next cursor.
pub fn global_page(
    backend: &dyn Backend,
    index: &FeedIndex,
    since: u64,
    until: u64,
    limit: usize,
) -> Result<(Vec<Value>, u64), BackendError> {
    let entries = index.entries(since, until, limit).map_err(|e| BackendError::Internal(e.to_string()))?;
    let next = entries.last().map_or(since, |e| e.seq);
    let mut out = Vec::with_capacity(entries.len());
    // Runs of one domain's consecutive events are read together.
    let mut rest: &[Entry] = &entries;
    while let Some(first) = rest.first() {
        let run = rest
            .iter()
            .zip(first.domain_seq..)
            .take_while(|(e, expected)| e.domain == first.domain && e.domain_seq == *expected)
            .count();
        let (events, _) = backend.changes(&first.domain, first.domain_seq - 1, run)?;
        if events.len() != run {
            return Err(BackendError::Internal(format!(
                "the feed index points at events {}..{} of `{}`, which has fewer",
                first.domain_seq,
                first.domain_seq + run as u64,
                first.domain
            )));
        }
        for (entry, mut event) in rest[..run].iter().zip(events) {
            event["domain_seq"] = event["seq"].take();
            event["seq"] = json!(entry.seq);
            out.push(event);
        }
        rest = &rest[run..];
    }
    Ok((out, next))
}

/// Waits until the global feed has something after `since`, the deadline passes, or the server shuts down;
/// returns the last number handed out, and whether the indexer has stopped (nothing more will come).
async fn wait_for_global(
    feed: &Feed,
    since: u64,
    deadline: Instant,
    shutdown: &mut watch::Receiver<bool>,
) -> (u64, bool) {
    let mut published = feed.published.clone();
    loop {
        let until = *published.borrow_and_update();
        if until > since || *shutdown.borrow() {
            return (until, false);
        }
        tokio::select! {
            changed = published.changed() => if changed.is_err() { return (until, true) },
            _ = shutdown.changed() => {}
            () = tokio::time::sleep_until(deadline.into()) => return (until, false),
        }
    }
}

async fn read_global_changes(
    State(state): State<Arc<AppState>>,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    let feed = global_feed(&state)?;
    let (since, limit, wait_ms) = feed_params(query)?;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let mut shutdown = state.shutdown.clone();
    let (until, _) = wait_for_global(&feed, since, deadline, &mut shutdown).await;
    let backend = Arc::clone(&state.backend);
    let (events, next) = blocking(move || global_page(backend.as_ref(), &feed.index, since, until, limit)).await??;
    Ok(axum::Json(json!({"events": events, "next": next})).into_response())
}

#[derive(serde::Deserialize)]
struct StreamQuery {
    since: Option<String>,
}

/// Where a stream starts: after `Last-Event-ID` (a reconnecting `EventSource`) if sent, else after `since`.
fn stream_start(
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
) -> Result<u64, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", e.body_text()))?;
    if let Some(value) = headers.get("last-event-id") {
        return value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid-last-event-id", "Last-Event-ID is a sequence number")
        });
    }
    parse_query("since", query.since.as_deref(), 0)
}

/// What an event stream follows.
#[derive(Clone)]
enum StreamSource {
    Global(Arc<Feed>),
    Domain(String),
}

struct StreamState {
    source: StreamSource,
    backend: Arc<dyn Backend>,
    shutdown: watch::Receiver<bool>,
    since: u64,
    pending: std::collections::VecDeque<SseEvent>,
    done: bool,
}

impl StreamState {
    /// The next batch after `since`, as SSE messages (`id` = the sequence number, `data` = the event's JSON).
    async fn fill(&mut self) -> Result<(), BackendError> {
        loop {
            let backend = Arc::clone(&self.backend);
            let since = self.since;
            let (events, next) = match &self.source {
                StreamSource::Global(feed) => {
                    let until = *feed.published.borrow();
                    let feed = Arc::clone(feed);
                    blocking(move || global_page(backend.as_ref(), &feed.index, since, until, STREAM_BATCH_MAX))
                        .await
                        .map_err(|e| BackendError::Internal(e.message))??
                }
                StreamSource::Domain(domain) => {
                    let domain = domain.clone();
                    blocking(move || backend.changes(&domain, since, STREAM_BATCH_MAX))
                        .await
                        .map_err(|e| BackendError::Internal(e.message))??
                }
            };
            if !events.is_empty() {
                for event in events {
                    let seq = event["seq"].as_u64().unwrap_or(0);
                    self.pending.push_back(SseEvent::default().id(seq.to_string()).data(event.to_string()));
                }
                self.since = next;
                return Ok(());
            }
            // Caught up: a stream ends here once the server shuts down.
            if *self.shutdown.borrow() {
                self.done = true;
                return Ok(());
            }
            match &self.source {
                StreamSource::Global(feed) => {
                    let far = Instant::now() + Duration::from_secs(3600);
                    if wait_for_global(feed, self.since, far, &mut self.shutdown).await.1 {
                        self.done = true;
                        return Ok(());
                    }
                }
                StreamSource::Domain(_) => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(STREAM_POLL_MS)) => {}
                        _ = self.shutdown.changed() => {}
                    }
                }
            }
        }
    }
}

fn event_stream(state: &AppState, source: StreamSource, since: u64) -> Response {
    let start = StreamState {
        source,
        backend: Arc::clone(&state.backend),
        shutdown: state.shutdown.clone(),
        since,
        pending: std::collections::VecDeque::new(),
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(event), s));
            }
            if s.done {
                return None;
            }
            if let Err(error) = s.fill().await {
                // The stream ends with the error; a client reconnects with its Last-Event-ID.
                s.done = true;
                let message = ApiError::from(error).message;
                return Some((Ok(SseEvent::default().event("feed-error").data(message)), s));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

async fn stream_global_changes(
    State(state): State<Arc<AppState>>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    let feed = global_feed(&state)?;
    let since = stream_start(query, &headers)?;
    Ok(event_stream(&state, StreamSource::Global(feed), since))
}

async fn stream_changes(
    State(state): State<Arc<AppState>>,
    Path(domain): Path<String>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    find_domain(&state, &domain)?;
    let since = stream_start(query, &headers)?;
    Ok(event_stream(&state, StreamSource::Domain(domain), since))
}

async fn rebuild_view(
    State(state): State<Arc<AppState>>,
    Path((domain, view)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    find_domain(&state, &domain)?.view(&view).ok_or_else(|| ApiError::not_found(format!("no view `{view}`")))?;
    let backend = Arc::clone(&state.backend);
    let (d, v) = (domain.clone(), view.clone());
    let events = blocking(move || backend.rebuild_view(&d, &v)).await??;
    tracing::info!(domain, view, events, "view rebuilt");
    Ok(axum::Json(json!({"domain": domain, "view": view, "events": events})).into_response())
}

#[derive(serde::Deserialize)]
struct RangeQuery {
    from: Option<String>,
    limit: Option<String>,
}

async fn read_view_range(
    State(state): State<Arc<AppState>>,
    Path((domain, view)): Path<(String, String)>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    find_domain(&state, &domain)?.view(&view).ok_or_else(|| ApiError::not_found(format!("no view `{view}`")))?;
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", e.body_text()))?;
    let limit: usize = parse_query("limit", query.limit.as_deref(), 100)?;
    if limit == 0 || limit > VIEW_LIMIT_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            format!("`limit` is 1 to {VIEW_LIMIT_MAX}"),
        ));
    }
    let backend = Arc::clone(&state.backend);
    let rows = blocking(move || backend.view_range(&domain, &view, query.from.as_deref(), limit)).await??;
    let rows: Vec<Value> = rows.into_iter().map(|(key, row)| json!({"key": key, "row": row})).collect();
    Ok(axum::Json(json!({"rows": rows})).into_response())
}

async fn read_view_row(
    State(state): State<Arc<AppState>>,
    Path((domain, view, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    check_auth(&state, &headers)?;
    find_domain(&state, &domain)?.view(&view).ok_or_else(|| ApiError::not_found(format!("no view `{view}`")))?;
    let backend = Arc::clone(&state.backend);
    let (d, v, k) = (domain.clone(), view.clone(), key.clone());
    match blocking(move || backend.view_get(&d, &v, &k)).await?? {
        Some(row) => Ok(axum::Json(row).into_response()),
        None => Err(ApiError::not_found(format!("view `{view}` has no row `{key}`"))),
    }
}

async fn catalog(State(state): State<Arc<AppState>>) -> Response {
    Html(state.catalog_html.clone()).into_response()
}

async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi_json.clone()).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&state.backend.engine_figures()))
        .into_response()
}

async fn live_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], include_str!("../templates/live.js")).into_response()
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json")
}

/// The router for a backend. `tokens` empty means no authentication.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(catalog))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/assets/live.js", get(live_js))
        .route("/events", get(read_global_changes))
        .route("/events/stream", get(stream_global_changes))
        .route("/{domain}/events", get(read_changes))
        .route("/{domain}/events/stream", get(stream_changes))
        .route("/_admin/{domain}/views/{view}/rebuild", post(rebuild_view))
        .route("/{domain}/views/{view}", get(read_view_range))
        .route("/{domain}/views/{view}/{key}", get(read_view_row))
        .route("/{domain}/{aggregate}/{id}", get(read_state))
        .route("/{domain}/{aggregate}/{id}/events", get(read_events))
        .route("/{domain}/{aggregate}/{id}/{command}", post(send_command))
        // Two segments, the second literal: no clash with the instance routes (three or four segments).
        .route("/{domain}/commands", post(send_batch).layer(DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX)))
        .fallback(fallback)
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "see /openapi.json for the methods")
        })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, expected: Option<u64>) {
        assert_eq!(uuid_v7_time_ms(key), expected, "{key}");
    }

    #[test]
    fn uuid_v7_keys_give_their_millisecond_time_and_other_keys_none() {
        check("0190a1b2-c3d4-7abc-8def-0123456789ab", Some(0x0190_a1b2_c3d4));
        check("0190A1B2-C3D4-7ABC-BDEF-0123456789AB", Some(0x0190_a1b2_c3d4));
        check("ffffffff-ffff-7fff-9fff-ffffffffffff", Some(0xffff_ffff_ffff));
        // Another version, another variant, another length or layout, not hex.
        check("0190a1b2-c3d4-4abc-8def-0123456789ab", None);
        check("0190a1b2-c3d4-7abc-cdef-0123456789ab", None);
        check("0190a1b2-c3d4-7abc-7def-0123456789ab", None);
        check("0190a1b2c3d47abc8def0123456789ab", None);
        check("0190a1b2-c3d4-7abc-8def-0123456789ab0", None);
        check("0190a1b2c-3d4-7abc-8def-0123456789ab", None);
        check("0190a1b2-c3d4-7abc-8def-0123456789ag", None);
        check("+190a1b2-c3d4-7abc-8def-0123456789ab", None);
        check("pay-7", None);
        check("", None);
    }
}
