//! The etcd board: conductors on many hosts sharing an etcd cluster.
//!
//! # Layout
//!
//! Every key of a board is under its prefix (`<p>`, default `taskflow`):
//!
//! | key | value | written by |
//! | --- | --- | --- |
//! | `<p>/jobs/<id>` | the job record (JSON: name, details, state, owner, epoch, lease time, outcome, keys, control, revision, the last change and its call's token) | every change of the job |
//! | `<p>/claims/<id>` | the claim marker (`{owner, epoch, ttl}`), attached to the claim's etcd lease | claim, renew (when the lease was gone); deleted by release |
//! | `<p>/unique/<key>` | the id of the job holding uniqueness key `<key>` | post, reopen; deleted when the holder completes |
//! | `<p>/keys/<key>` | the id of the job posted with execution key `<key>` | post; deleted when purge removes the job |
//! | `<p>/entities/<name>` | the entity (JSON) | register_entity |
//!
//! A job's sequence (posting order) is its record's create revision, so
//! posting needs no counter.
//!
//! # Transactions
//!
//! Every change is one etcd transaction that compares revisions, so of any
//! number of racing callers on any hosts one wins and the others find the
//! job changed and look again. A claim reads the record and the marker,
//! and if the job is claimable grants an etcd lease and commits "the
//! record's mod revision is still the one read, and the marker is still
//! absent (or still the lapsed one read)": then it writes the record
//! (owner, epoch + 1, lease time) and the marker attached to the new
//! lease. Post compares the execution and uniqueness keys' create revisions
//! with 0 (absent) and writes them with the job; completing a job deletes
//! its uniqueness key in a nested transaction (only if it still names the
//! job). Each call carries a token stored in the record, so a call retried
//! after a lost reply (a server restart) recognises its own write.
//!
//! # Leases
//!
//! A claim's lease is an etcd lease, one per claim, renewed by the owner's
//! [`renew`](crate::JobBoard::renew) (a keep-alive), so a dead owner's
//! claim marker vanishes by itself, on etcd's clock. etcd leases have
//! whole-second TTLs and a minimum (1.5 election timeouts, rounded up: 2 s
//! on a server with the default 1 s election timeout), so the board's
//! lease is **rounded up to whole seconds**, then to the server's minimum:
//! the default 1 s lease becomes a 2 s lease on a default server, a 300 ms
//! lease too. The claim's `expires_at` is the time the lease was asked
//! for plus the TTL granted, on the board's [`Clock`](crate::Clock).
//!
//! A claim is live while its record says claimed, its lease time has not
//! passed on the reader's clock, and its marker is there. The marker
//! bounds what clock skew can do (a reader whose clock is slow still sees
//! a dead owner's claim go when etcd revokes the lease, at most about half
//! a second after it lapses); the lease time makes a lapse visible at once
//! on the reader's clock, without waiting for etcd's revoke pass. As on the
//! other boards, a lapsed claim nobody took over is still its owner's: its
//! renewal grants a new etcd lease and writes the marker again, as long as
//! the record still names its epoch. Fencing is by the record's epoch:
//! renew, consume, abandon and trash compare it, whatever the leases did.
//!
//! # Waiting and events
//!
//! One watch on the prefix per board (a task on the board's runtime)
//! wakes `wait` and `wait_until_complete` and tells listeners of every
//! change, by any board on the cluster, in revision order: a record's
//! last change names the event, a deleted record is `Removed`, a deleted
//! marker (a lapse, a release) wakes waiters. After a lost connection the
//! watch resumes from the revision after the last it saw, so nothing is
//! missed unless the cluster compacted it meanwhile (then `Missed`).
//! `wait` also wakes by itself when the next live lease lapses or the next
//! scheduled job is due, and looks again at least every second.
//!
//! Listings (`iterjobs`, `all_jobs`, `wait`, `purge`) read the records
//! and markers in pages of 500 keys, all at the revision of the first
//! page, so they see one instant of the board however long it is.
//!
//! # Restarts
//!
//! etcd acknowledges a write once its log is on disk, so a restarted (or
//! SIGKILLed) server loses no job, claim, epoch or key; it keeps its leases
//! too (renewed to their full TTL when its leader is elected), so claims
//! are still held afterwards. A call made while the cluster is unreachable
//! is retried, with pauses, for up to 20 s, then fails naming the
//! endpoints; the watch reconnects by itself and tells listeners
//! `Disconnected`, then `Reconnected`.
//!
//! # Blocking
//!
//! The board's methods block: the board owns a small tokio runtime (two
//! worker threads) and runs each etcd call on it with `block_on`, as the
//! synchronous `postgres` client does. So they must not be called from a
//! thread of an async runtime (tokio would panic): call them from ordinary
//! threads, or through `spawn_blocking`.

mod codec;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};
use uuid::Uuid;

