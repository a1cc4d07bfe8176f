//! `anthill bench DOMAIN`: runs a domain's workload against the real engine (in-process, through
//! `Engine::submit_command`) or against a running `anthill serve` (`--http URL`), and prints throughput,
//! accepted and rejected commands by code, latency percentiles (submission to durable answer) and batches.
//!
//! Each domain's workload (one module each) is a deterministic command generator (`--seed`): setup phases run
//! before the clock starts, then `--commands` measured commands. In-process, one thread submits with up to
//! `--window` commands in flight and a second one waits for the answers in order; at the end the processes
//! are let catch up, the domain's own checks run (capacity never exceeded, books never crossed...) and
//! `Engine::verify` replays every instance and compares it with its stored state.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anthill_runtime::engine::{CommandMeta, Config, Engine, PendingAny, Verdict};
use anthill_runtime::error::Error;
use anthill_runtime::{Aggregate, Domain, Timestamp};

pub mod delivery;
pub mod exchange;
pub mod factory;
pub mod http;
pub mod ledger;
pub mod rng;
pub mod shipments;

/// The domains `anthill bench` has a workload for.
pub const DOMAINS: [&str; 5] = ["ledger", "factory", "delivery", "exchange", "shipments"];

/// Options of `anthill bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// The domain whose workload runs.
    #[arg(value_parser = DOMAINS)]
    pub domain: String,
    /// Measured commands (setup commands come on top and are not timed).
    #[arg(long, default_value_t = 200_000)]
    pub commands: u64,
    /// Seed of the workload: the same seed sends the same commands.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Writer threads of the engine (in-process runs).
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Commands decided and committed together, at most (in-process runs).
    #[arg(long, default_value_t = 4096)]
    pub batch_max: u32,
    /// Commands in flight (in-process runs): submitted and not yet answered.
    #[arg(long, default_value_t = 16_384)]
    pub window: usize,
    /// Submit at this fixed rate, in commands per second (in-process runs), instead of as fast as `--window`
    /// allows: an open loop, whose latencies run from when each command was due, as a client sees them (a
    /// late submission counts against it). `--window` still bounds the commands in flight.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// The store's folder (in-process runs); it must be empty or absent. Default: a fresh temporary folder,
    /// removed afterwards.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Ledger: accounts opened before the run (e.g. 1000000).
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u64,
    /// Exchange: order books, each in order (1 is the one-book run; e.g. 1000 spreads them over partitions).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub books: u32,
    /// Drive a running `anthill serve` at this URL (e.g. http://127.0.0.1:7574) instead of an in-process engine.
    #[arg(long)]
    pub http: Option<String>,
    /// Concurrent keep-alive HTTP connections (with `--http`).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Commands per HTTP request (with `--http`): 1 sends each to its own route; more (up to 1000) go together
    /// to the batch route `POST /{domain}/commands`, and each command's latency is its request's.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// The `Idempotency-Key` each measured command is sent with (with `--http`): none, a fresh UUIDv7 (kept in
    /// its time order by the store) or a fresh UUIDv4 (hashed: a random insert into the idempotency table).
    #[arg(long, default_value = "none", value_parser = ["none", "uuid-v7", "uuid-v4"])]
    pub idempotency_keys: String,
    /// Progress display: auto (a bar when stderr is a terminal, plain lines otherwise), bar, lines or none.
    #[arg(long, default_value = "auto", value_parser = ["auto", "bar", "lines", "none"])]
    pub progress: String,
}

/// One command of a workload, with what the driver needs besides the command itself.
pub struct Step<C> {
    pub command: C,
    /// The command's name, for the counts (`deposit`, `book`...).
    pub label: &'static str,
    /// Backdates the command's events (offline scans).
    pub occurred_at: Option<Timestamp>,
}

impl<C> Step<C> {
    pub fn new(label: &'static str, command: C) -> Step<C> {
        Step { command, label, occurred_at: None }
    }
}

/// A command as an HTTP request: `POST /{domain}/{aggregate}/{id}/{command}` with a JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCommand {
    pub aggregate: &'static str,
    pub id: String,
    pub command: String,
    pub body: String,
}

