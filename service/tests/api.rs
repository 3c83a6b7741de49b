//! The job service's API over real HTTP: nodes started in this process on
//! SQLite records and a SQLite board in a fresh folder, each on a free
//! port. (Nodes in separate processes, killed with SIGKILL, are in the
//! command's tests: `cli/tests/cli/serve.rs`.)

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use taskflow::{
    atom, task_fn, BoardOptions, Flow, JobBoard, Linear, SqliteBackend, SqliteBoard, TaskError,
};
use taskflow_service::{
    HookOptions, InvalidParameter, JobLogs, JobType, Parameters, Service, ServiceConfig,
    ServiceHandle,
};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const SECRET: &str = "test-secret";

/// What the tasks did, in order, across every node of a test.
type Journal = Arc<Mutex<Vec<String>>>;

/// `replicate`: `copy` (checks in, waits `delay_ms` in steps, stops early
/// when asked), then `tag`; each records its execute and revert.
struct Replicate {
    journal: Journal,
}

impl JobType for Replicate {
    fn validate(&self, params: &Parameters) -> Result<(), InvalidParameter> {
        match params.get("image") {
            Some(Value::String(_)) => Ok(()),
            Some(_) => Err(InvalidParameter::new("image", "must be a string")),
            None => Err(InvalidParameter::missing("image")),
        }
    }

