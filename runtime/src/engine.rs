//! The command engine: partitioned writer threads that decide commands in batches against cached state and
//! commit each batch in one durable LMDB transaction (group commit), plus the reads and the process runner.
//!
//! A command goes: caller -> partition queue (bounded; hashed by aggregate type and key) -> writer thread. The
//! writer drains up to `batch_size_max` commands, decides each against its in-memory state (loading the stored
//! record on a cache miss), then opens the single LMDB write transaction, appends the events, folds them into
//! the views, writes each touched aggregate's record once and every command record, and commits. The callers
//! are answered once the commit is durable: commits sync their data but not their meta page, so a batch is
//! answered after the next batch's commit or, when no work is queued, after an explicit sync (see
//! `Store::open`). Answers are filled and callers woken on a separate thread per writer. Partitions decide
//! in parallel; LMDB serializes their write transactions.
//!
//! Sections: the registry (per aggregate type, monomorphized functions the engine calls by tag or name), jobs
//! (type-erased commands, the writer's cache and view overlay), the engine (API and reads), the writer loop,
//! and the process runner.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
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
use std::hash::{BuildHasherDefault, Hasher};

use crate::aggregate::{
    Aggregate, AggregateVisitor, CommandVisitor, Context, Domain, DomainCommand, EventContext, Key, Reaction,
    Rejection, ViewError, ViewTables,
};
use crate::error::Error;
use crate::format::{self, AggregateRecord, CommandOutcome, CommandRecord, EnvelopeRef, IdGenerator, StoredEvent};
use crate::store::{Store, StoreConfig, ViewRow, WriteError};
use crate::value::Timestamp;

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
    pub store: StoreConfig,
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
            store: StoreConfig::default(),
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
    value: Mutex<Option<Result<Outcome<A>, Error>>>,
    ready: Condvar,
}

/// A command in flight: [`Pending::wait`] returns its outcome once its batch is committed.
pub struct Pending<A: Aggregate> {
    answer: Arc<Answer<A>>,
}

impl<A: Aggregate> Pending<A> {
    pub fn wait(self) -> Result<Outcome<A>, Error> {
        let mut value = self.answer.value.lock();
        loop {
            if let Some(answer) = value.take() {
                return answer;
            }
            self.answer.ready.wait(&mut value);
        }
    }
}

/// Wakes a caller whose answer is in place.
trait Wake: Send + Sync {
    fn wake(&self);
}

impl<A: Aggregate> Wake for Answer<A> {
    fn wake(&self) {
        self.ready.notify_one();
    }
}

/// The writer's end of an [`Answer`]. Dropped unanswered (a queue discarded at shutdown), it answers
/// [`Error::ShuttingDown`], so no caller waits forever.
struct Reply<A: Aggregate> {
    answer: Option<Arc<Answer<A>>>,
}

impl<A: Aggregate> Reply<A> {
    fn pair() -> (Reply<A>, Pending<A>) {
        let answer = Arc::new(Answer { value: Mutex::new(None), ready: Condvar::new() });
        (Reply { answer: Some(Arc::clone(&answer)) }, Pending { answer })
    }

    /// Leaves the answer without waking the caller: the writer answers a whole batch first, then wakes the
    /// callers, so that a caller woken for its first command finds the rest answered instead of sleeping again.
    fn send(mut self, value: Result<Outcome<A>, Error>) -> Arc<dyn Wake> {
        let answer = self.answer.take().expect("a reply is sent once");
        *answer.value.lock() = Some(value);
        answer
    }
}

