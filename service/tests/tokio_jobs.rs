//! A node whose jobs run on the tokio executor (`worker_pool.executor:
//! tokio`): a job of 200 async tasks that each wait 20 ms (4 s one after
//! another) finishes in a fraction of that, over the real API.

#![allow(clippy::unwrap_used)]

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use taskflow::{
    async_atom, async_trait, atom, task_fn, AsyncTask, BoardOptions, Context, Flow, Linear,
    SqliteBackend, SqliteBoard, TaskError, Unordered,
};
use taskflow_service::{HookOptions, JobExecutor, JobType, Parameters, Service, ServiceConfig};

const SECRET: &str = "test-secret";

/// Waits on tokio's timer.
struct Nap;

#[async_trait]
impl AsyncTask for Nap {
    async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(json!(1))
    }
}

/// `naps`: 200 naps side by side, then a blocking count of them.
struct Naps;

impl JobType for Naps {
    fn flow(&self, _: &Parameters) -> Result<Flow, TaskError> {
        let mut naps = Unordered::new("naps");
        let mut count = atom(
            "count",
            task_fn(|ctx| Ok(json!(ctx.inputs().iter().count()))),
        );
        for i in 0..200 {
            naps = naps.add(async_atom(format!("nap{i}"), Nap).provides(format!("n{i}")));
            count = count.requires([format!("n{i}")]);
        }
        Ok(Linear::new("naps").add(naps).add(count).into())
    }
}

#[test]
fn a_job_of_async_tasks_runs_on_the_tokio_executor() {
    let dir = tempfile::tempdir().unwrap();
    let board =
        Arc::new(SqliteBoard::open(dir.path().join("board.db"), BoardOptions::default()).unwrap());
    let records = Arc::new(SqliteBackend::open(dir.path().join("records.db")).unwrap());
    let config = ServiceConfig {
        host: "127.0.0.1".into(),
        port: 0,
        node_id: Some("tokio-node".into()),
        job_log_dir: dir.path().join("logs"),
        executor: JobExecutor::Tokio,
        hooks: HookOptions {
            outbox: dir.path().join("hooks.db"),
            ..HookOptions::default()
        },
        ..ServiceConfig::default()
    };
    let service = Service::builder(config, board, records)
        .job_type("naps", Naps)
        .secret(SECRET)
        .build()
        .unwrap();
    let handle = service.stop_handle();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        service
            .run_with(move |address| tx.send(address).unwrap())
            .unwrap()
    });
    let url = format!(
        "http://{}",
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    );
    let client = Client::new();
    let auth = format!("Harbor-Secret {SECRET}");
    let started = Instant::now();
    let answer = client
        .post(format!("{url}/api/v1/jobs"))
        .header("Authorization", &auth)
        .json(&json!({ "job": { "name": "naps", "parameters": {} } }))
        .send()
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let id = answer.json::<Value>().unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = loop {
        let job: Value = client
            .get(format!("{url}/api/v1/jobs/{id}"))
            .header("Authorization", &auth)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let status = job["job"]["status"].as_str().unwrap_or_default().to_owned();
        if !["pending", "running"].contains(&status.as_str())
            || started.elapsed() > Duration::from_secs(20)
        {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    handle.stop();
    thread.join().unwrap();
    assert_eq!(status, "success");
    assert!(took < Duration::from_secs(3), "the job took {took:?}");
}
