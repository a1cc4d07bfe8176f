//! Only the aggregate's events change its state: its fields are read through methods.
use anthill::ledger::account::State;

fn main() {
    let mut state = State::default();
    state.balance = anthill_runtime::Decimal::from_mantissa(1_000_000);
}
