//! Jobs: type-erased commands in a partition queue, the writer's instance cache and the view rows in memory.

use super::*;
use crate::aggregate::{FoldError, RowCodec};
use crate::codec::DecodeError;

/// An aggregate instance in a writer's memory.
pub(super) struct Cached {
    pub(super) state: Box<dyn Any + Send>,
    pub(super) version: u64,
    pub(super) last_seq: u64,
    /// The last event written for it in the current write attempt (becomes `last_seq` once committed).
    pub(super) batch_last_seq: Option<u64>,
    pub(super) encode: EncodeState,
    /// For aggregates that decide in place ([`Aggregate::DECIDES_IN_PLACE`]): a [`Checkpoint`] of this
    /// instance's aggregate type, to restore the state when a command is refused after changing it.
    pub(super) checkpoint: Option<Box<dyn Any + Send>>,
}

impl Cached {
    pub(super) fn new(state: Box<dyn Any + Send>, version: u64, last_seq: u64, encode: EncodeState) -> Cached {
        Cached { state, version, last_seq, batch_last_seq: None, encode, checkpoint: None }
    }
}

/// Hands an instance's encoded state to a closure.
pub(super) type EncodeState = fn(&(dyn Any + Send), &mut dyn FnMut(&[u8]));

/// The state of an instance before the current batch first changed it in place, and the events applied to it
/// since: a command refused after changing the state in place is undone by going back to `state` and applying
/// `since` again. Taken at most once per batch, so a large state is copied once per batch, not once per
/// command, and not at all in a batch whose commands only read it. After a restore, the rest of the batch
/// decides that instance's commands on a copy ([`Aggregate::execute`]): an instance whose commands are refused
/// often (a full delivery slot) costs no more than copying did, and one whose commands are not (an order book)
/// costs one copy per batch.
pub(super) struct Checkpoint<A: Aggregate> {
    /// The batch ([`Cache::batch`]) the flags below are about.
    batch: u64,
    /// Whether `state` was taken in this batch.
    taken: bool,
    /// Whether commands may still change the state in place in this batch; false after a restore.
    in_place: bool,
    state: A::State,
    /// Each event with the version it was applied at and when it occurred.
    since: Vec<(A::Event, u64, Timestamp)>,
}

impl<A: Aggregate> Checkpoint<A> {
    /// The entry's checkpoint, reset if it is about an earlier batch.
    fn current(checkpoint: &mut Option<Box<dyn Any + Send>>, batch: u64) -> &mut Self {
        let boxed = checkpoint.get_or_insert_with(|| {
            Box::new(Checkpoint::<A> {
                batch: batch.wrapping_sub(1),
                taken: false,
                in_place: true,
                state: A::State::default(),
                since: Vec::new(),
            })
        });
        let checkpoint =
            boxed.downcast_mut::<Checkpoint<A>>().expect("a cache entry's checkpoint is of its tag's aggregate");
        if checkpoint.batch != batch {
            checkpoint.batch = batch;
            checkpoint.taken = false;
            checkpoint.in_place = true;
            checkpoint.since.clear();
        }
        checkpoint
    }

    /// Called before a command changes the state: the first time in the batch, keeps a copy.
    fn take(&mut self, state: &A::State) {
        if !self.taken {
            self.taken = true;
            self.state.clone_from(state);
            assert!(self.since.is_empty());
        }
    }

    /// Puts `state` back as it was after the last accepted command; the checkpoint is used up for this batch.
    /// These events were applied to this very state before, and `evolve` is deterministic: should one fail now,
    /// that is a broken invariant, and the panic makes the writer decide the batch again from stored records.
    fn restore(&mut self, state: &mut A::State, id: &A::Id) {
        assert!(self.taken && self.in_place, "a checkpoint is taken before it is restored, once");
        self.in_place = false;
        std::mem::swap(state, &mut self.state);
        for (event, version, occurred_at) in self.since.drain(..) {
            let ctx = EventContext { id, version, occurred_at, event_id: 0 };
            if let Err(error) = A::evolve(state, &event, &ctx) {
                panic!("an event accepted in this batch cannot be applied again: {error}");
            }
        }
    }
}

