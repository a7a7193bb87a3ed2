//! The secure-ranging hook: distances a phone measures to a door by UWB two-way ranging
//! (iPhone's Nearby Interaction, Android's UWB API, Aliro's UWB step) or Bluetooth Channel
//! Sounding. Where RSSI can only guess a distance through an unknown carry offset of several
//! dB, ranging measures the time of flight (or phase) and reads within about 10–50 cm.
//!
//! Two rules ([`RangeRule`]). The default, since round 13, fits the readings beside the RSSI
//! in the arrival test ([`super::arrival::evidence_ranged`]), so each reading counts as much
//! as its noise allows and a stack's accuracy need not be known to the decimetre; while
//! readings come, their estimate also gates the test, and once ranging saw the phone far it
//! arms the lock by itself. Round 12's direct rule, kept for comparison, decides by range
//! alone while readings come, and leaves it to RSSI when they thin out (a session coming up,
//! a stack that fails) or the session came up too near to arm (a brisk walker, a slow
//! stack). It is deliberately plain: arm once ranged beyond `arm_m` (RSSI's arming does
//! not carry over: a bagged phone's RSSI reads far while it stands at the door), then unlock
//! once the median of the newest three readings is within `unlock_m` and not growing. The median
//! shrugs off the occasional wild reading. Ranging errors through a body or a bag are long,
//! never short (the signal goes round), so the bar sits above the 1 m target, and higher
//! still (`covered_extra_m`) for a phone its proximity sensor reports covered; people stop
//! 0.3–0.7 m from a door.
//!
//! Ranging is also what defeats a relay: a relayed signal arrives late, so it can only make a
//! phone look further away. That property belongs to the door's own measurement; this module
//! is the phone's half (when to ask the door to open), not proof of presence.

use super::Carry;
use std::collections::VecDeque;

/// How ranged distances decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeRule {
    /// Alone, once armed: the median of the newest readings within `unlock_m` (round 12).
    /// Good with UWB-class ranging (decimetres, several readings a second); a noisier
    /// stack's median lags and strays.
    Direct,
    /// Fitted beside the RSSI in the arrival test (round 13), which then decides against
    /// the same bars as RSSI alone, each reading weighed by the noise `sigma_m` assumes; the
    /// ranged estimate also gates the test (`gate_m`). Better than `Direct` with UWB-class
    /// and Channel-Sounding-class stacks alike: see `benches/walkup.rs`.
    #[default]
    Fused,
}

/// Tunable parameters of the range rule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RangingParams {
    /// Which rule decides (parameters saved before round 13 load today's).
    pub rule: RangeRule,
    /// The fused rule's noise model: one σ per reading, metres, at its least…
    pub sigma_m: f64,
    /// …learned from the readings among this many levels, each twice as noisy as the last
    /// (1: σ is `sigma_m`, round 13; see [`super::arrival::RangeNoise`])…
    pub noise_levels: usize,
    /// …the share of multipath outliers, read up to `outlier_span_m` long…
    pub outlier_share: f64,
    pub outlier_span_m: f64,
    /// …and how much longer than the truth a covered phone's readings may be (pocket, bag,
    /// the wearer's body in the way), and an uncovered one's, metres. The test pairs each
    /// with its carry offsets and weighs the two by the carry report (see
    /// [`Carry::classes`]).
    pub covered_bias_m: f64,
    pub uncovered_bias_m: f64,
    /// The fused rule runs the arrival test only while the ranged estimate is within this
    /// (plus `covered_extra_m` for a covered phone, half of it with no report), metres…
    pub gate_m: f64,
    /// …unless the readings scatter by more than this σ ([`scatter`]), metres: a median of
    /// three such readings lags and strays too much to gate on, so RSSI's own arming and gate
    /// decide when the test runs, as without ranging, and the test (which learns the noise)
    /// still weighs the readings (round 15).
    pub gate_max_scatter_m: f64,
    /// The direct rule unlocks once the ranged distance is within this, metres.
    pub unlock_m: f64,
    /// Ranging arms its lock once it reads the phone beyond this, metres: nearer than RSSI's
    /// `arm_distance_m`, since a ranged 2.5 m is 2.5 m whatever the carry, and a brisk
    /// walker's session may come up only 4 m out.
    pub arm_m: f64,
    /// Added to `unlock_m` and `gate_m` for a phone reported covered (pocket, bag: the body
    /// or bag in the way makes readings long), and half of it when the carry is unknown,
    /// metres.
    pub covered_extra_m: f64,
    /// The estimate is made of the newest this many readings…
    pub readings: usize,
    /// …of those no older than this, ms. Until there are enough (a session coming up, a
    /// stack that ranges once a second and fails often) the direct rule decides nothing and
    /// RSSI decides alone; the fused rule still fits what readings came, without their gate.
    pub window_ms: u64,
    /// The newest reading may exceed the oldest of the estimate by at most this, metres:
    /// never while moving away.
    pub max_recede_m: f64,
}

