use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::interface::Pattern;
use super::{flow_builder, Decider, Depth, FlowParts};

/// A flow whose children run in the order given by explicit links and by
/// data: a child that requires what another provides runs after it.
/// Links may carry a [`Decider`] that lets the target run or not.
///
/// ```
/// use taskflow_patterns::{atom, decider_fn, task_fn, Depth, Graph, Value};
/// let flow = Graph::new("deploy")
///     .add(atom("build", task_fn(|_| Ok(Value::from(true)))).provides("ok"))
///     .add(atom("ship", task_fn(|_| Ok(Value::Null))))
///     .add(atom("notify", task_fn(|_| Ok(Value::Null))))
///     .link_if("build", "ship", decider_fn(|h| h["build"] == true), Depth::All)
///     .link("ship", "notify");
/// # let _ = flow;
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Graph {
    #[serde(flatten)]
    pub(crate) parts: FlowParts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) links: Vec<Link>,
}

flow_builder!(Graph);

impl Graph {
    /// Makes the child named `to` run after the child named `from`.
    pub fn link(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.links.push(Link {
            from: from.into(),
            to: to.into(),
            decider: None,
            depth: Depth::All,
        });
        self
    }

    /// Like [`link`](Graph::link), and `to` runs only if `decider` says so
    /// given the results of `from`; otherwise it is IGNOREd, with `depth`
    /// saying how much of what follows is ignored too.
    pub fn link_if(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        decider: impl Decider,
        depth: Depth,
    ) -> Self {
        self.links.push(Link {
            from: from.into(),
            to: to.into(),
            decider: Some(Arc::new(decider)),
            depth,
        });
        self
    }

    /// The explicit links.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    fn pattern(&self) -> Pattern<'_> {
        Pattern::Graph(&self.links)
    }
}

/// An explicit link between two children of a [`Graph`]. It serializes
/// when its decider, if any, is a [`StoredDecider`](crate::StoredDecider).
#[derive(Clone)]
pub struct Link {
    /// Name of the child that runs first.
    pub from: String,
    /// Name of the child that runs after.
    pub to: String,
    /// The decider, for a conditional link.
    pub decider: Option<Arc<dyn Decider>>,
    /// How far a false decision reaches.
    pub depth: Depth,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("conditional", &self.decider.is_some())
            .field("depth", &self.depth)
            .finish()
    }
}
