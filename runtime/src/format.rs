//! The stored byte formats the runtime owns (event envelope, aggregate record, command record), and event ids.
//!
//! Each record is little-endian with explicit sizes, ends with a checksum of everything before it, and is
//! parsed with bounds checks: a damaged record is a [`DecodeError`], never a panic or garbage. The domain's
//! own values (events, states, view rows) inside them are rkyv bytes that generated code validates.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::DecodeError;
use crate::value::Timestamp;

/// The version of every format in this module; a store written with another version is refused.
pub const FORMAT_VERSION: u32 = 1;

/// Aggregate names longer than this are refused (they are model names, short by construction).
pub const AGGREGATE_NAME_BYTES_MAX: usize = 255;

/// A 64-bit checksum of the record, eight bytes at a time: catches torn or flipped bytes that a length check
/// alone would miss. Not cryptographic; it guards against accidents, not attackers.
pub fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(word)).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    hash = (hash ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    hash ^ (hash >> 32)
}

fn seal(mut out: Vec<u8>) -> Vec<u8> {
    seal_in_place(&mut out, 0);
    out
}

/// Appends the checksum of `out[start..]`.
fn seal_in_place(out: &mut Vec<u8>, start: usize) {
    let sum = checksum(&out[start..]);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// A bounds-checked reader over one record whose checksum has been verified.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn open(bytes: &'a [u8], what: &'static str) -> Result<Self, DecodeError> {
        if bytes.len() < 9 {
            return Err(DecodeError::new(format!("{what}: {} bytes is too short", bytes.len())));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let mut sum_bytes = [0u8; 8];
        sum_bytes.copy_from_slice(sum);
        if checksum(body) != u64::from_le_bytes(sum_bytes) {
            return Err(DecodeError::new(format!("{what}: checksum mismatch")));
        }
        let mut reader = Reader { bytes: body, what };
        let version = reader.u8()?;
        if u32::from(version) != FORMAT_VERSION {
            return Err(DecodeError::new(format!("{what}: unknown format version {version}")));
        }
        Ok(reader)
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError::new(format!("{}: truncated", self.what)));
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(format!("{}: {} trailing bytes", self.what, self.bytes.len())))
        }
    }
}

/// What the log stores with each event besides the event itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub event_id: u128,
    pub command_id: u128,
    pub correlation_id: u128,
    pub recorded_at: Timestamp,
    pub occurred_at: Timestamp,
    /// The aggregate's version once this event is applied (its first event has version 1).
    pub version: u64,
    /// The sequence number of the aggregate's previous event, 0 for its first: the log links each
    /// aggregate's events backwards, so reading them needs no per-event index write.
    pub previous_seq: u64,
    /// The aggregate type's position in the domain (fixed by the schema fingerprint).
    pub tag: u16,
    pub aggregate: String,
    pub key: Vec<u8>,
    /// The event's name in the model: lets readers skip events without decoding them.
    pub event_name: String,
}

/// An envelope to write, borrowing its names and key.
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeRef<'a> {
    pub event_id: u128,
    pub command_id: u128,
    pub correlation_id: u128,
    pub recorded_at: Timestamp,
    pub occurred_at: Timestamp,
    pub version: u64,
    pub previous_seq: u64,
    pub tag: u16,
    pub aggregate: &'a str,
    pub key: &'a [u8],
    pub event_name: &'a str,
}

impl Envelope {
    pub fn as_ref(&self) -> EnvelopeRef<'_> {
        EnvelopeRef {
            event_id: self.event_id,
            command_id: self.command_id,
            correlation_id: self.correlation_id,
            recorded_at: self.recorded_at,
            occurred_at: self.occurred_at,
            version: self.version,
            previous_seq: self.previous_seq,
            tag: self.tag,
            aggregate: &self.aggregate,
            key: &self.key,
            event_name: &self.event_name,
        }
    }
}

/// An event as the log stores it: its envelope and the event's own bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub envelope: Envelope,
    pub event: Vec<u8>,
}

