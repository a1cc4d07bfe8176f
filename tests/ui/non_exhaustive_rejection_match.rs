//! Code that handles every rejection must name each one: a rejection added to the model breaks the build
//! here, instead of falling into a silent default.
use anthill::ledger::account::Rejection;

fn status(rejection: Rejection) -> u16 {
    match rejection {
        Rejection::ArithmeticOverflow | Rejection::DivisionByZero => 500,
        Rejection::AlreadyOpen | Rejection::AlreadyClosed => 409,
        Rejection::NegativeLimit | Rejection::NonPositiveAmount | Rejection::SameAccount => 422,
        Rejection::NotOpen | Rejection::NotFrozen | Rejection::BalanceNotZero => 409,
    }
}

fn main() {
    let _ = status(Rejection::NotOpen);
}
