//! The states of atoms and flows, and the transitions allowed between them.
//!
//! Atom transitions (tasks; retries allow the last two lines too):
//!
//! | from          | to                        | why                                   |
//! |---------------|---------------------------|---------------------------------------|
//! | PENDING       | RUNNING, IGNORE           | run it; a decider said skip it        |
//! | RUNNING       | SUCCESS, FAILURE          | it finished                           |
//! | RUNNING       | PENDING                   | found running after a crash: run again|
//! | SUCCESS       | REVERTING                 | something else failed                 |
//! | FAILURE       | REVERTING                 | it failed itself                      |
//! | REVERTING     | REVERTED, REVERT_FAILURE  | revert finished                       |
//! | REVERTED      | PENDING                   | a retry runs it again                 |
//! | IGNORE        | PENDING                   | a retry runs its scope again          |
//! | SUCCESS       | RETRYING                  | (retry) its scope is retried          |
//! | RETRYING      | RUNNING, REVERTING        | (retry) runs again, or reverts        |
//!
//! Flow transitions:
//!
//! | from        | to                                          |
//! |-------------|---------------------------------------------|
//! | PENDING     | RUNNING                                     |
//! | RUNNING     | SUCCESS, FAILURE, REVERTED, SUSPENDING, RESUMING (after a crash) |
//! | SUSPENDING  | SUSPENDED, SUCCESS, FAILURE, REVERTED       |
//! | SUSPENDED   | RESUMING                                    |
//! | RESUMING    | RUNNING                                     |
//! | FAILURE     | RESUMING                                    |
//! | REVERTED    | PENDING (reset to run again)                |

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether an atom is a task or a retry controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AtomKind {
    /// A task: does work and can undo it.
    Task,
    /// A retry controller: decides what happens when its scope fails.
    Retry,
}

/// The state of one atom. See the module docs for the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AtomState {
    /// Not run yet.
    Pending,
    /// Executing.
    Running,
    /// Executed successfully; its result is recorded.
    Success,
    /// Execution failed; its failure is recorded.
    Failure,
    /// Being reverted.
    Reverting,
    /// Reverted successfully.
    Reverted,
    /// Reverting failed (terminal until someone intervenes).
    RevertFailure,
    /// A retry controller whose scope is being retried.
    Retrying,
    /// Skipped by a decider.
    Ignore,
}

impl AtomState {
    /// Every atom state.
    pub const ALL: [AtomState; 9] = [
        AtomState::Pending,
        AtomState::Running,
        AtomState::Success,
        AtomState::Failure,
        AtomState::Reverting,
        AtomState::Reverted,
        AtomState::RevertFailure,
        AtomState::Retrying,
        AtomState::Ignore,
    ];

    /// Whether an atom of `kind` may move from `self` to `to`.
    pub fn can_transition(self, kind: AtomKind, to: AtomState) -> bool {
        use AtomState::*;
        let task = matches!(
            (self, to),
            (Pending, Running)
                | (Pending, Ignore)
                | (Running, Success)
                | (Running, Failure)
                | (Running, Pending)
                | (Success, Reverting)
                | (Failure, Reverting)
                | (Reverting, Reverted)
                | (Reverting, RevertFailure)
                | (Reverted, Pending)
                | (Ignore, Pending)
        );
        task || (kind == AtomKind::Retry
            && matches!(
                (self, to),
                (Success, Retrying) | (Retrying, Running) | (Retrying, Reverting)
            ))
    }

    /// Checks a transition of the atom named `atom`.
    pub fn check_transition(
        self,
        kind: AtomKind,
        to: AtomState,
        atom: &str,
    ) -> Result<(), TransitionError> {
        if self.can_transition(kind, to) {
            Ok(())
        } else {
            Err(TransitionError::Atom {
                atom: atom.to_owned(),
                from: self,
                to,
            })
        }
    }

    /// Whether the atom's work is done for dependents: `SUCCESS` or `IGNORE`.
    pub fn is_done(self) -> bool {
        matches!(self, AtomState::Success | AtomState::Ignore)
    }

    /// The name TaskFlow uses for the state, e.g. `REVERT_FAILURE`.
    pub fn as_str(self) -> &'static str {
        match self {
            AtomState::Pending => "PENDING",
            AtomState::Running => "RUNNING",
            AtomState::Success => "SUCCESS",
            AtomState::Failure => "FAILURE",
            AtomState::Reverting => "REVERTING",
            AtomState::Reverted => "REVERTED",
            AtomState::RevertFailure => "REVERT_FAILURE",
            AtomState::Retrying => "RETRYING",
            AtomState::Ignore => "IGNORE",
        }
    }
}

impl fmt::Display for AtomState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine means to do with an atom next (kept in its record, so a
/// resumed engine carries on with the same plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Intention {
    /// Run it.
    #[default]
    Execute,
    /// Revert it.
    Revert,
    /// (Retry controllers) its scope is being reverted to be retried.
    Retry,
    /// Skip it.
    Ignore,
}

