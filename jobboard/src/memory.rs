//! The in-memory board: jobs in a map behind a mutex, for tests and for
//! conductors and producers that live in one process. See [`MemoryBoard`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::events::Notifier;
use crate::lease::{self, millis};
use crate::sync::{lock, wait, wait_timeout};
use crate::JobId;
use crate::{
    BoardEvent, BoardListener, BoardOptions, Claim, Control, Entity, Job, JobBoard, JobBoardError,
    JobState, JobWait, ListOptions, NewJob, Outcome, Retention, Subscription,
};
use taskflow_persistence::Epoch;

/// How often a waiter looks again at the time when nothing wakes it: it
/// also wakes exactly when the earliest running lease lapses, so this only
/// matters for a clock that jumps (a [`ManualClock`](crate::ManualClock)
/// moved forward, or the system clock set forward).
const RECHECK_SYSTEM: Duration = Duration::from_millis(250);
const RECHECK_CUSTOM: Duration = Duration::from_millis(10);

const BOARD: &str = "memory";

fn closed() -> JobBoardError {
    JobBoardError::Closed { board: BOARD }
}

/// A board in memory: jobs in a map behind a mutex, shared by the threads
/// of one process and gone with the value.
///
/// Claims follow the [lease rules](JobBoard#leases) of every board: a claim
/// lasts [`BoardOptions::lease`] unless renewed, and a lapsed claim is the
/// job's claim until someone else claims the job.
///
/// [`wait`](JobBoard::wait) sleeps on a condition variable that
/// [`post`](JobBoard::post), [`abandon`](JobBoard::abandon),
/// [`request`](JobBoard::request) and [`reopen`](JobBoard::reopen) notify,
/// with a timeout set to when the earliest running lease lapses or the
/// earliest scheduled job's time comes, so it returns as soon as a job
/// becomes claimable any way.
///
/// Uniqueness and execution keys are kept in two maps beside the jobs,
/// changed under the same lock as the jobs: a key leaves them when its job
/// completes (uniqueness) or is purged (both), so they stay as small as
/// the board.
/// [`wait_until_complete`](JobBoard::wait_until_complete) sleeps on the same
/// condition variable, which consume and trash notify too, so it returns as
/// soon as the job completes.
///
/// **Events** ([`subscribe`](JobBoard::subscribe)) are queued by each
/// change under the board's lock, so they arrive in the order the changes
/// were made; only changes through this board (and its clones behind an
/// `Arc`) exist. **Freshness**: every listing is of the jobs as they are
/// ([`ListOptions::ensure_fresh`] changes nothing). **Connection**: the
/// board is connected until [`close`](JobBoard::close)d; then every call
/// (and a `wait` blocked at that moment) fails with
/// [`JobBoardError::Closed`].
///
/// ```
/// use taskflow_jobboard::{BoardOptions, JobBoard, MemoryBoard, NewJob};
///
/// let board = MemoryBoard::new(BoardOptions::default());
/// let job = board.post(NewJob::new("nightly"))?;
/// let claim = board.claim(job.id, "conductor-1")?;
/// assert_eq!(claim.epoch, 1);
/// board.consume(&claim)?;
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
pub struct MemoryBoard {
    options: BoardOptions,
    /// Every change is made in a few assignments that cannot panic
    /// half-way, so a poisoned lock still guards consistent data.
    state: Mutex<State>,
    /// Notified when a job may have become claimable (posted, abandoned) and
    /// when one completes (consumed, trashed), and on close.
    changed: Condvar,
    /// The board's events, emitted under the state lock (so in the order
    /// the changes were made).
    events: Notifier,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Stored>,
    /// The sequence of the last job posted.
    last_sequence: u64,
    entities: BTreeMap<String, Entity>,
    /// Uniqueness key -> the job not complete that holds it.
    unique: HashMap<String, JobId>,
    /// Execution key -> the job posted with it, until purged.
    keys: HashMap<String, JobId>,
    /// Set by `close`: every call then fails with `Closed`.
    closed: bool,
}

