//! The worker's side: [`Worker`] takes requests from its link, runs them on
//! a pool of threads of its own, and replies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use taskflow_patterns::Failure;
use uuid::Uuid;

use super::protocol::{kinds, Message, Payload, Request, Route, WorkerInfo};
use super::transport::{Endpoint, Link, Transport};
use crate::executor::{Action, RunShared};
use crate::listener::{Listener, Listeners};
use crate::{EngineError, ExecutorError};

/// What a worker is: its name, the task types it runs, how many at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Its name: unique among the workers of a transport (requests are
    /// routed to it by name). Letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The task types it runs, as [`Task::type_name`] gives them: the
    /// typetag names of the [`StoredTask`]s its binary links (the type's
    /// name unless `#[typetag::serde(name = "...")]` says otherwise); on an
    /// in-process transport also [`CLOSURE_TASK_TYPE`](super::CLOSURE_TASK_TYPE)
    /// for closures, or the type name of a plain task.
    ///
    /// [`Task::type_name`]: taskflow_patterns::Task::type_name
    /// [`StoredTask`]: taskflow_patterns::StoredTask
    pub task_types: Vec<String>,
    /// How many requests it runs at once (threads of its own). Default: the
    /// number of cores.
    pub concurrency: usize,
    /// How often it tells engines it is alive. Default 1 s; engines count it
    /// lost after three missed heartbeats (plus half a second).
    pub heartbeat: Duration,
    /// On a graceful stop, how long running tasks may take to finish before
    /// they are abandoned (reported `WorkerLost`). Default 30 s.
    pub stop_grace: Duration,
}

impl WorkerConfig {
    /// A worker named `name` that runs `task_types`, with default settings.
    pub fn new<I, S>(name: impl Into<String>, task_types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        WorkerConfig {
            name: name.into(),
            task_types: task_types.into_iter().map(Into::into).collect(),
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            heartbeat: Duration::from_secs(1),
            stop_grace: Duration::from_secs(30),
        }
    }

    /// Runs `n` requests at once (at least one).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Says hello this often (at least every 10 ms).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// Gives running tasks this long to finish on a graceful stop.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    fn info(&self) -> WorkerInfo {
        WorkerInfo {
            name: self.name.clone(),
            task_types: self.task_types.clone(),
            concurrency: self.concurrency,
            heartbeat_ms: u64::try_from(self.heartbeat.as_millis()).unwrap_or(u64::MAX),
            instance: Uuid::new_v4(),
        }
    }
}

/// Whether `name` can name a worker: non-empty, at most 200 characters of
/// letters, digits, `-`, `_` and `.`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// How to stop a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Graceful,
    Abort,
}

/// Stops a running [`Worker`] from another thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StopHandle {
    tx: Sender<Stop>,
}

impl StopHandle {
    /// Asks the worker to stop gracefully: it takes no more requests
    /// (requests still queued fail with `WorkerLost`), sets the cancel flag
    /// of running tasks, waits up to its `stop_grace` for them to finish and
    /// reply, says goodbye to the engines, and `run` returns. Does not wait.
    pub fn stop(&self) {
        let _ = self.tx.send(Stop::Graceful);
    }

    /// Stops the worker as if its process died: it replies to nothing more
    /// and says no goodbye (engines find it lost when its heartbeats stop),
    /// and `run` returns at once. Tasks already running finish on their
    /// threads; their results are dropped. For testing failure handling.
    pub fn abort(&self) {
        let _ = self.tx.send(Stop::Abort);
    }
}

/// A worker: runs the atoms engines send it, over a [`Transport`].
///
/// ```no_run
/// use taskflow_engine::worker::{InProcess, Worker, WorkerConfig};
///
/// let transport = InProcess::new();
/// let worker = Worker::new(&transport, WorkerConfig::new("w1", ["CreateVolume"]))?;
/// let stop = worker.stop_handle();
/// std::thread::spawn(move || stop.stop());
/// worker.run()?; // blocks until stopped
/// # Ok::<(), taskflow_engine::EngineError>(())
/// ```
pub struct Worker {
    link: Arc<dyn Link>,
    config: WorkerConfig,
    stop_tx: Sender<Stop>,
    stop_rx: Receiver<Stop>,
}