impl<A: Aggregate> Drop for Reply<A> {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take() {
            *answer.value.lock() = Some(Err(Error::ShuttingDown));
            answer.ready.notify_one();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The registry: per aggregate type, monomorphized functions the engine calls by tag or by name.

type ReactFn = fn(&StoredEvent) -> Result<Box<dyn Any>, Error>;
type FoldFn = fn(&StoredEvent, &mut dyn ViewTables) -> Result<(), ViewError>;
type JsonFn<D> = fn(&Inner<D>, &str, &str, &[u8], CommandMeta) -> Result<JsonOutcome, Error>;
type EventJsonFn = fn(&StoredEvent) -> Result<(&'static str, serde_json::Value), Error>;
type VerifyFn = fn(&Store, &RoTxn, &[u8], &AggregateRecord) -> Result<u64, Error>;

struct AggregateEntry<D: Domain> {
    name: &'static str,
    tag: u16,
    type_id: TypeId,
    react: ReactFn,
    fold_views: FoldFn,
    execute_json: JsonFn<D>,
    event_json: EventJsonFn,
    verify: VerifyFn,
    /// The events of this aggregate some process reacts to.
    handled_events: Vec<&'static str>,
    _domain: PhantomData<fn() -> D>,
}

struct Registry<D: Domain> {
    entries: Vec<AggregateEntry<D>>,
    _domain: PhantomData<fn() -> D>,
}

impl<D: Domain> AggregateVisitor for Registry<D> {
    fn visit<A: Aggregate>(&mut self) {
        // The visitor cannot require `A::Domain = D`; reactions are downcast on that assumption, so check it.
        assert_eq!(TypeId::of::<A::Domain>(), TypeId::of::<D>(), "aggregate `{}` belongs to another domain", A::NAME);
        let tag = u16::try_from(self.entries.len()).expect("a domain has at most 65,536 aggregates");
        self.entries.push(AggregateEntry {
            name: A::NAME,
            tag,
            type_id: TypeId::of::<A>(),
            react: react_erased::<A>,
            fold_views: fold_erased::<A>,
            execute_json: execute_json_erased::<D, A>,
            event_json: event_json_erased::<A>,
            verify: verify_erased::<A>,
            handled_events: D::meta()
                .processes
                .iter()
                .flat_map(|process| process.handlers)
                .filter(|handler| handler.aggregate == A::NAME)
                .map(|handler| handler.event)
                .collect(),
            _domain: PhantomData,
        });
    }
}

impl<D: Domain> Registry<D> {
    fn by_type<A: Aggregate>(&self) -> Result<&AggregateEntry<D>, Error> {
        let type_id = TypeId::of::<A>();
        self.entries
            .iter()
            .find(|e| e.type_id == type_id)
            .ok_or_else(|| Error::UnknownAggregate { name: A::NAME.to_owned() })
    }

    fn by_tag(&self, tag: u16, seq: u64) -> Result<&AggregateEntry<D>, Error> {
        self.entries.get(usize::from(tag)).ok_or_else(|| Error::Corrupt {
            table: "log",
            at: seq.to_string(),
            message: format!("aggregate tag {tag} is not in the domain"),
        })
    }

    fn by_name(&self, name: &str) -> Result<&AggregateEntry<D>, Error> {
        self.entries.iter().find(|e| e.name == name).ok_or_else(|| Error::UnknownAggregate { name: name.to_owned() })
    }
}

fn decode_id<A: Aggregate>(key: &[u8], table: &'static str, at: impl fmt::Display) -> Result<A::Id, Error> {
    A::Id::decode_key(key).map_err(|e| Error::corrupt(table, at.to_string(), e))
}

fn decode_stored_event<A: Aggregate>(stored: &StoredEvent) -> Result<(A::Id, A::Event), Error> {
    let id = decode_id::<A>(&stored.envelope.key, "log", stored.seq)?;
    let event = A::decode_event(&stored.event).map_err(|e| Error::corrupt("log", stored.seq.to_string(), e))?;
    Ok((id, event))
}

fn event_context<'a, A: Aggregate>(stored: &StoredEvent, id: &'a A::Id) -> EventContext<'a, A::Id> {
    EventContext {
        id,
        version: stored.envelope.version - 1,
        occurred_at: stored.envelope.occurred_at,
        event_id: stored.envelope.event_id,
    }
}

fn react_erased<A: Aggregate>(stored: &StoredEvent) -> Result<Box<dyn Any>, Error> {
    let (id, event) = decode_stored_event::<A>(stored)?;
    let reactions = A::react(&event, &event_context::<A>(stored, &id)).map_err(|e| Error::Replay {
        aggregate: A::NAME,
        id: id.to_string(),
        seq: stored.seq,
        message: format!("a process failed: {e}"),
    })?;
    Ok(Box::new(reactions))
}

fn fold_erased<A: Aggregate>(stored: &StoredEvent, tables: &mut dyn ViewTables) -> Result<(), ViewError> {
    let (id, event) =
        decode_stored_event::<A>(stored).map_err(|e| ViewError { view: "<rebuild>", message: e.to_string() })?;
    A::update_views(&event, &event_context::<A>(stored, &id), tables)
}

fn execute_json_erased<D: Domain, A: Aggregate>(
    inner: &Inner<D>,
    id: &str,
    command: &str,
    json: &[u8],
    meta: CommandMeta,
) -> Result<JsonOutcome, Error> {
    let id = A::Id::parse_key(id).map_err(|e| Error::InvalidCommand { message: format!("the id: {e}") })?;
    let command = A::command_from_json(command, json).map_err(|e| Error::InvalidCommand { message: e.to_string() })?;
    match inner.submit::<A>(id, command, meta)?.wait()? {
        Outcome::Accepted { events, version } => Ok(JsonOutcome::Accepted {
            version,
            events: events
                .iter()
                .map(|r| JsonEvent {
                    seq: r.seq,
                    event_id: format!("{:032x}", r.event_id),
                    name: crate::aggregate::EventName::name(&r.event),
                    event: A::event_to_json(&r.event),
                })
                .collect(),
        }),
        Outcome::Rejected(rejection) => {
            Ok(JsonOutcome::Rejected { code: rejection.code().to_owned(), message: rejection.message().to_owned() })
        }
    }
}

fn event_json_erased<A: Aggregate>(stored: &StoredEvent) -> Result<(&'static str, serde_json::Value), Error> {
    let (_, event) = decode_stored_event::<A>(stored)?;
    Ok((crate::aggregate::EventName::name(&event), A::event_to_json(&event)))
}

/// Follows the instance's event links back from `last_seq`, checking each envelope, and returns its events
/// oldest first. `version` bounds the walk.
fn load_events<A: Aggregate>(
    store: &Store,
    txn: &RoTxn,
    tag: u16,
    key: &[u8],
    last_seq: u64,
    version: u64,
) -> Result<Vec<(StoredEvent, A::Event)>, Error> {
    let mut events = Vec::with_capacity(usize::try_from(version).unwrap_or(0).min(1 << 16));
    let mut seq = last_seq;
    let mut expected_version = version;
    while seq != 0 {
        let broken = |message: String| Error::Corrupt { table: "log", at: seq.to_string(), message };
        if expected_version == 0 {
            return Err(broken(format!("`{}` has more events than its version {version}", A::NAME)));
        }
        let stored = store.event(txn, seq)?.ok_or_else(|| broken("a linked event is missing".into()))?;
        if stored.envelope.tag != tag || stored.envelope.key != key || stored.envelope.version != expected_version {
            return Err(broken(format!("the event is not version {expected_version} of this `{}`", A::NAME)));
        }
        let event = A::decode_event(&stored.event).map_err(|e| Error::corrupt("log", seq.to_string(), e))?;
        seq = stored.envelope.previous_seq;
        expected_version -= 1;
        events.push((stored, event));
    }
    if expected_version != 0 {
        return Err(Error::Corrupt {
            table: "aggregates",
            at: format!("{key:02x?}"),
            message: format!("version {version} but only {} events in the log", version - expected_version),
        });
    }
    events.reverse();
    Ok(events)
}

/// Checks that the stored state of one instance equals a fresh replay of its events; returns the event count.
fn verify_erased<A: Aggregate>(store: &Store, txn: &RoTxn, key: &[u8], record: &AggregateRecord) -> Result<u64, Error> {
    let (tag_bytes, id_bytes) = key.split_at(2);
    let tag = u16::from_be_bytes([tag_bytes[0], tag_bytes[1]]);
    let id = decode_id::<A>(id_bytes, "aggregates", format!("{key:02x?}"))?;
    let stored = A::decode_state(&record.state).map_err(|e| Error::corrupt("aggregates", id.to_string(), e))?;
    let events = load_events::<A>(store, txn, tag, id_bytes, record.last_seq, record.version)?;
    let mut state = A::State::default();
    for (stored_event, event) in &events {
        A::evolve(&mut state, event, &event_context::<A>(stored_event, &id)).map_err(|e| Error::Replay {
            aggregate: A::NAME,
            id: id.to_string(),
            seq: stored_event.seq,
            message: e.to_string(),
        })?;
    }
    if state != stored {
        return Err(Error::Replay {
            aggregate: A::NAME,
            id: id.to_string(),
            seq: record.last_seq,
            message: format!("the stored state {stored:?} differs from the replayed state {state:?}"),
        });
    }
    Ok(record.version)
}

// ---------------------------------------------------------------------------------------------------------------
// Jobs: type-erased commands in a partition queue.

/// An aggregate instance in a writer's memory.
struct Cached {
    state: Box<dyn Any + Send>,
    version: u64,
    last_seq: u64,
    /// The last event written for it in the current write attempt (becomes `last_seq` once committed).
    batch_last_seq: Option<u64>,
    encode: fn(&(dyn Any + Send)) -> Vec<u8>,
}

/// A multiply-rotate hash, eight bytes at a time, for the writers' maps: keys are short, and SipHash showed
/// up in profiles. (A client choosing colliding keys only slows its own partition.)
#[derive(Default)]
struct FastHasher(u64);

const FAST_HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        let hash = self.0.wrapping_mul(FAST_HASH_K);
        hash ^ (hash >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(FAST_HASH_K).rotate_left(29);
        }
        let remainder = chunks.remainder();
        if !remainder.is_empty() {
            let mut word = [0u8; 8];
            word[..remainder.len()].copy_from_slice(remainder);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(FAST_HASH_K).rotate_left(29);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(FAST_HASH_K).rotate_left(29);
    }
    fn write_u128(&mut self, n: u128) {
        self.write(&n.to_le_bytes());
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

fn encode_state_erased<A: Aggregate>(state: &(dyn Any + Send)) -> Vec<u8> {
    A::encode_state(state.downcast_ref::<A::State>().expect("a cache entry holds the state of its tag's aggregate"))
}

/// A writer's instances: a slab of entries and an index by record key. Commands remember their entry's slot
/// from decide to write, so the write phase does no lookups; entries move only between batches (eviction).
#[derive(Default)]
struct Cache {
    index: FastMap<Vec<u8>, u32>,
    slots: Vec<(Vec<u8>, Cached)>,
    /// Where the next eviction starts: spreads evictions over the slab.
    evict_cursor: usize,
}

impl Cache {
    fn find(&self, key: &[u8]) -> Option<u32> {
        self.index.get(key).copied()
    }

    fn insert(&mut self, key: Vec<u8>, cached: Cached) -> u32 {
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 cached instances");
        self.index.insert(key.clone(), slot);
        self.slots.push((key, cached));
        slot
    }

    fn slot(&mut self, slot: u32) -> &mut Cached {
        &mut self.slots[slot as usize].1
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
    }

    /// Drops entries until at most `len_max` remain. Only between batches: it moves entries between slots.
    fn evict_to(&mut self, len_max: usize) {
        while self.slots.len() > len_max {
            let victim = self.evict_cursor % self.slots.len();
            self.evict_cursor = self.evict_cursor.wrapping_add(7_919);
            let (key, _) = self.slots.swap_remove(victim);
            self.index.remove(&key);
            if let Some((moved, _)) = self.slots.get(victim) {
                let slot = self.index.get_mut(moved).expect("every cached instance is indexed");
                *slot = victim as u32;
            }
        }
        assert_eq!(self.index.len(), self.slots.len());
    }
}

struct DecideCx<'a> {
    store: &'a Store,
    txn: &'a RoTxn<'a>,
    cache: &'a mut Cache,
    now: Timestamp,
}

struct WriteCx<'a, 't> {
    store: &'a Store,
    txn: &'a mut RwTxn<'t>,
    cache: &'a mut Cache,
    next_seq: u64,
    now: Timestamp,
    ids: &'a mut IdGenerator,
    /// Cache slots of the instances written in this attempt: their records are written once, at the end.
    dirty: &'a mut Vec<u32>,
    /// Reused for every envelope.
    buffer: &'a mut Vec<u8>,
    views: &'a mut ViewOverlay,
}

/// View rows changed in the current write attempt, written to their tables once at the end of the batch: a
/// hot row (skewed keys) is read and written in memory, and costs one B-tree write per batch, not per event.
#[derive(Default)]
struct ViewOverlay {
    /// View index (`u16` big-endian) and key bytes, to the row.
    rows: FastMap<Vec<u8>, Vec<u8>>,
    /// Reused to build lookup keys.
    lookup: Vec<u8>,
}

impl ViewOverlay {
    fn set_lookup(&mut self, view: u16, key: &[u8]) {
        self.lookup.clear();
        self.lookup.extend_from_slice(&view.to_be_bytes());
        self.lookup.extend_from_slice(key);
    }

