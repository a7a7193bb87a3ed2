//! The arrival test: is this a person who walked up and now stands within 1 m of the door, or
//! someone passing by at 2 m or more?
//!
//! A fixed RSSI threshold cannot answer that within 1.5 s, because how the phone is carried
//! shifts every reading by an unknown few dB (a pocket or bag −3…−5 dB, a phone held up +2…+3
//! dB): a pocketed phone at 0.7 m reads like a hand-held phone passing at 2 m. The *shape* of the
//! last few seconds does not shift with the offset: an arrival is a steep rise (the distance
//! falls from metres to below one) that then holds, a pass-by is a gentle bump that peaks and
//! falls.
//!
//! So the test fits the raw readings of the last `fit_ms` under both hypotheses with the
//! log-distance model, each over a grid of walking speeds and timings, with the carry offset
//! fitted in closed form (least squares, clamped to a plausible range), and compares their
//! marginal likelihoods under Gaussian noise: `ln p(readings | arrival) − ln p(readings |
//! pass-by)`, each averaged over its grid (a uniform prior). A positive value favours arrival.

use std::collections::VecDeque;

/// Walking speeds both hypotheses consider, m/s.
const SPEEDS: [f64; 6] = [0.6, 0.8, 1.0, 1.25, 1.55, 1.9];
/// Where an arriving person stops, metres from the door.
const STOPS: [f64; 4] = [0.3, 0.5, 0.7, 0.9];
/// Closest distance of a pass-by, metres (the target: no unlock at 2 m or more).
const PASS_DISTANCES: [f64; 4] = [2.0, 2.5, 3.0, 4.0];
/// Grid step for the timing of the stop (arrival) or the closest point (pass-by), seconds.
const TIME_STEP_S: f64 = 0.1;
/// Carry offsets the fit may use, dB.
const OFFSET_RANGE_DB: (f64, f64) = (-6.0, 4.0);
/// Fewer readings than this say too little about shape.
pub const MIN_READINGS: usize = 8;

/// Log-likelihood ratio (nats) of arrival against pass-by for the readings `(t_ms, rssi)`,
/// judged at `now_ms`. `None` with fewer than [`MIN_READINGS`].
pub fn evidence(
    readings: &VecDeque<(u64, i16)>,
    now_ms: u64,
    tx_power: i8,
    path_loss_exponent: f64,
    noise_db: f64,
) -> Option<f64> {
    if readings.len() < MIN_READINGS {
        return None;
    }
    let fit = Fit {
        // Seconds relative to now (≤ 0) and dB.
        points: readings
            .iter()
            .map(|&(t, r)| ((t as f64 - now_ms as f64) / 1000.0, r as f64))
            .collect(),
        tx: tx_power as f64,
        slope: 10.0 * path_loss_exponent,
        scale: 2.0 * noise_db * noise_db,
    };

    let mut arrival = Vec::with_capacity(700);
    for v in SPEEDS {
        for stop in STOPS {
            // The stop may still be ahead, as long as the person is within 1 m now.
            let latest = (1.0 - stop) / v;
            let mut stopped_at = -2.0;
            while stopped_at <= latest + 1e-9 {
                arrival.push(fit.sse(|t| stop + v * (stopped_at - t).max(0.0)));
                stopped_at += TIME_STEP_S;
            }
        }
    }
    let mut pass_by = Vec::with_capacity(1300);
    for v in SPEEDS {
        for b in PASS_DISTANCES {
            let mut closest_at = -2.5;
            while closest_at <= 2.5 + 1e-9 {
                pass_by.push(fit.sse(|t| (b * b + (v * (t - closest_at)).powi(2)).sqrt()));
                closest_at += TIME_STEP_S;
            }
        }
    }
    Some(fit.log_mean_likelihood(&arrival) - fit.log_mean_likelihood(&pass_by))
}

struct Fit {
    points: Vec<(f64, f64)>,
    tx: f64,
    slope: f64,
    /// 2σ²: turns a sum of squared residuals into a negative log-likelihood.
    scale: f64,
}

impl Fit {
    /// Sum of squared residuals of the readings against `distance(t)`, with the best carry
    /// offset inside [`OFFSET_RANGE_DB`].
    fn sse(&self, distance: impl Fn(f64) -> f64) -> f64 {
        let model = |t: f64| self.tx - self.slope * distance(t).max(0.05).log10();
        let mean_residual =
            self.points.iter().map(|&(t, r)| r - model(t)).sum::<f64>() / self.points.len() as f64;
        let offset = mean_residual.clamp(OFFSET_RANGE_DB.0, OFFSET_RANGE_DB.1);
        self.points
            .iter()
            .map(|&(t, r)| (r - model(t) - offset).powi(2))
            .sum()
    }

    /// `ln mean(exp(−sse / 2σ²))` over a hypothesis's grid, computed stably.
    fn log_mean_likelihood(&self, sses: &[f64]) -> f64 {
        let best = sses.iter().copied().fold(f64::INFINITY, f64::min);
        let sum: f64 = sses.iter().map(|e| (-(e - best) / self.scale).exp()).sum();
        -best / self.scale + (sum / sses.len() as f64).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TX: i8 = -59;

    /// Noise-free readings every 100 ms over 3 s ending at 10 s, at `distance(t_s)` plus an
    /// `offset`.
    fn readings(offset: f64, distance: impl Fn(f64) -> f64) -> VecDeque<(u64, i16)> {
        (70..=100)
            .map(|i| {
                let t = i as f64 / 10.0;
                let r = TX as f64 - 20.0 * distance(t).log10() + offset;
                (i * 100, r.round() as i16)
            })
            .collect()
    }

    fn arrived_at_9s(t: f64) -> f64 {
        0.5 + 1.2 * (9.0 - t).max(0.0)
    }

    #[test]
    fn favours_arrival_whatever_the_carry_offset() {
        for offset in [-5.0, -3.0, 0.0, 2.0] {
            let e = evidence(&readings(offset, arrived_at_9s), 10_000, TX, 2.0, 4.5).unwrap();
            assert!(e > 8.0, "offset {offset}: {e}");
        }
    }

    #[test]
    fn favours_pass_by_even_when_held_up() {
        for offset in [-3.0, 0.0, 3.0] {
            let past = |t: f64| (4.0 + (1.2 * (t - 9.5)).powi(2)).sqrt();
            let e = evidence(&readings(offset, past), 10_000, TX, 2.0, 4.5).unwrap();
            assert!(e < 0.0, "offset {offset}: {e}");
        }
    }

    #[test]
    fn standing_a_few_metres_away_is_not_arrival() {
        for offset in [-3.0, 0.0, 3.0] {
            let e = evidence(&readings(offset, |_| 3.0), 10_000, TX, 2.0, 4.5).unwrap();
            assert!(e < 0.0, "offset {offset}: {e}");
        }
    }

    #[test]
    fn too_few_readings_decide_nothing() {
        let few: VecDeque<(u64, i16)> = (0..MIN_READINGS as u64 - 1)
            .map(|i| (i * 100, -60))
            .collect();
        assert_eq!(evidence(&few, 1_000, TX, 2.0, 4.5), None);
    }
}
