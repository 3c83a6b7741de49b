//! The board's statements. Each is one statement (one round trip, its own
//! transaction), prepared once per connection. Where a statement needs the
//! time, `$1` is the board's custom clock (`NULL`: the server's clock,
//! `now()`), read through `now!`.

/// The time in ms since the Unix epoch: parameter `$1` if set, else the
/// server's `now()` (the start of the statement's transaction).
macro_rules! now {
    () => {
        "COALESCE($1::bigint, floor(extract(epoch FROM now()) * 1000)::bigint)"
    };
}

/// The columns `decode` reads, in order; a column
/// after them is at index [`COLUMN_COUNT`].
macro_rules! cols {
    () => {
        "sequence, id, name, details, logbook, flow_detail, priority, created_at, state, owner, \
         epoch, lease_expires_at, outcome, not_before, unique_key, execution_key, control, revision"
    };
}

/// How many columns `cols!` names.
pub(super) const COLUMN_COUNT: usize = 18;

/// Whether a job (`j`) is claimable at `t.now`.
macro_rules! claimable {
    () => {
        "(j.state = 'UNCLAIMED' OR (j.state = 'CLAIMED' AND j.lease_expires_at <= t.now)) \
         AND (j.not_before IS NULL OR j.not_before <= t.now OR j.control IS NOT NULL)"
    };
}

/// `$2` id, `$3` name, `$4` details, `$5` logbook, `$6` flow detail, `$7`
/// priority, `$8` not-before, `$9` unique key, `$10` execution key, `$11`
/// channel. Inserts nothing when a unique index (a key) refuses the row.
pub(super) const POST: &str = concat!(
    "INSERT INTO jobboard_jobs (id, name, details, logbook, flow_detail, priority, created_at, \
     state, epoch, not_before, unique_key, execution_key, revision, factory) \
     VALUES ($2, $3, $4, $5, $6, $7, ",
    now!(),
    ", 'UNCLAIMED', 0, $8, $9, $10, 1, $12) ON CONFLICT DO NOTHING \
     RETURNING sequence, created_at, pg_notify($11, 'post')::text"
);

/// `$2` id.
pub(super) const GET: &str = concat!(
    "SELECT ",
    cols!(),
    ", ",
    now!(),
    " FROM jobboard_jobs WHERE id = $2"
);

/// `$2` id: the job as committed once any change in flight is (a share
/// lock waits for it).
pub(super) const GET_SETTLED: &str = concat!(
    "SELECT ",
    cols!(),
    ", ",
    now!(),
    " FROM jobboard_jobs WHERE id = $2 FOR SHARE"
);

/// `$2` id, `$3` token: the job if the last change was the call with that
/// token.
pub(super) const GET_BY_OP: &str = concat!(
    "SELECT ",
    cols!(),
    ", ",
    now!(),
    " FROM jobboard_jobs WHERE id = $2 AND last_op = $3"
);

/// `$1` id.
pub(super) const EXISTS: &str = "SELECT 1 FROM jobboard_jobs WHERE id = $1";

/// `$1` id, `$2` token.
pub(super) const DONE_BY_OP: &str = "SELECT 1 FROM jobboard_jobs WHERE id = $1 AND last_op = $2";

/// `$1` execution key.
pub(super) const KEY_HOLDER: &str = "SELECT id FROM jobboard_jobs WHERE execution_key = $1";

/// `$1` uniqueness key.
pub(super) const UNIQUE_HOLDER: &str =
    "SELECT id FROM jobboard_jobs WHERE unique_key = $1 AND state <> 'COMPLETE'";

/// `$2` id, `$3` owner, `$4` lease (ms), `$5` token, `$6` channel. The
/// job's row is locked `FOR UPDATE SKIP LOCKED`: a claimer never queues
/// behind another change of the job.
pub(super) const CLAIM: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now), c AS (SELECT j.id AS cid FROM jobboard_jobs j, t WHERE j.id = $2 AND ",
    claimable!(),
    " FOR UPDATE OF j SKIP LOCKED) \
     UPDATE jobboard_jobs SET state = 'CLAIMED', owner = $3, epoch = jobboard_jobs.epoch + 1, \
     lease_expires_at = t.now + $4, last_op = $5 FROM c, t WHERE jobboard_jobs.id = c.cid \
     RETURNING jobboard_jobs.epoch, jobboard_jobs.lease_expires_at, jobboard_jobs.control, \
     pg_notify($6, 'claim')::text"
);