impl Worker {
    /// Connects a worker to `transport`. Fails (`EngineError::Executor`)
    /// when the name is not valid or already taken, or the transport cannot
    /// be reached.
    pub fn new(transport: &dyn Transport, mut config: WorkerConfig) -> Result<Worker, EngineError> {
        config.concurrency = config.concurrency.max(1);
        config.heartbeat = config.heartbeat.max(Duration::from_millis(10));
        if !valid_name(&config.name) {
            return Err(ExecutorError::InvalidWorkerName { name: config.name }.into());
        }
        let link = transport
            .connect(Endpoint::Worker {
                name: config.name.clone(),
            })
            .map_err(|source| ExecutorError::Transport {
                who: format!("worker `{}`", config.name),
                source,
            })?;
        let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
        Ok(Worker {
            link: Arc::from(link),
            config,
            stop_tx,
            stop_rx,
        })
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// A handle that stops it from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            tx: self.stop_tx.clone(),
        }
    }

    /// Runs on a thread of its own; the handle stops it.
    pub fn spawn(self) -> Result<WorkerHandle, EngineError> {
        let stop = self.stop_handle();
        let name = self.config.name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("taskflow-worker-{name}"))
            .spawn(move || self.run())
            .map_err(|source| ExecutorError::WorkerThreads {
                worker: name.clone(),
                source,
            })?;
        Ok(WorkerHandle {
            name,
            stop,
            thread: Some(thread),
        })
    }

    /// Serves requests until stopped (returns `Ok`) or until the transport
    /// is lost (returns `EngineError::Executor` saying so).
    pub fn run(self) -> Result<(), EngineError> {
        let Worker {
            link,
            config,
            stop_rx,
            stop_tx: _,
        } = self;
        let shared = Arc::new(Shared {
            link,
            name: config.name.clone(),
            alive: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            jobs: Mutex::new(HashMap::new()),
        });
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
        let mut threads = Vec::with_capacity(config.concurrency);
        for i in 0..config.concurrency {
            let (pool_shared, job_rx, done_tx) = (shared.clone(), job_rx.clone(), done_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("taskflow-worker-{}-{i}", config.name))
                .spawn(move || pool_thread(&pool_shared, &job_rx, &done_tx));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    shared.link.close();
                    return Err(ExecutorError::WorkerThreads {
                        worker: config.name.clone(),
                        source: e,
                    }
                    .into());
                }
            }
        }
        drop(done_tx);
        let info = config.info();
        let mut session = Session {
            shared: &shared,
            info: &info,
            job_tx: Some(job_tx),
            next_hello: Instant::now(),
            drain_until: None,
        };
        let result = session.serve(&stop_rx, &done_rx, config.heartbeat, config.stop_grace);
        drop(session);
        // Threads still busy with tasks that ignore the cancel flag are left
        // to finish on their own; their results are dropped.
        for t in threads {
            if t.is_finished() {
                let _ = t.join();
            }
        }
        shared.link.close();
        result
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A worker running on a thread of its own ([`Worker::spawn`]). Dropping
/// the handle asks the worker to stop gracefully without waiting for it.
#[derive(Debug)]
pub struct WorkerHandle {
    name: String,
    stop: StopHandle,
    thread: Option<JoinHandle<Result<(), EngineError>>>,
}

impl WorkerHandle {
    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle that stops it from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops the worker gracefully (see [`StopHandle::stop`]) and waits for
    /// it; returns how its run ended.
    pub fn stop(mut self) -> Result<(), EngineError> {
        self.stop.stop();
        self.join()
    }

    /// Stops the worker as if its process died (see [`StopHandle::abort`])
    /// and waits for its loop to end.
    pub fn abort(mut self) {
        self.stop.abort();
        let _ = self.join();
    }

    fn join(&mut self) -> Result<(), EngineError> {
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| {
                Err(ExecutorError::WorkerPanicked {
                    worker: self.name.clone(),
                }
                .into())
            }),
            None => Ok(()),
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.stop();
        }
    }
}

/// What the worker's threads share.
struct Shared {
    link: Arc<dyn Link>,
    name: String,
    /// Cleared by an abort: nothing more is sent.
    alive: AtomicBool,
    /// Set by a graceful stop: queued requests are refused.
    stopping: AtomicBool,
    /// Requests accepted and not finished (queued or running).
    jobs: Mutex<HashMap<Uuid, Held>>,
}

/// A request the worker holds.
struct Held {
    cancel: Arc<AtomicBool>,
    reply_to: String,
    atom: String,
    action: Action,
    task_type: String,
}

impl Held {
    fn of(request: &Request, cancel: Arc<AtomicBool>) -> Held {
        Held {
            cancel,
            reply_to: request.reply_to.clone(),
            atom: request.atom.clone(),
            action: request.action,
            task_type: request.task_type.clone(),
        }
    }
}

