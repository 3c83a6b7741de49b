//! The [`JobBoard`] trait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskflow_persistence::{Backend, LogBook};

use crate::{
    BoardListener, Claim, Control, Entity, Job, JobBoardError, JobId, JobState, NewJob,
    Subscription,
};

/// What [`JobBoard::iterjobs_with`] lists: TaskFlow's
/// `iterjobs(only_unclaimed, ensure_fresh)` as options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListOptions {
    /// Only the jobs claimable now (as `iterjobs(true)`).
    pub only_unclaimed: bool,
    /// The most recent state the board can give, bypassing any cache or
    /// replica it reads from. Each board's documentation says what it
    /// means there; the boards of this crate always read their primary
    /// store, so for them every listing is fresh.
    pub ensure_fresh: bool,
}

impl ListOptions {
    /// Every job that is not complete.
    pub fn all() -> Self {
        ListOptions::default()
    }

    /// Only the jobs claimable now.
    pub fn unclaimed() -> Self {
        ListOptions {
            only_unclaimed: true,
            ..ListOptions::default()
        }
    }

    /// The same, asking for the most recent state.
    pub fn fresh(self) -> Self {
        ListOptions {
            ensure_fresh: true,
            ..self
        }
    }
}

/// Which jobs [`JobBoard::claim_next`] passes over: a claimer names the
/// jobs it will not take (ones it skipped a moment ago) and the flow
/// factories it can build (a conductor's registry), so that the board
/// leaves those jobs to others without a round trip each.
///
/// ```
/// use taskflow_jobboard::{ClaimFilter, JobId};
///
/// let skipped = JobId::new();
/// let filter = ClaimFilter::any()
///     .skipping([skipped])
///     .factories(["resize", "upload"]);
/// assert!(!filter.admits(skipped, None));
/// assert!(filter.admits(JobId::new(), Some("resize")));
/// assert!(!filter.admits(JobId::new(), Some("transcode")));
/// // A job whose details name no factory is anyone's to run.
/// assert!(filter.admits(JobId::new(), None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimFilter {
    skip: Vec<JobId>,
    factories: Option<Vec<String>>,
}

impl ClaimFilter {
    /// Passes over nothing: every claimable job may be claimed.
    pub fn any() -> Self {
        ClaimFilter::default()
    }

    /// Passes over the jobs of `ids` too.
    pub fn skipping(mut self, ids: impl IntoIterator<Item = JobId>) -> Self {
        self.skip.extend(ids);
        self
    }

    /// Claims only jobs built by one of `names` (the factory their
    /// details name, see [`Job::factory`]) or naming no factory.
    pub fn factories<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.factories
            .get_or_insert_with(Vec::new)
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// The jobs passed over.
    pub fn skipped(&self) -> &[JobId] {
        &self.skip
    }

    /// The factories accepted; `None`: any.
    pub fn accepted_factories(&self) -> Option<&[String]> {
        self.factories.as_deref()
    }

    /// Whether job `id`, built by `factory` (`None`: its details name
    /// none), may be claimed.
    pub fn admits(&self, id: JobId, factory: Option<&str>) -> bool {
        if self.skip.contains(&id) {
            return false;
        }
        match (factory, &self.factories) {
            (Some(factory), Some(names)) => names.iter().any(|name| name == factory),
            _ => true,
        }
    }

    /// Whether `job` may be claimed.
    pub fn admits_job(&self, job: &Job) -> bool {
        self.admits(job.id, job.factory())
    }
}

/// How long [`JobBoard::wait_until_complete`]'s default first sleeps
/// between two reads of the job; each sleep doubles it, up to
/// [`COMPLETE_POLL_MAX`] (TaskFlow's `Job.wait` starts at 5 ms too).
const COMPLETE_POLL_FIRST: Duration = Duration::from_millis(5);

/// The longest sleep of [`JobBoard::wait_until_complete`]'s default
/// between two reads of the job: a job that completes is seen at most this
/// late.
const COMPLETE_POLL_MAX: Duration = Duration::from_millis(250);

