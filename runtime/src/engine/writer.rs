//! The writers: per partition, a thread that takes batches from the partition's queue, decides them and
//! prepares them (events encoded, views folded, records encoded); one committer thread that writes what the
//! partitions prepared in one LMDB transaction, commits it, publishes it and hands it to be answered.
//!
//! A pipeline: a partition decides and prepares its next batches while the committer commits its last one, so
//! that the commands that arrive during a commit join the next one (at most `IN_FLIGHT_BATCHES_MAX` of its
//! batches are past preparation at a time). Sequence numbers are reserved when a batch is prepared, under the
//! view rows' lock, so batches commit in the order they were prepared. A batch prepared ahead assumes the ones
//! before it commit; when a commit fails, the batches queued behind it come back to their partitions, which
//! drop their caches and decide them again (the commit queue's epoch moves).

use super::*;

/// How long an idle writer sleeps before it checks for shutdown.
pub(super) const WRITER_IDLE_POLL: Duration = Duration::from_millis(10);

/// Batches answered off the writer thread, so the writer starts its next batch at once.
pub(super) type Jobs = Vec<Box<dyn Job>>;
pub(super) type AnsweredBatch = (Jobs, Option<Error>);
pub(super) type Answers = Sender<AnsweredBatch>;

/// Allocations of committed batches a partition keeps for its next ones.
const SPARE_BUFFERS_MAX: usize = 4;

/// Batches a writer may have committed but not yet answered.
pub(super) const ANSWER_QUEUE_BATCHES_MAX: usize = 4;

/// Batches of one partition queued or being committed, at most: bounds how far a writer runs ahead of the
/// committer (and the memory of what it prepared).
pub(super) const IN_FLIGHT_BATCHES_MAX: usize = 8;

/// While one of its batches waits behind the commit in progress, a writer prepares the commands that arrived
/// meanwhile once that commit is this far through (in 64ths of an average round of the committer), rather than
/// once it ends: they join the next commit with the waiting batch, so a command waits for little more than one
/// commit besides its own. Once per such interval: the batches (and their fixed costs) per commit stay few.
pub(super) const PREPARE_AHEAD_AT_64THS: u64 = 48;

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
    let _gone = WriterGone(&inner.partitions[index]);
    let (answers, answer_queue): (Answers, Receiver<AnsweredBatch>) =
        crossbeam_channel::bounded(ANSWER_QUEUE_BATCHES_MAX);
    // Counted out even when the writer unwinds: the committer ends once no writer runs.
    let _running = Running(&inner.queue);
    std::thread::scope(move |scope| {
        // If the thread cannot start, its queue is dropped with it and `answer` answers on this thread.
        let _answerer =
            std::thread::Builder::new().name(format!("anthill-answers-{index}")).spawn_scoped(scope, move || {
                for (jobs, failure) in answer_queue {
                    answer_all(jobs, failure.as_ref());
                }
            });
        write_batches(inner, index, receiver, &answers);
        // Closing the queue ends the answerer once it has answered everything (the committer holds a sender
        // per queued batch); the scope then joins it.
        drop(answers);
    });
}

/// The error of commands whose partition's writer thread stopped.
pub(super) fn writer_gone() -> Error {
    Error::Panicked { aggregate: "<writer>", message: "the partition's writer thread stopped".into() }
}

/// Fails every command queued for a partition whose writer is gone. Bounded: the queue is bounded, and new
/// commands are refused once the flag is set.
pub(super) fn fail_queued(partition: &Partition) {
    let mut jobs = Vec::new();
    while let Ok(job) = partition.receiver.try_recv() {
        jobs.push(job);
    }
    answer_all(jobs, Some(&writer_gone()));
}

/// Should the writer thread unwind (a broken invariant), the commands queued for it fail at once, and later
/// ones are refused, rather than waiting for an answer until the engine is dropped. (Those it held are
/// answered as they drop; batches it queued for the committer still commit.)
struct WriterGone<'a>(&'a Partition);

impl Drop for WriterGone<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.writer_gone.store(true, Ordering::SeqCst);
            fail_queued(self.0);
        }
    }
}

