//! The engine's side: [`WorkerExecutor`] sends atoms' work to workers and
//! turns their replies, silences and the transport's failures into
//! outcomes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use taskflow_patterns::{AtomImpl, AtomIndex, Failure, Name, Value};
use uuid::Uuid;

use super::protocol::{kinds, Message, Payload, Request, Route, WorkData, WorkerInfo};
use super::transport::{Endpoint, Link, Transport, TransportError};
use crate::executor::{Action, AtomOutcome, AtomWork, Executor};
use crate::listener::Listeners;
use crate::{EngineError, ExecutorError};

/// How the worker engine waits for workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// How long one request (an atom's execute or revert) may take, from
    /// submission to result, before it fails with `Timeout` and the worker is
    /// asked to cancel it. Default 60 s.
    pub timeout: Duration,
    /// How long a request waits for a worker that advertises its task type
    /// before it fails with `UnknownTaskType` (workers announce themselves
    /// when they start and when an engine connects). Default 5 s.
    pub discovery_timeout: Duration,
    /// How many requests beyond its concurrency the engine may send a
    /// worker ahead of time, to wait there for a free thread. With short
    /// tasks this hides the trip to the broker and back between one
    /// request and the next (W2 on RabbitMQ on loopback, two workers of
    /// two threads: about 6,000 atoms/s with 2, 10,000 with 8 and 11,000
    /// with 32; see the README's W11);
    /// with long ones it lets a request wait behind a busy worker while
    /// another that joins later is free. A request waiting in a worker is
    /// held by it as a running one is: lost with it (`WorkerLost`), failed
    /// on its graceful stop (so a retry may go elsewhere), timed from its
    /// submission. Default 2; 0 sends a worker no more than it runs at
    /// once.
    pub prefetch: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            timeout: Duration::from_secs(60),
            discovery_timeout: Duration::from_secs(5),
            prefetch: 2,
        }
    }
}

impl WorkerOptions {
    /// The default options with this request timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        WorkerOptions {
            timeout,
            ..WorkerOptions::default()
        }
    }
}

/// How often the executor looks at its clocks (liveness, cancel flags) while
/// work is in flight and nothing arrives.
const SCAN_EVERY: Duration = Duration::from_millis(50);
/// Slack added to three missed heartbeats before a worker counts as lost.
const LOST_SLACK: Duration = Duration::from_millis(500);
/// At most this many messages are handled by one `try_outcome`.
const TRY_BATCH: usize = 256;

/// The worker engine's executor: tasks run on worker processes reached
/// over a [`Transport`]; retry controllers run here, in the engine's
/// process (as TaskFlow does).
///
/// Each request ends in exactly one outcome: the worker's result or
/// failure, or a failure the executor makes when the answer cannot come
/// (kinds in [`kinds`]): `Timeout`, `WorkerLost`, `UnknownTaskType`,
/// `NotSerializable`, `TransportLost`. The runtime handles them as any
/// other failure: retry controllers decide, executed atoms revert.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use taskflow_engine::worker::{
///     InProcess, Worker, WorkerConfig, WorkerExecutor, WorkerOptions, CLOSURE_TASK_TYPE,
/// };
/// use taskflow_engine::Engine;
/// use taskflow_patterns::{atom, task_fn, Linear};
///
/// let transport = InProcess::new();
/// let worker = Worker::new(&transport, WorkerConfig::new("w1", [CLOSURE_TASK_TYPE]))?.spawn()?;
/// let executor = WorkerExecutor::new(&transport, WorkerOptions::with_timeout(Duration::from_secs(5)))?;
/// let flow = Linear::new("f").add(atom("a", task_fn(|_| Ok(json!(1)))));
/// Engine::builder(flow).executor(executor).build()?.run()?;
/// worker.stop()?;
/// # Ok::<(), taskflow_engine::EngineError>(())
/// ```
pub struct WorkerExecutor {
    link: Box<dyn Link>,
    options: WorkerOptions,
    /// Workers heard from, by name (ordered, so choices are reproducible).
    workers: BTreeMap<String, Known>,
    /// Requests without an outcome yet.
    pending: HashMap<Uuid, Pending>,
    /// Requests waiting for a worker that runs their type, oldest first.
    unrouted: VecDeque<Uuid>,
    /// Outcomes ready to hand out.
    ready: VecDeque<AtomOutcome>,
    /// Set once the transport is lost: every later request fails at once.
    lost: Option<String>,
    next_scan: Instant,
    turn: usize,
    /// A worker got room, or a new one came: look at the waiting requests.
    reroute: bool,
}