impl Default for RangingParams {
    fn default() -> Self {
        Self {
            rule: RangeRule::default(),
            sigma_m: 0.3,
            noise_levels: 3,
            outlier_share: 0.05,
            outlier_span_m: 3.0,
            covered_bias_m: 0.8,
            uncovered_bias_m: 0.2,
            gate_m: 1.6,
            gate_max_scatter_m: 0.45,
            unlock_m: 1.2,
            covered_extra_m: 0.3,
            arm_m: 2.5,
            readings: 3,
            window_ms: 2_500,
            max_recede_m: 0.5,
        }
    }
}

/// What the recent readings say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeEstimate {
    /// Median of the newest readings, metres.
    pub distance_m: f64,
    /// The shortest of them: errors only lengthen readings, so this is what arms (a pair of
    /// multipath outliers can lift a median beyond `arm_m`, not every reading).
    pub nearest_m: f64,
    /// The newest is further than the oldest of them by more than `max_recede_m`.
    pub receding: bool,
}

impl RangeEstimate {
    /// Whether these readings show the phone beyond `arm_m`.
    pub fn far(&self, params: &RangingParams) -> bool {
        self.nearest_m > params.arm_m
    }

    /// Whether these readings ask for an unlock (arming and cooldown aside) from a phone
    /// carried as `carry` reports.
    pub fn arrived(&self, params: &RangingParams, carry: Carry) -> bool {
        !self.receding && self.within(params.unlock_m, params, carry)
    }

    /// Whether the estimate is within `bar_m`, widened for a phone carried as `carry`
    /// reports (a covered phone's readings run long).
    pub fn within(&self, bar_m: f64, params: &RangingParams, carry: Carry) -> bool {
        let extra = match carry {
            Carry::Covered => params.covered_extra_m,
            Carry::Unknown => params.covered_extra_m / 2.0,
            Carry::Uncovered => 0.0,
        };
        // Written so that a NaN bar never passes.
        self.distance_m <= bar_m + extra
    }
}

impl RangingParams {
    /// The fused rule's noise model.
    pub fn noise(&self) -> super::arrival::RangeNoise {
        super::arrival::RangeNoise {
            sigma_m: self.sigma_m,
            levels: self.noise_levels,
            outlier_share: self.outlier_share,
            outlier_span_m: self.outlier_span_m,
        }
    }
}

/// The estimate over the newest `params.readings` of `readings` (time order, already trimmed
/// to the window); `None` until there are that many.
pub fn estimate(readings: &VecDeque<(u64, f64)>, params: &RangingParams) -> Option<RangeEstimate> {
    let n = params.readings.max(1);
    if readings.len() < n {
        return None;
    }
    let newest = || readings.iter().skip(readings.len() - n).map(|&(_, d)| d);
    let (oldest, latest) = (newest().next()?, readings.back()?.1);
    Some(RangeEstimate {
        distance_m: super::quantile(newest(), 0.5),
        nearest_m: newest().fold(f64::INFINITY, f64::min),
        receding: latest - oldest > params.max_recede_m,
    })
}

/// Fewer residuals than this make no scatter estimate.
const MIN_SCATTER_TRIPLES: usize = 4;
/// Readings further apart than this (the outer two of a triple), ms, are not compared: a
/// walker's speed may change in between.
const SCATTER_SPAN_MS: u64 = 1_500;

/// How widely a stack's readings scatter, one σ in metres: for each run of three readings
/// within [`SCATTER_SPAN_MS`], how far the middle one lies from the line through the outer
/// two (a walk at a steady speed cancels out, and so does a bias that holds over the
/// window), scaled by that residual's own spread, then the median absolute value as a robust
/// σ (an outlier or the kink of a stop moves one residual, not the median). `None` with
/// fewer than [`MIN_SCATTER_TRIPLES`] such runs.
pub fn scatter(readings: &VecDeque<(u64, f64)>) -> Option<f64> {
    let residuals: Vec<f64> = readings
        .iter()
        .zip(readings.iter().skip(1))
        .zip(readings.iter().skip(2))
        .filter(|((a, _), c)| c.0 > a.0 && c.0 - a.0 <= SCATTER_SPAN_MS)
        .map(|((a, b), c)| {
            let w = (b.0 - a.0) as f64 / (c.0 - a.0) as f64;
            let line = a.1 + (c.1 - a.1) * w;
            // Var(b − line) = σ²·(1 + (1 − w)² + w²) for independent errors.
            ((b.1 - line) / (1.0 + (1.0 - w).powi(2) + w * w).sqrt()).abs()
        })
        .collect();
    if residuals.len() < MIN_SCATTER_TRIPLES {
        return None;
    }
    // The median of |N(0, σ²)| is 0.6745·σ.
    Some(super::quantile(residuals.into_iter(), 0.5) / 0.6745)
}

