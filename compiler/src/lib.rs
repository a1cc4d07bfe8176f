//! The anthill compiler: reads domain models (`.sexp`) into a checked model, or diagnostics.
//!
//! The core is pure: it never touches the file system. Callers hand it source text and a `load` callback
//! for `(include ...)`, then render the diagnostics with [`render`] at the edge.
//!
//! Pipeline per domain: `parse` (anthill-dsl) -> `resolve`/`check` ([`check`]) -> `lower` ([`lower`]).

pub mod check;
pub mod docs;
pub mod emit;
pub mod fs;
pub mod lower;
pub mod model;
pub mod render;

use anthill_dsl::ast;
use anthill_dsl::parse::parse_file;
use anthill_dsl::{codes, Diagnostic, FileId, SourceMap, Span};

pub use anthill_dsl::{Severity, SourceFile};

/// Depth bound for nested includes; deeper is certainly a mistake.
const INCLUDE_DEPTH_MAX: usize = 16;

/// The result of compiling a set of root files.
#[derive(Debug, Default)]
pub struct Compilation {
    pub sources: SourceMap,
    /// One checked domain per root file that had no error.
    pub domains: Vec<model::Domain>,
    /// Every diagnostic, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Every file read, roots and includes, as their resolved paths.
    pub files_read: Vec<String>,
    /// How many root files were compiled, with or without errors.
    pub roots: usize,
    /// Errors dropped beyond [`ERRORS_PER_FILE_MAX`] per file.
    pub hidden_errors: usize,
}

impl Compilation {
    /// Errors found, including those not shown beyond [`ERRORS_PER_FILE_MAX`] per file.
    pub fn error_count(&self) -> usize {
        let shown = self.diagnostics.iter().filter(|d| d.is_error() && d.code != codes::TOO_MANY_ERRORS).count();
        shown + self.hidden_errors
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| !d.is_error()).count()
    }
}

/// Resolves an included path against the including file's path (both as written, `/`-separated).
pub fn include_path(including: &str, included: &str) -> String {
    if included.starts_with('/') {
        return included.to_string();
    }
    match including.rfind('/') {
        Some(slash) => format!("{}/{}", &including[..slash], included),
        None => included.to_string(),
    }
}

/// Compiles root files given as `(path, text)`. `load` reads an included file by its resolved path.
pub fn compile(roots: Vec<(String, String)>, load: &mut dyn FnMut(&str) -> Result<String, String>) -> Compilation {
    let mut compilation = Compilation::default();
    let mut domain_names: Vec<(String, Span)> = Vec::new();
    let mut raw: Vec<Diagnostic> = Vec::new();
    for (path, text) in roots {
        compilation.roots += 1;
        compilation.files_read.push(path.clone());
        let root = compilation.sources.add(path, text);
        let (module, mut diagnostics) = parse_file(root, compilation.sources.get(root), true);
        let mut modules = vec![module];
        let mut stack = vec![root];
        collect_includes(&mut compilation, load, 0, &mut modules, &mut diagnostics, &mut stack);
        let Some(header) = modules[0].domain.clone() else {
            raw.extend(diagnostics);
            continue;
        };
        if let Some((_, first)) = domain_names.iter().find(|(n, _)| *n == header.name.name) {
            diagnostics.push(
                Diagnostic::new(
                    codes::DUPLICATE_DEFINITION,
                    header.name.span,
                    format!("domain `{}` is defined in two files", header.name.name),
                )
                .label("second definition")
                .secondary(*first, "first defined here")
                .help("give every domain its own name; split one domain across files with `(include ...)`"),
            );
        }
        domain_names.push((header.name.name.clone(), header.name.span));
        let parse_failed = diagnostics.iter().any(Diagnostic::is_error);
        let files: Vec<FileId> = modules.iter().map(|m| m.file).collect();
        let items: Vec<&ast::Item> =
            modules.iter().flat_map(|m| m.items.iter()).filter(|i| !matches!(i, ast::Item::Include(_))).collect();
        let (domain, mut check_diagnostics) = check::check_domain(&header, root, files, &items);
        if parse_failed {
            // Forms the parser dropped would make these warnings wrong.
            check_diagnostics.retain(|d| d.code != codes::EVENT_NEVER_EMITTED && d.code != codes::EVENT_NOT_HANDLED);
        }
        diagnostics.extend(check_diagnostics);
        if let (Some(domain), false) = (domain, parse_failed) {
            compilation.domains.push(domain);
        }
        raw.extend(diagnostics);
    }
    let (diagnostics, hidden_errors) = sort_and_bound(raw, &compilation.sources);
    compilation.diagnostics = diagnostics;
    compilation.hidden_errors = hidden_errors;
    compilation
}

