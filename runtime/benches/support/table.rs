//! The ledger benchmark table, shared by the `ledger_table` examples (system allocator and mimalloc).

#[path = "workload.rs"]
mod workload;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anthill_runtime::engine::{CommandMeta, Engine};
use workload::{
    commits_by_duration, deposits_key, engine_config, money, paced_commands, paced_rate, run_engine, run_engine_paced,
    setup_engine, Account, AccountCommand, Demo, Raw, Zipf, DEPOSITS_VIEW,
};

/// Runs the table with the arguments of the process.
pub fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let commands = args.first().copied().unwrap_or(400_000);
    let account_counts = if args.len() > 1 { args[1..].to_vec() } else { vec![10_000] };
    if let Err(message) = table(commands, &account_counts) {
        eprintln!("ledger_table: {message}");
        std::process::exit(1);
    }
}

fn table(commands: u64, account_counts: &[u64]) -> Result<(), String> {
    let only: Option<u32> = std::env::var("LEDGER_PARTITIONS").ok().and_then(|p| p.parse().ok());
    println!("| accounts | runner | commands/s | p50 latency (us) | p99 latency (us) | commands/batch |");
    println!("|---:|---|---:|---:|---:|---:|");
    for &accounts in account_counts {
        // The raw loop, kept for its paced run after the engine's (not with `LEDGER_PARTITIONS`).
        let raw_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut raw = None;
        if only.is_none() {
            let raw = raw.insert(Raw::open(raw_dir.path(), accounts).map_err(|e| e.to_string())?);
            let run = raw.run(accounts, commands, 7).map_err(|e| e.to_string())?;
            println!("| {accounts} | raw heed loop | {:.0} | - | - | 4096 |", run.per_second());
        }
        for partitions in only.map_or(vec![1, 2], |p| vec![p]) {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let engine = setup_engine(dir.path(), partitions, accounts).map_err(|e| e.to_string())?;
            let before = engine.stats();
            let run = run_engine(&engine, accounts, commands, 7).map_err(|e| e.to_string())?;
            let after = engine.stats();
            let batches = (after.batches - before.batches).max(1);
            let batch_mean = (after.commands - before.commands) as f64 / batches as f64;
            eprintln!(
                "engine, {partitions} partition(s): per batch: decide {} us, write {} us, commit {} us",
                (after.decide_us - before.decide_us) / batches,
                (after.write_us - before.write_us) / batches,
                (after.commit_us - before.commit_us) / batches
            );
            println!(
                "| {accounts} | engine, {partitions} partition(s) | {:.0} | {} | {} | {batch_mean:.0} |",
                run.per_second(),
                run.latency_us_p50,
                run.latency_us_p99
            );
            if only.is_none() {
                // Latency at half the load just measured, submitted at a fixed rate, after a warm-up.
                let rate = paced_rate(run.per_second());
                let paced_count = paced_commands(rate);
                let before = engine.stats();
                let paced = run_engine_paced(&engine, accounts, paced_count, rate, 9).map_err(|e| e.to_string())?;
                let after = engine.stats();
                // Where the tail comes from: commits by duration (upper bounds in microseconds).
                eprintln!(
                    "paced, {partitions} partition(s): {} batches, {} checkpoint steps, {} commands refused as overloaded; commits {}",
                    after.batches - before.batches,
                    after.checkpoints - before.checkpoints,
                    paced.refused,
                    commits_by_duration(&before, &after)
                );
                println!(
                    "| {accounts} | engine, {partitions} partition(s), paced at {rate}/s (p99 with the warm-up: {} us) | {:.0} | {} | {} | - |",
                    paced.latency_us_p99_with_warmup,
                    paced.run.per_second(),
                    paced.run.latency_us_p50,
                    paced.run.latency_us_p99
                );
                if let (1, Some(raw)) = (partitions, raw.as_mut()) {
                    // The floor at the same load: the raw loop fed at the same rate, in the same minute.
                    let floor = raw.run_paced(accounts, paced_count, rate, 9, false).map_err(|e| e.to_string())?;
                    println!(
                        "| {accounts} | raw heed loop, paced at {rate}/s (p99 with the warm-up: {} us) | {:.0} | {} | {} | - |",
                        floor.latency_us_p99_with_warmup,
                        floor.run.per_second(),
                        floor.run.latency_us_p50,
                        floor.run.latency_us_p99
                    );
                }
            }
            if partitions == 1 && only.is_none() {
                reads_while_writing(&engine, accounts, commands)?;
            }
        }
    }
    if let Some(events) = std::env::var("LEDGER_REOPEN_EVENTS").ok().and_then(|e| e.parse::<u64>().ok()) {
        reopen(events)?;
    }
    Ok(())
}

