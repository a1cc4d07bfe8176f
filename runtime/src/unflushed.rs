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

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::hash::{FastMap, KeyBytes};

/// One record or row: its bytes as stored, the last commit that changed it, and whether the tables lack that.
pub(crate) struct Entry {
    pub(crate) bytes: Vec<u8>,
    pub(crate) seq: u64,
    pub(crate) dirty: bool,
}

/// A dirty entry's place in key order: (is a row, key). Records come before rows.
type DirtyKey = (bool, KeyBytes);

/// Records (key: type tag and instance key) and rows (key: view index `u16` big-endian and row key; bytes:
/// the row, then its last event as `u64` little-endian) committed and not yet written out, or written out and
/// not yet forgotten.
///
/// Steps go through the dirty entries in key order, a cycle at a time. Every entry dirty when a cycle starts
/// (`cycle_start_seq`) is written during that cycle (the steps pass every key), and an entry that becomes
/// dirty later holds only later events; so when a cycle ends, the tables hold every event up to its start:
/// that is the new checkpoint.
#[derive(Default)]
pub(crate) struct Unflushed {
    pub(crate) records: FastMap<KeyBytes, Entry>,
    pub(crate) rows: FastMap<KeyBytes, Entry>,
    /// The dirty entries, in key order.
    dirty: BTreeSet<DirtyKey>,
    /// Every held row's key (dirty or not), in key order: a range read of a view walks its part of this
    /// instead of every row held.
    row_keys: BTreeSet<KeyBytes>,
    /// The stored checkpoint as this process knows it.
    pub(crate) checkpoint_seq: u64,
    /// The last event whose records and rows are published (here or in the tables).
    pub(crate) seq: u64,
    /// `seq` at the last checkpoint step.
    step_seq: u64,
    /// `seq` when the current cycle of steps started.
    cycle_start_seq: u64,
    /// The last key the current cycle wrote (`None`: the cycle starts at the first key).
    cursor: Option<DirtyKey>,
}

/// What a checkpoint step writes: (is a row, key, bytes, the commit that last changed it).
pub(crate) type StepEntries = Vec<(bool, KeyBytes, Vec<u8>, u64)>;

/// A checkpoint step, planned from a snapshot: what it writes and where the steps stand once it commits.
pub(crate) struct StepPlan {
    pub(crate) entries: StepEntries,
    /// The checkpoint once the step is written.
    pub(crate) checkpoint_seq: u64,
    /// The last published event when the step was planned.
    pub(crate) seq: u64,
    cycle_start_seq: u64,
    cursor: Option<DirtyKey>,
}

impl Unflushed {
    /// Entries held (records and rows), written out or not.
    pub(crate) fn entries(&self) -> usize {
        self.records.len() + self.rows.len()
    }

    /// Events committed since the last checkpoint step.
    pub(crate) fn events_since_step(&self) -> u64 {
        self.seq - self.step_seq
    }

    /// Takes the committed records and rows of the events after `self.seq` up to `seq`. Their bytes move here
    /// (`staged` gets the replaced buffers back, for reuse).
    pub(crate) fn publish(&mut self, seq: u64, records: &mut Staged, rows: &mut Staged) {
        assert!(seq >= self.seq, "published events come in log order: {seq} after {}", self.seq);
        for (is_row, map, staged) in [(false, &mut self.records, records), (true, &mut self.rows, rows)] {
            for (key, bytes) in staged.iter_mut() {
                match map.get_mut(key) {
                    Some(entry) => {
                        std::mem::swap(&mut entry.bytes, bytes);
                        entry.seq = seq;
                        if !entry.dirty {
                            entry.dirty = true;
                            self.dirty.insert((is_row, KeyBytes::from_slice(key)));
                        }
                    }
                    None => {
                        let key = KeyBytes::from_slice(key);
                        // Copied, not taken: the staged buffer keeps its allocation for the next batch.
                        map.insert(key.clone(), Entry { bytes: bytes.clone(), seq, dirty: true });
                        if is_row {
                            self.row_keys.insert(key.clone());
                        }
                        self.dirty.insert((is_row, key));
                    }
                }
            }
        }
        self.seq = seq;
    }

