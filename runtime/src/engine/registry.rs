//! The registry: per aggregate type of the domain, monomorphized functions the engine calls by tag or name.

use super::*;

pub(super) type ReactFn = fn(&StoredEvent) -> Result<Box<dyn Any>, Error>;
pub(super) type FoldFn = fn(&StoredEvent, &mut dyn ViewTables) -> Result<(), ViewError>;
pub(super) type JsonFn<D> = fn(&Inner<D>, &str, &str, &[u8], CommandMeta) -> Result<PendingAny<JsonOutcome>, Error>;
pub(super) type EventJsonFn = fn(&StoredEvent) -> Result<(&'static str, serde_json::Value), Error>;
pub(super) type VerifyFn = fn(&Store, &RoTxn, &[u8], &AggregateRecord) -> Result<u64, Error>;
pub(super) type ReplayFn = fn(&Store, &RoTxn, &[u8], &AggregateRecord) -> Result<Vec<u8>, Error>;
pub(super) type ApplyFn = fn(&StoredEvent, Option<&[u8]>) -> Result<Vec<u8>, Error>;

pub(super) struct AggregateEntry<D: Domain> {
    pub(super) name: &'static str,
    pub(super) tag: u16,
    pub(super) type_id: TypeId,
    pub(super) react: ReactFn,
    pub(super) fold_views: FoldFn,
    pub(super) submit_json: JsonFn<D>,
    pub(super) event_json: EventJsonFn,
    pub(super) verify: VerifyFn,
    /// The instance's state replayed from its events, encoded (a migration's rebuild).
    pub(super) replay_state: ReplayFn,
    /// An encoded state (the default state when `None`) with one stored event applied, encoded (a recovery).
    pub(super) apply_event: ApplyFn,
    /// The events of this aggregate some process reacts to.
    pub(super) handled_events: Vec<&'static str>,
    pub(super) _domain: PhantomData<fn() -> D>,
}

pub(super) struct Registry<D: Domain> {
    pub(super) entries: Vec<AggregateEntry<D>>,
    pub(super) _domain: PhantomData<fn() -> D>,
}

impl<D: Domain> AggregateVisitor for Registry<D> {
    fn visit<A: Aggregate>(&mut self) {
        // The visitor cannot require `A::Domain = D`; reactions are downcast on that assumption, so check it.
        assert_eq!(TypeId::of::<A::Domain>(), TypeId::of::<D>(), "aggregate `{}` belongs to another domain", A::NAME);
        let tag = u16::try_from(self.entries.len()).expect("a domain has at most 65,536 aggregates");
        self.entries.push(AggregateEntry {
            name: A::NAME,
            tag,
            type_id: TypeId::of::<A>(),
            react: react_erased::<A>,
            fold_views: fold_erased::<A>,
            submit_json: submit_json_erased::<D, A>,
            event_json: event_json_erased::<A>,
            verify: verify_erased::<A>,
            replay_state: replay_state_erased::<A>,
            apply_event: apply_event_erased::<A>,
            handled_events: D::meta()
                .processes
                .iter()
                .flat_map(|process| process.handlers)
                .filter(|handler| handler.aggregate == A::NAME)
                .map(|handler| handler.event)
                .collect(),
            _domain: PhantomData,
        });
    }
}

impl<D: Domain> Registry<D> {
    pub(super) fn by_type<A: Aggregate>(&self) -> Result<&AggregateEntry<D>, Error> {
        let type_id = TypeId::of::<A>();
        self.entries
            .iter()
            .find(|e| e.type_id == type_id)
            .ok_or_else(|| Error::UnknownAggregate { name: A::NAME.to_owned() })
    }

    pub(super) fn by_tag(&self, tag: u16, seq: u64) -> Result<&AggregateEntry<D>, Error> {
        self.entries.get(usize::from(tag)).ok_or_else(|| Error::Corrupt {
            table: "log",
            at: seq.to_string(),
            message: format!("aggregate tag {tag} is not in the domain"),
        })
    }

    pub(super) fn by_name(&self, name: &str) -> Result<&AggregateEntry<D>, Error> {
        self.entries.iter().find(|e| e.name == name).ok_or_else(|| Error::UnknownAggregate { name: name.to_owned() })
    }
}

pub(super) fn decode_id<A: Aggregate>(key: &[u8], table: &'static str, at: impl fmt::Display) -> Result<A::Id, Error> {
    A::Id::decode_key(key).map_err(|e| Error::corrupt(table, at.to_string(), e))
}

pub(super) fn decode_stored_event<A: Aggregate>(stored: &StoredEvent) -> Result<(A::Id, A::Event), Error> {
    let id = decode_id::<A>(&stored.envelope.key, "log", stored.seq)?;
    let event = A::decode_event(&stored.event).map_err(|e| Error::corrupt("log", stored.seq.to_string(), e))?;
    Ok((id, event))
}

pub(super) fn event_context<'a, A: Aggregate>(stored: &StoredEvent, id: &'a A::Id) -> EventContext<'a, A::Id> {
    EventContext {
        id,
        version: stored.envelope.version - 1,
        occurred_at: stored.envelope.occurred_at,
        event_id: stored.envelope.event_id,
    }
}

