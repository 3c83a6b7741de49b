//! The SQLite board: the embedded default, one database file shared by
//! every process on a host. See [`SqliteBoard`].
//!
//! # How claims stay atomic across processes
//!
//! Every write is one `BEGIN IMMEDIATE` transaction, which takes the
//! file's write lock before reading anything, so the writers of all
//! processes take turns and none decides on a stale snapshot. A claim is a
//! single conditional statement in that transaction:
//!
//! ```sql
//! UPDATE jobboard_jobs
//!    SET state = 'CLAIMED', owner = ?owner, epoch = epoch + 1,
//!        lease_expires_at = ?now + lease
//!  WHERE id = ?id
//!    AND (state = 'UNCLAIMED' OR (state = 'CLAIMED' AND lease_expires_at <= ?now))
//!    AND (not_before IS NULL OR not_before <= ?now OR control IS NOT NULL)
//! RETURNING epoch, control
//! ```
//!
//! Of any number of racing claimers exactly one finds the condition true;
//! the others find the row claimed with a running lease (zero rows
//! updated), and read the job back in the same transaction to say why
//! (`AlreadyClaimed` naming the owner, `NotYet` for a job waiting for its
//! not-before time, `Complete`, or `NotFound`). Before
//! taking the write lock, a claim reads the job's committed state: if that
//! already shows it complete or claimed with a running lease, the claim is
//! refused without queueing for the lock (a refusal from a committed
//! snapshot is as true as one from inside the transaction; only an
//! acceptance needs the lock). In a race of four processes for the same
//! jobs this doubles the claims per second. Renew,
//! consume, abandon and trash are single `UPDATE`s conditioned on
//! `state = 'CLAIMED' AND epoch = ? AND owner = ?` (the claim is current),
//! so a claim superseded by another owner's can never write; each returns
//! the job's control request (renew hands it to the owner).
//!
//! # How keys stay unique across processes
//!
//! A post with a uniqueness or execution key is one `BEGIN IMMEDIATE`
//! transaction that looks for the key's holder (`unique_key = ? AND state
//! != 'COMPLETE'`, or `execution_key = ?`) and inserts only if there is
//! none, so of any number of racing posters one inserts and the others
//! are told which job holds the key. Two partial unique indexes back this
//! up in the file itself: `jobboard_jobs_unique_key` over `unique_key`
//! where the job is not complete (a job completing drops out of it, which
//! frees the key), and `jobboard_jobs_execution_key` over `execution_key`
//! (a purged row drops out of it). [`reopen`](JobBoard::reopen) checks the
//! uniqueness key in its transaction the same way. Control requests and
//! reopens are `BEGIN IMMEDIATE` read-then-update transactions too.
//!
//! # How `wait` learns of new jobs
//!
//! Another process's commit cannot wake a thread here, so `wait` polls:
//! every [`SqliteBoard::POLL_INTERVAL`] it reads `PRAGMA data_version`
//! (which changes when another connection commits) and a counter of this
//! board's own writes, and queries the jobs only when one of them changed or
//! when the earliest running lease or scheduled job's not-before time it
//! saw has passed. Posts, abandons, requests and reopens through the same
//! [`SqliteBoard`] also wake it at once through a condition variable. So a waiter learns of a claimable job within one
//! poll interval, and an idle waiter costs one cheap pragma per interval.
//!
//! [`wait_until_complete`](JobBoard::wait_until_complete) polls the same
//! way: it reads the job again only when `data_version` or this board's
//! own write counter changed (consume and trash through this board count
//! and wake it too), so it sees a completion within one poll interval.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use taskflow_persistence::{Backend, Durability, LogBook, SharedDatabase, SqliteBackend};
use uuid::Uuid;

use crate::board::settled;
use crate::error::sql_int;
use crate::events::Notifier;
use crate::lease::{self, millis};
use crate::sync::{lock, wait_timeout};
use crate::{
    BoardListener, BoardOptions, Claim, ClaimFilter, Control, Entity, Job, JobBoard, JobBoardError,
    JobState, JobWait, ListOptions, NewJob, Outcome, Retention, Subscription,
};

mod codec;
mod schema;
mod watch;

use crate::JobId;
use codec::{corrupt, decode, JOB_COLUMNS, JOB_COLUMN_COUNT};
use taskflow_persistence::Epoch;

const BOARD: &str = "sqlite";

/// How long the change table keeps an event (trimmed by `purge`).
const EVENTS_KEPT: Duration = Duration::from_secs(600);

/// A board in a SQLite database file: the embedded default, shared by every
/// process (and every [`SqliteBoard`]) on one host that opens the file.
///
/// # Storage
///
/// Table `jobboard_jobs` (one row per job; details and outcome as JSON
/// text; not-before time, uniqueness and execution keys, control request
/// and revision in columns of their own), table `jobboard_entities`, and
/// `jobboard_meta`, which holds the schema version
/// ([`SqliteBoard::SCHEMA_VERSION`]; a newer one is refused, an older one
/// migrated on open: a version 1 file gains the columns of version 2, its
/// jobs at revision 1 without keys). The names leave room for a
/// `taskflow_persistence::SqliteBackend` in the same file.
///
/// # Sharing a file
///
/// The database runs in WAL mode (readers never block the writer); writes
/// are `BEGIN IMMEDIATE` transactions that wait up to
/// [`SqliteBoard::BUSY_TIMEOUT`] for other writers. Claims are atomic
/// across processes (the module's documentation says how). Leases are
/// compared against the [`BoardOptions::clock`], so every process sharing a
/// file must use the system clock. The file must be on a local file
/// system (WAL needs shared memory between processes). Within one
/// [`SqliteBoard`] the connection sits behind a mutex: share one board
/// between threads.
///
/// Claims follow the [lease rules](JobBoard#leases) of every board; `wait`
/// polls (see the module's documentation).
///
/// # Events, freshness, connection
///
/// **Events** ([`subscribe`](JobBoard::subscribe)): triggers record every
/// change of a job (by any process, any board on the file) in table
/// `jobboard_events`, in commit order, and one watcher thread per board
/// reads the new rows when `PRAGMA data_version` changes, at most 5 ms
/// after the commit; the watcher also wakes this board's
/// [`wait`](JobBoard::wait). A renewal is no event, nor is a lease lapsing
/// or a scheduled job coming due. [`purge`](JobBoard::purge) trims events
/// older than ten minutes. **Freshness**: every read sees every commit
/// before it, so every listing is fresh. **Connection**: `connected` is
/// `false` once closed, and while the watcher's look at the file fails
/// (listeners are told `Disconnected`, then `Reconnected`); after
/// [`close`](JobBoard::close) every call fails with
/// [`JobBoardError::Closed`]. Complete jobs keep their
/// completion time in a column, for [`purge`](JobBoard::purge).
///
/// ```
/// use taskflow_jobboard::{BoardOptions, JobBoard, NewJob, SqliteBoard};
/// # let dir = std::env::temp_dir().join(format!("tf-board-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let board = SqliteBoard::open(dir.join("jobs.db"), BoardOptions::default())?;
/// let job = board.post(NewJob::new("nightly"))?;
/// let claim = board.claim(job.id, "conductor-1")?;
/// board.consume(&claim)?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
pub struct SqliteBoard {
    /// A panic while it is locked cannot leave a write half-done: an open
    /// transaction is rolled back when it is dropped. Shared with the
    /// watcher of an in-memory board (which has no other connection).
    conn: Arc<Mutex<Connection>>,
    options: BoardOptions,
    location: String,
    /// The file and durability, for the watcher's own connection (`None`
    /// for an in-memory board).
    file: Option<(PathBuf, Durability)>,
    /// The file's canonical path, to recognise records kept in it.
    canonical: Option<PathBuf>,
    /// What the board and its watcher share.
    shared: Arc<Shared>,
}

