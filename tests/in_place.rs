//! Aggregates whose state holds a collection decide in place (no copy of the state per command): a command
//! refused by an invariant after its events were applied must leave the cached state exactly as the accepted
//! commands before it made it, also within one batch. Checked on the delivery slot (its bookings are a map),
//! against the outcomes its rules predict and a replay of the log.

use std::time::Duration;

use anthill::delivery::{self, slot, Access, BookingId, SlotId};
use anthill_runtime::engine::{CommandMeta, Config, Engine, Outcome, Pending};
use anthill_runtime::{Aggregate, Rejection, Timestamp};

fn book(booking: &str) -> slot::Command {
    slot::Command::Book(slot::commands::Book {
        booking: BookingId(booking.into()),
        address: format!("{booking} High Street"),
        area: "A1".into(),
        access: Access::AnyVan,
        picking_minutes: 10,
        chilled_totes: 0,
        frozen_totes: 0,
    })
}

fn cancel(booking: &str) -> slot::Command {
    slot::Command::Cancel(slot::commands::Cancel { booking: BookingId(booking.into()) })
}

/// `accepted` or the rejection's code.
fn outcome(pending: Pending<slot::Slot>) -> String {
    match pending.wait().expect("the command is answered") {
        Outcome::Accepted { .. } => "accepted".into(),
        Outcome::Rejected(rejection) => rejection.code().into(),
    }
}

#[test]
fn a_refusal_after_applying_in_place_restores_the_slot_within_one_batch() {
    const { assert!(<slot::Slot as Aggregate>::DECIDES_IN_PLACE) };
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A long batch window, so that every command below lands in the same batch.
    let config = Config { batch_wait_max: Duration::from_millis(200), ..Config::default() };
    let engine = Engine::<delivery::Delivery>::open(dir.path(), config).expect("the store opens");
    let id = SlotId("2026-12-01/08-10/north".into());
    let cutoff = Timestamp::from_micros(Timestamp::now().micros() + 24 * 3_600 * 1_000_000);
    let open = slot::Command::Open(slot::commands::Open {
        day: "2026-12-01".into(),
        window: "08-10".into(),
        cutoff,
        van_stops: 3,
        small_van_stops: 3,
        picking_minutes: 1_000,
        chilled_totes: 100,
        frozen_totes: 100,
    });
    let serve = slot::Command::ServeArea(slot::commands::ServeArea { area: "A1".into() });
    for command in [open, serve] {
        let answer = engine.execute::<slot::Slot>(id.clone(), command, CommandMeta::default());
        assert!(matches!(answer, Ok(Outcome::Accepted { .. })), "{answer:?}");
    }

    let batches_before = engine.stats().batches;
    let commands = [
        book("b1"),
        book("b2"),
        book("b3"),
        book("b4"),
        book("b5"),
        cancel("b1"),
        book("b6"),
        book("b7"),
        cancel("b9"),
        book("b1"),
    ];
    let pending: Vec<Pending<slot::Slot>> = commands
        .into_iter()
        .map(|command| engine.submit::<slot::Slot>(id.clone(), command, CommandMeta::default()).expect("queued"))
        .collect();
    let outcomes: Vec<String> = pending.into_iter().map(outcome).collect();
    assert_eq!(engine.stats().batches - batches_before, 1, "the commands were meant to share one batch");
    let expected = [
        "accepted",
        "accepted",
        "accepted",
        "van-stops-within-limit",
        "van-stops-within-limit",
        "accepted",
        "accepted",
        "van-stops-within-limit",
        "unknown-booking",
        "van-stops-within-limit",
    ];
    assert_eq!(outcomes, expected);

    let snapshot = engine.state::<slot::Slot>(&id).expect("a read").expect("the slot exists");
    let state = <slot::Slot as Aggregate>::state_to_json(&snapshot.state);
    assert_eq!(state["van-stops-used"], 3, "{state}");
    assert_eq!(state["picking-minutes-used"], 30, "{state}");
    let bookings: Vec<&str> = state["bookings"].as_object().expect("bookings").keys().map(String::as_str).collect();
    assert_eq!(bookings, ["b2", "b3", "b6"], "{state}");
    // The cached state equals a replay of the log, and the stored record equals the cache.
    engine.verify().expect("state and log agree");
    drop(engine);
    let engine = Engine::<delivery::Delivery>::open(dir.path(), Config::default()).expect("the store reopens");
    let reopened = engine.state::<slot::Slot>(&id).expect("a read").expect("the slot exists");
    assert_eq!(reopened.state, snapshot.state);
}
