//! The global changes feed: one gapless, ordered sequence over every domain's events, kept in a small index of
//! its own (an LMDB environment in `DATA/_feed`) that maps a global sequence number to (domain, domain sequence
//! number). The events themselves stay in the domains' logs; the index only orders them.
//!
//! Why an index and not a merge at read time: the domains commit independently (one store each), so there is
//! no order between them to recompute; a cursor (`since=SEQ`) must keep its meaning across restarts, so the
//! order is recorded once and never changes. One indexer thread (in the server) follows every domain's log and
//! appends what is new in batches of at most [`ROUND_ENTRIES_MAX`] entries. It indexes only committed events,
//! and a domain's commit is durable when it returns (see `anthill_runtime::store::Store::open`), so the index
//! never points at an event a system crash could take back; a global number is handed out (to the HTTP feed)
//! only once the index transaction that holds it has committed, which (LMDB's default flags) is durable. On
//! start the indexer resumes from each domain's last indexed position.
//!
//! Lag: the indexer looks for new events every [`IDLE_POLL_MS`] milliseconds (at once only after a full round),
//! so an event shows up in the global feed about that long after its domain committed it; under load the
//! rounds grow rather than the index's commits multiply. The per-domain feeds have no lag.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anthill_runtime::lock::StoreLock;
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, PutFlags, WithoutTls};
use parking_lot::Mutex;

/// The folder of the index, under the data folder (domain names are kebab-case, so it never clashes).
pub const FEED_DIR_NAME: &str = "_feed";
/// Entries the indexer appends in one transaction, at most.
pub const ROUND_ENTRIES_MAX: u64 = 16_384;
/// How often an idle indexer looks for new events.
pub const IDLE_POLL_MS: u64 = 10;
/// After a failed round (a full disk, say) the indexer waits this long before trying again.
const RETRY_MS: u64 = 1_000;
/// The index's map size: its size limit (the file grows with its data, ~40 bytes an entry).
const MAP_SIZE_BYTES: usize = 1 << 34;

type Table = Database<Bytes, Bytes>;

/// An index error, as text for logs and the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedError(pub String);

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<heed::Error> for FeedError {
    fn from(error: heed::Error) -> Self {
        FeedError(format!("feed index: {error}"))
    }
}

/// One entry of the global feed: where to find the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub domain: String,
    pub domain_seq: u64,
}

/// What the indexer follows: the domains' logs, by name.
pub trait Source: Send + Sync {
    fn domain_names(&self) -> Vec<&'static str>;
    /// The sequence number of the domain's last committed (so durable) event.
    fn last_seq(&self, domain: &str) -> Result<u64, FeedError>;
}

/// The index: `entries` (global seq, u64 big-endian -> domain id u16 BE + domain seq u64 BE) and `positions`
/// (domain name -> domain id u16 BE + last indexed domain seq u64 BE).
pub struct FeedIndex {
    env: Env<WithoutTls>,
    entries: Table,
    positions: Table,
    /// Domain names by id (cached from `positions`).
    names: Mutex<Vec<String>>,
    /// Held by the indexing side: one indexer per index.
    lock: Option<StoreLock>,
    path: PathBuf,
}

fn env_at(path: &Path) -> Result<Env<WithoutTls>, FeedError> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(MAP_SIZE_BYTES).max_dbs(2).max_readers(126);
    // SAFETY: heed requires that the environment is opened once per process and that nothing else maps or
    // truncates its file: the index owns its folder, and the server opens it once.
    let env = unsafe { options.open(path) }?;
    env.clear_stale_readers()?;
    Ok(env)
}

fn decode_position(bytes: &[u8]) -> Result<(u16, u64), FeedError> {
    match <[u8; 10]>::try_from(bytes) {
        Ok(b) => {
            Ok((u16::from_be_bytes([b[0], b[1]]), u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]])))
        }
        Err(_) => Err(FeedError(format!("feed index: damaged entry ({} bytes, expected 10)", bytes.len()))),
    }
}

fn encode_position(id: u16, seq: u64) -> [u8; 10] {
    let mut out = [0u8; 10];
    out[..2].copy_from_slice(&id.to_be_bytes());
    out[2..].copy_from_slice(&seq.to_be_bytes());
    out
}

