//! A command cannot be built without one of its parameters.
mod counter {
    include!("../../compiler/tests/golden/counter.rs");
}

fn main() {
    let _ = counter::counter::commands::Increment {};
}
