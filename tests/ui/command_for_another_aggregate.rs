//! A command of one aggregate cannot be decided by another.
use anthill_runtime::{Aggregate, Context, Timestamp};

mod stock {
    include!("../../compiler/tests/golden/stock.rs");
}

fn main() {
    let id = stock::Sku::from("sku-1");
    let ctx = Context { id: &id, version: 0, now: Timestamp::EPOCH, occurred_at: Timestamp::EPOCH };
    let add_line = stock::order::Command::AddLine(stock::order::commands::AddLine { item: id.clone(), qty: 1 });
    let _ = stock::item::Item::decide(&stock::item::State::default(), &add_line, &ctx);
}
