//! Crash safety: a child process runs durable commands under load and prints every acknowledged command id;
//! the parent SIGKILLs it at random moments, reopens the store, and checks that every acknowledged command is
//! present, the log is gapless, every invariant holds, each instance's state equals a fresh replay of its
//! events, and every transfer completed or was refunded exactly once.
//!
//! A test binary without the libtest harness: run with no environment it is the parent; with
//! `ANTHILL_CRASH_CHILD` set to a store path it is the child.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use anthill_runtime::engine::{CommandMeta, Engine};
use anthill_runtime::error::Error;
use support::{money, test_config, Account, AccountCommand, AccountEvent, Demo, Slot, SlotCommand};

const CHILD_ENV: &str = "ANTHILL_CRASH_CHILD";
const ROUNDS: u32 = 10;
const ACCOUNTS: u64 = 50;
/// Transfers also go to these accounts, which are never opened: those are refunded.
const ACCOUNTS_UNOPENED: u64 = 5;
const SLOT_CAPACITY: u32 = 400;
const WRITER_THREADS: u64 = 3;
const IN_FLIGHT_MAX: usize = 64;
/// Batches of `IN_FLIGHT_MAX` commands each writer thread of a child sends.
const CHILD_BATCHES_MAX: u64 = 128;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Two partitions, and checkpoints every few batches, so kills also land during checkpoints and reopening
/// replays what the last one left behind.
fn crash_config() -> anthill_runtime::engine::Config {
    anthill_runtime::engine::Config { checkpoint_events_max: 300, checkpoint_entries_max: 200, ..test_config(2) }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(1);
    (nanos as u64) | 1
}

fn main() {
    support::child::main("crash test", CHILD_ENV, child, parent);
}

/// The child: sets up the accounts and the slot (idempotently), then runs commands until it is killed.
fn child(path: &str) -> Result<(), String> {
    let round: u64 = std::env::var("ANTHILL_CRASH_ROUND").ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let engine = Engine::<Demo>::open(path, crash_config()).map_err(|e| e.to_string())?;
    let setup_id = |n: u64| CommandMeta { command_id: Some(u128::from(n) + (1 << 100)), ..CommandMeta::default() };
    for account in 0..ACCOUNTS {
        engine.execute::<Account>(account, AccountCommand::Open, setup_id(account)).map_err(|e| e.to_string())?;
    }
    engine
        .execute::<Slot>(1, SlotCommand::Configure { capacity: SLOT_CAPACITY }, setup_id(ACCOUNTS))
        .map_err(|e| e.to_string())?;
    println!("ready");
    std::thread::scope(|scope| {
        for thread in 0..WRITER_THREADS {
            let engine = &engine;
            scope.spawn(move || child_writer(engine, round, thread));
        }
    });
    // Done early: wait for the kill (the parent kills every child within a second).
    std::thread::sleep(Duration::from_secs(30));
    Ok(())
}

fn child_writer(engine: &Engine<Demo>, round: u64, thread: u64) {
    let mut rng = Rng(seed() ^ (thread << 40));
    let stdout = std::io::stdout();
    // Bounded, so the store (and the checks that read all of it) stays small however fast the machine is; a
    // child that finishes early idles until it is killed.
    for batch in 0..CHILD_BATCHES_MAX {
        let mut pending = Vec::with_capacity(IN_FLIGHT_MAX);
        for i in 0..IN_FLIGHT_MAX as u64 {
            // Unique across rounds, threads and batches; also the transfer id.
            let id = (round << 48) | (thread << 40) | (batch << 8) | i;
            let meta = CommandMeta { command_id: Some(u128::from(id)), ..CommandMeta::default() };
            let account = rng.below(ACCOUNTS);
            let amount = money(1 + rng.below(20) as i64);
            let submitted = match rng.below(10) {
                0..=3 => engine
                    .submit::<Account>(account, AccountCommand::Deposit { amount }, meta)
                    .map(|p| Box::new(move || p.wait().map(|_| ())) as Box<dyn FnOnce() -> Result<(), Error>>),
                4..=6 => engine
                    .submit::<Account>(account, AccountCommand::Withdraw { amount }, meta)
                    .map(|p| Box::new(move || p.wait().map(|_| ())) as Box<dyn FnOnce() -> Result<(), Error>>),
                7..=8 => {
                    let to = rng.below(ACCOUNTS + ACCOUNTS_UNOPENED);
                    let command = AccountCommand::SendTransfer { transfer: id, to, amount };
                    engine
                        .submit::<Account>(account, command, meta)
                        .map(|p| Box::new(move || p.wait().map(|_| ())) as Box<dyn FnOnce() -> Result<(), Error>>)
                }
                _ => engine
                    .submit::<Slot>(1, SlotCommand::Book, meta)
                    .map(|p| Box::new(move || p.wait().map(|_| ())) as Box<dyn FnOnce() -> Result<(), Error>>),
            };
            if let Ok(wait) = submitted {
                pending.push((id, wait));
            }
        }
        for (id, wait) in pending {
            if wait().is_ok() {
                // Printed only once the outcome is durable; the parent holds us to it.
                let mut out = stdout.lock();
                let _ = writeln!(out, "ack {id}");
                let _ = out.flush();
            }
        }
    }
}