/// `$2` owner, `$3` lease (ms), `$4` token, `$5` ids passed over, `$6`
/// the flow factories accepted (`NULL`: any), `$7` the most to claim, `$8`
/// channel: claims up to `$7` of the claimable jobs in board order that
/// no other transaction holds, returning each as claimed and the time.
pub(super) const CLAIM_NEXT: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now), c AS (SELECT j.id AS cid FROM jobboard_jobs j, t WHERE j.state <> 'COMPLETE' AND ",
    claimable!(),
    " AND NOT (j.id = ANY($5::uuid[])) \
     AND ($6::text[] IS NULL OR j.factory IS NULL OR j.factory = ANY($6::text[])) \
     ORDER BY j.priority DESC, j.sequence LIMIT $7 FOR UPDATE OF j SKIP LOCKED) \
     UPDATE jobboard_jobs SET state = 'CLAIMED', owner = $2, epoch = jobboard_jobs.epoch + 1, \
     lease_expires_at = t.now + $3, last_op = $4 FROM c, t WHERE jobboard_jobs.id = c.cid \
     RETURNING ",
    cols!(),
    ", t.now, pg_notify($8, 'claim')::text"
);

/// `$2` token: the jobs a `CLAIM_NEXT` with that token claimed, while
/// their claims are still the jobs', and the time.
pub(super) const CLAIMED_BY_OP: &str = concat!(
    "SELECT ",
    cols!(),
    ", ",
    now!(),
    " FROM jobboard_jobs WHERE last_op = $2 AND state = 'CLAIMED'"
);

/// `$1` id, `$2` token: the claim a call with that token made, if it is
/// still the job's.
pub(super) const CLAIM_BY_OP: &str = "SELECT epoch, lease_expires_at, control FROM jobboard_jobs \
     WHERE id = $1 AND last_op = $2 AND state = 'CLAIMED'";

/// The claims of a batch, `$2` ids, `$3` epochs, `$4` owners, as rows
/// `c(cid, cepoch, cowner)`.
macro_rules! claims {
    () => {
        "c AS (SELECT * FROM unnest($2::uuid[], $3::bigint[], $4::text[]) AS c(cid, cepoch, cowner))"
    };
}

/// `$2` ids, `$3` epochs, `$4` owners (one claim each), `$5` lease (ms):
/// `RENEW` of every claim that is current, returning each renewed job's
/// id, lease and control.
pub(super) const RENEW_ALL: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now), ",
    claims!(),
    " UPDATE jobboard_jobs SET lease_expires_at = t.now + $5 FROM t, c \
     WHERE jobboard_jobs.id = c.cid AND state = 'CLAIMED' AND epoch = c.cepoch \
     AND owner = c.cowner RETURNING jobboard_jobs.id, lease_expires_at, control"
);

/// `$2` ids, `$3` epochs, `$4` owners (one claim each), `$5` outcome, `$6`
/// token, `$7` channel: `COMPLETE` of every claim that is current,
/// returning each completed job's id.
pub(super) const COMPLETE_ALL: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now), ",
    claims!(),
    " UPDATE jobboard_jobs SET state = 'COMPLETE', lease_expires_at = NULL, \
     outcome = $5, completed_at = t.now, last_op = $6 FROM t, c \
     WHERE jobboard_jobs.id = c.cid AND state = 'CLAIMED' AND epoch = c.cepoch \
     AND owner = c.cowner RETURNING jobboard_jobs.id, pg_notify($7, 'complete')::text"
);

/// `$1` ids, `$2` token: those of the jobs whose last change was the call
/// with that token.
pub(super) const DONE_ALL_BY_OP: &str =
    "SELECT id FROM jobboard_jobs WHERE id = ANY($1::uuid[]) AND last_op = $2";

/// `$2` id, `$3` epoch, `$4` owner, `$5` lease (ms).
pub(super) const RENEW: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now) UPDATE jobboard_jobs SET lease_expires_at = t.now + $5 FROM t \
     WHERE id = $2 AND state = 'CLAIMED' AND epoch = $3 AND owner = $4 \
     RETURNING lease_expires_at, control"
);

/// `$2` id, `$3` epoch, `$4` owner, `$5` outcome, `$6` token, `$7` channel.
pub(super) const COMPLETE: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now) UPDATE jobboard_jobs SET state = 'COMPLETE', lease_expires_at = NULL, \
     outcome = $5, completed_at = t.now, last_op = $6 FROM t \
     WHERE id = $2 AND state = 'CLAIMED' AND epoch = $3 AND owner = $4 \
     RETURNING pg_notify($7, 'complete')::text"
);

