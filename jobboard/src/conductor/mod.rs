//! Conductors: claim jobs, run their flows, keep the claims alive.
//!
//! The loop: wait for a claimable job, claim it (a new epoch), rebuild its
//! flow from its records (a stored definition or a registered factory),
//! build an engine that writes at the claim's epoch, run it while the
//! conductor's lease keeper extends the lease, then:
//!
//! | the run | the job |
//! | --- | --- |
//! | flow `SUCCESS`, or a failed flow that was reverted (`REVERTED` / `FAILURE`) | consumed (the outcome is in the flow's records) |
//! | stopped because the conductor is stopping | abandoned, for another conductor |
//! | the records or the backend failed (I/O, connection) | abandoned |
//! | a flow factory or task type this conductor lacks, records it cannot find, records of another version of the flow, a flow that does not compile here, an engine that panicked | skipped: abandoned, and not claimed again by this conductor for a while (another may run it) |
//! | corrupt records (undecodable, an invalid store, no flow definition) | trashed, with the reason |
//! | the lease was lost (renewal refused, or a checkpoint fenced) | left alone: it is someone else's now |
//!
//! A job posted through a flow factory names it in its details
//! (`details.factory`, see [`post_flow`](crate::post_flow)); a conductor
//! does not claim a job whose factory it has not registered, and it
//! advertises the factories it has in its entity's meta (`factories`).
//!
//! Panics are contained: a panicking listener is dropped by the engine, a
//! panic anywhere else in a job's run stops the lease renewal and skips the
//! job, and a panicking conductor listener is logged. None stalls the
//! conductor or keeps a job claimed.
//!
//! A conductor that dies holds its claim only until the lease lapses
//! (default 1 s); another conductor then claims the job at a higher epoch
//! and resumes the flow at its last checkpoint. Should the first conductor
//! wake up (a long pause, a partition), the board refuses its claim and
//! persistence refuses its checkpoints: its run stops with `LeaseLost`.

mod events;
mod leases;

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use taskflow_engine::{Engine, EngineBuilder, EngineError, SuspendHandle};
use taskflow_patterns::{Failure, FlowRegistry, FlowState};
use taskflow_persistence::{Backend, PersistenceError};

use crate::sync::lock;
use crate::JobId;
use crate::{Claim, Control, Entity, Job, JobBoard, JobBoardError, Outcome};

pub use events::{ConductorEvent, ConductorListener};
use leases::LeaseKeeper;

/// How many listed candidates a conductor hands the board at once to
/// claim the first claimable of ([`JobBoard::claim_first`]): with several
/// conductors working down the same listing, most of a conductor's
/// candidates are taken by the time it gets to them, and each would
/// otherwise cost a round trip.
const CLAIM_BATCH: usize = 16;

type Configure = dyn Fn(EngineBuilder) -> EngineBuilder + Send + Sync;
type ConfigureJob = dyn Fn(&Job, &Claim, EngineBuilder) -> EngineBuilder + Send + Sync;

