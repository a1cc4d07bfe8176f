//! The file-system edge of the compiler: finds model files, reads them and their includes, and drives
//! [`crate::compile`]. The rest of the crate never does I/O.

use crate::{compile, render, Compilation};
use std::io;
use std::path::{Path, PathBuf};

/// The model files named by `paths`: a file as given, a directory's `*.sexp` files (not its
/// subdirectories, which hold included fragments), sorted by name.
pub fn model_files(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sexp"))
                .collect();
            files.sort();
            out.extend(files);
        } else if path.exists() {
            out.push(path.clone());
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file or directory", path.display()),
            ));
        }
    }
    Ok(out)
}

fn display(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Reads and compiles model files (and everything they include).
pub fn compile_files(files: &[PathBuf]) -> io::Result<Compilation> {
    let mut roots = Vec::with_capacity(files.len());
    for file in files {
        let text =
            std::fs::read_to_string(file).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        roots.push((display(file), text));
    }
    Ok(compile(roots, &mut |path| std::fs::read_to_string(path).map_err(|e| e.to_string())))
}

/// For a `build.rs`: checks every model in `dir`, tells cargo to rerun when any input changes, reports
/// warnings through cargo and fails with the rendered diagnostics on any error.
pub fn build(dir: impl AsRef<Path>) -> Result<Compilation, String> {
    let dir = dir.as_ref();
    println!("cargo:rerun-if-changed={}", dir.display());
    let files = model_files(&[dir.to_path_buf()]).map_err(|e| e.to_string())?;
    let compilation = compile_files(&files).map_err(|e| e.to_string())?;
    for file in &compilation.files_read {
        println!("cargo:rerun-if-changed={file}");
    }
    for d in compilation.diagnostics.iter().filter(|d| !d.is_error()) {
        let file = compilation.sources.get(d.span.file);
        let (line, column) = file.line_column(d.span.start);
        println!("cargo:warning={}:{line}:{column}: warning[{}]: {}", file.name, d.code.id, d.message);
    }
    if compilation.error_count() > 0 {
        return Err(format!(
            "{}anthill: {} error(s) in the domain models",
            render::to_string(&compilation.sources, &compilation.diagnostics),
            compilation.error_count()
        ));
    }
    Ok(compilation)
}
