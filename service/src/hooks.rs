//! Status hooks, from a durable outbox.
//!
//! Every status change and check-in of a job submitted with a
//! `status_hook` becomes an event in the outbox (a SQLite file the nodes
//! of one host share) before it is sent, and leaves it only when the
//! receiver answered 2xx, or when it is older than the give-up time. So a
//! node that restarts sends what it had not sent, and a final status that
//! a crash kept out of the outbox is put back by the reconciler, which
//! compares the board with what was enqueued.
//!
//! Each event carries the job's id, status, revision, the claim's epoch
//! and a per-job `sequence` that grows with every event of the job, across
//! revisions, claims and nodes (`revision << 40 | epoch << 20 | n`): a
//! receiver keeps the highest sequence it has seen per job and drops
//! anything at or below it (duplicates, since delivery is at least once,
//! and stale events). One job's events are sent one at a time, in sequence
//! order, by whichever node of the host takes them; a failed delivery is
//! retried with exponential backoff, jitter and a cap, and holds back only
//! that job's later events, never other jobs'. (Nodes on several hosts each
//! keep their own outbox: across hosts only the sequence orders a job's
//! events.)

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::Value;
use taskflow::JobId;

use crate::{JobStats, Status};

/// The phase of a job's final status in its sequence numbers: after every
/// other event of the same revision and claim.
pub(crate) const FINAL_PHASE: u64 = 0xF_FFFF;

/// A job's sequence number for an event of `phase` in `revision` under the
/// claim of `epoch`.
pub(crate) fn sequence(revision: u64, epoch: u64, phase: u64) -> u64 {
    (revision.min(0xF_FFFF) << 40) | (epoch.min(0xF_FFFF) << 20) | phase.min(FINAL_PHASE)
}

/// How hooks are sent (`hooks:` in service.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOptions {
    /// The outbox file.
    pub outbox: PathBuf,
    /// The wait after a first failed delivery; doubled after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between two deliveries of one event.
    pub max_backoff: Duration,
    /// How long an event is retried before it is dropped (and logged).
    pub give_up_after: Duration,
    /// How long a receiver has to answer one delivery.
    pub timeout: Duration,
    /// How many deliveries one node makes at once.
    pub concurrency: usize,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            outbox: PathBuf::from(".taskflow/hooks.db"),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(5),
            concurrency: 4,
        }
    }
}

/// The body posted to a hook (Harbor's, with the sequence and epoch).
#[derive(Debug, Clone, Serialize)]
pub struct HookEvent {
    /// The job.
    pub job_id: JobId,
    /// Its status.
    pub status: Status,
    /// Where to read it.
    pub ref_link: String,
    /// The check-in, for a check-in event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_in: Option<String>,
    /// Grows with every event of the job: drop what is not above the last
    /// one seen.
    pub sequence: u64,
    /// The epoch of the claim the event happened under (0 before any).
    pub epoch: u64,
    /// The job's revision (1, plus one per retry).
    pub revision: u64,
    /// The job's stats when the event was made.
    pub metadata: JobStats,
}

/// One event taken from the outbox for delivery.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) id: i64,
    pub(crate) job: String,
    pub(crate) url: String,
    pub(crate) body: String,
    pub(crate) attempts: u32,
    pub(crate) created_at: u64,
}

