//! `anthill bench DOMAIN --http URL`: the same workload sent to a running `anthill serve` as JSON bodies
//! over `--connections` concurrent keep-alive HTTP/1.1 connections (hyper's client connection API on a
//! two-thread tokio runtime). Each connection sends one request at a time; latency is from sending the
//! request to having read the whole answer, which the server gives only once the command is durable. With
//! `--batch N` each request carries up to N commands (`POST /{domain}/commands`), and each command's latency is
//! its request's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

use super::{group, Answer, Options, Progress, Report, Step, Tally, Workload};
use anthill_runtime::Domain;

/// Consecutive failures after which a connection gives up.
const CONNECT_FAILURES_MAX: u32 = 3;
/// Bytes of an answer read at most.
const ANSWER_BYTES_MAX: usize = 1 << 20;

/// Where to send: the server's address and its authority for the `Host` header.
struct Target {
    address: SocketAddr,
    authority: String,
}

async fn target(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs are supported (e.g. http://127.0.0.1:7574)"))?;
    let authority = rest.split('/').next().unwrap_or_default().to_owned();
    if authority.is_empty() {
        return Err(format!("`{url}`: no host"));
    }
    let with_port = if authority.contains(':') { authority.clone() } else { format!("{authority}:80") };
    let address = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("`{url}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{url}`: the host has no address"))?;
    Ok(Target { address, authority })
}

/// Path segments are percent-encoded: ids such as `2026-12-01/08-10/north` contain slashes.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

async fn connect(target: &Target) -> Result<Connection, String> {
    let stream = tokio::net::TcpStream::connect(target.address).await.map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; errors show up on the next request.
        let _ = connection.await;
    });
    Ok(Connection { sender })
}

/// Which `Idempotency-Key` each command is sent with (`--idempotency-keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keys {
    None,
    UuidV7,
    UuidV4,
}

impl Keys {
    fn of(option: &str) -> Keys {
        match option {
            "uuid-v7" => Keys::UuidV7,
            "uuid-v4" => Keys::UuidV4,
            _ => Keys::None,
        }
    }

    /// A fresh key of this kind, in the UUID text form; `None` for `Keys::None`.
    fn next(self, rng: &mut super::rng::Rng) -> Option<String> {
        let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        let (version, time_ms) = match self {
            Keys::None => return None,
            Keys::UuidV7 => {
                let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                (7u128, since.as_millis() & ((1 << 48) - 1))
            }
            Keys::UuidV4 => (4u128, random >> 80),
        };
        // Time (or random) 48 bits, version 4 bits, 12 random bits, variant `10`, 62 random bits.
        let id =
            (time_ms << 80) | (version << 76) | (random & (0xfff << 64)) | (0b10 << 62) | (random & ((1 << 62) - 1));
        Some(crate::service::uuid_text(id))
    }
}

