//! Where the jobboard is: `--board URL`, `TASKFLOW_BOARD`, or SQLite under
//! `./.taskflow/`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use taskflow::{BoardOptions, JobBoard, JobBoardError, SqliteBoard};

use crate::CliError;

/// The board when nothing says where: a SQLite file in `./.taskflow/`.
pub const DEFAULT_BOARD: &str = "sqlite:.taskflow/board.db";

/// The prefix of every key a `redis://` board keeps.
pub const REDIS_KEY_PREFIX: &str = "taskflow";

/// The PostgreSQL schema a `postgres://` board works in when its URL has
/// no `#SCHEMA` (the records' default too: the board's tables sit beside
/// them).
pub(crate) const POSTGRES_SCHEMA: &str = "taskflow";

/// What the URLs may be, for messages.
const EXPECTED: &str = "expected `sqlite:PATH`, `redis://HOST[:PORT][/DB]`, \
     `postgres://USER@HOST/DB[#SCHEMA]`, `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` or \
     `zookeeper://HOST:PORT[,HOST:PORT...][/ROOT/PATH]`";

/// Why an `etcd://` URL fails on a build without the etcd board.
const NO_ETCD: &str = "this build of `taskflow` has no etcd board (cargo feature `etcd`, not a \
     default because its build needs `protoc`): build it with `cargo install --path cli \
     --features etcd`";

/// A board URL: `sqlite:PATH`, `redis://...`, `postgres://...[#SCHEMA]`
/// or `zookeeper://HOSTS[/ROOT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Board {
    /// A SQLite file (made, with its folder, if missing), shared by the
    /// processes of one host.
    Sqlite(PathBuf),
    /// A Redis server (feature `redis`), shared by conductors on many
    /// hosts; the whole URL.
    Redis(String),
    /// A PostgreSQL database (feature `postgres`), shared by conductors on
    /// many hosts, and by the records if they are in the same database.
    Postgres {
        /// The connection URL, without the `#SCHEMA`.
        url: String,
        /// The schema the board's tables live in.
        schema: String,
    },
    /// An etcd cluster (feature `etcd`), shared by conductors on many
    /// hosts; the whole URL (`etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`).
    Etcd(String),
    /// A ZooKeeper ensemble (feature `zookeeper`), shared by conductors on
    /// many hosts; the whole URL (`zookeeper://HOST:PORT[,...][/ROOT]`, or
    /// `zk://...`; root `/taskflow/jobs` when none is given).
    Zookeeper(String),
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Board::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Board::Redis(url) => f.write_str(&redact(url)),
            Board::Postgres { url, schema } => write!(f, "{}#{schema}", redact(url)),
            Board::Etcd(url) => f.write_str(url),
            Board::Zookeeper(url) => f.write_str(url),
        }
    }
}