pub(super) fn react_erased<A: Aggregate>(stored: &StoredEvent) -> Result<Box<dyn Any>, Error> {
    let (id, event) = decode_stored_event::<A>(stored)?;
    let reactions = A::react(&event, &event_context::<A>(stored, &id)).map_err(|e| Error::Replay {
        aggregate: A::NAME,
        id: id.to_string(),
        seq: stored.seq,
        message: format!("a process failed: {e}"),
    })?;
    Ok(Box::new(reactions))
}

pub(super) fn fold_erased<A: Aggregate>(stored: &StoredEvent, tables: &mut dyn ViewTables) -> Result<(), ViewError> {
    let (id, event) =
        decode_stored_event::<A>(stored).map_err(|e| ViewError { view: "<rebuild>", message: e.to_string() })?;
    A::update_views(&event, &event_context::<A>(stored, &id), tables)
}

pub(super) fn submit_json_erased<D: Domain, A: Aggregate>(
    inner: &Inner<D>,
    id: &str,
    command: &str,
    json: &[u8],
    meta: CommandMeta,
) -> Result<PendingAny<JsonOutcome>, Error> {
    let id = A::Id::parse_key(id).map_err(|e| Error::InvalidCommand { message: format!("the id: {e}") })?;
    let command = A::command_from_json(command, json).map_err(|e| Error::InvalidCommand { message: e.to_string() })?;
    Ok(PendingAny::new(inner.submit::<A>(id, command, meta)?, json_outcome::<A>))
}

fn json_outcome<A: Aggregate>(outcome: Outcome<A>) -> JsonOutcome {
    match outcome {
        Outcome::Accepted { events, version } => JsonOutcome::Accepted {
            version,
            events: events
                .iter()
                .map(|r| JsonEvent {
                    seq: r.seq,
                    event_id: format!("{:032x}", r.event_id),
                    name: crate::aggregate::EventName::name(&r.event),
                    event: A::event_to_json(&r.event),
                })
                .collect(),
        },
        Outcome::Rejected(rejection) => {
            JsonOutcome::Rejected { code: rejection.code().to_owned(), message: rejection.message().to_owned() }
        }
    }
}

pub(super) fn event_json_erased<A: Aggregate>(
    stored: &StoredEvent,
) -> Result<(&'static str, serde_json::Value), Error> {
    let (_, event) = decode_stored_event::<A>(stored)?;
    Ok((crate::aggregate::EventName::name(&event), A::event_to_json(&event)))
}

