//! The engine against the hand-written `demo` domain: races, idempotency, versions, processes, views, reads,
//! damaged bytes, schema checks, map growth and load shedding.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anthill_runtime::engine::{CommandMeta, Engine, JsonOutcome, Outcome};
use anthill_runtime::error::Error;
use anthill_runtime::store::{Store, StoreConfig};
use anthill_runtime::Timestamp;
use support::{money, test_config, Account, AccountCommand, AccountEvent, AccountRejection, Demo, Slot, SlotCommand};

fn open(dir: &tempfile::TempDir, partitions: u32) -> Engine<Demo> {
    match Engine::<Demo>::open(dir.path(), test_config(partitions)) {
        Ok(engine) => engine,
        Err(error) => panic!("cannot open the engine: {error}"),
    }
}

fn with_id(command_id: u128) -> CommandMeta {
    CommandMeta { command_id: Some(command_id), ..CommandMeta::default() }
}

#[test]
fn exactly_capacity_bookings_are_accepted_under_a_race() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = Arc::new(open(&dir, 2));
    engine.execute::<Slot>(7, SlotCommand::Configure { capacity: 1_000 }, CommandMeta::default())?;
    let accepted = Arc::new(AtomicU32::new(0));
    let rejected = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..16)
        .map(|thread| {
            let (engine, accepted, rejected) = (engine.clone(), accepted.clone(), rejected.clone());
            std::thread::spawn(move || -> Result<(), Error> {
                // 16 threads x 625 = 10,000 attempts, each thread keeping up to 25 in flight.
                for chunk in 0..25u32 {
                    let pending: Vec<_> = (0..25u32)
                        .map(|i| {
                            let id = u128::from(thread * 10_000 + chunk * 100 + i) + 1;
                            engine.submit::<Slot>(7, SlotCommand::Book, with_id(id))
                        })
                        .collect::<Result<_, _>>()?;
                    for p in pending {
                        match p.wait()? {
                            Outcome::Accepted { .. } => accepted.fetch_add(1, Ordering::Relaxed),
                            Outcome::Rejected(_) => rejected.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a booking thread panicked")?;
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 1_000);
    assert_eq!(rejected.load(Ordering::Relaxed), 9_000);
    let snapshot = engine.state::<Slot>(&7)?.expect("the slot exists");
    assert_eq!(snapshot.state.booked, 1_000);
    assert_eq!(snapshot.version, 1_001);
    assert_eq!(engine.events::<Slot>(&7)?.len(), 1_001);
    assert_eq!(engine.verify()?, (1_001, 1));
    Ok(())
}

#[test]
fn a_retried_command_returns_its_original_outcome_also_after_reopening() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let (first, refused) = {
        let engine = open(&dir, 1);
        engine.execute::<Account>(1, AccountCommand::Open, with_id(100))?;
        let first = engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(5) }, with_id(101))?;
        let again = engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(5) }, with_id(101))?;
        assert_eq!(first, again);
        let refused = engine.execute::<Account>(1, AccountCommand::Withdraw { amount: money(9) }, with_id(102))?;
        assert_eq!(refused, Outcome::Rejected(AccountRejection::InsufficientFunds));
        // The same id in one batch: the second waits for the first's record.
        let a = engine.submit::<Account>(1, AccountCommand::Deposit { amount: money(1) }, with_id(103))?;
        let b = engine.submit::<Account>(1, AccountCommand::Deposit { amount: money(1) }, with_id(103))?;
        assert_eq!(a.wait()?, b.wait()?);
        engine.shutdown();
        (first, refused)
    };
    let engine = open(&dir, 2);
    let replayed = engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(5) }, with_id(101))?;
    assert_eq!(replayed, first);
    // Now there is money enough, but the rejected command is not run again.
    engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(50) }, CommandMeta::default())?;
    let refused_again = engine.execute::<Account>(1, AccountCommand::Withdraw { amount: money(9) }, with_id(102))?;
    assert_eq!(refused_again, refused);
    let snapshot = engine.state::<Account>(&1)?.expect("the account exists");
    assert_eq!(snapshot.state.balance, money(56));
    assert_eq!(snapshot.version, 4);
    // A command id reused for another instance is an error, not a silent replay.
    let reused = engine.execute::<Account>(2, AccountCommand::Open, with_id(101));
    assert_eq!(reused, Err(Error::CommandIdReused { command_id: 101 }));
    Ok(())
}

#[test]
fn command_ids_below_at_and_above_the_largest_stored_one_are_each_run_once() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    engine.execute::<Account>(1, AccountCommand::Open, with_id(500))?;
    // (command id, balance after it): a new id below the largest stored one runs, the largest one replays
    // (the open's outcome), a new one above it runs, and their retries replay.
    let steps = [(400, 1), (500, 1), (600, 2), (400, 2), (600, 2), (599, 3), (601, 4), (599, 4)];
    for (command_id, balance) in steps {
        engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(1) }, with_id(command_id))?;
        let state = engine.state::<Account>(&1)?.expect("the account exists");
        assert_eq!(state.state.balance, money(balance), "after {command_id}");
    }
    Ok(())
}

/// Runs `test` with 1 partition, then with 2.
fn with_1_and_2_partitions(test: fn(u32) -> Result<(), Error>) -> Result<(), Error> {
    [1, 2].into_iter().try_for_each(test)
}

#[test]
fn retries_racing_through_the_pipeline_run_each_command_once() -> Result<(), Error> {
    with_1_and_2_partitions(retries_racing_through_the_pipeline_run_each_command_once_with)
}