pub(super) fn encode_state_erased<A: Aggregate>(state: &(dyn Any + Send), use_bytes: &mut dyn FnMut(&[u8])) {
    let state = state.downcast_ref::<A::State>().expect("a cache entry holds the state of its tag's aggregate");
    A::with_encoded_state(state, use_bytes)
}

/// A writer's instances: a slab of entries and an index by record key. Commands remember their entry's slot
/// from decide to write, so the write phase does no lookups; entries move only between batches (eviction).
#[derive(Default)]
pub(super) struct Cache {
    /// Counts batches, so that checkpoints know when they are stale.
    pub(super) batch: u64,
    pub(super) index: FastMap<KeyBytes, u32>,
    pub(super) slots: Vec<(KeyBytes, Cached)>,
    /// Where the next eviction starts: spreads evictions over the slab.
    pub(super) evict_cursor: usize,
}

impl Cache {
    pub(super) fn find(&self, key: &[u8]) -> Option<u32> {
        self.index.get(key).copied()
    }

    pub(super) fn insert(&mut self, key: KeyBytes, cached: Cached) -> u32 {
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 cached instances");
        self.index.insert(key.clone(), slot);
        self.slots.push((key, cached));
        slot
    }

    pub(super) fn slot(&mut self, slot: u32) -> &mut Cached {
        &mut self.slots[slot as usize].1
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
    }

    /// Drops entries until at most `len_max` remain, except those whose last event is after `committed_seq`
    /// (a batch queued for its commit changed them: the store does not have them yet). Only between batches:
    /// it moves entries between slots. Bounded: one pass over the slab.
    pub(super) fn evict_to(&mut self, len_max: usize, committed_seq: u64) {
        for _ in 0..self.slots.len() {
            if self.slots.len() <= len_max {
                break;
            }
            let victim = self.evict_cursor % self.slots.len();
            self.evict_cursor = self.evict_cursor.wrapping_add(7_919);
            if self.slots[victim].1.last_seq > committed_seq {
                continue;
            }
            let (key, _) = self.slots.swap_remove(victim);
            self.index.remove(&key[..]);
            if let Some((moved, _)) = self.slots.get(victim) {
                let slot = self.index.get_mut(&moved[..]).expect("every cached instance is indexed");
                *slot = victim as u32;
            }
        }
        assert_eq!(self.index.len(), self.slots.len());
    }
}

pub(super) struct DecideCx<'a> {
    pub(super) store: &'a Store,
    pub(super) txn: &'a RoTxn<'a>,
    pub(super) cache: &'a mut Cache,
    pub(super) now: Timestamp,
    /// A command's code panicked: its instance's cached state may be half changed.
    pub(super) panicked: bool,
    /// The largest command id `commands` holds in `txn`, once a command with an id asked (`None`: not yet).
    commands_last: Option<Option<u128>>,
}

impl<'a> DecideCx<'a> {
    pub(super) fn new(store: &'a Store, txn: &'a RoTxn<'a>, cache: &'a mut Cache, now: Timestamp) -> Self {
        DecideCx { store, txn, cache, now, panicked: false, commands_last: None }
    }

