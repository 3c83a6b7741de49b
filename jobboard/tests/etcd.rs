//! The etcd board against real servers.
//!
//! - Four child processes race to claim the same 1,000 jobs: every job is
//!   won exactly once. (Eight threads racing in one process, and leases
//!   lapsing, are conformance cases run in `src/etcd/tests.rs`.)
//! - A child process claims a job with the default 1 s lease (a 2 s etcd
//!   lease on a default server), renews it as a conductor does, and is
//!   killed with SIGKILL: another owner takes the job over with the next
//!   epoch once the lease lapses, and the dead child's claim is refused.
//!   The test measures how long after the kill the job was taken over, and
//!   how long until etcd itself revoked the dead owner's lease (on its own
//!   clock).
//! - A private `etcd` (free ports, a temporary data directory) is killed
//!   with SIGKILL and started again while calls are in flight: every job,
//!   claim, epoch, outcome and entity is still there, the same board object
//!   goes on (its calls ride the restart out, its watch reconnects, and
//!   listeners hear `Disconnected` then `Reconnected`); while worker threads
//!   run jobs through two such restarts, no job is lost and every job ends
//!   consumed exactly once.
//! - An ignored benchmark measures claim + consume cycles per second.
//!
//! The shared server is `TASKFLOW_TEST_ETCD_URL` (default
//! `http://127.0.0.1:2379`; `bash .ci/start-etcd-zookeeper` starts one).
//! When it (or the `etcd` program, for the restart tests) is missing, the
//! tests print `skipping: ...` and pass, unless `TASKFLOW_REQUIRE_SERVICES=1`.
//! The children are this test binary run again on the ignored test
//! `child_process`.
#![cfg(feature = "etcd")]

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use taskflow_jobboard::{
    BoardEvent, BoardOptions, CapturingListener, Claim, Entity, EtcdBoard, Job, JobBoard,
    JobBoardError, JobId, JobState, ManualClock, NewJob, Outcome,
};
use uuid::Uuid;

mod common;
use common::{env, now_ms, options, skip};

const JOBS: usize = 1000;
const CHILDREN: usize = 4;

fn url() -> String {
    std::env::var("TASKFLOW_TEST_ETCD_URL").unwrap_or_else(|_| "http://127.0.0.1:2379".into())
}

/// A board on a fresh prefix of the shared server, deleting its keys when
/// dropped.
struct TestBoard(EtcdBoard);