/// Runs jobs from a board: up to `max_concurrent_jobs` at once (1 by
/// default: a blocking conductor).
///
/// ```no_run
/// use std::sync::Arc;
/// use taskflow_engine::Parallel;
/// use taskflow_jobboard::{BoardOptions, Conductor, SqliteBoard};
/// use taskflow_persistence::SqliteBackend;
///
/// let board = Arc::new(SqliteBoard::open("jobs.db", BoardOptions::default())?);
/// let records = Arc::new(SqliteBackend::open("flows.db")?);
/// let conductor = Conductor::builder("conductor-1", board, records)
///     .max_concurrent_jobs(4)
///     .configure_engine(|engine| engine.executor(Parallel::new(8).expect("a pool")))
///     .build();
/// let stop = conductor.stop_handle();
/// # stop.stop();
/// conductor.run(); // until stop.stop() is called
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Conductor {
    name: String,
    board: Arc<dyn JobBoard>,
    records: Arc<dyn Backend>,
    registry: FlowRegistry,
    configure: Arc<Configure>,
    configure_job: Option<Arc<ConfigureJob>>,
    max_concurrent_jobs: usize,
    listeners: Vec<Arc<dyn ConductorListener>>,
    wait_timeout: Duration,
    renew_every: Duration,
    purge_every: Duration,
    orphan_grace: Duration,
    stop: StopHandle,
    /// Claimable jobs from the last listing, tried in board order before the
    /// board is listed again (a listing per claim would cost O(jobs) each).
    candidates: Mutex<VecDeque<Job>>,
    /// Jobs the board's events say may have become claimable since the last
    /// listing (posted, abandoned, reopened, requested): tried, one read
    /// each, before the board is listed again.
    hints: Arc<Hints>,
    /// Jobs this conductor cannot run, and until when it leaves them alone.
    skipped: Mutex<HashMap<JobId, Instant>>,
    skip_for: Duration,
    /// Renews the claims of the jobs running, all in one board call per
    /// renewal interval; started with the first job run.
    leases: OnceLock<LeaseKeeper>,
}

/// Configures a [`Conductor`].
pub struct ConductorBuilder {
    conductor: Conductor,
}

impl Conductor {
    /// A conductor named `name` (the owner name of its claims) taking jobs
    /// from `board` and running their flows on `records`: any board and any
    /// backend, shared ones (`Arc<dyn JobBoard>`, `Arc<dyn Backend>`)
    /// included.
    pub fn builder(
        name: impl Into<String>,
        board: impl JobBoard + 'static,
        records: impl Backend + 'static,
    ) -> ConductorBuilder {
        ConductorBuilder {
            conductor: Conductor {
                name: name.into(),
                board: Arc::new(board),
                records: Arc::new(records),
                registry: FlowRegistry::new(),
                configure: Arc::new(|b| b),
                configure_job: None,
                max_concurrent_jobs: 1,
                listeners: Vec::new(),
                wait_timeout: Duration::from_millis(500),
                renew_every: Duration::from_millis(250),
                purge_every: Duration::from_secs(60),
                orphan_grace: Duration::from_secs(600),
                stop: StopHandle::default(),
                candidates: Mutex::new(VecDeque::new()),
                hints: Arc::default(),
                skipped: Mutex::new(HashMap::new()),
                skip_for: Duration::from_secs(60),
                leases: OnceLock::new(),
            },
        }
    }

