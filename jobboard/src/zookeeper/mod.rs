//! The ZooKeeper board: conductors on many hosts sharing a ZooKeeper
//! ensemble (3.6 or later), in TaskFlow's own layout.
//!
//! # Layout
//!
//! Everything lives under the board's root node (`/taskflow/jobs` unless
//! told otherwise):
//!
//! ```text
//! ROOT/job0000000001        one persistent node per job (TaskFlow's name), its
//!                           data the job's JSON record; its version fences
//!                           every change to the job
//! ROOT/job0000000001.lock   while claimed: an ephemeral node of the claiming
//!                           board's session, holding {owner, epoch}
//! ROOT/.seq                 the post counter: its data version is the last
//!                           job's sequence number
//! ROOT/.ids/<job id>        job id -> sequence (the trait looks jobs up by id)
//! ROOT/.unique/<key>        a uniqueness key -> the job holding it, while that
//!                           job is not complete
//! ROOT/.keys/<key>          an execution key -> its job, until purged
//! ROOT/.events/<kind>-<id>-0000000042
//!                           persistent sequential: one per change, in commit
//!                           order (the newest 1,000 or so are kept)
//! ROOT/.entity/<name>       the registered entities (TaskFlow's `.entity`)
//! ROOT/.clock               a scratch node whose mtime reads the server clock
//! ```
//!
//! (Keys and names are stored hex-encoded, since a node name may not hold
//! `/`.)
//!
//! # Changes
//!
//! Each change reads the job node (data and version) and its lock, decides
//! by the lease rules, and commits one multi-op: the job node's new record
//! written *at the version read* (so of racing claimers, one commits and
//! the others re-read and see the job claimed), together with the lock
//! node created or deleted, key nodes created or deleted (creation fails
//! if the key is held: `Duplicate`/`AlreadyPosted`, nothing written), and
//! the change's event node. The epoch is a counter in the job record,
//! raised in the claim's multi-op; a claim whose epoch or owner is not the
//! record's is refused. Every change carries a token in the record, so a
//! change retried after a lost reply (the connection dropped mid-call)
//! returns what it did instead of refusing itself.
//!
//! # Leases and sessions
//!
//! Lease times are the ZooKeeper server's clock: before deciding, a change
//! (and a read, which shows lapsed claims as unclaimed) writes the scratch
//! node `.clock` and takes its modification time as "now", so clients'
//! clocks do not matter (a custom
//! [`Clock`](crate::Clock) in [`BoardOptions`] replaces it, for tests). A
//! claim lasts the board's lease unless renewed, as on every board. The
//! lock node adds what ZooKeeper offers: it is ephemeral, so when the
//! claiming board's session ends (its process died, or was cut off for
//! longer than the session timeout) the server deletes it on its own
//! clock, and the claim counts as lapsed at once, even with a long lease.
//! The session timeout is [`ZookeeperBoard::SESSION_TIMEOUT`] (6 s) unless
//! [`connect_with`](ZookeeperBoard::connect_with) asks for another; the
//! server clamps it to between 2 and 20 times its `tickTime` (4-40 s with
//! the usual 2 s tick). A dead owner's job is thus claimable after
//! whichever comes first: its lease (default 1 s) or its session timeout.
//! The server expires sessions in tick-sized buckets, so with the defaults
//! a SIGKILLed owner's lock goes 6-8 s after it was last heard of (the
//! tests measured 6.2-7.7 s); with the default lease its job is taken over
//! after about 1 s, by the lease.
//!
//! # Waiting and events
//!
//! The board keeps persistent watches on its root (job and lock nodes come
//! and go: posts, claims, completions, expired sessions) and on `.events`;
//! `wait` and `wait_until_complete` look again when either fires, and
//! `wait` wakes by itself when the next lease lapses or the next scheduled
//! job is due. Listeners are told of the event nodes in sequence order.
//!
//! # Connection
//!
//! The client reconnects by itself while the session lives (a server
//! restarted within the session timeout keeps it, and the locks with it);
//! a call cut off meanwhile is retried for up to [`ZookeeperBoard::RETRY_FOR`] (30 s). An expired
//! session is replaced by a new one. Listing reads every job node (sent
//! together), so it costs one read per job.
//!
//! The client is async (`zookeeper-client`, on tokio); the board owns a
//! small runtime (one worker thread) and blocks on it, so **its methods
//! must not be called from a thread that is running an async runtime**
//! (use `spawn_blocking` there).

mod layout;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use taskflow_persistence::Epoch;
use zookeeper_client as zk;

use self::layout::{Child, Layout, LockRecord, Record};
use crate::events::Notifier;
use crate::lease::{self, millis};
use crate::sync::{lock, wait_timeout};
use crate::{
    BoardEvent, BoardListener, BoardOptions, Claim, Control, Entity, Job, JobBoard, JobBoardError,
    JobId, JobState, JobWait, ListOptions, NewJob, Outcome, Retention, Subscription,
};

/// The board's name in errors and logs.
const BOARD: &str = "zookeeper";

/// The session timeout the board asks for (the client's default too): a
/// dead board's locks are deleted by the server this long after it was
/// last heard of.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// How long a call cut off by a lost connection is retried before it
/// fails (a server restarting, an ensemble electing a leader).
const RETRY_FOR: Duration = Duration::from_secs(30);

/// The pause between two tries of a call cut off by a lost connection.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How long `close` waits for the server to close the session.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How long connecting may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The board's root when a URL names none (TaskFlow's default path).
const DEFAULT_ROOT: &str = "/taskflow/jobs";

/// How many event nodes are kept, about: a listener's watcher cut off for
/// longer than it takes to make this many changes misses the rest.
const EVENTS_KEPT: u64 = 1000;

/// Every how many events the old ones are trimmed.
const TRIM_EVERY: u64 = 100;

/// How often `wait` looks again when the board's clock is not the
/// server's (a custom clock), since no watch fires when it passes a time.
const CUSTOM_CLOCK_POLL: Duration = Duration::from_millis(50);

/// The longest a `wait` sleeps between two looks at whether the board was
/// closed.
const WAIT_SLICE: Duration = Duration::from_secs(1);

/// How often one change may lose a race (another change committed between
/// its read and its write) before it gives up.
const MAX_CONFLICTS: usize = 10_000;

/// Why one try of a call failed: a board answer, or the client's error
/// (which may call for another try).
enum Fail {
    Board(JobBoardError),
    Zk { what: String, err: zk::Error },
}

impl From<JobBoardError> for Fail {
    fn from(e: JobBoardError) -> Self {
        Fail::Board(e)
    }
}

/// A client error while doing `what`.
fn zkf(what: impl Into<String>) -> impl FnOnce(zk::Error) -> Fail {
    move |err| Fail::Zk {
        what: what.into(),
        err,
    }
}

/// The error of a multi-op that failed as a whole (not one of its ops).
fn multi_fail(what: &str, e: zk::MultiWriteError) -> Fail {
    match e {
        zk::MultiWriteError::RequestFailed { source } => zkf(what)(source),
        zk::MultiWriteError::OperationFailed { index, source } => Fail::Zk {
            what: format!("{what} (operation {index} of the transaction)"),
            err: source,
        },
    }
}

/// Whether `err` is worth another try after a pause (the connection).
fn transient(err: &zk::Error) -> bool {
    // `Custom` carries the socket's own errors (a connection reset by a
    // server going away), which the client recovers from by reconnecting.
    matches!(
        err,
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::NoHosts | zk::Error::Custom(_)
    )
}