    fn flow(&self, params: &Parameters) -> Result<Flow, TaskError> {
        let delay = params.get("delay_ms").and_then(Value::as_u64).unwrap_or(0);
        let fail = params.get("fail").and_then(Value::as_bool).unwrap_or(false);
        let image = params["image"].as_str().unwrap_or_default().to_owned();
        let (j1, j2, j3, j4) = (
            self.journal.clone(),
            self.journal.clone(),
            self.journal.clone(),
            self.journal.clone(),
        );
        let copy = task_fn(move |ctx| {
            j1.lock().unwrap().push(format!("copy {image}"));
            ctx.checkin("copying: 30%");
            let until = Instant::now() + Duration::from_millis(delay);
            while Instant::now() < until {
                if ctx.is_cancelled() {
                    j1.lock().unwrap().push("copy interrupted".into());
                    return Err(TaskError::interrupted("stopped while copying"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            ctx.checkin("copied: 100%");
            tracing::info!("copy done");
            Ok(json!("copied"))
        })
        .with_revert(move |_| {
            j2.lock().unwrap().push("revert copy".into());
            Ok(())
        });
        let tag = task_fn(move |_| {
            j3.lock().unwrap().push("tag".into());
            if fail {
                return Err(TaskError::msg("the registry refused the tag"));
            }
            Ok(json!("tagged"))
        })
        .with_revert(move |_| {
            j4.lock().unwrap().push("revert tag".into());
            Ok(())
        });
        Ok(Linear::new("replicate")
            .add(atom("copy", copy))
            .add(atom("tag", tag))
            .into())
    }
}

/// `flaky`: one task that fails its first `fail_times` runs (counted in
/// the journal); its type runs a failed job again, twice at most.
struct Flaky {
    journal: Journal,
}

impl JobType for Flaky {
    fn max_fails(&self) -> u32 {
        2
    }

    fn should_retry(&self) -> bool {
        true
    }

    fn flow(&self, params: &Parameters) -> Result<Flow, TaskError> {
        let fail_times = params
            .get("fail_times")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let journal = self.journal.clone();
        Ok(Linear::new("flaky")
            .add(atom(
                "try",
                task_fn(move |_| {
                    let mut j = journal.lock().unwrap();
                    j.push("try".into());
                    if j.len() <= fail_times {
                        return Err(TaskError::msg("not yet"));
                    }
                    Ok(Value::Null)
                }),
            ))
            .into())
    }
}

struct Node {
    handle: ServiceHandle,
    thread: Option<JoinHandle<()>>,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The job logs of every node of these tests (job ids are unique), and
/// the process's `tracing` subscriber writing to them, as `taskflow serve`
/// installs it.
fn shared_logs() -> &'static Path {
    static LOGS: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = LOGS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::open(dir.path()).unwrap();
        tracing_subscriber::registry()
            .with(logs.layer(tracing::Level::INFO))
            .init();
        dir
    });
    dir.path()
}

/// A node on the board and records in `dir`.
fn node(dir: &Path, name: &str, journal: &Journal) -> Node {
    node_with(dir, name, journal, |_| {})
}

/// A node whose configuration `adjust` changes.
fn node_with(
    dir: &Path,
    name: &str,
    journal: &Journal,
    adjust: impl FnOnce(&mut ServiceConfig),
) -> Node {
    node_leased(dir, name, journal, Duration::from_millis(500), adjust)
}

/// A node whose claims last `lease` (the board's and the service's).
fn node_leased(
    dir: &Path,
    name: &str,
    journal: &Journal,
    lease: Duration,
    adjust: impl FnOnce(&mut ServiceConfig),
) -> Node {
    let options = BoardOptions {
        lease,
        ..BoardOptions::default()
    };
    let board = Arc::new(SqliteBoard::open(dir.join("board.db"), options).unwrap());
    node_on(board, dir, name, journal, |config| {
        config.lease = lease;
        adjust(config);
    })
}

/// The lease of the periodic tests on two nodes. They count the copies the
/// executions made, one per execution that started: a lease of 500 ms
/// lapsed on a loaded machine while a copy ran, the other node took the
/// execution over and copied again (as it should), and the count was off.
const PERIODIC_LEASE: Duration = Duration::from_secs(2);

/// A node on `board`, its records and outbox in `dir`.
fn node_on(
    board: Arc<dyn JobBoard>,
    dir: &Path,
    name: &str,
    journal: &Journal,
    adjust: impl FnOnce(&mut ServiceConfig),
) -> Node {
    let config = ServiceConfig {
        host: "127.0.0.1".into(),
        port: 0,
        node_id: Some(name.into()),
        job_log_dir: shared_logs().to_owned(),
        lease: Duration::from_millis(500),
        workers: 2,
        hooks: HookOptions {
            outbox: dir.join("hooks.db"),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
            ..HookOptions::default()
        },
        ..ServiceConfig::default()
    };
    let mut config = config;
    adjust(&mut config);
    let records = Arc::new(SqliteBackend::open(dir.join("records.db")).unwrap());
    let service = Service::builder(config, board, records)
        .job_type(
            "replicate",
            Replicate {
                journal: journal.clone(),
            },
        )
        .job_type(
            "flaky",
            Flaky {
                journal: journal.clone(),
            },
        )
        .secret(SECRET)
        .build()
        .unwrap();
    let handle = service.stop_handle();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        service
            .run_with(move |address| tx.send(address).unwrap())
            .unwrap();
    });
    let address = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Node {
        handle,
        thread: Some(thread),
        url: format!("http://{address}"),
    }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn auth() -> String {
    format!("Harbor-Secret {SECRET}")
}

fn submit(node: &Node, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}/api/v1/jobs", node.url))
        .header("Authorization", auth())
        .json(&body)
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap())
}

fn submit_ok(node: &Node, body: Value) -> String {
    let (status, stats) = submit(node, body);
    assert_eq!(status, StatusCode::ACCEPTED, "{stats}");
    stats["job"]["id"].as_str().unwrap().to_owned()
}

fn stats(node: &Node, id: &str) -> Value {
    let response = client()
        .get(format!("{}/api/v1/jobs/{id}", node.url))
        .header("Authorization", auth())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().unwrap()["job"].clone()
}

fn act(node: &Node, id: &str, action: &str) -> (StatusCode, String) {
    let response = client()
        .post(format!("{}/api/v1/jobs/{id}", node.url))
        .header("Authorization", auth())
        .json(&json!({ "action": action }))
        .send()
        .unwrap();
    (response.status(), response.text().unwrap())
}

