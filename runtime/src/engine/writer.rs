//! The writer loop: batches from a partition queue, decided, written and committed, then answered.

use super::*;

/// How long an idle writer sleeps before it checks for shutdown.
pub(super) const WRITER_IDLE_POLL: Duration = Duration::from_millis(10);

/// Batches answered off the writer thread, so the writer starts its next batch at once.
pub(super) type Jobs = Vec<Box<dyn Job>>;
pub(super) type AnsweredBatch = (Jobs, Option<Error>);
pub(super) type Answers = Sender<AnsweredBatch>;

/// Batches a writer may have committed but not yet answered.
pub(super) const ANSWER_QUEUE_BATCHES_MAX: usize = 4;

/// How long a checkpoint step waits, when many entries are held, for the read transactions that began before
/// it (a partition deciding, a read) to end, so it can drop the entries it wrote out; otherwise it does not
/// wait, and a later step drops them.
pub(super) const FORGET_WAIT: Duration = Duration::from_millis(20);

/// Unflushed entries, in multiples of `checkpoint_entries_max`, at which a writer whose checkpoints fail stops
/// taking batches: fails them with the checkpoint's error (memory stays bounded; nothing is lost).
const UNFLUSHED_ENTRIES_STOP_FACTOR: usize = 4;

/// Checkpoint steps in a cycle: each writes this fraction of the unflushed records and rows.
pub(super) const CHECKPOINT_STEPS: usize = 16;

/// A checkpoint step (`None`: every unflushed record and row at once): writes them out (see
/// `crate::unflushed`) and drops them from memory.
pub(super) fn checkpoint<D: Domain>(inner: &Inner<D>, steps: Option<usize>) -> Result<(), Error> {
    let started = Instant::now();
    let stats = &inner.stats;
    // A panic here (a broken invariant) must not take the writer down with it: the checkpoint fails, the log
    // holds everything, and the writer stops taking batches once too much is unflushed.
    let stepped =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.store.checkpoint_with(steps, |_, _| Ok(()))))
            .unwrap_or_else(|payload| {
                Err(Error::Panicked { aggregate: "<checkpoint>", message: panic_message(payload.as_ref()) })
            });
    if let Err(error) = stepped {
        stats.failed_checkpoints.fetch_add(1, Ordering::Relaxed);
        return Err(error);
    }
    forget_flushed(inner);
    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    stats.checkpoint_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(())
}

/// Drops what the tables now hold from memory. That waits for the read transactions open meanwhile (a
/// partition deciding, a read); only worth waiting for when the entries held grow large.
fn forget_flushed<D: Domain>(inner: &Inner<D>) {
    let (_, entries) = inner.store.unflushed_size();
    let wait = if entries >= inner.config.checkpoint_entries_max as usize { FORGET_WAIT } else { Duration::ZERO };
    inner.store.forget_flushed(wait);
}

/// Whether a checkpoint step is due: one per `checkpoint_events_max / CHECKPOINT_STEPS` events (a cycle of
/// steps goes through every unflushed entry, so the checkpoint trails the log by one to two cycles, about
/// `checkpoint_events_max` events or twice that), or one at once when too many entries are held.
fn checkpoint_due<D: Domain>(inner: &Inner<D>) -> bool {
    let (events_since_step, entries) = inner.store.unflushed_size();
    let step_events = (u64::from(inner.config.checkpoint_events_max) / CHECKPOINT_STEPS as u64).max(1);
    events_since_step >= step_events || entries >= inner.config.checkpoint_entries_max as usize
}

pub(super) fn run_writer<D: Domain>(inner: &Inner<D>, index: usize, receiver: &Receiver<Box<dyn Job>>) {
    let (answers, answer_queue): (Answers, Receiver<AnsweredBatch>) =
        crossbeam_channel::bounded(ANSWER_QUEUE_BATCHES_MAX);
    std::thread::scope(move |scope| {
        // If the thread cannot start, its queue is dropped with it and `answer` answers on this thread.
        let _answerer =
            std::thread::Builder::new().name(format!("anthill-answers-{index}")).spawn_scoped(scope, move || {
                for (jobs, failure) in answer_queue {
                    answer_all(jobs, failure.as_ref());
                }
            });
        write_batches(inner, index, receiver, &answers);
        // Closing the queue ends the answerer once it has answered everything; the scope then joins it.
        drop(answers);
    });
}

