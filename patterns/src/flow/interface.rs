//! What a flow needs from outside it and what it offers: TaskFlow's
//! `Flow.requires` and `Flow.provides`, computed on the flow tree (no
//! compile needed) by the rules [`compile`](crate::compile) feeds
//! arguments by.
//!
//! - An atom requires the symbols of its required arguments, for `execute`
//!   and `revert` (after rebinding, less what is injected into it; optional
//!   arguments are not required), and provides the names of its result.
//! - A flow provides everything its atoms and its retry controller provide.
//! - A linear flow requires what its controller requires, and what each
//!   child requires that neither the controller nor an earlier child
//!   provides.
//! - An unordered flow requires what its controller and every child
//!   require, less what the controller provides: siblings feed none of each
//!   other.
//! - A graph flow requires what its controller requires, and what each
//!   child requires that neither the controller nor a child it runs after
//!   (by explicit links, or by links inferred from data) provides.
//!
//! The tree is walked with a heap stack, not recursion: a flow of any depth
//! is safe to ask.

use std::collections::{BTreeMap, BTreeSet};

use super::{FlowParts, Link, Node};
use crate::AtomSpec;

/// How a flow orders its children.
#[derive(Clone, Copy)]
pub(crate) enum Pattern<'f> {
    /// One after another.
    Linear,
    /// In no order.
    Unordered,
    /// By these links and by data.
    Graph(&'f [Link]),
}

/// What an atom or flow requires from outside it and what it provides.
#[derive(Default)]
pub(crate) struct Interface<'f> {
    /// The symbols it needs from outside it.
    pub(crate) requires: BTreeSet<&'f str>,
    /// The names it provides.
    pub(crate) provides: BTreeSet<&'f str>,
    /// Every symbol an atom inside it binds an argument to, optional ones
    /// included, whoever provides it: what a graph infers its links from.
    needs: BTreeSet<&'f str>,
}

fn of_atom(spec: &AtomSpec) -> Interface<'_> {
    let symbols = || spec.required_symbols();
    Interface {
        requires: symbols().filter(|&(_, opt)| !opt).map(|(s, _)| s).collect(),
        provides: spec.provides.names().collect(),
        needs: symbols().map(|(s, _)| s).collect(),
    }
}

/// The interface of a flow of `pattern` made of `parts`.
pub(crate) fn of<'f>(pattern: Pattern<'f>, parts: &'f FlowParts) -> Interface<'f> {
    struct Frame<'f> {
        pattern: Pattern<'f>,
        parts: &'f FlowParts,
        next: usize,
        done: Vec<Interface<'f>>,
    }
    let frame = |pattern, parts: &'f FlowParts| Frame {
        pattern,
        parts,
        next: 0,
        done: Vec::with_capacity(parts.children.len()),
    };
    let mut stack = vec![frame(pattern, parts)];
    while let Some(top) = stack.last_mut() {
        if let Some(child) = top.parts.children.get(top.next) {
            top.next += 1;
            match child {
                Node::Task(atom) => top.done.push(of_atom(&atom.spec)),
                Node::Flow(flow) => stack.push(frame(flow.pattern(), flow.parts())),
            }
            continue;
        }
        let Some(done) = stack.pop() else { break };
        let combined = combine(done.pattern, done.parts, done.done);
        match stack.last_mut() {
            Some(parent) => parent.done.push(combined),
            None => return combined,
        }
    }
    Interface::default()
}

/// The interface of a flow from its children's.
fn combine<'f>(
    pattern: Pattern<'f>,
    parts: &'f FlowParts,
    children: Vec<Interface<'f>>,
) -> Interface<'f> {
    let Interface {
        mut requires,
        provides: by_retry,
        mut needs,
    } = parts
        .retry
        .as_ref()
        .map(|r| of_atom(&r.spec))
        .unwrap_or_default();
    match pattern {
        Pattern::Linear => {
            let mut prior = by_retry.clone();
            for c in &children {
                requires.extend(c.requires.difference(&prior));
                prior.extend(&c.provides);
            }
        }
        Pattern::Unordered => {
            for c in &children {
                requires.extend(c.requires.difference(&by_retry));
            }
        }
        Pattern::Graph(links) => {
            let mut providers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (j, c) in children.iter().enumerate() {
                for &s in &c.provides {
                    providers.entry(s).or_default().push(j);
                }
            }
            let mut graph = None;
            for (i, c) in children.iter().enumerate() {
                let mut before = None;
                for &s in c.requires.difference(&by_retry) {
                    let by = providers.get(s).map_or(&[][..], Vec::as_slice);
                    // A child that does not provide what it needs runs after
                    // every sibling that does (a link inferred from data);
                    // one that does is fed only by a child it runs after.
                    let fed = if c.provides.contains(s) {
                        let graph = graph.get_or_insert_with(|| {
                            predecessors(parts, links, &children, &providers)
                        });
                        let before: &Vec<bool> = before.get_or_insert_with(|| ancestors(graph, i));
                        by.iter().any(|&j| before[j])
                    } else {
                        !by.is_empty()
                    };
                    if !fed {
                        requires.insert(s);
                    }
                }
            }
        }
    }
    let mut provides = by_retry;
    for c in children {
        provides.extend(c.provides);
        needs.extend(c.needs);
    }
    Interface {
        requires,
        provides,
        needs,
    }
}

