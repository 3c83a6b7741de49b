//! The ZooKeeper board against real servers.
//!
//! - Four child processes race to claim the same 1,000 jobs: every job is
//!   won exactly once. (Eight threads racing in one process, and leases
//!   lapsing, are conformance cases run in `src/zookeeper/tests.rs`.)
//! - A child process claims a job and is killed with SIGKILL: another
//!   owner claims the job with the next epoch once the claim lapses, and
//!   the dead child's claim is refused. With the default lease (1 s) the
//!   lease lapses first; with a long lease the dead child's lock node goes
//!   when the server expires its session (the session timeout, 6 s by
//!   default). Both takeover times are measured and printed.
//! - A private ZooKeeper (started by the test with `java`, on a free port
//!   with its own data directory) is killed with SIGKILL and started again:
//!   every job, claim, epoch, outcome and entity is still there and the same
//!   board goes on working (its session survives the restart); while two
//!   worker threads run 200 jobs through two such restarts, no job is lost
//!   and every job ends consumed, once. Down for longer than the session
//!   timeout, the board opens a new session when the server is back, and
//!   its claims are renewed under it.
//!
//! The shared server is `TASKFLOW_TEST_ZK_URL` (`HOST:PORT[,...]`, default
//! `127.0.0.1:2181`). When it (or `java` and the ZooKeeper jar, for the
//! restart tests) is missing, the tests print `skipping: ...` and pass,
//! unless `TASKFLOW_REQUIRE_SERVICES=1`. The children are this test binary
//! run again on the ignored test `child_process`.
#![cfg(feature = "zookeeper")]
// The helpers shared by the tests below unwrap as the tests do.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, Read as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use taskflow_jobboard::{
    BoardOptions, Claim, Entity, Job, JobBoard, JobBoardError, JobId, JobState, NewJob, Outcome,
    ZookeeperBoard,
};
use uuid::Uuid;

mod common;
use common::{env, now_ms, options, skip};

const JOBS: usize = 1000;
const CHILDREN: usize = 4;

/// Where the ZooKeeper jar and its configuration directory are (Debian's
/// `zookeeper` package, as `.ci/start-etcd-zookeeper` installs it).
const ZK_CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";

fn hosts() -> String {
    std::env::var("TASKFLOW_TEST_ZK_URL").unwrap_or_else(|_| "127.0.0.1:2181".into())
}

/// A board on a fresh root of the shared server, deleting it when
/// dropped.
struct TestBoard(ZookeeperBoard);

impl std::ops::Deref for TestBoard {
    type Target = ZookeeperBoard;
    fn deref(&self) -> &ZookeeperBoard {
        &self.0
    }
}

impl Drop for TestBoard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("could not delete {}: {e}", self.0.root());
        }
    }
}

fn shared_board(lease: Duration) -> Option<TestBoard> {
    let hosts = hosts();
    let root = format!("/taskflow-test/{}", Uuid::new_v4());
    match ZookeeperBoard::connect(&hosts, &root, options(lease)) {
        Ok(board) => Some(TestBoard(board)),
        Err(e) => {
            skip(format!("zookeeper at {hosts} unreachable: {e}"));
            None
        }
    }
}

