use serde::{Deserialize, Serialize};

use super::{Decision, History, StoredRetry};
use crate::{Context, TaskError, Value};

/// Never retries: a failure in its scope is passed to the next controller out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlwaysRevert;

#[typetag::serde(name = "taskflow::AlwaysRevert")]
impl StoredRetry for AlwaysRevert {
    fn execute(&self, _: &History, _: &mut Context<'_>) -> Result<Value, TaskError> {
        Ok(Value::Null)
    }

    fn on_failure(&self, _: &History, _: &Context<'_>) -> Decision {
        Decision::Revert
    }
}

/// Never retries: a failure in its scope reverts the whole flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlwaysRevertAll;

#[typetag::serde(name = "taskflow::AlwaysRevertAll")]
impl StoredRetry for AlwaysRevertAll {
    fn execute(&self, _: &History, _: &mut Context<'_>) -> Result<Value, TaskError> {
        Ok(Value::Null)
    }

    fn on_failure(&self, _: &History, _: &Context<'_>) -> Decision {
        Decision::RevertAll
    }
}
