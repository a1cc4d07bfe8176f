//! Writes every ```sexp example of `docs/language.md` to a model file and compiles them all, so that each
//! language feature the reference shows also goes through code generation and rustc; and the two versions of
//! the domain in `models/` that the upcaster test migrates between.

use std::path::PathBuf;

fn main() -> Result<(), anthill_compiler::fs::BuildError> {
    let doc_path =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../../docs/language.md");
    println!("cargo:rerun-if-changed={}", doc_path.display());
    let doc = std::fs::read_to_string(&doc_path).expect("docs/language.md is readable");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let models = out.join("models");
    let _ = std::fs::remove_dir_all(&models);
    std::fs::create_dir_all(&models).expect("OUT_DIR is writable");
    for (line, text) in anthill_compiler::docs::sexp_examples(&doc) {
        std::fs::write(models.join(format!("language-{line:04}.sexp")), text).expect("OUT_DIR is writable");
    }
    anthill_compiler::fs::Builder::new(&models).out_dir(out.join("anthill")).compile()?;
    // Two versions of one domain, for the upcaster test: each into its own directory (same domain name).
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for version in ["evolve-v1", "evolve-v2"] {
        let dir = manifest.join("models").join(version);
        println!("cargo:rerun-if-changed={}", dir.display());
        anthill_compiler::fs::Builder::new(&dir).out_dir(out.join(version)).compile()?;
    }
    Ok(())
}
