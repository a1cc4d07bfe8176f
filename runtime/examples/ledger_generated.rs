//! The ledger benchmark on the real generated code (`generated/ledger.rs`, the bundled model) instead of the
//! hand-written stand-in: 10,000 accounts, Zipf-skewed, 60% deposits and 40% withdrawals checked against the
//! balance and overdraft limit, next to the raw heed loop in the same run. Then the latency when commands come
//! at a fixed rate, half the throughput just measured and `TARGET_HALF_LOAD`, next to the raw loop doing the
//! same work fed at the same rate, and next to the disk's floors at that rate: the log's appends alone on
//! LMDB, and a plain file's appends with one `fdatasync` a batch.
//! `cargo run --release -p anthill-runtime --example ledger_generated -- [commands]`
//! `LEDGER_PACED_RATE` paces at that rate only; `LEDGER_PACED_SECONDS` sets how long a paced run is measured.
//! `LEDGER_COMMAND_IDS=time-ordered` or `random` gives the engine's commands idempotency keys (see `command_meta`).

// Not every generated item is used here.
#[allow(dead_code)]
// `include!`, not `#[path]`: rustfmt must not reformat the generated file.
pub mod ledger {
    include!("../../generated/ledger.rs");
}
#[path = "../benches/support/workload.rs"]
pub mod workload;

use std::collections::VecDeque;
use std::time::Instant;

use anthill_runtime::engine::{CommandMeta, Engine, Pending, Stats};
use anthill_runtime::error::Error;
use anthill_runtime::Decimal;
use ledger::account::{commands, Account, Command};
use workload::{
    commits_by_duration, engine_config, paced_commands, paced_file_floor, paced_log_floor, paced_rate, run_paced,
    PacedRun, Raw, Zipf, CLIENTS, WINDOW,
};

pub const ACCOUNTS: u64 = 10_000;

/// Half the load of issue 4's throughput target (500,000 commands/s), where its p99 target applies.
pub const TARGET_HALF_LOAD: u64 = 250_000;

pub fn main() {
    let commands = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(400_000u64);
    if let Err(message) = run(commands) {
        eprintln!("ledger_generated: {message}");
        std::process::exit(1);
    }
}

fn id(account: u64) -> ledger::AccountId {
    ledger::AccountId(format!("acc-{account}"))
}

