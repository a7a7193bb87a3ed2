//! The arrival test: is this a person who walked up and now stands within 1 m of the door, or
//! someone passing by at 2 m or more?
//!
//! A fixed RSSI threshold cannot answer that within 1.5 s, because how the phone is carried
//! shifts every reading by an unknown few dB (a pocket or bag −3…−6 dB, a phone held up +2…+4
//! dB): a pocketed phone at 0.7 m reads like a hand-held phone passing at 2 m. The *shape* of the
//! last few seconds does not shift with the offset: an arrival is a steep rise (the distance
//! falls from metres to below one) that then holds, a pass-by is a gentle bump that peaks and
//! falls.
//!
//! So the test fits the raw readings of the last `fit_ms` under both hypotheses with the
//! log-distance model, each over a grid of walking speeds (narrowed around the wearer's pace
//! when the caller trusts it, see [`Pace`]) and timings (the alternative also
//! holds walking up and stopping short, at 2–3 m), with the carry offset
//! fitted in closed form (least squares, clamped to a plausible range; narrower when the phone
//! reports how it is carried, see [`Offsets`]), and compares their
//! marginal likelihoods under Gaussian noise: `ln p(readings | arrival) − ln p(readings |
//! pass-by)`, each averaged over its grid (a uniform prior). A positive value favours arrival.
//!
//! Readings are first averaged in [`BIN_MS`] bins and fitted by generalised least squares. The
//! noise has a fast part, independent per reading (multipath differs per channel and packet),
//! which averaging a bin of `k` readings divides by `k`, and a correlated part `σc` (body
//! shadowing, which changes over about half a second), which it does not and which neighbouring
//! bins share (`σc²·exp(−Δt/τ)`). Treating readings as independent would let a phone that hears
//! a fast-advertising door 30 times a second count every reading as new evidence and over-trust
//! a slow shadowing swell; this way the evidence hardly depends on the advertising rate, and the
//! cost stays at about 40 bins per test.

use std::collections::VecDeque;

/// Walking speeds both hypotheses consider, m/s.
const SPEEDS: [f64; 6] = [0.6, 0.8, 1.0, 1.25, 1.55, 1.9];
/// Where an arriving person stops, metres from the door.
const STOPS: [f64; 4] = [0.3, 0.5, 0.7, 0.9];
/// Closest distance of a pass-by, metres (the target: no unlock at 2 m or more).
const PASS_DISTANCES: [f64; 4] = [2.0, 2.5, 3.0, 4.0];
/// Where someone who walked up but stopped short stands (waiting beside the door), metres.
const SHORT_STOPS: [f64; 3] = [2.0, 2.5, 3.0];
/// Grid step for the timing of the stop (arrival) or the closest point (pass-by), seconds.
const TIME_STEP_S: f64 = 0.1;
/// Carry offsets the fit may use when nothing is known about how the phone is carried, dB.
pub const OFFSET_RANGE_DB: (f64, f64) = (-6.0, 4.0);
/// Fewer readings than this say too little about shape.
pub const MIN_READINGS: usize = 8;
/// Readings are averaged over bins of this length before the fit.
pub const BIN_MS: u64 = 100;

/// The noise the test assumes, dB (one standard deviation each).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Of one reading.
    pub per_reading_db: f64,
    /// The part of it that is correlated over several bins (does not average out).
    pub correlated_db: f64,
    /// How fast that correlation decays (`exp(−Δt / correlation_ms)`); 0: bins independent.
    pub correlation_ms: f64,
}

/// What the fit may assume about the carry offset: it lies in `likely`, except with
/// probability `doubt` (the phone's report of how it is carried was wrong), when it may lie
/// anywhere in `likely` or [`OFFSET_RANGE_DB`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offsets {
    pub likely: (f64, f64),
    pub doubt: f64,
}

impl Offsets {
    /// Nothing known about the carry.
    pub const ANY: Offsets = Offsets {
        likely: OFFSET_RANGE_DB,
        doubt: 0.0,
    };
}

