//! The store commands of the `anthill` binary: `events` (dump or follow a changes feed), `state` (one instance)
//! and `rebuild-view`. They read the stores directly, also while a server runs on them: reads go through
//! read-only engines (no writers, no processes, no owner lock); a rebuild needs the store's owner, so it runs
//! here only when no server holds the store, and otherwise through the server (`--http`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anthill::feed::FeedIndex;
use anthill::http::{global_page, Backend, BackendError};
use anthill::serve::{open_engines_with, OpenMode};
use anthill::service::Engines;
use anthill_runtime::engine::Config;
use anthill_runtime::meta::DomainMeta;
use serde_json::{json, Value};

/// Where the stores are.
#[derive(Clone, Debug, clap::Args)]
pub struct DataArgs {
    /// The folder of the stores (one per domain, and `_feed`).
    #[arg(long, default_value = "data", env = "ANTHILL_DATA")]
    pub data: PathBuf,
}

/// Options of `anthill events`.
#[derive(Clone, Debug, clap::Args)]
pub struct EventsArgs {
    /// One domain's own feed (its sequence numbers); without it, the global feed over every domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Start after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Keep following the feed for new events (until interrupted).
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Options of `anthill state`.
#[derive(Clone, Debug, clap::Args)]
pub struct StateArgs {
    /// The aggregate's name, e.g. `account` (unique across domains, or given with `--domain`).
    pub aggregate: String,
    /// The instance's id.
    pub id: String,
    /// The domain of the aggregate, when its name is in several.
    #[arg(long)]
    pub domain: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Options of `anthill rebuild-view`.
#[derive(Clone, Debug, clap::Args)]
pub struct RebuildArgs {
    /// The view's name, e.g. `account-activity` (unique across domains, or given with `--domain`).
    pub view: String,
    /// The domain of the view, when its name is in several.
    #[arg(long)]
    pub domain: Option<String>,
    /// Rebuild through this running server (`http://HOST:PORT`) instead of opening the store.
    #[arg(long, env = "ANTHILL_URL")]
    pub http: Option<String>,
    /// The bearer token for `--http`.
    #[arg(long, env = "ANTHILL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// A failure with its exit code: 2 for a bad name or usage, 1 otherwise.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure { code: 2, message: message.into() }
    }

    fn failed(message: impl Into<String>) -> Failure {
        Failure { code: 1, message: message.into() }
    }
}

impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Failure {
        match error {
            BackendError::NotFound(m) | BackendError::InvalidId(m) => Failure::usage(m),
            BackendError::InvalidParameters(m)
            | BackendError::VersionConflict(m)
            | BackendError::Unavailable(m)
            | BackendError::Internal(m) => Failure::failed(m),
            BackendError::Overloaded { retry_after_ms } => {
                Failure::failed(format!("overloaded; retry after {retry_after_ms} ms"))
            }
        }
    }
}

/// Runs a command's body and turns its failure into a message and an exit code.
pub fn run(body: impl FnOnce() -> Result<(), Failure>) -> ExitCode {
    anthill::serve::init_logging();
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn names(list: impl IntoIterator<Item = String>) -> String {
    let list: Vec<String> = list.into_iter().map(|n| format!("`{n}`")).collect();
    list.join(", ")
}

fn find_domain(name: &str) -> Result<&'static DomainMeta, Failure> {
    anthill::DOMAINS.iter().copied().find(|d| d.name == name).ok_or_else(|| {
        Failure::usage(format!(
            "no domain `{name}`; the domains are {}",
            names(anthill::DOMAINS.iter().map(|d| d.name.to_owned()))
        ))
    })
}

/// The domain that has an item named `name` (an aggregate or a view), by `has`; `what` names the kind.
fn resolve(
    what: &str,
    name: &str,
    domain: Option<&str>,
    all: impl Fn(&'static DomainMeta) -> Vec<&'static str>,
) -> Result<&'static DomainMeta, Failure> {
    let candidates: Vec<&'static DomainMeta> = match domain {
        Some(domain) => vec![find_domain(domain)?],
        None => anthill::DOMAINS.to_vec(),
    };
    let matching: Vec<&'static DomainMeta> = candidates.iter().copied().filter(|d| all(d).contains(&name)).collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::usage(format!(
            "no {what} `{name}`{}; the {what}s are {}",
            domain.map(|d| format!(" in domain `{d}`")).unwrap_or_default(),
            names(candidates.iter().flat_map(|d| all(d).into_iter().map(move |n| format!("{}/{n}", d.name))))
        ))),
        several => Err(Failure::usage(format!(
            "{what} `{name}` is in several domains ({}); choose one with --domain",
            names(several.iter().map(|d| d.name.to_owned()))
        ))),
    }
}