/// A writer thread, counted in [`QueueState::writers_running`] while it lives.
struct Running<'a>(&'a CommitQueue);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.writers_running -= 1;
        self.0.pushed.notify_all();
    }
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
    let mut writer = Writer {
        inner,
        index,
        answers,
        ids: IdGenerator::new(),
        scratch: Scratch::default(),
        cache_epoch: inner.queue.state.lock().epoch,
    };
    // Commands to decide before any new one from the queue: those a batch deferred (a second command with
    // the same id) and those that came back from the commit queue, in the order they were submitted.
    let mut carry: VecDeque<Box<dyn Job>> = VecDeque::new();
    let mut deferred: Vec<Box<dyn Job>> = Vec::new();
    #[cfg(feature = "fault-injection")]
    let mut batches_taken = 0u64;
    loop {
        if writer.epoch_moved() {
            // A commit failed: take back this partition's batches that were queued behind it.
            writer.resync(&mut partition.cache.lock(), Vec::new(), &mut carry);
        }
        let take = carry.len().min(batch_size_max);
        let mut batch: Vec<Box<dyn Job>> = carry.drain(..take).collect();
        if batch.is_empty() {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => {
                    partition.queue_wait_us.store(0, Ordering::Relaxed);
                    match receiver.recv_timeout(WRITER_IDLE_POLL) {
                        Ok(job) => batch.push(job),
                        Err(RecvTimeoutError::Timeout) => {
                            if inner.closing.load(Ordering::Acquire) && receiver.is_empty() {
                                // Done once its batches are committed, unless some came back.
                                writer.wait_in_flight(0);
                                if !writer.epoch_moved() {
                                    return;
                                }
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            writer.wait_in_flight(0);
                            return;
                        }
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
        #[cfg(feature = "fault-injection")]
        {
            batches_taken += 1;
            if batches_taken == config.fault_writer_panic_at_batch {
                panic!("fault injection: the writer panics at batch {batches_taken}");
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
        assert!(batch.len() <= batch_size_max);
        let mut cache = partition.cache.lock();
        let decided = decide_batch(inner, writer.index, batch, &mut cache, &mut deferred, &mut writer.scratch);
        // Deferred commands were taken from the front of `carry` or, once it was empty, from the queue.
        for job in deferred.drain(..).rev() {
            carry.push_front(job);
        }
        match decided {
            Ok(decided) => writer.prepare(&mut cache, decided, &mut carry),
            Err(failed) => {
                let (jobs, failure) = *failed;
                answer(answers, jobs, failure);
                continue;
            }
        }
        writer.wait_turn();
        if cache.len() > config.cache_entries_max as usize {
            // Evict arbitrary entries down to three quarters: simple, and the stored record reloads them.
            let committed_seq = inner.queue.state.lock().committed_seq;
            cache.evict_to(config.cache_entries_max as usize * 3 / 4, committed_seq);
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
    /// The cache slots of the instances the batch being prepared wrote.
    pub(super) dirty: Vec<u32>,
    /// When this writer last prepared ahead, and during which commit (see [`QueueState::commits`]).
    pub(super) prepared_ahead: Option<(u64, Instant)>,
    /// The command ids of the batch being decided.
    pub(super) command_ids: CommandIds,
    /// The command ids of each batch queued or being committed, oldest first (they may not have committed: a
    /// second command with one of these ids waits for a later batch, which sees the first's record).
    pub(super) command_ids_in_flight: VecDeque<CommandIds>,
    /// Emptied sets, for later batches.
    pub(super) command_ids_spare: Vec<CommandIds>,
}

pub(super) type CommandIds = HashSet<u128, BuildHasherDefault<FastHasher>>;

impl Scratch {
    /// Forgets the command ids of all but the last `in_flight` batches queued (the others have committed).
    fn committed_but(&mut self, in_flight: usize) {
        while self.command_ids_in_flight.len() > in_flight {
            let mut ids = self.command_ids_in_flight.pop_front().expect("longer than `in_flight`");
            ids.clear();
            self.command_ids_spare.push(ids);
        }
    }

    /// Whether a batch queued or being committed has a command with this id.
    fn in_flight(&self, command_id: u128) -> bool {
        self.command_ids_in_flight.iter().any(|ids| ids.contains(&command_id))
    }

    /// The batch just decided is queued: its command ids join those in flight.
    fn queued(&mut self) {
        let ids = std::mem::replace(&mut self.command_ids, self.command_ids_spare.pop().unwrap_or_default());
        self.command_ids_in_flight.push_back(ids);
    }
}

/// A partition's decided batch, waiting for its preparation.
pub(super) struct DecidedBatch {
    pub(super) jobs: Jobs,
    /// When the batch was decided: its commands' `now`, and their events' `recorded_at`.
    pub(super) now: Timestamp,
}

/// What a prepared batch carries to the committer, and gets back for the next batch (its allocations).
#[derive(Default)]
pub(super) struct BatchBuffers {
    pub(super) prepared: Prepared,
    /// The records of the instances the batch changed, published once it commits.
    pub(super) records: Staged,
    /// The view rows the batch changed, published once it commits.
    pub(super) rows: Staged,
}

/// A partition's batch, prepared and queued for its commit.
pub(super) struct PreparedBatch {
    pub(super) partition: usize,
    /// The commit queue's epoch when it was prepared: a batch of an earlier epoch comes back.
    pub(super) epoch: u64,
    pub(super) jobs: Jobs,
    /// Its events are `first_seq..=last_seq` (`last_seq` is `first_seq - 1` when it has none).
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) buffers: BatchBuffers,
    /// Where its partition's answers go.
    pub(super) answers: Answers,
}

/// Prepared batches on their way to the committer, and what the writers learn of their commits.
pub(super) struct CommitQueue {
    pub(super) state: Mutex<QueueState>,
    /// Signalled when a batch is queued or a writer ends: wakes the committer.
    pub(super) pushed: Condvar,
    /// Signalled when a commit starts and after every commit (or batch taken back): wakes the writers waiting
    /// for their batches or for the moment to prepare ahead.
    pub(super) done: Condvar,
}

pub(super) struct QueueState {
    /// In the order of their sequence numbers (they are queued under the view rows' lock).
    pub(super) batches: Vec<PreparedBatch>,
    /// The committer holds batches it took from the queue.
    pub(super) committing: bool,
    /// When the committer took them (meaningful while `committing`).
    pub(super) commit_started: Instant,
    /// Rounds of the committer done: the one in progress is told apart by this count.
    pub(super) commits: u64,
    /// A round of the committer (commit, publication, hand-over), on average: microseconds, a moving average.
    pub(super) commit_us_avg: u64,
    /// Moves when a commit fails: every batch prepared before comes back to its partition.
    pub(super) epoch: u64,
    /// The last committed event.
    pub(super) committed_seq: u64,
    /// Per partition, its batches queued or being committed.
    pub(super) in_flight: Vec<usize>,
    /// Per partition, commands of batches that came back, to decide again.
    pub(super) taken_back: Vec<Jobs>,
    /// Per partition, the allocations of its committed batches, for its next ones (at most
    /// `SPARE_BUFFERS_MAX`).
    spare: Vec<Vec<BatchBuffers>>,
    pub(super) writers_running: usize,
    /// The committer thread ended (a broken invariant panicked it): batches are refused, not queued.
    committer_gone: bool,
}

impl CommitQueue {
    pub(super) fn new(partitions: usize, last_seq: u64) -> Self {
        CommitQueue {
            state: Mutex::new(QueueState {
                batches: Vec::new(),
                committing: false,
                commit_started: Instant::now(),
                commits: 0,
                commit_us_avg: 0,
                // The view rows start at epoch 0, so the first preparation takes its sequence numbers from here.
                epoch: 1,
                committed_seq: last_seq,
                in_flight: vec![0; partitions],
                taken_back: (0..partitions).map(|_| Vec::new()).collect(),
                spare: (0..partitions).map(|_| Vec::new()).collect(),
                writers_running: 0,
                committer_gone: false,
            }),
            pushed: Condvar::new(),
            done: Condvar::new(),
        }
    }

    /// Waits until at most `count` of partition `partition`'s batches are queued or being committed.
    pub(super) fn wait_in_flight(&self, partition: usize, count: usize) {
        let mut state = self.state.lock();
        // Bounded: the committer takes every queued batch each round (and should it stop, it zeroes the
        // counts).
        while state.in_flight[partition] > count {
            self.done.wait(&mut state);
        }
    }

    /// Waits until no batch is queued or being committed. Only under the view rows' lock, which keeps new
    /// batches out.
    pub(super) fn wait_idle(&self) {
        let mut state = self.state.lock();
        // Bounded: no batch is queued meanwhile, and the committer takes them all each round.
        while !state.batches.is_empty() || state.committing {
            self.done.wait(&mut state);
        }
    }
}

/// A partition's writer: its state across batches.
struct Writer<'a, D: Domain> {
    inner: &'a Inner<D>,
    index: usize,
    answers: &'a Answers,
    ids: IdGenerator,
    scratch: Scratch,
    /// The commit queue's epoch the cache is about: when it moves, batches this partition queued may have
    /// come back, and the cache ran ahead of them.
    cache_epoch: u64,
}

impl<D: Domain> Writer<'_, D> {
    fn epoch_moved(&self) -> bool {
        self.inner.queue.state.lock().epoch != self.cache_epoch
    }

    /// After a batch is queued: while one of this partition's batches waits behind the commit in progress,
    /// waits until that commit ends or is far enough through to prepare ahead (see `PREPARE_AHEAD_AT_64THS`;
    /// then again after as long, should the commit take longer than usual), with fewer than
    /// `IN_FLIGHT_BATCHES_MAX` batches in flight. Then forgets the command ids of the batches that have
    /// committed.
    fn wait_turn(&mut self) {
        let queue = &self.inner.queue;
        let mut state = queue.state.lock();
        // Bounded: each wait ends when a commit starts or ends, or at a deadline, after which the writer goes.
        loop {
            let in_flight = state.in_flight[self.index];
            if in_flight <= 1 || state.committer_gone {
                break;
            }
            if in_flight < IN_FLIGHT_BATCHES_MAX && state.committing {
                let interval = Duration::from_micros(state.commit_us_avg * PREPARE_AHEAD_AT_64THS / 64);
                let from = match self.scratch.prepared_ahead {
                    Some((commit, at)) if commit == state.commits => at,
                    _ => state.commit_started,
                };
                let now = Instant::now();
                if now >= from + interval {
                    self.scratch.prepared_ahead = Some((state.commits, now));
                    break;
                }
                queue.done.wait_until(&mut state, from + interval);
            } else {
                queue.done.wait(&mut state);
            }
        }
        let in_flight = state.in_flight[self.index];
        drop(state);
        self.scratch.committed_but(in_flight);
    }

    /// Waits until at most `count` of this partition's batches are queued or being committed.
    fn wait_in_flight(&self, count: usize) {
        self.inner.queue.wait_in_flight(self.index, count);
    }

    /// After a failed commit: waits for this partition's batches, drops the cache, and puts the commands that
    /// came back, then `jobs`, all undecided, at the front of `carry` (those that failed for good are answered).
    fn resync(&mut self, cache: &mut Cache, jobs: Jobs, carry: &mut VecDeque<Box<dyn Job>>) {
        self.wait_in_flight(0);
        let mut all = {
            let mut state = self.inner.queue.state.lock();
            self.cache_epoch = state.epoch;
            std::mem::take(&mut state.taken_back[self.index])
        };
        cache.clear();
        self.scratch.committed_but(0);
        all.extend(jobs);
        let mut failed = Vec::new();
        for mut job in all.into_iter().rev() {
            if job.undecide() {
                carry.push_front(job);
            } else {
                failed.push(job);
            }
        }
        if !failed.is_empty() {
            answer(self.answers, failed, None);
        }
    }

    /// Fails a decided batch that cannot be prepared: its decisions are in the cache, so that goes.
    fn fail(&mut self, cache: &mut Cache, jobs: Jobs, error: Error) {
        self.wait_in_flight(0);
        cache.clear();
        answer(self.answers, jobs, Some(error));
    }

    /// Reserves the batch's sequence numbers, encodes its events, command records and instance records, folds
    /// its events into the view rows, and queues it for the committer.
    fn prepare(&mut self, cache: &mut Cache, mut decided: DecidedBatch, carry: &mut VecDeque<Box<dyn Job>>) {
        let inner = self.inner;
        let store = &inner.store;
        let queue = &inner.queue;
        let started = Instant::now();
        // Bounded: a round that does not queue the batch fails one more command for good.
        loop {
            if self.epoch_moved() {
                // The batch was decided on a cache that ran ahead of a failed commit: decide it again, after
                // the commands that came back.
                self.resync(cache, decided.jobs, carry);
                return;
            }
            let mut views = inner.view_rows.lock();
            let (epoch, committed_seq, buffers) = {
                let mut state = queue.state.lock();
                let buffers = state.spare[self.index].pop().unwrap_or_default();
                (state.epoch, state.committed_seq, buffers)
            };
            if epoch != self.cache_epoch {
                continue;
            }
            if views.epoch != epoch {
                // A commit failed: the rows may hold the folds of batches that came back.
                views.clear();
                views.epoch = epoch;
                views.next_seq = committed_seq + 1;
            }
            views.begin(store);
            let txn = match store.read() {
                Ok(txn) => txn,
                Err(error) => {
                    drop(views);
                    self.fail(cache, decided.jobs, error);
                    return;
                }
            };
            let BatchBuffers { mut prepared, mut records, mut rows } = buffers;
            prepared.clear();
            records.clear();
            let first_seq = views.next_seq;
            let Scratch { dirty, .. } = &mut self.scratch;
            dirty.clear();
            let mut cx = PrepareCx {
                store,
                txn: &txn,
                cache,
                next_seq: first_seq,
                now: decided.now,
                ids: &mut self.ids,
                dirty,
                views: &mut views,
                handled: &inner.handled_events,
                out: &mut prepared,
            };
            let mut failed: Option<(usize, Error)> = None;
            for (at, job) in decided.jobs.iter_mut().enumerate() {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.prepare(&mut cx)));
                let error = match outcome {
                    Ok(Ok(())) => continue,
                    Ok(Err(error)) => error,
                    Err(payload) => Error::View(format!("a view's fold panicked: {}", panic_message(payload.as_ref()))),
                };
                failed = Some((at, error));
                break;
            }
            let next_seq = cx.next_seq;
            if failed.is_none() {
                // Each touched instance's record once per batch, however many of its commands the batch held.
                let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for &slot in dirty.iter() {
                        let (key, cached) = &mut cache.slots[slot as usize];
                        let last_seq = cached.batch_last_seq.take().expect("a dirty instance has a last event");
                        let version = cached.version;
                        records.push_with(key, |out| {
                            (cached.encode)(&*cached.state, &mut |state| {
                                format::encode_aggregate_into(version, last_seq, state, out)
                            })
                        });
                        cached.last_seq = last_seq;
                    }
                }));
                if let Err(payload) = encoded {
                    // A broken invariant: nothing of this batch can be trusted, the rows included.
                    drop(txn);
                    drop_rows(queue, views);
                    let message = format!("while encoding a record: {}", panic_message(payload.as_ref()));
                    self.fail(cache, decided.jobs, Error::Panicked { aggregate: "<batch>", message });
                    return;
                }
            }
            if let Some((at, error)) = failed {
                // A view cannot fold this command's events (a column overflows, a key is too long): the command
                // alone fails with that error. The rows hold this batch's folds so far and the cache its
                // decisions: once every queued batch has committed (a later batch must not read a row an
                // earlier one has not published), drop both and decide the rest again from the store.
                drop(txn);
                drop_rows(queue, views);
                decided.jobs[at].fail(error);
                if self.epoch_moved() {
                    continue;
                }
                let txn = match store.read() {
                    Ok(txn) => txn,
                    Err(error) => {
                        self.fail(cache, decided.jobs, error);
                        return;
                    }
                };
                let mut cx = DecideCx::new(store, &txn, cache, decided.now);
                decide_again(&mut cx, &mut decided.jobs);
                continue;
            }
            drop(txn);
            views.stage_into(&mut rows, committed_seq);
            views.next_seq = next_seq;
            let batch = PreparedBatch {
                partition: self.index,
                epoch,
                jobs: decided.jobs,
                first_seq,
                last_seq: next_seq - 1,
                buffers: BatchBuffers { prepared, records, rows },
                answers: self.answers.clone(),
            };
            {
                let mut state = queue.state.lock();
                if state.committer_gone {
                    drop(state);
                    answer(self.answers, batch.jobs, Some(committer_gone()));
                } else {
                    state.in_flight[self.index] += 1;
                    state.batches.push(batch);
                }
            }
            queue.pushed.notify_one();
            drop(views);
            self.scratch.queued();
            inner.stats.write_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            return;
        }
    }
}

