//! The service's errors.

use std::path::PathBuf;

use axum::http::StatusCode;
use taskflow::{JobBoardError, PersistenceError};

/// What can go wrong starting or running a service node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The configuration file cannot be read.
    #[error("cannot read the configuration `{}`: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is wrong.
    #[error("configuration `{}`: {message}", path.display())]
    Config {
        /// The file (or `(environment)`).
        path: PathBuf,
        /// What is wrong, naming the option.
        message: String,
    },
    /// No secret is set: every request would be refused.
    #[error(
        "no secret: set JOB_SERVICE_SECRET (or Harbor's CORE_SECRET); requests must present it \
         as `Authorization: <scheme> <secret>`"
    )]
    NoSecret,
    /// No job type is registered: the service could run nothing.
    #[error("no job type is registered")]
    NoJobTypes,
    /// The API's address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The job logs' folder cannot be made.
    #[error("cannot make the job log folder `{}`: {source}", path.display())]
    LogDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The service's async runtime cannot start.
    #[error("cannot start the service's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error("https: {message}")]
    Tls {
        /// What is wrong, naming the file.
        message: String,
    },
    /// The hook outbox cannot be opened.
    #[error(transparent)]
    Outbox(#[from] crate::hooks::OutboxError),
    /// The hooks' HTTP client cannot be made.
    #[error("cannot make the status hooks' HTTP client: {0}")]
    HookClient(String),
    /// The board failed.
    #[error(transparent)]
    Board(#[from] JobBoardError),
    /// The records failed.
    #[error(transparent)]
    Records(#[from] PersistenceError),
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, naming the field, job or server at fault.
    pub description: String,
}

impl ApiError {
    /// 400: a body, a parameter or a query that is wrong.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }

    /// 401: no secret, or the wrong one.
    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, description)
    }

    /// 404: no such job.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }

    /// 409: the job's state forbids it, or a unique job runs already.
    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, description)
    }

    /// 503: the board or the records cannot be reached.
    pub fn unavailable(description: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, description)
    }

    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        ApiError {
            status,
            description: description.into(),
        }
    }

    /// The answer to a board error: what a client caused is 4xx, a board
    /// that is down or failing is 503 (never 500).
    pub fn from_board(error: JobBoardError) -> Self {
        match &error {
            JobBoardError::NotFound(id) => Self::not_found(format!("no job {id}")),
            JobBoardError::Complete(id) => Self::conflict(format!("job {id} is finished")),
            JobBoardError::NotComplete(id) => Self::conflict(format!("job {id} is not finished")),
            JobBoardError::Duplicate { key, existing } => Self::conflict(format!(
                "a unique job `{key}` is not finished: job {existing}"
            )),
            JobBoardError::AlreadyClaimed { .. } | JobBoardError::NotOwner { .. } => {
                Self::conflict(error.to_string())
            }
            _ => Self::unavailable(format!("the jobboard failed: {error}")),
        }
    }
}