    /// The idempotency record of `command_id` in `txn`. An id above every stored one has none, which the
    /// table's last key (read once per transaction) tells without a lookup: time-ordered ids (UUIDv7 keys,
    /// reactions) mostly are.
    fn command(&mut self, command_id: u128) -> Result<Option<CommandRecord>, Error> {
        let last = match self.commands_last {
            Some(last) => last,
            None => *self.commands_last.insert(self.store.last_command_id(self.txn)?),
        };
        if last.is_none_or(|last| command_id > last) {
            return Ok(None);
        }
        self.store.command(self.txn, command_id)
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// What a batch's commands prepared for its commit: the log's new events and the command records, as bytes.
#[derive(Default)]
pub(super) struct Prepared {
    /// The encoded events (envelope and event), back to back.
    pub(super) events: Vec<u8>,
    /// Where each event ends in `events`, in log order from the batch's first sequence number.
    pub(super) event_ends: Vec<usize>,
    /// Idempotency records: (command id, encoded record).
    pub(super) commands: Vec<(u128, Vec<u8>)>,
    /// The last event some process handles (0: none).
    pub(super) last_handled: u64,
}

impl Prepared {
    pub(super) fn clear(&mut self) {
        self.events.clear();
        self.event_ends.clear();
        self.commands.clear();
        self.last_handled = 0;
    }
}

/// A partition's batch being prepared, after its decisions and before its commit: its sequence numbers are
/// reserved (see `writer`), so it encodes its events and folds them into the view rows off the commit's path.
pub(super) struct PrepareCx<'a, 't> {
    pub(super) store: &'a Store,
    pub(super) txn: &'a RoTxn<'t>,
    pub(super) cache: &'a mut Cache,
    pub(super) next_seq: u64,
    pub(super) now: Timestamp,
    pub(super) ids: &'a mut IdGenerator,
    /// Cache slots of the instances written in this attempt: their records are encoded once, at the end.
    pub(super) dirty: &'a mut Vec<u32>,
    pub(super) views: &'a mut ViewRows,
    /// Per aggregate tag, the events some process handles.
    pub(super) handled: &'a [Vec<&'static str>],
    pub(super) out: &'a mut Prepared,
}

/// View rows in memory, decoded, for the writers: the rows the batch being prepared changed (encoded once per
/// batch, [`ViewRows::stage_into`]: a hot row costs one encoding per batch, not one per event), and the rows
/// earlier batches left, so that a row's first touch in a batch neither reads LMDB nor decodes. One per engine,
/// shared by its writers, which prepare one batch at a time under its lock; a rebuild or a migration uses its
/// own.
///
/// Invariant: outside a preparation, every row here equals the stored row (in the committed table, or
/// unflushed) once the batches prepared so far have committed, in the order they were prepared. It holds
/// because (1) batches are prepared under this lock and committed in the order of their sequence numbers,
/// reserved here (`next_seq`); (2) when a commit fails, the batches queued behind it come back and the
/// commit queue's epoch moves: the next preparation sees another epoch and drops every row; (3) a preparation
/// that fails (a view that cannot fold) waits for every prepared batch to commit, then drops every row; (4)
/// the other writers of view tables (a rebuild, a migration) clear the tables they write, which
/// [`Store::views_cleared`] counts: a preparation that sees another count drops every row too; (5) a row a
/// queued batch changed is not evicted before that batch commits.
pub(super) struct ViewRows {
    /// View index (`u16` big-endian) and key bytes, to the row's slot.
    index: FastMap<KeyBytes, u32>,
    slots: Vec<RowSlot>,
    /// Slots the current attempt changed, each once.
    changed: Vec<u32>,
    /// The commit queue's epoch these rows are about (see the invariant above).
    pub(super) epoch: u64,
    /// The sequence number the next prepared event gets.
    pub(super) next_seq: u64,
    /// [`Store::views_cleared`] when the rows were read.
    views_cleared: u64,
    /// Rows kept between batches, at most (an eviction drops arbitrary rows down to three quarters of it).
    rows_max: usize,
    /// Where the next eviction starts: spreads evictions over the slab.
    evict_cursor: usize,
    /// Reused to build lookup keys.
    lookup: Vec<u8>,
    /// Reused to encode rows.
    encoded: Vec<u8>,
}

struct RowSlot {
    /// View index and row key (inline when short, as most are).
    key: KeyBytes,
    row: Row,
    /// The last event folded into the row (stored with it: a replay skips the events a row holds).
    seq: u64,
    changed: bool,
}

/// A view row in memory.
enum Row {
    /// Written as bytes ([`ViewTables::put`]).
    Encoded(Vec<u8>),
    /// Folded in place ([`ViewTables::update_row`]): every later event folds into it without decoding and
    /// encoding it again; encoded once per batch, at flush.
    Decoded { row: Box<dyn Any + Send>, encode_into: fn(&(dyn Any + Send), Vec<u8>) -> Vec<u8> },
}

impl ViewRows {
    pub(super) fn new(rows_max: usize) -> Self {
        ViewRows {
            index: FastMap::default(),
            slots: Vec::new(),
            changed: Vec::new(),
            epoch: 0,
            next_seq: 0,
            views_cleared: 0,
            rows_max,
            evict_cursor: 0,
            lookup: Vec::new(),
            encoded: Vec::new(),
        }
    }

