//! A service node: the API, a conductor running jobs, the periodic
//! enqueuer, the heartbeat and the log sweeper, until stopped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use taskflow::{
    Backend, Conductor, ConductorEvent, Entity, FlowState, JobBoard, LoggingListener, StopHandle,
    Tokio,
};
use tokio::sync::Notify;

use crate::api::{router, AppState};
use crate::clock::now_ms;
use crate::core::{Core, NodeStats, HEARTBEAT_EVERY_MS, NODE_MARK};
use crate::hooks::Hooks;
use crate::logs::JobLogs;
use crate::meta::JobMeta;
use crate::tls::TlsListener;
use crate::{periodic, JobExecutor, JobType, JobTypes, Protocol, ServiceConfig, ServiceError};

/// How often the log sweeper runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// How often the final hook events a crash may have lost are looked for.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// How long a hook worker with nothing to send waits before looking again.
const HOOK_IDLE: Duration = Duration::from_millis(100);

/// Configures a [`Service`].
pub struct ServiceBuilder {
    config: ServiceConfig,
    board: Arc<dyn JobBoard>,
    records: Arc<dyn Backend>,
    types: JobTypes,
    secret: Option<String>,
}

/// One node of the job service.
pub struct Service {
    config: ServiceConfig,
    core: Arc<Core>,
    secret: String,
    handle: ServiceHandle,
    conductor: Conductor,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The runtime the jobs' atoms run on with `JobExecutor::Tokio`.
    _jobs_runtime: Option<JobsRuntime>,
}

/// A tokio runtime for jobs, stopped without waiting for blocking tasks
/// still running when the node is dropped.
struct JobsRuntime(Option<tokio::runtime::Runtime>);

impl Drop for JobsRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Stops a running [`Service`] from anywhere (a signal handler, a test),
/// and tells where it listens.
#[derive(Clone)]
pub struct ServiceHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    stopped: AtomicBool,
    notify: Notify,
    conductor: StopHandle,
    address: OnceLock<SocketAddr>,
}

impl ServiceHandle {
    /// Stops the node gracefully: the API stops taking requests, the
    /// conductor suspends the jobs it runs after their atoms in flight and
    /// gives them back to the board (another node resumes them), and
    /// [`Service::run`] returns.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.conductor.stop();
        self.inner.notify.notify_waiters();
        self.inner.notify.notify_one();
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// The address the API listens on, once it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.address.get().copied()
    }

    /// Sleeps for `duration`, or less if the node is stopped; returns
    /// whether it still runs.
    fn sleep(&self, duration: Duration) -> bool {
        let step = Duration::from_millis(50);
        let mut left = duration;
        while !left.is_zero() {
            if self.is_stopped() {
                return false;
            }
            let nap = left.min(step);
            std::thread::sleep(nap);
            left -= nap;
        }
        !self.is_stopped()
    }
}

impl Service {
    /// A node taking jobs from `board`, running their flows on `records`
    /// (the same board and records on every node of one service).
    pub fn builder(
        config: ServiceConfig,
        board: Arc<dyn JobBoard>,
        records: Arc<dyn Backend>,
    ) -> ServiceBuilder {
        ServiceBuilder {
            config,
            board,
            records,
            types: JobTypes::new(),
            secret: None,
        }
    }

    /// A handle that stops the node and tells its address.
    pub fn stop_handle(&self) -> ServiceHandle {
        self.handle.clone()
    }

    /// This node's name on the board.
    pub fn node_id(&self) -> &str {
        &self.core.node_id
    }

    /// Serves the API and runs jobs until [`ServiceHandle::stop`].
    pub fn run(self) -> Result<(), ServiceError> {
        self.run_with(|_| {})
    }

