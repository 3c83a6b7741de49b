//! Per-atom timeouts (`Atom::timeout`): a task past its timeout is
//! cancelled and fails with `Timeout`, on every engine.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use taskflow_patterns::{kinds, task_fn, AtomState, FlowState, Linear, TaskAtom, Times};

use super::{atom, failed_state, run, Factory, Log};
use crate::{EngineError, Event};

/// The timeout of the atoms that hang.
const LIMIT: Duration = Duration::from_millis(150);

/// Far more than any engine takes to notice a timeout: a run that takes
/// this long was held by the task.
const HELD: Duration = Duration::from_secs(10);

/// Waits (a few seconds at most) until `flag` is set.
fn eventually(flag: &AtomicBool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if flag.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Whether the failure of `result` names a timeout of `atom`.
fn timed_out(result: &Result<FlowState, EngineError>, atom: &str) -> bool {
    match result {
        Err(EngineError::Failed { failures, .. }) => failures
            .iter()
            .any(|f| f.kind == kinds::TIMEOUT && f.atom.as_deref() == Some(atom)),
        _ => false,
    }
}

/// An atom `hang` that runs until it is cancelled: a blocking task polls
/// `ctx.is_cancelled()`; an async one (in `with_async_tasks`) sleeps in a
/// loop, so the tokio executor drops it at an `.await`, and a blocking
/// engine driving it sees the flag. `stopped` is set when it stops either
/// way.
fn until_cancelled(stopped: &Arc<AtomicBool>) -> TaskAtom {
    #[cfg(feature = "tokio")]
    if super::async_tasks() {
        return asynchronous::until_cancelled(stopped.clone());
    }
    let stopped = stopped.clone();
    atom(
        "hang",
        task_fn(move |ctx| {
            while !ctx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(2));
            }
            stopped.store(true, Ordering::SeqCst);
            Ok(json!("too late"))
        }),
    )
}

/// A task atom past its timeout fails with a `Timeout` failure naming it;
/// the task is cancelled (it sees `ctx.is_cancelled()`, or an async one is
/// dropped), and the flow reverts what ran before it without running what
/// comes after.
pub fn a_task_past_its_timeout_is_cancelled_and_the_flow_reverts(factory: Factory<'_>) {
    let log = Log::new();
    let stopped = Arc::new(AtomicBool::new(false));
    let flow = Linear::new("timed")
        .add(atom("a", log.task("a")))
        .add(until_cancelled(&stopped).timeout(LIMIT))
        .add(atom("c", log.task("c")));
    let started = Instant::now();
    let (result, capture) = run(factory, flow);
    let took = started.elapsed();
    assert_eq!(failed_state(&result), FlowState::Reverted, "{result:?}");
    assert!(timed_out(&result, "hang"), "{result:?}");
    assert!(took >= LIMIT && took < HELD, "took {took:?}");
    assert_eq!(log.entries(), ["a", "~a"]);
    assert_eq!(
        capture.states_of("hang"),
        [
            AtomState::Running,
            AtomState::Failure,
            AtomState::Reverting,
            AtomState::Reverted
        ]
    );
    assert!(eventually(&stopped), "the task was not cancelled");
}

/// A task that ignores its cancellation and never returns (until the test
/// lets it, after the flow ended) does not hold the flow: at its timeout
/// the flow fails it and reverts.
pub fn a_task_that_never_returns_does_not_hold_the_flow(factory: Factory<'_>) {
    let log = Log::new();
    let release = Release::new();
    let hang = release.hang();
    let flow = Linear::new("held")
        .add(atom("a", log.task("a")))
        .add(hang.timeout(LIMIT))
        .add(atom("c", log.task("c")));
    let started = Instant::now();
    let (result, _) = run(factory, flow);
    let took = started.elapsed();
    release.release();
    assert_eq!(failed_state(&result), FlowState::Reverted, "{result:?}");
    assert!(timed_out(&result, "hang"), "{result:?}");
    assert!(took < HELD, "took {took:?}");
    assert_eq!(log.entries(), ["a", "~a"]);
}

