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
//! [`Conductor::run`] runs jobs on `max_concurrent_jobs` runner threads,
//! started once, fed by its claiming loop; with
//! [`prefetch_jobs`](ConductorBuilder::prefetch_jobs) it claims that many
//! ahead, in batches ([`JobBoard::claim_next`] on a board that walks its
//! own order, the SQLite, Redis and PostgreSQL boards: one transaction,
//! one script or one statement, no listing; elsewhere [`JobBoard::claim_many`] over the conductor's
//! last listing), each held and renewed by the lease keeper like a
//! running one until a runner takes it. A job whose flow finished while others are
//! ready to run waits for them (at most 20 ms) and is consumed with them
//! ([`JobBoard::consume_all`]), still held until then: each consume is
//! fenced by its own claim, and a conductor that dies before it leaves a
//! job whose flow finished to be taken over and resumed from its
//! checkpoints (nothing runs again; it is consumed there). A job is never
//! consumed before its flow ended.
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
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use taskflow_engine::{Engine, EngineBuilder, EngineError, SuspendHandle};
use taskflow_patterns::{Failure, FlowRegistry, FlowState};
use taskflow_persistence::{Backend, PersistenceError};

use crate::sync::lock;
use crate::JobId;
use crate::{Claim, ClaimFilter, Control, Entity, Job, JobBoard, JobBoardError, Outcome};

pub use events::{ConductorEvent, ConductorListener};
use leases::{Held, LeaseKeeper};

/// How many listed candidates (at least) a conductor hands the board at
/// once to claim from ([`JobBoard::claim_many`]): with several
/// conductors working down the same listing, most of a conductor's
/// candidates are taken by the time it gets to them, and each would
/// otherwise cost a round trip.
const CLAIM_BATCH: usize = 16;

/// The most jobs whose flows finished a conductor consumes in one board
/// call ([`JobBoard::consume_all`]). A finished job waits for others only
/// while the conductor has more jobs ready to run at once, and at most
/// [`CONSUME_DELAY`]; with none ready its consume goes out at once.
const CONSUME_BATCH: usize = 32;

