//! Price-time priority matching for the exchange's order books (`domains/exchange.sexp`).
//!
//! The model declares the book (resting orders indexed by price and arrival on each side), the events and the
//! invariants; this module is the one decision the language cannot express as a rule: the loop that walks the
//! other side of the book from its best price while the incoming order still has shares and an acceptable
//! price. It only reads the state and returns events; the model's handlers apply them, and the invariants
//! (`never-crossed`, `book-indexes-every-order`) are checked on the result. It reads no clock and no randomness,
//! so replaying the log rebuilds the exact book.

use crate::exchange::order_book::{self, commands, events, Event, OrderBook, Rejection, State};
use crate::exchange::{OrderId, RestingOrder, Side, Slot, StockId};
use anthill_runtime::{Context, Decimal};

type Price = Decimal<2>;

impl order_book::Extern for OrderBook {
    fn place_order(
        state: &State,
        command: &commands::PlaceOrder,
        _ctx: &Context<'_, StockId>,
    ) -> Result<Vec<Event>, Rejection> {
        place_order(state, command)
    }
}

/// Matches a limit order against the book: the order gets the next arrival number, trades with the best resting
/// orders of the other side at their prices (the earliest first at one price) while its limit allows, and what is
/// left rests in the book. An order that would trade with a resting order of the same trader is rejected whole
/// (self-trade prevention), before anything is emitted.
pub fn place_order(state: &State, command: &commands::PlaceOrder) -> Result<Vec<Event>, Rejection> {
    let seq = state.next_seq();
    let mut out = vec![Event::OrderAccepted(events::OrderAccepted {
        order: command.order.clone(),
        trader: command.trader.clone(),
        side: command.side,
        price: command.price,
        qty: command.qty,
        seq,
    })];
    let mut open = command.qty;
    for (maker_id, maker) in makers(state, command.side, command.price) {
        if open == 0 {
            break;
        }
        if maker.trader == command.trader {
            return Err(Rejection::SelfTrade);
        }
        let qty = open.min(maker.open);
        let (buyer, seller) = match command.side {
            Side::Buy => (command.trader.clone(), maker.trader.clone()),
            Side::Sell => (maker.trader.clone(), command.trader.clone()),
        };
        out.push(Event::Traded(events::Traded {
            maker: maker_id.clone(),
            taker: command.order.clone(),
            buyer,
            seller,
            taker_side: command.side,
            price: maker.price,
            qty,
        }));
        open -= qty;
    }
    if open > 0 {
        out.push(Event::OrderRested(events::OrderRested {
            order: command.order.clone(),
            trader: command.trader.clone(),
            side: command.side,
            price: command.price,
            open,
            seq,
        }));
    }
    Ok(out)
}

/// The resting orders an incoming order on `side` with limit `limit` may trade with, best first: for a buy, the
/// asks from the lowest price up to the limit; for a sell, the bids from the highest price down to the limit;
/// at one price, by arrival.
fn makers<'a>(
    state: &'a State,
    side: Side,
    limit: Price,
) -> Box<dyn Iterator<Item = (&'a OrderId, &'a RestingOrder)> + 'a> {
    let resting = move |id: &'a OrderId| state.orders().get(id).map(|order| (id, order));
    match side {
        Side::Buy => Box::new(
            state.asks().iter().take_while(move |(slot, _)| slot.price <= limit).filter_map(move |(_, id)| resting(id)),
        ),
        Side::Sell => Box::new(
            bid_levels(state.bids())
                .take_while(move |&price| price >= limit)
                .flat_map(move |price| {
                    let level = Slot { price, seq: 0 }..=Slot { price, seq: u64::MAX };
                    state.bids().range(level)
                })
                .filter_map(move |(_, id)| resting(id)),
        ),
    }
}

/// The distinct prices of the bids, highest first.
fn bid_levels(bids: &std::collections::BTreeMap<Slot, OrderId>) -> impl Iterator<Item = Price> + '_ {
    let mut below: Option<Price> = None;
    std::iter::from_fn(move || {
        let next = match below {
            None => bids.keys().next_back(),
            Some(price) => bids.range(..Slot { price, seq: 0 }).next_back().map(|(slot, _)| slot),
        }
        .map(|slot| slot.price);
        below = next;
        next
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anthill_runtime::{Aggregate, Timestamp};

    fn price(cents: i64) -> Price {
        Decimal::from_mantissa(cents)
    }

    fn place(state: &mut State, order: &str, trader: &str, side: Side, cents: i64, qty: u64) -> Vec<Event> {
        let id = StockId::from("ACME");
        let now = Timestamp::from_micros(0);
        let ctx = Context { id: &id, version: 0, now, occurred_at: now };
        let command = commands::PlaceOrder {
            order: OrderId::from(order),
            trader: crate::exchange::TraderId::from(trader),
            side,
            price: price(cents),
            qty,
        };
        OrderBook::execute(state, &command.into(), &ctx).expect("the order is accepted")
    }

    fn trades(events: &[Event]) -> Vec<(String, i64, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Traded(t) => Some((t.maker.0.clone(), t.price.mantissa(), t.qty)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_sell_takes_the_bids_by_price_then_arrival() {
        let mut book = State::default();
        place(&mut book, "b1", "ann", Side::Buy, 10_000, 2);
        place(&mut book, "b2", "bob", Side::Buy, 10_100, 2);
        place(&mut book, "b3", "cat", Side::Buy, 10_000, 2);
        place(&mut book, "b4", "dan", Side::Buy, 10_100, 2);
        place(&mut book, "b5", "eve", Side::Buy, 9_900, 2);
        let events = place(&mut book, "s1", "fay", Side::Sell, 10_000, 7);
        assert_eq!(
            trades(&events),
            vec![
                ("b2".to_string(), 10_100, 2),
                ("b4".to_string(), 10_100, 2),
                ("b1".to_string(), 10_000, 2),
                ("b3".to_string(), 10_000, 1),
            ]
        );
        assert_eq!(book.orders().len(), 2, "b3 keeps one share, b5 is untouched");
        assert_eq!(book.orders()[&OrderId::from("b3")].open, 1);
        assert!(book.asks().is_empty(), "the sell was filled completely");
    }

    #[test]
    fn replaying_the_events_rebuilds_the_same_book() {
        let mut book = State::default();
        let mut log = Vec::new();
        let orders = [
            ("o1", "ann", Side::Buy, 10_000, 5),
            ("o2", "bob", Side::Sell, 10_200, 3),
            ("o3", "cat", Side::Sell, 10_100, 4),
            ("o4", "dan", Side::Buy, 10_150, 6),
            ("o5", "eve", Side::Sell, 9_900, 8),
        ];
        for (order, trader, side, cents, qty) in orders {
            log.extend(place(&mut book, order, trader, side, cents, qty));
        }
        let mut replayed = State::default();
        let id = StockId::from("ACME");
        for (version, event) in log.iter().enumerate() {
            let ctx = anthill_runtime::EventContext {
                id: &id,
                version: version as u64,
                occurred_at: Timestamp::from_micros(0),
                event_id: version as u128,
            };
            OrderBook::evolve(&mut replayed, event, &ctx).expect("the event applies");
        }
        assert_eq!(replayed, book);
    }
}
