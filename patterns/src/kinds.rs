//! The kinds of the failures this library makes itself (as opposed to the
//! kinds of the errors tasks return), in one place, so that code matching on
//! [`Failure::kind`](crate::Failure::kind) names a constant, not a string.

/// A task panicked; the message is the panic's.
pub const PANIC: &str = "panic";
/// A task said "interrupted, run me again" ([`TaskError::interrupted`](crate::TaskError::interrupted)).
pub const INTERRUPTED: &str = "Interrupted";
/// An atom found `RUNNING` in the records of a flow that was reverting: its
/// process stopped while it ran, and it is reverted.
pub const STOPPED_WHILE_REVERTING: &str = "StoppedWhileReverting";
/// An argument has no value (it names the atom and the symbol).
pub const MISSING_INPUT: &str = "MissingInput";
/// An argument's value is not of the type the task asked for.
pub const INVALID_INPUT: &str = "InvalidInput";
/// A `ForEach` or `ParameterizedForEach` has no value left to try.
pub const NO_VALUES_LEFT: &str = "NoValuesLeft";
/// A result (or revert result) nests deeper than records hold.
pub const RESULT_TOO_DEEP: &str = "ResultTooDeep";
/// The engine found nothing more to run while atoms were neither finished
/// nor reverted (a bug, reported rather than a failure without a cause).
pub const STALLED: &str = "Stalled";

/// An atom did not finish within its timeout (`Atom::timeout`), on any
/// engine, or (on the worker engine) no result came back within the
/// request timeout; it was cancelled.
pub const TIMEOUT: &str = "Timeout";

/// The worker engine's kinds.
pub mod worker {
    /// No result came back within the request timeout (the same kind as
    /// [`super::TIMEOUT`]).
    pub const TIMEOUT: &str = super::TIMEOUT;
    /// The worker running the request stopped answering (no heartbeat), or
    /// stopped before it could finish the request.
    pub const WORKER_LOST: &str = "WorkerLost";
    /// No worker advertises the task's type.
    pub const UNKNOWN_TASK_TYPE: &str = "UnknownTaskType";
    /// The task (or one of its inputs) cannot be serialized for a transport
    /// that crosses processes, e.g. a closure made with `task_fn`.
    pub const NOT_SERIALIZABLE: &str = "NotSerializable";
    /// The connection to the transport (the broker) was lost.
    pub const TRANSPORT_LOST: &str = "TransportLost";
    /// The worker could not rebuild the request (e.g. it advertises a task
    /// type its binary does not link).
    pub const BAD_REQUEST: &str = "BadRequest";
}