fn parent() -> Result<(), String> {
    let started = Instant::now();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rng = Rng(seed());
    let mut acked_total = 0usize;
    for round in 0..ROUNDS {
        let (mut child, stdout) =
            support::child::spawn(CHILD_ENV, dir.path(), &[("ANTHILL_CRASH_ROUND", round.to_string())])?;
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut ready = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "ready" {
                    ready = true;
                } else if let Some(id) = line.strip_prefix("ack ").and_then(|id| id.parse::<u64>().ok()) {
                    acked.push(id);
                }
            }
            (ready, acked)
        });
        // Kill at a random moment: between 30 and 330 ms after start (opening included), mostly while the child
        // is still sending (each sends a bounded number of commands, so the checks stay quick).
        std::thread::sleep(Duration::from_millis(30 + rng.below(300)));
        child.kill().map_err(|e| format!("cannot kill the child: {e}"))?;
        let status = child.wait().map_err(|e| e.to_string())?;
        let (ready, acked) = reader.join().map_err(|_| "the reader thread panicked")?;
        check(dir.path(), &acked).map_err(|e| format!("round {round} ({status}, ready: {ready}): {e}"))?;
        acked_total += acked.len();
        println!("round {round}: killed ({status}), {} acknowledged commands present", acked.len());
    }
    if acked_total == 0 {
        return Err("no command was ever acknowledged: the child did no work before it was killed".into());
    }
    println!("crash test: {ROUNDS} kills, {acked_total} acknowledged commands, {:?}", started.elapsed());
    Ok(())
}

fn check(path: &std::path::Path, acked: &[u64]) -> Result<(), String> {
    let engine = Engine::<Demo>::open(path, crash_config()).map_err(|e| format!("reopen: {e}"))?;
    let err = |e: Error| e.to_string();
    // Every acknowledged command is in the store.
    support::child::check_commands(&engine, acked, &[])?;
    // Gapless log, and every stored state equals a fresh replay of its events.
    engine.verify().map_err(err)?;
    // The invariants.
    for account in 0..ACCOUNTS + ACCOUNTS_UNOPENED {
        if let Some(snapshot) = engine.state::<Account>(&account).map_err(err)? {
            if snapshot.state.balance.mantissa() < 0 {
                return Err(format!("account {account} is overdrawn: {}", snapshot.state.balance));
            }
        }
    }
    if let Some(slot) = engine.state::<Slot>(&1).map_err(err)? {
        if slot.state.booked > slot.state.capacity {
            return Err(format!("the slot is overbooked: {} of {}", slot.state.booked, slot.state.capacity));
        }
    }
    // The processes resume and every transfer is completed or refunded exactly once.
    if !engine.wait_for_processes(Duration::from_secs(20)).map_err(err)? {
        return Err(format!("the processes did not catch up: {:?}", engine.process_error()));
    }
    // The view rows (written behind the log, replayed on reopening) equal a fold of the whole log (taken once
    // the processes, which send commands of their own, are done).
    let rows = engine.view_range(support::DEPOSITS_VIEW, &[], 10_000).map_err(err)?;
    engine.rebuild_view(support::DEPOSITS_VIEW).map_err(err)?;
    if engine.view_range(support::DEPOSITS_VIEW, &[], 10_000).map_err(err)? != rows {
        return Err("the view rows differ from a fold of the whole log".into());
    }
    let mut sent = HashSet::new();
    let mut settled: HashMap<u64, u32> = HashMap::new();
    let mut since = 0;
    loop {
        let chunk = engine.changes(since, 4096).map_err(err)?;
        let Some(last) = chunk.last() else { break };
        since = last.seq;
        for stored in &chunk {
            if stored.envelope.aggregate != "account" {
                continue;
            }
            let event = anthill_runtime::codec::decode::<AccountEvent>(&stored.event).map_err(|e| e.to_string())?;
            match event {
                AccountEvent::TransferSent { transfer, .. } => {
                    sent.insert(transfer);
                }
                AccountEvent::TransferReceived { transfer, .. } | AccountEvent::TransferRefunded { transfer, .. } => {
                    *settled.entry(transfer).or_default() += 1;
                }
                _ => {}
            }
        }
    }
    for transfer in &sent {
        match settled.get(transfer) {
            Some(1) => {}
            other => return Err(format!("transfer {transfer:#x} settled {other:?} times")),
        }
    }
    if settled.len() != sent.len() {
        return Err(format!("{} transfers settled, {} sent", settled.len(), sent.len()));
    }
    // No checkpoint step failed while checking (the reopened engine steps every few batches too).
    let stats = engine.stats();
    if stats.failed_checkpoints > 0 {
        return Err(format!("checkpoint steps: {} written, {} failed", stats.checkpoints, stats.failed_checkpoints));
    }
    engine.shutdown();
    Ok(())
}
