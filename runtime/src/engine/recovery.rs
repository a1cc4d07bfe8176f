//! Replaying the log after the stored checkpoint into instance records and view rows: the owner does it once
//! when it opens a store (a crash left records and rows unflushed), a reader beside the owner does it before
//! its reads (the owner's unflushed records live in the owner's memory). See `crate::unflushed`.

use super::*;

/// Events read from the log per step (bounds the memory of a chunk, not of the replay).
const CHUNK_EVENTS_MAX: usize = 4096;

/// The records and rows of the events after a checkpoint, encoded as stored.
pub(super) struct Replayed {
    pub(super) records: Staged,
    pub(super) rows: Staged,
    /// The last event replayed (`since` if none).
    pub(super) last_seq: u64,
}

/// Replays the events after `since`, up to the last one `txn` sees, onto the records (and, with `views`, the
/// view rows) as `txn` and the unflushed entries hold them: each holds every event up to `since` and maybe
/// later ones (a checkpoint step wrote it), which are skipped for it.
pub(super) fn replay_after<D: Domain>(
    store: &Store,
    registry: &Registry<D>,
    txn: &RoTxn,
    since: u64,
    views: bool,
) -> Result<Replayed, Error> {
    // Per instance: version, last event, encoded state, whether the replay changed it.
    let mut records: FastMap<Vec<u8>, (u64, u64, Vec<u8>, bool)> = FastMap::default();
    let mut rows = ViewRows::new(0);
    let mut seq = since;
    let mut key = Vec::new();
    // Bounded by the log: each round reads the next chunk.
    loop {
        let chunk = store.events_after(txn, seq, CHUNK_EVENTS_MAX)?;
        let Some(last) = chunk.last() else { break };
        seq = last.seq;
        for stored in &chunk {
            let envelope = &stored.envelope;
            let entry = registry.by_tag(envelope.tag, stored.seq)?;
            if views {
                let (seq, replay) = (stored.seq, true);
                let mut tables = TxnViews { store, txn, rows: &mut rows, only: None, unflushed: true, seq, replay };
                if let Err(error) = (entry.fold_views)(stored, &mut tables) {
                    return Err(Error::View(format!("replaying event {}: {error}", stored.seq)));
                }
            }
            key.clear();
            format::aggregate_key(envelope.tag, &envelope.key, &mut key);
            if !records.contains_key(&key) {
                let record = match store.aggregate(txn, &key)? {
                    Some(record) => (record.version, record.last_seq, record.state, false),
                    None => (0, 0, Vec::new(), false),
                };
                records.insert(key.clone(), record);
            }
            let (version, last_seq, state, changed) = records.get_mut(&key).expect("inserted above");
            if *last_seq >= stored.seq {
                // A checkpoint step wrote the record after this event.
                continue;
            }
            if envelope.version != *version + 1 || envelope.previous_seq != *last_seq {
                return Err(Error::Corrupt {
                    table: "log",
                    at: stored.seq.to_string(),
                    message: format!(
                        "the event is version {} of `{}` after event {}, but its record is at version {} after event {}",
                        envelope.version, entry.name, envelope.previous_seq, version, last_seq
                    ),
                });
            }
            *state = (entry.apply_event)(stored, (*version > 0).then_some(&state[..]))?;
            *version = envelope.version;
            *last_seq = stored.seq;
            *changed = true;
        }
    }
    let mut staged = Staged::default();
    for (key, (version, last_seq, state, _)) in records.iter().filter(|(_, record)| record.3) {
        staged.push_with(key, |out| format::encode_aggregate_into(*version, *last_seq, state, out));
    }
    let mut staged_rows = Staged::default();
    rows.stage_into(&mut staged_rows, seq);
    Ok(Replayed { records: staged, rows: staged_rows, last_seq: seq })
}

