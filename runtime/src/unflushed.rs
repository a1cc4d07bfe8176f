//! Write-behind: instance records and view rows whose events are committed in the log but that are not yet
//! written to their tables. Checkpoint steps write them out a slice at a time, in key order.
//!
//! Why: a batch of commands on random instances dirties one B-tree page per instance record and per view row
//! it touches (the log itself is appended, so it dirties only its rightmost pages). Written behind the log, a
//! hot record is written once per checkpoint cycle instead of once per batch, and the commit of a batch syncs
//! little more than its log pages. A step writes the next slice of the dirty entries in key order (so it
//! dirties neighbouring pages, and each step is short: the commits that wait for it wait little). The log
//! stays the only source of truth: after a crash, opening the store replays the events after the stored
//! checkpoint into the records and rows (see `engine::recovery`).
//!
//! Invariants:
//! - the stored checkpoint is a low-water mark: the tables hold every event up to it for every record and
//!   row; a record or row may hold later ones too (written by a step), and says which (a record its last
//!   event, a row the last event folded into it), so a replay applies each event only where it is missing;
//! - an entry here is at least as new as the table's (it is published after its commit; it is forgotten only
//!   once the tables hold it and no read transaction that could predate that is open).

use crate::hash::FastMap;

/// One record or row: its bytes as stored, the last commit that changed it, and since which event the tables
/// lack its changes (0: they hold it).
pub(crate) struct Entry {
    pub(crate) bytes: Vec<u8>,
    pub(crate) seq: u64,
    pub(crate) dirty_since: u64,
}

/// Records (key: type tag and instance key) and rows (key: view index `u16` big-endian and row key; bytes:
/// the row, then its last event as `u64` little-endian) committed and not yet written out, or written out and
/// not yet forgotten.
#[derive(Default)]
pub(crate) struct Unflushed {
    pub(crate) records: FastMap<Vec<u8>, Entry>,
    pub(crate) rows: FastMap<Vec<u8>, Entry>,
    /// The stored checkpoint as this process knows it.
    pub(crate) checkpoint_seq: u64,
    /// The last event whose records and rows are published (here or in the tables).
    pub(crate) seq: u64,
    /// `seq` at the last checkpoint step.
    pub(crate) step_seq: u64,
    /// Where the next step starts: after this key (rows after records).
    cursor: Option<(bool, Vec<u8>)>,
}

/// What a checkpoint step writes: (is a row, key, bytes, the commit that last changed it).
pub(crate) type StepEntries = Vec<(bool, Vec<u8>, Vec<u8>, u64)>;

impl Unflushed {
    /// Entries held (records and rows), written out or not.
    pub(crate) fn entries(&self) -> usize {
        self.records.len() + self.rows.len()
    }

    /// Events committed since the last checkpoint step.
    pub(crate) fn events_since_step(&self) -> u64 {
        self.seq - self.step_seq
    }

    /// Takes the committed records and rows of the events after `self.seq` up to `seq`.
    pub(crate) fn publish(&mut self, seq: u64, records: &Staged, rows: &Staged) {
        assert!(seq >= self.seq, "published events come in log order: {seq} after {}", self.seq);
        let first_seq = self.seq + 1;
        for (map, staged) in [(&mut self.records, records), (&mut self.rows, rows)] {
            for (key, bytes) in staged.iter() {
                match map.get_mut(key) {
                    Some(entry) => {
                        entry.bytes.clear();
                        entry.bytes.extend_from_slice(bytes);
                        entry.seq = seq;
                        if entry.dirty_since == 0 {
                            entry.dirty_since = first_seq;
                        }
                    }
                    None => {
                        map.insert(key.to_vec(), Entry { bytes: bytes.to_vec(), seq, dirty_since: first_seq });
                    }
                }
            }
        }
        self.seq = seq;
    }

