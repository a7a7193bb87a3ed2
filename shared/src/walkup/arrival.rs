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
//! when the phone reports one, see [`Pace`]) and timings (the alternative also holds walking
//! up and stopping short, at 2–3 m), with the carry offset fitted in closed form (least
//! squares, clamped to a plausible range; narrower when the phone reports how it is carried,
//! see [`Offsets`]), and compares their marginal likelihoods under Gaussian noise:
//! `ln p(readings | arrival) − ln p(readings | not arriving)`. A positive value favours
//! arrival. Each kind of hypothesis (passing, a walk that stops dead, slows down or paused on
//! the way, see [`Walks`]) is averaged over its own grid, and the kinds are mixed by explicit
//! prior weights, so that adding hypotheses of one kind does not dilute another.
//!
//! Readings are first averaged in [`BIN_MS`] bins and fitted by generalised least squares. The
//! noise has a fast part, independent per reading (multipath differs per channel and packet),
//! which averaging a bin of `k` readings divides by `k`, and a correlated part `σc` (body
//! shadowing, which changes over about half a second), which it does not and which neighbouring
//! bins share (`σc²·exp(−Δt/τ)`). Treating readings as independent would let a phone that hears
//! a fast-advertising door 30 times a second count every reading as new evidence and over-trust
//! a slow shadowing swell; this way the evidence hardly depends on the advertising rate, and the
//! cost stays at about 40 bins per hypothesis.

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

/// What the test assumes about the door's radio and about how people walk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// The door's advertised RSSI at 1 m, dBm.
    pub tx_power: i8,
    pub path_loss_exponent: f64,
    pub noise: Noise,
    pub walks: Walks,
}

/// How people end a walk near a door, as prior weights (each a share, 0 to 1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Walks {
    /// Of the alternative to arriving: passing by (the rest walked up and stopped short).
    pub passing: f64,
    /// Of walks that end in a stop (at the door or short of it): slowing down evenly over the
    /// last 1–2 m rather than stopping dead.
    pub slowing: f64,
    /// Of those walks: having stood 2–4 m out (from before the fitted window until at least
    /// half a second into it) before walking on. The rest walk in at one speed and stop.
    pub paused: f64,
}

impl Default for Walks {
    fn default() -> Self {
        Walks::STRAIGHT
    }
}

impl Walks {
    /// Every stop made dead at one speed, and passing as likely as its share of that grid's
    /// hypotheses: the test as it was before walks could slow down or pause.
    pub const STRAIGHT: Walks = Walks {
        passing: PASSING_SHARE,
        slowing: 0.0,
        paused: 0.0,
    };

    /// Weights of the straight, slowing and paused walks.
    fn gaits(self) -> [f64; 3] {
        let (slowing, paused) = (share(self.slowing), share(self.paused));
        [(1.0 - slowing - paused).max(0.0), slowing, paused]
    }
}

/// A prior weight held to 0…1; one that is no number counts as 0.
fn share(weight: f64) -> f64 {
    if weight.is_finite() {
        weight.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Timings of a pass-by's closest point (−2.5…+2.5 s) and of a stop short of the door
/// (−4…0 s), one per [`TIME_STEP_S`]; a stop at the door may lie up to this many steps ahead.
const PASS_TIMES: usize = 51;
const SHORT_STOP_TIMES: usize = 41;
const MAX_ARRIVAL_STEPS: usize = 620;
/// Passing's share of the straight grid (its number of hypotheses against stopping short's):
/// with it, [`Walks::STRAIGHT`] is the plain average over that grid the test used before.
const PASSING_SHARE: f64 = (PASS_DISTANCES.len() * PASS_TIMES) as f64
    / (PASS_DISTANCES.len() * PASS_TIMES + SHORT_STOPS.len() * SHORT_STOP_TIMES) as f64;

/// Log-likelihood ratio (nats) of arrival against passing by or stopping short, for the
/// readings `(t_ms, rssi)`,
/// judged at `now_ms`. `None` with fewer than [`MIN_READINGS`], or when the evidence is not a
/// finite number.
pub fn evidence(
    readings: &VecDeque<(u64, i16)>,
    now_ms: u64,
    model: &Model,
    offsets: Offsets,
    pace: Pace,
) -> Option<f64> {
    evidence_ranged(readings, now_ms, model, offsets, pace, None)
}

/// Ranged distances (UWB, Channel Sounding) the test fits beside the RSSI, and how they err.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranges<'a> {
    /// `(t_ms, metres)`, time order.
    pub readings: &'a [(u64, f64)],
    pub noise: RangeNoise,
    /// How the phone may be carried. How it is carried moves the RSSI and the ranged
    /// distance together (a bag weakens the one and lengthens the other), so with ranges in
    /// the fit the carry offset comes from these, each paired with its lengthening, rather
    /// than from the test's [`Offsets`].
    pub carries: [CarryClass; 2],
}

/// One way of carrying the phone: the carry offsets it allows (dB), how much longer than the
/// truth it makes ranged distances (0 to `max_bias_m`, uniformly; the bias holds over the
/// window), and its prior weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CarryClass {
    pub offsets: (f64, f64),
    pub max_bias_m: f64,
    pub weight: f64,
}

/// How a ranged distance errs: Gaussian noise around the (lengthened) true distance, except
/// for a share of multipath outliers read up to `outlier_span_m` longer still. A signal that
/// goes round arrives late, never early, so short readings are strong evidence and long ones
/// weak.
///
/// How noisy a stack is varies with the stack, the phone and the room, and a test that
/// assumes less noise than there is becomes overconfident (round 13's held-out noisy Channel
/// Sounding). So the noise is not assumed but learned from the readings themselves: σ is
/// `sigma_m`, or `2·sigma_m`, … up to `2^(levels − 1)·sigma_m`, equally likely beforehand, and
/// each hypothesis is judged by its likelihood marginalised over them. The readings of a
/// window come from one stack, so they share their σ; a hypothesis that predicts them well
/// keeps the sharp evidence of a small σ, while readings scattered more widely than `sigma_m`
/// weigh only as much as their scatter allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeNoise {
    pub sigma_m: f64,
    /// How many noise levels, from 1 (σ is `sigma_m`) to [`MAX_NOISE_LEVELS`].
    pub levels: usize,
    pub outlier_share: f64,
    pub outlier_span_m: f64,
}

