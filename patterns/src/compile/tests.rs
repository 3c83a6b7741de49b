use serde::{Deserialize, Serialize};
use serde_json::json;

use petgraph::graph::NodeIndex;

use crate::*;

fn noop() -> FnTask {
    task_fn(|_| Ok(Value::Null))
}

fn names(c: &Compilation, of: &[AtomIndex]) -> Vec<String> {
    of.iter().map(|i| c.atom(*i).name().to_string()).collect()
}

fn errors(flow: impl Into<Flow>) -> Vec<String> {
    let flow = flow.into();
    let err = match compile(&flow) {
        Err(e) => e,
        Ok(c) => c
            .resolve(&Default::default())
            .expect_err("flow should not validate"),
    };
    err.errors().iter().map(ToString::to_string).collect()
}

#[test]
fn linear_links_each_child_after_the_whole_previous_one() {
    let flow = Linear::new("f")
        .add(atom("a", noop()))
        .add(
            Unordered::new("u")
                .add(atom("b", noop()))
                .add(atom("c", noop())),
        )
        .add(atom("d", noop()));
    let c = compile(&flow.into()).unwrap();
    let i = |n: &str| c.atom_index(n).unwrap();
    assert_eq!(names(&c, c.successors(i("a"))), ["b", "c"]);
    assert_eq!(names(&c, c.predecessors(i("d"))), ["b", "c"]);
    assert!(c.successors(i("b")).contains(&i("d")));
    assert!(c.is_ancestor(i("a"), i("d")));
    assert!(!c.is_ancestor(i("d"), i("a")));
}

#[test]
fn graph_infers_links_from_data_and_honours_explicit_links() {
    let flow = Graph::new("g")
        .add(atom("c", noop()).requires(["x", "y"]))
        .add(atom("a", noop()).provides("x"))
        .add(atom("b", noop()).provides("y"))
        .add(atom("d", noop()))
        .link("c", "d");
    let c = compile(&flow.into()).unwrap();
    let i = |n: &str| c.atom_index(n).unwrap();
    assert_eq!(names(&c, c.predecessors(i("c"))), ["a", "b"]);
    assert_eq!(names(&c, c.successors(i("c"))), ["d"]);
    let res = c.resolve(&Default::default()).unwrap();
    let args = res.arguments(i("c"));
    assert!(matches!(args[0].source, ArgSource::Atom { provider, .. } if provider == i("a")));
}

#[test]
fn retry_runs_before_its_whole_scope() {
    let flow = Linear::new("outer")
        .add(atom("a", noop()))
        .add(
            Linear::new("inner")
                .add(atom("b", noop()))
                .add(atom("c", noop()))
                .with_retry(Times::new(2)),
        )
        .with_retry(retry("r_out", Times::new(3)));
    let c = compile(&flow.into()).unwrap();
    let i = |n: &str| c.atom_index(n).unwrap();
    let inner = i("inner_retry");
    assert_eq!(names(&c, c.successors(inner)), ["b"]);
    assert_eq!(names(&c, c.predecessors(inner)), ["a"]);
    assert_eq!(c.atom(i("b")).retry, Some(inner));
    assert_eq!(c.atom(inner).retry, Some(i("r_out")));
    let mut scope = names(&c, &c.scope(inner).collect::<Vec<_>>());
    scope.sort();
    assert_eq!(scope, ["b", "c"]);
    assert_eq!(c.scope(i("r_out")).count(), 4);
    assert_eq!(c.atom(i("a")).retry, Some(i("r_out")));
}

#[test]
fn missing_requirement_names_atom_symbol_and_what_is_available() {
    let errs = errors(
        Linear::new("f")
            .add(atom("a", noop()).provides("x"))
            .add(atom("b", noop()).requires(["x", "y"]))
            .add(atom("c", noop()).provides("y")),
    );
    assert_eq!(
        errs,
        [
            "atom `b` requires `y`, but no atom that runs before it provides it and the store \
          does not hold it (`c` provides it, but does not run before it); available to it: `x`"
        ]
    );
}

#[test]
fn store_and_optional_and_inject_satisfy_requirements() {
    let flow: Flow = Linear::new("f")
        .add(
            atom("a", noop())
                .requires(["region", "size"])
                .optional("zone", "z1")
                .inject("size", 10),
        )
        .into();
    let c = compile(&flow).unwrap();
    let store = json!({"region": "eu"});
    let res = c.resolve(store.as_object().unwrap()).unwrap();
    let args = res.arguments(AtomIndex::new(0));
    assert!(matches!(&args[0].source, ArgSource::Store(s) if &**s == "region"));
    assert!(matches!(&args[1].source, ArgSource::Value(v) if **v == json!(10)));
    assert!(matches!(&args[2].source, ArgSource::Value(v) if **v == json!("z1")));
}

