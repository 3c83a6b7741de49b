//! Reverts: their order, what a revert sees, a failed revert, running a reverted flow again, reverting on request (`Engine::revert`).

use super::*;

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
        stuck.revert_failure().as_ref().unwrap().message,
        "cannot undo"
    );
    let bad = engine.storage().atom_detail("bad").unwrap();
    assert_eq!(bad.failure().as_ref().unwrap().kind, "Boom");
    assert!(err.to_string().contains("flow `f` ended FAILURE"), "{err}");
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

/// The state of each atom of flow detail `id` in `backend`, by name, and
/// the flow's.
fn recorded_states(
    backend: &dyn Backend,
    id: FlowDetailId,
) -> (Vec<(String, AtomState)>, FlowState) {
    let records = backend.get_flow_detail(id).unwrap();
    let atoms = records
        .atom_details
        .iter()
        .map(|d| (d.name.to_string(), d.state))
        .collect();
    (atoms, records.state)
}

/// `Engine::revert` on a flow suspended after its second atom (a job
/// stopped, then cancelled): the two that ran are reverted, newest first,
/// the third never runs, and the flow ends `REVERTED`, in the records too.
/// Asked again, there is nothing left to revert.
pub fn revert_on_request_undoes_a_suspended_flow(factory: Factory<'_>) {
    let log = Log::new();
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let handle = crate::SuspendHandle::new();
    let capture = Arc::new(CapturingListener::new());
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("b", log.task("b")))
        .add(atom("c", log.task("c")));
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .suspend_handle(handle.clone())
        .listener(SuspendOn("b", AtomState::Success, handle))
        .listener(capture.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    assert_eq!(log.entries(), ["a", "b"]);
    capture.clear();

    assert_eq!(engine.revert().unwrap(), FlowState::Reverted);
    assert_eq!(log.entries(), ["a", "b", "~b", "~a"]);
    assert_eq!(
        capture.atom_transitions(),
        [
            ("b".to_owned(), AtomState::Reverting),
            ("b".to_owned(), AtomState::Reverted),
            ("a".to_owned(), AtomState::Reverting),
            ("a".to_owned(), AtomState::Reverted),
        ]
    );
    assert_eq!(
        capture.flow_states(),
        [FlowState::Resuming, FlowState::Running, FlowState::Reverted]
    );
    let id = engine.storage().flow_detail_id();
    let (atoms, state) = recorded_states(&*backend, id);
    assert_eq!(state, FlowState::Reverted);
    assert_eq!(
        atoms,
        [
            ("a".to_owned(), AtomState::Reverted),
            ("b".to_owned(), AtomState::Reverted),
            ("c".to_owned(), AtomState::Pending),
        ]
    );
    let intention = |name: &str| engine.storage().atom_detail(name).unwrap().intention;
    assert_eq!(intention("a"), taskflow_patterns::Intention::Revert);
    assert_eq!(intention("c"), taskflow_patterns::Intention::Execute);

    // Reverted already: nothing more happens.
    capture.clear();
    assert_eq!(engine.revert().unwrap(), FlowState::Reverted);
    assert_eq!(log.entries(), ["a", "b", "~b", "~a"]);
    assert!(capture.events().is_empty(), "{:?}", capture.events());
}

/// `Engine::revert` on a flow that finished `SUCCESS` reverts all of it;
/// on one that never ran, there is nothing to revert and it ends
/// `REVERTED`; on one that failed and could not revert (a revert failed),
/// the revert fails again, and the flow stays `FAILURE`.
pub fn revert_on_request_from_success_pending_and_failure(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Graph::new("g")
        .add(atom("root", log.task("root")).provides("r"))
        .add(atom("left", log.task("left")).requires(["r"]).provides("l"))
        .add(atom("right", log.task("right")).requires(["r"]));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(engine.revert().unwrap(), FlowState::Reverted);
    let p = |e: &str| log.position(e);
    assert!(p("~left") < p("~root") && p("~right") < p("~root"));
    assert_eq!(engine.storage().flow_state(), FlowState::Reverted);
    // Run again after the revert: it runs from the start.
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries().iter().filter(|e| *e == "root").count(), 2);

    let capture = Arc::new(CapturingListener::new());
    let never = Log::new();
    let mut engine = factory(Engine::builder(
        Linear::new("f").add(atom("a", never.task("a"))),
    ))
    .listener(capture.clone())
    .build()
    .unwrap();
    assert_eq!(engine.revert().unwrap(), FlowState::Reverted);
    assert!(never.entries().is_empty(), "{:?}", never.entries());
    assert_eq!(
        capture.flow_states(),
        [FlowState::Running, FlowState::Reverted]
    );
    assert_eq!(
        engine.storage().atom_detail("a").unwrap().state,
        AtomState::Pending
    );

    let stuck = Linear::new("f")
        .add(atom(
            "stuck",
            task_fn(|_| Ok(json!(1))).with_revert(|_| Err(TaskError::new("Stuck", "cannot undo"))),
        ))
        .add(atom(
            "bad",
            task_fn(|_| Err(TaskError::new("Boom", "exploded"))),
        ));
    let mut engine = factory(Engine::builder(stuck)).build().unwrap();
    assert!(engine.run().is_err());
    let err = engine.revert().unwrap_err();
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
    assert!(err.failures().iter().any(|f| f.kind == "Stuck"), "{err}");
}