/// What a [`SqliteBoard`] shares with its watcher thread.
struct Shared {
    /// How many posts, abandons, completions, requests and reopens went
    /// through this board (whose commits `data_version` does not show to
    /// this connection), plus how many times the watcher saw new events;
    /// notified on each, which wakes `wait`.
    local_writes: Mutex<u64>,
    local_changed: Condvar,
    events: Notifier,
    /// Set by `close` (calls then fail with `Closed`) and on drop: the
    /// watcher stops.
    closed: AtomicBool,
    /// Whether the watcher thread was started.
    watching: AtomicBool,
    /// Whether the watcher's last look at the file failed.
    failing: AtomicBool,
}

impl Shared {
    fn wrote(&self) {
        let mut n = lock(&self.local_writes);
        *n = n.wrapping_add(1);
        drop(n);
        self.local_changed.notify_all();
    }
}

impl fmt::Debug for SqliteBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBoard")
            .field("location", &self.location)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteBoard {
    fn drop(&mut self) {
        // The watcher stops at its next look.
        self.shared.closed.store(true, Ordering::Release);
        self.shared.events.close();
    }
}

/// Claims job ?1 for owner ?2 at time ?3 with a lease until ?4, if it is
/// claimable then; returns the new epoch and the job's control request.
const CLAIM: &str = "UPDATE jobboard_jobs SET state = 'CLAIMED', owner = ?2, epoch = epoch + 1, \
     lease_expires_at = ?4 \
     WHERE id = ?1 AND (state = 'UNCLAIMED' \
         OR (state = 'CLAIMED' AND lease_expires_at <= ?3)) \
     AND (not_before IS NULL OR not_before <= ?3 OR control IS NOT NULL) \
     RETURNING epoch, control";

/// Extends the claim (job ?1, epoch ?2, owner ?3) to ?4 if it is the
/// job's current claim; returns the job's control request.
const RENEW: &str = "UPDATE jobboard_jobs SET lease_expires_at = ?4 \
     WHERE id = ?1 AND state = 'CLAIMED' AND epoch = ?2 AND owner = ?3 \
     RETURNING control";

/// Completes the job of the claim (job ?1, epoch ?2, owner ?3) with
/// outcome ?4 at ?5 if the claim is current; returns the job's control
/// request.
const COMPLETE: &str = "UPDATE jobboard_jobs SET state = 'COMPLETE', lease_expires_at = NULL, \
     outcome = ?4, completed_at = ?5 \
     WHERE id = ?1 AND state = 'CLAIMED' AND epoch = ?2 AND owner = ?3 \
     RETURNING control";

impl SqliteBoard {
    /// The schema version this build reads and writes.
    pub const SCHEMA_VERSION: u32 = schema::VERSION;

    /// How long a write waits for the writers of other processes (or other
    /// boards) on the same file before failing.
    pub const BUSY_TIMEOUT: Duration = SqliteBackend::BUSY_TIMEOUT;

    /// How often [`wait`](JobBoard::wait) looks for changes made by other
    /// connections to the file.
    pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

    /// Opens (creating it if needed) the board in the database at `path`,
    /// with [`Durability::Full`]: a post or claim that returned survives a
    /// power loss.
    pub fn open(path: impl AsRef<Path>, options: BoardOptions) -> Result<Self, JobBoardError> {
        SqliteBoard::open_with(path, options, Durability::Full)
    }

    /// Opens (creating it if needed) the board in the database at `path`,
    /// with the durability given (see [`Durability`]; with
    /// [`Durability::Normal`] a power loss may forget the latest posts and
    /// claims, never corrupting the file).
    pub fn open_with(
        path: impl AsRef<Path>,
        options: BoardOptions,
        durability: Durability,
    ) -> Result<Self, JobBoardError> {
        let path = path.as_ref();
        let conn = taskflow_persistence::open_sqlite(path, durability)
            .map_err(|e| JobBoardError::from_persistence(BOARD, e))?;
        let location = path.display().to_string();
        SqliteBoard::finish(
            conn,
            location,
            options,
            Some((path.to_path_buf(), durability)),
        )
    }

    /// A private in-memory board, for tests: gone when the value is, and
    /// not shared with any other connection.
    pub fn in_memory(options: BoardOptions) -> Result<Self, JobBoardError> {
        let conn =
            Connection::open_in_memory().map_err(|e| db_err(e, "opening an in-memory database"))?;
        SqliteBoard::finish(conn, ":memory:".to_owned(), options, None)
    }

