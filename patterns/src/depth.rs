//! How deep values and flows may nest.
//!
//! Everything the engine accepts it checkpoints, and everything it
//! checkpoints it must read back: a value nested deeper than a reader (or
//! the stack of the thread reading it) can follow would be written and then
//! lost. So there is one limit per kind of nesting, enforced where a value
//! or a flow comes in, and the record readers of `taskflow-persistence`
//! accept at least what those limits let through.
//!
//! Depths are counted without recursion, so measuring a hostile value or
//! flow (100,000 levels) neither overflows the stack nor takes long.

use crate::flow::Node;
use crate::{Flow, Value};

/// The deepest a value (a task's result, a store entry, an injected
/// argument) may nest: at most this many arrays and objects, one inside
/// the next, on any path from the value to a scalar (see [`value_depth`]).
///
/// Generous for data (JSON documents in the wild rarely pass 20 levels),
/// and far below what a reader on a default 2 MiB thread stack follows.
/// The engine fails a task whose result is deeper, and refuses a store
/// that is.
///
/// ```
/// use taskflow_patterns::{value_depth, Value, MAX_VALUE_DEPTH};
/// let mut v = Value::from(1);
/// for _ in 0..MAX_VALUE_DEPTH {
///     v = Value::Array(vec![v]);
/// }
/// assert_eq!(value_depth(&v), MAX_VALUE_DEPTH);
/// ```
pub const MAX_VALUE_DEPTH: usize = 256;

/// The deepest flows may nest: a top flow with this many levels of flows
/// in all, itself included (see [`flow_depth`]). [`compile`](crate::compile)
/// refuses a deeper flow with
/// [`CompileError::TooDeep`](crate::CompileError::TooDeep), measured
/// before anything recursive walks the flow.
///
/// A hundred levels is far more than any flow written by a person or
/// built by a program needs, and keeps the stored definition of a flow (a
/// few JSON levels per flow level) within what the record readers accept.
pub const MAX_FLOW_DEPTH: usize = 100;

