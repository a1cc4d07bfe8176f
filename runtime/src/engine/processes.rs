//! The process runner: reactions to committed events, sent as commands with derived ids.

use super::*;

/// A reaction's command in flight, waiting for its outcome.
pub(super) type Waiter = Box<dyn FnOnce() -> Result<bool, Error>>;

pub(super) struct ReactionSender<'a, D: Domain> {
    pub(super) inner: &'a Inner<D>,
    pub(super) meta: CommandMeta,
}

impl<D: Domain> CommandVisitor for ReactionSender<'_, D> {
    type Output = Result<Waiter, Error>;
    fn visit<A: Aggregate>(self, id: A::Id, command: A::Command) -> Self::Output {
        let pending = self.inner.submit::<A>(id, command, self.meta)?;
        Ok(Box::new(move || pending.wait().map(|outcome| outcome.is_accepted())))
    }
}

/// How long the runner sleeps when idle or after an error before it looks again.
pub(super) const PROCESS_IDLE_POLL: Duration = Duration::from_millis(20);

/// The runner stores its progress itself when no writer's commit has stored it (see `Inner::progress_stored`)
/// for this long: a crash then re-reads at most about this much of the log, and re-sends its reactions, which
/// their derived command ids answer from the first outcome.
pub(super) const PROGRESS_PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// Where the runner is: the last event handled (every reaction to it answered), and when the runner last
/// found its progress stored or stored it.
pub(super) struct Progress {
    pub(super) handled: u64,
    pub(super) stored_at: Instant,
}

pub(super) fn run_processes<D: Domain>(inner: &Inner<D>, commits: &Receiver<()>) {
    // Bounded by shutdown: the stored progress is read again until it can be, or the runner is stopped.
    let stored = loop {
        match inner.store.read().and_then(|txn| inner.store.progress(&txn)) {
            Ok(stored) => break stored,
            Err(error) => {
                *inner.process_error.lock() = Some(error);
                if inner.processes_stop.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(PROCESS_IDLE_POLL);
            }
        }
    };
    inner.progress.store(stored, Ordering::Release);
    inner.progress_stored.store(stored, Ordering::Release);
    let mut progress = Progress { handled: stored, stored_at: Instant::now() };
    while !inner.processes_stop.load(Ordering::Acquire) {
        // A panic in a process's code is reported like an error (and the round retried), not a dead runner.
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process_round(inner, &mut progress)))
            .unwrap_or_else(|payload| {
                Err(Error::Panicked { aggregate: "<process>", message: panic_message(payload.as_ref()) })
            });
        match round {
            Ok(true) => {}
            Ok(false) => {
                let _ = commits.recv_timeout(PROCESS_IDLE_POLL);
            }
            Err(error) => {
                if matches!(error, Error::ShuttingDown) {
                    break;
                }
                *inner.process_error.lock() = Some(error);
                std::thread::sleep(PROCESS_IDLE_POLL);
            }
        }
    }
    // Events handled since the last store: store them now, so a restart skips them.
    if progress.handled > inner.progress_stored.load(Ordering::Acquire) {
        if let Err(error) = store_progress(inner) {
            *inner.process_error.lock() = Some(error);
        }
    }
}

/// Stores the runner's progress in a commit of its own. Read inside the transaction, as the writers read it:
/// LMDB orders the transactions, and the progress only grows, so the stored progress never goes back.
fn store_progress<D: Domain>(inner: &Inner<D>) -> Result<(), Error> {
    let store = &inner.store;
    let handled = store.write(|txn| {
        let handled = inner.progress.load(Ordering::Acquire);
        store.put_progress(txn, handled)?;
        Ok(handled)
    })?;
    inner.progress_stored.fetch_max(handled, Ordering::AcqRel);
    Ok(())
}

