//! Prints the ledger benchmark table: durable commands/s and latency for the engine (1 and 2 partitions) and a
//! raw heed loop doing the same work. `cargo run --release -p anthill-runtime --example ledger_table --
//! [commands] [accounts...]`.

#[path = "../benches/support/workload.rs"]
mod workload;

use workload::{run_engine, setup_engine, Raw};

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let commands = args.first().copied().unwrap_or(400_000);
    let account_counts = if args.len() > 1 { args[1..].to_vec() } else { vec![10_000] };
    if let Err(message) = table(commands, &account_counts) {
        eprintln!("ledger_table: {message}");
        std::process::exit(1);
    }
}

fn table(commands: u64, account_counts: &[u64]) -> Result<(), String> {
    println!("| accounts | runner | commands/s | p50 latency (us) | p99 latency (us) |");
    println!("|---:|---|---:|---:|---:|");
    for &accounts in account_counts {
        // `LEDGER_PARTITIONS=1` runs only the engine with one partition (for profiling).
        let only: Option<u32> = std::env::var("LEDGER_PARTITIONS").ok().and_then(|p| p.parse().ok());
        if only.is_none() {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let mut raw = Raw::open(dir.path(), accounts).map_err(|e| e.to_string())?;
            let run = raw.run(accounts, commands, 7).map_err(|e| e.to_string())?;
            println!("| {accounts} | raw heed loop | {:.0} | - | - |", run.per_second());
        }
        for partitions in only.map_or(vec![1, 2], |p| vec![p]) {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let engine = setup_engine(dir.path(), partitions, accounts).map_err(|e| e.to_string())?;
            let before = engine.stats();
            let run = run_engine(&engine, accounts, commands, 7).map_err(|e| e.to_string())?;
            let after = engine.stats();
            let batch_mean = (after.commands - before.commands) as f64 / (after.batches - before.batches).max(1) as f64;
            eprintln!("engine, {partitions} partition(s): {batch_mean:.0} commands per batch on average");
            println!(
                "| {accounts} | engine, {partitions} partition(s) | {:.0} | {} | {} |",
                run.per_second(),
                run.latency_us_p50,
                run.latency_us_p99
            );
        }
    }
    Ok(())
}
