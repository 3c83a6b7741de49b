//! The PostgreSQL board (cargo feature `postgres`): conductors on many
//! hosts sharing one database, which may also hold the records
//! ([`PostgresBackend`](taskflow_persistence::PostgresBackend)). See
//! [`PostgresBoard`].
//!
//! # How claims stay atomic
//!
//! Every change is one statement, so one transaction. A claim locks the
//! job's row `FOR UPDATE SKIP LOCKED` only if the job is claimable, and
//! updates it in the same statement:
//!
//! ```sql
//! WITH t AS (SELECT <now> AS now),
//!      c AS (SELECT j.id FROM jobboard_jobs j, t WHERE j.id = $id
//!              AND (j.state = 'UNCLAIMED' OR (j.state = 'CLAIMED' AND j.lease_expires_at <= t.now))
//!              AND (j.not_before IS NULL OR j.not_before <= t.now OR j.control IS NOT NULL)
//!            FOR UPDATE OF j SKIP LOCKED)
//! UPDATE jobboard_jobs SET state = 'CLAIMED', owner = $owner, epoch = epoch + 1,
//!        lease_expires_at = t.now + $lease
//!   FROM c, t WHERE jobboard_jobs.id = c.id
//! RETURNING epoch, lease_expires_at, control
//! ```
//!
//! Of any number of racing claimers, on any hosts, one locks the row and
//! wins; the others skip it without queueing and get no row. A claimer
//! that got none reads the job `FOR SHARE` (which waits for a change in
//! flight to commit) to say why: `AlreadyClaimed` naming the winner,
//! `NotYet`, `Complete` or `NotFound` (and claims again if what it skipped
//! was not a claim). [`claim_next`](crate::JobBoard::claim_next) is the
//! same statement over the claimable jobs in board order (`ORDER BY
//! priority DESC, sequence LIMIT n FOR UPDATE OF j SKIP LOCKED`, passing
//! over the ids and flow factories its filter names; the factory is a
//! column of its own since schema version 3), so racing claimers take
//! distinct jobs in one round trip each. Renew, consume, abandon and trash are single
//! `UPDATE`s conditioned on `state = 'CLAIMED' AND epoch = $epoch AND
//! owner = $owner` (the claim is current), so a superseded claim can never
//! write.
//!
//! # Leases and time
//!
//! Lease, posting and completion times are the database server's clock:
//! `now()` (the start of the statement's transaction) in milliseconds since
//! the Unix epoch, so the clients' clocks do not matter. A custom
//! [`BoardOptions::clock`] (tests) is passed to each statement instead.
//!
//! # Keys
//!
//! A partial unique index over `unique_key` of the jobs not complete, and a
//! unique index over `execution_key`, are the board's rule: a post is
//! `INSERT ... ON CONFLICT DO NOTHING`, so of any number of racing posters
//! (PostgreSQL makes the later inserts wait for the first to commit) one
//! inserts and the others insert nothing, then read which job holds the
//! key (execution key first) to name it. A reopen that the unique index
//! refuses is `Duplicate` the same way.
//!
//! # Waiting
//!
//! Post, claim, abandon, consume, trash, request and reopen each send a
//! `NOTIFY` on the board's channel (`taskflow_jobboard_<oid of the
//! schema>`) in their own statement (delivered when it commits). A board
//! that waits or has listeners keeps one more connection, which
//! `LISTEN`s on a thread of its own and wakes its waiters. [`wait`](JobBoard::wait) looks at the jobs,
//! and if none is claimable sleeps until a notification, or until the
//! earliest time a running lease lapses or a scheduled job comes due (no
//! statement marks those moments, so the waiter times its sleep to them),
//! or its deadline. [`wait_until_complete`](JobBoard::wait_until_complete)
//! reads the job again at each notification. While the listener's
//! connection is broken (it reconnects by itself), waiters poll every
//! 100 ms.
//!
//! # Events, freshness, connection
//!
//! **Events** ([`subscribe`](JobBoard::subscribe)): schema version 2 adds
//! table `jobboard_events`, which triggers on `jobboard_jobs` fill with one
//! row per change (post, claim, abandon, consume, trash, request, reopen,
//! remove; not a renewal, nor a lease lapsing or a scheduled job coming
//! due) inside the transaction that makes it, so changes by any board, any
//! process, even plain SQL, are events. Their `seq` comes from a one-row
//! counter the trigger updates, which stays locked until the commit: the
//! numbers follow commit order without gaps (a sequence would not: two
//! transactions may commit in the other order than they drew their
//! numbers, and a watcher would skip the late one; `v2.sql` says more).
//! The trigger also notifies the board's channel, so the listener thread
//! (the one `wait` uses) reads the rows after the last `seq` it saw at
//! each notification, and every second while listeners are registered,
//! should a notification be lost; it hands them to the listeners in `seq`
//! order. When its connection breaks the listeners are told
//! `Disconnected`; once it listens again, `Reconnected`, then what was
//! committed meanwhile (a gap in `seq`, events a purge trimmed, is
//! `Missed`). [`purge`](JobBoard::purge) trims events older than ten
//! minutes. The cost: changes that make events commit one at a time (they
//! queue on the counter row for the commit of the one before).
//!
//! **Freshness**: every call reads the primary (the server the URL names)
//! in a transaction of its own, which sees every commit before it, so
//! every listing is fresh and `iterjobs_with(...fresh())` is `iterjobs`.
//! **Connection**: [`connected`](JobBoard::connected) is `false` once
//! closed, and while the listener's connection is broken; after
//! [`close`](JobBoard::close) every call fails with
//! [`JobBoardError::Closed`] (a blocked `wait` within 100 ms), the listener
//! stops and listeners hear nothing more.
//!
//! # Connections and retries
//!
//! Calls run on an `r2d2` pool of at most 16 connections; a connection
//! broken by a server restart or a terminated session is replaced, and the
//! call that met it runs again once on a new connection. Claims,
//! completions, abandons and reopens write a random token (`last_op`) with
//! their change: a retry whose first try may have committed (only its
//! reply was lost) finds its token and returns what the first try did
//! rather than failing or claiming twice. A post writes its job's id, which
//! it chose, and finds it the same way.