/// Four threads send the same 4,000 deposits (same ids), each in its own order and with many in flight, so a
/// retry often meets its first copy in a batch queued or being committed.
fn retries_racing_through_the_pipeline_run_each_command_once_with(partitions: u32) -> Result<(), Error> {
    const ACCOUNTS: u64 = 16;
    const DEPOSITS: u64 = 4_000;
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = Arc::new(open(&dir, partitions));
    for account in 0..ACCOUNTS {
        engine.execute::<Account>(account, AccountCommand::Open, CommandMeta::default())?;
    }
    let threads: Vec<_> = (0..4u64)
        .map(|thread| {
            let engine = engine.clone();
            std::thread::spawn(move || -> Result<Vec<(u64, Outcome<Account>)>, Error> {
                let mut outcomes = Vec::new();
                let mut window = std::collections::VecDeque::new();
                for n in 0..DEPOSITS {
                    // Thread 0 goes forward, thread 1 backward, the others with a stride.
                    let deposit = match thread {
                        0 => n,
                        1 => DEPOSITS - 1 - n,
                        _ => (n * (2 * thread + 1)) % DEPOSITS,
                    };
                    let command = AccountCommand::Deposit { amount: money(1 + deposit as i64 % 3) };
                    let meta = with_id(u128::from(deposit) + 1_000);
                    window.push_back((deposit, engine.submit::<Account>(deposit % ACCOUNTS, command, meta)?));
                    if window.len() >= 256 {
                        let (deposit, pending) = window.pop_front().expect("the window is not empty");
                        outcomes.push((deposit, pending.wait()?));
                    }
                }
                for (deposit, pending) in window {
                    outcomes.push((deposit, pending.wait()?));
                }
                Ok(outcomes)
            })
        })
        .collect();
    let mut first: std::collections::HashMap<u64, Outcome<Account>> = std::collections::HashMap::new();
    for thread in threads {
        for (deposit, outcome) in thread.join().expect("a depositing thread panicked")? {
            // Every copy of a command has the outcome of the one that ran: the same events, the same numbers.
            let earlier = first.entry(deposit).or_insert_with(|| outcome.clone());
            assert_eq!(*earlier, outcome, "deposit {deposit}");
        }
    }
    assert_eq!(first.len() as u64, DEPOSITS);
    let mut total = 0;
    for account in 0..ACCOUNTS {
        let snapshot = engine.state::<Account>(&account)?.expect("the account exists");
        // Its opening and each of its deposits, once.
        assert_eq!(snapshot.version, 1 + DEPOSITS / ACCOUNTS, "account {account}");
        total += snapshot.state.balance.mantissa();
    }
    let expected: i64 = (0..DEPOSITS).map(|deposit| money(1 + deposit as i64 % 3).mantissa()).sum();
    assert_eq!(total, expected);
    assert_eq!(engine.verify()?, (ACCOUNTS + DEPOSITS, ACCOUNTS));
    Ok(())
}

#[test]
fn a_writer_that_stops_fails_its_queued_commands_and_refuses_new_ones() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let mut config = test_config(1);
    config.batch_size_max = 16;
    // As a broken invariant would: the writer thread panics outside the code that catches commands' panics.
    config.fault_writer_panic_at_batch = 3;
    let engine = Engine::<Demo>::open(dir.path(), config)?;
    let pending: Vec<_> =
        (0..2_000u64).map(|n| engine.submit::<Account>(n, AccountCommand::Open, CommandMeta::default())).collect();
    // Every command gets an answer, soon: waiting is done on another thread, so a missing answer fails the
    // test instead of hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let answers: Vec<_> = pending.into_iter().map(|p| p.and_then(|p| p.wait())).collect();
        let _ = sender.send(answers);
    });
    let answers = receiver.recv_timeout(Duration::from_secs(30)).expect("every command is answered");
    let writer_gone =
        Error::Panicked { aggregate: "<writer>", message: "the partition's writer thread stopped".into() };
    let (mut accepted, mut refused) = (0, 0);
    for answer in &answers {
        match answer {
            Ok(_) => accepted += 1,
            Err(error) if *error == writer_gone => refused += 1,
            // The commands of the batch the writer held when it stopped.
            Err(Error::ShuttingDown) => {}
            Err(other) => panic!("unexpected answer: {other}"),
        }
    }
    // The first two batches committed; most commands were queued behind the third or came later.
    assert!(accepted > 0 && accepted <= 32, "{accepted} accepted");
    let accepted = accepted as u64;
    assert!(refused >= 2_000 - 48, "{refused} refused");
    assert_eq!(
        engine.submit::<Account>(5_000, AccountCommand::Open, CommandMeta::default()).map(|_| ()),
        Err(writer_gone)
    );
    // What the answers said is what the store holds.
    assert_eq!(engine.verify()?.0, accepted);
    engine.shutdown();
    Ok(())
}

#[test]
fn every_event_names_its_command_also_without_an_idempotency_key() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    engine.execute::<Account>(1, AccountCommand::Open, with_id(100))?;
    engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(5) }, CommandMeta::default())?;
    engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(5) }, CommandMeta::default())?;
    let ids: Vec<(u128, u128)> =
        engine.changes(0, 10)?.iter().map(|e| (e.envelope.command_id, e.envelope.correlation_id)).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], (100, 100));
    // Keyless commands get fresh ids, distinct from each other, and correlate to themselves.
    assert!(ids[1].0 != 0 && ids[2].0 != 0 && ids[1].0 != ids[2].0, "{ids:?}");
    assert_eq!((ids[1].1, ids[2].1), (ids[1].0, ids[2].0));
    Ok(())
}

