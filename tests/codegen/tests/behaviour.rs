//! What generated code does at run time, beyond the scenarios: arithmetic is checked, relaxed policies
//! react only when crossing the bound, processes derive stable command ids, views fold events, JSON and
//! rkyv round-trip, and extern commands are called after their requires.

use std::collections::BTreeMap;

use anthill_codegen_tests::golden::{counter, payments, stock};
use anthill_runtime::{
    Aggregate, CommandError, Context, Decimal, EventContext, EventName, Reaction, Rejection as _, Timestamp, ViewError,
    ViewTables,
};

fn ctx<Id>(id: &Id, version: u64) -> Context<'_, Id> {
    let now = Timestamp::from_micros(1_000_000);
    Context { id, version, now, occurred_at: now }
}

fn event_ctx<Id>(id: &Id, version: u64, event_id: u128) -> EventContext<'_, Id> {
    EventContext { id, version, occurred_at: Timestamp::from_micros(2_000_000), event_id }
}

#[test]
fn overflow_is_a_rejection_not_a_wrap() {
    use counter::counter::{commands, Command, Counter, Rejection, State};
    let id = counter::CounterId::from("c");
    let mut state = State::default();
    let events = Counter::execute(&mut state, &Command::Increment(commands::Increment { by: 7 }), &ctx(&id, 0))
        .expect("7 is within the limit");
    assert_eq!(events.len(), 1);
    assert_eq!(state.value(), 7);
    let huge = Command::Increment(commands::Increment { by: u32::MAX });
    assert_eq!(Counter::decide(&state, &huge, &ctx(&id, 1)), Err(Rejection::ArithmeticOverflow));
    let before = state.clone();
    assert_eq!(Counter::execute(&mut state, &huge, &ctx(&id, 1)), Err(Rejection::ArithmeticOverflow));
    assert_eq!(state, before, "a rejected command leaves the state as it was");
    assert_eq!(Rejection::ArithmeticOverflow.code(), "arithmetic-overflow");
    assert_eq!(Rejection::from_code("within-limit"), Some(Rejection::WithinLimit));
}

#[test]
fn a_relaxed_policy_reacts_only_when_the_bound_is_crossed() {
    use stock::item::{commands, Command, Event, Item, State};
    let id = stock::Sku::from("sku-1");
    let mut state = State::default();
    let reserve = |qty| Command::Reserve(commands::Reserve { order: stock::OrderId::from("o"), qty });
    // 0 on hand, quota 5: reserving 3 crosses zero and is back-ordered.
    let events = Item::execute(&mut state, &reserve(3), &ctx(&id, 0)).unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name()).collect();
    assert_eq!(names, ["reserved", "back-ordered"]);
    assert_eq!(state.on_hand(), -3);
    // Already past the bound: 1 more is within the quota and reacts no more.
    let events = Item::execute(&mut state, &reserve(1), &ctx(&id, 2)).unwrap();
    assert!(matches!(events.as_slice(), [Event::Reserved(_)]), "{events:?}");
    // -4 - 2 = -6 is beyond the quota of 5.
    assert_eq!(Item::decide(&state, &reserve(2), &ctx(&id, 3)), Err(stock::item::Rejection::InStock));
}

#[test]
fn processes_send_commands_with_ids_derived_from_the_event() {
    use stock::order::{events, Event, Order};
    let id = stock::OrderId::from("o-7");
    let event = Event::LineAdded(events::LineAdded { item: stock::Sku::from("sku-9"), qty: 2 });
    let first = Order::react(&event, &event_ctx(&id, 0, 42)).unwrap();
    let again = Order::react(&event, &event_ctx(&id, 0, 42)).unwrap();
    assert_eq!(first, again, "re-running a reaction sends the same commands with the same ids");
    let other = Order::react(&event, &event_ctx(&id, 0, 43)).unwrap();
    assert_ne!(first[0].command_id, other[0].command_id, "another event, other command ids");
    let [Reaction { command, on_rejected, command_id }] = first.as_slice() else { panic!("one send: {first:?}") };
    assert_eq!(
        command,
        &stock::Command::Item {
            id: stock::Sku::from("sku-9"),
            command: stock::item::Command::Reserve(stock::item::commands::Reserve { order: id.clone(), qty: 2 }),
        }
    );
    assert_eq!(on_rejected.len(), 1, "the compensation is ready if the reservation is refused");
    assert_ne!(on_rejected[0].command_id, *command_id);
    assert!(Order::react(
        &Event::LineRefused(events::LineRefused { item: stock::Sku::from("x") }),
        &event_ctx(&id, 1, 1)
    )
    .unwrap()
    .is_empty());
}

