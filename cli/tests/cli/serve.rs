//! `taskflow serve`: nodes of the job service as separate processes on one
//! SQLite board and records, configured by a service.yaml; one is killed
//! with SIGKILL in the middle of a job and the other takes the job over.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

const SECRET: &str = "cli-secret";

/// A `taskflow serve` process and the URL it listens on.
struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, name: &str) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskflow"))
        .args(["serve", "--config", "service.yaml"])
        .current_dir(dir)
        .env("JOB_SERVICE_SECRET", SECRET)
        .env("JOB_SERVICE_NODE_ID", name)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "taskflow serve: node NAME listening on http://0.0.0.0:PORT"
    assert!(
        line.contains(&format!("node {name} listening on http://")),
        "{line}"
    );
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    Node {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn stats(node: &Node, id: &str) -> Value {
    client()
        .get(format!("{}/api/v1/jobs/{id}", node.url))
        .header("Authorization", format!("Harbor-Secret {SECRET}"))
        .send()
        .unwrap()
        .text()
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap()["job"]
        .clone()
}

fn post(node: &Node, path: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(format!("{}{path}", node.url))
        .header("Authorization", format!("Harbor-Secret {SECRET}"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn wait_status(node: &Node, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = stats(node, id);
        if now["status"] == status {
            return now;
        }
        assert!(Instant::now() < deadline, "not {status}: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn a_node_killed_mid_job_is_taken_over_and_its_finished_atoms_do_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("long.yaml"),
        "name: long\nsteps:\n  - name: first\n    shell:\n      command: echo first >> first.log\n  \
         - name: wait\n    sleep: 3s\n  - name: last\n    shell:\n      command: echo last >> last.log\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("service.yaml"),
        "port: 0\nhost: 127.0.0.1\nworker_pool:\n  workers: 2\n  lease_ms: 500\n\
         job_types:\n  - name: long\n    flow: long.yaml\n",
    )
    .unwrap();
    let a = serve(dir.path(), "node-a");
    let submitted: Value = client()
        .post(format!("{}/api/v1/jobs", a.url))
        .header("Authorization", format!("Harbor-Secret {SECRET}"))
        .header("Content-Type", "application/json")
        .body(json!({ "job": { "name": "long" } }).to_string())
        .send()
        .unwrap()
        .text()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let id = submitted["job"]["id"].as_str().unwrap().to_owned();

    // Node A runs it: `first` done, `wait` under way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&dir.path().join("first.log")) == 0 {
        assert!(
            Instant::now() < deadline,
            "the job did not start: {}",
            stats(&a, &id)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let running = stats(&a, &id);
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["owner"], "node-a");

    let b = serve(dir.path(), "node-b");
    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let killed = Instant::now();

    // Node B takes it over once A's lease lapses and resumes it at `wait`;
    // the status never leaves running until it is success.
    let mut seen = Vec::new();
    let done = loop {
        let now = stats(&b, &id);
        let status = now["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "success" {
            break now;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "statuses: {seen:?}, {now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "job {id}: node-a killed; success on node-b {:?} later (lease 500 ms, 2 s of `wait` left)",
        killed.elapsed()
    );
    assert_eq!(seen, ["running", "success"]);
    assert_eq!(done["owner"], "node-b");
    assert_eq!(done["epoch"], 2);
    assert_eq!(lines(&dir.path().join("first.log")), 1, "`first` ran again");
    assert_eq!(lines(&dir.path().join("last.log")), 1);
    let log = client()
        .get(format!("{}/api/v1/jobs/{id}/log", b.url))
        .header("Authorization", format!("Harbor-Secret {SECRET}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(log.contains("running on node-a (epoch 1)"), "{log}");
    assert!(log.contains("running on node-b (epoch 2)"), "{log}");
}

#[test]
fn two_serve_processes_run_each_fire_time_once_and_cancel_reverts_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tick.yaml"),
        "name: tick\nsteps:\n  - name: note\n    shell:\n      command: echo tick >> ticks.log\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("steps.yaml"),
        "name: steps\nsteps:\n\
         \x20 - name: one\n    shell:\n      command: echo one >> done.log\n      revert: echo undo-one >> undone.log\n\
         \x20 - name: two\n    shell:\n      command: echo two >> done.log\n      revert: echo undo-two >> undone.log\n\
         \x20 - name: three\n    sleep: 30s\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("service.yaml"),
        "port: 0\nhost: 127.0.0.1\nworker_pool:\n  lease_ms: 500\n\
         job_types:\n  - name: tick\n    flow: tick.yaml\n  - name: steps\n    flow: steps.yaml\n",
    )
    .unwrap();
    let a = serve(dir.path(), "node-a");
    let b = serve(dir.path(), "node-b");

    // A policy firing every second, on two nodes, for about 6 s.
    let (status, policy) = post(
        &a,
        "/api/v1/jobs",
        json!({ "job": { "name": "tick", "metadata": { "kind": "Periodic", "cron_spec": "* * * * * *" } } }),
    );
    assert_eq!(status, 202, "{policy}");
    let policy = policy["job"]["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        post(
            &b,
            &format!("/api/v1/jobs/{policy}"),
            json!({ "action": "stop" })
        )
        .0,
        204
    );
    wait_status(&a, &policy, "stopped");
    let deadline = Instant::now() + Duration::from_secs(15);
    let executions: Vec<Value> = loop {
        let listed: Vec<Value> = client()
            .get(format!(
                "{}/api/v1/jobs/{policy}/executions?page_size=1000",
                a.url
            ))
            .header("Authorization", format!("Harbor-Secret {SECRET}"))
            .send()
            .unwrap()
            .text()
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        if listed
            .iter()
            .all(|e| ["success", "stopped"].contains(&e["job"]["status"].as_str().unwrap()))
        {
            break listed;
        }
        assert!(Instant::now() < deadline, "{listed:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut fire_times: Vec<u64> = executions
        .iter()
        .map(|e| e["job"]["run_at"].as_u64().unwrap())
        .collect();
    fire_times.sort_unstable();
    let before = fire_times.len();
    fire_times.dedup();
    assert_eq!(fire_times.len(), before, "two executions of one fire time");
    let ran = executions
        .iter()
        .filter(|e| e["job"]["status"] == "success")
        .count();
    assert!(ran >= 5, "{ran} executions ran in about 6 s");
    assert_eq!(
        lines(&dir.path().join("ticks.log")),
        ran,
        "an execution ran twice"
    );
    let owners: std::collections::BTreeSet<&str> = executions
        .iter()
        .filter_map(|e| e["job"]["owner"].as_str())
        .collect();
    eprintln!("{ran} executions on {owners:?}, fire times {fire_times:?}");

    // Cancel while `three` runs: `two` then `one` are reverted.
    let (_, job) = post(&b, "/api/v1/jobs", json!({ "job": { "name": "steps" } }));
    let id = job["job"]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&dir.path().join("done.log")) < 2 {
        assert!(Instant::now() < deadline, "{}", stats(&a, &id));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        post(
            &a,
            &format!("/api/v1/jobs/{id}"),
            json!({ "action": "cancel" })
        )
        .0,
        204
    );
    wait_status(&b, &id, "cancelled");
    let undone = std::fs::read_to_string(dir.path().join("undone.log")).unwrap();
    assert_eq!(undone, "undo-two\nundo-one\n");
    let (status, refused) = post(
        &a,
        &format!("/api/v1/jobs/{id}"),
        json!({ "action": "stop" }),
    );
    assert_eq!(status, 409);
    assert!(
        refused["description"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{refused}"
    );
}