/// Where a request can go now.
enum Pick {
    Worker(String),
    /// Workers run its type, but none has room.
    Busy,
    /// No known worker runs its type.
    NoWorker,
}

struct Known {
    info: WorkerInfo,
    last_seen: Instant,
    in_flight: usize,
}

impl Known {
    fn lost_after(&self) -> Duration {
        Duration::from_millis(self.info.heartbeat_ms.saturating_mul(3)) + LOST_SLACK
    }

    fn runs(&self, task_type: &str) -> bool {
        self.info.task_types.iter().any(|t| t == task_type)
    }

    /// How many of this engine's requests it may hold at once: its
    /// concurrency, plus `prefetch` waiting for a thread.
    fn capacity(&self, prefetch: usize) -> usize {
        self.info.concurrency.max(1).saturating_add(prefetch)
    }
}

struct Pending {
    atom: AtomIndex,
    name: Name,
    action: Action,
    task_type: String,
    listeners: Listeners,
    /// The atom detail the task's check-ins (and, for an execute, its
    /// progress), as the worker reports them, are recorded in.
    detail: Option<taskflow_persistence::AtomDetailId>,
    cancel: Arc<AtomicBool>,
    deadline: Instant,
    /// How long it may take: the request timeout, or the atom's own
    /// (`Atom::timeout`) when shorter.
    limit: Duration,
    /// Until when it may wait for a worker of its type.
    discovery_deadline: Instant,
    /// The worker it was sent to.
    worker: Option<String>,
    /// The request, while it waits for a worker.
    request: Option<Request>,
    cancel_sent: bool,
}

impl Pending {
    fn failure(&self, kind: &str, what: impl std::fmt::Display) -> Failure {
        Failure::new(
            kind,
            format!(
                "atom `{}` ({} of task type `{}`): {what}",
                self.name,
                action_word(self.action),
                self.task_type
            ),
        )
        .with_atom(&*self.name)
    }
}

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Execute => "execute",
        Action::Revert => "revert",
    }
}

impl WorkerExecutor {
    /// Connects to `transport` as an engine and asks the workers to
    /// announce themselves. Fails (`EngineError::Executor`) when the
    /// transport cannot be reached, saying why.
    pub fn new(transport: &dyn Transport, options: WorkerOptions) -> Result<Self, EngineError> {
        let link =
            transport
                .connect(Endpoint::Engine)
                .map_err(|source| ExecutorError::Transport {
                    who: "worker executor".into(),
                    source,
                })?;
        WorkerExecutor::with_link(link, options)
    }

    /// Uses a link already connected as an engine.
    pub fn with_link(link: Box<dyn Link>, options: WorkerOptions) -> Result<Self, EngineError> {
        let discover = Message::Discover {
            reply_to: link.address().to_owned(),
        };
        link.send(&Route::Workers, discover)
            .map_err(|source| ExecutorError::Transport {
                who: "worker executor, reaching the workers".into(),
                source,
            })?;
        Ok(WorkerExecutor {
            link,
            options,
            workers: BTreeMap::new(),
            pending: HashMap::new(),
            unrouted: VecDeque::new(),
            ready: VecDeque::new(),
            lost: None,
            next_scan: Instant::now() + SCAN_EVERY,
            turn: 0,
            reroute: false,
        })
    }

    /// The options in force.
    pub fn options(&self) -> &WorkerOptions {
        &self.options
    }

