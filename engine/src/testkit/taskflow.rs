//! Conformance cases where TaskFlow 6.5.0's behaviour is the rule: retry
//! rounds and what they reset, `REVERT` with no controller further out,
//! the failures of a retried flow, the order of a retry's events, resuming
//! a flow the records hold as running or a reset a crash interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use taskflow_patterns::{
    decider_fn, task_fn, AlwaysRevert, AtomState, Depth, Failure, FlowState, Graph, Intention,
    Linear, TaskError, Times,
};
use taskflow_persistence::{Backend, MemoryBackend};

use super::{
    atom, failed_state, linear_ab, prepared_records, registry_of, save_records, Factory, Log,
};
use crate::{CapturingListener, Engine};
use taskflow_persistence::Epoch;

/// Nested controllers that all say `REVERT`: only the innermost subflow
/// reverts (TaskFlow's default); the atoms outside it stay `SUCCESS` and
/// the flow ends `REVERTED` with the failure. With `defer_reverts()` the
/// whole flow reverts.
pub fn revert_with_no_controller_further_out_reverts_the_subflow(factory: Factory<'_>) {
    for defer in [false, true] {
        let log = Log::new();
        let flow = Linear::new("f")
            .add(atom("before", log.task("before")))
            .add(
                Linear::new("outer")
                    .add(atom("o1", log.task("o1")))
                    .add(
                        Linear::new("inner")
                            .add(atom("i1", log.task("i1")))
                            .add(atom("bad", log.failing("bad")))
                            .with_retry(AlwaysRevert),
                    )
                    .with_retry(AlwaysRevert),
            );
        let mut builder = factory(Engine::builder(flow));
        if defer {
            builder = builder.defer_reverts();
        }
        let mut engine = builder.build().unwrap();
        let result = engine.run();
        assert_eq!(failed_state(&result), FlowState::Reverted, "defer {defer}");
        let state = |a: &str| engine.storage().atom_detail(a).unwrap().state;
        assert_eq!(state("i1"), AtomState::Reverted);
        assert_eq!(state("inner_retry"), AtomState::Reverted);
        let outside = if defer {
            AtomState::Reverted
        } else {
            AtomState::Success
        };
        assert_eq!(
            (state("before"), state("o1")),
            (outside, outside),
            "defer {defer}"
        );
        let err = result.unwrap_err();
        assert_eq!(err.failures().len(), 1, "{err}");
        assert_eq!(err.failures()[0].atom.as_deref(), Some("bad"));
    }
}

/// A flow retried until it succeeds has no failures; one whose last
/// attempt fails reports that attempt's failure alone, while every
/// attempt's failure stays in the controller's history.
pub fn a_retried_flow_fails_with_its_last_attempt(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f").add(
        Linear::new("scope")
            .add(atom("flaky", log.flaky("flaky", 2)))
            .with_retry(Times::new(3)),
    );
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);

    let flow = Linear::new("f").add(
        Linear::new("scope")
            .add(atom("bad", log.failing("bad")))
            .with_retry(Times::new(3)),
    );
    let mut engine = factory(Engine::builder(flow))
        .defer_reverts()
        .build()
        .unwrap();
    let err = engine.run().unwrap_err();
    assert_eq!(err.failures().len(), 1, "{err}");
    let history = &engine
        .storage()
        .atom_detail("scope_retry")
        .unwrap()
        .history();
    assert_eq!(history.len(), 3);
    assert!(history
        .attempts()
        .iter()
        .all(|a| a.failures.contains_key("bad")));
}

/// A retry round reverts, before its scope runs again, every atom
/// downstream of the scope that ran (TaskFlow resets all the successors of
/// the controller), dependents first, and runs them again after it. Here
/// the records of a round in progress, as a crash left them, mark `c`
/// (after the scope) for the round: it is reverted and run again with the
/// scope, not taken as the start of a revert of the whole flow.
pub fn a_retry_reverts_what_consumed_its_scope(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(
                Linear::new("scope")
                    .add(atom("a", l.task("a")).provides("a"))
                    .add(atom("x", l.task("x")))
                    .with_retry(Times::new(3)),
            )
            .add(atom("c", l.task("c")).requires(["a"]))
            .into()
    });
    let (backend, id) = prepared_records(factory, &registry);
    let mut records = backend.get_flow_detail(id).unwrap();
    records.state = FlowState::Running;
    for d in &mut records.atom_details {
        match &*d.name {
            "scope_retry" => {
                d.state = AtomState::Success;
                d.intention = Intention::Retry;
                d.history_mut().push(json!(1));
            }
            "x" => {
                d.state = AtomState::Failure;
                d.intention = Intention::Revert;
                d.set_failure(Some(Failure::new("Boom", "x failed").with_atom("x")));
            }
            name => {
                d.state = AtomState::Success;
                d.intention = Intention::Revert;
                d.result = Some(Arc::new(json!(name)));
            }
        }
    }
    save_records(&*backend, &records);
    let mut resumed = factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
        .build()
        .unwrap();
    assert_eq!(resumed.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["~c", "~x", "~a", "a", "x", "c"]);
}