/// What the fit may assume about the walking speed: any in [`SPEEDS`], or, when the phone
/// reports its wearer's pace, one within a factor `1 + spread` of it, except with probability
/// `doubt` (the pace estimate was wrong), when it may again be any in [`SPEEDS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Reported walking speed, m/s.
    pub reported: Option<f64>,
    pub spread: f64,
    pub doubt: f64,
}

impl Pace {
    /// Nothing known about the walking speed.
    pub const ANY: Pace = Pace {
        reported: None,
        spread: 0.0,
        doubt: 1.0,
    };

    /// Speeds the reported pace makes likely: a geometric grid across its spread. A pace is
    /// held to walking speeds (a tiny one would stretch the arrival grid without end), and a
    /// spread or doubt that is no probability or factor means the pace is not used.
    fn likely_speeds(self) -> Option<[f64; PACE_SPEEDS]> {
        let v = self.reported.filter(|v| v.is_finite() && *v > 0.0)?;
        let v = v.clamp(SPEEDS[0] / 2.0, SPEEDS[SPEEDS.len() - 1] * 1.5);
        if !(0.0..=1.0).contains(&self.spread) || !(0.0..1.0).contains(&self.doubt) {
            return None;
        }
        let ratio = 1.0 + self.spread;
        Some(std::array::from_fn(|i| {
            let f = i as f64 / (PACE_SPEEDS - 1) as f64;
            v / ratio * ratio.powf(2.0 * f)
        }))
    }
}

/// Speeds fitted around a reported pace.
const PACE_SPEEDS: usize = 5;

/// Log-likelihood ratio (nats) of arrival against pass-by for the readings `(t_ms, rssi)`,
/// judged at `now_ms`. `None` with fewer than [`MIN_READINGS`].
pub fn evidence(
    readings: &VecDeque<(u64, i16)>,
    now_ms: u64,
    tx_power: i8,
    path_loss_exponent: f64,
    noise: Noise,
    offsets: Offsets,
    pace: Pace,
) -> Option<f64> {
    if readings.len() < MIN_READINGS {
        return None;
    }
    let fit = Fit::new(
        &bins(readings, now_ms),
        noise,
        tx_power as f64,
        10.0 * path_loss_exponent,
        offsets,
    );
    let (arrival, pass_by) = hypotheses(&fit, &SPEEDS);
    let (arrival, pass_by) = match pace.likely_speeds() {
        None => (
            fit.log_mean_likelihood(&arrival),
            fit.log_mean_likelihood(&pass_by),
        ),
        Some(speeds) => {
            let (arrival_likely, pass_by_likely) = hypotheses(&fit, &speeds);
            let mix = |likely: f64, any: f64| ln_mix(pace.doubt, likely, any);
            (
                mix(
                    fit.log_mean_likelihood(&arrival_likely),
                    fit.log_mean_likelihood(&arrival),
                ),
                mix(
                    fit.log_mean_likelihood(&pass_by_likely),
                    fit.log_mean_likelihood(&pass_by),
                ),
            )
        }
    };
    Some(arrival - pass_by)
}

/// The fit of every arrival and every pass-by (or stop short) on the grid at these speeds.
fn hypotheses(fit: &Fit, speeds: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut arrival = Vec::with_capacity(120 * speeds.len());
    let mut pass_by = Vec::with_capacity(330 * speeds.len());
    for &v in speeds {
        for stop in STOPS {
            // The stop may still be ahead, as long as the person is within 1 m now.
            let latest = (1.0 - stop) / v;
            let mut stopped_at = -2.0;
            while stopped_at <= latest + 1e-9 {
                arrival.push(fit.sse(|t| stop + v * (stopped_at - t).max(0.0)));
                stopped_at += TIME_STEP_S;
            }
        }
        for b in PASS_DISTANCES {
            let mut closest_at = -2.5;
            while closest_at <= 2.5 + 1e-9 {
                pass_by.push(fit.sse(|t| (b * b + (v * (t - closest_at)).powi(2)).sqrt()));
                closest_at += TIME_STEP_S;
            }
        }
        // Not arriving either: walked up and stopped at 2 m or more (already standing now, and
        // perhaps for the whole window).
        for stop in SHORT_STOPS {
            let mut stopped_at = -4.0;
            while stopped_at <= 1e-9 {
                pass_by.push(fit.sse(|t| stop + v * (stopped_at - t).max(0.0)));
                stopped_at += TIME_STEP_S;
            }
        }
    }
    (arrival, pass_by)
}

