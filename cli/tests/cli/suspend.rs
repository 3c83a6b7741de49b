//! Ctrl-C (SIGINT) to `run` suspends at the next atom boundary and prints
//! the command that resumes it; `resume` finishes the flow without running
//! a finished atom again.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{run_in, taskflow, Ran};

const FLOW: &str = r#"name: slow
store: {marker: started, log: ran.log}
steps:
  - name: first
    shell: |
      echo first >> "$log"
      touch "$marker"
      sleep 0.5
    requires: [marker, log]
  - name: second
    shell: echo second >> "$log"
    requires: [log]
"#;

#[test]
fn sigint_suspends_and_resume_finishes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow.yaml"), FLOW).unwrap();
    let child = taskflow()
        .args(["run", "slow.yaml"])
        .current_dir(dir.path())
        .env_remove("TASKFLOW_RECORDS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("started").exists() {
        assert!(Instant::now() < deadline, "the first atom never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let ran: Ran = child.wait_with_output().unwrap().into();
    assert_eq!(
        ran.code, 5,
        "SUSPENDED exits 5: {}{}",
        ran.stdout, ran.stderr
    );
    assert!(
        ran.stderr
            .contains("suspending after the atoms running now finish"),
        "{}",
        ran.stderr
    );
    let row = |out: &str, atom: &str| {
        out.lines()
            .find(|l| l.contains(&format!(" {atom} ")))
            .unwrap_or_else(|| panic!("no row for {atom}: {out}"))
            .to_owned()
    };
    assert!(
        row(&ran.stdout, "first").contains("SUCCESS"),
        "{}",
        ran.stdout
    );
    assert!(
        row(&ran.stdout, "second").contains("PENDING"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("flow `slow` SUSPENDED"),
        "{}",
        ran.stdout
    );
    let command = ran
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("suspended; to go on: "))
        .unwrap_or_else(|| panic!("no resume command: {}", ran.stderr));
    let id = command.strip_prefix("taskflow resume ").unwrap();
    assert_eq!(id.len(), 36, "a flow detail id: {command}");

    let resumed = run_in(dir.path(), &["resume", id]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert!(
        row(&resumed.stdout, "second").contains("SUCCESS"),
        "{}",
        resumed.stdout
    );
    let log = std::fs::read_to_string(dir.path().join("ran.log")).unwrap();
    assert_eq!(log, "first\nsecond\n", "`first` did not run again");
}

#[test]
fn resume_of_an_unknown_id_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ran = run_in(dir.path(), &["resume", "not-a-uuid"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("is not a flow detail id"),
        "{}",
        ran.stderr
    );
}