    /// As [`run`](Self::run), calling `on_ready` with the API's address
    /// once it listens (a port of 0 picks a free one).
    pub fn run_with(self, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ServiceError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("taskflow-service-api")
            .build()
            .map_err(ServiceError::Runtime)?;
        let address = format!("{}:{}", self.config.host, self.config.port);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&address))
            .map_err(|source| ServiceError::Bind {
                address: address.clone(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ServiceError::Bind {
            address: address.clone(),
            source,
        })?;
        let _ = self.handle.inner.address.set(local);
        tracing::info!(node = %self.core.node_id, %local, "taskflow service listening");
        on_ready(local);
        let app = router(AppState {
            core: Arc::clone(&self.core),
            secret: Arc::from(self.secret.as_str()),
            auth_scheme: Arc::from(self.config.auth_scheme.as_str()),
        });
        let started_at = now_ms() / 1000;
        std::thread::scope(|scope| {
            let handle = &self.handle;
            let core = &self.core;
            let config = &self.config;
            scope.spawn(|| self.conductor.run());
            scope.spawn(move || heartbeat(core, config, handle, started_at));
            scope.spawn(move || {
                let mut last_reconcile: Option<Instant> = None;
                let mut enqueuer = periodic::Enqueuer::default();
                while handle.sleep(periodic::TICK) {
                    if let Err(e) = enqueuer.tick(core) {
                        tracing::warn!(error = %e, "cannot post the periodic executions due");
                    }
                    if last_reconcile.is_none_or(|at| at.elapsed() >= RECONCILE_EVERY) {
                        last_reconcile = Some(Instant::now());
                        match core.board.all_jobs() {
                            Ok(jobs) => core.reconcile_hooks(&jobs),
                            Err(e) => tracing::warn!(error = %e, "cannot list the jobs for hooks"),
                        }
                    }
                }
            });
            for _ in 0..config.hooks.concurrency {
                scope.spawn(move || {
                    while !handle.is_stopped() {
                        if !core.hooks.send_one(&core.node_id) {
                            handle.sleep(HOOK_IDLE);
                        }
                    }
                });
            }
            scope.spawn(move || loop {
                match core.logs.sweep(config.job_log_retention) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "swept old job logs"),
                    Err(e) => tracing::warn!(error = %e, "cannot sweep the job logs"),
                }
                if !handle.sleep(SWEEP_EVERY) {
                    break;
                }
            });
            let stopping = handle.clone();
            let stopped = async move {
                while !stopping.is_stopped() {
                    stopping.inner.notify.notified().await;
                }
            };
            let served = runtime.block_on(async {
                match self.tls.clone() {
                    Some(acceptor) => {
                        axum::serve(TlsListener::new(listener, acceptor)?, app)
                            .with_graceful_shutdown(stopped)
                            .await
                    }
                    None => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stopped)
                            .await
                    }
                }
            });
            // However the server ended, the node's threads end with it.
            handle.stop();
            served.map_err(|source| ServiceError::Bind { address, source })
        })
    }
}

/// Says on the board, every [`HEARTBEAT_EVERY_MS`], that this node lives.
fn heartbeat(core: &Core, config: &ServiceConfig, handle: &ServiceHandle, started_at: u64) {
    loop {
        let stats = NodeStats {
            worker_pool_id: core.node_id.clone(),
            started_at,
            heartbeat_at: now_ms() / 1000,
            job_names: core.types.names(),
            concurrency: config.workers,
            status: "healthy".into(),
        };
        let entity = Entity {
            // Not the conductor's own entity (named as the node), which it
            // registers with its own metadata when it starts.
            name: format!("{NODE_MARK}:{}", core.node_id),
            meta: json!({
                NODE_MARK: true,
                "pid": std::process::id(),
                "factories": core.types.names(),
                "max_concurrent_jobs": config.workers,
                "stats": stats,
            }),
        };
        if let Err(e) = core.board.register_entity(&entity) {
            tracing::warn!(error = %e, "cannot register this node on the board");
        }
        if !handle.sleep(Duration::from_millis(HEARTBEAT_EVERY_MS)) {
            break;
        }
    }
}

impl ServiceBuilder {
    /// Registers (or replaces) the job type `name`.
    pub fn job_type(mut self, name: impl Into<String>, job_type: impl JobType) -> Self {
        self.types.insert(name, job_type);
        self
    }

    /// Adds every job type of `types`.
    pub fn job_types(mut self, types: JobTypes) -> Self {
        for name in types.names() {
            if let Some(job_type) = types.get(&name) {
                self.types.insert_shared(name, Arc::clone(job_type));
            }
        }
        self
    }

    /// The secret requests must present (default: from the environment,
    /// see [`secret_from_env`](crate::secret_from_env)).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The node, ready to [`run`](Service::run).
    pub fn build(self) -> Result<Service, ServiceError> {
        let secret = self
            .secret
            .or_else(crate::secret_from_env)
            .ok_or(ServiceError::NoSecret)?;
        if self.types.is_empty() {
            return Err(ServiceError::NoJobTypes);
        }
        let tls = match &self.config.protocol {
            Protocol::Https { cert, key } => Some(crate::tls::acceptor(cert, key)?),
            Protocol::Http => None,
        };
        let logs =
            JobLogs::open(&self.config.job_log_dir).map_err(|source| ServiceError::LogDir {
                path: self.config.job_log_dir.clone(),
                source,
            })?;
        let node_id = self
            .config
            .node_id
            .clone()
            .unwrap_or_else(Conductor::default_name);
        let hooks = Hooks::open(self.config.hooks.clone())?;
        let core = Arc::new(Core {
            board: Arc::clone(&self.board),
            records: Arc::clone(&self.records),
            types: self.types.clone(),
            logs,
            hooks,
            node_id: node_id.clone(),
        });
        let listener = JobListener {
            core: Arc::clone(&core),
        };
        let lease = self.config.lease;
        let jobs_runtime = match self.config.executor {
            JobExecutor::Serial => None,
            JobExecutor::Tokio => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("taskflow-service-jobs")
                    .build()
                    .map_err(ServiceError::Runtime)?,
            ),
        };
        let jobs_handle = jobs_runtime.as_ref().map(|r| r.handle().clone());
        let conductor =
            Conductor::builder(node_id, Arc::clone(&self.board), Arc::clone(&self.records))
                .registry(self.types.registry())
                .max_concurrent_jobs(self.config.workers)
                .renew_every(lease / 4)
                .wait_timeout(Duration::from_millis(200))
                .listener(listener)
                // Every transition, in the job's span: into the job's log.
                .configure_engine(move |engine| {
                    let engine = engine.listener(LoggingListener);
                    match &jobs_handle {
                        Some(handle) => engine.executor(Tokio::with_handle(handle.clone())),
                        None => engine,
                    }
                })
                .configure_job({
                    let core = Arc::clone(&core);
                    move |job, _claim, engine| {
                        engine.listener(CheckinHook {
                            core: Arc::clone(&core),
                            job: job.id,
                        })
                    }
                })
                .build();
        let handle = ServiceHandle {
            inner: Arc::new(HandleInner {
                stopped: AtomicBool::new(false),
                notify: Notify::new(),
                conductor: conductor.stop_handle(),
                address: OnceLock::new(),
            }),
        };
        Ok(Service {
            config: self.config,
            core,
            secret,
            handle,
            conductor,
            tls,
            _jobs_runtime: jobs_runtime.map(|r| JobsRuntime(Some(r))),
        })
    }
}

