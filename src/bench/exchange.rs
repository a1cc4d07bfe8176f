//! The exchange workload (`docs/domains.md`, Exchange, Workload): one book (`ACME`), every message in
//! order: limit orders, half buys and half sells, prices normally distributed a few ticks around the mid
//! price (buys a little below it, sells a little above, so that a good part of them cross and trade),
//! quantities log-uniform from 1 to 1,000, from 1,000 traders; and cancels at about 30% of messages, of
//! orders placed a while before (the oldest first; those already filled are rejected with `unknown-order`).
//! The check reads the final book: the best bid is below the best ask.

use std::collections::VecDeque;

use anthill_runtime::engine::Engine;
use anthill_runtime::{Aggregate, Decimal};

use super::rng::Rng;
use super::{Check, HttpCommand, Step, Tally, Workload};
use crate::exchange::{order_book, Command, Exchange, OrderId, Side, StockId, TraderId};

/// The mid price in cents, and the spread of prices around it in ticks (cents).
const MID_CENTS: i64 = 10_000;
const PRICE_SD_TICKS: f64 = 4.0;
const TRADERS: u64 = 1_000;
/// Orders placed before the first cancel: cancels take orders that had time to rest or trade.
const CANCEL_LAG: usize = 1_000;

pub struct ExchangeWorkload {
    rng: Rng,
    book: StockId,
    orders: u64,
    /// Orders that a later message cancels, oldest first.
    to_cancel: VecDeque<(OrderId, TraderId)>,
}

impl ExchangeWorkload {
    pub fn new(seed: u64) -> ExchangeWorkload {
        ExchangeWorkload { rng: Rng::new(seed), book: StockId("ACME".into()), orders: 0, to_cancel: VecDeque::new() }
    }

    fn place(&mut self) -> Step<Command> {
        self.orders += 1;
        let order = OrderId(format!("o-{}", self.orders));
        let trader = TraderId(format!("tr-{}", self.rng.below(TRADERS)));
        let side = if self.rng.chance(0.5) { Side::Buy } else { Side::Sell };
        let lean = match side {
            Side::Buy => -2,
            Side::Sell => 2,
        };
        let offset = (self.rng.normal() * PRICE_SD_TICKS).round() as i64;
        let price = Decimal::from_mantissa((MID_CENTS + lean + offset).max(1));
        // Log-uniform 1 to 1,000.
        let qty = (1000f64.powf(self.rng.unit())).floor().max(1.0) as u64;
        // Three in seven placed orders are cancelled later: cancels are then about 30% of messages.
        if self.rng.chance(3.0 / 7.0) {
            self.to_cancel.push_back((order.clone(), trader.clone()));
        }
        let command =
            order_book::Command::PlaceOrder(order_book::commands::PlaceOrder { order, trader, side, price, qty });
        Step::new("place-order", Command::OrderBook { id: self.book.clone(), command })
    }
}

impl Workload for ExchangeWorkload {
    type D = Exchange;

    fn setup(&mut self) -> Vec<Vec<Step<Command>>> {
        Vec::new()
    }

    fn next(&mut self) -> Step<Command> {
        if self.to_cancel.len() > CANCEL_LAG && self.rng.chance(0.3) {
            if let Some((order, trader)) = self.to_cancel.pop_front() {
                let command = order_book::Command::CancelOrder(order_book::commands::CancelOrder { order, trader });
                return Step::new("cancel-order", Command::OrderBook { id: self.book.clone(), command });
            }
        }
        self.place()
    }

    fn check(&self, engine: &Engine<Exchange>, _tally: &Tally) -> Vec<Check> {
        let state = match engine.state::<order_book::OrderBook>(&self.book) {
            Ok(Some(snapshot)) => order_book::OrderBook::state_to_json(&snapshot.state),
            Ok(None) => return vec![Check::new("book", false, "the book has no events")],
            Err(e) => return vec![Check::new("book", false, e.to_string())],
        };
        let resting: Vec<&serde_json::Value> = match &state["orders"] {
            serde_json::Value::Object(orders) => orders.values().collect(),
            serde_json::Value::Array(pairs) => pairs.iter().map(|pair| &pair[1]).collect(),
            _ => Vec::new(),
        };
        let price = |o: &serde_json::Value| o["price"].as_str().and_then(|p| Decimal::<2>::parse(p).ok());
        let best_bid = resting.iter().filter(|o| o["side"] == "buy").filter_map(|o| price(o)).max();
        let best_ask = resting.iter().filter(|o| o["side"] == "sell").filter_map(|o| price(o)).min();
        let crossed = matches!((best_bid, best_ask), (Some(bid), Some(ask)) if bid >= ask);
        let show = |p: Option<Decimal<2>>| p.map_or("none".to_owned(), |p| p.to_string());
        vec![Check::new(
            "book never crossed",
            !crossed,
            format!("{} resting orders, best bid {}, best ask {}", resting.len(), show(best_bid), show(best_ask)),
        )]
    }

    fn http(command: &Command) -> HttpCommand {
        match command {
            Command::OrderBook { id, command } => super::http_command::<order_book::OrderBook>(id, command),
        }
    }
}