/// A bin of readings: mean time relative to now (s, ≤ 0), mean RSSI, reading count.
struct Bin {
    t: f64,
    rssi: f64,
    count: u32,
}

/// Averages readings in [`BIN_MS`] bins counted back from `now_ms`.
fn bins(readings: &VecDeque<(u64, i16)>, now_ms: u64) -> Vec<Bin> {
    let mut out: Vec<Bin> = Vec::new();
    let mut current: Option<(u64, f64, f64, u32)> = None; // (bin, Σt, Σrssi, k)
    let mut flush = |(_, st, sr, k): (u64, f64, f64, u32)| {
        out.push(Bin {
            t: (st / k as f64 - now_ms as f64) / 1000.0,
            rssi: sr / k as f64,
            count: k,
        });
    };
    for &(t, r) in readings {
        let bin = now_ms.saturating_sub(t) / BIN_MS;
        match &mut current {
            Some(c) if c.0 == bin => {
                c.1 += t as f64;
                c.2 += r as f64;
                c.3 += 1;
            }
            _ => {
                if let Some(c) = current.take() {
                    flush(c);
                }
                current = Some((bin, t as f64, r as f64, 1));
            }
        }
    }
    if let Some(c) = current {
        flush(c);
    }
    out
}

/// Generalised least squares over the bins: the noise covariance is the fast part (per
/// reading, so divided by the bin's count) on the diagonal plus the correlated part decaying
/// as `exp(−Δt / correlation)`. Residuals are whitened with the covariance's Cholesky factor,
/// so correlated bins count once, not once each.
struct Fit {
    times: Vec<f64>,
    rssi: Vec<f64>,
    /// Lower-triangular Cholesky factor of the covariance, row-major.
    chol: Vec<f64>,
    /// The whitened all-ones vector (the direction of the carry offset) and its squared norm.
    ones: Vec<f64>,
    ones_norm: f64,
    tx: f64,
    slope: f64,
    offsets: Offsets,
}