/// What the reader thread beside the writers does.
#[derive(Clone, Copy)]
enum ReadKind {
    /// An account's state (each read its own read transaction).
    State,
    /// A range of the deposits view: up to `VIEW_RANGE_ROWS` rows from an account's key on.
    ViewRange,
}

/// Rows per range read in [`ReadKind::ViewRange`], a page as an HTTP client would ask for.
const VIEW_RANGE_ROWS: usize = 100;

/// One thread reads (account states, then view ranges) while the clients write.
fn reads_while_writing(engine: &Engine<Demo>, accounts: u64, commands: u64) -> Result<(), String> {
    for (kind, seed) in [(ReadKind::State, 8), (ReadKind::ViewRange, 10)] {
        let stop = AtomicBool::new(false);
        let reads = AtomicU64::new(0);
        let started = Instant::now();
        let run = std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut zipf = Zipf::new(accounts as usize, 1.0, 99);
                let mut count = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100 {
                        let account = zipf.sample();
                        let read = match kind {
                            ReadKind::State => engine.state::<Account>(&account).map(|s| s.is_some()),
                            ReadKind::ViewRange => engine
                                .view_range(DEPOSITS_VIEW, &deposits_key(account), VIEW_RANGE_ROWS)
                                .map(|rows| !rows.is_empty()),
                        };
                        if let Ok(found) = read {
                            std::hint::black_box(found);
                            count += 1;
                        }
                    }
                }
                reads.store(count, Ordering::Relaxed);
            });
            let run = run_engine(engine, accounts, commands, seed);
            stop.store(true, Ordering::Relaxed);
            run
        })
        .map_err(|e| e.to_string())?;
        let reads_per_second = reads.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        let what = match kind {
            ReadKind::State => "state reads",
            ReadKind::ViewRange => "view range reads",
        };
        println!(
            "| {accounts} | engine, 1 partition, with 1 thread doing {what} | {:.0} | {} | {} | - |",
            run.per_second(),
            run.latency_us_p50,
            run.latency_us_p99
        );
        match kind {
            ReadKind::State => println!("\nstate reads/s alongside those writes (1 thread): {reads_per_second:.0}\n"),
            ReadKind::ViewRange => println!(
                "\nview range reads/s ({VIEW_RANGE_ROWS} rows each) alongside those writes (1 thread): {reads_per_second:.0}\n"
            ),
        }
    }
    Ok(())
}

/// Builds a store of `events` events (10,000 accounts), closes it, and times reopen plus the first command.
fn reopen(events: u64) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    {
        let engine = setup_engine(dir.path(), 1, 10_000).map_err(|e| e.to_string())?;
        let built = Instant::now();
        run_engine(&engine, 10_000, events.saturating_sub(20_000), 5).map_err(|e| e.to_string())?;
        let last = engine.last_seq().map_err(|e| e.to_string())?;
        println!("built a store of {last} events in {:?}", built.elapsed());
        engine.shutdown();
    }
    let started = Instant::now();
    let engine = Engine::<Demo>::open(dir.path(), engine_config(1)).map_err(|e| e.to_string())?;
    let opened = started.elapsed();
    let outcome = engine
        .execute::<Account>(17, AccountCommand::Deposit { amount: money(1) }, CommandMeta::default())
        .map_err(|e| e.to_string())?;
    println!(
        "reopen: {opened:?}; reopen plus first command: {:?} (accepted: {})",
        started.elapsed(),
        outcome.is_accepted()
    );
    Ok(())
}
