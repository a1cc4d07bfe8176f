//! Upcasters: how a store written by an earlier schema of a domain is brought to the current one.
//!
//! Events are stored as the aggregate's event enum in rkyv, so bytes written by an earlier model only decode
//! with that model's types. A domain author who changes an event (a field added, renamed or widened, the
//! event renamed, or an event inserted before it) keeps the earlier generated module and declares, per stored
//! event, a function from the earlier event to the current one. [`Engine::open`](crate::engine::Engine::open)
//! then migrates the store once, in one write transaction: it rewrites those events in the log (same sequence
//! numbers, ids and envelopes, the new name), rebuilds every instance's state and every view from the log, and
//! records the new schema. A crash before the commit leaves the store as it was; the next open migrates again.
//!
//! An upcaster is keyed by the stored event exactly as the store describes it (aggregate, event name and the
//! fields text of [`crate::schema::describe`], e.g. `(amount: (decimal 2), count: u32)`), so it never runs on
//! bytes of a shape it was not written for. The refusal of an uncovered store prints these texts.

use std::fmt;
use std::sync::Arc;

use rkyv::api::high::{HighDeserializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;

use crate::aggregate::{Aggregate, EventName};

/// Rewrites one stored event's bytes: the current event's name and bytes, or why it cannot.
type UpcastFn = dyn Fn(&[u8]) -> Result<(&'static str, Vec<u8>), String> + Send + Sync;

/// One declared upcaster.
pub struct Upcaster {
    pub aggregate: &'static str,
    /// The stored event's name.
    pub event: String,
    /// The stored event's fields, as the store's schema description writes them.
    pub fields: String,
    apply: Box<UpcastFn>,
}

impl Upcaster {
    /// The current form of one stored event's bytes: its event name and bytes.
    pub fn apply(&self, bytes: &[u8]) -> Result<(&'static str, Vec<u8>), String> {
        (self.apply)(bytes)
    }
}

/// The upcasters of a domain, set on [`crate::engine::Config::upcasters`]. Cheap to clone.
#[derive(Clone, Default)]
pub struct Upcasters {
    list: Vec<Arc<Upcaster>>,
}

/// Upcasters are bounded: one per stored event shape, and a domain has few.
pub const UPCASTERS_MAX: usize = 4096;

impl Upcasters {
    pub fn new() -> Self {
        Upcasters::default()
    }

    /// Declares how stored `event` of aggregate `A`, with the stored `fields`, becomes a current event.
    /// `Old` is the type the bytes were written as: the earlier generated event enum of `A` (keep the earlier
    /// generated module). `upcast` gets the decoded earlier event and returns the current one, or `None` when
    /// it cannot (the migration then fails naming the event, and the store is left as it was).
    pub fn event<A, Old>(
        mut self,
        event: &str,
        fields: &str,
        upcast: impl Fn(Old) -> Option<A::Event> + Send + Sync + 'static,
    ) -> Self
    where
        A: Aggregate,
        Old: rkyv::Archive,
        Old::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
            + rkyv::Deserialize<Old, HighDeserializer<rancor::Error>>,
    {
        assert!(self.list.len() < UPCASTERS_MAX, "more than {UPCASTERS_MAX} upcasters");
        let shown = format!("{}/{event}", A::NAME);
        let apply = move |bytes: &[u8]| {
            let old: Old = crate::codec::decode(bytes).map_err(|e| format!("`{shown}` as stored: {e}"))?;
            let new = upcast(old).ok_or_else(|| format!("the upcaster of `{shown}` cannot convert this event"))?;
            Ok((new.name(), A::encode_event(&new)))
        };
        self.list.push(Arc::new(Upcaster {
            aggregate: A::NAME,
            event: event.to_owned(),
            fields: fields.to_owned(),
            apply: Box::new(apply),
        }));
        self
    }

    /// The upcaster of a stored event shape, if one is declared.
    pub fn find(&self, aggregate: &str, event: &str, fields: &str) -> Option<&Upcaster> {
        self.list.iter().map(Arc::as_ref).find(|u| u.aggregate == aggregate && u.event == event && u.fields == fields)
    }

    /// (aggregate, stored event, stored fields) of each upcaster, for [`crate::schema::upcast_plan`].
    pub fn keys(&self) -> Vec<(&str, &str, &str)> {
        self.list.iter().map(|u| (u.aggregate, u.event.as_str(), u.fields.as_str())).collect()
    }
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}