use self::codec::{
    check_current, claimable, corrupt, id_value, live, refusal, view, Held, Keys, Marker, Record,
    Stored, BOARD,
};
use crate::events::Notifier;
use crate::lease::{iter_order, millis, stronger, waits};
use crate::sync::{lock, wait_timeout};
use crate::{
    BoardEvent, BoardListener, BoardOptions, Claim, Control, Entity, Job, JobBoard, JobBoardError,
    JobId, JobState, JobWait, ListOptions, NewJob, Outcome, Retention, Subscription,
};
use taskflow_persistence::Epoch;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one attempt of a call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call keeps trying while the cluster is unreachable (a
/// restart, a leader election) before it fails.
const RETRY_FOR: Duration = Duration::from_secs(20);

/// The first pause before a retry; each doubles, up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(50);

/// The longest pause between two retries.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// How often the connection is pinged (HTTP/2), and how long a ping may
/// go unanswered before the connection counts as dead.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// The longest `wait` sleeps before it looks again.
const SLICE: Duration = Duration::from_secs(1);

/// How many keys one read of a listing takes.
const PAGE: i64 = 500;

/// How many times in a row a call may find its job changed under it
/// before it gives up (each time another call won the race for the job,
/// so this many in a row means a storm of writes to one job).
const MAX_CONTENDED: u32 = 10_000;

/// How often `wait` looks again when the board's clock is a custom one.
const CUSTOM_CLOCK_POLL: Duration = Duration::from_millis(50);

/// etcd's longest lease TTL (its `MaxLeaseTTL`), in seconds.
const MAX_TTL: u64 = 9_000_000_000;

/// The etcd lease TTL asked for a board lease of `lease`: whole seconds,
/// rounded up, at least 1 (the server raises it to its minimum).
pub(super) fn ttl_for(lease: Duration) -> i64 {
    let secs = lease
        .as_secs()
        .saturating_add(u64::from(lease.subsec_nanos() > 0));
    i64::try_from(secs.clamp(1, MAX_TTL)).unwrap_or(i64::MAX)
}

/// How an attempt of a call ended, short of success.
enum Failure {
    /// An answer of the board (not found, not owner, ...): final.
    Board(JobBoardError),
    /// etcd failed: retried while it is transient.
    Etcd(etcd_client::Error),
    /// The job changed between the read and the transaction: look again.
    Retry,
}

impl From<JobBoardError> for Failure {
    fn from(e: JobBoardError) -> Self {
        Failure::Board(e)
    }
}

impl From<etcd_client::Error> for Failure {
    fn from(e: etcd_client::Error) -> Self {
        Failure::Etcd(e)
    }
}

/// Whether `e` may pass by itself (the cluster unreachable, restarting or
/// electing a leader), so that the call is worth retrying.
fn transient(e: &etcd_client::Error) -> bool {
    use etcd_client::Error;
    use tonic::Code;
    match e {
        Error::TransportError(_) | Error::IoError(_) => true,
        Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Unknown
                | Code::Aborted
                | Code::Cancelled
                | Code::ResourceExhausted
        ),
        Error::WatchError(_) | Error::LeaseKeepAliveError(_) => true,
        _ => false,
    }
}

/// What the board's threads share with its watcher.
pub(super) struct Shared {
    closed: AtomicBool,
    connected: AtomicBool,
    /// Counts the changes the watcher saw (and the close).
    changes: Mutex<Generations>,
    changed: Condvar,
    events: Notifier,
    stop: tokio::sync::watch::Sender<bool>,
}

/// How many changes the watcher saw: all of them, and those that may have
/// made a job claimable (what `wait` looks again for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Generations {
    any: u64,
    claimable: u64,
}

impl Shared {
    fn generations(&self) -> Generations {
        *lock(&self.changes)
    }

    /// Wakes the threads waiting for a change (`claimable`: one that may
    /// have made a job claimable, which `wait` waits for; any change wakes
    /// `wait_until_complete`).
    pub(super) fn bump(&self, claimable: bool) {
        let mut generations = lock(&self.changes);
        generations.any += 1;
        if claimable {
            generations.claimable += 1;
        }
        drop(generations);
        self.changed.notify_all();
    }

    /// Waits until `pick` of the generations moves past `seen`, or until
    /// `until`.
    fn wait_change(&self, seen: Generations, pick: fn(&Generations) -> u64, until: Instant) {
        let mut generation = lock(&self.changes);
        while pick(&generation) == pick(&seen) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            generation = wait_timeout(&self.changed, generation, left);
        }
    }

    pub(super) fn set_connected(&self, connected: bool) {
        if !self.closed.load(Ordering::Acquire) {
            self.connected.store(connected, Ordering::Release);
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(super) fn emit(&self, event: BoardEvent) {
        self.events.emit(event);
    }
}

/// A [`JobBoard`] kept in etcd, for conductors on many hosts. Feature
/// `etcd`.
///
/// Claims are transactions comparing revisions; a claim's lease is an etcd
/// lease its owner keeps alive by renewing, rounded up to whole seconds
/// and to the server's minimum TTL (2 s on a default server); `wait` and
/// board events come from a watch on the board's prefix. The key layout,
/// the transactions and the lease rules are in the module documentation
/// (`src/etcd/mod.rs`).
///
/// Its methods block on a small tokio runtime the board owns: do not call
/// them from a thread of an async runtime (use `spawn_blocking`).
///
/// ```no_run
/// use std::time::Duration;
/// use taskflow_jobboard::{BoardOptions, EtcdBoard, JobBoard, NewJob};
///
/// let board = EtcdBoard::open("etcd://127.0.0.1:2379/taskflow", BoardOptions::default())?;
/// let job = board.post(NewJob::new("provision"))?;
/// if board.wait(Duration::from_secs(5))? {
///     let claim = board.claim(job.id, "conductor-1")?;
///     board.consume(&claim)?;
/// }
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
pub struct EtcdBoard {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    keys: Keys,
    options: BoardOptions,
    /// The endpoints, for messages (`http://h:p,...`).
    endpoints: String,
    /// The TTL asked for each claim's etcd lease, in seconds.
    ttl: i64,
    shared: Arc<Shared>,
}

impl fmt::Debug for EtcdBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdBoard")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.keys.prefix())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Drop for EtcdBoard {
    fn drop(&mut self) {
        self.shut();
        if let Some(runtime) = self.runtime.take() {
            // Does not block (a board may be dropped anywhere).
            runtime.shutdown_background();
        }
    }
}

