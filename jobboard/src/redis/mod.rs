//! The Redis board: the distributed board, for conductors on many hosts.
//!
//! Every state change is one Lua script run atomically by the server
//! (`lua/*.lua`), so two claimers racing for a job from any number of
//! hosts get one winner. Lease times come from the Redis server's clock
//! (`TIME` inside the scripts), so the clients' clocks do not matter. Each
//! claim raises the job's epoch, the fencing token that lets the board (and
//! persistence) refuse an owner whose lease lapsed and whose job was taken
//! over. Uniqueness and execution keys are checked and recorded by the
//! post script itself, so of any number of racing posters one posts.
//! `wait` blocks on a stream that post, abandon, request and reopen append
//! to, and wakes by itself when the next lease lapses or the next scheduled
//! job comes due. The key layout, what each script makes atomic, and what
//! survives a restart are in `README.md` beside this file.

mod codec;
mod pool;
mod script;
#[cfg(test)]
mod tests;
mod watch;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult, Value};
use uuid::Uuid;

use self::codec::{corrupt, items, text, text_at, u64_at};
use self::pool::{Pool, BOARD, IO_TIMEOUT};
use self::script::{Keys, Scripts};
use crate::events::Notifier;
use crate::JobId;
use crate::{
    BoardListener, BoardOptions, Claim, ClaimFilter, Control, Entity, Job, JobBoard, JobBoardError,
    ListOptions, NewJob, Outcome, Retention, Subscription,
};
use taskflow_persistence::Epoch;

/// How many events the events stream keeps (approximately): waiters only
/// need the newest id; a board's watcher that was cut off for longer than
/// it takes to make this many changes reports the rest as missed.
const EVENTS_KEPT: u64 = 10_000;

/// How many complete jobs one purge script removes; purge repeats it until
/// a batch comes back short.
const PURGE_BATCH: usize = 500;

/// How many jobs one `list` script reads: a long board is read in pages
/// so that the server is never held for long.
const LIST_PAGE: usize = 256;

/// How often `wait` looks again when the board's clock is not the server's
/// (a custom [`Clock`](crate::Clock) in tests), since the server cannot
/// know when such a clock passes a lease's expiry.
const CUSTOM_CLOCK_POLL: Duration = Duration::from_millis(50);

/// The longest one blocking read of the events stream lasts, so that a
/// closed board's `wait` and watcher end within about this long.
const BLOCK_SLICE: Duration = Duration::from_secs(1);

/// The longest duration passed to a script (2^50 ms, about 35,000 years):
/// Lua numbers are doubles, exact only below 2^53, and `now + lease` must
/// stay exact.
const MAX_SCRIPT_MS: u64 = 1 << 50;

/// The job hashes of `members` of the pending zset (`<sequence>:<id>`).
fn pending_keys(keys: &Keys, members: &[String], what: &str) -> Result<Vec<String>, JobBoardError> {
    members
        .iter()
        .map(
            |m| match m.split_once(':').map(|(_, id)| Uuid::parse_str(id)) {
                Some(Ok(id)) => Ok(keys.job(JobId::from(id))),
                _ => Err(corrupt(
                    what,
                    format!("member `{m}` is not `<sequence>:<id>`"),
                )),
            },
        )
        .collect()
}

/// Element `i` of a script's reply, as a job id.
fn job_id_at(items: &[Value], i: usize, what: &str) -> Result<JobId, JobBoardError> {
    let text = text_at(items, i, what)?;
    Uuid::parse_str(&text).map(JobId::from).map_err(|e| {
        corrupt(
            what,
            format!("reply element {i} `{text}` is not a job id: {e}"),
        )
    })
}

/// Element `i` of a script's reply, as a control request (`''`: none).
fn control_at(items: &[Value], i: usize, what: &str) -> Result<Option<Control>, JobBoardError> {
    match text_at(items, i, what)?.as_str() {
        "" => Ok(None),
        name => Control::parse(name)
            .map(Some)
            .ok_or_else(|| corrupt(what, format!("`{name}` is not a control request"))),
    }
}

/// `d` in whole milliseconds, capped at [`MAX_SCRIPT_MS`].
fn script_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).map_or(MAX_SCRIPT_MS, |ms| ms.min(MAX_SCRIPT_MS))
}

/// A [`JobBoard`] kept in Redis (or any server speaking its protocol, such
/// as Valkey), for conductors on many hosts. Feature `redis`.
///
/// Every change is one atomic Lua script, so of any number of claimers on
/// any hosts one wins. Lease times are the Redis server's clock (`TIME` in
/// the scripts), so the clients' clocks do not matter, unless
/// [`BoardOptions::clock`] is a custom clock (tests): that clock's time is
/// then passed to every script instead. All keys start with the prefix
/// given to [`connect`](Self::connect), so several boards (and tests)
/// share one server. Connections are pooled; after the server restarts the
/// next call reconnects, and calls cut off by a failing connection are
/// retried safely (each carries a token that makes it idempotent). The
/// design (key layout, scripts, leases, `wait`, restarts) is in
/// `src/redis/README.md`.
///
/// ```no_run
/// use std::time::Duration;
/// use taskflow_jobboard::{BoardOptions, JobBoard, NewJob, RedisBoard};
///
/// let board = RedisBoard::connect("redis://127.0.0.1:6379", "taskflow", BoardOptions::default())?;
/// let job = board.post(NewJob::new("provision"))?;
/// if board.wait(Duration::from_secs(5))? {
///     let claim = board.claim(job.id, "conductor-1")?;
///     board.consume(&claim)?;
/// }
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
pub struct RedisBoard {
    pool: Arc<Pool>,
    keys: Keys,
    scripts: Scripts,
    options: BoardOptions,
    url: String,
    /// The board's listeners and their queue.
    events: Arc<Notifier>,
    /// Whether the watcher thread was started.
    watching: AtomicBool,
}

