//! The contract between generated code and the engine: what an aggregate, a domain, a process and a view are.
//!
//! Generated code implements these traits; the engine only ever calls them. Everything domain-specific
//! (state, events, commands, rules) is on the generated side; everything about storage, batching and
//! concurrency is on the runtime side.

use std::any::Any;
use std::fmt;
use std::hash::Hash;

use crate::codec::DecodeError;
use crate::meta::{AggregateMeta, DomainMeta};
use crate::value::{ArithmeticError, Timestamp};

/// A 128-bit command identifier: the idempotency key. Clients choose it (HTTP `Idempotency-Key`); processes
/// derive it from the event that triggered them with [`derive_command_id`].
pub type CommandId = u128;

/// A 128-bit event identifier, unique across nodes (a UUIDv7: time-ordered, then random).
pub type EventId = u128;

/// What an aggregate's key must support: ordering, hashing to a partition, and an order-preserving byte form.
pub trait Key: Clone + Eq + Ord + Hash + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Appends the key's bytes; byte order equals key order (big-endian integers, sign bit flipped).
    fn encode_key(&self, out: &mut Vec<u8>);
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError>;
    /// Reads a key from its text form, as in a URL path.
    fn parse_key(text: &str) -> Result<Self, KeyError>;
}

/// A view row's key as stored: a `1` byte (it keeps an empty string a valid LMDB key), then the key's
/// order-preserving bytes. Generated `key_bytes` calls this.
pub fn view_key_bytes<K: Key>(key: &K) -> Vec<u8> {
    // One allocation for most keys (the byte, then the key, grown only for long keys).
    let mut bytes = Vec::with_capacity(32);
    bytes.push(1u8);
    key.encode_key(&mut bytes);
    bytes
}

/// Runs `use_key` with the row key of [`view_key_bytes`], built in a per-thread buffer: a view's fold runs
/// once per event in the writer, and this spares it an allocation each time. Re-entered (a fold that folds
/// another row inside), the inner call builds its key in a fresh buffer.
pub fn with_view_key<K: Key, T>(key: &K, use_key: impl FnOnce(&[u8]) -> T) -> T {
    thread_local! {
        static VIEW_KEY: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut bytes = VIEW_KEY.take();
    bytes.clear();
    bytes.push(1u8);
    key.encode_key(&mut bytes);
    let out = use_key(&bytes);
    // Bounded: a key too long to store (the fold's error says so) does not keep its buffer.
    if bytes.capacity() <= 4 * VIEW_KEY_BYTES_MAX {
        VIEW_KEY.set(bytes);
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    pub expected: &'static str,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}", self.expected)
    }
}

impl std::error::Error for KeyError {}

/// Keys longer than this are refused: they end up in LMDB keys, which are limited to 511 bytes.
pub const KEY_BYTES_MAX: usize = 256;

/// The longest stored view key (LMDB's limit); a fold that would write a longer one fails.
pub const VIEW_KEY_BYTES_MAX: usize = 511;

impl Key for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::new("a key is not valid UTF-8"))
    }
    fn parse_key(text: &str) -> Result<Self, KeyError> {
        if text.is_empty() || text.len() > KEY_BYTES_MAX {
            return Err(KeyError { expected: "a non-empty key of at most 256 bytes" });
        }
        Ok(text.to_owned())
    }
}

macro_rules! int_key {
    ($($t:ty => $flip:expr),*) => {$(
        impl Key for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                let mut bytes = self.to_be_bytes();
                bytes[0] ^= $flip;
                out.extend_from_slice(&bytes);
            }
            fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
                let mut array: [u8; std::mem::size_of::<$t>()] =
                    bytes.try_into().map_err(|_| DecodeError::new("an integer key has the wrong length"))?;
                array[0] ^= $flip;
                Ok(<$t>::from_be_bytes(array))
            }
            fn parse_key(text: &str) -> Result<Self, KeyError> {
                text.parse().map_err(|_| KeyError { expected: concat!("an integer key (", stringify!($t), ")") })
            }
        }
    )*};
}