    /// A handle that stops the conductor: it claims nothing more, suspends
    /// the flows it runs after their atoms in flight, abandons their jobs
    /// (another conductor resumes them) and returns from `run`.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// A name for a conductor when none is given: `HOST-PID`, unique among
    /// the conductors of a board.
    pub fn default_name() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
            })
            .unwrap_or_else(|| "taskflow".to_owned());
        format!("{host}-{}", std::process::id())
    }

    /// The conductor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs jobs until stopped. Board errors (a server restarting) are
    /// logged and retried after a pause; they do not end the loop.
    pub fn run(&self) {
        let entity = Entity {
            name: self.name.clone(),
            meta: json!({
                "pid": std::process::id(),
                "max_concurrent_jobs": self.max_concurrent_jobs,
                "factories": self.registry.names().collect::<Vec<_>>(),
            }),
        };
        // Boards that push events tell the conductor of new jobs, so it
        // claims them without listing the board; others are listed.
        let _subscription = match self.board.subscribe(self.hints.clone()) {
            Ok(subscription) => Some(subscription),
            Err(e) => {
                tracing::debug!(conductor = %self.name, error = %e, "no board events: listing the board");
                None
            }
        };
        if let Err(e) = self.board.register_entity(&entity) {
            tracing::warn!(conductor = %self.name, error = %e, "cannot register on the board");
        }
        let mut last_purge = Instant::now();
        std::thread::scope(|scope| {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let mut active = 0usize;
            while !self.stop.is_stopped() {
                while done_rx.try_recv().is_ok() {
                    active -= 1;
                }
                if active >= self.max_concurrent_jobs {
                    if done_rx.recv_timeout(self.wait_timeout).is_ok() {
                        active -= 1;
                    }
                    continue;
                }
                if last_purge.elapsed() >= self.purge_every {
                    last_purge = Instant::now();
                    self.purge();
                }
                match self.claim_next() {
                    Ok(Some((job, claim))) => {
                        active += 1;
                        let done = done_tx.clone();
                        scope.spawn(move || {
                            // The slot is given back however the run ends.
                            let _done = DoneGuard(done);
                            self.run_job(&job, claim);
                        });
                    }
                    Ok(None) => {
                        if let Err(e) = self.board.wait(self.wait_timeout) {
                            self.backoff(&e);
                        }
                    }
                    Err(e) => self.backoff(&e),
                }
            }
            while active > 0 && done_rx.recv().is_ok() {
                active -= 1;
            }
        });
    }

    /// Claims and runs one job if one is claimable now; returns whether it
    /// did. For tests and for a caller driving its own loop.
    pub fn run_once(&self) -> Result<bool, JobBoardError> {
        match self.claim_next()? {
            Some((job, claim)) => {
                self.run_job(&job, claim);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Removes complete jobs the board's retention no longer keeps, and the
    /// logbooks of the consumed ones.
    pub fn purge(&self) {
        self.remove_orphans();
        let purged = match self.board.purge() {
            Ok(purged) => purged,
            Err(e) => {
                tracing::warn!(conductor = %self.name, error = %e, "purge failed");
                return;
            }
        };
        if purged.is_empty() {
            return;
        }
        for job in &purged {
            if let (Some(Outcome::Consumed), Some(book)) = (&job.outcome, job.logbook) {
                match self.records.destroy_logbook(book) {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        tracing::warn!(job = %job.id, error = %e, "cannot remove the logbook")
                    }
                }
            }
        }
        self.emit(&ConductorEvent::Purged {
            jobs: purged.iter().map(|j| j.id).collect(),
        });
    }

    /// Removes the records of jobs that were never posted: logbooks
    /// [`post_flow`](crate::post_flow) marked ([`POSTED_KEY`](crate::POSTED_KEY))
    /// that no job on the board points at, older than the orphan grace (a
    /// poster that died between its two writes). Returns how many.
    pub fn remove_orphans(&self) -> usize {
        let books = match self.records.list_logbooks() {
            Ok(books) => books,
            Err(e) => {
                tracing::warn!(conductor = %self.name, error = %e, "cannot list the logbooks for orphans");
                return 0;
            }
        };
        let marked: Vec<_> = books
            .into_iter()
            .filter_map(Result::ok)
            .filter(|book| book.meta.get(crate::POSTED_KEY) == Some(&serde_json::Value::Bool(true)))
            .collect();
        if marked.is_empty() {
            return 0;
        }
        // Listed after the logbooks: a job posted meanwhile is seen.
        let referenced: std::collections::HashSet<_> = match self.board.all_jobs() {
            Ok(jobs) => jobs.into_iter().filter_map(|j| j.logbook).collect(),
            Err(e) => {
                tracing::warn!(conductor = %self.name, error = %e, "cannot list the jobs for orphans");
                return 0;
            }
        };
        let now = crate::lease::system_millis();
        let grace = self.orphan_grace.as_millis() as u64;
        let mut removed = 0;
        for book in marked {
            if referenced.contains(&book.uuid) || now.saturating_sub(book.created_at) < grace {
                continue;
            }
            match self.records.destroy_logbook(book.uuid) {
                Ok(()) => {
                    tracing::info!(conductor = %self.name, logbook = %book.uuid, "removed the records of a job never posted");
                    removed += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(logbook = %book.uuid, error = %e, "cannot remove orphan records")
                }
            }
        }
        removed
    }

    fn backoff(&self, error: &JobBoardError) {
        tracing::warn!(conductor = %self.name, error = %error, "board unavailable; retrying");
        std::thread::sleep(self.wait_timeout);
    }

    /// The first claimable job this conductor wins, in board order. Jobs
    /// come from the last listing of the board; it is listed again when
    /// they are used up, so a job posted meanwhile (even of a higher
    /// priority) waits at most for the jobs already listed.
    fn claim_next(&self) -> Result<Option<(Job, Claim)>, JobBoardError> {
        for listed_now in [false, true] {
            if listed_now {
                if let Some(claimed) = self.claim_hinted()? {
                    return Ok(Some(claimed));
                }
                let fresh = self.board.iterjobs(true)?;
                // Skips that ran out are forgotten with each listing.
                let now = Instant::now();
                lock(&self.skipped).retain(|_, until| *until > now);
                if fresh.is_empty() {
                    return Ok(None);
                }
                *lock(&self.candidates) = fresh.into();
            }
            while let Some(claimed) = self.claim_candidates()? {
                if let Some(claimed) = claimed {
                    return Ok(Some(claimed));
                }
            }
        }
        Ok(None)
    }

    /// Tries the next [`CLAIM_BATCH`] listed candidates this conductor may
    /// claim in one board call ([`JobBoard::claim_first`]): the claimed one,
    /// `Some(None)` when all those were refused, `None` when no candidates
    /// are left. Candidates the board did not get to stay listed.
    #[allow(clippy::type_complexity)]
    fn claim_candidates(&self) -> Result<Option<Option<(Job, Claim)>>, JobBoardError> {
        let mut batch = Vec::with_capacity(CLAIM_BATCH);
        {
            let mut candidates = lock(&self.candidates);
            while batch.len() < CLAIM_BATCH {
                let Some(job) = candidates.pop_front() else {
                    break;
                };
                if self.may_claim(&job) {
                    batch.push(job);
                }
            }
        }
        if batch.is_empty() {
            return Ok(None);
        }
        let ids: Vec<JobId> = batch.iter().map(|job| job.id).collect();
        let claimed = self.board.claim_first(&ids, &self.name);
        let tried = match &claimed {
            Ok((tried, _)) => (*tried).min(batch.len()),
            // The board failed: all are tried again after the pause.
            Err(_) => 0,
        };
        {
            let mut candidates = lock(&self.candidates);
            for job in batch.drain(tried..).rev() {
                candidates.push_front(job);
            }
        }
        match claimed? {
            (_, Some(claim)) => match batch.into_iter().find(|job| job.id == claim.job) {
                Some(job) => Ok(Some(Some((job, claim)))),
                // Not a candidate handed over (a board's bug): the claim
                // lapses.
                None => Err(JobBoardError::Corrupt {
                    board: "conductor",
                    id: claim.job.to_string(),
                    reason: format!(
                        "the board claimed job {} that was not among the candidates",
                        claim.job
                    ),
                }),
            },
            (_, None) => Ok(Some(None)),
        }
    }

    /// Once the listed candidates are used up: the jobs the board's events
    /// named since, in the order heard, each read once and claimed if it is
    /// claimable. None when there are none (or the events overflowed: the
    /// board is listed then).
    fn claim_hinted(&self) -> Result<Option<(Job, Claim)>, JobBoardError> {
        while let Some(id) = self.hints.pop() {
            let job = match self.board.get(id) {
                Ok(job) => job,
                Err(JobBoardError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if job.state == crate::JobState::Claimed
                || job.state == crate::JobState::Complete
                || !self.may_claim(&job)
            {
                continue;
            }
            match self.board.claim(job.id, &self.name) {
                Ok(claim) => return Ok(Some((job, claim))),
                Err(
                    JobBoardError::AlreadyClaimed { .. }
                    | JobBoardError::NotYet { .. }
                    | JobBoardError::Complete(_)
                    | JobBoardError::NotFound(_),
                ) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Whether this conductor should try to claim `job`: not one it
    /// skipped a moment ago, nor one built by a factory it lacks.
    fn may_claim(&self, job: &Job) -> bool {
        // Lapsed skips are dropped at each listing (claim_next).
        if lock(&self.skipped)
            .get(&job.id)
            .is_some_and(|until| Instant::now() < *until)
        {
            return false;
        }
        match job.factory() {
            Some(factory) if !self.registry.contains(factory) => {
                tracing::debug!(
                    conductor = %self.name,
                    job = %job.id,
                    factory,
                    "not claiming a job built by a flow factory this conductor lacks"
                );
                false
            }
            _ => true,
        }
    }

    fn emit(&self, event: &ConductorEvent) {
        emit_to(&self.name, &self.listeners, event);
    }

    /// The lease keeper, made on first use.
    fn leases(&self) -> &LeaseKeeper {
        self.leases.get_or_init(|| {
            let (name, listeners) = (self.name.clone(), self.listeners.clone());
            LeaseKeeper::new(
                self.board.clone(),
                self.renew_every,
                self.name.clone(),
                Box::new(move |job, control| {
                    emit_to(
                        &name,
                        &listeners,
                        &ConductorEvent::Requested { job, control },
                    )
                }),
            )
        })
    }

    /// Runs one claimed job to its end and settles it on the board, inside
    /// a `job` span whose field `job_id` is the job's id: every `tracing` event of
    /// the run (the engine's, its listeners', its tasks' on the serial and
    /// parallel executors) is tagged with the job.
    fn run_job(&self, job: &Job, claim: Claim) {
        let span = tracing::info_span!("job", job_id = %job.id, epoch = claim.epoch.get());
        let _entered = span.enter();
        self.emit(&ConductorEvent::Claimed {
            job: job.id,
            epoch: claim.epoch.get(),
        });
        let prepared = catch_unwind(AssertUnwindSafe(|| self.prepare(job, &claim)))
            .unwrap_or_else(|panic| Err(panicked(&claim, "building the engine", &*panic)));
        let settled = match prepared {
            Ok(engine) => self.drive(job, claim, engine),
            Err(settle) => settle,
        };
        self.settle(job, settled);
    }

    /// Rebuilds the job's flow and engine from its records, with the job's
    /// store (`details.store`) merged over the flow detail's, as TaskFlow's
    /// conductors combine them: a value in both is the job's. The job's
    /// store is applied after [`configure_engine`](ConductorBuilder::configure_engine),
    /// so it also wins over values the configuration adds.
    fn prepare(&self, job: &Job, claim: &Claim) -> Result<(Engine, SuspendHandle), Settle> {
        let Some(flow_detail) = job.flow_detail else {
            return Err(Settle::Trash(
                claim.clone(),
                "the job names no flow detail".into(),
            ));
        };
        let job_store =
            Self::job_store(job).map_err(|reason| Settle::Trash(claim.clone(), reason))?;
        let builder = Engine::load_with(self.records.clone(), flow_detail, &self.registry)
            .map_err(|e| settle_error(claim, e))?;
        let suspend = SuspendHandle::new();
        let mut builder = (self.configure)(builder);
        if let Some(configure_job) = &self.configure_job {
            builder = configure_job(job, claim, builder);
        }
        let mut builder = builder
            .owner_epoch(claim.epoch)
            .suspend_handle(suspend.clone());
        if let Some(values) = job_store {
            builder = builder.extend_store(values.clone());
        }
        let engine = builder.build().map_err(|e| settle_error(claim, e))?;
        Ok((engine, suspend))
    }

    /// The job's store: `details.store`, a JSON object of symbol to value
    /// (see [`PostFlow::job_store`](crate::PostFlow::job_store)). None when the
    /// details hold none (no `store`, or `null`); why the job is corrupt when
    /// it is not an object.
    fn job_store(job: &Job) -> Result<Option<&serde_json::Map<String, serde_json::Value>>, String> {
        match job.details.get(Job::STORE_KEY) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Object(values)) => Ok(Some(values)),
            Some(other) => Err(format!(
                "the job's details.{} must be a JSON object of symbol to value (merged over the \
                 store of its flow detail), got {}",
                Job::STORE_KEY,
                crate::post::json_type(other)
            )),
        }
    }

    /// Runs the engine while the lease keeper renews its claim; says how to
    /// settle.
    fn drive(
        &self,
        job: &Job,
        claim: Claim,
        (mut engine, suspend): (Engine, SuspendHandle),
    ) -> Settle {
        self.stop.register(job.id, suspend.clone());
        if let Some(control) = claim.control {
            // Requested before this claim: the run stops at once.
            self.emit(&ConductorEvent::Requested {
                job: job.id,
                control,
            });
            suspend.suspend();
        }
        let held = match self.leases().hold(claim.clone(), suspend.clone()) {
            Ok(held) => held,
            Err(e) => {
                self.stop.unregister(job.id);
                return Settle::Abandon(claim, format!("cannot start the lease keeper: {e}"));
            }
        };
        // Whatever happens in the run, the keeper lets the claim go with
        // it: a panic must not leave the job claimed by a conductor that no
        // longer runs it.
        let result = catch_unwind(AssertUnwindSafe(|| {
            let ran = engine.run();
            let cancel = held.claim().control == Some(Control::Cancel);
            match ran {
                // Cancel: once stopped, revert what ran (compensation),
                // still under the lease.
                Ok(_) | Err(EngineError::Failed { .. })
                    if cancel && !held.is_lost() && !self.stop.is_stopped() =>
                {
                    engine.revert()
                }
                ran => ran,
            }
        }));
        self.leases().release(&held);
        self.stop.unregister(job.id);
        let claim = held.claim();
        if held.is_lost() {
            return Settle::Lost(claim);
        }
        let result = match result {
            Ok(result) => result,
            Err(panic) => return panicked(&claim, "running the flow", &*panic),
        };
        match (result, claim.control) {
            // Stopped on request: the job is done with (status stopped);
            // a retry reopens it and resumes it from this checkpoint.
            (Ok(FlowState::Suspended), Some(Control::Stop)) if !self.stop.is_stopped() => {
                Settle::Consume(claim, FlowState::Suspended)
            }
            // Cancelled: consumed once reverted; a revert cut short by
            // this conductor's stop goes on elsewhere.
            (Ok(state @ FlowState::Reverted), Some(Control::Cancel))
            | (Err(EngineError::Failed { state, .. }), Some(Control::Cancel)) => {
                Settle::Consume(claim, state)
            }
            (Ok(FlowState::Suspended), Some(Control::Cancel)) => {
                Settle::Abandon(claim, "stopping while cancelling".into())
            }
            (result, _) => self.settled_run(claim, result),
        }
    }

    /// How to settle a run that no request ended.
    fn settled_run(&self, claim: Claim, result: Result<FlowState, EngineError>) -> Settle {
        match result {
            Ok(FlowState::Suspended) if self.stop.is_stopped() => {
                Settle::Abandon(claim, "the conductor is stopping".into())
            }
            Ok(FlowState::Suspended) => Settle::Abandon(claim, "the flow was suspended".into()),
            Ok(state) => Settle::Consume(claim, state),
            Err(EngineError::Failed { state, .. }) => Settle::Consume(claim, state),
            Err(e) => settle_error(&claim, e),
        }
    }

    fn settle(&self, job: &Job, settle: Settle) {
        let (done, event) = match settle {
            Settle::Consume(claim, flow_state) => (
                self.board.consume(&claim).map(|()| claim),
                ConductorEvent::Consumed {
                    job: job.id,
                    flow_state,
                },
            ),
            Settle::Abandon(claim, reason) => (
                self.board.abandon(&claim).map(|()| claim),
                ConductorEvent::Abandoned {
                    job: job.id,
                    reason,
                },
            ),
            Settle::Skip(claim, reason) => {
                lock(&self.skipped).insert(job.id, Instant::now() + self.skip_for);
                (
                    self.board.abandon(&claim).map(|()| claim),
                    ConductorEvent::Skipped {
                        job: job.id,
                        reason,
                        retry_after: self.skip_for,
                    },
                )
            }
            Settle::Trash(claim, reason) => (
                self.board.trash(&claim, &reason).map(|()| claim),
                ConductorEvent::Trashed {
                    job: job.id,
                    reason,
                },
            ),
            Settle::Lost(claim) => {
                self.emit(&ConductorEvent::LeaseLost {
                    job: job.id,
                    epoch: claim.epoch.get(),
                });
                return;
            }
        };
        match done {
            Ok(_) => self.emit(&event),
            Err(JobBoardError::NotOwner { epoch, .. }) => {
                self.emit(&ConductorEvent::LeaseLost { job: job.id, epoch });
            }
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "cannot settle the job; its lease will lapse");
            }
        }
    }
}

/// Tells `listeners` of a conductor named `name` of `event`; a panicking
/// listener is logged.
fn emit_to(name: &str, listeners: &[Arc<dyn ConductorListener>], event: &ConductorEvent) {
    tracing::info!(conductor = %name, ?event, "conductor event");
    for l in listeners {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| l.on_event(event))) {
            tracing::error!(
                conductor = %name,
                ?event,
                panic = %Failure::from_panic(&*panic).message,
                "a conductor listener panicked"
            );
        }
    }
}