impl Fit {
    fn new(bins: &[Bin], noise: Noise, tx: f64, slope: f64, offsets: Offsets) -> Self {
        let n = bins.len();
        let correlated = noise.correlated_db.min(noise.per_reading_db).powi(2);
        let fast = noise.per_reading_db.powi(2) - correlated;
        let tau = noise.correlation_ms / 1000.0;
        let mut cov = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let c = if i == j {
                    fast / bins[i].count as f64 + correlated
                } else if tau > 0.0 {
                    correlated * (-(bins[i].t - bins[j].t).abs() / tau).exp()
                } else {
                    0.0
                };
                cov[i * n + j] = c;
            }
        }
        let chol = cholesky(cov, n);
        let mut fit = Self {
            times: bins.iter().map(|b| b.t).collect(),
            rssi: bins.iter().map(|b| b.rssi).collect(),
            chol,
            ones: vec![],
            ones_norm: 0.0,
            tx,
            slope,
            offsets,
        };
        fit.ones = fit.whiten(vec![1.0; n]);
        fit.ones_norm = fit.ones.iter().map(|u| u * u).sum();
        fit
    }

    /// Solves `L z = r` in place.
    fn whiten(&self, mut r: Vec<f64>) -> Vec<f64> {
        let n = r.len();
        for i in 0..n {
            let row = &self.chol[i * n..i * n + i + 1];
            let dot: f64 = row[..i].iter().zip(&r[..i]).map(|(l, z)| l * z).sum();
            r[i] = (r[i] - dot) / row[i];
        }
        r
    }

    /// Negative log-likelihood (up to a constant both hypotheses share) of the bins against
    /// `distance(t)`, with the best carry offset inside the likely range, mixed with the best
    /// one anywhere by the [`Offsets::doubt`].
    fn sse(&self, distance: impl Fn(f64) -> f64) -> f64 {
        let residuals = self
            .times
            .iter()
            .zip(&self.rssi)
            .map(|(&t, &r)| r - (self.tx - self.slope * distance(t).max(0.05).log10()))
            .collect();
        let z = self.whiten(residuals);
        let along: f64 = z.iter().zip(&self.ones).map(|(z, u)| z * u).sum();
        let squared: f64 = z.iter().map(|z| z * z).sum();
        // ½‖z − o·u‖² expanded, so each offset range costs nothing more.
        let within = |(lo, hi): (f64, f64)| {
            let o = (along / self.ones_norm).clamp(lo, hi);
            0.5 * (squared - 2.0 * o * along + o * o * self.ones_norm)
        };
        let likely = within(self.offsets.likely);
        if self.offsets.doubt <= 0.0 {
            return likely;
        }
        let (lo, hi) = self.offsets.likely;
        let anywhere = within((lo.min(OFFSET_RANGE_DB.0), hi.max(OFFSET_RANGE_DB.1)));
        -ln_mix(self.offsets.doubt, -likely, -anywhere)
    }

    /// `ln mean(exp(−sse))` over a hypothesis's grid, computed stably.
    fn log_mean_likelihood(&self, sses: &[f64]) -> f64 {
        let best = sses.iter().copied().fold(f64::INFINITY, f64::min);
        let sum: f64 = sses.iter().map(|e| (-(e - best)).exp()).sum();
        -best + (sum / sses.len() as f64).ln()
    }
}

/// `ln((1 − doubt)·e^likely + doubt·e^any)`, computed stably: a log-likelihood when the
/// likely assumption holds except with probability `doubt`.
fn ln_mix(doubt: f64, likely: f64, any: f64) -> f64 {
    let (l, a) = (likely + (1.0 - doubt).ln(), any + doubt.ln());
    let top = l.max(a);
    top + ((l - top).exp() + (a - top).exp()).ln()
}

