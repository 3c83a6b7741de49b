//! Processes sharing one SQLite board file.
//!
//! - Four child processes race to claim the same 1,000 jobs; each writes
//!   the ids it won to its own file, and the parent checks that every job
//!   was won exactly once (and prints the claims per second it saw).
//! - A child claims a job and is killed with SIGKILL; its lease lapses,
//!   the parent claims the job with the next epoch, and the dead child's
//!   claim is refused.
//!
//! - Children posting flows on a file that holds both the board and the
//!   records are SIGKILLed mid-post; every job on the board has its
//!   records, and every logbook a job.
//!
//! The children are this test binary run again on the ignored test
//! `child_process`, told what to do through environment variables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use taskflow_jobboard::JobId;
use taskflow_jobboard::{
    post_flow, Claim, FlowSource, JobBoard, JobBoardError, NewJob, PostFlow, SqliteBoard,
};
use taskflow_persistence::{Backend, Durability, SqliteBackend};

mod common;
use common::{env, now_ms, options};

const JOBS: usize = 1000;
const CHILDREN: usize = 4;

/// Opens the board at `db`, with `Durability::Normal` when
/// `BOARD_DURABILITY=normal` (to compare claim rates; the default is full).
fn open(db: &Path, lease: Duration) -> SqliteBoard {
    let durability = match std::env::var("BOARD_DURABILITY").as_deref() {
        Ok("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    SqliteBoard::open_with(db, options(lease), durability).expect("board opens")
}

/// The children's entry point (ignored in normal runs).
#[test]
#[ignore = "entry point of the child processes of the SQLite board tests"]
fn child_process() {
    let mode = env("BOARD_CHILD");
    let db = PathBuf::from(env("BOARD_DB"));
    let out = PathBuf::from(env("BOARD_OUT"));
    let owner = env("BOARD_OWNER");
    match mode.as_str() {
        "race" => {
            let board = open(&db, Duration::from_secs(600));
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
            // Start together: wait for the parent's go file.
            let go = PathBuf::from(env("BOARD_GO"));
            std::fs::write(out.with_extension("ready"), "").expect("ready written");
            while !go.exists() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let start = now_ms();
            let mut won = Vec::new();
            for id in &ids {
                match board.claim(*id, &owner) {
                    Ok(claim) => {
                        assert_eq!(claim.epoch, 1);
                        won.push(id.to_string());
                    }
                    Err(JobBoardError::AlreadyClaimed { .. }) => {}
                    Err(e) => panic!("{owner} claiming {id}: {e}"),
                }
            }
            let end = now_ms();
            std::fs::write(&out, won.join("\n")).expect("wins written");
            std::fs::write(
                out.with_extension("time"),
                format!("{start} {end} {}", ids.len()),
            )
            .expect("times written");
        }
        "claim_and_hang" => {
            let board = open(&db, Duration::from_millis(400));
            let job = board.iterjobs(true).expect("lists")[0].id;
            let claim = board.claim(job, &owner).expect("claims");
            std::fs::write(&out, serde_json::to_string(&claim).expect("encodes"))
                .expect("claim written");
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        "post_forever" => {
            // Board and records on one file: each post is one transaction.
            let board = open(&db, Duration::from_secs(600));
            let records = SqliteBackend::open(&db).expect("records open");
            let args = serde_json::Value::Null;
            for n in 0.. {
                post_flow(
                    &board,
                    &records,
                    PostFlow::new(
                        format!("{owner}-{n}"),
                        FlowSource::Factory {
                            name: "f",
                            args: &args,
                        },
                    ),
                )
                .expect("posts");
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

fn child(mode: &str, db: &Path, out: &Path, owner: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("BOARD_CHILD", mode)
    .env("BOARD_DB", db)
    .env("BOARD_OUT", out)
    .env("BOARD_OWNER", owner)
    .stdout(Stdio::null());
    cmd
}

fn wait_for(path: &Path, children: &mut [Child]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        for c in children.iter_mut() {
            if let Some(status) = c.try_wait().expect("child status") {
                panic!("a child ended early: {status}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn four_processes_race_for_1000_jobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("jobs.db");
    let board = open(&db, Duration::from_secs(600));
    let posted: Vec<JobId> = (0..JOBS)
        .map(|i| board.post(NewJob::new(format!("j{i}"))).expect("posts").id)
        .collect();
    let go = dir.path().join("go");
    let outs: Vec<PathBuf> = (0..CHILDREN)
        .map(|c| dir.path().join(format!("child{c}.wins")))
        .collect();
    let mut children: Vec<Child> = outs
        .iter()
        .enumerate()
        .map(|(c, out)| {
            let mut cmd = child("race", &db, out, &format!("process-{c}"));
            cmd.env("BOARD_GO", &go);
            if c % 2 == 1 {
                cmd.env("BOARD_REVERSE", "1");
            }
            cmd.spawn().expect("child starts")
        })
        .collect();
    for out in &outs {
        wait_for(&out.with_extension("ready"), &mut children);
    }
    std::fs::write(&go, "").expect("go written");
    for mut c in children {
        let status = c.wait().expect("child reaped");
        assert!(status.success(), "a child failed: {status}");
    }

    let mut wins: HashMap<JobId, Vec<usize>> = HashMap::new();
    let (mut first, mut last) = (u64::MAX, 0);
    for (c, out) in outs.iter().enumerate() {
        let text = std::fs::read_to_string(out).expect("wins file");
        for line in text.lines().filter(|l| !l.is_empty()) {
            wins.entry(line.parse().expect("a uuid"))
                .or_default()
                .push(c);
        }
        let times = std::fs::read_to_string(out.with_extension("time")).expect("times");
        let t: Vec<u64> = times
            .split(' ')
            .map(|n| n.parse().expect("a number"))
            .collect();
        first = first.min(t[0]);
        last = last.max(t[1]);
    }
    for id in &posted {
        let winners = wins.get(id).map_or(&[][..], Vec::as_slice);
        assert_eq!(
            winners.len(),
            1,
            "job {id} was won by processes {winners:?}"
        );
    }
    assert_eq!(wins.len(), JOBS, "wins of jobs that were never posted");
    let per_child: Vec<usize> = (0..CHILDREN)
        .map(|c| wins.values().filter(|w| w[0] == c).count())
        .collect();
    let secs = (last.saturating_sub(first)).max(1) as f64 / 1000.0;
    eprintln!(
        "{CHILDREN} processes claimed {JOBS} jobs in {:.0} ms: {:.0} claims/s, \
         {:.0} claim attempts/s (wins per process {per_child:?}; durability {})",
        secs * 1000.0,
        JOBS as f64 / secs,
        (JOBS * CHILDREN) as f64 / secs,
        std::env::var("BOARD_DURABILITY").unwrap_or_else(|_| "full".into()),
    );
    // The board agrees: every job is claimed, by the process that won it.
    assert!(board.iterjobs(true).expect("lists").is_empty());
    for (id, winners) in &wins {
        assert_eq!(
            board.find_owner(*id).expect("owner"),
            Some(format!("process-{}", winners[0]))
        );
    }
}

#[test]
fn a_killed_owners_lease_lapses_and_its_claim_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("jobs.db");
    let board = open(&db, Duration::from_secs(600));
    let job = board.post(NewJob::new("j")).expect("posts");
    let out = dir.path().join("claim.json");
    let mut hung = child("claim_and_hang", &db, &out, "doomed")
        .spawn()
        .expect("child starts");
    wait_for(&out, std::slice::from_mut(&mut hung));
    // Written in one call, but read until it parses to be safe.
    let dead: Claim = loop {
        if let Ok(claim) = serde_json::from_str(&std::fs::read_to_string(&out).expect("claim")) {
            break claim;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    hung.kill().expect("SIGKILL sent");
    hung.wait().expect("child reaped");
    assert_eq!(dead.job, job.id);
    assert_eq!(dead.epoch, 1);
    let early = board.claim(job.id, "heir");
    let answered = now_ms();
    let heir = match early {
        Err(JobBoardError::AlreadyClaimed { owner, .. }) => {
            assert_eq!(owner, "doomed");
            assert!(board.wait(Duration::from_secs(10)).expect("waits"));
            assert!(now_ms() >= dead.expires_at);
            board.claim(job.id, "heir").expect("claims after the lapse")
        }
        Ok(claim) => {
            assert!(
                answered >= dead.expires_at,
                "claimed before the lease lapsed"
            );
            claim
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(heir.epoch, 2);
    for err in [
        board.renew(&dead).map(|_| ()).unwrap_err(),
        board.consume(&dead).unwrap_err(),
        board.abandon(&dead).unwrap_err(),
        board.trash(&dead, "x").unwrap_err(),
    ] {
        assert!(
            matches!(err, JobBoardError::NotOwner { epoch: 1, ref owner, .. } if owner == "doomed"),
            "{err}"
        );
    }
    board.consume(&heir).expect("the heir consumes");
}

#[test]
fn posters_killed_mid_post_on_one_file_leave_no_orphan_and_no_job_without_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("one.db");
    let board = open(&db, Duration::from_secs(600));
    let records = SqliteBackend::open(&db).expect("records open");
    // Three posters, each killed at a moment of its own while it posts: a
    // two-step post would leave an orphan about half the time.
    for (round, pause_ms) in [(0u64, 0u64), (1, 7), (2, 13)] {
        let before = board.job_count().expect("counted");
        let mut poster = child(
            "post_forever",
            &db,
            &dir.path().join("unused"),
            &format!("poster{round}"),
        )
        .spawn()
        .expect("poster starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while board.job_count().expect("counted") < before + 20 {
            assert!(Instant::now() < deadline, "the poster posted nothing");
            if let Some(status) = poster.try_wait().expect("child status") {
                panic!("the poster ended early: {status}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(pause_ms));
        poster.kill().expect("SIGKILL");
        poster.wait().expect("reaped");
    }
    let jobs = board.all_jobs().expect("jobs");
    let books = records.list_logbooks().expect("logbooks");
    let mut pointed: Vec<_> = jobs.iter().map(|j| j.logbook.expect("a logbook")).collect();
    let mut written: Vec<_> = books
        .into_iter()
        .map(|b| b.expect("readable").uuid)
        .collect();
    pointed.sort();
    written.sort();
    assert!(jobs.len() >= 60, "{} jobs posted", jobs.len());
    assert_eq!(
        pointed, written,
        "each job has its records and each logbook a job"
    );
    for job in &jobs {
        let flow = records
            .get_flow_detail(job.flow_detail.expect("a flow detail"))
            .expect("the job's flow detail");
        assert_eq!(flow.uuid, job.flow_detail.expect("a flow detail"));
    }
}

/// Claim + consume cycles per second on one SQLite board (Normal
/// durability, as W8 takes it), 1 and 4 threads sharing it, each thread
/// claiming from the whole listing with `claim_first` (batches of 16) as
/// conductors do: the board's own bound on W8's jobs per second, with no
/// flow run. Run with
/// `cargo test --release -p taskflow-jobboard --test sqlite_processes -- --ignored --nocapture throughput`.
#[test]
#[ignore = "benchmark: prints claim + consume cycles per second"]
fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let board = SqliteBoard::open_with(
        dir.path().join("jobs.db"),
        options(Duration::from_secs(600)),
        Durability::Normal,
    )
    .unwrap();
    let jobs = 5000;
    for threads in [1usize, 4] {
        for i in 0..jobs {
            board.post(NewJob::new(format!("b{i}"))).unwrap();
        }
        let listed: Vec<JobId> = board.iterjobs(true).unwrap().iter().map(|j| j.id).collect();
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let (board, listed) = (&board, &listed);
                s.spawn(move || {
                    let owner = format!("t{t}");
                    let mut at = 0;
                    while at < listed.len() {
                        let end = (at + 16).min(listed.len());
                        let (tried, claim) = board.claim_first(&listed[at..end], &owner).unwrap();
                        at += tried;
                        if let Some(claim) = claim {
                            board.consume(&claim).unwrap();
                        }
                    }
                });
            }
        });
        let took = start.elapsed();
        assert!(board.iterjobs(false).unwrap().is_empty());
        eprintln!(
            "{threads} thread(s): {jobs} claim+consume cycles in {took:?}: {:.0} cycles/s",
            jobs as f64 / took.as_secs_f64()
        );
    }
}
