//! What went wrong: [`Failure`], the serializable record of an error, and
//! [`TaskError`], what task code returns.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One link of a failure's cause chain (the `source()` of an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// What kind of error it was (usually a Rust type name).
    pub kind: String,
    /// Its message.
    pub message: String,
}

/// The record of an error raised by an atom (or by the engine on its behalf):
/// its kind, message and cause chain, and the atom it belongs to.
///
/// Failures are checkpointed with atom details, so they survive a crash and
/// are seen again by `revert` after a resume.
///
/// ```
/// use taskflow_patterns::Failure;
/// let f = Failure::new("Timeout", "no answer in 5 s").with_atom("fetch");
/// assert_eq!(f.to_string(), "atom `fetch` failed: Timeout: no answer in 5 s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of error it was: a Rust type name, `panic`, or a kind given
    /// by the task through [`TaskError::new`].
    pub kind: String,
    /// The error's message.
    pub message: String,
    /// The chain of causes, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    /// The atom that failed, when the failure belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atom: Option<String>,
}

impl Failure {
    /// A failure of the given kind with a message, no causes, no atom.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            kind: kind.into(),
            message: message.into(),
            causes: Vec::new(),
            atom: None,
        }
    }

    /// The same failure attributed to `atom`.
    pub fn with_atom(mut self, atom: impl Into<String>) -> Self {
        self.atom = Some(atom.into());
        self
    }

    /// A failure from a caught panic payload.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_owned()
        };
        Failure::new(Failure::PANIC, message)
    }

    /// Whether the task said it was interrupted ([`TaskError::interrupted`]):
    /// not a failure of the flow, but work to run again.
    pub fn is_interrupted(&self) -> bool {
        self.kind == TaskError::INTERRUPTED
    }

    /// The kind given to failures made from a panic.
    pub const PANIC: &'static str = crate::kinds::PANIC;
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(atom) = &self.atom {
            write!(f, "atom `{atom}` failed: ")?;
        }
        write!(f, "{}: {}", self.kind, self.message)?;
        for cause in &self.causes {
            write!(f, "; caused by {}: {}", cause.kind, cause.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// The error a task (or retry controller) returns from `execute` or `revert`.
///
/// Any `std::error::Error` converts into it with `?`, keeping its type name
/// as the kind and its `source()` chain as causes; [`TaskError::new`] gives a
/// kind of your own. The engine turns it into a [`Failure`] naming the atom.
///
/// ```
/// use taskflow_patterns::TaskError;
/// fn parse(s: &str) -> Result<u32, TaskError> {
///     Ok(s.parse::<u32>()?)
/// }
/// let err = parse("x").unwrap_err();
/// assert!(err.kind().contains("ParseIntError"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    kind: Cow<'static, str>,
    message: String,
    causes: Vec<Cause>,
}

impl TaskError {
    /// An error of a kind you name, e.g. `TaskError::new("QuotaExceeded", "...")`.
    pub fn new(kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        TaskError {
            kind: kind.into(),
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// An error with only a message (kind `TaskError`).
    pub fn msg(message: impl Into<String>) -> Self {
        TaskError::new("TaskError", message)
    }

    /// A missing input: names the atom and the symbol.
    pub fn missing_input(atom: &str, name: &str) -> Self {
        TaskError::new(
            Self::MISSING_INPUT,
            format!("atom `{atom}` has no input `{name}`"),
        )
    }

    /// "Interrupted, run me again": what a task returns when it stops early
    /// because the run was asked to stop ([`Context::is_cancelled`]). The
    /// engine does not fail the atom: it goes back to `PENDING` (a revert
    /// stays `REVERTING`), the flow suspends, and the atom runs again when
    /// the flow is resumed, in this process or another.
    ///
    /// ```
    /// use taskflow_patterns::{Context, TaskError, Value};
    /// fn copy_chunks(ctx: &mut Context) -> Result<Value, TaskError> {
    ///     for chunk in 0..1_000 {
    ///         if ctx.is_cancelled() {
    ///             return Err(TaskError::interrupted(format!("stopped before chunk {chunk}")));
    ///         }
    ///         // ... copy one chunk ...
    ///     }
    ///     Ok(Value::Null)
    /// }
    /// ```
    ///
    /// [`Context::is_cancelled`]: crate::Context::is_cancelled
    pub fn interrupted(message: impl Into<String>) -> Self {
        TaskError::new(Self::INTERRUPTED, message)
    }

    /// Whether this is an [`interrupted`](Self::interrupted) error.
    pub fn is_interrupted(&self) -> bool {
        self.kind == Self::INTERRUPTED
    }

    /// The kind of [`interrupted`](Self::interrupted) errors.
    pub const INTERRUPTED: &'static str = crate::kinds::INTERRUPTED;
    /// The kind of errors for a missing input.
    pub const MISSING_INPUT: &'static str = crate::kinds::MISSING_INPUT;
    /// The kind of errors for an input of the wrong shape.
    pub const INVALID_INPUT: &'static str = crate::kinds::INVALID_INPUT;

    /// Adds a cause at the end of the chain.
    pub fn caused_by(mut self, kind: impl Into<String>, message: impl Into<String>) -> Self {
        self.causes.push(Cause {
            kind: kind.into(),
            message: message.into(),
        });
        self
    }

    /// Rebuilds the error from a recorded failure (e.g. to re-raise it).
    pub fn from_failure(failure: Failure) -> Self {
        TaskError {
            kind: Cow::Owned(failure.kind),
            message: failure.message,
            causes: failure.causes,
        }
    }

    /// The kind of the error.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The message of the error.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cause chain, outermost first.
    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }

    /// The failure record of this error, attributed to `atom`.
    pub fn into_failure(self, atom: &str) -> Failure {
        Failure {
            kind: self.kind.into_owned(),
            message: self.message,
            causes: self.causes,
            atom: Some(atom.to_owned()),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl<E> From<E> for TaskError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        let mut causes = Vec::new();
        let mut source = err.source();
        while let Some(cause) = source {
            causes.push(Cause {
                kind: "source".to_owned(),
                message: cause.to_string(),
            });
            source = cause.source();
        }
        TaskError {
            kind: Cow::Borrowed(std::any::type_name::<E>()),
            message: err.to_string(),
            causes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn cause_chain_is_kept() {
        let err: TaskError = Outer(std::io::Error::other("disk gone")).into();
        let failure = err.into_failure("write");
        assert!(failure.kind.ends_with("Outer"));
        assert_eq!(failure.causes.len(), 1);
        assert_eq!(failure.causes[0].message, "disk gone");
        let json = serde_json::to_string(&failure).unwrap();
        let back: Failure = serde_json::from_str(&json).unwrap();
        assert_eq!(back, failure);
        assert!(failure.to_string().contains("caused by source: disk gone"));
    }

    #[test]
    fn panic_payloads_become_messages() {
        let f = Failure::from_panic(&"boom");
        assert_eq!((f.kind.as_str(), f.message.as_str()), ("panic", "boom"));
        let f = Failure::from_panic(&String::from("bang"));
        assert_eq!(f.message, "bang");
    }
}