/// The request of a typed command: the aggregate's command enum serializes tagged with its name, the rest is
/// the body.
pub fn http_command<A: Aggregate>(id: &A::Id, command: &A::Command) -> HttpCommand
where
    A::Command: serde::Serialize,
{
    let mut value = serde_json::to_value(command).unwrap_or_default();
    let name = match value.as_object_mut().and_then(|fields| fields.remove("command")) {
        Some(serde_json::Value::String(name)) => name,
        _ => panic!("a generated command serializes as an object tagged with its name"),
    };
    HttpCommand { aggregate: A::NAME, id: id.to_string(), command: name, body: value.to_string() }
}

/// The result of one of a workload's checks on the final store.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
        Check { name: name.into(), ok, detail: detail.into() }
    }
}

/// The commands of a domain's workload.
pub trait Workload: Send + 'static {
    type D: Domain;
    /// Commands run before the clock starts, phase by phase: the commands of a phase do not depend on each
    /// other, and a phase starts once the one before is answered.
    fn setup(&mut self) -> Vec<Vec<Step<Cmd<Self>>>>;
    /// The next measured command.
    fn next(&mut self) -> Step<Cmd<Self>>;
    /// The domain's rules checked on the final store (in-process runs), knowing what was answered.
    fn check(&self, engine: &Engine<Self::D>, tally: &Tally) -> Vec<Check>;
    /// The command as an HTTP request.
    fn http(command: &Cmd<Self>) -> HttpCommand;
}

/// The command type of a workload's domain.
pub type Cmd<W> = <<W as Workload>::D as Domain>::Command;

/// What was answered: counts per command and per rejection code, errors, statuses, latencies.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Per command name: sent, accepted, rejected.
    pub commands: BTreeMap<&'static str, [u64; 3]>,
    pub rejections: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// HTTP status codes (HTTP runs only).
    pub statuses: BTreeMap<u16, u64>,
    /// Submission (in a paced run: when the command was due) to durable answer, in microseconds, in answer
    /// order.
    pub latencies_us: Vec<u32>,
}

impl Tally {
    pub fn accepted(&self) -> u64 {
        self.commands.values().map(|c| c[1]).sum()
    }

    pub fn rejected(&self) -> u64 {
        self.commands.values().map(|c| c[2]).sum()
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn answered(&self) -> u64 {
        self.commands.values().map(|c| c[0]).sum()
    }

    /// Accepted commands of this name.
    pub fn accepted_of(&self, label: &str) -> u64 {
        self.commands.get(label).map_or(0, |c| c[1])
    }

    pub fn record(&mut self, label: &'static str, verdict: Result<Verdict, Error>, latency: Duration) {
        let answer = match verdict {
            Ok(Verdict::Accepted { .. }) => Answer::Accepted,
            Ok(Verdict::Rejected { code }) => Answer::Rejected(code.to_owned()),
            Err(error) => Answer::Failed(error_kind(&error)),
        };
        self.record_answer(label, answer, latency);
    }

    pub fn record_answer(&mut self, label: &'static str, answer: Answer, latency: Duration) {
        let counts = self.commands.entry(label).or_default();
        counts[0] += 1;
        match answer {
            Answer::Accepted => counts[1] += 1,
            Answer::Rejected(code) => {
                counts[2] += 1;
                *self.rejections.entry(code).or_default() += 1;
            }
            Answer::Failed(error) => *self.errors.entry(error).or_default() += 1,
        }
        self.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn merge(&mut self, other: Tally) {
        for (label, counts) in other.commands {
            let mine = self.commands.entry(label).or_default();
            for (m, o) in mine.iter_mut().zip(counts) {
                *m += o;
            }
        }
        for (code, n) in other.rejections {
            *self.rejections.entry(code).or_default() += n;
        }
        for (error, n) in other.errors {
            *self.errors.entry(error).or_default() += n;
        }
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.latencies_us.extend(other.latencies_us);
    }

    /// p50, p90, p99 and max latency in milliseconds.
    pub fn latency_ms(&self) -> [f64; 4] {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let at = |q: f64| {
            let index = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
            sorted.get(index).map_or(0.0, |&us| f64::from(us) / 1000.0)
        };
        [at(0.5), at(0.9), at(0.99), at(1.0)]
    }
}

/// One command's answer as the counts see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    /// The model's rejection code.
    Rejected(String),
    /// Not decided: an engine or transport error, by kind.
    Failed(String),
}

/// An error's kind for the counts (the message without the details that differ per command).
fn error_kind(error: &Error) -> String {
    let text = error.to_string();
    match text.find([':', '(']) {
        Some(at) if at > 0 => text[..at].trim().to_owned(),
        _ => text,
    }
}

/// Shows how far a run is: a bar on a terminal, a line every second otherwise, or nothing.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
    what: String,
}

