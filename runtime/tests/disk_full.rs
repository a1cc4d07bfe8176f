//! A full disk: a child process runs durable commands until a file size limit (`RLIMIT_FSIZE`, which fails
//! writes past it as a full disk does) stops the store from growing. The commits that need the space must fail
//! with an error and write nothing, the engine must work again once the limit is lifted, and the parent then
//! reopens the store and checks that every acknowledged command is there, no failed one is, the log is
//! gapless and every state equals a replay of its events.
//!
//! A test binary without the libtest harness (the limit is per process): run with no environment it is the
//! parent; with `ANTHILL_DISK_FULL_CHILD` set to a store path it is the child.

mod support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use anthill_runtime::engine::{CommandMeta, Engine};
use anthill_runtime::error::Error;
use support::{money, test_config, Account, AccountCommand, Demo};

const CHILD_ENV: &str = "ANTHILL_DISK_FULL_CHILD";
const ACCOUNTS: u64 = 20;
/// Commands in flight at once: batches of several commands, so that a failed commit fails many.
const IN_FLIGHT_MAX: u64 = 32;
/// Room left in the file when the limit is set: a few commits' worth.
const ROOM_BYTES: u64 = 256 * 1024;
/// Rounds of `IN_FLIGHT_MAX` commands with the limit set (it is reached well before), and after it is lifted.
const FULL_ROUNDS_MAX: u64 = 400;
const AFTER_ROUNDS: u64 = 20;
/// How long the parent waits for the child.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    support::child::main("disk full test", CHILD_ENV, child, parent);
}

/// Checkpoint steps every few batches, so that some of the failed commits carry one.
fn config() -> anthill_runtime::engine::Config {
    anthill_runtime::engine::Config { checkpoint_events_max: 400, checkpoint_entries_max: 200, ..test_config(1) }
}

