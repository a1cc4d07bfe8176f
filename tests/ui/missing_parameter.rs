//! A command cannot be built without one of its parameters.
use anthill::ledger::account::commands;

fn main() {
    let _ = commands::Withdraw {};
}
