//! The comparison's outputs: one table (printed, and written as Markdown),
//! the raw figures as JSON, and a plot of time per atom against N for
//! W1-W3, one line per executor.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::measure::{Measurement, Unit};
use crate::BenchError;

/// The executor name of Python TaskFlow's figures.
pub const PYTHON: &str = "Python TaskFlow";
/// The executor name of the bare rayon floor's figures.
pub const FLOOR: &str = "floor (bare rayon)";

/// What a workload is, as the table's first column says it.
pub fn describe(workload: &str) -> &'static str {
    match workload {
        "W1" => "W1 linear chain",
        "W2" => "W2 unordered, independent",
        "W3" => "W3 layered DAG (width 10)",
        "W4" => "W4 linear, checkpointed",
        "W5" => "W5 N × sleep 10 ms",
        "W6" => "W6 linear, all revert",
        "W7" => "W7 Times(5), 4 failures",
        "W8" => "W8 jobboard claim + consume",
        "W9" => "W9 resume after SIGKILL",
        "W10" => "W10 peak RSS of W1",
        "W11" => "W11 worker engine over RabbitMQ",
        "W12" => "W12 job service over HTTP",
        _ => "other",
    }
}

/// Formats a figure with a precision that suits its size.
pub fn figure(value: f64) -> String {
    let abs = value.abs();
    let text = if abs >= 1000.0 {
        format!("{value:.0}")
    } else if abs >= 100.0 {
        format!("{value:.1}")
    } else if abs >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    };
    group_thousands(&text)
}

fn group_thousands(text: &str) -> String {
    let (int, rest) = text.split_at(text.find('.').unwrap_or(text.len()));
    let digits: Vec<char> = int.chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c.is_ascii_digit() && digits[i - 1] != '-' {
            out.push(',');
        }
        out.push(*c);
    }
    out + rest
}

/// How many times better `ours` is than `theirs` (above 1: better).
pub fn advantage(ours: &Measurement, theirs: &Measurement) -> f64 {
    if ours.unit.higher_is_better() {
        ours.value / theirs.value
    } else {
        theirs.value / ours.value
    }
}

fn ratio_text(unit: Unit, advantage: f64) -> String {
    let (better, worse) = match unit {
        Unit::MebiBytes => ("less memory", "more memory"),
        _ => ("faster", "slower"),
    };
    if advantage >= 1.0 {
        format!("{}× {better}", figure(advantage))
    } else {
        format!("{}× {worse}", figure(1.0 / advantage))
    }
}

/// Python TaskFlow's best figure for the row of `m` (same workload and N,
/// and a setting `m`'s setting starts with), if Python ran it.
fn python_for<'a>(m: &Measurement, all: &'a [Measurement]) -> Option<&'a Measurement> {
    all.iter()
        .filter(|p| {
            p.executor.starts_with(PYTHON)
                && p.workload == m.workload
                && p.n == m.n
                && p.unit == m.unit
                && m.setting.starts_with(&p.setting)
        })
        .max_by(|a, b| advantage(a, b).total_cmp(&advantage(b, a)))
}

/// Whether `executor` is a floor: the bare rayon executor (W1-W3), bare
/// SQLite (W4), or a bound measured with a bare client (W11's broker).
fn is_floor(executor: &str) -> bool {
    executor.starts_with("floor") || is_bound(executor)
}

/// A bare client's bound (`bound: ...`): a cost per message, taken at one
/// N and the floor of every N of its setting.
fn is_bound(executor: &str) -> bool {
    executor.starts_with("bound:")
}

fn floor_for<'a>(m: &Measurement, all: &'a [Measurement]) -> Option<&'a Measurement> {
    all.iter().find(|f| {
        is_floor(&f.executor)
            && f.workload == m.workload
            && (f.n == m.n || is_bound(&f.executor))
            && f.setting == m.setting
    })
}