int_key!(u8 => 0, u16 => 0, u32 => 0, u64 => 0, i8 => 0x80, i16 => 0x80, i32 => 0x80, i64 => 0x80);

impl Key for bool {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(DecodeError::new("a boolean key is not 0 or 1")),
        }
    }
    fn parse_key(text: &str) -> Result<Self, KeyError> {
        text.parse().map_err(|_| KeyError { expected: "true or false" })
    }
}

impl<const SCALE: u32> Key for crate::value::Decimal<SCALE> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.mantissa().encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        i64::decode_key(bytes).map(crate::value::Decimal::from_mantissa)
    }
    fn parse_key(text: &str) -> Result<Self, KeyError> {
        crate::value::Decimal::parse(text).map_err(|_| KeyError { expected: "a decimal number" })
    }
}

impl Key for Timestamp {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.micros().encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        i64::decode_key(bytes).map(Timestamp::from_micros)
    }
    fn parse_key(text: &str) -> Result<Self, KeyError> {
        Timestamp::parse(text).ok_or(KeyError { expected: "an RFC 3339 time or microseconds since 1970" })
    }
}

/// A key encoded as JSON text: for records used as view keys. Equal keys have equal bytes (field order is
/// fixed), but byte order is not key order, so range scans over such views are in no useful order.
pub fn encode_json_key<T: serde::Serialize>(value: &T, out: &mut Vec<u8>) {
    // Serializing generated records (strings, numbers, enums) to a Vec cannot fail.
    if let Err(error) = serde_json::to_writer(out, value) {
        panic!("a generated key cannot be written as JSON: {error}");
    }
}

pub fn decode_json_key<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::new(format!("invalid JSON key: {e}")))
}

pub fn parse_json_key<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, KeyError> {
    serde_json::from_str(text).map_err(|_| KeyError { expected: "the key as a JSON object" })
}

/// What a command sees besides the state and its parameters.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a, Id> {
    /// The key of the instance the command is for (`id` in the model).
    pub id: &'a Id,
    /// The number of events the instance has applied so far (`version` in the model).
    pub version: u64,
    /// When the command runs (`(now)` in the model).
    pub now: Timestamp,
    /// When the events it emits occurred: `now` unless the command is backdated.
    pub occurred_at: Timestamp,
}

/// What an event handler, a process or a view sees besides the event.
#[derive(Clone, Copy, Debug)]
pub struct EventContext<'a, Id> {
    /// The key of the instance that recorded the event.
    pub id: &'a Id,
    /// The number of events the instance had applied before this one.
    pub version: u64,
    /// When the event occurred (`(occurred-at)` in the model).
    pub occurred_at: Timestamp,
    /// The event's id: processes derive their command ids from it.
    pub event_id: EventId,
}

/// A named, stable reason to refuse a command. Generated as an enum per aggregate.
pub trait Rejection: fmt::Debug + fmt::Display + Clone + PartialEq + Send + Sync + 'static {
    /// The stable code from the model, e.g. `not-open`.
    fn code(&self) -> &'static str;
    /// The message from the model.
    fn message(&self) -> &'static str;
    /// The rejection with this code, to read back a stored outcome.
    fn from_code(code: &str) -> Option<Self>;
}

/// Implemented by generated command enums: the model's name of the command in hand.
pub trait CommandName {
    fn name(&self) -> &'static str;
}

/// Implemented by generated event enums: the model's name of the event in hand.
pub trait EventName {
    fn name(&self) -> &'static str;
}

