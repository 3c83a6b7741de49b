use serde::{Deserialize, Serialize};

use super::{has_untried, next_value, Decision, History, OnExhausted, Retry};
use crate::{Context, TaskError, Value};

/// Runs its scope once per value until one attempt succeeds; provides the
/// value of the current attempt.
///
/// ```
/// use serde_json::json;
/// use taskflow_patterns::{retry, ForEach, Linear};
/// let flow = Linear::new("connect")
///     .with_retry(retry("mirror", ForEach::new([json!("eu"), json!("us")])).provides("region"));
/// # let _ = flow;
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForEach {
    /// The values to try, in order.
    pub values: Vec<Value>,
    /// What to decide once every value failed.
    #[serde(default)]
    pub on_exhausted: OnExhausted,
}

impl ForEach {
    /// Tries each of `values` in turn.
    pub fn new<I: IntoIterator<Item = Value>>(values: I) -> Self {
        ForEach {
            values: values.into_iter().collect(),
            on_exhausted: OnExhausted::Revert,
        }
    }

    /// Decide [`Decision::RevertAll`] once every value failed.
    pub fn revert_all(mut self) -> Self {
        self.on_exhausted = OnExhausted::RevertAll;
        self
    }
}

#[typetag::serde(name = "taskflow::ForEach")]
impl Retry for ForEach {
    fn execute(&self, history: &History, _: &mut Context<'_>) -> Result<Value, TaskError> {
        next_value(&self.values, history)
    }

    fn on_failure(&self, history: &History, _: &Context<'_>) -> Decision {
        if has_untried(&self.values, history) {
            Decision::Retry
        } else {
            self.on_exhausted.into()
        }
    }
}