/// One claim's part of a script's reply: its job key and reply, or its
/// refusal (`NotFound`, `NotOwner`, or a reply this build cannot read).
type ClaimReply = Result<(String, Vec<Value>), JobBoardError>;

impl Drop for RedisBoard {
    fn drop(&mut self) {
        // The watcher stops when its next block ends (within a second).
        self.events.close();
    }
}

impl fmt::Debug for RedisBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBoard")
            .field("url", &self.url)
            .field("key_prefix", &self.keys.prefix())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisBoard {
    /// Connects to the Redis server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, or
    /// `redis+unix:///path/to/socket`; TLS is not compiled in), keeping
    /// every key of the board under `key_prefix` (`<key_prefix>:...`).
    ///
    /// Fails if the server cannot be reached. Connections are pooled and
    /// reopened as needed: after the server restarts, the next call
    /// reconnects.
    pub fn connect(
        url: &str,
        key_prefix: &str,
        options: BoardOptions,
    ) -> Result<Self, JobBoardError> {
        let pool = Pool::new(url)?;
        let url = pool::redact(url);
        pool.run(&format!("connecting to {url}"), |c| {
            redis::cmd("PING").query::<String>(c)
        })?;
        Ok(RedisBoard {
            pool: Arc::new(pool),
            keys: Keys::new(key_prefix),
            scripts: Scripts::new(),
            options,
            url,
            events: Arc::new(Notifier::new(BOARD)),
            watching: AtomicBool::new(false),
        })
    }

    /// Starts the watcher thread, once.
    fn watch(&self) -> Result<(), JobBoardError> {
        if self.watching.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let started = watch::start(
            Arc::clone(&self.pool),
            self.keys.events(),
            Arc::downgrade(&self.events),
        );
        if started.is_err() {
            self.watching.store(false, Ordering::Release);
        }
        started
    }

    /// The prefix of every key of this board.
    pub fn key_prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// The options the board was connected with.
    pub fn options(&self) -> &BoardOptions {
        &self.options
    }

    /// The entities registered on the board (with
    /// [`register_entity`](JobBoard::register_entity)), by name.
    fn registered(&self) -> Result<Vec<Entity>, JobBoardError> {
        let key = self.keys.entities();
        let all: Vec<(String, String)> = self.pool.run("reading entities", |c| {
            redis::cmd("HGETALL").arg(&key).query(c)
        })?;
        let mut entities = all
            .into_iter()
            .map(|(name, json)| {
                serde_json::from_str::<Entity>(&json).map_err(|e| {
                    corrupt(
                        format!("{key} field `{name}`"),
                        format!("not an entity: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        entities.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entities)
    }

    /// Deletes every key of the board (every job, claim, entity and
    /// counter under its prefix); returns how many keys it deleted. For
    /// tests and for tearing a board down: claims held elsewhere are lost.
    pub fn destroy(&self) -> Result<u64, JobBoardError> {
        let pattern = self.keys.pattern();
        let mut deleted = 0;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) =
                self.pool.run("listing keys to destroy", |c| {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(c)
                })?;
            if !keys.is_empty() {
                deleted += self.pool.run("destroying keys", |c| {
                    redis::cmd("DEL").arg(&keys).query::<u64>(c)
                })?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// The time argument of the scripts: empty for the server's clock, or
    /// the custom clock's time.
    fn now_arg(&self) -> String {
        if self.options.clock.is_system() {
            String::new()
        } else {
            self.options.clock.now_millis().to_string()
        }
    }

    /// Calls a script that takes, after its own keys and arguments (which
    /// `prepare` sets), each claim's job key and its id, owner and epoch,
    /// and replies once per claim with `ok` (and what follows), `not_found`
    /// or `not_owner`. Returns, per claim in order, its job key and reply,
    /// or its refusal; the call failing, or replying for another number of
    /// claims, is the error of the whole batch. `what` names the call in
    /// errors.
    fn per_claim_call<'s>(
        &self,
        what: &str,
        anchor: &str,
        claims: &[Claim],
        prepare: impl Fn() -> redis::ScriptInvocation<'s>,
    ) -> Result<Vec<ClaimReply>, JobBoardError> {
        let args: Vec<(String, String, String)> = claims
            .iter()
            .map(|c| (self.keys.job(c.job), c.job.to_string(), c.epoch.to_string()))
            .collect();
        let replies = self
            .pool
            .run(what, |c| {
                let mut call = prepare();
                for (claim, (key, id, epoch)) in claims.iter().zip(&args) {
                    call.key(key).arg(id).arg(&claim.owner).arg(epoch);
                }
                call.invoke::<Value>(c)
            })
            .and_then(|reply| items(reply, anchor))?;
        if replies.len() != claims.len() {
            return Err(corrupt(
                anchor,
                format!(
                    "{what}: {} replies for {} claims",
                    replies.len(),
                    claims.len()
                ),
            ));
        }
        Ok(claims
            .iter()
            .zip(args)
            .zip(replies)
            .map(|((claim, (key, _, _)), reply)| {
                let reply = items(reply, &key)?;
                match text_at(&reply, 0, &key)?.as_str() {
                    "ok" => Ok((key, reply)),
                    "not_found" => Err(JobBoardError::NotFound(claim.job)),
                    "not_owner" => Err(JobBoardError::NotOwner {
                        job: claim.job,
                        owner: claim.owner.clone(),
                        epoch: claim.epoch.get(),
                    }),
                    other => Err(corrupt(&key, format!("{what}: unexpected reply `{other}`"))),
                }
            })
            .collect())
    }

    fn lease_ms(&self) -> u64 {
        script_ms(self.options.lease)
    }

    /// Decodes a `{now, HGETALL}` reply: the job (`None` if missing) and
    /// the time it was read at.
    fn job_reply(&self, reply: Value, key: &str) -> Result<(Option<Job>, u64), JobBoardError> {
        let mut items = items(reply, key)?;
        let now = u64_at(&items, 0, key)?;
        if items.len() != 2 {
            return Err(corrupt(key, "reply is not {now, fields}"));
        }
        let fields = codec::fields(items.remove(1), key)?;
        if fields.is_empty() {
            return Ok((None, now));
        }
        Ok((Some(codec::job(&fields, now, key)?), now))
    }

    /// Job `id` and the time it was read at.
    fn read(&self, id: JobId) -> Result<(Job, u64), JobBoardError> {
        let key = self.keys.job(id);
        let now = self.now_arg();
        let reply: Value = self.pool.run("reading a job", |c| {
            self.scripts.read.key(&key).arg(&now).invoke(c)
        })?;
        match self.job_reply(reply, &key)? {
            (Some(job), at) => Ok((job, at)),
            (None, _) => Err(JobBoardError::NotFound(id)),
        }
    }

    /// Runs one of the scripts that check a claim (renew, consume, abandon,
    /// trash) and maps its status word to the trait's errors.
    fn release(
        &self,
        what: &str,
        claim: &Claim,
        run: impl FnMut(&mut Connection) -> RedisResult<Value>,
    ) -> Result<Vec<Value>, JobBoardError> {
        let key = self.keys.job(claim.job);
        let reply = items(self.pool.run(what, run)?, &key)?;
        match text_at(&reply, 0, &key)?.as_str() {
            "ok" => Ok(reply),
            "not_found" => Err(JobBoardError::NotFound(claim.job)),
            "not_owner" => Err(JobBoardError::NotOwner {
                job: claim.job,
                owner: claim.owner.clone(),
                epoch: claim.epoch.get(),
            }),
            other => Err(corrupt(key, format!("{what}: unexpected reply `{other}`"))),
        }
    }

    /// What completing jobs with `outcome` takes besides each job's own
    /// key: the outcome encoded, and the board's keys that the completion
    /// scripts (`complete.lua`, `consume_all.lua`) touch, in their order.
    fn completion(
        &self,
        what: &str,
        outcome: &Outcome,
    ) -> Result<(String, [String; 6]), JobBoardError> {
        let outcome = serde_json::to_string(outcome).map_err(|e| {
            JobBoardError::backend(BOARD, format!("{what}: encoding the outcome: {e}"), e)
        })?;
        let keys = [
            self.keys.pending(),
            self.keys.leases(),
            self.keys.complete(),
            self.keys.unique(),
            self.keys.scheduled(),
            self.keys.events(),
        ];
        Ok((outcome, keys))
    }

    /// Marks the job of `claim` complete with `outcome`.
    fn finish(
        &self,
        what: &str,
        claim: &Claim,
        outcome: &Outcome,
        script: &redis::Script,
    ) -> Result<(), JobBoardError> {
        let event = match outcome {
            Outcome::Consumed => "consume",
            Outcome::Trashed { .. } => "trash",
        };
        let (outcome, board_keys) = self.completion(what, outcome)?;
        let job = self.keys.job(claim.job);
        let (now, id, epoch, op) = (
            self.now_arg(),
            claim.job.to_string(),
            claim.epoch.to_string(),
            Uuid::new_v4().to_string(),
        );
        self.release(what, claim, |c| {
            let mut call = script.key(&job);
            for key in &board_keys {
                call.key(key);
            }
            call.arg(&now)
                .arg(&id)
                .arg(&claim.owner)
                .arg(&epoch)
                .arg(&op)
                .arg(&outcome)
                .arg(event)
                .arg(EVENTS_KEPT)
                .invoke(c)
        })
        .map(drop)
    }

    /// What `wait` needs: whether a job is claimable now, when the next
    /// running lease lapses or scheduled job is due, the time, and the
    /// newest event's id.
    fn probe(&self) -> Result<(bool, Option<u64>, u64, String), JobBoardError> {
        let (pending, leases, events, scheduled) = (
            self.keys.pending(),
            self.keys.leases(),
            self.keys.events(),
            self.keys.scheduled(),
        );
        let now = self.now_arg();
        let what = "waiting";
        let reply = items(
            self.pool.run(what, |c| {
                self.scripts
                    .probe
                    .key(&pending)
                    .key(&leases)
                    .key(&events)
                    .key(&scheduled)
                    .arg(&now)
                    .invoke(c)
            })?,
            &pending,
        )?;
        let claimable = text_at(&reply, 0, &pending)? == "1";
        let next = text_at(&reply, 1, &pending)?;
        let next = if next.is_empty() {
            None
        } else {
            Some(codec::parse_u64(&next).ok_or_else(|| {
                corrupt(&leases, format!("lease expiry `{next}` is not a number"))
            })?)
        };
        let now = u64_at(&reply, 2, &pending)?;
        let last = text_at(&reply, 3, &pending)?;
        Ok((claimable, next, now, last))
    }

    /// The jobs of `keys` (in that order) read in pages with the `list`
    /// script, `which` of them its ARGV[2] says (`"1"`, `"0"`, `"all"`).
    fn list(&self, keys: &[String], which: &str, what: &str) -> Result<Vec<Job>, JobBoardError> {
        let mut jobs = Vec::with_capacity(keys.len());
        for page in keys.chunks(LIST_PAGE) {
            let now = self.now_arg();
            let reply = items(
                self.pool.run("listing jobs", |c| {
                    let mut call = self.scripts.list.prepare_invoke();
                    for key in page {
                        call.key(key);
                    }
                    call.arg(&now).arg(which).invoke(c)
                })?,
                what,
            )?;
            let now = u64_at(&reply, 0, what)?;
            for fields in reply.into_iter().skip(1) {
                jobs.push(codec::job(&codec::fields(fields, what)?, now, what)?);
            }
        }
        Ok(jobs)
    }

    /// The job of an `{'ok', now, HGETALL}` reply of a script that changed
    /// job `id`.
    fn job_after(&self, reply: Vec<Value>, key: &str, id: JobId) -> Result<Job, JobBoardError> {
        self.job_reply(Value::Array(reply.into_iter().skip(1).collect()), key)?
            .0
            .ok_or(JobBoardError::NotFound(id))
    }

    /// One call of `claim_next.lua`: claims up to `most` of the members of
    /// `P:pending` from rank `start` that `factories` accepts (`None`: any)
    /// and `skipped` (ids as text) does not name, adding them to
    /// `claimed`; returns the
    /// rank to go on from, `None` at the end of `P:pending`. A job whose
    /// record does not decode is an error when it is the only claim made
    /// (its claim then lapses); beside others it is logged and left to
    /// lapse.
    fn claim_next_page(
        &self,
        owner: &str,
        most: usize,
        start: usize,
        factories: Option<&[String]>,
        skipped: &[String],
        claimed: &mut Vec<(Job, Claim)>,
    ) -> Result<Option<usize>, JobBoardError> {
        let (pending, leases, scheduled, events) = (
            self.keys.pending(),
            self.keys.leases(),
            self.keys.scheduled(),
            self.keys.events(),
        );
        let (now, op, prefix) = (
            self.now_arg(),
            Uuid::new_v4().to_string(),
            self.keys.job_prefix(),
        );
        let lease = self.lease_ms();
        // The pool sends the call again after a lost reply: the script then
        // returns the claims the first attempt made.
        let mut attempts = 0u32;
        let reply = items(
            self.pool.run("claiming the next jobs", |c| {
                attempts += 1;
                let mut call = self.scripts.claim_next.key(&pending);
                call.key(&leases).key(&scheduled).key(&events);
                call.arg(&now)
                    .arg(owner)
                    .arg(&op)
                    .arg(lease)
                    .arg(EVENTS_KEPT)
                    .arg(if attempts > 1 { "1" } else { "0" })
                    .arg(most)
                    .arg(start)
                    .arg(LIST_PAGE)
                    .arg(&prefix);
                match factories {
                    Some(names) => {
                        call.arg(names.len());
                        for name in names {
                            call.arg(name);
                        }
                    }
                    None => {
                        call.arg(-1);
                    }
                }
                for id in skipped {
                    call.arg(id);
                }
                call.invoke::<Value>(c)
            })?,
            &pending,
        )?;
        let next = match text_at(&reply, 0, &pending)?.as_str() {
            "-1" => None,
            rank => Some(
                rank.parse::<usize>()
                    .ok()
                    .filter(|next| *next > start)
                    .ok_or_else(|| corrupt(&pending, format!("claiming: rank `{rank}`")))?,
            ),
        };
        let read_at = u64_at(&reply, 1, &pending)?;
        let mut undecoded = None;
        let before = claimed.len();
        for entry in reply.into_iter().skip(2) {
            let mut entry = items(entry, &pending)?;
            if entry.len() != 4 {
                return Err(corrupt(
                    &pending,
                    "claiming: an entry is not {epoch, expires, control, fields}",
                ));
            }
            let fields = codec::fields(entry.remove(3), &pending)?;
            let job = match codec::job(&fields, read_at, &pending) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(error = %e, "claimed a job whose record does not decode; its claim lapses");
                    undecoded = Some(e);
                    continue;
                }
            };
            let key = self.keys.job(job.id);
            let claim = Claim {
                job: job.id,
                owner: owner.to_owned(),
                epoch: Epoch::new(u64_at(&entry, 0, &key)?),
                expires_at: u64_at(&entry, 1, &key)?,
                control: control_at(&entry, 2, &key)?,
            };
            claimed.push((job, claim));
        }
        match undecoded {
            Some(e) if claimed.len() == before => Err(e),
            _ => Ok(next),
        }
    }

    /// Blocks until events after `last` are appended to the events stream,
    /// or until `until` (at most [`BLOCK_SLICE`] from now); returns them
    /// (none when it timed out).
    fn block_on_events(
        &self,
        last: &str,
        until: Instant,
        count: usize,
    ) -> Result<Vec<watch::Entry>, JobBoardError> {
        let events = self.keys.events();
        let reply = self.pool.run("waiting for events", |c| {
            let left = until
                .saturating_duration_since(Instant::now())
                .min(BLOCK_SLICE);
            // BLOCK 0 would block forever: at least 1 ms.
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
            c.set_read_timeout(Some(left + IO_TIMEOUT))?;
            let result = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(ms)
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(&events)
                .arg(last)
                .query::<Value>(c);
            c.set_read_timeout(Some(IO_TIMEOUT))?;
            result
        })?;
        watch::entries(reply, &events)
    }
}

impl JobBoard for RedisBoard {
    fn post(&self, job: NewJob) -> Result<Job, JobBoardError> {
        let id = JobId::new();
        let details = serde_json::to_string(&job.details).map_err(|e| {
            JobBoardError::backend(BOARD, format!("posting: encoding the details: {e}"), e)
        })?;
        let key = self.keys.job(id);
        let (seq, pending, events) = (self.keys.seq(), self.keys.pending(), self.keys.events());
        let (unique, exec_keys, scheduled) = (
            self.keys.unique(),
            self.keys.exec_keys(),
            self.keys.scheduled(),
        );
        let (now, prefix) = (self.now_arg(), self.keys.job_prefix());
        let opt = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
        let (logbook, flow_detail) = (
            opt((job.logbook).map(Uuid::from)),
            opt((job.flow_detail).map(Uuid::from)),
        );
        let not_before = job.not_before.map(|at| at.to_string()).unwrap_or_default();
        let flag = |k: &Option<String>| if k.is_some() { "1" } else { "0" };
        // Kept as a field of its own, so claim_next checks it without
        // decoding the details.
        let factory = match job.factory() {
            Some(name) => format!("+{name}"),
            None => "-".to_owned(),
        };
        let reply = items(
            self.pool.run("posting", |c| {
                self.scripts
                    .post
                    .key(&key)
                    .key(&seq)
                    .key(&pending)
                    .key(&events)
                    .key(&unique)
                    .key(&exec_keys)
                    .key(&scheduled)
                    .arg(&now)
                    .arg(id.to_string())
                    .arg(&job.name)
                    .arg(&details)
                    .arg(&logbook)
                    .arg(&flow_detail)
                    .arg(job.priority)
                    .arg(-i64::from(job.priority))
                    .arg(EVENTS_KEPT)
                    .arg(&not_before)
                    .arg(flag(&job.unique_key))
                    .arg(job.unique_key.as_deref().unwrap_or_default())
                    .arg(flag(&job.key))
                    .arg(job.key.as_deref().unwrap_or_default())
                    .arg(&prefix)
                    .arg(&factory)
                    .invoke(c)
            })?,
            &key,
        )?;
        match text_at(&reply, 0, &key)?.as_str() {
            "ok" => self
                .job_reply(Value::Array(reply.into_iter().skip(1).collect()), &key)?
                .0
                .ok_or_else(|| corrupt(&key, "posted job is missing")),
            "already_posted" => Err(JobBoardError::AlreadyPosted {
                key: job.key.unwrap_or_default(),
                existing: job_id_at(&reply, 1, &key)?,
            }),
            "duplicate" => Err(JobBoardError::Duplicate {
                key: job.unique_key.unwrap_or_default(),
                existing: job_id_at(&reply, 1, &key)?,
            }),
            other => Err(corrupt(key, format!("posting: unexpected reply `{other}`"))),
        }
    }

    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        self.read(id).map(|(job, _)| job)
    }

    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        let (key, leases, scheduled, events) = (
            self.keys.job(id),
            self.keys.leases(),
            self.keys.scheduled(),
            self.keys.events(),
        );
        let (now, op) = (self.now_arg(), Uuid::new_v4().to_string());
        let lease = self.lease_ms();
        let reply = items(
            self.pool.run("claiming", |c| {
                self.scripts
                    .claim
                    .key(&key)
                    .key(&leases)
                    .key(&scheduled)
                    .key(&events)
                    .arg(&now)
                    .arg(id.to_string())
                    .arg(owner)
                    .arg("")
                    .arg(&op)
                    .arg(lease)
                    .arg(EVENTS_KEPT)
                    .invoke(c)
            })?,
            &key,
        )?;
        match text_at(&reply, 0, &key)?.as_str() {
            "ok" => Ok(Claim {
                job: id,
                owner: owner.to_owned(),
                epoch: Epoch::new(u64_at(&reply, 1, &key)?),
                expires_at: u64_at(&reply, 2, &key)?,
                control: control_at(&reply, 3, &key)?,
            }),
            "not_found" => Err(JobBoardError::NotFound(id)),
            "complete" => Err(JobBoardError::Complete(id)),
            "not_yet" => Err(JobBoardError::NotYet {
                job: id,
                not_before: u64_at(&reply, 1, &key)?,
            }),
            "claimed" => Err(JobBoardError::AlreadyClaimed {
                job: id,
                owner: text_at(&reply, 1, &key)?,
            }),
            other => Err(corrupt(
                key,
                format!("claiming: unexpected reply `{other}`"),
            )),
        }
    }

    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        let (key, leases) = (self.keys.job(claim.job), self.keys.leases());
        let (now, id, epoch, op) = (
            self.now_arg(),
            claim.job.to_string(),
            claim.epoch.to_string(),
            Uuid::new_v4().to_string(),
        );
        let lease = self.lease_ms();
        let reply = self.release("renewing", claim, |c| {
            self.scripts
                .renew
                .key(&key)
                .key(&leases)
                .arg(&now)
                .arg(&id)
                .arg(&claim.owner)
                .arg(&epoch)
                .arg(&op)
                .arg(lease)
                .invoke(c)
        })?;
        Ok(Claim {
            expires_at: u64_at(&reply, 1, &key)?,
            control: control_at(&reply, 2, &key)?,
            ..claim.clone()
        })
    }

    fn renew_all(&self, claims: &[Claim]) -> Vec<Result<Claim, JobBoardError>> {
        match claims {
            [] => return Vec::new(),
            [claim] => return vec![self.renew(claim)],
            _ => {}
        }
        let leases = self.keys.leases();
        let (now, op) = (self.now_arg(), Uuid::new_v4().to_string());
        let lease = self.lease_ms();
        let replies = self.per_claim_call("renewing claims", &leases, claims, || {
            let mut call = self.scripts.renew_all.key(&leases);
            call.arg(&now).arg(&op).arg(lease);
            call
        });
        let replies = match replies {
            Ok(replies) => replies,
            Err(e) => return crate::board::renewals_failed(BOARD, claims, e),
        };
        claims
            .iter()
            .zip(replies)
            .map(|(claim, reply)| {
                let (key, reply) = reply?;
                Ok(Claim {
                    expires_at: u64_at(&reply, 1, &key)?,
                    control: control_at(&reply, 2, &key)?,
                    ..claim.clone()
                })
            })
            .collect()
    }

    /// One script (`claim_many.lua`) claiming up to `max` of `ids` at one
    /// instant, instead of a call per job.
    fn claim_many(
        &self,
        ids: &[JobId],
        owner: &str,
        max: usize,
    ) -> Result<(usize, Vec<Claim>), JobBoardError> {
        if ids.is_empty() || max == 0 {
            return Ok((0, Vec::new()));
        }
        let (leases, scheduled, events) = (
            self.keys.leases(),
            self.keys.scheduled(),
            self.keys.events(),
        );
        let (now, op) = (self.now_arg(), Uuid::new_v4().to_string());
        let lease = self.lease_ms();
        let keys: Vec<String> = ids.iter().map(|id| self.keys.job(*id)).collect();
        // The pool sends the call again after a lost reply: the script then
        // looks for the claims the first attempt may have made.
        let mut attempts = 0u32;
        let reply = items(
            self.pool.run("claiming", |c| {
                attempts += 1;
                let mut call = self.scripts.claim_many.key(&leases);
                call.key(&scheduled).key(&events);
                for key in &keys {
                    call.key(key);
                }
                call.arg(&now)
                    .arg(owner)
                    .arg(&op)
                    .arg(lease)
                    .arg(EVENTS_KEPT)
                    .arg(if attempts > 1 { "1" } else { "0" })
                    .arg(max);
                for id in ids {
                    call.arg(id.to_string());
                }
                call.invoke::<Value>(c)
            })?,
            &leases,
        )?;
        let tried = usize::try_from(u64_at(&reply, 0, &leases)?)
            .ok()
            .filter(|tried| *tried <= ids.len())
            .ok_or_else(|| corrupt(&leases, "claiming: more candidates tried than given"))?;
        let mut claims = Vec::with_capacity(reply.len().saturating_sub(1));
        for entry in reply.into_iter().skip(1) {
            let entry = items(entry, &leases)?;
            let index = u64_at(&entry, 0, &leases)?;
            let Some(i) = usize::try_from(index)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .filter(|i| *i < ids.len())
            else {
                return Err(corrupt(leases, format!("claiming: no candidate {index}")));
            };
            let key = &keys[i];
            claims.push(Claim {
                job: ids[i],
                owner: owner.to_owned(),
                epoch: Epoch::new(u64_at(&entry, 1, key)?),
                expires_at: u64_at(&entry, 2, key)?,
                control: control_at(&entry, 3, key)?,
            });
        }
        Ok((tried, claims))
    }

    /// One script (`claim_next.lua`) per page of 256 members of
    /// `P:pending`, walked from the front until `max` are claimed: no
    /// listing of the board, and no candidate another conductor took
    /// costs a round trip. Ranks move when jobs before them complete
    /// meanwhile, so a page may pass over a job; the next call starts at
    /// the front again.
    fn claim_next(
        &self,
        owner: &str,
        max: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Job, Claim)>, JobBoardError> {
        let skipped: Vec<String> = filter.skipped().iter().map(JobId::to_string).collect();
        let mut claimed = Vec::new();
        let mut start = 0;
        while claimed.len() < max {
            let most = max - claimed.len();
            let factories = filter.accepted_factories();
            match self.claim_next_page(owner, most, start, factories, &skipped, &mut claimed) {
                Ok(Some(next)) => start = next,
                Ok(None) => break,
                Err(e) if claimed.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming the next jobs: a page failed");
                    break;
                }
            }
        }
        Ok(claimed)
    }

    fn claims_next_in_one_call(&self) -> bool {
        true
    }

    /// One script (`consume_all.lua`) completing every job whose claim is
    /// current, at one instant, instead of a call per job.
    fn consume_all(&self, claims: &[Claim]) -> Vec<Result<(), JobBoardError>> {
        match claims {
            [] => return Vec::new(),
            [claim] => return vec![self.consume(claim)],
            _ => {}
        }
        let (outcome, board_keys) = match self.completion("consuming", &Outcome::Consumed) {
            Ok(completion) => completion,
            Err(e) => return crate::board::consumes_failed(BOARD, claims, e),
        };
        let (now, op) = (self.now_arg(), Uuid::new_v4().to_string());
        let pending = &board_keys[0];
        let replies = self.per_claim_call("consuming", pending, claims, || {
            let mut call = self.scripts.consume_all.prepare_invoke();
            for key in &board_keys {
                call.key(key);
            }
            call.arg(&now).arg(&op).arg(&outcome).arg(EVENTS_KEPT);
            call
        });
        match replies {
            Ok(replies) => replies.into_iter().map(|reply| reply.map(drop)).collect(),
            Err(e) => crate::board::consumes_failed(BOARD, claims, e),
        }
    }

    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.finish(
            "consuming",
            claim,
            &Outcome::Consumed,
            &self.scripts.complete,
        )
    }

    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        let (key, leases, events) = (
            self.keys.job(claim.job),
            self.keys.leases(),
            self.keys.events(),
        );
        let (now, id, epoch, op) = (
            self.now_arg(),
            claim.job.to_string(),
            claim.epoch.to_string(),
            Uuid::new_v4().to_string(),
        );
        self.release("abandoning", claim, |c| {
            self.scripts
                .abandon
                .key(&key)
                .key(&leases)
                .key(&events)
                .arg(&now)
                .arg(&id)
                .arg(&claim.owner)
                .arg(&epoch)
                .arg(&op)
                .arg(EVENTS_KEPT)
                .invoke(c)
        })
        .map(drop)
    }

    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        let outcome = Outcome::Trashed {
            reason: reason.to_owned(),
        };
        self.finish("trashing", claim, &outcome, &self.scripts.complete)
    }

    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        let pending = self.keys.pending();
        let members: Vec<String> = self.pool.run("listing jobs", |c| {
            redis::cmd("ZRANGE").arg(&pending).arg(0).arg(-1).query(c)
        })?;
        let keys = pending_keys(&self.keys, &members, &pending)?;
        self.list(&keys, if only_unclaimed { "1" } else { "0" }, &pending)
    }

    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        let (key, scheduled, events) =
            (self.keys.job(id), self.keys.scheduled(), self.keys.events());
        let now = self.now_arg();
        let reply = items(
            self.pool.run("requesting a stop or cancel", |c| {
                self.scripts
                    .request
                    .key(&key)
                    .key(&scheduled)
                    .key(&events)
                    .arg(&now)
                    .arg(id.to_string())
                    .arg(control.as_str())
                    .arg(EVENTS_KEPT)
                    .invoke(c)
            })?,
            &key,
        )?;
        match text_at(&reply, 0, &key)?.as_str() {
            "ok" => self.job_after(reply, &key, id),
            "not_found" => Err(JobBoardError::NotFound(id)),
            "complete" => Err(JobBoardError::Complete(id)),
            other => Err(corrupt(
                key,
                format!("requesting {control}: unexpected reply `{other}`"),
            )),
        }
    }

    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        let key = self.keys.job(id);
        let (pending, complete, unique, scheduled, events) = (
            self.keys.pending(),
            self.keys.complete(),
            self.keys.unique(),
            self.keys.scheduled(),
            self.keys.events(),
        );
        let (now, op, prefix) = (
            self.now_arg(),
            Uuid::new_v4().to_string(),
            self.keys.job_prefix(),
        );
        let reply = items(
            self.pool.run("reopening", |c| {
                self.scripts
                    .reopen
                    .key(&key)
                    .key(&pending)
                    .key(&complete)
                    .key(&unique)
                    .key(&scheduled)
                    .key(&events)
                    .arg(&now)
                    .arg(id.to_string())
                    .arg(&op)
                    .arg(EVENTS_KEPT)
                    .arg(&prefix)
                    .invoke(c)
            })?,
            &key,
        )?;
        match text_at(&reply, 0, &key)?.as_str() {
            "ok" => self.job_after(reply, &key, id),
            "not_found" => Err(JobBoardError::NotFound(id)),
            "not_complete" => Err(JobBoardError::NotComplete(id)),
            "duplicate" => Err(JobBoardError::Duplicate {
                existing: job_id_at(&reply, 1, &key)?,
                key: text_at(&reply, 2, &key)?,
            }),
            other => Err(corrupt(
                key,
                format!("reopening: unexpected reply `{other}`"),
            )),
        }
    }

    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        let (pending, complete) = (self.keys.pending(), self.keys.complete());
        // Both indexes at one instant: a job completing meanwhile is in
        // exactly one of them.
        let (open, done): (Vec<String>, Vec<String>) = self.pool.run("listing all jobs", |c| {
            redis::pipe()
                .atomic()
                .cmd("ZRANGE")
                .arg(&pending)
                .arg(0)
                .arg(-1)
                .cmd("ZRANGE")
                .arg(&complete)
                .arg(0)
                .arg(-1)
                .query(c)
        })?;
        let mut keys = pending_keys(&self.keys, &open, &pending)?;
        for member in &done {
            let id = Uuid::parse_str(member)
                .map_err(|_| corrupt(&complete, format!("member `{member}` is not a job id")))?;
            keys.push(self.keys.job(JobId::from(id)));
        }
        let mut jobs = self.list(&keys, "all", &pending)?;
        jobs.sort_by_key(|job| job.sequence);
        Ok(jobs)
    }

    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        let deadline = Instant::now() + timeout;
        loop {
            let (claimable, next_lapse, now, last) = self.probe()?;
            if claimable {
                return Ok(true);
            }
            let start = Instant::now();
            if start >= deadline {
                return Ok(false);
            }
            let mut until = deadline;
            if let Some(at) = next_lapse {
                // Measured on the server's clock: a duration, so the two
                // clocks need not agree.
                until = until.min(start + Duration::from_millis(at.saturating_sub(now)));
            }
            if !self.options.clock.is_system() {
                until = until.min(start + CUSTOM_CLOCK_POLL);
            }
            // Events that cannot make a job claimable (claims,
            // completions, removals) do not call for another probe.
            let mut last = last;
            loop {
                let entries = self.block_on_events(&last, until, 64)?;
                if entries.iter().any(|e| e.wakes()) || Instant::now() >= until {
                    break;
                }
                match entries.last() {
                    Some(entry) => last = entry.id.clone(),
                    // A slice ran out: probe again (a close shows there).
                    None => break,
                }
            }
        }
    }

    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        let (job, now) = self.read(id)?;
        Ok(codec::running_owner(&job, now))
    }

    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        let json = serde_json::to_string(entity).map_err(|e| {
            JobBoardError::backend(BOARD, format!("registering: encoding the entity: {e}"), e)
        })?;
        let key = self.keys.entities();
        self.pool.run("registering an entity", |c| {
            redis::cmd("HSET")
                .arg(&key)
                .arg(&entity.name)
                .arg(&json)
                .query::<u64>(c)
        })?;
        Ok(())
    }

    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        self.registered()
    }

    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        let (mode, limit) = match &self.options.retention {
            Retention::Forever => return Ok(Vec::new()),
            Retention::For(age) => ("for", script_ms(*age)),
            Retention::Last(n) => ("last", u64::try_from(*n).unwrap_or(MAX_SCRIPT_MS)),
        };
        let (complete, prefix) = (self.keys.complete(), self.keys.job_prefix());
        let (exec_keys, unique) = (self.keys.exec_keys(), self.keys.unique());
        let events = self.keys.events();
        let mut purged = Vec::new();
        loop {
            let op = Uuid::new_v4().to_string();
            let kept = self.keys.purged(&op);
            let now = self.now_arg();
            let reply = items(
                self.pool.run("purging", |c| {
                    self.scripts
                        .purge
                        .key(&complete)
                        .key(&kept)
                        .key(&exec_keys)
                        .key(&unique)
                        .key(&events)
                        .arg(&now)
                        .arg(&prefix)
                        .arg(mode)
                        .arg(limit)
                        .arg(PURGE_BATCH)
                        .arg(EVENTS_KEPT)
                        .invoke(c)
                })?,
                &complete,
            )?;
            let batch = reply.len();
            for item in reply {
                let json =
                    text(&item).ok_or_else(|| corrupt(&complete, "purged job is not text"))?;
                let flat: Vec<String> = serde_json::from_str(&json).map_err(|e| {
                    corrupt(&complete, format!("purged job is not a JSON list: {e}"))
                })?;
                let fields = codec::fields_of(flat.into_iter().map(Some), &complete)?;
                // Complete jobs read the same at any time.
                purged.push(codec::job(&fields, 0, &complete)?);
            }
            if batch < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }

    fn close(&self) -> Result<(), JobBoardError> {
        self.pool.close();
        self.events.close();
        Ok(())
    }

    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        if self.pool.is_closed() {
            return Err(JobBoardError::Closed { board: BOARD });
        }
        self.watch()?;
        self.events.subscribe(listener)
    }

    fn job_count(&self) -> Result<usize, JobBoardError> {
        let pending = self.keys.pending();
        self.pool.run("counting jobs", |c| {
            redis::cmd("ZCARD").arg(&pending).query::<usize>(c)
        })
    }

    fn connected(&self) -> bool {
        self.pool.is_connected()
    }

    /// Always fresh: every read goes to the server the board was connected
    /// to (never a replica), and the board keeps no cache.
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        self.iterjobs(options.only_unclaimed)
    }
}
