//! Reading the models embedded in Markdown documentation (```sexp blocks), for doc tests and codegen tests.

/// The complete examples of a Markdown text: every block fenced with exactly ```sexp (not ```sexp fragment),
/// with the 1-based line of its opening fence.
pub fn sexp_examples(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String, bool)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        match current.as_mut() {
            Some(_) if trimmed == "```" => {
                let (line_no, text, whole) = current.take().expect("inside a block");
                if whole {
                    out.push((line_no, text));
                }
            }
            Some((_, text, _)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    current = Some((index + 1, String::new(), info.trim() == "sexp"));
                }
            }
        }
    }
    out
}