    /// Writes every changed row (in key order, which keeps the B-tree walks local) and empties the overlay.
    fn flush(&mut self, store: &Store, txn: &mut RwTxn<'_>) -> Result<(), heed::Error> {
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = self.rows.drain().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, row) in rows {
            let view = u16::from_be_bytes([key[0], key[1]]);
            store.view_table_at(view).put(txn, &key[2..], &row)?;
        }
        Ok(())
    }
}

/// The engine's view tables inside a write transaction, through the batch's overlay.
struct TxnViews<'a, 't> {
    store: &'a Store,
    txn: &'a RwTxn<'t>,
    overlay: &'a mut ViewOverlay,
    /// When rebuilding one view, the others' rows are neither read nor written.
    only: Option<&'a str>,
}

impl ViewTables for TxnViews<'_, '_> {
    fn get(&mut self, view: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        if self.only.is_some_and(|only| only != view) {
            return Ok(None);
        }
        let index = self.store.view_index(view).ok_or(ViewError { view, message: "no such view".into() })?;
        self.overlay.set_lookup(index, key);
        if let Some(row) = self.overlay.rows.get(&self.overlay.lookup[..]) {
            return Ok(Some(row.clone()));
        }
        match self.store.view_table_at(index).get(self.txn, key) {
            Ok(row) => Ok(row.map(<[u8]>::to_vec)),
            Err(error) => Err(ViewError { view, message: error.to_string() }),
        }
    }

    fn put(&mut self, view: &'static str, key: &[u8], row: &[u8]) -> Result<(), ViewError> {
        if self.only.is_some_and(|only| only != view) {
            return Ok(());
        }
        let index = self.store.view_index(view).ok_or(ViewError { view, message: "no such view".into() })?;
        if key.is_empty() || key.len() > crate::aggregate::KEY_BYTES_MAX {
            return Err(ViewError { view, message: format!("a view key of {} bytes", key.len()) });
        }
        self.overlay.set_lookup(index, key);
        match self.overlay.rows.get_mut(&self.overlay.lookup[..]) {
            Some(existing) => {
                existing.clear();
                existing.extend_from_slice(row);
            }
            None => {
                self.overlay.rows.insert(self.overlay.lookup.clone(), row.to_vec());
            }
        }
        Ok(())
    }
}

trait Job: Send {
    fn enqueued_at(&self) -> Instant;
    fn command_id(&self) -> Option<u128>;
    fn decide(&mut self, cx: &mut DecideCx<'_>);
    /// Writes what was decided. May run more than once (after the map grows), each time from scratch.
    fn write(&mut self, cx: &mut WriteCx<'_, '_>) -> Result<(), WriteError>;
    /// Leaves the answer; the caller is woken by [`Wake::wake`] on what it returns.
    fn finish(self: Box<Self>, failure: Option<Error>) -> Arc<dyn Wake>;
}

enum Decided<A: Aggregate> {
    Pending,
    Failed(Error),
    Replayed(Outcome<A>),
    Rejected(A::Rejection),
    Accepted { events: Vec<A::Event>, version_before: u64, occurred_at: Timestamp, recorded: Vec<Recorded<A>> },
}

struct CommandJob<A: Aggregate> {
    tag: u16,
    /// Tag and key bytes: the instance's record key and cache key.
    record_key: Vec<u8>,
    id: A::Id,
    command: A::Command,
    meta: CommandMeta,
    correlation_id: u128,
    enqueued_at: Instant,
    reply: Reply<A>,
    decided: Decided<A>,
    /// The instance's cache slot, set by decide (valid until the batch ends).
    slot: u32,
}

impl<A: Aggregate> CommandJob<A> {
    fn key_bytes(&self) -> &[u8] {
        &self.record_key[2..]
    }

