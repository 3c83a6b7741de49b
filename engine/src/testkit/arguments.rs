//! Conformance cases for where an atom's arguments come from, where
//! TaskFlow 6.5.0's behaviour is the rule: a value given from outside the
//! flow (the store, or injected into the atom) is found before any atom's
//! result, `inject` is keyed by the symbol after `rebind`, `revert` may
//! take arguments of its own, children of an unordered flow are fed from
//! outside it, and atoms are named as TaskFlow names them.

use serde_json::{json, Value};
use taskflow_patterns::{task_fn, AtomState, FlowState, Linear, TaskError, Times, Unordered};

use super::{atom, failed_state, Factory, Log};
use crate::Engine;

/// A task that logs `name:` and its inputs (`arg=value`, by argument name)
/// on execute, `~name:` and its inputs on revert, and returns `result`.
fn recording(log: &Log, name: &str, result: Value) -> taskflow_patterns::FnTask {
    let (log, rlog, n, rn) = (log.clone(), log.clone(), name.to_owned(), name.to_owned());
    let show = |ctx: &taskflow_patterns::Context<'_>| {
        ctx.inputs()
            .iter()
            .map(|(a, v)| format!("{a}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    task_fn(move |ctx| {
        log.push(format!("{n}:{}", show(ctx)));
        Ok(result.clone())
    })
    .with_revert(move |ctx| {
        rlog.push(format!("~{rn}:{}", show(ctx)));
        Ok(())
    })
}

/// With the store holding `x = 0` and a task providing `x = 1`, fetching
/// `x` gives 0 and fetching every value gives `[0, 1]`; a chain a -> b -> c
/// that each require and provide `value`, with `value = 0` in the store,
/// sees 0 in every task. Without it in the store, each task sees the
/// nearest one before it, and `fetch` the first provider's value.
pub fn the_store_is_found_before_atom_results(factory: Factory<'_>) {
    let flow = Linear::new("f").add(atom("t", task_fn(|_| Ok(json!(1)))).provides("x"));
    let mut engine = factory(Engine::builder(flow))
        .store(json!({"x": 0}))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    let storage = engine.storage();
    assert_eq!(storage.fetch("x"), Some(&json!(0)));
    assert_eq!(storage.fetch_many("x"), [&json!(0), &json!(1)]);
    assert_eq!(storage.fetch_all().get("x"), Some(&json!(0)));
    assert!(storage.fetch_many("nothing").is_empty());

    let log = Log::new();
    let increment = |name: &str| {
        let (log, name) = (log.clone(), name.to_owned());
        atom(
            name.clone(),
            task_fn(move |ctx| {
                let value: i64 = ctx.input("value")?;
                log.push(format!("{name}:{value}"));
                Ok(json!(value + 1))
            }),
        )
        .requires(["value"])
        .provides("value")
    };
    let chain = || {
        Linear::new("chain")
            .add(increment("a"))
            .add(increment("b"))
            .add(increment("c"))
    };
    let mut engine = factory(Engine::builder(chain()))
        .store(json!({"value": 0}))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a:0", "b:0", "c:0"]);
    assert_eq!(engine.storage().fetch("value"), Some(&json!(0)));
    assert_eq!(
        engine.storage().fetch_many("value"),
        [&json!(0), &json!(1), &json!(1), &json!(1)]
    );

    let log_ = log.clone();
    let flow = Linear::new("f")
        .add(atom("first", task_fn(|_| Ok(json!(5)))).provides("value"))
        .add(chain());
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log_.entries()[3..], ["a:5", "b:6", "c:7"]);
    assert_eq!(engine.storage().fetch("value"), Some(&json!(5)));
    assert_eq!(
        engine.storage().fetch_many("value"),
        [&json!(5), &json!(6), &json!(7), &json!(8)]
    );
}

/// `inject` is keyed by the symbol after `rebind`: with `x -> a`, `y -> b`,
/// `z -> c` and `{a: 1, b: 4, c: 9}` injected, the task gets 1, 4 and 9.
/// An injected value is found before the store, and a value the store
/// holds before an atom's result.
pub fn inject_is_keyed_by_the_symbol_after_rebind(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("before", task_fn(|_| Ok(json!(["r", "r", "r"])))).provides_seq(["a", "b", "z"]))
        .add(
            atom("sum", recording(&log, "sum", Value::Null))
                .requires(["x", "y", "z"])
                .rebind("x", "a")
                .rebind("y", "b")
                .rebind("z", "c")
                .inject("a", 1)
                .inject("b", 4)
                .inject("c", 9),
        )
        .add(
            atom("mixed", recording(&log, "mixed", Value::Null))
                .requires(["a", "b", "z"])
                .inject("a", 1),
        );
    let mut engine = factory(Engine::builder(flow))
        .store(json!({"a": 10, "b": 40}))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(
        log.entries(),
        ["sum:x=1,y=4,z=9", r#"mixed:a=1,b=40,z="r""#]
    );
}

