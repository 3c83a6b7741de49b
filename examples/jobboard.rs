//! Jobs and conductors on the embedded SQLite board: three jobs are posted;
//! conductor A (a child process) claims the first and is killed with
//! SIGKILL in the middle of its flow; conductor B (this process) waits for
//! A's lease to lapse, takes the job over at a higher epoch, resumes the
//! flow at its last checkpoint, and runs the other jobs. Run with
//! `cargo run --example jobboard`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskflow::jobboard::{
    post_flow, BoardOptions, Conductor, ConductorEvent, FlowSource, JobBoard, PostFlow, SqliteBoard,
};
use taskflow::prelude::*;

/// One step of a backup job; each takes 50 ms.
#[derive(Serialize, Deserialize)]
struct Step {
    job: String,
    index: usize,
}

#[typetag::serde]
impl StoredTask for Step {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        println!(
            "    [pid {}] {} step {}",
            std::process::id(),
            self.job,
            self.index
        );
        std::thread::sleep(Duration::from_millis(50));
        Ok(json!(ctx.input::<i64>("done")? + 1))
    }
}

fn backup(job: &str) -> Flow {
    let mut flow = Linear::new("backup");
    for i in 0..8 {
        let mut a = atom(
            format!("step{i}"),
            Step {
                job: job.into(),
                index: i,
            },
        )
        .requires(["done"])
        .provides(format!("done{i}"));
        if i > 0 {
            a = a.rebind("done", format!("done{}", i - 1));
        }
        flow = flow.add(a);
    }
    flow.into()
}

fn open(dir: &Path) -> Result<(Arc<SqliteBoard>, Arc<SqliteBackend>), Box<dyn std::error::Error>> {
    let board = Arc::new(SqliteBoard::open(
        dir.join("jobs.db"),
        BoardOptions::default(),
    )?);
    let records = Arc::new(SqliteBackend::open(dir.join("flows.db"))?);
    Ok((board, records))
}

fn conductor(
    name: &str,
    dir: &Path,
    started: Instant,
) -> Result<Conductor, Box<dyn std::error::Error>> {
    let (board, records) = open(dir)?;
    let me = name.to_owned();
    Ok(Conductor::builder(name, board, records)
        .wait_timeout(Duration::from_millis(50))
        .listener(move |e: &ConductorEvent| {
            println!(
                "{:>5} ms  conductor {me}: {e:?}",
                started.elapsed().as_millis()
            )
        })
        .build())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--conductor") {
        let dir = PathBuf::from(&args[2]);
        conductor("A", &dir, Instant::now())?.run();
        return Ok(());
    }

    let dir = std::env::temp_dir().join(format!("taskflow-jobboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let (board, records) = open(&dir)?;
    for name in ["backup-db", "backup-mail", "backup-wiki"] {
        let flow = backup(name);
        let job = post_flow(
            &*board,
            &*records,
            PostFlow::new(name, FlowSource::Flow(&flow)).store(json!({ "done": 0 })),
        )?;
        println!("posted {name} as job {}", job.id);
    }

    println!("starting conductor A in a child process");
    let mut a = Command::new(std::env::current_exe()?)
        .arg("--conductor")
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let out = a.stdout.take().ok_or("no stdout")?;
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("  A| {line}");
        if line.contains("step 3") {
            break;
        }
    }
    a.kill()?;
    let status = a.wait()?;
    let killed = started.elapsed();
    println!(
        "{:>5} ms  conductor A killed ({status})",
        killed.as_millis()
    );

    let b = conductor("B", &dir, started)?;
    let stop = b.stop_handle();
    std::thread::scope(|scope| {
        scope.spawn(|| b.run());
        while board
            .iterjobs(false)
            .map(|jobs| !jobs.is_empty())
            .unwrap_or(false)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.stop();
    });
    println!("all jobs done in {} ms", started.elapsed().as_millis());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