fn run(commands: u64) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut raw = Raw::open(dir.path(), ACCOUNTS).map_err(|e| e.to_string())?;
    let raw_run = raw.run(ACCOUNTS, commands, 7).map_err(|e| e.to_string())?;
    println!("| generated ledger, 10,000 accounts | commands/s |");
    println!("|---|---:|");
    println!("| raw heed loop | {:.0} |", raw_run.per_second());
    // The same, also keeping the model's view row per account: the work the generated ledger does.
    let rows_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut raw_rows = Raw::open(rows_dir.path(), ACCOUNTS).map_err(|e| e.to_string())?;
    let raw_rows_run = raw_rows.run_with_rows(ACCOUNTS, commands, 7).map_err(|e| e.to_string())?;
    println!("| raw heed loop, with the view rows | {:.0} |", raw_rows_run.per_second());
    // `LEDGER_PARTITIONS=1` runs one count only (for a profile).
    let counts: Vec<u32> = match std::env::var("LEDGER_PARTITIONS").ok().and_then(|v| v.parse().ok()) {
        Some(count) => vec![count],
        None => vec![1, 2],
    };
    for partitions in counts {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let engine =
            Engine::<ledger::Ledger>::open(dir.path(), engine_config(partitions)).map_err(|e| e.to_string())?;
        setup(&engine).map_err(|e| e.to_string())?;
        let before = engine.stats();
        let cpu_before = thread_cpu_ms();
        let started = Instant::now();
        load(&engine, commands).map_err(|e| e.to_string())?;
        let per_second = commands as f64 / started.elapsed().as_secs_f64();
        let after = engine.stats();
        let cpu_after = thread_cpu_ms();
        let batches = (after.batches - before.batches).max(1);
        println!("| engine, {partitions} partition(s) | {per_second:.0} |");
        eprintln!(
            "engine, {partitions} partition(s): {:.0} commands per batch; per batch: decide {} us, write {} us, commit {} us; {} checkpoint steps",
            (after.commands - before.commands) as f64 / batches as f64,
            (after.decide_us - before.decide_us) / batches,
            (after.write_us - before.write_us) / batches,
            (after.commit_us - before.commit_us) / batches,
            after.checkpoints - before.checkpoints,
        );
        // CPU time per 1,000 commands by thread kind: what each costs, whatever else the machine runs.
        let per_thousand = |kind: &str| cpu_ms_used(&cpu_before, &cpu_after, kind) * 1_000.0 / commands as f64;
        eprintln!(
            "engine, {partitions} partition(s): CPU ms per 1,000 commands: writers {:.2}, committer {:.2}, answers {:.2}, whole process {:.2}",
            per_thousand("anthill-writer"),
            per_thousand("anthill-committ"),
            per_thousand("anthill-answers"),
            per_thousand("(process)"),
        );
        // What the store holds on disk by now (LMDB's file: pages in use and free ones).
        let store_bytes = std::fs::metadata(dir.path().join("data.mdb")).map(|m| m.len()).unwrap_or(0);
        eprintln!("engine, {partitions} partition(s): store file {:.1} MiB", store_bytes as f64 / (1 << 20) as f64);
        // Latency at a fixed rate: half the throughput just measured, and half the target's load.
        let rates = match std::env::var("LEDGER_PACED_RATE") {
            Ok(_) => vec![paced_rate(per_second)],
            Err(_) => vec![paced_rate(per_second), TARGET_HALF_LOAD],
        };
        for rate in rates {
            let paced_count = paced_commands(rate);
            let cpu_before = thread_cpu_ms();
            let stats_before = engine.stats();
            let started = Instant::now();
            let paced = paced_run(&engine, paced_count, rate).map_err(|e| e.to_string())?;
            let wall_ms = started.elapsed().as_secs_f64() * 1_000.0;
            let cpu_after = thread_cpu_ms();
            let stats_after = engine.stats();
            print_paced(&format!("engine, {partitions} partition(s)"), rate, &paced);
            print_batches(
                &format!("engine, {partitions} partition(s), paced at {rate}/s"),
                &stats_before,
                &stats_after,
            );
            // How busy the 2 cores were; the load generator's clients and waiters count in the whole process.
            let cores = |kind: &str| cpu_ms_used(&cpu_before, &cpu_after, kind) / wall_ms;
            eprintln!(
                "engine, {partitions} partition(s), paced at {rate}/s: cores used: writers {:.2}, committer {:.2}, answers {:.2}, whole process {:.2}",
                cores("anthill-writer"),
                cores("anthill-committ"),
                cores("anthill-answers"),
                cores("(process)")
            );
            if partitions == 1 {
                let floor = raw_rows.run_paced(ACCOUNTS, paced_count, rate, 9, true).map_err(|e| e.to_string())?;
                print_paced("raw heed loop, with the view rows", rate, &floor);
                // What the disk alone gives at this rate: the log's appends on LMDB, and one file's appends;
                // and the CPU their syncs cost (the engine's threads are idle meanwhile).
                let floor_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let cpu_before = thread_cpu_ms();
                let started = Instant::now();
                let log_only = paced_log_floor(floor_dir.path(), paced_count, rate).map_err(|e| e.to_string())?;
                let cores = cpu_ms_used(&cpu_before, &thread_cpu_ms(), "(process)")
                    / (started.elapsed().as_secs_f64() * 1_000.0);
                print_paced("LMDB log appends only", rate, &log_only);
                eprintln!("LMDB log appends only, paced at {rate}/s: cores used: whole process {cores:.2}");
                let file_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let file_only = paced_file_floor(file_dir.path(), paced_count, rate).map_err(|e| e.to_string())?;
                print_paced("file append + fdatasync", rate, &file_only);
            }
        }
    }
    Ok(())
}

/// What the batches of a run were like: their size, and how long their steps took (means), and how the
/// commits' durations spread.
fn print_batches(runner: &str, before: &Stats, after: &Stats) {
    let batches = (after.batches - before.batches).max(1);
    eprintln!(
        "{runner}: {} batches, {:.0} commands per batch; per batch: decide {} us, write {} us, commit {} us; {} checkpoint steps; commits by us: {}",
        after.batches - before.batches,
        (after.commands - before.commands) as f64 / batches as f64,
        (after.decide_us - before.decide_us) / batches,
        (after.write_us - before.write_us) / batches,
        (after.commit_us - before.commit_us) / batches,
        after.checkpoints - before.checkpoints,
        commits_by_duration(before, after),
    );
}

fn print_paced(runner: &str, rate: u64, paced: &PacedRun) {
    let refused = if paced.refused > 0 { format!(", {} refused as overloaded", paced.refused) } else { String::new() };
    println!(
        "| {runner}, paced at {rate}/s: p50 {} us, p99 {} us (with the warm-up: {} us){refused} | {:.0} |",
        paced.run.latency_us_p50,
        paced.run.latency_us_p99,
        paced.latency_us_p99_with_warmup,
        paced.run.per_second()
    );
}

/// The workload's commands submitted at `rate` (see `workload::run_paced`).
fn paced_run(engine: &Engine<ledger::Ledger>, commands: u64, rate: u64) -> Result<PacedRun, Error> {
    let ids: Vec<ledger::AccountId> = (0..ACCOUNTS).map(id).collect();
    run_paced(
        ACCOUNTS,
        commands,
        rate,
        9,
        |zipf| {
            let (account, command) = next_command(zipf);
            engine.submit::<Account>(ids[account].clone(), command, command_meta(zipf))
        },
        |pending| pending.wait().map(drop),
    )
}