/// The longest a finished job's consume waits for others to go with it:
/// long enough for a batch of short jobs to gather, short enough that a
/// job's completion reaches the board about when its flow ends, even when
/// the jobs after it run for long.
const CONSUME_DELAY: Duration = Duration::from_millis(20);

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
    /// How many jobs [`run`](Conductor::run) claims ahead of its free
    /// slots, held (and renewed) until a slot frees.
    prefetch: usize,
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
    /// Jobs whose flows finished, waiting to be consumed together (see
    /// [`CONSUME_BATCH`]); each still held by the lease keeper.
    finished: Mutex<Vec<Finished>>,
    /// Told when `finished` stops being empty.
    finished_changed: Condvar,
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
                prefetch: 0,
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
                finished: Mutex::new(Vec::new()),
                finished_changed: Condvar::new(),
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
        // claims them without listing the board; others are listed. A
        // board that claims its next jobs in one call needs neither.
        let _subscription = if self.board.claims_next_in_one_call() {
            None
        } else {
            match self.board.subscribe(self.hints.clone()) {
                Ok(subscription) => Some(subscription),
                Err(e) => {
                    tracing::debug!(conductor = %self.name, error = %e, "no board events: listing the board");
                    None
                }
            }
        };
        if let Err(e) = self.board.register_entity(&entity) {
            tracing::warn!(conductor = %self.name, error = %e, "cannot register on the board");
        }
        let mut last_purge = Instant::now();
        let slots = self.max_concurrent_jobs;
        let most = slots.saturating_add(self.prefetch);
        let queue = JobQueue::default();
        std::thread::scope(|scope| {
            for _ in 0..slots {
                scope.spawn(|| self.run_jobs(&queue));
            }
            if self.prefetch > 0 {
                scope.spawn(|| self.consume_when_due());
            }
            while !self.stop.is_stopped() {
                let load = queue.load();
                // Claim when a slot would idle, or when the prefetched jobs
                // ran down by half (so claims go out in batches).
                let want = most.saturating_sub(load);
                if want == 0 || (load >= slots && want < (self.prefetch / 2).max(1)) {
                    queue.wait_for_room(load, self.wait_timeout);
                    continue;
                }
                if last_purge.elapsed() >= self.purge_every {
                    last_purge = Instant::now();
                    self.purge();
                }
                match self.claim_up_to(want) {
                    Ok(claimed) if !claimed.is_empty() => {
                        for (job, claim) in claimed {
                            if let Some(ready) = self.hold(job, claim) {
                                queue.push(ready);
                            }
                        }
                    }
                    Ok(_) => {
                        if let Err(e) = self.board.wait(self.wait_timeout) {
                            self.backoff(&e);
                        }
                    }
                    Err(e) => self.backoff(&e),
                }
            }
            // Jobs claimed ahead that did not start go back to the board,
            // for another conductor.
            for ready in queue.close() {
                self.leases().release(&ready.held);
                let claim = ready.held.claim();
                let settle = if ready.held.is_lost() {
                    Settle::Lost(claim)
                } else {
                    Settle::Abandon(claim, "the conductor is stopping".into())
                };
                self.settle(&ready.job, settle);
            }
        });
        self.flush_finished();
    }

    /// A runner of [`run`](Conductor::run): runs the jobs of `queue` one
    /// after the other until the conductor stops.
    fn run_jobs(&self, queue: &JobQueue) {
        while let Some(ready) = queue.take(&self.stop) {
            let settle =
                catch_unwind(AssertUnwindSafe(|| self.run_ready(&ready))).unwrap_or_else(|panic| {
                    self.leases().release(&ready.held);
                    panicked(&ready.held.claim(), "running the job", &*panic)
                });
            queue.done();
            match settle {
                Settle::Consume(claim, flow_state, Some(held)) => {
                    let full = {
                        let mut finished = lock(&self.finished);
                        finished.push(Finished {
                            job: ready.job.id,
                            claim,
                            flow_state,
                            held,
                            at: Instant::now(),
                        });
                        if finished.len() == 1 {
                            self.finished_changed.notify_one();
                        }
                        finished.len() >= CONSUME_BATCH
                    };
                    // Nothing ready to run next: consume at once (else
                    // when due, by `consume_when_due`).
                    if full || queue.nothing_ready() {
                        self.flush_finished();
                    }
                }
                settle => self.settle(&ready.job, settle),
            }
        }
    }

    /// A thread of [`run`](Conductor::run) with jobs claimed ahead: consumes
    /// the finished jobs waiting for others once the oldest has waited
    /// [`CONSUME_DELAY`], so a long job after them does not hold their
    /// completion back. Ends when the conductor stops (`run` consumes what
    /// is left).
    fn consume_when_due(&self) {
        let mut finished = lock(&self.finished);
        while !self.stop.is_stopped() {
            let left = finished
                .first()
                .map(|oldest| CONSUME_DELAY.saturating_sub(oldest.at.elapsed()));
            match left {
                Some(left) if left.is_zero() => {
                    drop(finished);
                    self.flush_finished();
                    finished = lock(&self.finished);
                }
                // Until the oldest is due (under 20 ms), or a while to look
                // at the stop flag when none waits.
                left => {
                    let wait = left.unwrap_or(JobQueue::LOOK_EVERY);
                    finished = self
                        .finished_changed
                        .wait_timeout(finished, wait)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// Consumes the finished jobs waiting, in one board call, and lets
    /// their claims go.
    fn flush_finished(&self) {
        let batch = std::mem::take(&mut *lock(&self.finished));
        if batch.is_empty() {
            return;
        }
        let claims: Vec<Claim> = batch.iter().map(|f| f.claim.clone()).collect();
        let mut results = self.board.consume_all(&claims).into_iter();
        for finished in batch {
            let done = results.next().unwrap_or_else(|| {
                Err(JobBoardError::Backend {
                    board: "conductor",
                    message: format!(
                        "the board gave no result for the consume of job {}",
                        finished.job
                    ),
                    source: None,
                })
            });
            self.leases().release(&finished.held);
            self.settled(
                finished.job,
                done,
                ConductorEvent::Consumed {
                    job: finished.job,
                    flow_state: finished.flow_state,
                },
            );
        }
    }

    /// Puts a claimed job under the lease keeper until it runs; `None`
    /// when the keeper cannot start (the job is then abandoned).
    fn hold(&self, job: Job, claim: Claim) -> Option<Ready> {
        let suspend = SuspendHandle::new();
        match self.leases().hold(claim.clone(), suspend.clone()) {
            Ok(held) => Some(Ready { job, held, suspend }),
            Err(e) => {
                let reason = format!("cannot start the lease keeper: {e}");
                self.settle(&job, Settle::Abandon(claim, reason));
                None
            }
        }
    }

    /// Claims and runs one job if one is claimable now; returns whether it
    /// did. For tests and for a caller driving its own loop.
    pub fn run_once(&self) -> Result<bool, JobBoardError> {
        match self.claim_up_to(1)?.pop() {
            Some((job, claim)) => {
                self.run_job(job, claim);
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

    /// Up to `most` claimable jobs this conductor wins, in board order
    /// (none when none is claimable). Jobs come from the last listing of
    /// the board; it is listed again when they are used up, so a job posted
    /// meanwhile (even of a higher priority) waits at most for the jobs
    /// already listed. A board error after a claim ends the call with the
    /// jobs claimed (the error shows again at the next call).
    fn claim_up_to(&self, most: usize) -> Result<Vec<(Job, Claim)>, JobBoardError> {
        let mut claimed = Vec::new();
        match self.claim_into(most, &mut claimed) {
            Err(e) if claimed.is_empty() => Err(e),
            Err(e) => {
                tracing::warn!(conductor = %self.name, error = %e, "claiming more jobs failed");
                Ok(claimed)
            }
            Ok(()) => Ok(claimed),
        }
    }

    /// What [`claim_up_to`](Self::claim_up_to) does, adding to `claimed`.
    /// A board that claims its next jobs in one call
    /// ([`JobBoard::claims_next_in_one_call`]) is asked for them; others
    /// are listed, and the listing kept.
    fn claim_into(
        &self,
        most: usize,
        claimed: &mut Vec<(Job, Claim)>,
    ) -> Result<(), JobBoardError> {
        if self.board.claims_next_in_one_call() {
            claimed.extend(
                self.board
                    .claim_next(&self.name, most, &self.claim_filter())?,
            );
            return Ok(());
        }
        for listed_now in [false, true] {
            if listed_now {
                while claimed.len() < most {
                    match self.claim_hinted()? {
                        Some(job) => claimed.push(job),
                        None => break,
                    }
                }
                if !claimed.is_empty() {
                    return Ok(());
                }
                let fresh = self.board.iterjobs(true)?;
                // Skips that ran out are forgotten with each listing.
                let now = Instant::now();
                lock(&self.skipped).retain(|_, until| *until > now);
                if fresh.is_empty() {
                    return Ok(());
                }
                *lock(&self.candidates) = fresh.into();
            }
            while claimed.len() < most {
                match self.claim_candidates(most - claimed.len())? {
                    Some(batch) => claimed.extend(batch),
                    None => break,
                }
            }
            if !claimed.is_empty() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Tries the next listed candidates this conductor may claim (at least
    /// [`CLAIM_BATCH`], twice `most` when more) in one board call
    /// ([`JobBoard::claim_many`]), claiming up to `most`: the claimed ones
    /// (maybe none, when all those were refused), `None` when no
    /// candidates are left. Candidates the board did not get to stay
    /// listed.
    #[allow(clippy::type_complexity)]
    fn claim_candidates(&self, most: usize) -> Result<Option<Vec<(Job, Claim)>>, JobBoardError> {
        let size = CLAIM_BATCH.max(most.saturating_mul(2));
        let mut batch = Vec::with_capacity(size);
        {
            let mut candidates = lock(&self.candidates);
            while batch.len() < size {
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
        let claimed = self.board.claim_many(&ids, &self.name, most);
        let tried = match &claimed {
            Ok((tried, _)) => (*tried).min(batch.len()),
            // The board failed: all are tried again after the pause.
            Err(_) => 0,
        };
        let mut tried_jobs: HashMap<JobId, Job> = HashMap::with_capacity(tried);
        {
            let mut candidates = lock(&self.candidates);
            for job in batch.drain(tried..).rev() {
                candidates.push_front(job);
            }
        }
        tried_jobs.extend(batch.into_iter().map(|job| (job.id, job)));
        let (_, claims) = claimed?;
        let mut jobs = Vec::with_capacity(claims.len());
        for claim in claims {
            match tried_jobs.remove(&claim.job) {
                Some(job) => jobs.push((job, claim)),
                // Not a candidate handed over (a board's bug): the claim
                // lapses.
                None => tracing::error!(
                    conductor = %self.name,
                    job = %claim.job,
                    "the board claimed a job that was not among the candidates tried"
                ),
            }
        }
        Ok(Some(jobs))
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

    /// What [`JobBoard::claim_next`] passes over for this conductor: the
    /// jobs it skipped a moment ago (lapsed skips are dropped here) and
    /// those built by a factory it lacks.
    fn claim_filter(&self) -> ClaimFilter {
        let now = Instant::now();
        let mut skipped = lock(&self.skipped);
        skipped.retain(|_, until| *until > now);
        ClaimFilter::any()
            .skipping(skipped.keys().copied())
            .factories(self.registry.names())
    }

    /// Whether this conductor should try to claim `job`: not one it
    /// skipped a moment ago, nor one built by a factory it lacks.
    fn may_claim(&self, job: &Job) -> bool {
        // Lapsed skips are dropped at each listing (claim_into).
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

    /// Runs one claimed job to its end and settles it on the board (see
    /// [`run_ready`](Self::run_ready)).
    fn run_job(&self, job: Job, claim: Claim) {
        let Some(ready) = self.hold(job, claim) else {
            return;
        };
        match self.run_ready(&ready) {
            Settle::Consume(claim, flow_state, Some(held)) => {
                let done = self.board.consume(&claim);
                self.leases().release(&held);
                let event = ConductorEvent::Consumed {
                    job: ready.job.id,
                    flow_state,
                };
                self.settled(ready.job.id, done, event);
            }
            settle => self.settle(&ready.job, settle),
        }
    }

    /// Runs a job held by the lease keeper, inside a `job` span whose field
    /// `job_id` is the job's id: every `tracing` event of the run (the
    /// engine's, its listeners', its tasks' on the serial and parallel
    /// executors) is tagged with the job. Says how to settle it: a job to
    /// consume stays held (its consume may wait for others, see
    /// [`CONSUME_BATCH`]); any other is let go.
    fn run_ready(&self, ready: &Ready) -> Settle {
        let (job, held) = (&ready.job, &ready.held);
        let claim = held.claim();
        let span = tracing::info_span!("job", job_id = %job.id, epoch = claim.epoch.get());
        let _entered = span.enter();
        if held.is_lost() {
            // Lost while it waited for a slot.
            self.leases().release(held);
            return Settle::Lost(held.claim());
        }
        self.emit(&ConductorEvent::Claimed {
            job: job.id,
            epoch: claim.epoch.get(),
        });
        let prepared = catch_unwind(AssertUnwindSafe(|| {
            self.prepare(job, &claim, ready.suspend.clone())
        }))
        .unwrap_or_else(|panic| Err(panicked(&claim, "building the engine", &*panic)));
        let settle = match prepared {
            Ok(engine) => self.drive(job, held, engine, ready.suspend.clone()),
            Err(settle) => settle,
        };
        match settle {
            Settle::Consume(claim, state, _) if !held.is_lost() => {
                Settle::Consume(claim, state, Some(Arc::clone(held)))
            }
            settle => {
                self.leases().release(held);
                if held.is_lost() {
                    Settle::Lost(held.claim())
                } else {
                    settle
                }
            }
        }
    }

    /// Rebuilds the job's flow and engine from its records, with the job's
    /// store (`details.store`) merged over the flow detail's, as TaskFlow's
    /// conductors combine them: a value in both is the job's. The job's
    /// store is applied after [`configure_engine`](ConductorBuilder::configure_engine),
    /// so it also wins over values the configuration adds.
    fn prepare(&self, job: &Job, claim: &Claim, suspend: SuspendHandle) -> Result<Engine, Settle> {
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
        let mut builder = (self.configure)(builder);
        if let Some(configure_job) = &self.configure_job {
            builder = configure_job(job, claim, builder);
        }
        let mut builder = builder.owner_epoch(claim.epoch).suspend_handle(suspend);
        if let Some(values) = job_store {
            builder = builder.extend_store(values.clone());
        }
        builder.build().map_err(|e| settle_error(claim, e))
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

    /// Runs the engine while the lease keeper renews its claim (`held`);
    /// says how to settle. The claim stays held: the caller lets it go.
    fn drive(&self, job: &Job, held: &Held, mut engine: Engine, suspend: SuspendHandle) -> Settle {
        self.stop.register(job.id, suspend.clone());
        if let Some(control) = held.claim().control {
            // Requested before this claim: the run stops at once.
            self.emit(&ConductorEvent::Requested {
                job: job.id,
                control,
            });
            suspend.suspend();
        }
        // Whatever happens in the run, the caller lets the claim go with
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
                Settle::Consume(claim, FlowState::Suspended, None)
            }
            // Cancelled: consumed once reverted; a revert cut short by
            // this conductor's stop goes on elsewhere.
            (Ok(state @ FlowState::Reverted), Some(Control::Cancel))
            | (Err(EngineError::Failed { state, .. }), Some(Control::Cancel)) => {
                Settle::Consume(claim, state, None)
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
            Ok(state) => Settle::Consume(claim, state, None),
            Err(EngineError::Failed { state, .. }) => Settle::Consume(claim, state, None),
            Err(e) => settle_error(&claim, e),
        }
    }

    fn settle(&self, job: &Job, settle: Settle) {
        let (done, event) = match settle {
            Settle::Consume(claim, flow_state, held) => (
                {
                    let done = self.board.consume(&claim);
                    if let Some(held) = held {
                        self.leases().release(&held);
                    }
                    done
                },
                ConductorEvent::Consumed {
                    job: job.id,
                    flow_state,
                },
            ),
            Settle::Abandon(claim, reason) => (
                self.board.abandon(&claim),
                ConductorEvent::Abandoned {
                    job: job.id,
                    reason,
                },
            ),
            Settle::Skip(claim, reason) => {
                lock(&self.skipped).insert(job.id, Instant::now() + self.skip_for);
                (
                    self.board.abandon(&claim),
                    ConductorEvent::Skipped {
                        job: job.id,
                        reason,
                        retry_after: self.skip_for,
                    },
                )
            }
            Settle::Trash(claim, reason) => (
                self.board.trash(&claim, &reason),
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
        self.settled(job.id, done, event);
    }

    /// Reports how settling job `job` went: `event` when it did.
    fn settled(&self, job: JobId, done: Result<(), JobBoardError>, event: ConductorEvent) {
        match done {
            Ok(()) => self.emit(&event),
            Err(JobBoardError::NotOwner { epoch, .. }) => {
                self.emit(&ConductorEvent::LeaseLost { job, epoch });
            }
            Err(e) => {
                tracing::warn!(job = %job, error = %e, "cannot settle the job; its lease will lapse");
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
    /// Consumed; the claim held by the lease keeper until then, if still.
    Consume(Claim, FlowState, Option<Arc<Held>>),
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

/// A job claimed by [`Conductor::run`], held by the lease keeper, waiting
/// for a runner.
struct Ready {
    job: Job,
    held: Arc<Held>,
    /// The suspend handle of its engine, which the lease keeper also
    /// holds (a control request or a lost lease suspends the run).
    suspend: SuspendHandle,
}

/// A job whose flow finished, waiting to be consumed with others.
struct Finished {
    job: JobId,
    claim: Claim,
    flow_state: FlowState,
    held: Arc<Held>,
    /// When its flow ended.
    at: Instant,
}

/// The jobs [`Conductor::run`] claimed, between its claiming loop and its
/// runners (one per slot).
#[derive(Default)]
struct JobQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<Ready>,
    running: usize,
    closed: bool,
}

impl JobQueue {
    /// How long a runner waits for a job before looking at the stop flag.
    const LOOK_EVERY: Duration = Duration::from_millis(100);

    fn push(&self, ready: Ready) {
        lock(&self.state).ready.push_back(ready);
        self.changed.notify_all();
    }

    /// Jobs waiting plus jobs running.
    fn load(&self) -> usize {
        let state = lock(&self.state);
        state.ready.len() + state.running
    }

    fn nothing_ready(&self) -> bool {
        lock(&self.state).ready.is_empty()
    }

    /// Waits until the load falls below `load`, or `timeout` passes.
    fn wait_for_room(&self, load: usize, timeout: Duration) {
        let state = lock(&self.state);
        drop(
            self.changed
                .wait_timeout_while(state, timeout, |s| {
                    !s.closed && s.ready.len() + s.running >= load
                })
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    /// The next job to run (counted as running until [`done`](Self::done)),
    /// or `None` once the conductor stops.
    fn take(&self, stop: &StopHandle) -> Option<Ready> {
        let mut state = lock(&self.state);
        loop {
            if state.closed || stop.is_stopped() {
                return None;
            }
            if let Some(ready) = state.ready.pop_front() {
                state.running += 1;
                drop(state);
                self.changed.notify_all();
                return Some(ready);
            }
            state = self
                .changed
                .wait_timeout(state, Self::LOOK_EVERY)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// A job taken ended.
    fn done(&self) {
        lock(&self.state).running -= 1;
        self.changed.notify_all();
    }

    /// Stops the runners (after their jobs); returns the jobs that did
    /// not start.
    fn close(&self) -> Vec<Ready> {
        let mut state = lock(&self.state);
        state.closed = true;
        let left = state.ready.drain(..).collect();
        drop(state);
        self.changed.notify_all();
        left
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

    /// How many jobs run at once (default 1): [`run`](Conductor::run)
    /// runs them on as many threads, started once.
    pub fn max_concurrent_jobs(mut self, n: usize) -> Self {
        self.conductor.max_concurrent_jobs = n.max(1);
        self
    }

    /// How many jobs [`run`](Conductor::run) claims ahead of its free
    /// slots (default 0: a job is claimed only when a slot is free to run
    /// it). Claims go to the board in batches ([`JobBoard::claim_many`]:
    /// one call, one transaction or script), and jobs that finish while
    /// others are ready are consumed together ([`JobBoard::consume_all`]),
    /// which for many short jobs saves most round trips and commits (a
    /// finished job waits at most 20 ms for others, so its completion is
    /// not held back by a long job after it). A job
    /// claimed ahead is held like a running one (its lease renewed) until
    /// a slot runs it, so other conductors cannot take it meanwhile: keep
    /// it small for long jobs. Should this conductor die, its jobs claimed
    /// ahead are taken over when their leases lapse, as its running ones;
    /// stopping gives them back to the board at once.
    pub fn prefetch_jobs(mut self, n: usize) -> Self {
        self.conductor.prefetch = n;
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