/// The endpoints and prefix of an `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`
/// URL: endpoints as `http://HOST:PORT`, comma-separated.
pub(crate) fn parse_url(url: &str) -> Result<(String, String), JobBoardError> {
    let bad = |why: &str| JobBoardError::Backend {
        board: BOARD,
        message: format!(
            "`{url}` is not an etcd board URL (`etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`): {why}"
        ),
        source: None,
    };
    let rest = url
        .strip_prefix("etcd://")
        .ok_or_else(|| bad("it does not start with `etcd://`"))?;
    let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_end_matches('/');
    let endpoints: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("http://{h}"))
        .collect();
    if endpoints.is_empty() {
        return Err(bad("it names no host"));
    }
    let prefix = if prefix.is_empty() {
        EtcdBoard::DEFAULT_PREFIX
    } else {
        prefix
    };
    Ok((endpoints.join(","), prefix.to_owned()))
}

impl EtcdBoard {
    /// The prefix of a board whose URL names none.
    pub const DEFAULT_PREFIX: &'static str = "taskflow";

    /// Opens the board at `url`, `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`
    /// (plain HTTP; the prefix defaults to [`DEFAULT_PREFIX`](Self::DEFAULT_PREFIX)).
    pub fn open(url: &str, options: BoardOptions) -> Result<Self, JobBoardError> {
        let (endpoints, prefix) = parse_url(url)?;
        EtcdBoard::connect(&endpoints, &prefix, options)
    }

    /// Connects to the etcd cluster at `endpoints` (comma-separated,
    /// `http://HOST:PORT` or `HOST:PORT`), keeping every key of the board
    /// under `prefix` (`<prefix>/...`).
    ///
    /// Fails if no endpoint answers within a few seconds. Afterwards the
    /// board reconnects by itself: a call made while the cluster is
    /// unreachable is retried for up to 20 s.
    pub fn connect(
        endpoints: &str,
        prefix: &str,
        options: BoardOptions,
    ) -> Result<Self, JobBoardError> {
        let list: Vec<String> = endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                if e.contains("://") {
                    e.to_owned()
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        let shown = list.join(",");
        if list.is_empty() {
            return Err(JobBoardError::Backend {
                board: BOARD,
                message: format!("no endpoint in `{endpoints}`"),
                source: None,
            });
        }
        if prefix.trim_end_matches('/').is_empty() {
            return Err(JobBoardError::Backend {
                board: BOARD,
                message: format!("board at {shown}: the key prefix is empty"),
                source: None,
            });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("etcd-board")
            .enable_all()
            .build()
            .map_err(|e| JobBoardError::backend(BOARD, "starting the board's runtime", e))?;
        let connect = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(CALL_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE, KEEP_ALIVE)
            .with_keep_alive_while_idle(true);
        let keys = Keys::new(prefix);
        let (client, revision) = runtime.block_on(async {
            let client = Client::connect(&list, Some(connect))
                .await
                .map_err(|e| JobBoardError::backend(BOARD, format!("connecting to {shown}"), e))?;
            // A first read proves a server answers, and gives the revision
            // the watch starts after.
            let mut kv = client.kv_client();
            let read = kv.get(
                keys.root(),
                Some(GetOptions::new().with_prefix().with_count_only()),
            );
            let reply = tokio::time::timeout(CONNECT_TIMEOUT, read)
                .await
                .map_err(|_| JobBoardError::Backend {
                    board: BOARD,
                    message: format!("connecting to {shown}: no answer within {CONNECT_TIMEOUT:?}"),
                    source: None,
                })?
                .map_err(|e| JobBoardError::backend(BOARD, format!("connecting to {shown}"), e))?;
            let revision = reply.header().map_or(0, |h| h.revision());
            Ok::<_, JobBoardError>((client, revision))
        })?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            closed: AtomicBool::new(false),
            connected: AtomicBool::new(true),
            changes: Mutex::new(Generations::default()),
            changed: Condvar::new(),
            events: Notifier::new(BOARD),
            stop,
        });
        runtime.spawn(watch::run(
            client.clone(),
            keys.clone(),
            Arc::clone(&shared),
            revision + 1,
            stopped,
        ));
        Ok(EtcdBoard {
            runtime: Some(runtime),
            client,
            keys,
            ttl: ttl_for(options.lease),
            options,
            endpoints: shown,
            shared,
        })
    }

    /// The prefix of every key of this board.
    pub fn key_prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// The endpoints the board connects to (`http://HOST:PORT,...`).
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// The options the board was opened with.
    pub fn options(&self) -> &BoardOptions {
        &self.options
    }

