//! The LMDB store: one environment, its tables, the checked meta record, and typed reads and writes.
//!
//! Tables (all byte keys and values):
//! - `meta`: store format version, domain name, schema fingerprint, process progress, checkpoint.
//! - `log`: big-endian `u64` sequence number (from 1, gapless) to an event envelope; appended with `APPEND`,
//!   so a batch dirties only the rightmost pages.
//! - `aggregates`: type tag (`u16` big-endian) and key bytes to the instance's record (state, version, last
//!   event). Written behind the log, at checkpoints (see `crate::unflushed`): between two, a committed record
//!   lives in memory and every read here looks there first. An instance's events are found by following the
//!   `previous_seq` links in the log from the record's `last_seq`, so recording an event needs no index write.
//! - `commands`: command id (`u128` big-endian) to what it led to (idempotency).
//! - `view:NAME`: one table per view, rows as generated code encodes them; written behind the log like records.
//!
//! LMDB allows one write transaction at a time per environment; callers that write serialize on it. A full map
//! grows (doubling up to `map_size_max_bytes`) while no transaction is open: every transaction holds the read
//! side of `gate`, and growing takes the write side.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, MdbError, PutFlags, RoTxn, RwTxn, WithoutTls};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use crate::error::Error;
use crate::format::{self, AggregateRecord, CommandRecord, StoredEvent, StoredEventRef};
use crate::unflushed::{Staged, StepPlan, Unflushed};

/// A checkpoint step, planned (see [`StepPlan`]).
pub(crate) type CheckpointStep = StepPlan;

/// A view row as stored: the row's bytes, then the last event folded into it (`u64` little-endian), which a
/// replay after a crash checks (see `crate::unflushed`). `None` if the value is too short to hold it.
pub(crate) fn split_row(value: &[u8]) -> Option<(&[u8], u64)> {
    let at = value.len().checked_sub(8)?;
    let (row, seq) = value.split_at(at);
    Some((row, u64::from_le_bytes(seq.try_into().ok()?)))
}

type Table = Database<Bytes, Bytes>;

/// A view row as stored: key bytes and row bytes.
pub type ViewRow = (Vec<u8>, Vec<u8>);

/// Sizes the store is opened with.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The initial map size (LMDB's size limit; the file grows as data is written, not to this size).
    pub map_size_bytes: u64,
    /// A full map doubles up to this size; beyond it a batch fails with [`Error::MapFull`].
    pub map_size_max_bytes: u64,
    /// Concurrent read transactions (threads reading at once, plus the writers' decide phase).
    pub max_readers: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { map_size_bytes: 1 << 30, map_size_max_bytes: 1 << 40, max_readers: 126 }
    }
}

const META_FORMAT: &[u8] = b"format";
const META_DOMAIN: &[u8] = b"domain";
const META_FINGERPRINT: &[u8] = b"fingerprint";
const META_PROGRESS: &[u8] = b"process-progress";
const META_SCHEMA: &[u8] = b"schema";
const META_CHECKPOINT: &[u8] = b"checkpoint";
/// The first event whose process reactions are sent with time-prefixed command ids (`u64` little-endian).
const META_REACTION_IDS: &[u8] = b"reaction-ids-time-prefixed-from";
/// The Unix time in milliseconds from which a client's UUIDv7 idempotency key is recorded under a
/// time-prefixed command id (`u64` little-endian; see [`Store::key_ids_time_prefixed_from_ms`]).
const META_KEY_IDS: &[u8] = b"key-ids-time-prefixed-from-ms";

/// How long after an upgrade to format 6 a client's UUIDv7 idempotency key starts to get a time-prefixed id:
/// a request sent before the upgrade (whose key is older) and retried after it must keep its hashed id, and a
/// client's clock may run ahead of the server's.
pub const KEY_IDS_UPGRADE_MARGIN_MS: u64 = 24 * 60 * 60 * 1_000;

/// The layout of the store as a whole (the meta record's `format`). Version 6 records, in the meta record
/// `key-ids-time-prefixed-from-ms`, from when a client's idempotency key that is a UUIDv7 is recorded under a
/// time-prefixed command id (the key's 48-bit millisecond time, then the low 80 bits of its hashed id: see
/// [`Store::key_ids_time_prefixed_from_ms`]), so that such keys are not random inserts into `commands`: 0 in a
/// store created with version 6; [`KEY_IDS_UPGRADE_MARGIN_MS`] after the moment an older store is marked
/// version 6, so that a request sent before (its retry must keep the hashed id it was recorded under) is not
/// taken for a new one. Version 5 sends process reactions with
/// time-prefixed command ids ([`crate::aggregate::time_prefixed_command_id`]), so their idempotency records
/// are not random inserts, for the events from the one its meta record `reaction-ids-time-prefixed-from`
/// names: 1 in a store created with version 5; one past the last event in an older store when it is marked
/// version 5, because the process runner may send the reactions to its earlier events again, and they must
/// keep the ids they were first sent with (or they would run twice). Version 4 packs consecutive events into
/// one log entry (see [`Store::append_events`]). Version 3 writes records and view rows behind the log, keeps
/// the `checkpoint` they all hold, and stores each view row with the last event folded into it; its log holds
/// one event per entry, which version 4 reads as it is, so a version 3 store is only marked version 4 (now 6)
/// when opened (a version 3 binary then refuses it, rather than misread its packs). A version 1 store wrote
/// records and rows with every batch: it is opened as checkpointed at its last event, its rows are rewritten
/// with that event, and it is marked the current version too. Version 2 (records behind the log in hashed
/// stripes, rows without their event) lived one day in development and is refused. Records the runtime
/// encodes carry their own version ([`format::FORMAT_VERSION`]).
pub const STORE_FORMAT_VERSION: u32 = 6;

/// Decides whether a store of another schema (its stored description given) is opened for migration: `Ok`,
/// or why not (see [`crate::schema::upcast_plan`]).
pub type AcceptSchema<'a> = dyn FnMut(&[String]) -> Result<(), Vec<String>> + 'a;

/// Why [`Store::open`] refuses a store of another schema: only the engine migrates, with upcasters.
const NO_UPCASTERS: &str = "no upcasters are configured (engine::Config::upcasters)";

/// Map sizes are kept at a multiple of this (a multiple of every page size LMDB runs with).
const MAP_SIZE_GRANULE_BYTES: u64 = 1 << 20;

