//! Every complete example of `docs/language.md`, compiled to Rust; their scenarios run as tests.
//!
//! The extern command of the `payments` example is implemented here, as a domain author would.

#![deny(warnings)]

include!(concat!(env!("OUT_DIR"), "/anthill/mod.rs"));

use payments::payment;

/// A stand-in card processor: declines cards whose token starts with `bad-`.
impl payment::Extern for payment::Payment {
    fn authorize(
        _state: &payment::State,
        command: &payment::commands::Authorize,
        _ctx: &anthill_runtime::Context<'_, payment::Id>,
    ) -> Result<Vec<payment::Event>, payment::Rejection> {
        if command.card_token.starts_with("bad-") {
            return Ok(vec![payment::Event::Declined(payment::events::Declined { reason: "card declined".into() })]);
        }
        if command.card_token.is_empty() {
            return Err(payment::Rejection::ProcessorUnavailable);
        }
        Ok(vec![payment::Event::Authorized(payment::events::Authorized {
            amount: command.amount,
            reference: format!("ref-{}", command.card_token),
        })])
    }
}

/// Two versions of one domain (`models/evolve-v1`, `models/evolve-v2`): a store written by the first opens
/// under the second with the upcasters of `tests/upcast.rs`.
pub mod evolve {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/evolve-v1/mod.rs"));
    }
    pub mod v2 {
        include!(concat!(env!("OUT_DIR"), "/evolve-v2/mod.rs"));
    }
}

/// The compiler's golden files (`compiler/tests/golden/*.rs`), compiled exactly as committed.
pub mod golden {
    pub mod counter {
        include!("../../../compiler/tests/golden/counter.rs");
    }
    pub mod payments {
        include!("../../../compiler/tests/golden/payments.rs");
    }
    pub mod stock {
        include!("../../../compiler/tests/golden/stock.rs");
    }

    use payments::payment;

    /// The golden payment's extern command: authorizes every card but those with an empty token.
    impl payment::Extern for payment::Payment {
        fn authorize(
            _state: &payment::State,
            command: &payment::commands::Authorize,
            _ctx: &anthill_runtime::Context<'_, payment::Id>,
        ) -> Result<Vec<payment::Event>, payment::Rejection> {
            if command.card_token.is_empty() {
                return Err(payment::Rejection::ProcessorUnavailable);
            }
            Ok(vec![payment::Event::Authorized(payment::events::Authorized {
                amount: command.amount,
                reference: command.card_token.clone(),
            })])
        }
    }
}
