//! The ledger's generated API as the README shows it: build commands, decide, apply, read state, match
//! every rejection, and go through JSON.
use anthill::ledger::{self, account};
use anthill_runtime::{Aggregate, Context, Decimal, Rejection as _, Timestamp};

fn http_status(rejection: account::Rejection) -> u16 {
    // Rejections carry stable codes; an exhaustive `match` on `account::Rejection` works too (and breaks the
    // build when the model adds one, which is what `tests/ui/non_exhaustive_rejection_match.rs` shows).
    match rejection.code() {
        "arithmetic-overflow" | "division-by-zero" => 422,
        _ => 409,
    }
}

fn main() {
    let id = ledger::AccountId::from("acc-1");
    let now = Timestamp::from_micros(1_700_000_000_000_000);
    let mut state = account::State::default();
    let mut version = 0;
    let commands = [
        account::Command::Open(account::commands::Open { owner: "ann".into(), overdraft_limit: Decimal::ZERO }),
        account::commands::Deposit { amount: Decimal::from_mantissa(2550) }.into(),
        account::Command::Withdraw(account::commands::Withdraw { amount: Decimal::from_mantissa(50_00) }),
    ];
    for command in &commands {
        let ctx = Context { id: &id, version, now, occurred_at: now };
        match account::Account::execute(&mut state, command, &ctx) {
            Ok(events) => version += events.len() as u64,
            Err(rejection) => {
                assert_eq!(rejection.code(), "non-negative");
                assert_eq!(http_status(rejection), 409);
            }
        }
    }
    assert_eq!(state.balance(), Decimal::from_mantissa(2550));
    assert_eq!(state.owner(), "ann");
    assert_eq!(state.status(), ledger::AccountStatus::Open);
    let command = account::Account::command_from_json("deposit", br#"{"amount": "1.25"}"#).unwrap();
    assert_eq!(command, account::commands::Deposit { amount: Decimal::from_mantissa(125) }.into());
    let meta = account::Account::meta();
    assert!(meta.command("withdraw").unwrap().rejections.contains(&"non-negative"));
}