/// The source of argument `arg` of atom `atom`, as a short string.
fn source(c: &Compilation, res: &Resolution, atom: &str, arg: &str) -> String {
    let args = res.arguments(c.atom_index(atom).unwrap());
    describe(c, args, arg)
}

fn describe(c: &Compilation, args: &[Argument], arg: &str) -> String {
    let a = args.iter().find(|a| &*a.name == arg).expect("argument");
    match &a.source {
        ArgSource::Atom { provider, .. } => format!("atom {}", c.atom(*provider).name()),
        ArgSource::Store(s) => format!("store {s}"),
        ArgSource::Value(v) => format!("value {v}"),
    }
}

#[test]
fn the_store_is_found_before_atom_results_as_in_taskflow() {
    // a -> b -> c, each requiring and providing `value`.
    let chain: Flow = Linear::new("chain")
        .add_all(["a", "b", "c"].map(|n| atom(n, noop()).requires(["value"]).provides("value")))
        .into();
    let c = compile(&chain).unwrap();
    let store = json!({"value": 0});
    let res = c.resolve(store.as_object().unwrap()).unwrap();
    for n in ["a", "b", "c"] {
        assert_eq!(source(&c, &res, n, "value"), "store value");
    }
    // Without it in the store, each atom after the first sees the nearest.
    let store = json!({"other": 0});
    let errs = c.resolve(store.as_object().unwrap()).unwrap_err();
    assert!(
        matches!(errs.errors(), [CompileError::MissingRequirement { atom, .. }] if atom == "a")
    );
    let flow: Flow = Linear::new("f")
        .add(atom("first", noop()).provides("value"))
        .add(chain)
        .into();
    let c = compile(&flow).unwrap();
    let res = c.resolve(&Default::default()).unwrap();
    assert_eq!(source(&c, &res, "a", "value"), "atom first");
    assert_eq!(source(&c, &res, "b", "value"), "atom a");
    assert_eq!(source(&c, &res, "c", "value"), "atom b");
    // Providers with no order between them are ambiguous only when the
    // store does not settle it.
    let flow: Flow = Linear::new("f")
        .add(
            Unordered::new("u")
                .add(atom("p", noop()).provides("x"))
                .add(atom("q", noop()).provides("x")),
        )
        .add(atom("t", noop()).requires(["x"]))
        .into();
    let c = compile(&flow).unwrap();
    let store = json!({"x": 1});
    let res = c.resolve(store.as_object().unwrap()).unwrap();
    assert_eq!(source(&c, &res, "t", "x"), "store x");
}

#[test]
fn inject_is_keyed_by_the_symbol_after_rebind_and_found_before_the_store() {
    let flow: Flow = Linear::new("f")
        .add(atom("before", noop()).provides_seq(["a", "y"]))
        .add(
            atom("t", noop())
                .requires(["x", "y", "z"])
                .rebind("x", "a")
                .rebind("y", "b")
                .rebind("z", "c")
                .inject("a", 1)
                .inject("b", 4)
                .inject("c", 9)
                // Keyed by an argument name that is rebound: feeds nothing.
                .inject("y", 100),
        )
        .into();
    let c = compile(&flow).unwrap();
    let store = json!({"a": 10, "b": 40, "c": 90});
    let res = c.resolve(store.as_object().unwrap()).unwrap();
    assert_eq!(source(&c, &res, "t", "x"), "value 1");
    assert_eq!(source(&c, &res, "t", "y"), "value 4");
    assert_eq!(source(&c, &res, "t", "z"), "value 9");
    let t = c.atom_index("t").unwrap();
    let spec = &c.atom(t).spec;
    assert_eq!(
        res.arguments(t)
            .iter()
            .map(|a| spec.symbol_of(&a.name))
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );

    // Keyed by the argument's name, a rebound argument is still missing.
    let errs = errors(
        Linear::new("f").add(
            atom("t", noop())
                .requires(["x"])
                .rebind("x", "a")
                .inject("x", 1),
        ),
    );
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("atom `t` requires `a`"), "{}", errs[0]);
}

