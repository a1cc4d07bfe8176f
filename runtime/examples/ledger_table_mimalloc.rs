//! The ledger benchmark table (see `ledger_table`) with mimalloc as the global allocator: the engine allocates a
//! few small objects per command across threads, which glibc's allocator handles poorly.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/support/table.rs"]
mod table;

fn main() {
    table::main();
}
