//! SVG plots of a plan: queue time and utilisation over the day, and hosts against p95. The
//! SVG backend writes text as `<text>` elements, so no font files are needed to draw them.

use crate::plan::{HourSummary, PlanError, RunSummary};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const SIZE: (u32, u32) = (800, 480);

/// One line to draw: its legend and points.
struct Line<'a> {
    name: &'a str,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Writes `queue_by_hour.svg`, `utilisation_by_hour.svg` and (with more than one run)
/// `hosts_vs_p95.svg` into `dir` (created if missing); returns the files written.
pub fn write_plots(
    dir: &Path,
    hours: &[HourSummary],
    hosts: usize,
    runs: &[RunSummary],
    target_p95: Option<f64>,
) -> Result<Vec<PathBuf>, PlanError> {
    std::fs::create_dir_all(dir).map_err(|source| PlanError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut written = Vec::new();
    let hour_x = |f: fn(&HourSummary) -> f64| -> Vec<(f64, f64)> {
        hours.iter().map(|h| (h.hour as f64 + 0.5, f(h))).collect()
    };
    // An hour in which no job was queued has no queue time, not a queue time of zero.
    let queued_x = |f: fn(&HourSummary) -> f64| -> Vec<(f64, f64)> {
        hours
            .iter()
            .filter(|h| h.started > 0)
            .map(|h| (h.hour as f64 + 0.5, f(h)))
            .collect()
    };
    let path = dir.join("queue_by_hour.svg");
    let mut queue = vec![
        Line {
            name: "p95",
            colour: RED,
            points: queued_x(|h| h.queue_p95_secs),
        },
        Line {
            name: "p50",
            colour: BLUE,
            points: queued_x(|h| h.queue_p50_secs),
        },
    ];
    if let Some(t) = target_p95 {
        queue.push(target_line(t, 0.0, hours.len() as f64));
    }
    chart(
        &path,
        &format!("Queue time by hour queued, {hosts} hosts"),
        ("hour from start", "queue time (s)"),
        (0.0, hours.len().max(1) as f64),
        &queue,
    )?;
    written.push(path);
    let path = dir.join("utilisation_by_hour.svg");
    chart(
        &path,
        &format!("VM utilisation by hour, {hosts} hosts"),
        ("hour from start", "busy VM slots (%)"),
        (0.0, hours.len().max(1) as f64),
        &[Line {
            name: "utilisation",
            colour: GREEN,
            points: hour_x(|h| h.utilisation * 100.0),
        }],
    )?;
    written.push(path);
    if !runs.is_empty() {
        let path = dir.join("hosts_vs_p95.svg");
        let lo = runs.iter().map(|r| r.hosts).min().unwrap_or(1) as f64;
        let hi = runs.iter().map(|r| r.hosts).max().unwrap_or(1) as f64;
        let (lo, hi) = (lo - 0.5, hi + 0.5);
        let mut lines = vec![Line {
            name: "queue p95",
            colour: RED,
            points: runs
                .iter()
                .map(|r| (r.hosts as f64, r.queue_p95_secs))
                .collect(),
        }];
        if let Some(t) = target_p95 {
            lines.push(target_line(t, lo, hi));
        }
        chart(
            &path,
            "Queue p95 against fleet size",
            ("hosts", "queue p95 (s)"),
            (lo, hi),
            &lines,
        )?;
        written.push(path);
    }
    Ok(written)
}

fn target_line(t: f64, from: f64, to: f64) -> Line<'static> {
    Line {
        name: "target p95",
        colour: BLACK,
        points: vec![(from, t), (to, t)],
    }
}

/// Axis label for hosts or hours: only whole numbers are labelled.
fn whole(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// Axis label with as many decimals as the axis' span needs.
fn tick(y: f64, span: f64) -> String {
    if span < 10.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.0}")
    }
}

fn chart(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    (x0, x1): (f64, f64),
    lines: &[Line<'_>],
) -> Result<(), PlanError> {
    let fail = |e: &dyn std::fmt::Display| PlanError::Plot {
        path: path.display().to_string(),
        what: e.to_string(),
    };
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y1 = if top > 0.0 { top * 1.1 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|x| whole(*x))
            .y_label_formatter(&|y| tick(*y, y1))
            .draw()
            .map_err(|e| fail(&e))?;
        for line in lines {
            let colour = line.colour;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    std::fs::write(path, svg).map_err(|source| PlanError::Write {
        path: path.display().to_string(),
        source,
    })
}
