//! The engines behind the HTTP API: one `anthill_runtime::Engine` per domain, reached by name with JSON in
//! and out. This is the only place that turns engine errors into the API's error kinds.

use std::any::Any;
use std::collections::HashMap;
use std::path::Path;

use anthill_runtime::engine::{CommandMeta, Config, Engine, JsonOutcome, PendingAny, Stats};
use anthill_runtime::error::Error;
use anthill_runtime::format::StoredEvent;
use anthill_runtime::meta::DomainMeta;
use anthill_runtime::{Aggregate, AggregateVisitor, Domain, Key};
use serde_json::{json, Value};

use crate::http::{Backend, BackendError, CommandReply, EventAnswer, PendingReply, RequestMeta};
use crate::metrics::EngineFigures;

/// A 128-bit id in the UUID text form.
pub fn uuid_text(id: u128) -> String {
    let h = format!("{id:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The engine of domain `D` behind a type-erased reference. Every function table entry is built for the engine
/// it is stored with (`DomainEngine::open::<D>`), so the downcast cannot fail.
fn engine_of<D: Domain>(engine: &dyn Any) -> &Engine<D> {
    engine.downcast_ref::<Engine<D>>().expect("a domain's functions are called with that domain's engine")
}

type StateFn = fn(&dyn Any, &str) -> Result<Option<(u64, Value)>, Error>;
type EventsFn = fn(&dyn Any, &str) -> Result<Vec<Value>, Error>;
type KeyTextFn = fn(&[u8]) -> String;

/// What the service can do with one aggregate type, by name.
struct AggregateFns {
    state: StateFn,
    events: EventsFn,
    key_text: KeyTextFn,
}

fn state_json<A: Aggregate>(engine: &dyn Any, id: &str) -> Result<Option<(u64, Value)>, Error> {
    let engine = engine_of::<A::Domain>(engine);
    let id = A::Id::parse_key(id).map_err(|e| Error::InvalidCommand { message: format!("the id: {e}") })?;
    Ok(engine.state::<A>(&id)?.map(|s| (s.version, A::state_to_json(&s.state))))
}

fn events_json<A: Aggregate>(engine: &dyn Any, id: &str) -> Result<Vec<Value>, Error> {
    let engine = engine_of::<A::Domain>(engine);
    let key = A::Id::parse_key(id).map_err(|e| Error::InvalidCommand { message: format!("the id: {e}") })?;
    Ok(engine
        .events::<A>(&key)?
        .into_iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "event_id": uuid_text(r.event_id),
                "aggregate": A::NAME,
                "id": id,
                "version": r.version,
                "occurred_at": r.occurred_at,
                "event": A::event_to_json(&r.event),
            })
        })
        .collect())
}

fn key_text<A: Aggregate>(bytes: &[u8]) -> String {
    match A::Id::decode_key(bytes) {
        Ok(key) => key.to_string(),
        Err(_) => format!("<undecodable key {bytes:02x?}>"),
    }
}

