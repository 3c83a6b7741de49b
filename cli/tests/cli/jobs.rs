//! `post`, `conductor`, `jobs`, `show`, `trash` and `purge` on a SQLite
//! board: jobs posted from flow files run on conductor processes, a
//! conductor killed mid-flow loses nothing finished, and an unreachable
//! board is one line.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{example, run_in, taskflow, Ran};

/// A `taskflow conductor` process, killed if the test ends without
/// stopping it.
struct Conductor(Option<Child>);

impl Conductor {
    fn start(dir: &Path, name: &str) -> Conductor {
        Conductor::on(dir, name, None)
    }

    /// On the board `board` (the default when none).
    fn on(dir: &Path, name: &str, board: Option<&str>) -> Conductor {
        let child = taskflow()
            .args(["conductor", "--name", name, "--lease", "1s"])
            .args(board.map(|b| ["--board", b]).into_iter().flatten())
            .current_dir(dir)
            .env_remove("TASKFLOW_RECORDS")
            .env_remove("TASKFLOW_BOARD")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Conductor(Some(child))
    }

    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// SIGTERM, then what it said: it stops gracefully.
    fn terminate(mut self) -> Ran {
        let child = self.0.take().unwrap();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        child.wait_with_output().unwrap().into()
    }

    /// SIGKILL: it dies holding what it held.
    fn kill(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Conductor {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `taskflow jobs --all --json`, parsed.
fn jobs(dir: &Path) -> Vec<Value> {
    jobs_on(dir, None)
}

/// `args`, on the board `board` (the default when none).
fn on(board: Option<&str>, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = board
        .map(|b| vec!["--board".to_owned(), b.to_owned()])
        .unwrap_or_default();
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all
}

/// `taskflow jobs --all --json` on `board`, parsed.
fn jobs_on(dir: &Path, board: Option<&str>) -> Vec<Value> {
    let args = on(board, &["jobs", "--all", "--json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_in(dir, &args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    serde_json::from_str(&ran.stdout).unwrap()
}

/// Waits until every job is complete; the jobs then.
fn all_complete(dir: &Path, within: Duration) -> Vec<Value> {
    all_complete_on(dir, None, within)
}

fn all_complete_on(dir: &Path, board: Option<&str>, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let listed = jobs_on(dir, board);
        if !listed.is_empty() && listed.iter().all(|j| j["state"] == "COMPLETE") {
            return listed;
        }
        assert!(Instant::now() < deadline, "not all complete: {listed:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post(dir: &Path, args: &[&str]) -> String {
    post_on(dir, None, args)
}

fn post_on(dir: &Path, board: Option<&str>, args: &[&str]) -> String {
    let args = on(board, &[&["post"], args].concat());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_in(dir, &args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let id = ran.stdout.trim().to_owned();
    assert_eq!(id.len(), 36, "a job id alone: {}", ran.stdout);
    id
}

#[test]
fn three_jobs_on_two_conductors() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("provision.yaml");
    let file = file.to_str().unwrap();
    let ids: Vec<String> = (1..=3)
        .map(|i| post(dir.path(), &[file, "--store", &format!("region=r{i}")]))
        .collect();

    let listed = run_in(dir.path(), &["jobs"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    for id in &ids {
        let line = listed.stdout.lines().find(|l| l.contains(id.as_str()));
        assert!(
            line.is_some_and(|l| l.contains("UNCLAIMED") && l.contains("PENDING")),
            "{}",
            listed.stdout
        );
    }

    let (a, b) = (
        Conductor::start(dir.path(), "c1"),
        Conductor::start(dir.path(), "c2"),
    );
    let done = all_complete(dir.path(), Duration::from_secs(30));
    assert_eq!(done.len(), 3, "{done:#?}");
    for job in &done {
        assert!(ids.contains(&job["id"].as_str().unwrap().to_owned()));
        assert_eq!(job["outcome"], "consumed", "{job:#}");
        assert_eq!(job["flow_state"], "SUCCESS", "{job:#}");
        assert_eq!(
            (&job["atoms_done"], &job["atoms_total"]),
            (&5.into(), &5.into())
        );
        assert!(
            ["c1", "c2"].contains(&job["owner"].as_str().unwrap()),
            "{job:#}"
        );
    }
    for c in [a, b] {
        let ran = c.terminate();
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert!(ran.stderr.contains("conductor stopped"), "{}", ran.stderr);
    }

    // Not complete: none; complete: all three.
    let open = run_in(dir.path(), &["jobs", "--json"]);
    assert_eq!(open.stdout.trim(), "[]");
    let complete = run_in(dir.path(), &["jobs", "--state", "complete", "--json"]);
    let complete: Vec<Value> = serde_json::from_str(&complete.stdout).unwrap();
    assert_eq!(complete.len(), 3);

    // The region each was posted with reached its flow.
    let shown = run_in(dir.path(), &["show", &ids[1], "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["state"], "SUCCESS");
    assert_eq!(shown["job"]["id"], ids[1].as_str());
    assert_eq!(shown["atoms"][0]["name"], "network");
    assert_eq!(shown["atoms"][0]["result"]["id"], "net-r2");
    // Each atom's time, as the conductor recorded it.
    assert!(
        shown["atoms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["seconds"].as_f64().is_some_and(|s| s >= 0.0)),
        "{shown:#}"
    );
    let table = run_in(dir.path(), &["show", &ids[1]]);
    assert!(
        table.stdout.contains("flow `provision` SUCCESS"),
        "{}",
        table.stdout
    );
}

const SLOW: &str = r#"name: slow
store: {log: ran.log}
steps:
  - name: first
    shell: echo first >> "$log"
    requires: [log]
  - name: slow
    shell: |
      if [ -e started ]; then
        echo slow >> "$log"
      else
        touch started
        sleep 5
      fi
    requires: [log]
  - name: last
    shell: echo last >> "$log"
    requires: [log]
"#;

#[test]
fn a_killed_conductors_job_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    taken_over(dir.path(), None);
}

/// Posts SLOW on `board`, SIGKILLs the conductor running its slow atom,
/// and sees a second conductor finish it without running `first` again.
fn taken_over(dir: &Path, board: Option<&str>) {
    std::fs::write(dir.join("slow.yaml"), SLOW).unwrap();
    let id = post_on(dir, board, &["slow.yaml"]);

    let first = Conductor::on(dir, "doomed", board);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("started").exists() {
        assert!(Instant::now() < deadline, "the slow atom never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let held = jobs_on(dir, board);
    assert_eq!(held[0]["state"], "CLAIMED", "{held:#?}");
    assert_eq!(held[0]["owner"], "doomed");
    assert_eq!(held[0]["atoms_done"], 1, "{held:#?}");
    assert!(first.pid() > 0);
    first.kill();
    let killed = Instant::now();

    let second = Conductor::on(dir, "heir", board);
    // How long after the SIGKILL the heir holds the job (epoch 2): the
    // conductors' lease is 1 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while jobs_on(dir, board)[0]["epoch"] != 2 {
        assert!(Instant::now() < deadline, "never taken over");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "{}: taken over {:?} after the SIGKILL (lease 1s)",
        board.unwrap_or("sqlite"),
        killed.elapsed()
    );
    let done = all_complete_on(dir, board, Duration::from_secs(20));
    let ran = second.terminate();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let job = &done[0];
    assert_eq!(job["id"], id.as_str());
    // The SQLite board keeps a complete job's last owner, Redis does not;
    // the heir's log says it ran it.
    assert!(job["owner"] == "heir" || job["owner"].is_null(), "{job:#}");
    assert!(
        ran.stderr.contains("Claimed") && ran.stderr.contains("epoch: 2"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("Consumed"), "{}", ran.stderr);
    assert_eq!(job["epoch"], 2, "{job:#}");
    assert_eq!(job["flow_state"], "SUCCESS", "{job:#}");
    let log = std::fs::read_to_string(dir.join("ran.log")).unwrap();
    assert_eq!(log, "first\nslow\nlast\n", "`first` ran once, `slow` again");
}

const NAP: &str = r#"name: nap
store: {log: ran.log}
steps:
  - name: first
    shell: |
      echo first >> "$log"
      touch started
    requires: [log]
  - name: nap
    sleep: 1s
  - name: last
    shell: echo last >> "$log"
    requires: [log]
"#;

#[test]
fn sigterm_abandons_the_job_for_another_conductor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nap.yaml"), NAP).unwrap();
    let id = post(dir.path(), &["nap.yaml"]);
    let quitter = Conductor::start(dir.path(), "quitter");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("started").exists() {
        assert!(Instant::now() < deadline, "the first atom never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ran = quitter.terminate();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("stopping"), "{}", ran.stderr);
    assert!(ran.stderr.contains("Abandoned"), "{}", ran.stderr);
    let left = jobs(dir.path());
    assert_eq!(left[0]["id"], id.as_str());
    assert_eq!(left[0]["state"], "UNCLAIMED", "{left:#?}");
    assert_eq!(left[0]["flow_state"], "SUSPENDED", "{left:#?}");

    let other = Conductor::start(dir.path(), "other");
    let done = all_complete(dir.path(), Duration::from_secs(20));
    drop(other.terminate());
    assert_eq!(done[0]["owner"], "other");
    assert_eq!(done[0]["flow_state"], "SUCCESS");
    let log = std::fs::read_to_string(dir.path().join("ran.log")).unwrap();
    assert_eq!(log, "first\nlast\n", "`first` did not run again");
}

/// A Redis server of this test's own, on a free port; stopped when dropped.
#[cfg(feature = "redis")]
struct Redis(Child, u16);

#[cfg(feature = "redis")]
impl Redis {
    /// None when there is no `redis-server` to start.
    fn start(dir: &Path) -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Redis(child, port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.1)
    }
}

#[cfg(feature = "redis")]
impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(feature = "redis")]
#[test]
fn a_killed_conductors_job_is_taken_over_on_redis() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = Redis::start(dir.path()) else {
        // CI sets TASKFLOW_REQUIRE_SERVICES=1 (and installs redis-server):
        // there a missing server fails the test instead of skipping it.
        assert!(
            std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "no `redis-server` to start, and TASKFLOW_REQUIRE_SERVICES=1"
        );
        eprintln!("skipped: no `redis-server` to start");
        return;
    };
    taken_over(dir.path(), Some(&redis.url()));
}

/// The same on a ZooKeeper board, under a fresh root node of
/// `TASKFLOW_TEST_ZK_URL` (default `127.0.0.1:2181`), deleted after.
#[cfg(feature = "zookeeper")]
#[test]
fn a_killed_conductors_job_is_taken_over_on_zookeeper() {
    let hosts = std::env::var("TASKFLOW_TEST_ZK_URL").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let root = format!("/taskflow-cli-test/{}", uuid::Uuid::new_v4());
    let cleanup =
        match taskflow::ZookeeperBoard::connect(&hosts, &root, taskflow::BoardOptions::default()) {
            Ok(board) => board,
            Err(e) => {
                assert!(
                    std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "zookeeper at {hosts} unreachable: {e} (TASKFLOW_REQUIRE_SERVICES=1)"
                );
                eprintln!("skipping: zookeeper at {hosts} unreachable: {e}");
                return;
            }
        };
    let dir = tempfile::tempdir().unwrap();
    taken_over(dir.path(), Some(&format!("zookeeper://{hosts}{root}")));
    cleanup.destroy().unwrap();
}

#[test]
fn trash_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("provision.yaml");
    let id = post(dir.path(), &[file.to_str().unwrap(), "--priority", "-3"]);
    let ran = run_in(dir.path(), &["trash", &id, "--reason", "not today"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let listed = jobs(dir.path());
    assert_eq!(listed[0]["outcome"], "trashed: not today", "{listed:#?}");
    assert_eq!(listed[0]["priority"], -3);
    let again = run_in(dir.path(), &["trash", &id, "--reason", "twice"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("is complete"), "{}", again.stderr);
    // Kept for the board's retention (7 days): nothing to purge yet.
    let purged = run_in(dir.path(), &["purge", "--json"]);
    assert_eq!(
        (purged.code, purged.stdout.trim()),
        (0, "[]"),
        "{}",
        purged.stderr
    );
}

#[test]
fn board_urls() {
    let dir = tempfile::tempdir().unwrap();
    let bad = run_in(dir.path(), &["--board", "nope://x", "jobs"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("board `nope://x`: unknown scheme"),
        "{}",
        bad.stderr
    );
    // TASKFLOW_BOARD says where when --board does not.
    let ran: Ran = taskflow()
        .args(["jobs"])
        .current_dir(dir.path())
        .env("TASKFLOW_BOARD", "sqlite:elsewhere/jobs.db")
        .output()
        .unwrap()
        .into();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("no jobs on sqlite:elsewhere/jobs.db"),
        "{}",
        ran.stdout
    );
    assert!(dir.path().join("elsewhere/jobs.db").exists());
}

/// An `etcd://` board: on a build without the etcd board, a clear error
/// saying how to build one; on a build with it, a board on the etcd of
/// `TASKFLOW_TEST_ETCD_URL`'s host (default the local one), which posts and
/// runs a flow.
#[test]
fn an_etcd_board_url() {
    let dir = tempfile::tempdir().unwrap();
    let host = std::env::var("TASKFLOW_TEST_ETCD_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:2379".into())
        .trim_start_matches("http://")
        .to_owned();
    let url = format!("etcd://{host}/taskflow-cli-test/{}", uuid::Uuid::new_v4());
    let listed = run_in(dir.path(), &["--board", &url, "jobs"]);
    if !cfg!(feature = "etcd") {
        assert_eq!(listed.code, 2, "{}", listed.stderr);
        assert!(
            listed.stderr.contains("no etcd board") && listed.stderr.contains("--features etcd"),
            "{}",
            listed.stderr
        );
        return;
    }
    if listed.code == 1 && listed.stderr.contains("connecting to") {
        assert!(
            std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "etcd at {host} unreachable: {} (TASKFLOW_REQUIRE_SERVICES=1)",
            listed.stderr
        );
        eprintln!("skipping: etcd at {host} unreachable: {}", listed.stderr);
        return;
    }
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed.stdout.contains(&format!("no jobs on {url}")),
        "{}",
        listed.stdout
    );
    let file = example("provision.yaml");
    let posted = run_in(
        dir.path(),
        &["--board", &url, "post", file.to_str().unwrap()],
    );
    assert_eq!(posted.code, 0, "{}", posted.stderr);
    let drained = run_in(dir.path(), &["--board", &url, "conductor", "--drain"]);
    assert_eq!(drained.code, 0, "{}", drained.stderr);
    let listed = run_in(dir.path(), &["--board", &url, "jobs"]);
    assert!(
        listed.stdout.contains(&format!("no jobs on {url}")),
        "the job ran and was consumed: {}",
        listed.stdout
    );
    #[cfg(feature = "etcd")]
    if let Ok(board) = taskflow::EtcdBoard::open(&url, taskflow::BoardOptions::default()) {
        let _ = board.destroy();
    }
}

#[cfg(feature = "redis")]
#[test]
fn an_unreachable_redis_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("provision.yaml");
    for args in [
        vec!["jobs"],
        vec!["post", file.to_str().unwrap()],
        vec!["conductor"],
    ] {
        let ran = run_in(
            dir.path(),
            &[&["--board", "redis://127.0.0.1:1"], &args[..]].concat(),
        );
        assert_eq!(ran.code, 1, "{args:?}: {}", ran.stderr);
        assert_eq!(
            ran.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            ran.stderr
        );
        assert!(
            ran.stderr
                .starts_with("error: board `redis://127.0.0.1:1`: ")
                && ran.stderr.contains("connecting to"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}

#[test]
fn show_watch_follows_a_job_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nap.yaml"), NAP).unwrap();
    let id = post(dir.path(), &["nap.yaml"]);
    let watch = |json: bool| {
        taskflow()
            .args(["show", &id, "--watch", "--interval", "50ms"])
            .args(json.then_some("--json"))
            .current_dir(dir.path())
            .env_remove("TASKFLOW_RECORDS")
            .env_remove("TASKFLOW_BOARD")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (mut text, mut json) = (watch(false), watch(true));
    std::thread::sleep(Duration::from_millis(300));
    let conductor = Conductor::start(dir.path(), "w");
    let deadline = Instant::now() + Duration::from_secs(20);
    for child in [&mut text, &mut json] {
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the watch did not end with the job");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    drop(conductor.terminate());
    let text: Ran = text.wait_with_output().unwrap().into();
    assert_eq!(text.code, 0, "{}", text.stderr);
    let views: Vec<&str> = text
        .stdout
        .split("\n\n")
        .filter(|v| !v.trim().is_empty())
        .collect();
    assert!(
        views[0].contains("UNCLAIMED") && views[0].contains("no atom has run yet"),
        "{}",
        text.stdout
    );
    assert!(
        views.iter().any(|v| v.contains(": CLAIMED (owner w")
            && v.lines()
                .any(|l| l.contains(" nap ") && l.contains("RUNNING"))),
        "{}",
        text.stdout
    );
    let last = views.last().unwrap();
    assert!(
        last.contains("COMPLETE, consumed") && last.contains("flow `nap` SUCCESS"),
        "{}",
        text.stdout
    );
    let json: Ran = json.wait_with_output().unwrap().into();
    let lines: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["job"]["state"], "UNCLAIMED", "{}", json.stdout);
    let end = lines.last().unwrap();
    assert_eq!(end["job"]["state"], "COMPLETE", "{}", json.stdout);
    assert_eq!(end["state"], "SUCCESS");
    assert_eq!(end["atoms"][2]["state"], "SUCCESS");
}

#[test]
fn logbooks_lists_runs_and_posted_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = run_in(dir.path(), &["logbooks"]);
    assert!(
        empty.stdout.starts_with("no logbooks in sqlite:"),
        "{}",
        empty.stdout
    );
    let file = example("provision.yaml");
    let file = file.to_str().unwrap();
    let ran = run_in(dir.path(), &["run", file]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let job = post(dir.path(), &[file]);
    let listed = run_in(dir.path(), &["logbooks", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let books: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(books.len(), 2, "{books:#?}");
    assert!(books[0].get("job").is_none(), "{books:#?}");
    assert_eq!(books[0]["flow_details"][0]["state"], "SUCCESS");
    assert_eq!(books[0]["flow_details"][0]["atoms_done"], 5);
    assert_eq!(books[1]["job"], job.as_str());
    assert_eq!(books[1]["flow_details"][0]["state"], "PENDING");
    let table = run_in(dir.path(), &["logbooks"]);
    assert!(table.stdout.contains(&job), "{}", table.stdout);
    assert!(
        table.stdout.contains("provision SUCCESS"),
        "{}",
        table.stdout
    );
}

/// A fresh schema on the local PostgreSQL (`TASKFLOW_TEST_POSTGRES_URL`,
/// default the loopback server), as a board URL `...#schema`, dropped when
/// the value is; `None` (skipped) when the server does not answer, unless
/// `TASKFLOW_REQUIRE_SERVICES=1`.
#[cfg(feature = "postgres")]
struct PgSchema {
    url: String,
    schema: String,
}

#[cfg(feature = "postgres")]
impl PgSchema {
    fn fresh() -> Option<PgSchema> {
        let url = std::env::var("TASKFLOW_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let reachable = std::net::TcpStream::connect("127.0.0.1:5432").is_ok()
            || !url.contains("127.0.0.1:5432");
        if !reachable {
            assert!(
                std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "PostgreSQL at {url} does not answer, and TASKFLOW_REQUIRE_SERVICES=1"
            );
            eprintln!("skipped: PostgreSQL at {url} does not answer");
            return None;
        }
        let schema = format!("taskflow_cli_board_{}", uuid::Uuid::new_v4().simple());
        Some(PgSchema { url, schema })
    }

    fn board(&self) -> String {
        format!("{}#{}", self.url, self.schema)
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.url,
                "-qc",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
            ])
            .output();
    }
}

#[cfg(feature = "postgres")]
#[test]
fn a_job_posted_on_a_postgres_board_runs_on_a_conductor() {
    let Some(pg) = PgSchema::fresh() else { return };
    let board = pg.board();
    let dir = tempfile::tempdir().unwrap();
    let file = example("provision.yaml");
    let id = post_on(
        dir.path(),
        Some(&board),
        &[file.to_str().unwrap(), "--store", "region=r1"],
    );
    let listed = jobs_on(dir.path(), Some(&board));
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "UNCLAIMED");
    let conductor = Conductor::on(dir.path(), "pg-1", Some(&board));
    let done = all_complete_on(dir.path(), Some(&board), Duration::from_secs(30));
    let ran = conductor.terminate();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(done[0]["id"], id.as_str());
    assert_eq!(done[0]["flow_state"], "SUCCESS", "{:#}", done[0]);
    assert_eq!(done[0]["epoch"], 1, "{:#}", done[0]);
}

#[cfg(feature = "postgres")]
#[test]
fn a_killed_conductors_job_is_taken_over_on_postgres() {
    let Some(pg) = PgSchema::fresh() else { return };
    let dir = tempfile::tempdir().unwrap();
    taken_over(dir.path(), Some(&pg.board()));
}