/// The workload's next command: an account (Zipf-skewed) and a deposit, or a withdrawal 40% of the time.
fn next_command(zipf: &mut Zipf) -> (usize, Command) {
    let account = zipf.sample() as usize;
    let amount = Decimal::from_mantissa(100 * (1 + (zipf.next_u64() % 50) as i64));
    let command = if zipf.next_u64() % 100 < 40 {
        Command::Withdraw(commands::Withdraw { amount })
    } else {
        Command::Deposit(commands::Deposit { amount })
    };
    (account, command)
}

/// CPU milliseconds the threads whose names start with `kind` used between two `thread_cpu_ms` readings.
fn cpu_ms_used(before: &[(String, f64)], after: &[(String, f64)], kind: &str) -> f64 {
    let sum =
        |cpu: &[(String, f64)]| cpu.iter().filter(|(name, _)| name.starts_with(kind)).map(|(_, ms)| ms).sum::<f64>();
    sum(after) - sum(before)
}

/// Per thread of this process: its name and the CPU time it used so far, in milliseconds, and the whole
/// process's as `(process)` (Linux; empty elsewhere).
fn thread_cpu_ms() -> Vec<(String, f64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    // USER_HZ is 100 on Linux: a tick is 10 ms.
    let read = |path: std::path::PathBuf| -> Option<(String, f64)> {
        let stat = std::fs::read_to_string(path).ok()?;
        let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some((name.to_owned(), ticks * 10.0))
    };
    let mut threads: Vec<(String, f64)> = tasks.filter_map(|task| read(task.ok()?.path().join("stat"))).collect();
    // The process's own line counts the threads that ended too (the clients).
    if let Some((_, ms)) = read("/proc/self/stat".into()) {
        threads.push(("(process)".to_owned(), ms));
    }
    threads
}

pub fn setup(engine: &Engine<ledger::Ledger>) -> Result<(), Error> {
    let mut pending: VecDeque<Pending<Account>> = VecDeque::new();
    for account in 0..ACCOUNTS {
        let open = Command::Open(commands::Open { owner: "owner".into(), overdraft_limit: Decimal::ZERO });
        let deposit = Command::Deposit(commands::Deposit { amount: Decimal::from_mantissa(50_000) });
        for command in [open, deposit] {
            pending.push_back(engine.submit::<Account>(id(account), command, CommandMeta::default())?);
            if pending.len() >= WINDOW {
                if let Some(p) = pending.pop_front() {
                    p.wait()?;
                }
            }
        }
    }
    for p in pending {
        p.wait()?;
    }
    Ok(())
}

pub fn load(engine: &Engine<ledger::Ledger>, commands: u64) -> Result<(), Error> {
    let per_client = commands / CLIENTS as u64;
    let ids: Vec<ledger::AccountId> = (0..ACCOUNTS).map(id).collect();
    std::thread::scope(|scope| {
        let handles: Vec<std::thread::ScopedJoinHandle<'_, Result<(), Error>>> = (0..CLIENTS)
            .map(|client| {
                let ids = &ids;
                let thread = std::thread::Builder::new().name(format!("client-{client}"));
                thread.spawn_scoped(scope, move || -> Result<(), Error> {
                    let mut zipf = Zipf::new(ACCOUNTS as usize, 1.0, 7 + client as u64);
                    let mut window: VecDeque<Pending<Account>> = VecDeque::with_capacity(WINDOW);
                    for _ in 0..per_client {
                        if window.len() >= WINDOW {
                            if let Some(p) = window.pop_front() {
                                p.wait()?;
                            }
                        }
                        let (account, command) = next_command(&mut zipf);
                        window.push_back(engine.submit::<Account>(
                            ids[account].clone(),
                            command,
                            command_meta(&mut zipf),
                        )?);
                    }
                    for p in window {
                        p.wait()?;
                    }
                    Ok(())
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Store { message: format!("cannot start a client: {e}") })?;
        for handle in handles {
            handle.join().expect("a client panicked")?;
        }
        Ok(())
    })
}

/// What the runs' commands carry as their idempotency key (`LEDGER_COMMAND_IDS`): none (the default), a
/// time-ordered id (`time-ordered`: `new_id`, UUIDv7-like, as the HTTP server makes of a UUIDv7
/// `Idempotency-Key`), or a random one (`random`: as a UUIDv4 key, or any other string, hashed).
fn command_meta(zipf: &mut Zipf) -> CommandMeta {
    let command_id = match COMMAND_IDS.get_or_init(|| std::env::var("LEDGER_COMMAND_IDS").unwrap_or_default()).as_str()
    {
        "time-ordered" => Some(anthill_runtime::engine::new_id()),
        "random" => Some((u128::from(zipf.next_u64()) << 64) | u128::from(zipf.next_u64())),
        _ => None,
    };
    CommandMeta { command_id, ..CommandMeta::default() }
}

static COMMAND_IDS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
