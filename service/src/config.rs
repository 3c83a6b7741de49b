//! The service's configuration: `service.yaml` (Harbor's layout and option
//! names, plus the board and records URLs), overridden by environment
//! variables (Harbor's names where it has them).
//!
//! ```yaml
//! protocol: http            # JOB_SERVICE_PROTOCOL
//! port: 8080                # JOB_SERVICE_PORT
//! https_config:             # JOB_SERVICE_HTTPS_CERT / JOB_SERVICE_HTTPS_KEY
//!   cert: server.crt
//!   key: server.key
//! node_id: node-a           # JOB_SERVICE_NODE_ID (default: host name and pid)
//! records_url: sqlite:.taskflow/records.db       # JOB_SERVICE_RECORDS_URL
//! worker_pool:
//!   workers: 4              # JOB_SERVICE_POOL_WORKERS
//!   backend: sqlite         # JOB_SERVICE_POOL_BACKEND: sqlite | redis | postgres | etcd | zookeeper
//!   board_url: sqlite:.taskflow/board.db         # JOB_SERVICE_POOL_BOARD_URL
//!   lease_ms: 1000          # JOB_SERVICE_POOL_LEASE_MS
//!   redis_pool:             # with backend: redis
//!     redis_url: redis://127.0.0.1:6379/0      # JOB_SERVICE_POOL_REDIS_URL
//!     namespace: taskflow   # JOB_SERVICE_POOL_REDIS_NAMESPACE
//! job_loggers:
//!   - name: FILE
//!     level: INFO
//!     settings: { base_dir: .taskflow/job_logs }  # JOB_SERVICE_JOB_LOG_DIR
//!     sweeper: { duration: 7 }                    # days a log is kept
//! loggers:
//!   - name: STD_OUTPUT
//!     level: INFO
//! hooks:                    # status hooks (see taskflow_service::HookOptions)
//!   outbox: .taskflow/hooks.db                 # JOB_SERVICE_HOOK_OUTBOX
//!   initial_backoff_ms: 1000
//!   max_backoff_ms: 60000
//!   give_up_after_s: 86400
//!   timeout_ms: 5000
//!   concurrency: 4
//! ```
//!
//! The secret every request but the health check must present is never in
//! the file: it is `JOB_SERVICE_SECRET`, else Harbor's `CORE_SECRET`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::{HookOptions, ServiceError};

/// The default port.
pub const DEFAULT_PORT: u16 = 8080;

/// The configuration of one service node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `http` (or `https`, with `https`'s cert and key).
    pub protocol: Protocol,
    /// The address the API listens on (default `0.0.0.0`).
    pub host: String,
    /// The port the API listens on (0: any free port).
    pub port: u16,
    /// This node's name on the board (its conductor's owner name).
    pub node_id: Option<String>,
    /// Where the flows' records are (a URL the command understands).
    pub records_url: String,
    /// Where the jobboard is.
    pub board_url: String,
    /// The key prefix of a Redis board.
    pub namespace: String,
    /// How many jobs this node runs at once.
    pub workers: usize,
    /// Where the atoms of a job run (`worker_pool.executor`).
    pub executor: JobExecutor,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
    /// The folder of the jobs' logs.
    pub job_log_dir: PathBuf,
    /// The level of the jobs' logs.
    pub job_log_level: String,
    /// How long a job's log is kept after its last line.
    pub job_log_retention: Duration,
    /// The level of the service's own log (on stderr).
    pub log_level: String,
    /// The scheme of the `Authorization` header (`Harbor-Secret`).
    pub auth_scheme: String,
    /// Job types written as flow files (for the stock `taskflow serve`).
    pub job_types: Vec<FlowFileType>,
    /// How status hooks are sent.
    pub hooks: HookOptions,
}

/// A job type written as a flow file: `job_types:` in `service.yaml`.
///
/// ```yaml
/// job_types:
///   - name: provision
///     flow: flows/provision.yaml   # relative to service.yaml
///     max_fails: 2
///     should_retry: true
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFileType {
    /// The job type's name.
    pub name: String,
    /// The flow file (the `taskflow` command's format).
    pub flow: PathBuf,
    /// Harbor's `MaxFails`.
    #[serde(default)]
    pub max_fails: u32,
    /// Harbor's `ShouldRetry`.
    #[serde(default)]
    pub should_retry: bool,
}

