//! The file-system edge of the compiler: finds model files, reads them and their includes, and drives
//! [`crate::compile`]. The rest of the crate never does I/O.

use crate::{render, Compilation};
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
    Ok(crate::compile(roots, &mut |path| std::fs::read_to_string(path).map_err(|e| e.to_string())))
}

/// For a `build.rs`: compiles every model in `dir` into `$OUT_DIR/anthill/`. Include the result with
/// `include!(concat!(env!("OUT_DIR"), "/anthill/mod.rs"));`, which declares one module per domain.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), anthill_compiler::fs::BuildError> {
///     anthill_compiler::fs::compile("domains")
/// }
/// ```
pub fn compile(dir: impl AsRef<Path>) -> Result<(), BuildError> {
    let out = std::env::var_os("OUT_DIR")
        .ok_or_else(|| BuildError(String::from("OUT_DIR is not set: call this from a build script")))?;
    Builder::new(dir).out_dir(PathBuf::from(out).join("anthill")).compile().map(|_| ())
}

/// Why a build failed: the rendered diagnostics, or an I/O error with its path. `Debug` prints the text
/// as it is, so a build script's `main` can return it with `?` and cargo shows readable diagnostics.
pub struct BuildError(pub String);

impl std::fmt::Debug for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Compiles the models of a directory into Rust, for build scripts: one file per domain plus a `mod.rs`.
#[derive(Clone, Debug)]
pub struct Builder {
    models: PathBuf,
    out_dir: PathBuf,
}

/// What [`Builder::compile`] produced.
#[derive(Debug)]
pub struct Generated {
    pub compilation: Compilation,
    /// Every file written or left as it was, `mod.rs` last.
    pub files: Vec<PathBuf>,
    /// The files whose content changed (only those were written).
    pub changed: Vec<PathBuf>,
}

impl Builder {
    pub fn new(models: impl AsRef<Path>) -> Builder {
        Builder { models: models.as_ref().to_path_buf(), out_dir: PathBuf::from("generated") }
    }

    /// Where to write the Rust files (created if missing).
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.out_dir = dir.as_ref().to_path_buf();
        self
    }

    /// Checks the models, tells cargo to rerun when any input changes, reports warnings through cargo, and
    /// writes the generated files whose content changed. Fails with the rendered diagnostics on any error,
    /// before writing anything.
    pub fn compile(self) -> Result<Generated, BuildError> {
        let compilation = build(&self.models).map_err(BuildError)?;
        let outputs = generate(&compilation);
        std::fs::create_dir_all(&self.out_dir).map_err(|e| BuildError(format!("{}: {e}", self.out_dir.display())))?;
        let mut files = Vec::new();
        let mut changed = Vec::new();
        for (name, text) in outputs {
            let path = self.out_dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, &text).map_err(|e| BuildError(format!("{}: {e}", path.display())))?;
                changed.push(path.clone());
            }
            files.push(path);
        }
        Ok(Generated { compilation, files, changed })
    }
}

/// The generated files of a compilation as `(file name, text)`: `DOMAIN.rs` per domain, then `mod.rs`,
/// which declares `pub mod DOMAIN` for each by including its file.
pub fn generate(compilation: &Compilation) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut modules =
        String::from("// @generated by anthill: one module per domain. Do not edit: change the models and rebuild.\n");
    for domain in &compilation.domains {
        let module = crate::lower::snake(&domain.name.dsl);
        let file = format!("{}.rs", module.trim_start_matches("r#"));
        let doc = domain.doc.as_deref().unwrap_or("").replace('\n', " ");
        if !doc.is_empty() {
            modules.push_str(&format!("\n/// {doc}\n"));
        } else {
            modules.push('\n');
        }
        modules.push_str(&format!("pub mod {module} {{\n    include!(\"{file}\");\n}}\n"));
        out.push((file, crate::emit::emit_domain(domain, &compilation.sources)));
    }
    let metas: Vec<String> =
        compilation.domains.iter().map(|d| format!("&{}::META", crate::lower::snake(&d.name.dsl))).collect();
    modules.push_str(&format!(
        "\n/// Every domain's metadata, in model-file order.\npub static DOMAINS: &[&::anthill_runtime::meta::DomainMeta] = &[{}];\n",
        metas.join(", ")
    ));
    let visits: Vec<String> = compilation
        .domains
        .iter()
        .map(|d| {
            format!(
                "    visitor.visit::<{}::{}>();\n",
                crate::lower::snake(&d.name.dsl),
                crate::lower::camel(&d.name.dsl)
            )
        })
        .collect();
    modules.push_str(&format!(
        "\n/// Calls `visitor.visit::<D>()` for every domain `D`, in model-file order.\npub fn for_each_domain<V: ::anthill_runtime::DomainVisitor>(visitor: &mut V) {{\n{}    let _ = visitor;\n}}\n",
        visits.concat()
    ));
    out.push(("mod.rs".to_string(), modules));
    out
}

/// Checks every model in `dir` for a build script: tells cargo to rerun when any input changes, reports
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