/// `revert` gets its own arguments where the atom declares them
/// (`revert_requires`, `revert_rebind`, fed as `execute`'s are: injected,
/// then the store, then the nearest atom before it), and `execute`'s
/// otherwise; `execute` never sees the revert-only ones.
pub fn revert_gets_its_own_arguments(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("make", task_fn(|_| Ok(json!("vol-1")))).provides("made"))
        .add(
            atom("own", recording(&log, "own", Value::Null))
                .requires(["size"])
                .revert_requires(["volume", "reason"])
                .revert_rebind("volume", "made")
                .inject("reason", "cleanup"),
        )
        .add(
            atom("rebound", recording(&log, "rebound", Value::Null))
                .requires(["size"])
                .rebind("size", "made")
                .revert_rebind("size", "region"),
        )
        .add(atom("same", recording(&log, "same", Value::Null)).requires(["size"]))
        .add(atom(
            "boom",
            task_fn(|_| Err(TaskError::new("Boom", "boom"))),
        ));
    let mut engine = factory(Engine::builder(flow))
        .store(json!({"size": 10, "region": "eu"}))
        .build()
        .unwrap();
    let result = engine.run();
    assert_eq!(failed_state(&result), FlowState::Reverted);
    assert_eq!(
        log.entries(),
        [
            "own:size=10",
            r#"rebound:size="vol-1""#,
            "same:size=10",
            "~same:size=10",
            r#"~rebound:size="eu""#,
            r#"~own:volume="vol-1",reason="cleanup""#,
        ]
    );

    // A revert argument nothing provides is refused when the engine is
    // built, naming the atom and the symbol.
    let flow = Linear::new("f")
        .add(atom("own", recording(&log, "own", Value::Null)).revert_requires(["gone"]));
    let Err(err) = factory(Engine::builder(flow)).build() else {
        panic!("a revert argument nothing provides is refused");
    };
    assert!(
        err.to_string().contains("atom `own` requires `gone`"),
        "{err}"
    );
}

/// A child of an unordered flow that requires what a sibling provides is
/// fed from outside the flow (the store, or an atom that runs before it),
/// never by the sibling, as in TaskFlow.
pub fn unordered_siblings_are_fed_from_outside_the_flow(factory: Factory<'_>) {
    let log = Log::new();
    let sibling = || {
        Unordered::new("u")
            .add(atom("p", recording(&log, "p", json!("sibling"))).provides("x"))
            .add(atom("q", recording(&log, "q", Value::Null)).requires(["x"]))
    };
    let flow = Linear::new("f")
        .add(atom("before", task_fn(|_| Ok(json!("outer")))).provides("x"))
        .add(sibling());
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    let mut entries = log.entries();
    entries.sort();
    assert_eq!(entries, ["p:", r#"q:x="outer""#]);

    let mut engine = factory(Engine::builder(sibling()))
        .store(json!({"x": "stored"}))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert!(log.entries().contains(&r#"q:x="stored""#.to_owned()));

    // Nothing outside the flow provides it: refused at build, naming the
    // atom and the symbol.
    let Err(err) = factory(Engine::builder(sibling())).build() else {
        panic!("a requirement only a sibling provides is refused");
    };
    assert!(err.to_string().contains("atom `q` requires `x`"), "{err}");
}

/// A flow may share its name with one of its atoms, and a retry controller
/// given without a name is called `<flow>_retry`, as TaskFlow names them.
pub fn names_as_taskflow_gives_them(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("test").add(atom("test", log.task("test"))).add(
        Linear::new("scope")
            .add(atom("flaky", log.flaky("flaky", 1)))
            .with_retry(Times::new(2)),
    );
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["test", "flaky", "~flaky", "flaky"]);
    let storage = engine.storage();
    assert_eq!(
        storage.atom_detail("test").map(|d| d.state),
        Some(AtomState::Success)
    );
    let retry = storage
        .atom_detail("scope_retry")
        .expect("named scope_retry");
    assert_eq!(retry.history().len(), 2);
    assert!(storage.atom_detail("scope.retry").is_none());
}