/// Where the atoms of the jobs a node runs go: `worker_pool.executor` in
/// `service.yaml`, `JOB_SERVICE_POOL_EXECUTOR` in the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JobExecutor {
    /// `serial`: one atom at a time, on the thread that runs the job.
    #[default]
    Serial,
    /// `tokio`: the tokio executor, on a runtime of the node's for jobs
    /// (one worker thread per core): async tasks as tokio tasks, many
    /// waiting at once without a thread each, blocking tasks on its
    /// blocking pool.
    Tokio,
}

impl JobExecutor {
    fn parse(name: &str) -> Option<JobExecutor> {
        match name {
            "serial" => Some(JobExecutor::Serial),
            "tokio" => Some(JobExecutor::Tokio),
            _ => None,
        }
    }
}

/// How the API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Plain HTTP.
    Http,
    /// HTTPS with this certificate and key (PEM files).
    Https {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            protocol: Protocol::Http,
            host: "0.0.0.0".into(),
            port: DEFAULT_PORT,
            node_id: None,
            records_url: "sqlite:.taskflow/records.db".into(),
            board_url: "sqlite:.taskflow/board.db".into(),
            namespace: "taskflow".into(),
            workers: 4,
            executor: JobExecutor::Serial,
            lease: Duration::from_secs(1),
            job_log_dir: PathBuf::from(".taskflow/job_logs"),
            job_log_level: "INFO".into(),
            job_log_retention: Duration::from_secs(7 * 24 * 3600),
            log_level: "INFO".into(),
            auth_scheme: "Harbor-Secret".into(),
            job_types: Vec::new(),
            hooks: HookOptions::default(),
        }
    }
}