/// How a job ends on the board.
enum Settle {
    Consume(Claim, FlowState),
    Abandon(Claim, String),
    /// Abandoned, and left to other conductors for a while.
    Skip(Claim, String),
    Trash(Claim, String),
    Lost(Claim),
}

/// What an engine error means for the job. Only records that are corrupt
/// trash it: what this conductor merely cannot run (a factory or task type
/// it lacks, records in a database it does not see, another version of
/// the flow) another conductor may.
fn settle_error(claim: &Claim, error: EngineError) -> Settle {
    match &error {
        EngineError::Persistence(PersistenceError::Fenced { .. }) => Settle::Lost(claim.clone()),
        EngineError::Persistence(PersistenceError::Corrupt { .. })
        | EngineError::Definition { .. }
        | EngineError::InvalidStore(_) => Settle::Trash(claim.clone(), error.to_string()),
        EngineError::Persistence(PersistenceError::NotFound { .. })
        | EngineError::Unsupported { .. }
        | EngineError::Compile(_)
        | EngineError::Mismatch { .. } => Settle::Skip(claim.clone(), error.to_string()),
        _ => Settle::Abandon(claim.clone(), error.to_string()),
    }
}

/// A panic in a job's run: the job is skipped, the panic logged.
fn panicked(claim: &Claim, doing: &str, panic: &(dyn std::any::Any + Send)) -> Settle {
    let message = Failure::from_panic(panic).message;
    tracing::error!(job = %claim.job, panic = %message, "the conductor panicked {doing}");
    Settle::Skip(claim.clone(), format!("panicked {doing}: {message}"))
}