pub struct Store {
    env: Env<WithoutTls>,
    /// Every transaction holds the read side; growing the map and forgetting flushed entries take the write side.
    gate: RwLock<()>,
    /// Records and rows committed since the checkpoint: every read looks here before the tables.
    unflushed: RwLock<Unflushed>,
    /// One checkpoint at a time.
    checkpointing: Mutex<()>,
    map_size_bytes: Mutex<u64>,
    config: StoreConfig,
    meta: Table,
    log: Table,
    aggregates: Table,
    commands: Table,
    views: Vec<(&'static str, Table)>,
    /// Counts the view tables cleared: a copy of view rows kept outside the store (the writers' row cache)
    /// taken at another count may hold rows the store no longer has.
    views_cleared: AtomicU64,
    /// The first event whose process reactions are sent with time-prefixed command ids (see
    /// `STORE_FORMAT_VERSION`).
    reaction_ids_time_prefixed_from: u64,
    /// See [`Store::key_ids_time_prefixed_from_ms`].
    key_ids_time_prefixed_from_ms: u64,
}

/// A read transaction: a consistent snapshot that never blocks writers.
pub struct ReadTxn<'s> {
    // Dropped before the gate guard: the transaction must end before the map may be resized.
    txn: RoTxn<'s, WithoutTls>,
    _gate: RwLockReadGuard<'s, ()>,
}

impl<'s> std::ops::Deref for ReadTxn<'s> {
    type Target = RoTxn<'s, WithoutTls>;
    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

/// Times a read transaction is retried after adopting a map size another process grew.
const MAP_RESIZED_RETRIES_MAX: u32 = 8;
/// How long adopting a new map size waits for this process's transactions to end.
const MAP_RESIZE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn round_up_granule(size: u64) -> u64 {
    size.div_ceil(MAP_SIZE_GRANULE_BYTES).max(1) * MAP_SIZE_GRANULE_BYTES
}

fn is_map_full(error: &heed::Error) -> bool {
    matches!(error, heed::Error::Mdb(MdbError::MapFull))
}

/// A write failed inside [`Store::write`]: the map was full (retried after growing) or something else.
pub enum WriteError {
    MapFull,
    Other(Error),
}

impl From<heed::Error> for WriteError {
    fn from(error: heed::Error) -> Self {
        if is_map_full(&error) {
            WriteError::MapFull
        } else {
            WriteError::Other(error.into())
        }
    }
}

impl From<Error> for WriteError {
    fn from(error: Error) -> Self {
        WriteError::Other(error)
    }
}

impl Store {
    /// Opens (or creates) the store at `path` for domain `domain`, refusing one written by another schema.
    /// `schema` describes the stored format (see [`crate::schema::describe`]), to name what changed.
    pub fn open(
        path: &Path,
        config: StoreConfig,
        domain: &'static str,
        fingerprint: u64,
        schema: &[String],
        views: &[&'static str],
    ) -> Result<Store, Error> {
        let mut refuse = |_: &[String]| Err(vec![NO_UPCASTERS.to_owned()]);
        Self::open_evolving(path, config, domain, fingerprint, schema, views, &mut refuse).map(|(store, _)| store)
    }

    /// Like [`Store::open`], but a store written by another schema of the same domain is opened if `accept`
    /// (given the stored description) says the caller will migrate it; its description is returned then. The
    /// meta record keeps the stored schema until the migration's transaction calls [`Store::put_schema`], so a
    /// crash before that leaves a store the next open migrates again. `accept` returns why not, otherwise.
    pub fn open_evolving(
        path: &Path,
        config: StoreConfig,
        domain: &'static str,
        fingerprint: u64,
        schema: &[String],
        views: &[&'static str],
        accept: &mut AcceptSchema<'_>,
    ) -> Result<(Store, Option<Vec<String>>), Error> {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::Store { message: format!("cannot create {}: {e}", path.display()) })?;
        let map_size_bytes = round_up_granule(config.map_size_bytes);
        let map_size_max_bytes = round_up_granule(config.map_size_max_bytes).max(map_size_bytes);
        let max_dbs = 4 + u32::try_from(views.len()).map_err(|_| Error::Store { message: "too many views".into() })?;
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options
            .map_size(usize::try_from(map_size_bytes).map_err(|_| Error::Store { message: "map too large".into() })?)
            .max_dbs(max_dbs)
            .max_readers(config.max_readers);
        // SAFETY: this flag trades nothing in integrity. NO_MEM_INIT only skips zeroing the unused part of pages
        // LMDB allocates before writing them: stale heap bytes of this process may reach unused space in the
        // file, never a record. Every commit is durable when it returns (LMDB's default: its data pages, then its
        // meta page, are synced). That costs a second, one-page sync per commit, and lets a batch be answered
        // right after its own commit instead of after the next one (`NO_META_SYNC` did that): over HTTP, where
        // batches are small and the callers wait for their answer, that cycle was the latency.
        unsafe { options.flags(EnvFlags::NO_MEM_INIT) };
        // SAFETY: heed requires that the environment is not opened twice in this process (heed itself refuses a
        // second open of the same path while the first is alive) and that no other code maps or truncates the
        // file; the store owns the directory.
        let env = unsafe { options.open(path) }?;
        // Reader slots of a process that died (kill -9) stay taken until checked; free them now.
        env.clear_stale_readers()?;
        let mut wtxn = env.write_txn()?;
        let meta: Table = env.create_database(&mut wtxn, Some("meta"))?;
        let log: Table = env.create_database(&mut wtxn, Some("log"))?;
        let aggregates: Table = env.create_database(&mut wtxn, Some("aggregates"))?;
        let commands: Table = env.create_database(&mut wtxn, Some("commands"))?;
        let mut view_tables = Vec::with_capacity(views.len());
        for &view in views {
            let table: Table = env.create_database(&mut wtxn, Some(&format!("view:{view}")))?;
            view_tables.push((view, table));
        }
        let shown = path.display().to_string();
        let mut evolving = None;
        match meta.get(&wtxn, META_FORMAT)? {
            None => {
                meta.put(&mut wtxn, META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes())?;
                meta.put(&mut wtxn, META_DOMAIN, domain.as_bytes())?;
                meta.put(&mut wtxn, META_FINGERPRINT, &fingerprint.to_le_bytes())?;
                meta.put(&mut wtxn, META_SCHEMA, schema.join("\n").as_bytes())?;
                meta.put(&mut wtxn, META_CHECKPOINT, &0u64.to_le_bytes())?;
                meta.put(&mut wtxn, META_REACTION_IDS, &1u64.to_le_bytes())?;
                meta.put(&mut wtxn, META_KEY_IDS, &0u64.to_le_bytes())?;
            }
            Some(bytes) => {
                let stored = <[u8; 4]>::try_from(bytes).map(u32::from_le_bytes).unwrap_or(u32::MAX);
                if stored == 1 {
                    // Version 1 wrote every record and row with its batch: they hold the whole log.
                    // Its log holds one event per entry.
                    let last_seq = match log.last(&wtxn)? {
                        None => 0,
                        Some((key, _)) => seq_from_key(key)?,
                    };
                    for (_, table) in &view_tables {
                        let mut rows = Vec::new();
                        for entry in table.iter(&wtxn)? {
                            let (key, row) = entry?;
                            rows.push((key.to_vec(), [row, &last_seq.to_le_bytes()].concat()));
                        }
                        for (key, row) in rows {
                            table.put(&mut wtxn, &key, &row)?;
                        }
                    }
                    meta.put(&mut wtxn, META_CHECKPOINT, &last_seq.to_le_bytes())?;
                    meta.put(&mut wtxn, META_REACTION_IDS, &(last_seq + 1).to_le_bytes())?;
                    meta.put(&mut wtxn, META_KEY_IDS, &key_ids_upgraded_from_ms().to_le_bytes())?;
                    meta.put(&mut wtxn, META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes())?;
                } else if stored == 3 || stored == 4 {
                    // Reactions to the events it holds keep their hashed ids (see `STORE_FORMAT_VERSION`).
                    let last_seq = match log.last(&wtxn)? {
                        None => 0,
                        Some((key, bytes)) => {
                            let first = seq_from_key(key)?;
                            first + log_entry(first, bytes)?.len() - 1
                        }
                    };
                    meta.put(&mut wtxn, META_REACTION_IDS, &(last_seq + 1).to_le_bytes())?;
                    meta.put(&mut wtxn, META_KEY_IDS, &key_ids_upgraded_from_ms().to_le_bytes())?;
                    meta.put(&mut wtxn, META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes())?;
                } else if stored == 5 {
                    // Its clients' keys keep their hashed ids for a while (see `STORE_FORMAT_VERSION`).
                    meta.put(&mut wtxn, META_KEY_IDS, &key_ids_upgraded_from_ms().to_le_bytes())?;
                    meta.put(&mut wtxn, META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes())?;
                } else if stored != STORE_FORMAT_VERSION {
                    return Err(Error::IncompatibleFormat { path: shown, stored, supported: STORE_FORMAT_VERSION });
                }
                let stored_domain =
                    meta.get(&wtxn, META_DOMAIN)?.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                let stored_fingerprint = meta
                    .get(&wtxn, META_FINGERPRINT)?
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_le_bytes)
                    .unwrap_or(0);
                if stored_domain != domain || stored_fingerprint != fingerprint {
                    let stored_schema: Vec<String> = meta
                        .get(&wtxn, META_SCHEMA)?
                        .map(|b| String::from_utf8_lossy(b).lines().map(str::to_owned).collect())
                        .unwrap_or_default();
                    let changes = if stored_schema.is_empty() {
                        Vec::new()
                    } else {
                        crate::schema::changes(&stored_schema, schema)
                    };
                    let verdict = if stored_domain != domain {
                        Err(vec!["it is another domain".to_owned()])
                    } else if stored_schema.is_empty() {
                        Err(vec!["the store does not record its schema".to_owned()])
                    } else {
                        accept(&stored_schema)
                    };
                    match verdict {
                        Ok(()) => evolving = Some(stored_schema),
                        Err(problems) => {
                            return Err(Error::IncompatibleSchema {
                                path: shown,
                                domain,
                                fingerprint,
                                stored_domain,
                                stored_fingerprint,
                                changes: changes.into(),
                                problems: problems.into(),
                            })
                        }
                    }
                }
            }
        }
        let checkpoint_seq = read_checkpoint(&meta, &wtxn)?;
        let reaction_ids_time_prefixed_from = read_u64(&meta, &wtxn, META_REACTION_IDS)?;
        let key_ids_time_prefixed_from_ms = read_u64(&meta, &wtxn, META_KEY_IDS)?;
        wtxn.commit()?;
        let config = StoreConfig { map_size_bytes, map_size_max_bytes, max_readers: config.max_readers };
        // LMDB maps an existing file at least at the size recorded in it, which may be larger than asked.
        let map_size_bytes = (env.info().map_size as u64).max(map_size_bytes);
        let store = Store {
            env,
            gate: RwLock::new(()),
            unflushed: RwLock::new({
                let mut unflushed = Unflushed::default();
                unflushed.reset(checkpoint_seq, checkpoint_seq);
                unflushed
            }),
            checkpointing: Mutex::new(()),
            map_size_bytes: Mutex::new(map_size_bytes),
            config,
            meta,
            log,
            aggregates,
            commands,
            views: view_tables,
            views_cleared: AtomicU64::new(0),
            reaction_ids_time_prefixed_from,
            key_ids_time_prefixed_from_ms,
        };
        Ok((store, evolving))
    }