    fn replay(&self, cx: &DecideCx<'_>, command_id: u128, record: CommandRecord) -> Result<Decided<A>, Error> {
        if record.tag != self.tag || record.key != self.key_bytes() {
            return Err(Error::CommandIdReused { command_id });
        }
        let outcome = match record.outcome {
            CommandOutcome::Rejected { code } => match A::Rejection::from_code(&code) {
                Some(rejection) => Outcome::Rejected(rejection),
                None => {
                    return Err(Error::Corrupt {
                        table: "commands",
                        at: format!("{command_id:#034x}"),
                        message: format!("`{code}` is not a rejection of `{}`", A::NAME),
                    })
                }
            },
            CommandOutcome::Accepted { first_seq, count, version } => {
                let mut events = Vec::with_capacity(count as usize);
                for seq in first_seq..first_seq + u64::from(count) {
                    let stored = cx.store.event(cx.txn, seq)?.ok_or_else(|| Error::Corrupt {
                        table: "commands",
                        at: format!("{command_id:#034x}"),
                        message: format!("its event {seq} is not in the log"),
                    })?;
                    let (_, event) = decode_stored_event::<A>(&stored)?;
                    events.push(Recorded {
                        seq,
                        event_id: stored.envelope.event_id,
                        version: stored.envelope.version,
                        occurred_at: stored.envelope.occurred_at,
                        event,
                    });
                }
                Outcome::Accepted { events, version }
            }
        };
        Ok(Decided::Replayed(outcome))
    }

    fn decide_inner(&mut self, cx: &mut DecideCx<'_>) -> Result<Decided<A>, Error> {
        if let Some(command_id) = self.meta.command_id {
            if let Some(record) = cx.store.command(cx.txn, command_id)? {
                return self.replay(cx, command_id, record);
            }
        }
        if let Some(slot) = cx.cache.find(&self.record_key) {
            self.slot = slot;
            return self.execute_on(cx.cache.slot(slot), cx.now);
        }
        {
            {
                let cached = match cx.store.aggregate(cx.txn, &self.record_key)? {
                    None => Cached {
                        state: Box::new(A::State::default()),
                        version: 0,
                        last_seq: 0,
                        batch_last_seq: None,
                        encode: encode_state_erased::<A>,
                    },
                    Some(record) => Cached {
                        state: Box::new(
                            A::decode_state(&record.state)
                                .map_err(|e| Error::corrupt("aggregates", self.id.to_string(), e))?,
                        ),
                        version: record.version,
                        last_seq: record.last_seq,
                        batch_last_seq: None,
                        encode: encode_state_erased::<A>,
                    },
                };
                self.slot = cx.cache.insert(self.record_key.clone(), cached);
            }
        }
        self.execute_on(cx.cache.slot(self.slot), cx.now)
    }

    /// Decides the command against the cached instance.
    fn execute_on(&mut self, entry: &mut Cached, now: Timestamp) -> Result<Decided<A>, Error> {
        if let Some(expected) = self.meta.expected_version {
            if expected != entry.version {
                return Err(Error::WrongVersion {
                    aggregate: A::NAME,
                    id: self.id.to_string(),
                    expected,
                    actual: entry.version,
                });
            }
        }
        let occurred_at = self.meta.occurred_at.unwrap_or(now);
        let version_before = entry.version;
        let ctx = Context { id: &self.id, version: version_before, now, occurred_at };
        let state =
            entry.state.downcast_mut::<A::State>().expect("a cache entry holds the state of its tag's aggregate");
        match A::execute(state, &self.command, &ctx) {
            Ok(events) => {
                entry.version += events.len() as u64;
                Ok(Decided::Accepted { events, version_before, occurred_at, recorded: Vec::new() })
            }
            Err(rejection) => Ok(Decided::Rejected(rejection)),
        }
    }
}

impl<A: Aggregate> Job for CommandJob<A> {
    fn enqueued_at(&self) -> Instant {
        self.enqueued_at
    }

    fn command_id(&self) -> Option<u128> {
        self.meta.command_id
    }

    fn decide(&mut self, cx: &mut DecideCx<'_>) {
        assert!(matches!(self.decided, Decided::Pending), "a command is decided once");
        self.decided = self.decide_inner(cx).unwrap_or_else(Decided::Failed);
    }

