//! Only the aggregate's events change its state: its fields are read through methods.
mod counter {
    include!("../../compiler/tests/golden/counter.rs");
}

fn main() {
    let mut state = counter::counter::State::default();
    state.value = 1_000;
}
