//! Running a model's scenarios (given events, when a command, then events or a rejection) on the pure logic.

use std::fmt::Write as _;

use crate::aggregate::{Aggregate, Context, EventContext, Refused, Rejection};
use crate::value::Timestamp;

/// The clock scenarios run at: 2026-01-01T00:00:00Z, so that `(now)` is repeatable.
pub const SCENARIO_NOW: Timestamp = Timestamp::from_micros(1_767_225_600_000_000);

/// Applies `given`, decides `when`, and compares the outcome with `then`. Returns a readable report of the
/// difference, or `Ok` when the scenario holds.
pub fn check_scenario<A: Aggregate>(
    id: &A::Id,
    given: &[A::Event],
    when: &A::Command,
    then: &Result<Vec<A::Event>, A::Rejection>,
) -> Result<(), String> {
    let mut state = A::State::default();
    for (version, event) in (0u64..).zip(given) {
        let ctx = EventContext { id, version, occurred_at: SCENARIO_NOW, event_id: u128::from(version) };
        if let Err(error) = A::evolve(&mut state, event, &ctx) {
            return Err(format!("given event {} ({event:?}) cannot be applied: {error}", version + 1));
        }
    }
    let version = given.len() as u64;
    let ctx = Context { id, version, now: SCENARIO_NOW, occurred_at: SCENARIO_NOW };
    let decided = A::decide(&state, when, &ctx);
    let mut executed_state = state.clone();
    let executed = A::execute(&mut executed_state, when, &ctx);
    if decided != executed {
        return Err(format!("decide and execute disagree:\n  decide:  {decided:?}\n  execute: {executed:?}"));
    }
    // In place, the engine's way for aggregates with collections: the same outcome, and on acceptance the same
    // state; a refusal that changed the state must say so.
    let mut in_place_state = state.clone();
    let mut seen_before_change = None;
    let in_place = A::execute_in_place(&mut in_place_state, when, &ctx, &mut |before| {
        seen_before_change.get_or_insert_with(|| before.clone());
    });
    if seen_before_change.as_ref().is_some_and(|seen| seen != &state) {
        return Err("execute_in_place changed the state before it said so".to_owned());
    }
    match in_place {
        Ok(events) if executed.as_ref() == Ok(&events) && in_place_state == executed_state => {}
        Err(Refused { rejection, state_changed })
            if executed.as_ref() == Err(&rejection)
                && (state_changed || in_place_state == state)
                && (!state_changed || seen_before_change.is_some()) => {}
        in_place => {
            return Err(format!(
                "execute and execute_in_place disagree:\n  execute:          {executed:?}\n  execute_in_place: {in_place:?}"
            ));
        }
    }
    if &decided == then {
        return Ok(());
    }
    let mut report = String::new();
    let show = |report: &mut String, label: &str, outcome: &Result<Vec<A::Event>, A::Rejection>| match outcome {
        Ok(events) if events.is_empty() => {
            let _ = writeln!(report, "  {label}: no events");
        }
        Ok(events) => {
            let _ = writeln!(report, "  {label} events:");
            for event in events {
                let _ = writeln!(report, "    {event:?}");
            }
        }
        Err(rejection) => {
            let _ = writeln!(report, "  {label}: rejected `{}` ({})", rejection.code(), rejection.message());
        }
    };
    let _ = writeln!(report, "the scenario's outcome differs");
    show(&mut report, "expected", then);
    show(&mut report, "actual", &decided);
    let _ = writeln!(report, "  state before the command: {state:?}");
    Err(report)
}

/// [`check_scenario`] for a generated `#[test]`: panics with the report.
#[track_caller]
pub fn run_scenario<A: Aggregate>(
    title: &str,
    id: &A::Id,
    given: &[A::Event],
    when: &A::Command,
    then: &Result<Vec<A::Event>, A::Rejection>,
) {
    if let Err(report) = check_scenario::<A>(id, given, when, then) {
        panic!("scenario \"{title}\" failed: {report}");
    }
}