/// Polls the job until its status is `status`; the stats then.
fn wait_for(node: &Node, id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let stats = stats(node, id);
        if stats["status"] == status {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {} after {within:?}, not {status}: {stats}",
            stats["status"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn replicate(params: Value) -> Value {
    json!({ "job": { "name": "replicate", "parameters": params } })
}

#[test]
fn a_generic_job_runs_to_success_with_its_check_in_and_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);
    let (status, body) = submit(&node, replicate(json!({ "image": "library/redis" })));
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = &body["job"];
    assert_eq!(job["kind"], "Generic");
    assert!(
        job["status"] == "pending" || job["status"] == "running",
        "{job}"
    );
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["ref_link"], format!("/api/v1/jobs/{id}"));
    let done = wait_for(&node, id, "success", Duration::from_secs(10));
    assert_eq!(done["check_in"], "copied: 100%", "{done}");
    assert!(done["check_in_at"].as_u64().unwrap() >= done["enqueue_time"].as_u64().unwrap());
    assert_eq!(done["owner"], "node-a");
    assert_eq!(done["revision"], 1);
    assert_eq!(*journal.lock().unwrap(), ["copy library/redis", "tag"]);

    let log = client()
        .get(format!("{}/api/v1/jobs/{id}/log", node.url))
        .header("Authorization", auth())
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "submitted on node-a",
        "running on node-a (epoch 1)",
        "copy done",
        "flow SUCCESS",
    ] {
        assert!(log.contains(line), "the log lacks `{line}`:\n{log}");
    }

    let listed = client()
        .get(format!(
            "{}/api/v1/jobs?status=success&name=replicate",
            node.url
        ))
        .header("Authorization", auth())
        .send()
        .unwrap();
    assert_eq!(listed.headers()["X-Total-Count"], "1");
    let listed: Value = listed.json().unwrap();
    assert_eq!(listed[0]["job"]["id"], id);

    let nodes: Value = client()
        .get(format!("{}/api/v1/stats", node.url))
        .header("Authorization", auth())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(nodes[0]["worker_pool_id"], "node-a", "{nodes}");
    assert_eq!(nodes[0]["job_names"], json!(["flaky", "replicate"]));
    assert_eq!(nodes[0]["status"], "healthy");
}

#[test]
fn a_scheduled_job_waits_for_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);
    let submitted = Instant::now();
    let id = submit_ok(
        &node,
        json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "metadata": { "kind": "Scheduled", "schedule_delay": 2 } } }),
    );
    let early = stats(&node, &id);
    assert_eq!(early["status"], "scheduled", "{early}");
    assert_eq!(
        early["run_at"].as_u64().unwrap(),
        early["enqueue_time"].as_u64().unwrap() + 2
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(stats(&node, &id)["status"], "scheduled");
    assert!(journal.lock().unwrap().is_empty());
    wait_for(&node, &id, "success", Duration::from_secs(10));
    assert!(submitted.elapsed() >= Duration::from_secs(2));
}

#[test]
fn a_unique_job_is_refused_while_the_first_is_not_finished() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);
    let unique = |params: Value| {
        json!({ "job": { "name": "replicate", "parameters": params,
                         "metadata": { "kind": "Generic", "unique": true } } })
    };
    let first = submit_ok(&node, unique(json!({ "image": "a", "delay_ms": 1500 })));
    // The same parameters in another order are the same job.
    let (status, body) = submit(&node, unique(json!({ "delay_ms": 1500, "image": "a" })));
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], 409);
    assert!(
        body["description"].as_str().unwrap().contains(&first),
        "{body}"
    );
    // Other parameters, or not unique: accepted.
    submit_ok(&node, unique(json!({ "image": "b" })));
    submit_ok(&node, replicate(json!({ "image": "a", "delay_ms": 1500 })));
    wait_for(&node, &first, "success", Duration::from_secs(10));
    submit_ok(&node, unique(json!({ "image": "a", "delay_ms": 1500 })));
}