#[test]
fn revert_arguments_resolve_by_the_same_rules_and_must_be_satisfied() {
    let flow: Flow = Linear::new("f")
        .add(atom("make", noop()).provides("made"))
        .add(
            atom("t", noop())
                .requires(["x"])
                .rebind("x", "a")
                .revert_requires(["thing", "why"])
                .revert_rebind("thing", "made")
                .inject("why", "cleanup"),
        )
        .add(atom("same", noop()).requires(["x"]).rebind("x", "a"))
        .into();
    let c = compile(&flow).unwrap();
    let store = json!({"a": 1});
    let res = c.resolve(store.as_object().unwrap()).unwrap();
    let t = c.atom_index("t").unwrap();
    assert_eq!(source(&c, &res, "t", "x"), "store a");
    let revert = res.revert_arguments(t);
    assert_eq!(revert.len(), 2);
    assert_eq!(describe(&c, revert, "thing"), "atom make");
    assert_eq!(describe(&c, revert, "why"), "value \"cleanup\"");
    // An atom with no revert arguments of its own reverts with those of
    // execute.
    let same = c.atom_index("same").unwrap();
    assert_eq!(describe(&c, res.revert_arguments(same), "x"), "store a");
    assert_eq!(res.revert_arguments(c.atom_index("make").unwrap()).len(), 0);

    // A revert argument nothing provides is an error, reported once when
    // execute misses the same symbol.
    let errs = errors(
        Linear::new("f").add(
            atom("t", noop())
                .requires(["x"])
                .revert_requires(["gone"])
                .revert_rebind("x", "x"),
        ),
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("atom `t` requires `x`"), "{}", errs[0]);
    assert!(
        errs[1].starts_with("atom `t` requires `gone`"),
        "{}",
        errs[1]
    );
    let errs =
        errors(Linear::new("f").add(atom("t", noop()).requires(["x"]).revert_rebind("y", "z")));
    assert_eq!(errs.len(), 1, "{errs:?}");
}

#[test]
fn the_nearest_provider_wins_and_unordered_ones_are_ambiguous() {
    let flow: Flow = Linear::new("f")
        .add(atom("a", noop()).provides("x"))
        .add(atom("b", noop()).provides("x"))
        .add(atom("c", noop()).requires(["x"]))
        .into();
    let c = compile(&flow).unwrap();
    let res = c.resolve(&Default::default()).unwrap();
    let b = c.atom_index("b").unwrap();
    assert!(
        matches!(res.arguments(c.atom_index("c").unwrap())[0].source,
        ArgSource::Atom { provider, .. } if provider == b)
    );

    let errs = errors(
        Linear::new("f")
            .add(
                Unordered::new("u")
                    .add(atom("a", noop()).provides("x"))
                    .add(atom("b", noop()).provides("x")),
            )
            .add(atom("c", noop()).requires(["x"])),
    );
    assert_eq!(
        errs,
        [
            "atom `c` requires `x`, which `a`, `b` all provide with no order between them; \
          link them or provide it under different names"
        ]
    );
}

#[test]
fn priority_is_kept_on_the_compiled_atom_and_in_the_stored_flow() {
    let flow: Flow = Linear::new("f")
        .add(atom("low", Add { amount: 1 }).requires(["x"]).priority(-1))
        .add(atom("plain", Add { amount: 1 }).requires(["x"]))
        .add(atom("high", Add { amount: 1 }).requires(["x"]).priority(7))
        .into();
    let back: Flow = serde_json::from_value(serde_json::to_value(&flow).unwrap()).unwrap();
    for flow in [flow, back] {
        let c = compile(&flow).unwrap();
        let priority = |n: &str| c.atom(c.atom_index(n).unwrap()).priority();
        assert_eq!(
            (priority("low"), priority("plain"), priority("high")),
            (-1, 0, 7)
        );
    }
}

#[test]
fn cycles_name_the_atoms_on_them() {
    let errs = errors(
        Graph::new("g")
            .add(atom("a", noop()))
            .add(atom("b", noop()))
            .add(atom("c", noop()))
            .link("a", "b")
            .link("b", "c")
            .link("c", "a"),
    );
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("the flow has a cycle: "), "{}", errs[0]);
    for n in ["`a`", "`b`", "`c`"] {
        assert!(errs[0].contains(n));
    }
    let errs = errors(Graph::new("g").add(atom("a", noop())).link("a", "a"));
    assert_eq!(errs, ["the flow has a cycle: `a` -> `a`"]);
}

#[test]
fn every_structural_error_is_reported_not_only_the_first() {
    let errs = errors(
        Linear::new("f")
            .add(atom("a", noop()))
            .add(atom("a", noop()))
            .add(
                Unordered::new("u")
                    .add(atom("p", noop()).provides("x"))
                    .add(atom("q", noop()).requires(["x"])),
            )
            .add(Graph::new("g").add(atom("z", noop())).link("z", "nope")),
    );
    assert_eq!(
        errs,
        [
            "the name `a` is used by more than one atom, or by two children a link names",
            "graph flow `g` links `nope`, which is not one of its children",
        ]
    );
    let all = compile(
        &Linear::new("f")
            .add(atom("a", noop()))
            .add(atom("a", noop()))
            .add(atom("", noop()))
            .into(),
    )
    .unwrap_err();
    assert!(
        all.to_string().starts_with("2 errors in the flow:"),
        "{all}"
    );
}