/// One aggregate of a domain: its state, the commands it decides and the events it records.
///
/// Generated per `(aggregate ...)`. All methods are pure: no I/O, no clock (the time comes in the context),
/// no randomness, so replaying the log rebuilds the same state.
pub trait Aggregate: Sized + Send + Sync + 'static {
    /// The aggregate's name in the model, e.g. `account`.
    const NAME: &'static str;
    type Domain: Domain;
    type Id: Key;
    type State: Default + Clone + fmt::Debug + PartialEq + Send + Sync + 'static;
    type Command: CommandName + fmt::Debug + Clone + Send + Sync + 'static;
    type Event: EventName + fmt::Debug + Clone + PartialEq + Send + Sync + 'static;
    type Rejection: Rejection;

    fn meta() -> &'static AggregateMeta;

    /// Decides a command: runs its rules, applies its events to a copy of the state, checks every invariant
    /// with the policy in force, and returns every event to record (the command's own, then those its
    /// policies' reactions emit), or why the command is refused.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        ctx: &Context<'_, Self::Id>,
    ) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// Like [`Aggregate::decide`], and on success leaves `state` as the events made it (sparing the engine a
    /// second `evolve`). On a rejection `state` is unchanged.
    fn execute(
        state: &mut Self::State,
        command: &Self::Command,
        ctx: &Context<'_, Self::Id>,
    ) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// Whether [`Aggregate::execute_in_place`] may change the state of a command it refuses. Generated code
    /// says so for aggregates whose state holds a collection: copying it for every command would cost time in
    /// proportion to its size (a whole order book per order), so their commands apply events to the state
    /// itself, and the engine keeps a checkpoint to restore from in the rare case of a refusal after that.
    const DECIDES_IN_PLACE: bool = false;

    /// Like [`Aggregate::execute`], but a refusal may leave `state` changed when
    /// [`Aggregate::DECIDES_IN_PLACE`] is set: [`Refused::state_changed`] then says so, and the caller must
    /// restore the state before using it again. `before_change` sees the state just before the command first
    /// changes it (after its rules accepted it), so a caller can keep a copy to restore from only when needed.
    fn execute_in_place(
        state: &mut Self::State,
        command: &Self::Command,
        ctx: &Context<'_, Self::Id>,
        before_change: &mut dyn FnMut(&Self::State),
    ) -> Result<Vec<Self::Event>, Refused<Self::Rejection>> {
        let _ = before_change;
        Self::execute(state, command, ctx).map_err(|rejection| Refused { rejection, state_changed: false })
    }

    /// Applies one recorded event. Fails only if the event could never have been accepted (its arithmetic
    /// overflows), which means the log and the model disagree.
    fn evolve(
        state: &mut Self::State,
        event: &Self::Event,
        ctx: &EventContext<'_, Self::Id>,
    ) -> Result<(), ArithmeticError>;

    /// What the domain's processes send in reaction to this event (all processes, in model order). Fails
    /// when a process's arithmetic overflows: the engine reports it and sends nothing for this event.
    #[allow(clippy::type_complexity)]
    fn react(
        event: &Self::Event,
        ctx: &EventContext<'_, Self::Id>,
    ) -> Result<Vec<Reaction<<Self::Domain as Domain>::Command>>, ArithmeticError>;

    /// Folds the event into every view that listens to it. An arithmetic overflow in a view is a
    /// [`ViewError`] too.
    fn update_views(
        event: &Self::Event,
        ctx: &EventContext<'_, Self::Id>,
        tables: &mut dyn ViewTables,
    ) -> Result<(), ViewError>;

    fn encode_event(event: &Self::Event) -> Vec<u8>;
    /// Hands the event's bytes to `use_bytes`; generated code encodes into a reused buffer instead of
    /// allocating as [`Aggregate::encode_event`] does.
    fn with_encoded_event(event: &Self::Event, use_bytes: &mut dyn FnMut(&[u8])) {
        use_bytes(&Self::encode_event(event));
    }
    /// Validates the bytes before reading them.
    fn decode_event(bytes: &[u8]) -> Result<Self::Event, DecodeError>;
    fn encode_state(state: &Self::State) -> Vec<u8>;
    /// Hands the state's bytes to `use_bytes`; generated code encodes into a reused buffer instead of
    /// allocating as [`Aggregate::encode_state`] does.
    fn with_encoded_state(state: &Self::State, use_bytes: &mut dyn FnMut(&[u8])) {
        use_bytes(&Self::encode_state(state));
    }
    /// Validates the bytes before reading them.
    fn decode_state(bytes: &[u8]) -> Result<Self::State, DecodeError>;

    /// The command of this name, its parameters read from a JSON object.
    fn command_from_json(name: &str, json: &[u8]) -> Result<Self::Command, CommandError>;
    fn event_to_json(event: &Self::Event) -> serde_json::Value;
    fn state_to_json(state: &Self::State) -> serde_json::Value;
}