    /// The workers heard from and not lost, with what they advertise.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.workers.values().map(|k| k.info.clone()).collect()
    }

    /// How many requests have no outcome yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Waits until at least `count` live workers have said hello, or until
    /// `timeout` has passed; returns how many are known then. Requests
    /// never need this (one waits for a worker of its type by itself, up to
    /// [`WorkerOptions::discovery_timeout`]); it is for a caller that wants
    /// its first requests spread over every worker it started.
    pub fn wait_for_workers(&mut self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.workers.len() < count && self.lost.is_none() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            self.pump(Some(deadline));
        }
        self.workers.len()
    }

    fn fail_now(&mut self, work: &AtomWork, kind: &str, task_type: &str, what: String) {
        self.ready.push_back(AtomOutcome {
            atom: work.atom,
            action: work.action,
            result: Err(Failure::new(
                kind,
                format!(
                    "atom `{}` ({} of task type `{task_type}`): {what}",
                    work.name,
                    action_word(work.action)
                ),
            )
            .with_atom(&*work.name)),
        });
    }

    /// Ends a request with this result.
    fn finish(&mut self, id: Uuid, result: Result<Value, Failure>) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        if let Some(worker) = pending
            .worker
            .as_ref()
            .and_then(|w| self.workers.get_mut(w))
        {
            worker.in_flight = worker.in_flight.saturating_sub(1);
            self.reroute = true;
        }
        // A request that ends while it waits for a worker stays in
        // `unrouted` until `route_waiting` reaches it and finds it gone
        // (ids are not reused): removing it here would cost a scan of the
        // waiting requests per outcome.
        let result = result.map_err(|f| {
            if f.atom.is_some() {
                f
            } else {
                f.with_atom(&*pending.name)
            }
        });
        self.ready.push_back(AtomOutcome {
            atom: pending.atom,
            action: pending.action,
            result,
        });
    }

    /// Ends a request with a failure the executor makes.
    fn fail(&mut self, id: Uuid, kind: &str, what: impl std::fmt::Display) {
        if let Some(pending) = self.pending.get(&id) {
            let failure = pending.failure(kind, what);
            self.finish(id, Err(failure));
        }
    }

    /// The live worker that runs `task_type` and has room (fewer of this
    /// engine's requests in flight than its concurrency), the least loaded
    /// for its size; ties go round.
    fn pick(&mut self, task_type: &str) -> Pick {
        let prefetch = self.options.prefetch;
        let n = self.workers.len();
        if n == 0 {
            return Pick::NoWorker;
        }
        self.turn = self.turn.wrapping_add(1);
        let start = self.turn % n;
        let mut runs = false;
        let mut best: Option<(&String, &Known)> = None;
        for (name, known) in self.workers.iter().cycle().skip(start).take(n) {
            if !known.runs(task_type) {
                continue;
            }
            runs = true;
            if known.in_flight >= known.capacity(prefetch) {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) => {
                    known.in_flight * b.capacity(prefetch) < b.in_flight * known.capacity(prefetch)
                }
            };
            if better {
                best = Some((name, known));
            }
        }
        match best {
            Some((name, _)) => Pick::Worker(name.clone()),
            None if runs => Pick::Busy,
            None => Pick::NoWorker,
        }
    }

    /// Sends a pending request to a worker that runs its type and has room;
    /// false when it has to wait.
    fn route(&mut self, id: Uuid) -> bool {
        let Some(task_type) = self.pending.get(&id).map(|p| p.task_type.clone()) else {
            return true;
        };
        let Pick::Worker(worker) = self.pick(&task_type) else {
            return false;
        };
        let Some(request) = self.pending.get_mut(&id).and_then(|p| p.request.take()) else {
            return true;
        };
        match self
            .link
            .send(&Route::Worker(worker.clone()), Message::Request(request))
        {
            Ok(()) => {
                if let Some(p) = self.pending.get_mut(&id) {
                    p.worker = Some(worker.clone());
                }
                if let Some(k) = self.workers.get_mut(&worker) {
                    k.in_flight += 1;
                }
            }
            Err(TransportError::NotSerializable(e)) => {
                self.fail(
                    id,
                    kinds::NOT_SERIALIZABLE,
                    format_args!("cannot be sent to a worker: {e}"),
                );
            }
            Err(e) => {
                self.fail(
                    id,
                    kinds::TRANSPORT_LOST,
                    format_args!("cannot be sent to worker `{worker}`: {e}"),
                );
            }
        }
        true
    }

    /// Sends the waiting requests that can go now, oldest first. Stops as
    /// soon as no worker has room, so an outcome that frees one slot costs
    /// one look at the queue, not a pass over every waiting request.
    fn route_waiting(&mut self) {
        self.reroute = false;
        let mut skipped = Vec::new();
        while self.has_room() {
            let Some(id) = self.unrouted.pop_front() else {
                break;
            };
            if !self.pending.contains_key(&id) {
                continue;
            }
            if !self.route(id) {
                // Its type's workers are full, or none runs it: others
                // may still take the requests behind it.
                skipped.push(id);
            }
        }
        for id in skipped.into_iter().rev() {
            self.unrouted.push_front(id);
        }
    }

    /// Whether some worker may take one more request.
    fn has_room(&self) -> bool {
        let prefetch = self.options.prefetch;
        self.workers
            .values()
            .any(|k| k.in_flight < k.capacity(prefetch))
    }

    /// Whether some known worker runs `task_type` (busy or not).
    fn runs(&self, task_type: &str) -> bool {
        self.workers.values().any(|k| k.runs(task_type))
    }

    fn send_cancel(&mut self, id: Uuid) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        if pending.cancel_sent {
            return;
        }
        pending.cancel_sent = true;
        if let Some(worker) = pending.worker.clone() {
            // Best effort: the worker may be gone.
            let _ = self
                .link
                .send(&Route::Worker(worker), Message::Cancel { id });
        }
    }

    /// Fails everything in flight: the transport is gone.
    fn lose(&mut self, reason: String) {
        tracing::warn!(reason, "worker executor: transport lost");
        let ids: Vec<Uuid> = self.pending.keys().copied().collect();
        for id in ids {
            self.fail(
                id,
                kinds::TRANSPORT_LOST,
                format_args!("the transport to the workers was lost: {reason}"),
            );
        }
        self.lost = Some(reason);
        self.workers.clear();
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Hello(info) => {
                let now = Instant::now();
                let name = info.name.clone();
                let restarted = match self.workers.get_mut(&name) {
                    Some(known) => {
                        let restarted = known.info.instance != info.instance;
                        known.info = info;
                        known.last_seen = now;
                        restarted
                    }
                    None => {
                        tracing::debug!(worker = %name, types = ?info.task_types, "worker joined");
                        self.workers.insert(
                            name.clone(),
                            Known {
                                info,
                                last_seen: now,
                                in_flight: 0,
                            },
                        );
                        self.reroute = true;
                        false
                    }
                };
                if restarted {
                    // A new run of the worker: what the last one held is lost.
                    self.fail_held_by(&name, "restarted before finishing it");
                }
            }
            Message::Bye { worker } => {
                self.workers.remove(&worker);
                self.fail_held_by(&worker, "stopped before finishing it");
            }
            Message::Progress { id, progress } => {
                if let Some(pending) = self.pending.get(&id) {
                    let detail = pending.detail.filter(|_| pending.action == Action::Execute);
                    pending.listeners.report(detail, &pending.name, progress);
                    let worker = pending.worker.clone();
                    self.seen(worker.as_deref());
                }
            }
            Message::CheckIn { id, message } => {
                if let Some(pending) = self.pending.get(&id) {
                    pending
                        .listeners
                        .check_in(pending.detail, &pending.name, &message);
                    let worker = pending.worker.clone();
                    self.seen(worker.as_deref());
                }
            }
            Message::Done { id, result } => {
                let worker = self.pending.get(&id).and_then(|p| p.worker.clone());
                self.seen(worker.as_deref());
                self.finish(id, result);
            }
            Message::Request(_) | Message::Cancel { .. } | Message::Discover { .. } => {
                tracing::debug!("worker executor: ignoring a message meant for workers");
            }
        }
    }

    fn seen(&mut self, worker: Option<&str>) {
        if let Some(known) = worker.and_then(|w| self.workers.get_mut(w)) {
            known.last_seen = Instant::now();
        }
    }

    fn fail_held_by(&mut self, worker: &str, what: &str) {
        let held: Vec<Uuid> = self
            .pending
            .iter()
            .filter(|(_, p)| p.worker.as_deref() == Some(worker))
            .map(|(id, _)| *id)
            .collect();
        for id in held {
            self.fail(
                id,
                kinds::WORKER_LOST,
                format_args!("worker `{worker}` {what}"),
            );
        }
    }

    /// Looks at the clocks: timeouts, discovery, lost workers, cancel flags.
    fn scan(&mut self) {
        let now = Instant::now();
        if now < self.next_scan {
            return;
        }
        let lost: Vec<(String, Duration)> = self
            .workers
            .iter()
            .filter(|(_, k)| now.duration_since(k.last_seen) > k.lost_after())
            .map(|(name, k)| (name.clone(), k.lost_after()))
            .collect();
        for (worker, after) in lost {
            tracing::warn!(worker, "worker lost: no heartbeat for {after:?}");
            self.workers.remove(&worker);
            self.fail_held_by(
                &worker,
                &format!("stopped answering (nothing heard for {after:?}) before finishing it"),
            );
        }
        let mut timed_out = Vec::new();
        let mut unknown = Vec::new();
        let mut cancelled = Vec::new();
        let mut next = now + SCAN_EVERY;
        for (id, p) in &self.pending {
            if now >= p.deadline {
                timed_out.push(*id);
            } else if p.request.is_some() && now >= p.discovery_deadline && !self.runs(&p.task_type)
            {
                unknown.push(*id);
            } else {
                next = next.min(p.deadline);
                if p.request.is_some() && p.discovery_deadline > now {
                    next = next.min(p.discovery_deadline);
                }
                if !p.cancel_sent && p.worker.is_some() && p.cancel.load(Ordering::Relaxed) {
                    cancelled.push(*id);
                }
            }
        }
        for id in timed_out {
            let what = match self.pending.get(&id) {
                Some(p) => match &p.worker {
                    Some(w) => format!(
                        "no result from worker `{w}` within {:?}; the worker was asked to cancel it",
                        p.limit
                    ),
                    None => format!(
                        "not sent to any worker within {:?} (the workers that run its type \
                         were all busy)",
                        p.limit
                    ),
                },
                None => continue,
            };
            self.send_cancel(id);
            self.fail(id, kinds::TIMEOUT, what);
        }
        for id in unknown {
            let known = if self.workers.is_empty() {
                "no worker is known".to_owned()
            } else {
                let list: Vec<String> = self
                    .workers
                    .values()
                    .map(|k| format!("`{}` runs {:?}", k.info.name, k.info.task_types))
                    .collect();
                list.join(", ")
            };
            let waited = self.options.discovery_timeout;
            self.fail(
                id,
                kinds::UNKNOWN_TASK_TYPE,
                format_args!("no worker advertises this task type (waited {waited:?}; {known})"),
            );
        }
        for id in cancelled {
            self.send_cancel(id);
        }
        self.next_scan = next;
        if self.reroute {
            self.route_waiting();
        }
    }

    /// Receives one message, waiting until `deadline` at most.
    fn pump(&mut self, deadline: Option<Instant>) {
        let received = match deadline {
            Some(deadline) => self.link.incoming().receiver().recv_deadline(deadline),
            None => self
                .link
                .incoming()
                .receiver()
                .try_recv()
                .map_err(|e| match e {
                    crossbeam_channel::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    crossbeam_channel::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                }),
        };
        match received {
            Ok(Ok(message)) => {
                self.handle(message);
                if self.reroute {
                    self.route_waiting();
                }
            }
            Ok(Err(e)) => self.lose(e.to_string()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                self.lose("the link to the transport closed".to_owned());
            }
        }
    }
}