/// How [`JobBoard::wait_until_complete`] ended: the job complete, or the
/// timeout passed first. Either way it carries the job as last read.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum JobWait {
    /// The job is complete (consumed or trashed: see its
    /// [`outcome`](Job::outcome)).
    Complete(Job),
    /// The timeout passed and the job is not complete (unclaimed, or
    /// claimed: see its [`state`](Job::state)).
    TimedOut(Job),
}

impl JobWait {
    /// Whether the job is complete.
    pub fn is_complete(&self) -> bool {
        matches!(self, JobWait::Complete(_))
    }

    /// The job as last read.
    pub fn job(&self) -> &Job {
        match self {
            JobWait::Complete(job) | JobWait::TimedOut(job) => job,
        }
    }

    /// The job as last read, by value.
    pub fn into_job(self) -> Job {
        match self {
            JobWait::Complete(job) | JobWait::TimedOut(job) => job,
        }
    }
}

/// What [`JobBoard::wait_until_complete`] returns for `job` read at the
/// deadline (or at any time): complete or not.
pub(crate) fn settled(job: Job) -> JobWait {
    if job.state == JobState::Complete {
        JobWait::Complete(job)
    } else {
        JobWait::TimedOut(job)
    }
}

/// A board where producers post jobs and conductors claim them.
///
/// Claims are leases: the owner renews its claim while it works; a lapsed
/// lease makes the job claimable again, and the next claim gets a higher
/// epoch. Claiming is atomic: of any number of racing claimers, one wins.
/// Only the current claim may renew, consume, abandon or trash a job.
///
/// # Leases
///
/// Every board applies the same rules (the conformance suite,
/// `testkit`, checks them). Times are milliseconds since the Unix epoch,
/// from [`BoardOptions::clock`](crate::BoardOptions::clock) (or the
/// server's clock, for boards that say so).
///
/// - A job is *claimable* at `now` when it is unclaimed, or claimed with a
///   lapsed lease (`lease_expires_at <= now`), and it does not wait for
///   its not-before time (`not_before` is unset or `<= now`, or a control
///   request was made on it). Claiming it sets its owner, raises its epoch
///   by one and sets `lease_expires_at = now + lease`; the claim carries
///   the job's control request, if any. A job that waits for its time is
///   refused with [`JobBoardError::NotYet`].
/// - A claim is *current* while the job is not complete and is claimed
///   with the claim's epoch and owner. Renew, consume, abandon and trash
///   refuse any other claim with [`JobBoardError::NotOwner`] (and an
///   unknown job with `NotFound`).
/// - A lapsed lease does not end a claim by itself: until someone else
///   claims the job (raising the epoch), the lapsed claim is still
///   current, and its owner may renew it (taking the lease back) or
///   consume, abandon or trash the job. An owner that was merely slow loses
///   nothing unless another owner took over; once one did, the old epoch
///   is refused everywhere (here and, through fencing, by persistence).
/// - Readers ([`get`](JobBoard::get), [`iterjobs`](JobBoard::iterjobs))
///   see a job whose lease lapsed as [`Unclaimed`](crate::JobState::Unclaimed)
///   (it is claimable), its last owner and lease time still filled in.
/// - Abandoning clears the owner and keeps the epoch; consuming and
///   trashing complete the job, recording its outcome and completion time
///   (which [`purge`](JobBoard::purge) measures retention from).
/// - Renewing returns the claim with the job's control request as it is
///   now, so an owner learns of a stop or cancel at its next renewal.
/// - [`reopen`](JobBoard::reopen) takes a complete job back to unclaimed
///   (a retry) with its epoch kept, so the next claim's epoch is higher
///   than any before and fencing still holds across revisions.
///
/// # Scheduled, unique and keyed jobs
///
/// The board, not a lock beside it, enforces what [`NewJob`] asks for,
/// atomically with the post (of any number of racing posters, on any
/// number of processes or hosts, the rules hold):
///
/// - **Scheduled**: a job with `not_before` after now reads as
///   [`Unclaimed`](crate::JobState::Unclaimed) ([`Job::is_scheduled`] says
///   it waits) but is not claimable, nor listed by `iterjobs(true)`, until
///   then; [`wait`](JobBoard::wait) wakes when its time comes. The time is
///   stored with the job: a board reopened on the same store neither loses
///   nor advances it. A control request makes it claimable at once, so a
///   conductor can settle it.
/// - **Unique**: at most one job that is not complete holds a given
///   `unique_key`. Posting another while one does is
///   [`JobBoardError::Duplicate`] naming the holder, and writes nothing;
///   once the holder completes (consumed or trashed) the key is free.
/// - **Execution key**: `key` is an idempotency key (a periodic run's
///   `policy@fire-time`). Posting a job whose `key` a job on the board
///   already has, complete or not, is [`JobBoardError::AlreadyPosted`]
///   naming that job, and writes nothing, until [`purge`](JobBoard::purge)
///   removes that job. Of any number of posters of one key, one posts.
///
/// A post with both keys is checked for its execution key first (the run
/// was posted already), then for its uniqueness key.
///
/// # Waiting
///
/// Two waits, for two parties. A conductor calls [`wait`](JobBoard::wait):
/// it returns once *any* job is claimable. A producer that posted a job
/// and wants its end calls [`wait_until_complete`](JobBoard::wait_until_complete)
/// (TaskFlow's `job.wait(timeout)`): it returns once *that* job is complete
/// (consumed or trashed), or when the timeout passes, saying which as a
/// [`JobWait`] rather than an error:
///
/// ```
/// use std::time::Duration;
/// use taskflow_jobboard::{BoardOptions, JobBoard, JobWait, MemoryBoard, NewJob, Outcome};
///
/// let board = MemoryBoard::new(BoardOptions::default());
/// let job = board.post(NewJob::new("nightly"))?;
/// // Nobody runs it: the wait times out, with the job as it is.
/// let waited = board.wait_until_complete(job.id, Duration::from_millis(20))?;
/// assert!(matches!(waited, JobWait::TimedOut(ref j) if j.owner.is_none()));
///
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let claim = board.claim(job.id, "conductor-1").unwrap();
///         board.consume(&claim).unwrap();
///     });
///     match board.wait_until_complete(job.id, Duration::from_secs(10))? {
///         JobWait::Complete(done) => assert_eq!(done.outcome, Some(Outcome::Consumed)),
///         JobWait::TimedOut(_) => unreachable!("consumed well within 10 s"),
///     }
///     Ok::<(), taskflow_jobboard::JobBoardError>(())
/// })?;
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
pub trait JobBoard: Send + Sync {
    /// Posts a job; returns it as stored (id, sequence, created time,
    /// revision 1). `AlreadyPosted` if a job on the board has its execution
    /// key, `Duplicate` if a job that is not complete holds its uniqueness
    /// key (see [Scheduled, unique and keyed jobs](JobBoard#scheduled-unique-and-keyed-jobs)).
    fn post(&self, job: NewJob) -> Result<Job, JobBoardError>;

