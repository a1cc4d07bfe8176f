//! Heap allocations per command of the generated-ledger workload (see `ledger_generated`), counted by a
//! wrapping global allocator: a measure of the engine's per-command overhead that, unlike throughput, does
//! not depend on the load of the machine. Everything the process does while the commands run is counted
//! (clients, writer, answering thread, process runner).
//! `cargo run --release -p anthill-runtime --example ledger_allocations -- [commands]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use anthill_runtime::engine::Engine;

#[allow(dead_code)]
#[path = "ledger_generated.rs"]
mod generated;

/// The system allocator, counting allocations (including reallocations, which move most of the time).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let commands = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000u64);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine =
        Engine::<generated::ledger::Ledger>::open(dir.path(), generated::workload::engine_config(1)).expect("opens");
    generated::setup(&engine).expect("accounts open");
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    generated::load(&engine, commands).expect("the workload runs");
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!("{commands} commands, 1 partition: {:.2} allocations per command", allocations as f64 / commands as f64);
}
