//! Retry controllers: atoms that decide what happens when their scope fails.
//!
//! A controller only decides ([`Decision`]); the engine's completer carries
//! the decision out (reverting and resetting atoms). The innermost
//! controller of a failed atom is consulted first; [`Decision::Revert`]
//! passes the failure to the next controller out, and with none left the
//! whole flow reverts.

mod always_revert;
mod for_each;
mod parameterized_for_each;
mod times;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Context, Failure, TaskError, Value};

pub use always_revert::{AlwaysRevert, AlwaysRevertAll};
pub use for_each::ForEach;
pub use parameterized_for_each::ParameterizedForEach;
pub use times::Times;

/// What a retry controller decides when an atom in its scope fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    /// Revert the scope and run it again (the controller executes again first).
    Retry,
    /// Give up on this scope: the next controller out decides; with none, the
    /// whole flow reverts.
    Revert,
    /// Revert the whole flow, whatever the outer controllers would say.
    RevertAll,
}

/// One attempt of a retry scope: the controller's result for it and the
/// failures of atoms in the scope during it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// What the controller's `execute` returned for this attempt.
    pub result: Value,
    /// Atom name to failure, for the atoms that failed in this attempt.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, Failure>,
}

/// The attempts a retry controller has made so far, oldest first. Kept in the
/// controller's atom detail, so it carries on after a resume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    attempts: Vec<Attempt>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// How many attempts were made.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    /// Whether no attempt was made.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    /// The attempts, oldest first.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The latest attempt.
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// Starts a new attempt with the controller's result.
    pub fn push(&mut self, result: Value) {
        self.attempts.push(Attempt {
            result,
            failures: BTreeMap::new(),
        });
    }

    /// Records a failure in the latest attempt (starting one if there is none).
    pub fn record_failure(&mut self, atom: &str, failure: Failure) {
        if self.attempts.is_empty() {
            self.push(Value::Null);
        }
        if let Some(last) = self.attempts.last_mut() {
            last.failures.insert(atom.to_owned(), failure);
        }
    }

    /// Every result the controller returned, oldest first.
    pub fn results(&self) -> impl Iterator<Item = &Value> {
        self.attempts.iter().map(|a| &a.result)
    }
}

/// A retry controller. Implement it with `#[typetag::serde]`, like [`Task`](crate::Task).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use taskflow_patterns::{Context, Decision, History, Retry, TaskError, Value};
///
/// /// Retries while fewer than `limit` attempts failed with a timeout.
/// #[derive(Serialize, Deserialize)]
/// struct OnTimeout { limit: usize }
///
/// #[typetag::serde]
/// impl Retry for OnTimeout {
///     fn execute(&self, history: &History, _: &mut Context) -> Result<Value, TaskError> {
///         Ok(history.len().into())
///     }
///     fn on_failure(&self, history: &History, _: &Context) -> Decision {
///         let timeouts = history.attempts().iter()
///             .filter(|a| a.failures.values().any(|f| f.kind == "Timeout"))
///             .count();
///         if timeouts < self.limit { Decision::Retry } else { Decision::Revert }
///     }
/// }
/// ```
#[typetag::serde]
pub trait Retry: Send + Sync + 'static {
    /// Runs before each attempt of the scope; the result is provided to the
    /// scope under the atom's `provides` and kept in the history.
    fn execute(&self, history: &History, ctx: &mut Context<'_>) -> Result<Value, TaskError>;

    /// Decides what to do after an atom of the scope failed. The failure is
    /// already in the latest attempt of `history`.
    fn on_failure(&self, history: &History, ctx: &Context<'_>) -> Decision;

    /// Undoes whatever `execute` did. The default does nothing.
    fn revert(&self, history: &History, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let _ = (history, ctx);
        Ok(())
    }

    /// Arguments the controller always requires (added to its atom's spec).
    fn requires(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What the built-in controllers do when they have no attempts left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    /// [`Decision::Revert`]: let the next controller out decide.
    #[default]
    Revert,
    /// [`Decision::RevertAll`]: revert the whole flow.
    RevertAll,
}

impl From<OnExhausted> for Decision {
    fn from(value: OnExhausted) -> Self {
        match value {
            OnExhausted::Revert => Decision::Revert,
            OnExhausted::RevertAll => Decision::RevertAll,
        }
    }
}

/// The next value of `values` not yet tried, for the for-each controllers.
fn next_value(values: &[Value], history: &History) -> Result<Value, TaskError> {
    values
        .iter()
        .find(|v| !history.results().any(|r| r == *v))
        .cloned()
        .ok_or_else(|| TaskError::new("NoValuesLeft", "every value was already tried"))
}

/// Whether any value of `values` is not tried yet.
fn has_untried(values: &[Value], history: &History) -> bool {
    values.iter().any(|v| !history.results().any(|r| r == v))
}