/// For each child of a graph, the children it runs right after: by the
/// explicit links (of children sharing a name, the last is meant), and by
/// the links inferred from data, as compile makes them (a child that binds
/// an argument to a symbol it does not provide itself runs after every
/// sibling that provides it).
fn predecessors(
    parts: &FlowParts,
    links: &[Link],
    children: &[Interface<'_>],
    providers: &BTreeMap<&str, Vec<usize>>,
) -> Vec<Vec<usize>> {
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); children.len()];
    let by_name: BTreeMap<&str, usize> = (parts.children.iter().map(Node::name)).zip(0..).collect();
    for link in links {
        let find = |name: &str| by_name.get(name).copied();
        if let (Some(from), Some(to)) = (find(&link.from), find(&link.to)) {
            preds[to].push(from);
        }
    }
    for (i, c) in children.iter().enumerate() {
        for &s in c.needs.difference(&c.provides) {
            preds[i].extend(providers.get(s).into_iter().flatten());
        }
    }
    preds
}

/// Whether each child runs, directly or not, before child `i`.
fn ancestors(preds: &[Vec<usize>], i: usize) -> Vec<bool> {
    let mut seen = vec![false; preds.len()];
    let mut stack: Vec<usize> = preds[i].clone();
    while let Some(j) = stack.pop() {
        if !std::mem::replace(&mut seen[j], true) {
            stack.extend(&preds[j]);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use crate::{
        atom, retry, task_fn, AlwaysRevert, Flow, FnTask, ForEach, Graph, Linear,
        ParameterizedForEach, Unordered, Value,
    };
    use serde_json::json;

    fn noop() -> FnTask {
        task_fn(|_| Ok(Value::Null))
    }

    fn both(flow: impl Into<Flow>) -> (Vec<String>, Vec<String>) {
        let flow = flow.into();
        let strings = |set: std::collections::BTreeSet<&str>| {
            set.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        (strings(flow.requires()), strings(flow.provides()))
    }

    // Each expected pair is what TaskFlow 6.5.0 says of the same flow.

    #[test]
    fn a_linear_flow_requires_what_nothing_earlier_provides() {
        let flow = Linear::new("test")
            .add(atom("a", noop()).requires(["a"]).provides_seq(["b", "c"]))
            .add(atom("d", noop()).requires(["b"]).provides("d"));
        assert_eq!(flow.requires().into_iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            both(flow),
            (vec!["a".into()], vec!["b".into(), "c".into(), "d".into()])
        );
        let later = Linear::new("f")
            .add(atom("q", noop()).requires(["x"]))
            .add(atom("p", noop()).provides("x"));
        assert_eq!(both(later), (vec!["x".into()], vec!["x".into()]));
    }

    #[test]
    fn unordered_siblings_feed_none_of_each_other() {
        let flow = Unordered::new("u")
            .add(atom("p", noop()).provides("x"))
            .add(atom("q", noop()).requires(["x"]));
        assert_eq!(both(flow.clone()), (vec!["x".into()], vec!["x".into()]));
        let nested = Linear::new("f")
            .add(flow)
            .add(atom("r", noop()).requires(["x"]).provides("y"));
        assert_eq!(
            both(nested),
            (vec!["x".into()], vec!["x".into(), "y".into()])
        );
    }

    #[test]
    fn a_graph_flow_requires_what_no_child_it_runs_after_provides() {
        let flow = Graph::new("g")
            .add(atom("p", noop()).provides("x"))
            .add(atom("q", noop()).requires(["x", "y"]));
        assert_eq!(both(flow), (vec!["y".into()], vec!["x".into()]));
        let flow = Graph::new("g")
            .add(atom("b", noop()).provides("w"))
            .add(atom("a", noop()).requires(["v"]))
            .add(atom("c", noop()).provides("v"));
        assert_eq!(both(flow), (vec![], vec!["v".into(), "w".into()]));
        // A child fed only through an explicit link, as it provides the
        // symbol itself.
        let step = |name: &str| atom(name, noop()).requires(["v"]).provides("v");
        let flow = Graph::new("g")
            .add(step("a"))
            .add(atom("b", noop()).provides("v"))
            .link("b", "a");
        assert_eq!(both(flow), (vec![], vec!["v".into()]));
    }

    #[test]
    fn retry_controllers_require_and_provide_too() {
        let flow = Linear::new("lf").with_retry(retry("rt", AlwaysRevert));
        assert_eq!(both(flow), (vec![], vec![]));
        let flow = Linear::new("lf")
            .add(atom("t", noop()).requires(["v", "w"]))
            .with_retry(retry("rt", ForEach::new([json!(1), json!(2)])).provides("v"));
        assert_eq!(both(flow), (vec!["w".into()], vec!["v".into()]));
        let flow = Unordered::new("u")
            .add(atom("t", noop()).requires(["v"]))
            .with_retry(retry("rt", ParameterizedForEach::new()).provides("v"));
        assert_eq!(both(flow), (vec!["values".into()], vec!["v".into()]));
    }

    #[test]
    fn an_atom_requires_its_symbols_after_rebind_less_injected_and_optional_ones() {
        let flow = Linear::new("f").add(
            atom("t", noop())
                .requires(["a", "b"])
                .rebind("a", "x")
                .inject("b", 5)
                .optional("o", 1),
        );
        assert_eq!(both(flow), (vec!["x".into()], vec![]));
        let flow = Linear::new("f").add(
            atom("t", noop())
                .requires(["a"])
                .revert_requires(["z"])
                .revert_rebind("z", "zz"),
        );
        assert_eq!(both(flow), (vec!["a".into(), "zz".into()], vec![]));
    }

    #[test]
    fn a_flow_of_any_depth_is_asked_without_recursion() {
        let mut flow = Linear::new("f99999").add(atom("t", noop()).requires(["x"]).provides("y"));
        for i in (0..99_999).rev() {
            flow = Linear::new(format!("f{i}")).add(flow);
        }
        assert_eq!(both(flow), (vec!["x".into()], vec!["y".into()]));
    }
}
