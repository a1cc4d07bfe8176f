//! Schema evolution end to end: a store written by version 1 of the `bank` model (`models/evolve-v1`) opens
//! under version 2 (`models/evolve-v2`: `opened` renamed `created`, `deposited` with a memo and a u64 count,
//! a new state field and view column) once upcasters are declared, replays to the right state and passes
//! `verify`; without them, or with one missing, it is refused naming each uncovered event.

use anthill_codegen_tests::evolve::{v1, v2};
use anthill_runtime::engine::{CommandMeta, Config, Engine, JsonOutcome};
use anthill_runtime::error::Error;
use anthill_runtime::upcast::Upcasters;
use anthill_runtime::Domain;

use v2::bank::account::{events, Account, Event};

fn run<D: Domain>(engine: &Engine<D>, id: &str, command: &str, body: &str) -> Result<JsonOutcome, Error> {
    engine.execute_json("account", id, command, body.as_bytes(), CommandMeta::default())
}

fn accepted(outcome: JsonOutcome) {
    assert!(matches!(outcome, JsonOutcome::Accepted { .. }), "{outcome:?}");
}

/// Version 1 events become version 2 events: a rename, and a new field with a default plus a widened one.
fn upcasters() -> Upcasters {
    Upcasters::new()
        .event::<Account, v1::bank::account::Event>("opened", "(owner: string)", |old| match old {
            v1::bank::account::Event::Opened(e) => Some(Event::Created(events::Created { owner: e.owner })),
            v1::bank::account::Event::Deposited(_) => None,
        })
        .event::<Account, v1::bank::account::Event>("deposited", "(amount: (decimal 2), count: u32)", |old| match old {
            v1::bank::account::Event::Deposited(e) => Some(Event::Deposited(events::Deposited {
                amount: e.amount,
                count: u64::from(e.count),
                memo: String::new(),
            })),
            v1::bank::account::Event::Opened(_) => None,
        })
}