/// Names taken twice are found from the atoms sorted by name: one error
/// per repeat, in the order the repeats were added, before the other
/// errors; a link to a repeated name adds none of its own.
#[test]
fn every_repeat_of_a_name_is_one_error_in_the_order_added() {
    let dup = |n: &str| {
        format!("the name `{n}` is used by more than one atom, or by two children a link names")
    };
    let errs = errors(
        Linear::new("f")
            .add(atom("b", noop()))
            .add(atom("a", noop()))
            .add(Graph::new("g").add(atom("z", noop())).link("z", "nope"))
            .add(
                Unordered::new("u")
                    .add(atom("b", noop()))
                    .add(atom("a", noop())),
            )
            .add(atom("b", noop())),
    );
    assert_eq!(
        errs,
        [
            dup("b"),
            dup("a"),
            dup("b"),
            "graph flow `g` links `nope`, which is not one of its children".to_owned(),
        ]
    );
    let errs = errors(
        Graph::new("g")
            .add(atom("x", noop()))
            .add(atom("x", noop()))
            .add(atom("y", noop()))
            .link("x", "y"),
    );
    assert_eq!(errs, [dup("x")]);

    // Atoms without a name are refused as such, not as sharing one.
    let all = compile(
        &Linear::new("f")
            .add(atom("", noop()))
            .add(atom("", noop()))
            .into(),
    )
    .unwrap_err();
    assert!(
        all.errors()
            .iter()
            .all(|e| matches!(e, CompileError::EmptyName { .. })),
        "{all}"
    );
    assert_eq!(all.errors().len(), 2);

    // On a flow large enough for the radix sort, with names alike in
    // their first eight bytes.
    let mut big = long_named_chain(300);
    big = big.add(atom("step-number-150", noop()));
    big = big.add(atom("step-number-007", noop()));
    assert_eq!(
        errors(big),
        [dup("step-number-150"), dup("step-number-007")]
    );
}

#[test]
fn deciders_are_compiled_onto_the_edges_into_their_target() {
    let flow: Flow = Graph::new("g")
        .add(
            Linear::new("check")
                .add(atom("c1", noop()))
                .add(atom("c2", noop())),
        )
        .add(atom("act", noop()))
        .link_if("check", "act", decider_fn(|_| true), Depth::Flow)
        .into();
    let c = compile(&flow).unwrap();
    let act = c.atom_index("act").unwrap();
    let ds = c.incoming_deciders(act);
    assert_eq!(ds.len(), 1);
    let d = &c.deciders()[ds[0] as usize];
    assert_eq!(names(&c, &d.sources), ["c1", "c2"]);
    assert_eq!(d.depth, Depth::Flow);
    // The petgraph view, built on demand, carries the decider on its edge.
    let g = c.graph();
    assert_eq!(g.node_count(), 3);
    let c2 = c.atom_index("c2").unwrap();
    let edge = g
        .find_edge(NodeIndex::new(c2.index()), NodeIndex::new(act.index()))
        .unwrap();
    assert_eq!(g[edge], Some(ds[0]));
    assert_eq!(g.edge_count(), 2);
    assert!(g.edge_weights().filter(|w| w.is_none()).count() == 1);
}

#[test]
fn lookups_by_name_and_by_symbol() {
    let flow: Flow = Linear::new("f")
        .add(atom("z", noop()).provides("x"))
        .add(atom("m", noop()).provides_seq(["y", "x"]))
        .add(atom("a", noop()).provides_map(["w", "x"]))
        .add(atom("b", noop()))
        .into();
    let c = compile(&flow).unwrap();
    for (i, name) in ["z", "m", "a", "b"].into_iter().enumerate() {
        assert_eq!(c.atom_index(name), Some(AtomIndex::new(i)));
    }
    assert_eq!(c.atom_index("f"), None);
    assert_eq!(c.atom_index(""), None);
    // In flow order, whatever the names sort as.
    assert_eq!(names(&c, c.providers("x")), ["z", "m", "a"]);
    assert_eq!(names(&c, c.providers("y")), ["m"]);
    assert_eq!(names(&c, c.providers("w")), ["a"]);
    assert!(c.providers("v").is_empty());
    assert!(c.providers("zz").is_empty());
    assert!(c.incoming_deciders(AtomIndex::new(1)).is_empty());
}

#[derive(Serialize, Deserialize)]
struct Add {
    amount: i64,
}

#[typetag::serde]
impl StoredTask for Add {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        Ok((ctx.input::<i64>("x")? + self.amount).into())
    }
}