/// After a preparation that failed part way: once every queued batch has committed (a later batch must not
/// read a row an earlier one has not published), drops the view rows, whose epoch then matches none, so the
/// next preparation takes its sequence numbers from the committed log.
fn drop_rows(queue: &CommitQueue, mut views: parking_lot::MutexGuard<'_, ViewRows>) {
    queue.wait_idle();
    views.clear();
    views.epoch = 0;
}

/// The committer: takes every batch the partitions queued, commits them in one transaction, publishes them,
/// and hands them to their partitions' answerers. Ends once no writer runs and nothing is queued.
pub(super) fn run_committer<D: Domain>(inner: &Inner<D>) {
    let queue = &inner.queue;
    let _gone = CommitterGone(queue);
    // Where the log's packs are built (see `Store::append_events`), reused.
    let mut pack = Vec::with_capacity(format::LOG_PACK_BYTES_MAX);
    loop {
        let (batches, epoch) = {
            let mut state = queue.state.lock();
            // Bounded: each wait ends with a batch, a writer's end, or a poll.
            while state.batches.is_empty() {
                if state.writers_running == 0 {
                    return;
                }
                queue.pushed.wait_for(&mut state, WRITER_IDLE_POLL);
            }
            state.committing = true;
            state.commit_started = Instant::now();
            // Writers waiting to prepare ahead time it from here.
            queue.done.notify_all();
            (std::mem::take(&mut state.batches), state.epoch)
        };
        // Prepared before a commit failed: they assumed what did not commit.
        let (mut current, mut stale): (Vec<_>, Vec<_>) = batches.into_iter().partition(|batch| batch.epoch == epoch);
        let failure = if current.is_empty() { None } else { commit_prepared(inner, &mut current, &mut pack) };
        let last_seq = current.last().map(|batch| batch.last_seq);
        let mut committed = Vec::with_capacity(current.len());
        for batch in current {
            answer(&batch.answers, batch.jobs, failure.clone());
            committed.push((batch.partition, batch.buffers));
        }
        let mut state = queue.state.lock();
        if failure.is_some() {
            state.epoch += 1;
            stale.append(&mut state.batches);
        } else if let Some(last_seq) = last_seq {
            state.committed_seq = last_seq;
        }
        for (partition, buffers) in committed {
            state.in_flight[partition] -= 1;
            if state.spare[partition].len() < SPARE_BUFFERS_MAX {
                state.spare[partition].push(buffers);
            }
        }
        for batch in stale {
            state.in_flight[batch.partition] -= 1;
            state.taken_back[batch.partition].extend(batch.jobs);
        }
        state.committing = false;
        state.commits += 1;
        let round_us = state.commit_started.elapsed().as_micros().min(u128::from(u32::MAX)) as u64;
        state.commit_us_avg = (state.commit_us_avg * 7 + round_us) / 8;
        queue.done.notify_all();
    }
}