/// A reading worth keeping: a finite, non-negative distance (ranging stacks report NaN or
/// a negative value for a failed round).
pub fn usable(distance_m: f64) -> bool {
    distance_m.is_finite() && distance_m >= 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(ds: &[f64]) -> VecDeque<(u64, f64)> {
        ds.iter()
            .enumerate()
            .map(|(i, &d)| (i as u64 * 100, d))
            .collect()
    }

    #[test]
    fn the_median_ignores_one_wild_reading() {
        let p = RangingParams::default();
        let e = estimate(&window(&[0.9, 6.0, 0.8]), &p).unwrap();
        assert_eq!(e.distance_m, 0.9);
        assert!(e.arrived(&p, Carry::Uncovered));
        // Two outliers lift the median, never the nearest reading: no arming on them.
        let e = estimate(&window(&[0.8, 3.4, 3.9]), &p).unwrap();
        assert!(e.distance_m > p.arm_m && !e.far(&p));
        assert!(estimate(&window(&[2.6, 3.4, 2.9]), &p).unwrap().far(&p));
        // Only the newest three count.
        let e = estimate(&window(&[5.0, 0.9, 0.7, 0.8]), &p).unwrap();
        assert!((e.distance_m - 0.8).abs() < 1e-9);
    }

    #[test]
    fn too_few_readings_far_away_or_moving_away_never_arrive() {
        let p = RangingParams::default();
        assert!(estimate(&VecDeque::new(), &p).is_none());
        assert!(estimate(&window(&[0.5, 0.5]), &p).is_none());
        assert!(
            !estimate(&window(&[1.5, 1.4, 1.3]), &p)
                .unwrap()
                .arrived(&p, Carry::Uncovered)
        );
        let leaving = estimate(&window(&[0.4, 0.7, 1.0]), &p).unwrap();
        assert!(leaving.distance_m <= p.unlock_m);
        assert!(leaving.receding && !leaving.arrived(&p, Carry::Uncovered));
        // Standing still with the usual jitter is not moving away.
        let standing = estimate(&window(&[0.6, 0.5, 0.95]), &p).unwrap();
        assert!(!standing.receding && standing.arrived(&p, Carry::Uncovered));
    }

    #[test]
    fn a_covered_phone_may_read_longer() {
        let p = RangingParams::default();
        let through_a_bag = estimate(&window(&[1.4, 1.5, 1.45]), &p).unwrap();
        assert!(!through_a_bag.arrived(&p, Carry::Uncovered));
        assert!(!through_a_bag.arrived(&p, Carry::Unknown));
        assert!(through_a_bag.arrived(&p, Carry::Covered));
        let unsure = estimate(&window(&[1.3, 1.35, 1.25]), &p).unwrap();
        assert!(unsure.arrived(&p, Carry::Unknown) && !unsure.arrived(&p, Carry::Uncovered));
        // Even covered, nearly two metres away is not at the door.
        let short = estimate(&window(&[1.8, 1.75, 1.85]), &p).unwrap();
        assert!(!short.arrived(&p, Carry::Covered));
    }

    #[test]
    fn the_scatter_of_readings_is_the_stacks_noise_whatever_the_walk() {
        // Independent standard normal errors, reproducibly (a SplitMix64 and Box–Muller).
        let mut state = 7u64;
        let mut uniform = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let errors: Vec<f64> = (0..40)
            .map(|_| {
                let (u, v) = (uniform().max(1e-12), uniform());
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect();
        // A walk in at 1.2 m/s that stops at 0.5 m, read every 300 ms, 0.6 m long (a bag).
        let walk = |sigma: f64| -> VecDeque<(u64, f64)> {
            errors
                .iter()
                .enumerate()
                .map(|(i, z)| {
                    let t = i as f64 * 0.3;
                    let d = (6.0 - 1.2 * t).max(0.5);
                    (i as u64 * 300, d + 0.6 + sigma * z)
                })
                .collect()
        };
        let exact = scatter(&walk(0.0)).unwrap();
        assert!(
            exact < 0.05,
            "a steady walk and a stop are no scatter: {exact}"
        );
        for sigma in [0.1, 0.3, 0.8] {
            let s = scatter(&walk(sigma)).unwrap();
            assert!((sigma * 0.6..sigma * 1.5).contains(&s), "σ {sigma}: {s}");
        }
        // A few multipath outliers hardly move it.
        let mut wild = walk(0.1);
        for i in [5, 17, 30] {
            wild[i].1 += 3.0;
        }
        assert!(scatter(&wild).unwrap() < 0.2);
        // Too few readings, or readings too far apart, say nothing.
        assert!(scatter(&walk(0.3).into_iter().take(5).collect()).is_none());
        let sparse: VecDeque<(u64, f64)> = walk(0.3).into_iter().map(|(t, d)| (t * 6, d)).collect();
        assert!(scatter(&sparse).is_none());
    }

    #[test]
    fn failed_rounds_are_not_readings() {
        for bad in [f64::NAN, f64::INFINITY, -0.1] {
            assert!(!usable(bad));
        }
        assert!(usable(0.0) && usable(3.2));
    }
}