impl State {
    /// The job not complete holding uniqueness key `key`, other than `not`.
    fn unique_holder(&self, key: &str, not: Option<JobId>) -> Option<JobId> {
        self.unique.get(key).copied().filter(|id| Some(*id) != not)
    }

    /// Frees the uniqueness key of `job` (which completed or went away).
    fn release_unique(&mut self, job: &Job) {
        if let Some(key) = &job.unique_key {
            if self.unique.get(key) == Some(&job.id) {
                self.unique.remove(key);
            }
        }
    }
}

struct Stored {
    job: Job,
    /// When it completed (ms since the epoch), once complete.
    completed_at: Option<u64>,
}

impl fmt::Debug for MemoryBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("MemoryBoard")
            .field("options", &self.options)
            .field("jobs", &state.jobs.len())
            .field("entities", &state.entities.len())
            .finish()
    }
}

impl MemoryBoard {
    /// An empty board with the lease, retention and clock of `options`.
    pub fn new(options: BoardOptions) -> Self {
        MemoryBoard {
            options,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            events: Notifier::new(BOARD),
        }
    }

    /// The state, unless the board is closed.
    fn open(&self) -> Result<MutexGuard<'_, State>, JobBoardError> {
        let state = lock(&self.state);
        if state.closed {
            return Err(closed());
        }
        Ok(state)
    }

    /// The options it was made with.
    pub fn options(&self) -> &BoardOptions {
        &self.options
    }

    fn now(&self) -> u64 {
        self.options.clock.now_millis()
    }

    fn expiry(&self, now: u64) -> u64 {
        now.saturating_add(millis(self.options.lease))
    }

    /// Runs `f` on the job of `claim` if `claim` is its current claim.
    fn with_current<T>(
        &self,
        claim: &Claim,
        f: impl FnOnce(&mut Stored, u64) -> T,
    ) -> Result<T, JobBoardError> {
        let mut state = self.open()?;
        let now = self.now();
        let stored = state
            .jobs
            .get_mut(&claim.job)
            .ok_or(JobBoardError::NotFound(claim.job))?;
        lease::check_current(&stored.job, claim)?;
        Ok(f(stored, now))
    }

    fn complete(&self, claim: &Claim, outcome: Outcome) -> Result<(), JobBoardError> {
        let mut state = self.open()?;
        let now = self.now();
        let stored = state
            .jobs
            .get_mut(&claim.job)
            .ok_or(JobBoardError::NotFound(claim.job))?;
        lease::check_current(&stored.job, claim)?;
        stored.job.state = JobState::Complete;
        stored.job.lease_expires_at = None;
        stored.job.outcome = Some(outcome);
        stored.completed_at = Some(now);
        let job = stored.job.clone();
        state.release_unique(&job);
        self.events.emit(match job.outcome {
            Some(Outcome::Consumed) => BoardEvent::Consumed(job.id),
            _ => BoardEvent::Trashed(job.id),
        });
        drop(state);
        self.changed.notify_all();
        Ok(())
    }
}

