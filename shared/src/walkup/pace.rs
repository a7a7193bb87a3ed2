//! The wearer's walking pace, from the phone's accelerometer.
//!
//! The arrival test has to guess how fast someone walks, and that guess is what lets a slow
//! walker arriving look like a brisker one stopping short at 2 m (both rise at about the same
//! rate). Steps set the pace: every step jolts the phone once (the magnitude of the
//! acceleration rises above its mean and falls back), so counting those jolts over the last
//! few seconds gives the cadence, and cadence gives speed through a step length that grows
//! with it (an average adult: 0.5 m a step at 1.6 steps/s, 0.7 m at 2 steps/s). The step
//! length of one person differs from that average by 10–20%, which the walk-up engine allows
//! for when it uses the pace ([`super::WalkUpParams::pace_spread`] and
//! [`super::WalkUpParams::pace_doubt`]).

use std::collections::VecDeque;

/// Steps counted for one estimate: a few strides. The cadence is the median gap between them,
/// so one missed step (a doubled gap) or one extra jolt (a split gap) does not move it.
const WINDOW_MS: u64 = 4_000;
/// Fewer steps than this in the window say nothing yet.
const MIN_STEPS: usize = 4;
/// A jolt is a step when |a| rises this far above its recent mean, m/s² (walking swings it by
/// 1–4; turning the phone over in a hand by less than 0.5).
const STEP_RISE: f64 = 0.6;
/// Two jolts closer than this are one step (heel strike and toe-off), ms: 4 steps/s is a run.
const MIN_STEP_MS: u64 = 250;
/// |a| above this (20 g) is a knock or a broken sensor, not a step, m/s².
const MAX_MAGNITUDE: f64 = 200.0;
/// The mean |a| is taken over this long, about two steps.
const MEAN_MS: u64 = 1_000;
/// No step for this long: the wearer stopped, and the last pace stands until they have walked
/// a few steps again (a pause is not counted into the cadence).
const STOPPED_MS: u64 = 1_500;
/// A gap in the samples longer than this means the sensor stopped: start over.
const MAX_GAP_MS: u64 = 1_000;
/// A new estimate is reported only when it moved by more than this fraction.
const REPORT_CHANGE: f64 = 0.05;

/// Walking speed (m/s) for a cadence (steps/s): cadence times a step length of
/// `0.5·cadence − 0.3` m, cadence held to 1.2–2.6 steps/s (a shuffle to a brisk walk).
pub fn speed_for_cadence(steps_per_s: f64) -> f64 {
    let f = steps_per_s.clamp(1.2, 2.6);
    f * (0.5 * f - 0.3)
}

/// Counts steps in accelerometer samples and estimates the pace; reports only changes.
#[derive(Debug, Default)]
pub struct PaceMeter {
    /// (t_ms, |a|) over [`MEAN_MS`].
    recent: VecDeque<(u64, f64)>,
    /// Running sum of `recent`'s magnitudes.
    sum: f64,
    /// Above the step threshold since the last step, not yet back under the mean.
    in_step: bool,
    /// Step times over [`WINDOW_MS`].
    steps: VecDeque<u64>,
    reported: Option<f64>,
}