/// The error of commands whose batch found the committer gone.
fn committer_gone() -> Error {
    Error::Panicked { aggregate: "<committer>", message: "the committer thread stopped".into() }
}

/// Set when the committer ends, also by a panic (a broken invariant): what is queued fails at once, later
/// batches are refused, and no writer waits for a commit that cannot come.
struct CommitterGone<'a>(&'a CommitQueue);

impl Drop for CommitterGone<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.committer_gone = true;
        state.committing = false;
        state.epoch += 1;
        let queued = std::mem::take(&mut state.batches);
        state.in_flight.iter_mut().for_each(|count| *count = 0);
        drop(state);
        for batch in queued {
            answer(&batch.answers, batch.jobs, Some(committer_gone()));
        }
        self.0.done.notify_all();
    }
}

/// Writes the prepared batches (their events, in log order, and command records) in one LMDB transaction with
/// a checkpoint step when one is due, commits it, and publishes their records and rows. Returns the failure,
/// if any.
fn commit_prepared<D: Domain>(inner: &Inner<D>, batches: &mut [PreparedBatch], pack: &mut Vec<u8>) -> Option<Error> {
    let store = &inner.store;
    #[cfg(feature = "fault-injection")]
    std::thread::sleep(inner.config.fault_commit_delay);
    let started = Instant::now();
    // Rebuilds and `verify` take this lock to see every committed event published.
    let _commits = inner.commit_lock.lock();
    // A checkpoint step, when one is due, rides along: its pages are synced with the batch's (see
    // `crate::unflushed`). Copied before the write, so it holds what earlier commits published.
    let mut step = if checkpoint_due(inner) { store.try_step(CHECKPOINT_STEPS) } else { None };
    let mut progress_written = None;
    let mut written_at = started;
    let mut commands: Vec<(u128, &[u8])> = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.write(|txn| {
            let mut next_seq = store.last_seq(txn)? + 1;
            for batch in batches.iter() {
                assert_eq!(batch.first_seq, next_seq, "prepared batches continue the log");
                let prepared = &batch.buffers.prepared;
                store.append_events(txn, next_seq, &prepared.events, &prepared.event_ends, pack)?;
                next_seq += prepared.event_ends.len() as u64;
                assert_eq!(next_seq - 1, batch.last_seq);
            }
            // In key order, so that time-ordered ids are appended (see `Store::put_commands`).
            commands.clear();
            commands.extend(batches.iter().flat_map(|batch| {
                batch.buffers.prepared.commands.iter().map(|(command_id, record)| (*command_id, &record[..]))
            }));
            commands.sort_unstable_by_key(|(command_id, _)| *command_id);
            store.put_commands(txn, &commands)?;
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
            message: format!("while committing: {}", panic_message(payload.as_ref())),
        })
    });
    let stats = &inner.stats;
    stats.write_us.fetch_add(written_at.saturating_duration_since(started).as_micros() as u64, Ordering::Relaxed);
    let commit_us = written_at.elapsed().as_micros() as u64;
    stats.commit_us.fetch_add(commit_us, Ordering::Relaxed);
    match result {
        Ok(()) => {
            // Before the publication, which the process runner reads first (see `Inner::handled_through`).
            let last_handled = batches.iter().map(|batch| batch.buffers.prepared.last_handled).max().unwrap_or(0);
            let handled_before = inner.handled_through.fetch_max(last_handled, Ordering::SeqCst);
            // Before anyone is answered, in log order (this thread is the only one that commits batches).
            for batch in batches.iter_mut() {
                let BatchBuffers { records, rows, .. } = &mut batch.buffers;
                store.publish(batch.last_seq, records, rows);
            }
            if let Some((one, step)) = step.take() {
                store.stepped(&step);
                drop(one);
                stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                forget_flushed(inner);
            }
            if let Some(handled) = progress_written {
                inner.progress_stored.fetch_max(handled, Ordering::AcqRel);
            }
            stats.record_batch(batches.iter().map(|batch| batch.jobs.len() as u64).sum(), commit_us);
            // Only a commit holding an event some process handles wakes the runner: for the others it would
            // only move its progress past them, which its idle poll does (`PROCESS_IDLE_POLL`). A wake-up per
            // commit was about 2,000 context switches a second at 250,000 commands/s, on the 2 cores the
            // writer and this thread need. A full signal channel means a wake-up is pending already.
            if last_handled > handled_before {
                let _ = inner.commits.try_send(());
            }
            None
        }
        Err(error) => {
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            Some(error)
        }
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
    scratch.command_ids.clear();
    let mut jobs = batch.into_iter();
    // Bounded: each round but the last ends at a command that panicked, which fails for good.
    let mut again = false;
    loop {
        let txn = match store.read() {
            Ok(txn) => txn,
            Err(error) => {
                if again {
                    // The cache holds the decisions of the commands decided before the panic.
                    cache.clear();
                }
                let mut batch = decided;
                batch.extend(jobs);
                return Err(Box::new((batch, Some(error))));
            }
        };
        let mut cx = DecideCx::new(store, &txn, cache, now);
        if again {
            decide_again(&mut cx, &mut decided);
        }
        for mut job in jobs.by_ref() {
            // A second command with the same id waits for a later batch, where it sees the first's record.
            if let Some(command_id) = job.command_id() {
                if scratch.in_flight(command_id) || !scratch.command_ids.insert(command_id) {
                    deferred.push(job);
                    continue;
                }
            }
            job.decide(&mut cx);
            decided.push(job);
            if cx.panicked {
                break;
            }
        }
        if !cx.panicked {
            break;
        }
        // A command's code panicked and may have left its instance's state half changed (and earlier
        // commands of this batch may have changed that state too): the cache goes, and the batch so far is
        // decided again from the stored records. Those must hold every batch this partition decided before:
        // first its batches queued or being committed commit (the cache ran ahead of the store by them;
        // deciding again without them lost their changes: two bookings at one version, the first one's
        // gone from the state), and without a transaction open, which a commit that grows the map waits
        // for. Should one of them fail, the epoch moves and `Writer::prepare` decides this batch again
        // after the commands that come back.
        drop(txn);
        inner.queue.wait_in_flight(partition, 0);
        scratch.committed_but(0);
        again = true;
    }
    inner.stats.decide_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(DecidedBatch { jobs: decided, now })
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
