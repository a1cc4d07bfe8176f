//! rkyv encoding of stored values, with validation on every read.
//!
//! LMDB hands out values at any address, so bytes are copied into an aligned buffer before rkyv reads them,
//! and bytecheck validates them: a damaged value is a [`DecodeError`], never garbage.

use std::fmt;

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

/// Bytes from disk that are not a valid encoding of the expected type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub message: String,
}

impl DecodeError {
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError { message: message.into() }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The first allocation for an encoded value: most events, states and view rows fit.
const ENCODE_CAPACITY_BYTES: usize = 128;

/// The largest decode buffer a thread keeps between calls (a larger one is freed after use).
const DECODE_BUFFER_KEPT_BYTES_MAX: usize = 1 << 20;

/// Encodes a value. Encoding an in-memory value of a generated type cannot fail.
///
/// Written straight into a `Vec<u8>` (rkyv pads relative to the writer's position, so the bytes are the same
/// as in an aligned buffer): one allocation, no copy out of an `AlignedVec`.
pub fn encode<T>(value: &T) -> Vec<u8>
where
    T: for<'a> rkyv::Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, rancor::Error>>,
{
    // Generated types hold only strings, numbers and std collections, whose encoding has no failure path.
    encode_into(value, Vec::with_capacity(ENCODE_CAPACITY_BYTES))
}

/// Encodes `value` into `out` (cleared first, its allocation reused).
pub fn encode_into<T>(value: &T, mut out: Vec<u8>) -> Vec<u8>
where
    T: for<'a> rkyv::Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, rancor::Error>>,
{
    out.clear();
    match rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, out) {
        Ok(bytes) => bytes,
        Err(error) => panic!("rkyv cannot encode a generated value: {error}"),
    }
}

/// The largest encode buffer a thread keeps between calls.
const ENCODE_BUFFER_KEPT_BYTES_MAX: usize = 1 << 20;

thread_local! {
    /// The buffer `with_encoded` encodes into, reused by every call on the thread.
    static ENCODE_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Encodes `value` into a per-thread buffer and hands the bytes to `use_bytes`: no allocation once the buffer
/// has grown to the values' size. The buffer is taken out while `use_bytes` runs, so nesting is safe (an
/// inner call allocates its own).
pub fn with_encoded<T, R>(value: &T, use_bytes: impl FnOnce(&[u8]) -> R) -> R
where
    T: for<'a> rkyv::Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, rancor::Error>>,
{
    let bytes = encode_into(value, ENCODE_BUFFER.with(std::cell::Cell::take));
    let result = use_bytes(&bytes);
    if bytes.capacity() <= ENCODE_BUFFER_KEPT_BYTES_MAX {
        ENCODE_BUFFER.with(|buffer| buffer.set(bytes));
    }
    result
}

thread_local! {
    /// The aligned copy `decode` reads from, reused by every call on the thread.
    static DECODE_BUFFER: std::cell::RefCell<AlignedVec<16>> = std::cell::RefCell::new(AlignedVec::new());
}

/// Validates and decodes bytes read from disk (at any alignment).
pub fn decode<T>(bytes: &[u8]) -> Result<T, DecodeError>
where
    T: rkyv::Archive,
    T::Archived:
        for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + rkyv::Deserialize<T, HighDeserializer<rancor::Error>>,
{
    let read = |aligned: &AlignedVec<16>| {
        rkyv::from_bytes::<T, rancor::Error>(aligned)
            .map_err(|e| DecodeError::new(format!("invalid stored value: {e}")))
    };
    DECODE_BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut aligned) => {
            aligned.clear();
            aligned.extend_from_slice(bytes);
            let decoded = read(&aligned);
            if aligned.capacity() > DECODE_BUFFER_KEPT_BYTES_MAX {
                *aligned = AlignedVec::new();
            }
            decoded
        }
        // Decoding never calls itself; should it ever, the inner call copies on its own.
        Err(_) => {
            let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
            aligned.extend_from_slice(bytes);
            read(&aligned)
        }
    })
}

/// A command's parameters from a JSON object; an empty body means no parameters (`{}`).
pub fn command_params<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, crate::CommandError> {
    let json: &[u8] = if json.iter().all(u8::is_ascii_whitespace) { b"{}" } else { json };
    serde_json::from_slice(json).map_err(|e| crate::CommandError::InvalidParameters { message: e.to_string() })
}