    /// Starts a preparation: drops every row if a view table was cleared since the rows were read. Only
    /// while no prepared batch waits for its commit (those that clear tables wait for that).
    pub(super) fn begin(&mut self, store: &Store) {
        assert!(self.changed.is_empty(), "a failed preparation drops its rows");
        let views_cleared = store.views_cleared();
        if views_cleared != self.views_cleared {
            self.clear();
            self.views_cleared = views_cleared;
        }
    }

    /// Forgets every row.
    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.changed.clear();
    }

    fn set_lookup(&mut self, view: u16, key: &[u8]) {
        self.lookup.clear();
        self.lookup.extend_from_slice(&view.to_be_bytes());
        self.lookup.extend_from_slice(key);
    }

    /// Adds a row for the lookup key, changed.
    fn insert(&mut self, row: Row, seq: u64) -> u32 {
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 view rows in memory");
        let key = KeyBytes::from_slice(&self.lookup);
        self.index.insert(key.clone(), slot);
        self.slots.push(RowSlot { key, row, seq, changed: true });
        self.changed.push(slot);
        slot
    }

    fn mark_changed(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        if !entry.changed {
            entry.changed = true;
            self.changed.push(slot);
        }
    }

    /// Writes every changed row (in key order, which keeps the B-tree walks local). They count as changed
    /// until [`ViewRows::committed`].
    pub(super) fn flush(&mut self, store: &Store, txn: &mut RwTxn<'_>) -> Result<(), heed::Error> {
        let ViewRows { slots, changed, encoded, .. } = self;
        changed.sort_unstable_by(|a, b| slots[*a as usize].key.cmp(&slots[*b as usize].key));
        for &slot in changed.iter() {
            let RowSlot { key, row, seq, .. } = &slots[slot as usize];
            let view = u16::from_be_bytes([key[0], key[1]]);
            encoded.clear();
            match row {
                Row::Encoded(bytes) => encoded.extend_from_slice(bytes),
                Row::Decoded { row, encode_into } => *encoded = encode_into(&**row, std::mem::take(encoded)),
            }
            encoded.extend_from_slice(&seq.to_le_bytes());
            store.view_table_at(view).put(txn, &key[2..], encoded)?;
        }
        Ok(())
    }

    /// Encodes every changed row into `staged` (the writers' rows are written behind the log: see
    /// `crate::unflushed`), then keeps at most `rows_max` rows, except those of batches after `committed_seq`
    /// (queued for their commit: a later batch must find them here).
    pub(super) fn stage_into(&mut self, staged: &mut Staged, committed_seq: u64) {
        let ViewRows { slots, changed, .. } = self;
        staged.clear();
        for slot in changed.drain(..) {
            let RowSlot { key, row, seq, changed } = &mut slots[slot as usize];
            *changed = false;
            staged.push_with(key, |out| {
                match row {
                    Row::Encoded(bytes) => out.extend_from_slice(bytes),
                    Row::Decoded { row, encode_into } => *out = encode_into(&**row, std::mem::take(out)),
                }
                out.extend_from_slice(&seq.to_le_bytes());
            });
        }
        if self.slots.len() > self.rows_max {
            // Arbitrary rows: simple, and an evicted row is read from the store again. Bounded: one pass.
            let target = self.rows_max * 3 / 4;
            for _ in 0..self.slots.len() {
                if self.slots.len() <= target {
                    break;
                }
                let victim = self.evict_cursor % self.slots.len();
                self.evict_cursor = self.evict_cursor.wrapping_add(7_919);
                if self.slots[victim].seq > committed_seq {
                    continue;
                }
                let removed = self.slots.swap_remove(victim);
                self.index.remove(&removed.key[..]);
                if let Some(moved) = self.slots.get(victim) {
                    *self.index.get_mut(&moved.key[..]).expect("every row in memory is indexed") = victim as u32;
                }
            }
        }
        assert_eq!(self.index.len(), self.slots.len());
    }
}

