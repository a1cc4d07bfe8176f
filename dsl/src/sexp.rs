//! Reads source text into spanned S-expressions with lexpr's `Datum` API.
//!
//! This is the only module that knows lexpr. Everything lexpr can read but the language does not use
//! (vectors, characters, dotted pairs, keywords, quasi-quotes) becomes a diagnostic here.

use crate::diagnostic::{codes, Diagnostic};
use crate::span::{FileId, SourceFile, Span};

/// A spanned S-expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Sexp {
    pub kind: SexpKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SexpKind {
    List(Vec<Sexp>),
    Symbol(String),
    Str(String),
    /// A number, kept as its source text so that decimals stay exact.
    Number(String),
    Bool(bool),
    /// `'x`: a quoted datum.
    Quote(Box<Sexp>),
}

impl Sexp {
    pub fn as_symbol(&self) -> Option<&str> {
        match &self.kind {
            SexpKind::Symbol(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Sexp]> {
        match &self.kind {
            SexpKind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The head symbol of a list form, e.g. `domain` in `(domain ledger ...)`.
    pub fn head(&self) -> Option<&str> {
        self.as_list()?.first()?.as_symbol()
    }

    /// A short description for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            SexpKind::List(items) if items.is_empty() => "an empty list",
            SexpKind::List(_) => "a list",
            SexpKind::Symbol(_) => "a name",
            SexpKind::Str(_) => "a string",
            SexpKind::Number(_) => "a number",
            SexpKind::Bool(_) => "a boolean",
            SexpKind::Quote(_) => "a quoted value",
        }
    }
}

/// Reads all top-level S-expressions of a file. On a syntax error, returns what was read before it and
/// the diagnostic; lexpr cannot resume after an error.
pub fn read(file: FileId, source: &SourceFile) -> (Vec<Sexp>, Option<Diagnostic>) {
    if source.text.len() > SOURCE_BYTES_MAX {
        let end = source.text.char_indices().nth(1).map_or(source.text.len(), |(i, _)| i) as u32;
        let diagnostic = Diagnostic::new(
            codes::FILE_TOO_LARGE,
            Span::new(file, 0, end),
            format!(
                "this file has {} bytes; a model file holds at most {SOURCE_BYTES_MAX} bytes ({} KiB)",
                source.text.len(),
                SOURCE_BYTES_MAX / 1024
            ),
        )
        .label("file too large")
        .help("split the domain into several files with `(include \"part.sexp\")`");
        return (Vec::new(), Some(diagnostic));
    }
    let options = lexpr::parse::Options::new()
        .with_string_syntax(lexpr::parse::StringSyntax::R6RS)
        .with_brackets(lexpr::parse::Brackets::List);
    let mut parser = lexpr::Parser::from_str_custom(&source.text, options);
    let reader = Reader { file, source };
    let mut forms = Vec::new();
    loop {
        match parser.next_datum() {
            Ok(Some(datum)) => match reader.convert(datum.as_ref(), 0) {
                Ok(sexp) => forms.push(sexp),
                Err(diagnostic) => return (forms, Some(*diagnostic)),
            },
            Ok(None) => return (forms, None),
            Err(error) => return (forms, Some(reader.syntax_error(&error))),
        }
    }
}

struct Reader<'a> {
    file: FileId,
    source: &'a SourceFile,
}

/// The largest model file read. lexpr recomputes positions from the start of the text for every datum,
/// so reading time grows with the square of the size (about 3 s for 170 KiB); the bound keeps a check
/// fast and a hostile file harmless. Large domains split with `(include ...)`.
pub const SOURCE_BYTES_MAX: usize = 128 * 1024;

/// Deeper nesting than any model needs; lexpr itself stops at 128.
const NESTING_DEPTH_MAX: usize = 100;

impl Reader<'_> {
    fn span(&self, span: lexpr::datum::Span) -> Span {
        let start = self.source.offset_of(span.start().line(), span.start().column());
        let end = self.source.offset_of(span.end().line(), span.end().column());
        Span::new(self.file, start, end.max(start))
    }