    /// The first event whose process reactions are sent with time-prefixed command ids
    /// ([`crate::aggregate::time_prefixed_command_id`]); the reactions to earlier ones keep their hashed ids.
    pub fn reaction_ids_time_prefixed_from(&self) -> u64 {
        self.reaction_ids_time_prefixed_from
    }

    /// The Unix time in milliseconds from which a client's idempotency key that is a UUIDv7 is recorded under
    /// a time-prefixed command id ([`crate::aggregate::key_time_prefixed_command_id`]); a key with an earlier
    /// time keeps its hashed id. 0 for a store created with format 6 (see `STORE_FORMAT_VERSION`).
    pub fn key_ids_time_prefixed_from_ms(&self) -> u64 {
        self.key_ids_time_prefixed_from_ms
    }

    /// Records the schema the store now holds (the last step of a migration, in its transaction).
    pub fn put_schema(&self, txn: &mut RwTxn, fingerprint: u64, schema: &[String]) -> Result<(), heed::Error> {
        self.meta.put(txn, META_FINGERPRINT, &fingerprint.to_le_bytes())?;
        self.meta.put(txn, META_SCHEMA, schema.join("\n").as_bytes())
    }

    /// A read transaction. Do not open a write (or a second read) on the same thread while holding it.
    ///
    /// A store opened read-only beside a server (`Engine::open_read_only`) sees the server's map grow: LMDB then
    /// refuses the transaction (`MDB_MAP_RESIZED`) until this process maps the file at its new size too.
    pub fn read(&self) -> Result<ReadTxn<'_>, Error> {
        // Bounded: the other process may grow the map again between adopting its size and the retry.
        for _ in 0..MAP_RESIZED_RETRIES_MAX {
            let gate = self.gate.read_recursive();
            match self.env.read_txn() {
                Ok(txn) => return Ok(ReadTxn { txn, _gate: gate }),
                Err(heed::Error::Mdb(MdbError::MapResized)) => {
                    drop(gate);
                    self.adopt_map_size()?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(Error::Store { message: "another process kept growing the store's map; try again".into() })
    }

    /// Maps the file at the size another process gave it.
    fn adopt_map_size(&self) -> Result<(), Error> {
        // A thread that already holds a read transaction would wait for itself: give up after a while instead.
        let Some(_gate) = self.gate.try_write_for(MAP_RESIZE_WAIT) else {
            return Err(Error::Store {
                message: "another process grew the store's map while transactions were open here; try again".into(),
            });
        };
        // SAFETY: LMDB allows resizing while no transaction is active in this process. Every transaction holds
        // the read side of `gate` for its whole life and we hold the write side, so none is active. A size of 0
        // makes LMDB take the size the other process set.
        unsafe { self.env.resize(0) }?;
        *self.map_size_bytes.lock() = self.env.info().map_size as u64;
        Ok(())
    }

    /// Runs `body` in one write transaction and commits it durably. If the map fills up, the transaction is
    /// aborted, the map grows, and `body` runs again from the start (so it must not consume its input).
    pub fn write<T>(&self, mut body: impl FnMut(&mut RwTxn<'_>) -> Result<T, WriteError>) -> Result<T, Error> {
        // Bounded: each retry doubles the map, which stops at the maximum.
        for _ in 0..64 {
            let attempt = {
                let _gate = self.gate.read_recursive();
                let mut txn = self.env.write_txn()?;
                match body(&mut txn) {
                    Ok(value) => txn.commit().map(|()| value).map_err(WriteError::from),
                    Err(error) => {
                        txn.abort();
                        Err(error)
                    }
                }
            };
            match attempt {
                Ok(value) => return Ok(value),
                Err(WriteError::Other(error)) => return Err(error),
                Err(WriteError::MapFull) => self.grow()?,
            }
        }
        unreachable!("the map doubled 64 times without reaching its maximum")
    }

    fn grow(&self) -> Result<(), Error> {
        let _gate = self.gate.write();
        let mut size = self.map_size_bytes.lock();
        if *size >= self.config.map_size_max_bytes {
            return Err(Error::MapFull { size_bytes: *size, size_max_bytes: self.config.map_size_max_bytes });
        }
        let grown = round_up_granule(size.saturating_mul(2)).min(self.config.map_size_max_bytes);
        let grown_usize = usize::try_from(grown).map_err(|_| Error::Store { message: "map too large".into() })?;
        // SAFETY: LMDB allows resizing while no transaction is active in this process. Every transaction holds
        // the read side of `gate` for its whole life and we hold the write side, so none is active.
        unsafe { self.env.resize(grown_usize) }?;
        *size = grown;
        Ok(())
    }

    pub fn map_size_bytes(&self) -> u64 {
        *self.map_size_bytes.lock()
    }

    // ---- the log ----

    /// The sequence number of the last event, 0 for an empty log.
    pub fn last_seq(&self, txn: &RoTxn) -> Result<u64, Error> {
        match self.log.last(txn)? {
            None => Ok(0),
            Some((key, bytes)) => {
                let first = seq_from_key(key)?;
                Ok(first + log_entry(first, bytes)?.len() - 1)
            }
        }
    }

    /// The log entry that holds event `seq` if there is one: the last entry starting at or before it, as
    /// (its first event's sequence number, its bytes).
    fn log_entry_at<'txn>(&self, txn: &'txn RoTxn, seq: u64) -> Result<Option<(u64, &'txn [u8])>, Error> {
        match self.log.get_lower_than_or_equal_to(txn, &seq.to_be_bytes())? {
            None => Ok(None),
            Some((key, bytes)) => Ok(Some((seq_from_key(key)?, bytes))),
        }
    }

    pub fn event(&self, txn: &RoTxn, seq: u64) -> Result<Option<StoredEvent>, Error> {
        let Some((first, bytes)) = self.log_entry_at(txn, seq)? else { return Ok(None) };
        let Some(record) = log_entry(first, bytes)?.nth((seq - first) as usize) else { return Ok(None) };
        format::decode_event(seq, record).map(Some).map_err(|e| Error::corrupt("log", seq.to_string(), e))
    }

    /// Up to `limit` events after `since`, in order, checked to be gapless.
    pub fn events_after(&self, txn: &RoTxn, since: u64, limit: usize) -> Result<Vec<StoredEvent>, Error> {
        let mut out = Vec::with_capacity(limit.min(4096));
        self.scan_events(txn, since, limit, |event| {
            out.push(event.to_owned());
            Ok(())
        })?;
        Ok(out)
    }

    /// Visits up to `limit` events after `since` in place, in order, checked to be gapless; returns the last
    /// sequence number visited (`since` if none).
    pub fn scan_events(
        &self,
        txn: &RoTxn,
        since: u64,
        limit: usize,
        mut visit: impl FnMut(StoredEventRef<'_>) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let mut expected = since.saturating_add(1);
        // The entry holding the first event wanted may start before it.
        let start = match self.log_entry_at(txn, expected)? {
            Some((first, _)) => first,
            None => expected,
        };
        let start_key = start.to_be_bytes();
        let range = (std::ops::Bound::Included(&start_key[..]), std::ops::Bound::Unbounded);
        let mut visited = 0;
        // Bounded by `limit`: each entry visits at least one event, or is the first one, which may end before.
        for entry in self.log.range(txn, &range)? {
            if visited >= limit {
                break;
            }
            let (key, bytes) = entry?;
            let first = seq_from_key(key)?;
            let skip = if first == start { expected.saturating_sub(first) } else { 0 };
            if first + skip != expected {
                let message = if first > expected {
                    format!("the log has a gap: event {expected} is missing, next is {first}")
                } else {
                    format!("the log's entries overlap: an entry starts at {first}, after event {}", expected - 1)
                };
                return Err(Error::Corrupt { table: "log", at: expected.to_string(), message });
            }
            for record in log_entry(first, bytes)?.skip(skip as usize) {
                if visited >= limit {
                    break;
                }
                let event = format::decode_event_ref(expected, record)
                    .map_err(|e| Error::corrupt("log", expected.to_string(), e))?;
                visit(event)?;
                expected += 1;
                visited += 1;
            }
        }
        Ok(expected - 1)
    }

    /// Appends events `first_seq..` to the log: their records are `bytes` cut at `ends` (each record's end).
    /// Consecutive records are packed into entries of up to `LOG_PACK_BYTES_MAX` bytes, each keyed by its first
    /// event, so the log takes one LMDB append per pack instead of one per event; a record that fills a pack
    /// alone is stored as it is. `pack` is a reusable buffer.
    pub fn append_events(
        &self,
        txn: &mut RwTxn,
        first_seq: u64,
        bytes: &[u8],
        ends: &[usize],
        pack: &mut Vec<u8>,
    ) -> Result<(), heed::Error> {
        let record = |index: usize| &bytes[if index == 0 { 0 } else { ends[index - 1] }..ends[index]];
        let mut index = 0;
        // Bounded: each round stores at least one record.
        while index < ends.len() {
            let mut size = format::LOG_PACK_HEADER_BYTES + format::LOG_PACK_LENGTH_BYTES + record(index).len();
            let mut end = index + 1;
            while end < ends.len() && end - index < usize::from(u16::MAX) {
                let grown = size + format::LOG_PACK_LENGTH_BYTES + record(end).len();
                if grown > format::LOG_PACK_BYTES_MAX {
                    break;
                }
                size = grown;
                end += 1;
            }
            let key = (first_seq + index as u64).to_be_bytes();
            if end - index == 1 {
                self.log.put_with_flags(txn, PutFlags::APPEND, &key, record(index))?;
            } else {
                pack.clear();
                format::append_log_pack((index..end).map(record), pack);
                debug_assert_eq!(pack.len(), size);
                self.log.put_with_flags(txn, PutFlags::APPEND, &key, pack)?;
            }
            index = end;
        }
        Ok(())
    }

    /// Overwrites a stored event: only a migration does this, rewriting an event an upcaster changed.
    pub fn replace_event(&self, txn: &mut RwTxn, seq: u64, bytes: &[u8]) -> Result<(), WriteError> {
        let missing = || Error::Corrupt { table: "log", at: seq.to_string(), message: "no such event".into() };
        let (first, entry) = self.log_entry_at(txn, seq)?.ok_or_else(missing)?;
        let records = log_entry(first, entry)?;
        let index = (seq - first) as usize;
        if index as u64 >= records.len() {
            return Err(missing().into());
        }
        if records.len() == 1 {
            self.log.put(txn, &first.to_be_bytes(), bytes)?;
            return Ok(());
        }
        let mut pack = Vec::with_capacity(entry.len() + bytes.len());
        let replaced: Vec<&[u8]> =
            records.enumerate().map(|(at, record)| if at == index { bytes } else { record }).collect();
        format::append_log_pack(replaced.into_iter(), &mut pack);
        self.log.put(txn, &first.to_be_bytes(), &pack)?;
        Ok(())
    }

    /// Every aggregate record's key, for a migration that rewrites them all (not for hot paths).
    pub fn aggregate_keys(&self, txn: &RoTxn) -> Result<Vec<Vec<u8>>, Error> {
        let mut keys = Vec::new();
        for entry in self.aggregates.iter(txn)? {
            keys.push(entry?.0.to_vec());
        }
        Ok(keys)
    }

    // ---- aggregates ----

    /// An instance's record: the committed one, written to the table or not yet (see `crate::unflushed`).
    pub fn aggregate(&self, txn: &RoTxn, key: &[u8]) -> Result<Option<AggregateRecord>, Error> {
        if let Some(entry) = self.unflushed.read().records.get(key) {
            return format::decode_aggregate(&entry.bytes)
                .map(Some)
                .map_err(|e| Error::corrupt("aggregates", format!("{key:02x?}"), e));
        }
        match self.aggregates.get(txn, key)? {
            None => Ok(None),
            Some(bytes) => format::decode_aggregate(bytes)
                .map(Some)
                .map_err(|e| Error::corrupt("aggregates", format!("{key:02x?}"), e)),
        }
    }

    /// Writes a record to the table directly (a migration, a recovery); the writers publish theirs instead
    /// ([`Store::publish`]) and a checkpoint writes them.
    /// An instance's committed record and then a read transaction that holds every event up to the record's
    /// last one (in that order: a record published after the commit of its events is never newer than the log
    /// a transaction opened after it sees).
    pub fn aggregate_then_read(&self, key: &[u8]) -> Result<(Option<AggregateRecord>, ReadTxn<'_>), Error> {
        let unflushed = match self.unflushed.read().records.get(key) {
            Some(entry) => Some(
                format::decode_aggregate(&entry.bytes)
                    .map_err(|e| Error::corrupt("aggregates", format!("{key:02x?}"), e))?,
            ),
            None => None,
        };
        let txn = self.read()?;
        // Missing above: not unflushed, or written out (and forgotten) before this transaction began.
        let record = match unflushed {
            Some(record) => Some(record),
            None => self.aggregate(&txn, key)?,
        };
        Ok((record, txn))
    }

    pub fn put_aggregate(&self, txn: &mut RwTxn, key: &[u8], bytes: &[u8]) -> Result<(), heed::Error> {
        self.aggregates.put(txn, key, bytes)
    }

    /// Every aggregate record, committed ones not yet in the table included, for checks and tools (not for hot
    /// paths).
    pub fn for_each_aggregate(
        &self,
        txn: &RoTxn,
        mut visit: impl FnMut(&[u8], AggregateRecord) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut unflushed: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = {
            let unflushed = self.unflushed.read();
            unflushed.records.iter().map(|(key, entry)| (key.to_vec(), entry.bytes.clone())).collect()
        };
        let decode = |key: &[u8], bytes: &[u8]| {
            format::decode_aggregate(bytes).map_err(|e| Error::corrupt("aggregates", format!("{key:02x?}"), e))
        };
        for entry in self.aggregates.iter(txn)? {
            let (key, bytes) = entry?;
            match unflushed.remove(key) {
                Some(newer) => visit(key, decode(key, &newer)?)?,
                None => visit(key, decode(key, bytes)?)?,
            }
        }
        for (key, bytes) in &unflushed {
            visit(key, decode(key, bytes)?)?;
        }
        Ok(())
    }

    // ---- commands ----

    pub fn command(&self, txn: &RoTxn, command_id: u128) -> Result<Option<CommandRecord>, Error> {
        match self.commands.get(txn, &command_id.to_be_bytes())? {
            None => Ok(None),
            Some(bytes) => format::decode_command(bytes)
                .map(Some)
                .map_err(|e| Error::corrupt("commands", format!("{command_id:#034x}"), e)),
        }
    }

    /// The largest command id with an idempotency record, if any.
    pub fn last_command_id(&self, txn: &RoTxn) -> Result<Option<u128>, Error> {
        match self.commands.last(txn)? {
            None => Ok(None),
            Some((key, _)) => match <[u8; 16]>::try_from(key) {
                Ok(bytes) => Ok(Some(u128::from_be_bytes(bytes))),
                Err(_) => Err(Error::Corrupt {
                    table: "commands",
                    at: format!("{key:02x?}"),
                    message: format!("a key of {} bytes, expected 16", key.len()),
                }),
            },
        }
    }

    pub fn put_command(&self, txn: &mut RwTxn, command_id: u128, bytes: &[u8]) -> Result<(), heed::Error> {
        self.commands.put(txn, &command_id.to_be_bytes(), bytes)
    }

    /// Writes idempotency records given in increasing id order. Those above the table's last key are
    /// appended (`MDB_APPEND`: no search, and a full page is split at its end rather than in its middle, so
    /// time-ordered ids fill their pages: the table was 30% smaller for 2,000,000 of them); the others are
    /// put where they belong.
    pub fn put_commands(&self, txn: &mut RwTxn, sorted: &[(u128, &[u8])]) -> Result<(), WriteError> {
        assert!(sorted.windows(2).all(|pair| pair[0].0 <= pair[1].0), "records come in id order");
        if sorted.is_empty() {
            // Most commits (commands without keys): no read of the table's last key.
            return Ok(());
        }
        let mut last = self.last_command_id(txn)?;
        for &(command_id, bytes) in sorted {
            let key = command_id.to_be_bytes();
            if last.is_none_or(|last| command_id > last) {
                self.commands.put_with_flags(txn, heed::PutFlags::APPEND, &key, bytes)?;
                last = Some(command_id);
            } else {
                self.commands.put(txn, &key, bytes)?;
            }
        }
        Ok(())
    }

    // ---- views ----

    pub(crate) fn view_table(&self, view: &str) -> Option<&Table> {
        self.views.iter().find(|(name, _)| *name == view).map(|(_, table)| table)
    }

    /// The view's position among the store's views.
    pub(crate) fn view_index(&self, view: &str) -> Option<u16> {
        self.views.iter().position(|(name, _)| *name == view).and_then(|i| u16::try_from(i).ok())
    }

    pub(crate) fn view_table_at(&self, index: u16) -> &Table {
        &self.views[usize::from(index)].1
    }

    pub fn view_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.views.iter().map(|(name, _)| *name)
    }

    /// A committed view row, written to its table or not yet.
    pub fn view_get(&self, txn: &RoTxn, view: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let index = self.view_index(view).ok_or_else(|| Error::UnknownView { name: view.to_owned() })?;
        let mut lookup = Vec::with_capacity(2 + key.len());
        lookup.extend_from_slice(&index.to_be_bytes());
        lookup.extend_from_slice(key);
        let mut found = None;
        self.view_row_with(txn, &lookup, |row| found = row.map(<[u8]>::to_vec))?;
        match found {
            None => Ok(None),
            Some(value) => match split_row(&value) {
                Some((row, _)) => Ok(Some(row.to_vec())),
                None => Err(short_row(view, key, &value)),
            },
        }
    }

    /// Reads a committed view row by its lookup key (view index `u16` big-endian, then the row key).
    pub(crate) fn view_row_with(
        &self,
        txn: &RoTxn,
        lookup: &[u8],
        read: impl FnOnce(Option<&[u8]>),
    ) -> Result<(), heed::Error> {
        if let Some(entry) = self.unflushed.read().rows.get(lookup) {
            read(Some(&entry.bytes));
            return Ok(());
        }
        let index = u16::from_be_bytes([lookup[0], lookup[1]]);
        read(self.view_table_at(index).get(txn, &lookup[2..])?);
        Ok(())
    }

    /// Up to `limit` committed rows with keys at or after `from`, in key order.
    pub fn view_range(&self, txn: &RoTxn, view: &str, from: &[u8], limit: usize) -> Result<Vec<ViewRow>, Error> {
        let index = self.view_index(view).ok_or_else(|| Error::UnknownView { name: view.to_owned() })?;
        let table = self.view_table_at(index);
        // An entry is forgotten only while no transaction is open (see `forget_flushed`), so a row missing here
        // is in the table as `txn` sees it, or was committed after `txn` began.
        let unflushed = self.unflushed.read().rows_from(index, from, limit);
        // LMDB refuses an empty key, so "from the start" is an unbounded range.
        let start = if from.is_empty() { std::ops::Bound::Unbounded } else { std::ops::Bound::Included(from) };
        let range = (start, std::ops::Bound::Unbounded);
        // Rows are never deleted, so the first `limit` of the merge are among the table's first `limit` and the
        // first `limit` unflushed ones; an unflushed row is the newer.
        let mut rows: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = std::collections::BTreeMap::new();
        for entry in table.range(txn, &range)?.take(limit) {
            let (key, row) = entry?;
            rows.insert(key.to_vec(), row.to_vec());
        }
        rows.extend(unflushed);
        let mut out = Vec::with_capacity(rows.len().min(limit));
        for (key, value) in rows.into_iter().take(limit) {
            let row = split_row(&value).ok_or_else(|| short_row(view, &key, &value))?.0.to_vec();
            out.push((key, row));
        }
        Ok(out)
    }

    pub fn clear_view(&self, txn: &mut RwTxn, view: &str) -> Result<(), WriteError> {
        let table = self.view_table(view).ok_or_else(|| Error::UnknownView { name: view.to_owned() })?;
        table.clear(txn)?;
        // Counted inside the transaction: a writer's next transaction, which LMDB orders after this one, sees it.
        self.views_cleared.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// How many times a view table was cleared (see [`Store::clear_view`]).
    pub(crate) fn views_cleared(&self) -> u64 {
        self.views_cleared.load(Ordering::SeqCst)
    }

    // ---- write-behind: unflushed records and rows, checkpoints ----

    /// The stored checkpoint: the tables hold every record and row as of this event.
    pub fn checkpoint_seq(&self, txn: &RoTxn) -> Result<u64, Error> {
        read_checkpoint(&self.meta, txn)
    }

    /// Moves the stored checkpoint (in the transaction that wrote the tables up to `seq`).
    pub(crate) fn put_checkpoint(&self, txn: &mut RwTxn, seq: u64) -> Result<(), heed::Error> {
        self.meta.put(txn, META_CHECKPOINT, &seq.to_le_bytes())
    }

    /// Publishes the records and rows a transaction committed, whose events end at `seq`: from now on reads
    /// see them. Called right after the commit, before anyone is answered.
    pub(crate) fn publish(&self, seq: u64, records: &mut Staged, rows: &mut Staged) {
        self.unflushed.write().publish(seq, records, rows);
    }

    /// (events committed since the last checkpoint step, records and rows held in memory).
    pub(crate) fn unflushed_size(&self) -> (u64, usize) {
        let unflushed = self.unflushed.read();
        (unflushed.events_since_step(), unflushed.entries())
    }

    /// A checkpoint step: writes the next `1 / steps` of the unflushed records and rows (`None`: all of them)
    /// to their tables, in key order, and moves the stored checkpoint to what the tables then hold, in one
    /// durable transaction; then runs `also` in it (a view rebuild, given the last published event, which
    /// with `None` is the checkpoint). One at a time. The entries stay in memory until
    /// [`Store::forget_flushed`].
    pub(crate) fn checkpoint_with<T>(
        &self,
        steps: Option<usize>,
        mut also: impl FnMut(&mut RwTxn<'_>, u64) -> Result<T, WriteError>,
    ) -> Result<T, Error> {
        let _one = self.checkpointing.lock();
        let step = self.next_step(steps);
        let value = self.write(|txn| {
            self.write_step(txn, &step)?;
            also(txn, step.seq)
        })?;
        self.stepped(&step);
        Ok(value)
    }

    /// The next checkpoint step, to write in a transaction of the caller's (a batch's commit), or `None` while
    /// another checkpoint runs. The caller holds the guard until [`Store::stepped`].
    pub(crate) fn try_step(&self, steps: usize) -> Option<(parking_lot::MutexGuard<'_, ()>, CheckpointStep)> {
        let one = self.checkpointing.try_lock()?;
        Some((one, self.next_step(Some(steps))))
    }

    fn next_step(&self, steps: Option<usize>) -> CheckpointStep {
        // A consistent cut: publishing takes the write lock, so these are the records and rows of the events
        // up to `seq`, whatever commits after.
        self.unflushed.read().next_step(steps)
    }

    /// Writes a checkpoint step's entries and moves the stored checkpoint, in `txn`.
    pub(crate) fn write_step(&self, txn: &mut RwTxn<'_>, step: &CheckpointStep) -> Result<(), WriteError> {
        let stored = read_checkpoint(&self.meta, txn)?;
        let checkpoint_seq = step.checkpoint_seq;
        assert!(stored <= checkpoint_seq, "the checkpoint moves forward: stored {stored}, now {checkpoint_seq}");
        for (is_row, key, bytes, _) in &step.entries {
            if *is_row {
                let index = u16::from_be_bytes([key[0], key[1]]);
                self.view_table_at(index).put(txn, &key[2..], bytes)?;
            } else {
                self.aggregates.put(txn, key, bytes)?;
            }
        }
        self.meta.put(txn, META_CHECKPOINT, &checkpoint_seq.to_le_bytes())?;
        Ok(())
    }

    /// The transaction that wrote a step committed.
    pub(crate) fn stepped(&self, step: &CheckpointStep) {
        self.unflushed.write().stepped(step);
    }

    /// Drops the entries the tables hold since the last checkpoint, once no transaction is open (one opened
    /// before the checkpoint would not find them in its tables); waits up to `wait` for that. Returns whether
    /// it did.
    pub(crate) fn forget_flushed(&self, wait: std::time::Duration) -> bool {
        let Some(_gate) = self.gate.try_write_for(wait) else { return false };
        self.unflushed.write().forget_flushed();
        true
    }

    /// Drops every unflushed row of view `index`: a rebuild has just written the view whole, newer than them.
    /// A read transaction that began before the rebuild may see the view as of the checkpoint before it.
    pub(crate) fn forget_view_rows(&self, index: u16) {
        self.unflushed.write().forget_rows_of(index);
    }

    /// After replaying the events after the stored checkpoint into the tables (recovery, in the transaction
    /// that moved it to `seq`): nothing is unflushed.
    pub(crate) fn recovered(&self, seq: u64) {
        self.unflushed.write().reset(seq, seq);
    }

    /// A reader's view of the unflushed entries: (the checkpoint they start from, their last event).
    pub(crate) fn unflushed_bounds(&self) -> (u64, u64) {
        let unflushed = self.unflushed.read();
        (unflushed.checkpoint_seq, unflushed.seq)
    }

    /// For a reader beside the store's owner: drops the entries it replayed and starts again from the owner's
    /// `checkpoint_seq`, once no transaction of this process is open (waits up to `wait`). Returns whether it
    /// did.
    pub(crate) fn reset_unflushed(&self, checkpoint_seq: u64, wait: std::time::Duration) -> bool {
        let Some(_gate) = self.gate.try_write_for(wait) else { return false };
        self.unflushed.write().reset(checkpoint_seq, checkpoint_seq);
        true
    }

    // ---- process progress ----

    /// The last event the processes have handled.
    pub fn progress(&self, txn: &RoTxn) -> Result<u64, Error> {
        match self.meta.get(txn, META_PROGRESS)? {
            None => Ok(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes).map(u64::from_le_bytes).map_err(|_| Error::Corrupt {
                table: "meta",
                at: "process-progress".into(),
                message: format!("{} bytes, expected 8", bytes.len()),
            }),
        }
    }

    pub fn put_progress(&self, txn: &mut RwTxn, seq: u64) -> Result<(), heed::Error> {
        self.meta.put(txn, META_PROGRESS, &seq.to_le_bytes())
    }

    /// Raw access for tests that damage stored bytes on purpose.
    #[doc(hidden)]
    pub fn put_raw(&self, table: &str, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let db = match table {
            "log" => self.log,
            "aggregates" => self.aggregates,
            "commands" => self.commands,
            "meta" => self.meta,
            view => *self.view_table(view).ok_or_else(|| Error::UnknownView { name: view.to_owned() })?,
        };
        self.write(|txn| Ok(db.put(txn, key, value)?))
    }
}

fn read_checkpoint(meta: &Table, txn: &RoTxn) -> Result<u64, Error> {
    read_u64(meta, txn, META_CHECKPOINT)
}

/// A `u64` meta record, which must be there.
/// `key-ids-time-prefixed-from-ms` for a store marked format 6 now: [`KEY_IDS_UPGRADE_MARGIN_MS`] from now.
fn key_ids_upgraded_from_ms() -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0);
    now_ms.saturating_add(KEY_IDS_UPGRADE_MARGIN_MS)
}

fn read_u64(meta: &Table, txn: &RoTxn, key: &[u8]) -> Result<u64, Error> {
    let at = || String::from_utf8_lossy(key).into_owned();
    match meta.get(txn, key)? {
        None => Err(Error::Corrupt { table: "meta", at: at(), message: "missing".into() }),
        Some(bytes) => <[u8; 8]>::try_from(bytes).map(u64::from_le_bytes).map_err(|_| Error::Corrupt {
            table: "meta",
            at: at(),
            message: format!("{} bytes, expected 8", bytes.len()),
        }),
    }
}

fn short_row(view: &str, key: &[u8], value: &[u8]) -> Error {
    Error::Corrupt {
        table: "view",
        at: format!("{view} {key:02x?}"),
        message: format!("a stored row of {} bytes, without its last event", value.len()),
    }
}

/// The records of the log entry whose first event is `first`.
fn log_entry(first: u64, bytes: &[u8]) -> Result<format::LogEntry<'_>, Error> {
    format::LogEntry::parse(bytes).map_err(|e| Error::corrupt("log", first.to_string(), e))
}

fn seq_from_key(key: &[u8]) -> Result<u64, Error> {
    <[u8; 8]>::try_from(key).map(u64::from_be_bytes).map_err(|_| Error::Corrupt {
        table: "log",
        at: format!("{key:02x?}"),
        message: "a log key is not 8 bytes".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::EnvelopeRef;
    use crate::value::Timestamp;

    /// An event record whose payload is `payload_bytes` long (the record adds about 110 bytes).
    fn record(seq: u64, payload_bytes: usize) -> Vec<u8> {
        let envelope = EnvelopeRef {
            event_id: u128::from(seq),
            command_id: 0,
            correlation_id: 0,
            recorded_at: Timestamp::from_micros(1),
            occurred_at: Timestamp::from_micros(1),
            version: 1,
            previous_seq: 0,
            tag: 1,
            aggregate: "account",
            key: b"k",
            event_name: "deposited",
        };
        let mut out = Vec::new();
        format::encode_event_into(&envelope, &vec![seq as u8; payload_bytes], &mut out);
        out
    }

    /// Writes the log in batches (`batches`: payload sizes, commas within a batch, spaces between; a batch
    /// after a `|` is written as format 3 did, one event per entry), checks every read (each event, and scans
    /// from every point with several limits) against the events written, and compares the entries, as
    /// `first+count`, with `expected`.
    fn check(batches: &str, expected: &str) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path(), StoreConfig::default(), "test", 1, &[], &[]).expect("a new store");
        let written = write(&store, batches);
        let txn = store.read().expect("a read transaction");
        let last = written.len() as u64;
        assert_eq!(store.last_seq(&txn).expect("the last event"), last);
        for seq in 0..=last + 1 {
            let event = store.event(&txn, seq).expect("an event read");
            let wanted = seq.checked_sub(1).and_then(|at| written.get(at as usize));
            assert_eq!(event.map(|e| e.envelope.event_id), wanted.map(|_| u128::from(seq)), "event {seq}");
        }
        for since in 0..=last {
            for limit in [1, 2, 3, 1000] {
                let mut seen = Vec::new();
                let end = store
                    .scan_events(&txn, since, limit, |e| {
                        seen.push(e.seq);
                        Ok(())
                    })
                    .expect("a scan");
                let wanted: Vec<u64> = (since + 1..=last).take(limit).collect();
                assert_eq!(seen, wanted, "since {since}, limit {limit}");
                assert_eq!(end, wanted.last().copied().unwrap_or(since));
            }
        }
        assert_eq!(entries(&store, &txn), expected);
    }

    /// The log's entries, as `first+count`.
    fn entries(store: &Store, txn: &RoTxn) -> String {
        let mut entries = Vec::new();
        for entry in store.log.iter(txn).expect("the log") {
            let (key, bytes) = entry.expect("an entry");
            let first = seq_from_key(key).expect("a key");
            entries.push(format!("{first}+{}", log_entry(first, bytes).expect("an entry").len()));
        }
        entries.join(" ")
    }

    /// Appends the batches and returns the records written, in log order.
    fn write(store: &Store, batches: &str) -> Vec<Vec<u8>> {
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut pack = Vec::new();
        for batch in batches.split(' ') {
            let (legacy, sizes) = match batch.strip_prefix('|') {
                Some(sizes) => (true, sizes),
                None => (false, batch),
            };
            let first_seq = written.len() as u64 + 1;
            let records: Vec<Vec<u8>> = sizes
                .split(',')
                .enumerate()
                .map(|(at, size)| record(first_seq + at as u64, size.parse().expect("a size")))
                .collect();
            store
                .write(|txn| {
                    if legacy {
                        for (at, record) in records.iter().enumerate() {
                            let key = (first_seq + at as u64).to_be_bytes();
                            store.log.put_with_flags(txn, PutFlags::APPEND, &key, record)?;
                        }
                    } else {
                        let bytes = records.concat();
                        let ends: Vec<usize> = records
                            .iter()
                            .scan(0, |end, record| Some(*end + record.len()).inspect(|e| *end = *e))
                            .collect();
                        store.append_events(txn, first_seq, &bytes, &ends, &mut pack)?;
                    }
                    Ok(())
                })
                .expect("appended");
            written.extend(records);
        }
        written
    }

    #[test]
    fn the_log_packs_consecutive_events_and_reads_them_back_at_any_point() {
        // 125-byte records (4 more for the length each): 15 per 2,000-byte pack.
        check("10", "1+1");
        check("10,10,10", "1+3");
        check("10,10 10,10,10", "1+2 3+3");
        check(&vec!["10"; 40].join(","), "1+15 16+15 31+10");
        // A record too large to share a pack is stored as it is, and a pack ends before it.
        check("10,10,1900,10", "1+2 3+1 4+1");
        check("3000", "1+1");
        // A log written by format 3 (one event per entry), continued with packs.
        check("|10,10,10 10,10", "1+1 2+1 3+1 4+2");
    }

    #[test]
    fn an_upcast_event_is_replaced_inside_its_pack() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path(), StoreConfig::default(), "test", 1, &[], &[]).expect("a new store");
        write(&store, "10,10,10 2500 |10");
        for (seq, payload_bytes) in [(2, 40), (4, 5), (5, 3000)] {
            store.write(|txn| store.replace_event(txn, seq, &record(seq, payload_bytes))).expect("replaced");
        }
        let missing = store.write(|txn| store.replace_event(txn, 6, &record(6, 1))).unwrap_err();
        assert_eq!(
            missing.to_string(),
            Error::Corrupt { table: "log", at: "6".into(), message: "no such event".into() }.to_string()
        );
        let txn = store.read().expect("a read transaction");
        assert_eq!(entries(&store, &txn), "1+3 4+1 5+1");
        let sizes: Vec<usize> =
            store.events_after(&txn, 0, 10).expect("the log").iter().map(|e| e.event.len()).collect();
        assert_eq!(sizes, [10, 40, 10, 5, 3000]);
    }