/// The engine's view tables inside a write transaction, through the rows in memory.
pub(super) struct TxnViews<'a, 't> {
    pub(super) store: &'a Store,
    pub(super) txn: &'a RoTxn<'t>,
    pub(super) rows: &'a mut ViewRows,
    /// When rebuilding one view, the others' rows are neither read nor written.
    pub(super) only: Option<&'a str>,
    /// Rows are read through the unflushed ones (the writers, a recovery); a rebuild or a migration writes
    /// them all out first and reads the tables alone.
    pub(super) unflushed: bool,
    /// The event being folded: each row written keeps it as its last.
    pub(super) seq: u64,
    /// Replaying the log after the checkpoint: a row that holds the event already (its last event is at or
    /// after it) is left alone. A view's fold reads and writes one row, so this skips all it did to the row.
    pub(super) replay: bool,
}

impl TxnViews<'_, '_> {
    fn index(&self, view: &'static str) -> Result<u16, ViewError> {
        // `ok_or_else`: the error's message is not built (allocated) for every row the writer folds.
        self.store.view_index(view).ok_or_else(|| ViewError { view, message: "no such view".into() })
    }

    /// Reads the stored row at the lookup key (through the unflushed rows or not): its bytes and last event.
    fn read_stored(&self, view: &'static str, read: impl FnOnce(Option<(&[u8], u64)>)) -> Result<(), ViewError> {
        let lookup = &self.rows.lookup;
        let mut split = Ok(());
        let read = |value: Option<&[u8]>| match value {
            None => read(None),
            Some(value) => match crate::store::split_row(value) {
                Some(row) => read(Some(row)),
                None => split = Err(format!("a stored row of {} bytes, without its last event", value.len())),
            },
        };
        let found = if self.unflushed {
            self.store.view_row_with(self.txn, lookup, read)
        } else {
            let index = u16::from_be_bytes([lookup[0], lookup[1]]);
            self.store.view_table_at(index).get(self.txn, &lookup[2..]).map(read)
        };
        found.map_err(|error| ViewError { view, message: error.to_string() })?;
        split.map_err(|message| ViewError { view, message })
    }

    fn check_key(view: &'static str, key: &[u8]) -> Result<(), ViewError> {
        if key.is_empty() || key.len() > crate::aggregate::KEY_BYTES_MAX {
            return Err(ViewError { view, message: format!("a view key of {} bytes", key.len()) });
        }
        Ok(())
    }
}

impl ViewTables for TxnViews<'_, '_> {
    fn get(&mut self, view: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        let mut found = None;
        self.get_with(view, key, &mut |row| found = row.map(<[u8]>::to_vec))?;
        Ok(found)
    }

    fn get_with(
        &mut self,
        view: &'static str,
        key: &[u8],
        read: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), ViewError> {
        if self.only.is_some_and(|only| only != view) {
            read(None);
            return Ok(());
        }
        let index = self.index(view)?;
        self.rows.set_lookup(index, key);
        let ViewRows { index: slots_by_key, slots, lookup, encoded, .. } = &mut *self.rows;
        if let Some(&slot) = slots_by_key.get(&lookup[..]) {
            match &slots[slot as usize].row {
                Row::Encoded(row) => read(Some(row)),
                Row::Decoded { row, encode_into } => {
                    *encoded = encode_into(&**row, std::mem::take(encoded));
                    read(Some(encoded));
                }
            }
            return Ok(());
        }
        self.read_stored(view, |row| read(row.map(|(bytes, _)| bytes)))
    }