/// `$1` id, `$2` epoch, `$3` owner, `$4` token, `$5` channel.
pub(super) const ABANDON: &str = "UPDATE jobboard_jobs SET state = 'UNCLAIMED', owner = NULL, \
     lease_expires_at = NULL, last_op = $4 \
     WHERE id = $1 AND state = 'CLAIMED' AND epoch = $2 AND owner = $3 \
     RETURNING pg_notify($5, 'abandon')::text";

/// `$2` id, `$3` control asked, `$4` channel: keeps the stronger request.
pub(super) const REQUEST: &str = concat!(
    "UPDATE jobboard_jobs SET control = CASE WHEN control = 'cancel' OR $3::text = 'cancel' \
     THEN 'cancel' ELSE 'stop' END WHERE id = $2 AND state <> 'COMPLETE' RETURNING ",
    cols!(),
    ", ",
    now!(),
    ", pg_notify($4, 'request')::text"
);

/// `$2` id, `$3` token, `$4` channel.
pub(super) const REOPEN: &str = concat!(
    "UPDATE jobboard_jobs SET state = 'UNCLAIMED', owner = NULL, lease_expires_at = NULL, \
     outcome = NULL, completed_at = NULL, control = NULL, revision = revision + 1, \
     last_op = $3 WHERE id = $2 AND state = 'COMPLETE' RETURNING ",
    cols!(),
    ", ",
    now!(),
    ", pg_notify($4, 'reopen')::text"
);

/// Jobs not complete, in `iterjobs` order.
pub(super) const OPEN: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now) SELECT ",
    cols!(),
    ", t.now FROM jobboard_jobs, t WHERE state <> 'COMPLETE' ORDER BY priority DESC, sequence"
);

/// Jobs claimable now, in `iterjobs` order.
pub(super) const CLAIMABLE: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now) SELECT ",
    cols!(),
    ", t.now FROM jobboard_jobs j, t WHERE ",
    claimable!(),
    " ORDER BY priority DESC, sequence"
);

/// Every job, in posting order.
pub(super) const ALL: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now) SELECT ",
    cols!(),
    ", t.now FROM jobboard_jobs, t ORDER BY sequence"
);

/// The time now, whether a job is claimable, the earliest running lease's
/// end and the earliest scheduled job's time.
pub(super) const WAIT_CHECK: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now) SELECT t.now, \
     EXISTS (SELECT 1 FROM jobboard_jobs j WHERE ",
    claimable!(),
    "), (SELECT min(lease_expires_at) FROM jobboard_jobs \
         WHERE state = 'CLAIMED' AND lease_expires_at > t.now), \
     (SELECT min(not_before) FROM jobboard_jobs WHERE not_before IS NOT NULL \
         AND control IS NULL AND state <> 'COMPLETE' AND not_before > t.now) FROM t"
);

/// `$2` name, `$3` meta.
pub(super) const REGISTER: &str = concat!(
    "INSERT INTO jobboard_entities (name, meta, registered_at) VALUES ($2, $3, ",
    now!(),
    ") ON CONFLICT (name) DO UPDATE SET meta = EXCLUDED.meta, \
     registered_at = EXCLUDED.registered_at"
);

/// Entities by name (byte order, as every board lists them).
pub(super) const ENTITIES: &str =
    "SELECT name, meta FROM jobboard_entities ORDER BY name COLLATE \"C\"";

/// `$2` retention (ms): complete jobs completed longer ago.
pub(super) const PURGE_OLDER: &str = concat!(
    "WITH t AS (SELECT ",
    now!(),
    " AS now) DELETE FROM jobboard_jobs USING t \
     WHERE state = 'COMPLETE' AND completed_at < t.now - $2 RETURNING ",
    cols!(),
    ", completed_at"
);

/// `$1` how many to keep: complete jobs but the `$1` completed last.
pub(super) const PURGE_BEYOND: &str = concat!(
    "DELETE FROM jobboard_jobs WHERE sequence IN (SELECT sequence FROM jobboard_jobs \
     WHERE state = 'COMPLETE' ORDER BY completed_at DESC, sequence DESC OFFSET $1) RETURNING ",
    cols!(),
    ", completed_at"
);

/// How many jobs are not complete.
pub(super) const COUNT_OPEN: &str = "SELECT count(*) FROM jobboard_jobs WHERE state <> 'COMPLETE'";

/// `$1` how long to keep events (ms): removes the older ones (on the
/// server's clock, which writes their time).
pub(super) const TRIM_EVENTS: &str = "DELETE FROM jobboard_events \
     WHERE at < floor(extract(epoch FROM now()) * 1000)::bigint - $1";