/// Follows the instance's event links back from `last_seq`, checking each envelope, and returns its events
/// oldest first. `version` bounds the walk.
pub(super) fn load_events<A: Aggregate>(
    store: &Store,
    txn: &RoTxn,
    tag: u16,
    key: &[u8],
    last_seq: u64,
    version: u64,
) -> Result<Vec<(StoredEvent, A::Event)>, Error> {
    let mut events = Vec::with_capacity(usize::try_from(version).unwrap_or(0).min(1 << 16));
    let mut seq = last_seq;
    let mut expected_version = version;
    while seq != 0 {
        let broken = |message: String| Error::Corrupt { table: "log", at: seq.to_string(), message };
        if expected_version == 0 {
            return Err(broken(format!("`{}` has more events than its version {version}", A::NAME)));
        }
        let stored = store.event(txn, seq)?.ok_or_else(|| broken("a linked event is missing".into()))?;
        if stored.envelope.tag != tag || stored.envelope.key != key || stored.envelope.version != expected_version {
            return Err(broken(format!("the event is not version {expected_version} of this `{}`", A::NAME)));
        }
        let event = A::decode_event(&stored.event).map_err(|e| Error::corrupt("log", seq.to_string(), e))?;
        seq = stored.envelope.previous_seq;
        expected_version -= 1;
        events.push((stored, event));
    }
    if expected_version != 0 {
        return Err(Error::Corrupt {
            table: "aggregates",
            at: format!("{key:02x?}"),
            message: format!("version {version} but only {} events in the log", version - expected_version),
        });
    }
    events.reverse();
    Ok(events)
}

/// The state of one instance replayed from its events (from the default state), and its id.
fn replay<A: Aggregate>(
    store: &Store,
    txn: &RoTxn,
    key: &[u8],
    record: &AggregateRecord,
) -> Result<(A::Id, A::State), Error> {
    let (tag_bytes, id_bytes) = key.split_at(2);
    let tag = u16::from_be_bytes([tag_bytes[0], tag_bytes[1]]);
    let id = decode_id::<A>(id_bytes, "aggregates", format!("{key:02x?}"))?;
    let events = load_events::<A>(store, txn, tag, id_bytes, record.last_seq, record.version)?;
    let mut state = A::State::default();
    for (stored_event, event) in &events {
        A::evolve(&mut state, event, &event_context::<A>(stored_event, &id)).map_err(|e| Error::Replay {
            aggregate: A::NAME,
            id: id.to_string(),
            seq: stored_event.seq,
            message: e.to_string(),
        })?;
    }
    Ok((id, state))
}

pub(super) fn replay_state_erased<A: Aggregate>(
    store: &Store,
    txn: &RoTxn,
    key: &[u8],
    record: &AggregateRecord,
) -> Result<Vec<u8>, Error> {
    Ok(A::encode_state(&replay::<A>(store, txn, key, record)?.1))
}

pub(super) fn apply_event_erased<A: Aggregate>(stored: &StoredEvent, state: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let (id, event) = decode_stored_event::<A>(stored)?;
    let mut state = match state {
        None => A::State::default(),
        Some(bytes) => A::decode_state(bytes).map_err(|e| Error::corrupt("aggregates", id.to_string(), e))?,
    };
    A::evolve(&mut state, &event, &event_context::<A>(stored, &id)).map_err(|e| Error::Replay {
        aggregate: A::NAME,
        id: id.to_string(),
        seq: stored.seq,
        message: e.to_string(),
    })?;
    Ok(A::encode_state(&state))
}

/// Checks that the stored state of one instance equals a fresh replay of its events; returns the event count.
pub(super) fn verify_erased<A: Aggregate>(
    store: &Store,
    txn: &RoTxn,
    key: &[u8],
    record: &AggregateRecord,
) -> Result<u64, Error> {
    let (id, state) = replay::<A>(store, txn, key, record)?;
    let stored = A::decode_state(&record.state).map_err(|e| Error::corrupt("aggregates", id.to_string(), e))?;
    if state != stored {
        return Err(Error::Replay {
            aggregate: A::NAME,
            id: id.to_string(),
            seq: record.last_seq,
            message: format!("the stored state {stored:?} differs from the replayed state {state:?}"),
        });
    }
    Ok(record.version)
}