mod codec;
mod listen;
mod pool;
mod schema;
mod sql;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Config, Row};
use taskflow_persistence::{
    describe_postgres as describe, quote_ident, Backend, Epoch, LogBook, SharedDatabase,
};
use uuid::Uuid;

use self::codec::{col, corrupt, decode, unsigned};
use self::listen::Signal;
use self::pool::{pg_err, Attempt, Conn, Pool};
use self::sql::COLUMN_COUNT;
use crate::board::{settled, ListOptions};
use crate::error::sql_int;
use crate::events::Notifier;
use crate::lease::{self, millis};
use crate::sync::lock;
use crate::{
    BoardListener, BoardOptions, Claim, ClaimFilter, Control, Entity, Job, JobBoard, JobBoardError,
    JobId, JobState, JobWait, NewJob, Outcome, Retention, Subscription,
};

const BOARD: &str = "postgres";

/// How many times a post whose key's holder vanished before it could be
/// named (completed or purged meanwhile) inserts again.
const KEY_TRIES: usize = 8;

/// The longest lease or retention passed to the server (2^50 ms, about
/// 35,000 years): `now + lease` stays far inside a `bigint`.
const MAX_MS: u64 = 1 << 50;

/// How long a waiter sleeps at most between two looks at the jobs while
/// the listener listens: a safety net, should a notification be lost.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// How often a waiter looks again when the board's clock is a custom one
/// (the server cannot know when such a clock passes a lease's end).
const CUSTOM_CLOCK_POLL: Duration = Duration::from_millis(50);

/// How long [`purge`](JobBoard::purge) keeps events (watchers read new
/// rows at their commit; this is room for a watcher reconnecting).
const EVENTS_KEPT: Duration = Duration::from_secs(600);

/// A [`JobBoard`] in a PostgreSQL schema, for conductors on many hosts
/// (cargo feature `postgres`).
///
/// Jobs are rows of table `jobboard_jobs` (entities: `jobboard_entities`)
/// in one PostgreSQL schema (namespace), created on connect if missing,
/// with the schema version in `jobboard_meta`
/// ([`PostgresBoard::SCHEMA_VERSION`]; a newer one is refused, an older one
/// migrated, by the runner of the persistence crate's PostgreSQL backend).
/// The table names leave room for a `PostgresBackend`'s records in the same
/// schema. Claims are one statement with `FOR UPDATE SKIP LOCKED`, leases
/// are measured on the server's clock (`now()`), keys are unique indexes,
/// and [`wait`](JobBoard::wait) is woken by `LISTEN/NOTIFY`. Triggers
/// record every change, by any process, for the board's
/// [events](JobBoard::subscribe), in commit order; every listing is fresh
/// (read from the primary). The module's documentation says how. Connections are pooled and made again after a
/// server restart; they are made without TLS.
///
/// ```no_run
/// use std::time::Duration;
/// use taskflow_jobboard::{BoardOptions, JobBoard, NewJob, PostgresBoard};
///
/// let board = PostgresBoard::connect("postgres://taskflow@db.example/flows", BoardOptions::default())?;
/// let job = board.post(NewJob::new("provision"))?;
/// if board.wait(Duration::from_secs(5))? {
///     let claim = board.claim(job.id, "conductor-1")?;
///     board.consume(&claim)?;
/// }
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
pub struct PostgresBoard {
    pool: Pool,
    /// For the listener's own connection.
    config: Config,
    schema: String,
    location: String,
    /// The channel of this board's notifications.
    channel: String,
    options: BoardOptions,
    signal: Arc<Signal>,
    /// The listeners' queue, fed by the listener thread.
    events: Arc<Notifier>,
    /// Set by `close`: every call then fails with `Closed`.
    closed: AtomicBool,
    /// Once a wait or a subscription started the listener: its thread (`None` if no thread
    /// could be started: waiters then poll).
    listener: Mutex<Option<Option<JoinHandle<()>>>>,
}

impl fmt::Debug for PostgresBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBoard")
            .field("location", &self.location)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A duration as milliseconds for the server, capped at [`MAX_MS`].
fn sql_ms(d: Duration) -> i64 {
    sql_int(millis(d).min(MAX_MS))
}

/// Encodes `value` as JSON text, naming `what` on failure.
fn to_json(
    value: &impl serde::Serialize,
    what: impl fmt::Display,
) -> Result<String, JobBoardError> {
    serde_json::to_string(value).map_err(|e| JobBoardError::Backend {
        board: BOARD,
        message: format!("encoding {what}"),
        source: Some(Box::new(e)),
    })
}

/// The job of a row holding the job's columns then the time now, as
/// readers see it.
fn viewed(row: &Row) -> Result<Job, JobBoardError> {
    let job = decode(row)?;
    let now: i64 = col(row, COLUMN_COUNT, &job.id, "now")?;
    let now = unsigned(now, &job.id, "now")?;
    Ok(lease::view(job, now))
}

/// The ids, epochs and owners of `claims`, as the columns of a batch
/// statement binds them.
fn batch_columns(claims: &[Claim]) -> (Vec<Uuid>, Vec<i64>, Vec<&str>) {
    (
        claims.iter().map(|c| c.job.as_uuid()).collect(),
        claims.iter().map(|c| sql_int(c.epoch.get())).collect(),
        claims.iter().map(|c| c.owner.as_str()).collect(),
    )
}

/// The ids in the first column of `rows`.
fn returned_ids(rows: &[Row]) -> Result<std::collections::HashSet<Uuid>, JobBoardError> {
    rows.iter()
        .map(|row| col::<Uuid>(row, 0, &"a completed job", "id"))
        .collect()
}