/// A revert on request that stopped half way (suspended, or the process
/// died while an atom reverted) continues on the next `revert` of an
/// engine loaded from the records, or on its next `run`; atoms already
/// `REVERTED` are not reverted again, and nothing runs forward.
pub fn revert_on_request_continues_after_reload(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .add(atom("c", l.task("c")))
            .into()
    });
    let load = |backend: &Arc<dyn Backend>, id, listener: Option<Arc<dyn Listener>>| {
        let mut builder = factory(Engine::load_with(backend.clone(), id, &registry).unwrap());
        if let Some(listener) = listener {
            builder = builder.listener(listener);
        }
        builder.build().unwrap()
    };

    // Suspended once `c` is reverted; a new engine finishes the revert.
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::from_factory(&registry, "flow", Value::Null).unwrap())
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    let id = engine.storage().flow_detail_id();
    drop(engine);
    let handle = crate::SuspendHandle::new();
    let mut engine = factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
        .suspend_handle(handle.clone())
        .listener(SuspendOn("c", AtomState::Reverted, handle))
        .build()
        .unwrap();
    assert_eq!(engine.revert().unwrap(), FlowState::Suspended);
    assert_eq!(log.entries(), ["a", "b", "c", "~c"]);
    drop(engine);
    assert_eq!(
        load(&backend, id, None).revert().unwrap(),
        FlowState::Reverted
    );
    assert_eq!(log.entries(), ["a", "b", "c", "~c", "~b", "~a"]);
    let (atoms, state) = recorded_states(&*backend, id);
    assert_eq!(state, FlowState::Reverted);
    assert!(
        atoms.iter().all(|(_, s)| *s == AtomState::Reverted),
        "{atoms:?}"
    );

    // As if the process died while `b` reverted, `c` reverted already:
    // `run` finishes the revert too (the flow ends REVERTED, as a failed
    // flow's revert does; nothing failed, so it names no failure).
    for finish_with_run in [false, true] {
        let log_start = log.entries().len();
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let mut engine = factory(Engine::from_factory(&registry, "flow", Value::Null).unwrap())
            .persistence(backend.clone())
            .build()
            .unwrap();
        assert_eq!(engine.run().unwrap(), FlowState::Success);
        let id = engine.storage().flow_detail_id();
        drop(engine);
        let mut records = backend.get_flow_detail(id).unwrap();
        for d in &mut records.atom_details {
            d.intention = taskflow_patterns::Intention::Revert;
            d.state = match &*d.name {
                "a" => AtomState::Success,
                "b" => AtomState::Reverting,
                _ => AtomState::Reverted,
            };
        }
        records.state = FlowState::Running;
        save_records(&*backend, &records);
        let capture = Arc::new(CapturingListener::new());
        let mut engine = load(&backend, id, Some(capture.clone()));
        if finish_with_run {
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
        } else {
            assert_eq!(engine.revert().unwrap(), FlowState::Reverted);
        }
        assert_eq!(log.entries()[log_start..], ["a", "b", "c", "~b", "~a"]);
        assert_eq!(capture.states_of("c"), []);
        assert_eq!(
            capture.states_of("b"),
            [AtomState::Reverted],
            "a revert found REVERTING is run again"
        );
        let (atoms, state) = recorded_states(&*backend, id);
        assert_eq!(state, FlowState::Reverted);
        assert!(
            atoms.iter().all(|(_, s)| *s == AtomState::Reverted),
            "{atoms:?}"
        );
    }
}

/// A revert on request checkpoints at the engine's owner epoch: an engine
/// whose flow another owner claimed meanwhile reverts nothing.
pub fn revert_on_request_is_fenced(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || Linear::new("f").add(atom("a", l.task("a"))).into());
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut first = factory(Engine::from_factory(&registry, "flow", Value::Null).unwrap())
        .persistence(backend.clone())
        .owner_epoch(1)
        .build()
        .unwrap();
    assert_eq!(first.run().unwrap(), FlowState::Success);
    let id = first.storage().flow_detail_id();
    let _second = factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
        .owner_epoch(2)
        .build()
        .unwrap();
    let err = first.revert().unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Persistence(PersistenceError::Fenced { .. })
        ),
        "{err}"
    );
    assert_eq!(log.entries(), ["a"]);
    assert_eq!(
        backend.get_flow_detail(id).unwrap().state,
        FlowState::Success
    );
}
