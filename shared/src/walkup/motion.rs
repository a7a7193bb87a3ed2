//! Walking or standing still, from the phone's accelerometer.
//!
//! The walk-up engine trusts RSSI less while its wearer walks and more once they stop (people
//! stop at a door, passers-by keep walking). Shells forward raw accelerometer samples
//! (m/s², gravity included, any orientation) and this decides, so Android and iOS classify
//! the same way. Walking shakes the phone with every step, about 2 Hz: the magnitude of the
//! acceleration swings by several m/s² in a pocket or a hand. Standing, it moves by a few
//! tenths. The detector looks at the spread of the magnitude over the last [`WINDOW_MS`], with
//! a band between the two thresholds where it keeps its last answer.

use super::Motion;
use std::collections::VecDeque;

/// How much acceleration history one decision looks at: one stride and a bit, so a stop is
/// reported about this long after the last step.
pub const WINDOW_MS: u64 = 600;
/// Standard deviation of |a| at or above which the wearer is walking, m/s².
pub const WALKING_STD: f64 = 1.0;
/// Below which (over the whole window) they are standing still, m/s².
pub const STILL_STD: f64 = 0.4;
/// A gap in the samples longer than this means the sensor stopped: start over.
pub const MAX_GAP_MS: u64 = 1_000;
/// Fewer samples than this in the window say nothing (sensors deliver 50–100 per second).
const MIN_SAMPLES: usize = 10;

/// Classifies accelerometer samples; reports only changes.
#[derive(Debug, Default)]
pub struct MotionDetector {
    /// (t_ms, |a|)
    window: VecDeque<(u64, f64)>,
    state: Motion,
}

impl MotionDetector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state(&self) -> Motion {
        self.state
    }

    /// Feeds one sample; returns the new state when it changed.
    pub fn push(&mut self, t_ms: u64, x: f64, y: f64, z: f64) -> Option<Motion> {
        let magnitude = (x * x + y * y + z * z).sqrt();
        if !magnitude.is_finite() {
            return None;
        }
        let before = self.state;
        if self
            .window
            .back()
            .is_some_and(|&(last, _)| t_ms < last || t_ms - last > MAX_GAP_MS)
        {
            self.window.clear();
            self.state = Motion::Unknown;
        }
        self.window.push_back((t_ms, magnitude));
        while self
            .window
            .front()
            .is_some_and(|&(t, _)| t_ms - t > WINDOW_MS)
        {
            self.window.pop_front();
        }
        let span = t_ms - self.window.front().map_or(t_ms, |&(t, _)| t);
        if self.window.len() >= MIN_SAMPLES && span * 10 >= WINDOW_MS * 8 {
            let std = std_dev(self.window.iter().map(|&(_, m)| m));
            if std >= WALKING_STD {
                self.state = Motion::Walking;
            } else if std < STILL_STD {
                self.state = Motion::Still;
            } else if self.state == Motion::Unknown {
                // Between the thresholds from a fresh start: shuffling, not striding.
                self.state = Motion::Still;
            }
        }
        (self.state != before).then_some(self.state)
    }

    /// The sensor stopped (scanning ended, or the platform paused it).
    pub fn stop(&mut self) -> Option<Motion> {
        self.window.clear();
        let before = std::mem::take(&mut self.state);
        (before != Motion::Unknown).then_some(Motion::Unknown)
    }
}

fn std_dev(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (n, sum) = values
        .clone()
        .fold((0.0, 0.0), |(n, s), v| (n + 1.0, s + v));
    let mean = sum / n;
    (values.map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: f64 = 9.81;

    /// 50 Hz samples from `t0` for `ms`: walking bounces the phone up and down by ±`swing`
    /// m/s² at 1.9 Hz (along gravity, which here is the z axis), plus a small deterministic
    /// jitter sideways.
    fn feed(d: &mut MotionDetector, t0: u64, ms: u64, swing: f64) -> Vec<(u64, Motion)> {
        (0..ms / 20)
            .filter_map(|i| {
                let t = t0 + i * 20;
                let s = t as f64 / 1000.0;
                let bounce = swing * (std::f64::consts::TAU * 1.9 * s).sin();
                let jitter = 0.08 * (s * 37.0).sin();
                d.push(t, 0.3, jitter, G + bounce).map(|m| (t, m))
            })
            .collect()
    }

    #[test]
    fn walking_then_standing_then_walking() {
        let mut d = MotionDetector::new();
        let walking = feed(&mut d, 0, 3_000, 3.0);
        assert_eq!(walking.len(), 1, "{walking:?}");
        assert_eq!(walking[0].1, Motion::Walking);
        assert!(
            walking[0].0 <= 700,
            "walking reported at {} ms",
            walking[0].0
        );
        let stop = feed(&mut d, 3_000, 3_000, 0.0);
        assert_eq!(stop.len(), 1, "{stop:?}");
        assert_eq!(stop[0].1, Motion::Still);
        // Reported once the last step has left the window, not before.
        let lag = stop[0].0 - 3_000;
        assert!(
            (300..=WINDOW_MS + 100).contains(&lag),
            "still after {lag} ms"
        );
        let again = feed(&mut d, 6_000, 2_000, 2.0);
        assert_eq!(again.first().map(|&(_, m)| m), Some(Motion::Walking));
        assert!(
            again[0].0 - 6_000 <= 400,
            "walking again after {} ms",
            again[0].0
        );
    }

    #[test]
    fn a_phone_on_a_table_is_still_and_a_gentle_hand_is_not_walking() {
        let mut d = MotionDetector::new();
        // Decided as soon as the window holds most of [`WINDOW_MS`].
        assert_eq!(feed(&mut d, 0, 2_000, 0.05), vec![(480, Motion::Still)]);
        // Turning the phone over in a hand (±0.5 m/s²) is not a stride.
        assert!(feed(&mut d, 2_000, 2_000, 0.5).is_empty());
        assert_eq!(d.state(), Motion::Still);
    }

    #[test]
    fn a_gap_or_a_stop_forgets_the_state() {
        let mut d = MotionDetector::new();
        feed(&mut d, 0, 2_000, 3.0);
        assert_eq!(d.state(), Motion::Walking);
        // Two seconds without samples: start over, unknown until the window refills.
        assert_eq!(d.push(4_000, 0.0, 0.0, G), Some(Motion::Unknown));
        assert_eq!(d.stop(), None);
        feed(&mut d, 5_000, 1_000, 3.0);
        assert_eq!(d.stop(), Some(Motion::Unknown));
        // Garbage from a broken sensor is ignored.
        assert_eq!(d.push(7_000, f64::NAN, 0.0, G), None);
    }
}