/// Reacts to the next events after the handled ones; returns whether there were any. Progress moves past an
/// event only once every reaction to it is answered (so committed), and is stored lazily: with the writers'
/// next commit, or by the runner after [`PROGRESS_PERSIST_INTERVAL`]. A crash before that re-sends those
/// reactions, with the same command ids, which makes the effect exactly once.
pub(super) fn process_round<D: Domain>(inner: &Inner<D>, progress: &mut Progress) -> Result<bool, Error> {
    let store = &inner.store;
    let mut round: Vec<(Reaction<D::Command>, u128)> = Vec::new();
    let last = {
        let txn = store.read()?;
        // A domain without processes has nothing to read: the runner only keeps up with the log.
        if inner.registry.entries.iter().all(|entry| entry.handled_events.is_empty()) {
            let last = store.last_seq(&txn)?;
            if last == progress.handled {
                return Ok(false);
            }
            progress.handled = last;
            inner.progress.store(last, Ordering::Release);
            return Ok(true);
        }
        // No event some process handles after the progress: move it to the published events unread. The
        // published sequence number is read first: a commit raises `handled_through` before it publishes.
        let (_, published) = store.unflushed_bounds();
        if inner.handled_through.load(Ordering::SeqCst) <= progress.handled {
            if published <= progress.handled {
                return Ok(false);
            }
            progress.handled = published;
            inner.progress.store(published, Ordering::Release);
            return Ok(true);
        }
        let time_prefixed_from = store.reaction_ids_time_prefixed_from();
        store.scan_events(&txn, progress.handled, inner.config.process_batch_max as usize, |event| {
            let entry = inner.registry.by_tag(event.envelope.tag, event.seq)?;
            // Only events some process handles (as the model's metadata lists them) are decoded.
            if !entry.handled_events.contains(&event.envelope.event_name) {
                return Ok(());
            }
            match (entry.react)(&event.to_owned()) {
                Ok(reactions) => {
                    let mut reactions = reactions
                        .downcast::<Vec<Reaction<D::Command>>>()
                        .expect("the registry checked that every aggregate belongs to this domain");
                    if event.seq >= time_prefixed_from {
                        for reaction in reactions.iter_mut() {
                            time_prefix_ids(reaction, event.envelope.event_id);
                        }
                    }
                    round.extend(reactions.into_iter().map(|r| (r, event.envelope.correlation_id)));
                }
                // A process's arithmetic overflowed: reported, and nothing is sent for this event.
                Err(error) => *inner.process_error.lock() = Some(error),
            }
            Ok(())
        })?
    };
    if last == progress.handled {
        return Ok(false);
    }
    for _depth in 0..inner.config.process_depth_max {
        if round.is_empty() {
            break;
        }
        let mut next = Vec::new();
        let mut waiting = Vec::with_capacity(round.len());
        for (reaction, correlation_id) in round {
            let meta = CommandMeta {
                command_id: Some(reaction.command_id),
                correlation_id: Some(correlation_id),
                expected_version: None,
                occurred_at: None,
            };
            match send_reaction(inner, &reaction, meta) {
                Ok(waiter) => waiting.push((waiter, reaction, correlation_id)),
                Err(error) if is_permanent(&error) => *inner.process_error.lock() = Some(error),
                Err(error) => return Err(error),
            }
        }
        for (waiter, reaction, correlation_id) in waiting {
            match waiter_result(inner, waiter, &reaction, correlation_id) {
                Ok(true) => {}
                Ok(false) => next.extend(reaction.on_rejected.into_iter().map(|r| (r, correlation_id))),
                // A reaction that can never run is reported and skipped, so it does not stop every process.
                Err(error) if is_permanent(&error) => *inner.process_error.lock() = Some(error),
                Err(error) => return Err(error),
            }
        }
        round = next;
    }
    progress.handled = last;
    inner.progress.store(last, Ordering::Release);
    if inner.progress_stored.load(Ordering::Acquire) >= last {
        progress.stored_at = Instant::now();
    } else if progress.stored_at.elapsed() >= PROGRESS_PERSIST_INTERVAL {
        store_progress(inner)?;
        progress.stored_at = Instant::now();
    }
    Ok(true)
}

/// Gives a reaction, and the ones it sends if rejected, time-prefixed command ids (see
/// [`crate::aggregate::time_prefixed_command_id`]): their idempotency records then land near each other.
/// Bounded by the model: `on_rejected` nests as deep as its source does.
fn time_prefix_ids<C>(reaction: &mut Reaction<C>, event_id: u128) {
    reaction.command_id = crate::aggregate::time_prefixed_command_id(event_id, reaction.command_id);
    for fallback in &mut reaction.on_rejected {
        time_prefix_ids(fallback, event_id);
    }
}

/// Errors a retry cannot fix (the reaction names an unknown aggregate, bad parameters...), as opposed to
/// the store failing, a full map or an overload, which the runner retries.
pub(super) fn is_permanent(error: &Error) -> bool {
    matches!(
        error,
        Error::UnknownAggregate { .. }
            | Error::InvalidCommand { .. }
            | Error::CommandIdReused { .. }
            | Error::WrongVersion { .. }
            | Error::Replay { .. }
    )
}

/// Waits for one reaction's outcome, re-sending it while the engine is overloaded.
pub(super) fn waiter_result<D: Domain>(
    inner: &Inner<D>,
    waiter: Waiter,
    reaction: &Reaction<D::Command>,
    correlation_id: u128,
) -> Result<bool, Error> {
    let mut outcome = waiter();
    // Bounded by shutdown: an overloaded engine is retried until it recovers or the runner is stopped.
    while let Err(Error::Overloaded { retry_after_ms }) = outcome {
        if inner.processes_stop.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        std::thread::sleep(Duration::from_millis(retry_after_ms.min(100)));
        let meta = CommandMeta {
            command_id: Some(reaction.command_id),
            correlation_id: Some(correlation_id),
            expected_version: None,
            occurred_at: None,
        };
        outcome = send_reaction(inner, reaction, meta).and_then(|waiter| waiter());
    }
    outcome
}

pub(super) fn send_reaction<D: Domain>(
    inner: &Inner<D>,
    reaction: &Reaction<D::Command>,
    meta: CommandMeta,
) -> Result<Waiter, Error> {
    loop {
        match reaction.command.clone().dispatch(ReactionSender { inner, meta }) {
            Err(Error::Overloaded { retry_after_ms }) => {
                if inner.processes_stop.load(Ordering::Acquire) {
                    return Err(Error::ShuttingDown);
                }
                std::thread::sleep(Duration::from_millis(retry_after_ms.min(100)));
            }
            other => return other,
        }
    }
}