    /// Plans the next checkpoint step: the next `1 / steps` of the dirty entries (all of them for `None`) in
    /// key order after the cursor, copied. When it reaches the last key, the cycle ends (the checkpoint moves
    /// to its start) and the rest is taken from the first key on, in a new cycle.
    pub(crate) fn next_step(&self, steps: Option<usize>) -> StepPlan {
        let count = match steps {
            None => self.dirty.len(),
            Some(steps) => self.dirty.len().div_ceil(steps.max(1)),
        };
        let copy = |(is_row, key): &DirtyKey| {
            let map = if *is_row { &self.rows } else { &self.records };
            let entry = map.get(key).expect("a dirty key has an entry");
            (*is_row, key.clone(), entry.bytes.clone(), entry.seq)
        };
        let after = match (&self.cursor, steps) {
            (Some(cursor), Some(_)) => Bound::Excluded(cursor),
            _ => Bound::Unbounded,
        };
        let mut entries: StepEntries = self.dirty.range((after, Bound::Unbounded)).take(count).map(copy).collect();
        let mut plan = StepPlan {
            entries: Vec::new(),
            checkpoint_seq: self.checkpoint_seq,
            seq: self.seq,
            cycle_start_seq: self.cycle_start_seq,
            cursor: entries.last().map(|(is_row, key, _, _)| (*is_row, key.clone())),
        };
        if steps.is_none() || self.dirty.is_empty() {
            // Everything at once (or nothing left): the tables hold every event up to now.
            plan.checkpoint_seq = self.seq;
            plan.cycle_start_seq = self.seq;
            plan.cursor = None;
        } else if entries.len() < count || self.dirty.range((after, Bound::Unbounded)).nth(count).is_none() {
            // The cycle reaches the last key: done. The next one starts now, from the first key.
            plan.checkpoint_seq = self.cycle_start_seq;
            plan.cycle_start_seq = self.seq;
            let rest: StepEntries = match &plan.cursor {
                None => self.dirty.iter().take(count - entries.len()).map(copy).collect(),
                Some(end) => self
                    .dirty
                    .range((Bound::Unbounded, Bound::Excluded(end)))
                    .take(count - entries.len())
                    .filter(|key| entries.binary_search_by(|e| (e.0, &e.1).cmp(&(key.0, &key.1))).is_err())
                    .map(copy)
                    .collect(),
            };
            plan.cursor = rest.last().map(|(is_row, key, _, _)| (*is_row, key.clone()));
            entries.extend(rest);
        }
        plan.entries = entries;
        plan
    }

    /// A step planned by [`Unflushed::next_step`] committed: the entries no commit changed since are clean,
    /// and the cursor, the cycle and the checkpoint move.
    pub(crate) fn stepped(&mut self, plan: &StepPlan) {
        for (is_row, key, _, seq) in &plan.entries {
            let map = if *is_row { &mut self.rows } else { &mut self.records };
            if let Some(entry) = map.get_mut(&key[..]) {
                if entry.seq == *seq && entry.dirty {
                    entry.dirty = false;
                    self.dirty.remove(&(*is_row, key.clone()));
                }
            }
        }
        assert!(plan.checkpoint_seq >= self.checkpoint_seq, "the checkpoint moves forward");
        self.checkpoint_seq = plan.checkpoint_seq;
        self.step_seq = self.step_seq.max(plan.seq);
        self.cycle_start_seq = plan.cycle_start_seq;
        self.cursor = plan.cursor.clone();
    }