    fn put(&mut self, view: &'static str, key: &[u8], row: &[u8]) -> Result<(), ViewError> {
        if self.only.is_some_and(|only| only != view) {
            return Ok(());
        }
        let index = self.index(view)?;
        Self::check_key(view, key)?;
        self.rows.set_lookup(index, key);
        let seq = self.seq;
        match self.rows.index.get(&self.rows.lookup[..]).copied() {
            Some(slot) => {
                if self.replay && self.rows.slots[slot as usize].seq >= seq {
                    return Ok(());
                }
                self.rows.mark_changed(slot);
                let entry = &mut self.rows.slots[slot as usize];
                entry.seq = seq;
                match &mut entry.row {
                    Row::Encoded(existing) => {
                        existing.clear();
                        existing.extend_from_slice(row);
                    }
                    existing => *existing = Row::Encoded(row.to_vec()),
                }
            }
            None => {
                if self.replay {
                    let mut holds = false;
                    self.read_stored(view, |stored| holds = stored.is_some_and(|(_, last)| last >= seq))?;
                    if holds {
                        return Ok(());
                    }
                }
                self.rows.insert(Row::Encoded(row.to_vec()), seq);
            }
        }
        Ok(())
    }

    fn update_row(
        &mut self,
        view: &'static str,
        key: &[u8],
        codec: &RowCodec,
        fold: &mut dyn FnMut(&mut (dyn Any + Send)) -> Result<(), FoldError>,
    ) -> Result<(), FoldError> {
        // Checked after the fold, as a `put` of the folded row would be.
        if self.only.is_some_and(|only| only != view) {
            fold(&mut *(codec.default)())?;
            Self::check_key(view, key)?;
            return Ok(());
        }
        let index = self.index(view)?;
        self.rows.set_lookup(index, key);
        let seq = self.seq;
        let decode_error = |error: DecodeError| ViewError { view, message: error.to_string() };
        let slot = match self.rows.index.get(&self.rows.lookup[..]).copied() {
            Some(slot) => {
                if self.replay && self.rows.slots[slot as usize].seq >= seq {
                    return Ok(());
                }
                self.rows.mark_changed(slot);
                self.rows.slots[slot as usize].seq = seq;
                let entry = &mut self.rows.slots[slot as usize].row;
                if let Row::Encoded(bytes) = entry {
                    *entry = Row::Decoded {
                        row: (codec.decode)(bytes).map_err(decode_error)?,
                        encode_into: codec.encode_into,
                    };
                }
                slot
            }
            None => {
                let mut decoded = None;
                let mut holds = false;
                self.read_stored(view, |row| {
                    holds = row.is_some_and(|(_, last)| last >= seq);
                    decoded = Some(match row {
                        Some((bytes, _)) => (codec.decode)(bytes).map_err(decode_error),
                        None => Ok((codec.default)()),
                    })
                })?;
                if self.replay && holds {
                    return Ok(());
                }
                let row = decoded.expect("the row was read")?;
                self.rows.insert(Row::Decoded { row, encode_into: codec.encode_into }, seq)
            }
        };
        let Row::Decoded { row, .. } = &mut self.rows.slots[slot as usize].row else { unreachable!("decoded above") };
        // A failed fold may leave the row half changed: the attempt does not commit, and the next one drops
        // every row (see `ViewRows::begin`).
        fold(&mut **row)?;
        Self::check_key(view, key)?;
        Ok(())
    }
}