/// The outbox: a SQLite file.
pub(crate) struct Outbox {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
#[error("hook outbox `{}`: {source}", path.display())]
pub struct OutboxError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

impl Outbox {
    pub(crate) fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let fail = |source| OutboxError {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS hook_events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 job TEXT NOT NULL,
                 url TEXT NOT NULL,
                 sequence INTEGER NOT NULL,
                 body TEXT NOT NULL,
                 created_at INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_at INTEGER NOT NULL,
                 taken_by TEXT,
                 taken_until INTEGER,
                 last_error TEXT,
                 UNIQUE (job, sequence)
             );
             CREATE TABLE IF NOT EXISTS hook_enqueued (
                 job TEXT PRIMARY KEY,
                 sequence INTEGER NOT NULL
             );",
        )
        .map_err(fail)?;
        Ok(Outbox {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    fn fail(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an event (once per job and sequence, whoever adds it).
    pub(crate) fn enqueue(
        &self,
        job: JobId,
        url: &str,
        sequence: u64,
        body: &str,
        now: u64,
    ) -> Result<(), OutboxError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let job = job.to_string();
        tx.execute(
            "INSERT OR IGNORE INTO hook_events (job, url, sequence, body, created_at, next_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![job, url, sequence as i64, body, now as i64],
        )
        .map_err(|e| self.fail(e))?;
        tx.execute(
            "INSERT INTO hook_enqueued (job, sequence) VALUES (?1, ?2)
             ON CONFLICT (job) DO UPDATE SET sequence = max(sequence, excluded.sequence)",
            params![job, sequence as i64],
        )
        .map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))
    }

    /// The highest sequence ever enqueued for `job`.
    pub(crate) fn enqueued(&self, job: JobId) -> Result<Option<u64>, OutboxError> {
        self.conn()
            .query_row(
                "SELECT sequence FROM hook_enqueued WHERE job = ?1",
                params![job.to_string()],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|s| s.map(|s| s as u64))
            .map_err(|e| self.fail(e))
    }