    /// The next checkpoint step: the next `1 / steps` of the dirty entries (all of them for `None`) in key
    /// order after the cursor (wrapping around), copied, and the checkpoint that holds once they are written
    /// (the event before the oldest change still missing from the tables).
    pub(crate) fn next_step(&self, steps: Option<usize>) -> (StepEntries, u64) {
        let mut dirty: Vec<(bool, &Vec<u8>, &Entry)> = Vec::new();
        for (is_row, map) in [(false, &self.records), (true, &self.rows)] {
            let entries = map.iter().filter(|(_, entry)| entry.dirty_since != 0);
            dirty.extend(entries.map(|(key, entry)| (is_row, key, entry)));
        }
        let count = match steps {
            None => dirty.len(),
            Some(steps) => dirty.len().div_ceil(steps.max(1)),
        };
        let order = |a: &(bool, &Vec<u8>, &Entry), b: &(bool, &Vec<u8>, &Entry)| (a.0, a.1).cmp(&(b.0, b.1));
        // After the cursor first, then from the start: a cycle of steps goes once through the key space.
        let (mut after, mut before): (Vec<_>, Vec<_>) = match &self.cursor {
            None => (dirty, Vec::new()),
            Some((cursor_is_row, cursor)) => {
                dirty.into_iter().partition(|(is_row, key, _)| (*is_row, *key) > (*cursor_is_row, cursor))
            }
        };
        let mut chosen = Vec::with_capacity(count.min(after.len() + before.len()));
        // The oldest change of the entries left dirty bounds the checkpoint.
        let mut oldest_left = u64::MAX;
        for part in [&mut after, &mut before] {
            let take = (count - chosen.len()).min(part.len());
            if take < part.len() {
                part.select_nth_unstable_by(take, order);
                let left = part[take..].iter().map(|(_, _, entry)| entry.dirty_since).min();
                oldest_left = oldest_left.min(left.unwrap_or(u64::MAX));
                part.truncate(take);
            }
            part.sort_unstable_by(order);
            chosen.extend(
                part.iter().map(|(is_row, key, entry)| (*is_row, (*key).clone(), entry.bytes.clone(), entry.seq)),
            );
        }
        (chosen, oldest_left.min(self.seq + 1) - 1)
    }

    /// A step that copied its entries when `step_seq` was the last published event committed: those no commit
    /// changed since are clean; the others lack only what came after `step_seq`. The checkpoint moved.
    pub(crate) fn stepped(&mut self, written: &StepEntries, checkpoint_seq: u64, step_seq: u64) {
        for (is_row, key, _, seq) in written {
            let map = if *is_row { &mut self.rows } else { &mut self.records };
            if let Some(entry) = map.get_mut(key) {
                entry.dirty_since = if entry.seq == *seq { 0 } else { step_seq + 1 };
            }
        }
        assert!(checkpoint_seq >= self.checkpoint_seq, "the checkpoint moves forward");
        self.checkpoint_seq = checkpoint_seq;
        self.step_seq = self.step_seq.max(step_seq);
        self.cursor = written.last().map(|(is_row, key, _, _)| (*is_row, key.clone()));
    }

    /// Drops the entries the tables hold. The caller makes sure that no read transaction older than the step
    /// that wrote them is open (see `Store::forget_flushed`).
    pub(crate) fn forget_flushed(&mut self) {
        self.records.retain(|_, entry| entry.dirty_since != 0);
        self.rows.retain(|_, entry| entry.dirty_since != 0);
    }

    /// Drops every entry: the tables hold everything up to `seq` (a recovery, a reset).
    pub(crate) fn reset(&mut self, checkpoint_seq: u64, seq: u64) {
        self.records.clear();
        self.rows.clear();
        self.checkpoint_seq = checkpoint_seq;
        self.seq = seq;
        self.step_seq = seq;
        self.cursor = None;
    }

    /// Rows of view `index` with keys at or after `from` (row keys without the view index; values as stored),
    /// unordered.
    pub(crate) fn rows_from(&self, index: u16, from: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let prefix = index.to_be_bytes();
        self.rows
            .iter()
            .filter(|(key, _)| key[..2] == prefix && &key[2..] >= from)
            .map(|(key, entry)| (key[2..].to_vec(), entry.bytes.clone()))
            .collect()
    }
}

/// Keys and bytes written by one write attempt, kept (with their allocations) for the next one.
#[derive(Default)]
pub(crate) struct Staged {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    len: usize,
}

impl Staged {
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Adds an entry: `key`, and bytes that `fill` writes into an empty buffer.
    pub(crate) fn push_with(&mut self, key: &[u8], fill: impl FnOnce(&mut Vec<u8>)) {
        if self.len == self.entries.len() {
            self.entries.push((Vec::new(), Vec::new()));
        }
        let (stored_key, bytes) = &mut self.entries[self.len];
        stored_key.clear();
        stored_key.extend_from_slice(key);
        bytes.clear();
        fill(bytes);
        self.len += 1;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries[..self.len].iter().map(|(key, bytes)| (&key[..], &bytes[..]))
    }
}
