//! Compiles the domain models in `domains/` into `generated/` (committed, so the emitted code is reviewable).

fn main() -> Result<(), anthill_compiler::fs::BuildError> {
    anthill_compiler::fs::Builder::new("domains").out_dir("generated").compile().map(|_| ())
}
