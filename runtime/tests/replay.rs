//! Property: for any sequence of commands, the engine's outcomes equal running the pure model one command at a
//! time, and the cached state, the stored state and a fresh replay of the log all agree.

mod support;

use std::collections::HashMap;

use anthill_runtime::engine::{CommandMeta, Engine, Outcome};
use anthill_runtime::{Aggregate, Context, EventContext, Timestamp};
use proptest::prelude::*;
use support::{money, test_config, Account, AccountCommand, AccountState, Demo};

fn command() -> impl Strategy<Value = (u64, AccountCommand)> {
    let amount = (1i64..30).prop_map(money);
    (
        0u64..4,
        prop_oneof![
            Just(AccountCommand::Open),
            amount.clone().prop_map(|amount| AccountCommand::Deposit { amount }),
            amount.prop_map(|amount| AccountCommand::Withdraw { amount }),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_log_reproduces_the_cached_state(
        commands in proptest::collection::vec(command(), 1..60),
        partitions in 1u32..3,
        split in 0usize..60,
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let engine = Engine::<Demo>::open(dir.path(), test_config(partitions))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Submitted in two waves, so that commands on one instance meet in one batch and across batches.
        let split = split.min(commands.len());
        let mut outcomes = Vec::new();
        for wave in [&commands[..split], &commands[split..]] {
            let pending: Vec<_> = wave
                .iter()
                .map(|(id, command)| engine.submit::<Account>(*id, command.clone(), CommandMeta::default()))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for p in pending {
                outcomes.push(p.wait().map_err(|e| TestCaseError::fail(e.to_string()))?);
            }
        }
        // The model: each instance's commands one at a time, in submission order.
        let mut model: HashMap<u64, (AccountState, u64)> = HashMap::new();
        for ((id, command), outcome) in commands.iter().zip(&outcomes) {
            let (state, version) = model.entry(*id).or_default();
            let ctx = Context { id, version: *version, now: Timestamp::EPOCH, occurred_at: Timestamp::EPOCH };
            match (Account::execute(state, command, &ctx), outcome) {
                (Ok(expected), Outcome::Accepted { events, version: new_version }) => {
                    let got: Vec<_> = events.iter().map(|r| r.event.clone()).collect();
                    prop_assert_eq!(&got, &expected);
                    *version += expected.len() as u64;
                    prop_assert_eq!(*version, *new_version);
                }
                (Err(expected), Outcome::Rejected(got)) => prop_assert_eq!(got, &expected),
                (expected, got) => prop_assert!(false, "model {:?}, engine {:?}", expected, got),
            }
        }
        for (id, (state, version)) in &model {
            let stored = engine.state::<Account>(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let events = engine.events::<Account>(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut replayed = AccountState::default();
            for recorded in &events {
                let ctx = EventContext { id, version: recorded.version - 1, occurred_at: recorded.occurred_at, event_id: recorded.event_id };
                Account::evolve(&mut replayed, &recorded.event, &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            prop_assert_eq!(&replayed, state);
            match stored {
                Some(snapshot) => {
                    prop_assert_eq!(&snapshot.state, state);
                    prop_assert_eq!(snapshot.version, *version);
                }
                None => prop_assert_eq!(*version, 0),
            }
        }
        engine.verify().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