    /// The job with id `id`.
    fn get(&self, id: JobId) -> Result<Job, JobBoardError>;

    /// Claims job `id` for `owner` for the board's lease; the claim carries
    /// the job's control request, if any. Fails with `AlreadyClaimed` while
    /// another claim's lease runs, `NotYet` while the job waits for its
    /// not-before time, `Complete` for a complete job.
    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError>;

    /// Extends a claim by the board's lease; the renewed claim carries the
    /// job's control request as it is now. `NotOwner` if the claim is no
    /// longer the job's (it lapsed and someone else claimed the job).
    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError>;

    /// Renews several claims at once (a conductor's lease keeper renews all
    /// the claims it holds in one call): one result per claim, in order,
    /// each exactly what [`renew`](JobBoard::renew) of that claim alone
    /// gives (the renewed claim with the job's control request, or
    /// `NotOwner` / `NotFound` / a board error for that claim). The default
    /// renews them one by one; boards with round trips override it to renew
    /// them in one (a transaction, a script).
    fn renew_all(&self, claims: &[Claim]) -> Vec<Result<Claim, JobBoardError>> {
        claims.iter().map(|claim| self.renew(claim)).collect()
    }

    /// Claims the first of `ids`, in order, that [`claim`](JobBoard::claim)
    /// would give `owner`, trying them in one call where the board can (a
    /// conductor hands over the claimable jobs of its last listing, so that
    /// jobs other conductors took meanwhile cost it no round trip each).
    /// Returns how many of `ids` were tried (the claimed one included) and
    /// the claim, or `None` when none was claimable: every id tried was
    /// refused with `AlreadyClaimed`, `NotYet`, `Complete` or `NotFound`.
    /// Any other error ends the call (the ids before it were refused). It
    /// is [`claim_many`](JobBoard::claim_many) with `max` 1, so a board
    /// that claims several in one call claims the first in one call too.
    fn claim_first(
        &self,
        ids: &[JobId],
        owner: &str,
    ) -> Result<(usize, Option<Claim>), JobBoardError> {
        let (tried, claims) = self.claim_many(ids, owner, 1)?;
        Ok((tried, claims.into_iter().next()))
    }

