//! Code that handles every rejection must name each one: a rejection added to the model breaks the build
//! here, instead of falling into a silent default. (`in-stock` stands for the one added last.)
mod stock {
    include!("../../compiler/tests/golden/stock.rs");
}

use stock::item::Rejection;

fn status(rejection: Rejection) -> u16 {
    match rejection {
        Rejection::ArithmeticOverflow | Rejection::DivisionByZero => 422,
        Rejection::NonPositive => 422,
    }
}

fn main() {
    let _ = status(Rejection::NonPositive);
}
