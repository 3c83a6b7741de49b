//! The board's keys and values: the key layout under the board's prefix,
//! the JSON job record, the claim marker, and the job a reader sees.

use etcd_client::KeyValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::lease::waits;
use crate::{Claim, Control, Job, JobBoardError, JobId, JobState, Outcome};
use taskflow_persistence::{Epoch, FlowDetailId, LogBookId};

/// The board's name in errors.
pub(super) const BOARD: &str = "etcd";

/// A `Corrupt` error for key `key`.
pub(super) fn corrupt(key: impl Into<String>, reason: impl Into<String>) -> JobBoardError {
    JobBoardError::Corrupt {
        board: BOARD,
        id: key.into(),
        reason: reason.into(),
    }
}

/// The board's keys, all under `<prefix>/`.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys of a board whose prefix is `prefix` (a trailing `/` is
    /// dropped).
    pub(super) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// The prefix, as given.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What every key of the board starts with (`<prefix>/`).
    pub(super) fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// What every job record's key starts with.
    pub(super) fn jobs(&self) -> String {
        format!("{}/jobs/", self.prefix)
    }

    /// The record of job `id`.
    pub(super) fn job(&self, id: JobId) -> String {
        format!("{}/jobs/{id}", self.prefix)
    }

    /// What every claim marker's key starts with.
    pub(super) fn claims(&self) -> String {
        format!("{}/claims/", self.prefix)
    }

    /// The claim marker of job `id`, attached to its owner's etcd lease.
    pub(super) fn claim(&self, id: JobId) -> String {
        format!("{}/claims/{id}", self.prefix)
    }

    /// The holder of uniqueness key `key`.
    pub(super) fn unique(&self, key: &str) -> String {
        format!("{}/unique/{key}", self.prefix)
    }

    /// The job posted with execution key `key`.
    pub(super) fn exec(&self, key: &str) -> String {
        format!("{}/keys/{key}", self.prefix)
    }

    /// What every entity's key starts with.
    pub(super) fn entities(&self) -> String {
        format!("{}/entities/", self.prefix)
    }

    /// Entity `name`.
    pub(super) fn entity(&self, name: &str) -> String {
        format!("{}/entities/{name}", self.prefix)
    }

    /// The job id at the end of `key`, if `key` is under `under` (the job
    /// or claim prefix).
    pub(super) fn id_in(key: &[u8], under: &str) -> Option<JobId> {
        let rest = key.strip_prefix(under.as_bytes())?;
        let text = std::str::from_utf8(rest).ok()?;
        Uuid::parse_str(text).ok().map(JobId::from)
    }
}

/// A job as stored at `<prefix>/jobs/<id>` (JSON). Its sequence is the
/// key's create revision; its claim is live only while its claim marker
/// exists too (see the module documentation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// The change that wrote it last (`post`, `claim`, `renew`, `abandon`,
    /// `consume`, `trash`, `request`, `reopen`): what the watcher tells
    /// listeners.
    pub(super) change: String,
    /// The token of the call that wrote it last, so a call retried after a
    /// lost reply recognises its own write.
    pub(super) op: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) details: Value,
    pub(super) logbook: Option<LogBookId>,
    pub(super) flow_detail: Option<FlowDetailId>,
    pub(super) priority: i32,
    pub(super) created_at: u64,
    /// `Claimed` from a claim until the owner releases it (or the job is
    /// claimed again): the claim may have lapsed meanwhile.
    pub(super) state: JobState,
    pub(super) owner: Option<String>,
    pub(super) epoch: u64,
    pub(super) lease_expires_at: Option<u64>,
    pub(super) outcome: Option<Outcome>,
    pub(super) completed_at: Option<u64>,
    pub(super) not_before: Option<u64>,
    pub(super) unique_key: Option<String>,
    pub(super) key: Option<String>,
    pub(super) control: Option<Control>,
    pub(super) revision: u64,
}

impl Record {
    /// The record as JSON.
    pub(super) fn encode(&self) -> Result<Vec<u8>, JobBoardError> {
        serde_json::to_vec(self).map_err(|e| {
            JobBoardError::backend(BOARD, format!("encoding job `{}`: {e}", self.name), e)
        })
    }
}

/// What the watcher reads of a record: the change that wrote it.
#[derive(Debug, Deserialize)]
pub(super) struct ChangeOnly {
    pub(super) change: String,
}

/// A job record as read: the record, and its key's revisions.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) id: JobId,
    pub(super) record: Record,
    /// The key's mod revision: what a transaction changing it compares.
    pub(super) mod_revision: i64,
    /// The key's create revision: the job's place in posting order.
    pub(super) sequence: u64,
}

