//! Jobboards and conductors end to end, on the embedded SQLite board and
//! records: jobs posted are run and consumed; a stopping conductor hands
//! its job over; a conductor killed
//! with SIGKILL mid-flow has its job taken over and resumed at the last
//! checkpoint with no finished atom run twice; a paused owner whose lease
//! lapsed is fenced out; retention removes finished jobs and their records.
//! The takeover runs on the Redis (feature `redis`) and etcd (feature
//! `etcd`) boards too, measuring the time from the kill to the takeover.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskflow::jobboard::{
    post_flow, BoardOptions, Conductor, ConductorEvent, FlowSource, JobBoard, JobState, Outcome,
    PostFlow, Retention, SqliteBoard,
};
use taskflow::prelude::*;
use taskflow_jobboard::JobId;

/// Faults that must not lose or stall jobs: panics, stops, jobs a
/// conductor cannot run, corrupt records.
mod faults;

const STEPS: usize = 20;

/// A step of the jobs' flows: logs `exec <i>` to its job's side log, may
/// block (in the child conductor, to be killed there) or pause once (to
/// lose its lease), and returns `x + 1`.
#[derive(Serialize, Deserialize)]
struct Step {
    index: usize,
    /// The job's side log.
    log: Option<PathBuf>,
    /// When set, step 3 sleeps 1.5 s the first time (the file marks it done).
    pause_marker: Option<PathBuf>,
}

fn append(log: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

#[typetag::serde]
impl StoredTask for Step {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        if let Some(log) = &self.log {
            append(log, &format!("exec {}", self.index));
        }
        let point = format!("step:{}", self.index);
        if std::env::var("JOBS_BLOCK").ok().as_deref() == Some(point.as_str()) {
            if let Some(log) = &self.log {
                append(log, &format!("blocked {point}"));
            }
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        if let Some(marker) = self.pause_marker.as_ref().filter(|_| self.index == 3) {
            if !marker.exists() {
                std::fs::write(marker, b"paused")?;
                std::thread::sleep(Duration::from_millis(1_500));
            }
        }
        Ok(json!(ctx.input::<i64>("x")? + 1))
    }
}

fn chain(log: Option<&Path>, pause_marker: Option<&Path>) -> Flow {
    let mut flow = Linear::new("chain");
    for i in 0..STEPS {
        let step = Step {
            index: i,
            log: log.map(Path::to_owned),
            pause_marker: pause_marker.map(Path::to_owned),
        };
        let mut a = atom(format!("s{i}"), step)
            .requires(["x"])
            .provides(format!("x{i}"));
        if i > 0 {
            a = a.rebind("x", format!("x{}", i - 1));
        }
        flow = flow.add(a);
    }
    flow.into()
}

struct Setup {
    dir: tempfile::TempDir,
    board: Arc<dyn JobBoard>,
    records: Arc<SqliteBackend>,
    /// How a child process opens the same board (`sqlite`, `redis:PREFIX`
    /// or `etcd:PREFIX`).
    board_spec: String,
}

fn setup(options: BoardOptions) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = open_board(dir.path(), "sqlite", options);
    let records = Arc::new(SqliteBackend::open(dir.path().join("flows.db")).expect("records"));
    Setup {
        dir,
        board,
        records,
        board_spec: "sqlite".into(),
    }
}

/// The board `spec` names: the SQLite file in `dir`, or the Redis board
/// under a key prefix.
fn open_board(dir: &Path, spec: &str, options: BoardOptions) -> Arc<dyn JobBoard> {
    match spec.split_once(':') {
        #[cfg(feature = "redis")]
        Some(("redis", prefix)) => Arc::new(
            taskflow::jobboard::RedisBoard::connect(&redis_url(), prefix, options)
                .expect("redis board"),
        ),
        #[cfg(feature = "postgres")]
        Some(("postgres", schema)) => Arc::new(
            taskflow::jobboard::PostgresBoard::connect_in_schema(&postgres_url(), schema, options)
                .expect("postgres board"),
        ),
        #[cfg(feature = "etcd")]
        Some(("etcd", prefix)) => Arc::new(
            taskflow::jobboard::EtcdBoard::connect(&etcd_url(), prefix, options)
                .expect("etcd board"),
        ),
        _ => Arc::new(SqliteBoard::open(dir.join("jobs.db"), options).expect("sqlite board")),
    }
}

