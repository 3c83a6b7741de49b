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

/// A retry controller: decides what happens to its scope after a failure.
///
/// Any type implements it. One whose type is serializable can instead
/// implement [`StoredRetry`] (with `#[typetag::serde]`, as the built-in
/// controllers do), so a flow holding it is stored whole in its records,
/// as with [`StoredTask`](crate::StoredTask).
///
/// ```
/// use taskflow_patterns::{Context, Decision, History, Retry, TaskError, Value};
///
/// /// Retries while fewer than `limit` attempts failed with a timeout.
/// struct OnTimeout { limit: usize }
///
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

    /// This controller as a definition that can be stored, when its type is
    /// a [`StoredRetry`]; `None` otherwise, the default.
    fn stored(&self) -> Option<&dyn StoredRetry> {
        None
    }

    /// The controller's type, named in errors: for a [`StoredRetry`], the
    /// name its records give it (typetag's); otherwise the Rust type's name.
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// A retry controller whose definition is stored in its flow's records.
/// Implement it, instead of [`Retry`], on a serializable type with
/// `#[typetag::serde]`; the type is then a `Retry` too.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use taskflow_patterns::{Context, Decision, History, StoredRetry, TaskError, Value};
///
/// /// Retries up to `limit` times.
/// #[derive(Serialize, Deserialize)]
/// struct UpTo { limit: usize }
///
/// #[typetag::serde]
/// impl StoredRetry for UpTo {
///     fn execute(&self, history: &History, _: &mut Context) -> Result<Value, TaskError> {
///         Ok(history.len().into())
///     }
///     fn on_failure(&self, history: &History, _: &Context) -> Decision {
///         if history.len() < self.limit { Decision::Retry } else { Decision::Revert }
///     }
/// }
/// ```
#[typetag::serde]
pub trait StoredRetry: Send + Sync + 'static {
    /// As [`Retry::execute`].
    fn execute(&self, history: &History, ctx: &mut Context<'_>) -> Result<Value, TaskError>;

    /// As [`Retry::on_failure`].
    fn on_failure(&self, history: &History, ctx: &Context<'_>) -> Decision;

    /// As [`Retry::revert`]; the default does nothing.
    fn revert(&self, history: &History, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let _ = (history, ctx);
        Ok(())
    }

    /// As [`Retry::requires`].
    fn requires(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<T: StoredRetry> Retry for T {
    fn execute(&self, history: &History, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        StoredRetry::execute(self, history, ctx)
    }

    fn on_failure(&self, history: &History, ctx: &Context<'_>) -> Decision {
        StoredRetry::on_failure(self, history, ctx)
    }

    fn revert(&self, history: &History, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        StoredRetry::revert(self, history, ctx)
    }

    fn requires(&self) -> Vec<String> {
        StoredRetry::requires(self)
    }

    fn stored(&self) -> Option<&dyn StoredRetry> {
        Some(self)
    }

    fn type_name(&self) -> &'static str {
        StoredRetry::typetag_name(self)
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

/// The values of `values` left to try after the attempts of `history`, in
/// order: each result in the history takes away one occurrence of itself
/// (the first left), and a result that is not among `values` (the values
/// changed since that attempt) takes away nothing. So `[3, 2, 3, 5]` is
/// tried as 3, 2, 3, 5, repeats included, as TaskFlow's `ForEachBase`
/// (`misc.sequence_minus(values, history)`) does.
fn remaining<'v>(values: &'v [Value], history: &History) -> Vec<&'v Value> {
    let mut left: Vec<&Value> = values.iter().collect();
    for tried in history.results() {
        if let Some(i) = left.iter().position(|v| *v == tried) {
            left.remove(i);
        }
    }
    left
}

/// The next value of `values` to try after the attempts of `history`, for
/// the for-each controllers (see [`remaining`]).
fn next_value(values: &[Value], history: &History) -> Result<Value, TaskError> {
    remaining(values, history)
        .first()
        .map(|v| (*v).clone())
        .ok_or_else(|| {
            TaskError::new(
                crate::kinds::NO_VALUES_LEFT,
                "no values left to try: each was tried as often as it is listed",
            )
        })
}

/// Whether a value of `values` is left to try after `history`.
fn has_untried(values: &[Value], history: &History) -> bool {
    !remaining(values, history).is_empty()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn history(results: &[Value]) -> History {
        let mut history = History::new();
        for r in results {
            history.push(r.clone());
        }
        history
    }

    /// The values tried, one attempt after another, until none is left.
    fn tried_in_order(values: &[Value]) -> Vec<Value> {
        let mut h = History::new();
        while has_untried(values, &h) {
            let next = next_value(values, &h).unwrap();
            h.push(next);
        }
        assert!(next_value(values, &h).is_err());
        h.results().cloned().collect()
    }

    #[test]
    fn repeated_values_are_tried_again_in_order() {
        let values = [json!(3), json!(2), json!(3), json!(5)];
        assert_eq!(tried_in_order(&values), values);
        let values = [json!("a"), json!("a"), json!("a")];
        assert_eq!(tried_in_order(&values), values);
    }

    #[test]
    fn each_attempt_takes_away_one_occurrence() {
        let values = [json!(3), json!(2), json!(3), json!(5)];
        assert_eq!(next_value(&values, &history(&[])).unwrap(), json!(3));
        assert_eq!(
            next_value(&values, &history(&[json!(3)])).unwrap(),
            json!(2)
        );
        assert_eq!(
            next_value(&values, &history(&[json!(3), json!(2)])).unwrap(),
            json!(3)
        );
        assert_eq!(
            next_value(&values, &history(&[json!(3), json!(2), json!(3)])).unwrap(),
            json!(5)
        );
        // Two 3s tried: both occurrences are used up, whatever the order.
        assert_eq!(
            next_value(&values, &history(&[json!(3), json!(3)])).unwrap(),
            json!(2)
        );
    }

    #[test]
    fn results_not_among_the_values_take_nothing() {
        // The values changed since the earlier attempts (a resumed flow, a
        // `ParameterizedForEach` fed by another atom), or an attempt holds
        // no result (`null`): those attempts do not use up a value.
        let values = [json!(1), json!(2)];
        let h = history(&[json!(9), Value::Null, json!(1)]);
        assert_eq!(next_value(&values, &h).unwrap(), json!(2));
        assert!(has_untried(&values, &h));
        let h = history(&[json!(9), json!(1), json!(2)]);
        assert!(!has_untried(&values, &h));
    }

    #[test]
    fn no_values_is_an_error_at_once() {
        let err = next_value(&[], &History::new()).unwrap_err();
        assert_eq!(err.kind(), "NoValuesLeft");
        assert!(!has_untried(&[], &History::new()));
    }
}