    fn finish(
        mut conn: Connection,
        location: String,
        options: BoardOptions,
        file: Option<(PathBuf, Durability)>,
    ) -> Result<Self, JobBoardError> {
        conn.set_prepared_statement_cache_capacity(32);
        schema::BOARD_SCHEMA
            .prepare(&mut conn, &location)
            .map_err(|e| JobBoardError::from_persistence(BOARD, e))?;
        let canonical = file
            .as_ref()
            .map(|(path, _)| path.canonicalize().unwrap_or_else(|_| path.clone()));
        Ok(SqliteBoard {
            conn: Arc::new(Mutex::new(conn)),
            options,
            location,
            file,
            canonical,
            shared: Arc::new(Shared {
                local_writes: Mutex::new(0),
                local_changed: Condvar::new(),
                events: Notifier::new(BOARD),
                closed: AtomicBool::new(false),
                watching: AtomicBool::new(false),
                failing: AtomicBool::new(false),
            }),
        })
    }

    /// Where the database is (its path, or `:memory:`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The options it was opened with.
    pub fn options(&self) -> &BoardOptions {
        &self.options
    }

    /// `records` when they are a SQLite backend on this board's file (both
    /// paths made canonical when opened), which can post a job
    /// in the transaction that writes its records.
    fn same_file<'r>(&self, records: &'r dyn Backend) -> Option<&'r SqliteBackend> {
        let board_file = self.canonical.as_deref()?;
        let SharedDatabase::Sqlite(backend) = records.shared_database()? else {
            return None;
        };
        (backend.path()? == board_file).then_some(backend)
    }

    /// The entities registered on the board (by every process), by name.
    fn registered(&self) -> Result<Vec<Entity>, JobBoardError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT name, meta FROM jobboard_entities ORDER BY name")
            .map_err(|e| db_err(e, "preparing the entity list"))?;
        let mut rows = stmt.query([]).map_err(|e| db_err(e, "listing entities"))?;
        let mut entities = Vec::new();
        while let Some(row) = rows.next().map_err(|e| db_err(e, "listing entities"))? {
            let name = match row.get_ref(0) {
                Ok(ValueRef::Text(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => {
                    return Err(JobBoardError::Corrupt {
                        board: BOARD,
                        id: "(entity with a bad name)".into(),
                        reason: "name is not text".into(),
                    })
                }
            };
            let meta = match row.get_ref(1) {
                Ok(ValueRef::Text(b)) => {
                    serde_json::from_slice(b).map_err(|e| JobBoardError::Corrupt {
                        board: BOARD,
                        id: format!("entity {name}"),
                        reason: format!("meta is not JSON: {e}"),
                    })?
                }
                _ => {
                    return Err(JobBoardError::Corrupt {
                        board: BOARD,
                        id: format!("entity {name}"),
                        reason: "meta is not text".into(),
                    })
                }
            };
            entities.push(Entity { name, meta });
        }
        Ok(entities)
    }

    fn now(&self) -> u64 {
        self.options.clock.now_millis()
    }

    fn expiry(&self, now: u64) -> u64 {
        now.saturating_add(millis(self.options.lease))
    }

    /// Counts a post, abandon, completion, request or reopen and wakes this
    /// board's waiters.
    fn wrote(&self) {
        self.shared.wrote();
    }

    fn local_write_count(&self) -> u64 {
        *lock(&self.shared.local_writes)
    }

    /// The connection, unless the board is closed.
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, JobBoardError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(JobBoardError::Closed { board: BOARD });
        }
        Ok(lock(&self.conn))
    }

    /// Starts the watcher thread, once.
    fn watch(&self) -> Result<(), JobBoardError> {
        if self.shared.watching.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let started = watch::start(
            self.file.clone(),
            Arc::clone(&self.conn),
            Arc::clone(&self.shared),
        );
        if started.is_err() {
            self.shared.watching.store(false, Ordering::Release);
        }
        started
    }

    /// Runs `update` (an `UPDATE ... WHERE id = ?1 AND <claim is current>
    /// RETURNING control` whose parameters 1 to 3 are the job, epoch and
    /// owner) with the extra parameters given, in a `BEGIN IMMEDIATE`
    /// transaction; returns the job's control request. `NotFound` or
    /// `NotOwner` when it changes no row.
    fn update_current(
        &self,
        claim: &Claim,
        what: &str,
        update: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<Option<Control>, JobBoardError> {
        let mut conn = self.conn()?;
        let tx = immediate(&mut conn, what, claim.job)?;
        let mut buf = Uuid::encode_buffer();
        let id = id_text(claim.job, &mut buf);
        let epoch = sql_int(claim.epoch.get());
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id, &epoch, &claim.owner];
        values.extend_from_slice(extra);
        let changed: Option<Option<String>> = tx
            .prepare_cached(update)
            .and_then(|mut s| s.query_row(values.as_slice(), |row| row.get(0)).optional())
            .map_err(|e| db_err(e, format_args!("{what} job {}", claim.job)))?;
        let Some(control) = changed else {
            return Err(if job_exists(&tx, id)? {
                lease::not_owner(claim)
            } else {
                JobBoardError::NotFound(claim.job)
            });
        };
        let control = codec::control(control.as_deref(), claim.job)?;
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing: {what} job {}", claim.job)))?;
        Ok(control)
    }

    /// [`renew`](JobBoard::renew) of each claim, in one transaction (one
    /// lease expiry for all): the per-claim results, or the error that
    /// failed the transaction.
    fn renew_in_one(
        &self,
        claims: &[Claim],
    ) -> Result<Vec<Result<Claim, JobBoardError>>, JobBoardError> {
        let mut conn = self.conn()?;
        let tx = immediate(&mut conn, "renewing the claim on", claims[0].job)?;
        let expires_at = self.expiry(self.now());
        let mut renewed = Vec::with_capacity(claims.len());
        for claim in claims {
            let mut buf = Uuid::encode_buffer();
            let id = id_text(claim.job, &mut buf);
            let changed: Option<Option<String>> = tx
                .prepare_cached(RENEW)
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            id,
                            sql_int(claim.epoch.get()),
                            claim.owner,
                            sql_int(expires_at)
                        ],
                        |row| row.get(0),
                    )
                    .optional()
                })
                .map_err(|e| db_err(e, format_args!("renewing the claim on job {}", claim.job)))?;
            renewed.push(match changed {
                Some(control) => {
                    codec::control(control.as_deref(), claim.job).map(|control| Claim {
                        expires_at,
                        control,
                        ..claim.clone()
                    })
                }
                None if job_exists(&tx, id)? => Err(lease::not_owner(claim)),
                None => Err(JobBoardError::NotFound(claim.job)),
            });
        }
        tx.commit().map_err(|e| {
            db_err(
                e,
                format_args!("committing the renewal of {} claims", claims.len()),
            )
        })?;
        Ok(renewed)
    }

    /// [`consume`](JobBoard::consume) of each claim, in one transaction
    /// (one completion time for all): the per-claim results, or the error
    /// that failed the transaction.
    fn consume_in_one(
        &self,
        claims: &[Claim],
    ) -> Result<Vec<Result<(), JobBoardError>>, JobBoardError> {
        let outcome =
            serde_json::to_string(&Outcome::Consumed).map_err(|e| JobBoardError::Backend {
                board: BOARD,
                message: "encoding the outcome `consumed`".into(),
                source: Some(Box::new(e)),
            })?;
        let mut conn = self.conn()?;
        let tx = immediate(&mut conn, "completing", claims[0].job)?;
        let now = sql_int(self.now());
        let mut consumed = Vec::with_capacity(claims.len());
        for claim in claims {
            let mut buf = Uuid::encode_buffer();
            let id = id_text(claim.job, &mut buf);
            let changed = tx
                .prepare_cached(COMPLETE)
                .and_then(|mut s| {
                    s.query_row(
                        params![id, sql_int(claim.epoch.get()), claim.owner, outcome, now],
                        |_| Ok(()),
                    )
                    .optional()
                })
                .map_err(|e| db_err(e, format_args!("completing job {}", claim.job)))?;
            consumed.push(match changed {
                Some(()) => Ok(()),
                None if job_exists(&tx, id)? => Err(lease::not_owner(claim)),
                None => Err(JobBoardError::NotFound(claim.job)),
            });
        }
        tx.commit().map_err(|e| {
            db_err(
                e,
                format_args!("committing the completion of {} jobs", claims.len()),
            )
        })?;
        Ok(consumed)
    }

    fn complete(&self, claim: &Claim, outcome: &Outcome) -> Result<(), JobBoardError> {
        let outcome = serde_json::to_string(outcome).map_err(|e| JobBoardError::Backend {
            board: BOARD,
            message: format!("encoding the outcome of job {}", claim.job),
            source: Some(Box::new(e)),
        })?;
        let now = sql_int(self.now());
        self.update_current(claim, "completing", COMPLETE, &[&outcome, &now])?;
        self.wrote();
        Ok(())
    }

    /// Sleeps up to `slice`, or until this board writes again if its
    /// write count is still `local`.
    fn sleep_unless_written(&self, local: u64, slice: Duration) {
        let count = lock(&self.shared.local_writes);
        if *count == local {
            drop(wait_timeout(&self.shared.local_changed, count, slice));
        }
    }

    /// Whether a job is claimable at `now`, and the earliest time after
    /// `now` a job may become claimable: the lease of a claimed job
    /// lapsing, or a scheduled job's time coming.
    fn claimable_now(&self, now: u64) -> Result<(bool, Option<u64>), JobBoardError> {
        let conn = self.conn()?;
        let now = sql_int(now);
        conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM jobboard_jobs WHERE (state = 'UNCLAIMED' \
                 OR (state = 'CLAIMED' AND lease_expires_at <= ?1)) \
                 AND (not_before IS NULL OR not_before <= ?1 OR control IS NOT NULL)), \
             (SELECT min(lease_expires_at) FROM jobboard_jobs WHERE state = 'CLAIMED' \
                 AND lease_expires_at > ?1), \
             (SELECT min(not_before) FROM jobboard_jobs WHERE not_before IS NOT NULL \
                 AND control IS NULL AND state != 'COMPLETE' AND not_before > ?1)",
        )
        .and_then(|mut s| {
            s.query_row([now], |row| {
                Ok((
                    row.get::<_, bool>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                ))
            })
        })
        .map(|(any, lapse, due)| {
            let next = match (lapse, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (any, next.and_then(|n| u64::try_from(n).ok()))
        })
        .map_err(|e| db_err(e, "looking for claimable jobs"))
    }

    fn data_version(&self) -> Result<i64, JobBoardError> {
        self.conn()?
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(|e| db_err(e, "reading data_version"))
    }
}