#[cfg(feature = "postgres")]
fn postgres_url() -> String {
    std::env::var("TASKFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[cfg(feature = "redis")]
fn redis_url() -> String {
    std::env::var("TASKFLOW_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[cfg(feature = "etcd")]
fn etcd_url() -> String {
    std::env::var("TASKFLOW_TEST_ETCD_URL").unwrap_or_else(|_| "http://127.0.0.1:2379".into())
}

fn post_chain(s: &Setup, name: &str) -> JobId {
    post_flow_of(s, name, &chain(None, None))
}

fn post_flow_of(s: &Setup, name: &str, flow: &Flow) -> JobId {
    post_flow(
        &*s.board,
        &*s.records,
        PostFlow::new(name, FlowSource::Flow(flow)).store(json!({"x": 0})),
    )
    .expect("posted")
    .id
}

/// Collects a conductor's events.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<ConductorEvent>>>);

impl Events {
    fn listener(&self) -> impl Fn(&ConductorEvent) + Send + Sync + 'static {
        let events = self.0.clone();
        move |e: &ConductorEvent| events.lock().expect("events").push(e.clone())
    }

    fn all(&self) -> Vec<ConductorEvent> {
        self.0.lock().expect("events").clone()
    }

    fn wait_for(
        &self,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&ConductorEvent) -> bool,
    ) -> ConductorEvent {
        let until = Instant::now() + deadline;
        loop {
            if let Some(e) = self.all().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                Instant::now() < until,
                "no {what} within {deadline:?}: {:?}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Stops a conductor when dropped, so a failing assertion cannot leave a
/// conductor thread running (and the test hanging in its scope).
struct StopOnDrop(taskflow::jobboard::StopHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn conductor(s: &Setup, name: &str, events: &Events) -> Conductor {
    Conductor::builder(name, s.board.clone(), s.records.clone())
        .listener(events.listener())
        .wait_timeout(Duration::from_millis(50))
        .build()
}

#[test]
fn conductors_run_posted_jobs_and_consume_them() {
    let s = setup(BoardOptions::default());
    let ids: Vec<_> = (0..6).map(|i| post_chain(&s, &format!("job{i}"))).collect();
    let events = Events::default();
    let c = Conductor::builder("c1", s.board.clone(), s.records.clone())
        .listener(events.listener())
        .max_concurrent_jobs(3)
        .wait_timeout(Duration::from_millis(50))
        .build();
    let stop = StopOnDrop(c.stop_handle());
    std::thread::scope(|scope| {
        scope.spawn(|| c.run());
        let _stop = &stop;
        for id in &ids {
            events.wait_for("consume", Duration::from_secs(30), |e| {
                matches!(e, ConductorEvent::Consumed { job, flow_state: FlowState::Success } if job == id)
            });
        }
        stop.0.stop();
    });
    for id in ids {
        let job = s.board.get(id).expect("job");
        assert_eq!(
            (job.state, job.outcome),
            (JobState::Complete, Some(Outcome::Consumed))
        );
        let flow = s
            .records
            .get_flow_detail(job.flow_detail.expect("flow detail"))
            .expect("records");
        assert_eq!(flow.state, FlowState::Success);
        assert_eq!(
            flow.atom_detail(&format!("s{}", STEPS - 1))
                .and_then(|d| d.result.clone())
                .as_deref(),
            Some(&json!(STEPS))
        );
    }
}

/// Makes each atom take the time given, so the jobs claimed ahead wait
/// behind the one running.
struct Slow(Duration);

impl Listener for Slow {
    fn on_atom(&self, e: &taskflow::AtomEvent) {
        if e.to == taskflow::AtomState::Running {
            std::thread::sleep(self.0);
        }
    }
}

#[test]
fn a_conductor_claiming_ahead_consumes_each_job_when_its_flow_ends() {
    // One slot, three jobs of one 400 ms atom each, all claimed at once:
    // the first job's consume must not wait for the jobs after it (they
    // are ready to run, so it waits for company at most 20 ms).
    let s = setup(BoardOptions::default());
    let one: Flow = Linear::new("one")
        .add(
            atom(
                "s0",
                Step {
                    index: 0,
                    log: None,
                    pause_marker: None,
                },
            )
            .requires(["x"])
            .provides("x0"),
        )
        .into();
    let ids: Vec<_> = (0..3)
        .map(|i| post_flow_of(&s, &format!("slow{i}"), &one))
        .collect();
    let consumed = Arc::new(Mutex::new(Vec::new()));
    let record = consumed.clone();
    let c = Conductor::builder("ahead", s.board.clone(), s.records.clone())
        .prefetch_jobs(4)
        .wait_timeout(Duration::from_millis(500))
        .configure_engine(|b| b.listener(Slow(Duration::from_millis(400))))
        .listener(move |e: &ConductorEvent| {
            if let ConductorEvent::Consumed { job, .. } = e {
                record
                    .lock()
                    .expect("consumed")
                    .push((*job, Instant::now()));
            }
        })
        .build();
    let stop = StopOnDrop(c.stop_handle());
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| c.run());
        while consumed.lock().expect("consumed").len() < ids.len() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not all consumed: {:?}",
                consumed.lock().expect("consumed")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.0.stop();
    });
    let consumed = consumed.lock().expect("consumed").clone();
    let order: Vec<JobId> = consumed.iter().map(|(job, _)| *job).collect();
    assert_eq!(order, ids, "consumed in the order run");
    for pair in consumed.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        // Each job runs 400 ms after the one before: consumed together,
        // the gap would be about 0.
        assert!(
            gap >= Duration::from_millis(200),
            "job {} was consumed only {gap:?} before the next: its consume waited for it",
            pair[0].0
        );
    }
    for id in ids {
        assert_eq!(
            s.board.get(id).expect("job").outcome,
            Some(Outcome::Consumed)
        );
    }
}

#[test]
fn a_stopping_conductor_hands_its_job_over() {
    let s = setup(BoardOptions::default());
    let log = s.dir.path().join("handover.log");
    let id = post_flow_of(&s, "handover", &chain(Some(&log), None));
    let events = Events::default();
    let first = Conductor::builder("first", s.board.clone(), s.records.clone())
        .listener(events.listener())
        .wait_timeout(Duration::from_millis(20))
        .configure_engine(|b| {
            // Slow each step a little so the stop lands mid-flow.
            b.listener(SlowDown)
        })
        .build();
    let stop = StopOnDrop(first.stop_handle());
    std::thread::scope(|scope| {
        scope.spawn(|| first.run());
        events.wait_for("claim", Duration::from_secs(10), |e| {
            matches!(e, ConductorEvent::Claimed { .. })
        });
        std::thread::sleep(Duration::from_millis(30));
        stop.0.stop();
    });
    assert!(
        matches!(events.all().last(), Some(ConductorEvent::Abandoned { job, .. }) if *job == id),
        "{:?}",
        events.all()
    );
    assert_eq!(s.board.get(id).expect("job").state, JobState::Unclaimed);
    let second = Events::default();
    assert!(conductor(&s, "second", &second).run_once().expect("runs"));
    assert!(matches!(
        second.all().last(),
        Some(ConductorEvent::Consumed {
            flow_state: FlowState::Success,
            ..
        })
    ));
    let log = std::fs::read_to_string(&log).expect("log");
    for i in 0..STEPS {
        let runs = log.lines().filter(|l| *l == format!("exec {i}")).count();
        assert!((1..=2).contains(&runs), "step {i} ran {runs} times");
    }
    assert!(
        log.lines().filter(|l| l.starts_with("exec")).count() <= STEPS + 1,
        "at most the interrupted step ran twice"
    );
}

/// Makes each atom take a few ms, so a run lasts long enough to interrupt.
struct SlowDown;

impl Listener for SlowDown {
    fn on_atom(&self, e: &taskflow::AtomEvent) {
        if e.to == taskflow::AtomState::Running {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn a_paused_owner_is_fenced_out_after_its_lease_lapses() {
    let s = setup(BoardOptions {
        lease: Duration::from_millis(300),
        ..BoardOptions::default()
    });
    let marker = s.dir.path().join("paused-once");
    let id = post_flow_of(&s, "paused", &chain(None, Some(&marker)));
    let (slow_events, fast_events) = (Events::default(), Events::default());
    // The slow owner never renews (as if paused), and its step 3 sleeps
    // 1.5 s: its lease lapses meanwhile.
    let slow = Conductor::builder("paused-owner", s.board.clone(), s.records.clone())
        .listener(slow_events.listener())
        .renew_every(Duration::from_secs(3600))
        .build();
    let fast = conductor(&s, "new-owner", &fast_events);
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| slow.run_once().expect("runs"));
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            fast.run_once().expect("runs"),
            "the lapsed job is claimable"
        );
        handle.join().expect("joins");
    });
    assert!(
        matches!(
            fast_events.all().as_slice(),
            [
                ConductorEvent::Claimed { epoch: 2, .. },
                ConductorEvent::Consumed {
                    flow_state: FlowState::Success,
                    ..
                }
            ]
        ),
        "{:?}",
        fast_events.all()
    );
    assert!(
        matches!(
            slow_events.all().last(),
            Some(ConductorEvent::LeaseLost { epoch: 1, .. })
        ),
        "{:?}",
        slow_events.all()
    );
    let flow = s
        .records
        .get_flow_detail(s.board.get(id).expect("job").flow_detail.expect("fd"))
        .expect("records");
    assert_eq!(
        flow.state,
        FlowState::Success,
        "the stale owner did not overwrite the new owner's records"
    );
    assert_eq!(flow.owner_epoch, 2);
}

#[test]
fn retention_removes_consumed_jobs_and_their_logbooks() {
    let s = setup(BoardOptions {
        retention: Retention::Last(1),
        ..BoardOptions::default()
    });
    let first = post_chain(&s, "first");
    let second = post_chain(&s, "second");
    let events = Events::default();
    let c = conductor(&s, "c", &events);
    assert!(c.run_once().expect("runs") && c.run_once().expect("runs"));
    let book = s.board.get(first).expect("job").logbook.expect("logbook");
    c.purge();
    assert!(matches!(
        s.board.get(first),
        Err(taskflow::jobboard::JobBoardError::NotFound(_))
    ));
    assert!(s
        .records
        .get_logbook(book)
        .expect_err("removed")
        .is_not_found());
    assert_eq!(s.board.get(second).expect("kept").state, JobState::Complete);
    assert!(
        matches!(events.all().last(), Some(ConductorEvent::Purged { jobs }) if jobs == &vec![first])
    );
}

/// The child's entry point: a conductor on the given files, until killed.
#[test]
#[ignore = "entry point of the conductor child process"]
fn conductor_process() {
    let dir = PathBuf::from(std::env::var("JOBS_DIR").expect("run by the takeover test"));
    let spec = std::env::var("JOBS_BOARD").unwrap_or_else(|_| "sqlite".into());
    let board = open_board(&dir, &spec, BoardOptions::default());
    let records = Arc::new(SqliteBackend::open(dir.join("flows.db")).expect("records"));
    Conductor::builder("doomed", board, records)
        .wait_timeout(Duration::from_millis(20))
        .build()
        .run();
}

fn read_log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_killed_conductors_job_is_taken_over_at_its_last_checkpoint() {
    takeover(setup(BoardOptions::default()), Duration::from_secs(2));
}

/// The same on the Redis board (skipped, saying so, when Redis is
/// unreachable, unless `TASKFLOW_REQUIRE_SERVICES=1`).
#[cfg(feature = "redis")]
#[test]
fn a_killed_conductors_job_is_taken_over_on_the_redis_board() {
    let Some((setup, board)) = redis_setup("takeover") else {
        return;
    };
    takeover(setup, Duration::from_secs(2));
    board.destroy().expect("test keys removed");
}

/// The same on the etcd board (skipped, saying so, when etcd is
/// unreachable, unless `TASKFLOW_REQUIRE_SERVICES=1`). The default 1 s
/// lease is an etcd lease of the server's minimum TTL there (2 s on a
/// default server): the dead conductor's job is taken over within that,
/// plus the rescuer's start.
#[cfg(feature = "etcd")]
#[test]
fn a_killed_conductors_job_is_taken_over_on_the_etcd_board() {
    let prefix = format!("taskflow-test/takeover-{}", uuid::Uuid::new_v4().simple());
    let connected =
        taskflow::jobboard::EtcdBoard::connect(&etcd_url(), &prefix, BoardOptions::default());
    let Some((setup, board)) = server_setup(
        &format!("etcd at {}", etcd_url()),
        format!("etcd:{prefix}"),
        connected,
    ) else {
        return;
    };
    let job = board.post(taskflow::NewJob::new("probe")).expect("posts");
    let claim = board.claim(job.id, "probe").expect("claims");
    let granted = Duration::from_millis(claim.expires_at.saturating_sub(job.created_at));
    board.consume(&claim).expect("consumes");
    eprintln!("etcd lease granted for the default 1 s lease: about {granted:?}");
    takeover(setup, granted + Duration::from_millis(500));
    board.destroy().expect("test keys removed");
}

/// A setup on the Redis board under a fresh key prefix (records in SQLite),
/// and the board to destroy after; None (having said why) when Redis is
/// unreachable, unless `TASKFLOW_REQUIRE_SERVICES=1`.
#[cfg(feature = "redis")]
fn redis_setup(what: &str) -> Option<(Setup, Arc<taskflow::jobboard::RedisBoard>)> {
    let prefix = format!("taskflow-test-{what}-{}", uuid::Uuid::new_v4().simple());
    let connected =
        taskflow::jobboard::RedisBoard::connect(&redis_url(), &prefix, BoardOptions::default());
    server_setup(
        &format!("redis at {}", redis_url()),
        format!("redis:{prefix}"),
        connected,
    )
}

/// A setup on a board of a server (`spec`: how a child opens it; records in
/// SQLite), and the board to destroy after; None (having said why) when the
/// server did not answer, unless `TASKFLOW_REQUIRE_SERVICES=1`.
#[cfg(any(feature = "redis", feature = "postgres", feature = "etcd"))]
fn server_setup<B: JobBoard + 'static>(
    server: &str,
    spec: String,
    connected: Result<B, taskflow::JobBoardError>,
) -> Option<(Setup, Arc<B>)> {
    let board = match connected {
        Ok(board) => Arc::new(board),
        Err(e) if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1") => {
            eprintln!("skipping: {server} unreachable: {e}");
            return None;
        }
        Err(e) => panic!("{server} unreachable and TASKFLOW_REQUIRE_SERVICES=1: {e}"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let records = Arc::new(SqliteBackend::open(dir.path().join("flows.db")).expect("records"));
    let setup = Setup {
        dir,
        board: board.clone(),
        records,
        board_spec: spec,
    };
    Some((setup, board))
}

/// The same on the PostgreSQL board (skipped, saying so, when the server is
/// unreachable, unless `TASKFLOW_REQUIRE_SERVICES=1`).
#[cfg(feature = "postgres")]
#[test]
fn a_killed_conductors_job_is_taken_over_on_the_postgres_board() {
    let Some((setup, board)) = postgres_setup() else {
        return;
    };
    takeover(setup, Duration::from_secs(2));
    board.destroy().expect("test schema dropped");
}

/// A setup on the PostgreSQL board in a fresh schema (records in SQLite),
/// and the board to destroy after; None (having said why) when the server
/// is unreachable, unless `TASKFLOW_REQUIRE_SERVICES=1`.
#[cfg(feature = "postgres")]
fn postgres_setup() -> Option<(Setup, Arc<taskflow::jobboard::PostgresBoard>)> {
    let schema = format!("taskflow_test_{}", uuid::Uuid::new_v4().simple());
    let connected = taskflow::jobboard::PostgresBoard::connect_in_schema(
        &postgres_url(),
        &schema,
        BoardOptions::default(),
    );
    server_setup(
        &format!("postgres at {}", postgres_url()),
        format!("postgres:{schema}"),
        connected,
    )
}

/// Kills a conductor child mid-flow and checks another takes its job over
/// within `within` of the kill, at its last checkpoint.
fn takeover(s: Setup, within: Duration) {
    let log = s.dir.path().join("takeover.log");
    let id = post_flow_of(&s, "takeover", &chain(Some(&log), None));
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "conductor_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("JOBS_DIR", s.dir.path())
        .env("JOBS_BOARD", &s.board_spec)
        .env("JOBS_BLOCK", "step:12")
        .stdout(Stdio::null())
        .spawn()
        .expect("child conductor starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read_log(&log).contains(&"blocked step:12".to_owned()) {
        assert!(Instant::now() < deadline, "the child never reached step 12");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let killed_at = Instant::now();
    assert_eq!(child.wait().expect("reaped").signal(), Some(9));
    assert_eq!(
        s.board.find_owner(id).expect("owner").as_deref(),
        Some("doomed")
    );

    let events = Events::default();
    let rescuer = conductor(&s, "rescuer", &events);
    let stop = StopOnDrop(rescuer.stop_handle());
    let takeover = std::thread::scope(|scope| {
        scope.spawn(|| rescuer.run());
        events.wait_for("claim", Duration::from_secs(10), |e| {
            matches!(e, ConductorEvent::Claimed { .. })
        });
        let takeover = killed_at.elapsed();
        events.wait_for("consume", Duration::from_secs(30), |e| {
            matches!(e, ConductorEvent::Consumed { .. })
        });
        stop.0.stop();
        takeover
    });
    eprintln!(
        "takeover after SIGKILL: {} ms (lease {:?}, board {})",
        takeover.as_millis(),
        BoardOptions::default().lease,
        s.board_spec
    );
    assert!(takeover <= within, "taken over in {takeover:?}");
    assert!(matches!(
        events.all()[0],
        ConductorEvent::Claimed { epoch: 2, .. }
    ));
    let lines = read_log(&log);
    for i in 0..STEPS {
        let runs = lines.iter().filter(|l| **l == format!("exec {i}")).count();
        assert_eq!(
            runs,
            if i == 12 { 2 } else { 1 },
            "step {i} ran {runs} times: {lines:?}"
        );
    }
    let job = s.board.get(id).expect("job");
    assert_eq!(
        (job.state, job.outcome),
        (JobState::Complete, Some(Outcome::Consumed))
    );
}

/// The time from a post to the conductor's claim of it, one job at a time
/// on an idle conductor (default wait timeout), on SQLite and (feature
/// `redis`) Redis: p50 and max of 40 posts. A measurement, not a check:
/// `cargo test -p taskflow --all-features --test jobboard claim_latency -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run by hand"]
fn claim_latency() {
    let mut specs = vec!["sqlite".to_owned()];
    if cfg!(feature = "redis") {
        specs.push(format!("redis:taskflow-latency:{}", uuid::Uuid::new_v4()));
    }
    for spec in specs {
        let dir = tempfile::tempdir().expect("temp dir");
        let board = open_board(dir.path(), &spec, BoardOptions::default());
        let records = Arc::new(SqliteBackend::open(dir.path().join("flows.db")).expect("records"));
        let s = Setup {
            dir,
            board,
            records,
            board_spec: spec.clone(),
        };
        let events = Events::default();
        let c = Conductor::builder("lat", s.board.clone(), s.records.clone())
            .listener(events.listener())
            .build();
        let _stop = StopOnDrop(c.stop_handle());
        let mut took = Vec::new();
        std::thread::scope(|scope| {
            scope.spawn(|| c.run());
            std::thread::sleep(Duration::from_millis(300));
            for i in 0..40 {
                // An idle conductor: let it fall asleep in wait.
                std::thread::sleep(Duration::from_millis(60));
                let start = Instant::now();
                let id = post_chain(&s, &format!("lat{i}"));
                events.wait_for(
                    "claim",
                    Duration::from_secs(10),
                    |e| matches!(e, ConductorEvent::Claimed { job, .. } if *job == id),
                );
                took.push(start.elapsed());
            }
            c.stop_handle().stop();
        });
        took.sort();
        println!(
            "claim latency on {}: p50 {:?}, p90 {:?}, max {:?} ({} posts)",
            s.board_spec.split(':').next().unwrap_or_default(),
            took[took.len() / 2],
            took[took.len() * 9 / 10],
            took[took.len() - 1],
            took.len()
        );
    }
}

/// The child's entry point: posts one job named `JOBS_NAME` on the board of
/// `JOBS_DIR` / `JOBS_BOARD`, prints its id and exits.
#[test]
#[ignore = "entry point of the poster child process"]
fn poster_process() {
    let dir = PathBuf::from(std::env::var("JOBS_DIR").expect("run by the events test"));
    let spec = std::env::var("JOBS_BOARD").unwrap_or_else(|_| "sqlite".into());
    let name = std::env::var("JOBS_NAME").expect("a job name");
    let board = open_board(&dir, &spec, BoardOptions::default());
    let job = board.post(taskflow::NewJob::new(name)).expect("posted");
    println!("posted {}", job.id);
}

/// A listener on this process's board hears of a job another process
/// posted on the same board, and claimed and consumed here, in order.
fn events_from_another_process(s: Setup) {
    let heard = Arc::new(taskflow::jobboard::CapturingListener::new());
    let _subscription = s.board.subscribe(heard.clone()).expect("subscribed");
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "poster_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("JOBS_DIR", s.dir.path())
        .env("JOBS_BOARD", &s.board_spec)
        .env("JOBS_NAME", "from-the-child")
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest may print its own words before ours on the same line.
    let id: JobId = stdout
        .split("posted ")
        .nth(1)
        .and_then(|rest| rest.get(..36))
        .expect("the child printed the job")
        .parse()
        .expect("a job id");
    assert!(
        heard.wait_for(Duration::from_secs(5), |events| events
            .contains(&taskflow::jobboard::BoardEvent::Posted(id))),
        "no Posted event from the other process: {:?}",
        heard.events()
    );
    eprintln!(
        "{}: Posted heard {:?} after the child started",
        s.board_spec,
        started.elapsed()
    );
    let claim = s.board.claim(id, "here").expect("claimed");
    s.board.consume(&claim).expect("consumed");
    assert!(heard.wait_for(Duration::from_secs(5), |events| events
        .contains(&taskflow::jobboard::BoardEvent::Consumed(id))));
    use taskflow::jobboard::BoardEvent::{Claimed, Consumed, Posted};
    assert_eq!(heard.events_of(id), [Posted(id), Claimed(id), Consumed(id)]);
}

#[test]
fn a_listener_hears_a_job_posted_by_another_process_on_sqlite() {
    events_from_another_process(setup(BoardOptions::default()));
}

#[cfg(feature = "redis")]
#[test]
fn a_listener_hears_a_job_posted_by_another_process_on_redis() {
    let Some((setup, board)) = redis_setup("events") else {
        return;
    };
    events_from_another_process(setup);
    board.destroy().expect("test keys removed");
}

/// A board whose `post` kills the process (SIGKILL) before posting: the
/// hook between `post_flow`'s two writes.
struct KillOnPost(Arc<dyn JobBoard>);

impl JobBoard for KillOnPost {
    fn post(&self, _job: taskflow::NewJob) -> Result<taskflow::Job, taskflow::JobBoardError> {
        let _ = Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(60));
        unreachable!("killed before posting");
    }
    fn get(&self, id: JobId) -> Result<taskflow::Job, taskflow::JobBoardError> {
        self.0.get(id)
    }
    fn claim(&self, id: JobId, owner: &str) -> Result<taskflow::Claim, taskflow::JobBoardError> {
        self.0.claim(id, owner)
    }
    fn renew(&self, claim: &taskflow::Claim) -> Result<taskflow::Claim, taskflow::JobBoardError> {
        self.0.renew(claim)
    }
    fn consume(&self, claim: &taskflow::Claim) -> Result<(), taskflow::JobBoardError> {
        self.0.consume(claim)
    }
    fn abandon(&self, claim: &taskflow::Claim) -> Result<(), taskflow::JobBoardError> {
        self.0.abandon(claim)
    }
    fn trash(&self, claim: &taskflow::Claim, reason: &str) -> Result<(), taskflow::JobBoardError> {
        self.0.trash(claim, reason)
    }
    fn iterjobs(
        &self,
        only_unclaimed: bool,
    ) -> Result<Vec<taskflow::Job>, taskflow::JobBoardError> {
        self.0.iterjobs(only_unclaimed)
    }
    fn wait(&self, timeout: Duration) -> Result<bool, taskflow::JobBoardError> {
        self.0.wait(timeout)
    }
    fn find_owner(&self, id: JobId) -> Result<Option<String>, taskflow::JobBoardError> {
        self.0.find_owner(id)
    }
    fn register_entity(&self, entity: &taskflow::Entity) -> Result<(), taskflow::JobBoardError> {
        self.0.register_entity(entity)
    }
    fn purge(&self) -> Result<Vec<taskflow::Job>, taskflow::JobBoardError> {
        self.0.purge()
    }
    fn entities(&self) -> Result<Vec<taskflow::Entity>, taskflow::JobBoardError> {
        self.0.entities()
    }
    fn request(
        &self,
        id: JobId,
        control: taskflow::Control,
    ) -> Result<taskflow::Job, taskflow::JobBoardError> {
        self.0.request(id, control)
    }
    fn reopen(&self, id: JobId) -> Result<taskflow::Job, taskflow::JobBoardError> {
        self.0.reopen(id)
    }
    fn all_jobs(&self) -> Result<Vec<taskflow::Job>, taskflow::JobBoardError> {
        self.0.all_jobs()
    }
}

/// The child's entry point: `post_flow` on a board that kills the process
/// between writing the records and posting the job.
#[test]
#[ignore = "entry point of the dying poster child process"]
fn dying_poster_process() {
    let dir = PathBuf::from(std::env::var("JOBS_DIR").expect("run by the orphan test"));
    let board = KillOnPost(open_board(&dir, "sqlite", BoardOptions::default()));
    let records = SqliteBackend::open(dir.join("flows.db")).expect("records");
    let flow = chain(None, None);
    let _ = post_flow(
        &board,
        &records,
        PostFlow::new("doomed", FlowSource::Flow(&flow)),
    );
}

/// A poster SIGKILLed between its two writes leaves records no job points
/// at: no job without records is ever visible, and a conductor's purge
/// removes the orphan once it is older than the grace (records of a job
/// that was posted, and records not written by `post_flow`, stay).
#[test]
fn records_of_a_poster_killed_before_posting_are_purged_and_no_job_lacks_records() {
    let s = setup(BoardOptions::default());
    let posted = post_chain(&s, "posted");
    let unrelated = taskflow::LogBook::new("run here");
    s.records.save_logbook(&unrelated).expect("saved");
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "dying_poster_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env("JOBS_DIR", s.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the child runs");
    assert_eq!(
        status.signal(),
        Some(9),
        "the poster was SIGKILLed at the hook"
    );
    let books = |s: &Setup| -> Vec<String> {
        let mut names: Vec<String> = s
            .records
            .list_logbooks()
            .expect("listed")
            .into_iter()
            .map(|b| b.expect("readable").name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(books(&s), ["doomed", "posted", "run here"]);
    // Every job on the board has its records.
    for job in s.board.all_jobs().expect("jobs") {
        assert!(s
            .records
            .get_logbook(job.logbook.expect("a logbook"))
            .is_ok());
    }
    assert_eq!(s.board.get(posted).expect("posted").name, "posted");

    let patient = Conductor::builder("purger", s.board.clone(), s.records.clone()).build();
    assert_eq!(
        patient.remove_orphans(),
        0,
        "the orphan is younger than the default grace"
    );
    let conductor = Conductor::builder("purger", s.board.clone(), s.records.clone())
        .orphan_grace(Duration::ZERO)
        .build();
    assert_eq!(conductor.remove_orphans(), 1);
    assert_eq!(books(&s), ["posted", "run here"]);
}
