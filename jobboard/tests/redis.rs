//! The Redis board against real servers.
//!
//! - Four child processes race to claim the same 1,000 jobs: every job is
//!   won exactly once. (Eight threads racing in one process, and leases
//!   lapsing, are conformance cases run in `src/redis/tests.rs`.)
//! - A child process claims a job and is killed with SIGKILL: once its
//!   lease lapses another owner claims the job with the next epoch, and the
//!   dead child's claim is refused.
//! - A private `redis-server` (AOF on, fsync always) is killed with SIGKILL
//!   or shut down and started again on the same port and directory: every
//!   job, claim, epoch, outcome, entity and the sequence counter are still
//!   there, and the same board object goes on working (it reconnects);
//!   while conductor threads run jobs through such a restart, no job is
//!   lost and every job ends consumed.
//! - An ignored benchmark measures claim + consume cycles per second.
//!
//! The shared server is `TASKFLOW_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`). When it (or the `redis-server` program, for
//! the restart tests) is missing, the tests print `skipping: ...` and pass,
//! unless `TASKFLOW_REQUIRE_SERVICES=1`. The children are this test binary
//! run again on the ignored test `child_process`.
#![cfg(feature = "redis")]

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use taskflow_jobboard::JobId;
use taskflow_jobboard::{
    Claim, Entity, Job, JobBoard, JobBoardError, JobState, NewJob, Outcome, RedisBoard,
};
use taskflow_persistence::LogBookId;
use uuid::Uuid;

mod common;
use common::{env, now_ms, options, skip};

const JOBS: usize = 1000;
const CHILDREN: usize = 4;

fn url() -> String {
    std::env::var("TASKFLOW_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A board on a fresh prefix of the shared server, deleting its keys when
/// dropped; `None` (having said why) when the server is unreachable.
struct TestBoard(RedisBoard);

impl std::ops::Deref for TestBoard {
    type Target = RedisBoard;
    fn deref(&self) -> &RedisBoard {
        &self.0
    }
}

impl Drop for TestBoard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("could not delete the keys of {}: {e}", self.0.key_prefix());
        }
    }
}

fn shared_board(lease: Duration) -> Option<TestBoard> {
    let url = url();
    let prefix = format!("taskflow-test:{}", Uuid::new_v4());
    match RedisBoard::connect(&url, &prefix, options(lease)) {
        Ok(board) => Some(TestBoard(board)),
        Err(e) => {
            skip(format!("redis at {url} unreachable: {e}"));
            None
        }
    }
}

