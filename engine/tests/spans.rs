//! A task's `tracing` events are inside the span that was current when the
//! run started, on the serial and parallel engines, whichever thread runs
//! the task: a caller that wraps a run in `info_span!("job", ...)` sees
//! every log line of its tasks tagged with it.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use taskflow_engine::{Engine, EngineBuilder, Parallel};
use taskflow_patterns::{atom, task_fn, FlowState, Linear, TaskError, Unordered};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One event heard: its message, the names of the spans it is in
/// (innermost first), and the thread it was emitted on.
#[derive(Debug, Clone)]
struct Heard {
    message: String,
    spans: Vec<String>,
    thread: String,
}

/// A layer that keeps every event with its spans.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Heard>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name().to_owned()).collect())
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        self.0.lock().unwrap().push(Heard {
            message,
            spans,
            thread,
        });
    }
}

impl Recorder {
    /// The events the tasks emitted (their message starts with `task `).
    fn of_tasks(&self) -> Vec<Heard> {
        let heard = self.0.lock().unwrap();
        heard
            .iter()
            .filter(|h| h.message.starts_with("task "))
            .cloned()
            .collect()
    }
}

/// A task that logs `task <name>` (also from its revert), slowly enough
/// that its siblings run beside it on a pool.
fn logging(name: &'static str) -> taskflow_patterns::FnTask {
    task_fn(move |_| {
        tracing::info!("task {name}");
        std::thread::sleep(Duration::from_millis(20));
        Ok(json!(name))
    })
    .with_revert(move |_| {
        tracing::info!("task ~{name}");
        Ok(())
    })
}

/// Runs (then reverts) three independent tasks, then one after them that
/// fails, inside `info_span!("job")`, with a subscriber set for this
/// thread only; returns what the tasks logged.
fn run_in_a_job_span(configure: impl Fn(EngineBuilder) -> EngineBuilder) -> Vec<Heard> {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    tracing::subscriber::with_default(subscriber, || {
        let flow = Linear::new("job-flow")
            .add(
                Unordered::new("fan")
                    .add(atom("a", logging("a")))
                    .add(atom("b", logging("b")))
                    .add(atom("c", logging("c"))),
            )
            .add(atom(
                "last",
                task_fn(|_| {
                    tracing::warn!("task last");
                    Err(TaskError::new("Boom", "last fails"))
                }),
            ));
        let mut engine = configure(Engine::builder(flow)).build().unwrap();
        let span = tracing::info_span!("job", id = 42);
        let failed = span.in_scope(|| engine.run()).unwrap_err();
        assert!(failed.to_string().contains("Boom"), "{failed}");
        // A revert on request, in a span of its own.
        let mut engine = configure(Engine::builder(
            Linear::new("again").add(atom("d", logging("d"))),
        ))
        .build()
        .unwrap();
        assert_eq!(engine.run().unwrap(), FlowState::Success);
        let cancel = tracing::info_span!("cancel");
        assert_eq!(
            cancel.in_scope(|| engine.revert()).unwrap(),
            FlowState::Reverted
        );
    });
    recorder.of_tasks()
}

fn assert_in_spans(heard: &[Heard]) {
    let messages: Vec<&str> = heard.iter().map(|h| &*h.message).collect();
    for expected in [
        "task a",
        "task b",
        "task c",
        "task last",
        "task ~a",
        "task ~b",
        "task ~c",
        "task d",
        "task ~d",
    ] {
        assert!(
            messages.contains(&expected),
            "{expected} not in {messages:?}"
        );
    }
    for h in heard {
        let wanted = match &*h.message {
            "task d" => vec![],
            "task ~d" => vec!["cancel".to_owned()],
            _ => vec!["job".to_owned()],
        };
        assert_eq!(h.spans, wanted, "{h:?}");
    }
}

#[test]
fn serial_tasks_log_inside_the_callers_span() {
    let heard = run_in_a_job_span(|b| b);
    assert_in_spans(&heard);
}

#[test]
fn parallel_tasks_log_inside_the_callers_span_on_pool_threads() {
    let heard = run_in_a_job_span(|b| b.executor(Parallel::new(3).unwrap()));
    assert_in_spans(&heard);
    // The point: some ran on the pool's threads, not the caller's.
    let on_pool = heard
        .iter()
        .filter(|h| h.thread.starts_with("taskflow-worker-"))
        .count();
    assert!(on_pool >= 2, "{heard:?}");
}
