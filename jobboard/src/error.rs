//! The jobboard crate's error.

use uuid::Uuid;

/// What can go wrong on a jobboard. Each variant names the job or the
/// board at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobBoardError {
    /// No job with that id.
    #[error("job {0} not found")]
    NotFound(Uuid),
    /// The job is claimed by someone else (whose lease has not lapsed).
    #[error("job {job} is already claimed by `{owner}`")]
    AlreadyClaimed {
        /// The job.
        job: Uuid,
        /// Its owner.
        owner: String,
    },
    /// The job is complete (consumed or trashed); it cannot be claimed.
    #[error("job {0} is complete")]
    Complete(Uuid),
    /// The claim presented is not the job's current claim: its lease lapsed
    /// and the job was claimed again (a higher epoch), or it was released.
    #[error("job {job}: the claim of `{owner}` (epoch {epoch}) is no longer the job's claim")]
    NotOwner {
        /// The job.
        job: Uuid,
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
    /// The board's store failed (I/O, connection, server error).
    #[error("{board} board: {message}")]
    Backend {
        /// Which board.
        board: &'static str,
        /// What it was doing and what went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Writing the job's records failed.
    #[error(transparent)]
    Persistence(#[from] taskflow_persistence::PersistenceError),
}

impl JobBoardError {
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