impl JobBoard for MemoryBoard {
    fn post(&self, new: NewJob) -> Result<Job, JobBoardError> {
        let mut state = self.open()?;
        if let Some(key) = &new.key {
            if let Some(existing) = state.keys.get(key) {
                return Err(JobBoardError::AlreadyPosted {
                    key: key.clone(),
                    existing: *existing,
                });
            }
        }
        if let Some(key) = &new.unique_key {
            if let Some(existing) = state.unique_holder(key, None) {
                return Err(JobBoardError::Duplicate {
                    key: key.clone(),
                    existing,
                });
            }
        }
        state.last_sequence += 1;
        let job = Job {
            id: JobId::new(),
            name: new.name,
            details: new.details,
            logbook: new.logbook,
            flow_detail: new.flow_detail,
            priority: new.priority,
            created_at: self.now(),
            sequence: state.last_sequence,
            state: JobState::Unclaimed,
            owner: None,
            epoch: Epoch::ZERO,
            lease_expires_at: None,
            outcome: None,
            not_before: new.not_before,
            unique_key: new.unique_key,
            key: new.key,
            control: None,
            revision: 1,
        };
        if let Some(key) = &job.key {
            state.keys.insert(key.clone(), job.id);
        }
        if let Some(key) = &job.unique_key {
            state.unique.insert(key.clone(), job.id);
        }
        state.jobs.insert(
            job.id,
            Stored {
                job: job.clone(),
                completed_at: None,
            },
        );
        self.events.emit(BoardEvent::Posted(job.id));
        drop(state);
        self.changed.notify_all();
        Ok(job)
    }

    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        let state = self.open()?;
        let stored = state.jobs.get(&id).ok_or(JobBoardError::NotFound(id))?;
        Ok(lease::view(stored.job.clone(), self.now()))
    }

    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        let mut state = self.open()?;
        let now = self.now();
        let job = &mut state
            .jobs
            .get_mut(&id)
            .ok_or(JobBoardError::NotFound(id))?
            .job;
        if !lease::claimable(job, now) {
            return Err(lease::refusal(job, now));
        }
        let expires_at = self.expiry(now);
        job.state = JobState::Claimed;
        job.owner = Some(owner.to_owned());
        job.epoch = job.epoch.next();
        job.lease_expires_at = Some(expires_at);
        self.events.emit(BoardEvent::Claimed(id));
        Ok(Claim {
            job: id,
            owner: owner.to_owned(),
            epoch: job.epoch,
            expires_at,
            control: job.control,
        })
    }

    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        self.with_current(claim, |stored, now| {
            let expires_at = self.expiry(now);
            stored.job.lease_expires_at = Some(expires_at);
            Claim {
                expires_at,
                control: stored.job.control,
                ..claim.clone()
            }
        })
    }

    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.complete(claim, Outcome::Consumed)
    }

    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.with_current(claim, |stored, _| {
            stored.job.state = JobState::Unclaimed;
            stored.job.owner = None;
            stored.job.lease_expires_at = None;
            self.events.emit(BoardEvent::Abandoned(stored.job.id));
        })?;
        self.changed.notify_all();
        Ok(())
    }

    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        self.complete(
            claim,
            Outcome::Trashed {
                reason: reason.to_owned(),
            },
        )
    }

    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        let mut state = self.open()?;
        let job = &mut state
            .jobs
            .get_mut(&id)
            .ok_or(JobBoardError::NotFound(id))?
            .job;
        if job.state == JobState::Complete {
            return Err(JobBoardError::Complete(id));
        }
        job.control = Some(lease::stronger(job.control, control));
        let job = lease::view(job.clone(), self.now());
        self.events.emit(BoardEvent::Requested(id));
        drop(state);
        // A scheduled job with a request is claimable at once.
        self.changed.notify_all();
        Ok(job)
    }

    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        let mut state = self.open()?;
        let job = &state.jobs.get(&id).ok_or(JobBoardError::NotFound(id))?.job;
        if job.state != JobState::Complete {
            return Err(JobBoardError::NotComplete(id));
        }
        let unique_key = job.unique_key.clone();
        if let Some(key) = &unique_key {
            if let Some(existing) = state.unique_holder(key, Some(id)) {
                return Err(JobBoardError::Duplicate {
                    key: key.clone(),
                    existing,
                });
            }
            state.unique.insert(key.clone(), id);
        }
        let stored = state.jobs.get_mut(&id).ok_or(JobBoardError::NotFound(id))?;
        stored.completed_at = None;
        let job = &mut stored.job;
        job.state = JobState::Unclaimed;
        job.owner = None;
        job.lease_expires_at = None;
        job.outcome = None;
        job.control = None;
        job.revision += 1;
        let job = job.clone();
        self.events.emit(BoardEvent::Reopened(id));
        drop(state);
        self.changed.notify_all();
        Ok(job)
    }

    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        let state = self.open()?;
        let now = self.now();
        let mut jobs: Vec<Job> = state
            .jobs
            .values()
            .map(|s| lease::view(s.job.clone(), now))
            .collect();
        drop(state);
        jobs.sort_by_key(|job| job.sequence);
        Ok(jobs)
    }

    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        let state = self.open()?;
        let now = self.now();
        let mut jobs: Vec<Job> = state
            .jobs
            .values()
            .map(|s| &s.job)
            .filter(|job| {
                if only_unclaimed {
                    lease::claimable(job, now)
                } else {
                    job.state != JobState::Complete
                }
            })
            .map(|job| lease::view(job.clone(), now))
            .collect();
        drop(state);
        jobs.sort_by(lease::iter_order);
        Ok(jobs)
    }

    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        let deadline = Instant::now().checked_add(timeout);
        let recheck = if self.options.clock.is_system() {
            RECHECK_SYSTEM
        } else {
            RECHECK_CUSTOM
        };
        let mut state = self.open()?;
        loop {
            let now = self.now();
            // The earliest time after `now` a job may become claimable: a
            // running lease lapsing, or a scheduled job's time coming.
            let mut next_lapse: Option<u64> = None;
            for stored in state.jobs.values() {
                let job = &stored.job;
                if lease::claimable(job, now) {
                    return Ok(true);
                }
                let mut at = None;
                if let (JobState::Claimed, Some(lapse)) = (job.state, job.lease_expires_at) {
                    at = Some(lapse);
                }
                if job.state != JobState::Complete && lease::waits(job, now) {
                    at = at.max(job.not_before);
                }
                if let Some(at) = at {
                    next_lapse = Some(next_lapse.map_or(at, |n| n.min(at)));
                }
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => recheck,
            };
            if remaining.is_zero() {
                return Ok(false);
            }
            let mut slice = remaining.min(recheck);
            if let Some(at) = next_lapse {
                // Not claimable yet, so that time is after `now`.
                slice = slice.min(Duration::from_millis(at.saturating_sub(now)));
            }
            state = wait_timeout(&self.changed, state, slice);
            if state.closed {
                return Err(closed());
            }
        }
    }

    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.open()?;
        loop {
            let stored = state.jobs.get(&id).ok_or(JobBoardError::NotFound(id))?;
            if stored.job.state == JobState::Complete {
                return Ok(JobWait::Complete(stored.job.clone()));
            }
            // Every completion notifies `changed`: no need to look again
            // before the deadline unless woken.
            if state.closed {
                return Err(closed());
            }
            state = match deadline {
                None => wait(&self.changed, state),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let job = lease::view(stored.job.clone(), self.now());
                        return Ok(JobWait::TimedOut(job));
                    }
                    wait_timeout(&self.changed, state, left)
                }
            };
        }
    }

    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        let state = self.open()?;
        let stored = state.jobs.get(&id).ok_or(JobBoardError::NotFound(id))?;
        Ok(lease::running_owner(&stored.job, self.now()))
    }

    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        self.open()?
            .entities
            .insert(entity.name.clone(), entity.clone());
        Ok(())
    }

    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        Ok(self.open()?.entities.values().cloned().collect())
    }

    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        let mut state = self.open()?;
        let now = self.now();
        // Complete jobs, most recently completed first.
        let mut complete: Vec<(u64, u64, JobId)> = state
            .jobs
            .values()
            .filter_map(|s| match (s.job.state, s.completed_at) {
                (JobState::Complete, Some(at)) => Some((at, s.job.sequence, s.job.id)),
                _ => None,
            })
            .collect();
        complete.sort_unstable_by(|a, b| b.cmp(a));
        let doomed: Vec<JobId> = match &self.options.retention {
            Retention::Forever => Vec::new(),
            Retention::Last(n) => complete.iter().skip(*n).map(|c| c.2).collect(),
            Retention::For(keep) => {
                let keep = millis(*keep);
                complete
                    .iter()
                    .filter(|(at, _, _)| at.saturating_add(keep) < now)
                    .map(|c| c.2)
                    .collect()
            }
        };
        // Oldest first.
        let purged: Vec<Job> = doomed
            .iter()
            .rev()
            .filter_map(|id| state.jobs.remove(id))
            .map(|s| s.job)
            .collect();
        for job in &purged {
            if let Some(key) = &job.key {
                if state.keys.get(key) == Some(&job.id) {
                    state.keys.remove(key);
                }
            }
            state.release_unique(job);
            self.events.emit(BoardEvent::Removed(job.id));
        }
        Ok(purged)
    }

    fn close(&self) -> Result<(), JobBoardError> {
        lock(&self.state).closed = true;
        self.events.close();
        self.changed.notify_all();
        Ok(())
    }

    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        let _state = self.open()?;
        self.events.subscribe(listener)
    }

    fn job_count(&self) -> Result<usize, JobBoardError> {
        let state = self.open()?;
        Ok(state
            .jobs
            .values()
            .filter(|s| s.job.state != JobState::Complete)
            .count())
    }

    fn connected(&self) -> bool {
        !lock(&self.state).closed
    }

    /// Always fresh: the jobs are in this process.
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        self.iterjobs(options.only_unclaimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod conformance {
        // Another instance of a memory board is another handle on it.
        crate::board_conformance!(
            |options| std::sync::Arc::new(super::MemoryBoard::new(options)),
            peer = |b: &std::sync::Arc<super::MemoryBoard>| std::sync::Arc::clone(b)
        );
    }

    fn manual(lease_ms: u64) -> (MemoryBoard, crate::ManualClock) {
        let clock = crate::ManualClock::new(1_000_000);
        let board = MemoryBoard::new(BoardOptions {
            lease: Duration::from_millis(lease_ms),
            clock: clock.clock(),
            ..BoardOptions::default()
        });
        (board, clock)
    }

    #[test]
    fn leases_lapse_on_the_boards_clock() {
        let (board, clock) = manual(10_000);
        let job = board.post(NewJob::new("j")).unwrap();
        assert_eq!(job.created_at, 1_000_000);
        let first = board.claim(job.id, "A").unwrap();
        assert_eq!(first.expires_at, 1_010_000);
        clock.advance(Duration::from_millis(9_999));
        assert!(board.claim(job.id, "B").is_err());
        assert_eq!(board.find_owner(job.id).unwrap().as_deref(), Some("A"));
        clock.advance(Duration::from_millis(1));
        assert_eq!(board.find_owner(job.id).unwrap(), None);
        let second = board.claim(job.id, "B").unwrap();
        assert_eq!(second.epoch, 2);
        assert!(matches!(
            board.renew(&first),
            Err(JobBoardError::NotOwner { .. })
        ));
    }

    #[test]
    fn wait_notices_a_clock_moved_forward() {
        let (board, clock) = manual(10_000);
        let job = board.post(NewJob::new("j")).unwrap();
        board.claim(job.id, "A").unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                clock.advance(Duration::from_secs(11));
            });
            let start = Instant::now();
            assert!(board.wait(Duration::from_secs(5)).unwrap());
            assert!(start.elapsed() < Duration::from_secs(1));
        });
    }

    #[test]
    fn purge_by_age_uses_completion_time() {
        let clock = crate::ManualClock::new(0);
        let board = MemoryBoard::new(BoardOptions {
            lease: Duration::from_secs(60),
            retention: Retention::For(Duration::from_secs(3600)),
            clock: clock.clock(),
        });
        // Posted long ago, completed just now: kept.
        let job = board.post(NewJob::new("j")).unwrap();
        clock.advance(Duration::from_secs(7200));
        let claim = board.claim(job.id, "A").unwrap();
        board.consume(&claim).unwrap();
        assert!(board.purge().unwrap().is_empty());
        clock.advance(Duration::from_secs(3600));
        assert!(board.purge().unwrap().is_empty(), "exactly the retention");
        clock.advance(Duration::from_millis(1));
        assert_eq!(board.purge().unwrap().len(), 1);
    }

    #[test]
    fn entities_are_kept_by_name() {
        let board = MemoryBoard::new(BoardOptions::default());
        let a = Entity {
            name: "a".into(),
            meta: serde_json::json!(1),
        };
        board.register_entity(&a).unwrap();
        board
            .register_entity(&Entity {
                name: "b".into(),
                meta: serde_json::Value::Null,
            })
            .unwrap();
        board
            .register_entity(&Entity {
                meta: serde_json::json!(2),
                ..a
            })
            .unwrap();
        let got = board.entities().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].meta, serde_json::json!(2));
    }
}
