//! The generated-ledger benchmark (see `ledger_generated`) with mimalloc as the global allocator, as the
//! `anthill` binary runs it.
//! `cargo run --release -p anthill-runtime --example ledger_generated_mimalloc -- [commands]`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "ledger_generated.rs"]
mod generated;

fn main() {
    generated::main();
}