/// Gives a conductor's job slot back when its thread ends, even by a panic.
struct DoneGuard(mpsc::Sender<()>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl ConductorBuilder {
    /// Flow factories for jobs whose flows are built by one.
    pub fn registry(mut self, registry: FlowRegistry) -> Self {
        self.conductor.registry = registry;
        self
    }

    /// Configures every engine the conductor builds, e.g.
    /// `|b| b.executor(Parallel::new(8).expect("a pool"))` for a parallel
    /// engine, or listeners.
    pub fn configure_engine<F>(mut self, configure: F) -> Self
    where
        F: Fn(EngineBuilder) -> EngineBuilder + Send + Sync + 'static,
    {
        self.conductor.configure = Arc::new(configure);
        self
    }

    /// Configures the engine of each job knowing the job and its claim
    /// (a listener that reports to the job's owner, say), after
    /// [`configure_engine`](Self::configure_engine).
    pub fn configure_job<F>(mut self, configure: F) -> Self
    where
        F: Fn(&Job, &Claim, EngineBuilder) -> EngineBuilder + Send + Sync + 'static,
    {
        self.conductor.configure_job = Some(Arc::new(configure));
        self
    }

    /// How many jobs run at once (default 1).
    pub fn max_concurrent_jobs(mut self, n: usize) -> Self {
        self.conductor.max_concurrent_jobs = n.max(1);
        self
    }

    /// Adds a listener of conductor events.
    pub fn listener(mut self, listener: impl ConductorListener + 'static) -> Self {
        self.conductor.listeners.push(Arc::new(listener));
        self
    }

    /// How often leases are renewed (default 250 ms; keep it well under the
    /// board's lease): each interval the conductor's lease keeper renews the
    /// claims of all the jobs it runs in one board call
    /// ([`JobBoard::renew_all`]), and sees stop and cancel requests then.
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.conductor.renew_every = every;
        self
    }

    /// How long to wait for a job before looking again (default 500 ms).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.conductor.wait_timeout = timeout;
        self
    }

    /// How long a job this conductor cannot run (see
    /// [`ConductorEvent::Skipped`]) is left to other conductors before it
    /// tries it again (default 60 s).
    pub fn skip_unrunnable_for(mut self, duration: Duration) -> Self {
        self.conductor.skip_for = duration;
        self
    }

    /// How old the records of a job that was never posted (its poster died
    /// between writing them and posting the job) must be before
    /// [`purge`](Conductor::purge) removes them (default 10 min: far longer
    /// than a post takes).
    pub fn orphan_grace(mut self, grace: Duration) -> Self {
        self.conductor.orphan_grace = grace;
        self
    }

    /// How often retention runs (default 60 s).
    pub fn purge_every(mut self, every: Duration) -> Self {
        self.conductor.purge_every = every;
        self
    }

    /// The conductor.
    pub fn build(self) -> Conductor {
        self.conductor
    }
}

