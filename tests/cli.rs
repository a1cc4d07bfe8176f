//! The `anthill` binary as a user runs it: `check` prints diagnostics and a summary and sets the exit code.

use std::path::Path;
use std::process::Command;

fn anthill(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anthill"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run anthill");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_bundled_domains_passes() {
    let (code, stdout, stderr) = anthill(&["check", "domains/"]);
    assert_eq!(code, 0, "{stderr}");
    let domains = std::fs::read_dir("domains")
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sexp"))
        .count();
    let plural = if domains == 1 { "" } else { "s" };
    assert_eq!(stdout, format!("checked {domains} domain{plural}: 0 errors, 0 warnings\n"));
}

#[test]
fn check_reports_errors_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("anthill-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.sexp");
    std::fs::write(&bad, "(domain bad\n  (id thing-id)\n  (aggregate thing (key thing-id) (state (n u23 0))))\n")
        .unwrap();
    let (code, stdout, stderr) = anthill(&["check", "--color", "never", bad.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1);
    assert_eq!(stdout, "checked 1 domain: 1 error, 0 warnings\n");
    assert!(stderr.contains("error[E0201]: unknown type `u23`"), "{stderr}");
    assert!(stderr.contains("bad.sexp:3:45"), "{stderr}");
    assert!(stderr.contains("help: did you mean `u32`?"), "{stderr}");
}

#[test]
fn check_missing_path_is_a_usage_error() {
    let (code, _, stderr) = anthill(&["check", "no/such/dir"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no/such/dir: no such file or directory"), "{stderr}");
}

#[test]
fn explain_prints_a_code() {
    let (code, stdout, _) = anthill(&["explain", "e0201"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("E0201 (error): unknown type"), "{stdout}");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/diagnostics.md").exists(),
        "explain refers to docs/diagnostics.md"
    );
}