impl FeedIndex {
    /// Opens (or creates) the index under `data` for indexing: takes its lock (one indexer at a time).
    pub fn open(data: &Path) -> Result<FeedIndex, FeedError> {
        let path = data.join(FEED_DIR_NAME);
        std::fs::create_dir_all(&path).map_err(|e| FeedError(format!("{}: {e}", path.display())))?;
        let lock = StoreLock::acquire(&path).map_err(|e| FeedError(e.to_string()))?;
        let env = env_at(&path)?;
        let mut wtxn = env.write_txn()?;
        let entries: Table = env.create_database(&mut wtxn, Some("entries"))?;
        let positions: Table = env.create_database(&mut wtxn, Some("positions"))?;
        wtxn.commit()?;
        let index = FeedIndex { env, entries, positions, names: Mutex::new(Vec::new()), lock: Some(lock), path };
        index.load_names()?;
        Ok(index)
    }

    /// Opens the index under `data` for reads only (beside a running server). `Ok(None)` when there is none yet.
    pub fn open_read_only(data: &Path) -> Result<Option<FeedIndex>, FeedError> {
        let path = data.join(FEED_DIR_NAME);
        if !path.join("data.mdb").is_file() {
            return Ok(None);
        }
        let env = env_at(&path)?;
        let rtxn = env.read_txn()?;
        let entries: Option<Table> = env.open_database(&rtxn, Some("entries"))?;
        let positions: Option<Table> = env.open_database(&rtxn, Some("positions"))?;
        rtxn.commit()?;
        let (Some(entries), Some(positions)) = (entries, positions) else { return Ok(None) };
        let index = FeedIndex { env, entries, positions, names: Mutex::new(Vec::new()), lock: None, path };
        index.load_names()?;
        Ok(Some(index))
    }

    /// Opens the index for indexing if no one else holds it (no server runs), else read-only.
    pub fn open_any(data: &Path) -> Result<Option<FeedIndex>, FeedError> {
        match FeedIndex::open(data) {
            Ok(index) => Ok(Some(index)),
            Err(e) if e.0.contains("in use") => FeedIndex::open_read_only(data),
            Err(e) => Err(e),
        }
    }