/// Checks `new`'s keys and inserts it as job `id`, in the caller's
/// transaction; returns its sequence.
fn insert_job(
    tx: &Connection,
    id: JobId,
    new: &NewJob,
    created_at: u64,
) -> Result<u64, JobBoardError> {
    let details = serde_json::to_string(&new.details).map_err(|e| JobBoardError::Backend {
        board: BOARD,
        message: format!("encoding the details of job {id} ({})", new.name),
        source: Some(Box::new(e)),
    })?;
    if let Some(key) = &new.key {
        if let Some(existing) = key_holder(tx, key)? {
            return Err(JobBoardError::AlreadyPosted {
                key: key.clone(),
                existing,
            });
        }
    }
    if let Some(key) = &new.unique_key {
        if let Some(existing) = unique_holder(tx, key)? {
            return Err(JobBoardError::Duplicate {
                key: key.clone(),
                existing,
            });
        }
    }
    let mut buf = Uuid::encode_buffer();
    let sequence: i64 = tx
        .prepare_cached(
            "INSERT INTO jobboard_jobs (id, name, details, logbook, flow_detail, priority, \
             created_at, state, epoch, not_before, unique_key, execution_key, revision) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'UNCLAIMED', 0, ?8, ?9, ?10, 1) \
             RETURNING sequence",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    id_text(id, &mut buf),
                    new.name,
                    details,
                    new.logbook.map(|u| u.to_string()),
                    new.flow_detail.map(|u| u.to_string()),
                    new.priority,
                    sql_int(created_at),
                    new.not_before.map(sql_int),
                    new.unique_key,
                    new.key,
                ],
                |row| row.get(0),
            )
        })
        .map_err(|e| db_err(e, format_args!("posting job {id} ({})", new.name)))?;
    Ok(u64::try_from(sequence).unwrap_or_default())
}