#[test]
fn an_expected_version_that_does_not_match_is_refused() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    let meta = |v| CommandMeta { expected_version: Some(v), ..CommandMeta::default() };
    engine.execute::<Account>(3, AccountCommand::Open, meta(0))?;
    let stale = engine.execute::<Account>(3, AccountCommand::Deposit { amount: money(1) }, meta(0));
    assert_eq!(stale, Err(Error::WrongVersion { aggregate: "account", id: "3".into(), expected: 0, actual: 1 }));
    let fresh = engine.execute::<Account>(3, AccountCommand::Deposit { amount: money(1) }, meta(1))?;
    assert!(matches!(fresh, Outcome::Accepted { version: 2, .. }));
    Ok(())
}

#[test]
fn transfers_complete_or_refund_across_partitions_and_resume_after_restart() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 2);
    for id in [10, 11] {
        engine.execute::<Account>(id, AccountCommand::Open, CommandMeta::default())?;
    }
    engine.execute::<Account>(10, AccountCommand::Deposit { amount: money(100) }, CommandMeta::default())?;
    for (transfer, to) in [(1, 11), (2, 12), (3, 11)] {
        let send = AccountCommand::SendTransfer { transfer, to, amount: money(10) };
        assert!(engine.execute::<Account>(10, send, CommandMeta::default())?.is_accepted());
    }
    assert!(engine.wait_for_processes(Duration::from_secs(10))?);
    assert_eq!(engine.process_error(), None);
    // Account 12 was never opened: transfer 2 was refunded.
    assert_eq!(engine.state::<Account>(&10)?.map(|s| s.state.balance), Some(money(80)));
    assert_eq!(engine.state::<Account>(&11)?.map(|s| s.state.balance), Some(money(20)));
    assert_eq!(engine.state::<Account>(&12)?, None);
    let refunds = engine.events::<Account>(&10)?;
    assert!(refunds.iter().any(|r| matches!(r.event, AccountEvent::TransferRefunded { transfer: 2, .. })));
    // The processes' progress costs no commit of its own: the next batch stores it.
    let handled = engine.last_seq()?;
    engine.execute::<Account>(11, AccountCommand::Deposit { amount: money(1) }, CommandMeta::default())?;
    assert!(engine.process_progress()? >= handled);
    assert!(engine.wait_for_processes(Duration::from_secs(10))?);
    let last = engine.last_seq()?;
    engine.shutdown();
    // Reopened: nothing is sent twice (progress is stored and the command ids are derived).
    let engine = open(&dir, 1);
    assert!(engine.wait_for_processes(Duration::from_secs(10))?);
    assert_eq!(engine.last_seq()?, last);
    assert_eq!(engine.process_progress()?, last);
    let (events, _) = engine.verify()?;
    assert_eq!(events, last);
    Ok(())
}

/// Sends transfer `transfer` of 10 from account 20 to 21, waits for its reaction, and returns the reaction's
/// (hashed, time-prefixed) command ids.
fn transfer_reaction_ids(engine: &Engine<Demo>, transfer: u64) -> Result<(u128, u128), Error> {
    let send = AccountCommand::SendTransfer { transfer, to: 21, amount: money(10) };
    let event_id = match engine.execute::<Account>(20, send, CommandMeta::default())? {
        Outcome::Accepted { events, .. } => events[0].event_id,
        Outcome::Rejected(rejection) => panic!("transfer {transfer} refused: {rejection:?}"),
    };
    assert!(engine.wait_for_processes(Duration::from_secs(10))?);
    let hashed = anthill_runtime::derive_command_id(event_id, "transfer", 0);
    Ok((hashed, anthill_runtime::time_prefixed_command_id(event_id, hashed)))
}

/// Whether the store holds an idempotency record for `command_id`.
fn recorded(engine: &Engine<Demo>, command_id: u128) -> Result<bool, Error> {
    let txn = engine.store().read()?;
    Ok(engine.store().command(&txn, command_id)?.is_some())
}

fn balance_of_21(engine: &Engine<Demo>) -> Result<Option<support::Money>, Error> {
    Ok(engine.state::<Account>(&21)?.map(|s| s.state.balance))
}

#[test]
fn client_key_ids_are_time_prefixed_from_the_start_in_a_new_store_and_a_day_after_an_upgrade() -> Result<(), Error> {
    let now_ms = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
    };
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    assert_eq!(engine.store().key_ids_time_prefixed_from_ms(), 0);
    // Marked format 6 when opened: from a day later on, and the moment stays where it was set.
    engine.store().put_raw("meta", b"format", &5u32.to_le_bytes())?;
    drop(engine);
    let before_ms = now_ms();
    let engine = open(&dir, 1);
    let from_ms = engine.store().key_ids_time_prefixed_from_ms();
    let margin_ms = anthill_runtime::store::KEY_IDS_UPGRADE_MARGIN_MS;
    assert!((before_ms + margin_ms..=now_ms() + margin_ms).contains(&from_ms), "{from_ms}");
    drop(engine);
    std::thread::sleep(Duration::from_millis(5));
    let engine = open(&dir, 1);
    assert_eq!(engine.store().key_ids_time_prefixed_from_ms(), from_ms);
    Ok(())
}