/// Maps keyed by records, in JSON: a list of `[key, value]` pairs in key order, since JSON object keys must be
/// strings. Generated code puts it on every map field whose key is a record (`#[serde(with = ...)]`).
pub mod map_as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// A generated value as JSON. A value that still has no JSON form reads as an explanatory string.
pub fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| serde_json::Value::String(format!("<no JSON form: {e}>")))
}

/// How a generated view row type is kept decoded by the engine ([`crate::aggregate::ViewTables::update_row`]):
/// generic here, so that each row type's generated code is one line.
impl crate::aggregate::RowCodec {
    /// The codec of row type `T`.
    pub const fn of<T>() -> Self
    where
        T: Default + Send + 'static + rkyv::Archive,
        T: for<'a> rkyv::Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, rancor::Error>>,
        T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
            + rkyv::Deserialize<T, HighDeserializer<rancor::Error>>,
    {
        crate::aggregate::RowCodec { default: default_row::<T>, decode: decode_row::<T>, encode_into: encode_row::<T> }
    }
}

fn default_row<T: Default + Send + 'static>() -> crate::aggregate::AnyRow {
    Box::new(T::default())
}

fn decode_row<T>(bytes: &[u8]) -> Result<crate::aggregate::AnyRow, DecodeError>
where
    T: Send + 'static + rkyv::Archive,
    T::Archived:
        for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + rkyv::Deserialize<T, HighDeserializer<rancor::Error>>,
{
    decode::<T>(bytes).map(|row| Box::new(row) as crate::aggregate::AnyRow)
}

fn encode_row<T>(row: &(dyn std::any::Any + Send), out: Vec<u8>) -> Vec<u8>
where
    T: 'static + for<'a> rkyv::Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, rancor::Error>>,
{
    encode_into(row.downcast_ref::<T>().expect("a view's rows are of its row type"), out)
}

/// Folds into the row of `view` stored under `key` (an empty row when there is none), typed as `T`, whose codec
/// is `codec` ([`crate::aggregate::RowCodec::of`]). The key's length is checked after the fold, as a `put` of
/// the folded row would check it, so errors come in the same order as through `load`, fold and `store`.
pub fn update_row<T: 'static>(
    tables: &mut dyn crate::aggregate::ViewTables,
    view: &'static str,
    key: &[u8],
    codec: &crate::aggregate::RowCodec,
    fold: &mut dyn FnMut(&mut T) -> Result<(), crate::aggregate::FoldError>,
) -> Result<(), crate::aggregate::FoldError> {
    tables.update_row(view, key, codec, &mut |row| {
        fold(row.downcast_mut::<T>().expect("a view's rows are of its row type"))?;
        if key.len() > crate::aggregate::VIEW_KEY_BYTES_MAX {
            return Err(crate::aggregate::ViewError {
                view,
                message: format!("a key of {} bytes is longer than the store allows", key.len()),
            }
            .into());
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
    #[rkyv(crate = rkyv)]
    struct Sample {
        name: String,
        amount: crate::Decimal<2>,
        tags: Vec<u32>,
    }

    #[test]
    fn values_round_trip_at_any_alignment() {
        let value = Sample { name: "ann".into(), amount: crate::Decimal::from_mantissa(2550), tags: vec![1, 2] };
        let bytes = encode(&value);
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        assert_eq!(decode::<Sample>(&shifted[1..]), Ok(value));
    }

    #[test]
    fn encoding_into_a_vec_writes_the_bytes_an_aligned_buffer_gets() {
        let value = Sample {
            name: "a longer name than fits inline".into(),
            amount: crate::Decimal::from_mantissa(7),
            tags: vec![3; 9],
        };
        let aligned = rkyv::to_bytes::<rancor::Error>(&value).map(|bytes| bytes.into_vec());
        assert_eq!(aligned.ok(), Some(encode(&value)));
        let nested = with_encoded(&value, |outer| with_encoded(&value, |inner| (outer.to_vec(), inner.to_vec())));
        assert_eq!(nested, (encode(&value), encode(&value)));
    }

    #[test]
    fn damaged_bytes_are_an_error() {
        let value = Sample { name: "ann".into(), amount: crate::Decimal::from_mantissa(1), tags: vec![7; 4] };
        let bytes = encode(&value);
        for cut in 0..bytes.len() {
            assert!(decode::<Sample>(&bytes[..cut]).is_err(), "a value cut at {cut} bytes was accepted");
        }
        let mut garbage = bytes.clone();
        let len = garbage.len();
        garbage[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode::<Sample>(&garbage).is_err());
    }
}
