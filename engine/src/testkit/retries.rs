//! Retry controllers: Times, ForEach, ParameterizedForEach, nesting, REVERT_ALL.

use super::*;

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
    assert_eq!(r.history().len(), 3);
    assert_eq!(r.history().attempts()[0].failures["flaky"].kind, "Flaky");
    assert!(r.history().attempts()[2].failures.is_empty());
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
        assert_eq!(retry.history().len(), 2);
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
    assert_eq!(outer.history().len(), 2);
    assert!(outer.history().attempts()[0].failures.contains_key("flaky"));
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
