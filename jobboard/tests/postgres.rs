//! The PostgreSQL board against real servers, across processes.
//!
//! - Four child processes race to claim the same 1,000 jobs on the shared
//!   server (each its own pool, as on four hosts): every job is won exactly
//!   once. (Boards racing in one process, connections terminated mid-run
//!   and the conformance cases are in `src/postgres/tests.rs`.)
//! - A private PostgreSQL (`initdb` into a temporary directory, started on
//!   a free port) is stopped the way a crash stops it (`pg_ctl stop -m
//!   immediate`: no checkpoint, WAL replayed at the next start) twice while
//!   two threads claim and consume 200 jobs through one board: no job is
//!   lost, every job ends consumed, and the same board object goes on
//!   working (it reconnects).
//!
//! The shared server is `TASKFLOW_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the private one needs the
//! server's programs (`TASKFLOW_TEST_POSTGRES_BIN`, default the newest
//! `/usr/lib/postgresql/*/bin`) and, run as root, the `postgres` user. When
//! either is missing the tests print `skipping: ...` and pass, unless
//! `TASKFLOW_REQUIRE_SERVICES=1`. The children are this test binary run
//! again on the ignored test `child_process`.
#![cfg(feature = "postgres")]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use taskflow_jobboard::{JobBoard, JobBoardError, JobId, JobState, NewJob, Outcome, PostgresBoard};
use uuid::Uuid;

mod common;
use common::{env, options, skip};

const JOBS: usize = 1000;
const CHILDREN: usize = 4;

