//! Write-behind: instance records and view rows whose events are committed in the log but that are not yet
//! written to their tables. A checkpoint writes them out in one transaction and moves the stored checkpoint.
//!
//! Why: a batch of commands on random instances dirties one B-tree page per instance record and per view row
//! it touches (the log itself is appended, so it dirties only its rightmost pages). Writing those records once
//! per checkpoint instead of once per batch writes each hot page once for many batches, and the commit of a
//! batch syncs little more than its log pages. The log stays the only source of truth: after a crash, opening
//! the store replays the events after the stored checkpoint into the records and rows (see
//! `engine::recovery`).
//!
//! Invariants:
//! - the tables hold every record and row as of the stored checkpoint, exactly (a checkpoint writes them and
//!   moves it in one transaction), so a replay after it never applies an event twice;
//! - an entry here is at least as new as the table's (it is published after its commit; it is forgotten only
//!   once the tables hold it and no read transaction that could predate them is open).

use crate::hash::FastMap;

/// One record or row: its bytes as stored, and the last event folded into it.
pub(crate) struct Entry {
    pub(crate) bytes: Vec<u8>,
    pub(crate) seq: u64,
}

/// Records (key: type tag and instance key) and rows (key: view index `u16` big-endian and row key) committed
/// after the stored checkpoint (or before it and not forgotten yet).
#[derive(Default)]
pub(crate) struct Unflushed {
    pub(crate) records: FastMap<Vec<u8>, Entry>,
    pub(crate) rows: FastMap<Vec<u8>, Entry>,
    /// The stored checkpoint as this process knows it.
    pub(crate) checkpoint_seq: u64,
    /// The last event whose records and rows are published (here or in the tables).
    pub(crate) seq: u64,
}

impl Unflushed {
    /// Entries held (records and rows), written out or not.
    pub(crate) fn entries(&self) -> usize {
        self.records.len() + self.rows.len()
    }

    /// Events committed after the stored checkpoint.
    pub(crate) fn events_since_checkpoint(&self) -> u64 {
        self.seq - self.checkpoint_seq
    }

    /// Takes the committed records and rows of the events up to `seq`.
    pub(crate) fn publish(&mut self, seq: u64, records: &Staged, rows: &Staged) {
        assert!(seq >= self.seq, "published events come in log order: {seq} after {}", self.seq);
        for (map, staged) in [(&mut self.records, records), (&mut self.rows, rows)] {
            for (key, bytes) in staged.iter() {
                match map.get_mut(key) {
                    Some(entry) => {
                        entry.bytes.clear();
                        entry.bytes.extend_from_slice(bytes);
                        entry.seq = seq;
                    }
                    None => {
                        map.insert(key.to_vec(), Entry { bytes: bytes.to_vec(), seq });
                    }
                }
            }
        }
        self.seq = seq;
    }

    /// The entries not yet in the tables, in key order: (is a row, key, bytes).
    pub(crate) fn to_write(&self) -> Vec<(bool, Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(bool, Vec<u8>, Vec<u8>)> = Vec::with_capacity(self.entries());
        for (is_row, map) in [(false, &self.records), (true, &self.rows)] {
            for (key, entry) in map {
                if entry.seq > self.checkpoint_seq {
                    out.push((is_row, key.clone(), entry.bytes.clone()));
                }
            }
        }
        // Key order: neighbouring puts walk the same B-tree pages.
        out.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out
    }

    /// Drops the entries the tables hold (those at or before the stored checkpoint). The caller makes sure that
    /// no read transaction older than that checkpoint is open (see `Store::forget_flushed`).
    pub(crate) fn forget_flushed(&mut self) {
        let checkpoint_seq = self.checkpoint_seq;
        self.records.retain(|_, entry| entry.seq > checkpoint_seq);
        self.rows.retain(|_, entry| entry.seq > checkpoint_seq);
    }

    /// Rows of view `index` with keys at or after `from` (row keys without the view index), unordered.
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