    fn write(&mut self, cx: &mut WriteCx<'_, '_>) -> Result<(), WriteError> {
        let outcome = match &mut self.decided {
            Decided::Pending => unreachable!("a command is decided before it is written"),
            Decided::Failed(_) | Decided::Replayed(_) => return Ok(()),
            Decided::Rejected(rejection) => CommandOutcome::Rejected { code: rejection.code().to_owned() },
            Decided::Accepted { events, version_before, occurred_at, recorded } => {
                recorded.clear();
                let first_seq = cx.next_seq;
                let cached = cx.cache.slot(self.slot);
                let mut previous_seq = cached.batch_last_seq.unwrap_or(cached.last_seq);
                if !events.is_empty() && cached.batch_last_seq.is_none() {
                    cx.dirty.push(self.slot);
                }
                for (index, event) in events.iter().enumerate() {
                    let seq = cx.next_seq;
                    cx.next_seq += 1;
                    let version = *version_before + index as u64 + 1;
                    let envelope = EnvelopeRef {
                        event_id: cx.ids.next_id(cx.now),
                        command_id: self.meta.command_id.unwrap_or(0),
                        correlation_id: self.correlation_id,
                        recorded_at: cx.now,
                        occurred_at: *occurred_at,
                        version,
                        previous_seq,
                        tag: self.tag,
                        aggregate: A::NAME,
                        key: &self.record_key[2..],
                        event_name: crate::aggregate::EventName::name(event),
                    };
                    format::encode_event_into(&envelope, &A::encode_event(event), cx.buffer);
                    cx.store.append_event(cx.txn, seq, cx.buffer)?;
                    let ctx = EventContext {
                        id: &self.id,
                        version: version - 1,
                        occurred_at: *occurred_at,
                        event_id: envelope.event_id,
                    };
                    let mut views = TxnViews { store: cx.store, txn: cx.txn, overlay: cx.views, only: None };
                    if let Err(error) = A::update_views(event, &ctx, &mut views) {
                        return Err(WriteError::Other(Error::View(error.to_string())));
                    }
                    recorded.push(Recorded {
                        seq,
                        event_id: envelope.event_id,
                        version,
                        occurred_at: *occurred_at,
                        event: event.clone(),
                    });
                    previous_seq = seq;
                }
                if !events.is_empty() {
                    cached.batch_last_seq = Some(previous_seq);
                }
                let count = u32::try_from(events.len()).expect("a command emits fewer than 2^32 events");
                CommandOutcome::Accepted { first_seq, count, version: *version_before + u64::from(count) }
            }
        };
        if let Some(command_id) = self.meta.command_id {
            let record = CommandRecord { tag: self.tag, key: self.record_key[2..].to_vec(), outcome };
            cx.store.put_command(cx.txn, command_id, &format::encode_command(&record))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>, failure: Option<Error>) -> Arc<dyn Wake> {
        let answer = match (failure, self.decided) {
            (Some(error), _) => Err(error),
            (None, Decided::Pending) => unreachable!("a command is decided before it is answered"),
            (None, Decided::Failed(error)) => Err(error),
            (None, Decided::Replayed(outcome)) => Ok(outcome),
            (None, Decided::Rejected(rejection)) => Ok(Outcome::Rejected(rejection)),
            (None, Decided::Accepted { recorded, version_before, .. }) => {
                let version = version_before + recorded.len() as u64;
                Ok(Outcome::Accepted { events: recorded, version })
            }
        };
        self.reply.send(answer)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The engine.

struct Partition {
    sender: Sender<Box<dyn Job>>,
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
    /// Wakes the process runner after a commit (a bounded signal: one pending wake-up is enough).
    commits: Sender<()>,
    /// The last error the process runner met (for operators and tests).
    process_error: Mutex<Option<Error>>,
    /// The last event the process runner has handled (in memory; stored lazily when nothing was sent).
    progress: AtomicU64,
    stats: StatsCounters,
}

#[derive(Default)]
struct StatsCounters {
    batches: AtomicU64,
    commands: AtomicU64,
    failed_batches: AtomicU64,
    decide_us: AtomicU64,
    write_us: AtomicU64,
    commit_us: AtomicU64,
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
}

/// The engine for domain `D`: owns the store, the writer threads and the process runner.
pub struct Engine<D: Domain> {
    inner: Arc<Inner<D>>,
    writers: Vec<JoinHandle<()>>,
    processes: Option<JoinHandle<()>>,
}

thread_local! {
    static IDS: std::cell::RefCell<IdGenerator> = std::cell::RefCell::new(IdGenerator::new());
}

/// A fresh UUIDv7-style id (for correlation ids and clients that want one).
pub fn new_id() -> u128 {
    IDS.with(|ids| ids.borrow_mut().next_id(Timestamp::now()))
}

fn partition_of(name: &str, key: &[u8], partitions: usize) -> usize {
    let mut hash = format::checksum(name.as_bytes());
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % partitions as u64) as usize
}

impl<D: Domain> Inner<D> {
    fn submit<A: Aggregate>(&self, id: A::Id, command: A::Command, meta: CommandMeta) -> Result<Pending<A>, Error> {
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let tag = self.registry.by_type::<A>()?.tag;
        let mut record_key = Vec::with_capacity(2 + 16);
        format::aggregate_key(tag, &[], &mut record_key);
        id.encode_key(&mut record_key);
        if record_key.len() - 2 > crate::aggregate::KEY_BYTES_MAX {
            return Err(Error::InvalidCommand {
                message: format!("the key of `{}` is longer than 256 bytes", A::NAME),
            });
        }
        let partition = &self.partitions[partition_of(A::NAME, &record_key[2..], self.partitions.len())];
        let budget_us = self.config.latency_budget.as_micros() as u64;
        let waited_us = partition.queue_wait_us.load(Ordering::Relaxed);
        if waited_us > budget_us {
            return Err(Error::Overloaded { retry_after_ms: waited_us / 1000 + 1 });
        }
        let correlation_id = meta.correlation_id.or(meta.command_id).unwrap_or_else(new_id);
        let (reply, pending) = Reply::pair();
        let job = CommandJob::<A> {
            tag,
            record_key,
            id,
            command,
            meta,
            correlation_id,
            enqueued_at: Instant::now(),
            reply,
            decided: Decided::Pending,
            slot: u32::MAX,
        };
        match partition.sender.try_send(Box::new(job)) {
            Ok(()) => Ok(pending),
            Err(TrySendError::Full(_)) => Err(Error::Overloaded { retry_after_ms: budget_us / 1000 + 1 }),
            Err(TrySendError::Disconnected(_)) => Err(Error::ShuttingDown),
        }
    }
}

impl<D: Domain> Engine<D> {
    /// The most events or rows one read returns: a read holds a read transaction (and memory) for its length.
    pub const READ_LIMIT_MAX: usize = 10_000;

    /// Opens (or creates) the store at `path` and starts the writers and the process runner.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Engine<D>, Error> {
        config.check()?;
        let meta = D::meta();
        let views: Vec<&'static str> = meta.views.iter().map(|v| v.name).collect();
        let schema = crate::schema::describe(meta);
        let store = Store::open(path.as_ref(), config.store.clone(), D::NAME, meta.fingerprint, &schema, &views)?;
        let mut registry = Registry { entries: Vec::new(), _domain: PhantomData };
        D::for_each_aggregate(&mut registry);
        let mut receivers = Vec::new();
        let mut partitions = Vec::new();
        for _ in 0..config.partitions {
            let (sender, receiver) = crossbeam_channel::bounded(config.queue_depth_max as usize);
            partitions.push(Partition { sender, queue_wait_us: AtomicU64::new(0) });
            receivers.push(receiver);
        }
        let (commits, commits_receiver) = crossbeam_channel::bounded(1);
        let inner = Arc::new(Inner {
            store,
            config,
            registry,
            partitions,
            closing: AtomicBool::new(false),
            processes_stop: AtomicBool::new(false),
            commits,
            process_error: Mutex::new(None),
            progress: AtomicU64::new(0),
            stats: StatsCounters::default(),
        });
        let mut writers = Vec::new();
        for (index, receiver) in receivers.into_iter().enumerate() {
            let inner = Arc::clone(&inner);
            let spawned = std::thread::Builder::new()
                .name(format!("anthill-writer-{index}"))
                .spawn(move || run_writer(&inner, index, &receiver));
            writers.push(spawned.map_err(|e| Error::Store { message: format!("cannot start a writer: {e}") })?);
        }
        let processes = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("anthill-processes".into())
                .spawn(move || run_processes(&inner, &commits_receiver))
                .map_err(|e| Error::Store { message: format!("cannot start the process runner: {e}") })?
        };
        Ok(Engine { inner, writers, processes: Some(processes) })
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

    /// Runs a command given by names and JSON (the HTTP layer's entry point).
    pub fn execute_json(
        &self,
        aggregate: &str,
        id: &str,
        command: &str,
        json: &[u8],
        meta: CommandMeta,
    ) -> Result<JsonOutcome, Error> {
        let entry = self.inner.registry.by_name(aggregate)?;
        (entry.execute_json)(&self.inner, id, command, json, meta)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The stored state of an instance (as of the last commit), or `None` if it has no events.
    pub fn state<A: Aggregate<Domain = D>>(&self, id: &A::Id) -> Result<Option<Snapshot<A>>, Error> {
        let tag = self.inner.registry.by_type::<A>()?.tag;
        let mut key = Vec::new();
        format::aggregate_key(tag, &[], &mut key);
        id.encode_key(&mut key);
        let txn = self.inner.store.read()?;
        match self.inner.store.aggregate(&txn, &key)? {
            None => Ok(None),
            Some(record) => {
                let state =
                    A::decode_state(&record.state).map_err(|e| Error::corrupt("aggregates", id.to_string(), e))?;
                Ok(Some(Snapshot { state, version: record.version, last_seq: record.last_seq }))
            }
        }
    }

    /// Every event of an instance, oldest first.
    pub fn events<A: Aggregate<Domain = D>>(&self, id: &A::Id) -> Result<Vec<Recorded<A>>, Error> {
        let tag = self.inner.registry.by_type::<A>()?.tag;
        let mut key = Vec::new();
        format::aggregate_key(tag, &[], &mut key);
        id.encode_key(&mut key);
        let store = &self.inner.store;
        let txn = store.read()?;
        let Some(record) = store.aggregate(&txn, &key)? else { return Ok(Vec::new()) };
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
        }
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
        let txn = self.inner.store.read()?;
        self.inner.store.view_get(&txn, view, key)
    }

    /// Up to `limit` (at most [`Engine::READ_LIMIT_MAX`]) rows of a view from key `from` on, in key-byte order.
    pub fn view_range(&self, view: &str, from: &[u8], limit: usize) -> Result<Vec<ViewRow>, Error> {
        let txn = self.inner.store.read()?;
        self.inner.store.view_range(&txn, view, from, limit.min(Self::READ_LIMIT_MAX))
    }

    /// Clears a view and folds the whole log into it again, in one write transaction (writers wait meanwhile).
    /// Returns the number of events read.
    pub fn rebuild_view(&self, view: &str) -> Result<u64, Error> {
        let store = &self.inner.store;
        let Some(view) = store.view_names().find(|name| *name == view) else {
            return Err(Error::UnknownView { name: view.to_owned() });
        };
        const CHUNK_EVENTS_MAX: usize = 4096;
        store.write_durable(|txn| {
            store.clear_view(txn, view)?;
            let mut since = 0;
            let mut overlay = ViewOverlay::default();
            loop {
                let chunk = store.events_after(txn, since, CHUNK_EVENTS_MAX)?;
                let Some(last) = chunk.last() else { break };
                since = last.seq;
                for stored in &chunk {
                    let entry = self.inner.registry.by_tag(stored.envelope.tag, stored.seq)?;
                    let mut tables = TxnViews { store, txn, overlay: &mut overlay, only: Some(view) };
                    if let Err(error) = (entry.fold_views)(stored, &mut tables) {
                        return Err(WriteError::Other(Error::View(error.to_string())));
                    }
                }
                // Bounded memory: the overlay holds at most one chunk's rows.
                overlay.flush(store, txn)?;
            }
            Ok(since)
        })
    }

    /// Checks the whole store: the log is gapless and readable, and every instance's stored state equals a fresh
    /// replay of its events. Returns (events in the log, instances checked). Slow: for tests and tools.
    pub fn verify(&self) -> Result<(u64, u64), Error> {
        let store = &self.inner.store;
        let txn = store.read()?;
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
        if versions != events {
            return Err(Error::Corrupt {
                table: "aggregates",
                at: "*".into(),
                message: format!("the instances' versions add up to {versions}, the log has {events} events"),
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
        for writer in self.writers.drain(..) {
            let _ = writer.join();
        }
    }
}

impl<D: Domain> Drop for Engine<D> {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The writer.

/// How long an idle writer sleeps before it checks for shutdown.
const WRITER_IDLE_POLL: Duration = Duration::from_millis(10);

/// Batches answered off the writer thread, so the writer starts its next batch at once.
type Jobs = Vec<Box<dyn Job>>;
type AnsweredBatch = (Jobs, Option<Error>);
type Answers = Sender<AnsweredBatch>;

/// Batches a writer may have committed but not yet answered.
const ANSWER_QUEUE_BATCHES_MAX: usize = 4;

fn run_writer<D: Domain>(inner: &Inner<D>, index: usize, receiver: &Receiver<Box<dyn Job>>) {
    let (answers, answer_queue): (Answers, Receiver<AnsweredBatch>) =
        crossbeam_channel::bounded(ANSWER_QUEUE_BATCHES_MAX);
    std::thread::scope(move |scope| {
        // If the thread cannot start, its queue is dropped with it and `answer` answers on this thread.
        let _answerer =
            std::thread::Builder::new().name(format!("anthill-answers-{index}")).spawn_scoped(scope, move || {
                for (jobs, failure) in answer_queue {
                    answer_all(jobs, failure.as_ref());
                }
            });
        write_batches(inner, index, receiver, &answers);
        // Closing the queue ends the answerer once it has answered everything; the scope then joins it.
        drop(answers);
    });
}

fn write_batches<D: Domain>(inner: &Inner<D>, index: usize, receiver: &Receiver<Box<dyn Job>>, answers: &Answers) {
    let config = &inner.config;
    let batch_size_max = config.batch_size_max as usize;
    let partition = &inner.partitions[index];
    let mut cache = Cache::default();
    let mut ids = IdGenerator::new();
    let mut scratch = Scratch {
        views: ViewOverlay::default(),
        dirty: Vec::new(),
        buffer: Vec::new(),
        command_ids: HashSet::default(),
    };
    let mut deferred: Vec<Box<dyn Job>> = Vec::new();
    // The last committed batch, answered once durable: when the next commit's data sync has covered its meta
    // page, or when the writer runs out of work and syncs (see `Store::sync`).
    let mut unsynced: Option<Vec<Box<dyn Job>>> = None;
    loop {
        let mut batch = std::mem::take(&mut deferred);
        if batch.is_empty() {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => {
                    settle(inner, &mut unsynced, answers);
                    partition.queue_wait_us.store(0, Ordering::Relaxed);
                    match receiver.recv_timeout(WRITER_IDLE_POLL) {
                        Ok(job) => batch.push(job),
                        Err(RecvTimeoutError::Timeout) => {
                            if inner.closing.load(Ordering::Acquire) && receiver.is_empty() {
                                return;
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        }
        while batch.len() < batch_size_max {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if !config.batch_wait_max.is_zero() {
            let deadline = Instant::now() + config.batch_wait_max;
            while batch.len() < batch_size_max {
                match receiver.recv_deadline(deadline) {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let oldest = batch.iter().map(|job| job.enqueued_at()).min().expect("a batch is not empty");
        partition.queue_wait_us.store(oldest.elapsed().as_micros() as u64, Ordering::Relaxed);
        // Deferred commands come from a batch no larger than this one may be.
        assert!(batch.len() <= batch_size_max);
        match run_batch(inner, batch, &mut cache, &mut ids, &mut deferred, &mut scratch) {
            (committed, None) => {
                // This commit synced its data pages, and with them the previous batch's meta page.
                if let Some(previous) = unsynced.replace(committed) {
                    answer(answers, previous, None);
                }
            }
            (jobs, Some(error)) => {
                settle(inner, &mut unsynced, answers);
                answer(answers, jobs, Some(error));
            }
        }
        if cache.len() > config.cache_entries_max as usize {
            // Evict arbitrary entries down to three quarters: simple, and the stored record reloads them.
            cache.evict_to(config.cache_entries_max as usize * 3 / 4);
        }
    }
}

/// Makes the last committed batch durable and answers it.
fn settle<D: Domain>(inner: &Inner<D>, unsynced: &mut Option<Vec<Box<dyn Job>>>, answers: &Answers) {
    if let Some(jobs) = unsynced.take() {
        let synced = inner.store.sync();
        if synced.is_err() {
            inner.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
        answer(answers, jobs, synced.err());
    }
}

/// Answers every job, then wakes the callers (see [`Reply::send`]).
fn answer_all(jobs: Vec<Box<dyn Job>>, failure: Option<&Error>) {
    let wakes: Vec<Arc<dyn Wake>> = jobs.into_iter().map(|job| job.finish(failure.cloned())).collect();
    for wake in wakes {
        wake.wake();
    }
}

fn answer(answers: &Answers, jobs: Vec<Box<dyn Job>>, failure: Option<Error>) {
    // The answerer lives as long as the writer; should it be gone, answer here.
    if let Err(crossbeam_channel::SendError((jobs, failure))) = answers.send((jobs, failure)) {
        answer_all(jobs, failure.as_ref());
    }
}

/// Reusable allocations of one writer.
struct Scratch {
    views: ViewOverlay,
    dirty: Vec<u32>,
    buffer: Vec<u8>,
    command_ids: HashSet<u128, BuildHasherDefault<FastHasher>>,
}

fn run_batch<D: Domain>(
    inner: &Inner<D>,
    batch: Vec<Box<dyn Job>>,
    cache: &mut Cache,
    ids: &mut IdGenerator,
    deferred: &mut Vec<Box<dyn Job>>,
    scratch: &mut Scratch,
) -> (Jobs, Option<Error>) {
    let store = &inner.store;
    let now = Timestamp::now();
    let started = Instant::now();
    let mut decided: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    {
        let txn = match store.read() {
            Ok(txn) => txn,
            Err(error) => {
                return (batch, Some(error));
            }
        };
        scratch.command_ids.clear();
        let mut cx = DecideCx { store, txn: &txn, cache, now };
        for mut job in batch {
            // A second command with the same id waits for the next batch, where it sees the first's record.
            if let Some(command_id) = job.command_id() {
                if !scratch.command_ids.insert(command_id) {
                    deferred.push(job);
                    continue;
                }
            }
            job.decide(&mut cx);
            decided.push(job);
        }
    }
    let Scratch { dirty, buffer, views, .. } = scratch;
    let decided_at = Instant::now();
    let mut written_at = decided_at;
    let result = store.write(|txn| {
        // A retry (after the map grew) starts from the committed positions again.
        for slot in dirty.drain(..) {
            cache.slot(slot).batch_last_seq = None;
        }
        views.rows.clear();
        let next_seq = store.last_seq(txn)? + 1;
        let mut cx = WriteCx { store, txn, cache, next_seq, now, ids, dirty, buffer, views };
        for job in decided.iter_mut() {
            job.write(&mut cx)?;
        }
        let WriteCx { txn, dirty, buffer, cache, views, .. } = cx;
        views.flush(store, txn)?;
        // Each touched instance's record once per batch, however many of its commands the batch held.
        for &slot in dirty.iter() {
            let (key, cached) = &cache.slots[slot as usize];
            let last_seq = cached.batch_last_seq.expect("a dirty instance has a last event in this batch");
            let state = (cached.encode)(&*cached.state);
            buffer.clear();
            buffer.extend_from_slice(&format::encode_aggregate(cached.version, last_seq, &state));
            store.put_aggregate(txn, key, buffer)?;
        }
        written_at = Instant::now();
        Ok(())
    });
    let stats = &inner.stats;
    stats.decide_us.fetch_add((decided_at - started).as_micros() as u64, Ordering::Relaxed);
    stats.write_us.fetch_add(written_at.saturating_duration_since(decided_at).as_micros() as u64, Ordering::Relaxed);
    stats.commit_us.fetch_add(written_at.elapsed().as_micros() as u64, Ordering::Relaxed);
    match result {
        Ok(()) => {
            for slot in dirty.drain(..) {
                let cached = cache.slot(slot);
                cached.last_seq = cached.batch_last_seq.take().expect("a dirty instance has a last event");
            }
            inner.stats.batches.fetch_add(1, Ordering::Relaxed);
            inner.stats.commands.fetch_add(decided.len() as u64, Ordering::Relaxed);
            // A full signal channel means the runner has a wake-up pending already.
            let _ = inner.commits.try_send(());
            (decided, None)
        }
        Err(error) => {
            // The cache ran ahead of the store; failures are rare, so forget it all and reload from records.
            cache.clear();
            dirty.clear();
            inner.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            (decided, Some(error))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The process runner.

/// A reaction's command in flight, waiting for its outcome.
type Waiter = Box<dyn FnOnce() -> Result<bool, Error>>;

struct ReactionSender<'a, D: Domain> {
    inner: &'a Inner<D>,
    meta: CommandMeta,
}

impl<D: Domain> CommandVisitor for ReactionSender<'_, D> {
    type Output = Result<Waiter, Error>;
    fn visit<A: Aggregate>(self, id: A::Id, command: A::Command) -> Self::Output {
        let pending = self.inner.submit::<A>(id, command, self.meta)?;
        Ok(Box::new(move || pending.wait().map(|outcome| outcome.is_accepted())))
    }
}

/// How long the runner sleeps when idle or after an error before it looks again.
const PROCESS_IDLE_POLL: Duration = Duration::from_millis(20);

/// Progress is stored at least this often while events that need no reaction go by (a crash then re-reads at
/// most this much of the log, which sends nothing).
const PROGRESS_PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// Where the runner is: handled in memory, and stored.
struct Progress {
    handled: u64,
    stored: u64,
    stored_at: Instant,
}

fn run_processes<D: Domain>(inner: &Inner<D>, commits: &Receiver<()>) {
    let stored = match inner.store.read().and_then(|txn| inner.store.progress(&txn)) {
        Ok(stored) => stored,
        Err(error) => {
            *inner.process_error.lock() = Some(error);
            return;
        }
    };
    inner.progress.store(stored, Ordering::Release);
    let mut progress = Progress { handled: stored, stored, stored_at: Instant::now() };
    while !inner.processes_stop.load(Ordering::Acquire) {
        match process_round(inner, &mut progress) {
            Ok(true) => {}
            Ok(false) => {
                let _ = commits.recv_timeout(PROCESS_IDLE_POLL);
            }
            Err(error) => {
                if matches!(error, Error::ShuttingDown) {
                    break;
                }
                *inner.process_error.lock() = Some(error);
                std::thread::sleep(PROCESS_IDLE_POLL);
            }
        }
    }
    // Events handled without reactions since the last store: store them now, so a restart skips them.
    if progress.handled > progress.stored {
        let store = &inner.store;
        if let Err(error) = store.write_durable(|txn| Ok(store.put_progress(txn, progress.handled)?)) {
            *inner.process_error.lock() = Some(error);
        }
    }
}

/// Reacts to the next events after the handled ones; returns whether there were any. When a round sends
/// reactions, progress is stored only after every one is answered, so a crash re-sends them (with the same
/// command ids, which makes the effect exactly once). Rounds that send nothing store progress lazily.
fn process_round<D: Domain>(inner: &Inner<D>, progress: &mut Progress) -> Result<bool, Error> {
    let store = &inner.store;
    let mut round: Vec<(Reaction<D::Command>, u128)> = Vec::new();
    let last = {
        let txn = store.read()?;
        store.scan_events(&txn, progress.handled, inner.config.process_batch_max as usize, |event| {
            let entry = inner.registry.by_tag(event.envelope.tag, event.seq)?;
            // Only events some process handles (as the model's metadata lists them) are decoded.
            if !entry.handled_events.contains(&event.envelope.event_name) {
                return Ok(());
            }
            match (entry.react)(&event.to_owned()) {
                Ok(reactions) => {
                    let reactions = reactions
                        .downcast::<Vec<Reaction<D::Command>>>()
                        .expect("the registry checked that every aggregate belongs to this domain");
                    round.extend(reactions.into_iter().map(|r| (r, event.envelope.correlation_id)));
                }
                // A process's arithmetic overflowed: reported, and nothing is sent for this event.
                Err(error) => *inner.process_error.lock() = Some(error),
            }
            Ok(())
        })?
    };
    if last == progress.handled {
        return Ok(false);
    }
    let sends = !round.is_empty();
    for _depth in 0..inner.config.process_depth_max {
        if round.is_empty() {
            break;
        }
        let mut next = Vec::new();
        let mut waiting = Vec::with_capacity(round.len());
        for (reaction, correlation_id) in round {
            let meta = CommandMeta {
                command_id: Some(reaction.command_id),
                correlation_id: Some(correlation_id),
                expected_version: None,
                occurred_at: None,
            };
            match send_reaction(inner, &reaction, meta) {
                Ok(waiter) => waiting.push((waiter, reaction, correlation_id)),
                Err(error) if is_permanent(&error) => *inner.process_error.lock() = Some(error),
                Err(error) => return Err(error),
            }
        }
        for (waiter, reaction, correlation_id) in waiting {
            match waiter_result(inner, waiter, &reaction, correlation_id) {
                Ok(true) => {}
                Ok(false) => next.extend(reaction.on_rejected.into_iter().map(|r| (r, correlation_id))),
                // A reaction that can never run is reported and skipped, so it does not stop every process.
                Err(error) if is_permanent(&error) => *inner.process_error.lock() = Some(error),
                Err(error) => return Err(error),
            }
        }
        round = next;
    }
    progress.handled = last;
    if sends || progress.stored_at.elapsed() >= PROGRESS_PERSIST_INTERVAL {
        store.write(|txn| Ok(store.put_progress(txn, last)?))?;
        progress.stored = last;
        progress.stored_at = Instant::now();
    }
    inner.progress.store(last, Ordering::Release);
    Ok(true)
}

/// Errors a retry cannot fix (the reaction names an unknown aggregate, bad parameters...), as opposed to
/// the store failing, a full map or an overload, which the runner retries.
fn is_permanent(error: &Error) -> bool {
    matches!(
        error,
        Error::UnknownAggregate { .. }
            | Error::InvalidCommand { .. }
            | Error::CommandIdReused { .. }
            | Error::WrongVersion { .. }
            | Error::Replay { .. }
    )
}

/// Waits for one reaction's outcome, re-sending it while the engine is overloaded.
fn waiter_result<D: Domain>(
    inner: &Inner<D>,
    waiter: Waiter,
    reaction: &Reaction<D::Command>,
    correlation_id: u128,
) -> Result<bool, Error> {
    let mut outcome = waiter();
    // Bounded by shutdown: an overloaded engine is retried until it recovers or the runner is stopped.
    while let Err(Error::Overloaded { retry_after_ms }) = outcome {
        if inner.processes_stop.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        std::thread::sleep(Duration::from_millis(retry_after_ms.min(100)));
        let meta = CommandMeta {
            command_id: Some(reaction.command_id),
            correlation_id: Some(correlation_id),
            expected_version: None,
            occurred_at: None,
        };
        outcome = send_reaction(inner, reaction, meta).and_then(|waiter| waiter());
    }
    outcome
}

fn send_reaction<D: Domain>(
    inner: &Inner<D>,
    reaction: &Reaction<D::Command>,
    meta: CommandMeta,
) -> Result<Waiter, Error> {
    loop {
        match reaction.command.clone().dispatch(ReactionSender { inner, meta }) {
            Err(Error::Overloaded { retry_after_ms }) => {
                if inner.processes_stop.load(Ordering::Acquire) {
                    return Err(Error::ShuttingDown);
                }
                std::thread::sleep(Duration::from_millis(retry_after_ms.min(100)));
            }
            other => return other,
        }
    }
}
