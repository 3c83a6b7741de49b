//! The conformance suite every engine passes. Each case takes a factory
//! that turns a flow into an [`EngineBuilder`] configured with the engine
//! under test; [`engine_conformance!`](crate::engine_conformance) makes one
//! `#[test]` per case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use taskflow_patterns::{
    atom, decider_fn, retry, task_fn, AlwaysRevert, AlwaysRevertAll, AtomState, CompileError,
    Depth, Flow, FlowRegistry, FlowState, ForEach, Graph, Linear, ParameterizedForEach, TaskError,
    Times, Unordered,
};
use taskflow_persistence::{Backend, MemoryBackend, PersistenceError};

use crate::{CapturingListener, Engine, EngineBuilder, EngineError, Event, Listener};

mod arguments;
mod faults;
mod taskflow;
pub use arguments::*;
pub use faults::*;
pub use taskflow::*;

/// Configures a builder (fresh, or loaded from records) as the engine
/// under test, e.g. `|b| b` for the serial engine.
pub type Factory<'a> = &'a dyn Fn(EngineBuilder) -> EngineBuilder;

/// A shared log that test tasks write to: `name` on execute, `~name` on revert.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// An empty log.
    pub fn new() -> Self {
        Log::default()
    }

    /// Appends an entry.
    pub fn push(&self, entry: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry.into());
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The position of `entry` (panics if absent: for tests).
    pub fn position(&self, entry: &str) -> usize {
        let entries = self.entries();
        entries
            .iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("`{entry}` not in log {entries:?}"))
    }

    /// A task that logs its name, returns it, and logs `~name` on revert.
    pub fn task(&self, name: &str) -> taskflow_patterns::FnTask {
        let (log, rlog, n, rn) = (
            self.clone(),
            self.clone(),
            name.to_owned(),
            format!("~{name}"),
        );
        task_fn(move |_| {
            log.push(n.clone());
            Ok(json!(n))
        })
        .with_revert(move |_| {
            rlog.push(rn.clone());
            Ok(())
        })
    }

    /// A task that logs its name and fails; logs `~name` on revert.
    pub fn failing(&self, name: &str) -> taskflow_patterns::FnTask {
        let (log, rlog, n, rn) = (
            self.clone(),
            self.clone(),
            name.to_owned(),
            format!("~{name}"),
        );
        task_fn(move |_| {
            log.push(n.clone());
            Err(TaskError::new("Boom", format!("{n} exploded")))
        })
        .with_revert(move |_| {
            rlog.push(rn.clone());
            Ok(())
        })
    }

    /// A task that fails its first `failures` runs, then succeeds.
    pub fn flaky(&self, name: &str, failures: usize) -> taskflow_patterns::FnTask {
        let (log, rlog, n, rn) = (
            self.clone(),
            self.clone(),
            name.to_owned(),
            format!("~{name}"),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        task_fn(move |_| {
            log.push(n.clone());
            if runs.fetch_add(1, Ordering::SeqCst) < failures {
                Err(TaskError::new("Flaky", format!("{n} not yet")))
            } else {
                Ok(json!(n))
            }
        })
        .with_revert(move |_| {
            rlog.push(rn.clone());
            Ok(())
        })
    }
}

pub(crate) fn run(
    factory: Factory<'_>,
    flow: impl Into<Flow>,
) -> (Result<FlowState, EngineError>, Arc<CapturingListener>) {
    let capture = Arc::new(CapturingListener::new());
    let mut engine = factory(Engine::builder(flow))
        .listener(capture.clone())
        .build()
        .expect("builds");
    (engine.run(), capture)
}

pub(crate) fn failed_state(result: &Result<FlowState, EngineError>) -> FlowState {
    match result {
        Err(EngineError::Failed { state, .. }) => *state,
        other => panic!("expected a failed flow, got {other:?}"),
    }
}

/// A linear flow runs its atoms in order, passing data along.
pub fn linear_passes_data_in_order(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")).provides("x"))
        .add(
            atom(
                "b",
                task_fn(move |ctx| {
                    l.push("b");
                    Ok(json!(format!("{}+b", ctx.input::<String>("x")?)))
                }),
            )
            .requires(["x"])
            .provides("y"),
        )
        .add(atom("c", log.task("c")).requires(["y"]));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b", "c"]);
    assert_eq!(engine.storage().fetch("y"), Some(&json!("a+b")));
    assert_eq!(engine.storage().fetch_all().len(), 2);
}

/// Every child of an unordered flow runs; what follows waits for all.
pub fn unordered_runs_all_children(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(
            Unordered::new("u")
                .add_all((0..5).map(|i| atom(format!("u{i}"), log.task(&format!("u{i}"))))),
        )
        .add(atom("after", log.task("after")));
    let (result, _) = run(factory, flow);
    assert_eq!(result.unwrap(), FlowState::Success);
    assert_eq!(log.entries().len(), 6);
    assert_eq!(log.position("after"), 5);
}

/// A graph runs in the order its data and links require; nested flows of
/// every kind compose.
pub fn graph_and_nesting(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let flow = Graph::new("g")
        .add(
            atom(
                "sum",
                task_fn(move |ctx| {
                    l.push("sum");
                    Ok(json!(ctx.input::<i64>("a")? + ctx.input::<i64>("b")?))
                }),
            )
            .requires(["a", "b"])
            .provides("total"),
        )
        .add(atom("a", task_fn(|_| Ok(json!(1)))).provides("a"))
        .add(
            Linear::new("inner")
                .add(atom("b0", log.task("b0")))
                .add(atom("b", task_fn(|_| Ok(json!(2)))).provides("b")),
        )
        .add(atom("last", log.task("last")))
        .link("sum", "last");
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    engine.run().unwrap();
    assert_eq!(engine.storage().fetch("total"), Some(&json!(3)));
    assert!(log.position("b0") < log.position("sum"));
    assert!(log.position("sum") < log.position("last"));
}