/// The children's entry point (ignored in normal runs; does nothing when
/// run by hand).
#[test]
#[ignore = "entry point of the child processes of the Redis board tests"]
fn child_process() {
    let Ok(mode) = std::env::var("REDIS_CHILD") else {
        return;
    };
    let url = env("REDIS_URL");
    let prefix = env("REDIS_PREFIX");
    let owner = env("REDIS_OWNER");
    match mode.as_str() {
        "race" => {
            let board = RedisBoard::connect(&url, &prefix, options(Duration::from_secs(600)))
                .expect("connects");
            let mut ids: Vec<JobId> = board
                .iterjobs(false)
                .expect("lists")
                .into_iter()
                .map(|j| j.id)
                .collect();
            assert_eq!(ids.len(), JOBS);
            if std::env::var("REDIS_REVERSE").is_ok() {
                ids.reverse();
            }
            // Start together: all children are connected and listed by then.
            let start: u64 = env("REDIS_START_AT").parse().expect("a time");
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
        }
        "claim-and-hang" => {
            let board = RedisBoard::connect(&url, &prefix, options(Duration::from_millis(400)))
                .expect("connects");
            let id: Uuid = env("REDIS_JOB").parse().expect("a uuid");
            let claim = board.claim(JobId::from(id), &owner).expect("claims");
            println!("claim {}", serde_json::to_string(&claim).expect("encodes"));
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn child(mode: &str, prefix: &str, owner: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "child_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--quiet",
    ])
    .env("REDIS_CHILD", mode)
    .env("REDIS_URL", url())
    .env("REDIS_PREFIX", prefix)
    .env("REDIS_OWNER", owner)
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
    let start_at = now_ms() + 1500;
    let children: Vec<(String, Child)> = (0..CHILDREN)
        .map(|c| {
            let owner = format!("process-{c}");
            let mut cmd = child("race", board.key_prefix(), &owner);
            cmd.env("REDIS_START_AT", start_at.to_string());
            if c % 2 == 1 {
                cmd.env("REDIS_REVERSE", "1");
            }
            (owner, cmd.spawn().expect("child starts"))
        })
        .collect();
    let started = Instant::now();
    let mut won: HashMap<JobId, Vec<String>> = HashMap::new();
    for (owner, child) in children {
        let out = child.wait_with_output().expect("child runs");
        assert!(out.status.success(), "{owner} failed: {:?}", out.status);
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        for line in stdout.lines() {
            if let Some(id) = line.strip_prefix("won ") {
                won.entry(id.parse().expect("a uuid"))
                    .or_default()
                    .push(owner.clone());
            }
        }
    }
    let elapsed = started
        .elapsed()
        .saturating_sub(Duration::from_millis(1500));
    eprintln!(
        "{CHILDREN} processes raced for {JOBS} jobs in about {elapsed:?} ({} attempts)",
        JOBS * CHILDREN
    );
    assert_eq!(won.keys().copied().collect::<HashSet<_>>(), ids);
    let twice: Vec<_> = won.iter().filter(|(_, o)| o.len() != 1).collect();
    assert!(twice.is_empty(), "claimed more than once: {twice:?}");
    for (id, owners) in &won {
        assert_eq!(
            board.find_owner(*id).unwrap().as_ref(),
            Some(&owners[0]),
            "{id}"
        );
    }
    assert!(board.iterjobs(true).unwrap().is_empty());
}

/// A process claims a job and is killed; after its lease lapses another
/// owner claims the job (epoch 2) and the dead process's claim is refused.
#[test]
fn a_killed_owners_lease_lapses_and_its_claim_is_refused() {
    let Some(board) = shared_board(Duration::from_millis(400)) else {
        return;
    };
    let job = board.post(NewJob::new("j")).unwrap();
    let mut cmd = child("claim-and-hang", board.key_prefix(), "doomed");
    cmd.env("REDIS_JOB", job.id.to_string());
    let mut proc = cmd.spawn().expect("child starts");
    let mut line = String::new();
    {
        use std::io::BufRead as _;
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
    proc.wait().expect("reaped");
    assert_eq!(dead.epoch, 1);
    match board.claim(job.id, "survivor") {
        Err(JobBoardError::AlreadyClaimed { owner, .. }) => assert_eq!(owner, "doomed"),
        other => panic!("claimed while the lease ran: {other:?}"),
    }
    assert!(
        board.wait(Duration::from_secs(5)).unwrap(),
        "lease never lapsed"
    );
    let claim = board.claim(job.id, "survivor").unwrap();
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
}

/// A private `redis-server` with AOF fsynced on every write, in its own
/// directory; killed when dropped.
struct Server {
    port: u16,
    dir: PathBuf,
    proc: Option<Child>,
}

impl Server {
    /// Starts one on a free port; `None` (having said why) if the program
    /// is missing.
    fn start() -> Option<Server> {
        if let Err(e) = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
        {
            skip(format!("redis-server cannot run: {e}"));
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("taskflow-redis-restart-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = Server {
            port,
            dir,
            proc: None,
        };
        server.restart();
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), on the same port and directory, and
    /// waits until it answers.
    fn restart(&mut self) {
        assert!(self.proc.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log file");
        let proc = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
            ])
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("redis-server starts");
        self.proc = Some(proc);
        let client = redis::Client::open(self.url()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pong = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            match pong {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "redis-server on port {} did not come up: {e}; log: {}",
                    self.port,
                    std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    /// Kills the server with SIGKILL (no chance to flush anything more).
    fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill().expect("kills");
            proc.wait().expect("reaped");
        }
    }

    /// Stops the server with `SHUTDOWN` (it writes its AOF and exits).
    fn shutdown(&mut self) {
        if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
            // The server closes the connection instead of answering.
            let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
        }
        if let Some(mut proc) = self.proc.take() {
            let status = proc.wait().expect("exits");
            assert!(status.success(), "redis-server exited with {status}");
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
fn snapshot(
    job: &Job,
) -> (
    Uuid,
    JobState,
    Option<String>,
    u64,
    Option<u64>,
    Option<Outcome>,
    u64,
) {
    (
        Uuid::from(job.id),
        job.state,
        job.owner.clone(),
        (job.epoch).get(),
        job.lease_expires_at,
        job.outcome.clone(),
        job.sequence,
    )
}

/// Posts, claims, consumes, abandons, trashes on a private server, stops
/// it (SIGKILL, then SHUTDOWN), starts it again: everything is still
/// there, and the same board works on.
#[test]
fn a_restarted_server_loses_no_job_and_the_board_reconnects() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let board =
        RedisBoard::connect(&server.url(), "restart", options(Duration::from_secs(600))).unwrap();
    let jobs: Vec<Job> = (0..40)
        .map(|i| {
            let mut new = NewJob::new(format!("job-{i}"));
            new.priority = i % 3;
            new.details = json!({"i": i});
            new.logbook = Some(LogBookId::new());
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

    let read_all = |board: &RedisBoard| -> Vec<_> {
        jobs.iter()
            .map(|j| snapshot(&board.get(j.id).unwrap()))
            .collect()
    };
    let mut before = read_all(&board);
    let listed: Vec<JobId> = board
        .iterjobs(false)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    let open: Vec<JobId> = board.iterjobs(true).unwrap().iter().map(|j| j.id).collect();
    assert_eq!(listed.len(), 35);
    assert_eq!(open.len(), 20);

    for (round, stop) in ["SIGKILL", "SHUTDOWN"].into_iter().enumerate() {
        if stop == "SIGKILL" {
            server.kill();
        } else {
            server.shutdown();
        }
        // While it is down, calls fail with an error naming the board.
        let err = board.get(jobs[0].id).unwrap_err();
        assert!(
            matches!(err, JobBoardError::Backend { board: "redis", .. }),
            "{err}"
        );
        server.restart();

        // The same board object: its pooled connections are dead, the
        // next call reconnects.
        assert_eq!(read_all(&board), before, "after {stop}");
        let ids = |jobs: Vec<Job>| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
        assert_eq!(ids(board.iterjobs(false).unwrap()), listed, "after {stop}");
        assert_eq!(ids(board.iterjobs(true).unwrap()), open, "after {stop}");
        assert_eq!(board.entities().unwrap(), std::slice::from_ref(&entity));
        // Claims are still held: others are refused, owners may renew.
        match board.claim(jobs[10].id, "thief") {
            Err(JobBoardError::AlreadyClaimed { owner, .. }) => assert_eq!(owner, "owner-job-10"),
            other => panic!("after {stop}: {other:?}"),
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
            "the abandoned claim is still refused after {stop}"
        );
        // The sequence counter went on from where it was.
        let post = board.post(NewJob::new(format!("after-{round}"))).unwrap();
        assert!(
            post.sequence > jobs[39].sequence + round as u64,
            "after {stop}"
        );
        let claim = board.claim(post.id, "x").unwrap();
        board.consume(&claim).unwrap();
    }
    // The renewals kept the leases; the claims still consume.
    for claim in &claims[6..] {
        board.consume(claim).unwrap();
    }
    board.consume(&reclaimed).unwrap();
}

/// Two conductor threads run 200 jobs (claim, consume) while the server is
/// killed and restarted twice: no job is lost, every job ends consumed,
/// exactly once.
#[test]
fn jobs_survive_a_restart_during_a_run() {
    const N: usize = 200;
    let Some(mut server) = Server::start() else {
        return;
    };
    // Short leases: a claim whose reply was lost in the crash lapses, and
    // the job is claimed again.
    let board = RedisBoard::connect(&server.url(), "run", options(Duration::from_secs(1))).unwrap();
    let ids: HashSet<JobId> = (0..N)
        .map(|i| board.post(NewJob::new(format!("job-{i}"))).unwrap().id)
        .collect();
    let consumed = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let mut by_worker: Vec<Vec<JobId>> = std::thread::scope(|s| {
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
                                std::thread::sleep(Duration::from_millis(20));
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
                                    std::thread::sleep(Duration::from_millis(20));
                                    break;
                                }
                                Err(_) => continue,
                            };
                            // Keep trying to consume with the claim until it
                            // goes through or is refused. A refusal after a
                            // failed try is either that try having gone
                            // through (the job is complete at our epoch) or
                            // our lease having lapsed and another worker
                            // having taken the job (a higher epoch).
                            let mut failed = false;
                            loop {
                                match board.consume(&claim) {
                                    Ok(()) => {
                                        consumed.fetch_add(1, Ordering::SeqCst);
                                        mine.push(job.id);
                                        break;
                                    }
                                    Err(JobBoardError::Backend { .. }) => {
                                        errors.fetch_add(1, Ordering::SeqCst);
                                        failed = true;
                                        std::thread::sleep(Duration::from_millis(20));
                                    }
                                    Err(JobBoardError::NotOwner { .. }) if failed => {
                                        let now = board.get(job.id).unwrap();
                                        if now.state == JobState::Complete
                                            && now.epoch == claim.epoch
                                        {
                                            consumed.fetch_add(1, Ordering::SeqCst);
                                            mine.push(job.id);
                                        }
                                        break;
                                    }
                                    Err(e) => panic!("consuming {}: {e}", job.id),
                                }
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
            // Down longer than the board retries a call, and than a lease.
            std::thread::sleep(Duration::from_millis(1500));
            server.restart();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumed.load(Ordering::SeqCst) < N && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        done.store(true, Ordering::SeqCst);
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let all: Vec<JobId> = by_worker.concat();
    by_worker.clear();
    eprintln!(
        "{} jobs consumed through 2 restarts; {} calls failed while the server was down",
        all.len(),
        errors.load(Ordering::SeqCst)
    );
    assert!(
        errors.load(Ordering::SeqCst) > 0,
        "the restarts went unnoticed"
    );
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

/// Claim + consume cycles per second, with 1 and 4 threads (each thread on
/// its own jobs). Run with
/// `cargo test --release --features redis --test redis -- --ignored --nocapture throughput`.
#[test]
#[ignore = "benchmark: prints claim + consume cycles per second"]
fn throughput() {
    let Some(board) = shared_board(Duration::from_secs(600)) else {
        return;
    };
    let per_thread = 5000;
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
    let board =
        RedisBoard::connect(&server.url(), "away", options(Duration::from_secs(60))).unwrap();
    let heard = Arc::new(CapturingListener::new());
    let _subscription = board.subscribe(heard.clone()).unwrap();
    let first = board.post(NewJob::new("before")).unwrap();
    assert!(heard.wait_for(Duration::from_secs(5), |e| e
        .contains(&BoardEvent::Posted(first.id))));
    assert!(board.connected());

    server.kill();
    let gone = Instant::now();
    assert!(
        heard.wait_for(Duration::from_secs(10), |e| e
            .iter()
            .any(|e| matches!(e, BoardEvent::Disconnected { .. }))),
        "no Disconnected event: {:?}",
        heard.events()
    );
    // A call fails (naming the server) rather than hanging.
    assert!(board.post(NewJob::new("while away")).is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while board.connected() {
        assert!(
            Instant::now() < deadline,
            "connected() still true with the server down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "the board saw its server go away after {:?}",
        gone.elapsed()
    );

    server.restart();
    let back = Instant::now();
    assert!(
        heard.wait_for(Duration::from_secs(15), |e| e
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