/// A command refused by [`Aggregate::execute_in_place`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused<R> {
    pub rejection: R,
    /// The refusal came after some of the command's events were applied to the state, which must be restored.
    pub state_changed: bool,
}

/// Why a JSON command could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    UnknownCommand { name: String },
    InvalidParameters { message: String },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::UnknownCommand { name } => write!(f, "unknown command `{name}`"),
            CommandError::InvalidParameters { message } => write!(f, "invalid parameters: {message}"),
        }
    }
}

impl std::error::Error for CommandError {}

/// A whole domain: its aggregates, the commands its processes send, its views.
pub trait Domain: Sized + Send + Sync + 'static {
    const NAME: &'static str;
    /// A command addressed to one instance of one of the domain's aggregates.
    type Command: DomainCommand;

    fn meta() -> &'static DomainMeta;

    /// Calls `visitor.visit::<A>()` for every aggregate `A` of the domain, in model order.
    fn for_each_aggregate<V: AggregateVisitor>(visitor: &mut V);

    /// A view row's key read from its text form (as in a URL), in stored byte form; `None` when the domain
    /// has no such view.
    fn view_key(view: &str, text: &str) -> Option<Result<Vec<u8>, KeyError>> {
        let _ = (view, text);
        None
    }

    /// A stored view key in its text form; `None` when the domain has no such view.
    fn view_key_text(view: &str, bytes: &[u8]) -> Option<Result<String, DecodeError>> {
        let _ = (view, bytes);
        None
    }

    /// A stored view row as JSON, validated; `None` when the domain has no such view.
    fn view_row_json(view: &str, bytes: &[u8]) -> Option<Result<serde_json::Value, DecodeError>> {
        let _ = (view, bytes);
        None
    }
}

/// Generic code run once per domain of a crate (to open its engine, list its metadata...).
pub trait DomainVisitor {
    fn visit<D: Domain>(&mut self);
}

/// Generic code run once per aggregate type of a domain (to register it, open its tables...).
pub trait AggregateVisitor {
    fn visit<A: Aggregate>(&mut self);
}

/// A command addressed to one instance: generated as an enum over the domain's aggregates.
pub trait DomainCommand: fmt::Debug + Clone + Send + Sync + 'static {
    fn dispatch<V: CommandVisitor>(self, visitor: V) -> V::Output;
}

/// Receives a [`DomainCommand`] with its aggregate type known.
pub trait CommandVisitor {
    type Output;
    fn visit<A: Aggregate>(self, id: A::Id, command: A::Command) -> Self::Output;
}

/// A command a process sends in reaction to an event, and what to send if it is rejected.
#[derive(Clone, Debug, PartialEq)]
pub struct Reaction<C> {
    /// Derived from the triggering event, so running the reaction twice has the effect of once.
    pub command_id: CommandId,
    pub command: C,
    pub on_rejected: Vec<Reaction<C>>,
}