/// Compiles a single source text (no includes): the entry point for tests and fuzzing.
pub fn compile_str(name: &str, text: &str) -> Compilation {
    compile(vec![(name.to_string(), text.to_string())], &mut |path| Err(format!("cannot include `{path}` here")))
}

fn collect_includes(
    compilation: &mut Compilation,
    load: &mut dyn FnMut(&str) -> Result<String, String>,
    first_module: usize,
    modules: &mut Vec<ast::Module>,
    diagnostics: &mut Vec<Diagnostic>,
    stack: &mut Vec<FileId>,
) {
    let includes: Vec<ast::Include> = modules[first_module]
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Include(inc) => Some(inc.clone()),
            _ => None,
        })
        .collect();
    let including = compilation.sources.get(modules[first_module].file).name.clone();
    for inc in includes {
        let path = include_path(&including, &inc.path);
        let fail = |message: String, help: &str| {
            Diagnostic::new(codes::INCLUDE_FAILED, inc.span, message).label("this include").help(help.to_string())
        };
        if stack.len() > INCLUDE_DEPTH_MAX {
            diagnostics
                .push(fail(format!("includes nest deeper than {INCLUDE_DEPTH_MAX} files"), "flatten the includes"));
            continue;
        }
        if stack.iter().any(|f| compilation.sources.get(*f).name == path) {
            diagnostics.push(fail(
                format!("`{path}` includes itself (through a cycle)"),
                "remove the include that closes the cycle",
            ));
            continue;
        }
        if modules.iter().any(|m| compilation.sources.get(m.file).name == path) {
            diagnostics.push(fail(format!("`{path}` is included twice"), "include every file once"));
            continue;
        }
        let text = match load(&path) {
            Ok(text) => text,
            Err(error) => {
                diagnostics
                    .push(fail(format!("cannot read `{path}`: {error}"), "the path is relative to the including file"));
                continue;
            }
        };
        compilation.files_read.push(path.clone());
        let file = compilation.sources.add(path, text);
        let (module, parse_diagnostics) = parse_file(file, compilation.sources.get(file), false);
        diagnostics.extend(parse_diagnostics);
        modules.push(module);
        let index = modules.len() - 1;
        stack.push(file);
        collect_includes(compilation, load, index, modules, diagnostics, stack);
        stack.pop();
    }
}

/// Errors reported per file, at most; the rest are summarized in one line.
pub const ERRORS_PER_FILE_MAX: usize = 50;

/// Sorts diagnostics by file and position, drops exact duplicates and keeps at most
/// [`ERRORS_PER_FILE_MAX`] errors per file. Returns them and how many errors were dropped.
fn sort_and_bound(mut diagnostics: Vec<Diagnostic>, sources: &SourceMap) -> (Vec<Diagnostic>, usize) {
    diagnostics.sort_by(|a, b| {
        (a.span.file, a.span.start, a.span.end, a.code.id).cmp(&(b.span.file, b.span.start, b.span.end, b.code.id))
    });
    diagnostics.dedup_by(|a, b| a.span == b.span && a.code == b.code && a.message == b.message);
    let mut out = Vec::with_capacity(diagnostics.len());
    let mut errors_in_file: Vec<usize> = vec![0; sources.len()];
    let mut dropped: Vec<usize> = vec![0; sources.len()];
    for d in diagnostics {
        let f = d.span.file.0 as usize;
        if d.is_error() {
            errors_in_file[f] += 1;
            if errors_in_file[f] > ERRORS_PER_FILE_MAX {
                dropped[f] += 1;
                continue;
            }
        }
        out.push(d);
    }
    for (f, count) in dropped.iter().enumerate() {
        if *count > 0 {
            let file = FileId(f as u32);
            let end = sources.get(file).text.len() as u32;
            out.push(
                Diagnostic::new(
                    codes::TOO_MANY_ERRORS,
                    Span::new(file, end, end),
                    format!("{count} more errors in this file are not shown"),
                )
                .help("fix the errors above and run the check again"),
            );
        }
    }
    (out, dropped.iter().sum())
}