#[test]
fn reactions_are_recorded_under_time_prefixed_ids_and_keep_their_first_ids_across_the_upgrade() -> Result<(), Error> {
    let setup = |engine: &Engine<Demo>| -> Result<(), Error> {
        for id in [20, 21] {
            engine.execute::<Account>(id, AccountCommand::Open, CommandMeta::default())?;
        }
        engine.execute::<Account>(20, AccountCommand::Deposit { amount: money(100) }, CommandMeta::default())?;
        Ok(())
    };
    // A new store: every reaction's idempotency record is under its time-prefixed id.
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    setup(&engine)?;
    let (hashed, prefixed) = transfer_reaction_ids(&engine, 1)?;
    assert!(recorded(&engine, prefixed)? && !recorded(&engine, hashed)?);
    drop(engine);

    // A store written by a format 4 binary: hashed ids (what reopening with this meta record does).
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    engine.store().put_raw("meta", b"reaction-ids-time-prefixed-from", &u64::MAX.to_le_bytes())?;
    drop(engine);
    let engine = open(&dir, 1);
    setup(&engine)?;
    let (hashed, prefixed) = transfer_reaction_ids(&engine, 2)?;
    assert!(recorded(&engine, hashed)? && !recorded(&engine, prefixed)?);
    assert_eq!(balance_of_21(&engine)?, Some(money(10)));
    drop(engine);
    // Marked format 4, with the processes' progress back at the start so that the runner sends every
    // reaction again once it is upgraded: the reaction to transfer 2 keeps its hashed id and runs once.
    // (Written through a reader: a running engine's runner would store its progress again when it stops.)
    let reader = Engine::<Demo>::open_read_only(dir.path(), test_config(1))?;
    reader.store().put_raw("meta", b"format", &4u32.to_le_bytes())?;
    reader.store().put_raw("meta", b"process-progress", &0u64.to_le_bytes())?;
    drop(reader);
    let engine = open(&dir, 1);
    assert!(engine.wait_for_processes(Duration::from_secs(10))?);
    assert_eq!(engine.process_error(), None);
    assert_eq!(balance_of_21(&engine)?, Some(money(10)));
    // The reactions to later events get time-prefixed ids.
    let (hashed, prefixed) = transfer_reaction_ids(&engine, 3)?;
    assert!(recorded(&engine, prefixed)? && !recorded(&engine, hashed)?);
    assert_eq!(balance_of_21(&engine)?, Some(money(20)));
    engine.verify()?;
    Ok(())
}

#[test]
fn views_follow_the_events_and_rebuild_to_the_same_rows() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 2);
    for id in 0..20u64 {
        engine.execute::<Account>(id, AccountCommand::Open, CommandMeta::default())?;
        for _ in 0..id % 4 {
            engine.execute::<Account>(id, AccountCommand::Deposit { amount: money(1) }, CommandMeta::default())?;
        }
    }
    let decode = |bytes: Vec<u8>| {
        anthill_runtime::codec::decode::<support::DepositsRow>(&bytes).map(|row| row.deposits).unwrap_or(u64::MAX)
    };
    assert_eq!(engine.view_get(support::DEPOSITS_VIEW, &support::deposits_key(7))?.map(decode), Some(3));
    assert_eq!(engine.view_get(support::DEPOSITS_VIEW, &support::deposits_key(4))?, None);
    let before = engine.view_range(support::DEPOSITS_VIEW, &[], 100)?;
    assert_eq!(before.len(), 15);
    assert!(before.windows(2).all(|w| w[0].0 < w[1].0));
    let folded = engine.rebuild_view(support::DEPOSITS_VIEW)?;
    assert_eq!(folded, engine.last_seq()?);
    assert_eq!(engine.view_range(support::DEPOSITS_VIEW, &[], 100)?, before);
    assert_eq!(engine.rebuild_view("nope"), Err(Error::UnknownView { name: "nope".into() }));
    Ok(())
}

/// Range reads merge the rows in memory with the table's while checkpoint steps write some of them out:
/// every range, from every key, is what point reads of the same keys give, in key order, up to its limit.
#[test]
fn range_reads_agree_with_point_reads_while_rows_are_written_behind() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let config =
        anthill_runtime::engine::Config { checkpoint_events_max: 64, checkpoint_entries_max: 48, ..test_config(1) };
    let engine = Engine::<Demo>::open(dir.path(), config)?;
    let accounts = 60u64;
    for round in 0..4u64 {
        for id in (0..accounts).filter(|id| (id + round) % 3 != 0) {
            if round == 0 {
                engine.execute::<Account>(id, AccountCommand::Open, CommandMeta::default())?;
            }
            engine.execute::<Account>(id, AccountCommand::Deposit { amount: money(1) }, CommandMeta::default())?;
        }
        let mut keys: Vec<Vec<u8>> = (0..accounts).map(support::deposits_key).collect();
        keys.sort();
        let mut expected = Vec::new();
        for key in &keys {
            if let Some(row) = engine.view_get(support::DEPOSITS_VIEW, key)? {
                expected.push((key.clone(), row));
            }
        }
        for (start, from) in keys.iter().enumerate() {
            let after: Vec<_> = expected.iter().filter(|(key, _)| key >= from).cloned().collect();
            for limit in [1, 7, 100] {
                let range = engine.view_range(support::DEPOSITS_VIEW, from, limit)?;
                let wanted: Vec<_> = after.iter().take(limit).cloned().collect();
                assert_eq!(range, wanted, "round {round}, from key {start}, limit {limit}");
            }
        }
        assert_eq!(engine.view_range(support::DEPOSITS_VIEW, &[], 1_000)?, expected);
    }
    Ok(())
}