    /// The TTL the board asks for each claim's etcd lease: its lease
    /// rounded up to whole seconds (the server raises it to its minimum,
    /// 2 s on a default server; claims carry the TTL granted).
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.ttl).unwrap_or_default())
    }

    /// Deletes every key of the board (jobs, claims, keys, entities under
    /// its prefix); returns how many it deleted. For tests and for tearing
    /// a board down: claims held elsewhere are lost.
    pub fn destroy(&self) -> Result<u64, JobBoardError> {
        let root = self.keys.root();
        let deleted = self.run("destroying the board", || async {
            let reply = self
                .client
                .kv_client()
                .delete(
                    root.clone(),
                    Some(etcd_client::DeleteOptions::new().with_prefix()),
                )
                .await?;
            Ok(reply.deleted())
        })?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }

    fn now(&self) -> u64 {
        self.options.clock.now_millis()
    }

    /// Marks the board closed: calls refuse, the watcher stops, waiters
    /// wake.
    fn shut(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.connected.store(false, Ordering::Release);
        let _ = self.shared.stop.send(true);
        self.shared.events.close();
        self.shared.bump(true);
    }

    fn closed(&self) -> JobBoardError {
        JobBoardError::Closed { board: BOARD }
    }

    /// Runs `attempt` on the board's runtime until it gives an answer:
    /// again at once when the job changed under it, again after a pause
    /// while etcd is unreachable (up to [`RETRY_FOR`]); `what` names the
    /// call in errors, with the endpoints.
    fn run<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, JobBoardError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let runtime = self.runtime.as_ref().ok_or_else(|| self.closed())?;
        let started = Instant::now();
        let mut pause = RETRY_FIRST;
        let mut contended = 0;
        loop {
            if self.shared.is_closed() {
                return Err(self.closed());
            }
            let call = attempt();
            let outcome =
                runtime.block_on(async { tokio::time::timeout(CALL_TIMEOUT, call).await });
            let failed = match outcome {
                Ok(Ok(value)) => {
                    self.shared.set_connected(true);
                    return Ok(value);
                }
                Ok(Err(Failure::Board(e))) => {
                    self.shared.set_connected(true);
                    return Err(e);
                }
                Ok(Err(Failure::Retry)) if contended < MAX_CONTENDED => {
                    contended += 1;
                    continue;
                }
                Ok(Err(Failure::Retry)) => {
                    return Err(JobBoardError::Backend {
                        board: BOARD,
                        message: format!(
                            "{what} at {}: the job changed under {contended} tries in a row",
                            self.endpoints
                        ),
                        source: None,
                    })
                }
                Ok(Err(Failure::Etcd(e))) if !transient(&e) => {
                    return Err(JobBoardError::backend(
                        BOARD,
                        format!("{what} at {}", self.endpoints),
                        e,
                    ));
                }
                Ok(Err(Failure::Etcd(e))) => Some(e),
                Err(_) => None,
            };
            self.shared.set_connected(false);
            if started.elapsed() >= RETRY_FOR {
                let message = format!(
                    "{what} at {}: unreachable for {:?}",
                    self.endpoints,
                    started.elapsed()
                );
                return Err(match failed {
                    Some(e) => JobBoardError::backend(BOARD, message, e),
                    None => JobBoardError::Backend {
                        board: BOARD,
                        message,
                        source: None,
                    },
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Job `id`'s record and claim marker, read at one revision.
    async fn read(&self, id: JobId) -> Result<(Stored, Option<Held>), Failure> {
        let txn = Txn::new().and_then(vec![
            TxnOp::get(self.keys.job(id), None),
            TxnOp::get(self.keys.claim(id), None),
        ]);
        let reply = self.client.kv_client().txn(txn).await?;
        let mut gets = gets(&reply);
        let held = match gets.get(1).and_then(|kvs| kvs.first()) {
            Some(kv) => Some(Held::decode(kv)?),
            None => None,
        };
        match gets.get_mut(0).and_then(|kvs| kvs.first()) {
            Some(kv) => Ok((Stored::decode(kv, &self.keys)?, held)),
            None => Err(Failure::Board(JobBoardError::NotFound(id))),
        }
    }

    /// Every key under `prefix` at `revision` (0: now), read in pages of
    /// [`PAGE`] keys so that no reply grows past what gRPC takes; returns
    /// them and the revision read at.
    async fn range(
        &self,
        prefix: &str,
        mut revision: i64,
    ) -> Result<(Vec<etcd_client::KeyValue>, i64), Failure> {
        let end = prefix_end(prefix);
        let mut from = prefix.as_bytes().to_vec();
        let mut all = Vec::new();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut reply = self
                .client
                .kv_client()
                .get(from.clone(), Some(options))
                .await?;
            if revision == 0 {
                revision = reply.header().map_or(0, |h| h.revision());
            }
            let more = reply.more();
            let kvs = reply.take_kvs();
            match kvs.last() {
                Some(last) if more => {
                    from = last.key().to_vec();
                    // The next key after the last one read.
                    from.push(0);
                }
                _ => {
                    all.extend(kvs);
                    return Ok((all, revision));
                }
            }
            all.extend(kvs);
        }
    }

    /// Every job record and claim marker, read at one revision.
    async fn snapshot(&self) -> Result<(Vec<Stored>, HashMap<JobId, Held>), Failure> {
        let (jobs, claims) = (self.keys.jobs(), self.keys.claims());
        let (records, revision) = self.range(&jobs, 0).await?;
        let (markers, _) = self.range(&claims, revision).await?;
        let mut held = HashMap::new();
        for kv in &markers {
            let id = Keys::id_in(kv.key(), &claims).ok_or_else(|| {
                corrupt(
                    String::from_utf8_lossy(kv.key()),
                    "the key does not end with a job id",
                )
            })?;
            held.insert(id, Held::decode(kv)?);
        }
        let stored = records
            .iter()
            .map(|kv| Stored::decode(kv, &self.keys))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((stored, held))
    }

    /// Every job as readers see it now, with whether each is claimable,
    /// and when `wait` should look again by itself (the next lapse of a
    /// live lease, the next scheduled job's time).
    fn look(&self, what: &str) -> Result<Look, JobBoardError> {
        let (stored, held) = self.run(what, || self.snapshot())?;
        let now = self.now();
        let mut next: Option<u64> = None;
        let mut jobs = Vec::with_capacity(stored.len());
        for s in &stored {
            let h = held.get(&s.id);
            let job = view(s, h, now);
            if live(s, h, now) {
                next = next.min_or(job.lease_expires_at);
            } else if job.state == JobState::Unclaimed && waits(&job, now) {
                next = next.min_or(job.not_before);
            }
            let can = claimable(s, h, now);
            jobs.push((job, can));
        }
        Ok((jobs, next, now))
    }

    /// Grants an etcd lease for a claim: its id and TTL (seconds).
    async fn grant(&self) -> Result<(i64, i64), Failure> {
        let reply = self.client.lease_client().grant(self.ttl, None).await?;
        Ok((reply.id(), reply.ttl()))
    }

    /// Revokes lease `id` in the background (a claim released, or a
    /// transaction lost): it would lapse by itself anyway.
    fn revoke_later(&self, id: i64) {
        let mut leases = self.client.lease_client();
        tokio::spawn(async move {
            let _ = leases.revoke(id).await;
        });
    }

    /// Keeps lease `id` alive once; `false` if it is gone (lapsed).
    async fn keep_alive(&self, id: i64) -> Result<bool, Failure> {
        match self.client.lease_client().keep_alive(id).await {
            Ok(_) => Ok(true),
            Err(etcd_client::Error::LeaseKeepAliveError(_)) => Ok(false),
            Err(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::NotFound => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The compare that the marker of job `id` is still as read.
    fn marker_is(&self, id: JobId, held: Option<&Held>) -> Compare {
        match held {
            None => Compare::create_revision(self.keys.claim(id), CompareOp::Equal, 0),
            Some(h) => Compare::mod_revision(self.keys.claim(id), CompareOp::Equal, h.mod_revision),
        }
    }

    /// The marker of a claim, attached to lease `lease`.
    fn put_marker(
        &self,
        id: JobId,
        owner: &str,
        epoch: u64,
        lease: i64,
        ttl: i64,
    ) -> Result<TxnOp, JobBoardError> {
        let marker = Marker {
            owner: owner.to_owned(),
            epoch,
            ttl,
        };
        let value = serde_json::to_vec(&marker).map_err(|e| {
            JobBoardError::backend(BOARD, format!("encoding the claim of job {id}: {e}"), e)
        })?;
        Ok(TxnOp::put(
            self.keys.claim(id),
            value,
            Some(PutOptions::new().with_lease(lease)),
        ))
    }

    /// Deletes key `key` if it still names job `id` (a nested
    /// transaction).
    fn delete_if_names(key: String, id: JobId) -> TxnOp {
        TxnOp::txn(
            Txn::new()
                .when(vec![Compare::value(
                    key.clone(),
                    CompareOp::Equal,
                    id.to_string(),
                )])
                .and_then(vec![TxnOp::delete(key, None)]),
        )
    }

    /// Writes `record` over job `stored` if it did not change, with `more`
    /// operations and `compares`; `Retry` if it changed.
    async fn commit(
        &self,
        stored: &Stored,
        record: &Record,
        compares: Vec<Compare>,
        more: Vec<TxnOp>,
    ) -> Result<i64, Failure> {
        let key = self.keys.job(stored.id);
        let mut when = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            stored.mod_revision,
        )];
        when.extend(compares);
        let mut ops = vec![TxnOp::put(key, record.encode()?, None)];
        ops.extend(more);
        let reply = self
            .client
            .kv_client()
            .txn(Txn::new().when(when).and_then(ops))
            .await?;
        if reply.succeeded() {
            Ok(reply.header().map_or(0, |h| h.revision()))
        } else {
            Err(Failure::Retry)
        }
    }

    async fn post_once(&self, id: JobId, record: &Record, value: &[u8]) -> Result<Job, Failure> {
        let job_key = self.keys.job(id);
        let mut when = vec![Compare::create_revision(
            job_key.clone(),
            CompareOp::Equal,
            0,
        )];
        let mut then = vec![TxnOp::put(job_key.clone(), value.to_vec(), None)];
        let mut otherwise = vec![TxnOp::get(job_key, None)];
        let exec = record.key.as_deref().map(|k| self.keys.exec(k));
        let unique = record.unique_key.as_deref().map(|k| self.keys.unique(k));
        for key in exec.iter().chain(unique.iter()) {
            when.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
            then.push(TxnOp::put(key.clone(), id.to_string(), None));
            otherwise.push(TxnOp::get(key.clone(), None));
        }
        let reply = self
            .client
            .kv_client()
            .txn(Txn::new().when(when).and_then(then).or_else(otherwise))
            .await?;
        let now = self.now();
        if reply.succeeded() {
            let revision = reply.header().map_or(0, |h| h.revision());
            let stored = Stored {
                id,
                record: record.clone(),
                mod_revision: revision,
                sequence: u64::try_from(revision).unwrap_or_default(),
            };
            return Ok(view(&stored, None, now));
        }
        let gets = gets(&reply);
        // The job is there: an earlier attempt of this post committed.
        if let Some(kv) = gets.first().and_then(|kvs| kvs.first()) {
            return Ok(view(&Stored::decode(kv, &self.keys)?, None, now));
        }
        let mut found = gets.iter().skip(1);
        if exec.is_some() {
            if let Some(kv) = found.next().and_then(|kvs| kvs.first()) {
                return Err(Failure::Board(JobBoardError::AlreadyPosted {
                    key: record.key.clone().unwrap_or_default(),
                    existing: id_value(kv)?,
                }));
            }
        }
        if unique.is_some() {
            if let Some(kv) = found.next().and_then(|kvs| kvs.first()) {
                return Err(Failure::Board(JobBoardError::Duplicate {
                    key: record.unique_key.clone().unwrap_or_default(),
                    existing: id_value(kv)?,
                }));
            }
        }
        // A key was taken and freed between the compare and the reads of
        // this one transaction: cannot happen, but look again rather than
        // fail.
        Err(Failure::Retry)
    }

    async fn claim_once(&self, id: JobId, owner: &str, op: &str) -> Result<Claim, Failure> {
        let (stored, held) = self.read(id).await?;
        let r = &stored.record;
        if r.op == op {
            // An earlier attempt of this claim committed.
            return Ok(Claim {
                job: id,
                owner: owner.to_owned(),
                epoch: Epoch::new(r.epoch),
                expires_at: r.lease_expires_at.unwrap_or_default(),
                control: r.control,
            });
        }
        let now = self.now();
        if !claimable(&stored, held.as_ref(), now) {
            return Err(Failure::Board(refusal(&stored, held.as_ref(), now)));
        }
        let asked = self.now();
        let (lease, ttl) = self.grant().await?;
        let expires_at = asked + millis(Duration::from_secs(u64::try_from(ttl).unwrap_or(0)));
        let mut record = r.clone();
        record.state = JobState::Claimed;
        record.owner = Some(owner.to_owned());
        record.epoch += 1;
        record.lease_expires_at = Some(expires_at);
        record.change = "claim".into();
        record.op = op.to_owned();
        let marker = self.put_marker(id, owner, record.epoch, lease, ttl)?;
        let committed = self
            .commit(
                &stored,
                &record,
                vec![self.marker_is(id, held.as_ref())],
                vec![marker],
            )
            .await;
        // Only a lost race is sure not to have committed: after a failed
        // call the marker may be on this lease (the retry finds out).
        if matches!(committed, Err(Failure::Retry)) {
            self.revoke_later(lease);
        }
        committed?;
        Ok(Claim {
            job: id,
            owner: owner.to_owned(),
            epoch: Epoch::new(record.epoch),
            expires_at,
            control: record.control,
        })
    }

    async fn renew_once(&self, claim: &Claim, op: &str) -> Result<Claim, Failure> {
        let (stored, held) = self.read(claim.job).await?;
        if stored.record.op == op {
            return Ok(Claim {
                expires_at: stored.record.lease_expires_at.unwrap_or_default(),
                control: stored.record.control,
                ..claim.clone()
            });
        }
        check_current(&stored, claim)?;
        let asked = self.now();
        // The claim's own lease, if it is still there; a new one otherwise.
        let mine = held.as_ref().filter(|h| h.marks(&stored.record));
        let kept = match mine {
            Some(h) if h.lease != 0 && self.keep_alive(h.lease).await? => Some(h.marker.ttl),
            _ => None,
        };
        let (granted, ttl) = match kept {
            Some(ttl) => (None, ttl),
            None => {
                let (lease, ttl) = self.grant().await?;
                (Some(lease), ttl)
            }
        };
        let expires_at = asked + millis(Duration::from_secs(u64::try_from(ttl).unwrap_or(0)));
        let mut record = stored.record.clone();
        record.lease_expires_at = Some(expires_at);
        record.change = "renew".into();
        record.op = op.to_owned();
        let more = match granted {
            Some(lease) => {
                vec![self.put_marker(claim.job, &claim.owner, claim.epoch.get(), lease, ttl)?]
            }
            None => Vec::new(),
        };
        let committed = self
            .commit(
                &stored,
                &record,
                vec![self.marker_is(claim.job, held.as_ref())],
                more,
            )
            .await;
        if let (Err(Failure::Retry), Some(lease)) = (&committed, granted) {
            self.revoke_later(lease);
        }
        committed?;
        Ok(Claim {
            expires_at,
            control: record.control,
            ..claim.clone()
        })
    }

    /// Releases `claim`: the job completes with `outcome`, or (`None`)
    /// goes back unclaimed.
    async fn release_once(
        &self,
        claim: &Claim,
        outcome: Option<&Outcome>,
        op: &str,
    ) -> Result<(), Failure> {
        let (stored, held) = self.read(claim.job).await?;
        if stored.record.op == op {
            return Ok(());
        }
        check_current(&stored, claim)?;
        let mut record = stored.record.clone();
        record.lease_expires_at = None;
        record.op = op.to_owned();
        let mut more = vec![TxnOp::delete(self.keys.claim(claim.job), None)];
        match outcome {
            Some(outcome) => {
                record.state = JobState::Complete;
                record.completed_at = Some(self.now());
                record.change = match outcome {
                    Outcome::Consumed => "consume",
                    Outcome::Trashed { .. } => "trash",
                }
                .into();
                record.outcome = Some(outcome.clone());
                if let Some(key) = &record.unique_key {
                    more.push(Self::delete_if_names(self.keys.unique(key), claim.job));
                }
            }
            None => {
                record.state = JobState::Unclaimed;
                record.owner = None;
                record.change = "abandon".into();
            }
        }
        self.commit(&stored, &record, Vec::new(), more).await?;
        if let Some(h) = held.filter(|h| h.marks(&stored.record) && h.lease != 0) {
            self.revoke_later(h.lease);
        }
        Ok(())
    }

    async fn request_once(&self, id: JobId, control: Control, op: &str) -> Result<Job, Failure> {
        let (stored, held) = self.read(id).await?;
        if stored.record.op != op {
            if stored.record.state == JobState::Complete {
                return Err(Failure::Board(JobBoardError::Complete(id)));
            }
            let mut record = stored.record.clone();
            record.control = Some(stronger(record.control, control));
            record.change = "request".into();
            record.op = op.to_owned();
            let revision = self
                .commit(&stored, &record, Vec::new(), Vec::new())
                .await?;
            let stored = Stored {
                record,
                mod_revision: revision,
                ..stored
            };
            return Ok(view(&stored, held.as_ref(), self.now()));
        }
        Ok(view(&stored, held.as_ref(), self.now()))
    }

    async fn reopen_once(&self, id: JobId, op: &str) -> Result<Job, Failure> {
        let (stored, held) = self.read(id).await?;
        if stored.record.op == op {
            return Ok(view(&stored, held.as_ref(), self.now()));
        }
        if stored.record.state != JobState::Complete {
            return Err(Failure::Board(JobBoardError::NotComplete(id)));
        }
        let mut compares = Vec::new();
        let mut more = Vec::new();
        if let Some(key) = &stored.record.unique_key {
            let unique = self.keys.unique(key);
            let reply = self.client.kv_client().get(unique.clone(), None).await?;
            match reply.kvs().first() {
                None => compares.push(Compare::create_revision(
                    unique.clone(),
                    CompareOp::Equal,
                    0,
                )),
                Some(kv) => {
                    let holder = id_value(kv)?;
                    if holder != id {
                        return Err(Failure::Board(JobBoardError::Duplicate {
                            key: key.clone(),
                            existing: holder,
                        }));
                    }
                    compares.push(Compare::mod_revision(
                        unique.clone(),
                        CompareOp::Equal,
                        kv.mod_revision(),
                    ));
                }
            }
            more.push(TxnOp::put(unique, id.to_string(), None));
        }
        let mut record = stored.record.clone();
        record.state = JobState::Unclaimed;
        record.owner = None;
        record.lease_expires_at = None;
        record.outcome = None;
        record.completed_at = None;
        record.control = None;
        record.revision += 1;
        record.change = "reopen".into();
        record.op = op.to_owned();
        let revision = self.commit(&stored, &record, compares, more).await?;
        let stored = Stored {
            record,
            mod_revision: revision,
            ..stored
        };
        Ok(view(&stored, None, self.now()))
    }

    async fn purge_one(&self, stored: &Stored) -> Result<bool, Failure> {
        let id = stored.id;
        let mut ops = vec![
            TxnOp::delete(self.keys.job(id), None),
            TxnOp::delete(self.keys.claim(id), None),
        ];
        if let Some(key) = &stored.record.key {
            ops.push(Self::delete_if_names(self.keys.exec(key), id));
        }
        if let Some(key) = &stored.record.unique_key {
            ops.push(Self::delete_if_names(self.keys.unique(key), id));
        }
        let txn = Txn::new()
            .when(vec![Compare::mod_revision(
                self.keys.job(id),
                CompareOp::Equal,
                stored.mod_revision,
            )])
            .and_then(ops);
        let reply = self.client.kv_client().txn(txn).await?;
        if reply.succeeded() {
            return Ok(true);
        }
        // Changed (reopened) or gone (purged by another board, or by an
        // earlier attempt of this call): either way not purged here now.
        Ok(false)
    }

    fn open_check(&self) -> Result<(), JobBoardError> {
        if self.shared.is_closed() {
            Err(self.closed())
        } else {
            Ok(())
        }
    }
}

/// What [`EtcdBoard::look`] sees: every job as readers see it with
/// whether it is claimable, the time `wait` should look again by itself
/// (if any), and the time it looked at.
type Look = (Vec<(Job, bool)>, Option<u64>, u64);

/// The end of the range of keys starting with `prefix` (its last byte
/// plus one; the board's prefixes end with `/`).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: to the end of the keyspace.
    vec![0]
}

/// The key-values of each range operation of a transaction's reply.
fn gets(reply: &TxnResponse) -> Vec<Vec<etcd_client::KeyValue>> {
    reply
        .op_responses()
        .into_iter()
        .filter_map(|r| match r {
            TxnOpResponse::Get(mut get) => Some(get.take_kvs()),
            _ => None,
        })
        .collect()
}

/// `Option::min` where `None` is "no time yet", not the least.
trait MinOr {
    fn min_or(self, other: Option<u64>) -> Option<u64>;
}

impl MinOr for Option<u64> {
    fn min_or(self, other: Option<u64>) -> Option<u64> {
        match (self, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl JobBoard for EtcdBoard {
    fn post(&self, new: NewJob) -> Result<Job, JobBoardError> {
        self.open_check()?;
        let id = JobId::new();
        let record = Record {
            change: "post".into(),
            op: Uuid::new_v4().to_string(),
            name: new.name,
            details: new.details,
            logbook: new.logbook,
            flow_detail: new.flow_detail,
            priority: new.priority,
            created_at: self.now(),
            state: JobState::Unclaimed,
            owner: None,
            epoch: 0,
            lease_expires_at: None,
            outcome: None,
            completed_at: None,
            not_before: new.not_before,
            unique_key: new.unique_key,
            key: new.key,
            control: None,
            revision: 1,
        };
        let value = record.encode()?;
        self.run("posting", || self.post_once(id, &record, &value))
    }

    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        let (stored, held) = self.run("reading a job", || self.read(id))?;
        Ok(view(&stored, held.as_ref(), self.now()))
    }

    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        let op = Uuid::new_v4().to_string();
        self.run("claiming", || self.claim_once(id, owner, &op))
    }

    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        let op = Uuid::new_v4().to_string();
        self.run("renewing", || self.renew_once(claim, &op))
    }

    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        let op = Uuid::new_v4().to_string();
        self.run("consuming", || {
            self.release_once(claim, Some(&Outcome::Consumed), &op)
        })
    }

    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        let op = Uuid::new_v4().to_string();
        self.run("abandoning", || self.release_once(claim, None, &op))
    }

    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        let op = Uuid::new_v4().to_string();
        let outcome = Outcome::Trashed {
            reason: reason.to_owned(),
        };
        self.run("trashing", || self.release_once(claim, Some(&outcome), &op))
    }

    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        let op = Uuid::new_v4().to_string();
        self.run("requesting a stop or cancel", || {
            self.request_once(id, control, &op)
        })
    }

    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        let op = Uuid::new_v4().to_string();
        self.run("reopening", || self.reopen_once(id, &op))
    }

    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        let (jobs, _, _) = self.look("listing jobs")?;
        let mut jobs: Vec<Job> = jobs
            .into_iter()
            .filter(|(job, can)| job.state != JobState::Complete && (!only_unclaimed || *can))
            .map(|(job, _)| job)
            .collect();
        jobs.sort_by(iter_order);
        Ok(jobs)
    }

    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        let (jobs, _, _) = self.look("listing all jobs")?;
        let mut jobs: Vec<Job> = jobs.into_iter().map(|(job, _)| job).collect();
        jobs.sort_by_key(|job| job.sequence);
        Ok(jobs)
    }

    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let seen = self.shared.generations();
            let (jobs, next, now) = self.look("waiting")?;
            if jobs.iter().any(|(_, can)| *can) {
                return Ok(true);
            }
            let start = Instant::now();
            if deadline.is_some_and(|d| start >= d) {
                return Ok(false);
            }
            let mut until = start + SLICE;
            if let Some(d) = deadline {
                until = until.min(d);
            }
            if let Some(at) = next {
                until = until.min(start + Duration::from_millis(at.saturating_sub(now)));
            }
            if !self.options.clock.is_system() {
                until = until.min(start + CUSTOM_CLOCK_POLL);
            }
            self.shared.wait_change(seen, |g| g.claimable, until);
        }
    }

    /// Reads the job again at each change the board's watch sees (and at
    /// least every second), so it sees a completion as soon as the watch
    /// does.
    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let seen = self.shared.generations();
            let job = self.get(id)?;
            if job.state == JobState::Complete {
                return Ok(JobWait::Complete(job));
            }
            let start = Instant::now();
            if deadline.is_some_and(|d| start >= d) {
                return Ok(JobWait::TimedOut(job));
            }
            let mut until = start + SLICE;
            if let Some(d) = deadline {
                until = until.min(d);
            }
            self.shared.wait_change(seen, |g| g.any, until);
        }
    }

    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        let (stored, held) = self.run("finding an owner", || self.read(id))?;
        Ok(if live(&stored, held.as_ref(), self.now()) {
            stored.record.owner
        } else {
            None
        })
    }

    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        let value = serde_json::to_vec(entity).map_err(|e| {
            JobBoardError::backend(BOARD, format!("registering: encoding the entity: {e}"), e)
        })?;
        let key = self.keys.entity(&entity.name);
        self.run("registering an entity", || async {
            self.client
                .kv_client()
                .put(key.clone(), value.clone(), None)
                .await?;
            Ok(())
        })
    }

    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        let prefix = self.keys.entities();
        let kvs = self.run("reading entities", || async {
            let mut reply = self
                .client
                .kv_client()
                .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
                .await?;
            Ok(reply.take_kvs())
        })?;
        let mut entities = kvs
            .iter()
            .map(|kv| {
                serde_json::from_slice::<Entity>(kv.value()).map_err(|e| {
                    corrupt(
                        String::from_utf8_lossy(kv.key()),
                        format!("not an entity: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        entities.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entities)
    }

    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        self.open_check()?;
        if self.options.retention == Retention::Forever {
            return Ok(Vec::new());
        }
        let (stored, _) = self.run("purging", || self.snapshot())?;
        let now = self.now();
        // Complete jobs, most recently completed first.
        let mut complete: Vec<&Stored> = stored
            .iter()
            .filter(|s| s.record.state == JobState::Complete && s.record.completed_at.is_some())
            .collect();
        complete.sort_by_key(|s| {
            std::cmp::Reverse((s.record.completed_at.unwrap_or_default(), s.sequence))
        });
        let doomed: Vec<&Stored> = match &self.options.retention {
            Retention::Forever => Vec::new(),
            Retention::Last(n) => complete.into_iter().skip(*n).collect(),
            Retention::For(keep) => {
                let keep = millis(*keep);
                complete
                    .into_iter()
                    .filter(|s| {
                        s.record
                            .completed_at
                            .unwrap_or_default()
                            .saturating_add(keep)
                            < now
                    })
                    .collect()
            }
        };
        let mut purged = Vec::new();
        // Oldest first.
        for s in doomed.into_iter().rev() {
            if self.run("purging", || self.purge_one(s))? {
                purged.push(view(s, None, now));
            }
        }
        Ok(purged)
    }

    fn close(&self) -> Result<(), JobBoardError> {
        self.shut();
        Ok(())
    }

    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        self.open_check()?;
        self.shared.events.subscribe(listener)
    }

    fn job_count(&self) -> Result<usize, JobBoardError> {
        let (stored, _) = self.run("counting jobs", || self.snapshot())?;
        Ok(stored
            .iter()
            .filter(|s| s.record.state != JobState::Complete)
            .count())
    }

    fn connected(&self) -> bool {
        !self.shared.is_closed() && self.shared.connected.load(Ordering::Acquire)
    }

    /// Always fresh: every read is linearizable (etcd's default: it goes
    /// through the leader's read index, never a stale follower), and the
    /// board keeps no cache.
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        self.iterjobs(options.only_unclaimed)
    }
}

#[cfg(test)]
impl EtcdBoard {
    /// How many keys the board has under its prefix.
    fn destroy_count_for_tests(&self) -> i64 {
        let root = self.keys.root();
        self.run("counting keys", || async {
            let reply = self
                .client
                .kv_client()
                .get(
                    root.clone(),
                    Some(GetOptions::new().with_prefix().with_count_only()),
                )
                .await?;
            Ok(reply.count())
        })
        .unwrap_or(-1)
    }

    /// Writes `value` at `key`, as is.
    fn put_raw_for_tests(&self, key: &str, value: &[u8]) {
        let done = self.run("writing a raw key", || async {
            self.client
                .kv_client()
                .put(key.to_owned(), value.to_vec(), None)
                .await?;
            Ok(())
        });
        assert!(done.is_ok(), "{done:?}");
    }
}