/// `provides` by position and by key, `rebind`, `inject`, optional
/// arguments and the store all feed arguments.
pub fn argument_binding(factory: Factory<'_>) {
    let seen = Log::new();
    let s = seen.clone();
    let flow = Linear::new("f")
        .add(atom("pair", task_fn(|_| Ok(json!([1, 2])))).provides_seq(["one", "two"]))
        .add(atom("map", task_fn(|_| Ok(json!({"k": "v", "other": 0})))).provides_map(["k"]))
        .add(
            atom(
                "use",
                task_fn(move |ctx| {
                    let args: Vec<String> = ctx
                        .inputs()
                        .iter()
                        .map(|(n, v)| format!("{n}={v}"))
                        .collect();
                    s.push(args.join(","));
                    Ok(Value::Null)
                }),
            )
            .requires(["first", "k", "constant", "region"])
            .rebind("first", "two")
            .inject("constant", 42)
            .optional("missing", "dflt")
            .optional("one", 0),
        );
    let mut engine = factory(Engine::builder(flow))
        .store(json!({"region": "eu"}))
        .build()
        .unwrap();
    engine.run().unwrap();
    assert_eq!(
        seen.entries(),
        [r#"first=2,k="v",constant=42,region="eu",missing="dflt",one=1"#]
    );
    assert_eq!(engine.storage().fetch("one"), Some(&json!(1)));
}

/// On failure, every executed atom reverts, dependents before their
/// dependencies, and the flow ends `REVERTED` with the failure.
pub fn revert_in_reverse_order(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("b", log.task("b")))
        .add(atom("c", log.failing("c")))
        .add(atom("d", log.task("d")));
    let (result, capture) = run(factory, flow);
    assert_eq!(failed_state(&result), FlowState::Reverted);
    let err = result.unwrap_err();
    assert_eq!(err.failures().len(), 1);
    assert_eq!(err.failures()[0].atom.as_deref(), Some("c"));
    assert_eq!(log.entries(), ["a", "b", "c", "~c", "~b", "~a"]);
    assert_eq!(capture.states_of("d"), []);
    assert_eq!(
        capture.states_of("b"),
        [
            AtomState::Running,
            AtomState::Success,
            AtomState::Reverting,
            AtomState::Reverted
        ]
    );
    assert_eq!(
        capture.flow_states(),
        [FlowState::Running, FlowState::Reverted]
    );
}

/// On a graph, an atom reverts only after everything that depends on it.
pub fn revert_order_on_a_graph(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Graph::new("g")
        .add(atom("root", log.task("root")).provides("r"))
        .add(atom("left", log.task("left")).requires(["r"]).provides("l"))
        .add(
            atom("right", log.task("right"))
                .requires(["r"])
                .provides("rr"),
        )
        .add(atom("leaf", log.task("leaf")).requires(["l"]).provides("f"))
        .add(atom("boom", log.failing("boom")).requires(["f", "rr"]));
    let (result, _) = run(factory, flow);
    assert_eq!(failed_state(&result), FlowState::Reverted);
    let p = |e: &str| log.position(e);
    assert!(p("~boom") < p("~leaf"));
    assert!(p("~leaf") < p("~left") && p("~left") < p("~root"));
    assert!(p("~right") < p("~root"));
    assert_eq!(
        log.entries().iter().filter(|e| e.starts_with('~')).count(),
        5
    );
}

/// `revert` sees the atom's own result or failure and the flow's failures.
pub fn revert_sees_results_and_failures(factory: Factory<'_>) {
    let seen = Log::new();
    let (s1, s2) = (seen.clone(), seen.clone());
    let flow = Linear::new("f")
        .add(atom(
            "ok",
            task_fn(|_| Ok(json!("made"))).with_revert(move |ctx| {
                s1.push(format!(
                    "ok:{}:{}",
                    ctx.own_result().unwrap_or(&Value::Null),
                    ctx.flow_failures().len()
                ));
                Ok(())
            }),
        ))
        .add(atom(
            "bad",
            task_fn(|_| Err(TaskError::new("Nope", "no"))).with_revert(move |ctx| {
                s2.push(format!(
                    "bad:{}",
                    ctx.own_failure().map_or("", |f| f.kind.as_str())
                ));
                Ok(())
            }),
        ));
    let (result, _) = run(factory, flow);
    assert_eq!(failed_state(&result), FlowState::Reverted);
    assert_eq!(seen.entries(), ["bad:Nope", r#"ok:"made":1"#]);
}

/// A revert that fails ends `REVERT_FAILURE` keeping both failures, and the
/// flow ends `FAILURE`.
pub fn revert_failure_keeps_both_failures(factory: Factory<'_>) {
    let flow = Linear::new("f")
        .add(atom(
            "stuck",
            task_fn(|_| Ok(json!(1))).with_revert(|_| Err(TaskError::new("Stuck", "cannot undo"))),
        ))
        .add(atom(
            "bad",
            task_fn(|_| Err(TaskError::new("Boom", "exploded"))),
        ));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    let err = engine.run().unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Failed {
                state: FlowState::Failure,
                ..
            }
        ),
        "{err}"
    );
    let kinds: Vec<&str> = err.failures().iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["Boom", "Stuck"]);
    let stuck = engine.storage().atom_detail("stuck").unwrap();
    assert_eq!(stuck.state, AtomState::RevertFailure);
    assert_eq!(
        stuck.revert_failure.as_ref().unwrap().message,
        "cannot undo"
    );
    let bad = engine.storage().atom_detail("bad").unwrap();
    assert_eq!(bad.failure.as_ref().unwrap().kind, "Boom");
    assert!(err.to_string().contains("flow `f` ended FAILURE"), "{err}");
}