    /// Takes the next event due: the first (by sequence) of a job whose
    /// first event is not being delivered, for `hold` at most.
    pub(crate) fn take(
        &self,
        node: &str,
        now: u64,
        hold: Duration,
    ) -> Result<Option<Taken>, OutboxError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let taken = tx
            .query_row(
                "SELECT id, job, url, body, attempts, created_at FROM hook_events h
                 WHERE sequence = (SELECT min(sequence) FROM hook_events WHERE job = h.job)
                   AND next_at <= ?1 AND (taken_until IS NULL OR taken_until < ?1)
                 ORDER BY next_at, id LIMIT 1",
                params![now as i64],
                |row| {
                    Ok(Taken {
                        id: row.get(0)?,
                        job: row.get(1)?,
                        url: row.get(2)?,
                        body: row.get(3)?,
                        attempts: row.get::<_, i64>(4)? as u32,
                        created_at: row.get::<_, i64>(5)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        if let Some(taken) = &taken {
            tx.execute(
                "UPDATE hook_events SET taken_by = ?2, taken_until = ?3 WHERE id = ?1",
                params![taken.id, node, (now + hold.as_millis() as u64) as i64],
            )
            .map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(taken)
    }

    /// The event was delivered (or given up on): it leaves the outbox.
    pub(crate) fn remove(&self, id: i64) -> Result<(), OutboxError> {
        self.conn()
            .execute("DELETE FROM hook_events WHERE id = ?1", params![id])
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// The delivery failed: retried at `next_at`.
    pub(crate) fn retry_at(&self, id: i64, next_at: u64, error: &str) -> Result<(), OutboxError> {
        self.conn()
            .execute(
                "UPDATE hook_events SET attempts = attempts + 1, next_at = ?2, taken_by = NULL,
                     taken_until = NULL, last_error = ?3
                 WHERE id = ?1",
                params![id, next_at as i64, error],
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// Forgets the enqueue marks of jobs the board no longer holds (and
    /// that have no event waiting), so the outbox stays as small as the
    /// board.
    pub(crate) fn forget_gone(
        &self,
        on_board: &std::collections::HashSet<String>,
    ) -> Result<usize, OutboxError> {
        let conn = self.conn();
        let marked: Vec<String> = {
            let mut stmt = conn
                .prepare(
                    "SELECT job FROM hook_enqueued e
                     WHERE NOT EXISTS (SELECT 1 FROM hook_events h WHERE h.job = e.job)",
                )
                .map_err(|e| self.fail(e))?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(|e| self.fail(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))?
        };
        let mut forgotten = 0;
        for job in marked.iter().filter(|j| !on_board.contains(*j)) {
            forgotten += conn
                .execute("DELETE FROM hook_enqueued WHERE job = ?1", params![job])
                .map_err(|e| self.fail(e))?;
        }
        Ok(forgotten)
    }

    /// How many events wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.conn()
            .query_row("SELECT count(*) FROM hook_events", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_or(0, |n| n as usize)
    }
}

/// The wait before the next delivery of an event that failed `attempts`
/// times: doubling from the initial backoff up to the cap, then a random
/// jitter of up to half of it, so receivers coming back are not hit by
/// every sender at once.
pub(crate) fn backoff(options: &HookOptions, attempts: u32) -> Duration {
    let doubled = options
        .initial_backoff
        .saturating_mul(1u32 << attempts.min(20));
    let capped = doubled.min(options.max_backoff);
    let jitter = capped.mul_f64(fastrand::f64() * 0.5);
    capped.saturating_sub(capped / 4) + jitter
}

/// Whether an answer counts as delivered.
pub(crate) fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The stats body for an event, with the check-in if it is one.
pub(crate) fn event_body(stats: &JobStats, check_in: Option<&str>, sequence: u64) -> String {
    let event = HookEvent {
        job_id: stats.id,
        status: stats.status,
        ref_link: stats.ref_link.clone(),
        check_in: check_in.map(str::to_owned),
        sequence,
        epoch: stats.epoch,
        revision: stats.revision,
        metadata: stats.clone(),
    };
    serde_json::to_string(&event).unwrap_or_else(|e| {
        // Cannot happen (string keys only); an event is never dropped silently.
        Value::from(format!("unserializable hook event: {e}")).to_string()
    })
}

/// The hooks of one node: what it enqueues and the workers that send.
pub(crate) struct Hooks {
    pub(crate) outbox: Outbox,
    pub(crate) options: HookOptions,
    client: reqwest::blocking::Client,
    /// Check-ins per job and claim, numbering their events.
    checkins: Mutex<std::collections::HashMap<JobId, (u64, u64)>>,
}

impl Hooks {
    pub(crate) fn open(options: HookOptions) -> Result<Hooks, crate::ServiceError> {
        let outbox = Outbox::open(&options.outbox).map_err(crate::ServiceError::Outbox)?;
        let client = reqwest::blocking::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| crate::ServiceError::HookClient(e.to_string()))?;
        Ok(Hooks {
            outbox,
            options,
            client,
            checkins: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Enqueues the event of `stats` (a job with a hook) at `phase`.
    pub(crate) fn emit(&self, stats: &JobStats, phase: u64, check_in: Option<&str>) {
        let Some(url) = &stats.hook_status else {
            return;
        };
        let seq = sequence(stats.revision, stats.epoch, phase);
        let body = event_body(stats, check_in, seq);
        if let Err(e) = self
            .outbox
            .enqueue(stats.id, url, seq, &body, crate::clock::now_ms())
        {
            tracing::error!(job = %stats.id, error = %e, "cannot enqueue a status hook event");
        }
    }

    /// Enqueues a status event: phase 0 for `pending` / `scheduled`, 1 for
    /// `running`, the final phase for a final status.
    pub(crate) fn status(&self, stats: &JobStats) {
        let phase = match stats.status {
            Status::Pending | Status::Scheduled => 0,
            Status::Running => 1,
            _ => FINAL_PHASE,
        };
        self.emit(stats, phase, None);
    }

    /// Enqueues a check-in event, after the claim's earlier ones.
    pub(crate) fn checkin(&self, stats: &JobStats, message: &str) {
        let n = {
            let mut checkins = self
                .checkins
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = checkins.entry(stats.id).or_insert((stats.epoch, 0));
            if entry.0 != stats.epoch {
                *entry = (stats.epoch, 0);
            }
            entry.1 += 1;
            entry.1
        };
        self.emit(stats, 1 + n, Some(message));
    }

    /// Forgets a finished job's check-in count.
    pub(crate) fn finished(&self, job: JobId) {
        self.checkins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&job);
    }

    /// Sends one event if one is due; returns whether it did.
    pub(crate) fn send_one(&self, node: &str) -> bool {
        let now = crate::clock::now_ms();
        // Held a little longer than a delivery may take: a node that dies
        // mid-delivery frees it for the others.
        let hold = self.options.timeout * 2 + Duration::from_secs(1);
        let taken = match self.outbox.take(node, now, hold) {
            Ok(Some(taken)) => taken,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the hook outbox");
                return false;
            }
        };
        let answer = self
            .client
            .post(&taken.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(taken.body.clone())
            .send();
        let failure = match answer {
            Ok(response) if delivered(response.status().as_u16()) => None,
            Ok(response) => Some(format!("the receiver answered {}", response.status())),
            Err(e) => Some(format!("cannot reach the receiver: {e}")),
        };
        let settled = match failure {
            None => self.outbox.remove(taken.id),
            Some(error) => {
                let age = now.saturating_sub(taken.created_at);
                if age >= self.options.give_up_after.as_millis() as u64 {
                    tracing::warn!(
                        job = %taken.job, url = %taken.url, attempts = taken.attempts + 1, %error,
                        "status hook given up"
                    );
                    self.outbox.remove(taken.id)
                } else {
                    let wait = backoff(&self.options, taken.attempts);
                    tracing::debug!(
                        job = %taken.job, url = %taken.url, attempts = taken.attempts + 1, %error,
                        retry_in = ?wait, "status hook failed"
                    );
                    self.outbox
                        .retry_at(taken.id, now + wait.as_millis() as u64, &error)
                }
            }
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "cannot update the hook outbox");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_grow_across_phases_claims_and_revisions() {
        let order = [
            sequence(1, 0, 0),
            sequence(1, 1, 1),
            sequence(1, 1, 2),
            sequence(1, 1, FINAL_PHASE),
            sequence(1, 2, 1),
            sequence(1, 2, FINAL_PHASE),
            sequence(2, 2, 0),
            sequence(2, 3, 1),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let options = HookOptions {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..HookOptions::default()
        };
        for attempts in 0..10 {
            let base = Duration::from_millis((100u64 << attempts).min(1000));
            let wait = backoff(&options, attempts);
            assert!(
                wait >= base * 3 / 4 && wait <= base * 5 / 4,
                "{attempts}: {wait:?}"
            );
        }
    }

    #[test]
    fn one_job_at_a_time_in_order_and_others_not_held_back() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("hooks.db")).unwrap();
        let (a, b) = (JobId::new(), JobId::new());
        outbox.enqueue(a, "http://a", 2, "a2", 0).unwrap();
        outbox.enqueue(a, "http://a", 1, "a1", 0).unwrap();
        outbox.enqueue(a, "http://a", 1, "a1 again", 0).unwrap();
        outbox.enqueue(b, "http://b", 7, "b7", 0).unwrap();
        assert_eq!(outbox.len(), 3);
        assert_eq!(outbox.enqueued(a).unwrap(), Some(2));
        let hold = Duration::from_secs(10);
        let first = outbox.take("n", 1, hold).unwrap().unwrap();
        assert_eq!(first.body, "a1");
        // a's next waits for a1; b goes ahead.
        let second = outbox.take("n", 1, hold).unwrap().unwrap();
        assert_eq!(second.body, "b7");
        assert!(outbox.take("n", 1, hold).unwrap().is_none());
        outbox.retry_at(first.id, 100, "down").unwrap();
        assert!(outbox.take("n", 50, hold).unwrap().is_none());
        let again = outbox.take("n", 100, hold).unwrap().unwrap();
        assert_eq!((again.body.as_str(), again.attempts), ("a1", 1));
        outbox.remove(again.id).unwrap();
        assert_eq!(outbox.take("n", 100, hold).unwrap().unwrap().body, "a2");
    }
}
