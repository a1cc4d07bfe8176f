//! The `anthill` command line: checks domain models, writes their catalog page, serves them over HTTP, and reads
//! the stores (`events`, `state`, `rebuild-view`: see `cli.rs`).

use anthill_compiler::{fs, render};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: the engine's writers free on one thread what clients allocated on another (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

#[derive(Parser)]
#[command(name = "anthill", version, about = "Event-sourced business systems from S-expression models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check domain models; print diagnostics and a summary. Exits 1 on any error.
    Check {
        /// Model files, or directories whose `*.sexp` files are checked.
        #[arg(default_value = "domains", env = "ANTHILL_DOMAINS")]
        paths: Vec<PathBuf>,
        /// Colour the diagnostics: auto (when stderr is a terminal), always or never.
        #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
        color: String,
    },
    /// Serve every domain over HTTP on the embedded store: commands, state, events, views, the catalog page,
    /// OpenAPI and metrics. Stops cleanly on Ctrl-C or SIGTERM (drains, commits, closes).
    Serve(ServeArgs),
    /// Write the catalog of the built-in domains (an HTML page with diagrams) into a folder.
    Doc {
        /// The folder to write `index.html` into (created if missing).
        #[arg(long, default_value = "target/doc-domains", env = "ANTHILL_DOC_OUT")]
        out: PathBuf,
    },
    /// Print a changes feed as JSON lines: the global feed over every domain, or one domain's with --domain.
    /// Reads the stores directly (also while a server runs on them); --follow keeps printing new events.
    Events(cli::EventsArgs),
    /// Print one instance's state and version as JSON, e.g. `anthill state account acc-1`. Reads the store
    /// directly (also while a server runs on it).
    State(cli::StateArgs),
    /// Clear a view and fold the whole log into it again. Opens the store when no server holds it; otherwise
    /// use --http URL to have the running server do it.
    RebuildView(cli::RebuildArgs),
    /// Run a domain's workload against the engine (or a running server with --http) and print throughput,
    /// outcomes and latency. Exits 1 when a check fails or a command errs.
    Bench(anthill::bench::Options),
    /// Explain a diagnostic code, e.g. `anthill explain E0201`.
    Explain {
        /// The code, such as E0201 or W0003.
        code: String,
    },
}

/// Options of `anthill serve`.
#[derive(clap::Args)]
struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:7574", env = "ANTHILL_LISTEN")]
    listen: std::net::SocketAddr,
    /// The folder of the stores (one per domain).
    #[arg(long, default_value = "data", env = "ANTHILL_DATA")]
    data: PathBuf,
    #[command(flatten)]
    engine: anthill::serve::EngineArgs,
    /// Bearer tokens that may call the API, comma-separated (none: no authentication).
    #[arg(long, env = "ANTHILL_TOKENS", value_delimiter = ',', hide_env_values = true)]
    tokens: Vec<String>,
    /// A file with one bearer token per line, added to `--tokens`.
    #[arg(long, env = "ANTHILL_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// Threads serving HTTP (default: one per CPU). The engines' writer threads come on top.
    #[arg(long, env = "ANTHILL_HTTP_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    http_threads: Option<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check { paths, color } => check(&paths, &color),
        Command::Explain { code } => explain(&code),
        Command::Doc { out } => doc(&out),
        Command::Events(args) => cli::run(|| cli::events(args)),
        Command::State(args) => cli::run(|| cli::state(args)),
        Command::RebuildView(args) => cli::run(|| cli::rebuild_view(args)),
        Command::Bench(options) => anthill::bench::main(&options),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    anthill::serve::init_logging();
    let mut tokens: Vec<String> = args.tokens.into_iter().filter(|t| !t.trim().is_empty()).collect();
    if let Some(file) = &args.tokens_file {
        match std::fs::read_to_string(file) {
            Ok(text) => tokens.extend(text.lines().map(str::trim).filter(|t| !t.is_empty()).map(String::from)),
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                return ExitCode::from(2);
            }
        }
    }
    let options = anthill::serve::Options {
        listen: args.listen,
        data: args.data,
        engine: args.engine,
        tokens,
        http_threads: args.http_threads.map(usize::from),
    };
    match anthill::serve::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn doc(out: &std::path::Path) -> ExitCode {
    use askama::Template;
    let page = match anthill::catalog::Catalog::new(anthill::DOMAINS, false).render() {
        Ok(page) => page,
        Err(e) => {
            eprintln!("error: the catalog template failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = out.join("index.html");
    if let Err(e) = std::fs::create_dir_all(out).and_then(|()| std::fs::write(&path, page)) {
        eprintln!("error: {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {} ({} domains)", path.display(), anthill::DOMAINS.len());
    ExitCode::SUCCESS
}

fn check(paths: &[PathBuf], color: &str) -> ExitCode {
    let files = match fs::model_files(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let compilation = match fs::compile_files(&files) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let color = match color {
        "always" => true,
        "never" => false,
        _ => std::io::stderr().is_terminal(),
    };
    render::to_stderr(&compilation.sources, &compilation.diagnostics, color);
    let (errors, warnings) = (compilation.error_count(), compilation.warning_count());
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    println!(
        "checked {}: {}, {}",
        plural(compilation.roots, "domain"),
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn explain(code: &str) -> ExitCode {
    match anthill_dsl::codes::find(code) {
        Some(c) => {
            let severity = match c.severity {
                anthill_dsl::Severity::Error => "error",
                anthill_dsl::Severity::Warning => "warning",
            };
            println!("{} ({severity}): {}", c.id, c.title);
            println!("Examples: docs/diagnostics.md, section {}.", c.id);
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("error: no diagnostic code `{code}`; codes look like E0201 or W0003");
            ExitCode::from(2)
        }
    }
}