/// The first row's job, as readers see it.
fn first_viewed(rows: &[Row]) -> Result<Option<Job>, JobBoardError> {
    rows.first().map(viewed).transpose()
}

impl PostgresBoard {
    /// The schema version this build reads and writes.
    pub const SCHEMA_VERSION: u32 = schema::VERSION;

    /// The schema [`connect`](Self::connect) uses (the one a
    /// `PostgresBackend` uses by default: the board's tables sit beside the
    /// records).
    pub const DEFAULT_SCHEMA: &'static str = "taskflow";

    /// How long making a connection may take when the URL does not say
    /// (`connect_timeout`).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the database at `url` (a `postgres://` URL or a
    /// `key=value` string, as the `postgres` crate reads them) and uses the
    /// schema [`DEFAULT_SCHEMA`](Self::DEFAULT_SCHEMA), creating or
    /// migrating the board's tables there.
    pub fn connect(url: &str, options: BoardOptions) -> Result<Self, JobBoardError> {
        PostgresBoard::connect_in_schema(url, PostgresBoard::DEFAULT_SCHEMA, options)
    }

    /// Connects to the database at `url` and uses the schema `schema`
    /// (created if missing), so several boards (or tests) can share one
    /// database. Fails at once if the server cannot be reached.
    pub fn connect_in_schema(
        url: &str,
        schema: &str,
        options: BoardOptions,
    ) -> Result<Self, JobBoardError> {
        if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
            return Err(JobBoardError::Backend {
                board: BOARD,
                message: format!("{schema:?} is not a schema name (1 to 63 bytes, no NUL)"),
                source: None,
            });
        }
        let mut config: Config = url
            .parse()
            .map_err(|e| pg_err(e, "reading the connection URL"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(PostgresBoard::CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("taskflow-jobboard");
        }
        let timeout = config
            .get_connect_timeout()
            .copied()
            .filter(|t| !t.is_zero())
            .unwrap_or(PostgresBoard::CONNECT_TIMEOUT);
        let location = describe(&config, schema);
        let pool = Pool::new(
            config.clone(),
            format!("SET search_path TO {}", quote_ident(schema)),
            timeout,
        );
        // The first connection, in the caller's thread: a wrong URL or an
        // unreachable server fails here.
        let mut client = pool
            .connect()
            .map_err(|e| pg_err(e, format_args!("connecting to {location}")))?;
        schema::BOARD_SCHEMA
            .prepare(&mut client, schema, &location)
            .map_err(|e| JobBoardError::from_persistence(BOARD, e))?;
        let oid: u32 = client
            .query_one(
                "SELECT oid FROM pg_namespace WHERE nspname = $1",
                &[&schema],
            )
            .and_then(|row| row.try_get(0))
            .map_err(|e| pg_err(e, format_args!("looking up schema {schema}")))?;
        Ok(PostgresBoard {
            pool,
            config,
            schema: schema.to_owned(),
            location,
            channel: format!("taskflow_jobboard_{oid}"),
            options,
            signal: Arc::new(Signal::default()),
            events: Arc::new(Notifier::new(BOARD)),
            closed: AtomicBool::new(false),
            listener: Mutex::new(None),
        })
    }

    /// The schema the board works in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Where the board points (hosts, database and schema; no credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The options it was connected with.
    pub fn options(&self) -> &BoardOptions {
        &self.options
    }

    /// The custom clock's time, for the statements' `$1` (`None`: the
    /// server's clock).
    fn clock(&self) -> Option<i64> {
        if self.options.clock.is_system() {
            None
        } else {
            Some(sql_int(self.options.clock.now_millis()))
        }
    }

    fn lease_ms(&self) -> i64 {
        sql_ms(self.options.lease)
    }

    /// `Closed` once the board is closed.
    fn check(&self) -> Result<(), JobBoardError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(JobBoardError::Closed { board: BOARD });
        }
        Ok(())
    }

    /// Starts the listener if it is not running, so that a wait that looks
    /// at the jobs next is woken by any change committed after, and the
    /// board's listeners hear of every event committed after.
    fn listen(&self) -> Result<(), JobBoardError> {
        self.check()?;
        let mut listener = lock(&self.listener);
        if listener.is_some() {
            return Ok(());
        }
        let client = self.pool.connect().map_err(|e| {
            pg_err(
                e,
                format_args!("connecting the listener to {}", self.location),
            )
        })?;
        let handle = listen::spawn(
            client,
            self.config.clone(),
            format!(
                "SET search_path TO {}; LISTEN {}",
                quote_ident(&self.schema),
                quote_ident(&self.channel)
            ),
            Arc::clone(&self.signal),
            Arc::clone(&self.events),
        )
        .map_err(|e| pg_err(e, format_args!("listening on {}", self.channel)))?;
        *listener = Some(handle);
        Ok(())
    }

    /// Stops the listener and waits for its thread.
    fn stop_listening(&self) {
        self.signal.stop();
        if let Some(Some(handle)) = lock(&self.listener).take() {
            let _ = handle.join();
        }
    }

    /// Whether a job is claimable now, and how long until a running lease
    /// lapses or a scheduled job comes due, whichever is first.
    fn claimable_now(&self) -> Result<(bool, Option<Duration>), JobBoardError> {
        let clock = self.clock();
        let row = self
            .pool
            .run(|conn, _| conn.query(sql::WAIT_CHECK, &[&clock], &"looking for claimable jobs"))?;
        let Some(row) = row.first() else {
            return Ok((false, None));
        };
        let what = &"the claimable jobs";
        let now: i64 = col(row, 0, what, "now")?;
        let any: bool = col(row, 1, what, "exists")?;
        let lapse: Option<i64> = col(row, 2, what, "lease_expires_at")?;
        let due: Option<i64> = col(row, 3, what, "not_before")?;
        let next = match (lapse, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((
            any,
            next.map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0))),
        ))
    }

    /// The job holding execution key `key` (`KEY_HOLDER`) or uniqueness
    /// key `key` (`UNIQUE_HOLDER`), if any.
    fn holder(
        conn: &mut Conn,
        query: &'static str,
        key: &str,
    ) -> Result<Option<JobId>, JobBoardError> {
        key_holder(
            &mut |sql, params, what| conn.query(sql, params, what),
            query,
            key,
        )
    }

    /// What a post of `new` as `id` binds (the clock and everything but the
    /// channel are in `sql::POST`'s order).
    fn post_params<'n>(
        &'n self,
        new: &'n NewJob,
        id: JobId,
    ) -> Result<PostParams<'n>, JobBoardError> {
        Ok(PostParams {
            clock: self.clock(),
            uuid: id.as_uuid(),
            details: to_json(
                &new.details,
                format_args!("the details of job {id} ({})", new.name),
            )?,
            logbook: new.logbook.map(|b| b.as_uuid()),
            flow_detail: new.flow_detail.map(|f| f.as_uuid()),
            not_before: new.not_before.map(sql_int),
            new,
            channel: &self.channel,
            factory: new.factory(),
        })
    }

    /// Runs a change of the current claim `claim` (`sql`, whose parameters
    /// start with the clock if `timed`, then id, epoch and owner) that
    /// writes `token`; `NotOwner` or `NotFound` when it changes nothing,
    /// unless it is a retry whose first try made it.
    fn change_claimed(
        &self,
        claim: &Claim,
        what: &str,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        token: Uuid,
    ) -> Result<(), JobBoardError> {
        let id = claim.job.as_uuid();
        self.pool.run(|conn, attempt| {
            let rows = conn.query(sql, params, &format_args!("{what} job {}", claim.job))?;
            if !rows.is_empty() {
                return Ok(());
            }
            if attempt == Attempt::Retry
                && !conn
                    .query(
                        sql::DONE_BY_OP,
                        &[&id, &token],
                        &"looking for a retried change",
                    )?
                    .is_empty()
            {
                return Ok(());
            }
            Err(self.not_current(conn, claim)?)
        })
    }

    /// Why claim `claim` changed nothing: `NotOwner`, or `NotFound`.
    /// [`JobBoard::consume_all`] of two or more claims: the results, or
    /// the error of the whole batch.
    fn consume_in_one(
        &self,
        claims: &[Claim],
    ) -> Result<Vec<Result<(), JobBoardError>>, JobBoardError> {
        self.check()?;
        let outcome = to_json(&Outcome::Consumed, "the outcome consumed")?;
        let token = Uuid::new_v4();
        let (ids, epochs, owners) = batch_columns(claims);
        let results = self.pool.run(|conn, attempt| {
            let rows = conn.query(
                sql::COMPLETE_ALL,
                &[
                    &self.clock(),
                    &ids,
                    &epochs,
                    &owners,
                    &outcome,
                    &token,
                    &self.channel,
                ],
                &format_args!("consuming {} jobs", claims.len()),
            )?;
            let mut done = returned_ids(&rows)?;
            if attempt == Attempt::Retry && done.len() < claims.len() {
                let rows = conn.query(
                    sql::DONE_ALL_BY_OP,
                    &[&ids, &token],
                    &"looking for a retried consume",
                )?;
                done.extend(returned_ids(&rows)?);
            }
            claims
                .iter()
                .map(|claim| {
                    if done.contains(&claim.job.as_uuid()) {
                        Ok(Ok(()))
                    } else {
                        self.not_current(conn, claim).map(Err)
                    }
                })
                .collect::<Result<Vec<_>, JobBoardError>>()
        })?;
        self.signal.bump();
        Ok(results)
    }

    /// [`JobBoard::renew_all`] of two or more claims: the results, or the
    /// error of the whole batch.
    fn renew_in_one(
        &self,
        claims: &[Claim],
    ) -> Result<Vec<Result<Claim, JobBoardError>>, JobBoardError> {
        self.check()?;
        let lease = self.lease_ms();
        let (ids, epochs, owners) = batch_columns(claims);
        self.pool.run(|conn, _| {
            let rows = conn.query(
                sql::RENEW_ALL,
                &[&self.clock(), &ids, &epochs, &owners, &lease],
                &format_args!("renewing {} claims", claims.len()),
            )?;
            let mut renewed = std::collections::HashMap::with_capacity(rows.len());
            for row in &rows {
                let id: Uuid = col(row, 0, &"a renewed claim", "id")?;
                let job = JobId::from(id);
                let expires: i64 = col(row, 1, &job, "lease_expires_at")?;
                let control = codec::control(col(row, 2, &job, "control")?, job)?;
                renewed.insert(id, (unsigned(expires, &job, "lease_expires_at")?, control));
            }
            claims
                .iter()
                .map(|claim| match renewed.get(&claim.job.as_uuid()) {
                    Some((expires_at, control)) => Ok(Ok(Claim {
                        expires_at: *expires_at,
                        control: *control,
                        ..claim.clone()
                    })),
                    None => self.not_current(conn, claim).map(Err),
                })
                .collect()
        })
    }

    fn not_current(&self, conn: &mut Conn, claim: &Claim) -> Result<JobBoardError, JobBoardError> {
        let id = claim.job.as_uuid();
        let exists = !conn
            .query(
                sql::EXISTS,
                &[&id],
                &format_args!("looking up job {}", claim.job),
            )?
            .is_empty();
        Ok(if exists {
            lease::not_owner(claim)
        } else {
            JobBoardError::NotFound(claim.job)
        })
    }

    fn complete(&self, claim: &Claim, outcome: &Outcome) -> Result<(), JobBoardError> {
        let outcome = to_json(outcome, format_args!("the outcome of job {}", claim.job))?;
        let token = Uuid::new_v4();
        let clock = self.clock();
        let id = claim.job.as_uuid();
        let epoch = sql_int(claim.epoch.get());
        self.change_claimed(
            claim,
            "completing",
            sql::COMPLETE,
            &[
                &clock,
                &id,
                &epoch,
                &claim.owner,
                &outcome,
                &token,
                &self.channel,
            ],
            token,
        )?;
        self.signal.bump();
        Ok(())
    }

    /// Drops every table of the board (and the schema, if nothing else is
    /// left in it). For tests and tools; the board is unusable after.
    pub fn destroy(&self) -> Result<(), JobBoardError> {
        self.stop_listening();
        let mut client = self
            .pool
            .connect()
            .map_err(|e| pg_err(e, format_args!("connecting to {}", self.location)))?;
        client
            .batch_execute(
                "DROP TABLE IF EXISTS jobboard_jobs, jobboard_entities, jobboard_meta, \
                 jobboard_events, jobboard_event_seq; \
                 DROP FUNCTION IF EXISTS jobboard_record_event()",
            )
            .map_err(|e| pg_err(e, format_args!("dropping the board at {}", self.location)))?;
        let left = client
            .query_one(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1",
                &[&self.schema],
            )
            .and_then(|row| row.try_get::<_, i64>(0))
            .map_err(|e| pg_err(e, format_args!("looking into schema {}", self.schema)))?;
        if left == 0 {
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {}",
                    quote_ident(&self.schema)
                ))
                .map_err(|e| pg_err(e, format_args!("dropping schema {}", self.schema)))?;
        }
        Ok(())
    }
}