#[test]
fn the_changes_feed_is_gapless_and_json_commands_run() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 2);
    let outcome = engine.execute_json("account", "42", "open", b"", CommandMeta::default())?;
    assert!(matches!(outcome, JsonOutcome::Accepted { version: 1, .. }));
    let outcome = engine.execute_json("account", "42", "withdraw", br#"{"amount": "1.50"}"#, CommandMeta::default())?;
    assert_eq!(
        outcome,
        JsonOutcome::Rejected { code: "insufficient-funds".into(), message: "not enough money".into() }
    );
    let backdated = Timestamp::from_micros(1_000_000);
    let meta = CommandMeta { occurred_at: Some(backdated), ..CommandMeta::default() };
    engine.execute_json("account", "42", "deposit", br#"{"amount": 3}"#, meta)?;
    for i in 0..30u32 {
        engine.execute::<Slot>(i % 3, SlotCommand::Configure { capacity: i }, CommandMeta::default())?;
    }
    assert!(matches!(
        engine.execute_json("account", "x", "open", b"", CommandMeta::default()),
        Err(Error::InvalidCommand { .. })
    ));
    assert!(matches!(
        engine.execute_json("shop", "1", "open", b"", CommandMeta::default()),
        Err(Error::UnknownAggregate { .. })
    ));
    let mut seen = Vec::new();
    let mut since = 0;
    loop {
        let chunk = engine.changes(since, 7)?;
        let Some(last) = chunk.last() else { break };
        since = last.seq;
        seen.extend(chunk);
    }
    assert_eq!(seen.len(), 32);
    assert!(seen.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    let (name, json) = engine.event_json(&seen[1])?;
    assert_eq!(name, "deposited");
    assert_eq!(json, anthill_runtime::serde_json::json!({"Deposited": {"amount": "3.00"}}));
    assert_eq!(seen[1].envelope.occurred_at, backdated);
    assert!(seen[1].envelope.recorded_at > backdated);
    Ok(())
}

#[test]
fn damaged_bytes_on_disk_are_reported() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    engine.execute::<Account>(5, AccountCommand::Open, CommandMeta::default())?;
    engine.execute::<Account>(5, AccountCommand::Deposit { amount: money(2) }, with_id(9))?;
    // Records are written to their table at checkpoints: write this one out, so the damage below is what a read
    // finds.
    engine.checkpoint()?;
    let mut key = vec![0, 0];
    key.extend_from_slice(&5u64.to_be_bytes());
    // A flipped byte in the aggregate record.
    let store = engine.store();
    let good = {
        let txn = store.read()?;
        let record = store.aggregate(&txn, &key)?.expect("the record exists");
        anthill_runtime::format::encode_aggregate(record.version, record.last_seq, &record.state)
    };
    let mut bad = good.clone();
    bad[12] ^= 0x40;
    store.put_raw("aggregates", &key, &bad)?;
    assert!(matches!(engine.state::<Account>(&5), Err(Error::Corrupt { table: "aggregates", .. })));
    // A state whose checksum is right but whose rkyv bytes are not a state.
    let txn_state = anthill_runtime::format::encode_aggregate(2, 2, &[0xff; 3]);
    store.put_raw("aggregates", &key, &txn_state)?;
    assert!(matches!(engine.state::<Account>(&5), Err(Error::Corrupt { table: "aggregates", .. })));
    store.put_raw("aggregates", &key, &good)?;
    assert!(engine.state::<Account>(&5)?.is_some());
    // A truncated event.
    store.put_raw("log", &2u64.to_be_bytes(), &[1, 2, 3])?;
    assert!(matches!(engine.changes(0, 10), Err(Error::Corrupt { table: "log", .. })));
    assert!(matches!(engine.events::<Account>(&5), Err(Error::Corrupt { table: "log", .. })));
    assert!(engine.verify().is_err());
    // A replay of the command whose event is damaged reports it too.
    let retried = engine.execute::<Account>(5, AccountCommand::Deposit { amount: money(2) }, with_id(9));
    assert!(matches!(retried, Err(Error::Corrupt { .. })));
    Ok(())
}

#[test]
fn a_store_of_another_schema_is_refused() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    drop(open(&dir, 1));
    // The same model but for one state field's type (and so another fingerprint).
    let mut schema = anthill_runtime::schema::describe(&support::META);
    schema[1] = "aggregate account state (balance: (decimal 3))".to_owned();
    let refused = Store::open(dir.path(), StoreConfig::default(), "demo", 42, &schema, &[]).err().expect("refused");
    let message = refused.to_string();
    assert!(matches!(refused, Error::IncompatibleSchema { stored_fingerprint: 0x0123_4567_89ab_cdef, .. }));
    assert!(
        message.contains("`demo`") && message.contains("0x0123456789abcdef") && message.contains("0x000000000000002a")
    );
    assert!(message.contains("was: aggregate account state ()"), "{message}");
    assert!(message.contains("now: aggregate account state (balance: (decimal 3))"), "{message}");
    let other = Store::open(dir.path(), StoreConfig::default(), "shop", 0x0123_4567_89ab_cdef, &schema, &[]).err();
    assert!(matches!(other, Some(Error::IncompatibleSchema { .. })));
    Ok(())
}

#[test]
fn a_full_map_grows_and_loses_nothing() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 2);
    let initial = engine.store().map_size_bytes();
    let mut pending = Vec::new();
    for id in 0..20_000u64 {
        pending.push(engine.submit::<Account>(id, AccountCommand::Open, CommandMeta::default())?);
        if pending.len() == 2_000 {
            for p in pending.drain(..) {
                assert!(p.wait()?.is_accepted());
            }
        }
    }
    for p in pending {
        assert!(p.wait()?.is_accepted());
    }
    assert!(engine.store().map_size_bytes() > initial);
    assert_eq!(engine.verify()?, (20_000, 20_000));
    Ok(())
}