/// `Times` retries its scope, reverting it first, until it succeeds.
pub fn times_retries_until_success(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("before", log.task("before")))
        .add(
            Linear::new("scope")
                .add(atom("a", log.task("a")))
                .add(atom("flaky", log.flaky("flaky", 2)))
                .with_retry(retry("r", Times::new(3)).provides("attempt")),
        )
        .add(atom("after", log.task("after")));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(
        log.entries(),
        [
            "before", "a", "flaky", "~flaky", "~a", "a", "flaky", "~flaky", "~a", "a", "flaky",
            "after"
        ]
    );
    let r = engine.storage().atom_detail("r").unwrap();
    assert_eq!(r.history.len(), 3);
    assert_eq!(r.history.attempts()[0].failures["flaky"].kind, "Flaky");
    assert!(r.history.attempts()[2].failures.is_empty());
    assert_eq!(engine.storage().fetch("attempt"), Some(&json!(3)));
}

/// `Times` gives up after its attempts (`REVERT`); with no controller
/// outside, as in TaskFlow, only its subflow reverts: the atom before it
/// stays `SUCCESS`, the flow ends `REVERTED`, and its failure is the last
/// attempt's (the earlier one is in the controller's history). With
/// `defer_reverts()`, the whole flow reverts.
pub fn times_exhausted_reverts_the_flow(factory: Factory<'_>) {
    for defer in [false, true] {
        let log = Log::new();
        let flow = Linear::new("f")
            .add(atom("before", log.task("before")))
            .add(
                Linear::new("scope")
                    .add(atom("bad", log.failing("bad")))
                    .with_retry(Times::new(2)),
            );
        let capture = Arc::new(CapturingListener::new());
        let mut builder = factory(Engine::builder(flow)).listener(capture.clone());
        if defer {
            builder = builder.defer_reverts();
        }
        let mut engine = builder.build().unwrap();
        let result = engine.run();
        assert_eq!(failed_state(&result), FlowState::Reverted);
        let mut expected = vec!["before", "bad", "~bad", "bad", "~bad"];
        if defer {
            expected.push("~before");
        }
        assert_eq!(log.entries(), expected, "defer_reverts: {defer}");
        let before = engine.storage().atom_detail("before").unwrap().state;
        let want = if defer {
            AtomState::Reverted
        } else {
            AtomState::Success
        };
        assert_eq!(before, want, "defer_reverts: {defer}");
        let err = result.unwrap_err();
        assert_eq!(err.failures().len(), 1, "{err}");
        let retry = engine.storage().atom_detail("scope_retry").unwrap();
        assert_eq!(retry.history.len(), 2);
        assert_eq!(
            capture.states_of("scope_retry"),
            [
                AtomState::Running,
                AtomState::Success,
                AtomState::Retrying,
                AtomState::Running,
                AtomState::Success,
                AtomState::Reverting,
                AtomState::Reverted
            ]
        );
    }
}

/// `ForEach` provides each value in turn until one attempt succeeds.
pub fn for_each_tries_each_value(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let flow = Linear::new("f").add(
        Linear::new("scope")
            .add(
                atom(
                    "connect",
                    task_fn(move |ctx| {
                        let host: String = ctx.input("host")?;
                        l.push(host.clone());
                        if host == "c" {
                            Ok(json!(host))
                        } else {
                            Err(TaskError::new("Refused", host))
                        }
                    }),
                )
                .requires(["host"])
                .provides("connected"),
            )
            .with_retry(
                retry("hosts", ForEach::new([json!("a"), json!("b"), json!("c")])).provides("host"),
            ),
    );
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    engine.run().unwrap();
    assert_eq!(log.entries(), ["a", "b", "c"]);
    assert_eq!(engine.storage().fetch("connected"), Some(&json!("c")));
}

/// `ParameterizedForEach` takes its values from the store.
pub fn parameterized_for_each_uses_its_argument(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let flow = Linear::new("f").add(
        Linear::new("scope")
            .add(
                atom(
                    "try",
                    task_fn(move |ctx| {
                        let v: i64 = ctx.input("v")?;
                        l.push(v.to_string());
                        Err(TaskError::new("No", "never"))
                    }),
                )
                .requires(["v"]),
            )
            .with_retry(retry("each", ParameterizedForEach::new()).provides("v")),
    );
    let (result, _) = run(&|b| factory(b).store(json!({"values": [3, 1, 2]})), flow);
    assert_eq!(failed_state(&result), FlowState::Reverted);
    assert_eq!(log.entries(), ["3", "1", "2"]);
}

/// Nested scopes: the innermost controller decides first; `REVERT` passes
/// the failure to the one outside, which retries its whole scope.
pub fn nested_retry_revert_passes_outward(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("outer")
        .add(atom("o", log.task("o")))
        .add(
            Linear::new("inner")
                .add(atom("i", log.task("i")))
                .add(atom("flaky", log.flaky("flaky", 1)))
                .with_retry(retry("inner_r", AlwaysRevert)),
        )
        .with_retry(retry("outer_r", Times::new(2)));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(
        log.entries(),
        ["o", "i", "flaky", "~flaky", "~i", "~o", "o", "i", "flaky"]
    );
    let outer = engine.storage().atom_detail("outer_r").unwrap();
    assert_eq!(outer.history.len(), 2);
    assert!(outer.history.attempts()[0].failures.contains_key("flaky"));
}

