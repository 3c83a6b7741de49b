//! Crashes for real: a child process runs a 100-atom linear flow that
//! checkpoints into a durable backend, and is killed with SIGKILL after
//! atom k finished (or while reverting); a new process rebuilds the flow
//! from the records alone and resumes it. A side log, appended by every
//! execute and revert, shows that no atom before the last checkpoint ran
//! twice and that the result is right.
//!
//! The child is this test binary run again on the ignored test
//! `child_process`, told what to do through environment variables.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskflow::prelude::*;
use taskflow::{DirBackend, EngineBuilder};

const N: usize = 100;

/// One step of the chain: `x + 1`, logging its execute and revert; the last
/// step fails when `fail` is set, so that everything reverts.
#[derive(Serialize, Deserialize)]
struct Step {
    index: usize,
    fail: bool,
}

fn log(line: String) {
    let path = std::env::var("CRASH_LOG").expect("CRASH_LOG is set in the child");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("side log opens");
    // One write per line: with O_APPEND, lines of parallel workers never interleave.
    f.write_all(format!("{line}\n").as_bytes())
        .expect("side log writes");
}

/// Blocks forever if the child was told to stop at `point` (the parent
/// then kills it).
fn maybe_block(point: String) {
    if std::env::var("CRASH_BLOCK").ok().as_deref() == Some(point.as_str()) {
        log(format!("blocked {point}"));
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

#[typetag::serde]
impl StoredTask for Step {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        log(format!("exec {}", self.index));
        maybe_block(format!("exec:{}", self.index));
        if let Some(ms) = std::env::var("CRASH_SLOW_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if self.fail {
            return Err(TaskError::new(
                "Planned",
                format!("step {} fails", self.index),
            ));
        }
        Ok(json!(ctx.input::<i64>("x")? + 1))
    }

    fn revert(&self, _: &mut Context) -> Result<(), TaskError> {
        log(format!("revert {}", self.index));
        maybe_block(format!("revert:{}", self.index));
        Ok(())
    }
}

/// `width` independent chains of `N / width` steps (one chain: a linear
/// flow of N). Step `i` provides `x{i}` = its position in its chain + 1.
fn chains(width: usize, fail_last: bool) -> Flow {
    let len = N / width;
    let mut all = Unordered::new("chains");
    for c in 0..width {
        let mut chain = Linear::new(format!("chain{c}"));
        for s in 0..len {
            let i = c * len + s;
            let step = Step {
                index: i,
                fail: fail_last && i == N - 1,
            };
            let mut a = atom(format!("s{i}"), step)
                .requires(["x"])
                .provides(format!("x{i}"));
            if s > 0 {
                a = a.rebind("x", format!("x{}", i - 1));
            }
            chain = chain.add(a);
        }
        all = all.add(chain);
    }
    all.into()
}

/// The engine the child runs: serial, or parallel with 4 workers.
fn engine_for(builder: EngineBuilder) -> EngineBuilder {
    match std::env::var("CRASH_ENGINE").as_deref() {
        Ok("parallel") => builder.executor(Parallel::new(4).expect("pool starts")),
        _ => builder,
    }
}

/// Opens the backend described by `spec`: `sqlite:PATH`, `dir:PATH` or
/// `postgres:URL#SCHEMA`.
fn open(spec: &str) -> Arc<dyn Backend> {
    let (kind, rest) = spec.split_once(':').expect("kind:location");
    match kind {
        "sqlite" => Arc::new(SqliteBackend::open(rest).expect("sqlite opens")),
        "dir" => Arc::new(DirBackend::open(rest).expect("dir opens")),
        #[cfg(feature = "postgres")]
        "postgres" => {
            let (url, schema) = rest.rsplit_once('#').expect("url#schema");
            Arc::new(
                taskflow::PostgresBackend::connect_in_schema(url, schema)
                    .expect("postgres connects"),
            )
        }
        other => panic!("unknown backend {other}"),
    }
}

/// The child's entry point (ignored in normal runs).
#[test]
#[ignore = "entry point of the child processes of the crash tests"]
fn child_process() {
    let mode = std::env::var("CRASH_CHILD").expect("run by the crash tests");
    let backend = open(&std::env::var("CRASH_BACKEND").expect("CRASH_BACKEND"));
    let id_file = PathBuf::from(std::env::var("CRASH_ID_FILE").expect("CRASH_ID_FILE"));
    let mut engine = match mode.as_str() {
        "run" => {
            let fail_last = std::env::var("CRASH_FAIL_LAST").is_ok();
            let width = std::env::var("CRASH_WIDTH").map_or(1, |w| w.parse().expect("a width"));
            let mut engine = engine_for(Engine::builder(chains(width, fail_last)))
                .store(json!({ "x": 0 }))
                .persistence(backend)
                .build()
                .expect("builds");
            engine.prepare().expect("records written");
            std::fs::write(&id_file, engine.storage().flow_detail_id().to_string())
                .expect("id written");
            engine
        }
        "resume" => {
            let id = std::fs::read_to_string(&id_file)
                .expect("id file")
                .parse()
                .expect("a uuid");
            log("resumed".into());
            Engine::load(backend, id)
                .expect("loads")
                .build()
                .expect("builds")
        }
        other => panic!("unknown mode {other}"),
    };
    let outcome = match engine.run() {
        Ok(state) => state.to_string(),
        Err(taskflow::EngineError::Failed { state, .. }) => state.to_string(),
        Err(taskflow::EngineError::Persistence(e)) if e.is_fenced() => {
            log(format!("fenced: {e}"));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    log(format!(
        "final {outcome} {}",
        engine
            .storage()
            .fetch(&format!("x{}", N - 1))
            .unwrap_or(&Value::Null)
    ));
}

/// How the child runs the flow.
#[derive(Clone, Copy, Default)]
struct Run {
    fail_last: bool,
    width: usize,
    parallel: bool,
}

fn child(mode: &str, backend: &str, dir: &Path, block: Option<&str>, run: Run) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("CRASH_CHILD", mode)
    .env("CRASH_BACKEND", backend)
    .env("CRASH_LOG", dir.join("side.log"))
    .env("CRASH_ID_FILE", dir.join("flow.id"));
    if let Some(point) = block {
        cmd.env("CRASH_BLOCK", point);
    }
    if run.fail_last {
        cmd.env("CRASH_FAIL_LAST", "1");
    }
    if run.parallel {
        cmd.env("CRASH_ENGINE", "parallel");
    }
    cmd.env("CRASH_WIDTH", run.width.max(1).to_string());
    cmd
}

fn side_log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("side.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs the child until it blocks at `block`, SIGKILLs it, resumes in a new
/// process, and returns the side log.
fn crash_and_resume(backend: &str, dir: &Path, block: &str, run: Run) -> Vec<String> {
    crash_then(backend, dir, block, run, |_| {})
}

/// Like [`crash_and_resume`], calling `after_kill` between the kill and the
/// resume (to read the records as the crash left them).
fn crash_then(
    backend: &str,
    dir: &Path,
    block: &str,
    run: Run,
    after_kill: impl FnOnce(&Path),
) -> Vec<String> {
    let mut running = child("run", backend, dir, Some(block), run)
        .stdout(Stdio::null())
        .spawn()
        .expect("child starts");
    let marker = format!("blocked {block}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !side_log(dir).contains(&marker) {
        if let Some(status) = running.try_wait().expect("child status") {
            panic!(
                "child ended before reaching {block}: {status}; log {:?}",
                side_log(dir)
            );
        }
        assert!(Instant::now() < deadline, "child never reached {block}");
        std::thread::sleep(Duration::from_millis(5));
    }
    running.kill().expect("SIGKILL sent");
    let status = running.wait().expect("child reaped");
    assert_eq!(status.signal(), Some(9), "the child died of SIGKILL");
    after_kill(dir);
    let out = child("resume", backend, dir, None, run)
        .output()
        .expect("resume process runs");
    assert!(
        out.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    side_log(dir)
}

fn count(log: &[String], entry: &str) -> usize {
    log.iter().filter(|l| *l == entry).count()
}

/// Killed after atom `k` finished (atom `k + 1` had started): atoms up to
/// `k` never run again, `k + 1` runs again (it was RUNNING), the rest once.
fn killed_after(backend: &str, dir: &Path, k: usize) {
    let log = crash_and_resume(backend, dir, &format!("exec:{}", k + 1), Run::default());
    let resumed_at = log.iter().position(|l| l == "resumed").expect("resumed");
    for i in 0..N {
        let runs = count(&log, &format!("exec {i}"));
        let expected = if i == k + 1 { 2 } else { 1 };
        assert_eq!(
            runs, expected,
            "atom {i} ran {runs} times (killed after atom {k}); log {log:?}"
        );
    }
    assert!(
        !log[resumed_at..].contains(&format!("exec {k}")),
        "atom {k} ran after the resume"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some(format!("final SUCCESS {N}").as_str())
    );
}

/// Killed while reverting atom `j` (the last atom failed): no atom executes
/// again; atoms after `j` revert once, `j` again, atoms before once.
fn killed_while_reverting(backend: &str, dir: &Path, j: usize) {
    let run = Run {
        fail_last: true,
        ..Run::default()
    };
    let log = crash_and_resume(backend, dir, &format!("revert:{j}"), run);
    let resumed_at = log.iter().position(|l| l == "resumed").expect("resumed");
    assert!(
        log[resumed_at..].iter().all(|l| !l.starts_with("exec ")),
        "nothing executes after the resume: {log:?}"
    );
    for i in 0..N {
        assert_eq!(
            count(&log, &format!("exec {i}")),
            1,
            "atom {i} executed once"
        );
        let reverts = count(&log, &format!("revert {i}"));
        assert_eq!(
            reverts,
            if i == j { 2 } else { 1 },
            "atom {i} reverted {reverts} times"
        );
    }
    let order: Vec<usize> = log
        .iter()
        .filter_map(|l| l.strip_prefix("revert ").and_then(|i| i.parse().ok()))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] >= w[1]),
        "reverts in reverse order: {order:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("final REVERTED null"));
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("flows.db").display())
}

#[test]
fn sqlite_killed_after_the_first_atom() {
    let dir = tempfile::tempdir().expect("temp dir");
    killed_after(&sqlite(dir.path()), dir.path(), 0);
}

#[test]
fn sqlite_killed_half_way() {
    let dir = tempfile::tempdir().expect("temp dir");
    killed_after(&sqlite(dir.path()), dir.path(), 49);
}

#[test]
fn sqlite_killed_before_the_last_atom() {
    let dir = tempfile::tempdir().expect("temp dir");
    killed_after(&sqlite(dir.path()), dir.path(), N - 2);
}

#[test]
fn sqlite_killed_while_reverting() {
    let dir = tempfile::tempdir().expect("temp dir");
    killed_while_reverting(&sqlite(dir.path()), dir.path(), 50);
}

/// A parallel run of four chains killed while several atoms run: after the
/// resume, no atom the records held as `SUCCESS` at the kill runs again,
/// every atom ran, and every chain's result is right.
#[test]
fn sqlite_parallel_killed_mid_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = sqlite(dir.path());
    let run = Run {
        width: 4,
        parallel: true,
        ..Run::default()
    };
    let mut done_at_kill = Vec::new();
    let log = crash_then(&backend, dir.path(), "exec:62", run, |dir| {
        let records = open(&sqlite(dir));
        let id = std::fs::read_to_string(dir.join("flow.id"))
            .expect("id")
            .parse()
            .expect("uuid");
        let flow = records
            .get_flow_detail(id)
            .expect("records readable after the kill");
        done_at_kill = flow
            .atom_details
            .iter()
            .filter(|d| d.state == taskflow::AtomState::Success)
            .map(|d| d.name.trim_start_matches('s').to_owned())
            .collect();
    });
    assert!(
        done_at_kill.len() >= 12,
        "chain 2 had finished 12 steps: {done_at_kill:?}"
    );
    let resumed_at = log.iter().position(|l| l == "resumed").expect("resumed");
    for i in &done_at_kill {
        assert!(
            !log[resumed_at..].contains(&format!("exec {i}")),
            "atom {i} was SUCCESS at the kill but ran again"
        );
    }
    for i in 0..N {
        assert!(log.contains(&format!("exec {i}")), "atom {i} never ran");
    }
    assert_eq!(log.last().map(String::as_str), Some("final SUCCESS 25"));
}