/// Biases fitted per hypothesis and carry, spread evenly over `0..=max_bias_m`.
const RANGE_BIASES: usize = 4;
/// At most this many noise levels (σ doubling each): up to 8·`sigma_m`.
pub const MAX_NOISE_LEVELS: usize = 4;
/// At most this many (the newest) ranged readings are fitted: they say where the phone is
/// now; the RSSI already says how it got there.
const MAX_RANGES: usize = 12;

/// [`evidence`], with ranged distances in the fit as well.
pub fn evidence_ranged(
    readings: &VecDeque<(u64, i16)>,
    now_ms: u64,
    model: &Model,
    offsets: Offsets,
    pace: Pace,
    ranges: Option<Ranges<'_>>,
) -> Option<f64> {
    if readings.len() < MIN_READINGS {
        return None;
    }
    let mut fit = Fit::new(
        &bins(readings, now_ms),
        model.noise,
        model.tx_power as f64,
        10.0 * model.path_loss_exponent,
        offsets,
    );
    // Ranges from before the first RSSI reading lie outside what the hypotheses describe.
    let since = readings.iter().map(|&(t, _)| t).min().unwrap_or(now_ms);
    fit.ranged = ranges.and_then(|r| RangeFit::new(r, since, now_ms));
    let any = Hypotheses::fit(&fit, &SPEEDS, model.walks);
    let (arrival, alternative) = match pace.likely_speeds() {
        None => (any.arrival(), any.alternative()),
        Some(speeds) => {
            let likely = Hypotheses::fit(&fit, &speeds, model.walks);
            let mix = |likely: f64, any: f64| ln_mix(pace.doubt, likely, any);
            (
                mix(likely.arrival(), any.arrival()),
                mix(likely.alternative(), any.alternative()),
            )
        }
    };
    // Never infinite evidence: with a hypothesis left without weight, decide nothing.
    Some(arrival - alternative).filter(|e| e.is_finite())
}

/// How a walk that ends in a stop got there.
#[derive(Debug, Clone, Copy)]
enum Gait {
    /// At one speed, stopping dead.
    Straight,
    /// Slowing down evenly over this many metres.
    Slowing(f64),
    /// Having stood at this distance (m) before walking on at one speed.
    Paused(f64),
}

/// Braking distances of a slowing walk, metres.
const BRAKING_M: [f64; 2] = [1.0, 2.0];
/// Where a paused walk stood, metres from the door.
const PAUSED_AT_M: [f64; 3] = [2.0, 3.0, 4.0];
/// A pause must show for this long in the window, s (else it is a straight walk there).
const PAUSE_SEEN_S: f64 = 0.5;

impl Gait {
    /// Distance from the door `before` seconds before stopping at `stop` (after the stop when
    /// negative), walking at `v`.
    fn distance(self, v: f64, stop: f64, before: f64) -> f64 {
        let before = before.max(0.0);
        match self {
            Gait::Straight => stop + v * before,
            Gait::Slowing(braking) => {
                let braking_s = 2.0 * braking / v;
                if before <= braking_s {
                    stop + braking * (before / braking_s).powi(2)
                } else {
                    stop + braking + v * (before - braking_s)
                }
            }
            Gait::Paused(at) => (stop + v * before).min(at),
        }
    }

    /// Every gait of kind `kind` (0 straight, 1 slowing, 2 paused) that can end at `stop`.
    fn all(kind: usize, stop: f64) -> Vec<Gait> {
        match kind {
            0 => vec![Gait::Straight],
            1 => BRAKING_M.map(Gait::Slowing).to_vec(),
            _ => PAUSED_AT_M
                .into_iter()
                .filter(|at| *at >= stop + 1.0)
                .map(Gait::Paused)
                .collect(),
        }
    }
}

/// Negative log-likelihoods of every hypothesis on the grid, and the prior weights that
/// combine them.
struct Hypotheses {
    walks: Walks,
    /// Arrived within 1 m, and walked up straight, slowing or after a pause.
    arrived: [Vec<f64>; 3],
    /// Stopped short at 2–3 m, by the same gaits.
    stopped_short: [Vec<f64>; 3],
    passing: Vec<f64>,
}