impl Board {
    /// Reads a URL.
    pub fn parse(url: &str) -> Result<Board, CliError> {
        let bad = |why: &str| CliError::BoardUrl {
            url: redact(url),
            why: why.to_owned(),
        };
        let (scheme, rest) = url.split_once(':').ok_or_else(|| bad(EXPECTED))?;
        match scheme {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(bad("the path is empty"));
                }
                Ok(Board::Sqlite(PathBuf::from(path)))
            }
            "redis" | "redis+unix" => {
                if cfg!(feature = "redis") {
                    Ok(Board::Redis(url.to_owned()))
                } else {
                    Err(bad(
                        "this build of `taskflow` has no Redis board (cargo feature `redis`)",
                    ))
                }
            }
            "postgres" | "postgresql" if cfg!(feature = "postgres") => {
                let (url, schema) = url.split_once('#').unwrap_or((url, POSTGRES_SCHEMA));
                if schema.is_empty() {
                    return Err(bad("the schema after `#` is empty"));
                }
                Ok(Board::Postgres {
                    url: url.to_owned(),
                    schema: schema.to_owned(),
                })
            }
            "postgres" | "postgresql" => Err(bad(
                "this build of `taskflow` has no PostgreSQL board (cargo feature `postgres`)",
            )),
            "etcd" if cfg!(feature = "etcd") => Ok(Board::Etcd(url.to_owned())),
            "etcd" => Err(bad(NO_ETCD)),
            "zookeeper" | "zk" if cfg!(feature = "zookeeper") => {
                let hosts = rest.strip_prefix("//").unwrap_or_default();
                if hosts.split('/').next().unwrap_or_default().is_empty() {
                    return Err(bad(
                        "no host; expected `zookeeper://HOST:PORT[,...][/ROOT]`",
                    ));
                }
                Ok(Board::Zookeeper(url.to_owned()))
            }
            "zookeeper" | "zk" => Err(bad(
                "this build of `taskflow` has no ZooKeeper board (cargo feature `zookeeper`)",
            )),
            _ => Err(bad(&format!("unknown scheme; {EXPECTED}"))),
        }
    }

    /// The board `flag` names, else `TASKFLOW_BOARD`, else the default.
    pub fn choose(flag: Option<&str>) -> Result<Board, CliError> {
        match flag {
            Some(url) => Board::parse(url),
            None => match std::env::var("TASKFLOW_BOARD") {
                Ok(url) if !url.is_empty() => Board::parse(&url),
                _ => Board::parse(DEFAULT_BOARD),
            },
        }
    }

    /// Opens (and if need be makes) the board, whose claims last `lease`
    /// (the board's default when not given).
    pub fn open(&self, lease: Option<Duration>) -> Result<Arc<dyn JobBoard>, CliError> {
        self.open_in(lease, REDIS_KEY_PREFIX)
    }

    /// As [`open`](Self::open), a Redis board keeping its keys under
    /// `prefix` (the job service's `namespace`; a PostgreSQL board's
    /// namespace is the schema its URL names, a ZooKeeper board's the root
    /// node its URL names), and an etcd board too unless its URL names a
    /// prefix.
    pub fn open_in(
        &self,
        lease: Option<Duration>,
        prefix: &str,
    ) -> Result<Arc<dyn JobBoard>, CliError> {
        let mut options = BoardOptions::default();
        if let Some(lease) = lease {
            options.lease = lease;
        }
        match self {
            Board::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| CliError::BoardUrl {
                        url: self.to_string(),
                        why: format!("cannot make `{}`: {e}", parent.display()),
                    })?;
                }
                let board = SqliteBoard::open(path, options).map_err(|e| self.failed(e))?;
                Ok(Arc::new(board))
            }
            #[cfg(feature = "redis")]
            Board::Redis(url) => {
                let board = taskflow::RedisBoard::connect(url, prefix, options)
                    .map_err(|e| self.failed(e))?;
                Ok(Arc::new(board))
            }
            #[cfg(not(feature = "redis"))]
            Board::Redis(_) => Err(CliError::BoardUrl {
                url: self.to_string(),
                why: "this build of `taskflow` has no Redis board (cargo feature `redis`)".into(),
            }),
            #[cfg(feature = "postgres")]
            Board::Postgres { url, schema } => {
                let board = taskflow::PostgresBoard::connect_in_schema(url, schema, options)
                    .map_err(|e| self.failed(e))?;
                Ok(Arc::new(board))
            }
            #[cfg(not(feature = "postgres"))]
            Board::Postgres { .. } => Err(CliError::BoardUrl {
                url: self.to_string(),
                why: "this build of `taskflow` has no PostgreSQL board (cargo feature `postgres`)"
                    .into(),
            }),
            #[cfg(feature = "etcd")]
            Board::Etcd(url) => {
                let hosts = url.strip_prefix("etcd://").unwrap_or(url);
                let url = match hosts.split_once('/') {
                    Some((_, path)) if !path.trim_matches('/').is_empty() => url.clone(),
                    _ => format!("etcd://{}/{prefix}", hosts.trim_end_matches('/')),
                };
                let board = taskflow::EtcdBoard::open(&url, options).map_err(|e| self.failed(e))?;
                Ok(Arc::new(board))
            }
            #[cfg(not(feature = "etcd"))]
            Board::Etcd(_) => Err(CliError::BoardUrl {
                url: self.to_string(),
                why: NO_ETCD.into(),
            }),
            #[cfg(feature = "zookeeper")]
            Board::Zookeeper(url) => {
                let board =
                    taskflow::ZookeeperBoard::open(url, options).map_err(|e| self.failed(e))?;
                Ok(Arc::new(board))
            }
            #[cfg(not(feature = "zookeeper"))]
            Board::Zookeeper(_) => Err(CliError::BoardUrl {
                url: self.to_string(),
                why: "this build of `taskflow` has no ZooKeeper board (cargo feature `zookeeper`)"
                    .into(),
            }),
        }
    }

    /// The error of `source`, naming this board.
    pub fn failed(&self, source: JobBoardError) -> CliError {
        CliError::Board {
            url: self.to_string(),
            source,
        }
    }
}

/// The URL without its password (`redis://user:***@host`).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Board::parse("sqlite:a/b.db").ok(),
            Some(Board::Sqlite("a/b.db".into()))
        );
        assert!(Board::parse("sqlite:").is_err());
        assert!(Board::parse("nope://x").is_err());
        #[cfg(feature = "redis")]
        assert_eq!(
            Board::parse("redis://u:secret@h:6379/2")
                .map(|b| b.to_string())
                .ok(),
            Some("redis://u:***@h:6379/2".to_owned())
        );
        #[cfg(feature = "postgres")]
        {
            assert_eq!(
                Board::parse("postgres://u:secret@h/db#jobs").ok(),
                Some(Board::Postgres {
                    url: "postgres://u:secret@h/db".into(),
                    schema: "jobs".into()
                })
            );
            assert_eq!(
                Board::parse("postgresql://u:pw@h/db")
                    .map(|b| b.to_string())
                    .ok(),
                Some("postgresql://u:***@h/db#taskflow".to_owned())
            );
            assert!(Board::parse("postgres://h/db#").is_err());
        }
        let etcd = Board::parse("etcd://h1:2379,h2:2379/jobs");
        #[cfg(feature = "etcd")]
        assert_eq!(
            etcd.ok(),
            Some(Board::Etcd("etcd://h1:2379,h2:2379/jobs".into()))
        );
        #[cfg(not(feature = "etcd"))]
        {
            let err = etcd.unwrap_err().to_string();
            assert!(
                err.contains("no etcd board") && err.contains("--features etcd"),
                "{err}"
            );
        }
        #[cfg(feature = "zookeeper")]
        {
            assert_eq!(
                Board::parse("zookeeper://h1:2181,h2:2181/taskflow/jobs").ok(),
                Some(Board::Zookeeper(
                    "zookeeper://h1:2181,h2:2181/taskflow/jobs".into()
                ))
            );
            assert!(Board::parse("zookeeper:///x").is_err());
            assert_eq!(
                Board::parse("zk://h:2181/j").ok(),
                Some(Board::Zookeeper("zk://h:2181/j".into()))
            );
        }
    }
}