impl Drop for PostgresBoard {
    fn drop(&mut self) {
        self.stop_listening();
        self.events.close();
    }
}

/// A statement runner: a pooled connection's (prepared once) or a
/// transaction's.
type Query<'q> = dyn FnMut(
        &'static str,
        &[&(dyn postgres::types::ToSql + Sync)],
        &dyn fmt::Display,
    ) -> Result<Vec<Row>, JobBoardError>
    + 'q;

/// The values a post binds to `sql::POST`.
struct PostParams<'n> {
    clock: Option<i64>,
    uuid: Uuid,
    details: String,
    logbook: Option<Uuid>,
    flow_detail: Option<Uuid>,
    not_before: Option<i64>,
    new: &'n NewJob,
    channel: &'n str,
    factory: Option<&'n str>,
}

impl PostParams<'_> {
    fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 12] {
        [
            &self.clock,
            &self.uuid,
            &self.new.name,
            &self.details,
            &self.logbook,
            &self.flow_detail,
            &self.new.priority,
            &self.not_before,
            &self.new.unique_key,
            &self.new.key,
            &self.channel,
            &self.factory,
        ]
    }
}

/// The job holding execution key `key` (`KEY_HOLDER`) or uniqueness key
/// `key` (`UNIQUE_HOLDER`), if any.
fn key_holder(
    run: &mut Query<'_>,
    query: &'static str,
    key: &str,
) -> Result<Option<JobId>, JobBoardError> {
    let rows = run(
        query,
        &[&key],
        &format_args!("looking for the job holding key `{key}`"),
    )?;
    rows.first()
        .map(|row| col::<Uuid>(row, 0, &key, "id").map(JobId::from))
        .transpose()
}