fn url() -> String {
    std::env::var("TASKFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The children's entry point (ignored in normal runs).
#[test]
#[ignore = "entry point of the child processes of the PostgreSQL board tests"]
fn child_process() {
    let schema = env("BOARD_SCHEMA");
    let owner = env("BOARD_OWNER");
    let out = PathBuf::from(env("BOARD_OUT"));
    let board =
        PostgresBoard::connect_in_schema(&url(), &schema, options(Duration::from_secs(600)))
            .expect("board connects");
    let mut ids: Vec<JobId> = board
        .iterjobs(false)
        .expect("lists")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids.len(), JOBS);
    if std::env::var("BOARD_REVERSE").is_ok() {
        ids.reverse();
    }
    let go = PathBuf::from(env("BOARD_GO"));
    std::fs::write(out.with_extension("ready"), "").expect("ready written");
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut won = Vec::new();
    for id in &ids {
        match board.claim(*id, &owner) {
            Ok(claim) => {
                assert_eq!(claim.epoch.get(), 1, "job {id} claimed twice");
                won.push(id.to_string());
            }
            Err(JobBoardError::AlreadyClaimed { .. }) => {}
            Err(e) => panic!("{owner} claiming {id}: {e}"),
        }
    }
    std::fs::write(&out, won.join("\n")).expect("wins written");
}

#[test]
fn four_processes_race_for_1000_jobs_and_each_is_won_once() {
    let schema = format!("taskflow_race_{}", Uuid::new_v4().simple());
    let board = match PostgresBoard::connect_in_schema(
        &url(),
        &schema,
        options(Duration::from_secs(600)),
    ) {
        Ok(board) => board,
        Err(e) => return skip(format!("postgres at {} unreachable: {e}", url())),
    };
    /// Drops the test's board when the test ends.
    struct Destroyed(PostgresBoard);
    impl Drop for Destroyed {
        fn drop(&mut self) {
            let _ = self.0.destroy();
        }
    }
    let board = Destroyed(board);
    for i in 0..JOBS {
        board
            .0
            .post(NewJob::new(format!("race-{i}")))
            .expect("posted");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    let mut children: Vec<_> = (0..CHILDREN)
        .map(|n| {
            let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
            cmd.args(["--exact", "child_process", "--ignored", "--test-threads=1"])
                .env("BOARD_SCHEMA", &schema)
                .env("BOARD_OWNER", format!("racer-{n}"))
                .env("BOARD_OUT", dir.path().join(format!("won-{n}.txt")))
                .env("BOARD_GO", &go)
                .stdout(Stdio::null());
            if n % 2 == 1 {
                cmd.env("BOARD_REVERSE", "1");
            }
            cmd.spawn().expect("child starts")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..CHILDREN {
        while !dir.path().join(format!("won-{n}.ready")).exists() {
            assert!(Instant::now() < deadline, "child {n} never got ready");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let started = Instant::now();
    std::fs::write(&go, "").expect("go written");
    for child in &mut children {
        assert!(
            child.wait().expect("child ends").success(),
            "a racer failed"
        );
    }
    let elapsed = started.elapsed();
    let mut winners: HashMap<String, usize> = HashMap::new();
    let mut per_child = Vec::new();
    for n in 0..CHILDREN {
        let won = std::fs::read_to_string(dir.path().join(format!("won-{n}.txt"))).expect("wins");
        let won: Vec<&str> = won.lines().collect();
        per_child.push(won.len());
        for id in won {
            *winners.entry(id.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(winners.len(), JOBS, "every job was won");
    assert!(winners.values().all(|&n| n == 1), "no job was won twice");
    eprintln!(
        "4 processes, 1,000 jobs: won {per_child:?} in {elapsed:?} ({:.0} claim attempts/s)",
        (JOBS * CHILDREN) as f64 / elapsed.as_secs_f64()
    );
}

/// A private PostgreSQL server in a temporary directory.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// As root, the server's programs run as this user.
    user: Option<&'static str>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Initialises and starts one, or says why not and returns `None`.
    fn start() -> Option<Server> {
        let bin = match std::env::var("TASKFLOW_TEST_POSTGRES_BIN") {
            Ok(bin) => PathBuf::from(bin),
            Err(_) => {
                let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path().join("bin"))
                    .filter(|bin| bin.join("initdb").exists())
                    .collect();
                found.sort();
                match found.pop() {
                    Some(bin) => bin,
                    None => {
                        skip("no PostgreSQL server programs (initdb) found".into());
                        return None;
                    }
                }
            }
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let user = root.then_some("postgres");
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(user) = user {
            let chowned = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !chowned {
                skip(format!(
                    "cannot give {} to user {user}",
                    dir.path().display()
                ));
                return None;
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = Server {
            bin,
            data: dir.path().join("data"),
            port,
            user,
            _dir: dir,
        };
        let data = server.data.display().to_string();
        let init = server.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        if !init {
            skip(format!("initdb into {data} failed"));
            return None;
        }
        server.up();
        Some(server)
    }

    /// Runs one of the server's programs (as the server's user); whether
    /// it succeeded.
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let program = self.bin.join(program);
        let mut cmd = match self.user {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn up(&self) {
        let data = self.data.display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {data} -c fsync=on",
            self.port
        );
        let log = self.data.join("server.log").display().to_string();
        assert!(
            self.run(
                "pg_ctl",
                &["-D", &data, "-o", &options, "-l", &log, "-w", "start"]
            ),
            "the private server starts"
        );
    }

    /// Stops it as a crash does: no checkpoint, the WAL replayed at start.
    fn crash(&self) {
        let data = self.data.display().to_string();
        assert!(
            self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]),
            "the private server stops"
        );
    }

    /// When the running server started (`pg_postmaster_start_time`).
    fn started_at(&self) -> String {
        let mut client =
            postgres::Client::connect(&self.url(), postgres::NoTls).expect("the server answers");
        client
            .query_one("SELECT pg_postmaster_start_time()::text", &[])
            .expect("start time")
            .get(0)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// Two threads claim and consume 200 jobs through one board while the
/// private server is crashed and started again twice: no job is lost,
/// every job ends consumed, none is consumed twice.
#[test]
fn jobs_survive_a_server_crash_during_a_run() {
    const N: usize = 200;
    let Some(server) = Server::start() else {
        return;
    };
    // Short leases: a claim whose reply was lost in the crash lapses, and
    // the job is claimed again.
    let board = PostgresBoard::connect(&server.url(), options(Duration::from_secs(1)))
        .expect("board on the private server");
    let posted: Vec<JobId> = (0..N)
        .map(|i| {
            board
                .post(NewJob::new(format!("job-{i}")))
                .expect("posted")
                .id
        })
        .collect();
    let consumed: Mutex<HashMap<JobId, usize>> = Mutex::new(HashMap::new());
    let failures = Mutex::new(0usize);
    let done = AtomicBool::new(false);
    let mut starts = std::collections::BTreeSet::from([server.started_at()]);
    std::thread::scope(|s| {
        for worker in 0..2 {
            let (board, consumed, failures, done) = (&board, &consumed, &failures, &done);
            s.spawn(move || {
                let owner = format!("worker-{worker}");
                while !done.load(Ordering::Acquire) {
                    let open = match board.iterjobs(true) {
                        Ok(open) => open,
                        Err(_) => {
                            *failures.lock().expect("failures") += 1;
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    };
                    if open.is_empty() {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    for job in open {
                        let Ok(claim) = board.claim(job.id, &owner) else {
                            continue;
                        };
                        // Some work between the claim and the consume.
                        std::thread::sleep(Duration::from_millis(2));
                        if board.consume(&claim).is_ok() {
                            *consumed
                                .lock()
                                .expect("consumed")
                                .entry(job.id)
                                .or_default() += 1;
                        }
                    }
                }
            });
        }
        for _ in 0..2 {
            while consumed.lock().expect("consumed").len() < N / 4 {
                std::thread::sleep(Duration::from_millis(5));
            }
            server.crash();
            std::thread::sleep(Duration::from_millis(300));
            server.up();
            starts.insert(server.started_at());
            // Go on until a quarter more has been consumed.
            let at = consumed.lock().expect("consumed").len();
            let deadline = Instant::now() + Duration::from_secs(60);
            while consumed.lock().expect("consumed").len() < (at + N / 4).min(N) {
                assert!(Instant::now() < deadline, "no progress after the restart");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let complete = posted
                .iter()
                .filter(|id| board.get(**id).is_ok_and(|j| j.state == JobState::Complete))
                .count();
            if complete == N {
                break;
            }
            assert!(Instant::now() < deadline, "{complete} of {N} jobs complete");
            std::thread::sleep(Duration::from_millis(20));
        }
        done.store(true, Ordering::Release);
    });
    for id in &posted {
        let job = board.get(*id).expect("no job lost");
        assert_eq!(
            (job.state, job.outcome),
            (JobState::Complete, Some(Outcome::Consumed))
        );
    }
    let consumed = consumed.into_inner().expect("consumed");
    assert!(consumed.values().all(|&n| n == 1), "no job consumed twice");
    let failures = failures.into_inner().expect("failures");
    assert_eq!(
        starts.len(),
        3,
        "the server was started three times: {starts:?}"
    );
    eprintln!(
        "{} of {N} consumes acknowledged, {failures} listings failed while the server was down",
        consumed.len()
    );
}
