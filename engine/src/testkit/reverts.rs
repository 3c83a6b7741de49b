//! Reverts: their order, what a revert sees, a failed revert, running a reverted flow again.

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
        stuck.revert_failure.as_ref().unwrap().message,
        "cannot undo"
    );
    let bad = engine.storage().atom_detail("bad").unwrap();
    assert_eq!(bad.failure.as_ref().unwrap().kind, "Boom");
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