/// The children's entry point (ignored in normal runs; does nothing when
/// run by hand).
#[test]
#[ignore = "entry point of the child processes of the ZooKeeper board tests"]
fn child_process() {
    let Ok(mode) = std::env::var("ZK_CHILD") else {
        return;
    };
    let hosts = env("ZK_HOSTS");
    let root = env("ZK_ROOT");
    let owner = env("ZK_OWNER");
    match mode.as_str() {
        "race" => {
            let board = ZookeeperBoard::connect(&hosts, &root, options(Duration::from_secs(600)))
                .expect("connects");
            let mut ids: Vec<JobId> = board
                .iterjobs(false)
                .expect("lists")
                .into_iter()
                .map(|j| j.id)
                .collect();
            assert_eq!(ids.len(), JOBS);
            if std::env::var("ZK_REVERSE").is_ok() {
                ids.reverse();
            }
            // Start together: all children are connected and listed by then.
            let start: u64 = env("ZK_START_AT").parse().expect("a time");
            std::thread::sleep(Duration::from_millis(start.saturating_sub(now_ms())));
            for id in ids {
                match board.claim(id, &owner) {
                    Ok(claim) => {
                        assert_eq!(claim.epoch, 1, "job {id} claimed twice");
                        println!("won {id}");
                    }
                    Err(JobBoardError::AlreadyClaimed { .. }) => {}
                    Err(e) => panic!("{owner} claiming {id}: {e}"),
                }
            }
            // Hold the session (and the claims' locks) until every child
            // is done: the parent closes our stdin then.
            println!("done");
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
        }
        "claim-and-hang" => {
            let lease: u64 = env("ZK_LEASE_MS").parse().expect("a lease");
            let board =
                ZookeeperBoard::connect(&hosts, &root, options(Duration::from_millis(lease)))
                    .expect("connects");
            let id: Uuid = env("ZK_JOB").parse().expect("a uuid");
            let claim = board.claim(JobId::from(id), &owner).expect("claims");
            println!("claim {}", serde_json::to_string(&claim).expect("encodes"));
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn child(mode: &str, root: &str, owner: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "child_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--quiet",
    ])
    .env("ZK_CHILD", mode)
    .env("ZK_HOSTS", hosts())
    .env("ZK_ROOT", root)
    .env("ZK_OWNER", owner)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

/// 1,000 jobs raced by 4 processes, two claiming in posting order and two
/// in reverse: every job is won by exactly one of them.
#[test]
fn claims_raced_by_four_processes_each_job_once() {
    let Some(board) = shared_board(Duration::from_secs(600)) else {
        return;
    };
    let ids: HashSet<JobId> = (0..JOBS)
        .map(|i| board.post(NewJob::new(format!("race-{i}"))).unwrap().id)
        .collect();
    let start_at = now_ms() + 2500;
    let children: Vec<(String, Child)> = (0..CHILDREN)
        .map(|c| {
            let owner = format!("process-{c}");
            let mut cmd = child("race", board.root(), &owner);
            cmd.env("ZK_START_AT", start_at.to_string())
                .stdin(Stdio::piped());
            if c % 2 == 1 {
                cmd.env("ZK_REVERSE", "1");
            }
            (owner, cmd.spawn().expect("child starts"))
        })
        .collect();
    let started = Instant::now();
    let mut won: HashMap<JobId, Vec<String>> = HashMap::new();
    let mut finished = Vec::new();
    for (owner, mut child) in children {
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).expect("reads") == 0 {
                panic!("{owner} ended before it was done");
            }
            let line = line.trim_end();
            if let Some(id) = line.strip_prefix("won ") {
                won.entry(id.parse().expect("a uuid"))
                    .or_default()
                    .push(owner.clone());
            } else if line == "done" {
                break;
            }
        }
        finished.push((owner, child, stdout));
    }
    let elapsed = started
        .elapsed()
        .saturating_sub(Duration::from_millis(2500));
    for (owner, mut child, mut stdout) in finished {
        drop(child.stdin.take());
        // What the child's test harness prints last.
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).expect("reads");
        let status = child.wait().expect("child runs");
        assert!(status.success(), "{owner} failed: {status:?}");
    }
    eprintln!(
        "{CHILDREN} processes raced for {JOBS} jobs in about {elapsed:?} ({} attempts)",
        JOBS * CHILDREN
    );
    assert_eq!(won.keys().copied().collect::<HashSet<_>>(), ids);
    let twice: Vec<_> = won.iter().filter(|(_, o)| o.len() != 1).collect();
    assert!(twice.is_empty(), "claimed more than once: {twice:?}");
    // The children are gone, and their sessions with them: each job is
    // still claimed at epoch 1 by its winner, its lock gone.
    for (id, owners) in &won {
        let job = board.get(*id).unwrap();
        assert_eq!(job.owner.as_ref(), Some(&owners[0]), "{id}");
        assert_eq!(job.epoch, 1, "{id}");
    }
}