pub fn encode_event(envelope: &Envelope, event: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_event_into(&envelope.as_ref(), event, &mut out);
    out
}

/// Appends the stored form of an event to `out` (cleared first), so a writer can reuse one buffer.
pub fn encode_event_into(envelope: &EnvelopeRef<'_>, event: &[u8], out: &mut Vec<u8>) {
    out.clear();
    append_event(envelope, event, out);
}

/// Appends an encoded event (as [`encode_event_into`] writes it) to `out`: a batch's events, back to back.
pub fn append_event(envelope: &EnvelopeRef<'_>, event: &[u8], out: &mut Vec<u8>) {
    assert!(envelope.aggregate.len() <= AGGREGATE_NAME_BYTES_MAX);
    assert!(envelope.event_name.len() <= AGGREGATE_NAME_BYTES_MAX);
    assert!(envelope.key.len() <= usize::from(u16::MAX));
    let event_len = u32::try_from(event.len()).expect("an event larger than 4 GiB");
    let start = out.len();
    out.reserve(130 + envelope.aggregate.len() + envelope.key.len() + envelope.event_name.len() + event.len());
    out.push(FORMAT_VERSION as u8);
    out.extend_from_slice(&envelope.event_id.to_le_bytes());
    out.extend_from_slice(&envelope.command_id.to_le_bytes());
    out.extend_from_slice(&envelope.correlation_id.to_le_bytes());
    out.extend_from_slice(&envelope.recorded_at.micros().to_le_bytes());
    out.extend_from_slice(&envelope.occurred_at.micros().to_le_bytes());
    out.extend_from_slice(&envelope.version.to_le_bytes());
    out.extend_from_slice(&envelope.previous_seq.to_le_bytes());
    out.extend_from_slice(&envelope.tag.to_le_bytes());
    out.push(envelope.aggregate.len() as u8);
    out.extend_from_slice(envelope.aggregate.as_bytes());
    out.extend_from_slice(&(envelope.key.len() as u16).to_le_bytes());
    out.extend_from_slice(envelope.key);
    out.push(envelope.event_name.len() as u8);
    out.extend_from_slice(envelope.event_name.as_bytes());
    out.extend_from_slice(&event_len.to_le_bytes());
    out.extend_from_slice(event);
    seal_in_place(out, start);
}

pub fn decode_event(seq: u64, bytes: &[u8]) -> Result<StoredEvent, DecodeError> {
    decode_event_ref(seq, bytes).map(|event| event.to_owned())
}

/// A stored event read in place (checked like [`decode_event`], without copying).
#[derive(Clone, Copy, Debug)]
pub struct StoredEventRef<'a> {
    pub seq: u64,
    pub envelope: EnvelopeRef<'a>,
    pub event: &'a [u8],
}

impl StoredEventRef<'_> {
    pub fn to_owned(&self) -> StoredEvent {
        let e = &self.envelope;
        StoredEvent {
            seq: self.seq,
            envelope: Envelope {
                event_id: e.event_id,
                command_id: e.command_id,
                correlation_id: e.correlation_id,
                recorded_at: e.recorded_at,
                occurred_at: e.occurred_at,
                version: e.version,
                previous_seq: e.previous_seq,
                tag: e.tag,
                aggregate: e.aggregate.to_owned(),
                key: e.key.to_vec(),
                event_name: e.event_name.to_owned(),
            },
            event: self.event.to_vec(),
        }
    }
}

