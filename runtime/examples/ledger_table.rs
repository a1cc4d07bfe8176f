//! Prints the ledger benchmark table: durable commands/s and latency for the engine (1 and 2 partitions) next
//! to a raw heed loop doing the same work, state reads/s and view range reads/s while writing, and reopen time.
//!
//! `cargo run --release -p anthill-runtime --example ledger_table -- [commands] [accounts...]`
//! `LEDGER_REOPEN_EVENTS=10000000` also builds a store of that many events and times reopen + first command.
//! `LEDGER_PARTITIONS=1` runs only the engine with that many partitions (for profiling).
//! `LEDGER_PACED_RATE=400000` paces at that rate instead of half the throughput just measured (to compare
//! versions at one load); `LEDGER_PACED_SECONDS=4` sets how long a paced run is measured (4 s by default).

//! This one uses the system allocator; `ledger_table_mimalloc` the same with mimalloc.

#[path = "../benches/support/table.rs"]
mod table;

fn main() {
    table::main();
}