    pub fn can_index(&self) -> bool {
        self.lock.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_names(&self) -> Result<(), FeedError> {
        let rtxn = self.env.read_txn()?;
        let mut names = Vec::new();
        for item in self.positions.iter(&rtxn)? {
            let (name, value) = item?;
            let (id, _) = decode_position(value)?;
            let id = usize::from(id);
            if names.len() <= id {
                names.resize(id + 1, String::new());
            }
            names[id] = String::from_utf8_lossy(name).into_owned();
        }
        *self.names.lock() = names;
        Ok(())
    }

    /// The last committed global sequence number (0 when empty).
    pub fn last_seq(&self) -> Result<u64, FeedError> {
        let rtxn = self.env.read_txn()?;
        match self.entries.last(&rtxn)? {
            None => Ok(0),
            Some((key, _)) => seq_of(key),
        }
    }

    /// Up to `limit` entries after `since` and at most `until`, in order, checked to be gapless.
    pub fn entries(&self, since: u64, until: u64, limit: usize) -> Result<Vec<Entry>, FeedError> {
        if since >= until {
            return Ok(Vec::new());
        }
        let rtxn = self.env.read_txn()?;
        let start = since.saturating_add(1).to_be_bytes();
        let range = (std::ops::Bound::Included(&start[..]), std::ops::Bound::Unbounded);
        let mut out = Vec::new();
        let count = usize::try_from(until - since).unwrap_or(usize::MAX).min(limit);
        for (expected, item) in (since.saturating_add(1)..).zip(self.entries.range(&rtxn, &range)?.take(count)) {
            let (key, value) = item?;
            let seq = seq_of(key)?;
            if seq != expected {
                return Err(FeedError(format!("feed index: entry {expected} is missing (next is {seq})")));
            }
            let (id, domain_seq) = decode_position(value)?;
            let mut domain = self.names.lock().get(usize::from(id)).cloned().filter(|n| !n.is_empty());
            if domain.is_none() {
                // A domain indexed after this reader loaded the names (another process indexes).
                self.load_names()?;
                domain = self.names.lock().get(usize::from(id)).cloned().filter(|n| !n.is_empty());
            }
            let domain =
                domain.ok_or_else(|| FeedError(format!("feed index: entry {seq} names unknown domain {id}")))?;
            out.push(Entry { seq, domain, domain_seq });
        }
        Ok(out)
    }

    /// One indexing round: appends up to [`ROUND_ENTRIES_MAX`] new events of the domains, domain by domain,
    /// in one transaction. Returns the number of entries appended.
    pub fn index_round(&self, source: &dyn Source) -> Result<u64, FeedError> {
        if self.lock.is_none() {
            return Err(FeedError("the feed index is open read-only".into()));
        }
        let rtxn = self.env.read_txn()?;
        let mut next_id = u16::try_from(self.names.lock().len()).unwrap_or(u16::MAX);
        let mut plan = Vec::new();
        let mut budget = ROUND_ENTRIES_MAX;
        for name in source.domain_names() {
            let (id, indexed) = match self.positions.get(&rtxn, name.as_bytes())? {
                Some(value) => decode_position(value)?,
                None => {
                    let id = next_id;
                    next_id = next_id.checked_add(1).ok_or_else(|| FeedError("too many domains".into()))?;
                    (id, 0)
                }
            };
            let last = source.last_seq(name)?;
            if indexed > last {
                return Err(FeedError(format!(
                    "the feed index has domain `{name}` up to event {indexed}, but its store ends at {last}: the \
                     store was replaced; move {} away to index every domain again (feed cursors start over)",
                    self.path.display()
                )));
            }
            let take = (last - indexed).min(budget);
            if take > 0 {
                budget -= take;
                plan.push((name, id, indexed, take));
            }
        }
        let mut global = match self.entries.last(&rtxn)? {
            None => 0,
            Some((key, _)) => seq_of(key)?,
        };
        drop(rtxn);
        if plan.is_empty() {
            return Ok(0);
        }
        let mut wtxn = self.env.write_txn()?;
        let mut added = 0;
        for (name, id, indexed, take) in &plan {
            for domain_seq in indexed + 1..=indexed + take {
                global += 1;
                let value = encode_position(*id, domain_seq);
                self.entries.put_with_flags(&mut wtxn, PutFlags::APPEND, &global.to_be_bytes(), &value)?;
            }
            self.positions.put(&mut wtxn, name.as_bytes(), &encode_position(*id, indexed + take))?;
            added += take;
        }
        wtxn.commit()?;
        if usize::from(next_id) > self.names.lock().len() {
            self.load_names()?;
        }
        Ok(added)
    }

    /// Indexes until caught up with what the domains had committed when called (bounded by the rounds needed).
    pub fn catch_up(&self, source: &dyn Source, mut progress: impl FnMut(u64)) -> Result<u64, FeedError> {
        let mut total = 0;
        loop {
            let added = self.index_round(source)?;
            if added == 0 {
                return Ok(total);
            }
            total += added;
            progress(total);
        }
    }
}

fn seq_of(key: &[u8]) -> Result<u64, FeedError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| FeedError(format!("feed index: a key is {} bytes, expected 8", key.len())))
}

/// The running indexer: a thread appending new events and announcing the last committed global number.
pub struct Indexer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Catches up once (so the feed is complete when the server starts answering), then follows the domains on a
    /// thread. `published` receives every newly committed last global number.
    pub fn start(
        index: Arc<FeedIndex>,
        source: Arc<dyn Source>,
        published: tokio::sync::watch::Sender<u64>,
    ) -> Result<Indexer, FeedError> {
        let caught_up = index.catch_up(source.as_ref(), |_| {})?;
        let last = index.last_seq()?;
        tracing::info!(entries = last, indexed_now = caught_up, path = %index.path().display(), "feed index ready");
        published.send_replace(last);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("anthill-feed".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        match index.index_round(source.as_ref()) {
                            Ok(0) => std::thread::sleep(Duration::from_millis(IDLE_POLL_MS)),
                            Ok(added) => {
                                match index.last_seq() {
                                    Ok(last) => {
                                        published.send_replace(last);
                                    }
                                    Err(e) => tracing::error!(error = %e, "feed index"),
                                }
                                // At most one round (one commit of the index) per poll interval, unless the round
                                // was full: under load the rounds grow instead of the commits multiplying.
                                if added < ROUND_ENTRIES_MAX {
                                    std::thread::sleep(Duration::from_millis(IDLE_POLL_MS));
                                }
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "feed indexing failed; retrying");
                                std::thread::sleep(Duration::from_millis(RETRY_MS));
                            }
                        }
                    }
                })
                .map_err(|e| FeedError(format!("cannot start the feed indexer: {e}")))?
        };
        Ok(Indexer { stop, thread: Some(thread) })
    }

    /// Stops the thread (after its current round).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The global feed as the HTTP layer reads it: the index and the last number handed out.
pub struct Feed {
    pub index: Arc<FeedIndex>,
    pub published: tokio::sync::watch::Receiver<u64>,
}