impl std::ops::Deref for TestBoard {
    type Target = EtcdBoard;
    fn deref(&self) -> &EtcdBoard {
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
    let prefix = format!("taskflow-test/{}", Uuid::new_v4());
    match EtcdBoard::connect(&url, &prefix, options(lease)) {
        Ok(board) => Some(TestBoard(board)),
        Err(e) => {
            skip(format!("etcd at {url} unreachable: {e}"));
            None
        }
    }
}

/// The children's entry point (ignored in normal runs; does nothing when
/// run by hand).
#[test]
#[ignore = "entry point of the child processes of the etcd board tests"]
fn child_process() {
    let Ok(mode) = std::env::var("ETCD_CHILD") else {
        return;
    };
    let url = env("ETCD_URL");
    let prefix = env("ETCD_PREFIX");
    let owner = env("ETCD_OWNER");
    match mode.as_str() {
        "race" => {
            let board = EtcdBoard::connect(&url, &prefix, options(Duration::from_secs(600)))
                .expect("connects");
            let mut ids: Vec<JobId> = board
                .iterjobs(false)
                .expect("lists")
                .into_iter()
                .map(|j| j.id)
                .collect();
            assert_eq!(ids.len(), JOBS);
            if std::env::var("ETCD_REVERSE").is_ok() {
                ids.reverse();
            }
            // Start together: all children are connected and listed by then.
            let start: u64 = env("ETCD_START_AT").parse().expect("a time");
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
        "claim-and-renew" => {
            // The default lease, renewed as a conductor does (every 250 ms).
            let board =
                EtcdBoard::connect(&url, &prefix, BoardOptions::default()).expect("connects");
            let id: Uuid = env("ETCD_JOB").parse().expect("a uuid");
            let mut claim = board.claim(JobId::from(id), &owner).expect("claims");
            println!("claim {}", serde_json::to_string(&claim).expect("encodes"));
            loop {
                std::thread::sleep(Duration::from_millis(250));
                claim = board.renew(&claim).expect("renews");
                println!("renewed {}", claim.expires_at);
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn child(mode: &str, url: &str, prefix: &str, owner: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "child_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--quiet",
    ])
    .env("ETCD_CHILD", mode)
    .env("ETCD_URL", url)
    .env("ETCD_PREFIX", prefix)
    .env("ETCD_OWNER", owner)
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
    let start_at = now_ms() + 2000;
    let children: Vec<(String, Child)> = (0..CHILDREN)
        .map(|c| {
            let owner = format!("process-{c}");
            let mut cmd = child("race", &url(), board.key_prefix(), &owner);
            cmd.env("ETCD_START_AT", start_at.to_string());
            if c % 2 == 1 {
                cmd.env("ETCD_REVERSE", "1");
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
        .saturating_sub(Duration::from_millis(2000));
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

/// A process claims a job with the default lease, renews it, and is
/// SIGKILLed: the job is taken over (epoch 2) within the lease, measured
/// from the kill, and the dead process's claim is refused. A second board
/// whose clock stands still sees the claim end only when etcd revokes the
/// dead owner's lease: that time is measured too.
#[test]
fn a_killed_owners_lease_lapses_and_another_takes_over() {
    let Some(board) = shared_board(BoardOptions::default().lease) else {
        return;
    };
    // Its clock never passes a lease time: only the marker's going (etcd's
    // revoke) ends a claim for it.
    let frozen = EtcdBoard::connect(
        &url(),
        board.key_prefix(),
        BoardOptions {
            clock: ManualClock::starting_now().clock(),
            ..BoardOptions::default()
        },
    )
    .unwrap();
    let ttl = board.lease_ttl();
    let job = board.post(NewJob::new("j")).unwrap();
    let mut cmd = child("claim-and-renew", &url(), board.key_prefix(), "doomed");
    cmd.env("ETCD_JOB", job.id.to_string());
    let mut proc = cmd.spawn().expect("child starts");
    let mut line = String::new();
    let dead: Claim;
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
        dead = serde_json::from_str(line.trim_start_matches("claim ").trim()).unwrap();
        // Let it renew a few times, then kill it right after a renewal.
        let mut renewals = 0;
        while renewals < 4 {
            line.clear();
            if reader.read_line(&mut line).expect("reads") == 0 {
                panic!("child exited while renewing");
            }
            if line.starts_with("renewed ") {
                renewals += 1;
            }
        }
    }
    proc.kill().expect("kills");
    let killed = Instant::now();
    proc.wait().expect("reaped");
    assert_eq!(dead.epoch, 1);
    match board.claim(job.id, "survivor") {
        Err(JobBoardError::AlreadyClaimed { owner, .. }) => assert_eq!(owner, "doomed"),
        other => panic!("claimed while the lease ran: {other:?}"),
    }
    assert!(
        board.wait(Duration::from_secs(10)).unwrap(),
        "lease never lapsed"
    );
    let claimed_at = now_ms();
    let claim = board.claim(job.id, "survivor").unwrap();
    let taken_over = killed.elapsed();
    assert_eq!(claim.epoch, 2);
    // The TTL etcd granted (the server's minimum, if above the one asked).
    let granted = Duration::from_secs((claim.expires_at.saturating_sub(claimed_at) + 500) / 1000);
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
    eprintln!(
        "board lease {:?}: etcd lease of {ttl:?} asked, {granted:?} granted; \
         taken over {taken_over:?} after the SIGKILL (renewals every 250 ms)",
        BoardOptions::default().lease
    );
    assert!(
        taken_over <= granted + Duration::from_millis(500),
        "taken over {taken_over:?} after the kill, lease {granted:?}"
    );

    // etcd's own clock: a second owner killed the same way; the frozen
    // board sees its claim end when etcd revokes the lease.
    let second = board.post(NewJob::new("k")).unwrap();
    let mut cmd = child("claim-and-renew", &url(), board.key_prefix(), "doomed-2");
    cmd.env("ETCD_JOB", second.id.to_string());
    let mut proc = cmd.spawn().expect("child starts");
    {
        use std::io::BufRead as _;
        let stdout = proc.stdout.take().expect("piped");
        let mut reader = std::io::BufReader::new(stdout);
        let mut renewals = 0;
        while renewals < 2 {
            line.clear();
            if reader.read_line(&mut line).expect("reads") == 0 {
                panic!("child exited while renewing");
            }
            if line.starts_with("renewed ") {
                renewals += 1;
            }
        }
    }
    proc.kill().expect("kills");
    let killed = Instant::now();
    proc.wait().expect("reaped");
    while frozen.find_owner(second.id).unwrap().is_some() {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "etcd never revoked the lease"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let revoked = killed.elapsed();
    eprintln!("etcd revoked the dead owner's {granted:?} lease {revoked:?} after the SIGKILL");
    assert!(
        revoked <= granted + Duration::from_millis(1500),
        "{revoked:?}"
    );
}

/// A private `etcd` on free ports with its data in a temporary directory;
/// killed when dropped.
struct Server {
    client_port: u16,
    peer_port: u16,
    dir: PathBuf,
    proc: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    /// Starts one; `None` (having said why) if the program is missing.
    fn start() -> Option<Server> {
        if let Err(e) = Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
        {
            skip(format!("etcd cannot run: {e}"));
            return None;
        }
        let dir = std::env::temp_dir().join(format!("taskflow-etcd-restart-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = Server {
            client_port: free_port(),
            peer_port: free_port(),
            dir,
            proc: None,
        };
        server.restart();
        Some(server)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts the server (again) on the same ports and data, and waits
    /// until it answers.
    fn restart(&mut self) {
        assert!(self.proc.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("log file");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let proc = Command::new("etcd")
            .args(["--name", "restart", "--data-dir"])
            .arg(self.dir.join("data"))
            .arg("--listen-client-urls")
            .arg(self.url())
            .arg("--advertise-client-urls")
            .arg(self.url())
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("restart={peer}"))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.proc = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match EtcdBoard::connect(&self.url(), "probe", BoardOptions::default()) {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "etcd on port {} did not come up: {e}; log: {}",
                    self.client_port,
                    std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
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
/// it with SIGKILL and starts it again while a call is in flight (twice):
/// everything is still there, the call went through, and the same board
/// works on; its listener heard the connection go and come back.
#[test]
fn a_restarted_server_loses_no_job_and_the_board_reconnects() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let board =
        EtcdBoard::connect(&server.url(), "restart", options(Duration::from_secs(600))).unwrap();
    let listener = Arc::new(CapturingListener::new());
    let _subscription = board.subscribe(listener.clone()).unwrap();
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

    let read_all = |board: &EtcdBoard| -> Vec<_> {
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

    for round in 0..2 {
        server.kill();
        let down_for = Duration::from_millis(1500);
        let (posted, restarted) = std::thread::scope(|s| {
            let restarter = s.spawn(|| {
                std::thread::sleep(down_for);
                server.restart();
                Instant::now()
            });
            // The board notices (its watch breaks) without a call.
            let noticed = Instant::now();
            while board.connected() {
                assert!(
                    noticed.elapsed() < Duration::from_secs(1),
                    "connected() still true with the server down"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            // Sent while the server is down: it rides the restart out.
            let start = Instant::now();
            let posted = board.post(NewJob::new(format!("during-{round}"))).unwrap();
            assert!(start.elapsed() >= down_for, "posted with the server down");
            (posted, restarter.join().unwrap())
        });
        assert!(restarted.elapsed() < Duration::from_secs(20));
        assert!(
            listener.wait_for(Duration::from_secs(10), |events| {
                let disconnects = events
                    .iter()
                    .filter(|e| matches!(e, BoardEvent::Disconnected { .. }))
                    .count();
                let reconnects = events
                    .iter()
                    .filter(|e| matches!(e, BoardEvent::Reconnected))
                    .count();
                disconnects > round && reconnects > round
            }),
            "round {round}: heard {:?}",
            listener.events()
        );
        assert!(
            listener.wait_for(Duration::from_secs(10), |events| events
                .contains(&BoardEvent::Posted(posted.id))),
            "the watch resumed and told the post made across the restart"
        );
        assert!(board.connected());

        assert_eq!(read_all(&board), before, "after restart {round}");
        assert_eq!(ids(board.iterjobs(false).unwrap()).len(), listed.len() + 1);
        let mut still_open = ids(board.iterjobs(true).unwrap());
        still_open.retain(|id| *id != posted.id);
        assert_eq!(still_open, open, "after restart {round}");
        assert_eq!(board.entities().unwrap(), std::slice::from_ref(&entity));
        // Claims are still held (etcd keeps leases across a restart):
        // others are refused, owners may renew.
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
        // Posting order goes on from where it was.
        assert!(posted.sequence > jobs[39].sequence, "after restart {round}");
        let claim = board.claim(posted.id, "x").unwrap();
        board.consume(&claim).unwrap();
        // A wait wakes for a post made after the restart.
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                board.post(NewJob::new("late")).unwrap()
            });
            let start = Instant::now();
            assert!(
                board.wait(Duration::from_secs(10)).unwrap(),
                "wait did not wake after restart {round}"
            );
            assert!(start.elapsed() < Duration::from_secs(5));
        });
        for job in board.iterjobs(true).unwrap() {
            if job.name == "late" {
                let claim = board.claim(job.id, "x").unwrap();
                board.consume(&claim).unwrap();
            }
        }
    }
    for claim in &claims[6..] {
        board.consume(claim).unwrap();
    }
    board.consume(&reclaimed).unwrap();
}

/// Two worker threads run 200 jobs (claim, consume) while the server is
/// killed and restarted twice: no job is lost, every job ends consumed,
/// exactly once.
#[test]
fn jobs_survive_a_restart_during_a_run() {
    const N: usize = 200;
    let Some(mut server) = Server::start() else {
        return;
    };
    // Leases longer than a restart: a claim made just before a kill is
    // still its owner's when the owner's consume gets through.
    let board = EtcdBoard::connect(&server.url(), "run", options(Duration::from_secs(10))).unwrap();
    let listener = Arc::new(CapturingListener::new());
    let _subscription = board.subscribe(listener.clone()).unwrap();
    let ids: HashSet<JobId> = (0..N)
        .map(|i| board.post(NewJob::new(format!("job-{i}"))).unwrap().id)
        .collect();
    let consumed = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let by_worker: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (board, consumed, done) = (&board, &consumed, &done);
                s.spawn(move || {
                    let owner = format!("worker-{w}");
                    let mut mine = Vec::new();
                    while !done.load(Ordering::SeqCst) {
                        let open = board.iterjobs(true).expect("lists (riding restarts out)");
                        if open.is_empty() {
                            let _ = board.wait(Duration::from_millis(200));
                            continue;
                        }
                        for job in open {
                            let claim = match board.claim(job.id, &owner) {
                                Ok(claim) => claim,
                                Err(JobBoardError::AlreadyClaimed { .. }) => continue,
                                Err(JobBoardError::Complete(_)) => continue,
                                Err(e) => panic!("claiming {}: {e}", job.id),
                            };
                            board
                                .consume(&claim)
                                .unwrap_or_else(|e| panic!("consuming {}: {e}", job.id));
                            consumed.fetch_add(1, Ordering::SeqCst);
                            mine.push(job.id);
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumed.load(Ordering::SeqCst) < N && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        done.store(true, Ordering::SeqCst);
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let all: Vec<JobId> = by_worker.concat();
    let disconnects = listener
        .events()
        .iter()
        .filter(|e| matches!(e, BoardEvent::Disconnected { .. }))
        .count();
    eprintln!(
        "{} jobs consumed through 2 restarts; the board's watch was cut off {disconnects} times",
        all.len()
    );
    assert!(disconnects >= 2, "the restarts went unnoticed");
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
/// its own jobs), on the shared server. Run with
/// `cargo test --release -p taskflow-jobboard --features etcd --test etcd -- --ignored --nocapture throughput`.
#[test]
#[ignore = "benchmark: prints claim + consume cycles per second"]
fn throughput() {
    let Some(board) = shared_board(Duration::from_secs(600)) else {
        return;
    };
    let per_thread = 1000;
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