impl Executor for WorkerExecutor {
    fn submit(&mut self, work: AtomWork) {
        let task_type = match &work.imp {
            AtomImpl::Retry(_) => {
                // Retry controllers decide in the engine's process.
                let outcome = match work.timeout_handle() {
                    Some(handle) => Some(super::super::run_with_timeout(work, &handle)),
                    None => work.run(),
                };
                self.ready.extend(outcome);
                return;
            }
            AtomImpl::Task(task) => task.type_name().to_owned(),
        };
        if let Some(reason) = self.lost.clone() {
            self.fail_now(
                &work,
                kinds::TRANSPORT_LOST,
                &task_type,
                format!("the transport to the workers was lost: {reason}"),
            );
            return;
        }
        let id = Uuid::new_v4();
        let payload = if self.link.carries_work() {
            None
        } else {
            match WorkData::from_work(&work) {
                Ok(data) => Some(Payload::Data(Box::new(data))),
                Err(e) => {
                    self.fail_now(
                        &work,
                        kinds::NOT_SERIALIZABLE,
                        &task_type,
                        format!("cannot be sent to a worker: {e}"),
                    );
                    return;
                }
            }
        };
        let now = Instant::now();
        let limit = work
            .timeout()
            .map_or(self.options.timeout, |t| t.min(self.options.timeout));
        // The timeout is kept here (a cancel is sent past it): the work
        // travels without its timer.
        let mut work = work;
        work.timer = None;
        let deadline = now + limit;
        let pending = Pending {
            atom: work.atom,
            name: work.name.clone(),
            action: work.action,
            task_type: task_type.clone(),
            listeners: work.shared.listeners.clone(),
            detail: work.detail,
            cancel: work.shared.cancel.clone(),
            deadline,
            limit,
            discovery_deadline: now + self.options.discovery_timeout,
            worker: None,
            request: None,
            cancel_sent: false,
        };
        let request = Request {
            id,
            reply_to: self.link.address().to_owned(),
            atom: work.name.to_string(),
            task_type,
            action: work.action,
            progress: work.shared.listeners.hears_progress() && work.detail.is_some()
                || !work.shared.listeners.is_empty(),
            payload: match payload {
                Some(payload) => payload,
                None => Payload::Work(Box::new(work)),
            },
        };
        self.pending.insert(
            id,
            Pending {
                request: Some(request),
                ..pending
            },
        );
        self.next_scan = self.next_scan.min(deadline);
        if !self.route(id) {
            self.unrouted.push_back(id);
            let discovery = self.pending.get(&id).map(|p| p.discovery_deadline);
            if let Some(at) = discovery {
                self.next_scan = self.next_scan.min(at);
            }
        }
    }