impl Hypotheses {
    /// Fits every hypothesis at these speeds (gaits with no weight are skipped).
    fn fit(fit: &Fit, speeds: &[f64], walks: Walks) -> Self {
        let gaits = walks.gaits();
        let earliest = fit.times.first().copied().unwrap_or(0.0);
        let mut h = Hypotheses {
            walks,
            arrived: Default::default(),
            stopped_short: Default::default(),
            passing: Vec::with_capacity(210 * speeds.len()),
        };
        // A stop at `stop`, `stopped_at` s from now, at speed `v`, walking `gait`.
        let sse = |gait: Gait, v: f64, stop: f64, stopped_at: f64| {
            fit.sse(|t| gait.distance(v, stop, stopped_at - t))
        };
        // A pause must show in the window, or the walk is a straight one there.
        let paused_in_view = |gait: Gait, v: f64, stop: f64, stopped_at: f64| match gait {
            Gait::Paused(at) => stopped_at - (at - stop) / v >= earliest + PAUSE_SEEN_S,
            _ => true,
        };
        for &v in speeds {
            for kind in (0..3).filter(|&k| gaits[k] > 0.0) {
                for stop in STOPS {
                    for gait in Gait::all(kind, stop) {
                        // The stop may still be ahead, as long as the person is within 1 m now
                        // (at most a minute ahead, whatever the speed).
                        for step in 0..=MAX_ARRIVAL_STEPS {
                            let stopped_at = -2.0 + step as f64 * TIME_STEP_S;
                            let distance = gait.distance(v, stop, stopped_at);
                            if distance.is_nan() || distance > 1.0 + 1e-9 {
                                break;
                            }
                            if paused_in_view(gait, v, stop, stopped_at) {
                                h.arrived[kind].push(sse(gait, v, stop, stopped_at));
                            }
                        }
                    }
                }
                // Not arriving either: walked up and stopped at 2 m or more (already standing
                // now, and perhaps for the whole window).
                for stop in SHORT_STOPS {
                    for gait in Gait::all(kind, stop) {
                        for step in 0..SHORT_STOP_TIMES {
                            let stopped_at = -4.0 + step as f64 * TIME_STEP_S;
                            if paused_in_view(gait, v, stop, stopped_at) {
                                h.stopped_short[kind].push(sse(gait, v, stop, stopped_at));
                            }
                        }
                    }
                }
            }
            for b in PASS_DISTANCES {
                for step in 0..PASS_TIMES {
                    let closest_at = -2.5 + step as f64 * TIME_STEP_S;
                    h.passing
                        .push(fit.sse(|t| (b * b + (v * (t - closest_at)).powi(2)).sqrt()));
                }
            }
        }
        h
    }

    /// `ln p(readings | arrived)`, up to the constant every hypothesis shares.
    fn arrival(&self) -> f64 {
        self.by_gait(&self.arrived)
    }

    /// `ln p(readings | passing or stopped short)`.
    fn alternative(&self) -> f64 {
        let passing = share(self.walks.passing);
        ln_weighted(&[
            (passing, log_mean_likelihood(&self.passing)),
            (1.0 - passing, self.by_gait(&self.stopped_short)),
        ])
    }

    fn by_gait(&self, grids: &[Vec<f64>; 3]) -> f64 {
        let gaits = self.walks.gaits();
        let parts: Vec<(f64, f64)> = (0..3)
            .map(|k| (gaits[k], log_mean_likelihood(&grids[k])))
            .collect();
        ln_weighted(&parts)
    }
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
    // The whitening filter runs oldest first; readings may arrive out of order.
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

/// Generalised least squares over the bins: the noise covariance is the fast part (per
/// reading, so divided by the bin's count) on the diagonal plus the correlated part decaying
/// as `exp(−Δt / correlation)`. Residuals are whitened so correlated bins count once, not once
/// each.
///
/// That covariance is an Ornstein–Uhlenbeck process seen through independent noise, so the
/// whitening is a scalar Kalman filter's innovations, each divided by its standard deviation:
/// the same as solving with the covariance's Cholesky factor, in O(bins) per hypothesis rather
/// than O(bins²). The filter's gains do not depend on the readings, so they are computed once
/// per test.
struct Fit {
    times: Vec<f64>,
    rssi: Vec<f64>,
    /// Per bin: how much of the correlated part carries over from the bin before, the Kalman
    /// gain, and one over the innovation's standard deviation.
    carry_over: Vec<f64>,
    gain: Vec<f64>,
    inv_sd: Vec<f64>,
    /// The whitened all-ones vector (the direction of the carry offset) and its squared norm.
    ones: Vec<f64>,
    ones_norm: f64,
    tx: f64,
    slope: f64,
    offsets: Offsets,
    /// Ranged distances fitted beside the RSSI, if any.
    ranged: Option<RangeFit>,
}

/// Ranged readings relative to now (s, metres) and the constants of their likelihood.
struct RangeFit {
    times: Vec<f64>,
    metres: Vec<f64>,
    /// Per noise level: `1/σ` and `ln((1 − ε)/(σ√(2π)))`.
    levels: Vec<(f64, f64)>,
    /// `ln(ε/span)`.
    ln_outlier: f64,
    span: f64,
    /// The carry classes with weight, each with its grid of biases.
    carries: Vec<(CarryClass, Vec<f64>)>,
}

impl RangeFit {
    /// The readings from `since_ms` to `now_ms` that are distances.
    fn new(ranges: Ranges<'_>, since_ms: u64, now_ms: u64) -> Option<Self> {
        let n = ranges.noise;
        let sane = n.sigma_m.is_finite()
            && n.sigma_m > 0.0
            && (1..=MAX_NOISE_LEVELS).contains(&n.levels)
            && (0.0..1.0).contains(&n.outlier_share)
            && n.outlier_span_m.is_finite()
            && n.outlier_span_m > 0.0;
        let carries: Vec<(CarryClass, Vec<f64>)> = ranges
            .carries
            .into_iter()
            .filter(|c| {
                c.weight.is_finite()
                    && c.weight > 0.0
                    && c.max_bias_m.is_finite()
                    && c.max_bias_m >= 0.0
                    && c.offsets.0 <= c.offsets.1
            })
            .map(|c| {
                let biases = match c.max_bias_m > 0.0 {
                    true => (0..RANGE_BIASES)
                        .map(|i| c.max_bias_m * i as f64 / (RANGE_BIASES - 1) as f64)
                        .collect(),
                    false => vec![0.0],
                };
                (c, biases)
            })
            .collect();
        let kept: Vec<(u64, f64)> = ranges
            .readings
            .iter()
            .filter(|&&(t, d)| (since_ms..=now_ms).contains(&t) && d.is_finite() && d >= 0.0)
            .copied()
            .collect();
        let kept = &kept[kept.len().saturating_sub(MAX_RANGES)..];
        if !sane || kept.is_empty() || carries.is_empty() {
            return None;
        }
        Some(Self {
            times: kept
                .iter()
                .map(|&(t, _)| (t as f64 - now_ms as f64) / 1000.0)
                .collect(),
            metres: kept.iter().map(|&(_, d)| d).collect(),
            levels: (0..n.levels)
                .map(|k| {
                    let sigma = n.sigma_m * (1u32 << k) as f64;
                    let ln_inlier = (1.0 - n.outlier_share).ln()
                        - (sigma * (2.0 * std::f64::consts::PI).sqrt()).ln();
                    (1.0 / sigma, ln_inlier)
                })
                .collect(),
            ln_outlier: if n.outlier_share > 0.0 {
                (n.outlier_share / n.outlier_span_m).ln()
            } else {
                f64::NEG_INFINITY
            },
            span: n.outlier_span_m,
            carries,
        })
    }