impl PaceMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last pace reported, m/s.
    pub fn pace(&self) -> Option<f64> {
        self.reported
    }

    /// Feeds one sample (m/s², gravity included, any axes); returns the new pace when it
    /// changed enough to report (`Some(None)`: no pace any more, the sensor restarted).
    pub fn push(&mut self, t_ms: u64, x: f64, y: f64, z: f64) -> Option<Option<f64>> {
        let magnitude = (x * x + y * y + z * z).sqrt();
        if !magnitude.is_finite() || magnitude > MAX_MAGNITUDE {
            return None;
        }
        if self
            .recent
            .back()
            .is_some_and(|&(last, _)| t_ms < last || t_ms - last > MAX_GAP_MS)
        {
            let withdrawn = self.stop();
            self.recent.push_back((t_ms, magnitude));
            self.sum = magnitude;
            return withdrawn;
        }
        self.recent.push_back((t_ms, magnitude));
        self.sum += magnitude;
        while let Some(&(t, m)) = self.recent.front() {
            if t_ms - t <= MEAN_MS {
                break;
            }
            self.sum -= m;
            self.recent.pop_front();
        }
        let span = t_ms - self.recent.front().map_or(t_ms, |&(t, _)| t);
        if span * 2 < MEAN_MS {
            return None; // the mean is not settled yet
        }
        let mean = self.sum / self.recent.len() as f64;
        if self.in_step {
            self.in_step = magnitude > mean;
        } else if magnitude > mean + STEP_RISE
            && self.steps.back().is_none_or(|&s| t_ms - s >= MIN_STEP_MS)
        {
            self.in_step = true;
            if self.steps.back().is_some_and(|&s| t_ms - s > STOPPED_MS) {
                self.steps.clear(); // walking again after a pause
            }
            self.steps.push_back(t_ms);
        }
        while self.steps.front().is_some_and(|&s| t_ms - s > WINDOW_MS) {
            self.steps.pop_front();
        }
        let &last = self.steps.back()?;
        if self.steps.len() < MIN_STEPS || t_ms - last > STOPPED_MS {
            return None; // not walking (yet): the last pace stands
        }
        let mut gaps: Vec<u64> = self
            .steps
            .iter()
            .zip(self.steps.iter().skip(1))
            .map(|(a, b)| b - a)
            .collect();
        gaps.sort_unstable();
        let median_ms = gaps[gaps.len() / 2] as f64;
        let pace = speed_for_cadence(1000.0 / median_ms);
        let changed = self
            .reported
            .is_none_or(|old| (pace / old - 1.0).abs() > REPORT_CHANGE);
        if !changed {
            return None;
        }
        self.reported = Some(pace);
        Some(Some(pace))
    }

    /// The sensor stopped: forget everything; `Some(None)` if a pace had been reported.
    pub fn stop(&mut self) -> Option<Option<f64>> {
        let reported = self.reported.take();
        *self = Self::default();
        reported.map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: f64 = 9.81;

    /// 50 Hz samples from `t0` for `ms` of walking at `cadence` steps/s: each step a sharp
    /// jolt of `swing` m/s² along gravity with a smaller second bump (toe-off) 120 ms later,
    /// plus deterministic jitter; returns the reports.
    fn walk(
        m: &mut PaceMeter,
        t0: u64,
        ms: u64,
        cadence: f64,
        swing: f64,
    ) -> Vec<(u64, Option<f64>)> {
        walk_with(m, t0, ms, cadence, |_| swing)
    }

    /// The same with the swing of each step by its number from 0 (0: a step the phone missed).
    fn walk_with(
        m: &mut PaceMeter,
        t0: u64,
        ms: u64,
        cadence: f64,
        swing_of: impl Fn(u64) -> f64,
    ) -> Vec<(u64, Option<f64>)> {
        (0..ms / 20)
            .filter_map(|i| {
                let t = t0 + i * 20;
                let s = (t - t0) as f64 / 1000.0;
                let swing = swing_of((s * cadence) as u64);
                let phase = (s * cadence).fract() / cadence; // seconds into this step
                let bump = |at: f64, width: f64| (-((phase - at) / width).powi(2)).exp();
                let jolt = swing * (bump(0.05, 0.04) + 0.4 * bump(0.17, 0.03)) - swing * 0.15;
                let jitter = 0.1 * (s * 41.0).sin();
                m.push(t, 0.2, jitter, G + jolt).map(|p| (t, p))
            })
            .collect()
    }

    #[test]
    fn cadence_sets_the_pace() {
        for (cadence, swing) in [(1.5, 3.0), (1.8, 1.5), (2.1, 4.0)] {
            let mut m = PaceMeter::new();
            let reports = walk(&mut m, 0, 8_000, cadence, swing);
            let pace = m.pace().expect("a pace after 8 s of walking");
            let expected = speed_for_cadence(cadence);
            assert!(
                (pace / expected - 1.0).abs() < 0.05,
                "cadence {cadence}: pace {pace:.2}, expected {expected:.2} ({reports:?})"
            );
            // The first estimate comes within a few steps, and it settles: few reports.
            assert!(reports[0].0 <= 3_500, "{reports:?}");
            assert!(reports.len() <= 4, "{reports:?}");
        }
        // Slow walkers are told from brisk ones.
        assert!(speed_for_cadence(1.5) < 0.75 && speed_for_cadence(2.1) > 1.5);
    }

    #[test]
    fn standing_and_handling_the_phone_are_not_steps() {
        let mut m = PaceMeter::new();
        // A hand turning the phone over: ±0.5 m/s² at 2 Hz.
        for i in 0..300u64 {
            let s = i as f64 * 0.02;
            assert_eq!(m.push(i * 20, 0.0, 0.0, G + 0.5 * (s * 12.6).sin()), None);
        }
        assert_eq!(m.pace(), None);
    }

    #[test]
    fn a_missed_step_or_a_pause_does_not_slow_the_pace() {
        let expected = speed_for_cadence(1.8);
        let close = |m: &PaceMeter| m.pace().is_some_and(|p| (p / expected - 1.0).abs() < 0.05);
        // Every fifth step too soft to count: the median gap is still one step.
        let mut m = PaceMeter::new();
        walk_with(
            &mut m,
            0,
            8_000,
            1.8,
            |step| if step % 5 == 3 { 0.0 } else { 3.0 },
        );
        assert!(close(&m), "{:?}", m.pace());
        // Walking, a 3 s pause, walking again: the pause is not a long stride.
        let mut m = PaceMeter::new();
        walk(&mut m, 0, 6_000, 1.8, 3.0);
        walk(&mut m, 6_000, 3_000, 1.0, 0.0);
        let again = walk(&mut m, 9_000, 4_000, 1.8, 3.0);
        assert!(close(&m), "{again:?}");
        assert!(
            again.is_empty(),
            "the same pace again is no news: {again:?}"
        );
    }

    #[test]
    fn broken_samples_are_ignored_and_time_going_back_starts_over() {
        let mut m = PaceMeter::new();
        walk(&mut m, 0, 6_000, 1.8, 3.0);
        let pace = m.pace();
        assert!(pace.is_some());
        // Garbage mid-walk changes nothing: NaN, or a knock of 50 g.
        assert_eq!(m.push(6_000, f64::NAN, 0.0, G), None);
        assert_eq!(m.push(6_010, 0.0, 0.0, 500.0), None);
        walk(&mut m, 6_020, 2_000, 1.8, 3.0);
        assert_eq!(m.pace(), pace);
        // A clock that jumps back (the shell restarted the sensor): forget the pace.
        assert_eq!(m.push(1_000, 0.0, 0.0, G), Some(None));
        assert_eq!(m.pace(), None);
    }

    #[test]
    fn stopping_keeps_the_pace_and_a_sensor_gap_forgets_it() {
        let mut m = PaceMeter::new();
        walk(&mut m, 0, 6_000, 1.8, 3.0);
        let pace = m.pace().expect("walking");
        // Standing at the door: no new report, the walk-up pace stands.
        assert!(walk(&mut m, 6_000, 3_000, 1.0, 0.0).is_empty());
        assert_eq!(m.pace(), Some(pace));
        // Two seconds without samples: the pace is withdrawn.
        assert_eq!(m.push(11_000, 0.0, 0.0, G), Some(None));
        assert_eq!(m.pace(), None);
        assert_eq!(m.stop(), None);
        walk(&mut m, 12_000, 6_000, 1.8, 3.0);
        assert_eq!(m.stop(), Some(None));
    }
}
