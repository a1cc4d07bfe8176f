//! The anthill modelling language: reads `.sexp` text into a spanned AST.
//!
//! `sexp` turns text into spanned S-expressions (the only place that knows lexpr); `parse` turns those into
//! the [`ast`] of a domain model, reporting malformed forms as [`Diagnostic`]s.

pub mod ast;
pub mod diagnostic;
pub mod parse;
pub mod sexp;
pub mod span;

pub use diagnostic::{codes, Code, Diagnostic, Severity};
pub use span::{FileId, SourceFile, SourceMap, Span};
