//! Flows: atoms and subflows arranged by a pattern ([`Linear`],
//! [`Unordered`], [`Graph`]), nested freely, each optionally owning a retry
//! controller.

mod graph;
mod interface;
mod linear;
mod unordered;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{RetryAtom, TaskAtom, Value};

pub use graph::{Graph, Link};
pub use linear::Linear;
pub use unordered::Unordered;

/// One child of a flow: an atom or a subflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// A task atom.
    Task(TaskAtom),
    /// A nested flow.
    Flow(Flow),
}

impl Node {
    /// The name of the atom or flow.
    pub fn name(&self) -> &str {
        match self {
            Node::Task(atom) => atom.name(),
            Node::Flow(flow) => flow.name(),
        }
    }
}

/// Any flow.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Children run one after another.
    Linear(Linear),
    /// Children run in any order (in parallel on a parallel engine).
    Unordered(Unordered),
    /// Children run in the order of explicit links and data dependencies.
    Graph(Graph),
}

impl Flow {
    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.parts().name
    }

    /// The flow's children.
    pub fn children(&self) -> &[Node] {
        &self.parts().children
    }

    /// The flow's retry controller, if any.
    pub fn retry(&self) -> Option<&RetryAtom> {
        self.parts().retry.as_ref()
    }

    /// What the flow needs from outside it: the symbols its atoms require
    /// that nothing running before them inside the flow provides (TaskFlow's
    /// `Flow.requires`). These are what the store must hold, unless
    /// injected into the atoms that take them; optional arguments are not
    /// required.
    ///
    /// ```
    /// use taskflow_patterns::{atom, task_fn, Flow, Linear, Unordered, Value};
    /// let noop = || task_fn(|_| Ok(Value::Null));
    /// let flow: Flow = Linear::new("f")
    ///     .add(atom("a", noop()).requires(["region"]).provides_seq(["b", "c"]))
    ///     .add(atom("d", noop()).requires(["b"]).provides("e"))
    ///     .add(Unordered::new("u")
    ///         .add(atom("p", noop()).provides("x"))
    ///         .add(atom("q", noop()).requires(["x"])))
    ///     .into();
    /// // `x` too: a sibling in an unordered flow feeds no other.
    /// assert_eq!(flow.requires().into_iter().collect::<Vec<_>>(), ["region", "x"]);
    /// assert_eq!(flow.provides().into_iter().collect::<Vec<_>>(), ["b", "c", "e", "x"]);
    /// ```
    pub fn requires(&self) -> BTreeSet<&str> {
        interface::of(self.pattern(), self.parts()).requires
    }

    /// Every name the flow's atoms and retry controllers provide, nested
    /// flows included (TaskFlow's `Flow.provides`).
    pub fn provides(&self) -> BTreeSet<&str> {
        interface::of(self.pattern(), self.parts()).provides
    }

    fn pattern(&self) -> interface::Pattern<'_> {
        match self {
            Flow::Linear(_) => interface::Pattern::Linear,
            Flow::Unordered(_) => interface::Pattern::Unordered,
            Flow::Graph(g) => interface::Pattern::Graph(g.links()),
        }
    }

    pub(crate) fn parts(&self) -> &FlowParts {
        match self {
            Flow::Linear(f) => &f.parts,
            Flow::Unordered(f) => &f.parts,
            Flow::Graph(f) => &f.parts,
        }
    }

    fn parts_mut(&mut self) -> &mut FlowParts {
        match self {
            Flow::Linear(f) => &mut f.parts,
            Flow::Unordered(f) => &mut f.parts,
            Flow::Graph(f) => &mut f.parts,
        }
    }
}

/// What every pattern has: a name, children and an optional retry controller.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FlowParts {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) children: Vec<Node>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry: Option<RetryAtom>,
}

impl FlowParts {
    fn new(name: String) -> Self {
        FlowParts {
            name,
            children: Vec::new(),
            retry: None,
        }
    }

    fn set_retry(&mut self, retry: RetryAtom) {
        let mut retry = retry;
        if retry.spec.name.is_empty() {
            retry.spec_mut().name = format!("{}_retry", self.name).into();
        }
        self.retry = Some(retry);
    }
}

/// The builder methods every pattern shares.
macro_rules! flow_builder {
    ($pattern:ident) => {
        impl $pattern {
            /// An empty flow named `name`.
            pub fn new(name: impl Into<String>) -> Self {
                let mut flow = $pattern::default();
                flow.parts = $crate::flow::FlowParts::new(name.into());
                flow
            }

            /// Adds a child: a task atom or a flow.
            #[allow(clippy::should_implement_trait)]
            pub fn add(mut self, node: impl Into<$crate::flow::Node>) -> Self {
                self.parts.children.push(node.into());
                self
            }

            /// Adds several children.
            pub fn add_all<I, N>(mut self, nodes: I) -> Self
            where
                I: IntoIterator<Item = N>,
                N: Into<$crate::flow::Node>,
            {
                self.parts
                    .children
                    .extend(nodes.into_iter().map(Into::into));
                self
            }

            /// Gives the flow a retry controller, consulted when anything in
            /// the flow fails. A bare controller is named `<flow>_retry`, as
            /// TaskFlow names it.
            pub fn with_retry(mut self, retry: impl Into<$crate::RetryAtom>) -> Self {
                self.parts.set_retry(retry.into());
                self
            }

            /// The flow's name.
            pub fn name(&self) -> &str {
                &self.parts.name
            }

            /// The flow's children.
            pub fn children(&self) -> &[$crate::flow::Node] {
                &self.parts.children
            }

            /// What the flow needs from outside it (TaskFlow's
            /// `Flow.requires`): see [`Flow::requires`](crate::Flow::requires).
            pub fn requires(&self) -> std::collections::BTreeSet<&str> {
                $crate::flow::interface::of(self.pattern(), &self.parts).requires
            }

            /// Every name the flow provides (TaskFlow's `Flow.provides`):
            /// see [`Flow::provides`](crate::Flow::provides).
            pub fn provides(&self) -> std::collections::BTreeSet<&str> {
                $crate::flow::interface::of(self.pattern(), &self.parts).provides
            }
        }

        impl From<$pattern> for $crate::flow::Flow {
            fn from(flow: $pattern) -> Self {
                $crate::flow::Flow::$pattern(flow)
            }
        }

        impl From<$pattern> for $crate::flow::Node {
            fn from(flow: $pattern) -> Self {
                $crate::flow::Node::Flow($crate::flow::Flow::$pattern(flow))
            }
        }
    };
}
pub(crate) use flow_builder;

