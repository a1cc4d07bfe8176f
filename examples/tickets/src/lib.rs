//! Ticket sales, modelled in `domains/tickets.sexp` and compiled by `build.rs`: the pattern for any crate
//! that uses anthill. The model's one extern command, `buy`, is priced here in Rust.

include!(concat!(env!("OUT_DIR"), "/anthill/mod.rs"));

use anthill_runtime::Decimal;
use tickets::concert;

/// The price of one seat: 45.00, or 60.00 once three quarters of the hall is sold.
pub fn seat_price(state: &concert::State) -> Decimal<2> {
    let three_quarters = u64::from(state.capacity()) * 3 / 4;
    if u64::from(state.sold()) >= three_quarters {
        Decimal::from_mantissa(60_00)
    } else {
        Decimal::from_mantissa(45_00)
    }
}

impl concert::Extern for concert::Concert {
    fn buy(
        state: &concert::State,
        command: &concert::commands::Buy,
        _ctx: &anthill_runtime::Context<'_, concert::Id>,
    ) -> Result<Vec<concert::Event>, concert::Rejection> {
        // The model's `require`s have run: the concert is on sale and the order has seats. The invariant
        // `not-oversold` is checked on the result, so this function need not count seats itself.
        let price = seat_price(state).mul_int(command.seats).map_err(concert::Rejection::from)?;
        Ok(vec![concert::Event::Sold(concert::events::Sold {
            order: command.order.clone(),
            seats: command.seats,
            price,
        })])
    }
}