/// The command id of the `step`-th reaction of `process` to the event `event_id`: FNV-1a over all three.
/// Stable across runs, builds and machines, because idempotency records outlive them.
pub fn derive_command_id(event_id: EventId, process: &str, step: u32) -> CommandId {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    let bytes = event_id.to_be_bytes().into_iter().chain(process.bytes()).chain([0xff]).chain(step.to_be_bytes());
    for byte in bytes {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// The low bits of a command id that [`time_prefixed_command_id`] takes from the derived id: below the 48-bit
/// millisecond time of an event id (UUIDv7 layout, see `format::IdGenerator`).
const TIME_PREFIX_LOW_BITS: u32 = 80;

/// The command id a process reaction is sent with: the triggering event's 48-bit time prefix, then the low 80
/// bits of `derived` ([`derive_command_id`]). Reactions' idempotency records then arrive in about the order of
/// their events, so a batch's records share a few pages of the `commands` table instead of dirtying one
/// page each (hashed ids are random keys). Stable like `derived`: the same event, process and step give the
/// same id. The engine applies it to the reactions of events from
/// `Store::reaction_ids_time_prefixed_from` on.
pub fn time_prefixed_command_id(event_id: EventId, derived: CommandId) -> CommandId {
    let low = (1u128 << TIME_PREFIX_LOW_BITS) - 1;
    (event_id & !low) | (derived & low)
}

/// The command id of a client's idempotency key that is a UUIDv7 whose 48-bit millisecond time is `time_ms`:
/// that time, then the low 80 bits of `hashed` (the key's id when hashed, which also tells apart requests that
/// reuse a key). Such keys then arrive in about the order of their ids, so their idempotency records share a
/// few pages of `commands` instead of dirtying one page each. The engine's store says from when its clients'
/// keys get these ids (`Store::key_ids_time_prefixed_from_ms`).
pub fn key_time_prefixed_command_id(time_ms: u64, hashed: CommandId) -> CommandId {
    let time_ms = u128::from(time_ms) & ((1u128 << 48) - 1);
    time_prefixed_command_id(time_ms << TIME_PREFIX_LOW_BITS, hashed)
}

/// The key-value tables views are kept in, inside the engine's write transaction.
pub trait ViewTables {
    fn get(&mut self, view: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError>;
    /// Hands the row (`None` when there is none) to `read` without copying it out, where the tables can.
    fn get_with(
        &mut self,
        view: &'static str,
        key: &[u8],
        read: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), ViewError> {
        let row = self.get(view, key)?;
        read(row.as_deref());
        Ok(())
    }
    fn put(&mut self, view: &'static str, key: &[u8], row: &[u8]) -> Result<(), ViewError>;
    /// Folds into the row stored under `key` (an empty row when there is none) in place: `fold` gets the
    /// decoded row, of the type `codec` makes. Where the tables can (the engine's, within a batch) they keep
    /// the row decoded until they write it, so a row touched by many events is decoded and encoded once, not
    /// once per event. Here, for any tables: read, decode, fold, encode, put.
    ///
    /// When `fold` fails the row may be half changed: callers abandon the write (the engine aborts the
    /// transaction), as they would after a failed `put`.
    fn update_row(
        &mut self,
        view: &'static str,
        key: &[u8],
        codec: &RowCodec,
        fold: &mut dyn FnMut(&mut (dyn Any + Send)) -> Result<(), FoldError>,
    ) -> Result<(), FoldError> {
        let mut stored = Ok(None);
        self.get_with(view, key, &mut |bytes| stored = bytes.map(codec.decode).transpose())?;
        let mut row = match stored {
            Ok(Some(row)) => row,
            Ok(None) => (codec.default)(),
            Err(error) => return Err(ViewError { view, message: error.to_string() }.into()),
        };
        fold(&mut *row)?;
        let bytes = (codec.encode_into)(&*row, Vec::new());
        self.put(view, key, &bytes)?;
        Ok(())
    }
}

/// A view row of some view's row type, erased.
pub type AnyRow = Box<dyn Any + Send>;

/// A view's row type, erased: how [`ViewTables::update_row`] makes, reads and writes its rows. Generated
/// code has one per view (`CODEC` on the row type).
#[derive(Clone, Copy)]
pub struct RowCodec {
    /// The empty row, for a key with no stored row.
    pub default: fn() -> AnyRow,
    /// A stored row, validated.
    pub decode: fn(&[u8]) -> Result<AnyRow, DecodeError>,
    /// Encodes a row of this type into the given buffer (cleared first, its allocation reused).
    pub encode_into: fn(&(dyn Any + Send), Vec<u8>) -> Vec<u8>,
}

/// A view could not be updated: its stored row is unreadable, or the store failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewError {
    pub view: &'static str,
    pub message: String,
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "view `{}`: {}", self.view, self.message)
    }
}

impl std::error::Error for ViewError {}

/// What can go wrong while folding one event into one view row: generated code turns it into a
/// [`ViewError`] naming the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoldError {
    Arithmetic(ArithmeticError),
    View(ViewError),
}