/// Sends one command and reads its answer.
async fn send(
    connection: &mut Connection,
    target: &Target,
    domain: &str,
    http: &super::HttpCommand,
    key: Option<&str>,
) -> Result<(StatusCode, Bytes), String> {
    let uri = format!("/{domain}/{}/{}/{}", http.aggregate, encode_segment(&http.id), encode_segment(&http.command));
    let mut request = Request::post(uri)
        .header(hyper::header::HOST, &target.authority)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let request = request.body(Full::new(Bytes::from(http.body.clone()))).map_err(|e| format!("request: {e}"))?;
    connection.sender.ready().await.map_err(|e| format!("connection: {e}"))?;
    let response = connection.sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), ANSWER_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| format!("answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// Sends up to `--batch` commands in one request to `POST /{domain}/commands`; reads the answer.
async fn send_batch(
    connection: &mut Connection,
    target: &Target,
    domain: &str,
    commands: &[super::HttpCommand],
    keys: &[Option<String>],
) -> Result<(StatusCode, Bytes), String> {
    let mut body = String::with_capacity(commands.iter().map(|c| c.body.len() + c.id.len() + 64).sum());
    body.push('[');
    for (i, c) in commands.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let text = |s: &str| serde_json::Value::from(s).to_string();
        let key = match keys.get(i).and_then(Option::as_deref) {
            Some(key) => format!(",\"idempotency_key\":{}", text(key)),
            None => String::new(),
        };
        body.push_str(&format!(
            "{{\"aggregate\":{},\"id\":{},\"command\":{},\"body\":{}{key}}}",
            text(c.aggregate),
            text(&c.id),
            text(&c.command),
            if c.body.trim().is_empty() { "null" } else { &c.body }
        ));
    }
    body.push(']');
    let request = Request::post(format!("/{domain}/commands"))
        .header(hyper::header::HOST, &target.authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    connection.sender.ready().await.map_err(|e| format!("connection: {e}"))?;
    let response = connection.sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), ANSWER_BYTES_MAX * commands.len().max(1))
        .collect()
        .await
        .map_err(|e| format!("answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// The per-command statuses and answers of a batch request's answer (`count` commands sent).
fn answers_of_batch(status: StatusCode, body: &[u8], count: usize) -> Vec<(u16, Answer)> {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match value["results"].as_array() {
        Some(results) if status.is_success() && results.len() == count => results
            .iter()
            .map(|result| {
                let item_status = result["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0);
                let answer = if item_status == 200 {
                    Answer::Accepted
                } else if result["error"] == "rejected" {
                    Answer::Rejected(result["code"].as_str().unwrap_or("?").to_owned())
                } else {
                    Answer::Failed(format!("{item_status} {}", result["error"].as_str().unwrap_or("")))
                };
                (item_status, answer)
            })
            .collect(),
        _ => {
            let failed = format!("{} {} (whole batch)", status.as_u16(), value["error"].as_str().unwrap_or(""));
            vec![(status.as_u16(), Answer::Failed(failed)); count]
        }
    }
}

/// What an answer means for the counts.
fn answer_of(status: StatusCode, body: &[u8]) -> Answer {
    if status.is_success() {
        return Answer::Accepted;
    }
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if status == StatusCode::CONFLICT && value["error"] == "rejected" {
        return Answer::Rejected(value["code"].as_str().unwrap_or("?").to_owned());
    }
    Answer::Failed(format!("{} {}", status.as_u16(), value["error"].as_str().unwrap_or("")))
}

/// A source of commands shared by the connections: a generator and how many it still gives.
struct Source<C> {
    next: Box<dyn FnMut() -> Option<Step<C>> + Send>,
}

/// Runs one source to exhaustion over `connections` connections, `batch` commands per request (1: the single
/// route); returns the tally.
async fn drive<C: Send + 'static>(
    target: Arc<Target>,
    domain: &'static str,
    (connections, batch, keys): (usize, usize, Keys),
    source: Arc<Mutex<Source<C>>>,
    to_http: fn(&C) -> super::HttpCommand,
    done: Arc<AtomicU64>,
) -> Tally {
    let mut tasks = Vec::new();
    for task in 0..connections {
        let (target, source, done) = (Arc::clone(&target), Arc::clone(&source), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut key_rng = super::rng::Rng::new(0x6b65_7973 ^ task as u64);
            let mut connection: Option<Connection> = None;
            let mut failures = 0u32;
            loop {
                let steps: Vec<Step<C>> = {
                    let mut source = source.lock();
                    std::iter::from_fn(|| (source.next)()).take(batch).collect()
                };
                if steps.is_empty() {
                    break;
                }
                let http: Vec<super::HttpCommand> = steps.iter().map(|step| to_http(&step.command)).collect();
                let http_keys: Vec<Option<String>> = http.iter().map(|_| keys.next(&mut key_rng)).collect();
                if connection.is_none() {
                    match connect(&target).await {
                        Ok(c) => connection = Some(c),
                        Err(e) => {
                            for step in &steps {
                                tally.record_answer(step.label, Answer::Failed(e.clone()), Duration::ZERO);
                            }
                            failures += 1;
                            if failures >= CONNECT_FAILURES_MAX {
                                break;
                            }
                            continue;
                        }
                    }
                }
                let Some(open) = connection.as_mut() else { continue };
                let started = Instant::now();
                let result = if batch == 1 {
                    send(open, &target, domain, &http[0], http_keys[0].as_deref()).await
                } else {
                    send_batch(open, &target, domain, &http, &http_keys).await
                };
                let latency = started.elapsed();
                match result {
                    Ok((status, body)) => {
                        failures = 0;
                        let answers = if batch == 1 {
                            vec![(status.as_u16(), answer_of(status, &body))]
                        } else {
                            answers_of_batch(status, &body, steps.len())
                        };
                        for (step, (status, answer)) in steps.iter().zip(answers) {
                            *tally.statuses.entry(status).or_default() += 1;
                            tally.record_answer(step.label, answer, latency);
                        }
                    }
                    Err(e) => {
                        connection = None;
                        failures += 1;
                        for step in &steps {
                            tally.record_answer(step.label, Answer::Failed(e.clone()), latency);
                        }
                        if failures >= CONNECT_FAILURES_MAX {
                            break;
                        }
                    }
                }
                done.fetch_add(steps.len() as u64, Ordering::Relaxed);
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for task in tasks {
        if let Ok(part) = task.await {
            tally.merge(part);
        }
    }
    tally
}

/// Runs the workload against the server at `url`.
pub fn run<W: Workload + 'static>(workload: W, url: &str, options: &Options) -> Result<Report, String> {
    if options.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if options.batch == 0 || options.batch > crate::http::BATCH_COMMANDS_MAX {
        return Err(format!("--batch is 1 to {}", crate::http::BATCH_COMMANDS_MAX));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("anthill-bench-http")
        .build()
        .map_err(|e| format!("cannot start the HTTP client runtime: {e}"))?;
    runtime.block_on(run_async(workload, url, options))
}

async fn run_async<W: Workload + 'static>(mut workload: W, url: &str, options: &Options) -> Result<Report, String> {
    let target = Arc::new(target(url).await?);
    let domain = W::D::NAME;
    // Is anyone there, and is it the right server?
    let mut probe = connect(&target).await.map_err(|e| format!("{url}: {e}"))?;
    drop(probe.sender.ready().await);

    // The setup's commands go without keys; the measured ones with `--idempotency-keys`.
    let shape = (options.connections, options.batch, Keys::None);
    let setup_started = Instant::now();
    let mut setup_commands = 0u64;
    for phase in workload.setup() {
        setup_commands += phase.len() as u64;
        let mut steps = phase.into_iter();
        let source = Arc::new(Mutex::new(Source { next: Box::new(move || steps.next()) }));
        let tally = drive(Arc::clone(&target), domain, shape, source, W::http, Arc::new(AtomicU64::new(0))).await;
        if tally.failed() > 0 {
            let errors: Vec<String> = tally.errors.iter().map(|(e, n)| format!("{e} ({n})")).collect();
            return Err(format!("setup commands failed: {}", errors.join(", ")));
        }
    }
    let setup = setup_started.elapsed();

    let workload = Arc::new(Mutex::new(workload));
    let mut remaining = options.commands;
    let generator = Arc::clone(&workload);
    let source = Arc::new(Mutex::new(Source {
        next: Box::new(move || {
            if remaining == 0 {
                return None;
            }
            remaining -= 1;
            Some(generator.lock().next())
        }),
    }));
    let done = Arc::new(AtomicU64::new(0));
    let progress_done = Arc::clone(&done);
    let (mode, total) = (options.progress.clone(), options.commands);
    let ticker = tokio::spawn(async move {
        let mut progress = Progress::new(&mode, domain, total);
        let mut shown = 0;
        while shown < total {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = progress_done.load(Ordering::Relaxed);
            progress.inc(now - shown);
            shown = now;
        }
        progress.finish();
    });
    let started = Instant::now();
    let shape = (options.connections, options.batch, Keys::of(&options.idempotency_keys));
    let tally = drive(Arc::clone(&target), domain, shape, source, W::http, Arc::clone(&done)).await;
    let elapsed = started.elapsed();
    ticker.abort();
    let _ = ticker.await;
    Ok(Report {
        domain: domain.to_owned(),
        mode: format!(
            "over HTTP at {url}, {} commands, seed {}, {} connections, {}{}",
            group(options.commands),
            options.seed,
            options.connections,
            if options.batch == 1 {
                "one command per request".to_owned()
            } else {
                format!("up to {} commands per request (POST /{domain}/commands)", options.batch)
            },
            match Keys::of(&options.idempotency_keys) {
                Keys::None => String::new(),
                _ => format!(", idempotency keys: {}", options.idempotency_keys),
            }
        ),
        elapsed,
        tally,
        setup_commands,
        setup,
        batches: None,
        checks: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_uuids_of_their_version_and_only_v7_ones_carry_the_time() {
        let mut rng = crate::bench::rng::Rng::new(1);
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let v7 = Keys::UuidV7.next(&mut rng).unwrap();
        let time_ms = crate::http::uuid_v7_time_ms(&v7).unwrap_or_else(|| panic!("{v7} is a UUIDv7"));
        assert!((now_ms..now_ms + 60_000).contains(&time_ms), "{v7}");
        assert_ne!(Keys::UuidV7.next(&mut rng), Some(v7));
        let v4 = Keys::UuidV4.next(&mut rng).unwrap();
        assert_eq!((v4.len(), &v4[14..15], crate::http::uuid_v7_time_ms(&v4)), (36, "4", None), "{v4}");
        assert!(matches!(&v4[19..20], "8" | "9" | "a" | "b"), "{v4}");
        assert_eq!(Keys::None.next(&mut rng), None);
    }
}