    /// Claims up to `max` of `ids`, in order: each id is tried as
    /// [`claim`](JobBoard::claim) would try it alone for `owner`, those
    /// refused (`AlreadyClaimed`, `NotYet`, `Complete`, `NotFound`) are
    /// passed over untouched, until `max` are claimed or the ids run out,
    /// in one call where the board can (a conductor that runs or prefetches
    /// several jobs claims them together). Returns how many of `ids` were
    /// tried (the last one claimed included) and the claims, in the order
    /// of `ids`: an id not tried stays claimable for the next call.
    ///
    /// Any other error ends the call. With no claim made yet it is
    /// returned; after a claim, the claims made are returned and the ids
    /// after the last claim count as not tried, so no claim is ever lost
    /// to an error (the error shows again at the next call). `max == 0` or
    /// no ids claims nothing. The default claims them one by one; boards
    /// with round trips override it to claim them in one call (a
    /// transaction, a script).
    fn claim_many(
        &self,
        ids: &[JobId],
        owner: &str,
        max: usize,
    ) -> Result<(usize, Vec<Claim>), JobBoardError> {
        let mut claims = Vec::new();
        // How many ids were tried up to the last claim made.
        let mut settled = 0;
        for (i, id) in ids.iter().enumerate() {
            if claims.len() == max {
                return Ok((i, claims));
            }
            match self.claim(*id, owner) {
                Ok(claim) => {
                    claims.push(claim);
                    settled = i + 1;
                }
                Err(e) if e.is_refusal() => {}
                Err(e) if claims.is_empty() => return Err(e),
                Err(_) => return Ok((settled, claims)),
            }
        }
        Ok((ids.len(), claims))
    }