impl From<ArithmeticError> for FoldError {
    fn from(error: ArithmeticError) -> Self {
        FoldError::Arithmetic(error)
    }
}

impl From<ViewError> for FoldError {
    fn from(error: ViewError) -> Self {
        FoldError::View(error)
    }
}

impl FoldError {
    pub fn into_view_error(self, view: &'static str) -> ViewError {
        match self {
            FoldError::Arithmetic(error) => ViewError { view, message: error.to_string() },
            FoldError::View(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_key_built_in_the_per_thread_buffer_is_the_stored_key_also_when_nested() {
        let outer = "ann".to_owned();
        let inner = "a much longer key than the outer one, so the buffers differ".to_owned();
        let (outer_bytes, inner_bytes) = with_view_key(&outer, |key| {
            let inner_bytes = with_view_key(&inner, <[u8]>::to_vec);
            (key.to_vec(), inner_bytes)
        });
        assert_eq!(outer_bytes, view_key_bytes(&outer));
        assert_eq!(inner_bytes, view_key_bytes(&inner));
        assert_eq!(with_view_key(&outer, <[u8]>::to_vec), [&[1u8][..], b"ann"].concat());
    }

    #[test]
    fn integer_keys_sort_like_their_bytes() {
        let encoded = |k: i32| {
            let mut out = Vec::new();
            k.encode_key(&mut out);
            out
        };
        let keys = [i32::MIN, -5, -1, 0, 1, 7, i32::MAX];
        for pair in keys.windows(2) {
            assert!(encoded(pair[0]) < encoded(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        for k in keys {
            assert_eq!(i32::decode_key(&encoded(k)), Ok(k));
        }
        assert!(u64::decode_key(&[1, 2]).is_err());
    }

    #[test]
    fn time_prefixed_command_ids_keep_the_events_time_and_the_derived_ids_low_bits() {
        let event = (0x0123_4567_89ab_u128 << 80) | 0x7777;
        let derived = derive_command_id(event, "transfer", 0);
        let id = time_prefixed_command_id(event, derived);
        assert_eq!(id >> 80, 0x0123_4567_89ab);
        assert_eq!(id & ((1 << 80) - 1), derived & ((1 << 80) - 1));
        assert_eq!(id, time_prefixed_command_id(event, derive_command_id(event, "transfer", 0)));
        assert_ne!(id, time_prefixed_command_id(event, derive_command_id(event, "transfer", 1)));
        // A later event's reactions sort after an earlier one's.
        let later = (0x0123_4567_89ac_u128 << 80) | 0x0001;
        assert!(time_prefixed_command_id(later, derive_command_id(later, "transfer", 0)) > id);
    }

    #[test]
    fn key_time_prefixed_command_ids_keep_the_keys_time_and_the_hashed_ids_low_bits() {
        let hashed = 0xfedc_ba98_7654_3210_0123_4567_89ab_cdef_u128;
        let id = key_time_prefixed_command_id(0x0190_a1b2_c3d4, hashed);
        assert_eq!(id, 0x0190_a1b2_c3d4_3210_0123_4567_89ab_cdef);
        // Only 48 bits of time: a larger value wraps, as a UUIDv7's field would.
        assert_eq!(key_time_prefixed_command_id(1 << 48, hashed), hashed & ((1 << 80) - 1));
        // A later key's id sorts after an earlier one's, whatever its hash.
        assert!(key_time_prefixed_command_id(0x0190_a1b2_c3d5, 0) > id);
    }

    #[test]
    fn derived_command_ids_are_stable_and_distinct() {
        let a = derive_command_id(1, "transfer", 0);
        assert_eq!(a, derive_command_id(1, "transfer", 0));
        assert_ne!(a, derive_command_id(1, "transfer", 1));
        assert_ne!(a, derive_command_id(2, "transfer", 0));
        assert_ne!(a, derive_command_id(1, "transfe", 0));
        // Pinned: stored idempotency records depend on this value never changing.
        assert_eq!(a, 0x94f4_3a57_6f45_2ce0_1d41_c613_8906_9f12);
    }
}
