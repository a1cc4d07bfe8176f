//! Compile-time guarantees of generated code (`tests/ui/`, each with the compiler's expected error) and the
//! documented API compiling as shown (`tests/pass/`). `TRYBUILD=overwrite` refreshes the `.stderr` files.

#[test]
fn generated_code_guarantees() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/pass/*.rs");
}