    /// Drops the entries the tables hold. The caller makes sure that no read transaction older than the step
    /// that wrote them is open (see `Store::forget_flushed`).
    pub(crate) fn forget_flushed(&mut self) {
        self.records.retain(|_, entry| entry.dirty);
        let row_keys = &mut self.row_keys;
        self.rows.retain(|key, entry| {
            if !entry.dirty {
                row_keys.remove(key);
            }
            entry.dirty
        });
        debug_assert_eq!(self.row_keys.len(), self.rows.len(), "every held row has its key in order");
    }

    /// Drops every row of view `index`, dirty or not: a rebuild has written the view whole, newer than them.
    pub(crate) fn forget_rows_of(&mut self, index: u16) {
        let prefix = index.to_be_bytes();
        self.rows.retain(|key, _| key[..2] != prefix);
        self.row_keys.retain(|key| key[..2] != prefix);
        self.dirty.retain(|(is_row, key)| !*is_row || key[..2] != prefix);
    }

    /// Drops every entry: the tables hold everything up to `seq` (a recovery, a reset).
    pub(crate) fn reset(&mut self, checkpoint_seq: u64, seq: u64) {
        self.records.clear();
        self.rows.clear();
        self.row_keys.clear();
        self.dirty.clear();
        self.checkpoint_seq = checkpoint_seq;
        self.seq = seq;
        self.step_seq = seq;
        self.cycle_start_seq = seq;
        self.cursor = None;
    }