#[test]
fn stop_suspends_retry_resumes_without_rerunning_and_cancel_reverts_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);

    let id = submit_ok(
        &node,
        replicate(json!({ "image": "a", "delay_ms": 30_000 })),
    );
    wait_for(&node, &id, "running", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(act(&node, &id, "stop").0, StatusCode::NO_CONTENT);
    wait_for(&node, &id, "stopped", Duration::from_secs(5));
    let (status, body) = act(&node, &id, "stop");
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("is stopped"), "{body}");
    assert_eq!(*journal.lock().unwrap(), ["copy a", "copy interrupted"]);

    // Cancel a stopped job: what ran is reverted; a cancelled job cannot
    // be retried.
    assert_eq!(act(&node, &id, "cancel").0, StatusCode::NO_CONTENT);
    wait_for(&node, &id, "cancelled", Duration::from_secs(5));
    assert_eq!(act(&node, &id, "retry").0, StatusCode::CONFLICT);

    // A failed job: retry resumes it; `copy`, which finished, does not run
    // again when only `tag` failed... unless the flow reverted it: a
    // failure reverts the flow (TaskFlow's rule), so retry runs it again.
    journal.lock().unwrap().clear();
    let failing = submit_ok(&node, replicate(json!({ "image": "f", "fail": true })));
    let failed = wait_for(&node, &failing, "error", Duration::from_secs(10));
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("refused the tag"),
        "{failed}"
    );
    assert_eq!(
        *journal.lock().unwrap(),
        ["copy f", "tag", "revert tag", "revert copy"]
    );

    // Stop while copying, then retry: copy runs again from its start
    // (it was interrupted, not finished), tag runs, nothing reverts.
    journal.lock().unwrap().clear();
    let id = submit_ok(&node, replicate(json!({ "image": "s", "delay_ms": 800 })));
    wait_for(&node, &id, "running", Duration::from_secs(10));
    assert_eq!(act(&node, &id, "stop").0, StatusCode::NO_CONTENT);
    wait_for(&node, &id, "stopped", Duration::from_secs(5));
    assert_eq!(act(&node, &id, "retry").0, StatusCode::NO_CONTENT);
    let done = wait_for(&node, &id, "success", Duration::from_secs(10));
    assert_eq!(done["revision"], 2);
    assert_eq!(
        *journal.lock().unwrap(),
        ["copy s", "copy interrupted", "copy s", "tag"]
    );

    // Cancel while running: the finished atoms revert, newest first.
    journal.lock().unwrap().clear();
    let id = submit_ok(&node, replicate(json!({ "image": "c" })));
    wait_for(&node, &id, "success", Duration::from_secs(10));
    assert_eq!(act(&node, &id, "cancel").0, StatusCode::CONFLICT);
}

#[test]
fn a_periodic_policy_on_two_nodes_runs_once_per_fire_time() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let a = node_leased(dir.path(), "node-a", &journal, PERIODIC_LEASE, |_| {});
    let b = node_leased(dir.path(), "node-b", &journal, PERIODIC_LEASE, |_| {});
    periodic_on_two_nodes(&a, &b, &journal);
}