/// The table, one row per figure, in the order measured, with the ratio to
/// Python TaskFlow's best figure on the same workload, N and setting, and
/// (W1-W3) the ratio to the floor.
pub fn markdown_table(all: &[Measurement]) -> String {
    let mut out = String::new();
    out.push_str("| workload | N | setting | executor | median | min – max | runs | vs Python TaskFlow | ÷ floor |\n");
    out.push_str("|---|---:|---|---|---:|---:|---:|---|---:|\n");
    for m in all {
        let vs_python = match python_for(m, all) {
            Some(p) if !m.executor.starts_with(PYTHON) => ratio_text(m.unit, advantage(m, p)),
            _ => String::new(),
        };
        let vs_floor = match floor_for(m, all) {
            Some(f) if !is_floor(&m.executor) => format!("{}×", figure(m.value / f.value)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} {} | {} – {} | {} | {} | {} |",
            describe(&m.workload),
            group_thousands(&m.n.to_string()),
            m.setting,
            m.executor,
            figure(m.value),
            m.unit.label(),
            figure(m.min),
            figure(m.max),
            m.runs,
            vs_python,
            vs_floor,
        );
    }
    out
}

/// A column of the summary: its heading, and which executors it shows.
type Column<'a> = (&'a str, &'a dyn Fn(&str) -> bool);

/// The side-by-side summary: one row per workload, N and setting, one
/// column per executor (Python TaskFlow's best engine, our three engines,
/// the floor and the peers), each cell the median; a last column gives our
/// best engine's ratio to Python TaskFlow.
pub fn summary_table(all: &[Measurement]) -> String {
    // Python's rows join ours where our setting refines theirs (Python's
    // `sqlite` and our `sqlite (Normal)`), and stand alone otherwise.
    let is_python = |m: &Measurement| m.executor.starts_with(PYTHON);
    let mut rows: Vec<(&str, usize, &str)> = Vec::new();
    for m in all {
        let key = (m.workload.as_str(), m.n, m.setting.as_str());
        let joins_ours = is_python(m)
            && all.iter().any(|o| {
                !is_python(o)
                    && o.workload == m.workload
                    && o.n == m.n
                    && o.setting.starts_with(&m.setting)
            });
        if !joins_ours && !rows.contains(&key) {
            rows.push(key);
        }
    }
    let columns: [Column<'_>; 11] = [
        ("Python TaskFlow", &|e| e.starts_with(PYTHON)),
        ("serial", &|e| e == "taskflow-rs serial"),
        ("parallel", &|e| e == "taskflow-rs parallel"),
        ("tokio", &|e| e.starts_with("taskflow-rs tokio")),
        ("conductor", &|e| e.starts_with("taskflow-rs conductor")),
        ("service", &|e| e.starts_with("taskflow-rs service")),
        ("worker", &|e| e.starts_with("taskflow-rs worker")),
        ("floor", &|e| is_floor(e)),
        ("dagx inline", &|e| e == "dagx inline"),
        ("dagx parallel", &|e| e == "dagx parallel"),
        ("dagrs", &|e| e == "dagrs"),
    ];
    let mut out = String::from("| workload | N | setting | unit |");
    for (name, _) in &columns {
        let _ = write!(out, " {name} |");
    }
    out.push_str(" ours vs Python |\n|---|---:|---|---|");
    out.push_str(&"---:|".repeat(columns.len()));
    out.push_str("---|\n");
    for (workload, n, setting) in rows {
        let cell: Vec<&Measurement> = all
            .iter()
            .filter(|m| {
                m.workload == workload
                    && m.n == n
                    && (m.setting == setting || (is_python(m) && setting.starts_with(&m.setting)))
            })
            .collect();
        let Some(unit) = cell.first().map(|m| m.unit) else {
            continue;
        };
        let best = |pick: &dyn Fn(&str) -> bool| {
            cell.iter()
                .filter(|m| pick(&m.executor))
                .copied()
                .max_by(|a, b| advantage(a, b).total_cmp(&advantage(b, a)))
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} |",
            describe(workload),
            group_thousands(&n.to_string()),
            setting,
            unit.label()
        );
        for (_, pick) in &columns {
            let text = best(*pick).map(|m| figure(m.value)).unwrap_or_default();
            let _ = write!(out, " {text} |");
        }
        let ours = best(&|e: &str| e.starts_with("taskflow-rs"));
        let python = best(&|e: &str| e.starts_with(PYTHON));
        let ratio = match (ours, python) {
            (Some(o), Some(p)) => ratio_text(unit, advantage(o, p)),
            _ => String::new(),
        };
        let _ = writeln!(out, " {ratio} |");
    }
    out
}

/// Prints both tables, as Markdown, to standard output.
pub fn print_table(all: &[Measurement]) {
    println!("{}", markdown_table(all));
    println!("{}", summary_table(all));
}

