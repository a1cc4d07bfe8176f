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
    use anthill_runtime::engine::Outcome;
    use anthill_runtime::Decimal;
    use ledger::account::{commands, Account, Command};
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    // A writer that waits for more commands once it has one, so that the three submitted together share a batch.
    let config = Config { batch_wait_max: Duration::from_millis(200), ..Config::default() };
    let engine = Engine::<ledger::Ledger>::open(dir.path(), config)?;
    let id = |name: &str| ledger::AccountId(name.to_owned());
    let deposit = |mantissa: i64| Command::Deposit(commands::Deposit { amount: Decimal::from_mantissa(mantissa) });
    let half = 5_000_000_000_000_000_000; // 50,000,000,000,000,000.00: twice that overflows an i64 mantissa.
    for name in ["ann", "bob"] {
        accepted(run(&engine, name, "open", r#"{"owner": "someone", "overdraft-limit": "0"}"#)?);
    }
    // The balance goes up and down again, but the view's `total-in` only adds: the next deposit of `half`
    // keeps the balance in range and overflows the view's column.
    engine.execute::<Account>(id("ann"), deposit(half), CommandMeta::default())?;
    let withdraw = Command::Withdraw(commands::Withdraw { amount: Decimal::from_mantissa(half) });
    engine.execute::<Account>(id("ann"), withdraw, CommandMeta::default())?;
    // Submitted together, so they are in one batch: only the overflowing deposit fails.
    let overflowing = engine.submit::<Account>(id("ann"), deposit(half), CommandMeta::default())?;
    let after = engine.submit::<Account>(id("ann"), deposit(100), CommandMeta::default())?;
    let other = engine.submit::<Account>(id("bob"), deposit(200), CommandMeta::default())?;
    let failed = overflowing.wait();
    assert!(matches!(&failed, Err(Error::View(message)) if message.ends_with("arithmetic overflow")), "{failed:?}");
    assert!(matches!(after.wait()?, Outcome::Accepted { version: 4, .. }));
    assert!(matches!(other.wait()?, Outcome::Accepted { version: 2, .. }));
    let ann = engine.state::<Account>(&id("ann"))?.expect("ann exists");
    assert_eq!((ann.version, ann.state.balance()), (4, Decimal::from_mantissa(100)));
    assert_eq!(engine.verify()?, (6, 2));
    // The failed attempts folded into rows the writer had cached: the rows as stored count only what committed.
    let ann = activity(&engine, "ann")?;
    assert_eq!((ann.deposits, ann.withdrawals), (2, 1));
    assert_eq!(ann.total_in, Decimal::from_mantissa(half + 100));
    assert_eq!(activity(&engine, "bob")?.deposits, 1);
    // A later batch folds into those rows, and a rebuild from the log agrees.
    engine.execute::<Account>(id("ann"), deposit(1), CommandMeta::default())?;
    assert_eq!(activity(&engine, "ann")?.deposits, 3);
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