#[test]
fn a_full_map_at_its_maximum_fails_the_batch_cleanly() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let mut config = test_config(1);
    config.store.map_size_max_bytes = 1 << 20;
    let engine = Engine::<Demo>::open(dir.path(), config)?;
    let mut full = None;
    for id in 0..100_000u64 {
        match engine.execute::<Account>(id % 64, AccountCommand::Open, CommandMeta::default()) {
            Ok(_) => {}
            Err(error) => {
                full = Some(error);
                break;
            }
        }
        if id >= 64 {
            break;
        }
    }
    // 64 opens fit easily; now fill with big batches until the map is full.
    let mut pending = Vec::new();
    'fill: for round in 0..200u64 {
        for i in 0..1_000u64 {
            match engine.submit::<Account>(1_000 + round * 1_000 + i, AccountCommand::Open, CommandMeta::default()) {
                Ok(p) => pending.push(p),
                Err(error) => panic!("submit failed: {error}"),
            }
        }
        for p in pending.drain(..) {
            if let Err(error) = p.wait() {
                full = Some(error);
                break 'fill;
            }
        }
    }
    assert!(matches!(full, Some(Error::MapFull { .. })), "{full:?}");
    // What was committed is intact, and the engine still answers reads.
    let (events, instances) = engine.verify()?;
    assert_eq!(events, instances);
    Ok(())
}

/// A commit that fails has batches prepared behind it (the writers prepare the next batch while the last one
/// commits): they come back and are decided again. Every command answered `Ok` is in the store, every one
/// answered with an error is not, with 1 and 2 partitions.
#[test]
fn batches_queued_behind_a_failed_commit_are_decided_again() -> Result<(), Error> {
    with_1_and_2_partitions(batches_queued_behind_a_failed_commit_are_decided_again_with)
}

fn batches_queued_behind_a_failed_commit_are_decided_again_with(partitions: u32) -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let mut config = test_config(partitions);
    config.store.map_size_max_bytes = 1 << 20;
    config.batch_size_max = 64;
    config.queue_depth_max = 32_768;
    let engine = Engine::<Demo>::open(dir.path(), config)?;
    const COMMANDS: u64 = 20_000;
    // Many small batches in flight at once, so that some are queued behind the commit that fills the map.
    let pending: Vec<_> = (0..COMMANDS)
        .map(|id| engine.submit::<Account>(id, AccountCommand::Open, CommandMeta::default()))
        .collect::<Result<_, _>>()?;
    let answers: Vec<_> = pending.into_iter().map(|p| p.wait()).collect();
    let accepted = answers.iter().filter(|answer| answer.is_ok()).count() as u64;
    assert!(accepted > 0 && accepted < COMMANDS, "the map fills up part way: {accepted} accepted");
    for (id, answer) in (0..COMMANDS).zip(&answers) {
        match answer {
            Ok(_) => assert!(engine.state::<Account>(&id)?.is_some(), "account {id} was answered as opened"),
            Err(Error::MapFull { .. }) => assert!(engine.state::<Account>(&id)?.is_none(), "account {id} failed"),
            Err(other) => panic!("account {id}: {other}"),
        }
    }
    assert_eq!(engine.verify()?, (accepted, accepted));
    Ok(())
}

#[test]
fn a_long_queue_wait_sheds_load_with_a_retry_hint() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let mut config = test_config(1);
    config.queue_depth_max = 4;
    config.latency_budget = Duration::from_micros(1);
    let engine = Engine::<Demo>::open(dir.path(), config)?;
    let mut pending = Vec::new();
    let mut shed = None;
    for id in 0..100_000u64 {
        match engine.submit::<Account>(id, AccountCommand::Open, CommandMeta::default()) {
            Ok(p) => pending.push(p),
            Err(error) => {
                shed = Some(error);
                break;
            }
        }
    }
    assert!(matches!(shed, Some(Error::Overloaded { retry_after_ms }) if retry_after_ms >= 1), "{shed:?}");
    for p in pending {
        assert!(p.wait()?.is_accepted());
    }
    Ok(())
}

#[test]
fn shutdown_answers_every_queued_command() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 2);
    let pending: Vec<_> = (0..500u64)
        .map(|id| engine.submit::<Account>(id, AccountCommand::Open, CommandMeta::default()))
        .collect::<Result<_, _>>()?;
    engine.shutdown();
    for p in pending {
        assert!(p.wait()?.is_accepted());
    }
    let engine = open(&dir, 1);
    assert_eq!(engine.verify()?, (500, 500));
    Ok(())
}

#[test]
fn a_small_cache_evicts_and_reloads_instances_correctly() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let mut config = test_config(1);
    config.cache_entries_max = 8;
    let engine = Engine::<Demo>::open(dir.path(), config)?;
    for round in 0..3i64 {
        let pending: Vec<_> = (0..100u64)
            .map(|id| {
                let command =
                    if round == 0 { AccountCommand::Open } else { AccountCommand::Deposit { amount: money(round) } };
                engine.submit::<Account>(id, command, CommandMeta::default())
            })
            .collect::<Result<_, _>>()?;
        for p in pending {
            assert!(p.wait()?.is_accepted());
        }
    }
    for id in 0..100u64 {
        let snapshot = engine.state::<Account>(&id)?.expect("opened");
        assert_eq!((snapshot.state.balance, snapshot.version), (money(3), 3));
    }
    assert_eq!(engine.verify()?, (300, 100));
    Ok(())
}

#[test]
fn a_configuration_out_of_bounds_is_an_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for config in [
        anthill_runtime::engine::Config { partitions: 0, ..test_config(1) },
        anthill_runtime::engine::Config { partitions: 65, ..test_config(1) },
        anthill_runtime::engine::Config { batch_size_max: 0, ..test_config(1) },
        anthill_runtime::engine::Config { queue_depth_max: 0, ..test_config(1) },
    ] {
        let opened = Engine::<Demo>::open(dir.path(), config);
        assert!(matches!(opened, Err(Error::InvalidConfig { .. })), "{:?}", opened.err());
    }
}