#[test]
fn a_flow_of_serializable_tasks_round_trips_through_serde() {
    let flow: Flow = Linear::new("f")
        .add(
            atom("one", Add { amount: 1 })
                .requires(["x"])
                .provides("y")
                .version(2, 3),
        )
        .add(
            Graph::new("g")
                .add(
                    atom("two", Add { amount: 2 })
                        .rebind("x", "y")
                        .provides_seq(["a", "b"]),
                )
                .with_retry(retry("r", ForEach::new([json!(1), json!(2)])).provides("v")),
        )
        .with_retry(Times::new(3).revert_all())
        .into();
    let text = serde_json::to_string(&flow).unwrap();
    let back: Flow = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    let c = compile(&back).unwrap();
    assert_eq!(c.len(), 4);
    let atom = c.atom(c.atom_index("one").unwrap());
    assert_eq!(atom.spec.version, Version(2, 3));
    let AtomImpl::Task(task) = &atom.imp else {
        panic!("a task")
    };
    let inputs: Inputs = [("x", json!(41))].into_iter().collect();
    assert_eq!(
        task.execute(&mut Context::new("one", &inputs)).unwrap(),
        json!(42)
    );
}

#[test]
fn name_prefixes_order_as_the_names_do() {
    let words = [
        "",
        "\0",
        "a",
        "a\0",
        "a\0\0b",
        "ab",
        "abcdefgh",
        "abcdefgh\0",
        "abcdefghi",
        "abcdefgi",
        "b",
        "t1",
        "t10",
        "t2",
        "\u{e9}",
        "zzzzzzzzzz",
    ];
    for a in words {
        for b in words {
            if super::prefix(a) < super::prefix(b) {
                assert!(a < b, "{a:?} {b:?}");
            }
            if a == b {
                assert_eq!(super::prefix(a), super::prefix(b));
            }
        }
    }
}

#[test]
fn sorting_by_name_orders_as_a_stable_sort_of_the_names() {
    // Above and below the size where the radix sort takes over: short
    // names, names alike in their first eight bytes, trailing zero bytes,
    // and each name several times (its copies must keep their order).
    let stems = ["t1", "t10", "t2", "a\0", "a", "", "abcdefgh", "abcdefgh\0"];
    for n in [5, 63, 64, 65, 700] {
        let mut items: Vec<(String, usize)> = (0..n)
            .map(|i| {
                let name = match i % 4 {
                    0 => stems[i % stems.len()].to_owned(),
                    1 => format!("long-shared-prefix-{}", (i * 7) % 13),
                    2 => format!("t{}", (i * 31) % 97),
                    _ => format!("abcdefgh{}", (i * 3) % 5),
                };
                (name, i)
            })
            .collect();
        let mut expected = items.clone();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        super::sort_by_name(&mut items, |x| super::prefix(&x.0), |x, y| x.0.cmp(&y.0));
        assert_eq!(items, expected, "n = {n}");
    }
}

/// A graph of `n` atoms `step-number-{i:03}`, declared last first, names
/// alike in their first eight bytes; atom `i` provides `value-of-{i:03}`
/// and requires its predecessor's, so links are all inferred from data.
fn long_named_chain(n: usize) -> Graph {
    let mut g = Graph::new("g");
    for i in (0..n).rev() {
        let mut a =
            atom(format!("step-number-{i:03}"), noop()).provides(format!("value-of-{i:03}"));
        if i > 0 {
            a = a.requires([format!("value-of-{:03}", i - 1)]);
        }
        g = g.add(a);
    }
    g
}

#[test]
fn a_large_graph_of_long_shared_names_resolves_as_declared() {
    // Enough atoms for the radix sorts, declared last first, every name
    // alike in its first eight bytes: each atom feeds the next.
    let n = 300;
    let c = compile(&long_named_chain(n).into()).unwrap();
    let res = c.resolve(&serde_json::Map::new()).unwrap();
    for i in 1..n {
        let from = c.atom_index(&format!("step-number-{:03}", i - 1)).unwrap();
        let to = c.atom_index(&format!("step-number-{i:03}")).unwrap();
        assert_eq!(c.successors(from), &[to]);
        assert_eq!(
            source(
                &c,
                &res,
                &format!("step-number-{i:03}"),
                &format!("value-of-{:03}", i - 1)
            ),
            format!("atom step-number-{:03}", i - 1)
        );
    }
}

