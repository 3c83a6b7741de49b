//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use taskflow::{EngineError, JobBoardError, PersistenceError};

use crate::file::FileErrors;

/// What can go wrong in a `taskflow` command. Each variant says what is
/// wrong and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A flow file has mistakes: every one found, each at its line and
    /// column.
    #[error("{0}")]
    Invalid(FileErrors),
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `--records` (or `TASKFLOW_RECORDS`) is not a URL this command knows.
    #[error("records `{url}`: {why}")]
    RecordsUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The records did not open: the server did not answer, or refused.
    #[error("records `{url}`: {source}")]
    Records {
        /// The records' URL (without a password).
        url: String,
        /// What failed.
        #[source]
        source: PersistenceError,
    },
    /// `taskflow.toml` could not be read or has a mistake.
    #[error("{path}: {why}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong (with its line and column when it is a mistake).
        why: String,
    },
    /// `--board` (or `TASKFLOW_BOARD`) is not a URL this command knows.
    #[error("board `{url}`: {why}")]
    BoardUrl {
        /// The URL given (without a password).
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The board did not answer, or refused a read or a write.
    #[error("board `{url}`: {source}")]
    Board {
        /// The board's URL (without a password).
        url: String,
        /// What failed.
        #[source]
        source: JobBoardError,
    },
    /// A job id that is not a UUID.
    #[error("`{0}` is not a job id (a UUID, as `taskflow post` prints it)")]
    BadJobId(String),
    /// A `--store key=value` argument is malformed.
    #[error("--store `{arg}`: {why}")]
    StoreArg {
        /// The argument.
        arg: String,
        /// What is wrong with it.
        why: String,
    },
    /// `run` or `graph` was given something that is neither a file nor a
    /// registered flow factory.
    #[error(
        "`{name}` is neither a flow file nor a flow factory of this program{}",
        known_factories(known)
    )]
    UnknownFlow {
        /// What was given.
        name: String,
        /// The factories this program registers.
        known: Vec<String>,
    },
    /// A flow detail id that is not a UUID.
    #[error("`{0}` is not a flow detail id (a UUID, as `taskflow run` prints it)")]
    BadFlowDetailId(String),
    /// The records refused a read or a write.
    #[error("records: {0}")]
    Persistence(#[from] PersistenceError),
    /// The engine could not be built or could not run the flow.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The Ctrl-C handler could not be installed.
    #[error("cannot handle Ctrl-C: {0}")]
    Signal(String),
    /// Output could not be written (a closed pipe, a full disk).
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
    /// The job service could not start or stopped on an error.
    #[error("{0}")]
    Service(#[from] taskflow_service::ServiceError),
}

fn known_factories(known: &[String]) -> String {
    if known.is_empty() {
        "; give the path of a YAML flow file".to_owned()
    } else {
        format!(
            "; give the path of a YAML flow file or one of: {}",
            known.join(", ")
        )
    }
}
