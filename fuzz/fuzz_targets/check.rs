//! Fuzz target: parse + check + render one source text, and emit Rust for every domain that checks.
//!
//! Any panic, stack overflow, timeout or out-of-memory here is a bug: bad input must become diagnostics.
//! Besides not crashing, it checks the invariants the renderer relies on: every span (primary and
//! secondary) names a loaded file, has `start <= end`, lies within that file's text and on char
//! boundaries.

#![no_main]

use anthill_compiler::{compile_str, render, Compilation};
use anthill_dsl::Span;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let c = compile_str("fuzz.sexp", text);
    check_spans(&c);
    let rendered = render::to_string(&c.sources, &c.diagnostics);
    // A compilation with errors always says something.
    assert!(c.error_count() == 0 || !rendered.is_empty(), "errors rendered as nothing");
    // Code generation accepts every checked model (it panics if its own output does not parse as Rust).
    for domain in &c.domains {
        let _ = anthill_compiler::emit::emit_domain(domain, &c.sources);
    }
});

fn check_spans(c: &Compilation) {
    for d in &c.diagnostics {
        check_span(c, d.span, &d.message);
        for label in &d.secondary {
            check_span(c, label.span, &d.message);
        }
    }
}

fn check_span(c: &Compilation, span: Span, message: &str) {
    let Some(file) = c.sources.try_get(span.file) else {
        panic!("diagnostic `{message}`: span {span:?} names no loaded file");
    };
    let (start, end) = (span.start as usize, span.end as usize);
    assert!(start <= end, "diagnostic `{message}`: span {span:?} starts after it ends");
    assert!(
        end <= file.text.len(),
        "diagnostic `{message}`: span {span:?} ends past the text ({} bytes)",
        file.text.len()
    );
    assert!(
        file.text.is_char_boundary(start) && file.text.is_char_boundary(end),
        "diagnostic `{message}`: span {span:?} splits a character"
    );
}
