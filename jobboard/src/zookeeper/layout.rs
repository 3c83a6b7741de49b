//! Where the ZooKeeper board keeps what: the node paths under its root,
//! and the records stored in them (see the module documentation of
//! [`super`] for the layout as a whole).

use serde::{Deserialize, Serialize};
use taskflow_persistence::Epoch;

use crate::{BoardEvent, Job, JobBoardError, JobId};

use super::BOARD;

/// The digits of a job node's sequence number, as ZooKeeper's sequential
/// nodes have (`job0000000001`, as TaskFlow names its job nodes).
const SEQ_DIGITS: usize = 10;

/// The node paths of one board, all under its root.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// The root, without a trailing `/` (empty for the root node itself).
    base: String,
}

impl Layout {
    /// The layout under `root` (`/a/b`; `/` for the ZooKeeper root).
    pub(super) fn new(root: &str) -> Self {
        Layout {
            base: root.trim_end_matches('/').to_owned(),
        }
    }

    /// The board's root node.
    pub(super) fn root(&self) -> &str {
        if self.base.is_empty() {
            "/"
        } else {
            &self.base
        }
    }

    /// The node of the job with sequence `seq`.
    pub(super) fn job(&self, seq: u64) -> String {
        format!("{}/job{seq:0width$}", self.base, width = SEQ_DIGITS)
    }

    /// The lock (claim) node of the job with sequence `seq`: its sibling.
    pub(super) fn lock(&self, seq: u64) -> String {
        format!("{}.lock", self.job(seq))
    }

    /// The counter whose data version is the last job's sequence.
    pub(super) fn seq(&self) -> String {
        format!("{}/.seq", self.base)
    }

    /// The folder of the id index.
    pub(super) fn ids(&self) -> String {
        format!("{}/.ids", self.base)
    }

    /// The index node of job `id` (data: its sequence).
    pub(super) fn id(&self, id: JobId) -> String {
        format!("{}/.ids/{id}", self.base)
    }

    /// The folder of the uniqueness keys.
    pub(super) fn uniques(&self) -> String {
        format!("{}/.unique", self.base)
    }

    /// The node holding uniqueness key `key` (data: the holder's id).
    pub(super) fn unique(&self, key: &str) -> String {
        format!("{}/.unique/{}", self.base, node_name(key))
    }

    /// The folder of the execution keys.
    pub(super) fn exec_keys(&self) -> String {
        format!("{}/.keys", self.base)
    }

    /// The node holding execution key `key` (data: the job's id).
    pub(super) fn exec_key(&self, key: &str) -> String {
        format!("{}/.keys/{}", self.base, node_name(key))
    }

    /// The folder of the events log.
    pub(super) fn events(&self) -> String {
        format!("{}/.events", self.base)
    }

    /// The prefix of a sequential event node: `<kind>-<id>-`, to which
    /// ZooKeeper appends the sequence number.
    pub(super) fn event(&self, kind: &str, id: JobId) -> String {
        format!("{}/.events/{kind}-{id}-", self.base)
    }

    /// The folder of the entities.
    pub(super) fn entities(&self) -> String {
        format!("{}/.entity", self.base)
    }

    /// The node of entity `name`.
    pub(super) fn entity(&self, name: &str) -> String {
        format!("{}/.entity/{}", self.base, node_name(name))
    }

    /// The scratch node whose modification time reads the server's clock.
    pub(super) fn clock(&self) -> String {
        format!("{}/.clock", self.base)
    }

    /// The folders created when a board opens.
    pub(super) fn folders(&self) -> [String; 7] {
        [
            self.seq(),
            self.ids(),
            self.uniques(),
            self.exec_keys(),
            self.events(),
            self.entities(),
            self.clock(),
        ]
    }
}