    fn convert(&self, datum: lexpr::datum::Ref<'_>, depth: usize) -> Result<Sexp, Box<Diagnostic>> {
        let span = self.span(datum.span());
        if depth > NESTING_DEPTH_MAX {
            return Err(Box::new(
                Diagnostic::new(codes::NESTING_TOO_DEEP, span, "nesting too deep")
                    .label("this form nests more than 100 levels")
                    .help("split the expression with `let` bindings"),
            ));
        }
        let unsupported = |what: &str, help: &str| {
            Err(Box::new(
                Diagnostic::new(
                    codes::UNSUPPORTED_SYNTAX,
                    span,
                    format!("{what} are not part of the anthill language"),
                )
                .label("not supported")
                .help(help.to_string()),
            ))
        };
        let value = datum.value();
        let kind = match value {
            lexpr::Value::Null => SexpKind::List(Vec::new()),
            lexpr::Value::Cons(_) => {
                let Some(iter) = datum.list_iter() else {
                    return unsupported("dotted pairs", "write a proper list: `(a b c)`");
                };
                if !value.is_list() {
                    return unsupported("dotted pairs", "write a proper list: `(a b c)`");
                }
                let mut items = Vec::new();
                for item in iter {
                    items.push(self.convert(item, depth + 1)?);
                }
                if let [head, quoted] = items.as_slice() {
                    match head.as_symbol() {
                        Some("quote") => {
                            return Ok(Sexp { kind: SexpKind::Quote(Box::new(quoted.clone())), span });
                        }
                        Some("quasiquote" | "unquote" | "unquote-splicing")
                            if self.source.slice(span).starts_with(['`', ',']) =>
                        {
                            return unsupported("quasi-quotes", "use a plain list or a quoted name: `'name`");
                        }
                        _ => {}
                    }
                }
                SexpKind::List(items)
            }
            lexpr::Value::Symbol(name) => SexpKind::Symbol(name.to_string()),
            lexpr::Value::String(text) => SexpKind::Str(text.to_string()),
            lexpr::Value::Bool(b) => SexpKind::Bool(*b),
            lexpr::Value::Number(_) => SexpKind::Number(self.source.slice(span).trim().to_string()),
            lexpr::Value::Char(_) => return unsupported("characters", "use a string: \"a\""),
            lexpr::Value::Keyword(_) => return unsupported("keywords", "use a plain name, without `#:` or `:`"),
            lexpr::Value::Bytes(_) => return unsupported("byte vectors", "use a string"),
            lexpr::Value::Vector(_) => return unsupported("vectors", "use a list: `(a b c)`"),
            lexpr::Value::Nil => SexpKind::Symbol("nil".to_string()),
        };
        Ok(Sexp { kind, span })
    }

    fn syntax_error(&self, error: &lexpr::parse::Error) -> Diagnostic {
        let offset = match error.location() {
            // lexpr counts columns from 1 here and from 0 in spans.
            Some(location) => self.source.offset_of(location.line(), location.column().saturating_sub(1)),
            None => self.source.text.len() as u32,
        };
        let text = error.to_string();
        let text = text.split(" at line").next().unwrap_or(&text).to_string();
        if error.is_eof() && text.contains("string") {
            let start = self.unterminated_string_start(offset);
            let end = self.line_end(start);
            return Diagnostic::new(
                codes::UNTERMINATED_STRING,
                Span::new(self.file, start, end),
                "unterminated string",
            )
            .label("this string is never closed")
            .help("add the closing `\"`");
        }
        if error.is_eof() {
            return self.unclosed_list(offset);
        }
        let point = Span::new(self.file, offset, self.char_end(offset));
        if matches!(self.source.slice(point), ")" | "]") {
            return Diagnostic::new(codes::UNEXPECTED_CLOSE, point, "unexpected closing parenthesis")
                .label("no list is open here")
                .help("remove this `)` or add the `(` it was meant to close");
        }
        if text.contains("escape") || text.contains("code point") {
            let escape = Span::new(self.file, point.start.saturating_sub(1), point.end);
            return Diagnostic::new(codes::INVALID_ESCAPE, escape, "invalid escape in a string")
                .label("unknown escape")
                .help("the escapes are \\\\, \\\", \\n, \\t, \\r and \\xHEX;");
        }
        if text.contains("recursion limit") {
            return Diagnostic::new(codes::NESTING_TOO_DEEP, point, "nesting too deep")
                .label("too many open lists")
                .help("split the expression with `let` bindings");
        }
        let token = self.token_at(offset);
        Diagnostic::new(codes::INVALID_TOKEN, token, format!("invalid token: {text}"))
            .label("cannot read this")
            .help("names are kebab-case (`account-id`), strings use double quotes, numbers look like `42` or `12.50`")
    }

    fn char_end(&self, offset: u32) -> u32 {
        let rest = self.source.text.get(offset as usize..).unwrap_or("");
        offset + rest.chars().next().map_or(0, |c| c.len_utf8() as u32)
    }

    fn line_end(&self, offset: u32) -> u32 {
        let rest = self.source.text.get(offset as usize..).unwrap_or("");
        offset + rest.find('\n').unwrap_or(rest.len()) as u32
    }

