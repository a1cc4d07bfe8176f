//! The command engine: partitioned writer threads that decide commands in batches against cached state and
//! commit each batch in one durable LMDB transaction (group commit), plus the reads and the process runner.
//!
//! A command goes: caller -> partition queue (bounded; hashed by aggregate type and key) -> writer thread. The
//! writer drains up to `batch_size_max` commands, decides each against its in-memory state (loading the stored
//! record on a cache miss), then prepares the batch: reserves its sequence numbers, folds its events into the
//! views, encodes its events, command records and each touched aggregate's record, and queues it for the
//! committer thread, which appends the events and command records in one LMDB write transaction, commits,
//! and publishes the records and rows. The callers are answered once the commit, which is durable when it
//! returns (see `Store::open`), has returned. Answers are filled and callers woken on a separate thread per
//! writer. A writer decides and prepares its next batch while the committer commits its last one; partitions
//! decide in parallel, and the committer commits every batch queued in one transaction (see `writer`).
//!
//! Modules: `registry` (per aggregate type, monomorphized functions the engine calls by tag or name), `job`
//! (type-erased commands, the writer's cache and the view rows in memory), `writer` (the writers and the committer),
//! `processes` (the process runner); this file holds the public API and the reads. Submodules see this module's
//! items and imports through `use super::*`.

use std::any::{Any, TypeId};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use heed::{RoTxn, RwTxn};
use parking_lot::{Condvar, Mutex};
use std::hash::BuildHasherDefault;

use crate::aggregate::{
    Aggregate, AggregateVisitor, CommandVisitor, Context, Domain, DomainCommand, EventContext, Key, Reaction, Refused,
    Rejection, ViewError, ViewTables,
};
use crate::error::Error;
use crate::format::{self, AggregateRecord, CommandOutcome, CommandRecord, EnvelopeRef, IdGenerator, StoredEvent};
use crate::hash::{FastHasher, FastMap, KeyBytes};
use crate::store::{Store, StoreConfig, ViewRow, WriteError};
use crate::unflushed::Staged;
use crate::value::Timestamp;

mod job;
mod migrate;
mod processes;
mod recovery;
mod registry;
mod writer;

use job::*;
pub use migrate::Migration;
use migrate::*;
use processes::*;
use recovery::*;
use registry::*;
use writer::*;

/// How the engine runs. Every queue and batch is bounded by one of these.
#[derive(Clone, Debug)]
pub struct Config {
    /// Writer threads; aggregates are hashed to one by type and key.
    pub partitions: u32,
    /// Commands waiting per partition; a full queue refuses new commands with [`Error::Overloaded`].
    pub queue_depth_max: u32,
    /// Commands decided and committed together.
    pub batch_size_max: u32,
    /// How long a writer waits for more commands once it has one (0: take what is queued and go).
    pub batch_wait_max: Duration,
    /// Aggregate instances kept in memory per partition.
    pub cache_entries_max: u32,
    /// When the oldest command of a batch waited longer than this, new commands are refused at once.
    pub latency_budget: Duration,
    /// Events the process runner reads per round.
    pub process_batch_max: u32,
    /// Rounds of `on_rejected` compensations followed for one reaction.
    pub process_depth_max: u32,
    /// Events committed since the last checkpoint that make the next one due (see `crate::unflushed`): bounds
    /// what opening the store replays after a crash.
    pub checkpoint_events_max: u32,
    /// Instance records and view rows committed and not yet written to their tables that make a checkpoint
    /// due: bounds their memory. A writer whose checkpoints keep failing stops at four times this.
    pub checkpoint_entries_max: u32,
    pub store: StoreConfig,
    /// How a store written by an earlier schema of the domain is migrated (see [`crate::upcast`]). `None`
    /// refuses any schema change; `Some` migrates the store on open when every changed stored event has an
    /// upcaster (states and views are rebuilt), and refuses it otherwise, naming each uncovered event.
    pub upcasters: Option<crate::upcast::Upcasters>,
    /// Tests only: each writer panics (as a broken invariant would) when it has taken this many batches
    /// (0: never).
    #[cfg(feature = "fault-injection")]
    pub fault_writer_panic_at_batch: u64,
    /// Tests only: the committer waits this long before each commit, so that a test can decide a batch
    /// while the one before it is still in flight.
    #[cfg(feature = "fault-injection")]
    pub fault_commit_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            partitions: 1,
            queue_depth_max: 16_384,
            batch_size_max: 4_096,
            batch_wait_max: Duration::ZERO,
            cache_entries_max: 1_000_000,
            latency_budget: Duration::from_millis(500),
            process_batch_max: 1_024,
            process_depth_max: 8,
            checkpoint_events_max: 131_072,
            checkpoint_entries_max: 131_072,
            store: StoreConfig::default(),
            upcasters: None,
            #[cfg(feature = "fault-injection")]
            fault_writer_panic_at_batch: 0,
            #[cfg(feature = "fault-injection")]
            fault_commit_delay: Duration::ZERO,
        }
    }
}

impl Config {
    /// Partitions are bounded because each is a thread (and a queue of `queue_depth_max` commands).
    pub const PARTITIONS_MAX: u32 = 64;

    /// Checks the bounds the engine relies on.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |message: String| Err(Error::InvalidConfig { message });
        if !(1..=Self::PARTITIONS_MAX).contains(&self.partitions) {
            return bad(format!("partitions is {}, it must be 1 to {}", self.partitions, Self::PARTITIONS_MAX));
        }
        for (name, value) in [
            ("queue_depth_max", self.queue_depth_max),
            ("batch_size_max", self.batch_size_max),
            ("cache_entries_max", self.cache_entries_max),
            ("process_batch_max", self.process_batch_max),
            ("process_depth_max", self.process_depth_max),
            ("checkpoint_events_max", self.checkpoint_events_max),
            ("checkpoint_entries_max", self.checkpoint_entries_max),
        ] {
            if value == 0 {
                return bad(format!("{name} is 0, it must be at least 1"));
            }
        }
        if self.store.max_readers == 0 || self.store.map_size_bytes == 0 {
            return bad("the store's max_readers and map_size_bytes must be at least 1".into());
        }
        Ok(())
    }
}