    /// Negative log-likelihood of the readings against the true distances `truth` (one per
    /// reading), the bias and the noise level marginalised over `biases` and `self.levels`
    /// (all combinations equally likely).
    fn nll(&self, truth: &[f64], biases: &[f64]) -> f64 {
        let mut per_case = [0.0; RANGE_BIASES * MAX_NOISE_LEVELS];
        let cases = self
            .levels
            .iter()
            .flat_map(|level| biases.iter().map(move |b| (level, b)));
        let n = self.levels.len() * biases.len();
        for (nll, (&(inv_sigma, ln_inlier), &b)) in per_case.iter_mut().zip(cases) {
            *nll = self
                .metres
                .iter()
                .zip(truth)
                .map(|(&r, &d)| {
                    let expected = d + b;
                    let z = (r - expected) * inv_sigma;
                    let inlier = ln_inlier - 0.5 * z * z;
                    let ln_p = if r >= expected && r <= expected + self.span {
                        ln_add(inlier, self.ln_outlier)
                    } else {
                        inlier
                    };
                    -ln_p
                })
                .sum();
        }
        -log_mean_likelihood(&per_case[..n])
    }
}

/// `ln(eᵃ + eᵇ)`, computed stably.
fn ln_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

impl Fit {
    fn new(bins: &[Bin], noise: Noise, tx: f64, slope: f64, offsets: Offsets) -> Self {
        let n = bins.len();
        let correlated = noise.correlated_db.min(noise.per_reading_db).powi(2);
        let fast = noise.per_reading_db.powi(2) - correlated;
        let tau = noise.correlation_ms / 1000.0;
        let (mut carry_over, mut gain, mut inv_sd) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // Variance of the correlated part given the bins so far.
        let mut known = 0.0;
        for (i, bin) in bins.iter().enumerate() {
            let rho = match i {
                0 => 0.0,
                _ if tau > 0.0 => (-(bin.t - bins[i - 1].t).abs() / tau).exp(),
                _ => 0.0,
            };
            let predicted = rho * rho * known + correlated * (1.0 - rho * rho);
            let innovation = (predicted + fast / bin.count as f64).max(1e-9);
            let k = predicted / innovation;
            known = (1.0 - k) * predicted;
            carry_over.push(rho);
            gain.push(k);
            inv_sd.push(1.0 / innovation.sqrt());
        }
        let mut fit = Self {
            times: bins.iter().map(|b| b.t).collect(),
            rssi: bins.iter().map(|b| b.rssi).collect(),
            carry_over,
            gain,
            inv_sd,
            ones: vec![],
            ones_norm: 0.0,
            tx,
            slope,
            offsets,
            ranged: None,
        };
        fit.ones = fit.whiten(vec![1.0; n]);
        fit.ones_norm = fit.ones.iter().map(|u| u * u).sum();
        fit
    }

    /// Whitens residuals: `L⁻¹ r` for the covariance's Cholesky factor `L`.
    fn whiten(&self, r: Vec<f64>) -> Vec<f64> {
        let mut z = Vec::with_capacity(r.len());
        self.whitened(|i| r[i], |_, zi| z.push(zi));
        z
    }

    /// The filter itself: calls `each(i, zᵢ)` with the whitened residual of every bin, oldest
    /// first, given the raw residual of each (`residual(i)`). One pass, nothing allocated:
    /// this runs for every hypothesis.
    #[inline]
    fn whitened(&self, residual: impl Fn(usize) -> f64, mut each: impl FnMut(usize, f64)) {
        let mut estimate = 0.0;
        for i in 0..self.times.len() {
            estimate *= self.carry_over[i];
            let innovation = residual(i) - estimate;
            estimate += self.gain[i] * innovation;
            each(i, innovation * self.inv_sd[i]);
        }
    }

    /// Negative log-likelihood (up to a constant both hypotheses share) of the bins against
    /// `distance(t)`, with the best carry offset inside the likely range, mixed with the best
    /// one anywhere by the [`Offsets::doubt`]. With ranges, the [`Ranges::carries`] take the
    /// place of the `Offsets`: each class's best offset and its lengthening, mixed by weight.
    fn sse(&self, distance: impl Fn(f64) -> f64) -> f64 {
        let Some(ranged) = &self.ranged else {
            return self.sse_rssi(distance);
        };
        // With ranges, each way of carrying the phone fits its offsets and its lengthening
        // together, and the ways are mixed by their weights.
        let (along, squared) = self.residuals(&distance);
        let mut truth = [0.0; MAX_RANGES];
        for (d, &t) in truth.iter_mut().zip(&ranged.times) {
            *d = distance(t).max(0.0);
        }
        let truth = &truth[..ranged.times.len()];
        let mut parts = [(0.0, f64::NEG_INFINITY); 2];
        for (part, (class, biases)) in parts.iter_mut().zip(&ranged.carries) {
            let rssi = self.within(along, squared, class.offsets);
            *part = (class.weight, -(rssi + ranged.nll(truth, biases)));
        }
        -ln_weighted(&parts)
    }

