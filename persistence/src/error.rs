//! The persistence crate's error.

use std::fmt;

use uuid::Uuid;

use crate::{Epoch, FlowDetailId};

/// The kinds of record a backend stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A logbook.
    LogBook,
    /// A flow detail.
    FlowDetail,
    /// An atom detail.
    AtomDetail,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::LogBook => "logbook",
            RecordKind::FlowDetail => "flow detail",
            RecordKind::AtomDetail => "atom detail",
        })
    }
}

/// What can go wrong storing or loading records. Each variant names the
/// record or the backend at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistenceError {
    /// No record with that id.
    #[error("{kind} {id} not found")]
    NotFound {
        /// The kind of record.
        kind: RecordKind,
        /// Its id.
        id: Uuid,
    },
    /// A record could not be decoded or is inconsistent.
    #[error("{kind} {id} is corrupt: {reason}")]
    Corrupt {
        /// The kind of record.
        kind: RecordKind,
        /// Its id (or the best name for it that is known).
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode {kind} {id}: {reason}")]
    Encode {
        /// The kind of record.
        kind: RecordKind,
        /// Its id.
        id: Uuid,
        /// Why.
        reason: String,
    },
    /// A record was refused when written because it nests deeper than a
    /// record may ([`MAX_RECORD_DEPTH`](crate::MAX_RECORD_DEPTH) levels for
    /// a value it holds): it could not be read back. Nothing was written.
    #[error(
        "cannot encode {kind} {id}: its {part} nests {depth} levels deep, deeper than the \
         {limit} levels a stored value may have"
    )]
    TooDeep {
        /// The kind of record.
        kind: RecordKind,
        /// Its id.
        id: Uuid,
        /// The part too deep: `result`, `revert result`, `retry history`,
        /// `meta entry "key"` (or `record` for the whole document).
        part: String,
        /// How deeply it nests.
        depth: usize,
        /// The deepest it may nest.
        limit: usize,
    },
    /// The store was written by a newer version of this crate (its schema or
    /// record format is newer than this build can read); it is left untouched.
    #[error(
        "{backend} store at {location} has schema version {found}, newer than the \
         newest this build supports ({supported}): upgrade taskflow-persistence"
    )]
    SchemaTooNew {
        /// Which backend.
        backend: &'static str,
        /// Where the store is (path, or schema name).
        location: String,
        /// The version found in the store.
        found: u32,
        /// The newest version this build reads and writes.
        supported: u32,
    },
    /// A write was refused because the flow detail is owned at a higher
    /// epoch than the writer's: another owner (a conductor that claimed the
    /// job after this writer lost its claim) fenced it. Nothing was written.
    /// The writer should stop: its work is no longer its own.
    #[error(
        "flow detail {flow} is owned at epoch {held}; a write at epoch {presented} was \
         refused (the writer lost its claim)"
    )]
    Fenced {
        /// The flow detail's id.
        flow: crate::FlowDetailId,
        /// The owner epoch stored in the flow detail.
        held: crate::Epoch,
        /// The epoch the writer presented.
        presented: crate::Epoch,
    },
    /// The backend failed (I/O, connection, server error). Its message
    /// carries the chain of its causes, which [`source`](std::error::Error::source)
    /// also gives.
    #[error("{backend} backend: {}", WithCauses::new(.message, .source))]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What it was doing and what went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// A message followed by the chain of its causes, each after a colon
/// ("preparing an atom query: no such table: atomdetails"), so that the
/// first line a user reads says what went wrong. A cause the text already
/// ends with (a message written as `"{what}: {e}"`) is not repeated. The
/// backend errors of this crate and of the jobboard print through it.
///
/// ```
/// use taskflow_persistence::WithCauses;
/// let cause: Option<Box<dyn std::error::Error + Send + Sync>> =
///     Some("no such table: atomdetails".into());
/// assert_eq!(
///     WithCauses::new("preparing an atom query", &cause).to_string(),
///     "preparing an atom query: no such table: atomdetails"
/// );
/// ```
pub struct WithCauses<'a> {
    message: &'a str,
    source: Option<&'a (dyn std::error::Error + 'static)>,
}

impl<'a> WithCauses<'a> {
    /// `message`, then the chain of `source`'s causes.
    pub fn new(
        message: &'a str,
        source: &'a Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        WithCauses {
            message,
            source: source
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

impl fmt::Display for WithCauses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.message.to_owned();
        let mut cause = self.source;
        while let Some(e) = cause {
            let said = e.to_string();
            if !said.is_empty() && !text.ends_with(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            cause = e.source();
        }
        f.write_str(&text)
    }
}

impl PersistenceError {
    /// A backend failure with its cause.
    pub fn backend(
        backend: &'static str,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        PersistenceError::Backend {
            backend,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// Whether this is a `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PersistenceError::NotFound { .. })
    }

    /// Whether this is a `Fenced`: the writer lost its claim on the flow.
    pub fn is_fenced(&self) -> bool {
        matches!(self, PersistenceError::Fenced { .. })
    }
}

/// Refuses a write at epoch `presented` to the flow detail `flow` owned at
/// epoch `held`, if `held` is higher.
pub(crate) fn check_epoch(
    flow: FlowDetailId,
    held: Epoch,
    presented: Epoch,
) -> Result<(), PersistenceError> {
    if held > presented {
        Err(PersistenceError::Fenced {
            flow,
            held,
            presented,
        })
    } else {
        Ok(())
    }
}

/// The epoch a take of the flow detail `flow`, owned at `held`, hands out:
/// one more, or `Encode` if `held` is the largest epoch there is.
pub(crate) fn next_epoch(flow: FlowDetailId, held: Epoch) -> Result<Epoch, PersistenceError> {
    held.get()
        .checked_add(1)
        .map(Epoch::new)
        .ok_or_else(|| epoch_at_its_largest(flow, held))
}

/// The error of a take of the flow detail `flow` whose epoch `held` is the
/// largest its backend stores.
pub(crate) fn epoch_at_its_largest(flow: FlowDetailId, held: Epoch) -> PersistenceError {
    PersistenceError::Encode {
        kind: RecordKind::FlowDetail,
        id: flow.into(),
        reason: format!("its owner epoch {held} is the largest stored and cannot be raised"),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::fmt;

    use super::*;

    /// An error with a cause of its own, as `postgres::Error` ("db error",
    /// the server's message in its source).
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("db error")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn backend_errors_print_their_causes_and_keep_their_source() {
        let io = || std::io::Error::other("relation \"atomdetails\" does not exist");
        let err = PersistenceError::backend("postgres", "reading atom details", Outer(io()));
        assert_eq!(
            err.to_string(),
            "postgres backend: reading atom details: db error: relation \"atomdetails\" \
             does not exist"
        );
        let source = err.source().expect("a source");
        assert_eq!(source.to_string(), "db error");
        assert!(source.source().is_some());

        // A message that already ends with its cause does not repeat it.
        let err = PersistenceError::backend(
            "dir",
            "writing x: disk full",
            std::io::Error::other("disk full"),
        );
        assert_eq!(err.to_string(), "dir backend: writing x: disk full");

        let err = PersistenceError::Backend {
            backend: "sqlite",
            message: "x.db: cannot use WAL mode".into(),
            source: None,
        };
        assert_eq!(err.to_string(), "sqlite backend: x.db: cannot use WAL mode");
    }
}
