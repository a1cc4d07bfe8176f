//! Keeps `docs/language.md` honest: every ```sexp example in the language reference is a whole domain
//! that must parse and check with no diagnostic at all (no error, no warning); ```sexp fragment blocks
//! are partial and are not checked. Also checks that the diagnostic code table lists every code.

use anthill_compiler::{compile_str, render};
use std::path::Path;

/// An example block of the document: where its opening fence is and its text.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
}

/// The ```sexp blocks of `doc` (checked), and how many ```sexp fragment blocks were skipped.
fn sexp_blocks(doc: &str) -> (Vec<Block>, usize) {
    let mut blocks = Vec::new();
    let mut fragments = 0;
    let mut current: Option<(Block, bool)> = None;
    for (index, line) in doc.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim_end();
        match &mut current {
            Some((block, checked)) => {
                if trimmed.trim_start() == "```" {
                    let (block, checked) = current.take().unwrap();
                    if checked {
                        blocks.push(block);
                    }
                } else if *checked {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
            None => {
                let Some(info) = trimmed.trim_start().strip_prefix("```") else { continue };
                let checked = match info.trim() {
                    "sexp" => true,
                    "sexp fragment" => {
                        fragments += 1;
                        false
                    }
                    other => {
                        assert!(
                            !other.starts_with("sexp"),
                            "docs/language.md line {line_no}: unknown fence ```{other}; use ```sexp or ```sexp fragment"
                        );
                        false
                    }
                };
                current = Some((Block { line: line_no, text: String::new() }, checked));
            }
        }
    }
    assert!(current.is_none(), "docs/language.md ends inside a fenced block");
    (blocks, fragments)
}

fn language_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_example_checks_clean() {
    let doc = language_doc();
    let (blocks, fragments) = sexp_blocks(&doc);
    assert!(
        blocks.len() >= 20,
        "docs/language.md has {} checked ```sexp blocks ({fragments} fragments); expected at least 20",
        blocks.len()
    );
    let mut failures = Vec::new();
    for (n, block) in blocks.iter().enumerate() {
        let name = format!("docs/language.md block {} (line {})", n + 1, block.line);
        let c = compile_str(&name, &block.text);
        if !c.diagnostics.is_empty() {
            failures.push(format!(
                "--- {name}: {} errors, {} warnings\n{}",
                c.error_count(),
                c.warning_count(),
                render::to_string(&c.sources, &c.diagnostics)
            ));
        } else {
            assert_eq!(c.domains.len(), 1, "{name}: a clean block yields one checked domain");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples in docs/language.md do not check clean:\n{}",
        failures.len(),
        blocks.len(),
        failures.join("\n")
    );
}

#[test]
fn every_diagnostic_code_is_listed() {
    let doc = language_doc();
    let missing: Vec<String> = anthill_dsl::codes::ALL
        .iter()
        .filter(|code| !doc.lines().any(|l| l.starts_with('|') && l.contains(code.id) && l.contains(code.title)))
        .map(|code| format!("{} {}", code.id, code.title))
        .collect();
    assert!(missing.is_empty(), "the code table of docs/language.md lacks (or mistitles) {missing:?}");
}