/// Sets the soft limit on the size of files this process writes (`None`: up to the hard limit).
fn set_file_size_limit(bytes: Option<u64>) -> Result<(), String> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` and `setrlimit` only read and write the struct passed, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    limit.rlim_cur = bytes.map_or(limit.rlim_max, |bytes| bytes.min(limit.rlim_max));
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs one round of deposits with ids from `first_id`; prints each command's fate once it is known.
/// Returns how many failed.
fn deposits(engine: &Engine<Demo>, first_id: u64) -> Result<u64, String> {
    let mut pending = Vec::with_capacity(IN_FLIGHT_MAX as usize);
    for i in 0..IN_FLIGHT_MAX {
        let id = first_id + i;
        let meta = CommandMeta { command_id: Some(u128::from(id)), ..CommandMeta::default() };
        let amount = money(1 + (id % 7) as i64);
        let submitted = engine.submit::<Account>(id % ACCOUNTS, AccountCommand::Deposit { amount }, meta);
        pending.push((id, submitted));
    }
    let mut failed = 0;
    for (id, submitted) in pending {
        match submitted.and_then(|pending| pending.wait()) {
            Ok(_) => println!("ack {id}"),
            // What a full disk must give: an error from the store that says so, the batch not committed.
            Err(Error::Store { message }) if message.contains("disk") => {
                println!("fail {id} {message}");
                failed += 1;
            }
            Err(other) => return Err(format!("command {id}: not the error of a full disk: {other}")),
        }
    }
    Ok(failed)
}

/// The child: commands with room, then with the limit set until commits fail, then with the limit lifted.
fn child(path: &str) -> Result<(), String> {
    // At the limit the kernel sends SIGXFSZ, which ends the process; ignored, the write fails with EFBIG.
    // SAFETY: sets this process's disposition of one signal; no handler runs.
    if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(format!("signal: {}", std::io::Error::last_os_error()));
    }
    let engine = Engine::<Demo>::open(path, config()).map_err(|e| e.to_string())?;
    for account in 0..ACCOUNTS {
        let meta = CommandMeta { command_id: Some(u128::from(account) + 1), ..CommandMeta::default() };
        engine.execute::<Account>(account, AccountCommand::Open, meta).map_err(|e| e.to_string())?;
        println!("ack {}", account + 1);
    }
    let mut next_id = 1 << 32;
    for _ in 0..4 {
        if deposits(&engine, next_id)? > 0 {
            return Err("a command failed before the limit was set".into());
        }
        next_id += IN_FLIGHT_MAX;
    }
    let file_bytes = std::fs::metadata(std::path::Path::new(path).join("data.mdb")).map_err(|e| e.to_string())?.len();
    set_file_size_limit(Some(file_bytes + ROOM_BYTES))?;
    let mut failed = 0;
    // Bounded: the limit is reached after a few hundred KiB of commits; then every commit fails.
    for _ in 0..FULL_ROUNDS_MAX {
        failed += deposits(&engine, next_id)?;
        next_id += IN_FLIGHT_MAX;
        if failed >= 4 * IN_FLIGHT_MAX {
            break;
        }
    }
    if failed == 0 {
        return Err(format!("no commit failed with {ROOM_BYTES} bytes of room"));
    }
    set_file_size_limit(None)?;
    for round in 0..AFTER_ROUNDS {
        let failed_now = deposits(&engine, next_id)?;
        next_id += IN_FLIGHT_MAX;
        // The first round may still hold a batch decided before the limit was lifted.
        if failed_now > 0 && round > 0 {
            return Err(format!("{failed_now} commands failed after the limit was lifted"));
        }
    }
    engine.shutdown();
    println!("done");
    Ok(())
}

fn parent() -> Result<(), String> {
    let started = Instant::now();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (mut child, stdout) = support::child::spawn(CHILD_ENV, dir.path(), &[])?;
    let reader = std::thread::spawn(move || {
        let (mut acked, mut failed, mut errors, mut done) = (Vec::new(), Vec::new(), Vec::new(), false);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = line.splitn(3, ' ');
            match (words.next(), words.next().and_then(|id| id.parse::<u64>().ok())) {
                (Some("ack"), Some(id)) => acked.push(id),
                (Some("fail"), Some(id)) => {
                    failed.push(id);
                    if errors.len() < 3 {
                        errors.push(words.next().unwrap_or_default().to_string());
                    }
                }
                (Some("done"), None) => done = true,
                _ => {}
            }
        }
        (acked, failed, errors, done)
    });
    // Bounded: the child is killed if it does not finish in time.
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("the child did not finish within {CHILD_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (acked, failed, errors, done) = reader.join().map_err(|_| "the reader thread panicked")?;
    if !status.success() || !done {
        return Err(format!("the child ended with {status} (done: {done})"));
    }
    check(dir.path(), &acked, &failed)?;
    println!(
        "disk full test: {} commands acknowledged, {} failed with the disk full (e.g. \"{}\"), {:?}",
        acked.len(),
        failed.len(),
        errors.first().map_or("", String::as_str),
        started.elapsed()
    );
    Ok(())
}

fn check(path: &std::path::Path, acked: &[u64], failed: &[u64]) -> Result<(), String> {
    let engine = Engine::<Demo>::open(path, config()).map_err(|e| format!("reopen: {e}"))?;
    let err = |e: Error| e.to_string();
    // Every acknowledged command is stored, and no failed one: a commit that failed wrote nothing.
    support::child::check_commands(&engine, acked, failed)?;
    // Gapless log, and every stored state equals a fresh replay of its events.
    engine.verify().map_err(err)?;
    // Every acknowledged deposit, and nothing else, is in the balances: each account holds the sum of the
    // amounts acknowledged for it.
    let mut expected = vec![0i64; ACCOUNTS as usize];
    for &id in acked.iter().filter(|&&id| id >= 1 << 32) {
        expected[(id % ACCOUNTS) as usize] += 1 + (id % 7) as i64;
    }
    for account in 0..ACCOUNTS {
        let snapshot = engine.state::<Account>(&account).map_err(err)?.ok_or(format!("account {account} missing"))?;
        if snapshot.state.balance != money(expected[account as usize]) {
            return Err(format!(
                "account {account} holds {}, its acknowledged deposits sum to {}",
                snapshot.state.balance,
                money(expected[account as usize])
            ));
        }
    }
    engine.shutdown();
    Ok(())
}
