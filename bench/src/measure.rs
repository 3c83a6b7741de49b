//! Medians of repeated runs, and the measurements the comparison reports.
//!
//! The comparison command times whole runs (build and run, as a user pays
//! them) a few times each and keeps the median, as the Python TaskFlow
//! harness does; criterion is for the benches under `benches/`, where
//! statistics over many samples matter more than a run taken back to back
//! with the anchors.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a measurement is a figure of, and which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Microseconds per atom (lower is better).
    MicrosPerAtom,
    /// Seconds for the whole run (lower is better).
    Seconds,
    /// Jobs per second (higher is better).
    JobsPerSecond,
    /// Peak resident memory in MiB (lower is better).
    MebiBytes,
    /// Milliseconds (a latency; lower is better).
    Millis,
    /// Atoms (or messages) per second (higher is better).
    AtomsPerSecond,
}

impl Unit {
    /// Whether a larger figure is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Unit::JobsPerSecond | Unit::AtomsPerSecond)
    }

    /// The unit as the table prints it.
    pub fn label(self) -> &'static str {
        match self {
            Unit::MicrosPerAtom => "µs/atom",
            Unit::Seconds => "s",
            Unit::JobsPerSecond => "jobs/s",
            Unit::MebiBytes => "MiB",
            Unit::Millis => "ms",
            Unit::AtomsPerSecond => "atoms/s",
        }
    }
}

/// One figure of one executor on one workload at one size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The workload id, `W1` to `W10`.
    pub workload: String,
    /// The workload's size (atoms, jobs or workers, as the workload says).
    pub n: usize,
    /// The setting within the workload (backend, worker count), or empty.
    pub setting: String,
    /// Who ran it: `python-taskflow`, `serial`, `parallel`, `dagx-inline`, ...
    pub executor: String,
    /// The median.
    pub value: f64,
    /// The smallest of the runs.
    pub min: f64,
    /// The largest of the runs.
    pub max: f64,
    /// How many runs the median is of.
    pub runs: usize,
    /// What the figures measure.
    pub unit: Unit,
}

/// How many times to repeat a run: at least `min_runs`, then more until
/// `budget` is spent or `max_runs` are done.
#[derive(Clone, Copy, Debug)]
pub struct Repeats {
    /// Runs always made (after one warm-up run that is not counted).
    pub min_runs: usize,
    /// Runs never exceeded.
    pub max_runs: usize,
    /// Time after which no more runs are started once `min_runs` are done.
    pub budget: Duration,
}

impl Repeats {
    /// The default: 3 to 15 runs within about 2 s per figure.
    pub fn standard() -> Self {
        Repeats {
            min_runs: 3,
            max_runs: 15,
            budget: Duration::from_secs(2),
        }
    }

    /// For a smoke run: one run, no warm-up budget.
    pub fn once() -> Self {
        Repeats {
            min_runs: 1,
            max_runs: 1,
            budget: Duration::ZERO,
        }
    }
}

/// The median, smallest and largest of some figures, and how many.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The median (the mean of the two middle figures for an even count).
    pub median: f64,
    /// The smallest figure.
    pub min: f64,
    /// The largest figure.
    pub max: f64,
    /// How many figures.
    pub count: usize,
}

/// Summarises `figures`; `None` when there are none.
pub fn summarize(figures: &[f64]) -> Option<Summary> {
    let mut sorted: Vec<f64> = figures.iter().copied().filter(|f| f.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    };
    Some(Summary {
        median,
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        count: sorted.len(),
    })
}

/// Runs `run` as `repeats` says (one warm-up first unless only one run is
/// asked for) and summarises the durations it reports. `run` returns the
/// duration to count, so it can leave its own setup out of the timing.
pub fn repeat<E>(
    repeats: Repeats,
    mut run: impl FnMut() -> Result<Duration, E>,
) -> Result<Summary, E> {
    if repeats.max_runs > 1 {
        run()?;
    }
    let started = Instant::now();
    let mut seconds = Vec::with_capacity(repeats.min_runs);
    while seconds.len() < repeats.max_runs.max(1)
        && (seconds.len() < repeats.min_runs.max(1) || started.elapsed() < repeats.budget)
    {
        seconds.push(run()?.as_secs_f64());
    }
    // Not empty: at least one run was made.
    Ok(summarize(&seconds).unwrap_or(Summary {
        median: 0.0,
        min: 0.0,
        max: 0.0,
        count: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = summarize(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.count), (2.0, 1.0, 3.0, 3));
        let s = summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[f64::NAN]).is_none());
    }

    #[test]
    fn repeat_honours_min_and_max_runs() {
        let mut calls = 0;
        let s = repeat::<()>(
            Repeats {
                min_runs: 3,
                max_runs: 5,
                budget: Duration::from_secs(60),
            },
            || {
                calls += 1;
                Ok(Duration::from_millis(calls))
            },
        )
        .unwrap();
        // One warm-up, then five counted runs (the budget is not spent).
        assert_eq!(calls, 6);
        assert_eq!(s.count, 5);
        assert_eq!(s.median, 0.004);
    }

    #[test]
    fn repeat_stops_at_min_runs_once_the_budget_is_spent() {
        let mut calls = 0;
        let s = repeat::<()>(
            Repeats {
                min_runs: 2,
                max_runs: 10,
                budget: Duration::ZERO,
            },
            || {
                calls += 1;
                Ok(Duration::from_millis(1))
            },
        )
        .unwrap();
        assert_eq!(s.count, 2);
        assert_eq!(calls, 3);
    }
}
