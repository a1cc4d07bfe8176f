//! The ledger workload shared by the criterion bench and the table printer: Zipf-skewed accounts, 40%
//! withdrawals with the overdraft check, run through the engine or through a raw heed group-commit loop.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use anthill_runtime::engine::{CommandMeta, Config, Engine, Pending};
use anthill_runtime::error::Error;

#[path = "../../tests/support/mod.rs"]
mod support;
#[allow(unused_imports)] // each example uses its own part
pub use support::{deposits_key, money, Account, AccountCommand, Demo, DEPOSITS_VIEW};

/// Commands a client keeps in flight.
pub const WINDOW: usize = 8_192;
pub const CLIENTS: usize = 2;
pub const BATCH_SIZE_MAX: u32 = 4_096;

/// Samples ranks 0..n with probability proportional to 1 / (rank + 1)^s.
pub struct Zipf {
    cdf: Vec<f64>,
    state: u64,
}

impl Zipf {
    pub fn new(n: usize, s: f64, seed: u64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 0..n {
            total += 1.0 / ((rank + 1) as f64).powf(s);
            cdf.push(total);
        }
        for value in &mut cdf {
            *value /= total;
        }
        Zipf { cdf, state: seed | 1 }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    pub fn sample(&mut self) -> u64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1) as u64
    }
}