/// Nested scopes: an inner `Times` retries on its own before passing on.
pub fn nested_retry_inner_retries_first(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("outer")
        .add(atom("o", log.task("o")))
        .add(
            Linear::new("inner")
                .add(atom("flaky", log.flaky("flaky", 3)))
                .with_retry(retry("inner_r", Times::new(2))),
        )
        .with_retry(retry("outer_r", Times::new(2)));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    // Inner: 2 attempts, then outer retries everything; inner starts afresh.
    assert_eq!(
        log.entries(),
        ["o", "flaky", "~flaky", "flaky", "~flaky", "~o", "o", "flaky", "~flaky", "flaky"]
    );
}

/// `REVERT_ALL` reverts the whole flow, whatever outer controllers would say.
pub fn revert_all_overrides_outer_controllers(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("outer")
        .add(atom("o", log.task("o")))
        .add(
            Linear::new("inner")
                .add(atom("bad", log.failing("bad")))
                .with_retry(retry("inner_r", AlwaysRevertAll)),
        )
        .with_retry(retry("outer_r", Times::new(5)));
    let (result, _) = run(factory, flow);
    assert_eq!(failed_state(&result), FlowState::Reverted);
    assert_eq!(log.entries(), ["o", "bad", "~bad", "~o"]);
}

fn decider_flow(log: &Log, depth: Depth) -> Graph {
    Graph::new("g")
        .add(atom("check", task_fn(|_| Ok(json!(false)))))
        .add(
            Linear::new("branch")
                .add(atom("target", log.task("target")))
                .add(atom("next", log.task("next"))),
        )
        .add(atom("after", log.task("after")))
        .link_if(
            "check",
            "branch",
            decider_fn(|h| h["check"] == json!(true)),
            depth,
        )
        .link("branch", "after")
}

/// A false decider ignores its target and, by depth, what follows.
pub fn deciders_ignore_by_depth(factory: Factory<'_>) {
    for (depth, ran) in [
        (Depth::All, vec![]),
        (Depth::Flow, vec!["after"]),
        (Depth::Neighbors, vec!["after"]),
        (Depth::Atom, vec!["next", "after"]),
    ] {
        let log = Log::new();
        let (result, capture) = run(factory, decider_flow(&log, depth));
        assert_eq!(result.unwrap(), FlowState::Success, "{depth:?}");
        assert_eq!(log.entries(), ran, "{depth:?}");
        assert_eq!(
            capture.states_of("target"),
            [AtomState::Ignore],
            "{depth:?}"
        );
    }
    let log = Log::new();
    let flow = Graph::new("g")
        .add(atom("check", task_fn(|_| Ok(json!(true)))))
        .add(atom("target", log.task("target")))
        .link_if(
            "check",
            "target",
            decider_fn(|h| h["check"] == json!(true)),
            Depth::All,
        );
    assert_eq!(run(factory, flow).0.unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["target"]);
}

/// A listener (or another thread) suspends the flow; running again resumes
/// where it stopped, without re-running finished atoms.
pub fn suspend_and_resume(factory: Factory<'_>) {
    struct SuspendAfter(String, crate::SuspendHandle);
    impl Listener for SuspendAfter {
        fn on_atom(&self, e: &crate::AtomEvent) {
            if *e.atom == *self.0 && e.to == AtomState::Success {
                self.1.suspend();
            }
        }
    }
    let log = Log::new();
    let flow =
        Linear::new("f").add_all((0..5).map(|i| atom(format!("a{i}"), log.task(&format!("a{i}")))));
    let handle = crate::SuspendHandle::new();
    let mut engine = factory(Engine::builder(flow))
        .suspend_handle(handle.clone())
        .listener(SuspendAfter("a1".into(), handle))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    assert_eq!(log.entries(), ["a0", "a1"]);
    assert_eq!(engine.storage().flow_state(), FlowState::Suspended);
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a0", "a1", "a2", "a3", "a4"]);
}

/// `run_iter` yields every transition, flow and atoms, then ends.
pub fn run_iter_yields_state_changes(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("b", log.failing("b")));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    let items: Vec<Result<Event, EngineError>> = engine.run_iter().collect();
    let (last, events) = items.split_last().unwrap();
    assert!(matches!(
        last,
        Err(EngineError::Failed {
            state: FlowState::Reverted,
            ..
        })
    ));
    let phases: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Ok(Event::Engine(phase)) => Some(phase.to_string()),
            _ => None,
        })
        .collect();
    // The loop's phases, as TaskFlow's run_iter yields them: RESUMING
    // first, rounds of scheduling and analyzing (waiting where the
    // executor runs elsewhere), GAME_OVER right before the flow's end.
    assert_eq!(phases.first().map(String::as_str), Some("RESUMING"));
    assert_eq!(phases.last().map(String::as_str), Some("GAME_OVER"));
    assert!(phases.iter().any(|p| p == "SCHEDULING"), "{phases:?}");
    assert!(phases.iter().any(|p| p == "ANALYZING"), "{phases:?}");
    assert!(matches!(
        events[events.len() - 2],
        Ok(Event::Engine(crate::EngineState::GameOver))
    ));
    let summary: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, Ok(Event::Engine(_))))
        .map(|e| match e {
            Ok(Event::Flow(f)) => format!("flow:{}", f.to),
            Ok(Event::Atom(a)) => format!("{}:{}", a.atom, a.to),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("error:{e}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "flow:RUNNING",
            "a:RUNNING",
            "a:SUCCESS",
            "b:RUNNING",
            "b:FAILURE",
            "b:REVERTING",
            "b:REVERTED",
            "a:REVERTING",
            "a:REVERTED",
            "flow:REVERTED"
        ]
    );
}