    /// Claims up to `max` of the jobs claimable now for `owner`, in
    /// [`iterjobs`](JobBoard::iterjobs) order (priority, then posting
    /// order), passing over those `filter` leaves out: River's and Oban's
    /// "fetch the next jobs". Returns each job claimed, as the board holds
    /// it after the claim (state `Claimed`, owner `owner`), with its claim,
    /// in board order; none when nothing is claimable.
    ///
    /// Boards that can walk their order themselves override it to claim in
    /// one call (a script, a statement) without listing the board, and say
    /// so with [`claims_next_in_one_call`](JobBoard::claims_next_in_one_call).
    /// The default lists the claimable jobs and claims them with
    /// [`claim_many`](JobBoard::claim_many). Errors are as `claim_many`'s:
    /// after a claim, the claims made are returned.
    fn claim_next(
        &self,
        owner: &str,
        max: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Job, Claim)>, JobBoardError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let listed: Vec<Job> = self
            .iterjobs(true)?
            .into_iter()
            .filter(|job| filter.admits_job(job))
            .collect();
        let ids: Vec<JobId> = listed.iter().map(|job| job.id).collect();
        let (_, claims) = self.claim_many(&ids, owner, max)?;
        // The claims come in the order of the ids, so of the listing.
        let mut claims = claims.into_iter().peekable();
        let mut claimed = Vec::with_capacity(max.min(listed.len()));
        for job in listed {
            if let Some(claim) = claims.next_if(|claim| claim.job == job.id) {
                claimed.push((claimed_as(job, &claim), claim));
            }
        }
        Ok(claimed)
    }

    /// Whether [`claim_next`](JobBoard::claim_next) claims in one call
    /// without listing the board (`false` for the default): a conductor
    /// then claims through it rather than from a listing it keeps.
    fn claims_next_in_one_call(&self) -> bool {
        false
    }

    /// Marks the job complete: its flow ran to its end.
    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError>;

    /// Consumes several jobs at once (a conductor settles the jobs whose
    /// flows finished together): one result per claim, in order, each
    /// exactly what [`consume`](JobBoard::consume) of that claim alone
    /// gives (`NotOwner` / `NotFound` for that claim leave the others
    /// consumed). Each consume is fenced by its own claim. The default
    /// consumes them one by one; boards with round trips override it to
    /// consume them in one (a transaction, a script).
    fn consume_all(&self, claims: &[Claim]) -> Vec<Result<(), JobBoardError>> {
        claims.iter().map(|claim| self.consume(claim)).collect()
    }

    /// Gives the job back, unclaimed, for another conductor.
    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError>;

    /// Marks the job complete because it can never run, recording why.
    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError>;

    /// Records a control request (stop or cancel) on job `id`, which is not
    /// complete, and returns the job. The job keeps the strongest request
    /// made (a cancel overrides a stop; a stop after a cancel leaves the
    /// cancel). Its owner sees it in the claim its next renewal returns; a
    /// job waiting for its not-before time becomes claimable at once, so a
    /// conductor can settle it. `Complete` for a complete job, `NotFound`
    /// for an unknown one.
    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError>;

    /// Reopens complete job `id` for another run (a retry, as a new
    /// revision), and returns it: unclaimed, its owner, lease, outcome and
    /// control request cleared, its revision one higher, its epoch kept (so
    /// the next claim's epoch is higher than any before); its id, name,
    /// details, records, priority, keys and not-before time kept (a job
    /// reopened before that time waits for it again). `NotComplete` for a
    /// job that is not complete, `Duplicate` if another job that is not
    /// complete now holds its uniqueness key, `NotFound` for an unknown
    /// one.
    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError>;

    /// Jobs that are not complete, highest priority first, then in posting
    /// order; with `only_unclaimed`, only those claimable now (unclaimed, or
    /// claimed with a lapsed lease, and not waiting for their not-before
    /// time).
    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError>;

    /// Every job the board holds, complete ones included (until purged), in
    /// posting order, as readers see them now.
    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError>;

    /// Blocks until a job is claimable or `timeout` passes; returns whether
    /// one is. It wakes when a job is posted, abandoned, reopened or
    /// requested, when a lease lapses, and when a scheduled job's time
    /// comes.
    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError>;

    /// Blocks until job `id` is complete (consumed or trashed) or `timeout`
    /// passes, as TaskFlow's `job.wait(timeout)`; returns the job as last
    /// read, [`JobWait::Complete`] or [`JobWait::TimedOut`]. A job already
    /// complete returns at once; `Duration::MAX` waits for ever. An unknown
    /// job is `NotFound`, and so is a job purged while waited on.
    ///
    /// The default reads the job with [`get`](JobBoard::get) until it is
    /// complete, sleeping between reads from 5 ms, doubling, up to 250 ms
    /// (TaskFlow's `Job.wait` backs off the same way, up to 1 s), so it
    /// sees a completion at most 250 ms late and costs one read per 250 ms
    /// once settled. It does not sleep in [`wait`](JobBoard::wait), which
    /// wakes for claimable jobs, not for completions. Boards that learn of
    /// changes more cheaply override it: the memory board wakes on the
    /// completion itself, the SQLite board reads the job only when the
    /// database changed.
    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut sleep = COMPLETE_POLL_FIRST;
        loop {
            let job = self.get(id)?;
            if job.state == JobState::Complete {
                return Ok(JobWait::Complete(job));
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => COMPLETE_POLL_MAX,
            };
            if left.is_zero() {
                return Ok(JobWait::TimedOut(job));
            }
            // The last sleep ends at the deadline, where the job is read
            // once more.
            std::thread::sleep(sleep.min(left));
            sleep = (sleep * 2).min(COMPLETE_POLL_MAX);
        }
    }

    /// The current owner of job `id`, if claimed with a running lease.
    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError>;

    /// Registers a party (a conductor) on the board.
    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError>;

    /// Removes complete jobs the board's retention no longer keeps; returns
    /// the removed jobs (so their records can be removed too).
    fn purge(&self) -> Result<Vec<Job>, JobBoardError>;

    /// The entities registered on the board (by any process), by name,
    /// each with the metadata it registered last: who is there to run jobs.
    fn entities(&self) -> Result<Vec<Entity>, JobBoardError>;

    /// Releases the board's resources (connections, watchers). Afterwards
    /// every call fails at once with [`JobBoardError::Closed`] (a `wait`
    /// blocked meanwhile returns it within a second), and listeners hear
    /// nothing more. Closing twice is closing once.
    fn close(&self) -> Result<(), JobBoardError> {
        Ok(())
    }

    /// Registers `listener` for the board's [events](crate::BoardEvent):
    /// jobs posted, claimed, abandoned, consumed, trashed, requested,
    /// reopened and removed, by this board or any other on the same store
    /// (another process, another host), and the board's connection going
    /// and coming back. Events arrive on the board's dispatcher thread, in
    /// the order the board applied them; a slow listener does not slow the
    /// board (see [`BoardEvent`](crate::BoardEvent) for a full queue).
    /// Dropping the returned [`Subscription`] unregisters the listener.
    ///
    /// The default is [`JobBoardError::Unsupported`], for boards that
    /// cannot learn of changes yet; every board of this crate has events.
    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        let _ = listener;
        Err(JobBoardError::Unsupported {
            board: std::any::type_name::<Self>(),
            what: "board events",
        })
    }

    /// How many jobs are not complete (what `iterjobs(false)` would list).
    /// The default lists them; boards that can count do.
    fn job_count(&self) -> Result<usize, JobBoardError> {
        self.iterjobs(false).map(|jobs| jobs.len())
    }

    /// Whether the board is connected to its store: `false` once closed,
    /// and for a board whose server went away, until it is back (the board
    /// reconnects by itself). It makes no call to the store: it reports
    /// what the board last learned. The default is `true`.
    fn connected(&self) -> bool {
        true
    }

    /// Jobs as [`iterjobs`](JobBoard::iterjobs) lists them, with the
    /// [`ListOptions`] given (`ensure_fresh`: see each board). The default
    /// is `iterjobs(options.only_unclaimed)`, fresh for a board without a
    /// cache or replica.
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        self.iterjobs(options.only_unclaimed)
    }

    /// Saves `book` (the logbook and flow detail `job` points at) to
    /// `records`, and posts `job`, as [`post_flow`](crate::post_flow) does.
    /// A board in the same database as the records does both in one
    /// transaction (the SQLite board, when `records` is a
    /// [`SqliteBackend`](taskflow_persistence::SqliteBackend) on its file):
    /// a crash leaves both or neither. The default writes the records, then
    /// posts; a post the board refuses for its keys destroys the records
    /// again, and a crash in between leaves records that no job points at,
    /// marked for the conductor's purge (see
    /// [`POSTED_KEY`](crate::POSTED_KEY)).
    fn post_with_records(
        &self,
        job: NewJob,
        book: &LogBook,
        records: &dyn Backend,
    ) -> Result<Job, JobBoardError> {
        crate::post::records_then_post(self, job, book, records)
    }
}