/// Two processes resume the same crashed flow detail at once, with no
/// board between them: the second to load takes it at the next epoch, the
/// first is fenced out at its next checkpoint, and only one reports the
/// flow's end. No atom runs twice but the one in flight at the handover.
#[test]
fn two_processes_resuming_one_flow_detail_never_both_run_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = sqlite(dir.path());
    let mut crashed = child("run", &backend, dir.path(), Some("exec:0"), Run::default())
        .stdout(Stdio::null())
        .spawn()
        .expect("child starts");
    wait_for_log(dir.path(), "blocked exec:0", &mut crashed);
    crashed.kill().expect("SIGKILL sent");
    crashed.wait().expect("child reaped");

    let resume = |slow_ms: &str| {
        child("resume", &backend, dir.path(), None, Run::default())
            .env("CRASH_SLOW_MS", slow_ms)
            .stdout(Stdio::piped())
            .spawn()
            .expect("resume process starts")
    };
    let mut first = resume("10");
    wait_for_log(dir.path(), "exec 20", &mut first);
    let second = resume("0");
    for process in [first, second] {
        let out = process.wait_with_output().expect("resume process ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let log = side_log(dir.path());
    let ends: Vec<&String> = log.iter().filter(|l| l.starts_with("final")).collect();
    assert_eq!(ends, ["final SUCCESS 100"], "{log:?}");
    assert_eq!(
        log.iter().filter(|l| l.starts_with("fenced")).count(),
        1,
        "{log:?}"
    );
    let execs = log.iter().filter(|l| l.starts_with("exec")).count();
    // exec 0 ran in the killed process and again; one more at the handover.
    assert!(execs <= N + 2, "{execs} executions: {log:?}");
    for i in 1..N {
        let runs = count(&log, &format!("exec {i}"));
        assert!((1..=2).contains(&runs), "atom {i} ran {runs} times");
    }
}

fn wait_for_log(dir: &Path, line: &str, process: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !side_log(dir).iter().any(|l| l == line) {
        if let Some(status) = process.try_wait().expect("child status") {
            panic!(
                "child ended before logging {line}: {status}; log {:?}",
                side_log(dir)
            );
        }
        assert!(Instant::now() < deadline, "child never logged {line}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn dir_killed_half_way() {
    let dir = tempfile::tempdir().expect("temp dir");
    let records = dir.path().join("records");
    killed_after(&format!("dir:{}", records.display()), dir.path(), 49);
}

#[test]
fn dir_killed_while_reverting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let records = dir.path().join("records");
    killed_while_reverting(&format!("dir:{}", records.display()), dir.path(), 30);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use taskflow::FlowDetail;

    /// The server's URL, or `None` (having said so) when it is unreachable
    /// and services are not required.
    fn server() -> Option<String> {
        let url = std::env::var("TASKFLOW_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        match ::postgres::Client::connect(&url, ::postgres::NoTls) {
            Ok(_) => Some(url),
            Err(e) if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1") => {
                eprintln!("skipping: postgres at {url} unreachable: {e}");
                None
            }
            Err(e) => panic!("postgres at {url} unreachable and TASKFLOW_REQUIRE_SERVICES=1: {e}"),
        }
    }

    /// A fresh schema for one test, dropped when the test ends.
    struct Schema {
        url: String,
        name: String,
    }

    impl Schema {
        fn new(url: String) -> Self {
            let name = format!("crash_{}", FlowDetail::new("x").uuid.as_uuid().simple());
            Schema { url, name }
        }

        fn spec(&self) -> String {
            format!("postgres:{}#{}", self.url, self.name)
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            if let Ok(mut client) = ::postgres::Client::connect(&self.url, ::postgres::NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
            }
        }
    }

    #[test]
    fn postgres_killed_half_way() {
        let Some(url) = server() else { return };
        let schema = Schema::new(url);
        let dir = tempfile::tempdir().expect("temp dir");
        killed_after(&schema.spec(), dir.path(), 49);
    }

    #[test]
    fn postgres_killed_while_reverting() {
        let Some(url) = server() else { return };
        let schema = Schema::new(url);
        let dir = tempfile::tempdir().expect("temp dir");
        killed_while_reverting(&schema.spec(), dir.path(), 70);
    }
}
