//! The examples run as they are and print what they should (cargo builds
//! them before running tests).

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let dir: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples");
    if !dir.join(name).exists() {
        // Run alone (`cargo test --test examples`), cargo did not build the
        // examples: build this one, with the same cargo and target dir.
        let built = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name])
            .status()
            .expect("cargo runs");
        assert!(built.success(), "cannot build example {name}");
    }
    let out = Command::new(dir.join(name))
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name} from {}: {e}", dir.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn quickstart_passes_data_through_a_graph() {
    let (ok, out) = example("quickstart");
    assert!(ok, "{out}");
    assert!(out.contains("flow ended SUCCESS"), "{out}");
    assert!(out.contains(r#"receipt: "total: 1304 cents""#), "{out}");
}

#[test]
fn revert_undoes_dependents_first() {
    let (ok, out) = example("revert");
    assert!(ok, "{out}");
    let order: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("revert  "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(order, ["boot", "volume", "bucket", "network"], "{out}");
    assert!(
        out.contains("flow `provision` ended REVERTED: atom `boot` failed: NoCapacity"),
        "{out}"
    );
}

#[test]
fn retry_retries_inner_then_outer_scope() {
    let (ok, out) = example("retry");
    assert!(ok, "{out}");
    assert!(
        out.contains(r#"flow ended SUCCESS: "https://us.mirror/release.tar.gz""#),
        "{out}"
    );
    assert_eq!(out.matches("upload #").count(), 4, "{out}");
    assert!(
        out.contains(r#"attempt 1 (1) failures: ["upload: connection reset"]"#),
        "{out}"
    );
}

#[test]
fn crash_resume_skips_done_steps_and_reruns_the_interrupted_one() {
    let (ok, out) = example("crash_resume");
    assert!(ok, "{out}");
    assert!(
        out.contains("child process ended: signal: 6 (SIGABRT)"),
        "{out}"
    );
    assert_eq!(
        out.matches("skipped: done before the crash").count(),
        5,
        "{out}"
    );
    assert!(out.contains("charge_card     RUNNING  -> re-run"), "{out}");
    assert_eq!(
        out.matches("finished: run after the resume").count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("flow ended SUCCESS") && out.contains("result: 9 steps done"),
        "{out}"
    );
}

#[test]
fn parallel_runs_the_same_flow_on_both_engines() {
    let (ok, out) = example("parallel");
    assert!(ok, "{out}");
    assert!(out.contains("serial engine: SUCCESS"), "{out}");
    assert!(out.contains("parallel engine, 4 workers: SUCCESS"), "{out}");
    assert_eq!(out.matches("(fetched on main)").count(), 4, "{out}");
    assert_eq!(
        out.matches("(fetched on taskflow-worker-").count(),
        4,
        "{out}"
    );
}

#[test]
fn jobboard_takes_over_the_killed_conductors_job() {
    let (ok, out) = example("jobboard");
    assert!(ok, "{out}");
    assert!(
        out.contains("conductor A killed (signal: 9 (SIGKILL))"),
        "{out}"
    );
    assert!(
        out.contains("epoch: 2 }"),
        "the job was claimed again at a higher epoch: {out}"
    );
    assert_eq!(
        out.matches("backup-db step 0").count(),
        1,
        "finished steps did not run again: {out}"
    );
    assert_eq!(out.matches("Consumed").count(), 3, "{out}");
    assert!(out.contains("all jobs done"), "{out}");
}