/// Opening a store as its owner: replays the events after the stored checkpoint (a crash left them
/// unflushed) into the tables, and moves the checkpoint to the last event, in one transaction. Returns the
/// number of events replayed.
pub(super) fn recover<D: Domain>(store: &Store, registry: &Registry<D>) -> Result<u64, Error> {
    let (last_seq, replayed) = store.write(|txn| {
        let since = store.checkpoint_seq(txn)?;
        let last_seq = store.last_seq(txn)?;
        if since == last_seq {
            return Ok((last_seq, 0));
        }
        write_replayed_after(store, registry, txn, since, true)?;
        Ok((last_seq, last_seq - since))
    })?;
    store.recovered(last_seq);
    Ok(replayed)
}

/// Replays the events after `since` into the tables and moves the stored checkpoint to the last one, in `txn`.
pub(super) fn write_replayed_after<D: Domain>(
    store: &Store,
    registry: &Registry<D>,
    txn: &mut RwTxn<'_>,
    since: u64,
    views: bool,
) -> Result<(), WriteError> {
    let replayed = replay_after(store, registry, txn, since, views)?;
    for (key, bytes) in replayed.records.iter() {
        store.put_aggregate(txn, key, bytes)?;
    }
    for (key, bytes) in replayed.rows.iter() {
        store.view_table_at(u16::from_be_bytes([key[0], key[1]])).put(txn, &key[2..], bytes)?;
    }
    store.put_checkpoint(txn, replayed.last_seq)?;
    Ok(())
}

/// How long a reader beside the owner waits for its own other reads to end before it drops the entries it
/// replayed (the owner's checkpoint moved past them).
const RESET_WAIT: Duration = Duration::from_secs(10);
/// Times a reader beside the owner tries to catch up before giving up (another read kept the store busy).
const CATCH_UP_ROUNDS_MAX: u32 = 8;
/// Entries a reader beside the owner keeps replayed, in multiples of `checkpoint_entries_max`, before it drops
/// them and replays from the owner's checkpoint again.
const READER_ENTRIES_FACTOR: usize = 4;

/// A read transaction, and for a reader beside the owner, its turn: such a reader reads one at a time, each
/// with the owner's records and rows replayed up to the last event its transaction sees.
pub(super) struct Reading<'a> {
    pub(super) txn: crate::store::ReadTxn<'a>,
    pub(super) _turn: Option<parking_lot::MutexGuard<'a, ()>>,
}

impl<'a> std::ops::Deref for Reading<'a> {
    type Target = crate::store::ReadTxn<'a>;
    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

/// For a reader beside the owner: a read transaction, after replaying into memory the records and rows the
/// owner committed and has not written out (it writes them behind the log, so its tables lag), up to the last
/// event that transaction sees.
pub(super) fn read_beside_owner<D: Domain>(inner: &Inner<D>) -> Result<Reading<'_>, Error> {
    let store = &inner.store;
    for _ in 0..CATCH_UP_ROUNDS_MAX {
        let turn = inner.catching_up.lock();
        let txn = store.read()?;
        let checkpoint_seq = store.checkpoint_seq(&txn)?;
        let (_, replayed_seq) = store.unflushed_bounds();
        let (_, entries) = store.unflushed_size();
        // The owner wrote out more than was replayed here (its tables are newer than these entries), or the
        // entries grew large: start again from its checkpoint.
        if checkpoint_seq > replayed_seq
            || entries > inner.config.checkpoint_entries_max as usize * READER_ENTRIES_FACTOR
        {
            drop(txn);
            if !store.reset_unflushed(checkpoint_seq, RESET_WAIT) {
                return Err(Error::Store { message: "reads kept the store busy while it caught up; try again".into() });
            }
            continue;
        }
        if store.last_seq(&txn)? > replayed_seq {
            let mut replayed = replay_after(store, &inner.registry, &txn, replayed_seq, true)?;
            store.publish(replayed.last_seq, &mut replayed.records, &mut replayed.rows);
        }
        return Ok(Reading { txn, _turn: Some(turn) });
    }
    Err(Error::Store { message: "reads kept the store busy while it caught up; try again".into() })
}