/// A timeout is a failure like any other: the retry controller of the
/// atom's flow runs it again, and the flow succeeds when the next attempt
/// finishes in time.
pub fn a_timeout_is_handled_by_the_retry_controller(factory: Factory<'_>) {
    let stopped = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let slow_first = {
        let (stopped, attempts) = (stopped.clone(), attempts.clone());
        task_fn(move |ctx| {
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                while !ctx.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                stopped.store(true, Ordering::SeqCst);
            }
            Ok(json!("done"))
        })
    };
    #[cfg(feature = "tokio")]
    let slow = if super::async_tasks() {
        asynchronous::slow_first(stopped.clone(), attempts.clone())
    } else {
        atom("slow", slow_first)
    };
    #[cfg(not(feature = "tokio"))]
    let slow = atom("slow", slow_first);
    let flow = Linear::new("retried")
        .add(slow.timeout(LIMIT).provides("out"))
        .with_retry(Times::new(2));
    let (result, capture) = run(factory, flow);
    assert_eq!(result.ok(), Some(FlowState::Success));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let timeouts: Vec<String> = capture
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Atom(a) if a.to == AtomState::Failure => a.failure.map(|f| f.kind),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, [kinds::TIMEOUT]);
    assert!(eventually(&stopped), "the first attempt was not cancelled");
}

/// Holds the `hang` atom's task until released: a blocking task waits on
/// a channel, an async one (in `with_async_tasks`) on a semaphore; neither
/// looks at its cancel flag.
struct Release {
    tx: crossbeam_channel::Sender<()>,
    rx: crossbeam_channel::Receiver<()>,
    #[cfg(feature = "tokio")]
    permits: Arc<tokio::sync::Semaphore>,
}

impl Release {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Release {
            tx,
            rx,
            #[cfg(feature = "tokio")]
            permits: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    fn hang(&self) -> TaskAtom {
        #[cfg(feature = "tokio")]
        if super::async_tasks() {
            return asynchronous::until_released(self.permits.clone());
        }
        let rx = self.rx.clone();
        atom(
            "hang",
            task_fn(move |_| {
                let _ = rx.recv();
                Ok(json!("too late"))
            }),
        )
    }

    fn release(&self) {
        for _ in 0..4 {
            let _ = self.tx.send(());
        }
        #[cfg(feature = "tokio")]
        self.permits.add_permits(4);
    }
}

/// The async forms of the hanging tasks.
#[cfg(feature = "tokio")]
mod asynchronous {
    use super::*;
    use taskflow_patterns::{async_atom, async_trait, AsyncTask, Context, TaskError, Value};

    /// Sets its flag when dropped (the tokio executor drops an async task
    /// at its timeout).
    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    struct UntilCancelled(Arc<AtomicBool>);

    #[async_trait]
    impl AsyncTask for UntilCancelled {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            let _stopped = SetOnDrop(self.0.clone());
            while !ctx.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok(json!("too late"))
        }
    }

    pub(super) fn until_cancelled(stopped: Arc<AtomicBool>) -> TaskAtom {
        async_atom("hang", UntilCancelled(stopped))
    }

    struct UntilReleased(Arc<tokio::sync::Semaphore>);

    #[async_trait]
    impl AsyncTask for UntilReleased {
        async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
            let _permit = self.0.acquire().await;
            Ok(json!("too late"))
        }
    }

    struct SlowFirst {
        stopped: Arc<AtomicBool>,
        attempts: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl AsyncTask for SlowFirst {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            if self.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                let _stopped = SetOnDrop(self.stopped.clone());
                while !ctx.is_cancelled() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            Ok(json!("done"))
        }
    }

    pub(super) fn slow_first(stopped: Arc<AtomicBool>, attempts: Arc<AtomicUsize>) -> TaskAtom {
        async_atom("slow", SlowFirst { stopped, attempts })
    }

    pub(super) fn until_released(permits: Arc<tokio::sync::Semaphore>) -> TaskAtom {
        async_atom("hang", UntilReleased(permits))
    }
}
