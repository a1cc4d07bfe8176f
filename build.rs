//! Compiles the domain models in `domains/` into `generated/` (committed, so the emitted code is reviewable).

fn main() {
    if let Err(rendered) = anthill_compiler::fs::Builder::new("domains").out_dir("generated").compile() {
        eprintln!("{rendered}");
        std::process::exit(1);
    }
}