/// Cholesky factor `L` (row-major, lower) of a symmetric positive-definite matrix given by its
/// lower triangle.
fn cholesky(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for j in 0..n {
        let diag = a[j * n + j] - (0..j).map(|k| a[j * n + k].powi(2)).sum::<f64>();
        let d = diag.max(1e-9).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum();
            a[i * n + j] = (a[i * n + j] - dot) / d;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const TX: i8 = -59;
    const NOISE: Noise = Noise {
        per_reading_db: 4.5,
        correlated_db: 2.0,
        correlation_ms: 500.0,
    };

    /// Noise-free readings every 100 ms over 3 s ending at 10 s, at `distance(t_s)` plus an
    /// `offset`.
    fn readings(offset: f64, distance: impl Fn(f64) -> f64) -> VecDeque<(u64, i16)> {
        readings_every(100, offset, distance)
    }

    fn readings_every(
        gap_ms: u64,
        offset: f64,
        distance: impl Fn(f64) -> f64,
    ) -> VecDeque<(u64, i16)> {
        (7_000..=10_000)
            .step_by(gap_ms as usize)
            .map(|t_ms| {
                let r = TX as f64 - 20.0 * distance(t_ms as f64 / 1000.0).log10() + offset;
                (t_ms, r.round() as i16)
            })
            .collect()
    }

    fn arrived_at_9s(t: f64) -> f64 {
        0.5 + 1.2 * (9.0 - t).max(0.0)
    }

    /// The evidence at 10 s with nothing known about the carry.
    fn judged(walk: &VecDeque<(u64, i16)>) -> f64 {
        evidence(walk, 10_000, TX, 2.0, NOISE, Offsets::ANY, Pace::ANY).unwrap()
    }

    #[test]
    fn favours_arrival_whatever_the_carry_offset() {
        // A clean arrival clears the threshold for a wearer who has stopped with the phone in
        // a bag (−5 dB) as in the hand (+2 dB); without motion data, only out of the bag.
        let p = crate::walkup::WalkUpParams::default();
        for offset in [-5.0, -3.0, 0.0, 2.0] {
            let e = judged(&readings(offset, arrived_at_9s));
            assert!(e > p.still_evidence, "offset {offset}: {e}");
            if offset >= 0.0 {
                assert!(e > p.min_evidence, "offset {offset}: {e}");
            }
        }
    }

    #[test]
    fn favours_pass_by_even_when_held_up() {
        for offset in [-3.0, 0.0, 3.0] {
            let past = |t: f64| (4.0 + (1.2 * (t - 9.5)).powi(2)).sqrt();
            let e = judged(&readings(offset, past));
            assert!(e < 0.0, "offset {offset}: {e}");
        }
    }

    #[test]
    fn stopping_short_of_the_door_is_not_arrival() {
        // Walked up and stopped at 2 m, phone held up: the level is a bag at the door's, the
        // rise is not.
        let stopped = |t: f64| 2.0 + 1.2 * (9.0 - t).max(0.0);
        let e = judged(&readings(3.0, stopped));
        assert!(e < 0.0, "{e}");
    }

    #[test]
    fn the_carry_report_tells_a_bag_at_the_door_from_a_raised_phone_short_of_it() {
        use crate::walkup::{Carry, WalkUpParams};
        let params = WalkUpParams::default();
        let doubt = params.carry_doubt;
        let judge = |offset: f64, distance: &dyn Fn(f64) -> f64, carry: Carry| {
            let walk = readings(offset, distance);
            evidence(
                &walk,
                10_000,
                TX,
                2.0,
                NOISE,
                carry.offsets(&params),
                Pace::ANY,
            )
            .unwrap()
        };
        // A bagged phone (−5 dB) that arrived: knowing it is covered rules out a raised phone
        // stopping short, so the evidence grows.
        let bag_at_door = judge(-5.0, &arrived_at_9s, Carry::Unknown);
        let covered = judge(-5.0, &arrived_at_9s, Carry::Covered);
        assert!(covered > bag_at_door + 1.0, "{bag_at_door} then {covered}");
        // A phone held high (+4 dB) that stopped at 2 m reads like one a little weaker that
        // arrived (without a report the evidence is about even); knowing it is in the hand
        // turns it against arrival.
        let short = |t: f64| 2.0 + 1.2 * (9.0 - t).max(0.0);
        let raised_short = judge(4.0, &short, Carry::Unknown);
        let uncovered = judge(4.0, &short, Carry::Uncovered);
        assert!(
            raised_short > 0.0 && uncovered < 0.0,
            "{raised_short} then {uncovered}"
        );
        // A wrong report costs at most ln(doubt) against knowing nothing, never a veto.
        let wrong = judge(-5.0, &arrived_at_9s, Carry::Uncovered);
        assert!(
            wrong >= bag_at_door + doubt.ln() - 0.5,
            "{bag_at_door} then {wrong}"
        );
    }

    #[test]
    fn a_reported_pace_tells_a_slow_arrival_from_a_brisk_stop_short() {
        // The engine ignores the pace by default (doubt 1); the bench tried 0.1.
        const PACE_DOUBT: f64 = 0.1;
        let params = crate::walkup::WalkUpParams::default();
        let judge = |offset: f64, distance: &dyn Fn(f64) -> f64, pace: Option<f64>| {
            let pace = Pace {
                reported: pace,
                spread: params.pace_spread,
                doubt: PACE_DOUBT,
            };
            let walk = readings(offset, distance);
            evidence(&walk, 10_000, TX, 2.0, NOISE, Offsets::ANY, pace).unwrap()
        };
        // A slow walker (0.6 m/s) with a bagged phone arrives at 9.5 s.
        let slow = |t: f64| 0.5 + 0.6 * (9.5 - t).max(0.0);
        // A brisk one (1.4 m/s) with a raised phone stops 2 m short at 9 s.
        let brisk_short = |t: f64| 2.0 + 1.4 * (9.0 - t).max(0.0);
        // Without a pace each could be the other at another speed; with it, the slow arrival
        // gains and the brisk stop loses (about 0.7 nats each on these 3 s).
        let (slow_any, slow_paced) = (judge(-4.0, &slow, None), judge(-4.0, &slow, Some(0.6)));
        assert!(slow_paced > slow_any + 0.4, "{slow_any} then {slow_paced}");
        let short_any = judge(3.0, &brisk_short, None);
        let short_paced = judge(3.0, &brisk_short, Some(1.4));
        assert!(
            short_paced < short_any - 0.4 && short_paced < 0.0,
            "{short_any} then {short_paced}"
        );
        // A wrong pace costs evidence, here less than ln(1/doubt): any speed stays in the mix
        // with weight `doubt`.
        let wrong = judge(-4.0, &slow, Some(1.4));
        assert!(
            wrong < slow_any && wrong >= slow_any + PACE_DOUBT.ln(),
            "{slow_any} then {wrong}"
        );
        // A pace that is no number is no pace, and one far below walking counts as the
        // slowest walk (and returns, rather than fitting an endless grid).
        for bad in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
            assert_eq!(judge(-4.0, &slow, Some(bad)), slow_any, "{bad}");
        }
        assert_eq!(
            judge(-4.0, &slow, Some(1e-9)),
            judge(-4.0, &slow, Some(0.3))
        );
    }

    #[test]
    fn standing_a_few_metres_away_is_not_arrival() {
        for offset in [-3.0, 0.0, 3.0] {
            let e = judged(&readings(offset, |_| 3.0));
            assert!(e < 0.0, "offset {offset}: {e}");
        }
    }

    #[test]
    fn a_faster_advertising_door_does_not_multiply_the_evidence() {
        // Three times the readings of the same walk: the per-reading noise averages out, the
        // correlated part does not, so the evidence grows by far less than three times.
        let with_gap = |gap_ms| {
            let walk = readings_every(gap_ms, -3.0, arrived_at_9s);
            judged(&walk)
        };
        let (slow, fast) = (with_gap(100), with_gap(33));
        assert!(fast > slow, "more readings say more: {slow} then {fast}");
        assert!(
            fast < 2.0 * slow,
            "but not three times more: {slow} then {fast}"
        );
    }

    #[test]
    fn correlated_noise_is_counted_once() {
        // With the correlated part treated as independent per bin the same readings weigh more.
        let independent = Noise {
            correlation_ms: 0.0,
            ..NOISE
        };
        let walk = readings(-3.0, arrived_at_9s);
        let gls = judged(&walk);
        let naive = evidence(&walk, 10_000, TX, 2.0, independent, Offsets::ANY, Pace::ANY).unwrap();
        assert!(naive > gls, "independent {naive} vs correlated {gls}");
    }

    #[test]
    fn cholesky_factor_reproduces_the_matrix() {
        let a = [4.0, 0.0, 0.0, 2.0, 5.0, 0.0, 0.4, 1.0, 3.0];
        let l = cholesky(a.to_vec(), 3);
        for i in 0..3 {
            for j in 0..=i {
                let v: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((v - a[i * 3 + j]).abs() < 1e-12, "({i},{j}): {v}");
            }
        }
    }

    #[test]
    fn too_few_readings_decide_nothing() {
        let few: VecDeque<(u64, i16)> = (0..MIN_READINGS as u64 - 1)
            .map(|i| (i * 100, -60))
            .collect();
        assert_eq!(
            evidence(&few, 1_000, TX, 2.0, NOISE, Offsets::ANY, Pace::ANY),
            None
        );
    }
}