    /// The whitespace-delimited token around `offset`, for "cannot read this" underlines.
    fn token_at(&self, offset: u32) -> Span {
        let text = &self.source.text;
        let offset = (offset as usize).min(text.len());
        let is_delim = |c: char| c.is_whitespace() || "()[]\"';".contains(c);
        let start =
            text[..offset].char_indices().rev().find(|&(_, c)| is_delim(c)).map_or(0, |(i, c)| i + c.len_utf8());
        let end = text[offset..].char_indices().find(|&(_, c)| is_delim(c)).map_or(text.len(), |(i, _)| offset + i);
        let (start, end) = if start == end { (offset, self.char_end(offset as u32) as usize) } else { (start, end) };
        Span::new(self.file, start as u32, end as u32)
    }

    /// Scans the text for the opening quote of the string still open at the end of the file.
    fn unterminated_string_start(&self, fallback: u32) -> u32 {
        let mut open: Option<usize> = None;
        for event in scan(&self.source.text) {
            match event {
                Scan::StringOpen(at) => open = Some(at),
                Scan::StringClose => open = None,
                _ => {}
            }
        }
        open.map_or(fallback, |at| at as u32)
    }

    /// Points at the opening parenthesis of the outermost list that is never closed.
    fn unclosed_list(&self, fallback: u32) -> Diagnostic {
        let mut stack: Vec<usize> = Vec::new();
        let mut outermost_unclosed: Option<usize> = None;
        for event in scan(&self.source.text) {
            match event {
                Scan::Open(at) => stack.push(at),
                Scan::Close => {
                    stack.pop();
                }
                _ => {}
            }
        }
        if let Some(&first) = stack.first() {
            outermost_unclosed = Some(first);
        }
        // The innermost unclosed list is the likeliest culprit when indentation says so: prefer the
        // deepest open paren whose line is indented no more than a later line that starts a sibling form.
        let culprit = stack.last().copied().or(outermost_unclosed);
        match culprit {
            Some(at) => {
                let span = Span::new(self.file, at as u32, at as u32 + 1);
                let mut diagnostic = Diagnostic::new(codes::UNCLOSED_LIST, span, "this list is never closed")
                    .label("opened here")
                    .help(format!(
                        "add {} `)` at the right place; {} list(s) are open at the end of the file",
                        if stack.len() == 1 { "a".to_string() } else { stack.len().to_string() },
                        stack.len()
                    ));
                if stack.len() > 1 {
                    let outer = stack[0];
                    diagnostic =
                        diagnostic.secondary(Span::new(self.file, outer as u32, outer as u32 + 1), "inside this form");
                }
                diagnostic
            }
            None => Diagnostic::new(
                codes::UNCLOSED_LIST,
                Span::new(self.file, fallback, fallback),
                "unexpected end of file",
            )
            .label("the file ends inside a form")
            .help("close every open list with `)`"),
        }
    }
}

enum Scan {
    Open(usize),
    Close,
    StringOpen(usize),
    StringClose,
}

/// A tiny scanner that knows strings, comments and parentheses; used only to locate syntax errors.
fn scan(text: &str) -> Vec<Scan> {
    let mut events = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            ';' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                events.push(Scan::StringOpen(at));
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if closed {
                    events.push(Scan::StringClose);
                }
            }
            '(' | '[' => events.push(Scan::Open(at)),
            ')' | ']' => events.push(Scan::Close),
            _ => {}
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str) -> (Vec<Sexp>, Option<Diagnostic>) {
        let file = SourceFile::new("t.sexp".into(), text.into());
        read(FileId(0), &file)
    }

    #[test]
    fn spans_are_byte_ranges() {
        let (forms, error) = read_str("(a \"b\"\n  12.50 'x)");
        assert!(error.is_none());
        let items = forms[0].as_list().unwrap();
        assert_eq!((items[0].span.start, items[0].span.end), (1, 2));
        assert_eq!(items[1].kind, SexpKind::Str("b".into()));
        assert_eq!(items[2].kind, SexpKind::Number("12.50".into()));
        assert_eq!((items[2].span.start, items[2].span.end), (9, 14));
        assert!(matches!(items[3].kind, SexpKind::Quote(_)));
        assert_eq!((forms[0].span.start, forms[0].span.end), (0, 18));
    }

    #[test]
    fn errors_point_at_the_culprit() {
        let (_, error) = read_str("(domain x\n  (aggregate a)");
        let error = error.unwrap();
        assert_eq!(error.code, codes::UNCLOSED_LIST);
        let (_, error) = read_str("(a))");
        assert_eq!(error.unwrap().code, codes::UNEXPECTED_CLOSE);
        let (_, error) = read_str("(a \"oops)");
        assert_eq!(error.unwrap().code, codes::UNTERMINATED_STRING);
        let (_, error) = read_str("(a #(1 2))");
        assert_eq!(error.unwrap().code, codes::UNSUPPORTED_SYNTAX);
    }
}