/// The job `new` became when posted as `id`.
fn posted_job(id: JobId, new: NewJob, created_at: u64, sequence: u64) -> Job {
    Job {
        id,
        name: new.name,
        details: new.details,
        logbook: new.logbook,
        flow_detail: new.flow_detail,
        priority: new.priority,
        created_at,
        sequence,
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
    }
}

impl JobBoard for SqliteBoard {
    fn post(&self, new: NewJob) -> Result<Job, JobBoardError> {
        let id = JobId::new();
        let created_at = self.now();
        let mut conn = self.conn()?;
        // A post with keys checks them and inserts in one `BEGIN IMMEDIATE`
        // transaction: no other writer can post the same key in between.
        let behavior = if new.key.is_some() || new.unique_key.is_some() {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| db_err(e, format_args!("locking the board for posting job {id}")))?;
        let sequence = insert_job(&tx, id, &new, created_at)?;
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing the post of job {id}")))?;
        drop(conn);
        self.wrote();
        Ok(posted_job(id, new, created_at, sequence))
    }

    fn post_with_records(
        &self,
        new: NewJob,
        book: &LogBook,
        records: &dyn Backend,
    ) -> Result<Job, JobBoardError> {
        let Some(backend) = self.same_file(records) else {
            return crate::post::records_then_post(self, new, book, records);
        };
        // The records' connection writes the job too, in the transaction
        // that writes the records (`BEGIN IMMEDIATE`, so the key checks and
        // the insert see no other writer in between).
        let id = JobId::new();
        let created_at = self.now();
        let sequence =
            backend.save_logbook_then(book, |tx| insert_job(tx, id, &new, created_at))?;
        self.wrote();
        Ok(posted_job(id, new, created_at, sequence))
    }

    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        let conn = self.conn()?;
        let mut buf = Uuid::encode_buffer();
        let job = read_job(&conn, id_text(id, &mut buf), id)?.ok_or(JobBoardError::NotFound(id))?;
        Ok(lease::view(job, self.now()))
    }

    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        let mut conn = self.conn()?;
        let mut buf = Uuid::encode_buffer();
        let text = id_text(id, &mut buf);
        if let Some(refusal) = quick_refusal(&conn, text, id, self.now())? {
            return Err(refusal);
        }
        let tx = immediate(&mut conn, "claiming", id)?;
        let now = self.now();
        let Some(claim) = claim_row(&tx, id, owner, now, self.expiry(now))? else {
            // Not claimable: say why, from the same snapshot.
            let job = read_job(&tx, text, id)?.ok_or(JobBoardError::NotFound(id))?;
            return Err(lease::refusal(&job, now));
        };
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing the claim of job {id}")))?;
        Ok(claim)
    }

    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        let expires_at = self.expiry(self.now());
        let control = self.update_current(
            claim,
            "renewing the claim on",
            RENEW,
            &[&sql_int(expires_at)],
        )?;
        Ok(Claim {
            expires_at,
            control,
            ..claim.clone()
        })
    }

    fn renew_all(&self, claims: &[Claim]) -> Vec<Result<Claim, JobBoardError>> {
        match claims {
            [] => Vec::new(),
            [claim] => vec![self.renew(claim)],
            _ => self
                .renew_in_one(claims)
                // The transaction failed as a whole, and every renewal
                // with it (transiently: each lease may still hold).
                .unwrap_or_else(|e| crate::board::renewals_failed(BOARD, claims, e)),
        }
    }

    /// One `BEGIN IMMEDIATE` transaction claiming up to `max` of `ids`
    /// (the `UPDATE` of [`claim`](JobBoard::claim) for each, in order, at
    /// one instant) and one commit for all, instead of one per job.
    fn claim_many(
        &self,
        ids: &[JobId],
        owner: &str,
        max: usize,
    ) -> Result<(usize, Vec<Claim>), JobBoardError> {
        let Some(first) = ids.first() else {
            return Ok((0, Vec::new()));
        };
        if max == 0 {
            return Ok((0, Vec::new()));
        }
        let mut conn = self.conn()?;
        let tx = immediate(&mut conn, "claiming", *first)?;
        let now = self.now();
        let expires_at = self.expiry(now);
        let mut claims = Vec::with_capacity(max.min(ids.len()));
        let mut tried = ids.len();
        for (i, id) in ids.iter().enumerate() {
            // Not claimable (claimed, complete, waiting, gone): the next.
            let Some(claim) = claim_row(&tx, *id, owner, now, expires_at)? else {
                continue;
            };
            claims.push(claim);
            if claims.len() == max {
                tried = i + 1;
                break;
            }
        }
        match claims.as_slice() {
            [] => {}
            [one] => tx
                .commit()
                .map_err(|e| db_err(e, format_args!("committing the claim of job {}", one.job)))?,
            _ => tx.commit().map_err(|e| {
                db_err(
                    e,
                    format_args!("committing the claims of {} jobs", claims.len()),
                )
            })?,
        }
        Ok((tried, claims))
    }

    /// One `BEGIN IMMEDIATE` transaction reading the claimable jobs in
    /// board order, as many as it may still claim (at most 64) at a time,
    /// and claiming (the
    /// `UPDATE` of [`claim`](JobBoard::claim)) those `filter` admits, up
    /// to `max`, with one commit: no listing of the board.
    fn claim_next(
        &self,
        owner: &str,
        max: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Job, Claim)>, JobBoardError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(e, "locking the board for claiming the next jobs"))?;
        let now = self.now();
        let expires_at = self.expiry(now);
        let mut claimed = Vec::new();
        // The last job looked at (priority, sequence): each page starts
        // after it, so the jobs claimed meanwhile do not shift the pages.
        // At first, before every job (priorities are i32, sequences
        // positive).
        let mut after = (i64::MAX, 0);
        'pages: loop {
            let size = (max - claimed.len()).min(CLAIM_PAGE);
            let page = claimable_page(&tx, now, after, size)?;
            let Some(last) = page.last() else {
                break;
            };
            after = (i64::from(last.priority), sql_int(last.sequence));
            let full = page.len() == size;
            for job in page {
                if !filter.admits_job(&job) {
                    continue;
                }
                let Some(claim) = claim_row(&tx, job.id, owner, now, expires_at)? else {
                    continue;
                };
                claimed.push((crate::board::claimed_as(job, &claim), claim));
                if claimed.len() == max {
                    break 'pages;
                }
            }
            if !full {
                break;
            }
        }
        if !claimed.is_empty() {
            tx.commit().map_err(|e| {
                db_err(
                    e,
                    format_args!("committing the claims of {} jobs", claimed.len()),
                )
            })?;
        }
        Ok(claimed)
    }

    fn claims_next_in_one_call(&self) -> bool {
        true
    }

    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.complete(claim, &Outcome::Consumed)
    }

    /// One `BEGIN IMMEDIATE` transaction completing each job whose claim is
    /// current (the `UPDATE` of [`consume`](JobBoard::consume) for each),
    /// one commit for all.
    fn consume_all(&self, claims: &[Claim]) -> Vec<Result<(), JobBoardError>> {
        match claims {
            [] => Vec::new(),
            [claim] => vec![self.consume(claim)],
            _ => {
                let consumed = self
                    .consume_in_one(claims)
                    .unwrap_or_else(|e| crate::board::consumes_failed(BOARD, claims, e));
                self.wrote();
                consumed
            }
        }
    }

    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.update_current(
            claim,
            "abandoning",
            "UPDATE jobboard_jobs SET state = 'UNCLAIMED', owner = NULL, \
             lease_expires_at = NULL \
             WHERE id = ?1 AND state = 'CLAIMED' AND epoch = ?2 AND owner = ?3 \
             RETURNING control",
            &[],
        )?;
        self.wrote();
        Ok(())
    }

    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        self.complete(
            claim,
            &Outcome::Trashed {
                reason: reason.to_owned(),
            },
        )
    }

    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        let mut conn = self.conn()?;
        let tx = immediate(&mut conn, "a control request on", id)?;
        let mut buf = Uuid::encode_buffer();
        let text = id_text(id, &mut buf);
        let job = read_job(&tx, text, id)?.ok_or(JobBoardError::NotFound(id))?;
        if job.state == JobState::Complete {
            return Err(JobBoardError::Complete(id));
        }
        let control = lease::stronger(job.control, control);
        tx.prepare_cached("UPDATE jobboard_jobs SET control = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![text, control.as_str()]))
            .map_err(|e| db_err(e, format_args!("requesting {control} of job {id}")))?;
        tx.commit().map_err(|e| {
            db_err(
                e,
                format_args!("committing the {control} request of job {id}"),
            )
        })?;
        drop(conn);
        // A scheduled job with a request is claimable at once.
        self.wrote();
        let job = Job {
            control: Some(control),
            ..job
        };
        Ok(lease::view(job, self.now()))
    }

    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        let mut conn = self.conn()?;
        let tx = immediate(&mut conn, "reopening", id)?;
        let mut buf = Uuid::encode_buffer();
        let text = id_text(id, &mut buf);
        let job = read_job(&tx, text, id)?.ok_or(JobBoardError::NotFound(id))?;
        if job.state != JobState::Complete {
            return Err(JobBoardError::NotComplete(id));
        }
        if let Some(key) = &job.unique_key {
            // The job itself is complete, so not among the holders.
            if let Some(existing) = unique_holder(&tx, key)? {
                return Err(JobBoardError::Duplicate {
                    key: key.clone(),
                    existing,
                });
            }
        }
        tx.prepare_cached(
            "UPDATE jobboard_jobs SET state = 'UNCLAIMED', owner = NULL, \
             lease_expires_at = NULL, outcome = NULL, completed_at = NULL, control = NULL, \
             revision = revision + 1 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute([text]))
        .map_err(|e| db_err(e, format_args!("reopening job {id}")))?;
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing the reopening of job {id}")))?;
        drop(conn);
        self.wrote();
        Ok(Job {
            state: JobState::Unclaimed,
            owner: None,
            lease_expires_at: None,
            outcome: None,
            control: None,
            revision: job.revision.saturating_add(1),
            ..job
        })
    }

    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        let now = self.now();
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobboard_jobs ORDER BY sequence"
            ))
            .map_err(|e| db_err(e, "preparing the list of all jobs"))?;
        let mut rows = stmt.query([]).map_err(|e| db_err(e, "listing all jobs"))?;
        let mut jobs = Vec::new();
        while let Some(row) = rows.next().map_err(|e| db_err(e, "listing all jobs"))? {
            jobs.push(lease::view(decode(row)?, now));
        }
        Ok(jobs)
    }

    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        let now = self.now();
        let conn = self.conn()?;
        let now_param = sql_int(now);
        let (sql, params): (String, &[&dyn rusqlite::ToSql]) = if only_unclaimed {
            (
                format!(
                    "SELECT {JOB_COLUMNS} FROM jobboard_jobs WHERE (state = 'UNCLAIMED' \
                     OR (state = 'CLAIMED' AND lease_expires_at <= ?1)) \
                     AND (not_before IS NULL OR not_before <= ?1 OR control IS NOT NULL) \
                     ORDER BY priority DESC, sequence"
                ),
                &[&now_param],
            )
        } else {
            (
                format!(
                    "SELECT {JOB_COLUMNS} FROM jobboard_jobs WHERE state != 'COMPLETE' \
                     ORDER BY priority DESC, sequence"
                ),
                &[],
            )
        };
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(|e| db_err(e, "preparing the job list"))?;
        let mut rows = stmt.query(params).map_err(|e| db_err(e, "listing jobs"))?;
        let mut jobs = Vec::new();
        while let Some(row) = rows.next().map_err(|e| db_err(e, "listing jobs"))? {
            jobs.push(lease::view(decode(row)?, now));
        }
        Ok(jobs)
    }

    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        // The watcher wakes this wait when another process changes the
        // file, within one watch interval.
        self.watch()?;
        let deadline = Instant::now().checked_add(timeout);
        // What the last full check saw; `None` forces one.
        let mut seen: Option<(i64, u64)> = None;
        let mut next_lapse: Option<u64> = None;
        loop {
            let local = self.local_write_count();
            let version = self.data_version()?;
            let now = self.now();
            let lapsed = next_lapse.is_some_and(|at| at <= now);
            if seen != Some((version, local)) || lapsed {
                let (any, next) = self.claimable_now(now)?;
                if any {
                    return Ok(true);
                }
                seen = Some((version, local));
                next_lapse = next;
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => SqliteBoard::POLL_INTERVAL,
            };
            if remaining.is_zero() {
                return Ok(false);
            }
            let mut slice = remaining.min(SqliteBoard::POLL_INTERVAL);
            if let Some(at) = next_lapse {
                slice = slice.min(Duration::from_millis(at.saturating_sub(now)));
            }
            self.sleep_unless_written(local, slice);
        }
    }

    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        let deadline = Instant::now().checked_add(timeout);
        // What the last read of the job saw; `None` forces one.
        let mut seen: Option<(i64, u64)> = None;
        loop {
            let local = self.local_write_count();
            let version = self.data_version()?;
            if seen != Some((version, local)) {
                let job = self.get(id)?;
                if job.state == JobState::Complete {
                    return Ok(JobWait::Complete(job));
                }
                seen = Some((version, local));
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => SqliteBoard::POLL_INTERVAL,
            };
            if remaining.is_zero() {
                // Read once more: a lapsed lease shows as unclaimed.
                return self.get(id).map(settled);
            }
            self.sleep_unless_written(local, remaining.min(SqliteBoard::POLL_INTERVAL));
        }
    }

    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        let now = self.now();
        let conn = self.conn()?;
        let mut buf = Uuid::encode_buffer();
        let job = read_job(&conn, id_text(id, &mut buf), id)?.ok_or(JobBoardError::NotFound(id))?;
        Ok(lease::running_owner(&job, now))
    }

    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        let meta = serde_json::to_string(&entity.meta).map_err(|e| JobBoardError::Backend {
            board: BOARD,
            message: format!("encoding the metadata of entity {}", entity.name),
            source: Some(Box::new(e)),
        })?;
        let now = sql_int(self.now());
        self.conn()?
            .prepare_cached(
                "INSERT INTO jobboard_entities (name, meta, registered_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET meta = excluded.meta, \
                 registered_at = excluded.registered_at",
            )
            .and_then(|mut s| s.execute(params![entity.name, meta, now]))
            .map_err(|e| db_err(e, format_args!("registering entity {}", entity.name)))?;
        Ok(())
    }

    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        self.registered()
    }

    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        let now = self.now();
        let returning = format!("RETURNING {JOB_COLUMNS}, completed_at");
        let (sql, bound) = match &self.options.retention {
            Retention::Forever => return Ok(Vec::new()),
            Retention::For(keep) => (
                // completed_at + keep < now
                format!(
                    "DELETE FROM jobboard_jobs WHERE state = 'COMPLETE' \
                     AND completed_at < ?1 {returning}"
                ),
                sql_int(now).saturating_sub(sql_int(millis(*keep))),
            ),
            Retention::Last(n) => (
                format!(
                    "DELETE FROM jobboard_jobs WHERE sequence IN (SELECT sequence \
                     FROM jobboard_jobs WHERE state = 'COMPLETE' \
                     ORDER BY completed_at DESC, sequence DESC LIMIT -1 OFFSET ?1) {returning}"
                ),
                i64::try_from(*n).unwrap_or(i64::MAX),
            ),
        };
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(e, "starting the purge"))?;
        let mut purged = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(&sql)
                .map_err(|e| db_err(e, "preparing the purge"))?;
            let mut rows = stmt.query([bound]).map_err(|e| db_err(e, "purging"))?;
            while let Some(row) = rows.next().map_err(|e| db_err(e, "purging"))? {
                let job = decode(row)?;
                let at: Option<i64> = row
                    .get(JOB_COLUMN_COUNT)
                    .map_err(|e| db_err(e, "purging"))?;
                purged.push((at, job));
            }
        }
        // A corrupt row returned an error above: the transaction rolls back
        // and nothing is removed. Old events go too (watchers read new rows
        // within milliseconds; the newest row always stays, to keep `seq`).
        tx.prepare_cached(
            "DELETE FROM jobboard_events WHERE at < ?1 \
             AND seq < (SELECT max(seq) FROM jobboard_events)",
        )
        .and_then(|mut s| s.execute([sql_int(now).saturating_sub(sql_int(millis(EVENTS_KEPT)))]))
        .map_err(|e| db_err(e, "trimming the events"))?;
        tx.commit().map_err(|e| db_err(e, "committing the purge"))?;
        purged.sort_by_key(|(at, job)| (*at, job.sequence));
        Ok(purged.into_iter().map(|(_, job)| job).collect())
    }

    fn close(&self) -> Result<(), JobBoardError> {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.events.close();
        self.shared.local_changed.notify_all();
        Ok(())
    }

    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        drop(self.conn()?);
        let subscription = self.shared.events.subscribe(listener)?;
        self.watch()?;
        Ok(subscription)
    }

    fn job_count(&self) -> Result<usize, JobBoardError> {
        let n: i64 = self
            .conn()?
            .prepare_cached("SELECT count(*) FROM jobboard_jobs WHERE state != 'COMPLETE'")
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(|e| db_err(e, "counting jobs"))?;
        Ok(usize::try_from(n).unwrap_or_default())
    }

    fn connected(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire) && !self.shared.failing.load(Ordering::Acquire)
    }

    /// Always fresh: every read is a read transaction on the file, which
    /// sees every transaction committed before it (by any process).
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        self.iterjobs(options.only_unclaimed)
    }
}