/// Whether `err` says the session is gone (a new one is needed).
fn session_gone(err: &zk::Error) -> bool {
    matches!(err, zk::Error::SessionExpired | zk::Error::ClientClosed)
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

fn sequential() -> zk::CreateOptions<'static> {
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all())
}

/// The job as the lease rules see it: a claim whose lock node is gone
/// (the claiming board's session ended) has lapsed.
fn ruled(job: &Job, locked: bool) -> Job {
    let mut j = job.clone();
    if j.state == JobState::Claimed && !locked {
        j.lease_expires_at = Some(0);
    }
    j
}

/// The job as readers see it at `now`: lapsed claims read as unclaimed,
/// the lease time as stored.
fn seen(job: &Job, locked: bool, now: u64) -> Job {
    let mut v = lease::view(ruled(job, locked), now);
    v.lease_expires_at = job.lease_expires_at;
    v
}

/// A job node as read: its record, version, sequence, and whether it has
/// a lock node.
struct Read {
    record: Record,
    version: i32,
    mzxid: i64,
    seq: u64,
    /// The session owning its lock node, if it has one (`Some(0)`: a lock
    /// seen in a listing, its session not read).
    lock: Option<i64>,
}

/// How one board talks to ZooKeeper; shared with its watcher task.
struct Inner {
    hosts: String,
    url: String,
    layout: Layout,
    options: BoardOptions,
    session_timeout: Duration,
    client: Mutex<Option<zk::Client>>,
    closed: AtomicBool,
    connected: AtomicBool,
    /// Job id -> sequence, as read from the id index (ids never move).
    ids: Mutex<HashMap<JobId, u64>>,
    events: Notifier,
    /// Bumped whenever a watch fires; `wait` sleeps on it.
    generation: Mutex<u64>,
    changed: Condvar,
    /// Tells the watcher task to stop.
    stop: tokio::sync::watch::Sender<bool>,
    /// The highest event sequence seen, for trimming.
    trimmed_at: AtomicU64,
}

/// A [`JobBoard`] kept in ZooKeeper, for conductors on many hosts, in
/// TaskFlow's layout (a node per job, an ephemeral lock node per claim).
/// Feature `zookeeper`.
///
/// Every change is one multi-op fenced by the job node's version, so of
/// any number of claimers on any hosts one wins; lease times are the
/// server's clock; a claim's lock node goes with its board's session. The
/// layout and rules are in the module documentation (`src/zookeeper/mod.rs`).
///
/// The board owns a small tokio runtime and blocks on it: do not call its
/// methods from a thread running an async runtime.
///
/// ```no_run
/// use std::time::Duration;
/// use taskflow_jobboard::{BoardOptions, JobBoard, NewJob, ZookeeperBoard};
///
/// let board = ZookeeperBoard::open("zookeeper://127.0.0.1:2181/taskflow/jobs", BoardOptions::default())?;
/// let job = board.post(NewJob::new("provision"))?;
/// if board.wait(Duration::from_secs(5))? {
///     let claim = board.claim(job.id, "conductor-1")?;
///     board.consume(&claim)?;
/// }
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
pub struct ZookeeperBoard {
    inner: Arc<Inner>,
    watching: AtomicBool,
    /// Taken (and shut down without blocking) when the board drops.
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for ZookeeperBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZookeeperBoard")
            .field("url", &self.inner.url)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Drop for ZookeeperBoard {
    fn drop(&mut self) {
        self.shut();
        // Without waiting for its tasks (which end at their next step), so
        // that a board may be dropped anywhere, an async context included.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Splits `zookeeper://HOST:PORT[,HOST:PORT...][/ROOT/PATH]` (or
/// `zk://...`) into its hosts and root (default [`DEFAULT_ROOT`]).
fn parse_url(url: &str) -> Result<(String, String), JobBoardError> {
    let bad = |why: &str| JobBoardError::Backend {
        board: BOARD,
        message: format!("`{url}` is not a ZooKeeper board URL: {why}"),
        source: None,
    };
    let rest = url
        .strip_prefix("zookeeper://")
        .or_else(|| url.strip_prefix("zk://"))
        .ok_or_else(|| bad("expected `zookeeper://HOST:PORT[,HOST:PORT...]/ROOT/PATH`"))?;
    let (hosts, root) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if hosts.is_empty() {
        return Err(bad("no host"));
    }
    let root = root.trim_end_matches('/');
    let root = if root.is_empty() { DEFAULT_ROOT } else { root };
    Ok((hosts.to_owned(), root.to_owned()))
}

impl ZookeeperBoard {
    /// The session timeout a board asks for unless told otherwise (6 s,
    /// the client's default): a dead board's lock nodes are deleted by the
    /// server this long after it was last heard of.
    pub const SESSION_TIMEOUT: Duration = SESSION_TIMEOUT;

    /// How long a call cut off by a lost connection is retried before it
    /// fails (30 s).
    pub const RETRY_FOR: Duration = RETRY_FOR;

    /// The root of a board whose URL names none: `/taskflow/jobs`,
    /// TaskFlow's default path.
    pub const DEFAULT_ROOT: &'static str = DEFAULT_ROOT;

    /// Opens the board at `url`,
    /// `zookeeper://HOST:PORT[,HOST:PORT...][/ROOT/PATH]` (or `zk://...`; root
    /// [`DEFAULT_ROOT`](Self::DEFAULT_ROOT) when none is given), as
    /// [`connect`](Self::connect) does.
    pub fn open(url: &str, options: BoardOptions) -> Result<Self, JobBoardError> {
        let (hosts, root) = parse_url(url)?;
        Self::connect(&hosts, &root, options)
    }

    /// Connects to the ensemble at `hosts` (`HOST:PORT[,HOST:PORT...]`) and
    /// keeps the board under node `root` (created with its parents if
    /// missing), with the [`SESSION_TIMEOUT`](Self::SESSION_TIMEOUT). Fails if no server answers
    /// within 10 s.
    pub fn connect(hosts: &str, root: &str, options: BoardOptions) -> Result<Self, JobBoardError> {
        Self::connect_with(hosts, root, options, SESSION_TIMEOUT)
    }

    /// As [`connect`](Self::connect), asking the server for
    /// `session_timeout` (which it clamps to between 2 and 20 times its
    /// tick): how long after this board was last heard of its locks are
    /// deleted.
    pub fn connect_with(
        hosts: &str,
        root: &str,
        options: BoardOptions,
        session_timeout: Duration,
    ) -> Result<Self, JobBoardError> {
        let root = if root.starts_with('/') {
            root.to_owned()
        } else {
            format!("/{root}")
        };
        let url = format!("zookeeper://{hosts}{root}");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zookeeper-board")
            .enable_all()
            .build()
            .map_err(|e| {
                JobBoardError::backend(BOARD, format!("starting the runtime for {url}"), e)
            })?;
        let (stop, _) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner {
            hosts: hosts.to_owned(),
            url,
            layout: Layout::new(&root),
            options,
            session_timeout,
            client: Mutex::new(None),
            closed: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            ids: Mutex::new(HashMap::new()),
            events: Notifier::new(BOARD),
            generation: Mutex::new(0),
            changed: Condvar::new(),
            stop,
            trimmed_at: AtomicU64::new(0),
        });
        let setup = Arc::clone(&inner);
        runtime.block_on(async move {
            let client = setup
                .fresh_client()
                .await
                .map_err(|f| setup.final_error(f))?;
            setup
                .prepare(&client)
                .await
                .map_err(|f| setup.final_error(f))?;
            setup.connected.store(true, Ordering::Release);
            setup.track(&client);
            *lock(&setup.client) = Some(client);
            Ok::<(), JobBoardError>(())
        })?;
        Ok(ZookeeperBoard {
            inner,
            watching: AtomicBool::new(false),
            runtime: Some(runtime),
        })
    }

    /// The board's URL (`zookeeper://HOSTS/ROOT`).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The board's root node.
    pub fn root(&self) -> &str {
        self.inner.layout.root()
    }

    /// The options the board was opened with.
    pub fn options(&self) -> &BoardOptions {
        &self.inner.options
    }

    /// The session timeout the server granted this board's current
    /// session.
    pub fn session_timeout(&self) -> Option<Duration> {
        lock(&self.inner.client)
            .as_ref()
            .map(zk::Client::session_timeout)
    }

    /// Deletes the board's root node and everything under it (jobs, locks,
    /// keys, events, entities); returns how many nodes it deleted. For
    /// tests and for tearing a board down: claims held elsewhere are lost.
    pub fn destroy(&self) -> Result<u64, JobBoardError> {
        let root = self.inner.layout.root().to_owned();
        self.run("destroying the board", |c| {
            let root = root.clone();
            async move { delete_tree(&c, &root).await }
        })
    }

    /// Runs `op` on the runtime, retried as [`Inner::retry`] does.
    fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, JobBoardError>
    where
        F: Fn(zk::Client) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        self.runtime()?.block_on(self.inner.retry(what, op))
    }

    /// The board's runtime (there until the board drops).
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, JobBoardError> {
        self.runtime
            .as_ref()
            .ok_or(JobBoardError::Closed { board: BOARD })
    }

    /// Starts the watcher task, once, having set its watches (so that a
    /// change made after this returns is seen).
    fn watch(&self) -> Result<(), JobBoardError> {
        if self.watching.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        let runtime = self.runtime()?;
        match runtime.block_on(inner.arm(None)) {
            Ok(armed) => {
                let stop = self.inner.stop.subscribe();
                runtime.spawn(watch_loop(inner, armed, stop));
                Ok(())
            }
            Err(f) => {
                self.watching.store(false, Ordering::Release);
                Err(self.inner.final_error(f))
            }
        }
    }

    /// Closes the session and stops the watcher.
    fn shut(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.connected.store(false, Ordering::Release);
        let _ = self.inner.stop.send(true);
        lock(&self.inner.client).take();
        self.inner.events.close();
        self.inner.bump();
    }

    /// Blocks until a watch fires after `seen` or `until` passes.
    fn sleep_until_change(&self, seen: u64, until: Instant) {
        let mut generation = lock(&self.inner.generation);
        while *generation == seen && !self.inner.closed.load(Ordering::Acquire) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            generation = wait_timeout(&self.inner.changed, generation, left.min(WAIT_SLICE));
        }
    }

