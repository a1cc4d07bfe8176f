//! Good models: the bundled domains, includes and Rust-keyword names check clean; include failures are
//! reported, never fatal.

use anthill_compiler::{compile, compile_str, lower, render};
use std::collections::HashMap;

fn assert_clean(c: &anthill_compiler::Compilation) {
    assert!(c.diagnostics.is_empty(), "expected no diagnostics:\n{}", render::to_string(&c.sources, &c.diagnostics));
}

#[test]
fn bundled_domains_check_clean() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../domains");
    let files = anthill_compiler::fs::model_files(&[dir.into()]).unwrap();
    assert!(!files.is_empty(), "domains/ holds at least one model");
    let c = anthill_compiler::fs::compile_files(&files).unwrap();
    assert_clean(&c);
    assert_eq!(c.domains.len(), files.len());
    let ledger = c.domains.iter().find(|d| d.name.dsl == "ledger").expect("the ledger domain");
    let account = &ledger.aggregates[0];
    assert_eq!(account.name.dsl, "account");
    let withdraw = account.commands.iter().find(|c| c.name.dsl == "withdraw").unwrap();
    let emits: Vec<&str> = withdraw.emits.iter().map(|e| account.events[e.0 as usize].name.dsl.as_str()).collect();
    assert_eq!(emits, ["withdrawn", "overdrawn"], "the relaxed policy's reaction is among what withdraw emits");
    let rejections: Vec<&str> =
        withdraw.rejections.iter().map(|r| account.rejections[r.0 as usize].name.dsl.as_str()).collect();
    assert_eq!(
        rejections,
        ["not-open", "non-positive-amount", "non-negative", "arithmetic-overflow", "division-by-zero"]
    );
    assert_eq!(ledger.processes.len(), 2, "transfer and disbursement");
    assert_eq!(ledger.views.len(), 2, "account-activity and disbursement-progress");
    assert!(ledger.scenarios.len() >= 8);
}

fn compile_tree(files: &[(&str, &str)]) -> anthill_compiler::Compilation {
    let tree: HashMap<String, String> = files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    let root = files[0];
    compile(vec![(root.0.to_string(), root.1.to_string())], &mut |path| {
        tree.get(path).cloned().ok_or_else(|| "No such file or directory".to_string())
    })
}

#[test]
fn includes_split_a_domain() {
    let c = compile_tree(&[
        ("domains/shop.sexp", "(domain shop (id item-id) (include \"shop/item.sexp\"))"),
        (
            "domains/shop/item.sexp",
            "(include \"types.sexp\")\n(aggregate item (key item-id) (state (stock qty 0)) (event added (n qty)) (command add (params (n qty)) (emit added n)) (on added (set stock (+ stock n))))",
        ),
        ("domains/shop/types.sexp", "(type qty u32)"),
    ]);
    assert_clean(&c);
    assert_eq!(c.files_read, ["domains/shop.sexp", "domains/shop/item.sexp", "domains/shop/types.sexp"]);
    assert_eq!(c.domains[0].files.len(), 3);
}

#[test]
fn include_cycles_and_missing_files_are_diagnostics() {
    let c = compile_tree(&[
        ("a.sexp", "(domain a (include \"b.sexp\") (include \"missing.sexp\"))"),
        ("b.sexp", "(include \"a.sexp\")"),
    ]);
    let text = render::to_string(&c.sources, &c.diagnostics);
    assert!(text.contains("error[E0212]: `a.sexp` includes itself (through a cycle)"), "{text}");
    assert!(text.contains("error[E0212]: cannot read `missing.sexp`: No such file or directory"), "{text}");
    assert_eq!(c.error_count(), 2, "{text}");
}

#[test]
fn rust_keywords_are_fine_names() {
    let c = compile_str(
        "kw.sexp",
        r#"(domain kw
  (id thing-id)
  (enum type match ref)
  (aggregate thing
    (key thing-id)
    (state (type type 'match) (ref u32 0))
    (event moved (match type) (ref u32))
    (command move (params (match type) (ref u32)) (emit moved match ref))
    (on moved (set type match) (set ref ref))))"#,
    );
    assert_clean(&c);
    assert_eq!(lower::snake("type"), "r#type");
    assert_eq!(lower::camel("match"), "Match");
    assert_eq!(lower::snake("self"), "self_");
}

#[test]
fn two_files_cannot_define_one_domain() {
    let c = compile(
        vec![("a.sexp".into(), "(domain shop)".into()), ("b.sexp".into(), "(domain shop)".into())],
        &mut |_| Err("no includes".into()),
    );
    let text = render::to_string(&c.sources, &c.diagnostics);
    assert!(text.contains("error[E0202]: domain `shop` is defined in two files"), "{text}");
}

#[test]
fn a_command_guard_carries_over_to_the_handler_of_its_event() {
    let model = |second_command: &str| {
        format!(
            r#"(domain shop
  (id item-id)
  (aggregate item
    (key item-id)
    (state (stock u32 0))
    (event taken (qty u32))
    (command take (params (qty u32)) (require (>= stock qty) short "not enough") (emit taken qty))
    {second_command}
    (on taken (set stock (- stock qty)))))"#
        )
    };
    assert_clean(&compile_str("guarded.sexp", &model("")));
    let also_guarded =
        model(r#"(command take-all (params (n u32)) (require (<= n stock) short "not enough") (emit taken (qty n)))"#);
    assert_clean(&compile_str("guarded.sexp", &also_guarded));
    let unguarded = compile_str("unguarded.sexp", &model("(command take-any (params (qty u32)) (emit taken qty))"));
    let codes: Vec<&str> = unguarded.diagnostics.iter().map(|d| d.code.id).collect();
    assert_eq!(codes, ["W0003"], "one emit site without the guard brings the warning back");
}