#[derive(Default)]
struct MemoryTables(BTreeMap<(&'static str, Vec<u8>), Vec<u8>>);

impl ViewTables for MemoryTables {
    fn get(&mut self, view: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(self.0.get(&(view, key.to_vec())).cloned())
    }
    fn put(&mut self, view: &'static str, key: &[u8], row: &[u8]) -> Result<(), ViewError> {
        self.0.insert((view, key.to_vec()), row.to_vec());
        Ok(())
    }
}

#[test]
fn views_fold_events_into_rows() {
    use stock::item::{events, Event, Item};
    use stock::views::Reservations;
    let id = stock::Sku::from("sku-1");
    let mut tables = MemoryTables::default();
    let reserved = |order: &str, qty| Event::Reserved(events::Reserved { order: stock::OrderId::from(order), qty });
    Item::update_views(&reserved("o-1", 2), &event_ctx(&id, 0, 1), &mut tables).unwrap();
    Item::update_views(&reserved("o-2", 3), &event_ctx(&id, 1, 2), &mut tables).unwrap();
    // A backdated event counts, but does not replace the latest order.
    let mut backdated = event_ctx(&id, 2, 3);
    backdated.occurred_at = Timestamp::from_micros(1);
    Item::update_views(&reserved("o-0", 1), &backdated, &mut tables).unwrap();
    Item::update_views(&Event::Received(events::Received { qty: 5 }), &event_ctx(&id, 3, 4), &mut tables).unwrap();
    let row = Reservations::load(&mut tables, &id).unwrap();
    assert_eq!(row.count, 3);
    assert_eq!(row.reserved, 6);
    assert_eq!(row.last_order, Some(stock::OrderId::from("o-2")));
    assert_eq!(Reservations::load(&mut tables, &stock::Sku::from("other")).unwrap(), Reservations::default());
    let mut damaged = MemoryTables::default();
    damaged.put(Reservations::NAME, &Reservations::key_bytes(&id), &[1, 2, 3]).unwrap();
    assert!(Reservations::load(&mut damaged, &id).is_err(), "damaged rows are an error, never garbage");
}

#[test]
fn commands_and_events_round_trip_through_json_and_rkyv() {
    use payments::payment::{commands, Command, Event, Payment};
    let command = Payment::command_from_json("authorize", br#"{"amount": "12.5", "card-token": "tok"}"#).unwrap();
    assert_eq!(
        command,
        Command::Authorize(commands::Authorize { amount: Decimal::from_mantissa(1250), card_token: "tok".into() })
    );
    assert!(matches!(
        Payment::command_from_json("authorize", br#"{"amount": 1, "card-token": "t", "extra": 1}"#),
        Err(CommandError::InvalidParameters { .. })
    ));
    assert!(matches!(Payment::command_from_json("refund", b"{}"), Err(CommandError::UnknownCommand { .. })));
    let event = Event::Authorized(payments::payment::events::Authorized {
        amount: Decimal::from_mantissa(1250),
        reference: "r".into(),
    });
    assert_eq!(
        Payment::event_to_json(&event),
        serde_json::json!({"type": "authorized", "amount": "12.50", "reference": "r"})
    );
    let bytes = Payment::encode_event(&event);
    assert_eq!(Payment::decode_event(&bytes), Ok(event));
    assert!(Payment::decode_event(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn extern_commands_run_after_their_requires() {
    use payments::payment::{commands, Command, Payment, Rejection, State};
    let id = payments::PaymentId::from("p");
    let mut state = State::default();
    let authorize = |token: &str| {
        Command::Authorize(commands::Authorize { amount: Decimal::from_mantissa(100), card_token: token.into() })
    };
    assert_eq!(Payment::decide(&state, &authorize(""), &ctx(&id, 0)), Err(Rejection::ProcessorUnavailable));
    Payment::execute(&mut state, &authorize("tok"), &ctx(&id, 0)).unwrap();
    assert_eq!(state.status(), payments::PaymentStatus::Authorized);
    assert_eq!(
        Payment::decide(&state, &authorize("tok"), &ctx(&id, 1)),
        Err(Rejection::AlreadyProcessed),
        "the require runs before the extern function"
    );
}