/// A retry round's events come as in TaskFlow: the controller's
/// `RETRYING`, then `PENDING` for each atom of its scope, then the
/// controller's `RUNNING`.
pub fn a_retry_notifies_retrying_before_resetting_its_scope(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f").add(
        Linear::new("scope")
            .add(atom("flaky", log.flaky("flaky", 1)))
            .with_retry(Times::new(2)),
    );
    let capture = Arc::new(CapturingListener::new());
    let mut engine = factory(Engine::builder(flow))
        .listener(capture.clone())
        .build()
        .unwrap();
    engine.run().unwrap();
    let transitions = capture.atom_transitions();
    let at = transitions
        .iter()
        .position(|(a, s)| a == "scope_retry" && *s == AtomState::Retrying)
        .unwrap();
    assert_eq!(
        transitions[at..at + 3],
        [
            ("scope_retry".to_owned(), AtomState::Retrying),
            ("flaky".to_owned(), AtomState::Pending),
            ("scope_retry".to_owned(), AtomState::Running),
        ],
        "{transitions:?}"
    );
}

/// Records of a crash between a controller's `RETRYING` and the reset of
/// its scope (one atom `PENDING`, two `REVERTED`): the resumed engine
/// finishes the reset and the flow succeeds. A failed flow never ends
/// without a failure.
pub fn resume_finishes_an_interrupted_retry_reset(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(
                Linear::new("scope")
                    .add(atom("x", l.task("x")))
                    .add(atom("y", l.task("y")))
                    .add(atom("z", l.task("z")))
                    .with_retry(Times::new(3)),
            )
            .into()
    });
    let (backend, id) = prepared_records(factory, &registry);
    let mut records = backend.get_flow_detail(id).unwrap();
    records.state = FlowState::Running;
    for d in &mut records.atom_details {
        match &*d.name {
            "scope_retry" => {
                d.state = AtomState::Retrying;
                d.history_mut().push(json!(1));
                d.history_mut()
                    .record_failure("z", Failure::new("Boom", "z failed").with_atom("z"));
            }
            "x" => {}
            _ => {
                d.state = AtomState::Reverted;
                d.intention = Intention::Revert;
                if &*d.name == "z" {
                    d.set_failure(Some(Failure::new("Boom", "z failed").with_atom("z")));
                }
            }
        }
    }
    save_records(&*backend, &records);
    let mut resumed = factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
        .build()
        .unwrap();
    assert_eq!(resumed.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["x", "y", "z"]);
}

/// A flow the records hold as `RUNNING` (its process died) resumes with
/// no `RESUMING` / `RUNNING` pair notified: the next flow event is its end.
pub fn resuming_a_running_flow_notifies_no_resuming(factory: Factory<'_>) {
    let log = Log::new();
    let registry = linear_ab(&log);
    let (backend, id) = prepared_records(factory, &registry);
    backend
        .update_flow_state(id, FlowState::Running, Epoch::ZERO)
        .unwrap();
    let capture = Arc::new(CapturingListener::new());
    let mut resumed = factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
        .listener(capture.clone())
        .build()
        .unwrap();
    assert_eq!(resumed.run().unwrap(), FlowState::Success);
    assert_eq!(capture.flow_states(), [FlowState::Success]);
}

/// A subflow reverting on its own (TaskFlow's default `REVERT`) that is
/// interrupted continues on resume as a subflow revert: the atoms outside
/// it stay `SUCCESS`.
pub fn an_interrupted_subflow_revert_resumes_as_one(factory: Factory<'_>) {
    let log = Log::new();
    let once = Arc::new(AtomicBool::new(true));
    let (l, o) = (log.clone(), once.clone());
    let slow_undo = task_fn(|_| Ok(json!("i1"))).with_revert(move |_| {
        l.push("~i1");
        if o.swap(false, Ordering::SeqCst) {
            return Err(TaskError::interrupted("stopped"));
        }
        Ok(())
    });
    let flow = Linear::new("f")
        .add(atom("before", log.task("before")))
        .add(
            Linear::new("inner")
                .add(atom("i1", slow_undo))
                .add(atom("bad", log.failing("bad")))
                .with_retry(AlwaysRevert),
        );
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    assert_eq!(failed_state(&engine.run()), FlowState::Reverted);
    assert_eq!(
        engine.storage().atom_detail("before").unwrap().state,
        AtomState::Success
    );
    assert_eq!(log.entries(), ["before", "bad", "~bad", "~i1", "~i1"]);
    // Running the reverted flow again reruns the subflow alone.
    let _ = engine.run();
    assert_eq!(
        log.entries().iter().filter(|e| *e == "before").count(),
        1,
        "{:?}",
        log.entries()
    );
}

