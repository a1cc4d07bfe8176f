//! Rendering diagnostics for people (codespan-reporting): the only place that formats them.

use anthill_dsl::{Diagnostic, Severity, SourceMap};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config};

fn files(sources: &SourceMap) -> SimpleFiles<&str, &str> {
    let mut files = SimpleFiles::new();
    for index in 0..sources.len() {
        let file = sources.get(anthill_dsl::FileId(index as u32));
        files.add(file.name.as_str(), file.text.as_str());
    }
    files
}

fn convert(d: &Diagnostic) -> cs::Diagnostic<usize> {
    let severity = match d.severity() {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let mut labels =
        vec![cs::Label::primary(d.span.file.0 as usize, d.span.start as usize..d.span.end as usize)
            .with_message(&d.label)];
    labels.extend(d.secondary.iter().map(|l| {
        cs::Label::secondary(l.span.file.0 as usize, l.span.start as usize..l.span.end as usize)
            .with_message(&l.message)
    }));
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    cs::Diagnostic::new(severity).with_code(d.code.id).with_message(&d.message).with_labels(labels).with_notes(notes)
}

/// Renders diagnostics as plain text, in the order given (callers sort them).
pub fn to_string(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let files = files(sources);
    let config = Config::default();
    let mut out = String::new();
    for d in diagnostics {
        // Spans always come from these sources, so rendering cannot fail; fall back to a plain line anyway.
        if term::emit_to_string(&mut out, &config, &files, &convert(d)).is_err() {
            out.push_str(&format!("{}[{}]: {}\n", severity_word(d.severity()), d.code.id, d.message));
        }
    }
    out
}

/// Renders diagnostics to standard error, in colour when it is a terminal.
pub fn to_stderr(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool) {
    use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
    let choice = if color { ColorChoice::Auto } else { ColorChoice::Never };
    let stream = StandardStream::stderr(choice);
    let mut lock = stream.lock();
    let files = files(sources);
    let config = Config::default();
    for d in diagnostics {
        let _ = term::emit_to_write_style(&mut lock, &config, &files, &convert(d));
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