pub fn decode_event_ref(seq: u64, bytes: &[u8]) -> Result<StoredEventRef<'_>, DecodeError> {
    let mut r = Reader::open(bytes, "event envelope")?;
    let event_id = r.u128()?;
    let command_id = r.u128()?;
    let correlation_id = r.u128()?;
    let recorded_at = Timestamp::from_micros(r.i64()?);
    let occurred_at = Timestamp::from_micros(r.i64()?);
    let version = r.u64()?;
    let previous_seq = r.u64()?;
    let tag = r.u16()?;
    let name_len = usize::from(r.u8()?);
    let aggregate = std::str::from_utf8(r.take(name_len)?)
        .map_err(|_| DecodeError::new("event envelope: the aggregate name is not UTF-8"))?;
    let key_len = usize::from(r.u16()?);
    let key = r.take(key_len)?;
    let name_len = usize::from(r.u8()?);
    let event_name = std::str::from_utf8(r.take(name_len)?)
        .map_err(|_| DecodeError::new("event envelope: the event name is not UTF-8"))?;
    let event_len = r.u32()? as usize;
    let event = r.take(event_len)?;
    r.finish()?;
    if version == 0 || previous_seq >= seq {
        return Err(DecodeError::new("event envelope: version 0 or a previous event that is not earlier"));
    }
    let envelope = EnvelopeRef {
        event_id,
        command_id,
        correlation_id,
        recorded_at,
        occurred_at,
        version,
        previous_seq,
        tag,
        aggregate,
        key,
        event_name,
    };
    Ok(StoredEventRef { seq, envelope, event })
}

/// The first byte of a log entry that packs several events. An event record starts with its format version
/// (`FORMAT_VERSION`), so an entry holding one event as it is (as every entry of a store of format 3 does)
/// cannot be mistaken for a pack.
pub const LOG_PACK_TAG: u8 = 0xEA;

/// A pack grows to at most this many bytes: LMDB keeps a value this small in its leaf page (a larger one goes
/// to overflow pages, which must be found in contiguous runs), so two packs fill a 4 KiB page.
pub const LOG_PACK_BYTES_MAX: usize = 2_000;

/// A pack's tag and event count (`u16` little-endian).
pub const LOG_PACK_HEADER_BYTES: usize = 3;

/// Each packed event's length prefix (`u32` little-endian).
pub const LOG_PACK_LENGTH_BYTES: usize = 4;

/// The event records of one log entry, its framing checked: a single record, or a pack
/// (`[LOG_PACK_TAG][count u16]`, then `count` times `[length u32][event record]`, nothing after). Each record
/// is still checked by [`decode_event_ref`].
#[derive(Clone, Debug)]
pub struct LogEntry<'a> {
    /// The records not yet visited: a single one, or the rest of a pack.
    rest: &'a [u8],
    remaining: u16,
    packed: bool,
}

impl<'a> LogEntry<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<LogEntry<'a>, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::new("log entry: empty"));
        }
        if bytes[0] != LOG_PACK_TAG {
            return Ok(LogEntry { rest: bytes, remaining: 1, packed: false });
        }
        let broken = |what: &str| DecodeError::new(format!("log pack: {what}"));
        let header = bytes.get(..LOG_PACK_HEADER_BYTES).ok_or_else(|| broken("truncated header"))?;
        let count = u16::from_le_bytes([header[1], header[2]]);
        if count == 0 {
            return Err(broken("no events"));
        }
        let rest = &bytes[LOG_PACK_HEADER_BYTES..];
        // Bounded by `count`: every length is checked against the bytes left, and they must end together.
        let mut left = rest;
        for _ in 0..count {
            let length = left.get(..LOG_PACK_LENGTH_BYTES).ok_or_else(|| broken("truncated length"))?;
            let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
            left = left[LOG_PACK_LENGTH_BYTES..].get(length..).ok_or_else(|| broken("an event runs past the end"))?;
        }
        if !left.is_empty() {
            return Err(broken(&format!("{} trailing bytes", left.len())));
        }
        Ok(LogEntry { rest, remaining: count, packed: true })
    }

    /// How many events the entry holds.
    pub fn len(&self) -> u64 {
        u64::from(self.remaining)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for LogEntry<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        if !self.packed {
            return Some(std::mem::take(&mut self.rest));
        }
        // `parse` checked the framing.
        let (length, rest) = self.rest.split_at(LOG_PACK_LENGTH_BYTES);
        let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
        let (record, rest) = rest.split_at(length);
        self.rest = rest;
        Some(record)
    }
}