/// Bad input at run time never panics: a panicking task, a missing input
/// and an input of the wrong type each become a failure naming the atom.
pub fn bad_input_becomes_failures(factory: Factory<'_>) {
    let flow = Linear::new("f").add(atom("p", task_fn(|_| panic!("kaboom {}", 7))));
    let err = run(factory, flow).0.unwrap_err();
    let f = &err.failures()[0];
    assert_eq!(
        (f.kind.as_str(), f.message.as_str(), f.atom.as_deref()),
        ("panic", "kaboom 7", Some("p"))
    );

    let flow = Linear::new("f")
        .add(atom("n", task_fn(|_| Ok(json!("not a number")))).provides("n"))
        .add(atom("use", task_fn(|ctx| Ok(json!(ctx.input::<u32>("n")? + 1)))).requires(["n"]));
    let err = run(factory, flow).0.unwrap_err();
    let f = &err.failures()[0];
    assert_eq!(f.kind, TaskError::INVALID_INPUT);
    assert!(
        f.message.contains("input `n` of atom `use`") && f.message.contains("u32"),
        "{f}"
    );

    let flow = Graph::new("g")
        .add(atom("check", task_fn(|_| Ok(json!(0)))))
        .add(atom("skipped", task_fn(|_| Ok(json!(1)))).provides("x"))
        .add(atom("needs", task_fn(|_| Ok(Value::Null))).requires(["x"]))
        .link_if("check", "skipped", decider_fn(|_| false), Depth::Atom);
    let err = run(factory, flow).0.unwrap_err();
    let f = &err.failures()[0];
    assert_eq!(f.kind, TaskError::MISSING_INPUT);
    assert_eq!(f.atom.as_deref(), Some("needs"));
    assert!(
        f.message.contains("requires `x`")
            && f.message.contains("`skipped` provides it, but is IGNORE"),
        "{f}"
    );
}

/// `build` reports every compile and validation error, naming culprits.
pub fn build_reports_every_error(factory: Factory<'_>) {
    let flow = Linear::new("f")
        .add(atom("a", task_fn(|_| Ok(Value::Null))).requires(["nowhere"]))
        .add(atom("b", task_fn(|_| Ok(Value::Null))).requires(["also_nowhere"]));
    let Err(EngineError::Compile(errors)) = factory(Engine::builder(flow)).build() else {
        panic!("should not build")
    };
    assert_eq!(errors.errors().len(), 2);
    assert!(
        matches!(&errors.errors()[1], CompileError::MissingRequirement { atom, symbol, .. } if atom == "b" && symbol == "also_nowhere")
    );
    let err = factory(Engine::builder(Linear::new("f")))
        .store(json!([1]))
        .build()
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::InvalidStore(_)));
}

/// Every transition is in the records: after a run the backend's flow
/// detail matches the engine's.
pub fn records_hold_every_transition(factory: Factory<'_>) {
    let backend = Arc::new(MemoryBackend::new());
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")).provides("x"))
        .add(
            Linear::new("s")
                .add(atom("b", log.flaky("b", 1)))
                .with_retry(Times::new(2)),
        );
    let mut engine = factory(Engine::builder(flow))
        .shared_persistence(backend.clone())
        .build()
        .unwrap();
    engine.run().unwrap();
    let stored = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    assert_eq!(stored.state, FlowState::Success);
    assert_eq!(stored.atom_details, engine.storage().atom_details());
    assert_eq!(
        stored.atom_detail("a").unwrap().result.as_deref(),
        Some(&json!("a"))
    );
    assert_eq!(stored.atom_detail("s_retry").unwrap().history.len(), 2);
    assert_eq!(stored.meta["store"], json!({}));
    let book = backend.get_logbook(engine.storage().logbook_id()).unwrap();
    assert_eq!(book.flow_details.len(), 1);
}

/// A reverted flow runs again from the start when asked to.
pub fn reverted_flow_runs_again(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("b", log.flaky("b", 1)));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert!(engine.run().is_err());
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b", "~b", "~a", "a", "b"]);
}

/// Tasks report progress to listeners.
pub fn progress_reaches_listeners(factory: Factory<'_>) {
    let backend = Arc::new(MemoryBackend::new());
    let seen_in_records = Arc::new(Mutex::new(None));
    let (reader, seen) = (backend.clone(), seen_in_records.clone());
    let flow = Linear::new("f").add(atom(
        "p",
        task_fn(move |ctx| {
            ctx.progress(0.5);
            // Another reader of the records sees the report while the task
            // runs (the worker engine records it when the report arrives).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let progress = reader
                    .list_logbooks()
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .flat_map(|b| b.flow_details)
                    .flat_map(|f| f.atom_details)
                    .find(|d| &*d.name == "p")
                    .map(|d| d.progress());
                if progress == Some(0.5) || std::time::Instant::now() > deadline {
                    *seen.lock().unwrap() = progress;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            ctx.progress(2.0);
            Ok(Value::Null)
        }),
    ));
    let capture = Arc::new(CapturingListener::new());
    let mut engine = factory(Engine::builder(flow))
        .shared_persistence(backend.clone())
        .listener(capture.clone())
        .build()
        .unwrap();
    engine.run().unwrap();
    // The engine reports 0 when the task starts and 1 when it ends, around
    // what the task reports (clamped), as TaskFlow does.
    assert_eq!(
        capture.progress(),
        [
            ("p".to_owned(), 0.0),
            ("p".to_owned(), 0.5),
            ("p".to_owned(), 1.0),
            ("p".to_owned(), 1.0)
        ]
    );
    assert_eq!(*seen_in_records.lock().unwrap(), Some(0.5));
    let records = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    let p = records.atom_detail("p").unwrap();
    assert_eq!(p.progress(), 1.0);
    assert!(!p
        .meta
        .contains_key(taskflow_persistence::AtomDetail::PROGRESS_KEY));
}

/// Suspends its engine when `atom` enters `state`.
struct SuspendOn(&'static str, AtomState, crate::SuspendHandle);

impl Listener for SuspendOn {
    fn on_atom(&self, e: &crate::AtomEvent) {
        if *e.atom == *self.0 && e.to == self.1 {
            self.2.suspend();
        }
    }
}

/// Runs `factory_name` of `registry` on `backend` until `atom` enters
/// `state`, as a process that stops there would; returns the flow detail id.
fn run_until(
    factory: Factory<'_>,
    registry: &FlowRegistry,
    backend: &Arc<dyn Backend>,
    atom: &'static str,
    state: AtomState,
) -> uuid::Uuid {
    let handle = crate::SuspendHandle::new();
    let builder = Engine::from_factory(registry, "flow", Value::Null).unwrap();
    let mut engine = factory(builder)
        .shared_persistence(backend.clone())
        .suspend_handle(handle.clone())
        .listener(SuspendOn(atom, state, handle))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    engine.storage().flow_detail_id()
}

fn resume(
    factory: Factory<'_>,
    registry: &FlowRegistry,
    backend: &Arc<dyn Backend>,
    id: uuid::Uuid,
) -> crate::Engine {
    factory(Engine::load_with(backend.clone(), id, registry).unwrap())
        .build()
        .unwrap()
}

/// A registry whose factory `flow` builds `build()`.
/// The records of a run of the factory `flow` of `registry`, written but
/// not run, as a process that died right after writing them leaves them:
/// the backend and the flow detail's id.
pub(crate) fn prepared_records(
    factory: Factory<'_>,
    registry: &FlowRegistry,
) -> (Arc<dyn Backend>, uuid::Uuid) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::from_factory(registry, "flow", Value::Null).unwrap())
        .shared_persistence(backend.clone())
        .build()
        .unwrap();
    engine.prepare().unwrap();
    (backend, engine.storage().flow_detail_id())
}

