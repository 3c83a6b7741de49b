use serde::{Deserialize, Serialize};

use super::{Decision, History, OnExhausted, StoredRetry};
use crate::{Context, TaskError, Value};

/// Runs its scope up to `attempts` times in all. Provides the attempt number
/// (1, 2, ...).
///
/// ```
/// use taskflow_patterns::{Linear, Times};
/// let flow = Linear::new("upload").with_retry(Times::new(3));
/// # let _ = flow;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    /// Attempts in all, the first included.
    pub attempts: usize,
    /// What to decide once they are used up.
    #[serde(default)]
    pub on_exhausted: OnExhausted,
}

impl Times {
    /// Up to `attempts` attempts, then [`Decision::Revert`].
    pub fn new(attempts: usize) -> Self {
        Times {
            attempts,
            on_exhausted: OnExhausted::Revert,
        }
    }

    /// Decide [`Decision::RevertAll`] once the attempts are used up.
    pub fn revert_all(mut self) -> Self {
        self.on_exhausted = OnExhausted::RevertAll;
        self
    }
}

#[typetag::serde(name = "taskflow::Times")]
impl StoredRetry for Times {
    fn execute(&self, history: &History, _: &mut Context<'_>) -> Result<Value, TaskError> {
        Ok(Value::from(history.len() + 1))
    }

    fn on_failure(&self, history: &History, _: &Context<'_>) -> Decision {
        if history.len() < self.attempts {
            Decision::Retry
        } else {
            self.on_exhausted.into()
        }
    }
}