/// What the caller knows about a command besides the command itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandMeta {
    /// The idempotency key: a retry with the same id returns the original outcome and never runs twice.
    pub command_id: Option<u128>,
    /// Ties together the commands and events of one business operation; defaults to the command id.
    pub correlation_id: Option<u128>,
    /// Optimistic concurrency: the command fails with [`Error::WrongVersion`] unless the instance is at it.
    pub expected_version: Option<u64>,
    /// Backdates the events: when they occurred, if not now.
    pub occurred_at: Option<Timestamp>,
}

/// One recorded event of aggregate `A`.
pub struct Recorded<A: Aggregate> {
    pub seq: u64,
    pub event_id: u128,
    /// The instance's version once this event is applied (its first event has version 1).
    pub version: u64,
    pub occurred_at: Timestamp,
    pub event: A::Event,
}

/// What a command led to: its committed events, or the rejection the model named.
pub enum Outcome<A: Aggregate> {
    Accepted { events: Vec<Recorded<A>>, version: u64 },
    Rejected(A::Rejection),
}

/// A page of an instance's history (see [`Engine::events_page`]).
pub struct EventsPage<A: Aggregate> {
    pub events: Vec<Recorded<A>>,
    /// Where the page before ends: pass it as `from_seq`. `None` when this page starts with the first event.
    pub older: Option<u64>,
}

/// The stored state of one instance.
pub struct Snapshot<A: Aggregate> {
    pub state: A::State,
    pub version: u64,
    pub last_seq: u64,
}

macro_rules! manual_traits {
    ($name:ident { $($field:ident),* }) => {
        impl<A: Aggregate> Clone for $name<A> {
            fn clone(&self) -> Self {
                $name { $($field: self.$field.clone()),* }
            }
        }
        impl<A: Aggregate> PartialEq for $name<A> {
            fn eq(&self, other: &Self) -> bool {
                true $(&& self.$field == other.$field)*
            }
        }
        impl<A: Aggregate> fmt::Debug for $name<A> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)) $(.field(stringify!($field), &self.$field))* .finish()
            }
        }
    };
}

manual_traits!(Recorded { seq, event_id, version, occurred_at, event });
manual_traits!(Snapshot { state, version, last_seq });

impl<A: Aggregate> Clone for Outcome<A> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Accepted { events, version } => Outcome::Accepted { events: events.clone(), version: *version },
            Outcome::Rejected(rejection) => Outcome::Rejected(rejection.clone()),
        }
    }
}

impl<A: Aggregate> PartialEq for Outcome<A> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Outcome::Accepted { events: a, version: va }, Outcome::Accepted { events: b, version: vb }) => {
                a == b && va == vb
            }
            (Outcome::Rejected(a), Outcome::Rejected(b)) => a == b,
            _ => false,
        }
    }
}

impl<A: Aggregate> fmt::Debug for Outcome<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accepted { events, version } => {
                f.debug_struct("Accepted").field("events", events).field("version", version).finish()
            }
            Outcome::Rejected(rejection) => f.debug_tuple("Rejected").field(rejection).finish(),
        }
    }
}

impl<A: Aggregate> Outcome<A> {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Outcome::Accepted { .. })
    }
}

/// An outcome in JSON terms, for the HTTP layer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum JsonOutcome {
    Accepted { version: u64, events: Vec<JsonEvent> },
    Rejected { code: String, message: String },
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JsonEvent {
    pub seq: u64,
    pub event_id: String,
    pub name: &'static str,
    pub event: serde_json::Value,
}

/// Where a writer leaves one command's answer: a one-shot slot (one allocation, no channel machinery).
struct Answer<A: Aggregate> {
    value: Mutex<AnswerSlot<A>>,
    ready: Condvar,
}

/// The answer, once there, and the waker of an async caller polling for it (see [`Pending`]'s `Future`).
struct AnswerSlot<A: Aggregate> {
    outcome: Option<Result<Outcome<A>, Error>>,
    waker: Option<std::task::Waker>,
}

/// A command in flight: [`Pending::wait`] returns its outcome once its batch is committed. It is also a
/// `Future` (std only, no executor assumed): an async caller awaits the durable outcome without a thread of
/// its own blocked on it.
pub struct Pending<A: Aggregate> {
    answer: Arc<Answer<A>>,
}

impl<A: Aggregate> Pending<A> {
    pub fn wait(self) -> Result<Outcome<A>, Error> {
        let mut slot = self.answer.value.lock();
        loop {
            if let Some(answer) = slot.outcome.take() {
                return answer;
            }
            self.answer.ready.wait(&mut slot);
        }
    }

