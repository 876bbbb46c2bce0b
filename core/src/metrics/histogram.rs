//! Fixed-bucket histograms of durations, as Prometheus histograms expose them (cumulative
//! `_bucket{le=...}`, `_sum`, `_count`). Buckets are fixed at compile time so every host
//! exposes the same `le` values and a fleet's histograms can be summed.

use super::exposition::{Sample, format_value};
use std::time::Duration;

/// Upper bounds (seconds) for the steps before a job runs: a claim, a clone and boot, a runner
/// registration. From a tenth of a second (an idle fleet's claim) to an hour (a cold pull).
pub const STEP_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Upper bounds (seconds) for a job's run time: from ten seconds to GitHub's six-hour job limit
/// and the 72-hour self-hosted limit.
pub const JOB_BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14_400.0, 21_600.0,
    43_200.0, 86_400.0, 259_200.0,
];

/// Observations of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); one more than `bounds` for `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one duration.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += secs;
        self.count += 1;
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The `_bucket`, `_sum` and `_count` samples with `labels` (plus `le` on buckets).
    pub fn samples(&self, labels: &[(&str, &str)]) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.counts.len() + 2);
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c;
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| format_value(*b));
            let mut s = Sample::new(labels, cumulative as f64);
            s.suffix = "_bucket";
            s.labels.push(("le".to_owned(), le));
            out.push(s);
        }
        let mut sum = Sample::new(labels, self.sum);
        sum.suffix = "_sum";
        let mut count = Sample::new(labels, self.count as f64);
        count.suffix = "_count";
        out.extend([sum, count]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(1));
        h.observe(Duration::from_secs(5));
        h.observe(Duration::from_secs(50));
        let s = h.samples(&[("host", "m1")]);
        let values: Vec<(String, f64)> = s
            .iter()
            .map(|s| {
                let le = s.labels.iter().find(|(k, _)| k == "le");
                (
                    format!("{}{}", s.suffix, le.map_or("", |(_, v)| v.as_str())),
                    s.value,
                )
            })
            .collect();
        assert_eq!(
            values,
            vec![
                ("_bucket1".to_owned(), 2.0),
                ("_bucket10".to_owned(), 3.0),
                ("_bucket+Inf".to_owned(), 4.0),
                ("_sum".to_owned(), 56.5),
                ("_count".to_owned(), 4.0),
            ]
        );
    }

    #[test]
    fn bounds_ascend() {
        for b in [STEP_BUCKETS, JOB_BUCKETS] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
