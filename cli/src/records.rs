//! Where the records are: `--records URL`, `TASKFLOW_RECORDS`, the
//! `records` of `taskflow.toml`, or SQLite under `./.taskflow/`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use taskflow::{Backend, DirBackend, SqliteBackend};

use crate::CliError;

/// The records when nothing says where: a SQLite file in `./.taskflow/`.
pub const DEFAULT_RECORDS: &str = "sqlite:.taskflow/records.db";

/// A records URL: `sqlite:PATH`, `dir:PATH` or `postgres://...[#SCHEMA]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Records {
    /// A SQLite file (made, with its folder, if missing).
    Sqlite(PathBuf),
    /// A folder of one file per record.
    Dir(PathBuf),
    /// A PostgreSQL database (`postgres://USER@HOST[:PORT]/DB`), in the
    /// schema after `#` (default `taskflow`); cargo feature `postgres`.
    Postgres {
        /// The connection URL, without the `#SCHEMA`.
        url: String,
        /// The schema the records live in.
        schema: String,
    },
}

impl fmt::Display for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Records::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Records::Dir(p) => write!(f, "dir:{}", p.display()),
            Records::Postgres { url, schema } => {
                write!(f, "{}#{schema}", crate::board::redact(url))
            }
        }
    }
}

impl Records {
    /// Reads a URL.
    pub fn parse(url: &str) -> Result<Records, CliError> {
        let bad = |why: &str| CliError::RecordsUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let (scheme, path) = url
            .split_once(':')
            .ok_or_else(|| bad("expected `sqlite:PATH` or `dir:PATH`"))?;
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        match scheme {
            "sqlite" => Ok(Records::Sqlite(PathBuf::from(path))),
            "dir" => Ok(Records::Dir(PathBuf::from(path))),
            "postgres" | "postgresql" if cfg!(feature = "postgres") => {
                let (url, schema) = url.split_once('#').unwrap_or((url, "taskflow"));
                if schema.is_empty() {
                    return Err(bad("the schema after `#` is empty"));
                }
                Ok(Records::Postgres {
                    url: url.to_owned(),
                    schema: schema.to_owned(),
                })
            }
            "postgres" | "postgresql" => Err(bad(
                "this build of `taskflow` has no PostgreSQL records (cargo feature `postgres`)",
            )),
            _ => Err(bad(
                "unknown scheme; expected `sqlite:PATH`, `dir:PATH` or `postgres://...`",
            )),
        }
    }

    /// The records `flag` names, else `TASKFLOW_RECORDS`, else the default
    /// (the commands pass the `records` of `taskflow.toml` as the flag when
    /// neither the flag nor the variable is set).
    pub fn choose(flag: Option<&str>) -> Result<Records, CliError> {
        match flag {
            Some(url) => Records::parse(url),
            None => match std::env::var("TASKFLOW_RECORDS") {
                Ok(url) if !url.is_empty() => Records::parse(&url),
                _ => Records::parse(DEFAULT_RECORDS),
            },
        }
    }

    /// Opens (and if need be makes) the records.
    pub fn open(&self) -> Result<Arc<dyn Backend>, CliError> {
        let made = |path: &std::path::Path| {
            std::fs::create_dir_all(path).map_err(|e| CliError::RecordsUrl {
                url: self.to_string(),
                why: format!("cannot make `{}`: {e}", path.display()),
            })
        };
        Ok(match self {
            Records::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    made(parent)?;
                }
                Arc::new(SqliteBackend::open(path)?)
            }
            Records::Dir(path) => {
                made(path)?;
                Arc::new(DirBackend::open(path)?)
            }
            #[cfg(feature = "postgres")]
            Records::Postgres { url, schema } => Arc::new(
                taskflow::PostgresBackend::connect_in_schema(url, schema).map_err(|source| {
                    CliError::Records {
                        url: self.to_string(),
                        source,
                    }
                })?,
            ),
            #[cfg(not(feature = "postgres"))]
            Records::Postgres { .. } => {
                return Err(CliError::RecordsUrl {
                    url: self.to_string(),
                    why: "this build of `taskflow` has no PostgreSQL records".to_owned(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Records::parse("sqlite:a/b.db").ok(),
            Some(Records::Sqlite("a/b.db".into()))
        );
        assert_eq!(Records::parse("dir:x").ok(), Some(Records::Dir("x".into())));
        assert!(Records::parse("mysql:x").is_err());
        assert!(Records::parse("sqlite:").is_err());
    }
}