/// What `comparison.json` holds: when and how the figures were taken, and
/// every figure. `taskflow-bench render` rebuilds the Markdown and the plot
/// from it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    /// The lines under the heading: machine, date, method, notes.
    pub context: Vec<String>,
    /// Every figure, in the order measured.
    pub figures: Vec<Measurement>,
}

/// Writes `comparison.md` (heading, `context` lines and the tables),
/// `comparison.json` (a [`Saved`]) and `comparison.svg` (the plot) into
/// `dir`.
pub fn write_all(dir: &Path, context: &[String], all: &[Measurement]) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir)?;
    let mut md = String::from("# Engine comparison\n\n");
    for line in context {
        md.push_str(line);
        md.push('\n');
    }
    md.push_str("\n## Side by side\n\n");
    md.push_str(&summary_table(all));
    md.push_str("\n## Every figure\n\n");
    md.push_str(&markdown_table(all));
    std::fs::write(dir.join("comparison.md"), md)?;
    let saved = Saved {
        context: context.to_vec(),
        figures: all.to_vec(),
    };
    std::fs::write(
        dir.join("comparison.json"),
        serde_json::to_string_pretty(&saved)?,
    )?;
    plot(&dir.join("comparison.svg"), all)
}

/// Plots µs per atom against N (both logarithmic) for W1, W2 and W3 side
/// by side, one line per executor (and setting, where there are several).
pub fn plot(path: &Path, all: &[Measurement]) -> Result<(), BenchError> {
    let plot_err = |e: &dyn std::fmt::Display| BenchError::Setup(format!("plot: {e}"));
    let root = SVGBackend::new(path, (1500, 580)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let (charts, legend) = root.split_vertically(520);
    let panels = charts.split_evenly((1, 3));
    let series_names: BTreeSet<String> = all
        .iter()
        .filter(|m| m.unit == Unit::MicrosPerAtom && ["W1", "W2", "W3"].contains(&&*m.workload))
        .map(series_name)
        .collect();
    let colors: Vec<(String, RGBColor)> = series_names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), palette(i)))
        .collect();
    for (panel, workload) in panels.iter().zip(["W1", "W2", "W3"]) {
        let points: Vec<&Measurement> = all
            .iter()
            .filter(|m| m.workload == workload && m.unit == Unit::MicrosPerAtom)
            .collect();
        if points.is_empty() {
            continue;
        }
        let (x_lo, x_hi) = bounds(points.iter().map(|m| m.n as f64));
        let (y_lo, y_hi) = bounds(points.iter().map(|m| m.value));
        let mut chart = ChartBuilder::on(panel)
            .caption(describe(workload), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (x_lo / 2.0..x_hi * 2.0).log_scale(),
                (y_lo / 2.0..y_hi * 2.0).log_scale(),
            )
            .map_err(|e| plot_err(&e))?;
        chart
            .configure_mesh()
            .x_desc("N (atoms)")
            .y_desc("µs per atom (build + run)")
            .light_line_style(TRANSPARENT)
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|x| group_thousands(&format!("{x:.0}")))
            .y_label_formatter(&|y| figure(*y))
            .draw()
            .map_err(|e| plot_err(&e))?;
        for (name, color) in &colors {
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|m| &series_name(m) == name)
                .map(|m| (m.n as f64, m.value))
                .collect();
            if line.is_empty() {
                continue;
            }
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let style = ShapeStyle::from(color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(line.clone(), style))
                .map_err(|e| plot_err(&e))?;
            chart
                .draw_series(line.into_iter().map(|p| Circle::new(p, 3, style.filled())))
                .map_err(|e| plot_err(&e))?;
        }
    }
    // One legend for the three panels, in a strip below them.
    let per_row = 5;
    for (i, (name, color)) in colors.iter().enumerate() {
        let x = 60 + (i % per_row) as i32 * 280;
        let y = 12 + (i / per_row) as i32 * 22;
        let style = ShapeStyle::from(color).stroke_width(3);
        legend
            .draw(&PathElement::new(vec![(x, y), (x + 24, y)], style))
            .map_err(|e| plot_err(&e))?;
        legend
            .draw(&Text::new(
                name.clone(),
                (x + 30, y - 7),
                ("sans-serif", 14),
            ))
            .map_err(|e| plot_err(&e))?;
    }
    root.present().map_err(|e| plot_err(&e))?;
    Ok(())
}

