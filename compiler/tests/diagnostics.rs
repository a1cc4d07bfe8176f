//! The diagnostics suite: every `tests/diagnostics/*.sexp` is a bad model whose rendered diagnostics are
//! committed beside it as `*.stderr`. Run with `UPDATE_EXPECT=1` to rewrite the expectations.

use anthill_compiler::{compile_str, render};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Renders what the compiler says about `input` (named `name`), as `anthill check` prints it, plus the
/// summary line.
fn diagnose(name: &str, input: &str) -> String {
    let compilation = compile_str(name, input);
    let mut out = render::to_string(&compilation.sources, &compilation.diagnostics);
    out.push_str(&format!("{} errors, {} warnings\n", compilation.error_count(), compilation.warning_count()));
    out
}

/// Compares the diagnostics for `input` with the `expected` file, or rewrites it under `UPDATE_EXPECT=1`.
/// Returns a description of the mismatch, if any.
fn check(name: &str, input: &str, expected: &Path) -> Option<String> {
    let actual = diagnose(name, input);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let old = std::fs::read_to_string(expected).unwrap_or_default();
        if old != actual {
            std::fs::write(expected, &actual).expect("write expectation");
        }
        return None;
    }
    let wanted = std::fs::read_to_string(expected).unwrap_or_default();
    (wanted != actual).then(|| format!("--- {}\n=== expected:\n{wanted}\n=== actual:\n{actual}", expected.display()))
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/diagnostics exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sexp"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn diagnostics_match_expectations() {
    let cases = cases();
    assert!(cases.len() >= 60, "the suite has {} cases; it should have at least 60", cases.len());
    let mut failures = Vec::new();
    let mut codes_seen = BTreeSet::new();
    for case in &cases {
        let input = std::fs::read_to_string(case).expect("readable case");
        let name = format!("{}", case.file_name().unwrap().to_string_lossy());
        let compilation = compile_str(&name, &input);
        assert!(!compilation.diagnostics.is_empty(), "{name}: a case in the diagnostics suite must produce a diagnostic");
        codes_seen.extend(compilation.diagnostics.iter().map(|d| d.code.id));
        if let Some(failure) = check(&name, &input, &case.with_extension("stderr")) {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ (rerun with UPDATE_EXPECT=1 to accept):\n{}", failures.len(), cases.len(), failures.join("\n"));
    let missing: Vec<&str> =
        anthill_dsl::codes::ALL.iter().map(|c| c.id).filter(|id| !codes_seen.contains(id)).collect();
    assert!(missing.is_empty(), "no case in tests/diagnostics produces {missing:?}");
}

#[test]
fn expectations_have_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "stderr") {
            assert!(path.with_extension("sexp").exists(), "{} has no .sexp case; delete it", path.display());
        }
    }
}