    /// The whitened residuals' projection on the offset direction and their squared norm.
    fn residuals(&self, distance: impl Fn(f64) -> f64) -> (f64, f64) {
        let per_ln = self.slope / std::f64::consts::LN_10;
        let predicted = |i: usize| self.tx - per_ln * distance(self.times[i]).max(0.05).ln();
        let (mut along, mut squared) = (0.0, 0.0);
        self.whitened(
            |i| self.rssi[i] - predicted(i),
            |i, z| {
                along += z * self.ones[i];
                squared += z * z;
            },
        );
        (along, squared)
    }

    /// `½‖z − o·u‖²` at the best offset `o` within `(lo, hi)`, expanded so each offset range
    /// costs nothing more.
    fn within(&self, along: f64, squared: f64, (lo, hi): (f64, f64)) -> f64 {
        let o = (along / self.ones_norm).clamp(lo, hi);
        0.5 * (squared - 2.0 * o * along + o * o * self.ones_norm)
    }

    /// The RSSI's part of [`Fit::sse`].
    fn sse_rssi(&self, distance: impl Fn(f64) -> f64) -> f64 {
        let (along, squared) = self.residuals(distance);
        let likely = self.within(along, squared, self.offsets.likely);
        if self.offsets.doubt <= 0.0 {
            return likely;
        }
        let (lo, hi) = self.offsets.likely;
        let anywhere = self.within(
            along,
            squared,
            (lo.min(OFFSET_RANGE_DB.0), hi.max(OFFSET_RANGE_DB.1)),
        );
        -ln_mix(self.offsets.doubt, -likely, -anywhere)
    }
}

/// `ln mean(exp(−sse))` over a hypothesis's grid, computed stably; −∞ for an empty grid.
fn log_mean_likelihood(sses: &[f64]) -> f64 {
    if sses.is_empty() {
        return f64::NEG_INFINITY;
    }
    let best = sses.iter().copied().fold(f64::INFINITY, f64::min);
    let sum: f64 = sses.iter().map(|e| (-(e - best)).exp()).sum();
    -best + (sum / sses.len() as f64).ln()
}

/// `ln((1 − doubt)·e^likely + doubt·e^any)`, computed stably: a log-likelihood when the
/// likely assumption holds except with probability `doubt`.
fn ln_mix(doubt: f64, likely: f64, any: f64) -> f64 {
    ln_weighted(&[(1.0 - doubt, likely), (doubt, any)])
}

/// `ln(Σ wᵢ·e^lᵢ / Σ wᵢ)` over the parts that have weight and a log-likelihood above −∞, computed
/// stably: a mixture of hypotheses with these prior weights (renormalised over the parts that
/// apply). −∞ when none does.
fn ln_weighted(parts: &[(f64, f64)]) -> f64 {
    // A weighted part that is no number makes the mixture none, rather than dropping out.
    if parts.iter().any(|(w, l)| *w > 0.0 && l.is_nan()) {
        return f64::NAN;
    }
    let used = || {
        parts
            .iter()
            .filter(|(w, l)| *w > 0.0 && *l > f64::NEG_INFINITY)
    };
    let top = used().map(|(_, l)| *l).fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let weight: f64 = used().map(|(w, _)| w).sum();
    let sum: f64 = used().map(|(w, l)| w * (l - top).exp()).sum();
    top + (sum / weight).ln()
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
    const MODEL: Model = Model {
        tx_power: TX,
        path_loss_exponent: 2.0,
        noise: NOISE,
        walks: Walks::STRAIGHT,
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

    /// The covariance written out in full, as `Fit` describes it, whitened with its Cholesky
    /// factor: the reference the Kalman filter must match.
    fn dense_whiten(bins: &[Bin], noise: Noise, r: &[f64]) -> Vec<f64> {
        let n = bins.len();
        let correlated = noise.correlated_db.min(noise.per_reading_db).powi(2);
        let fast = noise.per_reading_db.powi(2) - correlated;
        let tau = noise.correlation_ms / 1000.0;
        let mut cov = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                cov[i * n + j] = if i == j {
                    fast / bins[i].count as f64 + correlated
                } else if tau > 0.0 {
                    correlated * (-(bins[i].t - bins[j].t).abs() / tau).exp()
                } else {
                    0.0
                };
            }
        }
        let l = cholesky(cov, n);
        let mut z = r.to_vec();
        for i in 0..n {
            let dot: f64 = (0..i).map(|k| l[i * n + k] * z[k]).sum();
            z[i] = (z[i] - dot) / l[i * n + i];
        }
        z
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

    #[test]
    fn kalman_whitening_equals_the_dense_cholesky_solve() {
        // Irregular bins (gaps, single readings, crowded bins) and residuals from a fixed
        // pseudo-random sequence.
        let mut x = 0.37f64;
        let mut next = || {
            x = (x * 7919.0 + 0.1234).fract();
            x
        };
        let mut t = -5.0;
        let bins: Vec<Bin> = (0..45)
            .map(|_| {
                t += 0.05 + 0.3 * next();
                Bin {
                    t,
                    rssi: -70.0 + 10.0 * next(),
                    count: 1 + (next() * 6.0) as u32,
                }
            })
            .collect();
        let r: Vec<f64> = (0..bins.len()).map(|_| 8.0 * next() - 4.0).collect();
        let variants = [
            NOISE,
            Noise {
                correlation_ms: 0.0,
                ..NOISE
            },
            Noise {
                correlated_db: 0.0,
                ..NOISE
            },
            Noise {
                correlated_db: 9.0,
                ..NOISE
            },
        ];
        for noise in variants {
            let fit = Fit::new(&bins, noise, TX as f64, 20.0, Offsets::ANY);
            let fast = fit.whiten(r.clone());
            let dense = dense_whiten(&bins, noise, &r);
            for (a, b) in fast.iter().zip(&dense) {
                assert!((a - b).abs() < 1e-9, "{noise:?}: {a} against {b}");
            }
        }
    }

    fn arrived_at_9s(t: f64) -> f64 {
        0.5 + 1.2 * (9.0 - t).max(0.0)
    }

    /// The evidence at 10 s with nothing known about the carry.
    fn judged(walk: &VecDeque<(u64, i16)>) -> f64 {
        evidence(walk, 10_000, &MODEL, Offsets::ANY, Pace::ANY).unwrap()
    }

    #[test]
    fn favours_arrival_whatever_the_carry_offset() {
        // A clean arrival clears the bar for a wearer who has stopped with the phone in a
        // pocket (−3 dB) as in the hand (+2 dB), with the engine's walks; a bag (−5 dB) with
        // no carry report and no pace still favours arrival, but not by enough: the engine's
        // known weak case.
        let p = crate::walkup::WalkUpParams::default();
        let model = Model {
            walks: p.walks,
            ..MODEL
        };
        for offset in [-5.0, -3.0, 0.0, 2.0] {
            let walk = readings(offset, arrived_at_9s);
            let e = evidence(&walk, 10_000, &model, Offsets::ANY, Pace::ANY).unwrap();
            assert!(e > 2.0, "offset {offset}: {e}");
            if offset >= -3.0 {
                assert!(
                    e > p.still_evidence.max(p.min_evidence),
                    "offset {offset}: {e}"
                );
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
            evidence(&walk, 10_000, &MODEL, carry.offsets(&params), Pace::ANY).unwrap()
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
        let params = crate::walkup::WalkUpParams::default();
        let judge = |offset: f64, distance: &dyn Fn(f64) -> f64, pace: Option<f64>| {
            let pace = Pace {
                reported: pace,
                spread: params.pace_spread,
                doubt: params.pace_doubt,
            };
            let walk = readings(offset, distance);
            evidence(&walk, 10_000, &MODEL, Offsets::ANY, pace).unwrap()
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
            wrong < slow_any && wrong >= slow_any + params.pace_doubt.ln(),
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
    fn ranged_distances_tell_a_bag_at_the_door_from_a_raised_phone_short_of_it() {
        use crate::walkup::{Carry, WalkUpParams};
        let p = WalkUpParams::default();
        let model = Model {
            walks: p.walks,
            ..MODEL
        };
        // Ranged twice a second over the same 3 s, `long` metres long.
        let ranged = |distance: &dyn Fn(f64) -> f64, long: f64| -> Vec<(u64, f64)> {
            (7_000..=10_000)
                .step_by(500)
                .map(|t| (t, distance(t as f64 / 1000.0) + long))
                .collect()
        };
        let judge = |offset: f64, distance: &dyn Fn(f64) -> f64, long: Option<f64>, carry| {
            let walk = readings(offset, distance);
            let ranges = long.map(|l| ranged(distance, l)).unwrap_or_default();
            let ranges = Some(Ranges {
                readings: &ranges,
                noise: p.ranging.noise(),
                carries: Carry::classes(carry, &p),
            });
            let offsets = Carry::offsets(carry, &p);
            evidence_ranged(&walk, 10_000, &model, offsets, Pace::ANY, ranges).unwrap()
        };
        // A bagged phone (−5 dB) that arrived, its ranges 0.4 m long through the bag: RSSI
        // alone is unsure; the ranges make it sure.
        let bag = judge(-5.0, &arrived_at_9s, None, Carry::Unknown);
        let bag_ranged = judge(-5.0, &arrived_at_9s, Some(0.4), Carry::Unknown);
        assert!(
            bag_ranged > bag + 3.0 && bag_ranged > 5.0,
            "{bag} then {bag_ranged}"
        );
        // A phone held up (+3 dB) that stopped 1.9 m out, ranged true: reported in the hand,
        // it is surely no arrival. Reported covered or not at all, 1.9 m is within reach of a
        // bag at the door read up to 0.8 m long, so the ranges only count against arrival;
        // the engine's gate on the ranged estimate keeps those shut.
        let short = |t: f64| 1.9 + 1.2 * (8.0 - t).max(0.0);
        for carry in [Carry::Uncovered, Carry::Unknown, Carry::Covered] {
            let alone = judge(3.0, &short, None, carry);
            let with = judge(3.0, &short, Some(0.0), carry);
            assert!(with < alone, "{carry:?}: {alone} then {with}");
            if carry == Carry::Uncovered {
                assert!(with < alone - 2.0 && with < -3.0, "{alone} then {with}");
            }
        }
        // Without readings, with ones that are no distance, or with ones from before the
        // RSSI in the window (a session that stopped long ago), the test is RSSI's alone.
        let no_number = Some(Ranges {
            readings: &[(1_000, 0.5), (6_500, 0.6), (9_000, f64::NAN), (9_500, -1.0)],
            noise: p.ranging.noise(),
            carries: Carry::Unknown.classes(&p),
        });
        let walk = readings(-5.0, arrived_at_9s);
        assert_eq!(
            evidence_ranged(&walk, 10_000, &model, Offsets::ANY, Pace::ANY, no_number),
            evidence(&walk, 10_000, &model, Offsets::ANY, Pace::ANY)
        );
    }

    #[test]
    fn a_noisy_stack_weighs_only_as_much_as_its_scatter_allows() {
        use crate::walkup::{Carry, WalkUpParams};
        let p = WalkUpParams::default();
        let model = Model {
            walks: p.walks,
            ..MODEL
        };
        // Ranged twice a second over the last 3.5 s, each reading off by `sigma`·z: a fixed
        // scatter of mean about 0 and spread about 1.
        let z = [0.9, -1.1, 0.3, -0.6, 1.4, -0.2, -1.3, 0.7];
        let judge = |offset: f64, distance: &dyn Fn(f64) -> f64, sigma: f64, levels, carry| {
            let walk = readings(offset, distance);
            let ranges: Vec<(u64, f64)> = (6_500..=10_000)
                .step_by(500)
                .zip(z)
                .map(|(t, z)| (t, (distance(t as f64 / 1000.0) + sigma * z).max(0.0)))
                .collect();
            let noise = RangeNoise {
                levels,
                ..p.ranging.noise()
            };
            let ranges = Some(Ranges {
                readings: &ranges,
                noise,
                carries: Carry::classes(carry, &p),
            });
            let offsets = Carry::offsets(carry, &p);
            evidence_ranged(&walk, 10_000, &model, offsets, Pace::ANY, ranges).unwrap()
        };
        // A phone held up (+3 dB), its wearer stopped 1.8 m out, ranged by a stack with σ 0.7:
        // assuming σ 0.3, its short readings make the stop look like an arrival; learning the
        // noise, they count for far less.
        let short = |t: f64| 1.8 + 1.2 * (8.0 - t).max(0.0);
        for carry in [Carry::Unknown, Carry::Covered] {
            let known = judge(3.0, &short, 0.7, 1, carry);
            let learned = judge(3.0, &short, 0.7, 3, carry);
            assert!(
                learned < known - 3.0 && learned < p.still_evidence,
                "{carry:?}: {known} then {learned}"
            );
        }
        // The doubt costs an accurate stack some evidence (the alternative may now be a noisy
        // stack's), but its arrival stays far beyond the bars; a noisy stack's arrival still
        // clears them, where RSSI alone (a bag, −4 dB) does not.
        for carry in [Carry::Unknown, Carry::Covered, Carry::Uncovered] {
            let accurate = judge(-4.0, &arrived_at_9s, 0.1, 3, carry);
            let noisy = judge(-4.0, &arrived_at_9s, 0.7, 3, carry);
            let walk = readings(-4.0, arrived_at_9s);
            let offsets = Carry::offsets(carry, &p);
            let alone = evidence(&walk, 10_000, &model, offsets, Pace::ANY).unwrap();
            assert!(
                accurate > p.walking_evidence + 5.0
                    && noisy > p.walking_evidence
                    && noisy > alone + 4.0,
                "{carry:?}: {accurate}, {noisy}, RSSI alone {alone}"
            );
        }
        // Noise levels beyond what the test supports leave it RSSI's alone.
        assert_eq!(
            judge(
                -4.0,
                &arrived_at_9s,
                0.1,
                MAX_NOISE_LEVELS + 1,
                Carry::Unknown
            ),
            evidence(
                &readings(-4.0, arrived_at_9s),
                10_000,
                &model,
                Carry::offsets(Carry::Unknown, &p),
                Pace::ANY
            )
            .unwrap()
        );
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
        let naive = evidence(
            &walk,
            10_000,
            &Model {
                noise: independent,
                ..MODEL
            },
            Offsets::ANY,
            Pace::ANY,
        )
        .unwrap();
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
    fn gaits_end_at_their_stop_and_walk_at_their_speed() {
        let (v, stop) = (1.2, 0.5);
        for gait in [Gait::Straight, Gait::Slowing(1.5), Gait::Paused(3.0)] {
            // Standing at the stop once there, and still there at the moment of stopping.
            assert_eq!(gait.distance(v, stop, -1.0), stop, "{gait:?}");
            assert_eq!(gait.distance(v, stop, 0.0), stop, "{gait:?}");
            // Never nearer than the stop, and never coming closer going back in time.
            let mut last = stop;
            for i in 1..100 {
                let d = gait.distance(v, stop, i as f64 * 0.05);
                assert!(d >= last - 1e-12, "{gait:?} at {i}: {d} after {last}");
                last = d;
            }
        }
        // Slowing: at full speed once past the braking distance, smoothly joined to it.
        let braking_s = 2.0 * 1.5 / v;
        let slowing = |before: f64| Gait::Slowing(1.5).distance(v, stop, before);
        assert!((slowing(braking_s) - (stop + 1.5)).abs() < 1e-12);
        let speed_at = |before: f64| (slowing(before + 1e-6) - slowing(before)) / 1e-6;
        assert!(
            (speed_at(braking_s) - v).abs() < 1e-3,
            "{}",
            speed_at(braking_s)
        );
        assert!((speed_at(braking_s + 2.0) - v).abs() < 1e-6);
        assert!(speed_at(0.0) < 1e-3, "comes to rest at the stop");
        // Paused: stood at 3 m before walking the rest at full speed.
        let paused = |before: f64| Gait::Paused(3.0).distance(v, stop, before);
        assert!((paused(1.0) - (stop + v)).abs() < 1e-12);
        assert_eq!(paused(10.0), 3.0);
        // A pause is only where the walk could have paused: at least a metre short of the stop.
        assert_eq!(Gait::all(2, 2.5).len(), 1);
        assert_eq!(Gait::all(2, 0.5).len(), PAUSED_AT_M.len());
    }

    #[test]
    fn weighted_mixtures_renormalise_over_the_parts_that_apply() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // Equal log-likelihoods mix to themselves, whatever the weights.
        assert!(close(ln_weighted(&[(0.3, -2.0), (0.7, -2.0)]), -2.0));
        // Weights are priors: ln(0.25·e⁰ + 0.75·e⁻¹⁰⁰⁰) without underflow.
        assert!(close(
            ln_weighted(&[(0.25, 0.0), (0.75, -1000.0)]),
            0.25f64.ln()
        ));
        // A part with no weight or an empty grid (−∞) does not count, and the rest are
        // renormalised.
        assert!(close(
            ln_weighted(&[(0.5, -3.0), (0.5, f64::NEG_INFINITY), (0.0, 9.0)]),
            -3.0
        ));
        assert_eq!(ln_weighted(&[(0.0, 1.0)]), f64::NEG_INFINITY);
        assert_eq!(log_mean_likelihood(&[]), f64::NEG_INFINITY);
        // Out-of-range shares are clamped, not propagated as NaN.
        let odd = Walks {
            passing: 0.5,
            slowing: f64::NAN,
            paused: 7.0,
        };
        assert_eq!(odd.gaits(), [0.0, 0.0, 1.0]);
        // A passing weight that is no number leaves stopping short as the only alternative;
        // it never makes the evidence infinite.
        let walk = readings(0.0, arrived_at_9s);
        for passing in [f64::NAN, 0.0, 1.0, -3.0] {
            let model = Model {
                walks: Walks {
                    passing,
                    ..Walks::STRAIGHT
                },
                ..MODEL
            };
            let e = evidence(&walk, 10_000, &model, Offsets::ANY, Pace::ANY);
            assert!(e.is_some_and(f64::is_finite), "passing {passing}: {e:?}");
        }
        // A log-likelihood that is no number spoils the mixture rather than dropping out.
        assert!(ln_weighted(&[(0.5, -3.0), (0.5, f64::NAN)]).is_nan());
    }

    #[test]
    fn straight_walks_are_the_plain_average_over_the_old_grid() {
        // Round 10's priors reproduce the test before it when walks neither slow nor pause:
        // the alternative is the plain mean over passing and stopping short together.
        let walk = readings(-2.0, |t| 2.0 + 1.2 * (9.0 - t).max(0.0));
        let fit = Fit::new(&bins(&walk, 10_000), NOISE, TX as f64, 20.0, Offsets::ANY);
        let h = Hypotheses::fit(&fit, &SPEEDS, Walks::STRAIGHT);
        let all: Vec<f64> = h
            .passing
            .iter()
            .chain(&h.stopped_short[0])
            .copied()
            .collect();
        assert!((h.alternative() - log_mean_likelihood(&all)).abs() < 1e-9);
        assert!((h.arrival() - log_mean_likelihood(&h.arrived[0])).abs() < 1e-12);
        assert!(h.arrived[1].is_empty() && h.stopped_short[2].is_empty());
    }

    #[test]
    fn readings_out_of_order_are_judged_as_in_order() {
        let walk = readings(0.0, arrived_at_9s);
        let mut shuffled: Vec<_> = walk.iter().copied().collect();
        shuffled.reverse();
        shuffled.swap(3, 17);
        let shuffled: VecDeque<_> = shuffled.into_iter().collect();
        let (a, b) = (judged(&walk), judged(&shuffled));
        assert!((a - b).abs() < 1e-9, "{a} against {b}");
    }

    /// Noise-free readings every 50 ms over the 5 s before 10 s.
    fn five_seconds(offset: f64, distance: impl Fn(f64) -> f64) -> VecDeque<(u64, i16)> {
        (5_000..=10_000)
            .step_by(50)
            .map(|t_ms| {
                let r = TX as f64 - 20.0 * distance(t_ms as f64 / 1000.0).log10() + offset;
                (t_ms, r.round() as i16)
            })
            .collect()
    }

    #[test]
    fn walks_that_pause_or_slow_down_are_arrivals_too() {
        let gaits = Walks {
            passing: PASSING_SHARE,
            slowing: 0.25,
            paused: 0.25,
        };
        let judge = |walks: Walks, pace: Pace, offset: f64, distance: &dyn Fn(f64) -> f64| {
            let model = Model { walks, ..MODEL };
            evidence(
                &five_seconds(offset, distance),
                10_000,
                &model,
                Offsets::ANY,
                pace,
            )
            .unwrap()
        };
        // Stood 2 m out until 7.5 s (letting someone by), then walked in at 1.2 m/s to 0.5 m.
        let paused = |t: f64| (0.5 + 1.2 * (9.0 - t).max(0.0)).min(2.0);
        // Slowed down evenly over the last 1.5 m from 1.2 m/s, coming to rest at 9 s.
        let slowing = |t: f64| Gait::Slowing(1.5).distance(1.2, 0.5, 9.0 - t);
        let bag = -5.0;
        let straight = judge(Walks::STRAIGHT, Pace::ANY, bag, &paused);
        let with_gaits = judge(gaits, Pace::ANY, bag, &paused);
        assert!(with_gaits > straight + 0.5, "{straight} then {with_gaits}");
        let straight = judge(Walks::STRAIGHT, Pace::ANY, -3.0, &slowing);
        let with_gaits = judge(gaits, Pace::ANY, -3.0, &slowing);
        assert!(with_gaits > straight + 0.1, "{straight} then {with_gaits}");
        // Round 9's lesson: the walker's pace takes away the slow straight walk that stood in
        // for the pause, so the pace cost this walker evidence; a paused gait gives it back.
        let pace = Pace {
            reported: Some(1.2),
            spread: 0.25,
            doubt: 0.1,
        };
        let held_up = 3.0;
        let unknown_pace = judge(Walks::STRAIGHT, Pace::ANY, held_up, &paused);
        let paced = judge(Walks::STRAIGHT, pace, held_up, &paused);
        let paced_gaits = judge(gaits, pace, held_up, &paused);
        assert!(paced < unknown_pace - 0.5, "{unknown_pace} then {paced}");
        assert!(paced_gaits > paced + 1.5, "{paced} then {paced_gaits}");
        // Someone who stood 2.5 m away the whole time has not arrived, whatever the gaits.
        let standing = |_: f64| 2.5;
        assert!(judge(gaits, pace, 0.0, &standing) < 0.0);
        assert!(judge(gaits, Pace::ANY, 0.0, &standing) < 0.0);
    }

    #[test]
    fn too_few_readings_decide_nothing() {
        let few: VecDeque<(u64, i16)> = (0..MIN_READINGS as u64 - 1)
            .map(|i| (i * 100, -60))
            .collect();
        assert_eq!(evidence(&few, 1_000, &MODEL, Offsets::ANY, Pace::ANY), None);
    }
}
