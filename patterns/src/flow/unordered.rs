use serde::{Deserialize, Serialize};

use super::interface::Pattern;
use super::{flow_builder, FlowParts};

/// A flow whose children have no order among them: they run in parallel on
/// a parallel engine. No child is fed by a sibling's result: what a child
/// requires comes from outside the flow (the store, or atoms that run
/// before the flow), even when a sibling provides it too, as in TaskFlow.
///
/// ```
/// use taskflow_patterns::{atom, task_fn, Unordered, Value};
/// let flow = Unordered::new("attach")
///     .add(atom("disk_a", task_fn(|_| Ok(Value::Null))))
///     .add(atom("disk_b", task_fn(|_| Ok(Value::Null))));
/// assert_eq!(flow.name(), "attach");
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Unordered {
    #[serde(flatten)]
    pub(crate) parts: FlowParts,
}

flow_builder!(Unordered);

impl Unordered {
    fn pattern(&self) -> Pattern<'_> {
        Pattern::Unordered
    }
}