#[test]
fn short_names_alike_but_for_their_length_are_told_apart_when_links_are_inferred() {
    // Names of at most eight bytes compare by their first eight bytes and
    // length alone: `a` and `a\0` share the first, `v1` and `v10` neither.
    // Below and above the size where the radix sorts take over.
    for n in [3, 70] {
        let mut g = Graph::new("g");
        for i in 0..n {
            let mut a = atom(format!("s{i}"), noop()).provides(format!("v{i}"));
            if i > 0 {
                a = a.requires([format!("v{}", i - 1)]);
            }
            g = g.add(a);
        }
        let g = g
            .add(atom("z1", noop()).provides("a"))
            .add(atom("z2", noop()).provides("a\0"))
            .add(atom("z3", noop()).requires(["a\0"]))
            .add(atom("z4", noop()).requires(["a"]));
        let c = compile(&g.into()).unwrap();
        let at = |name: &str| c.atom_index(name).unwrap();
        assert_eq!(c.successors(at("z1")), &[at("z4")], "n = {n}");
        assert_eq!(c.successors(at("z2")), &[at("z3")], "n = {n}");
        for i in 1..n {
            let from = at(&format!("s{}", i - 1));
            assert_eq!(c.successors(from), &[at(&format!("s{i}"))], "n = {n}");
        }
        c.resolve(&Default::default()).unwrap();
    }
}

#[test]
fn long_shared_prefixes_and_many_siblings_resolve_as_declared() {
    // Names alike in their first eight bytes; a graph inferring every link
    // from data, and an unordered flow with one error per sibling pair
    // naming the first symbol they share.
    let c = compile(&long_named_chain(12).into()).unwrap();
    let order: Vec<String> = (0..12).map(|i| format!("step-number-{i:03}")).collect();
    for pair in order.windows(2) {
        let from = c.atom_index(&pair[0]).unwrap();
        let to = c.atom_index(&pair[1]).unwrap();
        assert_eq!(c.successors(from), &[to]);
    }
    assert_eq!(names(&c, c.providers("value-of-003")), ["step-number-003"]);
    c.resolve(&Default::default()).unwrap();

    // Siblings of an unordered flow feed none of each other: with nothing
    // outside the flow providing them, every requirement is missing.
    let errs = compile(
        &Unordered::new("u")
            .add(atom("q", noop()).requires(["y", "x", "z"]))
            .add(atom("p", noop()).provides_seq(["z", "y"]))
            .add(atom("r", noop()).provides("x").requires(["x"]))
            .into(),
    )
    .unwrap()
    .resolve(&Default::default())
    .unwrap_err();
    let missing: Vec<(&str, &str, &[String])> = errs
        .errors()
        .iter()
        .map(|e| match e {
            CompileError::MissingRequirement {
                atom,
                symbol,
                provided_by,
                ..
            } => (atom.as_str(), symbol.as_str(), provided_by.as_slice()),
            other => panic!("{other}"),
        })
        .collect();
    let by = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(
        missing,
        [
            ("q", "y", &by(&["p"])[..]),
            ("q", "x", &by(&["r"])[..]),
            ("q", "z", &by(&["p"])[..]),
            ("r", "x", &by(&[])[..]),
        ]
    );
}

#[test]
fn unordered_siblings_are_fed_from_outside_the_flow_never_by_each_other() {
    let flow: Flow = Linear::new("f")
        .add(atom("before", noop()).provides("x"))
        .add(
            Unordered::new("u")
                .add(atom("p", noop()).provides("x"))
                .add(atom("q", noop()).requires(["x"]))
                .add(atom("r", noop()).requires(["y"])),
        )
        .add(atom("after", noop()).requires(["x"]))
        .into();
    let c = compile(&flow).unwrap();
    let i = |n: &str| c.atom_index(n).unwrap();
    assert!(!c.is_ancestor(i("p"), i("q")));
    let store = json!({"y": 1});
    let res = c.resolve(store.as_object().unwrap()).unwrap();
    assert_eq!(source(&c, &res, "q", "x"), "atom before");
    assert_eq!(source(&c, &res, "r", "y"), "store y");
    // After the flow, its child is the nearest provider.
    assert_eq!(source(&c, &res, "after", "x"), "atom p");
    let store = json!({"x": 0, "y": 1});
    let res = c.resolve(store.as_object().unwrap()).unwrap();
    assert_eq!(source(&c, &res, "q", "x"), "store x");

    // Nothing outside provides it: an error naming the atom and the symbol.
    let errs = errors(
        Unordered::new("u")
            .add(atom("p", noop()).provides("x"))
            .add(atom("q", noop()).requires(["x"])),
    );
    assert_eq!(
        errs,
        [
            "atom `q` requires `x`, but no atom that runs before it provides it and the store \
             does not hold it (`p` provides it, but does not run before it); available to it: \
             nothing"
        ]
    );
}

