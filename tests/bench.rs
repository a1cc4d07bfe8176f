//! `anthill bench`: every domain's workload runs in-process on a small store and comes out sane (every
//! command answered, some accepted, the domain's checks and `Engine::verify` pass); and the HTTP driver
//! runs the ledger workload against an in-process server.

use std::sync::Arc;

use anthill::bench::{self, Options};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: Options,
}

fn options(args: &[&str]) -> Options {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    Cli::parse_from(all).options
}

const COMMANDS: u64 = 2_000;

fn run_small(domain: &str) -> bench::Report {
    let options =
        options(&[domain, "--commands", "2000", "--accounts", "1000", "--progress", "none", "--window", "512"]);
    let report = bench::run(&options).unwrap_or_else(|e| panic!("{domain}: {e}"));
    let text = report.render();
    assert_eq!(report.tally.answered(), COMMANDS, "{text}");
    assert_eq!(report.tally.latencies_us.len() as u64, COMMANDS, "{text}");
    assert!(report.tally.accepted() > 0, "{text}");
    assert_eq!(report.tally.failed(), 0, "{text}");
    assert!(report.checks.iter().any(|c| c.name == "verify"), "{text}");
    assert!(report.ok(), "{text}");
    report
}

#[test]
fn ledger_workload_runs_and_verifies() {
    let report = run_small("ledger");
    assert!(report.tally.accepted_of("send-transfer") > 0);
    assert!(report.tally.accepted_of("withdraw") > 0);
}

#[test]
fn factory_workload_runs_and_verifies() {
    let report = run_small("factory");
    assert!(report.tally.accepted_of("add-item") > 0);
    assert!(report.tally.rejections.contains_key("empty-order"), "abandoned baskets are refused");
}

#[test]
fn delivery_workload_never_overbooks() {
    let report = run_small("delivery");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains(&"capacity") && names.contains(&"one winner per unit"), "{names:?}");
    assert!(report.tally.accepted_of("book") > 0);
}

#[test]
fn exchange_workload_runs_and_verifies() {
    let report = run_small("exchange");
    assert!(report.checks.iter().any(|c| c.name == "tape" && c.ok));
    assert!(report.tally.accepted_of("place-order") > 0);
}

#[test]
fn shipments_workload_runs_and_verifies() {
    let report = run_small("shipments");
    assert!(report.tally.accepted_of("scan-in") > 0);
    assert!(report.checks.iter().any(|c| c.name == "views in scan order" && c.ok));
}

#[test]
fn a_paced_run_submits_on_schedule_and_reports_its_rate() {
    // 2,000 commands at 4,000/s: the last one is due 499.75 ms after the start, so the run cannot be shorter
    // (unpaced, this run takes a small fraction of that).
    let options =
        options(&["ledger", "--commands", "2000", "--accounts", "1000", "--progress", "none", "--rate", "4000"]);
    let report = bench::run(&options).unwrap_or_else(|e| panic!("ledger: {e}"));
    let text = report.render();
    assert_eq!(report.tally.answered(), COMMANDS, "{text}");
    assert!(report.ok(), "{text}");
    assert!(report.elapsed >= std::time::Duration::from_micros(499_750), "{text}");
    assert!(text.contains("paced at 4,000/s"), "{text}");
}

#[test]
fn a_rate_is_refused_over_http() {
    let options = options(&["ledger", "--http", "http://127.0.0.1:9", "--rate", "1000", "--progress", "none"]);
    let error = bench::run(&options).map(|_| ()).unwrap_err();
    assert!(error.contains("--rate paces in-process runs"), "{error}");
}

#[test]
fn idempotency_keys_are_refused_in_process() {
    let options = options(&["ledger", "--idempotency-keys", "uuid-v7", "--progress", "none"]);
    let error = bench::run(&options).map(|_| ()).unwrap_err();
    assert!(error.contains("--idempotency-keys sets the keys of runs over HTTP"), "{error}");
}

#[test]
fn the_same_seed_sends_the_same_commands() {
    use bench::Workload;
    let mut a = bench::ledger::LedgerWorkload::new(7, 100);
    let mut b = bench::ledger::LedgerWorkload::new(7, 100);
    for _ in 0..500 {
        let (x, y) = (a.next(), b.next());
        assert_eq!(format!("{:?}", x.command), format!("{:?}", y.command));
    }
}