struct Collect(Vec<(&'static str, AggregateFns)>);

impl AggregateVisitor for Collect {
    fn visit<A: Aggregate>(&mut self) {
        self.0.push((
            A::NAME,
            AggregateFns { state: state_json::<A>, events: events_json::<A>, key_text: key_text::<A> },
        ));
    }
}

type SubmitFn = fn(&dyn Any, &str, &str, &str, &[u8], CommandMeta) -> Result<PendingAny<JsonOutcome>, Error>;
type ChangesFn = fn(&dyn Any, u64, usize) -> Result<Vec<(StoredEvent, &'static str, Value)>, Error>;
type ViewGetFn = fn(&dyn Any, &str, &str) -> Result<Option<Value>, BackendError>;
type ViewRangeFn = fn(&dyn Any, &str, Option<&str>, usize) -> Result<Vec<(String, Value)>, BackendError>;
type ShutdownFn = fn(Box<dyn Any + Send + Sync>);
type LastSeqFn = fn(&dyn Any) -> Result<u64, Error>;
type FiguresFn = fn(&dyn Any) -> (Stats, u64);
type RebuildFn = fn(&dyn Any, &str, &mut dyn FnMut(u64, u64)) -> Result<u64, Error>;

/// One domain's engine, type-erased, with its functions by name.
pub struct DomainEngine {
    meta: &'static DomainMeta,
    engine: Option<Box<dyn Any + Send + Sync>>,
    aggregates: HashMap<&'static str, AggregateFns>,
    submit: SubmitFn,
    changes: ChangesFn,
    view_get: ViewGetFn,
    view_range: ViewRangeFn,
    shutdown: ShutdownFn,
    last_seq: LastSeqFn,
    rebuild_view: RebuildFn,
    figures: FiguresFn,
    /// The store's `Store::key_ids_time_prefixed_from_ms`: fixed once the store is open.
    key_ids_time_prefixed_from_ms: u64,
}

fn last_seq_erased<D: Domain>(engine: &dyn Any) -> Result<u64, Error> {
    engine_of::<D>(engine).last_seq()
}

fn figures_erased<D: Domain>(engine: &dyn Any) -> (Stats, u64) {
    let engine = engine_of::<D>(engine);
    (engine.stats(), engine.queue_depth())
}

fn rebuild_erased<D: Domain>(engine: &dyn Any, view: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<u64, Error> {
    engine_of::<D>(engine).rebuild_view_with_progress(view, progress)
}

fn submit_erased<D: Domain>(
    engine: &dyn Any,
    aggregate: &str,
    id: &str,
    command: &str,
    body: &[u8],
    meta: CommandMeta,
) -> Result<PendingAny<JsonOutcome>, Error> {
    let engine = engine_of::<D>(engine);
    engine.submit_json(aggregate, id, command, body, meta)
}

fn changes_erased<D: Domain>(
    engine: &dyn Any,
    since: u64,
    limit: usize,
) -> Result<Vec<(StoredEvent, &'static str, Value)>, Error> {
    let engine = engine_of::<D>(engine);
    engine
        .changes(since, limit)?
        .into_iter()
        .map(|stored| {
            let (name, value) = engine.event_json(&stored)?;
            Ok((stored, name, value))
        })
        .collect()
}

fn view_get_erased<D: Domain>(engine: &dyn Any, view: &str, key: &str) -> Result<Option<Value>, BackendError> {
    let engine = engine_of::<D>(engine);
    let key = D::view_key(view, key)
        .ok_or_else(|| BackendError::NotFound(format!("no view `{view}`")))?
        .map_err(|e| BackendError::InvalidId(format!("the key: {e}")))?;
    let Some(bytes) = engine.view_get(view, &key).map_err(backend_error)? else { return Ok(None) };
    let row = D::view_row_json(view, &bytes).ok_or_else(|| BackendError::NotFound(format!("no view `{view}`")))?;
    row.map(Some).map_err(|e| BackendError::Internal(format!("view `{view}`: {e}")))
}

fn view_range_erased<D: Domain>(
    engine: &dyn Any,
    view: &str,
    from: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Value)>, BackendError> {
    let engine = engine_of::<D>(engine);
    let from = match from.filter(|text| !text.is_empty()) {
        Some(text) => D::view_key(view, text)
            .ok_or_else(|| BackendError::NotFound(format!("no view `{view}`")))?
            .map_err(|e| BackendError::InvalidId(format!("`from`: {e}")))?,
        None => Vec::new(),
    };
    let rows = engine.view_range(view, &from, limit).map_err(backend_error)?;
    rows.into_iter()
        .map(|(key, row)| {
            let key = D::view_key_text(view, &key)
                .and_then(Result::ok)
                .unwrap_or_else(|| format!("<undecodable key {key:02x?}>"));
            let row = D::view_row_json(view, &row)
                .ok_or_else(|| BackendError::NotFound(format!("no view `{view}`")))?
                .map_err(|e| BackendError::Internal(format!("view `{view}`: {e}")))?;
            Ok((key, row))
        })
        .collect()
}

fn shutdown_erased<D: Domain>(engine: Box<dyn Any + Send + Sync>) {
    if let Ok(engine) = engine.downcast::<Engine<D>>() {
        engine.shutdown();
    }
}

impl DomainEngine {
    /// Opens the engine of domain `D` on the store at `path`.
    pub fn open<D: Domain>(path: &Path, config: Config) -> Result<DomainEngine, Error> {
        let engine = Engine::<D>::open(path, config)?;
        if engine.recovered_events() > 0 {
            // The last run stopped without writing its records and view rows out (a crash, `kill -9`).
            tracing::info!(
                "{}: replayed {} events after the checkpoint into the records and views",
                D::NAME,
                engine.recovered_events()
            );
        }
        Ok(Self::erase::<D>(engine))
    }

    /// Opens the store of domain `D` at `path` for reads only (see `Engine::open_read_only`).
    pub fn open_read_only<D: Domain>(path: &Path, config: Config) -> Result<DomainEngine, Error> {
        Ok(Self::erase::<D>(Engine::<D>::open_read_only(path, config)?))
    }

    fn erase<D: Domain>(engine: Engine<D>) -> DomainEngine {
        let mut collect = Collect(Vec::new());
        D::for_each_aggregate(&mut collect);
        let key_ids_time_prefixed_from_ms = engine.store().key_ids_time_prefixed_from_ms();
        DomainEngine {
            meta: D::meta(),
            engine: Some(Box::new(engine)),
            aggregates: collect.0.into_iter().collect(),
            submit: submit_erased::<D>,
            changes: changes_erased::<D>,
            view_get: view_get_erased::<D>,
            view_range: view_range_erased::<D>,
            shutdown: shutdown_erased::<D>,
            last_seq: last_seq_erased::<D>,
            rebuild_view: rebuild_erased::<D>,
            figures: figures_erased::<D>,
            key_ids_time_prefixed_from_ms,
        }
    }

    pub fn meta(&self) -> &'static DomainMeta {
        self.meta
    }

    fn engine(&self) -> Result<&dyn Any, BackendError> {
        match &self.engine {
            Some(engine) => Ok(engine.as_ref()),
            None => Err(BackendError::Unavailable("the engine has shut down".into())),
        }
    }

    /// Drains the queues, commits and stops the engine.
    pub fn shutdown(&mut self) {
        if let Some(engine) = self.engine.take() {
            (self.shutdown)(engine);
        }
    }
}

impl Drop for DomainEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Engine errors as API errors.
pub fn backend_error(error: Error) -> BackendError {
    match error {
        Error::InvalidCommand { message } if message.starts_with("the id:") => BackendError::InvalidId(message),
        Error::InvalidCommand { message } => BackendError::InvalidParameters(message),
        // A command whose values overflow a view column (a sum past its type): the client's input, not a fault.
        // The engine fails the batch it landed in (a known limit, see runtime/README.md).
        Error::View(message) if message.ends_with("arithmetic overflow") => {
            BackendError::InvalidParameters(format!("{message}: the command's values overflow a view column"))
        }
        Error::Overloaded { retry_after_ms } => BackendError::Overloaded { retry_after_ms },
        Error::WrongVersion { .. } => BackendError::VersionConflict(error.to_string()),
        Error::CommandIdReused { .. } => {
            BackendError::InvalidParameters(format!("{error}: an Idempotency-Key names one command for one instance"))
        }
        Error::UnknownAggregate { .. } | Error::UnknownView { .. } => BackendError::NotFound(error.to_string()),
        Error::ShuttingDown | Error::MapFull { .. } | Error::Store { .. } | Error::ReadOnly { .. } => {
            BackendError::Unavailable(error.to_string())
        }
        other => BackendError::Internal(other.to_string()),
    }
}

/// Every domain's engine.
pub struct Engines {
    domains: Vec<DomainEngine>,
}

impl Engines {
    pub fn new(domains: Vec<DomainEngine>) -> Engines {
        Engines { domains }
    }

    fn domain(&self, name: &str) -> Result<&DomainEngine, BackendError> {
        self.domains
            .iter()
            .find(|d| d.meta.name == name)
            .ok_or_else(|| BackendError::NotFound(format!("no domain `{name}`")))
    }

    pub fn shutdown(&mut self) {
        for d in &mut self.domains {
            d.shutdown();
        }
    }

    /// The sequence number of a domain's last committed event.
    pub fn last_seq(&self, domain: &str) -> Result<u64, BackendError> {
        let d = self.domain(domain)?;
        (d.last_seq)(d.engine()?).map_err(backend_error)
    }

    /// Rebuilds a view, reporting (events read, events total) as it goes. Needs the store's owner.
    pub fn rebuild_view_with_progress(
        &self,
        domain: &str,
        view: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64, BackendError> {
        let d = self.domain(domain)?;
        (d.rebuild_view)(d.engine()?, view, progress).map_err(backend_error)
    }
}

impl crate::feed::Source for Engines {
    fn domain_names(&self) -> Vec<&'static str> {
        self.domains.iter().map(|d| d.meta.name).collect()
    }

    fn last_seq(&self, domain: &str) -> Result<u64, crate::feed::FeedError> {
        Engines::last_seq(self, domain).map_err(|e| crate::feed::FeedError(format!("domain `{domain}`: {e:?}")))
    }
}

impl Backend for Engines {
    fn domains(&self) -> Vec<&'static DomainMeta> {
        self.domains.iter().map(|d| d.meta).collect()
    }

    fn engine_figures(&self) -> Vec<EngineFigures> {
        let mut figures = Vec::new();
        for d in &self.domains {
            // A domain whose engine is closed (shutting down) has no figures.
            if let Ok(engine) = d.engine() {
                let (stats, queue_depth) = (d.figures)(engine);
                figures.push(EngineFigures { domain: d.meta.name, stats, queue_depth });
            }
        }
        figures
    }

    fn submit(
        &self,
        domain: &str,
        aggregate: &str,
        id: &str,
        command: &str,
        body: &[u8],
        meta: RequestMeta,
    ) -> Result<PendingReply, BackendError> {
        let d = self.domain(domain)?;
        let command_id = match (meta.command_id, meta.key_time_ms) {
            // A UUIDv7 key as new as the store's mapping: its records arrive in about the order of their ids.
            (Some(hashed), Some(time_ms)) if time_ms >= d.key_ids_time_prefixed_from_ms => {
                Some(anthill_runtime::key_time_prefixed_command_id(time_ms, hashed))
            }
            (command_id, _) => command_id,
        };
        let meta = CommandMeta { command_id, expected_version: meta.expected_version, ..CommandMeta::default() };
        let pending = (d.submit)(d.engine()?, aggregate, id, command, body, meta).map_err(backend_error)?;
        let (domain, aggregate, id) = (d.meta.name, aggregate.to_owned(), id.to_owned());
        Ok(Box::pin(async move {
            match pending.await.map_err(backend_error)? {
                JsonOutcome::Accepted { version, events } => {
                    let first_version = version + 1 - events.len() as u64;
                    Ok(CommandReply::Accepted {
                        version,
                        events: (first_version..)
                            .zip(events)
                            .map(|(event_version, e)| {
                                let event_id = u128::from_str_radix(&e.event_id, 16).map_or(e.event_id, uuid_text);
                                EventAnswer {
                                    aggregate: aggregate.clone(),
                                    domain,
                                    event: e.event,
                                    event_id,
                                    id: id.clone(),
                                    seq: e.seq,
                                    version: event_version,
                                }
                            })
                            .collect(),
                    })
                }
                JsonOutcome::Rejected { code, message } => Ok(CommandReply::Rejected { code, message }),
            }
        }))
    }

    fn state(&self, domain: &str, aggregate: &str, id: &str) -> Result<Option<(u64, Value)>, BackendError> {
        let d = self.domain(domain)?;
        let fns =
            d.aggregates.get(aggregate).ok_or_else(|| BackendError::NotFound(format!("no aggregate `{aggregate}`")))?;
        (fns.state)(d.engine()?, id).map_err(backend_error)
    }

    fn events(&self, domain: &str, aggregate: &str, id: &str) -> Result<Vec<Value>, BackendError> {
        let d = self.domain(domain)?;
        let fns =
            d.aggregates.get(aggregate).ok_or_else(|| BackendError::NotFound(format!("no aggregate `{aggregate}`")))?;
        (fns.events)(d.engine()?, id).map_err(backend_error)
    }

    fn changes(&self, domain: &str, since: u64, limit: usize) -> Result<(Vec<Value>, u64), BackendError> {
        let d = self.domain(domain)?;
        let events = (d.changes)(d.engine()?, since, limit).map_err(backend_error)?;
        let next = events.last().map_or(since, |(stored, _, _)| stored.seq);
        let events = events
            .into_iter()
            .map(|(stored, _name, event)| {
                let e = &stored.envelope;
                let id = d
                    .aggregates
                    .get(e.aggregate.as_str())
                    .map_or_else(|| format!("{:02x?}", e.key), |fns| (fns.key_text)(&e.key));
                json!({
                    "seq": stored.seq,
                    "event_id": uuid_text(e.event_id),
                    "domain": domain,
                    "aggregate": e.aggregate,
                    "id": id,
                    "version": e.version,
                    "recorded_at": e.recorded_at,
                    "occurred_at": e.occurred_at,
                    "command_id": uuid_text(e.command_id),
                    "correlation_id": uuid_text(e.correlation_id),
                    "event": event,
                })
            })
            .collect();
        Ok((events, next))
    }

    fn rebuild_view(&self, domain: &str, view: &str) -> Result<u64, BackendError> {
        self.rebuild_view_with_progress(domain, view, &mut |_, _| {})
    }

    fn view_get(&self, domain: &str, view: &str, key: &str) -> Result<Option<Value>, BackendError> {
        let d = self.domain(domain)?;
        (d.view_get)(d.engine()?, view, key)
    }

    fn view_range(
        &self,
        domain: &str,
        view: &str,
        from: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, BackendError> {
        let d = self.domain(domain)?;
        (d.view_range)(d.engine()?, view, from, limit)
    }
}