/// Appends to `out` the pack of `records` (at least two, at most `u16::MAX`), for [`LogEntry::parse`].
pub fn append_log_pack<'a>(records: impl ExactSizeIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let count = u16::try_from(records.len()).expect("at most u16::MAX events in a pack");
    assert!(count >= 2, "a pack holds two events or more");
    out.push(LOG_PACK_TAG);
    out.extend_from_slice(&count.to_le_bytes());
    for record in records {
        assert_eq!(record.first(), Some(&(FORMAT_VERSION as u8)), "a pack holds event records");
        let length = u32::try_from(record.len()).expect("an event record larger than 4 GiB");
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(record);
    }
}

/// The per-aggregate record: current state and where its history ends. Written once per batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateRecord {
    pub version: u64,
    pub last_seq: u64,
    pub state: Vec<u8>,
}

pub fn encode_aggregate(version: u64, last_seq: u64, state: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_aggregate_into(version, last_seq, state, &mut out);
    out
}

/// Writes the stored form of an aggregate record into `out` (cleared first), so a writer can reuse one buffer.
pub fn encode_aggregate_into(version: u64, last_seq: u64, state: &[u8], out: &mut Vec<u8>) {
    let state_len = u32::try_from(state.len()).expect("a state larger than 4 GiB");
    out.clear();
    out.reserve(21 + state.len() + 8);
    out.push(FORMAT_VERSION as u8);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&last_seq.to_le_bytes());
    out.extend_from_slice(&state_len.to_le_bytes());
    out.extend_from_slice(state);
    seal_in_place(out, 0);
}

pub fn decode_aggregate(bytes: &[u8]) -> Result<AggregateRecord, DecodeError> {
    let mut r = Reader::open(bytes, "aggregate record")?;
    let version = r.u64()?;
    let last_seq = r.u64()?;
    let state_len = r.u32()? as usize;
    let state = r.take(state_len)?.to_vec();
    r.finish()?;
    if (version == 0) != (last_seq == 0) {
        return Err(DecodeError::new("aggregate record: version and last event disagree"));
    }
    Ok(AggregateRecord { version, last_seq, state })
}

/// The key of an aggregate instance's record: type tag, then the key's bytes.
pub fn aggregate_key(tag: u16, key: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(key);
}

/// What a command id led to, kept so that a retry returns the original outcome, also after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    pub tag: u16,
    pub key: Vec<u8>,
    pub outcome: CommandOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Its events are the `count` events from `first_seq` on (a command's events are contiguous in the log).
    Accepted {
        first_seq: u64,
        count: u32,
        version: u64,
    },
    Rejected {
        code: String,
    },
}

pub fn encode_command(record: &CommandRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + record.key.len());
    out.push(FORMAT_VERSION as u8);
    out.extend_from_slice(&record.tag.to_le_bytes());
    out.extend_from_slice(&(record.key.len() as u16).to_le_bytes());
    out.extend_from_slice(&record.key);
    match &record.outcome {
        CommandOutcome::Accepted { first_seq, count, version } => {
            out.push(0);
            out.extend_from_slice(&first_seq.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&version.to_le_bytes());
        }
        CommandOutcome::Rejected { code } => {
            assert!(code.len() <= usize::from(u8::MAX));
            out.push(1);
            out.push(code.len() as u8);
            out.extend_from_slice(code.as_bytes());
        }
    }
    seal(out)
}

pub fn decode_command(bytes: &[u8]) -> Result<CommandRecord, DecodeError> {
    let mut r = Reader::open(bytes, "command record")?;
    let tag = r.u16()?;
    let key_len = usize::from(r.u16()?);
    let key = r.take(key_len)?.to_vec();
    let outcome = match r.u8()? {
        0 => CommandOutcome::Accepted { first_seq: r.u64()?, count: r.u32()?, version: r.u64()? },
        1 => {
            let len = usize::from(r.u8()?);
            let code = std::str::from_utf8(r.take(len)?)
                .map_err(|_| DecodeError::new("command record: the rejection code is not UTF-8"))?
                .to_owned();
            CommandOutcome::Rejected { code }
        }
        other => return Err(DecodeError::new(format!("command record: unknown outcome kind {other}"))),
    };
    r.finish()?;
    Ok(CommandRecord { tag, key, outcome })
}