pub(super) trait Job: Send {
    fn enqueued_at(&self) -> Instant;
    fn command_id(&self) -> Option<u128>;
    fn decide(&mut self, cx: &mut DecideCx<'_>);
    /// Forgets the decision so the command can be decided again (after another command of the batch panicked
    /// and the cache was dropped); returns false, and keeps its failure, if this command itself panicked or
    /// was failed (see [`Job::fail`]).
    fn undecide(&mut self) -> bool;
    /// Fails the command for good with `error` (a view could not fold its events).
    fn fail(&mut self, error: Error);
    /// Encodes what was decided for the commit and folds its events into the view rows. Runs again from
    /// scratch when an attempt is dropped; fails only when a view cannot fold its events.
    fn prepare(&mut self, cx: &mut PrepareCx<'_, '_>) -> Result<(), Error>;
    /// Leaves the answer; the caller is woken by [`Wake::wake`] on what it returns.
    fn finish(self: Box<Self>, failure: Option<Error>) -> Arc<dyn Wake>;
}

pub(super) enum Decided<A: Aggregate> {
    Pending,
    Failed(Error),
    Replayed(Outcome<A>),
    Rejected(A::Rejection),
    Accepted { events: Vec<A::Event>, version_before: u64, occurred_at: Timestamp, recorded: Vec<Recorded<A>> },
}

pub(super) struct CommandJob<A: Aggregate> {
    pub(super) tag: u16,
    /// Tag and key bytes: the instance's record key and cache key (inline when short, as most are: the
    /// writer reads it without another cache miss).
    pub(super) record_key: KeyBytes,
    pub(super) id: A::Id,
    pub(super) command: A::Command,
    pub(super) meta: CommandMeta,
    /// `meta.command_id`, or a fresh id when the caller gave none (then no idempotency record is kept).
    pub(super) command_id: u128,
    pub(super) correlation_id: u128,
    pub(super) enqueued_at: Instant,
    pub(super) reply: Reply<A>,
    pub(super) decided: Decided<A>,
    /// The instance's cache slot, set by decide (valid until the batch ends).
    pub(super) slot: u32,
}

impl<A: Aggregate> CommandJob<A> {
    pub(super) fn key_bytes(&self) -> &[u8] {
        &self.record_key[2..]
    }

    pub(super) fn replay(
        &self,
        cx: &DecideCx<'_>,
        command_id: u128,
        record: CommandRecord,
    ) -> Result<Decided<A>, Error> {
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

    pub(super) fn decide_inner(&mut self, cx: &mut DecideCx<'_>) -> Result<Decided<A>, Error> {
        if let Some(command_id) = self.meta.command_id {
            if let Some(record) = cx.command(command_id)? {
                return self.replay(cx, command_id, record);
            }
        }
        if let Some(slot) = cx.cache.find(&self.record_key) {
            self.slot = slot;
            let batch = cx.cache.batch;
            return self.execute_on(cx.cache.slot(slot), cx.now, batch);
        }
        {
            {
                let cached = match cx.store.aggregate(cx.txn, &self.record_key)? {
                    None => Cached::new(Box::new(A::State::default()), 0, 0, encode_state_erased::<A>),
                    Some(record) => Cached::new(
                        Box::new(
                            A::decode_state(&record.state)
                                .map_err(|e| Error::corrupt("aggregates", self.id.to_string(), e))?,
                        ),
                        record.version,
                        record.last_seq,
                        encode_state_erased::<A>,
                    ),
                };
                self.slot = cx.cache.insert(self.record_key.clone(), cached);
            }
        }
        let batch = cx.cache.batch;
        self.execute_on(cx.cache.slot(self.slot), cx.now, batch)
    }

    /// Decides the command against the cached instance.
    pub(super) fn execute_on(&mut self, entry: &mut Cached, now: Timestamp, batch: u64) -> Result<Decided<A>, Error> {
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
        let checkpoint = if A::DECIDES_IN_PLACE {
            Some(Checkpoint::<A>::current(&mut entry.checkpoint, batch)).filter(|c| c.in_place)
        } else {
            None
        };
        if let Some(checkpoint) = checkpoint {
            let executed = A::execute_in_place(state, &self.command, &ctx, &mut |before| checkpoint.take(before));
            return match executed {
                Ok(events) => {
                    // Before the checkpoint is taken, the events are part of what it will copy.
                    if checkpoint.taken {
                        for (version, event) in (version_before..).zip(&events) {
                            checkpoint.since.push((event.clone(), version, occurred_at));
                        }
                    }
                    entry.version += events.len() as u64;
                    Ok(Decided::Accepted { events, version_before, occurred_at, recorded: Vec::new() })
                }
                Err(Refused { rejection, state_changed }) => {
                    if state_changed {
                        checkpoint.restore(state, &self.id);
                    }
                    Ok(Decided::Rejected(rejection))
                }
            };
        }
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
        assert!(matches!(self.decided, Decided::Pending), "a command is decided once before it is undecided");
        let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.decide_inner(cx)));
        self.decided = match decided {
            Ok(decided) => decided.unwrap_or_else(Decided::Failed),
            Err(payload) => {
                cx.panicked = true;
                Decided::Failed(Error::Panicked { aggregate: A::NAME, message: panic_message(payload.as_ref()) })
            }
        };
    }