#[test]
fn names_are_unique_among_atoms_only_and_a_bare_retry_is_named_flow_retry() {
    // A flow may share its name with one of its atoms, or with another flow.
    let flow: Flow = Linear::new("test")
        .add(atom("test", noop()))
        .add(Unordered::new("sub").add(atom("sub", noop())))
        .add(Linear::new("sub").add(atom("other", noop())))
        .into();
    let c = compile(&flow).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c.name(), "test");
    assert!(c.atom_index("test").is_some());

    // An unnamed controller is named after its flow, as TaskFlow names it.
    let flow: Flow = Linear::new("f")
        .add(atom("a", noop()))
        .with_retry(Times::new(2))
        .into();
    assert_eq!(flow.retry().unwrap().name(), "f_retry");
    let c = compile(&flow).unwrap();
    assert!(c.atom_index("f_retry").is_some());
    // ... so two flows of one name with bare controllers clash, as there.
    let errs = errors(
        Linear::new("outer")
            .add(
                Linear::new("f")
                    .add(atom("a", noop()))
                    .with_retry(Times::new(2)),
            )
            .add(
                Linear::new("f")
                    .add(atom("b", noop()))
                    .with_retry(Times::new(2)),
            ),
    );
    assert_eq!(
        errs,
        ["the name `f_retry` is used by more than one atom, or by two children a link names"]
    );

    // A graph link must name one child: a name two children share is refused.
    let errs = errors(
        Graph::new("g")
            .add(atom("x", noop()))
            .add(Linear::new("x").add(atom("inner", noop())))
            .add(atom("y", noop()))
            .link("x", "y"),
    );
    assert_eq!(
        errs,
        ["the name `x` is used by more than one atom, or by two children a link names"]
    );
    let errs = errors(
        Graph::new("g")
            .add(atom("x", noop()))
            .add(atom("x", noop()))
            .add(atom("y", noop()))
            .link("x", "y")
            .link("y", "x"),
    );
    assert!(
        errs.iter()
            .filter(|e| e.starts_with("the name `x`"))
            .count()
            == 1,
        "{errs:?}"
    );
}

/// A chain of `levels` linear flows, one inside the next, the innermost
/// holding one task: `f0` holds `f1` ... holds `f{levels-1}` holds `t`.
fn chain(levels: usize, task: impl Into<crate::TaskAtom>) -> Flow {
    let mut flow = Linear::new(format!("f{}", levels - 1)).add(task.into());
    for i in (0..levels - 1).rev() {
        flow = Linear::new(format!("f{i}")).add(flow);
    }
    flow.into()
}

#[test]
fn a_flow_nested_too_deep_is_refused_naming_it_not_an_abort() {
    // Run on the test's own thread (2 MiB of stack by default): building
    // and dropping the flow, measuring and refusing it never recurse.
    for levels in [MAX_FLOW_DEPTH + 1, 5_000, 100_000] {
        let flow = chain(levels, atom("t", noop()));
        let err = compile(&flow).unwrap_err();
        assert_eq!(
            err.errors(),
            [CompileError::TooDeep {
                flow: format!("f{MAX_FLOW_DEPTH}"),
                depth: levels,
                limit: MAX_FLOW_DEPTH,
            }]
        );
        let text = err.to_string();
        for part in [
            format!("`f{MAX_FLOW_DEPTH}`"),
            format!("{MAX_FLOW_DEPTH} levels"),
            format!("{levels} levels deep"),
        ] {
            assert!(text.contains(&part), "{text} names {part}");
        }
    }
}

#[test]
fn a_flow_nested_as_deep_as_allowed_compiles() {
    let flow = chain(MAX_FLOW_DEPTH, atom("t", noop()).provides("x"));
    assert_eq!(flow_depth(&flow), MAX_FLOW_DEPTH);
    let c = compile(&flow).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c.flows().len(), MAX_FLOW_DEPTH);
    c.resolve(&Default::default()).unwrap();
}

#[test]
fn a_graph_or_unordered_flow_nested_too_deep_is_refused_too() {
    let mut flow: Flow = Unordered::new("leaf").add(atom("t", noop())).into();
    for i in (0..MAX_FLOW_DEPTH).rev() {
        flow = if i % 2 == 0 {
            Graph::new(format!("g{i}")).add(flow).into()
        } else {
            Unordered::new(format!("u{i}")).add(flow).into()
        };
    }
    let err = compile(&flow).unwrap_err();
    assert!(
        matches!(err.errors(), [CompileError::TooDeep { flow, depth, .. }]
            if flow == "leaf" && *depth == MAX_FLOW_DEPTH + 1),
        "{err}"
    );
}