/// Runs a child that claims a job with `lease` and hangs, SIGKILLs it,
/// and returns how long after the kill another owner could claim the job,
/// having checked the dead claim is refused everywhere.
fn takeover_after_kill(lease: Duration) -> Option<Duration> {
    let board = shared_board(Duration::from_secs(60))?;
    let job = board.post(NewJob::new("j")).unwrap();
    let mut cmd = child("claim-and-hang", board.root(), "doomed");
    cmd.env("ZK_JOB", job.id.to_string())
        .env("ZK_LEASE_MS", lease.as_millis().to_string());
    let mut proc = cmd.spawn().expect("child starts");
    let mut line = String::new();
    {
        let stdout = proc.stdout.take().expect("piped");
        let mut reader = std::io::BufReader::new(stdout);
        while !line.starts_with("claim ") {
            line.clear();
            if reader.read_line(&mut line).expect("reads") == 0 {
                let _ = proc.kill();
                panic!("child exited without claiming");
            }
        }
    }
    let dead: Claim = serde_json::from_str(line.trim_start_matches("claim ").trim()).unwrap();
    proc.kill().expect("kills");
    let killed = Instant::now();
    proc.wait().expect("reaped");
    assert_eq!(dead.epoch, 1);
    match board.claim(job.id, "survivor") {
        Err(JobBoardError::AlreadyClaimed { owner, .. }) => assert_eq!(owner, "doomed"),
        other => panic!("claimed while the lease ran: {other:?}"),
    }
    let claim = loop {
        assert!(board.wait(Duration::from_secs(30)).unwrap(), "never lapsed");
        match board.claim(job.id, "survivor") {
            Ok(claim) => break claim,
            Err(JobBoardError::AlreadyClaimed { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    let took = killed.elapsed();
    assert_eq!(claim.epoch, 2);
    for err in [
        board.renew(&dead).unwrap_err(),
        board.consume(&dead).unwrap_err(),
        board.abandon(&dead).unwrap_err(),
        board.trash(&dead, "x").unwrap_err(),
    ] {
        assert!(
            matches!(&err, JobBoardError::NotOwner { epoch: 1, owner, .. } if owner == "doomed"),
            "{err}"
        );
    }
    board.consume(&claim).unwrap();
    assert_eq!(board.get(job.id).unwrap().outcome, Some(Outcome::Consumed));
    Some(took)
}

/// A killed owner's claim with the default lease (1 s) lapses with its
/// lease: taken over about a second after the kill.
#[test]
fn a_killed_owners_lease_lapses_and_its_claim_is_refused() {
    let lease = BoardOptions::default().lease;
    let Some(took) = takeover_after_kill(lease) else {
        return;
    };
    eprintln!("lease {lease:?}: taken over {took:?} after the SIGKILL");
    assert!(took < lease + Duration::from_secs(2), "after {took:?}");
}

/// A killed owner's claim with a lease far longer than the session
/// timeout lapses when the server expires the dead process's session
/// (6 s by default), which deletes its lock node.
#[test]
fn a_killed_owners_lock_goes_with_its_session() {
    let Some(took) = takeover_after_kill(Duration::from_secs(600)) else {
        return;
    };
    let timeout = ZookeeperBoard::SESSION_TIMEOUT;
    eprintln!("lease 600s, session timeout {timeout:?}: taken over {took:?} after the SIGKILL");
    // The server expires sessions on its own clock, checked every tick
    // (2 s): up to a tick late.
    assert!(took < timeout + Duration::from_secs(4), "after {took:?}");
}

/// A private ZooKeeper server in its own data directory, on a free port;
/// killed when dropped.
struct Server {
    port: u16,
    dir: PathBuf,
    proc: Option<Child>,
}

impl Server {
    /// Starts one; `None` (having said why) if java or the jar is missing.
    fn start() -> Option<Server> {
        if let Err(e) = Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            skip(format!("java cannot run: {e}"));
            return None;
        }
        if !std::path::Path::new("/usr/share/java/zookeeper.jar").exists() {
            skip("/usr/share/java/zookeeper.jar is missing (apt-get install zookeeper)".into());
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("taskflow-zk-restart-{}", Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        std::fs::write(
            dir.join("zoo.cfg"),
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 maxClientCnxns=0\nadmin.enableServer=false\n",
                dir.join("data").display()
            ),
        )
        .expect("zoo.cfg");
        let mut server = Server {
            port,
            dir,
            proc: None,
        };
        server.restart();
        Some(server)
    }

    fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), on the same port and directory, and
    /// waits until it serves.
    fn restart(&mut self) {
        assert!(self.proc.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log file");
        let proc = Command::new("java")
            .args(["-Xmx256m", "-cp", ZK_CLASSPATH])
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(self.dir.join("zoo.cfg"))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("java starts");
        self.proc = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            if let Ok(mut stream) = TcpStream::connect(&addr) {
                // `srvr` is a four-letter word served by default: once it
                // answers, the server serves.
                use std::io::Write as _;
                let mut answer = String::new();
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                if stream.write_all(b"srvr").is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.contains("Mode")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "zookeeper on port {} did not come up; log: {}",
                self.port,
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server with SIGKILL.
    fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill().expect("kills");
            proc.wait().expect("reaped");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a job looks like, minus what time changes.
type Snapshot = (
    Uuid,
    JobState,
    Option<String>,
    u64,
    Option<u64>,
    Option<Outcome>,
    u64,
);

fn snapshot(job: &Job) -> Snapshot {
    (
        Uuid::from(job.id),
        job.state,
        job.owner.clone(),
        job.epoch.get(),
        job.lease_expires_at,
        job.outcome.clone(),
        job.sequence,
    )
}

/// Posts, claims, consumes, abandons, trashes on a private server, kills
/// it and starts it again, twice: everything is still there, claims are
/// still held (the board's session outlived the restart, its locks with
/// it), and the same board works on.
#[test]
fn a_restarted_server_loses_no_job_and_the_board_reconnects() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let board = ZookeeperBoard::connect(
        &server.hosts(),
        "/restart",
        options(Duration::from_secs(600)),
    )
    .unwrap();
    let jobs: Vec<Job> = (0..40)
        .map(|i| {
            let mut new = NewJob::new(format!("job-{i}"));
            new.priority = i % 3;
            new.details = json!({"i": i});
            board.post(new).unwrap()
        })
        .collect();
    let claims: Vec<Claim> = jobs[..20]
        .iter()
        .map(|j| board.claim(j.id, &format!("owner-{}", j.name)).unwrap())
        .collect();
    for claim in &claims[..4] {
        board.consume(claim).unwrap();
    }
    board.trash(&claims[4], "bad").unwrap();
    board.abandon(&claims[5]).unwrap();
    let reclaimed = board.claim(jobs[5].id, "second").unwrap();
    assert_eq!(reclaimed.epoch, 2);
    let entity = Entity {
        name: "conductor-1".into(),
        meta: json!({"pid": 1}),
    };
    board.register_entity(&entity).unwrap();

    let read_all = |board: &ZookeeperBoard| -> Vec<Snapshot> {
        jobs.iter()
            .map(|j| snapshot(&board.get(j.id).unwrap()))
            .collect()
    };
    let mut before = read_all(&board);
    let ids = |jobs: Vec<Job>| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
    let listed = ids(board.iterjobs(false).unwrap());
    let open = ids(board.iterjobs(true).unwrap());
    assert_eq!(listed.len(), 35);
    assert_eq!(open.len(), 20);

    for round in 0..2u64 {
        server.kill();
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            wait_until(Duration::from_secs(10), || !board.connected()),
            "connected() still true with the server down"
        );
        server.restart();

        // The same board object: a call made now waits for the session to
        // reconnect, then goes through.
        assert_eq!(read_all(&board), before, "after restart {round}");
        assert_eq!(ids(board.iterjobs(false).unwrap()), listed);
        assert_eq!(ids(board.iterjobs(true).unwrap()), open);
        assert_eq!(board.entities().unwrap(), std::slice::from_ref(&entity));
        assert!(board.connected());
        // Claims are still held: others are refused, owners may renew.
        match board.claim(jobs[10].id, "thief") {
            Err(JobBoardError::AlreadyClaimed { owner, .. }) => assert_eq!(owner, "owner-job-10"),
            other => panic!("after restart {round}: {other:?}"),
        }
        for claim in &claims[6..] {
            let renewed = board.renew(claim).unwrap();
            assert_eq!(renewed.epoch, claim.epoch);
        }
        before = read_all(&board);
        assert!(
            matches!(
                board.consume(&claims[5]),
                Err(JobBoardError::NotOwner { .. })
            ),
            "the abandoned claim is still refused after restart {round}"
        );
        // The sequence counter went on from where it was.
        let post = board.post(NewJob::new(format!("after-{round}"))).unwrap();
        assert!(post.sequence > jobs[39].sequence + round);
        let claim = board.claim(post.id, "x").unwrap();
        board.consume(&claim).unwrap();
    }
    for claim in &claims[6..] {
        board.consume(claim).unwrap();
    }
    board.consume(&reclaimed).unwrap();
}

fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Two worker threads run 200 jobs (claim, consume) while the private
/// server is killed and restarted twice: no job is lost, every job ends
/// consumed, exactly once.
#[test]
fn jobs_survive_a_restart_during_a_run() {
    const N: usize = 200;
    let Some(mut server) = Server::start() else {
        return;
    };
    let board =
        ZookeeperBoard::connect(&server.hosts(), "/run", options(Duration::from_secs(60))).unwrap();
    let ids: HashSet<JobId> = (0..N)
        .map(|i| board.post(NewJob::new(format!("job-{i}"))).unwrap().id)
        .collect();
    let heard = std::sync::Arc::new(taskflow_jobboard::CapturingListener::new());
    let _subscription = board.subscribe(heard.clone()).unwrap();
    let consumed = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let by_worker: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (board, consumed, errors, done) = (&board, &consumed, &errors, &done);
                s.spawn(move || {
                    let owner = format!("worker-{w}");
                    let mut mine = Vec::new();
                    while !done.load(Ordering::SeqCst) {
                        let open = match board.iterjobs(true) {
                            Ok(open) => open,
                            Err(_) => {
                                errors.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                        };
                        if open.is_empty() {
                            let _ = board.wait(Duration::from_millis(200));
                            continue;
                        }
                        for job in open {
                            let claim = match board.claim(job.id, &owner) {
                                Ok(claim) => claim,
                                Err(JobBoardError::Backend { .. }) => {
                                    errors.fetch_add(1, Ordering::SeqCst);
                                    break;
                                }
                                Err(_) => continue,
                            };
                            match board.consume(&claim) {
                                Ok(()) => {
                                    consumed.fetch_add(1, Ordering::SeqCst);
                                    mine.push(job.id);
                                }
                                Err(e) => panic!("consuming {}: {e}", job.id),
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        for stop_at in [N / 4, N / 2] {
            while consumed.load(Ordering::SeqCst) < stop_at {
                std::thread::sleep(Duration::from_millis(1));
            }
            server.kill();
            std::thread::sleep(Duration::from_millis(1500));
            server.restart();
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while consumed.load(Ordering::SeqCst) < N && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        done.store(true, Ordering::SeqCst);
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let all: Vec<JobId> = by_worker.concat();
    eprintln!(
        "{} jobs consumed through 2 restarts ({} calls failed after retrying)",
        all.len(),
        errors.load(Ordering::SeqCst)
    );
    // The board noticed both restarts (and rode them out).
    let events = heard.events();
    let count = |want: fn(&taskflow_jobboard::BoardEvent) -> bool| {
        events.iter().filter(|e| want(e)).count()
    };
    assert!(
        count(|e| matches!(e, taskflow_jobboard::BoardEvent::Disconnected { .. })) >= 2,
        "the restarts went unnoticed"
    );
    assert!(count(|e| *e == taskflow_jobboard::BoardEvent::Reconnected) >= 2);
    let unique: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a job was consumed twice");
    assert_eq!(unique, ids, "jobs lost or never consumed");
    for id in &ids {
        let job = board.get(*id).unwrap();
        assert_eq!(job.state, JobState::Complete, "{id}");
        assert_eq!(job.outcome, Some(Outcome::Consumed), "{id}");
    }
    assert!(board.iterjobs(false).unwrap().is_empty());
}

/// A board whose server goes away says so (`connected()` false, a
/// `Disconnected` event), and when the server is back it reconnects by
/// itself (`Reconnected`, `connected()` true) and hears new jobs again.
#[test]
fn a_board_whose_server_goes_away_says_so_and_comes_back() {
    use std::sync::Arc;
    use taskflow_jobboard::{BoardEvent, CapturingListener};
    let Some(mut server) = Server::start() else {
        return;
    };
    let board = ZookeeperBoard::connect(&server.hosts(), "/away", options(Duration::from_secs(60)))
        .unwrap();
    let heard = Arc::new(CapturingListener::new());
    let _subscription = board.subscribe(heard.clone()).unwrap();
    let first = board.post(NewJob::new("before")).unwrap();
    assert!(heard.wait_for(Duration::from_secs(5), |e| e
        .contains(&BoardEvent::Posted(first.id))));
    assert!(board.connected());

    server.kill();
    assert!(
        heard.wait_for(Duration::from_secs(10), |e| e
            .iter()
            .any(|e| matches!(e, BoardEvent::Disconnected { .. }))),
        "no Disconnected event: {:?}",
        heard.events()
    );
    assert!(!board.connected());
    server.restart();
    let back = Instant::now();
    assert!(
        heard.wait_for(Duration::from_secs(20), |e| e
            .contains(&BoardEvent::Reconnected)),
        "no Reconnected event: {:?}",
        heard.events()
    );
    let second = board.post(NewJob::new("after")).unwrap();
    assert!(heard.wait_for(Duration::from_secs(5), |e| e
        .contains(&BoardEvent::Posted(second.id))));
    assert!(board.connected());
    eprintln!(
        "the board reconnected {:?} after the server was back",
        back.elapsed()
    );
    assert_eq!(board.get(first.id).unwrap().name, "before");
}

/// A server down for longer than the session timeout: the client gives
/// the session up, and the board opens a new one when the server is back
/// (`Disconnected`, then `Reconnected`). Its claims survive as records;
/// a renewal takes the lock back under the new session (the old session's
/// lock goes when the server expires that session).
#[test]
fn a_board_whose_session_expired_opens_a_new_one() {
    use std::sync::Arc;
    use taskflow_jobboard::{BoardEvent, CapturingListener};
    let Some(mut server) = Server::start() else {
        return;
    };
    let board = ZookeeperBoard::connect(
        &server.hosts(),
        "/expired",
        options(Duration::from_secs(600)),
    )
    .unwrap();
    let heard = Arc::new(CapturingListener::new());
    let _subscription = board.subscribe(heard.clone()).unwrap();
    let job = board.post(NewJob::new("held")).unwrap();
    let claim = board.claim(job.id, "A").unwrap();

    server.kill();
    // Longer than the session timeout: the client declares the session
    // expired.
    std::thread::sleep(ZookeeperBoard::SESSION_TIMEOUT + Duration::from_secs(2));
    assert!(!board.connected());
    server.restart();
    let back = Instant::now();
    assert!(
        heard.wait_for(Duration::from_secs(30), |e| e
            .contains(&BoardEvent::Reconnected)),
        "no Reconnected event: {:?}",
        heard.events()
    );
    eprintln!(
        "a new session {:?} after the server was back",
        back.elapsed()
    );
    assert!(heard.events().iter().any(|e| matches!(
        e,
        BoardEvent::Disconnected { reason } if reason.contains("session")
    )));
    let seen = board.get(job.id).unwrap();
    assert_eq!((seen.owner.as_deref(), seen.epoch.get()), (Some("A"), 1));
    let renewed = board.renew(&claim).unwrap();
    assert_eq!(renewed.epoch, claim.epoch);
    assert_eq!(board.find_owner(job.id).unwrap().as_deref(), Some("A"));
    // The old session's expiry (on the server's clock) does not take the
    // renewed lock with it.
    std::thread::sleep(ZookeeperBoard::SESSION_TIMEOUT + Duration::from_secs(3));
    assert_eq!(board.find_owner(job.id).unwrap().as_deref(), Some("A"));
    let other = board.post(NewJob::new("after")).unwrap();
    assert!(heard.wait_for(Duration::from_secs(5), |e| e
        .contains(&BoardEvent::Posted(other.id))));
    board.consume(&renewed).unwrap();
    assert!(board.connected());
}

/// Claim + consume cycles per second, with 1 and 4 threads (each thread on
/// its own jobs), on the shared server. Run with
/// `cargo test --release --features zookeeper --test zookeeper -- --ignored --nocapture throughput`.
#[test]
#[ignore = "benchmark: prints claim + consume cycles per second"]
fn throughput() {
    let Some(board) = shared_board(Duration::from_secs(600)) else {
        return;
    };
    let per_thread = 500;
    for threads in [1usize, 4] {
        let start = Instant::now();
        let jobs: Vec<Vec<JobId>> = (0..threads)
            .map(|_| {
                (0..per_thread)
                    .map(|i| board.post(NewJob::new(format!("b{i}"))).unwrap().id)
                    .collect()
            })
            .collect();
        let posted = start.elapsed();
        let start = Instant::now();
        let listed = board.iterjobs(true).unwrap().len();
        eprintln!(
            "iterjobs(true) over {listed} pending jobs: {:?}",
            start.elapsed()
        );
        let start = Instant::now();
        std::thread::scope(|s| {
            for (t, ids) in jobs.iter().enumerate() {
                let board = &board;
                s.spawn(move || {
                    let owner = format!("t{t}");
                    for id in ids {
                        let claim = board.claim(*id, &owner).unwrap();
                        board.consume(&claim).unwrap();
                    }
                });
            }
        });
        let cycles = threads * per_thread;
        let took = start.elapsed();
        eprintln!(
            "{threads} thread(s): {cycles} claim+consume cycles in {took:?}: {:.0} cycles/s \
             (posting {cycles} jobs from one thread: {:.0} posts/s)",
            cycles as f64 / took.as_secs_f64(),
            cycles as f64 / posted.as_secs_f64(),
        );
    }
}
