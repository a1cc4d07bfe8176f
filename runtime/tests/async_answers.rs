//! Awaiting answers: `Pending` and `PendingAny` are futures woken by the engine (std only, no executor
//! assumed), and `submit_command` takes the domain's command enum and answers a `Verdict`.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use anthill_runtime::engine::{CommandMeta, Engine, JsonOutcome, Outcome, Verdict};
use anthill_runtime::error::Error;
use support::{money, test_config, Account, AccountCommand, Command, Demo};

/// Wakes the thread that polls: the smallest executor there is.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[test]
fn answers_are_awaited_without_a_blocked_wait() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = Engine::<Demo>::open(dir.path(), test_config(2))?;
    let open = engine.submit::<Account>(1, AccountCommand::Open, CommandMeta::default())?;
    assert!(block_on(open)?.is_accepted());
    // Many in flight, awaited in order.
    let pending: Vec<_> = (0..200)
        .map(|_| engine.submit::<Account>(1, AccountCommand::Deposit { amount: money(1) }, CommandMeta::default()))
        .collect::<Result<_, _>>()?;
    for p in pending {
        assert!(matches!(block_on(p)?, Outcome::Accepted { .. }));
    }
    let json = engine.submit_json("account", "1", "withdraw", br#"{"amount": "1000"}"#, CommandMeta::default())?;
    assert!(matches!(block_on(json)?, JsonOutcome::Rejected { .. }));
    let json = engine.submit_json("account", "1", "withdraw", br#"{"amount": "2"}"#, CommandMeta::default())?;
    assert!(matches!(block_on(json)?, JsonOutcome::Accepted { version: 202, .. }));
    Ok(())
}

#[test]
fn submit_command_takes_any_aggregate_and_answers_a_verdict() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Store { message: e.to_string() })?;
    let engine = Engine::<Demo>::open(dir.path(), test_config(1))?;
    let open = Command::Account { id: 5, command: AccountCommand::Open };
    assert_eq!(engine.submit_command(open.clone(), CommandMeta::default())?.wait()?, Verdict::Accepted { events: 1 });
    let again = engine.submit_command(open, CommandMeta::default())?;
    assert!(matches!(block_on(again)?, Verdict::Rejected { .. }));
    Ok(())
}