/// Stops a conductor from anywhere (a signal handler thread, a test).
#[derive(Clone, Default)]
pub struct StopHandle {
    inner: Arc<StopInner>,
}

#[derive(Default)]
struct StopInner {
    stopped: AtomicBool,
    running: Mutex<HashMap<JobId, SuspendHandle>>,
}

impl StopHandle {
    /// Stops the conductor gracefully (see [`Conductor::stop_handle`]).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        for suspend in lock(&self.inner.running).values() {
            suspend.suspend();
        }
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    fn register(&self, job: JobId, suspend: SuspendHandle) {
        if self.is_stopped() {
            suspend.suspend();
        }
        lock(&self.inner.running).insert(job, suspend);
    }

    fn unregister(&self, job: JobId) {
        lock(&self.inner.running).remove(&job);
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// The jobs a conductor heard of through the board's events (see
/// [`Conductor::claim_hinted`]): at most [`Hints::MAX`]; past it, or when
/// the board says events were missed, they are dropped and the board is
/// listed instead.
#[derive(Default)]
struct Hints {
    queue: Mutex<VecDeque<JobId>>,
}

impl Hints {
    const MAX: usize = 1024;

    fn pop(&self) -> Option<JobId> {
        lock(&self.queue).pop_front()
    }
}

impl crate::BoardListener for Hints {
    fn on_event(&self, event: &crate::BoardEvent) {
        if !event.may_be_claimable() {
            return;
        }
        let mut queue = lock(&self.queue);
        match event.job() {
            Some(id) if queue.len() < Self::MAX => queue.push_back(id),
            // Too many, or some missed: a listing finds them all.
            _ => queue.clear(),
        }
    }
}
