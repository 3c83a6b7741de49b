use serde::{Deserialize, Serialize};

use super::{has_untried, next_value, Decision, History, OnExhausted, Retry};
use crate::{Context, TaskError, Value};

/// Like [`ForEach`](super::ForEach), with the values taken at run time from
/// the argument `values` (an array), so they can come from the store or
/// from another atom.
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
impl Retry for ParameterizedForEach {
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