fn series_name(m: &Measurement) -> String {
    if m.setting.is_empty() || m.setting == "memory" {
        m.executor.clone()
    } else {
        format!("{} ({})", m.executor, m.setting)
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() {
        (lo, hi.max(lo))
    } else {
        (1.0, 10.0)
    }
}

fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(executor: &str, workload: &str, n: usize, value: f64) -> Measurement {
        Measurement {
            workload: workload.into(),
            n,
            setting: "memory".into(),
            executor: executor.into(),
            value,
            min: value,
            max: value,
            runs: 3,
            unit: Unit::MicrosPerAtom,
        }
    }

    #[test]
    fn figures_are_grouped_and_rounded() {
        assert_eq!(figure(19801.4), "19,801");
        assert_eq!(figure(1234567.0), "1,234,567");
        assert_eq!(figure(0.23456), "0.235");
        assert_eq!(figure(4.567), "4.57");
        assert_eq!(figure(123.45), "123.5");
    }

    #[test]
    fn table_rows_carry_ratios_to_python_and_the_floor() {
        let all = vec![
            m(PYTHON, "W1", 100, 3000.0),
            m(&format!("{PYTHON} parallel"), "W1", 100, 6000.0),
            m(FLOOR, "W1", 100, 0.1),
            m("taskflow-rs serial", "W1", 100, 0.3),
        ];
        let table = markdown_table(&all);
        let ours = table
            .lines()
            .find(|l| l.contains("taskflow-rs serial"))
            .unwrap();
        assert!(ours.contains("10,000× faster"), "{ours}");
        assert!(ours.contains("| 3.00× |"), "{ours}");
        for python in table.lines().filter(|l| l.contains(PYTHON)) {
            assert!(
                !python.contains("faster") && !python.contains("slower"),
                "{python}"
            );
        }
    }

    #[test]
    fn a_bound_taken_at_one_n_is_the_floor_of_every_n_and_workers_have_a_column() {
        let rate = |executor: &str, n: usize, value: f64| Measurement {
            setting: "W2 unordered, 2 worker processes".into(),
            unit: Unit::AtomsPerSecond,
            ..m(executor, "W11", n, value)
        };
        let all = vec![
            rate("taskflow-rs worker (amqp)", 1000, 5000.0),
            rate("taskflow-rs worker (amqp)", 10000, 8000.0),
            rate("bound: bare lapin, pipelined", 1000, 10000.0),
        ];
        let table = markdown_table(&all);
        let ours: Vec<&str> = table
            .lines()
            .filter(|l| l.contains("taskflow-rs"))
            .collect();
        assert!(ours[0].ends_with("| 0.500× |"), "{}", ours[0]);
        assert!(ours[1].ends_with("| 0.800× |"), "{}", ours[1]);
        let summary = summary_table(&all);
        let row = summary.lines().find(|l| l.contains("| 1,000 |")).unwrap();
        // worker, then floor, columns.
        assert!(row.contains("| 5,000 | 10,000 |"), "{row}");
    }

    #[test]
    fn throughput_ratios_point_the_right_way() {
        let mut py = m(PYTHON, "W8", 1000, 1000.0);
        py.unit = Unit::JobsPerSecond;
        let mut ours = m("taskflow-rs", "W8", 1000, 500.0);
        ours.unit = Unit::JobsPerSecond;
        assert_eq!(ratio_text(ours.unit, advantage(&ours, &py)), "2.00× slower");
        let mut py = m(PYTHON, "W10", 1000, 100.0);
        py.unit = Unit::MebiBytes;
        let mut ours = m("taskflow-rs", "W10", 1000, 10.0);
        ours.unit = Unit::MebiBytes;
        assert_eq!(
            ratio_text(ours.unit, advantage(&ours, &py)),
            "10.00× less memory"
        );
    }

    #[test]
    fn files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let all = vec![
            m(PYTHON, "W1", 100, 3000.0),
            m("taskflow-rs serial", "W1", 100, 0.3),
            m("taskflow-rs serial", "W1", 1000, 0.35),
            m("dagx inline", "W2", 100, 0.8),
        ];
        write_all(dir.path(), &["taken here".into()], &all).unwrap();
        let md = std::fs::read_to_string(dir.path().join("comparison.md")).unwrap();
        assert!(md.contains("taken here") && md.contains("| W1 linear chain | 1,000 |"));
        let svg = std::fs::read_to_string(dir.path().join("comparison.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("taskflow-rs serial"));
        let saved: Saved = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("comparison.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(saved.figures, all);
        assert_eq!(saved.context, ["taken here"]);
    }
}