#[test]
fn a_rejected_command_writes_nothing_but_its_command_record() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    engine.execute::<Slot>(1, SlotCommand::Configure { capacity: 0 }, CommandMeta::default())?;
    let before = (engine.last_seq()?, engine.state::<Slot>(&1)?.map(|s| s.version));
    // Without a command id: nothing at all.
    assert!(!engine.execute::<Slot>(1, SlotCommand::Book, CommandMeta::default())?.is_accepted());
    // With one: only its command record, so that a retry returns the same rejection.
    assert!(!engine.execute::<Slot>(1, SlotCommand::Book, with_id(77))?.is_accepted());
    assert_eq!((engine.last_seq()?, engine.state::<Slot>(&1)?.map(|s| s.version)), before);
    let store = engine.store();
    let txn = store.read()?;
    let record = store.command(&txn, 77)?.expect("the rejection is recorded");
    assert_eq!(record.outcome, anthill_runtime::format::CommandOutcome::Rejected { code: "full".into() });
    Ok(())
}

#[test]
fn a_panicking_command_fails_alone_and_leaves_no_trace() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    engine.execute::<Slot>(1, SlotCommand::Configure { capacity: 10 }, CommandMeta::default())?;
    // One batch (submitted together): a booking, the panicking command on the same slot, another booking.
    let commands = [SlotCommand::Book, SlotCommand::BookThenPanic, SlotCommand::Book, SlotCommand::BookThenPanic];
    let pending: Vec<_> = commands
        .into_iter()
        .map(|command| engine.submit::<Slot>(1, command, CommandMeta::default()))
        .collect::<Result<_, _>>()?;
    let outcomes: Vec<_> = pending.into_iter().map(|p| p.wait()).collect();
    assert!(matches!(outcomes[0], Ok(Outcome::Accepted { .. })));
    assert!(matches!(&outcomes[1], Err(Error::Panicked { aggregate: "slot", .. })), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2], Ok(Outcome::Accepted { .. })));
    assert!(matches!(&outcomes[3], Err(Error::Panicked { .. })));
    // The half-done change of the panicking commands is nowhere: not in the state, not in the log.
    let snapshot = engine.state::<Slot>(&1)?.expect("configured");
    assert_eq!((snapshot.state.booked, snapshot.version), (2, 3));
    assert_eq!(engine.verify()?, (3, 1));
    // And the writer lives on.
    assert!(engine.execute::<Slot>(1, SlotCommand::Book, CommandMeta::default())?.is_accepted());
    assert_eq!(engine.state::<Slot>(&1)?.map(|s| s.state.booked), Some(3));
    Ok(())
}

#[test]
fn a_panicking_command_decided_while_a_batch_is_in_flight_keeps_that_batchs_changes() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let mut config = test_config(1);
    // Each commit takes 200 ms longer, so the writer decides the second batch below while the first one,
    // decided and prepared (in the writer's cache), is not yet in the store.
    config.fault_commit_delay = Duration::from_millis(200);
    let engine = Engine::<Demo>::open(dir.path(), config)?;
    engine.execute::<Slot>(1, SlotCommand::Configure { capacity: 10 }, CommandMeta::default())?;
    let first = engine.submit::<Slot>(1, SlotCommand::Book, CommandMeta::default())?;
    std::thread::sleep(Duration::from_millis(50));
    // The panic drops the writer's cache and decides the second batch again from the stored records: those
    // must hold the first batch by then, or its booking is lost.
    let second: Vec<_> = [SlotCommand::BookThenPanic, SlotCommand::Book]
        .into_iter()
        .map(|command| engine.submit::<Slot>(1, command, CommandMeta::default()))
        .collect::<Result<_, _>>()?;
    assert!(matches!(first.wait(), Ok(Outcome::Accepted { .. })));
    let outcomes: Vec<_> = second.into_iter().map(|p| p.wait()).collect();
    assert!(matches!(&outcomes[0], Err(Error::Panicked { aggregate: "slot", .. })), "{:?}", outcomes[0]);
    assert!(matches!(outcomes[1], Ok(Outcome::Accepted { .. })), "{:?}", outcomes[1]);
    let snapshot = engine.state::<Slot>(&1)?.expect("configured");
    assert_eq!((snapshot.state.booked, snapshot.version), (2, 3));
    let versions: Vec<u64> = engine.events::<Slot>(&1)?.iter().map(|event| event.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(engine.verify()?, (3, 1));
    Ok(())
}

#[test]
fn an_instance_history_reads_in_pages_back_to_its_first_event() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 2);
    engine.execute::<Account>(8, AccountCommand::Open, CommandMeta::default())?;
    for i in 1..=10 {
        engine.execute::<Account>(8, AccountCommand::Deposit { amount: money(i) }, CommandMeta::default())?;
        engine.execute::<Account>(9, AccountCommand::Open, CommandMeta::default())?;
    }
    let all = engine.events::<Account>(&8)?;
    assert_eq!(all.len(), 11);
    // Newest page first; each page is oldest first, so prepending pages rebuilds the history.
    let mut sizes = Vec::new();
    let mut collected = Vec::new();
    let mut from = None;
    loop {
        let page = engine.events_page::<Account>(&8, from, 4)?;
        sizes.push(page.events.len());
        let mut events = page.events;
        events.extend(collected);
        collected = events;
        match page.older {
            Some(seq) => from = Some(seq),
            None => break,
        }
    }
    assert_eq!(sizes, vec![4, 4, 3]);
    assert_eq!(collected, all);
    // A position that is not this instance's event is refused.
    let other = engine.events::<Account>(&9)?;
    let foreign = other.first().map(|r| r.seq);
    assert!(matches!(engine.events_page::<Account>(&8, foreign, 4), Err(Error::InvalidRead { .. })));
    Ok(())
}

