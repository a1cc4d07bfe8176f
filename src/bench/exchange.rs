//! The exchange workload (`docs/domains.md`, Exchange, Workload): one book (`ACME`) by default, or `--books N`
//! books with Zipf-skewed traffic (a few stocks trade most); every message in order per book: limit orders,
//! half buys and half sells, prices normally distributed around the mid price (a standard deviation of 3 ticks,
//! so that a good part of them cross and trade), quantities log-uniform from 1 to 1,000, from 1,000 traders;
//! and cancels. Every order gets a cancel 200 to 2,000 orders (of its book) after it was placed: at each message
//! after the first 200, the oldest uncancelled order is cancelled with probability 0.3, and always once it is
//! 2,000 orders old. That bounds the book's depth, and makes about half of the messages cancels, most of them
//! of orders already filled (`unknown-order`).
//! The check compares each book's `tape` view with the trades in its history.

use std::collections::VecDeque;

use anthill_runtime::engine::Engine;
use anthill_runtime::{Decimal, Domain};

use super::rng::{Rng, Zipf};
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
    books: Vec<Book>,
    /// Which book the next message is for.
    zipf: Zipf,
    orders: u64,
}

struct Book {
    id: StockId,
    /// Orders that a later message cancels, oldest first.
    to_cancel: VecDeque<(OrderId, TraderId)>,
}

impl ExchangeWorkload {
    /// `books` order books (at least one): `ACME` alone, or `S0001`, `S0002`... with `S0001` the busiest.
    pub fn new(seed: u64, books: u32) -> ExchangeWorkload {
        let books = books.max(1);
        let ids: Vec<StockId> = if books == 1 {
            vec![StockId("ACME".into())]
        } else {
            (1..=books).map(|b| StockId(format!("S{b:04}"))).collect()
        };
        let books = ids.into_iter().map(|id| Book { id, to_cancel: VecDeque::new() }).collect::<Vec<_>>();
        let zipf = Zipf::new(books.len(), 1.0);
        ExchangeWorkload { rng: Rng::new(seed), books, zipf, orders: 0 }
    }

    fn place(&mut self, book: usize) -> Step<Command> {
        self.orders += 1;
        let order = OrderId(format!("o-{}", self.orders));
        let trader = TraderId(format!("tr-{}", self.rng.below(TRADERS)));
        let side = if self.rng.chance(0.5) { Side::Buy } else { Side::Sell };
        let offset = (self.rng.normal() * PRICE_SD_TICKS).round() as i64;
        let price = Decimal::from_mantissa((MID_CENTS + offset).max(1));
        // Log-uniform 1 to 1,000.
        let qty = (1000f64.powf(self.rng.unit())).floor().max(1.0) as u64;
        let book = &mut self.books[book];
        book.to_cancel.push_back((order.clone(), trader.clone()));
        let command =
            order_book::Command::PlaceOrder(order_book::commands::PlaceOrder { order, trader, side, price, qty });
        Step::new("place-order", Command::OrderBook { id: book.id.clone(), command })
    }
}

impl Workload for ExchangeWorkload {
    type D = Exchange;

    fn setup(&mut self) -> Vec<Vec<Step<Command>>> {
        Vec::new()
    }

    fn next(&mut self) -> Step<Command> {
        let index = if self.books.len() == 1 { 0 } else { self.zipf.sample(&mut self.rng) };
        let waiting = self.books[index].to_cancel.len();
        if waiting > CANCEL_LAG_MAX || (waiting > CANCEL_LAG && self.rng.chance(0.3)) {
            let book = &mut self.books[index];
            if let Some((order, trader)) = book.to_cancel.pop_front() {
                let command = order_book::Command::CancelOrder(order_book::commands::CancelOrder { order, trader });
                return Step::new("cancel-order", Command::OrderBook { id: book.id.clone(), command });
            }
        }
        self.place(index)
    }

    fn check(&self, engine: &Engine<Exchange>, _tally: &Tally) -> Vec<Check> {
        // The `never-crossed` invariant is strict and checked on every command, and `verify` replays every
        // book. Here: each book's tape view agrees with the trades its history records.
        let (mut trades_in_logs, mut trades_on_tapes, mut volume, mut disagree) = (0u64, 0u64, 0u64, Vec::new());
        let mut last_tape = serde_json::Value::Null;
        for book in &self.books {
            let trades_in_log = match engine.events::<order_book::OrderBook>(&book.id) {
                Ok(events) => {
                    events.iter().filter(|r| anthill_runtime::EventName::name(&r.event) == "traded").count() as u64
                }
                Err(e) => return vec![Check::new("tape", false, format!("{}: {e}", book.id.0))],
            };
            let tape = Exchange::view_key("tape", &book.id.0)
                .and_then(Result::ok)
                .and_then(|key| engine.view_get("tape", &key).ok().flatten())
                .and_then(|bytes| Exchange::view_row_json("tape", &bytes))
                .and_then(Result::ok)
                .unwrap_or_default();
            let trades = json_u64(&tape, "trades");
            if trades != trades_in_log {
                disagree.push(format!("{}: {trades} on the tape, {trades_in_log} in the log", book.id.0));
            }
            trades_in_logs += trades_in_log;
            trades_on_tapes += trades;
            volume += json_u64(&tape, "volume");
            last_tape = tape;
        }
        let detail = if let [only] = self.books.as_slice() {
            format!(
                "{trades_on_tapes} trades on the tape of {}, {trades_in_logs} in the log, volume {volume}, last price \
                 {}, low {}, high {}",
                only.id.0, last_tape["last-price"], last_tape["low"], last_tape["high"]
            )
        } else {
            format!(
                "{} books: {trades_on_tapes} trades on the tapes, {trades_in_logs} in the logs, volume {volume}{}",
                self.books.len(),
                disagree.first().map(|d| format!("; first disagreement {d}")).unwrap_or_default()
            )
        };
        vec![Check::new("tape", disagree.is_empty(), detail)]
    }

    fn http(command: &Command) -> HttpCommand {
        match command {
            Command::OrderBook { id, command } => super::http_command::<order_book::OrderBook>(id, command),
        }
    }
}