impl Stored {
    /// Decodes the job record `kv`.
    pub(super) fn decode(kv: &KeyValue, keys: &Keys) -> Result<Stored, JobBoardError> {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let id = Keys::id_in(kv.key(), &keys.jobs())
            .ok_or_else(|| corrupt(&key, "the key does not end with a job id"))?;
        let record: Record = serde_json::from_slice(kv.value())
            .map_err(|e| corrupt(&key, format!("not a job record: {e}")))?;
        Ok(Stored {
            id,
            record,
            mod_revision: kv.mod_revision(),
            sequence: u64::try_from(kv.create_revision()).unwrap_or_default(),
        })
    }
}

/// The value of a claim marker (`<prefix>/claims/<id>`, JSON), attached
/// to the claim's etcd lease: it vanishes when the lease does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Marker {
    pub(super) owner: String,
    pub(super) epoch: u64,
    /// The lease's TTL as granted, in seconds (what a keep-alive renews it
    /// to).
    pub(super) ttl: i64,
}

/// A claim marker as read.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub(super) marker: Marker,
    /// The etcd lease it is attached to.
    pub(super) lease: i64,
    pub(super) mod_revision: i64,
}

impl Held {
    /// Decodes the claim marker `kv`.
    pub(super) fn decode(kv: &KeyValue) -> Result<Held, JobBoardError> {
        let marker: Marker = serde_json::from_slice(kv.value()).map_err(|e| {
            corrupt(
                String::from_utf8_lossy(kv.key()),
                format!("not a claim marker: {e}"),
            )
        })?;
        Ok(Held {
            marker,
            lease: kv.lease(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Whether it marks the claim the record `record` names.
    pub(super) fn marks(&self, record: &Record) -> bool {
        record.owner.as_deref() == Some(self.marker.owner.as_str())
            && record.epoch == self.marker.epoch
    }
}

/// Whether the job's claim is live at `now`: the record is claimed, its
/// lease time has not passed, and its marker (its etcd lease) is there.
pub(super) fn live(stored: &Stored, held: Option<&Held>, now: u64) -> bool {
    stored.record.state == JobState::Claimed
        && stored.record.lease_expires_at.is_some_and(|at| at > now)
        && held.is_some_and(|h| h.marks(&stored.record))
}

/// The job as readers see it at `now`: a claim that is not live reads as
/// unclaimed, its last owner and lease time still filled in.
pub(super) fn view(stored: &Stored, held: Option<&Held>, now: u64) -> Job {
    let r = &stored.record;
    let state = match r.state {
        JobState::Complete => JobState::Complete,
        JobState::Claimed if live(stored, held, now) => JobState::Claimed,
        _ => JobState::Unclaimed,
    };
    Job {
        id: stored.id,
        name: r.name.clone(),
        details: r.details.clone(),
        logbook: r.logbook,
        flow_detail: r.flow_detail,
        priority: r.priority,
        created_at: r.created_at,
        sequence: stored.sequence,
        state,
        owner: r.owner.clone(),
        epoch: Epoch::new(r.epoch),
        lease_expires_at: r.lease_expires_at,
        outcome: r.outcome.clone(),
        not_before: r.not_before,
        unique_key: r.unique_key.clone(),
        key: r.key.clone(),
        control: r.control,
        revision: r.revision,
    }
}

/// Whether the job can be claimed at `now`.
pub(super) fn claimable(stored: &Stored, held: Option<&Held>, now: u64) -> bool {
    let job = view(stored, held, now);
    job.state == JobState::Unclaimed && !waits(&job, now)
}

/// Why the job, not claimable at `now`, cannot be claimed.
pub(super) fn refusal(stored: &Stored, held: Option<&Held>, now: u64) -> JobBoardError {
    let r = &stored.record;
    if r.state == JobState::Complete {
        JobBoardError::Complete(stored.id)
    } else if live(stored, held, now) {
        JobBoardError::AlreadyClaimed {
            job: stored.id,
            owner: r.owner.clone().unwrap_or_default(),
        }
    } else {
        JobBoardError::NotYet {
            job: stored.id,
            not_before: r.not_before.unwrap_or_default(),
        }
    }
}

/// Whether `claim` is the job's current claim (the record names its owner
/// and epoch; its lease may have lapsed): `NotOwner` otherwise.
pub(super) fn check_current(stored: &Stored, claim: &Claim) -> Result<(), JobBoardError> {
    let r = &stored.record;
    if r.state == JobState::Claimed
        && r.epoch == claim.epoch.get()
        && r.owner.as_deref() == Some(claim.owner.as_str())
    {
        Ok(())
    } else {
        Err(crate::lease::not_owner(claim))
    }
}

/// A job id stored as a key's value (the holder of a key).
pub(super) fn id_value(kv: &KeyValue) -> Result<JobId, JobBoardError> {
    std::str::from_utf8(kv.value())
        .ok()
        .and_then(|s| Uuid::parse_str(s).ok())
        .map(JobId::from)
        .ok_or_else(|| {
            corrupt(
                String::from_utf8_lossy(kv.key()),
                "the value is not a job id",
            )
        })
}
