//! Keeps `docs/language.md` honest: every ```sexp example in the language reference is a whole domain
//! that must parse and check with no diagnostic at all (no error, no warning); ```sexp fragment blocks
//! are partial and are not checked on their own. Fragments that open with a `; domains/PATH.sexp`
//! comment are the files of the include example and are checked together, as a file tree. Also checks
//! that the table of diagnostic codes lists every code with its title.

use anthill_compiler::{compile, compile_str, render};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fence {
    /// ```sexp: a whole domain, checked.
    Sexp,
    /// ```sexp fragment: not checked on its own.
    Fragment,
    /// Any other language (sh, text).
    Other,
}

/// A fenced block of the document.
struct Block {
    fence: Fence,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (index, line) in doc.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        match current.as_mut() {
            Some(_) if trimmed == "```" => out.push(current.take().unwrap()),
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            None => {
                let Some(info) = trimmed.strip_prefix("```") else { continue };
                let fence = match info.trim() {
                    "sexp" => Fence::Sexp,
                    "sexp fragment" => Fence::Fragment,
                    other => {
                        assert!(
                            !other.starts_with("sexp"),
                            "docs/language.md line {line_no}: unknown fence ```{other}; use ```sexp or ```sexp fragment"
                        );
                        Fence::Other
                    }
                };
                current = Some(Block { fence, line: line_no, text: String::new() });
            }
        }
    }
    assert!(current.is_none(), "docs/language.md ends inside a fenced block");
    out
}

fn language_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_example_checks_clean() {
    let blocks = blocks(&language_doc());
    let examples: Vec<&Block> = blocks.iter().filter(|b| b.fence == Fence::Sexp).collect();
    assert!(
        examples.len() >= 20,
        "docs/language.md has {} checked ```sexp blocks; expected at least 20",
        examples.len()
    );
    let mut failures = Vec::new();
    for (n, block) in examples.iter().enumerate() {
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
        examples.len(),
        failures.join("\n")
    );
}

/// The include example is a set of fragments, each opening with `; domains/PATH.sexp`: the root files
/// (directly in `domains/`) are compiled with the others as their includes.
#[test]
fn include_example_checks_clean() {
    let mut tree: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for block in blocks(&language_doc()).into_iter().filter(|b| b.fence == Fence::Fragment) {
        let first = block.text.lines().next().unwrap_or_default();
        let Some(path) = first.strip_prefix("; ").and_then(|rest| rest.split(".sexp").next()) else { continue };
        if path.starts_with("domains/") && first.contains(".sexp") {
            tree.insert(format!("{path}.sexp"), (block.line, block.text));
        }
    }
    let roots: Vec<(String, String)> = tree
        .iter()
        .filter(|(path, _)| !path["domains/".len()..].contains('/'))
        .map(|(path, (_, text))| (path.clone(), text.clone()))
        .collect();
    assert!(
        !roots.is_empty() && tree.len() > roots.len(),
        "docs/language.md shows a domain root and the files it includes"
    );
    let c = compile(roots, &mut |path| {
        tree.get(path).map(|(_, text)| text.clone()).ok_or_else(|| "not in docs/language.md".to_string())
    });
    let lines: Vec<String> = tree.iter().map(|(path, (line, _))| format!("{path} (line {line})")).collect();
    assert!(
        c.diagnostics.is_empty(),
        "the include example in docs/language.md ({}) does not check clean:\n{}",
        lines.join(", "),
        render::to_string(&c.sources, &c.diagnostics)
    );
    assert_eq!(c.files_read.len(), tree.len(), "every file of the include example is read: {:?}", c.files_read);
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
