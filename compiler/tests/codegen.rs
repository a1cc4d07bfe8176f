//! Code generation: golden files for small models, determinism, the committed `generated/` being fresh,
//! and the build API (writes only what changed, refuses a broken model before writing anything).

use anthill_compiler::{compile_str, emit, fs, render};
use std::path::{Path, PathBuf};

/// Emits the Rust for `input` (a model named `name`) and compares it with `expected`, or rewrites it under
/// `UPDATE_EXPECT=1`. Returns a description of the mismatch, if any.
fn check(name: &str, input: &str, expected: &Path) -> Option<String> {
    let compilation = compile_str(name, input);
    assert!(
        compilation.diagnostics.is_empty(),
        "{name}: a golden model checks clean:\n{}",
        render::to_string(&compilation.sources, &compilation.diagnostics)
    );
    let actual = emit::emit_domain(&compilation.domains[0], &compilation.sources);
    let again = emit::emit_domain(&compile_str(name, input).domains[0], &compile_str(name, input).sources);
    assert_eq!(actual, again, "{name}: the same model emits byte-identical code");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        if std::fs::read_to_string(expected).ok().as_deref() != Some(actual.as_str()) {
            std::fs::write(expected, &actual).expect("write the golden file");
        }
        return None;
    }
    let wanted = std::fs::read_to_string(expected).unwrap_or_default();
    (wanted != actual).then(|| {
        let line = wanted.lines().zip(actual.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
        format!(
            "{}: differs from the emitted code (first at line {line}); rerun with UPDATE_EXPECT=1 to accept",
            expected.display()
        )
    })
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_models_emit_the_committed_rust() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sexp"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 3, "the golden suite has {} models", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let input = std::fs::read_to_string(case).expect("readable model");
            let name = format!("tests/golden/{}", case.file_name().unwrap().to_string_lossy());
            check(&name, &input, &case.with_extension("rs"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn generated_code_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = fs::model_files(&[root.join("domains")]).expect("domains/ is readable");
    // Compile with the same relative paths as build.rs, so the headers match.
    let roots: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let name = format!("domains/{}", f.file_name().unwrap().to_string_lossy());
            (name, std::fs::read_to_string(f).expect("readable model"))
        })
        .collect();
    let compilation = anthill_compiler::compile(roots, &mut |path| {
        std::fs::read_to_string(root.join(path)).map_err(|e| e.to_string())
    });
    assert_eq!(compilation.error_count(), 0, "the bundled domains check clean");
    let mut stale = Vec::new();
    for (file, text) in fs::generate(&compilation) {
        let path = root.join("generated").join(&file);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("generated/{file}"));
        }
    }
    assert!(stale.is_empty(), "stale generated code: {}; run `cargo build` to refresh it and commit", stale.join(", "));
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anthill-codegen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("models")).expect("temp dir");
    dir
}

#[test]
fn the_builder_writes_only_what_changed() {
    let dir = temp_dir("builder");
    let model = std::fs::read_to_string(golden_dir().join("counter.sexp")).unwrap();
    std::fs::write(dir.join("models/counter.sexp"), &model).unwrap();
    let out = dir.join("out");
    let first = fs::Builder::new(dir.join("models")).out_dir(&out).compile().expect("a clean model builds");
    assert_eq!(first.files.len(), 2, "counter.rs and mod.rs");
    assert_eq!(first.changed.len(), 2);
    let second = fs::Builder::new(dir.join("models")).out_dir(&out).compile().unwrap();
    assert!(second.changed.is_empty(), "nothing changed, nothing written: {:?}", second.changed);
    std::fs::write(dir.join("models/counter.sexp"), model.replace("(limit u32 10)", "(limit u32 12)")).unwrap();
    let third = fs::Builder::new(dir.join("models")).out_dir(&out).compile().unwrap();
    assert_eq!(third.changed, vec![out.join("counter.rs")]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_model_fails_the_build_with_rendered_diagnostics_and_writes_nothing() {
    let dir = temp_dir("broken");
    std::fs::write(dir.join("models/broken.sexp"), "(domain broken\n  (aggregate thing\n    (key strin)))\n").unwrap();
    let out = dir.join("out");
    let error =
        fs::Builder::new(dir.join("models")).out_dir(&out).compile().expect_err("a broken model fails").to_string();
    assert!(error.contains("error[E"), "rendered with a code: {error}");
    assert!(error.contains("broken.sexp:3:10"), "with file, line and column: {error}");
    assert!(error.contains("(key strin)"), "with the source line: {error}");
    assert!(!out.exists(), "nothing is written for a broken model");
    let _ = std::fs::remove_dir_all(&dir);
}