/// `job`, read before `claim` was made on it, as the claim left it.
pub(crate) fn claimed_as(mut job: Job, claim: &Claim) -> Job {
    job.state = JobState::Claimed;
    job.owner = Some(claim.owner.clone());
    job.epoch = claim.epoch;
    job.lease_expires_at = Some(claim.expires_at);
    job.control = claim.control.or(job.control);
    job
}

/// The results of [`JobBoard::renew_all`] when the one call renewing
/// `claims` failed as a whole (a transaction, a script): the first claim
/// gets `error`, each other one a `Backend` error of `board` saying it.
pub(crate) fn renewals_failed(
    board: &'static str,
    claims: &[Claim],
    error: JobBoardError,
) -> Vec<Result<Claim, JobBoardError>> {
    batch_failed(board, "renewing the claim on", claims, error)
}

/// The results of [`JobBoard::consume_all`] when the one call consuming
/// `claims` failed as a whole: as [`renewals_failed`].
pub(crate) fn consumes_failed(
    board: &'static str,
    claims: &[Claim],
    error: JobBoardError,
) -> Vec<Result<(), JobBoardError>> {
    batch_failed(board, "consuming", claims, error)
}

/// The results of a batch of calls on `claims` (`doing` each) that failed
/// as a whole: the first claim gets `error`, each other one a `Backend`
/// error of `board` saying it.
fn batch_failed<T>(
    board: &'static str,
    doing: &str,
    claims: &[Claim],
    error: JobBoardError,
) -> Vec<Result<T, JobBoardError>> {
    let message = error.to_string();
    let mut failed = Vec::with_capacity(claims.len());
    failed.push(Err(error));
    failed.extend(claims.iter().skip(1).map(|claim| {
        Err(JobBoardError::Backend {
            board,
            message: format!(
                "{doing} job {} with {} others: {message}",
                claim.job,
                claims.len() - 1
            ),
            source: None,
        })
    }));
    failed
}

