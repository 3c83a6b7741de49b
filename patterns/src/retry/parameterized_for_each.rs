use serde::{Deserialize, Serialize};

use super::{has_untried, next_value, Decision, History, OnExhausted, StoredRetry};
use crate::{Context, TaskError, Value};

/// Like [`ForEach`](super::ForEach), with the values taken at run time from
/// the argument `values` (an array), so they can come from the store or
/// from another atom. Values are tried in order, repeats included; each
/// attempt in the history uses up one occurrence of its value, and an
/// attempt whose value is no longer among `values` uses up none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterizedForEach {
    /// What to decide once every value failed.
    #[serde(default)]
    pub on_exhausted: OnExhausted,
}

impl ParameterizedForEach {
    /// Tries each value of the argument `values` in turn.
    pub fn new() -> Self {
        ParameterizedForEach::default()
    }

    /// Decide [`Decision::RevertAll`] once every value failed.
    pub fn revert_all(mut self) -> Self {
        self.on_exhausted = OnExhausted::RevertAll;
        self
    }
}

/// The argument the values come from.
const VALUES: &str = "values";

#[typetag::serde(name = "taskflow::ParameterizedForEach")]
impl StoredRetry for ParameterizedForEach {
    fn execute(&self, history: &History, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        let values: Vec<Value> = ctx.input(VALUES)?;
        next_value(&values, history)
    }

    fn on_failure(&self, history: &History, ctx: &Context<'_>) -> Decision {
        match ctx.input::<Vec<Value>>(VALUES) {
            Ok(values) if has_untried(&values, history) => Decision::Retry,
            _ => self.on_exhausted.into(),
        }
    }

    fn requires(&self) -> Vec<String> {
        vec![VALUES.to_owned()]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::{Failure, Inputs};

    fn inputs(values: Value) -> Inputs {
        let mut inputs = Inputs::new();
        inputs.insert(Arc::from(VALUES), Arc::new(values));
        inputs
    }

    #[test]
    fn tries_repeated_values_again() {
        for (retry, last) in [
            (ParameterizedForEach::new(), Decision::Revert),
            (
                ParameterizedForEach::new().revert_all(),
                Decision::RevertAll,
            ),
        ] {
            let inputs = inputs(json!([3, 2, 3, 5]));
            let mut history = History::new();
            let decision = loop {
                let value = retry
                    .execute(&history, &mut Context::new("r", &inputs))
                    .unwrap();
                history.push(value);
                history.record_failure("t", Failure::new("Boom", "failed"));
                match retry.on_failure(&history, &Context::new("r", &inputs)) {
                    Decision::Retry => continue,
                    decision => break decision,
                }
            };
            let tried: Vec<Value> = history.results().cloned().collect();
            assert_eq!(tried, [json!(3), json!(2), json!(3), json!(5)]);
            assert_eq!(decision, last);
        }
    }

    #[test]
    fn values_that_changed_since_an_attempt() {
        // Attempts with 7 and 3; the values are now [3, 3, 4]: 7 uses up
        // nothing, 3 one of the two 3s, so the next is the other 3.
        let inputs = inputs(json!([3, 3, 4]));
        let mut history = History::new();
        history.push(json!(7));
        history.push(json!(3));
        let retry = ParameterizedForEach::new();
        let next = retry
            .execute(&history, &mut Context::new("r", &inputs))
            .unwrap();
        assert_eq!(next, json!(3));
        assert_eq!(
            retry.on_failure(&history, &Context::new("r", &inputs)),
            Decision::Retry
        );
    }

    #[test]
    fn values_that_are_not_an_array() {
        let inputs = inputs(json!("3, 2"));
        let retry = ParameterizedForEach::new().revert_all();
        let err = retry
            .execute(&History::new(), &mut Context::new("r", &inputs))
            .unwrap_err();
        assert_eq!(err.kind(), TaskError::INVALID_INPUT);
        assert_eq!(
            retry.on_failure(&History::new(), &Context::new("r", &inputs)),
            Decision::RevertAll
        );
    }
}