pub(super) fn write_batches<D: Domain>(
    inner: &Inner<D>,
    index: usize,
    receiver: &Receiver<Box<dyn Job>>,
    answers: &Answers,
) {
    let config = &inner.config;
    let batch_size_max = config.batch_size_max as usize;
    let partition = &inner.partitions[index];
    let mut ids = IdGenerator::new();
    let mut scratch = Scratch::default();
    let mut deferred: Vec<Box<dyn Job>> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut deferred);
        if batch.is_empty() {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => {
                    partition.queue_wait_us.store(0, Ordering::Relaxed);
                    match receiver.recv_timeout(WRITER_IDLE_POLL) {
                        Ok(job) => batch.push(job),
                        Err(RecvTimeoutError::Timeout) => {
                            if inner.closing.load(Ordering::Acquire) && receiver.is_empty() {
                                return;
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        }
        while batch.len() < batch_size_max {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if !config.batch_wait_max.is_zero() {
            let deadline = Instant::now() + config.batch_wait_max;
            while batch.len() < batch_size_max {
                match receiver.recv_deadline(deadline) {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let (_, unflushed_entries) = inner.store.unflushed_size();
        if unflushed_entries >= config.checkpoint_entries_max as usize * UNFLUSHED_ENTRIES_STOP_FACTOR {
            // The checkpoints after each batch failed: try once more before taking on more.
            if let Err(error) = checkpoint(inner, None) {
                answer(answers, batch, Some(error));
                continue;
            }
        }
        let oldest = batch.iter().map(|job| job.enqueued_at()).min().expect("a batch is not empty");
        partition.queue_wait_us.store(oldest.elapsed().as_micros() as u64, Ordering::Relaxed);
        // Deferred commands come from a batch no larger than this one may be.
        assert!(batch.len() <= batch_size_max);
        let decided = {
            let mut cache = partition.cache.lock();
            decide_batch(inner, index, batch, &mut cache, &mut deferred, &mut scratch)
        };
        let decided = match decided {
            Ok(decided) => decided,
            Err(failed) => {
                let (jobs, failure) = *failed;
                answer(answers, jobs, failure);
                continue;
            }
        };
        // A commit is durable when it returns (see `Store::open`): the batch is answered at once.
        let (jobs, failure) = commit_together(inner, index, decided, &mut ids, &mut scratch);
        let failed = failure.is_some();
        answer(answers, jobs, failure);

        let mut cache = partition.cache.lock();
        if failed {
            // The cache ran ahead of the store (the committer drops it too, unless it panicked).
            cache.clear();
        }
        if cache.len() > config.cache_entries_max as usize {
            // Evict arbitrary entries down to three quarters: simple, and the stored record reloads them.
            cache.evict_to(config.cache_entries_max as usize * 3 / 4);
        }
    }
}

/// Answers every job, then wakes the callers (see [`Reply::send`]).
pub(super) fn answer_all(jobs: Vec<Box<dyn Job>>, failure: Option<&Error>) {
    let wakes: Vec<Arc<dyn Wake>> = jobs.into_iter().map(|job| job.finish(failure.cloned())).collect();
    for wake in wakes {
        wake.wake();
    }
}

pub(super) fn answer(answers: &Answers, jobs: Vec<Box<dyn Job>>, failure: Option<Error>) {
    // The answerer lives as long as the writer; should it be gone, answer here.
    if let Err(crossbeam_channel::SendError((jobs, failure))) = answers.send((jobs, failure)) {
        answer_all(jobs, failure.as_ref());
    }
}

/// Reusable allocations of one writer.
#[derive(Default)]
pub(super) struct Scratch {
    /// Per batch of a commit: the cache slots of the instances it wrote.
    pub(super) dirty: Vec<Vec<u32>>,
    pub(super) buffer: Vec<u8>,
    /// The instance records of the current write attempt, published once it commits.
    pub(super) records: Staged,
    pub(super) command_ids: HashSet<u128, BuildHasherDefault<FastHasher>>,
}

/// A partition's decided batch, waiting for a commit.
pub(super) struct DecidedBatch {
    pub(super) partition: usize,
    pub(super) jobs: Jobs,
    /// When the batch was decided: its commands' `now`, and their events' `recorded_at`.
    pub(super) now: Timestamp,
}

/// The writers' meeting point (flat combining): a writer that has decided a batch leaves it here, and if no
/// writer is committing, commits every batch waiting, its own and the other partitions', in one transaction;
/// otherwise it waits for its batch's result. So with several partitions, one decides while another's commit
/// syncs (two partitions mostly take turns that way), and batches that wait for the same commit share the next
/// one (one sync for all) instead of queueing one by one for LMDB's write lock. A committer writes another
/// partition's batch with that partition's cache: its writer is waiting here meanwhile and does not touch it.
pub(super) struct Combiner {
    state: Mutex<CombinerState>,
    /// Signalled after every commit.
    committed: Condvar,
}

struct CombinerState {
    /// A writer is committing (and so holds the batches it took).
    committing: bool,
    /// At most one batch per partition: its writer waits for the result before it decides another.
    waiting: Vec<DecidedBatch>,
    /// Per partition, its batch's result, until its writer takes it.
    results: Vec<Option<AnsweredBatch>>,
}

impl Combiner {
    pub(super) fn new(partitions: usize) -> Self {
        Combiner {
            state: Mutex::new(CombinerState {
                committing: false,
                waiting: Vec::with_capacity(partitions),
                results: (0..partitions).map(|_| None).collect(),
            }),
            committed: Condvar::new(),
        }
    }
}

/// Commits the partition's decided batch, with whatever other partitions have waiting, and returns its jobs and
/// the commit's failure, if any.
pub(super) fn commit_together<D: Domain>(
    inner: &Inner<D>,
    index: usize,
    batch: DecidedBatch,
    ids: &mut IdGenerator,
    scratch: &mut Scratch,
) -> AnsweredBatch {
    let combiner = &inner.combiner;
    let mut state = combiner.state.lock();
    assert!(state.results[index].is_none() && state.waiting.iter().all(|b| b.partition != index));
    state.waiting.push(batch);
    // Bounded: each round either takes this partition's result, commits (which answers every batch waiting,
    // this one included), or waits for a commit in progress, after which one of the first two happens.
    loop {
        if let Some(result) = state.results[index].take() {
            return result;
        }
        if !state.committing {
            state.committing = true;
            let mut batches = std::mem::take(&mut state.waiting);
            drop(state);
            // Should committing panic (a broken invariant), the writers waiting for these batches still get an
            // answer (their commands' replies, dropped with the batches, answer `ShuttingDown`).
            let guard = CommitGuard { combiner, partitions: batches.iter().map(|batch| batch.partition).collect() };
            let failure = commit_batches(inner, &mut batches, ids, scratch);
            std::mem::forget(guard);
            state = combiner.state.lock();
            state.committing = false;
            for batch in batches {
                let slot = &mut state.results[batch.partition];
                assert!(slot.is_none(), "a partition has one batch in a commit at a time");
                *slot = Some((batch.jobs, failure.clone()));
            }
            combiner.committed.notify_all();
            continue;
        }
        combiner.committed.wait(&mut state);
    }
}

/// Ends a commit that unwinds: no writer is committing any more, and each partition whose batch it held gets
/// an empty result with the error.
struct CommitGuard<'a> {
    combiner: &'a Combiner,
    partitions: Vec<usize>,
}

impl Drop for CommitGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.combiner.state.lock();
        state.committing = false;
        for &partition in &self.partitions {
            let failure = Error::Panicked { aggregate: "<batch>", message: "while committing".into() };
            state.results[partition] = Some((Vec::new(), Some(failure)));
        }
        self.combiner.committed.notify_all();
    }
}

/// Decides every command of the partition's batch against its cache. Fails the whole batch if the store
/// cannot be read.
pub(super) fn decide_batch<D: Domain>(
    inner: &Inner<D>,
    partition: usize,
    batch: Vec<Box<dyn Job>>,
    cache: &mut Cache,
    deferred: &mut Vec<Box<dyn Job>>,
    scratch: &mut Scratch,
) -> Result<DecidedBatch, Box<AnsweredBatch>> {
    let store = &inner.store;
    let now = Timestamp::now();
    let started = Instant::now();
    let mut decided: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    cache.batch = cache.batch.wrapping_add(1);
    let txn = match store.read() {
        Ok(txn) => txn,
        Err(error) => return Err(Box::new((batch, Some(error)))),
    };
    scratch.command_ids.clear();
    let mut cx = DecideCx { store, txn: &txn, cache, now, panicked: false };
    for mut job in batch {
        // A second command with the same id waits for the next batch, where it sees the first's record.
        if let Some(command_id) = job.command_id() {
            if !scratch.command_ids.insert(command_id) {
                deferred.push(job);
                continue;
            }
        }
        job.decide(&mut cx);
        decided.push(job);
        // A command's code panicked and may have left its instance's state half changed (and earlier
        // commands of this batch may have changed that state too): decide the batch so far again.
        if cx.panicked {
            decide_again(&mut cx, &mut decided);
        }
    }
    inner.stats.decide_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(DecidedBatch { partition, jobs: decided, now })
}

/// Writes the decided batches in one LMDB transaction and commits it; on success each touched instance's
/// cache entry knows its last event. Returns the failure of the commit, if any (then every batch failed,
/// and their partitions' caches are dropped).
pub(super) fn commit_batches<D: Domain>(
    inner: &Inner<D>,
    batches: &mut [DecidedBatch],
    ids: &mut IdGenerator,
    scratch: &mut Scratch,
) -> Option<Error> {
    let store = &inner.store;
    let started = Instant::now();
    let Scratch { dirty, buffer, records, .. } = scratch;
    if dirty.len() < batches.len() {
        dirty.resize_with(batches.len(), Vec::new);
    }
    // The writers of these batches wait for this commit, so their caches are free (see `Combiner`); locked in
    // partition order, and only here, so two committers could not deadlock either.
    batches.sort_unstable_by_key(|batch| batch.partition);
    let mut caches: Vec<_> = batches.iter().map(|batch| inner.partitions[batch.partition].cache.lock()).collect();
    // Held for the whole write and commit (see `ViewRows`).
    let mut views = inner.view_rows.lock();
    let mut written_at = started;
    // The process runner's progress this commit stores, if it is ahead of the stored one (see `Inner`).
    let mut progress_written = None;
    // The last event of the attempt that commits, and the last one some process handles.
    let mut last_seq = 0;
    let mut last_handled = 0;
    // A checkpoint step, when one is due, rides along: its pages are synced with the batch's (see
    // `crate::unflushed`). Copied before the write, so it holds what earlier commits published.
    let mut step = if checkpoint_due(inner) { store.try_step(CHECKPOINT_STEPS) } else { None };
    // Bounded: each round fails one more command for good.
    let mut rounds_left: usize = batches.iter().map(|batch| batch.jobs.len()).sum();
    let result = loop {
        // The command whose events a view could not fold, if that is why the write failed: (batch, index).
        let mut view_failure: Option<(usize, usize, Error)> = None;
        // A panic while writing (in a view's fold, say) unwinds through the transaction, which aborts it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write(|txn| {
                // A retry (after the map grew) starts from the committed positions again.
                for (cache, dirty) in caches.iter_mut().zip(dirty.iter_mut()) {
                    for slot in dirty.drain(..) {
                        cache.slot(slot).batch_last_seq = None;
                    }
                }
                views.begin(store);
                records.clear();
                last_handled = 0;
                let mut next_seq = store.last_seq(txn)? + 1;
                let views = &mut *views;
                for (at, batch) in batches.iter_mut().enumerate() {
                    let cache = &mut *caches[at];
                    let dirty = &mut dirty[at];
                    let mut cx = WriteCx {
                        store,
                        txn,
                        cache,
                        next_seq,
                        now: batch.now,
                        ids,
                        dirty,
                        buffer,
                        views,
                        handled: &inner.handled_events,
                        last_handled: &mut last_handled,
                    };
                    for (index, job) in batch.jobs.iter_mut().enumerate() {
                        if let Err(error) = job.write(&mut cx) {
                            if let WriteError::Other(Error::View(message)) = &error {
                                view_failure = Some((at, index, Error::View(message.clone())));
                            }
                            return Err(error);
                        }
                    }
                    next_seq = cx.next_seq;
                    // Each touched instance's record once per batch, however many of its commands the batch
                    // held; published after the commit and written behind the log (see `crate::unflushed`).
                    for &slot in dirty.iter() {
                        let (key, cached) = &cache.slots[slot as usize];
                        let last_seq = cached.batch_last_seq.expect("a dirty instance has a last event in this batch");
                        let state = (cached.encode)(&*cached.state);
                        records
                            .push_with(key, |out| format::encode_aggregate_into(cached.version, last_seq, &state, out));
                    }
                }
                last_seq = next_seq - 1;
                views.stage();
                if let Some((_, step)) = &step {
                    store.write_step(txn, step)?;
                }
                let handled = inner.progress.load(Ordering::Acquire);
                if handled > inner.progress_stored.load(Ordering::Acquire) {
                    store.put_progress(txn, handled)?;
                    progress_written = Some(handled);
                }
                written_at = Instant::now();
                Ok(())
            })
        }))
        .unwrap_or_else(|payload| {
            Err(Error::Panicked {
                aggregate: "<batch>",
                message: format!("while writing: {}", panic_message(payload.as_ref())),
            })
        });
        match view_failure {
            // A view cannot fold this command's events (a column overflows, a key is too long): the command
            // alone fails with that error. Its instance's cached state already holds its events, and later
            // commands of its batch were decided on that state: decide them again from the stored records,
            // then write the batches again. Nothing of the failed attempt was committed.
            Some((at, index, error)) if result.is_err() && rounds_left > 0 => {
                rounds_left -= 1;
                let batch = &mut batches[at];
                batch.jobs[index].fail(error);
                // The other batches keep their caches: forget what the failed attempt wrote for them.
                for (cache, dirty) in caches.iter_mut().zip(dirty.iter_mut()) {
                    for slot in dirty.drain(..) {
                        cache.slot(slot).batch_last_seq = None;
                    }
                }
                let txn = match store.read() {
                    Ok(txn) => txn,
                    Err(error) => break Err(error),
                };
                let mut cx = DecideCx { store, txn: &txn, cache: &mut caches[at], now: batch.now, panicked: false };
                decide_again(&mut cx, &mut batch.jobs);
            }
            _ => break result,
        }
    };
    let stats = &inner.stats;
    stats.write_us.fetch_add(written_at.saturating_duration_since(started).as_micros() as u64, Ordering::Relaxed);
    let commit_us = written_at.elapsed().as_micros() as u64;
    stats.commit_us.fetch_add(commit_us, Ordering::Relaxed);
    match result {
        Ok(()) => {
            // Before the publication, which the process runner reads first (see `Inner::handled_through`).
            inner.handled_through.fetch_max(last_handled, Ordering::SeqCst);
            // Before anyone is answered, and under the view rows' lock, which orders publications like commits.
            store.publish(last_seq, records, &views.staged);
            if let Some((one, step)) = step.take() {
                store.stepped(&step);
                drop(one);
                stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                forget_flushed(inner);
            }
            views.committed();
            drop(views);
            for (cache, dirty) in caches.iter_mut().zip(dirty.iter_mut()) {
                for slot in dirty.drain(..) {
                    let cached = cache.slot(slot);
                    cached.last_seq = cached.batch_last_seq.take().expect("a dirty instance has a last event");
                }
            }
            if let Some(handled) = progress_written {
                inner.progress_stored.fetch_max(handled, Ordering::AcqRel);
            }
            stats.record_batch(batches.iter().map(|batch| batch.jobs.len() as u64).sum(), commit_us);
            // A full signal channel means the runner has a wake-up pending already.
            let _ = inner.commits.try_send(());
            None
        }
        Err(error) => {
            // The caches ran ahead of the store; failures are rare, so forget them and reload from records.
            for (cache, dirty) in caches.iter_mut().zip(dirty.iter_mut()) {
                cache.clear();
                dirty.clear();
            }
            views.clear();
            drop(views);
            inner.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            Some(error)
        }
    }
}

/// Drops the cache and decides every command of the batch again from the stored records, except those that
/// failed for good (a panic in their code, a view that cannot take their events). Bounded: a round ends early
/// only when a command panics, which fails it for good.
pub(super) fn decide_again(cx: &mut DecideCx<'_>, decided: &mut [Box<dyn Job>]) {
    for _ in 0..=decided.len() {
        cx.panicked = false;
        cx.cache.clear();
        for job in decided.iter_mut() {
            if job.undecide() {
                job.decide(cx);
                if cx.panicked {
                    break;
                }
            }
        }
        if !cx.panicked {
            return;
        }
    }
    unreachable!("every round but the last fails one more command for good");
}