fn read_only(data: &Path, only: Option<&str>) -> Result<Engines, Failure> {
    open_engines_with(data, Config::default(), OpenMode { read_only: true, only }).map_err(Failure::failed)
}

/// Progress on stderr: a bar on a terminal, a plain line now and then otherwise.
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines {
        label: &'static str,
        total: u64,
        reported: u64,
    },
    /// Nothing: what is printed on the terminal shows the progress already.
    Quiet,
}

impl Progress {
    /// Lines are printed every this many units when stderr is not a terminal.
    const LINE_EVERY: u64 = 10_000;

    /// Progress of work whose output goes to stdout: none when stdout is the terminal too.
    fn beside_output(label: &'static str, total: u64) -> Progress {
        if std::io::stdout().is_terminal() {
            Progress::Quiet
        } else {
            Progress::new(label, total)
        }
    }

    fn new(label: &'static str, total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label);
            Progress::Bar(bar)
        } else {
            Progress::Lines { label, total, reported: 0 }
        }
    }

    fn set(&mut self, done: u64) {
        match self {
            Progress::Bar(bar) => bar.set_position(done),
            Progress::Lines { label, total, reported } => {
                if done >= *reported + Self::LINE_EVERY {
                    eprintln!("{label}: {done}/{total}");
                    *reported = done;
                }
            }
            Progress::Quiet => {}
        }
    }

    fn finish(self, done: u64) {
        match self {
            Progress::Bar(bar) => bar.finish_and_clear(),
            Progress::Lines { label, total, .. } => eprintln!("{label}: {done}/{total}, done"),
            Progress::Quiet => {}
        }
    }
}

/// stdout, ending quietly when the reader goes away (`anthill events | head`).
struct Out(std::io::BufWriter<std::io::Stdout>);

impl Out {
    fn line(&mut self, value: &Value) -> Result<bool, Failure> {
        match writeln!(self.0, "{value}") {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(Failure::failed(format!("stdout: {e}"))),
        }
    }

    fn flush(&mut self) -> Result<bool, Failure> {
        match self.0.flush() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(Failure::failed(format!("stdout: {e}"))),
        }
    }
}

/// Events read per page.
const PAGE_EVENTS: usize = 1_000;
/// How often `--follow` looks for new events.
const FOLLOW_POLL_MS: u64 = 200;

/// `anthill events`.
pub fn events(args: EventsArgs) -> Result<(), Failure> {
    if let Some(domain) = &args.domain {
        find_domain(domain)?;
    }
    let data = &args.data.data;
    if !data.is_dir() {
        return Err(Failure::failed(format!("there are no stores under {}", data.display())));
    }
    let engines = read_only(data, args.domain.as_deref())?;
    let mut out = Out(std::io::BufWriter::new(std::io::stdout()));
    let limit = args.limit.unwrap_or(u64::MAX);
    let index = match &args.domain {
        Some(_) => None,
        None => {
            let index = FeedIndex::open_any(data)
                .map_err(|e| Failure::failed(format!("the global feed: {e}")))?
                .ok_or_else(|| Failure::failed(format!("there is no global feed under {}", data.display())))?;
            if index.can_index() {
                // No server runs: bring the index up to date first. Every indexed event has one entry, so what is
                // left is the domains' events minus the index's entries.
                let mut behind = 0u64;
                for domain in anthill::feed::Source::domain_names(&engines) {
                    behind += engines.last_seq(domain)?;
                }
                let indexed = index.last_seq().map_err(|e| Failure::failed(e.to_string()))?;
                let behind = behind.saturating_sub(indexed);
                if behind > 0 {
                    let mut progress = Progress::new("indexing", behind);
                    let added =
                        index.catch_up(&engines, |n| progress.set(n)).map_err(|e| Failure::failed(e.to_string()))?;
                    progress.finish(added);
                }
            }
            Some(index)
        }
    };
    // One page of events after `since`; the feed's end now.
    let page = |since: u64, count: usize| -> Result<(Vec<Value>, u64), Failure> {
        match (&args.domain, &index) {
            (Some(domain), _) => Ok(engines.changes(domain, since, count)?),
            (None, Some(index)) => {
                let until = index.last_seq().map_err(|e| Failure::failed(e.to_string()))?;
                Ok(global_page(&engines, index, since, until, count)?)
            }
            (None, None) => Ok((Vec::new(), since)),
        }
    };
    let end = match (&args.domain, &index) {
        (Some(domain), _) => engines.last_seq(domain)?,
        (None, Some(index)) => index.last_seq().map_err(|e| Failure::failed(e.to_string()))?,
        (None, None) => 0,
    };
    let total = end.saturating_sub(args.since).min(limit);
    let mut progress = (!args.follow).then(|| Progress::beside_output("events", total));
    let mut since = args.since;
    let mut written = 0u64;
    while written < limit {
        let count = usize::try_from(limit - written).unwrap_or(usize::MAX).min(PAGE_EVENTS);
        let (events, next) = page(since, count)?;
        for event in &events {
            if !out.line(event)? {
                return Ok(());
            }
        }
        written += events.len() as u64;
        since = next;
        if let Some(progress) = &mut progress {
            progress.set(written);
        }
        if !out.flush()? {
            return Ok(());
        }
        if events.is_empty() {
            if !args.follow {
                break;
            }
            if let Some(index) = index.as_ref().filter(|i| i.can_index()) {
                index.index_round(&engines).map_err(|e| Failure::failed(e.to_string()))?;
            }
            std::thread::sleep(Duration::from_millis(FOLLOW_POLL_MS));
        }
    }
    if let Some(progress) = progress {
        progress.finish(written);
    }
    Ok(())
}