#[test]
fn a_store_open_in_this_process_is_not_opened_twice() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    let second = Engine::<Demo>::open(dir.path(), test_config(1));
    assert!(matches!(second, Err(Error::Locked { .. })), "{:?}", second.err());
    engine.shutdown();
    // Once closed, it opens again.
    assert!(Engine::<Demo>::open(dir.path(), test_config(1)).is_ok());
    Ok(())
}

#[test]
fn a_second_engine_on_a_store_is_refused_and_readers_work_beside_the_owner() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let missing = Engine::<Demo>::open_read_only(dir.path().join("nowhere"), test_config(1)).err();
    assert!(matches!(missing, Some(Error::Store { .. })), "no store, no reader");
    let engine = open(&dir, 1);
    engine.execute::<Account>(1, AccountCommand::Open, CommandMeta::default())?;
    let second = Engine::<Demo>::open(dir.path(), test_config(1)).err().expect("the store is locked");
    let message = second.to_string();
    assert!(matches!(second, Error::Locked { .. }), "{message}");
    assert!(
        message.contains("anthill.lock") && message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );
    engine.execute::<Account>(1, AccountCommand::Deposit { amount: money(5) }, CommandMeta::default())?;
    engine.shutdown();
    // A reader beside a running owner is a second process (heed opens an environment once per process): the
    // binary's tests cover that. Here: a reader reads, and refuses writes.
    let reader = Engine::<Demo>::open_read_only(dir.path(), test_config(1))?;
    assert_eq!(reader.state::<Account>(&1)?.map(|s| s.version), Some(2));
    assert_eq!(reader.changes(0, 10)?.len(), 2);
    assert!(matches!(reader.rebuild_view(support::DEPOSITS_VIEW), Err(Error::ReadOnly { .. })));
    assert!(matches!(
        reader.execute::<Account>(1, AccountCommand::Open, CommandMeta::default()),
        Err(Error::ShuttingDown)
    ));
    drop(reader);
    let reopened = Engine::<Demo>::open(dir.path(), test_config(1))?;
    let mut seen = Vec::new();
    assert_eq!(reopened.rebuild_view_with_progress(support::DEPOSITS_VIEW, &mut |n, total| seen.push((n, total)))?, 2);
    assert_eq!(seen, [(2, 2)]);
    Ok(())
}

#[test]
fn stores_of_formats_1_and_3_are_upgraded_when_opened() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = open(&dir, 1);
    for account in 1..=3u64 {
        engine.execute::<Account>(account, AccountCommand::Open, CommandMeta::default())?;
        for _ in 0..account {
            engine.execute::<Account>(account, AccountCommand::Deposit { amount: money(2) }, CommandMeta::default())?;
        }
    }
    let rows = engine.view_range(support::DEPOSITS_VIEW, &[], 10)?;
    assert_eq!(rows.len(), 3);
    let states: Vec<_> = (1..=3u64).map(|a| engine.state::<Account>(&a).map(|s| s.map(|s| s.version))).collect();
    // Made into what format 1 wrote: every record and row in its table, rows without their last event.
    engine.checkpoint()?;
    let store = engine.store();
    for (key, row) in &rows {
        store.put_raw(support::DEPOSITS_VIEW, key, row)?;
    }
    store.put_raw("meta", b"format", &1u32.to_le_bytes())?;
    store.put_raw("meta", b"checkpoint", &[0xff; 3])?;
    drop(engine);
    // Opened, it is upgraded: the rows read as before, and later deposits fold into them.
    let engine = open(&dir, 1);
    assert_eq!(engine.recovered_events(), 0);
    assert_eq!(engine.view_range(support::DEPOSITS_VIEW, &[], 10)?, rows);
    let again: Vec<_> = (1..=3u64).map(|a| engine.state::<Account>(&a).map(|s| s.map(|s| s.version))).collect();
    assert_eq!(format!("{again:?}"), format!("{states:?}"));
    engine.execute::<Account>(2, AccountCommand::Deposit { amount: money(2) }, CommandMeta::default())?;
    let folded = engine.view_range(support::DEPOSITS_VIEW, &[], 10)?;
    assert_ne!(folded, rows);
    engine.rebuild_view(support::DEPOSITS_VIEW)?;
    assert_eq!(engine.view_range(support::DEPOSITS_VIEW, &[], 10)?, folded);
    engine.verify()?;
    drop(engine);
    // A store of format 3 (one event per log entry) opens: its log reads as it is.
    let engine = open(&dir, 1);
    engine.store().put_raw("meta", b"format", &3u32.to_le_bytes())?;
    drop(engine);
    let engine = open(&dir, 1);
    assert_eq!(engine.view_range(support::DEPOSITS_VIEW, &[], 10)?, folded);
    engine.verify()?;
    drop(engine);
    // A store of format 2 (a development version) is refused, naming both formats.
    let engine = open(&dir, 1);
    engine.store().put_raw("meta", b"format", &2u32.to_le_bytes())?;
    drop(engine);
    let refused = Engine::<Demo>::open(dir.path(), test_config(1)).err();
    assert!(matches!(refused, Some(Error::IncompatibleFormat { stored: 2, supported: 6, .. })), "{refused:?}");
    Ok(())
}