/// `service.yaml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    protocol: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    https_config: Option<HttpsFile>,
    node_id: Option<String>,
    records_url: Option<String>,
    auth_scheme: Option<String>,
    worker_pool: Option<PoolFile>,
    #[serde(default)]
    job_loggers: Vec<LoggerFile>,
    #[serde(default)]
    loggers: Vec<LoggerFile>,
    #[serde(default)]
    job_types: Vec<FlowFileType>,
    hooks: Option<HooksFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksFile {
    outbox: Option<PathBuf>,
    initial_backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    give_up_after_s: Option<u64>,
    timeout_ms: Option<u64>,
    concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpsFile {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    workers: Option<usize>,
    executor: Option<String>,
    backend: Option<String>,
    board_url: Option<String>,
    lease_ms: Option<u64>,
    redis_pool: Option<RedisFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisFile {
    redis_url: Option<String>,
    namespace: Option<String>,
    /// Harbor's; accepted and unused (the pool keeps its own).
    #[allow(dead_code)]
    idle_timeout_second: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggerFile {
    name: String,
    level: Option<String>,
    #[serde(default)]
    settings: std::collections::BTreeMap<String, String>,
    sweeper: Option<SweeperFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweeperFile {
    /// Days.
    duration: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    settings: std::collections::BTreeMap<String, String>,
}

/// The environment variables that override the file, and the option each
/// one sets.
pub const ENVIRONMENT: [(&str, &str); 15] = [
    ("JOB_SERVICE_PROTOCOL", "protocol"),
    ("JOB_SERVICE_PORT", "port"),
    ("JOB_SERVICE_HTTPS_CERT", "https_config.cert"),
    ("JOB_SERVICE_HTTPS_KEY", "https_config.key"),
    ("JOB_SERVICE_NODE_ID", "node_id"),
    ("JOB_SERVICE_RECORDS_URL", "records_url"),
    ("JOB_SERVICE_POOL_WORKERS", "worker_pool.workers"),
    ("JOB_SERVICE_POOL_EXECUTOR", "worker_pool.executor"),
    ("JOB_SERVICE_POOL_BACKEND", "worker_pool.backend"),
    ("JOB_SERVICE_POOL_BOARD_URL", "worker_pool.board_url"),
    ("JOB_SERVICE_POOL_LEASE_MS", "worker_pool.lease_ms"),
    (
        "JOB_SERVICE_POOL_REDIS_URL",
        "worker_pool.redis_pool.redis_url",
    ),
    (
        "JOB_SERVICE_POOL_REDIS_NAMESPACE",
        "worker_pool.redis_pool.namespace",
    ),
    (
        "JOB_SERVICE_JOB_LOG_DIR",
        "job_loggers[FILE].settings.base_dir",
    ),
    ("JOB_SERVICE_HOOK_OUTBOX", "hooks.outbox"),
];

impl ServiceConfig {
    /// Reads `path` (if given), then the environment over it.
    pub fn load(path: Option<&Path>) -> Result<ServiceConfig, ServiceError> {
        let file = match path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ServiceError::ConfigRead {
                        path: path.to_owned(),
                        source,
                    })?;
                Self::parse_file(path, &text)?
            }
            None => FileConfig::default(),
        };
        Self::resolve(file, path, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// Reads the YAML text of `path`, with `env` giving the variables over it
    /// (for tests; [`load`](Self::load) reads the process's).
    pub fn from_yaml(
        path: &Path,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServiceConfig, ServiceError> {
        let file = Self::parse_file(path, text)?;
        Self::resolve(file, Some(path), env)
    }

    fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ServiceError> {
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        marked_yaml::from_yaml(0, text).map_err(|e| ServiceError::Config {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    fn resolve(
        file: FileConfig,
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServiceConfig, ServiceError> {
        let at = path.map_or_else(|| PathBuf::from("(environment)"), Path::to_owned);
        let bad = |option: &str, message: String| ServiceError::Config {
            path: at.clone(),
            message: format!("`{option}`: {message}"),
        };
        let mut config = ServiceConfig::default();
        let pool = file.worker_pool.unwrap_or_default();
        let redis = pool.redis_pool.unwrap_or_default();
        let https = file.https_config.unwrap_or_default();

        let protocol = env("JOB_SERVICE_PROTOCOL")
            .or(file.protocol)
            .unwrap_or_else(|| "http".into());
        let cert = env("JOB_SERVICE_HTTPS_CERT")
            .map(PathBuf::from)
            .or(https.cert);
        let key = env("JOB_SERVICE_HTTPS_KEY")
            .map(PathBuf::from)
            .or(https.key);
        config.protocol = match protocol.to_ascii_lowercase().as_str() {
            "http" => Protocol::Http,
            "https" => match (cert, key) {
                (Some(cert), Some(key)) => Protocol::Https { cert, key },
                _ => {
                    return Err(bad(
                        "https_config",
                        "protocol https needs both `cert` and `key`".into(),
                    ))
                }
            },
            other => {
                return Err(bad(
                    "protocol",
                    format!("expected `http` or `https`, got `{other}`"),
                ))
            }
        };
        if let Some(host) = file.host {
            config.host = host;
        }
        config.port = match env("JOB_SERVICE_PORT") {
            Some(port) => port.parse().map_err(|_| {
                bad(
                    "port",
                    format!("JOB_SERVICE_PORT `{port}` is not a port number"),
                )
            })?,
            None => file.port.unwrap_or(DEFAULT_PORT),
        };
        config.node_id = env("JOB_SERVICE_NODE_ID").or(file.node_id);
        if let Some(records) = env("JOB_SERVICE_RECORDS_URL").or(file.records_url) {
            config.records_url = records;
        }
        if let Some(scheme) = file.auth_scheme {
            if scheme.is_empty() || scheme.contains(char::is_whitespace) {
                return Err(bad(
                    "auth_scheme",
                    "must be one word, as `Harbor-Secret`".into(),
                ));
            }
            config.auth_scheme = scheme;
        }

        config.workers = match env("JOB_SERVICE_POOL_WORKERS") {
            Some(n) => n.parse().map_err(|_| {
                bad(
                    "worker_pool.workers",
                    format!("JOB_SERVICE_POOL_WORKERS `{n}` is not a number"),
                )
            })?,
            None => pool.workers.unwrap_or(config.workers),
        };
        if config.workers == 0 {
            return Err(bad("worker_pool.workers", "must be at least 1".into()));
        }
        let lease_ms = match env("JOB_SERVICE_POOL_LEASE_MS") {
            Some(n) => n.parse().map_err(|_| {
                bad(
                    "worker_pool.lease_ms",
                    format!("JOB_SERVICE_POOL_LEASE_MS `{n}` is not a number"),
                )
            })?,
            None => pool.lease_ms.unwrap_or(1000),
        };
        if lease_ms < 100 {
            return Err(bad(
                "worker_pool.lease_ms",
                format!("{lease_ms} ms is too short a lease (at least 100)"),
            ));
        }
        config.lease = Duration::from_millis(lease_ms);
        if let Some(name) = env("JOB_SERVICE_POOL_EXECUTOR").or(pool.executor) {
            config.executor = JobExecutor::parse(&name).ok_or_else(|| {
                bad(
                    "worker_pool.executor",
                    format!("`{name}` is not an executor: use `serial` or `tokio`"),
                )
            })?;
        }

        let backend = env("JOB_SERVICE_POOL_BACKEND").or(pool.backend);
        let board_url = env("JOB_SERVICE_POOL_BOARD_URL").or(pool.board_url);
        let redis_url = env("JOB_SERVICE_POOL_REDIS_URL").or(redis.redis_url);
        if let Some(namespace) = env("JOB_SERVICE_POOL_REDIS_NAMESPACE").or(redis.namespace) {
            config.namespace = namespace;
        }
        config.board_url = match (backend.as_deref(), board_url, redis_url) {
            (_, Some(url), _) => url,
            (Some("redis"), None, Some(url)) => {
                // Harbor also accepts a bare `host:port`.
                if url.contains("://") {
                    url
                } else {
                    format!("redis://{url}")
                }
            }
            (Some("redis"), None, None) => {
                return Err(bad(
                    "worker_pool.redis_pool.redis_url",
                    "backend redis needs a redis_url (or worker_pool.board_url)".into(),
                ))
            }
            (Some("postgres"), None, _) => {
                return Err(bad(
                    "worker_pool.board_url",
                    "backend postgres needs a board_url (postgres://USER@HOST/DB#SCHEMA)".into(),
                ))
            }
            (Some("etcd"), None, _) => {
                return Err(bad(
                    "worker_pool.board_url",
                    "backend etcd needs a board_url (etcd://HOST:PORT[,HOST:PORT...][/PREFIX])"
                        .into(),
                ))
            }
            (Some("zookeeper"), None, _) => {
                return Err(bad(
                    "worker_pool.board_url",
                    "backend zookeeper needs a board_url (zookeeper://HOST:PORT[,...]/ROOT)".into(),
                ))
            }
            (None | Some("sqlite"), None, _) => config.board_url,
            (Some(other), None, _) => {
                return Err(bad(
                    "worker_pool.backend",
                    format!(
                    "unknown backend `{other}`; expected `sqlite`, `redis`, `postgres`, `etcd` \
                     or `zookeeper` \
                         (or give worker_pool.board_url)"
                ),
                ))
            }
        };

        for logger in &file.job_loggers {
            match logger.name.as_str() {
                "FILE" => {
                    if let Some(dir) = logger.settings.get("base_dir") {
                        config.job_log_dir = PathBuf::from(dir);
                    }
                    if let Some(level) = &logger.level {
                        config.job_log_level = level.clone();
                    }
                    if let Some(days) = logger.sweeper.as_ref().and_then(|s| s.duration) {
                        config.job_log_retention = Duration::from_secs(days * 24 * 3600);
                    }
                }
                "STD_OUTPUT" => {}
                other => {
                    return Err(bad(
                        "job_loggers",
                        format!("unknown logger `{other}`; expected `FILE` or `STD_OUTPUT`"),
                    ))
                }
            }
        }
        if let Some(dir) = env("JOB_SERVICE_JOB_LOG_DIR") {
            config.job_log_dir = PathBuf::from(dir);
        }
        for logger in &file.loggers {
            match logger.name.as_str() {
                "STD_OUTPUT" => {
                    if let Some(level) = &logger.level {
                        config.log_level = level.clone();
                    }
                }
                other => {
                    return Err(bad(
                        "loggers",
                        format!("unknown logger `{other}`; expected `STD_OUTPUT`"),
                    ))
                }
            }
        }
        let hooks = file.hooks.unwrap_or_default();
        if let Some(outbox) = env("JOB_SERVICE_HOOK_OUTBOX")
            .map(PathBuf::from)
            .or(hooks.outbox)
        {
            config.hooks.outbox = outbox;
        }
        let ms = Duration::from_millis;
        if let Some(v) = hooks.initial_backoff_ms {
            config.hooks.initial_backoff = ms(v.max(1));
        }
        if let Some(v) = hooks.max_backoff_ms {
            config.hooks.max_backoff = ms(v.max(1));
        }
        if let Some(v) = hooks.give_up_after_s {
            config.hooks.give_up_after = Duration::from_secs(v);
        }
        if let Some(v) = hooks.timeout_ms {
            config.hooks.timeout = ms(v.max(1));
        }
        if let Some(v) = hooks.concurrency {
            if v == 0 {
                return Err(bad("hooks.concurrency", "must be at least 1".into()));
            }
            config.hooks.concurrency = v;
        }
        let base = path.and_then(Path::parent).unwrap_or(Path::new(""));
        for mut job_type in file.job_types {
            if job_type.name.is_empty() {
                return Err(bad("job_types", "a job type needs a name".into()));
            }
            if config.job_types.iter().any(|t| t.name == job_type.name) {
                return Err(bad(
                    "job_types",
                    format!("job type `{}` is defined twice", job_type.name),
                ));
            }
            if job_type.flow.is_relative() {
                job_type.flow = base.join(&job_type.flow);
            }
            config.job_types.push(job_type);
        }
        Ok(config)
    }
}

/// The secret requests must present: `JOB_SERVICE_SECRET`, else Harbor's
/// `CORE_SECRET`.
pub fn secret_from_env() -> Option<String> {
    ["JOB_SERVICE_SECRET", "CORE_SECRET"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, env: &[(&str, &str)]) -> Result<ServiceConfig, ServiceError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServiceConfig::from_yaml(Path::new("service.yaml"), text, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn harbors_sample_reads() {
        let config = read(
            "protocol: \"http\"\nport: 9443\nworker_pool:\n  workers: 10\n  backend: \"redis\"\n  \
             redis_pool:\n    redis_url: \"localhost:6379\"\n    namespace: \"harbor_job_service\"\n\
             job_loggers:\n  - name: \"STD_OUTPUT\"\n    level: \"DEBUG\"\n  - name: \"FILE\"\n    \
             level: \"DEBUG\"\n    settings:\n      base_dir: \"/tmp/job_logs\"\n    sweeper:\n      \
             duration: 1\n      settings:\n        work_dir: \"/tmp/job_logs\"\n\
             loggers:\n  - name: \"STD_OUTPUT\"\n    level: \"DEBUG\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.port, 9443);
        assert_eq!(config.workers, 10);
        assert_eq!(config.board_url, "redis://localhost:6379");
        assert_eq!(config.namespace, "harbor_job_service");
        assert_eq!(config.job_log_dir, PathBuf::from("/tmp/job_logs"));
        assert_eq!(config.job_log_retention, Duration::from_secs(24 * 3600));
        assert_eq!(config.log_level, "DEBUG");
    }

    #[test]
    fn the_example_configuration_reads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/examples/service/service.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = ServiceConfig::from_yaml(&path, &text, |_| None).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.job_types.len(), 1);
        assert!(config.job_types[0].flow.ends_with("service/replicate.yaml"));
        assert!(config.job_types[0].should_retry);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let config = read(
            "port: 9443\nworker_pool:\n  workers: 10\n",
            &[
                ("JOB_SERVICE_PORT", "7001"),
                ("JOB_SERVICE_POOL_WORKERS", "2"),
                ("JOB_SERVICE_POOL_BOARD_URL", "sqlite:/tmp/b.db"),
            ],
        )
        .unwrap();
        assert_eq!(
            (config.port, config.workers, config.board_url.as_str()),
            (7001, 2, "sqlite:/tmp/b.db")
        );
    }

    #[test]
    fn mistakes_name_the_option_and_the_place() {
        let err = read("port: 9443\nworkers: 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("service.yaml") && err.contains("workers"),
            "{err}"
        );
        let err = read("protocol: gopher\n", &[]).unwrap_err().to_string();
        assert!(
            err.contains("`protocol`") && err.contains("gopher"),
            "{err}"
        );
        let err = read("", &[("JOB_SERVICE_PORT", "eighty")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("JOB_SERVICE_PORT"), "{err}");
        let err = read("worker_pool:\n  backend: redis\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis_url"), "{err}");
        let err = read("worker_pool:\n  backend: etcd\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("board_url") && err.contains("etcd://"),
            "{err}"
        );
        let etcd = read(
            "worker_pool:\n  backend: etcd\n  board_url: etcd://127.0.0.1:2379/jobs\n",
            &[],
        )
        .unwrap();
        assert_eq!(etcd.board_url, "etcd://127.0.0.1:2379/jobs");
        let err = read("worker_pool:\n  backend: zookeeper\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("zookeeper://"), "{err}");
        let zk = read(
            "worker_pool:\n  backend: zookeeper\n  board_url: zookeeper://zk1:2181,zk2:2181/jobs\n",
            &[],
        )
        .unwrap();
        assert_eq!(zk.board_url, "zookeeper://zk1:2181,zk2:2181/jobs");
        let err = read("protocol: https\n", &[]).unwrap_err().to_string();
        assert!(err.contains("cert"), "{err}");
    }

    #[test]
    fn the_executor_is_read_from_the_file_or_the_environment() {
        assert_eq!(read("", &[]).unwrap().executor, JobExecutor::Serial);
        let tokio = read("worker_pool:\n  executor: tokio\n", &[]).unwrap();
        assert_eq!(tokio.executor, JobExecutor::Tokio);
        let env = read(
            "worker_pool:\n  executor: tokio\n",
            &[("JOB_SERVICE_POOL_EXECUTOR", "serial")],
        )
        .unwrap();
        assert_eq!(env.executor, JobExecutor::Serial);
        let err = read("worker_pool:\n  executor: rayon\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("worker_pool.executor") && err.contains("`rayon`"),
            "{err}"
        );
    }
}