    fn generation(&self) -> u64 {
        *lock(&self.inner.generation)
    }

    fn check_open(&self) -> Result<(), JobBoardError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(JobBoardError::Closed { board: BOARD })
        } else {
            Ok(())
        }
    }
}

/// Deletes `path` and everything under it; returns how many nodes.
async fn delete_tree(c: &zk::Client, path: &str) -> Result<u64, Fail> {
    let mut deleted = 0;
    let children = match c.list_children(path).await {
        Ok(children) => children,
        Err(zk::Error::NoNode) => return Ok(0),
        Err(e) => return Err(zkf(format!("listing {path}"))(e)),
    };
    let base = path.trim_end_matches('/');
    for name in children {
        let child = format!("{base}/{name}");
        deleted += Box::pin(delete_tree(c, &child)).await?;
    }
    if path != "/" {
        match c.delete(path, None).await {
            Ok(()) => deleted += 1,
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(zkf(format!("deleting {path}"))(e)),
        }
    }
    Ok(deleted)
}

impl Inner {
    /// A board error for a failure that is not retried (any more).
    fn final_error(&self, f: Fail) -> JobBoardError {
        match f {
            Fail::Board(e) => e,
            Fail::Zk { what, err } => {
                JobBoardError::backend(BOARD, format!("{what} at {}", self.url), err)
            }
        }
    }

    fn bump(&self) {
        *lock(&self.generation) += 1;
        self.changed.notify_all();
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn set_connected(&self, up: bool) {
        let was = self.connected.swap(up, Ordering::AcqRel);
        if was && !up {
            tracing::warn!(url = %self.url, "zookeeper board disconnected");
        }
    }

    /// A new session with the ensemble.
    async fn fresh_client(&self) -> Result<zk::Client, Fail> {
        let connect = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_fail_eagerly()
            .connect(&self.hosts);
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(zkf("connecting")(e)),
            Err(_) => Err(zkf("connecting")(zk::Error::Timeout)),
        }
    }