/// How many levels of JSON nesting one level of `Linear` adds to a stored
/// definition: the limits of `taskflow-persistence` count on it (see
/// `MAX_RECORD_DEPTH` there).
#[test]
fn one_level_of_flows_is_four_levels_of_stored_json() {
    let depth_of = |levels: usize| {
        let flow = chain(levels, atom("t", Add { amount: 1 }).inject("x", json!(1)));
        value_depth(&serde_json::to_value(&flow).unwrap())
    };
    let one = depth_of(1);
    for levels in [2, 10, MAX_FLOW_DEPTH] {
        assert_eq!(depth_of(levels), one + 4 * (levels - 1), "{levels} levels");
    }
    // A task holding a value as deep as allowed, at the bottom of a flow as
    // deep as allowed.
    let mut deep = json!(1);
    for _ in 0..MAX_VALUE_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    let flow = chain(
        MAX_FLOW_DEPTH,
        atom("t", Add { amount: 1 }).inject("x", deep),
    );
    let stored = serde_json::to_value(&flow).unwrap();
    // A task's injected values sit in an object 6 levels into the flow
    // (flow, pattern, children, node, atom, inject): 658 levels in all.
    assert_eq!(
        value_depth(&stored),
        4 * (MAX_FLOW_DEPTH - 1) + 6 + MAX_VALUE_DEPTH
    );
}

#[test]
fn a_value_given_to_an_atom_too_deep_to_checkpoint_is_refused() {
    let mut deep = json!(1);
    for _ in 0..=MAX_VALUE_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    let flow = Linear::new("f")
        .add(atom("a", noop()).inject("x", deep.clone()))
        .add(atom("b", noop()).optional("y", deep))
        .add(atom("c", noop()).inject("z", json!([[1]])));
    let err = compile(&flow.into()).unwrap_err();
    let depth = MAX_VALUE_DEPTH + 1;
    assert_eq!(
        err.errors(),
        [
            CompileError::ValueTooDeep {
                atom: "a".into(),
                argument: "x".into(),
                depth,
                limit: MAX_VALUE_DEPTH
            },
            CompileError::ValueTooDeep {
                atom: "b".into(),
                argument: "y".into(),
                depth,
                limit: MAX_VALUE_DEPTH
            },
        ]
    );
    assert!(
        err.to_string().contains("`x` nested 257 levels deep"),
        "{err}"
    );
}

#[test]
fn a_part_that_is_not_stored_is_named_when_the_flow_is_serialized() {
    struct Client(std::sync::Mutex<Vec<i64>>);
    impl Task for Client {
        fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
            let mut sent = self
                .0
                .lock()
                .map_err(|_| TaskError::new("Poisoned", "lock"))?;
            sent.push(1);
            Ok(Value::Null)
        }
    }
    let flow: Flow = Linear::new("f")
        .add(atom("stored", Add { amount: 1 }))
        .add(atom("client", Client(Default::default())))
        .into();
    let err = serde_json::to_string(&flow).unwrap_err().to_string();
    assert!(err.contains("atom `client`"), "{err}");
    assert!(err.contains("Client"), "{err}");
    assert!(err.contains("StoredTask"), "{err}");

    let flow: Flow = Graph::new("g")
        .add(atom("a", Add { amount: 1 }))
        .add(atom("b", Add { amount: 2 }))
        .link_if("a", "b", decider_fn(|_| true), Depth::All)
        .into();
    let err = serde_json::to_string(&flow).unwrap_err().to_string();
    assert!(err.contains("the link `a` -> `b`"), "{err}");
    assert!(err.contains("StoredDecider"), "{err}");
}

/// A flow holds one compiled atom per atom and one argument per argument
/// of every atom: their sizes are what W10 (memory per atom) pays.
#[test]
#[cfg(target_pointer_width = "64")]
fn a_compiled_atom_is_48_bytes_and_an_argument_48() {
    assert_eq!(std::mem::size_of::<CompiledAtom>(), 48);
    assert_eq!(std::mem::size_of::<crate::Argument>(), 48);
    assert_eq!(std::mem::size_of::<Option<AtomIndex>>(), 4);
    assert_eq!(std::mem::size_of::<Option<FlowIndex>>(), 4);
}

/// Indexes keep their position through the compact form, at both ends, and
/// order by it.
#[test]
fn indexes_keep_their_position_and_order() {
    for i in [0, 1, 2, 1_000_000, u32::MAX as usize - 1] {
        assert_eq!(AtomIndex::new(i).index(), i);
        assert_eq!(FlowIndex::new(i).index(), i);
    }
    assert_eq!(AtomIndex::new(usize::MAX).index(), u32::MAX as usize - 1);
    let mut sorted = [5, 0, 3, 1].map(AtomIndex::new);
    sorted.sort();
    assert_eq!(sorted.map(AtomIndex::index), [0, 1, 3, 5]);
    assert!(AtomIndex::new(1) < AtomIndex::new(2));
    assert_eq!(format!("{:?}", AtomIndex::new(7)), "AtomIndex(7)");
}
