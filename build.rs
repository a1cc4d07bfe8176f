//! Checks the domain models in `domains/` on every build; code generation joins in the next issue.

fn main() {
    if let Err(rendered) = anthill_compiler::fs::build("domains") {
        eprintln!("{rendered}");
        std::process::exit(1);
    }
}