/// The same on a Redis board (nodes of several hosts would share it), on a
/// fresh key prefix of `TASKFLOW_TEST_REDIS_URL` (default the local server).
#[cfg(feature = "redis")]
#[test]
fn a_periodic_policy_on_two_nodes_of_a_redis_board_runs_once_per_fire_time() {
    let url = std::env::var("TASKFLOW_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("taskflow-service-test:{}", uuid::Uuid::new_v4());
    periodic_on_a_shared_board(
        &url,
        |options| taskflow::RedisBoard::connect(&url, &prefix, options),
        |board| board.destroy().map(drop),
    );
}

/// The same on a PostgreSQL board, in a fresh schema of
/// `TASKFLOW_TEST_POSTGRES_URL` (default the local server), dropped after.
#[cfg(feature = "postgres")]
#[test]
fn a_periodic_policy_on_two_nodes_of_a_postgres_board_runs_once_per_fire_time() {
    let url = std::env::var("TASKFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("taskflow_service_test_{}", uuid::Uuid::new_v4().simple());
    periodic_on_a_shared_board(
        &url,
        |options| taskflow::PostgresBoard::connect_in_schema(&url, &schema, options),
        |board| board.destroy(),
    );
}

/// The same on an etcd board, on a fresh key prefix of
/// `TASKFLOW_TEST_ETCD_URL` (default the local server), deleted after.
#[cfg(feature = "etcd")]
#[test]
fn a_periodic_policy_on_two_nodes_of_an_etcd_board_runs_once_per_fire_time() {
    let url =
        std::env::var("TASKFLOW_TEST_ETCD_URL").unwrap_or_else(|_| "http://127.0.0.1:2379".into());
    let prefix = format!("taskflow-service-test/{}", uuid::Uuid::new_v4());
    periodic_on_a_shared_board(
        &url,
        |options| taskflow::EtcdBoard::connect(&url, &prefix, options),
        |board| board.destroy().map(drop),
    );
}

/// The same on a ZooKeeper board, under a fresh root node of
/// `TASKFLOW_TEST_ZK_URL` (default the local server), deleted after.
#[cfg(feature = "zookeeper")]
#[test]
fn a_periodic_policy_on_two_nodes_of_a_zookeeper_board_runs_once_per_fire_time() {
    let hosts = std::env::var("TASKFLOW_TEST_ZK_URL").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let root = format!("/taskflow-service-test/{}", uuid::Uuid::new_v4());
    periodic_on_a_shared_board(
        &hosts,
        |options| taskflow::ZookeeperBoard::connect(&hosts, &root, options),
        |board| board.destroy().map(drop),
    );
}

/// Two nodes, each on its own connection to the board `connect` opens (at
/// `url`); skipped, saying so, when the server is unreachable and not
/// required. `destroy` removes the board's data after.
#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "etcd",
    feature = "zookeeper"
))]
fn periodic_on_a_shared_board<B: JobBoard + 'static>(
    url: &str,
    connect: impl Fn(BoardOptions) -> Result<B, taskflow::JobBoardError>,
    destroy: impl Fn(&B) -> Result<(), taskflow::JobBoardError>,
) {
    let options = BoardOptions {
        lease: PERIODIC_LEASE,
        ..BoardOptions::default()
    };
    let (first, second) = match (connect(options.clone()), connect(options.clone())) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            assert!(
                std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{url} unreachable: {e} (TASKFLOW_REQUIRE_SERVICES=1)"
            );
            eprintln!("skipping: {url} unreachable: {e}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let lease = |config: &mut ServiceConfig| config.lease = PERIODIC_LEASE;
    let a = node_on(Arc::new(first), dir.path(), "node-a", &journal, lease);
    let b = node_on(Arc::new(second), dir.path(), "node-b", &journal, lease);
    periodic_on_two_nodes(&a, &b, &journal);
    drop((a, b));
    if let Ok(board) = connect(options) {
        let _ = destroy(&board);
    }
}

fn periodic_on_two_nodes(a: &Node, b: &Node, journal: &Journal) {
    let policy = submit_ok(
        a,
        json!({ "job": { "name": "replicate", "parameters": { "image": "p" },
                          "metadata": { "kind": "Periodic", "cron_spec": "* * * * * *" } } }),
    );
    assert_eq!(stats(b, &policy)["status"], "scheduled");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(act(b, &policy, "stop").0, StatusCode::NO_CONTENT);
    wait_for(a, &policy, "stopped", Duration::from_secs(5));

    // Every execution ends (those not yet run are stopped with the policy).
    let deadline = Instant::now() + Duration::from_secs(15);
    let (executions, total) = loop {
        let response = client()
            .get(format!(
                "{}/api/v1/jobs/{policy}/executions?page_size=1000",
                a.url
            ))
            .header("Authorization", auth())
            .send()
            .unwrap();
        let total: usize = response.headers()["X-Total-Count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let executions: Vec<Value> = response.json().unwrap();
        let finished = executions
            .iter()
            .all(|e| ["success", "stopped"].contains(&e["job"]["status"].as_str().unwrap()));
        if finished {
            break (executions, total);
        }
        assert!(
            Instant::now() < deadline,
            "executions not finished: {executions:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(executions.len(), total);
    let mut fire_times: Vec<u64> = executions
        .iter()
        .map(|e| e["job"]["run_at"].as_u64().unwrap())
        .collect();
    fire_times.sort_unstable();
    let mut distinct = fire_times.clone();
    distinct.dedup();
    assert_eq!(distinct, fire_times, "two executions of one fire time");
    let ran = executions
        .iter()
        .filter(|e| e["job"]["status"] == "success")
        .count();
    assert!(ran >= 5, "{ran} executions ran in 6 s: {fire_times:?}");
    for e in &executions {
        assert_eq!(e["job"]["upstream_job_id"], policy.as_str());
        assert!(
            ["success", "stopped"].contains(&e["job"]["status"].as_str().unwrap()),
            "{e}"
        );
    }
    // Each execution that started its copy (it checked in: every one that
    // ran, and one the policy's stop caught running), copied once.
    let started = executions
        .iter()
        .filter(|e| e["job"]["check_in"].as_str().is_some_and(|c| !c.is_empty()))
        .count();
    assert!(started >= ran, "{started} started, {ran} ran");
    let copies = journal
        .lock()
        .unwrap()
        .iter()
        .filter(|l| *l == "copy p")
        .count();
    assert_eq!(copies, started);
    let listed = stats(a, &policy);
    assert_eq!(listed["multiple_executions"], true);
    assert_eq!(listed["executions"].as_array().unwrap().len(), total);
}

#[test]
fn what_a_client_gets_wrong_gets_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);
    let http = client();
    let jobs = format!("{}/api/v1/jobs", node.url);

    // Authorization.
    for header in [
        None,
        Some("Harbor-Secret wrong"),
        Some("Bearer test-secret"),
    ] {
        let mut request = http.get(&jobs);
        if let Some(h) = header {
            request = request.header("Authorization", h);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        let body: Value = response.json().unwrap();
        assert_eq!(body["code"], 401);
        assert!(body["description"].is_string() && body["err"].is_string());
    }
    let health = http
        .get(format!("{}/api/v1/health", node.url))
        .send()
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Bodies and parameters, each naming the field.
    let cases = [
        (json!("not an object"), "not a submission"),
        (json!({ "job": { "name": "nope" } }), "job.name"),
        (
            json!({ "job": { "name": "replicate" } }),
            "job.parameters.image",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": 3 } } }),
            "must be a string",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": [1] } }),
            "job.parameters",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" }, "bogus": 1 } }),
            "bogus",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "metadata": { "kind": "Weekly" } } }),
            "job.metadata.kind",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "metadata": { "kind": "Scheduled" } } }),
            "schedule_delay",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "metadata": { "kind": "Periodic", "cron_spec": "* * * * *" } } }),
            "6 fields",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "metadata": { "kind": "Periodic", "cron_spec": "99 * * * * *" } } }),
            "cron_spec",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "status_hook": "ftp://x" } }),
            "job.status_hook",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "status_hook": "http://[" } }),
            "job.status_hook",
        ),
        (
            json!({ "job": { "name": "replicate", "parameters": { "image": "a" },
                          "metadata": { "kind": "Periodic", "cron_spec": "0 0 0 30 2 *" } } }),
            "never fires",
        ),
    ];
    for (body, names) in cases {
        let (status, answer) = submit(&node, body.clone());
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["code"], 400);
        let description = answer["description"].as_str().unwrap();
        assert!(
            description.contains(names),
            "{body}: `{description}` should name {names}"
        );
    }
    let raw = http
        .post(&jobs)
        .header("Authorization", auth())
        .body("{\"job\": ")
        .send()
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);

    // Unknown jobs, ids that are not ids, actions and queries.
    for id in ["not-an-id", "00000000-0000-0000-0000-000000000000"] {
        let response = http
            .get(format!("{jobs}/{id}"))
            .header("Authorization", auth())
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
        let response = http
            .get(format!("{jobs}/{id}/log"))
            .header("Authorization", auth())
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
        assert_eq!(act(&node, id, "stop").0, StatusCode::NOT_FOUND);
    }
    let id = submit_ok(&node, replicate(json!({ "image": "a" })));
    let (status, body) = act(&node, &id, "pause");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("pause"), "{body}");
    wait_for(&node, &id, "success", Duration::from_secs(10));
    let (status, body) = act(&node, &id, "retry");
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("is success"), "{body}");
    for query in ["status=done", "page_size=0", "page_number=0", "page_size=x"] {
        let response = http
            .get(format!("{jobs}?{query}"))
            .header("Authorization", auth())
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    let response = http
        .get(format!("{}/api/v1/nope", node.url))
        .header("Authorization", auth())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = http
        .delete(&jobs)
        .header("Authorization", auth())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn the_served_openapi_document_is_the_one_in_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);
    let served = client()
        .get(format!("{}/api/v1/openapi.yaml", node.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let kept =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    assert_eq!(served, kept);
    for path in [
        "/api/v1/jobs:",
        "/api/v1/jobs/{id}:",
        "/api/v1/jobs/{id}/log:",
        "/api/v1/jobs/{id}/executions:",
        "/api/v1/stats:",
        "/api/v1/health:",
    ] {
        assert!(kept.contains(path), "the document lacks {path}");
    }
}

/// A hook receiver on a free port: answers 500 to its first `failures`
/// deliveries, 200 to the rest, and keeps the bodies it accepted. Down
/// (refusing connections) while `up` is false.
struct Receiver {
    url: String,
    accepted: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<Mutex<usize>>,
    up: Arc<std::sync::atomic::AtomicBool>,
}

fn receiver(failures: usize) -> Receiver {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(Mutex::new(0usize));
    let up = Arc::new(AtomicBool::new(true));
    let (acc, att, on) = (accepted.clone(), attempts.clone(), up.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if !on.load(Ordering::SeqCst) {
                // Down: the connection closes unanswered.
                continue;
            }
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let n = {
                let mut a = att.lock().unwrap();
                *a += 1;
                *a
            };
            let status = if n <= failures {
                "500 Internal Server Error"
            } else {
                acc.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    Receiver {
        url,
        accepted,
        attempts,
        up,
    }
}

/// The accepted events of `job`, by arrival.
fn events_of(receiver: &Receiver, job: &str) -> Vec<Value> {
    receiver
        .accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["job_id"] == job)
        .cloned()
        .collect()
}

fn wait_events(receiver: &Receiver, job: &str, last_status: &str, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let events = events_of(receiver, job);
        if events.last().is_some_and(|e| e["status"] == last_status) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "hook events of {job} so far: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hook_that_fails_first_gets_every_event_in_order_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);
    let hook = receiver(3);
    let id = submit_ok(
        &node,
        json!({ "job": { "name": "replicate", "parameters": { "image": "h", "delay_ms": 300 },
                          "status_hook": hook.url } }),
    );
    wait_for(&node, &id, "success", Duration::from_secs(10));
    let events = wait_events(&hook, &id, "success", Duration::from_secs(10));
    assert!(*hook.attempts.lock().unwrap() >= 3 + events.len());
    let seen: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["check_in"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("pending", None),
            ("running", None),
            ("running", Some("copying: 30%")),
            ("running", Some("copied: 100%")),
            ("success", None)
        ],
        "{events:#?}"
    );
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert!(events
        .iter()
        .skip(1)
        .all(|e| e["epoch"] == 1 && e["revision"] == 1));
    assert_eq!(events[4]["metadata"]["status"], "success");
}

#[test]
fn hook_events_wait_in_the_outbox_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let hook = receiver(0);
    hook.up.store(false, std::sync::atomic::Ordering::SeqCst);
    let id = {
        let node = node(dir.path(), "node-a", &journal);
        let id = submit_ok(
            &node,
            json!({ "job": { "name": "replicate", "parameters": { "image": "r" },
                              "status_hook": hook.url } }),
        );
        wait_for(&node, &id, "success", Duration::from_secs(10));
        // The receiver is down: nothing was delivered; the node stops.
        std::thread::sleep(Duration::from_millis(300));
        id
    };
    assert!(events_of(&hook, &id).is_empty());
    hook.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let node = node(dir.path(), "node-b", &journal);
    let events = wait_events(&hook, &id, "success", Duration::from_secs(15));
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["pending", "running", "running", "running", "success"]
    );
    drop(node);
}

