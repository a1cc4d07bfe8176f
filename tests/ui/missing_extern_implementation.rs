//! A domain with an extern command does not compile until its Rust side is written.
mod payments {
    include!("../../compiler/tests/golden/payments.rs");
}

fn main() {
    let _ = payments::payment::Payment;
}