/// A key or name as a node name: its UTF-8 bytes in hex, since a node
/// name may hold neither `/` nor be `.` or `..` (written here: a few
/// lines, no crate needed for it).
fn node_name(key: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(key.len() * 2 + 1);
    out.push('k');
    for b in key.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What a child of the root is: a job node or its lock (with the job's
/// sequence), or something else.
pub(super) enum Child {
    /// `job0000000001`.
    Job(u64),
    /// `job0000000001.lock`.
    Lock(u64),
    /// Not a job's node.
    Other,
}

/// Classifies a child name of the root.
pub(super) fn child(name: &str) -> Child {
    let Some(rest) = name.strip_prefix("job") else {
        return Child::Other;
    };
    let (digits, lock) = match rest.strip_suffix(".lock") {
        Some(digits) => (digits, true),
        None => (rest, false),
    };
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Child::Other;
    }
    match digits.parse() {
        Ok(seq) if lock => Child::Lock(seq),
        Ok(seq) => Child::Job(seq),
        Err(_) => Child::Other,
    }
}

/// An event node's name (`<kind>-<id>-<sequence>`) as its sequence and
/// event; `None` for a name that is not one.
pub(super) fn event(name: &str) -> Option<(u64, BoardEvent)> {
    let (rest, seq) = name.rsplit_once('-')?;
    let (kind, id) = rest.split_once('-')?;
    let id = uuid::Uuid::parse_str(id).ok()?;
    Some((
        seq.parse().ok()?,
        BoardEvent::from_kind(kind, JobId::from(id))?,
    ))
}

/// The sequence number ZooKeeper gave the sequential node `path`.
pub(super) fn sequence_of(path: &str) -> Option<u64> {
    path.rsplit_once('-')?.1.parse().ok()
}

/// What a job node holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// The job as stored (its state before lease lapses are applied).
    pub(super) job: Job,
    /// When it completed (ms since the epoch, server clock), once complete.
    #[serde(default)]
    pub(super) completed_at: Option<u64>,
    /// The token of the last change, so that a change retried after a lost
    /// reply recognises itself instead of refusing itself.
    #[serde(default)]
    pub(super) op: Option<String>,
}

impl Record {
    /// The record's bytes.
    pub(super) fn encode(&self) -> Result<Vec<u8>, JobBoardError> {
        serde_json::to_vec(self)
            .map_err(|e| JobBoardError::backend(BOARD, format!("encoding job {}", self.job.id), e))
    }

    /// The record in `data`, read from `path`.
    pub(super) fn decode(data: &[u8], path: &str) -> Result<Self, JobBoardError> {
        serde_json::from_slice(data).map_err(|e| JobBoardError::Corrupt {
            board: BOARD,
            id: path.to_owned(),
            reason: format!("not a job record: {e}"),
        })
    }
}

/// What a lock node holds: who claimed the job, at which epoch (as
/// TaskFlow's lock node holds its owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LockRecord {
    /// The owner.
    pub(super) owner: String,
    /// The claim's epoch.
    pub(super) epoch: Epoch,
}

impl LockRecord {
    /// The record's bytes.
    pub(super) fn encode(&self) -> Result<Vec<u8>, JobBoardError> {
        serde_json::to_vec(self)
            .map_err(|e| JobBoardError::backend(BOARD, "encoding a lock".to_owned(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        let l = Layout::new("/a/b/");
        assert_eq!(l.job(7), "/a/b/job0000000007");
        assert_eq!(l.lock(7), "/a/b/job0000000007.lock");
        assert!(matches!(child("job0000000007"), Child::Job(7)));
        assert!(matches!(child("job0000000007.lock"), Child::Lock(7)));
        assert!(matches!(child(".seq"), Child::Other));
        assert!(matches!(child("job12"), Child::Other));
        assert_eq!(Layout::new("/").job(1), "/job0000000001");
        assert_eq!(Layout::new("/").root(), "/");
        let id = JobId::new();
        let name = format!("claim-{id}-0000000042");
        assert_eq!(event(&name), Some((42, BoardEvent::Claimed(id))));
        assert_eq!(event("nope"), None);
        assert_eq!(sequence_of(&format!("/x/.events/{name}")), Some(42));
        assert_eq!(l.unique("a/b"), "/a/b/.unique/k612f62");
        assert_eq!(l.unique(""), "/a/b/.unique/k");
    }
}
