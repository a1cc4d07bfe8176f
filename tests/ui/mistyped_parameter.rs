//! A parameter has the type the model declares: money is a decimal, not a float.
mod payments {
    include!("../../compiler/tests/golden/payments.rs");
}

impl payments::payment::Extern for payments::payment::Payment {
    fn authorize(
        _: &payments::payment::State,
        _: &payments::payment::commands::Authorize,
        _: &anthill_runtime::Context<'_, payments::payment::Id>,
    ) -> Result<Vec<payments::payment::Event>, payments::payment::Rejection> {
        Ok(Vec::new())
    }
}

fn main() {
    let _ = payments::payment::commands::Authorize { amount: 25.5, card_token: "tok".into() };
}