#[test]
fn a_failed_job_runs_again_on_its_own_within_its_allowed_failures() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let node = node(dir.path(), "node-a", &journal);
    let flaky = |fail_times: u64| json!({ "job": { "name": "flaky", "parameters": { "fail_times": fail_times } } });

    // Fails once, runs again (revision 2) and succeeds.
    let id = submit_ok(&node, flaky(1));
    let done = wait_for(&node, &id, "success", Duration::from_secs(10));
    assert_eq!(done["revision"], 2, "{done}");
    assert_eq!(journal.lock().unwrap().len(), 2);

    // Fails every time: run 1 + 2 more (max_fails 2), then left in error.
    journal.lock().unwrap().clear();
    let id = submit_ok(&node, flaky(100));
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let now = stats(&node, &id);
        if now["status"] == "error" && now["revision"] == 3 {
            break now;
        }
        assert!(Instant::now() < deadline, "{now}");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stats(&node, &id)["revision"], 3, "{failed}");
    assert_eq!(journal.lock().unwrap().len(), 3);
    // A person may still retry it.
    assert_eq!(act(&node, &id, "retry").0, StatusCode::NO_CONTENT);
}

#[test]
fn https_serves_the_api_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes a test certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let journal = Journal::default();
    let node = node_with(dir.path(), "node-tls", &journal, |config| {
        config.protocol = taskflow_service::Protocol::Https {
            cert: cert.clone(),
            key: key.clone(),
        };
    });
    let port = node.url.rsplit(':').next().unwrap();
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = Client::builder()
        .add_root_certificate(trusted)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let submitted: Value = https
        .post(format!("https://localhost:{port}/api/v1/jobs"))
        .header("Authorization", auth())
        .json(&replicate(json!({ "image": "tls" })))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(submitted["job"]["status"], "pending", "{submitted}");
    // Plain HTTP on the TLS port gets no answer.
    assert!(client()
        .get(format!("{}/api/v1/health", node.url))
        .send()
        .is_err());
    // A key that is not the certificate's: refused at start, naming the files.
    let other = dir.path().join("other.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let config = ServiceConfig {
        protocol: taskflow_service::Protocol::Https {
            cert: cert.clone(),
            key: other,
        },
        job_log_dir: shared_logs().to_owned(),
        hooks: HookOptions {
            outbox: dir.path().join("hooks2.db"),
            ..HookOptions::default()
        },
        ..ServiceConfig::default()
    };
    let board =
        Arc::new(SqliteBoard::open(dir.path().join("b2.db"), BoardOptions::default()).unwrap());
    let records = Arc::new(SqliteBackend::open(dir.path().join("r2.db")).unwrap());
    let err = Service::builder(config, board, records)
        .job_type("replicate", Replicate { journal })
        .secret(SECRET)
        .build()
        .err()
        .expect("a mismatched key is refused");
    assert!(err.to_string().contains("cert.pem"), "{err}");
}
