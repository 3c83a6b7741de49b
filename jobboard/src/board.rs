//! The [`JobBoard`] trait.

use std::time::Duration;

use uuid::Uuid;

use crate::{Claim, Entity, Job, JobBoardError, NewJob};

/// A board where producers post jobs and conductors claim them.
///
/// Claims are leases: the owner renews its claim while it works; a lapsed
/// lease makes the job claimable again, and the next claim gets a higher
/// epoch. Claiming is atomic: of any number of racing claimers, one wins.
/// Only the current claim may renew, consume, abandon or trash a job.
///
/// # Leases
///
/// Every board applies the same rules (the conformance suite,
/// `testkit`, checks them). Times are milliseconds since the Unix epoch,
/// from [`BoardOptions::clock`](crate::BoardOptions::clock) (or the
/// server's clock, for boards that say so).
///
/// - A job is *claimable* at `now` when it is unclaimed, or claimed with a
///   lapsed lease (`lease_expires_at <= now`). Claiming it sets its owner,
///   raises its epoch by one and sets `lease_expires_at = now + lease`.
/// - A claim is *current* while the job is not complete and is claimed
///   with the claim's epoch and owner. Renew, consume, abandon and trash
///   refuse any other claim with [`JobBoardError::NotOwner`] (and an
///   unknown job with `NotFound`).
/// - A lapsed lease does not end a claim by itself: until someone else
///   claims the job (raising the epoch), the lapsed claim is still
///   current, and its owner may renew it (taking the lease back) or
///   consume, abandon or trash the job. An owner that was merely slow loses
///   nothing unless another owner took over; once one did, the old epoch
///   is refused everywhere (here and, through fencing, by persistence).
/// - Readers ([`get`](JobBoard::get), [`iterjobs`](JobBoard::iterjobs))
///   see a job whose lease lapsed as [`Unclaimed`](crate::JobState::Unclaimed)
///   (it is claimable), its last owner and lease time still filled in.
/// - Abandoning clears the owner and keeps the epoch; consuming and
///   trashing complete the job, recording its outcome and completion time
///   (which [`purge`](JobBoard::purge) measures retention from).
pub trait JobBoard: Send + Sync {
    /// Posts a job; returns it as stored (id, sequence, created time).
    fn post(&self, job: NewJob) -> Result<Job, JobBoardError>;

    /// The job with id `id`.
    fn get(&self, id: Uuid) -> Result<Job, JobBoardError>;

    /// Claims job `id` for `owner` for the board's lease. Fails with
    /// `AlreadyClaimed` while another claim's lease runs, `Complete` for a
    /// complete job.
    fn claim(&self, id: Uuid, owner: &str) -> Result<Claim, JobBoardError>;

    /// Extends a claim by the board's lease. `NotOwner` if the claim is no
    /// longer the job's (it lapsed and someone else claimed the job).
    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError>;

    /// Marks the job complete: its flow ran to its end.
    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError>;

    /// Gives the job back, unclaimed, for another conductor.
    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError>;

    /// Marks the job complete because it can never run, recording why.
    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError>;

    /// Jobs that are not complete, highest priority first, then in posting
    /// order; with `only_unclaimed`, only those claimable now (unclaimed, or
    /// claimed with a lapsed lease).
    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError>;

    /// Blocks until a job is claimable or `timeout` passes; returns whether
    /// one is.
    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError>;

    /// The current owner of job `id`, if claimed with a running lease.
    fn find_owner(&self, id: Uuid) -> Result<Option<String>, JobBoardError>;

    /// Registers a party (a conductor) on the board.
    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError>;

    /// Removes complete jobs the board's retention no longer keeps; returns
    /// the removed jobs (so their records can be removed too).
    fn purge(&self) -> Result<Vec<Job>, JobBoardError>;

    /// Releases the board's resources (connections, watchers).
    fn close(&self) -> Result<(), JobBoardError> {
        Ok(())
    }
}