/// A shared board is a board: an `Arc<B>` (an `Arc<dyn JobBoard>` too)
/// goes wherever one is asked for.
impl<B: JobBoard + ?Sized> JobBoard for Arc<B> {
    fn post(&self, job: NewJob) -> Result<Job, JobBoardError> {
        (**self).post(job)
    }
    fn post_with_records(
        &self,
        job: NewJob,
        book: &LogBook,
        records: &dyn Backend,
    ) -> Result<Job, JobBoardError> {
        (**self).post_with_records(job, book, records)
    }
    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        (**self).get(id)
    }
    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        (**self).claim(id, owner)
    }
    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        (**self).renew(claim)
    }
    fn renew_all(&self, claims: &[Claim]) -> Vec<Result<Claim, JobBoardError>> {
        (**self).renew_all(claims)
    }
    fn claim_first(
        &self,
        ids: &[JobId],
        owner: &str,
    ) -> Result<(usize, Option<Claim>), JobBoardError> {
        (**self).claim_first(ids, owner)
    }
    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        (**self).consume(claim)
    }
    fn claim_next(
        &self,
        owner: &str,
        max: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Job, Claim)>, JobBoardError> {
        (**self).claim_next(owner, max, filter)
    }
    fn claims_next_in_one_call(&self) -> bool {
        (**self).claims_next_in_one_call()
    }
    fn claim_many(
        &self,
        ids: &[JobId],
        owner: &str,
        max: usize,
    ) -> Result<(usize, Vec<Claim>), JobBoardError> {
        (**self).claim_many(ids, owner, max)
    }
    fn consume_all(&self, claims: &[Claim]) -> Vec<Result<(), JobBoardError>> {
        (**self).consume_all(claims)
    }
    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        (**self).abandon(claim)
    }
    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        (**self).trash(claim, reason)
    }
    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        (**self).request(id, control)
    }
    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        (**self).reopen(id)
    }
    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        (**self).iterjobs(only_unclaimed)
    }
    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        (**self).all_jobs()
    }
    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        (**self).wait(timeout)
    }
    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        (**self).wait_until_complete(id, timeout)
    }
    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        (**self).find_owner(id)
    }
    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        (**self).register_entity(entity)
    }
    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        (**self).purge()
    }
    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        (**self).entities()
    }
    fn close(&self) -> Result<(), JobBoardError> {
        (**self).close()
    }
    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        (**self).subscribe(listener)
    }
    fn job_count(&self) -> Result<usize, JobBoardError> {
        (**self).job_count()
    }
    fn connected(&self) -> bool {
        (**self).connected()
    }
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        (**self).iterjobs_with(options)
    }
}