/// The canonical text of an id (lower-case, hyphenated), without allocating.
/// The `CLAIM` update of job `id` for `owner` at `now`, its lease to
/// `expires_at`, in `conn`'s transaction: the claim, or `None` when the
/// job is not claimable (claimed, complete, waiting for its time, gone).
fn claim_row(
    conn: &Connection,
    id: JobId,
    owner: &str,
    now: u64,
    expires_at: u64,
) -> Result<Option<Claim>, JobBoardError> {
    let mut buf = Uuid::encode_buffer();
    let claimed: Option<(i64, Option<String>)> = conn
        .prepare_cached(CLAIM)
        .and_then(|mut s| {
            s.query_row(
                params![
                    id_text(id, &mut buf),
                    owner,
                    sql_int(now),
                    sql_int(expires_at)
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
        })
        .map_err(|e| db_err(e, format_args!("claiming job {id} for `{owner}`")))?;
    let Some((epoch, control)) = claimed else {
        return Ok(None);
    };
    Ok(Some(Claim {
        job: id,
        owner: owner.to_owned(),
        epoch: Epoch::new(u64::try_from(epoch).map_err(|_| corrupt(id, "epoch is negative"))?),
        expires_at,
        control: codec::control(control.as_deref(), id)?,
    }))
}

/// The most claimable jobs [`SqliteBoard::claim_next`] reads at a time
/// (it reads as many as it may still claim, up to this).
const CLAIM_PAGE: usize = 64;

/// Up to `size` jobs claimable at `now` in board order (priority, then
/// posting order), after the job at `after` (its priority and
/// sequence). The unclaimed jobs and those whose lease
/// lapsed are two arms of a `UNION ALL` merged in order: each arm walks
/// the index `(state, priority DESC, sequence)` and the merge stops at the
/// page, where one `WHERE state = .. OR state = ..` would sort the whole
/// board first.
fn claimable_page(
    conn: &Connection,
    now: u64,
    (priority, sequence): (i64, i64),
    size: usize,
) -> Result<Vec<Job>, JobBoardError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let arm = |state: &str| {
            format!(
                "SELECT {JOB_COLUMNS} FROM jobboard_jobs WHERE {state} \
                 AND (not_before IS NULL OR not_before <= ?1 OR control IS NOT NULL) \
                 AND priority <= ?2 AND (priority < ?2 OR sequence > ?3)"
            )
        };
        format!(
            "{} UNION ALL {} ORDER BY priority DESC, sequence LIMIT ?4",
            arm("state = 'UNCLAIMED'"),
            arm("state = 'CLAIMED' AND lease_expires_at <= ?1")
        )
    });
    let mut stmt = conn
        .prepare_cached(&SQL)
        .map_err(|e| db_err(e, "preparing the claimable jobs' query"))?;
    let limit = i64::try_from(size).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(params![sql_int(now), priority, sequence, limit])
        .map_err(|e| db_err(e, "reading the claimable jobs"))?;
    let mut jobs = Vec::with_capacity(size);
    while let Some(row) = rows
        .next()
        .map_err(|e| db_err(e, "reading the claimable jobs"))?
    {
        jobs.push(lease::view(decode(row)?, now));
    }
    Ok(jobs)
}

