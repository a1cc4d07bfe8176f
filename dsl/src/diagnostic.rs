//! Diagnostics shared by every stage: severity, a stable code, a message, spans and help.
//!
//! Stages only collect [`Diagnostic`] values; rendering happens at the edge (`anthill_compiler::render`).

use crate::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// A stable diagnostic code. Codes never change meaning once released; `anthill explain CODE` prints the title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
}

macro_rules! codes {
    ($($name:ident = $id:literal, $sev:ident, $title:literal;)*) => {
        $(pub const $name: Code = Code { id: $id, severity: Severity::$sev, title: $title };)*
        /// Every code the toolchain can emit, in code order.
        pub const ALL: &[Code] = &[$($name),*];
    };
}

/// The registry of diagnostic codes. `E00xx`: reading S-expressions; `E01xx`: the shape of forms;
/// `E02xx`: names; `E03xx`: types and rules; `W0xxx`: warnings.
pub mod codes {
    use super::{Code, Severity};
    codes! {
        UNCLOSED_LIST = "E0001", Error, "a list is never closed";
        UNEXPECTED_CLOSE = "E0002", Error, "unexpected closing parenthesis";
        UNTERMINATED_STRING = "E0003", Error, "unterminated string";
        INVALID_ESCAPE = "E0004", Error, "invalid escape in a string";
        INVALID_TOKEN = "E0005", Error, "invalid token";
        UNSUPPORTED_SYNTAX = "E0006", Error, "syntax the anthill language does not use";
        NESTING_TOO_DEEP = "E0007", Error, "nesting too deep";
        FILE_TOO_LARGE = "E0008", Error, "model file too large";
        TOO_MANY_ERRORS = "E0100", Error, "too many errors in one file";
        EXPECTED_DOMAIN = "E0101", Error, "a model file holds exactly one `(domain ...)` form";
        UNKNOWN_FORM = "E0102", Error, "unknown form";
        MALFORMED = "E0103", Error, "malformed form";
        INVALID_NAME = "E0104", Error, "invalid name";
        EXPECTED_STRING = "E0105", Error, "expected a string";
        DUPLICATE_CLAUSE = "E0106", Error, "clause given twice";
        MISSING_CLAUSE = "E0107", Error, "required clause missing";
        INVALID_NUMBER = "E0108", Error, "invalid number literal";
        UNKNOWN_TYPE = "E0201", Error, "unknown type";
        DUPLICATE_DEFINITION = "E0202", Error, "defined more than once";
        UNKNOWN_EVENT = "E0203", Error, "unknown event";
        UNKNOWN_COMMAND = "E0204", Error, "unknown command";
        UNKNOWN_AGGREGATE = "E0205", Error, "unknown aggregate";
        UNKNOWN_NAME = "E0206", Error, "unknown name";
        UNKNOWN_STATE_FIELD = "E0207", Error, "`set` of a state field that does not exist";
        UNKNOWN_REJECTION = "E0208", Error, "unknown rejection";
        UNKNOWN_INVARIANT = "E0209", Error, "unknown invariant";
        UNKNOWN_VARIANT = "E0210", Error, "unknown enum variant";
        UNKNOWN_OPERATOR = "E0211", Error, "unknown operator";
        INCLUDE_FAILED = "E0212", Error, "include failed";
        RESERVED_NAME = "E0213", Error, "reserved name";
        UNKNOWN_FIELD = "E0214", Error, "unknown field";
        RUST_NAME_CLASH = "E0215", Error, "two names map to the same Rust name";
        TYPE_MISMATCH = "E0301", Error, "mismatched types";
        WRONG_ARITY = "E0302", Error, "wrong number of arguments";
        MISSING_FIELD = "E0303", Error, "missing field";
        LITERAL_OUT_OF_RANGE = "E0304", Error, "literal out of range";
        UNSUPPORTED_OPERAND = "E0305", Error, "operator not defined for this type";
        RELAXED_NEEDS_BOUND = "E0306", Error, "a relaxed policy needs a bound invariant";
        NOT_ALLOWED_HERE = "E0307", Error, "not allowed here";
        AMBIGUOUS_ENUM = "E0308", Error, "cannot tell which enum a value belongs to";
        INVALID_KEY_TYPE = "E0309", Error, "type cannot be a key";
        MISSING_DEFAULT = "E0310", Error, "state field needs a default";
        AMBIGUOUS_COMMAND = "E0311", Error, "command name is ambiguous";
        EVENT_NEVER_EMITTED = "W0001", Warning, "event is never emitted";
        EVENT_NOT_HANDLED = "W0002", Warning, "event has no `on` handler";
        UNSIGNED_UNDERFLOW = "W0003", Warning, "unsigned subtraction may go below zero";
        UNUSED_BINDING = "W0004", Warning, "unused binding";
    }

    /// Looks a code up by its id (`"E0201"`), case-insensitively.
    pub fn find(id: &str) -> Option<Code> {
        ALL.iter().copied().find(|c| c.id.eq_ignore_ascii_case(id))
    }
}

/// A secondary location with its own short message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// Where the problem is; underlined in the rendered output.
    pub span: Span,
    /// Short text under the primary underline.
    pub label: String,
    pub secondary: Vec<Label>,
    /// What to do about it, when we know.
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity
    }

    pub fn is_error(&self) -> bool {
        self.code.severity == Severity::Error
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Diagnostic {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, message: message.into() });
        self
    }
}

/// Suggests the closest candidate to `name` ("did you mean"), if any is close enough.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max_distance = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= max_distance)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// Levenshtein distance, with an adjacent transposition counted as one edit.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev_prev: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(prev_prev[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut prev_prev, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("balance", "balance"), 0);
        assert_eq!(edit_distance("balnace", "balance"), 1);
        assert_eq!(edit_distance("deposit", "deposited"), 2);
        assert_eq!(did_you_mean("balnce", ["balance", "limit"]), Some("balance"));
        assert_eq!(did_you_mean("xyz", ["balance", "limit"]), None);
    }

    #[test]
    fn codes_are_unique_and_sorted() {
        for pair in codes::ALL.windows(2) {
            assert!(pair[0].id < pair[1].id || pair[0].id.starts_with('E') && pair[1].id.starts_with('W'));
        }
    }
}