impl Progress {
    pub fn new(mode: &str, what: &str, total: u64) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let (bar, lines) = match mode {
            "none" => (false, false),
            "lines" => (false, true),
            "bar" => (true, false),
            _ => (terminal, !terminal),
        };
        let bar = bar.then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} (eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what.to_owned());
            bar
        });
        let now = Instant::now();
        Progress { bar, lines, total, done: 0, started: now, last_line: now, what: what.to_owned() }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.lines && self.last_line.elapsed() >= Duration::from_secs(1) {
            self.last_line = Instant::now();
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64();
            eprintln!(
                "{}: {} / {} commands ({}/s)",
                self.what,
                group(self.done),
                group(self.total),
                group(rate as u64)
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A finished run: what the table shows.
#[derive(Clone, Debug)]
pub struct Report {
    pub domain: String,
    pub mode: String,
    pub elapsed: Duration,
    pub tally: Tally,
    pub setup_commands: u64,
    pub setup: Duration,
    /// Batches committed during the measured run and the commands they held (in-process runs).
    pub batches: Option<(u64, u64)>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn commands_per_second(&self) -> f64 {
        self.tally.answered() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Whether every check passed and every command was answered without an error.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok) && self.tally.failed() == 0
    }

    /// The plain-text table.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let t = &self.tally;
        let [p50, p90, p99, max] = t.latency_ms();
        let mut out = String::new();
        let _ = writeln!(out, "anthill bench {} ({})", self.domain, self.mode);
        let _ = writeln!(
            out,
            "setup: {} commands in {:.2} s (not measured)\n",
            group(self.setup_commands),
            self.setup.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "{:>10} {:>8} {:>12} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
            "commands",
            "seconds",
            "commands/s",
            "accepted",
            "rejected",
            "errors",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "batches",
            "per batch"
        );
        let (batches, per_batch) = match self.batches {
            Some((batches, commands)) if batches > 0 => (group(batches), group(commands / batches)),
            _ => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:>10} {:>8.2} {:>12} {:>10} {:>10} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>9}",
            group(t.answered()),
            self.elapsed.as_secs_f64(),
            group(self.commands_per_second() as u64),
            group(t.accepted()),
            group(t.rejected()),
            group(t.failed()),
            p50,
            p90,
            p99,
            max,
            batches,
            per_batch
        );
        let _ = writeln!(out, "\n{:<24} {:>10} {:>10} {:>10}", "command", "sent", "accepted", "rejected");
        for (label, [sent, accepted, rejected]) in &t.commands {
            let _ = writeln!(out, "{label:<24} {:>10} {:>10} {:>10}", group(*sent), group(*accepted), group(*rejected));
        }
        if !t.rejections.is_empty() {
            let _ = writeln!(out, "\n{:<32} {:>10}", "rejection", "count");
            for (code, n) in &t.rejections {
                let _ = writeln!(out, "{code:<32} {:>10}", group(*n));
            }
        }
        if !t.statuses.is_empty() {
            let _ = writeln!(out, "\n{:<32} {:>10}", "HTTP status", "count");
            for (status, n) in &t.statuses {
                let _ = writeln!(out, "{status:<32} {:>10}", group(*n));
            }
        }
        if !t.errors.is_empty() {
            let _ = writeln!(out, "\n{:<60} {:>10}", "error", "count");
            for (error, n) in &t.errors {
                let _ = writeln!(out, "{error:<60} {:>10}", group(*n));
            }
        }
        if !self.checks.is_empty() {
            let _ = writeln!(out, "\nchecks:");
            for check in &self.checks {
                let _ =
                    writeln!(out, "  {} {}: {}", if check.ok { "ok    " } else { "FAILED" }, check.name, check.detail);
            }
        }
        out
    }
}

