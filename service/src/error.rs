//! The service's errors.

use std::path::PathBuf;

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