/// Dropped without recursion: the default drop of a tree of flows recurses
/// once per level, so a tree deep enough (a few thousand levels, well past
/// [`MAX_FLOW_DEPTH`](crate::MAX_FLOW_DEPTH), which only compile refuses)
/// would overflow the stack where it is dropped. The subflows are moved
/// onto a heap stack and dropped childless, one by one.
impl Drop for FlowParts {
    fn drop(&mut self) {
        if !self.children.iter().any(|c| matches!(c, Node::Flow(_))) {
            return;
        }
        let mut stack = std::mem::take(&mut self.children);
        while let Some(node) = stack.pop() {
            if let Node::Flow(mut flow) = node {
                stack.append(&mut flow.parts_mut().children);
            }
        }
    }
}

impl Default for FlowParts {
    fn default() -> Self {
        FlowParts::new(String::new())
    }
}

impl From<TaskAtom> for Node {
    fn from(atom: TaskAtom) -> Self {
        Node::Task(atom)
    }
}

impl From<Flow> for Node {
    fn from(flow: Flow) -> Self {
        Node::Flow(flow)
    }
}

/// How far the IGNORE of a false decider reaches, as TaskFlow's `Depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Depth {
    /// The target and everything that runs after it (the default).
    #[default]
    All,
    /// The target and what runs after it in the target's own flow (not
    /// what follows that flow, nor atoms of flows nested in it).
    Flow,
    /// The target and its immediate successors.
    Neighbors,
    /// Only the target atom.
    Atom,
}

/// Decides whether a conditional link lets its target run. It sees the
/// results of the link's source: atom name to result, for every atom of the
/// source node (one atom, or all atoms of a subflow).
///
/// Any type implements it; one whose type is serializable can instead
/// implement [`StoredDecider`], so a flow holding it is stored whole in its
/// records (as with [`StoredTask`](crate::StoredTask)).
pub trait Decider: Send + Sync + 'static {
    /// `true` lets the target run; `false` makes it (and per [`Depth`] more) IGNORE.
    fn decide(&self, history: &BTreeMap<String, Value>) -> bool;

    /// This decider as a definition that can be stored, when its type is a
    /// [`StoredDecider`]; `None` otherwise, the default.
    fn stored(&self) -> Option<&dyn StoredDecider> {
        None
    }

    /// The decider's type, named in errors: for a [`StoredDecider`], the
    /// name its records give it (typetag's); otherwise the Rust type's name.
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// A decider whose definition is stored in its flow's records. Implement
/// it, instead of [`Decider`], on a serializable type with
/// `#[typetag::serde]`; the type is then a `Decider` too.
///
/// ```
/// use std::collections::BTreeMap;
/// use serde::{Deserialize, Serialize};
/// use taskflow_patterns::{StoredDecider, Value};
///
/// /// Lets the target run when some result is above `limit`.
/// #[derive(Serialize, Deserialize)]
/// struct Above { limit: i64 }
///
/// #[typetag::serde]
/// impl StoredDecider for Above {
///     fn decide(&self, history: &BTreeMap<String, Value>) -> bool {
///         history.values().any(|v| v.as_i64() > Some(self.limit))
///     }
/// }
/// ```
#[typetag::serde]
pub trait StoredDecider: Send + Sync + 'static {
    /// As [`Decider::decide`].
    fn decide(&self, history: &BTreeMap<String, Value>) -> bool;
}

impl<T: StoredDecider> Decider for T {
    fn decide(&self, history: &BTreeMap<String, Value>) -> bool {
        StoredDecider::decide(self, history)
    }

    fn stored(&self) -> Option<&dyn StoredDecider> {
        Some(self)
    }

    fn type_name(&self) -> &'static str {
        StoredDecider::typetag_name(self)
    }
}

type DecideFn = dyn Fn(&BTreeMap<String, Value>) -> bool + Send + Sync;

/// A decider made of a closure (see [`decider_fn`]); not a [`StoredDecider`].
#[derive(Clone)]
pub struct FnDecider(Arc<DecideFn>);

/// Makes a decider of a closure.
///
/// ```
/// use taskflow_patterns::decider_fn;
/// let only_big = decider_fn(|h| h.values().any(|v| v.as_i64() > Some(100)));
/// # let _ = only_big;
/// ```
pub fn decider_fn<F>(decide: F) -> FnDecider
where
    F: Fn(&BTreeMap<String, Value>) -> bool + Send + Sync + 'static,
{
    FnDecider(Arc::new(decide))
}

impl fmt::Debug for FnDecider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnDecider")
    }
}

impl Decider for FnDecider {
    fn decide(&self, history: &BTreeMap<String, Value>) -> bool {
        (self.0)(history)
    }
}