    fn undecide(&mut self) -> bool {
        if matches!(self.decided, Decided::Failed(Error::Panicked { .. } | Error::View(_))) {
            return false;
        }
        self.decided = Decided::Pending;
        self.slot = u32::MAX;
        true
    }

    fn fail(&mut self, error: Error) {
        self.decided = Decided::Failed(error);
    }

    fn prepare(&mut self, cx: &mut PrepareCx<'_, '_>) -> Result<(), Error> {
        let outcome = match &mut self.decided {
            Decided::Pending => unreachable!("a command is decided before it is written"),
            Decided::Failed(_) | Decided::Replayed(_) => return Ok(()),
            // Its record is all a rejected command writes, and only with an idempotency key.
            Decided::Rejected(_) if self.meta.command_id.is_none() => return Ok(()),
            Decided::Rejected(rejection) => CommandOutcome::Rejected { code: rejection.code().to_owned() },
            Decided::Accepted { events, version_before, occurred_at, recorded } => {
                recorded.clear();
                // Moved into the answer: a preparation that fails is followed by deciding again.
                let events = std::mem::take(events);
                // One allocation of the right size (growing from empty would allocate room for four).
                recorded.reserve_exact(events.len());
                let first_seq = cx.next_seq;
                let cached = cx.cache.slot(self.slot);
                let mut previous_seq = cached.batch_last_seq.unwrap_or(cached.last_seq);
                if !events.is_empty() && cached.batch_last_seq.is_none() {
                    cx.dirty.push(self.slot);
                }
                let count = u32::try_from(events.len()).expect("a command emits fewer than 2^32 events");
                for (index, event) in events.into_iter().enumerate() {
                    let seq = cx.next_seq;
                    cx.next_seq += 1;
                    let version = *version_before + index as u64 + 1;
                    let envelope = EnvelopeRef {
                        event_id: cx.ids.next_id(cx.now),
                        command_id: self.command_id,
                        correlation_id: self.correlation_id,
                        recorded_at: cx.now,
                        occurred_at: *occurred_at,
                        version,
                        previous_seq,
                        tag: self.tag,
                        aggregate: A::NAME,
                        key: &self.record_key[2..],
                        event_name: crate::aggregate::EventName::name(&event),
                    };
                    if cx.handled[usize::from(self.tag)].contains(&envelope.event_name) {
                        cx.out.last_handled = seq;
                    }
                    let events_out = &mut cx.out.events;
                    A::with_encoded_event(&event, &mut |bytes| format::append_event(&envelope, bytes, events_out));
                    cx.out.event_ends.push(cx.out.events.len());
                    let ctx = EventContext {
                        id: &self.id,
                        version: version - 1,
                        occurred_at: *occurred_at,
                        event_id: envelope.event_id,
                    };
                    let mut views = TxnViews {
                        store: cx.store,
                        txn: cx.txn,
                        rows: cx.views,
                        only: None,
                        unflushed: true,
                        seq,
                        replay: false,
                    };
                    if let Err(error) = A::update_views(&event, &ctx, &mut views) {
                        return Err(Error::View(error.to_string()));
                    }
                    recorded.push(Recorded {
                        seq,
                        event_id: envelope.event_id,
                        version,
                        occurred_at: *occurred_at,
                        event,
                    });
                    previous_seq = seq;
                }
                if count > 0 {
                    cached.batch_last_seq = Some(previous_seq);
                }
                CommandOutcome::Accepted { first_seq, count, version: *version_before + u64::from(count) }
            }
        };
        if let Some(command_id) = self.meta.command_id {
            let record = CommandRecord { tag: self.tag, key: self.record_key[2..].to_vec(), outcome };
            cx.out.commands.push((command_id, format::encode_command(&record)));
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
