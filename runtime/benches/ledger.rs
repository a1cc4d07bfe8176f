//! Durable commands per second on the ledger workload (10,000 accounts, Zipf-skewed, 40% withdrawals with the
//! overdraft check): the engine with 1 and 2 partitions, and a raw hand-written heed group-commit loop doing
//! the same work. `cargo bench -p anthill-runtime --bench ledger`.

#[path = "support/workload.rs"]
mod workload;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use workload::{run_engine, setup_engine, Raw};

const ACCOUNTS: u64 = 10_000;
const COMMANDS_PER_ITERATION: u64 = 100_000;

fn ledger(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger_10k_accounts");
    group.throughput(Throughput::Elements(COMMANDS_PER_ITERATION));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.warm_up_time(Duration::from_secs(1));

    for partitions in [1u32, 2] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let engine = setup_engine(dir.path(), partitions, ACCOUNTS).expect("the engine opens");
        let mut seed = 1;
        group.bench_function(format!("engine_{partitions}_partitions"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    seed += 1;
                    total += run_engine(&engine, ACCOUNTS, COMMANDS_PER_ITERATION, seed).expect("the run").elapsed;
                }
                total
            })
        });
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut raw = Raw::open(dir.path(), ACCOUNTS).expect("the raw store opens");
    let mut seed = 1;
    group.bench_function("raw_heed_loop", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                seed += 1;
                total += raw.run(ACCOUNTS, COMMANDS_PER_ITERATION, seed).expect("the run").elapsed;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);
