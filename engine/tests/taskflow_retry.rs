//! Retry controllers as TaskFlow 6.5.0 runs them, on the serial engine and
//! on the parallel engine: `ForEach` and `ParameterizedForEach` try every
//! value in order, repeats included (`[3, 2, 3, 5]` tries 3, 2, 3, 5),
//! alone and nested in a flow, with revert and with revert-all (TaskFlow's
//! `test_retries.py`: `test_for_each_with_list`,
//! `test_nested_for_each_revert`, `test_nested_for_each_revert_all` and
//! their parameterized twins).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use taskflow_engine::{CapturingListener, Engine, EngineBuilder, EngineError, Parallel};
use taskflow_patterns::{
    atom, retry, task_fn, AtomState, Flow, FlowState, ForEach, Linear, ParameterizedForEach, Retry,
    TaskAtom, TaskError,
};

/// The values of TaskFlow's tests, with a repeat.
fn collection() -> Vec<Value> {
    vec![json!(3), json!(2), json!(3), json!(5)]
}

/// How an engine under test is built for a flow.
type Build = fn(Flow) -> EngineBuilder;

/// Each engine under test: its name and how it is built.
fn engines() -> [(&'static str, Build); 2] {
    [
        ("serial", |flow| Engine::builder(flow)),
        ("parallel", |flow| {
            Engine::builder(flow).executor(Parallel::new(2).expect("pool starts"))
        }),
    ]
}

/// What a task saw, in the order it ran.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    fn push(&self, value: Value) {
        self.0.lock().unwrap().push(value);
    }

    fn values(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

/// A task requiring `x` that records it, then fails on its first
/// `failures` runs (`usize::MAX`: always), as TaskFlow's
/// `FailingTaskWithOneArg`.
fn records_x(name: &str, seen: &Seen, failures: usize) -> TaskAtom {
    let seen = seen.clone();
    let runs = AtomicUsize::new(0);
    atom(
        name,
        task_fn(move |ctx| {
            let x: Value = ctx.input("x")?;
            seen.push(x.clone());
            if runs.fetch_add(1, Ordering::SeqCst) < failures {
                Err(TaskError::new("RuntimeError", format!("Woot with {x}")))
            } else {
                Ok(x)
            }
        }),
    )
    .requires(["x"])
    .provides("y")
}

/// `flow-1` of TaskFlow's nested tests: `task1`, then `flow-2` run under
/// the controller `r1` (providing `x`) holding `task2`, which records `x`
/// and always fails.
fn nested(controller: impl Retry, seen: &Seen) -> Flow {
    Linear::new("flow-1")
        .add(atom("task1", task_fn(|_| Ok(json!(5)))))
        .add(
            Linear::new("flow-2")
                .add(records_x("task2", seen, usize::MAX))
                .with_retry(retry("r1", controller).provides("x")),
        )
        .into()
}

/// Runs `flow` on `builder`, which must fail; returns the state it ended in.
fn run_failing(builder: EngineBuilder, listener: &Arc<CapturingListener>) -> FlowState {
    let mut engine = builder.listener(listener.clone()).build().unwrap();
    match engine.run() {
        Err(EngineError::Failed {
            state, failures, ..
        }) => {
            assert!(!failures.is_empty(), "a failed flow names its failure");
            assert!(
                failures.iter().any(|f| f.kind == "RuntimeError"),
                "{failures:?}"
            );
            state
        }
        other => panic!("expected the flow to fail, got {other:?}"),
    }
}

/// The last state `atom` entered.
fn last_state(listener: &CapturingListener, atom: &str) -> Option<AtomState> {
    listener.states_of(atom).last().copied()
}

#[test]
fn for_each_tries_repeated_values() {
    for (engine, build) in engines() {
        let seen = Seen::default();
        let flow = Linear::new("flow-1")
            .add(records_x("t1", &seen, usize::MAX))
            .with_retry(retry("r1", ForEach::new(collection())).provides("x"));
        let listener = Arc::new(CapturingListener::new());
        let state = run_failing(build(flow.into()), &listener);
        assert_eq!(state, FlowState::Reverted, "{engine}");
        assert_eq!(seen.values(), collection(), "{engine}");
        assert_eq!(
            listener.states_of("r1"),
            [
                AtomState::Running,
                AtomState::Success,
                AtomState::Retrying,
                AtomState::Running,
                AtomState::Success,
                AtomState::Retrying,
                AtomState::Running,
                AtomState::Success,
                AtomState::Retrying,
                AtomState::Running,
                AtomState::Success,
                AtomState::Reverting,
                AtomState::Reverted,
            ],
            "{engine}"
        );
    }
}

#[test]
fn for_each_succeeds_on_a_repeated_value() {
    // Fails with 3, then with 2, then succeeds with the second 3: the
    // repeat is run, not skipped on the way to 5.
    for (engine, build) in engines() {
        let seen = Seen::default();
        let flow = Linear::new("flow-1")
            .add(records_x("t1", &seen, 2))
            .with_retry(retry("r1", ForEach::new(collection())).provides("x"));
        let mut engine_ = build(flow.into()).build().unwrap();
        assert_eq!(engine_.run().unwrap(), FlowState::Success, "{engine}");
        assert_eq!(seen.values(), [json!(3), json!(2), json!(3)], "{engine}");
        assert_eq!(engine_.storage().fetch("y"), Some(&json!(3)), "{engine}");
    }
}

#[test]
fn nested_for_each_revert() {
    for (engine, build) in engines() {
        let seen = Seen::default();
        let listener = Arc::new(CapturingListener::new());
        let state = run_failing(build(nested(ForEach::new(collection()), &seen)), &listener);
        assert_eq!(state, FlowState::Reverted, "{engine}");
        assert_eq!(seen.values(), collection(), "{engine}");
        assert_eq!(
            listener
                .states_of("r1")
                .iter()
                .filter(|s| **s == AtomState::Retrying)
                .count(),
            3,
            "{engine}"
        );
        assert_eq!(last_state(&listener, "r1"), Some(AtomState::Reverted));
        assert_eq!(last_state(&listener, "task2"), Some(AtomState::Reverted));
    }
}

#[test]
fn nested_for_each_revert_all() {
    for (engine, build) in engines() {
        let seen = Seen::default();
        let listener = Arc::new(CapturingListener::new());
        let controller = ForEach::new(collection()).revert_all();
        let state = run_failing(build(nested(controller, &seen)), &listener);
        assert_eq!(state, FlowState::Reverted, "{engine}");
        assert_eq!(seen.values(), collection(), "{engine}");
        assert_eq!(last_state(&listener, "r1"), Some(AtomState::Reverted));
        assert_eq!(last_state(&listener, "task2"), Some(AtomState::Reverted));
        // Revert-all reverts what ran before the controller's scope too.
        assert_eq!(last_state(&listener, "task1"), Some(AtomState::Reverted));
    }
}

#[test]
fn parameterized_for_each_tries_repeated_values() {
    for (engine, build) in engines() {
        let seen = Seen::default();
        let flow = Linear::new("flow-1")
            .add(records_x("t1", &seen, usize::MAX))
            .with_retry(retry("r1", ParameterizedForEach::new()).provides("x"));
        let listener = Arc::new(CapturingListener::new());
        let builder = build(flow.into()).store(json!({ "values": collection() }));
        let state = run_failing(builder, &listener);
        assert_eq!(state, FlowState::Reverted, "{engine}");
        assert_eq!(seen.values(), collection(), "{engine}");
    }
}

#[test]
fn nested_parameterized_for_each_revert_and_revert_all() {
    for (engine, build) in engines() {
        for revert_all in [false, true] {
            let seen = Seen::default();
            let listener = Arc::new(CapturingListener::new());
            let controller = if revert_all {
                ParameterizedForEach::new().revert_all()
            } else {
                ParameterizedForEach::new()
            };
            let builder = build(nested(controller, &seen)).store(json!({ "values": collection() }));
            let state = run_failing(builder, &listener);
            assert_eq!(
                state,
                FlowState::Reverted,
                "{engine} revert_all={revert_all}"
            );
            assert_eq!(
                seen.values(),
                collection(),
                "{engine} revert_all={revert_all}"
            );
            assert_eq!(last_state(&listener, "r1"), Some(AtomState::Reverted));
            assert_eq!(last_state(&listener, "task2"), Some(AtomState::Reverted));
            if revert_all {
                assert_eq!(last_state(&listener, "task1"), Some(AtomState::Reverted));
            }
        }
    }
}