fn id_text(id: impl Into<Uuid>, buf: &mut [u8; 45]) -> &str {
    let id: Uuid = id.into();
    id.hyphenated().encode_lower(buf)
}

/// A backend error for a failed SQLite call.
fn db_err(e: rusqlite::Error, what: impl fmt::Display) -> JobBoardError {
    JobBoardError::backend(BOARD, what.to_string(), e)
}

fn immediate<'c>(
    conn: &'c mut Connection,
    what: &str,
    id: JobId,
) -> Result<Transaction<'c>, JobBoardError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db_err(e, format_args!("locking the board for {what} job {id}")))
}

/// Why job `text` cannot be claimed at `now`, if its latest committed
/// state already says so (read without taking the write lock, so losers of
/// a race do not queue for it). `None` means "maybe claimable": only the
/// conditional `UPDATE` decides.
fn quick_refusal(
    conn: &Connection,
    text: &str,
    id: JobId,
    now: u64,
) -> Result<Option<JobBoardError>, JobBoardError> {
    type Row = (String, Option<String>, Option<i64>, Option<i64>, bool);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT state, owner, lease_expires_at, not_before, control IS NOT NULL \
             FROM jobboard_jobs WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([text], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .optional()
        })
        .map_err(|e| db_err(e, format_args!("looking up job {id}")))?;
    let now = sql_int(now);
    Ok(match row {
        None => Some(JobBoardError::NotFound(id)),
        Some((state, ..)) if state == "COMPLETE" => Some(JobBoardError::Complete(id)),
        Some((state, Some(owner), Some(at), ..)) if state == "CLAIMED" && at > now => {
            Some(JobBoardError::AlreadyClaimed { job: id, owner })
        }
        Some((_, _, _, Some(not_before), false)) if not_before > now => {
            Some(JobBoardError::NotYet {
                job: id,
                not_before: u64::try_from(not_before).unwrap_or_default(),
            })
        }
        Some(_) => None,
    })
}

