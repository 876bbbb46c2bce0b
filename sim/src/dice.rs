//! The simulation's only source of randomness: one ChaCha stream per run, from one seed, so the
//! same seed replays bit for bit on every platform.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Seeded dice.
#[derive(Clone, Debug)]
pub struct Dice(ChaCha8Rng);

impl Dice {
    /// Dice for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.0.random::<f64>() < p
    }

    /// A whole number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            self.0.random_range(lo..=hi)
        }
    }

    /// A duration uniformly in `lo..=hi` seconds, with millisecond resolution.
    pub fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        let ms = self.between((lo * 1000.0) as u64, (hi * 1000.0) as u64);
        Duration::from_millis(ms)
    }

    /// An exponentially distributed duration with this mean (Poisson arrivals).
    pub fn exp(&mut self, mean: Duration) -> Duration {
        let u: f64 = self.0.random::<f64>().max(f64::MIN_POSITIVE);
        Duration::from_secs_f64(-u.ln() * mean.as_secs_f64())
    }

    /// One of `items`, uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = self.between(0, items.len() as u64 - 1);
        items.get(usize::try_from(i).unwrap_or(0))
    }
}
