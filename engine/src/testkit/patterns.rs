//! Patterns and arguments: linear, unordered and graph flows, nesting, argument binding, deciders.

use super::*;

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
