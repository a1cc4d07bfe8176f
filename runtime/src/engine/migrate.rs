//! The one-time migration of a store written by an earlier schema of the domain (see `crate::upcast`): in one
//! write transaction, upcast the stored events that need it, rebuild every instance's state and every view
//! from the log, and record the current schema. Nothing is visible (or durable) until it all commits.

use super::*;
use crate::schema::UpcastNeed;
use crate::upcast::Upcasters;

/// Events read from the log per step (bounds the memory of the pass, not the transaction).
const CHUNK_EVENTS_MAX: usize = 4096;

/// What a migration did: events rewritten, instances and views rebuilt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Migration {
    pub events_upcast: u64,
    pub instances_rebuilt: u64,
    pub views_rebuilt: u64,
}

pub(super) fn migrate<D: Domain>(
    store: &Store,
    registry: &Registry<D>,
    needs: &[UpcastNeed],
    upcasters: &Upcasters,
    fingerprint: u64,
    schema: &[String],
) -> Result<Migration, Error> {
    // Each need names a declared upcaster (the plan checked it); resolve them once.
    let mut resolved = Vec::with_capacity(needs.len());
    for need in needs {
        let upcaster = upcasters.find(&need.aggregate, &need.event, &need.fields).ok_or_else(|| Error::Store {
            message: format!("the upcaster of `{}/{}` vanished", need.aggregate, need.event),
        })?;
        resolved.push((need.aggregate.as_str(), need.event.as_str(), upcaster));
    }
    store.write(|txn| {
        let mut done = Migration::default();
        // 1. Upcast: rewrite each stored event that needs it, in place (same sequence number and envelope).
        if !resolved.is_empty() {
            let mut since = 0;
            let mut buffer = Vec::new();
            loop {
                let chunk = store.events_after(txn, since, CHUNK_EVENTS_MAX)?;
                let Some(last) = chunk.last() else { break };
                since = last.seq;
                for stored in &chunk {
                    let envelope = &stored.envelope;
                    let Some((_, _, upcaster)) = resolved.iter().find(|(aggregate, event, _)| {
                        *aggregate == envelope.aggregate && *event == envelope.event_name
                    }) else {
                        continue;
                    };
                    let (name, bytes) = upcaster.apply(&stored.event).map_err(|message| Error::Corrupt {
                        table: "log",
                        at: stored.seq.to_string(),
                        message: format!("upcasting failed: {message}"),
                    })?;
                    let upcast = EnvelopeRef { event_name: name, ..envelope.as_ref() };
                    format::encode_event_into(&upcast, &bytes, &mut buffer);
                    store.replace_event(txn, stored.seq, &buffer)?;
                    done.events_upcast += 1;
                }
            }
        }
        // 2. States: every instance's record replayed from its (now current) events.
        for key in store.aggregate_keys(txn)? {
            let record = store.aggregate(txn, &key)?.ok_or_else(|| Error::Corrupt {
                table: "aggregates",
                at: format!("{key:02x?}"),
                message: "a record vanished during the migration".into(),
            })?;
            if key.len() < 2 {
                let message = "short key".to_owned();
                return Err(Error::Corrupt { table: "aggregates", at: format!("{key:02x?}"), message }.into());
            }
            let entry = registry.by_tag(u16::from_be_bytes([key[0], key[1]]), 0)?;
            let state = (entry.replay_state)(store, txn, &key, &record)?;
            store.put_aggregate(txn, &key, &format::encode_aggregate(record.version, record.last_seq, &state))?;
            done.instances_rebuilt += 1;
        }
        // 3. Views: cleared and folded again from the whole log.
        let views: Vec<&'static str> = store.view_names().collect();
        for view in &views {
            store.clear_view(txn, view)?;
        }
        let mut since = 0;
        let mut rows = ViewRows::new(0);
        loop {
            let chunk = store.events_after(txn, since, CHUNK_EVENTS_MAX)?;
            let Some(last) = chunk.last() else { break };
            since = last.seq;
            for stored in &chunk {
                let entry = registry.by_tag(stored.envelope.tag, stored.seq)?;
                let seq = stored.seq;
                let mut tables =
                    TxnViews { store, txn, rows: &mut rows, only: None, unflushed: false, seq, replay: false };
                if let Err(error) = (entry.fold_views)(stored, &mut tables) {
                    return Err(WriteError::Other(Error::View(error.to_string())));
                }
            }
            rows.flush(store, txn)?;
            rows.clear();
        }
        done.views_rebuilt = views.len() as u64;
        // 4. The records lag the log if a crash left them unflushed: they were rebuilt as of the checkpoint
        //    above, so replay the events after it into them (the views were folded from the whole log).
        let checkpoint_seq = store.checkpoint_seq(txn)?;
        write_replayed_after(store, registry, txn, checkpoint_seq, false)?;
        // 5. The store now holds the current schema.
        store.put_schema(txn, fingerprint, schema)?;
        Ok(done)
    })
}
