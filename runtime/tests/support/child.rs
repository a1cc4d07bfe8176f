//! Test binaries that run themselves as a child process (no libtest harness, so that a kill or a process
//! limit hits only the child): what the crash and full-disk tests share.

use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// The `main` of such a binary: the child when `child_env` is set (to the store's path), the parent
/// otherwise. An error fails the test with a message naming it.
pub fn main(
    test: &str,
    child_env: &str,
    child: impl FnOnce(&str) -> Result<(), String>,
    parent: impl FnOnce() -> Result<(), String>,
) {
    let result = match std::env::var(child_env) {
        Ok(path) => child(&path),
        Err(_) => parent(),
    };
    if let Err(message) = result {
        eprintln!("{test} failed: {message}");
        std::process::exit(1);
    }
}

/// Starts this binary again as the child on the store at `path`, with `envs` set; its standard output is the
/// caller's to read (the child prints there what was acknowledged to it).
pub fn spawn(child_env: &str, path: &Path, envs: &[(&str, String)]) -> Result<(Child, ChildStdout), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(child_env, path)
        .envs(envs.iter().map(|(name, value)| (*name, value.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let stdout = child.stdout.take().ok_or("the child has no stdout")?;
    Ok((child, stdout))
}

/// Every command acknowledged to the child has its idempotency record in the store, and none answered with
/// an error (`failed`) has: a failed commit writes nothing.
pub fn check_commands<D: anthill_runtime::Domain>(
    engine: &anthill_runtime::engine::Engine<D>,
    acked: &[u64],
    failed: &[u64],
) -> Result<(), String> {
    let store = engine.store();
    let txn = store.read().map_err(|e| e.to_string())?;
    for &id in acked {
        if store.command(&txn, u128::from(id)).map_err(|e| e.to_string())?.is_none() {
            return Err(format!("acknowledged command {id:#x} is missing"));
        }
    }
    for &id in failed {
        if store.command(&txn, u128::from(id)).map_err(|e| e.to_string())?.is_some() {
            return Err(format!("command {id:#x} failed, yet its record is stored"));
        }
    }
    Ok(())
}