    #[test]
    fn a_gap_or_an_overlap_in_the_log_is_reported() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path(), StoreConfig::default(), "test", 1, &[], &[]).expect("a new store");
        write(&store, "10,10,10 10,10");
        let scan = |since| {
            let txn = store.read().expect("a read transaction");
            store.scan_events(&txn, since, 100, |_| Ok(())).map_err(|e| e.to_string())
        };
        assert_eq!(scan(0), Ok(5));
        // The second pack moved one event on: event 4 is missing.
        let txn = store.read().expect("a read transaction");
        let second = store.log.get(&txn, &4u64.to_be_bytes()).expect("a read").expect("the second pack").to_vec();
        drop(txn);
        store
            .write(|txn| {
                store.log.delete(txn, &4u64.to_be_bytes())?;
                Ok(store.log.put(txn, &5u64.to_be_bytes(), &second)?)
            })
            .expect("moved");
        let gap = "the log has a gap: event 4 is missing, next is 5";
        assert!(scan(0).unwrap_err().contains(gap), "{:?}", scan(0));
        assert!(scan(3).unwrap_err().contains(gap));
        // Moved back one too far: it overlaps the first pack.
        store
            .write(|txn| {
                store.log.delete(txn, &5u64.to_be_bytes())?;
                Ok(store.log.put(txn, &3u64.to_be_bytes(), &second)?)
            })
            .expect("moved");
        assert!(scan(0).unwrap_err().contains("the log's entries overlap: an entry starts at 3, after event 3"));
        // Damaged framing is reported with the entry, never read as events.
        store.write(|txn| Ok(store.log.put(txn, &3u64.to_be_bytes(), &second[..second.len() - 1])?)).expect("cut");
        let txn = store.read().expect("a read transaction");
        assert!(store.event(&txn, 3).unwrap_err().to_string().contains("log pack: an event runs past the end"));
    }
}