/// The job posted with execution key `key`, if one is on the board.
fn key_holder(conn: &Connection, key: &str) -> Result<Option<JobId>, JobBoardError> {
    holder(
        conn,
        "SELECT id FROM jobboard_jobs WHERE execution_key = ?1",
        key,
    )
}

/// The job not complete holding uniqueness key `key`, if any.
fn unique_holder(conn: &Connection, key: &str) -> Result<Option<JobId>, JobBoardError> {
    holder(
        conn,
        "SELECT id FROM jobboard_jobs WHERE unique_key = ?1 AND state != 'COMPLETE'",
        key,
    )
}

/// The job `query` finds for `key`.
fn holder(conn: &Connection, query: &str, key: &str) -> Result<Option<JobId>, JobBoardError> {
    let found: Option<String> = conn
        .prepare_cached(query)
        .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional())
        .map_err(|e| db_err(e, format_args!("looking for the job holding key `{key}`")))?;
    found
        .map(|text| {
            Uuid::parse_str(&text)
                .map(JobId::from)
                .map_err(|e| corrupt(&text, format_args!("id is not a uuid: {e}")))
        })
        .transpose()
}

fn job_exists(conn: &Connection, id: &str) -> Result<bool, JobBoardError> {
    conn.prepare_cached("SELECT 1 FROM jobboard_jobs WHERE id = ?1")
        .and_then(|mut s| s.exists([id]))
        .map_err(|e| db_err(e, format_args!("looking up job {id}")))
}

/// The job with id `text` (`id` as text), as stored.
fn read_job(conn: &Connection, text: &str, id: JobId) -> Result<Option<Job>, JobBoardError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobboard_jobs WHERE id = ?1"
        ))
        .map_err(|e| db_err(e, "preparing the job lookup"))?;
    let mut rows = stmt
        .query([text])
        .map_err(|e| db_err(e, format_args!("reading job {id}")))?;
    match rows
        .next()
        .map_err(|e| db_err(e, format_args!("reading job {id}")))?
    {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