#[test]
fn http_driver_runs_the_ledger_against_a_server() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = anthill_runtime::engine::Config { partitions: 1, ..Default::default() };
    let engines = Arc::new(anthill::serve::open_engines(dir.path(), config).expect("the engines open"));
    // Kept alive for the test: the server shuts its long polls down when the sender says so or goes away.
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let state = Arc::new(anthill::http::AppState {
        backend: engines,
        metrics: Arc::new(anthill::metrics::Metrics::default()),
        tokens: Vec::new(),
        catalog_html: String::new(),
        openapi_json: String::new(),
        feed: None,
        shutdown: shutdown.clone(),
    });
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a port");
    let address = listener.local_addr().expect("an address");
    let server = runtime.spawn(async move { axum::serve(listener, anthill::http::router(state)).await });
    let url = format!("http://{address}");
    let options = options(&[
        "ledger",
        "--http",
        &url,
        "--commands",
        "500",
        "--accounts",
        "100",
        "--connections",
        "8",
        "--progress",
        "none",
    ]);
    let report = bench::run(&options).expect("the HTTP run");
    let text = report.render();
    assert_eq!(report.tally.answered(), 500, "{text}");
    assert_eq!(report.tally.failed(), 0, "{text}");
    assert!(report.tally.accepted() > 0, "{text}");
    let ok_and_conflict: u64 =
        report.tally.statuses.iter().filter(|(s, _)| [200, 409].contains(*s)).map(|(_, n)| n).sum();
    assert_eq!(ok_and_conflict, 500, "{text}");
    // The same through the batch route, 16 commands per request (the setup too).
    let mut batched = options.clone();
    batched.batch = 16;
    batched.commands = 501;
    let report = bench::run(&batched).expect("the batched HTTP run");
    let text = report.render();
    assert!(text.contains("up to 16 commands per request"), "{text}");
    assert_eq!(report.tally.answered(), 501, "{text}");
    assert_eq!(report.tally.failed(), 0, "{text}");
    assert!(report.tally.accepted() > 0, "{text}");
    let ok_and_conflict: u64 =
        report.tally.statuses.iter().filter(|(s, _)| [200, 409].contains(*s)).map(|(_, n)| n).sum();
    assert_eq!(ok_and_conflict, 501, "{text}");
    batched.batch = 0;
    assert!(bench::run(&batched).is_err(), "--batch 0 is refused");
    server.abort();
    let unknown = bench::run(&options_for_unknown());
    assert!(unknown.is_err());
}

fn options_for_unknown() -> Options {
    let mut options = options(&["ledger", "--commands", "1"]);
    options.domain = "nope".into();
    options
}

#[test]
fn an_unknown_domain_lists_the_domains_and_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anthill"))
        .args(["bench", "nope", "--commands", "10"])
        .output()
        .expect("run anthill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for domain in bench::DOMAINS {
        assert!(stderr.contains(domain), "{stderr}");
    }
}

#[test]
fn a_small_run_prints_the_table_and_plain_progress_lines_off_a_terminal() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anthill"))
        .args(["bench", "delivery", "--commands", "300", "--progress", "lines"])
        .output()
        .expect("run anthill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for header in ["commands/s", "p99 ms", "rejection", "checks:", "verify"] {
        assert!(stdout.contains(header), "{stdout}");
    }
}

#[test]
fn the_exchange_runs_many_books_over_two_partitions() {
    let options = options(&[
        "exchange",
        "--commands",
        "2000",
        "--books",
        "50",
        "--partitions",
        "2",
        "--progress",
        "none",
        "--window",
        "512",
    ]);
    let report = bench::run(&options).unwrap_or_else(|e| panic!("exchange: {e}"));
    let text = report.render();
    assert_eq!(report.tally.answered(), COMMANDS, "{text}");
    assert!(report.ok(), "{text}");
    assert!(report.checks.iter().any(|c| c.name == "tape" && c.detail.contains("50 books")), "{text}");
}
