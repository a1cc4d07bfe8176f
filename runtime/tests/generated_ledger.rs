//! The engine running real generated code: the bundled `ledger` model as the compiler emits it
//! (`generated/ledger.rs`), driven through the JSON entry point the HTTP layer uses.

// Not every generated item is used here (types, helpers for the HTTP layer).
#[allow(dead_code)]
// `include!`, not `#[path]`: rustfmt must not reformat the generated file.
mod ledger {
    include!("../../generated/ledger.rs");
}

use std::time::Duration;

use anthill_runtime::engine::{CommandMeta, Config, Engine, JsonOutcome};
use anthill_runtime::error::Error;

fn run(engine: &Engine<ledger::Ledger>, id: &str, command: &str, body: &str) -> Result<JsonOutcome, Error> {
    engine.execute_json("account", id, command, body.as_bytes(), CommandMeta::default())
}

#[test]
fn the_generated_ledger_runs_with_its_processes_and_views() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = Engine::<ledger::Ledger>::open(dir.path(), Config { partitions: 2, ..Config::default() })?;
    for id in ["ann", "bob"] {
        let opened = run(&engine, id, "open", r#"{"owner": "someone", "overdraft-limit": "0"}"#)?;
        assert!(matches!(opened, JsonOutcome::Accepted { .. }), "{opened:?}");
    }
    assert!(matches!(run(&engine, "ann", "deposit", r#"{"amount": "100"}"#)?, JsonOutcome::Accepted { .. }));
    // The strict rule: no withdrawal beyond the balance and the (zero) overdraft limit.
    assert!(matches!(run(&engine, "ann", "withdraw", r#"{"amount": "500"}"#)?, JsonOutcome::Rejected { .. }));
    // One transfer completes; one to an account that was never opened is refunded by the process.
    let sent = run(&engine, "ann", "send-transfer", r#"{"transfer": "t1", "to": "bob", "amount": "30"}"#)?;
    assert!(matches!(sent, JsonOutcome::Accepted { .. }), "{sent:?}");
    let sent = run(&engine, "ann", "send-transfer", r#"{"transfer": "t2", "to": "nobody", "amount": "10"}"#)?;
    assert!(matches!(sent, JsonOutcome::Accepted { .. }), "{sent:?}");
    assert!(engine.wait_for_processes(Duration::from_secs(10))?);
    assert_eq!(engine.process_error(), None);
    let mut names = Vec::new();
    for stored in engine.changes(0, 1_000)? {
        names.push(engine.event_json(&stored)?.0);
    }
    assert!(names.contains(&"transfer-received"), "{names:?}");
    assert!(names.contains(&"transfer-refunded"), "{names:?}");
    // Every stored state equals a replay of its events through the generated `evolve`.
    let (events, instances) = engine.verify()?;
    assert_eq!(events, names.len() as u64);
    assert_eq!(instances, 2);
    Ok(())
}

#[test]
fn a_view_that_cannot_fold_a_command_fails_that_command_alone() -> Result<(), Error> {
    // With two partitions the failing batch may share its commit with the other partition's batch.
    for partitions in [1, 2] {
        a_view_that_cannot_fold_a_command_fails_that_command_alone_with(partitions)?;
    }
    Ok(())
}

fn a_view_that_cannot_fold_a_command_fails_that_command_alone_with(partitions: u32) -> Result<(), Error> {
    use anthill_runtime::engine::Outcome;
    use anthill_runtime::Decimal;
    use ledger::account::{commands, Account, Command};
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    // A writer that waits for more commands once it has one, so that the three submitted together share a batch.
    let config = Config { partitions, batch_wait_max: Duration::from_millis(200), ..Config::default() };
    let engine = Engine::<ledger::Ledger>::open(dir.path(), config)?;
    let id = |name: &str| ledger::AccountId(name.to_owned());
    let deposit = |mantissa: i64| Command::Deposit(commands::Deposit { amount: Decimal::from_mantissa(mantissa) });
    let half = 5_000_000_000_000_000_000; // 50,000,000,000,000,000.00: twice that overflows an i64 mantissa.

    // With two partitions, `cat` (whose deposit fails) and `ann` are hashed to different ones, `cat` to the
    // second: should their batches share a commit, `ann`'s is written first and the failure comes after it.
    for name in ["ann", "cat"] {
        accepted(run(&engine, name, "open", r#"{"owner": "someone", "overdraft-limit": "0"}"#)?);
    }
    // The balance goes up and down again, but the view's `total-in` only adds: the next deposit of `half`
    // keeps the balance in range and overflows the view's column.
    engine.execute::<Account>(id("cat"), deposit(half), CommandMeta::default())?;
    let withdraw = Command::Withdraw(commands::Withdraw { amount: Decimal::from_mantissa(half) });
    engine.execute::<Account>(id("cat"), withdraw, CommandMeta::default())?;
    // Submitted together, so they are in one batch: only the overflowing deposit fails.
    let overflowing = engine.submit::<Account>(id("cat"), deposit(half), CommandMeta::default())?;
    let after = engine.submit::<Account>(id("cat"), deposit(100), CommandMeta::default())?;
    let other = engine.submit::<Account>(id("ann"), deposit(200), CommandMeta::default())?;
    let failed = overflowing.wait();
    assert!(matches!(&failed, Err(Error::View(message)) if message.ends_with("arithmetic overflow")), "{failed:?}");
    assert!(matches!(after.wait()?, Outcome::Accepted { version: 4, .. }));
    assert!(matches!(other.wait()?, Outcome::Accepted { version: 2, .. }));
    let ann = engine.state::<Account>(&id("cat"))?.expect("ann exists");
    assert_eq!((ann.version, ann.state.balance()), (4, Decimal::from_mantissa(100)));
    assert_eq!(engine.verify()?, (6, 2));
    // The failed attempts folded into rows the writer had cached: the rows as stored count only what committed.
    let ann = activity(&engine, "cat")?;
    assert_eq!((ann.deposits, ann.withdrawals), (2, 1));
    assert_eq!(ann.total_in, Decimal::from_mantissa(half + 100));
    assert_eq!(activity(&engine, "ann")?.deposits, 1);
    // A later batch folds into those rows, and a rebuild from the log agrees.
    engine.execute::<Account>(id("cat"), deposit(1), CommandMeta::default())?;
    assert_eq!(activity(&engine, "cat")?.deposits, 3);
    let rows = engine.view_range("account-activity", &[], 10)?;
    engine.rebuild_view("account-activity")?;
    assert_eq!(engine.view_range("account-activity", &[], 10)?, rows);
    Ok(())
}

fn activity(engine: &Engine<ledger::Ledger>, id: &str) -> Result<ledger::views::AccountActivity, Error> {
    let key = ledger::views::AccountActivity::key_bytes(&ledger::AccountId(id.to_owned()));
    let bytes = engine.view_get("account-activity", &key)?.expect("the account has a row");
    Ok(ledger::views::AccountActivity::decode(&bytes).expect("a valid row"))
}

#[test]
fn a_view_table_cleared_under_the_writers_is_not_refilled_from_their_cache() -> Result<(), Error> {
    use ledger::account::{commands, Account, Command};
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = Engine::<ledger::Ledger>::open(dir.path(), Config { partitions: 2, ..Config::default() })?;
    let id = ledger::AccountId("ann".to_owned());
    accepted(run(&engine, "ann", "open", r#"{"owner": "someone", "overdraft-limit": "0"}"#)?);
    let deposit = || Command::Deposit(commands::Deposit { amount: anthill_runtime::Decimal::from_mantissa(100) });
    for _ in 0..3 {
        engine.execute::<Account>(id.clone(), deposit(), CommandMeta::default())?;
    }
    assert_eq!(activity(&engine, "ann")?.deposits, 3);
    // Cleared as a rebuild clears it (without folding the log back in): the writers must read the store again.
    // Rows are written to their table at checkpoints: write them out first, so the table is all there is.
    engine.checkpoint()?;
    let store = engine.store();
    store.write(|txn| store.clear_view(txn, "account-activity"))?;
    engine.execute::<Account>(id.clone(), deposit(), CommandMeta::default())?;
    let row = activity(&engine, "ann")?;
    assert_eq!((row.deposits, row.last_owner), (1, None));
    // A rebuild folds the whole log again, and the writers go on from its rows.
    engine.rebuild_view("account-activity")?;
    engine.execute::<Account>(id, deposit(), CommandMeta::default())?;
    let row = activity(&engine, "ann")?;
    assert_eq!((row.deposits, row.last_owner.as_deref()), (5, Some("someone")));
    Ok(())
}

fn accepted(outcome: JsonOutcome) {
    assert!(matches!(outcome, JsonOutcome::Accepted { .. }), "{outcome:?}");
}

#[test]
fn view_rows_evicted_from_a_small_cache_are_read_again() -> Result<(), Error> {
    use ledger::account::{commands, Account, Command};
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    // Eight instances and eight view rows kept between batches, for a hundred accounts.
    let engine = Engine::<ledger::Ledger>::open(dir.path(), Config { cache_entries_max: 8, ..Config::default() })?;
    let ids: Vec<ledger::AccountId> = (0..100).map(|n| ledger::AccountId(format!("acc-{n}"))).collect();
    for round in 0..4 {
        let pending: Vec<_> = ids
            .iter()
            .map(|id| {
                let command = if round == 0 {
                    Command::Open(commands::Open { owner: "someone".into(), overdraft_limit: Default::default() })
                } else {
                    Command::Deposit(commands::Deposit { amount: anthill_runtime::Decimal::from_mantissa(round) })
                };
                engine.submit::<Account>(id.clone(), command, CommandMeta::default())
            })
            .collect::<Result<_, _>>()?;
        for p in pending {
            assert!(p.wait()?.is_accepted());
        }
    }
    for id in &ids {
        let row = activity(&engine, &id.0)?;
        assert_eq!((row.deposits, row.total_in), (3, anthill_runtime::Decimal::from_mantissa(6)));
    }
    let rows = engine.view_range("account-activity", &[], 200)?;
    engine.rebuild_view("account-activity")?;
    assert_eq!(engine.view_range("account-activity", &[], 200)?, rows);
    Ok(())
}

#[test]
fn commands_a_view_cannot_fold_fail_alone_while_partitions_commit_together() -> Result<(), Error> {
    // Two partitions mostly take turns (one decides while the other commits); with four, two or three
    // partitions' batches are often waiting when a commit starts, and share it.
    for partitions in [2, 4] {
        commands_a_view_cannot_fold_fail_alone_with(partitions)?;
    }
    Ok(())
}

fn commands_a_view_cannot_fold_fail_alone_with(partitions: u32) -> Result<(), Error> {
    use anthill_runtime::engine::Outcome;
    use anthill_runtime::Decimal;
    use ledger::account::{commands, Account, Command};
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = Engine::<ledger::Ledger>::open(dir.path(), Config { partitions, ..Config::default() })?;
    let deposit = |mantissa: i64| Command::Deposit(commands::Deposit { amount: Decimal::from_mantissa(mantissa) });
    let half = 5_000_000_000_000_000_000; // Twice this overflows the view's `total-in` (see the test above).
    let ids: Vec<ledger::AccountId> = (0..16).map(|n| ledger::AccountId(format!("acc-{n}"))).collect();
    for id in &ids {
        accepted(run(&engine, &id.0, "open", r#"{"owner": "someone", "overdraft-limit": "0"}"#)?);
        engine.execute::<Account>(id.clone(), deposit(half), CommandMeta::default())?;
        let withdraw = Command::Withdraw(commands::Withdraw { amount: Decimal::from_mantissa(half) });
        engine.execute::<Account>(id.clone(), withdraw, CommandMeta::default())?;
    }
    // Four clients, each with many commands in flight over every account, so that both partitions have batches
    // waiting at once; one command in twenty cannot be folded by the view.
    let accepted_per_account: Vec<std::sync::atomic::AtomicU64> = ids.iter().map(|_| Default::default()).collect();
    std::thread::scope(|scope| -> Result<(), Error> {
        let clients: Vec<_> = (0..4u64)
            .map(|client| {
                let (engine, ids, accepted_per_account) = (&engine, &ids, &accepted_per_account);
                scope.spawn(move || -> Result<(), Error> {
                    let mut pending = Vec::new();
                    for n in 0..2_000u64 {
                        let account = ((n * 7 + client * 3) % ids.len() as u64) as usize;
                        let overflowing = (n + client) % 20 == 0;
                        let command = deposit(if overflowing { half } else { 1 });
                        pending.push((
                            account,
                            overflowing,
                            engine.submit::<Account>(ids[account].clone(), command, CommandMeta::default())?,
                        ));
                    }
                    for (account, overflowing, pending) in pending {
                        match pending.wait() {
                            Err(Error::View(_)) if overflowing => {}
                            Ok(Outcome::Accepted { .. }) if !overflowing => {
                                accepted_per_account[account].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            other => panic!("account {account}, overflowing {overflowing}: {other:?}"),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for client in clients {
            client.join().expect("a client panicked")?;
        }
        Ok(())
    })?;
    let mut events = 0;
    for (id, accepted) in ids.iter().zip(&accepted_per_account) {
        let accepted = accepted.load(std::sync::atomic::Ordering::Relaxed);
        let state = engine.state::<Account>(id)?.expect("the account exists");
        assert_eq!(state.version, 3 + accepted, "{}", id.0);
        assert_eq!(state.state.balance(), Decimal::from_mantissa(accepted as i64));
        assert_eq!(activity(&engine, &id.0)?.deposits, 1 + accepted);
        events += 3 + accepted;
    }
    // Every stored record equals a replay of its log, and the rows as folded equal the rows rebuilt.
    assert_eq!(engine.verify()?, (events, ids.len() as u64));
    let rows = engine.view_range("account-activity", &[], 100)?;
    engine.rebuild_view("account-activity")?;
    assert_eq!(engine.view_range("account-activity", &[], 100)?, rows);
    Ok(())
}

/// What the reads show of the ledger: every account's state (version and balance) and every view's rows.
type Seen = (Vec<(String, Option<(u64, String)>)>, Vec<Vec<(Vec<u8>, Vec<u8>)>>);

fn seen(engine: &Engine<ledger::Ledger>, accounts: &[String]) -> Result<Seen, Error> {
    let mut states = Vec::new();
    for account in accounts {
        let state = engine.state::<ledger::account::Account>(&ledger::AccountId(account.clone()))?;
        states.push((account.clone(), state.map(|s| (s.version, format!("{:?}", s.state)))));
    }
    let mut views = Vec::new();
    for view in <ledger::Ledger as anthill_runtime::Domain>::meta().views {
        views.push(engine.view_range(view.name, &[], 10_000)?);
    }
    Ok((states, views))
}

/// Opens `accounts`, then [`load`].
fn open_and_load(engine: &Engine<ledger::Ledger>, accounts: &[String], rounds: usize) -> Result<(), Error> {
    for account in accounts {
        accepted(run(engine, account, "open", r#"{"owner": "someone", "overdraft-limit": "5"}"#)?);
    }
    load(engine, accounts, rounds)
}

/// Deposits, withdrawals (some refused) and transfers over `accounts`, from several threads.
fn load(engine: &Engine<ledger::Ledger>, accounts: &[String], rounds: usize) -> Result<(), Error> {
    std::thread::scope(|scope| {
        let mut threads = Vec::new();
        for thread in 0..4usize {
            threads.push(scope.spawn(move || -> Result<(), Error> {
                for round in 0..rounds {
                    let account = &accounts[(round * 7 + thread * 3) % accounts.len()];
                    let to = &accounts[(round * 5 + thread) % accounts.len()];
                    let (command, body) = match (round + thread) % 4 {
                        0 | 1 => ("deposit", r#"{"amount": "3"}"#.to_owned()),
                        2 => ("withdraw", r#"{"amount": "4"}"#.to_owned()),
                        _ => (
                            "send-transfer",
                            format!(r#"{{"transfer": "t-{thread}-{round}", "to": "{to}", "amount": "1"}}"#),
                        ),
                    };
                    run(engine, account, command, &body)?;
                }
                Ok(())
            }));
        }
        threads.into_iter().try_for_each(|thread| thread.join().expect("a load thread panicked"))
    })?;
    assert!(engine.wait_for_processes(Duration::from_secs(20))?);
    Ok(())
}

#[test]
fn records_and_rows_written_behind_the_log_are_replayed_after_a_crash() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let accounts: Vec<String> = (0..12).map(|n| format!("acc-{n}")).collect();
    let engine = Engine::<ledger::Ledger>::open(dir.path(), Config { partitions: 2, ..Config::default() })?;
    open_and_load(&engine, &accounts, 60)?;
    // Half of it written out, then more that stays in memory only.
    let checkpoint_seq = engine.checkpoint()?;
    load(&engine, &accounts[..6], 40)?;
    let before = seen(&engine, &accounts)?;
    let last_seq = engine.last_seq()?;
    assert!(last_seq > checkpoint_seq);
    engine.verify()?;
    // A crash: the tables hold the records and rows as of the checkpoint, the log holds the rest.
    engine.abandon();
    // A reader beside the owner replays the rest into memory: it reads what the owner did.
    {
        let reader = Engine::<ledger::Ledger>::open_read_only(dir.path(), Config::default())?;
        assert_eq!(seen(&reader, &accounts)?, before);
        assert_eq!(reader.verify()?.0, last_seq);
        assert_eq!(
            reader.events::<ledger::account::Account>(&ledger::AccountId("acc-1".into()))?.len() as u64,
            before.0[1].1.as_ref().expect("acc-1 is open").0
        );
    }
    // The owner replays it into the tables when it opens the store.
    let engine = Engine::<ledger::Ledger>::open(dir.path(), Config { partitions: 2, ..Config::default() })?;
    assert_eq!(engine.recovered_events(), last_seq - checkpoint_seq);
    assert_eq!(seen(&engine, &accounts)?, before);
    assert_eq!(engine.verify()?.0, last_seq);
    // The replayed rows are those a fold of the whole log gives.
    engine.rebuild_view("account-activity")?;
    assert_eq!(seen(&engine, &accounts)?, before);
    // And a clean shutdown leaves nothing to replay.
    engine.shutdown();
    let engine = Engine::<ledger::Ledger>::open(dir.path(), Config::default())?;
    assert_eq!(engine.recovered_events(), 0);
    assert_eq!(seen(&engine, &accounts)?, before);
    Ok(())
}

#[test]
fn frequent_checkpoints_under_concurrent_writers_keep_records_and_rows_exact() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let accounts: Vec<String> = (0..40).map(|n| format!("acc-{n}")).collect();
    // Checkpoints every few batches, and a map that keeps growing under them.
    let mut config =
        Config { partitions: 2, checkpoint_events_max: 64, checkpoint_entries_max: 48, ..Config::default() };
    config.store.map_size_bytes = 1 << 20;
    let engine = Engine::<ledger::Ledger>::open(dir.path(), config.clone())?;
    open_and_load(&engine, &accounts, 400)?;
    let stats = engine.stats();
    assert!(stats.checkpoints >= 10, "{stats:?}");
    assert_eq!(stats.failed_checkpoints, 0);
    let before = seen(&engine, &accounts)?;
    engine.verify()?;
    // A crash between steps: the tables hold every event up to the checkpoint and some records and rows hold
    // later ones; reopening replays the log after the checkpoint, each event only where it is missing.
    engine.abandon();
    let engine = Engine::<ledger::Ledger>::open(dir.path(), config)?;
    assert!(engine.recovered_events() > 0);
    assert_eq!(seen(&engine, &accounts)?, before);
    engine.verify()?;
    // The rows as folded batch by batch, written out step by step and replayed are those of a fold of the
    // whole log.
    engine.rebuild_view("account-activity")?;
    assert_eq!(seen(&engine, &accounts)?, before);
    Ok(())
}