    /// The outcome if it is there, or registers `cx`'s waker (under the same lock the writer fills it under,
    /// so no wake-up is lost).
    fn poll_answer(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<Outcome<A>, Error>> {
        let mut slot = self.answer.value.lock();
        match slot.outcome.take() {
            Some(answer) => std::task::Poll::Ready(answer),
            None => {
                if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    slot.waker = Some(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        }
    }
}

impl<A: Aggregate> std::future::Future for Pending<A> {
    type Output = Result<Outcome<A>, Error>;

    /// Ready once the outcome is durable. Polling again after `Ready` gives `Pending` forever.
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        self.poll_answer(cx)
    }
}

/// Wakes a caller whose answer is in place.
trait Wake: Send + Sync {
    fn wake(&self);
}

impl<A: Aggregate> Wake for Answer<A> {
    fn wake(&self) {
        let waker = self.value.lock().waker.take();
        self.ready.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The writer's end of an [`Answer`]. Dropped unanswered (a queue discarded at shutdown), it answers
/// [`Error::ShuttingDown`], so no caller waits forever.
struct Reply<A: Aggregate> {
    answer: Option<Arc<Answer<A>>>,
}

impl<A: Aggregate> Reply<A> {
    fn pair() -> (Reply<A>, Pending<A>) {
        let slot = AnswerSlot { outcome: None, waker: None };
        let answer = Arc::new(Answer { value: Mutex::new(slot), ready: Condvar::new() });
        (Reply { answer: Some(Arc::clone(&answer)) }, Pending { answer })
    }

    /// Leaves the answer without waking the caller: the writer answers a whole batch first, then wakes the
    /// callers, so that a caller woken for its first command finds the rest answered instead of sleeping again.
    fn send(mut self, value: Result<Outcome<A>, Error>) -> Arc<dyn Wake> {
        let answer = self.answer.take().expect("a reply is sent once");
        answer.value.lock().outcome = Some(value);
        answer
    }
}

impl<A: Aggregate> Drop for Reply<A> {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take() {
            answer.value.lock().outcome = Some(Err(Error::ShuttingDown));
            Wake::wake(&*answer);
        }
    }
}

/// What a command came to, without its events: for callers that treat every aggregate alike (load
/// generators, tools).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted { events: usize },
    Rejected { code: &'static str },
}

impl Verdict {
    fn of<A: Aggregate>(outcome: Outcome<A>) -> Verdict {
        match outcome {
            Outcome::Accepted { events, .. } => Verdict::Accepted { events: events.len() },
            Outcome::Rejected(rejection) => Verdict::Rejected { code: rejection.code() },
        }
    }
}

/// A [`Pending`] of some aggregate of the domain, its outcome mapped by `map`: one boxed trait object, so a
/// caller holds the commands of every aggregate in one queue. Blocking (`wait`) or async (`Future`).
trait ErasedPending<T>: Send {
    fn wait(self: Box<Self>) -> Result<T, Error>;
    fn poll(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<T, Error>>;
}

struct Mapped<A: Aggregate, T> {
    pending: Pending<A>,
    map: fn(Outcome<A>) -> T,
}

impl<A: Aggregate, T> ErasedPending<T> for Mapped<A, T> {
    fn wait(self: Box<Self>) -> Result<T, Error> {
        self.pending.wait().map(self.map)
    }
    fn poll(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<T, Error>> {
        self.pending.poll_answer(cx).map(|answer| answer.map(self.map))
    }
}

/// A command of any aggregate in flight, its outcome reduced to `T` ([`Verdict`] for
/// [`Engine::submit_command`], [`JsonOutcome`] for [`Engine::submit_json`]).
pub struct PendingAny<T>(Box<dyn ErasedPending<T>>);

impl<T> PendingAny<T> {
    fn new<A: Aggregate>(pending: Pending<A>, map: fn(Outcome<A>) -> T) -> PendingAny<T>
    where
        T: 'static,
    {
        PendingAny(Box::new(Mapped { pending, map }))
    }

    /// Blocks until the outcome is durable.
    pub fn wait(self) -> Result<T, Error> {
        self.0.wait()
    }
}

impl<T> std::future::Future for PendingAny<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        self.0.poll(cx)
    }
}

/// Submits a domain command to the aggregate it names.
struct SubmitAny<'a, D: Domain> {
    inner: &'a Inner<D>,
    meta: CommandMeta,
}

impl<D: Domain> CommandVisitor for SubmitAny<'_, D> {
    type Output = Result<PendingAny<Verdict>, Error>;

    fn visit<A: Aggregate>(self, id: A::Id, command: A::Command) -> Self::Output {
        Ok(PendingAny::new(self.inner.submit::<A>(id, command, self.meta)?, Verdict::of::<A>))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The engine: its threads, the public API and the reads.

struct Partition {
    sender: Sender<Box<dyn Job>>,
    /// The queue's other end, beside the writer's: should the writer thread stop (a broken invariant), what is
    /// queued is drained through it and failed, not left waiting.
    receiver: Receiver<Box<dyn Job>>,
    /// The writer thread stopped: new commands are refused, and any that slipped in are failed.
    writer_gone: AtomicBool,
    /// The partition's instances in memory: only its writer's.
    cache: Mutex<Cache>,
    /// How long the oldest command of the writer's latest batch had waited, in microseconds: load shedding.
    queue_wait_us: AtomicU64,
}

struct Inner<D: Domain> {
    store: Store,
    config: Config,
    registry: Registry<D>,
    partitions: Vec<Partition>,
    /// Refuses new commands: set once the processes have stopped, during shutdown.
    closing: AtomicBool,
    /// Stops the process runner.
    processes_stop: AtomicBool,
    /// Wakes the process runner after a commit holding an event some process handles (a bounded signal: one
    /// pending wake-up is enough); otherwise the runner catches up with the log at its idle poll.
    commits: Sender<()>,
    /// The last error the process runner met (for operators and tests).
    process_error: Mutex<Option<Error>>,
    /// The last event the process runner has handled (in memory; stored lazily when nothing was sent).
    progress: AtomicU64,
    /// The progress stored so far. The writers store `progress` with their next commit when it is ahead (so
    /// the runner's rounds cost no commits of their own): every reaction of the events it covers was answered,
    /// so committed, before `progress` moved past them.
    progress_stored: AtomicU64,
    stats: StatsCounters,
    /// What opening the store migrated, if it was written by an earlier schema.
    migration: Option<Migration>,
    /// View rows, decoded, shared by the writers: locked while a writer prepares a batch.
    view_rows: Mutex<ViewRows>,
    /// Prepared batches on their way to the committer.
    queue: CommitQueue,
    /// Held by the committer from a transaction's start to its publication: while it is held elsewhere, every
    /// committed event's records and rows are published.
    commit_lock: Mutex<()>,
    /// Opened beside the store's owner: reads catch up with the log first (see `recovery::read_beside_owner`).
    read_only: bool,
    /// One catch-up at a time.
    catching_up: Mutex<()>,
    /// Events replayed into the tables when the store was opened (a crash left them unflushed).
    recovered_events: u64,
    /// Per aggregate tag, the events some process handles.
    handled_events: Vec<Vec<&'static str>>,
    /// The last committed event some process handles (the last event at opening, for those before): the
    /// process runner reads no further than the published events when none is after its progress. Raised
    /// before the commit's records are published, and read after the published sequence number.
    handled_through: AtomicU64,
}

#[derive(Default)]
struct StatsCounters {
    batches: AtomicU64,
    commands: AtomicU64,
    failed_batches: AtomicU64,
    decide_us: AtomicU64,
    write_us: AtomicU64,
    commit_us: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_us: AtomicU64,
    failed_checkpoints: AtomicU64,
    commit_us_histogram: [AtomicU64; COMMIT_US_BUCKETS.len() + 1],
    batch_size_histogram: [AtomicU64; BATCH_SIZE_BUCKETS.len() + 1],
}

/// Upper bounds of the commit latency histogram's buckets, in microseconds (a last bucket takes the rest).
pub const COMMIT_US_BUCKETS: [u64; 12] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];
/// Upper bounds of the batch size histogram's buckets, in commands (a last bucket takes the rest).
pub const BATCH_SIZE_BUCKETS: [u64; 8] = [1, 4, 16, 64, 256, 1_024, 4_096, 16_384];

/// The index of the first bucket whose upper bound holds `value`.
fn bucket(bounds: &[u64], value: u64) -> usize {
    bounds.iter().position(|&bound| value <= bound).unwrap_or(bounds.len())
}

impl StatsCounters {
    /// Counts a committed batch: its size and how long its commit took.
    fn record_batch(&self, commands: u64, commit_us: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(commands, Ordering::Relaxed);
        self.commit_us_histogram[bucket(&COMMIT_US_BUCKETS, commit_us)].fetch_add(1, Ordering::Relaxed);
        self.batch_size_histogram[bucket(&BATCH_SIZE_BUCKETS, commands)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters since the engine opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Batches committed (one durable transaction each).
    pub batches: u64,
    /// Commands answered from committed batches (accepted, rejected, replayed or refused).
    pub commands: u64,
    /// Batches whose commit failed (every command in them got the error).
    pub failed_batches: u64,
    /// Time the writers spent deciding commands, writing the transaction, and committing it (fsync).
    pub decide_us: u64,
    pub write_us: u64,
    pub commit_us: u64,
    /// Checkpoint steps written (records and view rows written out behind the log; most ride along with a
    /// batch's commit, whose time includes theirs), the time of those written on their own (a full checkpoint),
    /// and those that failed (they are tried again).
    pub checkpoints: u64,
    pub checkpoint_us: u64,
    pub failed_checkpoints: u64,
    /// Committed batches by how long their commit took: bucket `i` counts those above bucket `i - 1`'s bound
    /// and at most [`COMMIT_US_BUCKETS`]`[i]`; the last one counts the rest.
    pub commit_us_histogram: [u64; COMMIT_US_BUCKETS.len() + 1],
    /// Committed batches by their number of commands, bucketed by [`BATCH_SIZE_BUCKETS`] the same way.
    pub batch_size_histogram: [u64; BATCH_SIZE_BUCKETS.len() + 1],
}

/// The engine for domain `D`: owns the store, the writer threads and the process runner.
pub struct Engine<D: Domain> {
    inner: Arc<Inner<D>>,
    writers: Vec<JoinHandle<()>>,
    processes: Option<JoinHandle<()>>,
    /// The store's owner lock; `None` for a read-only engine (see [`Engine::open_read_only`]).
    lock: Option<crate::lock::StoreLock>,
    /// Stopped without a final checkpoint ([`Engine::abandon`]).
    abandoned: bool,
}

thread_local! {
    static IDS: std::cell::RefCell<IdGenerator> = std::cell::RefCell::new(IdGenerator::new());
}

/// A fresh UUIDv7-style id (for correlation ids and clients that want one).
pub fn new_id() -> u128 {
    IDS.with(|ids| ids.borrow_mut().next_id(Timestamp::now()))
}

fn partition_of(name: &str, key: &[u8], partitions: usize) -> usize {
    if partitions == 1 {
        // The common case: no hashing on every submission.
        return 0;
    }
    let mut hash = format::checksum(name.as_bytes());
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % partitions as u64) as usize
}

thread_local! {
    /// A submitting thread's buffer for encoding record keys (the job keeps them inline).
    static KEY_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<D: Domain> Inner<D> {
    /// Stops the writers' preparations and waits for every prepared batch to commit; then holds off commits.
    fn quiesce(&self) -> (parking_lot::MutexGuard<'_, ViewRows>, parking_lot::MutexGuard<'_, ()>) {
        let views = self.view_rows.lock();
        self.queue.wait_idle();
        (views, self.commit_lock.lock())
    }

    fn submit<A: Aggregate>(&self, id: A::Id, command: A::Command, meta: CommandMeta) -> Result<Pending<A>, Error> {
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let tag = self.registry.by_type::<A>()?.tag;
        let record_key = KEY_SCRATCH.with_borrow_mut(|encoded| {
            encoded.clear();
            format::aggregate_key(tag, &[], encoded);
            id.encode_key(encoded);
            if encoded.len() - 2 > crate::aggregate::KEY_BYTES_MAX {
                return Err(Error::InvalidCommand {
                    message: format!("the key of `{}` is longer than 256 bytes", A::NAME),
                });
            }
            Ok(KeyBytes::from_slice(encoded))
        })?;
        let partition = &self.partitions[partition_of(A::NAME, &record_key[2..], self.partitions.len())];
        if partition.writer_gone.load(Ordering::SeqCst) {
            return Err(writer_gone());
        }
        let budget_us = self.config.latency_budget.as_micros() as u64;
        let waited_us = partition.queue_wait_us.load(Ordering::Relaxed);
        if waited_us > budget_us {
            return Err(Error::Overloaded { retry_after_ms: waited_us / 1000 + 1 });
        }
        // A command without an idempotency key still gets an id of its own for its events' envelopes (and no
        // idempotency record): every event names the command that caused it.
        let command_id = meta.command_id.unwrap_or_else(new_id);
        let correlation_id = meta.correlation_id.unwrap_or(command_id);
        let (reply, pending) = Reply::pair();
        let job = CommandJob::<A> {
            tag,
            record_key,
            id,
            command,
            meta,
            command_id,
            correlation_id,
            enqueued_at: Instant::now(),
            reply,
            decided: Decided::Pending,
            slot: u32::MAX,
        };
        match partition.sender.try_send(Box::new(job)) {
            Ok(()) => {
                // Paired with `WriterGone::drop`, which sets the flag and then drains: either it drains this
                // command, or this sees the flag and drains it here.
                if partition.writer_gone.load(Ordering::SeqCst) {
                    fail_queued(partition);
                }
                Ok(pending)
            }
            Err(TrySendError::Full(_)) => Err(Error::Overloaded { retry_after_ms: budget_us / 1000 + 1 }),
            Err(TrySendError::Disconnected(_)) => Err(Error::ShuttingDown),
        }
    }
}

impl<D: Domain> Engine<D> {
    /// The most events or rows one read returns: a read holds a read transaction (and memory) for its length.
    pub const READ_LIMIT_MAX: usize = 10_000;

    /// Opens (or creates) the store at `path` and starts the writers and the process runner. Takes the store's
    /// owner lock: a second engine on the same store fails with [`Error::Locked`].
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Engine<D>, Error> {
        config.check()?;
        std::fs::create_dir_all(path.as_ref())
            .map_err(|e| Error::Store { message: format!("cannot create {}: {e}", path.as_ref().display()) })?;
        let lock = crate::lock::StoreLock::acquire(path.as_ref())?;
        let mut engine = Self::open_unlocked(path.as_ref(), config, true)?;
        engine.lock = Some(lock);
        Ok(engine)
    }

    /// Opens an existing store for reads only (`state`, `events`, `changes`, views, `verify`): no writer, no
    /// process runner, no owner lock, so it works beside the engine that owns the store (in another process).
    /// Commands fail with [`Error::ShuttingDown`], `rebuild_view` with [`Error::ReadOnly`].
    pub fn open_read_only(path: impl AsRef<Path>, mut config: Config) -> Result<Engine<D>, Error> {
        config.check()?;
        let path = path.as_ref();
        if !path.join("data.mdb").is_file() {
            return Err(Error::Store { message: format!("there is no store at {}", path.display()) });
        }
        // A reader maps the file at the size its writer gave it (LMDB takes the larger of the two), and follows
        // the writer's growth as reads meet it (`Store::read`), instead of reserving a map of its own size.
        config.store.map_size_bytes = 0;
        Self::open_unlocked(path, config, false)
    }

    fn open_unlocked(path: &Path, config: Config, start: bool) -> Result<Engine<D>, Error> {
        let meta = D::meta();
        let views: Vec<&'static str> = meta.views.iter().map(|v| v.name).collect();
        let schema = crate::schema::describe(meta);
        let mut needs = Vec::new();
        let mut accept = |stored: &[String]| match &config.upcasters {
            None => Err(vec!["no upcasters are configured (engine::Config::upcasters)".to_owned()]),
            Some(upcasters) => {
                needs = crate::schema::upcast_plan(stored, &schema, &upcasters.keys())?;
                Ok(())
            }
        };
        let (store, evolving) =
            Store::open_evolving(path, config.store.clone(), D::NAME, meta.fingerprint, &schema, &views, &mut accept)?;
        let mut registry = Registry { entries: Vec::new(), _domain: PhantomData };
        D::for_each_aggregate(&mut registry);
        let mut migration = None;
        if evolving.is_some() {
            // Migrating writes the whole log: only the store's owner may, never a reader beside it.
            if !start {
                return Err(Error::ReadOnly { operation: "migrating a store of an earlier schema" });
            }
            let upcasters = config.upcasters.clone().unwrap_or_default();
            migration = Some(migrate(&store, &registry, &needs, &upcasters, meta.fingerprint, &schema)?);
        }
        // The owner writes what a crash left unflushed; a reader catches up in memory before each read.
        let recovered_events = if start { recover(&store, &registry)? } else { 0 };
        let last_seq_at_open = store.read().and_then(|txn| store.last_seq(&txn))?;
        let handled_events: Vec<Vec<&'static str>> =
            registry.entries.iter().map(|entry| entry.handled_events.clone()).collect();
        let mut receivers = Vec::new();
        let mut partitions = Vec::new();
        for _ in 0..config.partitions {
            let (sender, receiver) = crossbeam_channel::bounded(config.queue_depth_max as usize);
            partitions.push(Partition {
                sender,
                receiver: receiver.clone(),
                writer_gone: AtomicBool::new(false),
                cache: Mutex::new(Cache::default()),
                queue_wait_us: AtomicU64::new(0),
            });
            receivers.push(receiver);
        }
        let (commits, commits_receiver) = crossbeam_channel::bounded(1);
        // Bounded like the instance cache: about one row per hot instance and view.
        let view_rows = Mutex::new(ViewRows::new(config.cache_entries_max as usize));
        let queue = CommitQueue::new(config.partitions as usize, last_seq_at_open);
        let inner = Arc::new(Inner {
            store,
            config,
            registry,
            partitions,
            // A read-only engine starts closed: no threads, no commands.
            closing: AtomicBool::new(!start),
            processes_stop: AtomicBool::new(!start),
            commits,
            process_error: Mutex::new(None),
            progress: AtomicU64::new(0),
            progress_stored: AtomicU64::new(0),
            stats: StatsCounters::default(),
            queue,
            commit_lock: Mutex::new(()),
            migration,
            view_rows,
            read_only: !start,
            catching_up: Mutex::new(()),
            recovered_events,
            handled_events,
            handled_through: AtomicU64::new(last_seq_at_open),
        });
        if !start {
            return Ok(Engine { inner, writers: Vec::new(), processes: None, lock: None, abandoned: false });
        }
        let mut writers = Vec::new();
        for (index, receiver) in receivers.into_iter().enumerate() {
            inner.queue.state.lock().writers_running += 1;
            let spawned = {
                let inner = Arc::clone(&inner);
                std::thread::Builder::new()
                    .name(format!("anthill-writer-{index}"))
                    .spawn(move || run_writer(&inner, index, &receiver))
            };
            match spawned {
                Ok(writer) => writers.push(writer),
                Err(error) => {
                    inner.queue.state.lock().writers_running -= 1;
                    return Err(Error::Store { message: format!("cannot start a writer: {error}") });
                }
            }
        }
        // Joined after the writers (see `Engine::stop`): it ends once they have.
        let committer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new().name("anthill-committer".into()).spawn(move || run_committer(&inner))
        };
        writers.push(committer.map_err(|e| Error::Store { message: format!("cannot start the committer: {e}") })?);
        let processes = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("anthill-processes".into())
                .spawn(move || run_processes(&inner, &commits_receiver))
                .map_err(|e| Error::Store { message: format!("cannot start the process runner: {e}") })?
        };
        Ok(Engine { inner, writers, processes: Some(processes), lock: None, abandoned: false })
    }

    /// Runs a command and returns once its outcome is durable.
    pub fn execute<A: Aggregate<Domain = D>>(
        &self,
        id: A::Id,
        command: A::Command,
        meta: CommandMeta,
    ) -> Result<Outcome<A>, Error> {
        self.submit::<A>(id, command, meta)?.wait()
    }

    /// Queues a command and returns at once; [`Pending::wait`] gives the outcome once it is durable. Lets one
    /// thread keep many commands in flight.
    pub fn submit<A: Aggregate<Domain = D>>(
        &self,
        id: A::Id,
        command: A::Command,
        meta: CommandMeta,
    ) -> Result<Pending<A>, Error> {
        self.inner.submit::<A>(id, command, meta)
    }

    /// Queues a command of any of the domain's aggregates (the domain's command enum, as processes send
    /// them); the outcome comes reduced to a [`Verdict`]. For load generators and tools.
    pub fn submit_command(&self, command: D::Command, meta: CommandMeta) -> Result<PendingAny<Verdict>, Error> {
        command.dispatch(SubmitAny { inner: &self.inner, meta })
    }

    /// Runs a command given by names and JSON (the HTTP layer's entry point).
    pub fn execute_json(
        &self,
        aggregate: &str,
        id: &str,
        command: &str,
        json: &[u8],
        meta: CommandMeta,
    ) -> Result<JsonOutcome, Error> {
        self.submit_json(aggregate, id, command, json, meta)?.wait()
    }

    /// Queues a command given by names and JSON and returns at once; await the result (or `wait` for it) to
    /// get the outcome once it is durable. Lets an async server keep commands in flight without a blocked
    /// thread per command.
    pub fn submit_json(
        &self,
        aggregate: &str,
        id: &str,
        command: &str,
        json: &[u8],
        meta: CommandMeta,
    ) -> Result<PendingAny<JsonOutcome>, Error> {
        let entry = self.inner.registry.by_name(aggregate)?;
        (entry.submit_json)(&self.inner, id, command, json, meta)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// A read transaction for reads of records and view rows: a reader beside the owner catches up first.
    fn read(&self) -> Result<Reading<'_>, Error> {
        if self.inner.read_only {
            read_beside_owner(&self.inner)
        } else {
            Ok(Reading { txn: self.inner.store.read()?, _turn: None })
        }
    }

    /// An instance's record and a read transaction whose log holds its events (see
    /// [`Store::aggregate_then_read`]).
    fn record_then_read(&self, key: &[u8]) -> Result<(Option<AggregateRecord>, Reading<'_>), Error> {
        if self.inner.read_only {
            // Caught up to the last event this transaction's log holds.
            let txn = read_beside_owner(&self.inner)?;
            Ok((self.inner.store.aggregate(&txn, key)?, txn))
        } else {
            let (record, txn) = self.inner.store.aggregate_then_read(key)?;
            Ok((record, Reading { txn, _turn: None }))
        }
    }

    /// Events opening the store replayed into its records and views (a crash had left them unflushed).
    pub fn recovered_events(&self) -> u64 {
        self.inner.recovered_events
    }

    /// Writes every unflushed record and view row to its table now (the writers do it as they go, and on
    /// shutdown). Returns the stored checkpoint.
    pub fn checkpoint(&self) -> Result<u64, Error> {
        if self.inner.read_only {
            return Err(Error::ReadOnly { operation: "checkpointing" });
        }
        checkpoint(&self.inner, None)?;
        let txn = self.inner.store.read()?;
        self.inner.store.checkpoint_seq(&txn)
    }

    /// The stored state of an instance (as of the last commit), or `None` if it has no events.
    pub fn state<A: Aggregate<Domain = D>>(&self, id: &A::Id) -> Result<Option<Snapshot<A>>, Error> {
        let tag = self.inner.registry.by_type::<A>()?.tag;
        let mut key = Vec::new();
        format::aggregate_key(tag, &[], &mut key);
        id.encode_key(&mut key);
        let txn = self.read()?;
        match self.inner.store.aggregate(&txn, &key)? {
            None => Ok(None),
            Some(record) => {
                let state =
                    A::decode_state(&record.state).map_err(|e| Error::corrupt("aggregates", id.to_string(), e))?;
                Ok(Some(Snapshot { state, version: record.version, last_seq: record.last_seq }))
            }
        }
    }

    /// A page of an instance's events, oldest first: up to `limit` (at most [`Engine::READ_LIMIT_MAX`]) events
    /// ending with the event at sequence number `from_seq` (the instance's latest when `None`). `older` is the
    /// `from_seq` of the page before, `None` once the first event is in. Costs one log read per event.
    pub fn events_page<A: Aggregate<Domain = D>>(
        &self,
        id: &A::Id,
        from_seq: Option<u64>,
        limit: usize,
    ) -> Result<EventsPage<A>, Error> {
        let tag = self.inner.registry.by_type::<A>()?.tag;
        let mut key = Vec::new();
        format::aggregate_key(tag, &[], &mut key);
        id.encode_key(&mut key);
        let store = &self.inner.store;
        let (record, txn) = self.record_then_read(&key)?;
        let Some(record) = record else {
            return Ok(EventsPage { events: Vec::new(), older: None });
        };
        let mut seq = from_seq.unwrap_or(record.last_seq);
        let mut events = Vec::new();
        let mut expected_version = None;
        while seq != 0 && events.len() < limit.min(Self::READ_LIMIT_MAX) {
            let stored = store.event(&txn, seq)?.ok_or_else(|| Error::InvalidRead {
                message: format!("there is no event {seq} of `{}` `{id}`", A::NAME),
            })?;
            if stored.envelope.tag != tag || stored.envelope.key[..] != key[2..] {
                return Err(Error::InvalidRead {
                    message: format!("event {seq} is not an event of `{}` `{id}`", A::NAME),
                });
            }
            if expected_version.is_some_and(|expected| expected != stored.envelope.version) {
                return Err(Error::Corrupt {
                    table: "log",
                    at: seq.to_string(),
                    message: format!("the links of `{}` `{id}` skip a version", A::NAME),
                });
            }
            let event = A::decode_event(&stored.event).map_err(|e| Error::corrupt("log", seq.to_string(), e))?;
            expected_version = Some(stored.envelope.version - 1);
            seq = stored.envelope.previous_seq;
            events.push(Recorded {
                seq: stored.seq,
                event_id: stored.envelope.event_id,
                version: stored.envelope.version,
                occurred_at: stored.envelope.occurred_at,
                event,
            });
        }
        events.reverse();
        Ok(EventsPage { events, older: (seq != 0).then_some(seq) })
    }

    /// Every event of an instance, oldest first (unbounded: see [`Engine::events_page`] for long histories).
    pub fn events<A: Aggregate<Domain = D>>(&self, id: &A::Id) -> Result<Vec<Recorded<A>>, Error> {
        let tag = self.inner.registry.by_type::<A>()?.tag;
        let mut key = Vec::new();
        format::aggregate_key(tag, &[], &mut key);
        id.encode_key(&mut key);
        let store = &self.inner.store;
        let (record, txn) = self.record_then_read(&key)?;
        let Some(record) = record else { return Ok(Vec::new()) };
        let events = load_events::<A>(store, &txn, tag, &key[2..], record.last_seq, record.version)?;
        Ok(events
            .into_iter()
            .map(|(stored, event)| Recorded {
                seq: stored.seq,
                event_id: stored.envelope.event_id,
                version: stored.envelope.version,
                occurred_at: stored.envelope.occurred_at,
                event,
            })
            .collect())
    }

    /// Up to `limit` (at most [`Engine::READ_LIMIT_MAX`]) events after sequence number `since_seq`, gapless and
    /// in order (the changes feed).
    pub fn changes(&self, since_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, Error> {
        let txn = self.inner.store.read()?;
        self.inner.store.events_after(&txn, since_seq, limit.min(Self::READ_LIMIT_MAX))
    }

    /// A stored event's name and JSON form.
    pub fn event_json(&self, stored: &StoredEvent) -> Result<(&'static str, serde_json::Value), Error> {
        let entry = self.inner.registry.by_tag(stored.envelope.tag, stored.seq)?;
        (entry.event_json)(stored)
    }

    /// The sequence number of the last committed event.
    pub fn last_seq(&self) -> Result<u64, Error> {
        let txn = self.inner.store.read()?;
        self.inner.store.last_seq(&txn)
    }

    /// The last event the processes have stored as handled: a restart resumes after it.
    pub fn process_progress(&self) -> Result<u64, Error> {
        let txn = self.inner.store.read()?;
        self.inner.store.progress(&txn)
    }

    /// The last event the processes have handled, stored or not yet.
    pub fn process_handled(&self) -> u64 {
        self.inner.progress.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> Stats {
        let stats = &self.inner.stats;
        Stats {
            batches: stats.batches.load(Ordering::Relaxed),
            commands: stats.commands.load(Ordering::Relaxed),
            failed_batches: stats.failed_batches.load(Ordering::Relaxed),
            decide_us: stats.decide_us.load(Ordering::Relaxed),
            write_us: stats.write_us.load(Ordering::Relaxed),
            commit_us: stats.commit_us.load(Ordering::Relaxed),
            checkpoints: stats.checkpoints.load(Ordering::Relaxed),
            checkpoint_us: stats.checkpoint_us.load(Ordering::Relaxed),
            failed_checkpoints: stats.failed_checkpoints.load(Ordering::Relaxed),
            commit_us_histogram: stats.commit_us_histogram.each_ref().map(|count| count.load(Ordering::Relaxed)),
            batch_size_histogram: stats.batch_size_histogram.each_ref().map(|count| count.load(Ordering::Relaxed)),
        }
    }

    /// Commands queued for the writers and not yet taken into a batch, over all partitions.
    pub fn queue_depth(&self) -> u64 {
        self.inner.partitions.iter().map(|partition| partition.sender.len() as u64).sum()
    }

    /// The last error the process runner met, if any (it retries; this is for operators and tests).
    pub fn process_error(&self) -> Option<Error> {
        self.inner.process_error.lock().clone()
    }

    /// Waits until the processes have handled every event committed so far (polling; bounded by `timeout`).
    /// Returns whether they caught up.
    pub fn wait_for_processes(&self, timeout: Duration) -> Result<bool, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.last_seq()?;
            let progress = self.inner.progress.load(Ordering::Acquire);
            if progress >= last {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A view row by its key bytes (as generated code encodes them); the row bytes are for generated code to decode.
    pub fn view_get(&self, view: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let txn = self.read()?;
        self.inner.store.view_get(&txn, view, key)
    }

    /// Up to `limit` (at most [`Engine::READ_LIMIT_MAX`]) rows of a view from key `from` on, in key-byte order.
    pub fn view_range(&self, view: &str, from: &[u8], limit: usize) -> Result<Vec<ViewRow>, Error> {
        let txn = self.read()?;
        self.inner.store.view_range(&txn, view, from, limit.min(Self::READ_LIMIT_MAX))
    }

    /// Clears a view and folds the whole log into it again, in one write transaction (writers wait meanwhile).
    /// Returns the number of events read.
    pub fn rebuild_view(&self, view: &str) -> Result<u64, Error> {
        self.rebuild_view_with_progress(view, &mut |_, _| {})
    }

    /// [`Engine::rebuild_view`], calling `progress(events_read, events_total)` after each chunk of the log.
    pub fn rebuild_view_with_progress(&self, view: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<u64, Error> {
        if self.lock.is_none() {
            return Err(Error::ReadOnly { operation: "rebuilding a view" });
        }
        let store = &self.inner.store;
        let Some(view) = store.view_names().find(|name| *name == view) else {
            return Err(Error::UnknownView { name: view.to_owned() });
        };
        const CHUNK_EVENTS_MAX: usize = 4096;
        let index = store.view_index(view).expect("the view was found above");
        // No batch is prepared or committed meanwhile, so the checkpoint below holds every committed record and
        // row, the view is rebuilt from the same last event, and no queued batch folded the rows it replaces.
        let _quiet = self.inner.quiesce();
        let read = store.checkpoint_with(None, |txn, checkpoint_seq| {
            store.clear_view(txn, view)?;
            let total = store.last_seq(txn)?;
            assert_eq!(total, checkpoint_seq, "every committed event is published while commits wait");
            let mut since = 0;
            // Its own rows: the writers' may not see this transaction's rows before it commits.
            let mut rows = ViewRows::new(0);
            loop {
                let chunk = store.events_after(txn, since, CHUNK_EVENTS_MAX)?;
                let Some(last) = chunk.last() else { break };
                since = last.seq;
                for stored in &chunk {
                    let entry = self.inner.registry.by_tag(stored.envelope.tag, stored.seq)?;
                    let (seq, only) = (stored.seq, Some(view));
                    let mut tables =
                        TxnViews { store, txn, rows: &mut rows, only, unflushed: false, seq, replay: false };
                    if let Err(error) = (entry.fold_views)(stored, &mut tables) {
                        return Err(WriteError::Other(Error::View(error.to_string())));
                    }
                }
                // Bounded memory: at most one chunk's rows.
                rows.flush(store, txn)?;
                rows.clear();
                progress(since, total);
            }
            Ok(since)
        })?;
        // The view's unflushed rows are older than the rebuilt ones; the others are in their tables now.
        store.forget_view_rows(index);
        store.forget_flushed(FORGET_WAIT);
        Ok(read)
    }

    /// What opening the store migrated (events upcast, instances and views rebuilt); `None` when the store
    /// already held this schema.
    pub fn migration(&self) -> Option<Migration> {
        self.inner.migration
    }

    /// Checks the whole store: the log is gapless and readable, and every instance's stored state equals a fresh
    /// replay of its events. Returns (events in the log, instances checked). Slow: for tests and tools; the
    /// owner's writers wait meanwhile (the records it checks must be those of the log it reads).
    pub fn verify(&self) -> Result<(u64, u64), Error> {
        let store = &self.inner.store;
        // Commits publish their records under this lock: while it is held, every committed event's records
        // are published. A reader beside the owner checks the events it caught up to.
        let _commits = (!self.inner.read_only).then(|| self.inner.commit_lock.lock());
        let txn = self.read()?;
        let (_, published_seq) = store.unflushed_bounds();
        let mut events = 0u64;
        loop {
            let chunk = store.events_after(&txn, events, 4096)?;
            let Some(last) = chunk.last() else { break };
            for stored in &chunk {
                self.inner.registry.by_tag(stored.envelope.tag, stored.seq)?;
            }
            events = last.seq;
        }
        let mut instances = 0u64;
        let mut versions = 0u64;
        store.for_each_aggregate(&txn, |key, record| {
            if key.len() < 2 {
                return Err(Error::Corrupt {
                    table: "aggregates",
                    at: format!("{key:02x?}"),
                    message: "short key".into(),
                });
            }
            let entry = self.inner.registry.by_tag(u16::from_be_bytes([key[0], key[1]]), 0)?;
            versions += (entry.verify)(store, &txn, key, &record)?;
            instances += 1;
            Ok(())
        })?;
        // A reader beside the owner holds the records of the events it caught up to; the owner, of them all.
        let expected = if self.inner.read_only { published_seq } else { events };
        if versions != expected {
            return Err(Error::Corrupt {
                table: "aggregates",
                at: "*".into(),
                message: format!("the instances' versions add up to {versions}, the log has {expected} events"),
            });
        }
        Ok((events, instances))
    }

    /// Stops taking commands, drains the queues, commits, and stops every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // The processes stop first, so that their commands still reach running writers.
        self.inner.processes_stop.store(true, Ordering::Release);
        if let Some(processes) = self.processes.take() {
            // A panicked runner has nothing left to clean up; the writers still drain.
            let _ = processes.join();
        }
        self.inner.closing.store(true, Ordering::Release);
        let owner = !self.writers.is_empty();
        for writer in self.writers.drain(..) {
            let _ = writer.join();
        }
        if owner && !self.abandoned {
            // Reopening then replays nothing. Should this fail, the next open replays the log instead.
            let _ = checkpoint(&self.inner, None);
        }
    }

    /// Stops every thread like [`Engine::shutdown`] but writes no final checkpoint: what reopening after a
    /// crash finds (for tests of recovery).
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.abandoned = true;
        self.stop();
    }
}

impl<D: Domain> Drop for Engine<D> {
    fn drop(&mut self) {
        self.stop();
    }
}