/// Makes UUIDv7-style ids: 48 bits of Unix milliseconds, the version and variant bits, then randomness
/// from a per-generator SplitMix64 stream seeded from the clock, the process id and a global counter.
pub struct IdGenerator {
    state: u64,
}

static GENERATORS: AtomicU64 = AtomicU64::new(0);

impl IdGenerator {
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let count = GENERATORS.fetch_add(1, Ordering::Relaxed);
        let seed = nanos ^ (u64::from(std::process::id()) << 32) ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        IdGenerator { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A fresh id at time `now`.
    pub fn next_id(&mut self, now: Timestamp) -> u128 {
        let millis = (now.micros().max(0) as u64 / 1000) & 0xffff_ffff_ffff;
        let random = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        let mut id = (u128::from(millis) << 80) | (random & ((1u128 << 80) - 1));
        // Version 7 in bits 76..80 and variant 0b10 in bits 62..64, as RFC 9562 lays them out.
        id = (id & !(0xf << 76)) | (0x7 << 76);
        id = (id & !(0x3 << 62)) | (0x2 << 62);
        id
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            event_id: 7,
            command_id: 8,
            correlation_id: 9,
            recorded_at: Timestamp::from_micros(10),
            occurred_at: Timestamp::from_micros(-11),
            version: 3,
            previous_seq: 2,
            tag: 1,
            aggregate: "account".into(),
            key: b"ann".to_vec(),
            event_name: "opened".into(),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Bytes read from disk: whatever they are, a log entry parses or is refused, never panics, and what
        /// parses accounts for every byte.
        #[test]
        fn any_bytes_are_an_entry_or_an_error(mut bytes in proptest::collection::vec(0u8..=255, 0..64), packed: bool) {
            if packed && bytes.len() >= LOG_PACK_HEADER_BYTES {
                // A small count and small lengths where lengths go, so that some inputs frame exactly.
                bytes[0] = LOG_PACK_TAG;
                let exact = bytes[1] % 2 == 0;
                bytes[2] = 0;
                let (mut at, mut frames, mut framed) = (LOG_PACK_HEADER_BYTES, 0u8, LOG_PACK_HEADER_BYTES);
                while at + LOG_PACK_LENGTH_BYTES <= bytes.len() {
                    bytes[at] %= 8;
                    bytes[at + 1..at + LOG_PACK_LENGTH_BYTES].fill(0);
                    at += LOG_PACK_LENGTH_BYTES + usize::from(bytes[at]);
                    if at <= bytes.len() {
                        frames += 1;
                        framed = at;
                    }
                }
                if exact {
                    // Every frame complete and counted: the success path.
                    bytes[1] = frames;
                    bytes.truncate(framed);
                } else {
                    bytes[1] %= 4;
                }
            }
            if let Ok(entry) = LogEntry::parse(&bytes) {
                let count = entry.len();
                let records: Vec<&[u8]> = entry.collect();
                proptest::prop_assert_eq!(records.len() as u64, count);
                let framing = if bytes[0] == LOG_PACK_TAG {
                    LOG_PACK_HEADER_BYTES + LOG_PACK_LENGTH_BYTES * records.len()
                } else {
                    0
                };
                proptest::prop_assert_eq!(framing + records.iter().map(|r| r.len()).sum::<usize>(), bytes.len());
            }
        }

        #[test]
        fn packs_of_any_records_read_back(payloads in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..40), 2..12)) {
            let records: Vec<Vec<u8>> = payloads.iter().map(|p| encode_event(&sample(), p)).collect();
            let mut pack = Vec::new();
            append_log_pack(records.iter().map(Vec::as_slice), &mut pack);
            let entry = LogEntry::parse(&pack).expect("a pack parses");
            let read: Vec<&[u8]> = entry.collect();
            proptest::prop_assert_eq!(read, records.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    }

    #[test]
    fn log_packs_round_trip_and_broken_framing_is_refused() {
        let records: Vec<Vec<u8>> = (0..3).map(|n| encode_event(&sample(), &vec![n; n as usize * 7])).collect();
        let mut pack = Vec::new();
        append_log_pack(records.iter().map(Vec::as_slice), &mut pack);
        let entry = LogEntry::parse(&pack).expect("a fresh pack parses");
        assert_eq!(entry.len(), 3);
        assert_eq!(entry.collect::<Vec<_>>(), records.iter().map(Vec::as_slice).collect::<Vec<_>>());
        // A single record is an entry of one.
        let single = LogEntry::parse(&records[0]).expect("a record is an entry");
        assert_eq!(single.collect::<Vec<_>>(), vec![records[0].as_slice()]);
        // Cut anywhere, the framing no longer adds up.
        for cut in 0..pack.len() {
            assert!(LogEntry::parse(&pack[..cut]).is_err(), "cut at {cut} accepted");
        }
        let mut longer = pack.clone();
        longer.push(0);
        assert_eq!(LogEntry::parse(&longer).unwrap_err().to_string(), "log pack: 1 trailing bytes");
        let mut fewer = pack.clone();
        fewer[1] = 2;
        assert!(LogEntry::parse(&fewer).unwrap_err().to_string().contains("trailing bytes"));
        let mut none = pack.clone();
        none[1] = 0;
        assert_eq!(LogEntry::parse(&none).unwrap_err().to_string(), "log pack: no events");
        let mut overrun = pack.clone();
        overrun[LOG_PACK_HEADER_BYTES + 3] = 0x7f;
        assert_eq!(LogEntry::parse(&overrun).unwrap_err().to_string(), "log pack: an event runs past the end");
    }

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let bytes = encode_event(&sample(), b"payload");
        let stored = decode_event(5, &bytes).expect("a fresh envelope decodes");
        assert_eq!(stored.envelope, sample());
        assert_eq!(stored.event, b"payload");
        for cut in 0..bytes.len() {
            assert!(decode_event(5, &bytes[..cut]).is_err(), "cut at {cut} accepted");
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            assert!(decode_event(5, &flipped).is_err(), "flip at {at} accepted");
        }
        // A previous event that is not earlier than the event itself is refused.
        assert!(decode_event(2, &bytes).is_err());

        let aggregate = encode_aggregate(4, 9, b"state");
        assert_eq!(
            decode_aggregate(&aggregate),
            Ok(AggregateRecord { version: 4, last_seq: 9, state: b"state".to_vec() })
        );
        assert!(decode_aggregate(&aggregate[1..]).is_err());

        for outcome in [
            CommandOutcome::Accepted { first_seq: 3, count: 2, version: 5 },
            CommandOutcome::Rejected { code: "full".into() },
        ] {
            let record = CommandRecord { tag: 2, key: vec![1, 2], outcome };
            let bytes = encode_command(&record);
            assert_eq!(decode_command(&bytes), Ok(record));
            assert!(decode_command(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    #[test]
    fn ids_are_version_7_and_time_ordered_across_milliseconds() {
        let mut ids = IdGenerator::new();
        let a = ids.next_id(Timestamp::from_micros(1_000_000));
        let b = ids.next_id(Timestamp::from_micros(1_002_000));
        assert!(a < b);
        assert_eq!((a >> 76) & 0xf, 7);
        assert_eq!((a >> 62) & 0x3, 2);
        assert_eq!(a >> 80, 1000);
        assert_ne!(ids.next_id(Timestamp::from_micros(5)), ids.next_id(Timestamp::from_micros(5)));
    }
}
