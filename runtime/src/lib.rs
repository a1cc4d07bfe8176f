//! The anthill runtime: the contract generated code implements, its value types, and the engine that runs it.
//!
//! Generated code refers to everything here by absolute paths (`::anthill_runtime::...`), including the
//! serialization crates it derives with ([`serde`], [`rkyv`]), so a crate using a generated domain only
//! depends on `anthill-runtime`.

pub mod aggregate;
pub mod codec;
pub mod meta;
pub mod testing;
pub mod value;

pub use aggregate::{
    derive_command_id, key_time_prefixed_command_id, time_prefixed_command_id, Aggregate, AggregateVisitor,
    CommandError, CommandId, CommandName, CommandVisitor, Context, Domain, DomainCommand, DomainVisitor, EventContext,
    EventId, EventName, Key, KeyError, Reaction, Refused, Rejection, ViewError, ViewTables,
};
pub use codec::DecodeError;
pub use value::{ArithmeticError, Decimal, Timestamp};

#[doc(hidden)]
pub use rkyv;
#[doc(hidden)]
pub use serde;
#[doc(hidden)]
pub use serde_json;
pub mod engine;
pub mod error;
pub mod format;
mod hash;
pub mod lock;
pub mod schema;
pub mod store;
mod unflushed;
pub mod upcast;