    /// Creates the root and the board's folders where missing.
    async fn prepare(&self, c: &zk::Client) -> Result<(), Fail> {
        let root = self.layout.root().to_owned();
        if root != "/" {
            c.mkdir(&root, &persistent())
                .await
                .map_err(zkf(format!("creating the board's root {root}")))?;
        }
        for folder in self.layout.folders() {
            match c.create(&folder, &[], &persistent()).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(zkf(format!("creating {folder}"))(e)),
            }
        }
        Ok(())
    }

    /// The current client, or a new session if there is none.
    async fn client(self: &Arc<Self>) -> Result<zk::Client, Fail> {
        if self.closed() {
            return Err(JobBoardError::Closed { board: BOARD }.into());
        }
        let current = lock(&self.client).clone();
        match current {
            Some(c) => Ok(c),
            None => self.replace(None).await,
        }
    }

    /// Replaces the client whose session is `stale` (or none) by a new
    /// session, unless another caller did already.
    async fn replace(self: &Arc<Self>, stale: Option<zk::SessionId>) -> Result<zk::Client, Fail> {
        {
            let slot = lock(&self.client);
            if let Some(c) = slot.as_ref() {
                if Some(c.session_id()) != stale {
                    return Ok(c.clone());
                }
            }
        }
        let fresh = self.fresh_client().await?;
        let mut slot = lock(&self.client);
        if self.closed() {
            return Err(JobBoardError::Closed { board: BOARD }.into());
        }
        if let Some(c) = slot.as_ref() {
            if Some(c.session_id()) != stale {
                return Ok(c.clone());
            }
        }
        tracing::info!(url = %self.url, "zookeeper board: new session");
        *slot = Some(fresh.clone());
        drop(slot);
        self.track(&fresh);
        Ok(fresh)
    }

    /// Follows the session state of `c` into [`connected`](JobBoard::connected),
    /// until the session ends (a task on the board's runtime).
    fn track(self: &Arc<Self>, c: &zk::Client) {
        let mut state = c.state_watcher();
        let board = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let now = state.changed().await;
                let Some(inner) = board.upgrade() else {
                    return;
                };
                match now {
                    zk::SessionState::Disconnected => inner.set_connected(false),
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                        inner.set_connected(!inner.closed());
                    }
                    state if terminal(state) => {
                        inner.set_connected(false);
                        return;
                    }
                    _ => {}
                }
            }
        });
    }

    /// Runs `op` with the current client; a try cut off by a lost
    /// connection is tried again (for up to [`RETRY_FOR`]), one whose
    /// session expired with a new session.
    async fn retry<T, F, Fut>(self: &Arc<Self>, what: &str, op: F) -> Result<T, JobBoardError>
    where
        F: Fn(zk::Client) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let result = match self.client().await {
                Ok(c) => match op(c.clone()).await {
                    Err(Fail::Zk { err, .. }) if session_gone(&err) && !self.closed() => {
                        self.set_connected(false);
                        match self.replace(Some(c.session_id())).await {
                            Ok(_) if Instant::now() < deadline => continue,
                            Ok(_) => Err(zkf(what)(err)),
                            Err(f) => Err(f),
                        }
                    }
                    other => other,
                },
                Err(f) => Err(f),
            };
            match result {
                Ok(v) => {
                    self.set_connected(true);
                    return Ok(v);
                }
                Err(Fail::Zk { err, .. }) if self.closed() && session_gone(&err) => {
                    return Err(JobBoardError::Closed { board: BOARD });
                }
                Err(Fail::Zk { what: w, err })
                    if (transient(&err) || session_gone(&err)) && Instant::now() < deadline =>
                {
                    self.set_connected(false);
                    tracing::debug!(url = %self.url, what = %w, %err, "zookeeper board: retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(Fail::Zk { what: w, err }) => {
                    if transient(&err) || session_gone(&err) {
                        self.set_connected(false);
                    }
                    return Err(JobBoardError::backend(
                        BOARD,
                        format!("{what}: {w} at {}", self.url),
                        err,
                    ));
                }
                Err(Fail::Board(e)) => return Err(e),
            }
        }
    }

    /// The time now (ms since the epoch): the server's clock, read as the
    /// modification time of a write to the scratch node, or the custom
    /// clock of the options.
    async fn now(&self, c: &zk::Client) -> Result<u64, Fail> {
        if !self.options.clock.is_system() {
            return Ok(self.options.clock.now_millis());
        }
        let stat = c
            .set_data(&self.layout.clock(), &[], None)
            .await
            .map_err(zkf("reading the server's clock"))?;
        Ok(u64::try_from(stat.mtime).unwrap_or(0))
    }

    fn lease_ms(&self) -> u64 {
        millis(self.options.lease)
    }

    /// The sequence of job `id`, if it is on the board.
    async fn seq_of(&self, c: &zk::Client, id: JobId) -> Result<Option<u64>, Fail> {
        if let Some(seq) = lock(&self.ids).get(&id) {
            return Ok(Some(*seq));
        }
        let path = self.layout.id(id);
        match c.get_data(&path).await {
            Ok((data, _)) => {
                let seq = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| JobBoardError::Corrupt {
                        board: BOARD,
                        id: path.clone(),
                        reason: "the id index does not hold a sequence".into(),
                    })?;
                lock(&self.ids).insert(id, seq);
                Ok(Some(seq))
            }
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(zkf(format!("reading {path}"))(e)),
        }
    }

    /// Reads job `id` (node and lock, sent together); `NotFound` if gone.
    async fn read(&self, c: &zk::Client, id: JobId) -> Result<Read, Fail> {
        let seq = self
            .seq_of(c, id)
            .await?
            .ok_or(JobBoardError::NotFound(id))?;
        match self.read_seq(c, seq).await? {
            Some(read) => Ok(read),
            None => {
                lock(&self.ids).remove(&id);
                Err(JobBoardError::NotFound(id).into())
            }
        }
    }

    /// Reads the job with sequence `seq`; `None` if its node is gone.
    async fn read_seq(&self, c: &zk::Client, seq: u64) -> Result<Option<Read>, Fail> {
        let (path, lock_path) = (self.layout.job(seq), self.layout.lock(seq));
        let data = c.get_data(&path);
        let locked = c.check_stat(&lock_path);
        let (data, locked) = futures::join!(data, locked);
        let (data, stat) = match data {
            Ok(found) => found,
            Err(zk::Error::NoNode) => return Ok(None),
            Err(e) => return Err(zkf(format!("reading {path}"))(e)),
        };
        let lock = locked
            .map_err(zkf(format!("reading {lock_path}")))?
            .map(|stat| stat.ephemeral_owner);
        let record = Record::decode(&data, &path)?;
        Ok(Some(Read {
            record,
            version: stat.version,
            mzxid: stat.mzxid,
            seq,
            lock,
        }))
    }

    /// Every job node: listed with the root's children, read together.
    async fn read_all(&self, c: &zk::Client) -> Result<Vec<Read>, Fail> {
        let root = self.layout.root().to_owned();
        let children = c
            .list_children(&root)
            .await
            .map_err(zkf(format!("listing {root}")))?;
        let mut seqs = Vec::new();
        let mut locks = HashSet::new();
        for name in &children {
            match layout::child(name) {
                Child::Job(seq) => seqs.push(seq),
                Child::Lock(seq) => {
                    locks.insert(seq);
                }
                Child::Other => {}
            }
        }
        let reads = futures::future::join_all(seqs.iter().map(|seq| {
            let path = self.layout.job(*seq);
            async move { (c.get_data(&path).await, path) }
        }))
        .await;
        let mut out = Vec::with_capacity(reads.len());
        for ((result, path), seq) in reads.into_iter().zip(seqs) {
            let (data, stat) = match result {
                Ok(found) => found,
                // Purged since it was listed.
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(zkf(format!("reading {path}"))(e)),
            };
            let record = Record::decode(&data, &path)?;
            lock(&self.ids).insert(record.job.id, seq);
            out.push(Read {
                record,
                version: stat.version,
                mzxid: stat.mzxid,
                seq,
                lock: locks.contains(&seq).then_some(0),
            });
        }
        Ok(out)
    }

    /// After a commit whose results include an event node: trims the
    /// events log now and then.
    fn committed(&self, c: &zk::Client, results: &[zk::MultiWriteResult]) {
        let seq = results.iter().rev().find_map(|r| match r {
            zk::MultiWriteResult::Create { path, .. } => layout::sequence_of(path),
            _ => None,
        });
        let Some(seq) = seq else {
            return;
        };
        if seq % TRIM_EVERY != 0 || seq < EVENTS_KEPT {
            return;
        }
        if self.trimmed_at.fetch_max(seq, Ordering::AcqRel) >= seq {
            return;
        }
        let (c, dir) = (c.clone(), self.layout.events());
        tokio::spawn(async move {
            let Ok(children) = c.list_children(&dir).await else {
                return;
            };
            for name in children {
                if layout::sequence_of(&name).is_some_and(|s| s + EVENTS_KEPT <= seq) {
                    let _ = c.delete(&format!("{dir}/{name}"), None).await;
                }
            }
        });
    }

    // ---- the changes, one try each (the retry loop calls them) ----

    /// Posts `new` as job `id`; `retry`: an earlier try may have posted it
    /// (its reply lost), in which case that job is returned.
    async fn post_once(
        &self,
        c: &zk::Client,
        id: JobId,
        new: &NewJob,
        retry: bool,
    ) -> Result<Job, Fail> {
        for _ in 0..MAX_CONFLICTS {
            // A retry whose first try committed finds its job.
            if retry && self.seq_of(c, id).await?.is_some() {
                let read = self.read(c, id).await?;
                let now = self.now(c).await?;
                return Ok(seen(&read.record.job, read.lock.is_some(), now));
            }
            let now = self.now(c).await?;
            let counter = self.layout.seq();
            let stat = c
                .check_stat(&counter)
                .await
                .map_err(zkf(format!("reading {counter}")))?
                .ok_or_else(|| zkf(format!("reading {counter}"))(zk::Error::NoNode))?;
            let seq = u64::try_from(stat.version).unwrap_or(0) + 1;
            let job = Job {
                id,
                name: new.name.clone(),
                details: new.details.clone(),
                logbook: new.logbook,
                flow_detail: new.flow_detail,
                priority: new.priority,
                created_at: now,
                sequence: seq,
                state: JobState::Unclaimed,
                owner: None,
                epoch: Epoch::ZERO,
                lease_expires_at: None,
                outcome: None,
                not_before: new.not_before,
                unique_key: new.unique_key.clone(),
                key: new.key.clone(),
                control: None,
                revision: 1,
            };
            let record = Record {
                job: job.clone(),
                completed_at: None,
                op: None,
            };
            let id_text = id.to_string();
            let data = record.encode()?;
            let mut m = c.new_multi_writer();
            let add = zkf("posting");
            let mut key_at = None;
            let mut unique_at = None;
            let r = (|| {
                m.add_set_data(&counter, &[], Some(stat.version))?;
                m.add_create(&self.layout.job(seq), &data, &persistent())?;
                m.add_create(
                    &self.layout.id(id),
                    seq.to_string().as_bytes(),
                    &persistent(),
                )?;
                let mut n = 3;
                if let Some(key) = &new.key {
                    m.add_create(
                        &self.layout.exec_key(key),
                        id_text.as_bytes(),
                        &persistent(),
                    )?;
                    key_at = Some(n);
                    n += 1;
                }
                if let Some(key) = &new.unique_key {
                    m.add_create(&self.layout.unique(key), id_text.as_bytes(), &persistent())?;
                    unique_at = Some(n);
                }
                m.add_create(&self.layout.event("post", id), &[], &sequential())?;
                Ok::<(), zk::Error>(())
            })();
            r.map_err(add)?;
            match m.commit().await {
                Ok(results) => {
                    lock(&self.ids).insert(id, seq);
                    self.committed(c, &results);
                    return Ok(job);
                }
                Err(zk::MultiWriteError::OperationFailed { index, source })
                    if source == zk::Error::NodeExists
                        && (Some(index) == key_at || Some(index) == unique_at) =>
                {
                    let (key, path) = if Some(index) == key_at {
                        let key = new.key.clone().unwrap_or_default();
                        let path = self.layout.exec_key(&key);
                        (key, path)
                    } else {
                        let key = new.unique_key.clone().unwrap_or_default();
                        let path = self.layout.unique(&key);
                        (key, path)
                    };
                    // The holder, unless it let go meanwhile (try again).
                    if let Some(existing) = self.holder(c, &path).await? {
                        return Err(if Some(index) == key_at {
                            JobBoardError::AlreadyPosted { key, existing }
                        } else {
                            JobBoardError::Duplicate { key, existing }
                        }
                        .into());
                    }
                }
                Err(zk::MultiWriteError::OperationFailed {
                    source: zk::Error::BadVersion | zk::Error::NodeExists,
                    ..
                }) => {}
                Err(e) => return Err(multi_fail("posting", e)),
            }
        }
        Err(self.conflicted("posting", id))
    }

    fn conflicted(&self, what: &str, id: JobId) -> Fail {
        Fail::Board(JobBoardError::Backend {
            board: BOARD,
            message: format!(
                "{what} job {id} at {}: lost {MAX_CONFLICTS} races in a row",
                self.url
            ),
            source: None,
        })
    }

    /// The job holding the key node at `path`, if it is there.
    async fn holder(&self, c: &zk::Client, path: &str) -> Result<Option<JobId>, Fail> {
        match c.get_data(path).await {
            Ok((data, _)) => {
                let text = String::from_utf8_lossy(&data);
                let id = uuid::Uuid::parse_str(&text).map_err(|e| JobBoardError::Corrupt {
                    board: BOARD,
                    id: path.to_owned(),
                    reason: format!("`{text}` is not a job id: {e}"),
                })?;
                Ok(Some(JobId::from(id)))
            }
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(zkf(format!("reading {path}"))(e)),
        }
    }

    async fn claim_once(
        &self,
        c: &zk::Client,
        id: JobId,
        owner: &str,
        op: &str,
    ) -> Result<Claim, Fail> {
        for _ in 0..MAX_CONFLICTS {
            let now = self.now(c).await?;
            let read = self.read(c, id).await?;
            let claim_of = |job: &Job| Claim {
                job: id,
                owner: owner.to_owned(),
                epoch: job.epoch,
                expires_at: job.lease_expires_at.unwrap_or_default(),
                control: job.control,
            };
            if read.record.op.as_deref() == Some(op) {
                return Ok(claim_of(&read.record.job));
            }
            let rules = ruled(&read.record.job, read.lock.is_some());
            if !lease::claimable(&rules, now) {
                return Err(lease::refusal(&rules, now).into());
            }
            let mut job = read.record.job.clone();
            job.state = JobState::Claimed;
            job.owner = Some(owner.to_owned());
            job.epoch = job.epoch.next();
            job.lease_expires_at = Some(now.saturating_add(self.lease_ms()));
            let record = Record {
                job,
                op: Some(op.to_owned()),
                ..read.record
            };
            let lock_data = LockRecord {
                owner: owner.to_owned(),
                epoch: record.job.epoch,
            }
            .encode()?;
            let (path, lock_path) = (self.layout.job(read.seq), self.layout.lock(read.seq));
            let data = record.encode()?;
            let mut m = c.new_multi_writer();
            (|| {
                m.add_set_data(&path, &data, Some(read.version))?;
                if read.lock.is_some() {
                    m.add_delete(&lock_path, None)?;
                }
                m.add_create(&lock_path, &lock_data, &ephemeral())?;
                m.add_create(&self.layout.event("claim", id), &[], &sequential())
            })()
            .map_err(zkf("claiming"))?;
            match m.commit().await {
                Ok(results) => {
                    self.committed(c, &results);
                    return Ok(claim_of(&record.job));
                }
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(multi_fail("claiming", e)),
            }
        }
        Err(self.conflicted("claiming", id))
    }

    /// Reads the job of `claim` and checks the claim is current; `None`
    /// when the job already carries `op` (a retry of a change that
    /// committed).
    async fn current(&self, c: &zk::Client, claim: &Claim, op: &str) -> Result<Option<Read>, Fail> {
        let read = self.read(c, claim.job).await?;
        if read.record.op.as_deref() == Some(op) {
            return Ok(None);
        }
        lease::check_current(&read.record.job, claim)?;
        Ok(Some(read))
    }

    async fn renew_once(&self, c: &zk::Client, claim: &Claim, op: &str) -> Result<Claim, Fail> {
        for _ in 0..MAX_CONFLICTS {
            let Some(read) = self.current(c, claim, op).await? else {
                let read = self.read(c, claim.job).await?;
                return Ok(Claim {
                    expires_at: read.record.job.lease_expires_at.unwrap_or_default(),
                    control: read.record.job.control,
                    ..claim.clone()
                });
            };
            let now = self.now(c).await?;
            let mut record = read.record.clone();
            record.job.lease_expires_at = Some(now.saturating_add(self.lease_ms()));
            record.op = Some(op.to_owned());
            let (path, lock_path) = (self.layout.job(read.seq), self.layout.lock(read.seq));
            let lock_data = LockRecord {
                owner: claim.owner.clone(),
                epoch: claim.epoch,
            }
            .encode()?;
            let ours = read.lock == Some(c.session_id().0);
            let data = record.encode()?;
            let mut m = c.new_multi_writer();
            (|| {
                m.add_set_data(&path, &data, Some(read.version))?;
                // The lock is taken back by this session if it went (or
                // belongs to an earlier session of this board).
                if !ours {
                    if read.lock.is_some() {
                        m.add_delete(&lock_path, None)?;
                    }
                    m.add_create(&lock_path, &lock_data, &ephemeral())?;
                }
                Ok::<(), zk::Error>(())
            })()
            .map_err(zkf("renewing"))?;
            match m.commit().await {
                Ok(_) => {
                    return Ok(Claim {
                        expires_at: record.job.lease_expires_at.unwrap_or_default(),
                        control: record.job.control,
                        ..claim.clone()
                    })
                }
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(multi_fail("renewing", e)),
            }
        }
        Err(self.conflicted("renewing", claim.job))
    }

    /// Consumes, trashes (`outcome`) or abandons (`None`) the job of `claim`.
    async fn release_once(
        &self,
        c: &zk::Client,
        claim: &Claim,
        outcome: Option<&Outcome>,
        op: &str,
    ) -> Result<(), Fail> {
        let (what, kind) = match outcome {
            None => ("abandoning", "abandon"),
            Some(Outcome::Consumed) => ("consuming", "consume"),
            Some(Outcome::Trashed { .. }) => ("trashing", "trash"),
        };
        for _ in 0..MAX_CONFLICTS {
            let Some(read) = self.current(c, claim, op).await? else {
                return Ok(());
            };
            let mut record = read.record.clone();
            record.op = Some(op.to_owned());
            record.job.owner = None;
            record.job.lease_expires_at = None;
            let mut free_key = None;
            match outcome {
                None => record.job.state = JobState::Unclaimed,
                Some(outcome) => {
                    let now = self.now(c).await?;
                    record.job.state = JobState::Complete;
                    record.job.outcome = Some(outcome.clone());
                    record.completed_at = Some(now);
                    free_key = record.job.unique_key.clone();
                }
            }
            let (path, lock_path) = (self.layout.job(read.seq), self.layout.lock(read.seq));
            let data = record.encode()?;
            let mut m = c.new_multi_writer();
            (|| {
                m.add_set_data(&path, &data, Some(read.version))?;
                if read.lock.is_some() {
                    m.add_delete(&lock_path, None)?;
                }
                if let Some(key) = &free_key {
                    m.add_delete(&self.layout.unique(key), None)?;
                }
                m.add_create(&self.layout.event(kind, claim.job), &[], &sequential())
            })()
            .map_err(zkf(what))?;
            match m.commit().await {
                Ok(results) => {
                    self.committed(c, &results);
                    return Ok(());
                }
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(multi_fail(what, e)),
            }
        }
        Err(self.conflicted(what, claim.job))
    }

    async fn request_once(
        &self,
        c: &zk::Client,
        id: JobId,
        control: Control,
        op: &str,
    ) -> Result<Job, Fail> {
        for _ in 0..MAX_CONFLICTS {
            let read = self.read(c, id).await?;
            let now = self.now(c).await?;
            if read.record.op.as_deref() == Some(op) {
                return Ok(seen(&read.record.job, read.lock.is_some(), now));
            }
            if read.record.job.state == JobState::Complete {
                return Err(JobBoardError::Complete(id).into());
            }
            let mut record = read.record.clone();
            record.job.control = Some(lease::stronger(record.job.control, control));
            record.op = Some(op.to_owned());
            let data = record.encode()?;
            let mut m = c.new_multi_writer();
            (|| {
                m.add_set_data(&self.layout.job(read.seq), &data, Some(read.version))?;
                m.add_create(&self.layout.event("request", id), &[], &sequential())
            })()
            .map_err(zkf("requesting"))?;
            match m.commit().await {
                Ok(results) => {
                    self.committed(c, &results);
                    return Ok(seen(&record.job, read.lock.is_some(), now));
                }
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(multi_fail("requesting", e)),
            }
        }
        Err(self.conflicted("requesting", id))
    }

    async fn reopen_once(&self, c: &zk::Client, id: JobId, op: &str) -> Result<Job, Fail> {
        for _ in 0..MAX_CONFLICTS {
            let read = self.read(c, id).await?;
            let now = self.now(c).await?;
            if read.record.op.as_deref() == Some(op) {
                return Ok(seen(&read.record.job, read.lock.is_some(), now));
            }
            if read.record.job.state != JobState::Complete {
                return Err(JobBoardError::NotComplete(id).into());
            }
            let mut record = read.record.clone();
            let job = &mut record.job;
            job.state = JobState::Unclaimed;
            job.owner = None;
            job.lease_expires_at = None;
            job.outcome = None;
            job.control = None;
            job.revision += 1;
            record.completed_at = None;
            record.op = Some(op.to_owned());
            let unique = record.job.unique_key.clone();
            let data = record.encode()?;
            let mut m = c.new_multi_writer();
            (|| {
                m.add_set_data(&self.layout.job(read.seq), &data, Some(read.version))?;
                if let Some(key) = &unique {
                    m.add_create(
                        &self.layout.unique(key),
                        id.to_string().as_bytes(),
                        &persistent(),
                    )?;
                }
                m.add_create(&self.layout.event("reopen", id), &[], &sequential())
            })()
            .map_err(zkf("reopening"))?;
            match m.commit().await {
                Ok(results) => {
                    self.committed(c, &results);
                    return Ok(seen(&record.job, false, now));
                }
                Err(zk::MultiWriteError::OperationFailed {
                    index: 1,
                    source: zk::Error::NodeExists,
                }) => {
                    let key = unique.unwrap_or_default();
                    if let Some(existing) = self.holder(c, &self.layout.unique(&key)).await? {
                        return Err(JobBoardError::Duplicate { key, existing }.into());
                    }
                }
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(multi_fail("reopening", e)),
            }
        }
        Err(self.conflicted("reopening", id))
    }

    /// Purges what the retention no longer keeps, adding each removed job
    /// to `purged` as it goes (so that a try cut off half-way loses none of
    /// those it removed).
    async fn purge_once(&self, c: &zk::Client, purged: &Mutex<Vec<Job>>) -> Result<(), Fail> {
        let mut done: Vec<Read> = self
            .read_all(c)
            .await?
            .into_iter()
            .filter(|r| r.record.job.state == JobState::Complete)
            .collect();
        // Read after the listing: a job completed just before it is not
        // older than it is.
        let now = self.now(c).await?;
        let doomed: Vec<Read> = match &self.options.retention {
            Retention::Forever => return Ok(()),
            Retention::For(age) => {
                let age = millis(*age);
                done.into_iter()
                    .filter(|r| {
                        r.record
                            .completed_at
                            .is_some_and(|at| at.saturating_add(age) <= now)
                    })
                    .collect()
            }
            Retention::Last(n) => {
                // Most recently completed first: the last write to a
                // complete job is its completion, in commit order.
                done.sort_by_key(|r| std::cmp::Reverse(r.mzxid));
                done.into_iter().skip(*n).collect()
            }
        };
        for read in doomed {
            let job = &read.record.job;
            let mut m = c.new_multi_writer();
            (|| {
                m.add_delete(&self.layout.job(read.seq), Some(read.version))?;
                m.add_delete(&self.layout.id(job.id), None)?;
                if let Some(key) = &job.key {
                    m.add_delete(&self.layout.exec_key(key), None)?;
                }
                m.add_create(&self.layout.event("remove", job.id), &[], &sequential())
            })()
            .map_err(zkf("purging"))?;
            match m.commit().await {
                Ok(results) => {
                    lock(&self.ids).remove(&job.id);
                    self.committed(c, &results);
                    lock(purged).push(job.clone());
                }
                // Reopened or purged by another board meanwhile: not ours.
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(multi_fail("purging", e)),
            }
        }
        Ok(())
    }

    /// Whether a job is claimable now, and when the next running lease
    /// lapses or scheduled job comes due (server time), and the time.
    async fn probe(&self, c: &zk::Client) -> Result<(bool, Option<u64>, u64), Fail> {
        let now = self.now(c).await?;
        let reads = self.read_all(c).await?;
        let mut next: Option<u64> = None;
        for read in &reads {
            let job = ruled(&read.record.job, read.lock.is_some());
            if lease::claimable(&job, now) {
                return Ok((true, None, now));
            }
            let at = match job.state {
                JobState::Claimed => job.lease_expires_at,
                JobState::Unclaimed if lease::waits(&job, now) => job.not_before,
                _ => None,
            };
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok((false, next, now))
    }

    /// Sets the watcher's watches and reads the events log: what the
    /// watcher task needs to start (or start again with a new session).
    /// `next`: the sequence of the first event not delivered yet (`None`:
    /// the log as it is now is not delivered).
    async fn arm(self: &Arc<Self>, next: Option<u64>) -> Result<Armed, Fail> {
        let c = self.client().await?;
        let root = c
            .watch(self.layout.root(), zk::AddWatchMode::Persistent)
            .await
            .map_err(zkf("watching the board"))?;
        let events = c
            .watch(&self.layout.events(), zk::AddWatchMode::Persistent)
            .await
            .map_err(zkf("watching the events"))?;
        let state = c.state_watcher();
        let mut armed = Armed {
            client: c,
            root,
            events,
            state,
            next,
        };
        self.deliver(&mut armed).await?;
        Ok(armed)
    }

    /// Tells the listeners of the event nodes from `armed.next` on.
    async fn deliver(&self, armed: &mut Armed) -> Result<(), Fail> {
        let dir = self.layout.events();
        let children = armed
            .client
            .list_children(&dir)
            .await
            .map_err(zkf(format!("listing {dir}")))?;
        let mut events: Vec<(u64, BoardEvent)> =
            children.iter().filter_map(|n| layout::event(n)).collect();
        events.sort_by_key(|(seq, _)| *seq);
        match armed.next {
            None => armed.next = Some(events.last().map_or(0, |(seq, _)| *seq + 1)),
            Some(next) => {
                // The log keeps the newest EVENTS_KEPT events: when even its
                // oldest is past the next one this board should deliver, the
                // ones between were trimmed before it read them. (Sequence
                // numbers also skip a number for each node trimmed, so this
                // is an upper bound.)
                if let Some(&(first, _)) = events.first() {
                    if first > next {
                        self.events.emit(BoardEvent::Missed {
                            count: first - next,
                        });
                    }
                }
                for (seq, event) in events {
                    if seq >= next {
                        self.events.emit(event);
                        armed.next = Some(seq + 1);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a multi-op failed because another change committed between
/// its read and its write (a version moved, a lock came or went): read
/// again and decide again.
fn lost_race(e: &zk::MultiWriteError) -> bool {
    matches!(
        e,
        zk::MultiWriteError::OperationFailed { source, .. }
            if matches!(source, zk::Error::BadVersion | zk::Error::NoNode | zk::Error::NodeExists)
    )
}

/// What the watcher task holds: its session's watches and where it is in
/// the events log.
struct Armed {
    client: zk::Client,
    root: zk::PersistentWatcher,
    events: zk::PersistentWatcher,
    state: zk::StateWatcher,
    /// The sequence of the first event node not delivered yet.
    next: Option<u64>,
}

/// The session state a watch event reports, if it is a session event.
fn session_of(event: &zk::WatchedEvent) -> Option<zk::SessionState> {
    (event.event_type == zk::EventType::Session).then_some(event.session_state)
}

/// Whether a session state is terminal (the session is gone).
fn terminal(state: zk::SessionState) -> bool {
    matches!(
        state,
        zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed
    )
}

/// The watcher task: wakes waiters when a watch fires, tells listeners of
/// new event nodes, reports the connection going and coming back, and
/// starts again with a new session when the session expires.
async fn watch_loop(
    inner: Arc<Inner>,
    mut armed: Armed,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        // Until the connection drops (and comes back) or the session ends.
        let new_session = loop {
            // What fired: a session state, or a node change (and whether
            // in the events log, which then has new events to deliver).
            let (session, logged) = tokio::select! {
                _ = stop.changed() => return,
                event = armed.root.changed() => (session_of(&event), false),
                event = armed.events.changed() => (session_of(&event), true),
                state = armed.state.changed() => (Some(state), false),
            };
            if *stop.borrow() || inner.closed() {
                return;
            }
            if let Some(state) = session {
                match state {
                    zk::SessionState::Disconnected => {
                        inner.set_connected(false);
                        inner.events.emit(BoardEvent::Disconnected {
                            reason: format!("lost the connection to {}", inner.url),
                        });
                        continue;
                    }
                    // The same session, connected again: watches are set
                    // again (what was missed meanwhile is in the log).
                    zk::SessionState::SyncConnected => break false,
                    state if terminal(state) => break true,
                    _ => continue,
                }
            }
            if logged && inner.deliver(&mut armed).await.is_err() {
                // Cut off: the state watcher says what comes next.
            }
            inner.bump();
        };
        if new_session {
            inner.set_connected(false);
            inner.events.emit(BoardEvent::Disconnected {
                reason: format!("the session with {} ended", inner.url),
            });
        }
        let stale = armed.client.session_id();
        let next = armed.next;
        drop(armed);
        armed = loop {
            if *stop.borrow() || inner.closed() {
                return;
            }
            if new_session {
                let _ = inner.replace(Some(stale)).await;
            }
            match inner.arm(next).await {
                Ok(again) => break again,
                Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
            }
        };
        inner.set_connected(true);
        inner.events.emit(BoardEvent::Reconnected);
        inner.bump();
    }
}

impl JobBoard for ZookeeperBoard {
    fn post(&self, job: NewJob) -> Result<Job, JobBoardError> {
        self.check_open()?;
        let id = JobId::new();
        let inner = &*self.inner;
        let job = &job;
        let tried = AtomicBool::new(false);
        let tried = &tried;
        self.run("posting", |c| async move {
            let retry = tried.swap(true, Ordering::AcqRel);
            inner.post_once(&c, id, job, retry).await
        })
    }

    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        self.check_open()?;
        let inner = &*self.inner;
        self.run("reading a job", |c| async move {
            let now = inner.now(&c).await?;
            let read = inner.read(&c, id).await?;
            Ok(seen(&read.record.job, read.lock.is_some(), now))
        })
    }

    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        self.check_open()?;
        let op = uuid::Uuid::new_v4().to_string();
        let (inner, op) = (&*self.inner, op.as_str());
        self.run("claiming", |c| async move {
            inner.claim_once(&c, id, owner, op).await
        })
    }

    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        self.check_open()?;
        let op = uuid::Uuid::new_v4().to_string();
        let (inner, op) = (&*self.inner, op.as_str());
        self.run("renewing", |c| async move {
            inner.renew_once(&c, claim, op).await
        })
    }

    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.check_open()?;
        let op = uuid::Uuid::new_v4().to_string();
        let (inner, op) = (&*self.inner, op.as_str());
        self.run("consuming", |c| async move {
            inner
                .release_once(&c, claim, Some(&Outcome::Consumed), op)
                .await
        })
    }

    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.check_open()?;
        let op = uuid::Uuid::new_v4().to_string();
        let (inner, op) = (&*self.inner, op.as_str());
        self.run("abandoning", |c| async move {
            inner.release_once(&c, claim, None, op).await
        })
    }

    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        self.check_open()?;
        let op = uuid::Uuid::new_v4().to_string();
        let outcome = Outcome::Trashed {
            reason: reason.to_owned(),
        };
        let (inner, op, outcome) = (&*self.inner, op.as_str(), &outcome);
        self.run("trashing", |c| async move {
            inner.release_once(&c, claim, Some(outcome), op).await
        })
    }

    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        self.check_open()?;
        let op = uuid::Uuid::new_v4().to_string();
        let (inner, op) = (&*self.inner, op.as_str());
        self.run("requesting a stop or cancel", |c| async move {
            inner.request_once(&c, id, control, op).await
        })
    }

    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        self.check_open()?;
        let op = uuid::Uuid::new_v4().to_string();
        let (inner, op) = (&*self.inner, op.as_str());
        self.run("reopening", |c| async move {
            inner.reopen_once(&c, id, op).await
        })
    }

    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        self.check_open()?;
        let inner = &*self.inner;
        let mut jobs = self.run("listing jobs", |c| async move {
            let now = inner.now(&c).await?;
            let reads = inner.read_all(&c).await?;
            Ok(reads
                .into_iter()
                .filter(|r| r.record.job.state != JobState::Complete)
                .filter(|r| {
                    !only_unclaimed
                        || lease::claimable(&ruled(&r.record.job, r.lock.is_some()), now)
                })
                .map(|r| seen(&r.record.job, r.lock.is_some(), now))
                .collect::<Vec<_>>())
        })?;
        jobs.sort_by(lease::iter_order);
        Ok(jobs)
    }

    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        self.check_open()?;
        let inner = &*self.inner;
        let mut jobs = self.run("listing all jobs", |c| async move {
            let now = inner.now(&c).await?;
            let reads = inner.read_all(&c).await?;
            Ok(reads
                .into_iter()
                .map(|r| seen(&r.record.job, r.lock.is_some(), now))
                .collect::<Vec<_>>())
        })?;
        jobs.sort_by_key(|job| job.sequence);
        Ok(jobs)
    }

    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        self.check_open()?;
        self.watch()?;
        let deadline = Instant::now().checked_add(timeout);
        let inner = &*self.inner;
        loop {
            let seen_generation = self.generation();
            let (claimable, next, now) =
                self.run("waiting", |c| async move { inner.probe(&c).await })?;
            if claimable {
                return Ok(true);
            }
            let start = Instant::now();
            if deadline.is_some_and(|d| start >= d) {
                return Ok(false);
            }
            let mut until = deadline
                .unwrap_or(start + WAIT_SLICE)
                .min(start + WAIT_SLICE);
            if let Some(at) = next {
                // Measured on the server's clock: a duration, so the
                // clocks need not agree.
                until = until.min(start + Duration::from_millis(at.saturating_sub(now)));
            }
            if !self.inner.options.clock.is_system() {
                until = until.min(start + CUSTOM_CLOCK_POLL);
            }
            self.sleep_until_change(seen_generation, until);
            self.check_open()?;
        }
    }

    /// Reads the job again each time a watch fires (a completion deletes
    /// its lock and writes an event node), at least once a second.
    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        self.check_open()?;
        self.watch()?;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let seen_generation = self.generation();
            let job = self.get(id)?;
            if job.state == JobState::Complete {
                return Ok(JobWait::Complete(job));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(JobWait::TimedOut(job));
            }
            let until = deadline.unwrap_or(now + WAIT_SLICE).min(now + WAIT_SLICE);
            self.sleep_until_change(seen_generation, until);
            self.check_open()?;
        }
    }

    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        self.check_open()?;
        let inner = &*self.inner;
        self.run("finding an owner", |c| async move {
            let now = inner.now(&c).await?;
            let read = inner.read(&c, id).await?;
            Ok(lease::running_owner(
                &ruled(&read.record.job, read.lock.is_some()),
                now,
            ))
        })
    }

    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        self.check_open()?;
        let data = serde_json::to_vec(entity).map_err(|e| {
            JobBoardError::backend(
                BOARD,
                format!("registering: encoding entity {}", entity.name),
                e,
            )
        })?;
        let path = self.inner.layout.entity(&entity.name);
        let (path, data) = (path.as_str(), data.as_slice());
        self.run("registering an entity", |c| async move {
            match c.create(path, data, &persistent()).await {
                Ok(_) => Ok(()),
                Err(zk::Error::NodeExists) => c
                    .set_data(path, data, None)
                    .await
                    .map(drop)
                    .map_err(zkf(format!("writing {path}"))),
                Err(e) => Err(zkf(format!("creating {path}"))(e)),
            }
        })
    }

    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        self.check_open()?;
        let dir = self.inner.layout.entities();
        let dir = dir.as_str();
        let mut entities = self.run("reading entities", |c| async move {
            let names = c
                .list_children(dir)
                .await
                .map_err(zkf(format!("listing {dir}")))?;
            let reads = futures::future::join_all(names.iter().map(|name| {
                let path = format!("{dir}/{name}");
                let c = &c;
                async move { (c.get_data(&path).await, path) }
            }))
            .await;
            let mut out = Vec::new();
            for (result, path) in reads {
                let data = match result {
                    Ok((data, _)) => data,
                    Err(zk::Error::NoNode) => continue,
                    Err(e) => return Err(zkf(format!("reading {path}"))(e)),
                };
                let entity: Entity =
                    serde_json::from_slice(&data).map_err(|e| JobBoardError::Corrupt {
                        board: BOARD,
                        id: path.clone(),
                        reason: format!("not an entity: {e}"),
                    })?;
                out.push(entity);
            }
            Ok(out)
        })?;
        entities.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entities)
    }

    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        self.check_open()?;
        let inner = &*self.inner;
        let purged = Mutex::new(Vec::new());
        let into = &purged;
        self.run(
            "purging",
            |c| async move { inner.purge_once(&c, into).await },
        )?;
        Ok(purged.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Ends the board's session, waiting (up to a second) until the server
    /// has closed it: the locks of its claims are gone when this returns,
    /// so others may claim those jobs at once.
    fn close(&self) -> Result<(), JobBoardError> {
        let state = lock(&self.inner.client)
            .as_ref()
            .map(zk::Client::state_watcher);
        self.shut();
        if let (Some(mut state), Some(runtime)) = (state, self.runtime.as_ref()) {
            runtime.block_on(async {
                let ended = async { while !terminal(state.changed().await) {} };
                let _ = tokio::time::timeout(CLOSE_WAIT, ended).await;
            });
        }
        Ok(())
    }

    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        self.check_open()?;
        self.watch()?;
        self.inner.events.subscribe(listener)
    }

    fn connected(&self) -> bool {
        !self.inner.closed() && self.inner.connected.load(Ordering::Acquire)
    }

    /// Fresh as asked: every listing reads the job nodes after a write of
    /// its own (the clock), so the server it reads from has applied every
    /// change committed before; with a custom clock (no such write),
    /// `ensure_fresh` syncs the server with the leader first. The board
    /// keeps no cache of jobs.
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        if options.ensure_fresh && !self.inner.options.clock.is_system() {
            self.check_open()?;
            let root = self.inner.layout.root().to_owned();
            let root = root.as_str();
            self.run("syncing", |c| async move {
                c.sync(root).await.map_err(zkf(format!("syncing {root}")))
            })?;
        }
        self.iterjobs(options.only_unclaimed)
    }
}
