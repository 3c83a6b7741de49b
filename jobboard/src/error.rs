//! The jobboard crate's error.

use crate::JobId;
use taskflow_persistence::WithCauses;

/// What can go wrong on a jobboard. Each variant names the job or the
/// board at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobBoardError {
    /// No job with that id.
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The job is claimed by someone else (whose lease has not lapsed).
    #[error("job {job} is already claimed by `{owner}`")]
    AlreadyClaimed {
        /// The job.
        job: JobId,
        /// Its owner.
        owner: String,
    },
    /// The job is complete (consumed or trashed); it cannot be claimed.
    #[error("job {0} is complete")]
    Complete(JobId),
    /// The job waits for its not-before time: it cannot be claimed until
    /// then (unless a control request is made on it).
    #[error("job {job} is scheduled: not claimable before {not_before} (ms since the epoch)")]
    NotYet {
        /// The job.
        job: JobId,
        /// When it becomes claimable (ms since the Unix epoch, on the
        /// board's clock).
        not_before: u64,
    },
    /// A job that is not complete already holds the uniqueness key: the
    /// job was not posted (or reopened), and nothing was written.
    #[error("unique key `{key}` is held by job {existing}, which is not complete")]
    Duplicate {
        /// The uniqueness key.
        key: String,
        /// The job holding it.
        existing: JobId,
    },
    /// A job with this execution key is already on the board (complete or
    /// not): the job was not posted again, and nothing was written.
    #[error("a job with key `{key}` was already posted: job {existing}")]
    AlreadyPosted {
        /// The execution key.
        key: String,
        /// The job posted with it.
        existing: JobId,
    },
    /// The job is not complete, so it cannot be reopened.
    #[error("job {0} is not complete")]
    NotComplete(JobId),
    /// The claim presented is not the job's current claim: its lease lapsed
    /// and the job was claimed again (a higher epoch), or it was released.
    #[error("job {job}: the claim of `{owner}` (epoch {epoch}) is no longer the job's claim")]
    NotOwner {
        /// The job.
        job: JobId,
        /// The owner named in the stale claim.
        owner: String,
        /// The epoch of the stale claim.
        epoch: u64,
    },
    /// A job cannot be posted as asked.
    #[error("job `{name}` cannot be posted: {reason}")]
    InvalidJob {
        /// The job's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A record of the board could not be decoded.
    #[error("{board} board: job {id} is corrupt: {reason}")]
    Corrupt {
        /// Which board.
        board: &'static str,
        /// The job (or key) at fault.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The board's store was written by a newer version of this crate (its
    /// schema is newer than this build reads and writes); it is left
    /// untouched.
    #[error(
        "{board} board at {location} has schema version {found}, newer than the newest \
         this build supports ({supported}): upgrade taskflow-jobboard"
    )]
    SchemaTooNew {
        /// Which board.
        board: &'static str,
        /// Where the store is (its path).
        location: String,
        /// The version found in the store.
        found: u32,
        /// The newest version this build reads and writes.
        supported: u32,
    },
    /// The board's store failed (I/O, connection, server error). Its
    /// message carries the chain of its causes, which
    /// [`source`](std::error::Error::source) also gives.
    #[error("{board} board: {}", WithCauses::new(.message, .source))]
    Backend {
        /// Which board.
        board: &'static str,
        /// What it was doing and what went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The board was closed ([`close`](crate::JobBoard::close)): it makes
    /// no more calls to its store.
    #[error("{board} board is closed")]
    Closed {
        /// Which board.
        board: &'static str,
    },
    /// The board does not offer this operation.
    #[error("{board} board does not support {what}")]
    Unsupported {
        /// Which board (its type name when it does not say).
        board: &'static str,
        /// What it does not support.
        what: &'static str,
    },
    /// Writing the job's records failed.
    #[error(transparent)]
    Persistence(#[from] taskflow_persistence::PersistenceError),
}

impl JobBoardError {
    /// Whether this is a claim's refusal of a job that is not claimable
    /// now (`AlreadyClaimed`, `NotYet`, `Complete`, `NotFound`), as opposed
    /// to a failure of the board: a claimer moves on to its next candidate.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            JobBoardError::AlreadyClaimed { .. }
                | JobBoardError::NotYet { .. }
                | JobBoardError::Complete(_)
                | JobBoardError::NotFound(_)
        )
    }

    /// A backend failure with its cause.
    pub fn backend(
        board: &'static str,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        JobBoardError::Backend {
            board,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl JobBoardError {
    /// An error of the setup a board shares with the persistence crate
    /// (its connection helpers, its schema runners) as board `board`'s:
    /// the store's failures are the board's, not a record backend's.
    pub(crate) fn from_persistence(
        board: &'static str,
        e: taskflow_persistence::PersistenceError,
    ) -> JobBoardError {
        use taskflow_persistence::PersistenceError;
        match e {
            PersistenceError::SchemaTooNew {
                location,
                found,
                supported,
                ..
            } => JobBoardError::SchemaTooNew {
                board,
                location,
                found,
                supported,
            },
            PersistenceError::Backend {
                message, source, ..
            } => JobBoardError::Backend {
                board,
                message,
                source,
            },
            other => JobBoardError::Persistence(other),
        }
    }
}

/// A time, epoch or count as the SQL boards store it, a signed 64-bit
/// integer (saturating: times in ms fit for the next 290 million years).
pub(crate) fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn backend_errors_print_their_causes_and_keep_their_source() {
        let err = JobBoardError::backend(
            "sqlite",
            "claiming job 1",
            std::io::Error::other("database is locked"),
        );
        assert_eq!(
            err.to_string(),
            "sqlite board: claiming job 1: database is locked"
        );
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("database is locked")
        );
        // A message that already ends with its cause does not repeat it.
        let err = JobBoardError::backend(
            "redis",
            "posting: encoding the details: bad",
            std::io::Error::other("bad"),
        );
        assert_eq!(
            err.to_string(),
            "redis board: posting: encoding the details: bad"
        );
        // Through a persistence error, too.
        let err = JobBoardError::from(taskflow_persistence::PersistenceError::backend(
            "sqlite",
            "reading atom details",
            std::io::Error::other("disk I/O error"),
        ));
        assert_eq!(
            err.to_string(),
            "sqlite backend: reading atom details: disk I/O error"
        );
    }
}