/// Graph `a -> b -> c` where the decider on `a -> b` says no (`b`
/// ignored) and `c` fails: `c` depends on `a` through `b`, so `c` reverts
/// before `a`.
pub fn reverts_go_through_ignored_atoms(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Graph::new("g")
        .add(atom("a", log.task("a")))
        .add(atom("b", log.task("b")))
        .add(atom("c", log.failing("c")))
        .link_if("a", "b", decider_fn(|_| false), Depth::Atom)
        .link("b", "c");
    let (result, capture) = super::run(factory, flow);
    assert_eq!(failed_state(&result), FlowState::Reverted);
    assert_eq!(capture.atoms_entering(AtomState::Ignore), ["b"]);
    assert_eq!(log.entries(), ["a", "c", "~c", "~a"]);
}

/// `Depth::Neighbors` ignores the target and its direct successor tasks
/// in its own flow: a subflow linked after the target still runs.
/// `Depth::Flow` ignores what follows the target in its flow, stopping at
/// a nested flow.
pub fn decider_depths_stop_at_flow_boundaries(factory: Factory<'_>) {
    for (depth, ran) in [
        (Depth::Neighbors, vec!["x", "y", "z"]),
        (Depth::Flow, vec!["x", "y", "z"]),
        (Depth::All, vec![]),
    ] {
        let log = Log::new();
        let flow = Graph::new("g")
            .add(atom("check", task_fn(|_| Ok(json!(false)))))
            .add(
                Linear::new("line")
                    .add(atom("target", log.task("target")))
                    .add(
                        Linear::new("sub")
                            .add(atom("x", log.task("x")))
                            .add(atom("y", log.task("y"))),
                    )
                    .add(atom("z", log.task("z"))),
            )
            .link_if("check", "line", decider_fn(|_| false), depth);
        let (result, _) = super::run(factory, flow);
        assert_eq!(result.unwrap(), FlowState::Success, "{depth:?}");
        assert_eq!(log.entries(), ran, "{depth:?}");
    }
}

/// Two conditional links into one subflow: every decider is asked, each
/// sees the results of both sources, and the subflow runs only if all say
/// yes; the widest depth of those that say no applies.
pub fn every_decider_into_a_target_is_asked(factory: Factory<'_>) {
    for (second_says, ran) in [(true, vec!["s1"]), (false, vec![])] {
        let log = Log::new();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s1, s2) = (seen.clone(), seen.clone());
        let flow = Graph::new("g")
            .add(atom("task1", task_fn(|_| Ok(json!(1)))))
            .add(atom("task2", task_fn(|_| Ok(json!(2)))))
            .add(Linear::new("sub").add(atom("s1", log.task("s1"))))
            .link_if(
                "task1",
                "sub",
                decider_fn(move |h| {
                    s1.lock()
                        .unwrap()
                        .push(h.keys().cloned().collect::<Vec<_>>());
                    true
                }),
                Depth::Atom,
            )
            .link_if(
                "task2",
                "sub",
                decider_fn(move |h| {
                    s2.lock()
                        .unwrap()
                        .push(h.keys().cloned().collect::<Vec<_>>());
                    second_says
                }),
                Depth::All,
            );
        let (result, _) = super::run(factory, flow);
        assert_eq!(result.unwrap(), FlowState::Success);
        assert_eq!(log.entries(), ran, "second says {second_says}");
        let both = vec!["task1".to_owned(), "task2".to_owned()];
        assert_eq!(*seen.lock().unwrap(), [both.clone(), both]);
    }
}

