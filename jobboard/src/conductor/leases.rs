//! The lease keeper: one thread per conductor renewing every claim the
//! conductor holds in one board call ([`JobBoard::renew_all`]) each
//! renewal interval, instead of a renewer thread (and a round trip) per
//! running job.
//!
//! A claim is held from the start of its run to its end. Each round takes
//! the claims held, renews them together and applies each result as a
//! claim's own renewer would: the renewed claim replaces the held one; a
//! control request that appeared suspends the run (after its atoms in
//! flight) and is reported; `NotOwner` / `Complete` marks the claim lost
//! and suspends the run; any other error is transient (the lease may still
//! hold) and the claim is tried again next round. Letting a claim go waits
//! for a round in flight, so its last result is seen before the job is
//! settled.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use taskflow_engine::SuspendHandle;
use taskflow_patterns::Failure;

use crate::sync::lock;
use crate::{Claim, Control, JobBoard, JobBoardError, JobId};

/// Called when a renewal shows a control request the claim did not carry.
pub(super) type OnRequest = dyn Fn(JobId, Control) + Send + Sync;

/// Renews a conductor's claims; its thread starts with the first claim
/// held and ends when the keeper is dropped.
pub(super) struct LeaseKeeper {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    board: Arc<dyn JobBoard>,
    every: Duration,
    owner: String,
    on_request: Box<OnRequest>,
    held: Mutex<HashMap<u64, Arc<Held>>>,
    next: AtomicU64,
    /// Taken for each round of renewals, and to let a claim go: a claim is
    /// never let go while its renewal is in flight.
    round: Mutex<()>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// A claim the keeper renews while its job runs.
pub(super) struct Held {
    key: u64,
    claim: Mutex<Claim>,
    lost: AtomicBool,
    suspend: SuspendHandle,
}

impl Held {
    /// The claim as last renewed.
    pub(super) fn claim(&self) -> Claim {
        lock(&self.claim).clone()
    }

    /// Whether the board refused a renewal: the job is someone else's.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl LeaseKeeper {
    /// A keeper renewing on `board` every `every` for the conductor
    /// `owner`; `on_request` hears of control requests seen at renewal.
    pub(super) fn new(
        board: Arc<dyn JobBoard>,
        every: Duration,
        owner: String,
        on_request: Box<OnRequest>,
    ) -> Self {
        LeaseKeeper {
            shared: Arc::new(Shared {
                board,
                every,
                owner,
                on_request,
                held: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                round: Mutex::new(()),
                stopped: Mutex::new(false),
                wake: Condvar::new(),
            }),
            thread: Mutex::new(None),
        }
    }

    /// Renews `claim` from now on, suspending the run through `suspend`
    /// when the claim is lost or a control request appears. Fails only when
    /// the keeper's thread cannot be started.
    pub(super) fn hold(
        &self,
        claim: Claim,
        suspend: SuspendHandle,
    ) -> Result<Arc<Held>, std::io::Error> {
        {
            let mut thread = lock(&self.thread);
            if thread.is_none() {
                let shared = Arc::clone(&self.shared);
                *thread = Some(
                    std::thread::Builder::new()
                        .name(format!("lease-keeper-{}", self.shared.owner))
                        .spawn(move || shared.keep())?,
                );
            }
        }
        let held = Arc::new(Held {
            key: self.shared.next.fetch_add(1, Ordering::Relaxed),
            claim: Mutex::new(claim),
            lost: AtomicBool::new(false),
            suspend,
        });
        lock(&self.shared.held).insert(held.key, Arc::clone(&held));
        Ok(held)
    }

    /// Stops renewing `held`, after the round in flight (if any): what it
    /// says then (`claim`, `is_lost`) is final.
    pub(super) fn release(&self, held: &Held) {
        let _round = lock(&self.shared.round);
        lock(&self.shared.held).remove(&held.key);
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        *lock(&self.shared.stopped) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    /// The keeper's loop: a round every `every` until stopped.
    fn keep(&self) {
        loop {
            {
                let stopped = lock(&self.stopped);
                let (stopped, _) = self
                    .wake
                    .wait_timeout_while(stopped, self.every, |stopped| !*stopped)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if *stopped {
                    return;
                }
            }
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.round())) {
                tracing::error!(
                    conductor = %self.owner,
                    panic = %Failure::from_panic(&*panic).message,
                    "the lease keeper panicked renewing; renewing again next round"
                );
            }
        }
    }

    /// Renews every claim held that is not lost, in one board call.
    fn round(&self) {
        let _round = lock(&self.round);
        let held: Vec<Arc<Held>> = lock(&self.held)
            .values()
            .filter(|held| !held.is_lost())
            .cloned()
            .collect();
        if held.is_empty() {
            return;
        }
        let current: Vec<Claim> = held.iter().map(|held| held.claim()).collect();
        let renewed = self.board.renew_all(&current);
        for ((held, current), renewed) in held.iter().zip(current).zip(renewed) {
            match renewed {
                Ok(renewed) => {
                    let requested = match (current.control, renewed.control) {
                        (None, Some(control)) => Some(control),
                        _ => None,
                    };
                    *lock(&held.claim) = renewed;
                    if let Some(control) = requested {
                        // A stop or cancel request: the flow suspends after
                        // the atoms in flight (their tasks see
                        // `ctx.is_cancelled()`).
                        (self.on_request)(current.job, control);
                        held.suspend.suspend();
                    }
                }
                Err(JobBoardError::NotOwner { .. } | JobBoardError::Complete(_)) => {
                    held.lost.store(true, Ordering::SeqCst);
                    held.suspend.suspend();
                }
                // A transient board error: the lease may still hold; try
                // again next round.
                Err(e) => {
                    tracing::warn!(job = %current.job, error = %e, "lease renewal failed")
                }
            }
        }
    }
}