/// The next command: 40% withdrawals (which the overdraft check may reject), 60% deposits.
pub fn next_command(zipf: &mut Zipf) -> (u64, AccountCommand) {
    let account = zipf.sample();
    let roll = zipf.next_u64() % 100;
    let amount = money(1 + (zipf.next_u64() % 50) as i64);
    if roll < 40 {
        (account, AccountCommand::Withdraw { amount })
    } else {
        (account, AccountCommand::Deposit { amount })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub commands: u64,
    pub elapsed: Duration,
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

pub fn engine_config(partitions: u32) -> Config {
    let mut config = Config { partitions, batch_size_max: BATCH_SIZE_MAX, ..Config::default() };
    config.queue_depth_max = (WINDOW * CLIENTS * 2) as u32;
    config.latency_budget = Duration::from_secs(5);
    config.store.map_size_bytes = 4 << 30;
    config
}

/// Opens every account with an opening balance.
pub fn setup_engine(path: &Path, partitions: u32, accounts: u64) -> Result<Engine<Demo>, Error> {
    let engine = Engine::<Demo>::open(path, engine_config(partitions))?;
    let mut pending: VecDeque<Pending<Account>> = VecDeque::new();
    for account in 0..accounts {
        for command in [AccountCommand::Open, AccountCommand::Deposit { amount: money(500) }] {
            pending.push_back(engine.submit::<Account>(account, command, CommandMeta::default())?);
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
    Ok(engine)
}

/// `commands` commands from `CLIENTS` threads, each with `WINDOW` in flight.
pub fn run_engine(engine: &Engine<Demo>, accounts: u64, commands: u64, seed: u64) -> Result<Run, Error> {
    let per_client = commands / CLIENTS as u64;
    let started = Instant::now();
    let mut latencies: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                scope.spawn(move || -> Result<Vec<u64>, Error> {
                    let mut zipf = Zipf::new(accounts as usize, 1.0, seed ^ ((client as u64 + 1) * 0x9e37_79b9));
                    let mut latencies = Vec::with_capacity(per_client as usize);
                    let mut window: VecDeque<(Instant, Pending<Account>)> = VecDeque::with_capacity(WINDOW);
                    for _ in 0..per_client {
                        if window.len() >= WINDOW {
                            if let Some((at, p)) = window.pop_front() {
                                p.wait()?;
                                latencies.push(at.elapsed().as_micros() as u64);
                            }
                        }
                        let (account, command) = next_command(&mut zipf);
                        window.push_back((
                            Instant::now(),
                            engine.submit::<Account>(account, command, CommandMeta::default())?,
                        ));
                    }
                    for (at, p) in window {
                        p.wait()?;
                        latencies.push(at.elapsed().as_micros() as u64);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().expect("a client panicked")?);
        }
        Ok::<_, Error>(all)
    })?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    Ok(Run { commands: per_client * CLIENTS as u64, elapsed, latency_us_p50: at(0.5), latency_us_p99: at(0.99) })
}

/// The baseline: the same work in one thread, by hand, on heed: balances in a HashMap, each batch appends
/// its events (similar envelope size) to a log keyed by big-endian sequence number, writes each touched
/// account's record once, and commits durably. [`Raw::run_with_rows`] also keeps a view row per account
/// (deposits, withdrawals, money in and out: the generated ledger's `account-activity`), written once per
/// batch like the records.
pub struct Raw {
    env: heed::Env,
    log: heed::Database<heed::types::Bytes, heed::types::Bytes>,
    accounts: heed::Database<heed::types::Bytes, heed::types::Bytes>,
    activity: heed::Database<heed::types::Bytes, heed::types::Bytes>,
    balances: HashMap<u64, i64>,
    /// Per account: deposits, withdrawals, money in, money out.
    rows: HashMap<u64, [i64; 4]>,
    next_seq: u64,
}

impl Raw {
    pub fn open(path: &Path, accounts: u64) -> Result<Raw, heed::Error> {
        std::fs::create_dir_all(path)?;
        let mut options = heed::EnvOpenOptions::new();
        options.map_size(4 << 30).max_dbs(4);
        // SAFETY: the baseline owns this directory and opens it once.
        let env = unsafe { options.open(path) }?;
        let mut txn = env.write_txn()?;
        let log = env.create_database(&mut txn, Some("log"))?;
        let accounts_db = env.create_database(&mut txn, Some("accounts"))?;
        let activity = env.create_database(&mut txn, Some("activity"))?;
        txn.commit()?;
        let balances = (0..accounts).map(|a| (a, 50_000)).collect();
        Ok(Raw { env, log, accounts: accounts_db, activity, balances, rows: HashMap::new(), next_seq: 1 })
    }

    pub fn run(&mut self, accounts: u64, commands: u64, seed: u64) -> Result<Run, heed::Error> {
        self.run_inner(accounts, commands, seed, false)
    }

    /// [`Raw::run`], also keeping the view rows.
    pub fn run_with_rows(&mut self, accounts: u64, commands: u64, seed: u64) -> Result<Run, heed::Error> {
        self.run_inner(accounts, commands, seed, true)
    }

    fn run_inner(&mut self, accounts: u64, commands: u64, seed: u64, rows: bool) -> Result<Run, heed::Error> {
        let mut zipf = Zipf::new(accounts as usize, 1.0, seed);
        let mut scratch = RawScratch::default();
        let started = Instant::now();
        let mut done = 0;
        while done < commands {
            let batch = (commands - done).min(u64::from(BATCH_SIZE_MAX));
            self.commit_batch(&mut zipf, batch, rows, &mut scratch)?;
            done += batch;
        }
        let elapsed = started.elapsed();
        Ok(Run { commands, elapsed, latency_us_p50: 0, latency_us_p99: 0 })
    }

    /// The latency floor at a given load: the same loop (with the view rows if `rows`), fed at a fixed rate.
    /// Each batch takes every command that has arrived by then (up to `BATCH_SIZE_MAX`) and commits durably; a
    /// command's latency runs from its arrival to the end of that commit. One thread, no channels, no answers:
    /// what the disk and the work cost alone. The first `PACED_WARMUP` does not count, as for the engine.
    pub fn run_paced(
        &mut self,
        accounts: u64,
        commands: u64,
        rate_per_second: u64,
        seed: u64,
        rows: bool,
    ) -> Result<PacedRun, heed::Error> {
        let mut zipf = Zipf::new(accounts as usize, 1.0, seed);
        let mut scratch = RawScratch::default();
        paced_loop(commands, rate_per_second, |batch| self.commit_batch(&mut zipf, batch, rows, &mut scratch))
    }

    /// Decides `batch` commands of the stream, appends their events, writes each touched account's record
    /// (and view row) once, and commits durably.
    fn commit_batch(
        &mut self,
        zipf: &mut Zipf,
        batch: u64,
        rows: bool,
        scratch: &mut RawScratch,
    ) -> Result<(), heed::Error> {
        let RawScratch { envelope, touched } = scratch;
        envelope.resize(110, 0);
        let mut txn = self.env.write_txn()?;
        touched.clear();
        for _ in 0..batch {
            let (account, command) = next_command(zipf);
            let delta = match command {
                AccountCommand::Withdraw { amount } => -amount.mantissa(),
                AccountCommand::Deposit { amount } => amount.mantissa(),
                _ => 0,
            };
            let balance = self.balances.entry(account).or_default();
            if *balance + delta < 0 {
                continue;
            }
            *balance += delta;
            if rows {
                let row = self.rows.entry(account).or_default();
                let (count, total) = if delta >= 0 { (0, 2) } else { (1, 3) };
                row[count] += 1;
                row[total] += delta.abs();
            }
            envelope[..8].copy_from_slice(&account.to_le_bytes());
            envelope[8..16].copy_from_slice(&delta.to_le_bytes());
            self.log.put_with_flags(&mut txn, heed::PutFlags::APPEND, &self.next_seq.to_be_bytes(), envelope)?;
            self.next_seq += 1;
            touched.insert(account, ());
        }
        for account in touched.keys() {
            let mut key = vec![0, 0];
            key.extend_from_slice(&account.to_be_bytes());
            let record = [self.balances[account].to_le_bytes(), self.next_seq.to_le_bytes()].concat();
            self.accounts.put(&mut txn, &key, &record)?;
            if rows {
                key[1] = 1;
                let row = &self.rows[account];
                let mut bytes = Vec::with_capacity(40);
                for value in row {
                    bytes.extend_from_slice(&value.to_le_bytes());
                }
                bytes.extend_from_slice(&self.next_seq.to_le_bytes());
                self.activity.put(&mut txn, &key, &bytes)?;
            }
        }
        txn.commit()
    }
}

/// The raw loop's reused buffers.
#[derive(Default)]
struct RawScratch {
    envelope: Vec<u8>,
    touched: HashMap<u64, ()>,
}

/// One thread fed at `rate_per_second`: each round takes every command that has arrived by then (up to
/// `BATCH_SIZE_MAX`) and hands their count to `commit`, which makes them durable; a command's latency runs from
/// its arrival to the end of that commit. The first `PACED_WARMUP` does not count, as for the engine.
fn paced_loop<E>(
    commands: u64,
    rate_per_second: u64,
    mut commit: impl FnMut(u64) -> Result<(), E>,
) -> Result<PacedRun, E> {
    let warmup_commands = (rate_per_second as f64 * PACED_WARMUP.as_secs_f64()) as u64;
    let total = commands + warmup_commands;
    let arrival = |i: u64| Duration::from_secs_f64(i as f64 / rate_per_second as f64);
    let mut every = prefaulted(total as usize);
    let mut measured = prefaulted(commands as usize);
    let begin = Instant::now();
    let mut done = 0;
    // Bounded: every round commits at least one command or sleeps until the next one arrives.
    while done < total {
        let now = begin.elapsed();
        let arrived = ((now.as_secs_f64() * rate_per_second as f64) as u64 + 1).min(total);
        if arrived <= done {
            let next = arrival(done);
            if next > now + Duration::from_micros(200) {
                std::thread::sleep(next - now);
            }
            continue;
        }
        let batch = (arrived - done).min(u64::from(BATCH_SIZE_MAX));
        commit(batch)?;
        let committed = begin.elapsed();
        for i in done..done + batch {
            let latency_us = committed.saturating_sub(arrival(i)).as_micros() as u64;
            every.push(latency_us);
            if i >= warmup_commands {
                measured.push(latency_us);
            }
        }
        done += batch;
    }
    let elapsed = begin.elapsed().saturating_sub(arrival(warmup_commands));
    every.sort_unstable();
    measured.sort_unstable();
    let at = |sorted: &[u64], q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    let run = Run { commands, elapsed, latency_us_p50: at(&measured, 0.5), latency_us_p99: at(&measured, 0.99) };
    Ok(PacedRun { run, latency_us_p99_with_warmup: at(&every, 0.99), refused: 0 })
}

/// The bytes a floor run records per command: about a ledger event with its envelope.
const FLOOR_EVENT_BYTES: usize = 110;

/// The disk's floor on LMDB at a given load: [`paced_loop`] where a commit only appends the batch's events to
/// a log, packed as the engine packs them (up to `LOG_PACK_BYTES_MAX` bytes an entry, keyed by the first
/// sequence number), and syncs (LMDB's default: data pages, then the meta page). No state, no records, no
/// rows: what any store on LMDB pays for a durable batch of events, and no more.
pub fn paced_log_floor(path: &Path, commands: u64, rate_per_second: u64) -> Result<PacedRun, heed::Error> {
    std::fs::create_dir_all(path)?;
    let mut options = heed::EnvOpenOptions::new();
    options.map_size(4 << 30).max_dbs(1);
    // SAFETY: the floor run owns this directory and opens it once.
    let env = unsafe { options.open(path) }?;
    let mut txn = env.write_txn()?;
    let log: heed::Database<heed::types::Bytes, heed::types::Bytes> = env.create_database(&mut txn, Some("log"))?;
    txn.commit()?;
    let per_pack = (anthill_runtime::format::LOG_PACK_BYTES_MAX / FLOOR_EVENT_BYTES).max(1) as u64;
    let pack = vec![0xEA; per_pack as usize * FLOOR_EVENT_BYTES];
    let mut next_seq = 1u64;
    paced_loop(commands, rate_per_second, |batch| {
        let mut txn = env.write_txn()?;
        let mut left = batch;
        while left > 0 {
            let count = left.min(per_pack);
            let bytes = &pack[..count as usize * FLOOR_EVENT_BYTES];
            log.put_with_flags(&mut txn, heed::PutFlags::APPEND, &next_seq.to_be_bytes(), bytes)?;
            next_seq += count;
            left -= count;
        }
        txn.commit()
    })
}

/// The disk's floor without LMDB: [`paced_loop`] where a commit appends the batch's events to a plain file and
/// calls `fdatasync` once: a write-ahead log's one sync per batch, the least a durable answer costs here.
pub fn paced_file_floor(path: &Path, commands: u64, rate_per_second: u64) -> std::io::Result<PacedRun> {
    use std::io::Write;
    std::fs::create_dir_all(path)?;
    let mut file = std::fs::File::create(path.join("floor.log"))?;
    let bytes = vec![0xEA; BATCH_SIZE_MAX as usize * FLOOR_EVENT_BYTES];
    paced_loop(commands, rate_per_second, |batch| {
        file.write_all(&bytes[..batch as usize * FLOOR_EVENT_BYTES])?;
        file.sync_data()
    })
}

/// How long a paced run submits before its latencies count: the first moments after a closed-loop run or
/// the setup (cold view rows, a checkpoint cycle of new keys) are not the steady state the figure is about.
pub const PACED_WARMUP: Duration = Duration::from_millis(500);

/// How long a paced run's latencies are measured, after its warm-up: long enough that one stall of the
/// disk or of the machine does not decide the p99 alone. `LEDGER_PACED_SECONDS` overrides it.
pub const PACED_MEASURED: Duration = Duration::from_secs(4);

/// The commands a paced run at `rate_per_second` measures: `PACED_MEASURED` (or `LEDGER_PACED_SECONDS`) of them.
pub fn paced_commands(rate_per_second: u64) -> u64 {
    let seconds = std::env::var("LEDGER_PACED_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(PACED_MEASURED.as_secs_f64());
    (rate_per_second as f64 * seconds).max(1.0) as u64
}

/// The paced rate: `LEDGER_PACED_RATE` if set, else half of `per_second` (the throughput just measured).
pub fn paced_rate(per_second: f64) -> u64 {
    std::env::var("LEDGER_PACED_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or((per_second / 2.0) as u64).max(1)
}

/// Latencies of a paced run: after the warm-up (in `run`), and of every command answered.
pub struct PacedRun {
    pub run: Run,
    pub latency_us_p99_with_warmup: u64,
    /// Commands the engine refused as `Overloaded` (load shedding); their latencies are not in `run`.
    pub refused: u64,
}

/// What one paced client saw: (latency, counts) per command answered (counts is false during the warm-up),
/// when its measured part began, and how many of its commands were refused.
struct ClientRun {
    latencies: Vec<(u64, bool)>,
    measured_from: Instant,
    refused: u64,
}

/// An empty vector with room for `capacity` items, its memory written once already, so that recording a
/// latency during a run never touches fresh memory. A latency takes 8 or 16 bytes, so at 125,000 commands/s
/// a waiter fills 2 MiB a second; with mimalloc each fresh 2 MiB is a transparent huge page zeroed on its
/// first touch, which stalled the waiter for milliseconds about once a second (seen with `perf` in the
/// tenth pass), and the commands behind it counted the stall as engine latency.
fn prefaulted<T: Copy + Default>(capacity: usize) -> Vec<T> {
    let mut items = Vec::with_capacity(capacity);
    items.resize(capacity, T::default());
    items.clear();
    items
}

/// Commands of the stand-in ledger submitted at a fixed rate: [`run_paced`] with the `demo` aggregate.
pub fn run_engine_paced(
    engine: &Engine<Demo>,
    accounts: u64,
    commands: u64,
    rate_per_second: u64,
    seed: u64,
) -> Result<PacedRun, Error> {
    run_paced(
        accounts,
        commands,
        rate_per_second,
        seed,
        |zipf| {
            let (account, command) = next_command(zipf);
            engine.submit::<Account>(account, command, CommandMeta::default())
        },
        |pending| pending.wait().map(drop),
    )
}

/// `commands` commands (after `PACED_WARMUP` at the same rate) submitted at a fixed rate by `CLIENTS`
/// threads (open loop: a late answer does not delay the next submission), each with a waiter thread that
/// waits for each answer in order. A command's latency runs from when it was due (or from its submission,
/// if that came earlier) to its durable answer: a client the machine ran late counts against the figure,
/// as the raw loop's arrivals do (no coordinated omission).
pub fn run_paced<P: Send + 'static>(
    accounts: u64,
    commands: u64,
    rate_per_second: u64,
    seed: u64,
    submit: impl Fn(&mut Zipf) -> Result<P, Error> + Sync,
    wait: fn(P) -> Result<(), Error>,
) -> Result<PacedRun, Error> {
    let warmup_commands = (rate_per_second as f64 * PACED_WARMUP.as_secs_f64()) as u64;
    let per_client = (commands + warmup_commands) / CLIENTS as u64;
    let warmup_per_client = warmup_commands / CLIENTS as u64;
    let client_rate = (rate_per_second / CLIENTS as u64).max(1) as f64;
    let mut started = Instant::now();
    let mut refused = 0;
    // (latency, counts): counts is false during the warm-up.
    let mut latencies: Vec<(u64, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let submit = &submit;
                scope.spawn(move || -> Result<ClientRun, Error> {
                    let (sender, receiver) = crossbeam_channel::bounded::<(Instant, bool, P)>(1 << 16);
                    let mut latencies = prefaulted(per_client as usize);
                    let waiter = std::thread::spawn(move || -> Result<Vec<(u64, bool)>, Error> {
                        for (since, counts, pending) in receiver {
                            wait(pending)?;
                            latencies.push((since.elapsed().as_micros() as u64, counts));
                        }
                        Ok(latencies)
                    });
                    let mut zipf = Zipf::new(accounts as usize, 1.0, seed ^ ((client as u64 + 1) * 0x9e37_79b9));
                    let begin = Instant::now();
                    let mut refused = 0;
                    for i in 0..per_client {
                        let due = begin + Duration::from_secs_f64(i as f64 / client_rate);
                        let now = Instant::now();
                        if due > now + Duration::from_micros(200) {
                            std::thread::sleep(due - now);
                        }
                        let since = due.min(Instant::now());
                        let pending = match submit(&mut zipf) {
                            Ok(pending) => pending,
                            // Shed by the engine's latency budget or full queue: counted, not waited for.
                            Err(Error::Overloaded { .. }) => {
                                refused += 1;
                                continue;
                            }
                            Err(error) => return Err(error),
                        };
                        if sender.send((since, i >= warmup_per_client, pending)).is_err() {
                            break;
                        }
                    }
                    drop(sender);
                    let measured_from = begin + Duration::from_secs_f64(warmup_per_client as f64 / client_rate);
                    Ok(ClientRun { latencies: waiter.join().expect("a waiter panicked")?, measured_from, refused })
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            let client = handle.join().expect("a client panicked")?;
            started = started.max(client.measured_from);
            all.extend(client.latencies);
            refused += client.refused;
        }
        Ok::<_, Error>(all)
    })?;
    let elapsed = started.elapsed();
    let mut every: Vec<u64> = latencies.iter().map(|&(latency, _)| latency).collect();
    every.sort_unstable();
    latencies.retain(|&(_, counts)| counts);
    let mut measured: Vec<u64> = latencies.into_iter().map(|(latency, _)| latency).collect();
    measured.sort_unstable();
    let at = |sorted: &[u64], q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    let run = Run {
        commands: measured.len() as u64,
        elapsed,
        latency_us_p50: at(&measured, 0.5),
        latency_us_p99: at(&measured, 0.99),
    };
    Ok(PacedRun { run, latency_us_p99_with_warmup: at(&every, 0.99), refused })
}

/// The commits between two readings of the engine's counters, by duration: `<=BOUND: COUNT` per bucket of
/// [`anthill_runtime::engine::COMMIT_US_BUCKETS`] (upper bounds in microseconds) that got any.
pub fn commits_by_duration(before: &anthill_runtime::engine::Stats, after: &anthill_runtime::engine::Stats) -> String {
    let commits: Vec<String> = anthill_runtime::engine::COMMIT_US_BUCKETS
        .iter()
        .map(|bound| bound.to_string())
        .chain(["more".to_owned()])
        .zip(after.commit_us_histogram.iter().zip(before.commit_us_histogram.iter()))
        .filter(|(_, (a, b))| *a > *b)
        .map(|(bound, (a, b))| format!("<={bound}: {}", a - b))
        .collect();
    commits.join(", ")
}
