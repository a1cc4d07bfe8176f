//! A parameter has the type the model declares: money is a decimal, not a float or an integer.
use anthill::ledger::account::commands;

fn main() {
    let _ = commands::Deposit { amount: 25.5 };
}
