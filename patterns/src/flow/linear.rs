use serde::{Deserialize, Serialize};

use super::interface::Pattern;
use super::{flow_builder, FlowParts};

/// A flow whose children run one after another, each after the whole of the
/// one before it.
///
/// ```
/// use taskflow_patterns::{atom, task_fn, Linear, Value};
/// let flow = Linear::new("boot")
///     .add(atom("power_on", task_fn(|_| Ok(Value::Null))))
///     .add(atom("ping", task_fn(|_| Ok(Value::Null))));
/// assert_eq!(flow.children().len(), 2);
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Linear {
    #[serde(flatten)]
    pub(crate) parts: FlowParts,
}

flow_builder!(Linear);

impl Linear {
    fn pattern(&self) -> Pattern<'_> {
        Pattern::Linear
    }
}
