//! The whole build script of a crate using anthill: compile `domains/*.sexp` into `$OUT_DIR/anthill/`.

fn main() -> Result<(), anthill_compiler::fs::BuildError> {
    anthill_compiler::fs::compile("domains")
}