fn write_version_1(path: &std::path::Path) -> Result<(), Error> {
    let engine = Engine::<v1::bank::Bank>::open(path, Config::default())?;
    accepted(run(&engine, "ann", "open", r#"{"owner": "Ann"}"#)?);
    accepted(run(&engine, "bob", "open", r#"{"owner": "Bob"}"#)?);
    for (id, amount, count) in [("ann", "10.50", 2), ("bob", "1", 1), ("ann", "4", 3)] {
        accepted(run(&engine, id, "deposit", &format!(r#"{{"amount": "{amount}", "count": {count}}}"#))?);
    }
    assert!(matches!(run(&engine, "ann", "deposit", r#"{"amount": "0", "count": 1}"#)?, JsonOutcome::Rejected { .. }));
    engine.shutdown();
    Ok(())
}

#[test]
fn a_store_of_version_1_is_refused_without_upcasters() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    write_version_1(dir.path())?;
    let refused = Engine::<v2::bank::Bank>::open(dir.path(), Config::default()).err().expect("refused");
    let message = refused.to_string();
    assert!(message.contains("was: event account/opened (owner: string)"), "{message}");
    assert!(message.contains("now: event account/deposited (amount: (decimal 2), count: u64, memo: string)"));
    assert!(message.contains("no upcasters are configured"), "{message}");
    // One upcaster declared, the other missing: refused, naming the uncovered event and what became of it.
    let only_opened = upcasters_only_opened();
    let config = Config { upcasters: Some(only_opened), ..Config::default() };
    let refused = Engine::<v2::bank::Bank>::open(dir.path(), config).err().expect("refused");
    let Error::IncompatibleSchema { problems, .. } = &refused else { panic!("{refused}") };
    assert_eq!(
        &problems[..],
        &["no upcaster for stored event `account/deposited` `(amount: (decimal 2), count: u32)` \
             (now `(amount: (decimal 2), count: u64, memo: string)`)"
            .to_owned()]
    );
    // Refusing changed nothing: version 1 still opens and reads its store.
    let engine = Engine::<v1::bank::Bank>::open(dir.path(), Config::default())?;
    assert_eq!(engine.verify()?, (5, 2));
    assert_eq!(engine.migration(), None);
    Ok(())
}

fn upcasters_only_opened() -> Upcasters {
    Upcasters::new().event::<Account, v1::bank::account::Event>("opened", "(owner: string)", |old| match old {
        v1::bank::account::Event::Opened(e) => Some(Event::Created(events::Created { owner: e.owner })),
        v1::bank::account::Event::Deposited(_) => None,
    })
}

#[test]
fn a_store_of_version_1_opens_under_version_2_with_upcasters() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    write_version_1(dir.path())?;
    let config = || Config { upcasters: Some(upcasters()), ..Config::default() };
    let engine = Engine::<v2::bank::Bank>::open(dir.path(), config())?;
    let migration = engine.migration().expect("migrated");
    assert_eq!((migration.events_upcast, migration.instances_rebuilt, migration.views_rebuilt), (5, 2, 1));
    assert_eq!(engine.verify()?, (5, 2));
    // The state is version 2's replay of the upcast events (the new `deposits` field counts them).
    let ann = engine.state::<Account>(&v2::bank::AccountId("ann".into()))?.expect("ann exists");
    assert_eq!(
        (ann.state.owner().as_str(), ann.state.balance().to_string(), ann.state.deposits()),
        ("Ann", "14.50".into(), 5)
    );
    assert_eq!(ann.version, 3);
    let names: Vec<String> = engine.changes(0, 100)?.into_iter().map(|e| e.envelope.event_name).collect();
    assert_eq!(names, ["created", "created", "deposited", "deposited", "deposited"]);
    // The view was rebuilt with the new column.
    let key = v2::bank::Bank::view_key("deposits", "ann").expect("the view exists").expect("a valid key");
    let row = engine.view_get("deposits", &key)?.expect("a row for ann");
    let row = v2::bank::Bank::view_row_json("deposits", &row)
        .expect("the view exists")
        .map_err(|e| Error::Store { message: e.to_string() })?;
    assert_eq!(row["count"], 2);
    assert_eq!(row["total"], "14.50");
    assert_eq!(row["last-memo"], "");
    // Version 2 commands run on the migrated store.
    accepted(run(&engine, "ann", "deposit", r#"{"amount": "1", "count": 7, "memo": "late"}"#)?);
    assert_eq!(engine.state::<Account>(&v2::bank::AccountId("ann".into()))?.expect("ann").state.deposits(), 12);
    engine.shutdown();
    // Reopening finds the current schema: nothing to migrate, with or without upcasters.
    let engine = Engine::<v2::bank::Bank>::open(dir.path(), Config::default())?;
    assert_eq!(engine.migration(), None);
    assert_eq!(engine.verify()?, (6, 2));
    Ok(())
}

#[test]
fn a_migration_that_fails_midway_leaves_the_store_as_it_was() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    write_version_1(dir.path())?;
    // An upcaster that cannot convert a deposit of 4.00 (the last event): the migration's transaction has
    // rewritten the earlier events when it fails, and is aborted.
    let failing = upcasters_only_opened().event::<Account, v1::bank::account::Event>(
        "deposited",
        "(amount: (decimal 2), count: u32)",
        |old| match old {
            v1::bank::account::Event::Deposited(e) if e.amount != anthill_runtime::Decimal::from_mantissa(400) => {
                Some(Event::Deposited(events::Deposited {
                    amount: e.amount,
                    count: u64::from(e.count),
                    memo: String::new(),
                }))
            }
            _ => None,
        },
    );
    let config = Config { upcasters: Some(failing), ..Config::default() };
    let failed = Engine::<v2::bank::Bank>::open(dir.path(), config).err().expect("the migration fails");
    assert!(failed.to_string().contains("upcasting failed"), "{failed}");
    // Nothing of it was committed: version 1 opens its store unchanged, and version 2 still needs upcasters.
    let engine = Engine::<v1::bank::Bank>::open(dir.path(), Config::default())?;
    assert_eq!(engine.verify()?, (5, 2));
    let names: Vec<String> = engine.changes(0, 100)?.into_iter().map(|e| e.envelope.event_name).collect();
    assert_eq!(names, ["opened", "opened", "deposited", "deposited", "deposited"]);
    engine.shutdown();
    let config = Config { upcasters: Some(upcasters()), ..Config::default() };
    let engine = Engine::<v2::bank::Bank>::open(dir.path(), config)?;
    assert_eq!(engine.verify()?, (5, 2));
    Ok(())
}