/// Inserts `new` as job `id` (`params`: `sql::POST`'s), checking its keys:
/// its sequence and creation time, or the job itself when a retry finds
/// that its first try posted it.
fn insert_job(
    run: &mut Query<'_>,
    new: &NewJob,
    id: JobId,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    attempt: Attempt,
) -> Result<Result<(i64, i64), Job>, JobBoardError> {
    for _ in 0..KEY_TRIES {
        let rows = run(
            sql::POST,
            params,
            &format_args!("posting job {id} ({})", new.name),
        )?;
        if let Some(row) = rows.first() {
            let sequence: i64 = col(row, 0, &id, "sequence")?;
            let created_at: i64 = col(row, 1, &id, "created_at")?;
            return Ok(Ok((sequence, created_at)));
        }
        if attempt == Attempt::Retry {
            // The first try may have inserted it.
            let rows = run(
                sql::GET,
                &[params[0], params[1]],
                &format_args!("reading job {id}"),
            )?;
            if let Some(job) = first_viewed(&rows)? {
                return Ok(Err(job));
            }
        }
        if let Some(key) = &new.key {
            if let Some(existing) = key_holder(run, sql::KEY_HOLDER, key)? {
                return Err(JobBoardError::AlreadyPosted {
                    key: key.clone(),
                    existing,
                });
            }
        }
        if let Some(key) = &new.unique_key {
            if let Some(existing) = key_holder(run, sql::UNIQUE_HOLDER, key)? {
                return Err(JobBoardError::Duplicate {
                    key: key.clone(),
                    existing,
                });
            }
        }
        // The holder completed or was purged meanwhile: again.
    }
    Err(JobBoardError::Backend {
        board: BOARD,
        message: format!(
            "posting job {id} ({}): its keys kept conflicting with jobs that then vanished",
            new.name
        ),
        source: None,
    })
}

/// The job `new` became when posted as `id`.
fn posted_job(
    id: JobId,
    new: NewJob,
    sequence: i64,
    created_at: i64,
) -> Result<Job, JobBoardError> {
    Ok(Job {
        id,
        created_at: unsigned(created_at, &id, "created_at")?,
        sequence: unsigned(sequence, &id, "sequence")?,
        name: new.name,
        details: new.details,
        logbook: new.logbook,
        flow_detail: new.flow_detail,
        priority: new.priority,
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
    })
}

impl JobBoard for PostgresBoard {
    fn post(&self, new: NewJob) -> Result<Job, JobBoardError> {
        self.check()?;
        let id = JobId::new();
        let post = self.post_params(&new, id)?;
        let posted = self.pool.run(|conn, attempt| {
            insert_job(
                &mut |sql, params, what| conn.query(sql, params, what),
                &new,
                id,
                &post.params(),
                attempt,
            )
        })?;
        self.signal.bump();
        match posted {
            Ok((sequence, created_at)) => posted_job(id, new, sequence, created_at),
            Err(job) => Ok(job),
        }
    }