/// Writes the conductor's transitions to the jobs' logs, and runs a failed
/// job again while its type allows (Harbor's `MaxFails` / `ShouldRetry`).
struct JobListener {
    core: Arc<Core>,
}

impl taskflow::ConductorListener for JobListener {
    fn on_event(&self, event: &ConductorEvent) {
        let logs = &self.core.logs;
        let node = &self.core.node_id;
        self.log(event, logs, node);
        match event {
            ConductorEvent::Consumed { job, .. }
            | ConductorEvent::Abandoned { job, .. }
            | ConductorEvent::Skipped { job, .. }
            | ConductorEvent::Trashed { job, .. }
            | ConductorEvent::LeaseLost { job, .. } => logs.close(*job),
            _ => {}
        }
    }
}

impl JobListener {
    fn log(&self, event: &ConductorEvent, logs: &JobLogs, node: &str) {
        match event {
            ConductorEvent::Claimed { job, epoch } => {
                logs.append(*job, &format!("running on {node} (epoch {epoch})"));
                self.core.hook_status(*job);
            }
            ConductorEvent::Consumed { job, flow_state } => {
                logs.append(*job, &format!("finished on {node}: flow {flow_state}"));
                self.core.hook_status(*job);
                if matches!(flow_state, FlowState::Reverted | FlowState::Failure) {
                    self.maybe_retry(*job);
                }
            }
            ConductorEvent::Requested { job, control } => logs.append(
                *job,
                &format!("{control} request seen by {node}: suspending after the atoms in flight"),
            ),
            ConductorEvent::Abandoned { job, reason } => {
                logs.append(*job, &format!("given back by {node}: {reason}"))
            }
            ConductorEvent::Skipped { job, reason, .. } => {
                logs.append(*job, &format!("{node} cannot run it: {reason}"))
            }
            ConductorEvent::Trashed { job, reason } => {
                logs.append(*job, &format!("cannot run: {reason}"));
                self.core.hook_status(*job);
            }
            ConductorEvent::LeaseLost { job, epoch } => logs.append(
                *job,
                &format!("{node} lost its claim (epoch {epoch}): another node runs it"),
            ),
            _ => {}
        }
    }

    fn maybe_retry(&self, id: taskflow::JobId) {
        let Ok(job) = self.core.board.get(id) else {
            return;
        };
        let Some(meta) = JobMeta::of(&job) else {
            return;
        };
        let Some(job_type) = self.core.types.get(&meta.name) else {
            return;
        };
        if job.control.is_some() || !job_type.should_retry() {
            return;
        }
        // Revision n has failed n times so far (each failure reopens it).
        if job.revision > u64::from(job_type.max_fails()) {
            self.core.logs.append(
                id,
                &format!(
                    "failed {} time(s), as many as its type allows: left in error",
                    job.revision
                ),
            );
            return;
        }
        match self.core.board.reopen(id) {
            Ok(reopened) => {
                self.core.logs.append(
                    id,
                    &format!(
                        "failed; run again (revision {}, {} failure(s) allowed), from its checkpoint",
                        reopened.revision,
                        job_type.max_fails()
                    ),
                );
                self.core.hook_status(id);
            }
            Err(e) => tracing::warn!(job = %id, error = %e, "cannot run a failed job again"),
        }
    }
}

/// Sends a job's check-ins to its hook.
struct CheckinHook {
    core: Arc<Core>,
    job: taskflow::JobId,
}

impl taskflow::Listener for CheckinHook {
    fn on_checkin(&self, _atom: &str, message: &str) {
        self.core.hook_checkin(self.job, message);
    }
}