/// The state of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlowState {
    /// Not run yet.
    Pending,
    /// Running.
    Running,
    /// Every atom succeeded or was ignored.
    Success,
    /// It failed and could not be fully reverted.
    Failure,
    /// It failed, or a revert was asked for, and every executed atom was
    /// reverted.
    Reverted,
    /// Being resumed (from suspension, a crash or a failure), or a
    /// finished flow being reverted on request.
    Resuming,
    /// A suspend was asked for; atoms in flight are finishing.
    Suspending,
    /// Suspended: can be resumed.
    Suspended,
}

impl FlowState {
    /// Every flow state.
    pub const ALL: [FlowState; 8] = [
        FlowState::Pending,
        FlowState::Running,
        FlowState::Success,
        FlowState::Failure,
        FlowState::Reverted,
        FlowState::Resuming,
        FlowState::Suspending,
        FlowState::Suspended,
    ];

    /// Whether a flow may move from `self` to `to`.
    pub fn can_transition(self, to: FlowState) -> bool {
        use FlowState::*;
        matches!(
            (self, to),
            (Pending, Running)
                | (Running, Success)
                | (Running, Failure)
                | (Running, Reverted)
                | (Running, Suspending)
                | (Running, Resuming)
                | (Suspending, Suspended)
                | (Suspending, Success)
                | (Suspending, Failure)
                | (Suspending, Reverted)
                | (Suspended, Resuming)
                | (Resuming, Running)
                | (Failure, Resuming)
                // A finished flow reverted on request (`Engine::revert`).
                | (Success, Resuming)
                | (Reverted, Pending)
        )
    }

    /// Checks a transition of the flow named `flow`.
    pub fn check_transition(self, to: FlowState, flow: &str) -> Result<(), TransitionError> {
        if self.can_transition(to) {
            Ok(())
        } else {
            Err(TransitionError::Flow {
                flow: flow.to_owned(),
                from: self,
                to,
            })
        }
    }

    /// The name TaskFlow uses for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Pending => "PENDING",
            FlowState::Running => "RUNNING",
            FlowState::Success => "SUCCESS",
            FlowState::Failure => "FAILURE",
            FlowState::Reverted => "REVERTED",
            FlowState::Resuming => "RESUMING",
            FlowState::Suspending => "SUSPENDING",
            FlowState::Suspended => "SUSPENDED",
        }
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition that the tables do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// An atom was asked to make an illegal move.
    #[error("atom `{atom}` cannot go from {from} to {to}")]
    Atom {
        /// The atom.
        atom: String,
        /// Its state.
        from: AtomState,
        /// The state asked for.
        to: AtomState,
    },
    /// A flow was asked to make an illegal move.
    #[error("flow `{flow}` cannot go from {from} to {to}")]
    Flow {
        /// The flow.
        flow: String,
        /// Its state.
        from: FlowState,
        /// The state asked for.
        to: FlowState,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair of atom states, against the table written out again here.
    #[test]
    fn atom_transitions_over_all_pairs() {
        use AtomState::*;
        let task_allowed = [
            (Pending, Running),
            (Pending, Ignore),
            (Running, Success),
            (Running, Failure),
            (Running, Pending),
            (Success, Reverting),
            (Failure, Reverting),
            (Reverting, Reverted),
            (Reverting, RevertFailure),
            (Reverted, Pending),
            (Ignore, Pending),
        ];
        let retry_only = [
            (Success, Retrying),
            (Retrying, Running),
            (Retrying, Reverting),
        ];
        for from in AtomState::ALL {
            for to in AtomState::ALL {
                let t = task_allowed.contains(&(from, to));
                let r = t || retry_only.contains(&(from, to));
                assert_eq!(
                    from.can_transition(AtomKind::Task, to),
                    t,
                    "task {from}->{to}"
                );
                assert_eq!(
                    from.can_transition(AtomKind::Retry, to),
                    r,
                    "retry {from}->{to}"
                );
                assert_eq!(from.check_transition(AtomKind::Task, to, "a").is_ok(), t);
            }
        }
        let err = Success
            .check_transition(AtomKind::Task, Running, "boot")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "atom `boot` cannot go from SUCCESS to RUNNING"
        );
    }

    #[test]
    fn flow_transitions_over_all_pairs() {
        use FlowState::*;
        let allowed = [
            (Pending, Running),
            (Running, Success),
            (Running, Failure),
            (Running, Reverted),
            (Running, Suspending),
            (Running, Resuming),
            (Suspending, Suspended),
            (Suspending, Success),
            (Suspending, Failure),
            (Suspending, Reverted),
            (Suspended, Resuming),
            (Resuming, Running),
            (Failure, Resuming),
            (Success, Resuming),
            (Reverted, Pending),
        ];
        for from in FlowState::ALL {
            for to in FlowState::ALL {
                let ok = allowed.contains(&(from, to));
                assert_eq!(from.can_transition(to), ok, "{from}->{to}");
                assert_eq!(from.check_transition(to, "f").is_ok(), ok);
            }
        }
    }

    #[test]
    fn states_serialize_as_taskflow_names() {
        for s in AtomState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in FlowState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