    /// The first `limit` rows of view `index` with keys at or after `from`, in key order (row keys without the
    /// view index; values as stored).
    pub(crate) fn rows_from(&self, index: u16, from: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let prefix = index.to_be_bytes();
        let mut start = KeyBytes::from_slice(&prefix);
        start.extend_from_slice(from);
        self.row_keys
            .range(start..)
            .take_while(|key| key[..2] == prefix)
            .take(limit)
            .map(|key| {
                let entry = self.rows.get(key).expect("a held row's key has its row");
                (key[2..].to_vec(), entry.bytes.clone())
            })
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

    /// The entries, with their bytes to take or swap.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&[u8], &mut Vec<u8>)> {
        self.entries[..self.len].iter_mut().map(|(key, bytes)| (&key[..], bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(keys: &[&str], bytes: &str) -> Staged {
        let mut staged = Staged::default();
        for key in keys {
            staged.push_with(key.as_bytes(), |out| out.extend_from_slice(bytes.as_bytes()));
        }
        staged
    }

    /// Runs one step of `1 / steps` and returns (keys written, checkpoint after it).
    fn step(unflushed: &mut Unflushed, steps: Option<usize>) -> (String, u64) {
        let plan = unflushed.next_step(steps);
        unflushed.stepped(&plan);
        let keys: Vec<String> = plan.entries.iter().map(|(_, key, _, _)| String::from_utf8_lossy(key).into()).collect();
        (keys.join(","), unflushed.checkpoint_seq)
    }

    #[test]
    fn steps_go_through_the_dirty_keys_in_order_and_the_checkpoint_moves_to_a_finished_cycles_start() {
        let mut unflushed = Unflushed::default();
        unflushed.reset(0, 0);
        let mut none = Staged::default();
        unflushed.publish(10, &mut staged(&["a", "b", "c", "d", "e", "f"], "v1"), &mut none);
        // A cycle started at 0: a third of the dirty keys per step, the checkpoint stays until it ends.
        assert_eq!(step(&mut unflushed, Some(3)), ("a,b".into(), 0));
        // Changed again after the cursor passed it: dirty, for the next cycle.
        unflushed.publish(20, &mut staged(&["a"], "v2"), &mut none);
        assert_eq!(step(&mut unflushed, Some(3)), ("c,d".into(), 0));
        assert_eq!(step(&mut unflushed, Some(3)), ("e".into(), 0));
        // The last key ends the cycle; the next starts at 20, from the first key.
        assert_eq!(step(&mut unflushed, Some(3)), ("f".into(), 0));
        // It ends too: every key dirty at its start (20) was written, so the tables hold every event to 20.
        assert_eq!(step(&mut unflushed, Some(3)), ("a".into(), 20));
        // Nothing dirty left: the tables hold everything published.
        assert_eq!(step(&mut unflushed, Some(3)), ("".into(), 20));
        // A step whose snapshot a later commit changed leaves that entry dirty.
        unflushed.publish(30, &mut staged(&["b", "c"], "v3"), &mut none);
        let plan = unflushed.next_step(Some(1));
        unflushed.publish(40, &mut staged(&["c"], "v4"), &mut none);
        unflushed.stepped(&plan);
        assert_eq!(plan.checkpoint_seq, 20);
        assert_eq!(step(&mut unflushed, None), ("c".into(), 40));
        assert_eq!(unflushed.records.get(b"c".as_slice()).map(|e| e.bytes.clone()), Some(b"v4".to_vec()));
        unflushed.forget_flushed();
        assert_eq!(unflushed.entries(), 0);
    }

    /// The keys and bytes `rows_from` returns, as text.
    fn rows_from(unflushed: &Unflushed, index: u16, from: &str, limit: usize) -> String {
        let rows = unflushed.rows_from(index, from.as_bytes(), limit);
        let rows: Vec<String> = rows
            .iter()
            .map(|(key, bytes)| format!("{}={}", String::from_utf8_lossy(key), String::from_utf8_lossy(bytes)))
            .collect();
        rows.join(",")
    }

    /// Row keys of view `index`: the view index, big-endian, then the row key.
    fn row_keys(index: u16, keys: &[&str]) -> Vec<String> {
        let prefix = String::from_utf8(index.to_be_bytes().to_vec()).expect("ASCII");
        keys.iter().map(|key| format!("{prefix}{key}")).collect()
    }

    #[test]
    fn range_reads_take_a_views_rows_in_key_order_from_a_key_up_to_a_limit() {
        let mut unflushed = Unflushed::default();
        unflushed.reset(0, 0);
        let mut none = Staged::default();
        let published: Vec<String> = [row_keys(1, &["d", "a", "c"]), row_keys(2, &["b"]), row_keys(0, &["z"])].concat();
        let keys: Vec<&str> = published.iter().map(String::as_str).collect();
        unflushed.publish(10, &mut none, &mut staged(&keys, "v1"));
        assert_eq!(rows_from(&unflushed, 1, "", 10), "a=v1,c=v1,d=v1");
        assert_eq!(rows_from(&unflushed, 1, "b", 10), "c=v1,d=v1");
        assert_eq!(rows_from(&unflushed, 1, "c", 1), "c=v1");
        assert_eq!(rows_from(&unflushed, 1, "e", 10), "");
        assert_eq!(rows_from(&unflushed, 2, "", 10), "b=v1");
        assert_eq!(rows_from(&unflushed, 3, "", 10), "");
        // A row published again is read with its new bytes; one written out stays readable until forgotten.
        let again = row_keys(1, &["c"]);
        unflushed.publish(20, &mut none, &mut staged(&[again[0].as_str()], "v2"));
        assert_eq!(rows_from(&unflushed, 1, "", 10), "a=v1,c=v2,d=v1");
        step(&mut unflushed, None);
        assert_eq!(rows_from(&unflushed, 1, "", 2), "a=v1,c=v2");
        unflushed.forget_flushed();
        assert_eq!(rows_from(&unflushed, 1, "", 10), "");
        // A view's rows forgotten after a rebuild leave no dirty key behind for a step to find.
        unflushed.publish(30, &mut none, &mut staged(&keys, "v3"));
        unflushed.forget_rows_of(1);
        assert_eq!(rows_from(&unflushed, 1, "", 10), "");
        assert_eq!(rows_from(&unflushed, 2, "", 10), "b=v3");
        let (written, _) = step(&mut unflushed, None);
        assert_eq!(written, format!("{},{}", row_keys(0, &["z"])[0], row_keys(2, &["b"])[0]));
    }
}