    fn post_with_records(
        &self,
        new: NewJob,
        book: &LogBook,
        records: &dyn Backend,
    ) -> Result<Job, JobBoardError> {
        let backend = match records.shared_database() {
            Some(SharedDatabase::Postgres(backend)) if backend.same_database(&self.config) => {
                backend
            }
            _ => return crate::post::records_then_post(self, new, book, records),
        };
        self.check()?;
        let id = JobId::new();
        let post = self.post_params(&new, id)?;
        let board_path = format!("SET LOCAL search_path TO {}", quote_ident(&self.schema));
        // One transaction on a connection of the board's: the records (in
        // their schema), then the job (in the board's); the notification
        // is sent at the commit.
        let posted = self.pool.run(|conn, attempt| {
            let mut tx = conn
                .transaction()
                .map_err(|e| pg_err(e, format_args!("starting to post job {id}")))?;
            backend
                .save_logbook_in(&mut tx, book)
                .map_err(|e| JobBoardError::from_persistence(BOARD, e))?;
            tx.batch_execute(&board_path)
                .map_err(|e| pg_err(e, format_args!("using schema {}", self.schema)))?;
            let posted = insert_job(
                &mut |sql, params, what| tx.query(sql, params).map_err(|e| pg_err(e, what)),
                &new,
                id,
                &post.params(),
                attempt,
            )?;
            tx.commit()
                .map_err(|e| pg_err(e, format_args!("committing the post of job {id}")))?;
            Ok(posted)
        })?;
        self.signal.bump();
        match posted {
            Ok((sequence, created_at)) => posted_job(id, new, sequence, created_at),
            Err(job) => Ok(job),
        }
    }

    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        self.check()?;
        let clock = self.clock();
        let uuid = id.as_uuid();
        let rows = self.pool.run(|conn, _| {
            conn.query(
                sql::GET,
                &[&clock, &uuid],
                &format_args!("reading job {id}"),
            )
        })?;
        first_viewed(&rows)?.ok_or(JobBoardError::NotFound(id))
    }

    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        self.check()?;
        let uuid = id.as_uuid();
        let lease = self.lease_ms();
        let token = Uuid::new_v4();
        let claim_of = |row: &Row| -> Result<Claim, JobBoardError> {
            let epoch: i64 = col(row, 0, &id, "epoch")?;
            let expires: i64 = col(row, 1, &id, "lease_expires_at")?;
            Ok(Claim {
                job: id,
                owner: owner.to_owned(),
                epoch: Epoch::new(unsigned(epoch, &id, "epoch")?),
                expires_at: unsigned(expires, &id, "lease_expires_at")?,
                control: codec::control(col(row, 2, &id, "control")?, id)?,
            })
        };
        self.pool.run(|conn, attempt| {
            if attempt == Attempt::Retry {
                let rows = conn.query(
                    sql::CLAIM_BY_OP,
                    &[&uuid, &token],
                    &format_args!("looking for a retried claim of job {id}"),
                )?;
                if let Some(row) = rows.first() {
                    return claim_of(row);
                }
            }
            loop {
                let clock = self.clock();
                let rows = conn.query(
                    sql::CLAIM,
                    &[&clock, &uuid, &owner, &lease, &token, &self.channel],
                    &format_args!("claiming job {id} for `{owner}`"),
                )?;
                if let Some(row) = rows.first() {
                    return claim_of(row);
                }
                // Not claimable, or locked by a change in flight: read it
                // once that change committed.
                let rows = conn.query(
                    sql::GET_SETTLED,
                    &[&clock, &uuid],
                    &format_args!("reading job {id}"),
                )?;
                let Some(row) = rows.first() else {
                    return Err(JobBoardError::NotFound(id));
                };
                let job = decode(row)?;
                let now: i64 = col(row, COLUMN_COUNT, &id, "now")?;
                let now = unsigned(now, &id, "now")?;
                if !lease::claimable(&job, now) {
                    return Err(lease::refusal(&job, now));
                }
                // What was skipped was not a claim (a request, a renewal
                // of a lapsed lease that then lapsed): claim again.
            }
        })
    }

    /// One statement: the claimable jobs in board order that no other
    /// transaction holds (`FOR UPDATE SKIP LOCKED`, as River and Oban
    /// fetch), passing over the filter's ids and factories, claimed where
    /// they are found. Racing claimers skip each other's rows instead of
    /// queueing on them, so each job is claimed once.
    fn claim_next(
        &self,
        owner: &str,
        max: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Job, Claim)>, JobBoardError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.check()?;
        let lease = self.lease_ms();
        let token = Uuid::new_v4();
        let skipped: Vec<Uuid> = filter.skipped().iter().map(|id| id.as_uuid()).collect();
        let factories: Option<Vec<&str>> = filter
            .accepted_factories()
            .map(|names| names.iter().map(String::as_str).collect());
        let most = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self.pool.run(|conn, attempt| {
            if attempt == Attempt::Retry {
                let rows = conn.query(
                    sql::CLAIMED_BY_OP,
                    &[&self.clock(), &token],
                    &"looking for the claims of a retried claim of the next jobs",
                )?;
                if !rows.is_empty() {
                    return Ok(rows);
                }
            }
            conn.query(
                sql::CLAIM_NEXT,
                &[
                    &self.clock(),
                    &owner,
                    &lease,
                    &token,
                    &skipped,
                    &factories,
                    &most,
                    &self.channel,
                ],
                &format_args!("claiming the next jobs for `{owner}`"),
            )
        })?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut undecoded = None;
        for row in &rows {
            // A row that does not decode is claimed all the same: its
            // claim lapses. Reported when it is all that was claimed.
            let job = match viewed(row) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(error = %e, "claimed a job whose row does not decode; its claim lapses");
                    undecoded = Some(e);
                    continue;
                }
            };
            let claim = Claim {
                job: job.id,
                owner: owner.to_owned(),
                epoch: job.epoch,
                expires_at: job
                    .lease_expires_at
                    .ok_or_else(|| corrupt(job.id, "claimed without a lease"))?,
                control: job.control,
            };
            claimed.push((job, claim));
        }
        claimed.sort_by_key(|(job, _)| (std::cmp::Reverse(job.priority), job.sequence));
        match undecoded {
            Some(e) if claimed.is_empty() => Err(e),
            _ => Ok(claimed),
        }
    }

    fn claims_next_in_one_call(&self) -> bool {
        true
    }

    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        self.check()?;
        let clock = self.clock();
        let id = claim.job.as_uuid();
        let epoch = sql_int(claim.epoch.get());
        let lease = self.lease_ms();
        self.pool.run(|conn, _| {
            let rows = conn.query(
                sql::RENEW,
                &[&clock, &id, &epoch, &claim.owner, &lease],
                &format_args!("renewing the claim on job {}", claim.job),
            )?;
            let Some(row) = rows.first() else {
                return Err(self.not_current(conn, claim)?);
            };
            let expires: i64 = col(row, 0, &claim.job, "lease_expires_at")?;
            Ok(Claim {
                expires_at: unsigned(expires, &claim.job, "lease_expires_at")?,
                control: codec::control(col(row, 1, &claim.job, "control")?, claim.job)?,
                ..claim.clone()
            })
        })
    }

    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.check()?;
        self.complete(claim, &Outcome::Consumed)
    }

    /// One statement completing every current claim of `claims` (each
    /// fenced by its own epoch and owner), instead of one per job; the
    /// claims it did not complete are then looked at one by one (gone, or
    /// no longer current), or, for a retry, found done by its first try.
    fn consume_all(&self, claims: &[Claim]) -> Vec<Result<(), JobBoardError>> {
        match claims {
            [] => return Vec::new(),
            [claim] => return vec![self.consume(claim)],
            _ => {}
        }
        self.consume_in_one(claims)
            .unwrap_or_else(|e| crate::board::consumes_failed(BOARD, claims, e))
    }

    /// One statement renewing every current claim of `claims`; those it
    /// did not renew are gone or no longer current.
    fn renew_all(&self, claims: &[Claim]) -> Vec<Result<Claim, JobBoardError>> {
        match claims {
            [] => return Vec::new(),
            [claim] => return vec![self.renew(claim)],
            _ => {}
        }
        self.renew_in_one(claims)
            .unwrap_or_else(|e| crate::board::renewals_failed(BOARD, claims, e))
    }

    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.check()?;
        let token = Uuid::new_v4();
        let id = claim.job.as_uuid();
        let epoch = sql_int(claim.epoch.get());
        self.change_claimed(
            claim,
            "abandoning",
            sql::ABANDON,
            &[&id, &epoch, &claim.owner, &token, &self.channel],
            token,
        )?;
        self.signal.bump();
        Ok(())
    }

    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        self.check()?;
        self.complete(
            claim,
            &Outcome::Trashed {
                reason: reason.to_owned(),
            },
        )
    }

    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        self.check()?;
        let clock = self.clock();
        let uuid = id.as_uuid();
        let job = self.pool.run(|conn, _| {
            let rows = conn.query(
                sql::REQUEST,
                &[&clock, &uuid, &control.as_str(), &self.channel],
                &format_args!("requesting {control} of job {id}"),
            )?;
            if let Some(job) = first_viewed(&rows)? {
                return Ok(job);
            }
            let exists = !conn
                .query(sql::EXISTS, &[&uuid], &format_args!("looking up job {id}"))?
                .is_empty();
            Err(if exists {
                JobBoardError::Complete(id)
            } else {
                JobBoardError::NotFound(id)
            })
        })?;
        self.signal.bump();
        Ok(job)
    }

    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        self.check()?;
        let uuid = id.as_uuid();
        let token = Uuid::new_v4();
        let job = self.pool.run(|conn, attempt| {
            for _ in 0..KEY_TRIES {
                let clock = self.clock();
                let what = format!("reopening job {id}");
                let reopened =
                    conn.query(sql::REOPEN, &[&clock, &uuid, &token, &self.channel], &what);
                let rows = match reopened {
                    Ok(rows) => rows,
                    Err(e) if is_unique_violation(&e) => {
                        let rows = conn.query(sql::GET, &[&clock, &uuid], &what)?;
                        let job = first_viewed(&rows)?.ok_or(JobBoardError::NotFound(id))?;
                        let Some(key) = job.unique_key else {
                            return Err(e);
                        };
                        match Self::holder(conn, sql::UNIQUE_HOLDER, &key)? {
                            Some(existing) => {
                                return Err(JobBoardError::Duplicate { key, existing })
                            }
                            // The holder completed meanwhile: again.
                            None => continue,
                        }
                    }
                    Err(e) => return Err(e),
                };
                if let Some(job) = first_viewed(&rows)? {
                    return Ok(job);
                }
                if attempt == Attempt::Retry {
                    let rows = conn.query(sql::GET_BY_OP, &[&clock, &uuid, &token], &what)?;
                    if let Some(job) = first_viewed(&rows)? {
                        return Ok(job);
                    }
                }
                let exists = !conn.query(sql::EXISTS, &[&uuid], &what)?.is_empty();
                return Err(if exists {
                    JobBoardError::NotComplete(id)
                } else {
                    JobBoardError::NotFound(id)
                });
            }
            Err(JobBoardError::Backend {
                board: BOARD,
                message: format!("reopening job {id}: its uniqueness key kept conflicting"),
                source: None,
            })
        })?;
        self.signal.bump();
        Ok(job)
    }

    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        self.check()?;
        let clock = self.clock();
        let sql = if only_unclaimed {
            sql::CLAIMABLE
        } else {
            sql::OPEN
        };
        let rows = self
            .pool
            .run(|conn, _| conn.query(sql, &[&clock], &"listing jobs"))?;
        rows.iter().map(viewed).collect()
    }

    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        self.check()?;
        let clock = self.clock();
        let rows = self
            .pool
            .run(|conn, _| conn.query(sql::ALL, &[&clock], &"listing all jobs"))?;
        rows.iter().map(viewed).collect()
    }

    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        self.listen()?;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            self.check()?;
            let seen = self.signal.count();
            let (any, next) = self.claimable_now()?;
            if any {
                return Ok(true);
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => MAX_SLEEP,
            };
            if remaining.is_zero() {
                return Ok(false);
            }
            let mut slice = remaining.min(MAX_SLEEP);
            if let Some(next) = next {
                // Just past the moment, so the look after sees it passed.
                slice = slice.min(next + Duration::from_millis(1));
            }
            if !self.options.clock.is_system() {
                slice = slice.min(CUSTOM_CLOCK_POLL);
            }
            self.signal.sleep_unless_changed(seen, slice);
        }
    }

    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        self.listen()?;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let seen = self.signal.count();
            let job = self.get(id)?;
            if job.state == JobState::Complete {
                return Ok(JobWait::Complete(job));
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => MAX_SLEEP,
            };
            if remaining.is_zero() {
                return Ok(settled(job));
            }
            self.signal
                .sleep_unless_changed(seen, remaining.min(MAX_SLEEP));
        }
    }

    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        self.check()?;
        let clock = self.clock();
        let uuid = id.as_uuid();
        let rows = self.pool.run(|conn, _| {
            conn.query(
                sql::GET,
                &[&clock, &uuid],
                &format_args!("reading job {id}"),
            )
        })?;
        let Some(row) = rows.first() else {
            return Err(JobBoardError::NotFound(id));
        };
        let job = decode(row)?;
        let now: i64 = col(row, COLUMN_COUNT, &id, "now")?;
        Ok(lease::running_owner(&job, unsigned(now, &id, "now")?))
    }

    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        self.check()?;
        let meta = to_json(
            &entity.meta,
            format_args!("the metadata of entity {}", entity.name),
        )?;
        let clock = self.clock();
        self.pool.run(|conn, _| {
            conn.execute(
                sql::REGISTER,
                &[&clock, &entity.name, &meta],
                &format_args!("registering entity {}", entity.name),
            )
        })?;
        Ok(())
    }

    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        self.check()?;
        let rows = self
            .pool
            .run(|conn, _| conn.query(sql::ENTITIES, &[], &"listing entities"))?;
        rows.iter()
            .map(|row| {
                let name: String = col(row, 0, &"(an entity)", "name")?;
                let who = format!("entity {name}");
                let meta: &str = col(row, 1, &who, "meta")?;
                let meta = serde_json::from_str(meta)
                    .map_err(|e| corrupt(&who, format_args!("meta is not JSON: {e}")))?;
                Ok(Entity { name, meta })
            })
            .collect()
    }

    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        self.check()?;
        let clock = self.clock();
        let rows = match &self.options.retention {
            Retention::Forever => Vec::new(),
            Retention::For(keep) => {
                let keep = sql_ms(*keep);
                self.pool
                    .run(|conn, _| conn.query(sql::PURGE_OLDER, &[&clock, &keep], &"purging"))?
            }
            Retention::Last(n) => {
                let n = i64::try_from(*n).unwrap_or(i64::MAX);
                self.pool
                    .run(|conn, _| conn.query(sql::PURGE_BEYOND, &[&n], &"purging"))?
            }
        };
        let mut purged = rows
            .iter()
            .map(|row| {
                let job = decode(row)?;
                let at: Option<i64> = col(row, COLUMN_COUNT, &job.id, "completed_at")?;
                Ok((at, job))
            })
            .collect::<Result<Vec<_>, JobBoardError>>()?;
        purged.sort_by_key(|(at, job)| (*at, job.sequence));
        // Old events go too, in a statement of their own (after the
        // removals' events): watchers read new rows at their commit.
        let kept = sql_ms(EVENTS_KEPT);
        self.pool
            .run(|conn, _| conn.execute(sql::TRIM_EVENTS, &[&kept], &"trimming the events"))?;
        Ok(purged.into_iter().map(|(_, job)| job).collect())
    }

    fn close(&self) -> Result<(), JobBoardError> {
        self.closed.store(true, Ordering::Release);
        self.stop_listening();
        self.events.close();
        Ok(())
    }

    fn subscribe(&self, listener: Arc<dyn BoardListener>) -> Result<Subscription, JobBoardError> {
        self.check()?;
        let subscription = self.events.subscribe(listener)?;
        // The listener thread reads the events committed from now on.
        self.listen()?;
        Ok(subscription)
    }

    fn job_count(&self) -> Result<usize, JobBoardError> {
        self.check()?;
        let rows = self
            .pool
            .run(|conn, _| conn.query(sql::COUNT_OPEN, &[], &"counting jobs"))?;
        let n: i64 = match rows.first() {
            Some(row) => col(row, 0, &"the jobs", "count")?,
            None => 0,
        };
        Ok(usize::try_from(n).unwrap_or_default())
    }

    fn connected(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && self.signal.connected()
    }

    /// Always fresh: every call reads the primary (the server the URL
    /// names) in a transaction of its own, which sees every commit before
    /// it, by any board.
    fn iterjobs_with(&self, options: ListOptions) -> Result<Vec<Job>, JobBoardError> {
        self.iterjobs(options.only_unclaimed)
    }
}

/// Whether `e` is a unique index refusing a row.
fn is_unique_violation(e: &JobBoardError) -> bool {
    let JobBoardError::Backend {
        source: Some(source),
        ..
    } = e
    else {
        return false;
    };
    source
        .downcast_ref::<postgres::Error>()
        .and_then(postgres::Error::code)
        == Some(&SqlState::UNIQUE_VIOLATION)
}
