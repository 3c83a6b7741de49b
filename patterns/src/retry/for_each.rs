use serde::{Deserialize, Serialize};

use super::{has_untried, next_value, Decision, History, OnExhausted, StoredRetry};
use crate::{Context, TaskError, Value};

/// Runs its scope once per value until one attempt succeeds; provides the
/// value of the current attempt.
///
/// Values are tried in order, repeats included: `[3, 2, 3, 5]` tries 3, 2,
/// 3 and 5, as TaskFlow's `ForEach`. Each attempt in the history uses up one
/// occurrence of its value, so after a resume the next value is the first
/// one not used up.
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
    /// The values to try, in order (a value listed twice is tried twice).
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
impl StoredRetry for ForEach {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Inputs;

    /// Runs `retry` as an engine would while every attempt fails: the
    /// values it provides, and its decision once it gives up.
    fn attempts(retry: &ForEach) -> (Vec<Value>, Decision) {
        let inputs = Inputs::new();
        let mut history = History::new();
        loop {
            let value = retry
                .execute(&history, &mut Context::new("r", &inputs))
                .unwrap();
            history.push(value);
            history.record_failure("t", crate::Failure::new("Boom", "failed"));
            match retry.on_failure(&history, &Context::new("r", &inputs)) {
                Decision::Retry => continue,
                decision => return (history.results().cloned().collect(), decision),
            }
        }
    }

    #[test]
    fn tries_repeated_values_again() {
        let values = [json!(3), json!(2), json!(3), json!(5)];
        let (tried, decision) = attempts(&ForEach::new(values.clone()));
        assert_eq!(tried, values);
        assert_eq!(decision, Decision::Revert);
        let (tried, decision) = attempts(&ForEach::new(values.clone()).revert_all());
        assert_eq!(tried, values);
        assert_eq!(decision, Decision::RevertAll);
    }

    #[test]
    fn no_values_fails_its_execute() {
        let inputs = Inputs::new();
        let err = ForEach::new([])
            .execute(&History::new(), &mut Context::new("r", &inputs))
            .unwrap_err();
        assert_eq!(err.kind(), "NoValuesLeft");
    }
}
