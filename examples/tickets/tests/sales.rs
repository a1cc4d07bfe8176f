//! The example crate's own tests: the extern pricing and the declared invariant working together.

use anthill_example_tickets::tickets::{self, concert};
use anthill_runtime::{Aggregate, Context, Decimal, Timestamp};

fn money(text: &str) -> Decimal<2> {
    text.parse().expect("a money literal")
}

fn buy(state: &mut concert::State, version: &mut u64, order: &str, seats: u32) -> Result<(), concert::Rejection> {
    let id = tickets::ConcertId::from("gig");
    let ctx = Context { id: &id, version: *version, now: Timestamp::EPOCH, occurred_at: Timestamp::EPOCH };
    let command = concert::commands::Buy { order: tickets::OrderId::from(order), seats }.into();
    let events = concert::Concert::execute(state, &command, &ctx)?;
    *version += events.len() as u64;
    Ok(())
}

#[test]
fn the_hall_never_oversells_and_late_seats_cost_more() {
    let id = tickets::ConcertId::from("gig");
    let mut state = concert::State::default();
    let ctx = Context { id: &id, version: 0, now: Timestamp::EPOCH, occurred_at: Timestamp::EPOCH };
    concert::Concert::execute(&mut state, &concert::commands::Schedule { capacity: 4 }.into(), &ctx).unwrap();
    let mut version = 1;
    buy(&mut state, &mut version, "o-1", 3).unwrap();
    assert_eq!(state.revenue(), money("135.00"), "3 seats at 45.00");
    assert_eq!(buy(&mut state, &mut version, "o-2", 2), Err(concert::Rejection::NotOversold));
    buy(&mut state, &mut version, "o-3", 1).unwrap();
    assert_eq!(state.revenue(), money("195.00"), "the last seat at 60.00");
    assert_eq!(buy(&mut state, &mut version, "o-4", 1), Err(concert::Rejection::NotOversold));
}