/// `anthill state`.
pub fn state(args: StateArgs) -> Result<(), Failure> {
    let domain = resolve("aggregate", &args.aggregate, args.domain.as_deref(), |d| {
        d.aggregates.iter().map(|a| a.name).collect()
    })?;
    let data = &args.data.data;
    if !data.join(domain.name).join("data.mdb").is_file() {
        return Err(Failure::failed(format!("there is no store of `{}` under {}", domain.name, data.display())));
    }
    let engines = read_only(data, Some(domain.name))?;
    match engines.state(domain.name, &args.aggregate, &args.id)? {
        Some((version, state)) => {
            let value = json!({
                "domain": domain.name,
                "aggregate": args.aggregate,
                "id": args.id,
                "version": version,
                "state": state,
            });
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string()));
            Ok(())
        }
        None => Err(Failure::failed(format!("`{}` `{}` has no events", args.aggregate, args.id))),
    }
}

/// `anthill rebuild-view`.
pub fn rebuild_view(args: RebuildArgs) -> Result<(), Failure> {
    let domain = resolve("view", &args.view, args.domain.as_deref(), |d| d.views.iter().map(|v| v.name).collect())?;
    if let Some(url) = &args.http {
        let path = format!("/_admin/{}/views/{}/rebuild", domain.name, args.view);
        let (status, body) = http_post(url, &path, args.token.as_deref())?;
        if status != 200 {
            return Err(Failure::failed(format!("the server answered {status}: {}", body.trim())));
        }
        println!("{}", body.trim());
        return Ok(());
    }
    let data = &args.data.data;
    if !data.join(domain.name).join("data.mdb").is_file() {
        return Err(Failure::failed(format!("there is no store of `{}` under {}", domain.name, data.display())));
    }
    let config = Config { partitions: 1, ..Config::default() };
    let engines = open_engines_with(data, config, OpenMode { read_only: false, only: Some(domain.name) }).map_err(
        |e| {
            if e.contains("the store is in use") {
                Failure::failed(format!(
                    "{e}\nA server runs on this store: rebuild through it with --http URL (and --token), or stop it first."
                ))
            } else {
                Failure::failed(e)
            }
        },
    )?;
    let mut progress: Option<Progress> = None;
    let events = engines.rebuild_view_with_progress(domain.name, &args.view, &mut |done, total| {
        progress.get_or_insert_with(|| Progress::new("rebuilding", total)).set(done);
    })?;
    if let Some(progress) = progress {
        progress.finish(events);
    }
    println!("{}", json!({"domain": domain.name, "view": args.view, "events": events}));
    Ok(())
}

/// Response bodies of the admin call are read up to this size.
const RESPONSE_BYTES_MAX: u64 = 1 << 20;

/// A minimal HTTP/1.1 POST over plain TCP (the admin call needs nothing more): returns the status and body.
fn http_post(url: &str, path: &str, token: Option<&str>) -> Result<(u16, String), Failure> {
    use std::io::Read;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Failure::usage(format!("--http takes an http://HOST:PORT address (no TLS), not `{url}`")))?;
    let (authority, base) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let address = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    let timeout = Duration::from_secs(600);
    let mut stream = std::net::TcpStream::connect(&address)
        .map_err(|e| Failure::failed(format!("cannot connect to {address}: {e}")))?;
    let io = |e: std::io::Error| Failure::failed(format!("{address}: {e}"));
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "POST {base}{path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream.take(RESPONSE_BYTES_MAX).read_to_end(&mut response).map_err(io)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Failure::failed(format!("{address} did not answer HTTP")))?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

/// The body of a chunked response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    // Bounded by the body's length: each round consumes a chunk.
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