/// Writes `records` (edited by a test) back over the flow detail.
pub(crate) fn save_records(backend: &dyn Backend, records: &taskflow_persistence::FlowDetail) {
    let book = records
        .logbook_id()
        .unwrap()
        .expect("the run names its logbook");
    backend.save_flow_detail(book, records).unwrap();
}

pub(crate) fn registry_of(build: impl Fn() -> Flow + Send + Sync + 'static) -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    registry.register("flow", move |_| Ok(build()));
    registry
}

/// A flow resumed from its records in a new engine skips atoms already
/// `SUCCESS` and runs again an atom found `RUNNING`.
pub fn resume_skips_finished_atoms(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry =
        registry_of(move || {
            Linear::new("f")
                .add_all((0..5).map(|i| {
                    atom(format!("a{i}"), l.task(&format!("a{i}"))).provides(format!("x{i}"))
                }))
                .into()
        });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let id = run_until(factory, &registry, &backend, "a1", AtomState::Success);
    // As if the process had died while a2 ran.
    let a2 = backend
        .get_flow_detail(id)
        .unwrap()
        .atom_detail("a2")
        .unwrap()
        .uuid;
    backend
        .update_atom_state(
            id,
            a2,
            AtomState::Running,
            taskflow_patterns::Intention::Execute,
            0,
        )
        .unwrap();
    let mut engine = resume(factory, &registry, &backend, id);
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a0", "a1", "a2", "a3", "a4"]);
    assert_eq!(engine.storage().fetch("x0"), Some(&json!("a0")));
    assert_eq!(
        backend.get_flow_detail(id).unwrap().state,
        FlowState::Success
    );
}

/// A revert in progress continues after a resume; nothing runs forward again.
pub fn resume_continues_a_revert(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .add(atom("c", l.task("c")))
            .add(atom("boom", l.failing("boom")))
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let id = run_until(factory, &registry, &backend, "c", AtomState::Reverted);
    assert_eq!(log.entries(), ["a", "b", "c", "boom", "~boom", "~c"]);
    let mut engine = resume(factory, &registry, &backend, id);
    let err = engine.run().unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Failed {
                state: FlowState::Reverted,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.failures()[0].atom.as_deref(), Some("boom"));
    assert_eq!(
        log.entries(),
        ["a", "b", "c", "boom", "~boom", "~c", "~b", "~a"]
    );
}

/// A retry controller's history carries on after a resume.
pub fn resume_keeps_retry_history(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let flaky = log.flaky("flaky", 2);
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(
                Linear::new("s")
                    .add(atom("flaky", flaky.clone()))
                    .with_retry(retry("r", Times::new(3))),
            )
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let id = run_until(factory, &registry, &backend, "r", AtomState::Retrying);
    let mut engine = resume(factory, &registry, &backend, id);
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(
        log.entries(),
        ["a", "flaky", "~flaky", "flaky", "~flaky", "flaky"]
    );
    assert_eq!(engine.storage().atom_detail("r").unwrap().history.len(), 3);
}

/// Records of a flow that changed incompatibly are refused, naming the
/// atom, unless the user accepts the change.
pub fn resume_refuses_a_changed_flow(factory: Factory<'_>) {
    let log = Log::new();
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let l = log.clone();
    let v1 = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .into()
    });
    let id = run_until(factory, &v1, &backend, "a", AtomState::Success);
    for (flow, atom, reason) in [
        (
            Linear::new("f")
                .add(atom("a", log.task("a")))
                .add(atom("b2", log.task("b"))),
            "b2",
            "is in the flow but not in its records",
        ),
        (
            Linear::new("f").add(atom("a", log.task("a"))),
            "b",
            "is in the records but not in the flow",
        ),
        (
            Linear::new("f")
                .add(atom("a", log.task("a")).version(2, 0))
                .add(atom("b", log.task("b"))),
            "a",
            "is version 2.0 in the flow but its records were written by version 1.0",
        ),
    ] {
        let flow: Flow = flow.into();
        let v2 = registry_of(move || flow.clone());
        let err = factory(Engine::load_with(backend.clone(), id, &v2).unwrap())
            .build()
            .err()
            .unwrap();
        let EngineError::Mismatch {
            atom: culprit,
            reason: why,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(culprit, atom);
        assert!(why.starts_with(reason), "{err}");
        assert!(err.to_string().contains("accept_changed_flow"), "{err}");
    }
    let l = log.clone();
    let v3 = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("c", l.task("c")))
            .into()
    });
    let mut engine = factory(Engine::load_with(backend.clone(), id, &v3).unwrap())
        .accept_changed_flow()
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "c"]);
    let err = Engine::load(backend, id).err().unwrap();
    assert!(
        err.to_string().contains("flow factory named `flow`"),
        "{err}"
    );
}