/// `anthill bench`: runs, prints the report on stdout; exit code 0, 1 (a check failed or commands erred) or
/// 2 (the run could not be made: bad options, no server...).
pub fn main(options: &Options) -> std::process::ExitCode {
    match run(options) {
        Ok(report) => {
            println!("{}", report.render());
            if report.ok() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the workload `options` names, in-process or over HTTP, and returns its report.
pub fn run(options: &Options) -> Result<Report, String> {
    match options.domain.as_str() {
        "ledger" => run_workload(ledger::LedgerWorkload::new(options.seed, options.accounts), options),
        "factory" => run_workload(factory::FactoryWorkload::new(options.seed), options),
        "delivery" => run_workload(delivery::DeliveryWorkload::new(options.seed), options),
        "exchange" => run_workload(exchange::ExchangeWorkload::new(options.seed, options.books), options),
        "shipments" => {
            run_workload(shipments::ShipmentsWorkload::new(options.seed).with_commands(options.commands), options)
        }
        other => Err(format!("no workload for domain `{other}`; the domains are: {}", DOMAINS.join(", "))),
    }
}

fn run_workload<W: Workload>(workload: W, options: &Options) -> Result<Report, String> {
    match &options.http {
        Some(_) if options.rate.is_some() => {
            Err("--rate paces in-process runs; with --http, --connections and --batch set the load".into())
        }
        Some(url) => http::run(workload, url, options),
        None if options.idempotency_keys != "none" => Err("--idempotency-keys sets the keys of runs over HTTP \
             (--http); in process, the ledger_generated example measures them (LEDGER_COMMAND_IDS)"
            .into()),
        None => run_in_process(workload, options),
    }
}

/// When command `index` of a run paced at `rate` per second is due, from the run's start.
fn due_after(index: u64, rate: u64) -> Duration {
    Duration::from_secs_f64(index as f64 / rate as f64)
}

/// A paced submitter sleeps until a command is due only when it is at least this early: shorter sleeps
/// oversleep by more than they wait.
const PACED_SLEEP_MIN: Duration = Duration::from_micros(200);

/// The engine settings of an in-process run: queues deep enough for the window plus the processes'
/// commands, and a latency budget the closed loop never trips (the window bounds the load instead).
fn engine_config(options: &Options) -> Config {
    Config {
        partitions: options.partitions,
        batch_size_max: options.batch_max,
        queue_depth_max: u32::try_from(options.window + 16_384).unwrap_or(u32::MAX),
        latency_budget: Duration::from_secs(60),
        ..Config::default()
    }
}

/// The store's folder: the one given (empty or absent), or a fresh temporary one removed on drop.
fn data_dir(data: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    match data {
        Some(path) => {
            let empty = match std::fs::read_dir(path) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(format!("{}: {e}", path.display())),
            };
            if !empty {
                return Err(format!("{}: the data folder must be empty or absent", path.display()));
            }
            std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((path.to_owned(), None))
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("anthill-bench-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
            Ok((dir.path().to_owned(), Some(dir)))
        }
    }
}

fn submit<D: Domain>(engine: &Engine<D>, step: Step<D::Command>) -> Result<PendingAny<Verdict>, Error> {
    let meta = CommandMeta { occurred_at: step.occurred_at, ..CommandMeta::default() };
    engine.submit_command(step.command, meta)
}

/// Runs setup commands with at most `window` in flight; returns how many were sent.
fn run_setup<W: Workload>(engine: &Engine<W::D>, workload: &mut W, window: usize) -> Result<u64, String> {
    let mut sent = 0u64;
    for phase in workload.setup() {
        let mut in_flight = std::collections::VecDeque::with_capacity(window);
        for step in phase {
            if in_flight.len() >= window {
                if let Some(pending) = in_flight.pop_front() {
                    wait_setup(pending)?;
                }
            }
            in_flight.push_back(submit(engine, step));
            sent += 1;
        }
        for pending in in_flight {
            wait_setup(pending)?;
        }
    }
    Ok(sent)
}

fn wait_setup(pending: Result<PendingAny<Verdict>, Error>) -> Result<(), String> {
    // A rejected setup command is the workload's business (it may open what is already open); an error is not.
    pending.and_then(PendingAny::wait).map(|_| ()).map_err(|e| format!("a setup command failed: {e}"))
}

/// Waiting for the processes to handle every event is bounded by this.
const PROCESSES_TIMEOUT: Duration = Duration::from_secs(120);

fn run_in_process<W: Workload>(mut workload: W, options: &Options) -> Result<Report, String> {
    if options.window == 0 {
        return Err("--window must be at least 1".into());
    }
    let (path, _temporary) = data_dir(options.data.as_deref())?;
    let engine = Engine::<W::D>::open(&path, engine_config(options)).map_err(|e| format!("{}: {e}", path.display()))?;
    let setup_started = Instant::now();
    let setup_commands = run_setup(&engine, &mut workload, options.window)?;
    engine.wait_for_processes(PROCESSES_TIMEOUT).map_err(|e| e.to_string())?;
    let setup = setup_started.elapsed();

    let before = engine.stats();
    let mut progress = Progress::new(&options.progress, W::D::NAME, options.commands);
    let started = Instant::now();
    let tally = std::thread::scope(|scope| {
        // Bounded: the submitter blocks once `window` commands are unanswered.
        let (sender, receiver) = mpsc::sync_channel::<(Instant, &'static str, Result<PendingAny<Verdict>, Error>)>(
            options.window.saturating_sub(1),
        );
        let waiter = scope.spawn(move || {
            let mut tally = Tally::default();
            let mut answered = 0u64;
            for (at, label, pending) in receiver {
                let verdict = pending.and_then(PendingAny::wait);
                tally.record(label, verdict, at.elapsed());
                answered += 1;
                if answered.is_multiple_of(1024) {
                    progress.inc(1024);
                }
            }
            progress.inc(answered % 1024);
            progress.finish();
            tally
        });
        for index in 0..options.commands {
            let step = workload.next();
            let label = step.label;
            let mut at = Instant::now();
            if let Some(rate) = options.rate {
                // Open loop: the latency runs from when the command was due, or from its submission if early.
                let due = started + due_after(index, rate);
                if due > at + PACED_SLEEP_MIN {
                    std::thread::sleep(due - at);
                }
                at = due.min(Instant::now());
            }
            let pending = submit(&engine, step);
            if sender.send((at, label, pending)).is_err() {
                break;
            }
        }
        drop(sender);
        waiter.join().map_err(|_| "the answer thread panicked".to_owned())
    })?;
    let elapsed = started.elapsed();
    let after = engine.stats();

    let mut checks = Vec::new();
    let caught_up = engine.wait_for_processes(PROCESSES_TIMEOUT).map_err(|e| e.to_string())?;
    checks.push(Check::new(
        "processes",
        caught_up && engine.process_error().is_none(),
        match engine.process_error() {
            Some(error) => format!("last error: {error}"),
            None if caught_up => "handled every event".into(),
            None => format!("still behind after {} s", PROCESSES_TIMEOUT.as_secs()),
        },
    ));
    checks.extend(workload.check(&engine, &tally));
    let verify_started = Instant::now();
    checks.push(match engine.verify() {
        Ok((events, instances)) => Check::new(
            "verify",
            true,
            format!(
                "{} events, {} instances replayed and equal to their stored state ({:.2} s)",
                group(events),
                group(instances),
                verify_started.elapsed().as_secs_f64()
            ),
        ),
        Err(e) => Check::new("verify", false, e.to_string()),
    });
    engine.shutdown();
    Ok(Report {
        domain: W::D::NAME.to_owned(),
        mode: format!(
            "in-process, {} commands{}, seed {}, {}{} partition(s), window {}, batch max {}",
            group(options.commands),
            match options.rate {
                Some(rate) => format!(" paced at {}/s (latency from when each was due)", group(rate)),
                None => String::new(),
            },
            options.seed,
            if W::D::NAME == "exchange" {
                format!("{} book(s), ", group(u64::from(options.books)))
            } else {
                String::new()
            },
            options.partitions,
            group(options.window as u64),
            group(u64::from(options.batch_max))
        ),
        elapsed,
        tally,
        setup_commands,
        setup,
        batches: Some((after.batches - before.batches, after.commands - before.commands)),
        checks,
    })
}

/// A field of a state's JSON form as an unsigned number (0 when absent): for the workloads' checks.
pub fn json_u64(value: &serde_json::Value, field: &str) -> u64 {
    match &value[field] {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Keeps up to `capacity` recent items and hands out a random one: ids a workload refers back to.
#[derive(Clone, Debug)]
pub struct Recent<T> {
    items: Vec<T>,
    next: usize,
    capacity: usize,
}

impl<T: Clone> Recent<T> {
    pub fn new(capacity: usize) -> Recent<T> {
        Recent { items: Vec::with_capacity(capacity), next: 0, capacity }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() < self.capacity {
            self.items.push(item);
        } else {
            self.items[self.next] = item;
            self.next = (self.next + 1) % self.capacity;
        }
    }

    pub fn pick(&self, rng: &mut rng::Rng) -> Option<T> {
        (!self.items.is_empty()).then(|| self.items[rng.below(self.items.len() as u64) as usize].clone())
    }
}