impl Shared {
    fn jobs(&self) -> MutexGuard<'_, HashMap<Uuid, Held>> {
        crate::sync::lock(&self.jobs)
    }

    fn send(&self, to: &Route, message: Message) {
        if !self.alive.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = self.link.send(to, message) {
            tracing::warn!(worker = %self.name, "cannot send: {e}");
        }
    }

    /// Replies to a request once: whoever takes it from `jobs` replies.
    /// The reply is sent before the lock on `jobs` is released, so a
    /// stopping worker that sees no job left says `Bye` only after it:
    /// the engine never hears `Bye` before the last `Done`.
    fn reply(&self, id: Uuid, reply_to: &str, result: Result<serde_json::Value, Failure>) {
        let mut jobs = self.jobs();
        if jobs.remove(&id).is_none() {
            return;
        }
        self.send(
            &Route::Engine(reply_to.to_owned()),
            Message::Done { id, result },
        );
        drop(jobs);
    }

    fn lost(&self, held: &Held, what: &str) -> Failure {
        Failure::new(
            kinds::WORKER_LOST,
            format!(
                "atom `{}` ({} of task type `{}`): worker `{}` {what}",
                held.atom,
                match held.action {
                    Action::Execute => "execute",
                    Action::Revert => "revert",
                },
                held.task_type,
                self.name
            ),
        )
        .with_atom(&held.atom)
    }
}

/// A request accepted by the worker.
struct Job {
    request: Request,
    cancel: Arc<AtomicBool>,
}

/// The worker's main loop: messages, heartbeats, stopping.
struct Session<'a> {
    shared: &'a Arc<Shared>,
    info: &'a WorkerInfo,
    job_tx: Option<Sender<Job>>,
    next_hello: Instant,
    drain_until: Option<Instant>,
}

impl Session<'_> {
    fn serve(
        &mut self,
        stop_rx: &Receiver<Stop>,
        done_rx: &Receiver<()>,
        heartbeat: Duration,
        grace: Duration,
    ) -> Result<(), EngineError> {
        let shared = self.shared;
        loop {
            let now = Instant::now();
            if now >= self.next_hello {
                shared.send(&Route::Engines, Message::Hello(self.info.clone()));
                self.next_hello = now + heartbeat;
            }
            if let Some(until) = self.drain_until {
                if shared.jobs().is_empty() {
                    break;
                }
                if now >= until {
                    self.abandon();
                    break;
                }
            }
            let wake = match self.drain_until {
                Some(until) => self.next_hello.min(until),
                None => self.next_hello,
            };
            crossbeam_channel::select! {
                recv(shared.link.incoming().receiver()) -> incoming => match incoming {
                    Ok(Ok(message)) => self.handle(message),
                    Ok(Err(e)) => return Err(self.lost(&e.to_string())),
                    Err(_) => return Err(self.lost("its link closed")),
                },
                recv(stop_rx) -> stop => match stop {
                    Ok(Stop::Graceful) | Err(_) => {
                        if self.drain_until.is_none() {
                            tracing::info!(worker = %shared.name, "stopping");
                            shared.stopping.store(true, Ordering::Release);
                            for held in shared.jobs().values() {
                                held.cancel.store(true, Ordering::Release);
                            }
                            self.job_tx = None;
                            self.drain_until = Some(Instant::now() + grace);
                        }
                    }
                    Ok(Stop::Abort) => {
                        tracing::info!(worker = %shared.name, "aborting");
                        shared.alive.store(false, Ordering::Release);
                        self.cancel_all();
                        shared.link.close();
                        return Ok(());
                    }
                },
                recv(done_rx) -> _ => {}
                default(wake.saturating_duration_since(Instant::now())) => {}
            }
        }
        shared.send(
            &Route::Engines,
            Message::Bye {
                worker: shared.name.clone(),
            },
        );
        shared.alive.store(false, Ordering::Release);
        tracing::info!(worker = %shared.name, "stopped");
        Ok(())
    }

    fn lost(&self, why: &str) -> EngineError {
        self.shared.alive.store(false, Ordering::Release);
        self.cancel_all();
        ExecutorError::WorkerLost {
            worker: self.shared.name.clone(),
            why: why.to_owned(),
        }
        .into()
    }

    fn cancel_all(&self) {
        for held in self.shared.jobs().values() {
            held.cancel.store(true, Ordering::Release);
        }
    }

    /// Tasks still running after the grace period: reported lost.
    fn abandon(&self) {
        let left: Vec<(Uuid, String, Failure)> = self
            .shared
            .jobs()
            .iter()
            .map(|(id, held)| {
                let failure = self.shared.lost(
                    held,
                    "stopped; the request was abandoned after the stop grace period",
                );
                (*id, held.reply_to.clone(), failure)
            })
            .collect();
        for (id, reply_to, failure) in left {
            self.shared.reply(id, &reply_to, Err(failure));
        }
    }

    fn handle(&mut self, message: Message) {
        let shared = self.shared;
        match message {
            Message::Request(request) => {
                let (id, reply_to) = (request.id, request.reply_to.clone());
                if !self.info.task_types.contains(&request.task_type) {
                    let failure = Failure::new(
                        kinds::UNKNOWN_TASK_TYPE,
                        format!(
                            "atom `{}`: worker `{}` does not run task type `{}` (it runs {:?})",
                            request.atom, shared.name, request.task_type, self.info.task_types
                        ),
                    )
                    .with_atom(&request.atom);
                    shared.send(
                        &Route::Engine(reply_to),
                        Message::Done {
                            id,
                            result: Err(failure),
                        },
                    );
                    return;
                }
                let cancel = Arc::new(AtomicBool::new(false));
                let held = Held::of(&request, cancel.clone());
                let Some(job_tx) = &self.job_tx else {
                    let failure = shared.lost(&held, "is stopping and did not run it");
                    shared.send(
                        &Route::Engine(reply_to),
                        Message::Done {
                            id,
                            result: Err(failure),
                        },
                    );
                    return;
                };
                shared.jobs().insert(id, held);
                let _ = job_tx.send(Job { request, cancel });
            }
            Message::Cancel { id } => {
                if let Some(held) = shared.jobs().get(&id) {
                    held.cancel.store(true, Ordering::Release);
                }
            }
            Message::Discover { reply_to } => {
                shared.send(&Route::Engine(reply_to), Message::Hello(self.info.clone()));
            }
            Message::Progress { .. }
            | Message::CheckIn { .. }
            | Message::Done { .. }
            | Message::Hello(_)
            | Message::Bye { .. } => {
                tracing::debug!(worker = %shared.name, "ignoring a message meant for engines");
            }
        }
    }
}