/// Whether `err` is the `Fenced` refusal of a write at `presented` to the
/// flow detail `flow` owned at `held`.
fn is_fenced(err: &EngineError, flow: uuid::Uuid, held: u64, presented: u64) -> bool {
    matches!(
        err,
        EngineError::Persistence(PersistenceError::Fenced { flow: f, held: h, presented: p })
            if *f == flow && *h == held && *p == presented
    )
}

/// Two engines on one flow detail, as two conductors whose claims
/// overlapped: while the first (epoch 1) runs, the second is loaded with
/// epoch 2 and fences the records. The first engine's next checkpoint is
/// refused, and its run returns that `Fenced` error without running more
/// atoms; the second resumes from the first's last checkpoint and
/// completes the flow.
pub fn stale_owner_is_fenced_out(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry =
        registry_of(move || {
            Linear::new("f")
                .add_all((0..4).map(|i| {
                    atom(format!("a{i}"), l.task(&format!("a{i}"))).provides(format!("x{i}"))
                }))
                .into()
        });
    // When a1 has succeeded (and is checkpointed), the second owner claims
    // the flow: it is loaded, and fences the records at build.
    struct TakeOver {
        second: Mutex<Option<EngineBuilder>>,
        built: Mutex<Option<Engine>>,
    }
    impl Listener for TakeOver {
        fn on_atom(&self, e: &crate::AtomEvent) {
            if &*e.atom == "a1" && e.to == AtomState::Success {
                let second = self.second.lock().unwrap().take();
                if let Some(second) = second {
                    *self.built.lock().unwrap() = Some(second.build().unwrap());
                }
            }
        }
    }
    let take_over = Arc::new(TakeOver {
        second: Mutex::new(None),
        built: Mutex::new(None),
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let builder = Engine::from_factory(&registry, "flow", Value::Null).unwrap();
    let mut first = factory(builder)
        .shared_persistence(backend.clone())
        .owner_epoch(1)
        .listener(take_over.clone())
        .build()
        .unwrap();
    assert_eq!(first.storage().owner_epoch(), 1);
    first.prepare().unwrap();
    let id = first.storage().flow_detail_id();
    assert_eq!(backend.get_flow_detail(id).unwrap().owner_epoch, 1);
    *take_over.second.lock().unwrap() =
        Some(factory(Engine::load_with(backend.clone(), id, &registry).unwrap()).owner_epoch(2));

    let err = first.run().unwrap_err();
    assert!(is_fenced(&err, id, 2, 1), "{err}");
    assert!(err.to_string().contains("lost its claim"), "{err}");
    // Nothing ran after the refused checkpoint (a2 RUNNING).
    assert_eq!(log.entries(), ["a0", "a1"]);
    let stored = backend.get_flow_detail(id).unwrap();
    assert_eq!(stored.owner_epoch, 2);
    assert_eq!(stored.atom_detail("a2").unwrap().state, AtomState::Pending);
    // Running the stale engine again is refused at once, too.
    let err = first.run().unwrap_err();
    assert!(is_fenced(&err, id, 2, 1), "{err}");
    assert_eq!(log.entries(), ["a0", "a1"]);

    let mut second = take_over
        .built
        .lock()
        .unwrap()
        .take()
        .expect("the second engine was built");
    assert_eq!(second.storage().owner_epoch(), 2);
    assert_eq!(second.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a0", "a1", "a2", "a3"]);
    assert_eq!(second.storage().fetch("x1"), Some(&json!("a1")));
    let stored = backend.get_flow_detail(id).unwrap();
    assert_eq!(stored.state, FlowState::Success);
    assert_eq!(stored.owner_epoch, 2);
}

/// Loading records owned at a higher epoch than the one given is refused
/// at build, naming both epochs; loading at the same or a higher epoch
/// fences them there; loading without an epoch takes the next one.
pub fn load_below_the_stored_epoch_is_refused(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let builder = Engine::from_factory(&registry, "flow", Value::Null).unwrap();
    let mut engine = factory(builder)
        .shared_persistence(backend.clone())
        .owner_epoch(5)
        .build()
        .unwrap();
    engine.prepare().unwrap();
    let id = engine.storage().flow_detail_id();
    let load = || factory(Engine::load_with(backend.clone(), id, &registry).unwrap());

    let err = load().owner_epoch(4).build().err().unwrap();
    assert!(is_fenced(&err, id, 5, 4), "{err}");
    assert!(err.to_string().contains("epoch 5"), "{err}");
    assert_eq!(backend.get_flow_detail(id).unwrap().owner_epoch, 5);

    assert_eq!(
        load()
            .owner_epoch(5)
            .build()
            .unwrap()
            .storage()
            .owner_epoch(),
        5
    );
    let mut newer = load().owner_epoch(6).build().unwrap();
    assert_eq!(backend.get_flow_detail(id).unwrap().owner_epoch, 6);
    // The first engine lost its claim: its first checkpoint is refused.
    let err = engine.run().unwrap_err();
    assert!(is_fenced(&err, id, 6, 5), "{err}");
    assert!(log.entries().is_empty());
    // Without an epoch, a load takes the next one, fencing the claim at 6.
    let mut taker = load().build().unwrap();
    assert_eq!(taker.storage().owner_epoch(), 7);
    let err = newer.run().unwrap_err();
    assert!(is_fenced(&err, id, 7, 6), "{err}");
    assert_eq!(taker.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b"]);
}

/// Two engines that load the same flow detail without an epoch (two
/// processes resuming one crashed run) never both record it: the later
/// load takes it at the next epoch, and the earlier engine is fenced out
/// at its next checkpoint, having recorded nothing since.
pub fn two_loads_of_one_flow_detail_never_both_run_it(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut first = factory(Engine::from_factory(&registry, "flow", Value::Null).unwrap())
        .shared_persistence(backend.clone())
        .build()
        .unwrap();
    first.prepare().unwrap();
    let id = first.storage().flow_detail_id();
    let load = || {
        factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
            .build()
            .unwrap()
    };
    let (mut one, mut two) = (load(), load());
    assert!(two.storage().owner_epoch() > one.storage().owner_epoch());
    let err = one.run().unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Persistence(PersistenceError::Fenced { .. })
        ),
        "{err}"
    );
    let err = first.run().unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Persistence(PersistenceError::Fenced { .. })
        ),
        "{err}"
    );
    assert!(log.entries().is_empty(), "{:?}", log.entries());
    assert_eq!(two.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b"]);
}

/// A flow detail posted with no atom details (as a job board posts one:
/// the flow's definition and store, nothing run) is loaded as a fresh run:
/// every atom runs once, and the records get every atom's detail.
pub fn load_of_a_posted_flow_detail_runs_it(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")).provides("x"))
            .add(atom("b", l.task("b")).requires(["x"]))
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut book = taskflow_persistence::LogBook::new("posted");
    let mut posted = taskflow_persistence::FlowDetail::new("f");
    posted
        .meta
        .insert("factory".into(), json!({ "name": "flow", "args": null }));
    posted.meta.insert("store".into(), json!({}));
    posted
        .meta
        .insert("logbook".into(), json!(book.uuid.to_string()));
    let id = posted.uuid;
    book.flow_details.push(posted);
    backend.save_logbook(&book).unwrap();
    let mut engine = factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
        .owner_epoch(1)
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b"]);
    let stored = backend.get_flow_detail(id).unwrap();
    assert_eq!(stored.owner_epoch, 1);
    assert_eq!(stored.atom_details, engine.storage().atom_details());
    assert!(stored
        .atom_details
        .iter()
        .all(|d| d.state == AtomState::Success));
}

/// Makes one `#[test]` per conformance case for an engine factory
/// expression of type `Fn(EngineBuilder) -> EngineBuilder`.
///
/// ```ignore
/// taskflow_engine::engine_conformance!(|builder: EngineBuilder| builder);
/// ```
#[macro_export]
macro_rules! engine_conformance {
    ($factory:expr) => {
        $crate::engine_conformance!(@cases $factory;
            linear_passes_data_in_order unordered_runs_all_children graph_and_nesting
            argument_binding revert_in_reverse_order revert_order_on_a_graph
            revert_sees_results_and_failures revert_failure_keeps_both_failures
            times_retries_until_success times_exhausted_reverts_the_flow
            for_each_tries_each_value parameterized_for_each_uses_its_argument
            nested_retry_revert_passes_outward nested_retry_inner_retries_first
            revert_all_overrides_outer_controllers deciders_ignore_by_depth
            suspend_and_resume run_iter_yields_state_changes bad_input_becomes_failures
            build_reports_every_error records_hold_every_transition
            reverted_flow_runs_again progress_reaches_listeners
            resume_skips_finished_atoms resume_continues_a_revert resume_keeps_retry_history
            resume_refuses_a_changed_flow stale_owner_is_fenced_out
            load_below_the_stored_epoch_is_refused load_of_a_posted_flow_detail_runs_it
            panicking_listeners_are_dropped an_interrupted_task_runs_again_on_resume
            an_error_while_stopping_is_an_interruption an_interrupted_revert_continues_on_resume
            atom_details_that_do_not_match_are_refused
            two_loads_of_one_flow_detail_never_both_run_it
            values_deeper_than_records_hold_are_refused
            revert_with_no_controller_further_out_reverts_the_subflow
            a_retried_flow_fails_with_its_last_attempt a_retry_reverts_what_consumed_its_scope
            a_retry_notifies_retrying_before_resetting_its_scope
            resume_finishes_an_interrupted_retry_reset resuming_a_running_flow_notifies_no_resuming
            an_interrupted_subflow_revert_resumes_as_one reverts_go_through_ignored_atoms
            decider_depths_stop_at_flow_boundaries every_decider_into_a_target_is_asked
            failures_of_removed_atoms_are_still_reported
            the_store_is_found_before_atom_results inject_is_keyed_by_the_symbol_after_rebind
            revert_gets_its_own_arguments unordered_siblings_are_fed_from_outside_the_flow
            names_as_taskflow_gives_them
            a_too_deep_stored_definition_is_refused_before_decoding reset_runs_a_flow_again
            revert_results_are_recorded higher_priority_runs_first
            an_unstored_definition_says_which_atom_kept_it_out);
    };
    (@cases $factory:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::$case(&$factory);
            }
        )*
    };
}

#[cfg(test)]
mod serial {
    use crate::EngineBuilder;
    crate::engine_conformance!(|builder: EngineBuilder| builder);
}

#[cfg(test)]
mod parallel {
    use crate::{EngineBuilder, Parallel};
    crate::engine_conformance!(
        |builder: EngineBuilder| builder.executor(Parallel::new(4).expect("pool starts"))
    );
}
