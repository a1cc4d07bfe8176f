//! The exchange workload (`docs/domains.md`, Exchange, Workload): one book (`ACME`), every message in
//! order: limit orders, half buys and half sells, prices normally distributed around the mid price (a
//! standard deviation of 3 ticks, so that a good part of them cross and trade), quantities log-uniform from
//! 1 to 1,000, from 1,000 traders; and cancels at about 30% of messages, of the oldest orders placed (those
//! already filled are rejected with `unknown-order`). An order is cancelled at the latest 2,000 orders
//! later, which bounds the book's depth: every command is decided on a copy of the book.
//! The check compares the `tape` view with the trades in the book's history.

use std::collections::VecDeque;

use anthill_runtime::engine::Engine;
use anthill_runtime::{Decimal, Domain};

use super::rng::Rng;
use super::{json_u64, Check, HttpCommand, Step, Tally, Workload};
use crate::exchange::{order_book, Command, Exchange, OrderId, Side, StockId, TraderId};

/// The mid price in cents, and the spread of prices around it in ticks (cents).
const MID_CENTS: i64 = 10_000;
const PRICE_SD_TICKS: f64 = 3.0;
const TRADERS: u64 = 1_000;
/// Orders placed before the first cancel: cancels take orders that had time to rest or trade.
const CANCEL_LAG: usize = 200;
/// Orders still open this many orders later are cancelled for sure: keeps the book's depth bounded.
const CANCEL_LAG_MAX: usize = 2_000;

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
        let offset = (self.rng.normal() * PRICE_SD_TICKS).round() as i64;
        let price = Decimal::from_mantissa((MID_CENTS + offset).max(1));
        // Log-uniform 1 to 1,000.
        let qty = (1000f64.powf(self.rng.unit())).floor().max(1.0) as u64;
        self.to_cancel.push_back((order.clone(), trader.clone()));
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
        if self.to_cancel.len() > CANCEL_LAG_MAX || (self.to_cancel.len() > CANCEL_LAG && self.rng.chance(0.3)) {
            if let Some((order, trader)) = self.to_cancel.pop_front() {
                let command = order_book::Command::CancelOrder(order_book::commands::CancelOrder { order, trader });
                return Step::new("cancel-order", Command::OrderBook { id: self.book.clone(), command });
            }
        }
        self.place()
    }

    fn check(&self, engine: &Engine<Exchange>, _tally: &Tally) -> Vec<Check> {
        // The book's own state has maps keyed by records (price and arrival), which have no JSON form; the
        // strict `never-crossed` invariant is checked on every command, and `verify` replays the book. Here:
        // the tape view agrees with the trades the book recorded.
        let trades_in_log = match engine.events::<order_book::OrderBook>(&self.book) {
            Ok(events) => {
                events.iter().filter(|r| anthill_runtime::EventName::name(&r.event) == "traded").count() as u64
            }
            Err(e) => return vec![Check::new("tape", false, e.to_string())],
        };
        let tape = Exchange::view_key("tape", &self.book.0)
            .and_then(Result::ok)
            .and_then(|key| engine.view_get("tape", &key).ok().flatten())
            .and_then(|bytes| Exchange::view_row_json("tape", &bytes))
            .and_then(Result::ok)
            .unwrap_or_default();
        let trades = json_u64(&tape, "trades");
        vec![Check::new(
            "tape",
            trades == trades_in_log,
            format!(
                "{trades} trades on the tape, {trades_in_log} in the log, volume {}, last price {}, low {}, high {}",
                json_u64(&tape, "volume"),
                tape["last-price"],
                tape["low"],
                tape["high"]
            ),
        )]
    }

    fn http(command: &Command) -> HttpCommand {
        match command {
            Command::OrderBook { id, command } => super::http_command::<order_book::OrderBook>(id, command),
        }
    }
}