/// Runs jobs until the job channel closes.
fn pool_thread(shared: &Arc<Shared>, jobs: &Receiver<Job>, done: &Sender<()>) {
    while let Ok(job) = jobs.recv() {
        run_job(shared, job);
        // Only a stopping worker's loop waits for its jobs to end: waking
        // it after every job cost a thread wake-up per request. The job
        // left `jobs` under its lock before `stopping` is read here, and
        // the loop sets `stopping` before it looks at `jobs` under the
        // same lock, so either it sees this job gone or it is woken.
        if shared.stopping.load(Ordering::Acquire) {
            let _ = done.send(());
        }
    }
}

fn run_job(shared: &Arc<Shared>, job: Job) {
    let Job { request, cancel } = job;
    let (id, reply_to) = (request.id, request.reply_to.clone());
    if cancel.load(Ordering::Acquire) {
        // The engine gave up on it (or the worker is stopping) before it
        // started.
        if shared.stopping.load(Ordering::Acquire) {
            let failure = shared.lost(
                &Held::of(&request, cancel.clone()),
                "stopped before running it",
            );
            shared.reply(id, &reply_to, Err(failure));
        } else {
            shared.jobs().remove(&id);
        }
        return;
    }
    let listeners = if request.progress {
        Listeners::new(vec![Arc::new(ForwardProgress {
            shared: shared.clone(),
            id,
            reply_to: Route::Engine(reply_to.clone()),
        })])
    } else {
        Listeners::default()
    };
    let work = match request.payload {
        Payload::Work(mut work) => {
            work.shared = RunShared::without_span(listeners, cancel);
            *work
        }
        Payload::Data(data) => {
            match data.into_work(&request.atom, request.action, listeners, cancel) {
                Ok(work) => work,
                Err(e) => {
                    let failure = Failure::new(
                        kinds::BAD_REQUEST,
                        format!(
                            "atom `{}`: worker `{}` cannot rebuild a task of type `{}`: {e}",
                            request.atom, shared.name, request.task_type
                        ),
                    )
                    .with_atom(&request.atom);
                    shared.reply(id, &reply_to, Err(failure));
                    return;
                }
            }
        }
    };
    // The engine keeps the atom's timeout (it sends a cancel past it), so
    // the work here has no timer of its own and always ends in an outcome.
    if let Some(outcome) = work.run() {
        shared.reply(id, &reply_to, outcome.result);
    }
}

/// Sends a task's progress reports and check-ins to the engine that asked
/// for them.
struct ForwardProgress {
    shared: Arc<Shared>,
    id: Uuid,
    reply_to: Route,
}

impl Listener for ForwardProgress {
    fn on_progress(&self, _atom: &str, progress: f32) {
        self.shared.send(
            &self.reply_to,
            Message::Progress {
                id: self.id,
                progress,
            },
        );
    }

    fn on_checkin(&self, _atom: &str, message: &str) {
        self.shared.send(
            &self.reply_to,
            Message::CheckIn {
                id: self.id,
                message: message.to_owned(),
            },
        );
    }
}