    fn try_outcome(&mut self) -> Option<AtomOutcome> {
        if self.ready.is_empty() && !self.pending.is_empty() {
            for _ in 0..TRY_BATCH {
                if self.link.incoming().receiver().is_empty() {
                    break;
                }
                self.pump(None);
            }
            self.scan();
        }
        self.ready.pop_front()
    }

    fn wait_outcome(&mut self) -> Option<AtomOutcome> {
        loop {
            if let Some(outcome) = self.ready.pop_front() {
                return Some(outcome);
            }
            if self.pending.is_empty() {
                return None;
            }
            self.scan();
            if !self.ready.is_empty() {
                continue;
            }
            let wake = self.next_scan.max(Instant::now());
            self.pump(Some(wake));
        }
    }
}

impl Drop for WorkerExecutor {
    fn drop(&mut self) {
        let ids: Vec<Uuid> = self.pending.keys().copied().collect();
        for id in ids {
            self.send_cancel(id);
        }
        self.link.close();
    }
}

impl std::fmt::Debug for WorkerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerExecutor")
            .field("address", &self.link.address())
            .field("options", &self.options)
            .field("workers", &self.workers.keys().collect::<Vec<_>>())
            .field("in_flight", &self.pending.len())
            .field("lost", &self.lost)
            .finish()
    }
}