/// A failed flow resumed, changed, without the atom that failed (with
/// `accept_changed_flow`): its revert goes on, and the removed atom's
/// failure is still the flow's failure, as TaskFlow re-raises it.
pub fn failures_of_removed_atoms_are_still_reported(factory: Factory<'_>) {
    let log = Log::new();
    let once = Arc::new(AtomicBool::new(true));
    let a = {
        let (l, o) = (log.clone(), once.clone());
        move || {
            let (l, o) = (l.clone(), o.clone());
            task_fn(|_| Ok(json!("a"))).with_revert(move |_| {
                l.push("~a");
                if o.swap(false, Ordering::SeqCst) {
                    return Err(TaskError::interrupted("stopped"));
                }
                Ok(())
            })
        }
    };
    let (a1, l1) = (a.clone(), log.clone());
    let v1 = registry_of(move || {
        Linear::new("f")
            .add(atom("a", a1()))
            .add(atom("x", l1.failing("x")))
            .into()
    });
    let v2 = registry_of(move || Linear::new("f").add(atom("a", a())).into());
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut first = factory(Engine::from_factory(&v1, "flow", Value::Null).unwrap())
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(first.run().unwrap(), FlowState::Suspended);
    let id = first.storage().flow_detail_id();
    let mut resumed = factory(Engine::load_with(backend.clone(), id, &v2).unwrap())
        .accept_changed_flow()
        .build()
        .unwrap();
    let result = resumed.run();
    assert_eq!(failed_state(&result), FlowState::Reverted);
    let err = result.unwrap_err();
    let failures = err.failures();
    assert_eq!(failures.len(), 1, "{err}");
    assert_eq!(failures[0].atom.as_deref(), Some("x"));
    assert_eq!(log.entries(), ["x", "~x", "~a", "~a"]);
}

/// `reset` starts a finished or suspended flow over: every atom runs
/// again, and the records hold the new run.
pub fn reset_runs_a_flow_again(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")).provides("x"))
        .add(
            Linear::new("scope")
                .add(atom("b", log.flaky("b", 1)))
                .with_retry(Times::new(2)),
        );
    let backend = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    engine.reset().unwrap();
    let records = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    assert_eq!(records.state, FlowState::Pending);
    assert!(records
        .atom_details
        .iter()
        .all(|d| d.state == AtomState::Pending && d.result.is_none() && d.history().is_empty()));
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b", "~b", "b", "a", "b"]);

    let stop = crate::SuspendHandle::new();
    stop.suspend();
    let mut engine = factory(Engine::builder(
        Linear::new("f").add(atom("c", log.task("c"))),
    ))
    .suspend_handle(stop)
    .build()
    .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    engine.reset().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
}

/// What a revert records (`Context::set_revert_result`) is kept in the
/// atom's record as its revert result (TaskFlow's `revert_results`), and
/// cleared when the atom runs again.
pub fn revert_results_are_recorded(factory: Factory<'_>) {
    let log = Log::new();
    let volume = task_fn(|_| Ok(json!("vol-1"))).with_revert(|ctx| {
        let id = ctx.own_result().cloned().unwrap_or_default();
        ctx.set_revert_result(json!({ "deleted": id }));
        Ok(())
    });
    let flow = Linear::new("f")
        .add(atom("volume", volume))
        .add(atom("bad", log.failing("bad")));
    let backend = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(failed_state(&engine.run()), FlowState::Reverted);
    let records = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    let want = json!({ "deleted": "vol-1" });
    assert_eq!(
        records
            .atom_detail("volume")
            .unwrap()
            .revert_result()
            .map(|v| &**v),
        Some(&want)
    );
    assert_eq!(records.atom_detail("bad").unwrap().revert_result(), None);
    let _ = engine.run();
    assert_eq!(
        engine
            .storage()
            .atom_detail("volume")
            .unwrap()
            .revert_result()
            .map(|v| &**v),
        Some(&want),
        "recorded again by the second revert"
    );
    engine.reset().unwrap();
    assert_eq!(
        engine
            .storage()
            .atom_detail("volume")
            .unwrap()
            .revert_result(),
        None
    );
}

/// Among atoms ready at the same time, a higher priority starts first
/// (TaskFlow's `Atom.priority`); equal priorities keep the flow's order.
pub fn higher_priority_runs_first(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f").add(atom("first", log.task("first"))).add(
        taskflow_patterns::Unordered::new("u")
            .add(atom("low", log.task("low")).priority(-1))
            .add(atom("plain", log.task("plain")))
            .add(atom("high", log.task("high")).priority(5))
            .add(atom("plain2", log.task("plain2"))),
    );
    let (result, capture) = super::run(factory, flow);
    assert_eq!(result.unwrap(), FlowState::Success);
    // The order the engine started them in (a parallel engine may finish
    // them in any order).
    assert_eq!(
        capture.atoms_entering(AtomState::Running),
        ["first", "high", "plain", "plain2", "low"]
    );
}