/// How deeply `value` nests: the number of arrays and objects on its
/// deepest path, one inside the next. A scalar (`null`, a boolean, a
/// number, a string) is 0, `[]` and `{}` are 1, `[[1], 2]` is 2.
///
/// Counted with a heap stack, not recursion: any depth is safe to measure.
///
/// ```
/// use serde_json::json;
/// use taskflow_patterns::value_depth;
/// assert_eq!(value_depth(&json!("x")), 0);
/// assert_eq!(value_depth(&json!([])), 1);
/// assert_eq!(value_depth(&json!({"a": [1, {"b": null}]})), 3);
/// ```
pub fn value_depth(value: &Value) -> usize {
    // Most values checked are scalars or flat: no stack for those.
    fn flat<'v>(mut items: impl Iterator<Item = &'v Value>) -> bool {
        items.all(|v| !matches!(v, Value::Array(_) | Value::Object(_)))
    }
    match value {
        Value::Array(items) if flat(items.iter()) => return 1,
        Value::Object(entries) if flat(entries.values()) => return 1,
        Value::Array(_) | Value::Object(_) => {}
        _ => return 0,
    }
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, above)) = stack.pop() {
        match value {
            Value::Array(items) => {
                deepest = deepest.max(above + 1);
                stack.extend(items.iter().map(|v| (v, above + 1)));
            }
            Value::Object(entries) => {
                deepest = deepest.max(above + 1);
                stack.extend(entries.values().map(|v| (v, above + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// How deeply `flow` nests: 1 for a flow holding only atoms, one more for
/// each level of flows inside it (a `Linear` holding a `Linear` holding an
/// atom is 2).
///
/// Counted with a heap stack, not recursion: any depth is safe to measure.
///
/// ```
/// use taskflow_patterns::{flow_depth, Flow, Linear, Unordered};
/// let flow: Flow = Linear::new("a").add(Unordered::new("b").add(Linear::new("c"))).into();
/// assert_eq!(flow_depth(&flow), 3);
/// ```
pub fn flow_depth(flow: &Flow) -> usize {
    nesting(flow, usize::MAX).depth
}

/// How deeply the flows of a stored definition (a flow serialized as JSON)
/// nest, counted on the JSON without deserializing it: what
/// [`flow_depth`] would say of the flow it holds, 0 if it holds none.
///
/// Deserializing a flow recurses several frames per level of flows, and a
/// definition read from the records may be corrupt or hostile. Measure it
/// with this first, and deserialize only a definition no deeper than
/// [`MAX_FLOW_DEPTH`]: deeper, [`compile`](crate::compile) would refuse
/// the flow anyway.
///
/// ```
/// use taskflow_patterns::{definition_depth, Flow, Linear, MAX_FLOW_DEPTH};
/// let flow: Flow = Linear::new("a").add(Linear::new("b")).into();
/// let stored = serde_json::to_value(&flow)?;
/// assert_eq!(definition_depth(&stored), 2);
/// if definition_depth(&stored) <= MAX_FLOW_DEPTH {
///     let flow: Flow = serde_json::from_value(stored)?;
/// #   let _ = flow;
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn definition_depth(definition: &Value) -> usize {
    // A flow is `{"<pattern>": {"children": [...], ...}}`, and a child flow
    // `{"flow": <flow>}` (how serde writes the `Flow` and `Node` enums).
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(definition, 1)];
    while let Some((flow, depth)) = stack.pop() {
        let parts = match flow.as_object() {
            Some(tagged) if tagged.len() == 1 => tagged.values().next(),
            _ => None,
        };
        let Some(parts) = parts else { continue };
        deepest = deepest.max(depth);
        if let Some(children) = parts.get("children").and_then(Value::as_array) {
            stack.extend(
                children
                    .iter()
                    .filter_map(|child| child.get("flow"))
                    .map(|sub| (sub, depth + 1)),
            );
        }
    }
    deepest
}

/// What [`nesting`] finds.
pub(crate) struct Nesting<'f> {
    /// How deeply the flow nests (see [`flow_depth`]).
    pub(crate) depth: usize,
    /// The first flow (in pre-order) nested deeper than the limit asked
    /// about: the outermost flow that has to go.
    pub(crate) past_limit: Option<&'f Flow>,
}

/// How deeply `flow` nests, and the first flow in it nested deeper than
/// `limit`, walked with a heap stack.
pub(crate) fn nesting(flow: &Flow, limit: usize) -> Nesting<'_> {
    let mut found = Nesting {
        depth: 1,
        past_limit: None,
    };
    let mut stack: Vec<(&Flow, usize)> = vec![(flow, 1)];
    while let Some((flow, depth)) = stack.pop() {
        found.depth = found.depth.max(depth);
        if depth > limit && found.past_limit.is_none() {
            found.past_limit = Some(flow);
        }
        // Reversed, so the first child is walked first.
        stack.extend(
            flow.children()
                .iter()
                .rev()
                .filter_map(|child| match child {
                    Node::Flow(sub) => Some((sub, depth + 1)),
                    Node::Task(_) => None,
                }),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Linear;

    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = Value::Array(vec![v]);
        }
        v
    }

    /// A chain of `levels` flows, one inside the next.
    fn chain(levels: usize) -> Flow {
        let mut flow = Linear::new(format!("f{}", levels - 1));
        for i in (0..levels - 1).rev() {
            flow = Linear::new(format!("f{i}")).add(flow);
        }
        flow.into()
    }

    #[test]
    fn value_depth_counts_containers_on_the_deepest_path() {
        assert_eq!(value_depth(&json!(null)), 0);
        assert_eq!(value_depth(&json!({})), 1);
        assert_eq!(value_depth(&json!([1, [2, [3]], {"a": {}}])), 3);
        assert_eq!(value_depth(&json!({"a": 1, "b": [[[]]]})), 4);
        assert_eq!(value_depth(&nested(MAX_VALUE_DEPTH)), MAX_VALUE_DEPTH);
    }

    #[test]
    fn a_very_deep_value_is_measured_without_recursion() {
        let deep = nested(100_000);
        assert_eq!(value_depth(&deep), 100_000);
        // Dropping it whole recurses in serde_json: take it apart instead.
        let mut stack = vec![deep];
        while let Some(mut v) = stack.pop() {
            if let Value::Array(items) = &mut v {
                stack.append(items);
            }
        }
    }

    #[test]
    fn flow_depth_counts_levels_of_flows() {
        assert_eq!(flow_depth(&Linear::new("a").into()), 1);
        assert_eq!(flow_depth(&chain(MAX_FLOW_DEPTH)), MAX_FLOW_DEPTH);
        let flow = chain(7);
        let found = nesting(&flow, 4);
        assert_eq!(found.depth, 7);
        assert_eq!(found.past_limit.map(Flow::name), Some("f4"));
        assert!(nesting(&flow, 7).past_limit.is_none());
    }

    #[test]
    fn definition_depth_counts_the_stored_flows() {
        for levels in [1, 2, MAX_FLOW_DEPTH, 2 * MAX_FLOW_DEPTH] {
            let stored = serde_json::to_value(chain(levels)).unwrap();
            assert_eq!(definition_depth(&stored), levels);
        }
        let graph: Flow = crate::Graph::new("g")
            .add(crate::Unordered::new("u").add(Linear::new("l")))
            .add(Linear::new("m"))
            .into();
        let stored = serde_json::to_value(&graph).unwrap();
        assert_eq!(definition_depth(&stored), 3);
        assert_eq!(definition_depth(&json!({"a": 1, "b": 2})), 0);
        assert_eq!(definition_depth(&nested(300)), 0);
    }
}
