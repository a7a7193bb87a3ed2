//! Walk-up evaluation on simulated walk traces (BRIEF §5 targets):
//! ≥ 99% of approaches unlock within 1.5 s of reaching 1 m; ≤ 0.1% of walk-pasts at ≥ 2 m
//! unlock; 0 unlocks when leaving.
//!
//! Radio model: log-distance path loss `rssi = tx − 10·n·log10(d) + offset + noise`, where the
//! offset is how the phone is carried and the noise has an independent per-reading part and a
//! part correlated over 500 ms (body shadowing). The door advertises every 30 ms (the
//! simulated radio's default) plus BLE's 0–10 ms random delay and the phone misses 30% of them.
//! Motion model: the phone's motion detector reports `Still` 500–900 ms after the walker stops
//! and `Walking` 200–600 ms after they start, plus a spurious `Still` of 300–800 ms every 50 s
//! of walking on average (`--no-motion` replays without motion data, as the CLI does).
//! Carry model: the phone's proximity sensor reports a trace's phone covered (offset below
//! −1.5 dB) or uncovered, except for 10% of traces reported unknown, 5% of covered phones
//! reported uncovered and 1% of uncovered ones reported covered (`--no-carry`,
//! `--carry-unknown`, `--carry-wrong`).
//! Families marked `tune` and `seen` were looked at to pick the engine defaults; `held-out`
//! families were written before and run only after the defaults were frozen.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-shared cargo bench -p keyway-shared --bench walkup`
//! (`-- --traces N` to change the count per family, `-- --tune` for the parameter sweep; the
//! radio with `--advert-ms MS`, `--loss FRACTION`, `--shadowing DB`; motion with `--no-motion`,
//! `--still-latency-ms MS`, `--false-still-per-s RATE`; the engine with `--evidence`,
//! `--walking-evidence`, `--still-evidence`, `--still-window-ms`, `--carry-doubt`,
//! `--covered-doubt`, `--gate-m`,
//! `--fit-ms`, `--window-ms`, `--correlated-db`, `--correlation-ms`, the prior weights of walks
//! with `--passing`, `--slowing`, `--paused`; `--seen-only` leaves the
//! held-out families unrun,
//! `--family TEXT` runs only families whose name contains it; `--bars` records every arrival
//! test instead and prints the trade-off over a grid of walking and still bars, and which
//! reports the approaches that miss had, with `KEYWAY_BARS_DUMP` set each miss's tests).
//! Experiments that tell the engine what no phone knows: `--oracle-carry`, and
//! `--calibrated-carry SIGMA` with `--calibration-width`, `--calibration-doubt`.
//! Ranging (round 12): `--ranging SHARE` gives that share of traces a phone and door that
//! range (UWB or Channel Sounding), with `--range-hz`, `--range-sigma`, `--range-nlos-m`,
//! `--range-outliers`, `--range-loss` for the ranging model and `--range-unlock-m` for the
//! engine; the ranging model is stated in the report. The default model (UWB-like) was looked
//! at while the range rule was designed; two were written down before the rule's second
//! version and held out of its design: Channel-Sounding-like (`--range-sigma 0.3 --range-hz 2
//! --range-outliers 0.05 --range-loss 0.2`) and deep shadowing (`--range-nlos-m 1.0`). The
//! Channel-Sounding-like model found the rule's window too short for 2 readings a second
//! (0.01% within 1.5 s: ranging, never settled, still silenced RSSI), so it counts as seen
//! now; two more were written down before the third version and held out of it: sparse
//! (`--range-sigma 0.4 --range-hz 1 --range-loss 0.3`) and blocked (`--range-hz 3
//! --range-loss 0.3`).
//! Round 13 fuses ranged distances into the arrival test (`--range-rule fused`, the default;
//! `direct` is round 12's rule), with `--range-fit-sigma`, `--range-fit-bias-m` and
//! `--range-gate-m` for what it assumes (`--range-gate-max-scatter-m` for the scatter beyond
//! which the gate is skipped, round 15; `--range-recede-m` for how far the newest reading
//! may exceed the oldest of the gate's; and, since round 14, `--range-fit-levels`: over how
//! many noise levels it learns σ; 1 is round 13's known σ). Every model above was seen before it was designed;
//! one was written down before any fused run and held out of it: noisy Channel Sounding
//! (`--range-hz 2 --range-sigma 0.5 --range-nlos-m 0.8 --range-outliers 0.1 --range-loss
//! 0.25`). It found the fused test overconfident with a stack noisier than it assumes, so it
//! counts as seen. Round 14 lets the test learn the stack's noise; two models were written down
//! before any round-14 run and held out of it: crowded Channel Sounding (`--range-hz 3
//! --range-sigma 0.8 --range-nlos-m 1.0 --range-outliers 0.15 --range-loss 0.3`) and degraded
//! UWB (`--range-hz 4 --range-sigma 0.4 --range-nlos-m 0.6 --range-outliers 0.08 --range-loss
//! 0.15`). What round 14 must show on them, decided beforehand: ranging never worse than RSSI
//! alone on the same traces (detection no lower, walk-pasts and standing false unlocks no
//! more). Both missed it; round 15 lets a stack whose readings scatter widely skip the gate,
//! and one model was written down before any round-15 run and held out of it: office
//! Channel Sounding (`--range-hz 2.5 --range-sigma 0.6 --range-nlos-m 0.9 --range-outliers
//! 0.12 --range-loss 0.2`), with the same criterion.
//! Also prints the stripped size of each release build of the core library it finds (the
//! host's, and the mobile targets' from `scripts/size-mobile-core`; `KEYWAY_CORE_LIB`
//! overrides the paths).

use keyway_shared::walkup::arrival::Walks;
use keyway_shared::walkup::{Carry, Motion, WalkUpEngine, WalkUpParams};

const TX: i8 = -59;

/// SplitMix64 with Box–Muller normals: reproducible without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[derive(Clone, Copy)]
struct Radio {
    n: f64,
    sigma: f64,
    /// Body or pocket loss (negative) or a phone held up towards the door (positive), dB.
    offset_db: f64,
}

/// A path: positions (x, y) in metres at time t (ms); the door is at the origin.
struct Trace {
    /// (t_ms, distance_m)
    samples: Vec<(u64, f64)>,
    /// First time the walker is within 1 m (approaches only).
    reached_1m: Option<u64>,
    /// What the phone's motion detector reports, and when (empty with `--no-motion`).
    motion: Vec<(u64, Motion)>,
    /// The walker's mean speed while stepping, m/s.
    walking_m_s: f64,
}

/// Faster than this (m/s) the walker is stepping.
const STEPPING_M_S: f64 = 0.25;
/// Whether the phone reports motion (`--no-motion`: it does not, as a replayed CSV trace).
static MOTION: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
/// Mean delay before the detector reports a stop, ms (`--still-latency-ms`, default 700;
/// each stop draws ±200 ms around it): the accelerometer's variance window has to empty of the
/// last step, and a person at a door still shifts their weight.
static STILL_LATENCY_MS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// Spurious `Still` reports per second of walking (`--false-still-per-s`, default 0.02: one
/// every 50 s), each lasting 300–800 ms: a stride the detector misses, or a hand steadying
/// the phone mid-step.
static FALSE_STILL_PER_S: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// Whether the phone reports how it is carried (`--no-carry`: it does not).
static CARRY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
/// Share of traces whose carry report is `Unknown` (`--carry-unknown`, default 0.10: no
/// proximity sensor, or the shell is not running it).
static CARRY_UNKNOWN: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// Share of traces with a pocketed or bagged phone reported `Uncovered` (`--carry-wrong`,
/// default 0.05: a loose bag, a mesh pocket, the sensor facing an open gap); a phone in the
/// hand is reported `Covered` a fifth as often (a thumb over the sensor).
static CARRY_WRONG: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// An oracle for the carry (`--oracle-carry`): the engine is told each trace's true carry
/// offset within ±0.5 dB, and the report is never missing or wrong. No phone can know this;
/// the run measures how much of the shortfall the unknown carry alone accounts for.
static ORACLE_CARRY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// A per-person carry calibration (`--calibrated-carry SIGMA`): when the phone reports its
/// carry correctly, the engine is told an estimate of that carry's offset, off the truth by
/// SIGMA·N(0,1) dB, and fits within ±`--calibration-width` dB of it (default max(0.5, 2·SIGMA)),
/// mixed by `--calibration-doubt` (default 0.05) with the whole offset range in case the
/// calibration is stale. An unknown or wrong report has no calibration (it belongs to the
/// other way of carrying), so the engine works as without. No such calibration is built: the
/// run says how accurate one would have to be.
static CALIBRATED_CARRY: std::sync::OnceLock<(f64, f64, f64)> = std::sync::OnceLock::new();

/// Whether the phone reports its wearer's pace (`--no-pace`: it does not; nor without motion
/// data).
static PACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
/// Spread of the reported pace around the true walking speed, as the σ of its logarithm
/// (`--pace-error`, default 0.15: cadence times a stride length guessed from an average
/// build, off by 15% for one walker in three and by 30% for one in twenty).
static PACE_ERROR: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// Share of traces with no pace report (`--pace-unknown`, default 0.10).
static PACE_UNKNOWN: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// The phone reports a pace once the wearer has walked this long (a few strides to count).
const PACE_AFTER_MS: u64 = 3_000;

/// The pace the phone reports for a trace, if any.
fn report_pace(rng: &mut Rng, walking_m_s: f64) -> Option<f64> {
    let error = PACE_ERROR.get().copied().unwrap_or(0.15);
    let unknown = PACE_UNKNOWN.get().copied().unwrap_or(0.10);
    // Drawn whatever the flags, so that `--no-pace` leaves every other draw as it was.
    let pace = (rng.uniform() >= unknown).then(|| walking_m_s * (error * rng.normal()).exp());
    let reported = PACE.get().copied().unwrap_or(true) && MOTION.get().copied().unwrap_or(true);
    pace.filter(|_| reported)
}

/// What the phone's proximity sensor reports for a trace: its carry offset says whether it
/// is in a pocket or bag (below −1.5 dB) or in the hand, and the report is sometimes missing
/// or wrong.
fn report_carry(rng: &mut Rng, offset_db: f64) -> Carry {
    if !CARRY.get().copied().unwrap_or(true) {
        return Carry::Unknown;
    }
    let unknown = CARRY_UNKNOWN.get().copied().unwrap_or(0.10);
    let wrong = CARRY_WRONG.get().copied().unwrap_or(0.05);
    let (truth, other, wrong) = if offset_db < -1.5 {
        (Carry::Covered, Carry::Uncovered, wrong)
    } else {
        (Carry::Uncovered, Carry::Covered, wrong / 5.0)
    };
    let u = rng.uniform();
    if u < unknown {
        Carry::Unknown
    } else if u < unknown + wrong {
        other
    } else {
        truth
    }
}

/// The shell's motion detector over the true path: it reports `Still` once the walker has not
/// stepped for 500–900 ms and `Walking` once they have stepped for 200–600 ms, and now and
/// then `Still` while they walk.
fn detect_motion(
    rng: &mut Rng,
    duration_ms: u64,
    moving: impl Fn(u64) -> bool,
) -> Vec<(u64, Motion)> {
    if !MOTION.get().copied().unwrap_or(true) {
        return vec![];
    }
    let still_ms = STILL_LATENCY_MS.get().copied().unwrap_or(700.0);
    let false_still = FALSE_STILL_PER_S.get().copied().unwrap_or(0.02);
    let mut state = if moving(0) {
        Motion::Walking
    } else {
        Motion::Still
    };
    let mut out = vec![(0, state)];
    // Since when the truth has differed from the report, and how long the detector needs.
    let mut pending: Option<(u64, f64)> = None;
    // A spurious `Still` in progress, until then.
    let mut spurious_until: Option<u64> = None;
    for t in (10..=duration_ms).step_by(10) {
        let truth = if moving(t) {
            Motion::Walking
        } else {
            Motion::Still
        };
        if let Some(end) = spurious_until {
            if t < end {
                continue;
            }
            spurious_until = None;
            state = Motion::Walking;
            out.push((t, state));
        }
        if truth == state {
            pending = None;
            if state == Motion::Walking && rng.uniform() < false_still * 0.010 {
                spurious_until = Some(t + rng.range(300.0, 800.0) as u64);
                state = Motion::Still;
                out.push((t, state));
            }
            continue;
        }
        let (start, needed) = *pending.get_or_insert_with(|| {
            let needed = match truth {
                Motion::Still => rng.range(still_ms - 200.0, still_ms + 200.0),
                _ => rng.range(200.0, 600.0),
            };
            (t, needed)
        });
        if (t - start) as f64 >= needed {
            state = truth;
            out.push((t, state));
            pending = None;
        }
    }
    out
}

fn sample_path(rng: &mut Rng, duration_ms: u64, pos: impl Fn(u64) -> (f64, f64)) -> Trace {
    let mut samples = Vec::new();
    let mut t = rng.range(0.0, 100.0) as u64;
    let mut reached = None;
    // Ground truth at fine resolution for the 1 m crossing.
    for ms in (0..=duration_ms).step_by(10) {
        let (x, y) = pos(ms);
        if reached.is_none() && (x * x + y * y).sqrt() <= 1.0 {
            reached = Some(ms);
        }
    }
    let moving = |t: u64| {
        let ((x0, y0), (x1, y1)) = (pos(t), pos(t + 10));
        ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt() / 0.010 > STEPPING_M_S
    };
    let motion = detect_motion(rng, duration_ms, moving);
    let (mut stepped_m, mut stepping_ms) = (0.0, 0u64);
    for ms in (0..duration_ms).step_by(10) {
        if moving(ms) {
            let ((x0, y0), (x1, y1)) = (pos(ms), pos(ms + 10));
            stepped_m += ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
            stepping_ms += 10;
        }
    }
    let walking_m_s = stepped_m / (stepping_ms.max(1) as f64 / 1000.0);
    let advert_ms = advert_ms();
    while t <= duration_ms {
        let (x, y) = pos(t);
        samples.push((t, (x * x + y * y).sqrt()));
        // BLE adds a random 0–10 ms delay to every advertising event.
        t += (advert_ms + rng.range(0.0, 10.0)) as u64;
    }
    Trace {
        samples,
        reached_1m: reached,
        motion,
        walking_m_s,
    }
}

fn lerp(a: f64, b: f64, f: f64) -> f64 {
    a + (b - a) * f.clamp(0.0, 1.0)
}

/// Walks straight to the door from `start` m at `speed`, stops at `stop` m, stays `hold` ms.
fn approach(rng: &mut Rng, speed: (f64, f64), angle_deg: f64) -> Trace {
    let start = rng.range(8.0, 12.0);
    let stop = rng.range(0.3, 0.7);
    let v = rng.range(speed.0, speed.1);
    let walk_ms = ((start - stop) / v * 1000.0) as u64;
    let a = (angle_deg + rng.range(-10.0, 10.0)).to_radians();
    let sway = rng.range(0.0, 0.05);
    sample_path(rng, walk_ms + 5_000, move |t| {
        let d = lerp(start, stop, t as f64 / walk_ms as f64);
        let wobble = sway * ((t as f64) / 300.0).sin();
        (d * a.cos() + wobble, d * a.sin())
    })
}

fn walk_past(rng: &mut Rng, offset: f64, speed: (f64, f64)) -> Trace {
    let v = rng.range(speed.0, speed.1);
    let off = offset + rng.range(-0.1, 0.1);
    let dur = (20.0 / v * 1000.0) as u64;
    sample_path(rng, dur, move |t| (-10.0 + v * t as f64 / 1000.0, off))
}

/// Walks past at `offset` m and stops for 2–4 s at the closest point (reading a message), then
/// walks on.
fn walk_past_with_pause(rng: &mut Rng, offset: f64, speed: (f64, f64)) -> Trace {
    let v = rng.range(speed.0, speed.1);
    let off = offset + rng.range(-0.1, 0.1);
    let t1 = (10.0 / v * 1000.0) as u64;
    let t2 = t1 + rng.range(2_000.0, 4_000.0) as u64;
    let dur = t2 + t1;
    sample_path(rng, dur, move |t| {
        let x = if t < t1 {
            -10.0 + v * t as f64 / 1000.0
        } else if t < t2 {
            0.0
        } else {
            v * (t - t2) as f64 / 1000.0
        };
        (x, off)
    })
}

/// Walks up to `stop` m (±0.2) from the door and stands there 5–10 s (waiting beside it for a
/// lift or a colleague).
fn stop_short(rng: &mut Rng, stop: f64) -> Trace {
    let start = rng.range(8.0, 12.0);
    let stop = stop + rng.range(-0.2, 0.2);
    let v = rng.range(1.0, 1.4);
    let a = rng.range(-40.0f64, 40.0).to_radians();
    let walk_ms = ((start - stop) / v * 1000.0) as u64;
    let wait = rng.range(5_000.0, 10_000.0) as u64;
    sample_path(rng, walk_ms + wait, move |t| {
        let d = lerp(start, stop, t as f64 / walk_ms as f64);
        (d * a.cos(), d * a.sin())
    })
}

fn loiter(rng: &mut Rng, radius: f64) -> Trace {
    let phase = rng.range(0.0, std::f64::consts::TAU);
    let seed = rng.range(0.0, 100.0);
    // Arrives from 10 m first, then wanders ±0.5 m around `radius` for 30 s.
    sample_path(rng, 38_000, move |t| {
        if t < 8_000 {
            let d = lerp(10.0, radius, t as f64 / 6_000.0);
            return (d * phase.cos(), d * phase.sin());
        }
        let s = (t - 8_000) as f64 / 1000.0;
        let r = radius + 0.5 * (s * 0.7 + seed).sin();
        let a = phase + 0.4 * (s * 0.23 + seed).sin();
        (r * a.cos(), r * a.sin())
    })
}

/// Approaches, pauses 2 s at 3 m (reading a sign), then walks on to the door. (Not
/// `approach_pausing_at`, which draws its random numbers differently: the seen family keeps
/// its traces.)
fn approach_with_pause(rng: &mut Rng) -> Trace {
    let start = rng.range(8.0, 12.0);
    let stop = rng.range(0.3, 0.7);
    let v = rng.range(1.1, 1.4);
    let t1 = ((start - 3.0) / v * 1000.0) as u64;
    let t2 = t1 + 2_000;
    let t3 = t2 + ((3.0 - stop) / v * 1000.0) as u64;
    sample_path(rng, t3 + 5_000, move |t| {
        let d = if t < t1 {
            lerp(start, 3.0, t as f64 / t1 as f64)
        } else if t < t2 {
            3.0
        } else {
            lerp(3.0, stop, (t - t2) as f64 / (t3 - t2) as f64)
        };
        (d, 0.0)
    })
}

/// Approaches at `speed`, pauses `pause_ms` at `at` m (±0.3; checking the way, letting someone
/// by), then walks on to the door.
fn approach_pausing_at(rng: &mut Rng, at: f64, pause_ms: (f64, f64), speed: (f64, f64)) -> Trace {
    let start = rng.range(8.0, 12.0);
    let stop = rng.range(0.3, 0.7);
    let at = at + rng.range(-0.3, 0.3);
    let v = rng.range(speed.0, speed.1);
    let t1 = ((start - at) / v * 1000.0) as u64;
    let t2 = t1 + rng.range(pause_ms.0, pause_ms.1) as u64;
    let t3 = t2 + ((at - stop) / v * 1000.0) as u64;
    sample_path(rng, t3 + 5_000, move |t| {
        let d = if t < t1 {
            lerp(start, at, t as f64 / t1 as f64)
        } else if t < t2 {
            at
        } else {
            lerp(at, stop, (t - t2) as f64 / (t3 - t2) as f64)
        };
        (d, 0.0)
    })
}

/// Approaches at `speed`, then slows down evenly over the last 1–2 m to stand still at the
/// door (as people do), rather than stopping dead.
fn approach_slowing(rng: &mut Rng, speed: (f64, f64)) -> Trace {
    let start = rng.range(8.0, 12.0);
    let stop = rng.range(0.3, 0.7);
    let braking_m = rng.range(1.0, 2.0);
    let v = rng.range(speed.0, speed.1);
    let t1 = ((start - stop - braking_m) / v * 1000.0) as u64;
    // Even deceleration from v to 0 over braking_m takes 2·braking_m / v.
    let braking_ms = 2.0 * braking_m / v * 1000.0;
    let t2 = t1 + braking_ms as u64;
    sample_path(rng, t2 + 5_000, move |t| {
        let d = if t < t1 {
            lerp(start, stop + braking_m, t as f64 / t1 as f64)
        } else {
            braked(stop, braking_m, braking_ms, t - t1)
        };
        (d, 0.0)
    })
}

/// Distance from the door `since_ms` into an even deceleration that covers `braking_m` in
/// `braking_ms` and comes to rest at `stop`.
fn braked(stop: f64, braking_m: f64, braking_ms: f64, since_ms: u64) -> f64 {
    let left = 1.0 - (since_ms as f64 / braking_ms).min(1.0);
    stop + braking_m * left * left
}

/// Walks down a corridor parallel to the door's wall, `w` m (1.1–1.6) out from it, then turns
/// in at the door and steps up to it, slowing for the turn; stands there 5 s. Until the turn it
/// looks like someone walking past at about 1.5 m.
fn approach_along_wall(rng: &mut Rng, speed: (f64, f64)) -> Trace {
    let w = rng.range(1.1, 1.6);
    let stop = rng.range(0.3, 0.7);
    let x_turn = -rng.range(0.0, 0.6);
    let v = rng.range(speed.0, speed.1);
    let t1 = ((x_turn + 10.0) / v * 1000.0) as u64;
    let turn_m = (x_turn * x_turn + (w - stop).powi(2)).sqrt();
    let t2 = t1 + (turn_m / (0.7 * v) * 1000.0) as u64;
    sample_path(rng, t2 + 5_000, move |t| {
        if t < t1 {
            (-10.0 + v * t as f64 / 1000.0, w)
        } else {
            let f = (t - t1) as f64 / (t2 - t1) as f64;
            (lerp(x_turn, 0.0, f), lerp(w, stop, f))
        }
    })
}

/// Walks past at `offset` m, goes on 2–4 m, turns back (0.5–1.5 s: forgot something) and walks
/// past again the other way.
fn walk_past_turning_back(rng: &mut Rng, offset: f64, speed: (f64, f64)) -> Trace {
    let v = rng.range(speed.0, speed.1);
    let off = offset + rng.range(-0.1, 0.1);
    let beyond = rng.range(2.0, 4.0);
    let t1 = ((10.0 + beyond) / v * 1000.0) as u64;
    let t2 = t1 + rng.range(500.0, 1_500.0) as u64;
    let dur = t2 + t1;
    sample_path(rng, dur, move |t| {
        let x = if t < t1 {
            -10.0 + v * t as f64 / 1000.0
        } else if t < t2 {
            beyond
        } else {
            beyond - v * (t - t2) as f64 / 1000.0
        };
        (x, off)
    })
}

/// Arrives, stands at the door 2–5 s, then leaves: one unlock, none on the way out.
fn arrive_then_leave(rng: &mut Rng) -> Trace {
    let start = rng.range(8.0, 12.0);
    let stop = rng.range(0.3, 0.7);
    let v = rng.range(1.0, 1.5);
    let t1 = ((start - stop) / v * 1000.0) as u64;
    let t2 = t1 + rng.range(2_000.0, 5_000.0) as u64;
    let t3 = t2 + ((12.0 - stop) / v * 1000.0) as u64;
    sample_path(rng, t3, move |t| {
        let d = if t < t1 {
            lerp(start, stop, t as f64 / t1 as f64)
        } else if t < t2 {
            stop
        } else {
            lerp(stop, 12.0, (t - t2) as f64 / (t3 - t2) as f64)
        };
        (d, 0.0)
    })
}

/// Arrives slowing down over the last 1–2 m, stands at the door 2–5 s, then leaves.
fn arrive_slowing_then_leave(rng: &mut Rng) -> Trace {
    let start = rng.range(8.0, 12.0);
    let stop = rng.range(0.3, 0.7);
    let braking_m = rng.range(1.0, 2.0);
    let v = rng.range(1.0, 1.5);
    let t1 = ((start - stop - braking_m) / v * 1000.0) as u64;
    let braking_ms = 2.0 * braking_m / v * 1000.0;
    let t2 = t1 + braking_ms as u64 + rng.range(2_000.0, 5_000.0) as u64;
    let t3 = t2 + ((12.0 - stop) / v * 1000.0) as u64;
    sample_path(rng, t3, move |t| {
        let d = if t < t1 {
            lerp(start, stop + braking_m, t as f64 / t1 as f64)
        } else if t < t2 {
            braked(stop, braking_m, braking_ms, t - t1)
        } else {
            lerp(stop, 12.0, (t - t2) as f64 / (t3 - t2) as f64)
        };
        (d, 0.0)
    })
}

fn leave(rng: &mut Rng) -> Trace {
    let start = rng.range(0.3, 0.8);
    let wait = rng.range(0.0, 4_000.0) as u64;
    let v = rng.range(0.9, 1.6);
    let walk = ((12.0 - start) / v * 1000.0) as u64;
    sample_path(rng, wait + walk, move |t| {
        let d = if t < wait {
            start
        } else {
            lerp(start, 12.0, (t - wait) as f64 / walk as f64)
        };
        (d, 0.0)
    })
}

/// Part of each family's noise that is correlated in time (`--shadowing DB`, default 2): body
/// and furniture shadowing changes over about half a second, not per advertisement; the rest
/// (multipath, different on each advertising channel) is independent per reading. The total σ
/// stays the family's either way; 0 makes every reading's noise independent.
static SHADOWING_DB: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
const SHADOWING_TAU_MS: f64 = 500.0;
/// The door's advertising interval (`--advert-ms`, default 30 as the simulated radio advertises).
static ADVERT_MS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// Share of advertisements the phone misses (`--loss`, default 0.3: scan windows, channel
/// collisions, the phone's own radio duties).
static LOSS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn advert_ms() -> f64 {
    ADVERT_MS.get().copied().unwrap_or(30.0)
}
fn loss() -> f64 {
    LOSS.get().copied().unwrap_or(0.3)
}
fn shadowing_db() -> f64 {
    SHADOWING_DB.get().copied().unwrap_or(2.0)
}

/// Share of traces whose phone and door range to each other (`--ranging SHARE`, default 0:
/// RSSI alone, as every figure before round 12). A ranging phone also hears adverts; the
/// engine decides by range while readings come (see `walkup::ranging`).
static RANGING: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// Ranging readings per second once a session is up (`--range-hz`, default 5).
static RANGE_HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// Per-reading error, one σ in metres (`--range-sigma`, default 0.1: UWB in line of sight;
/// Channel Sounding is nearer 0.3).
static RANGE_SIGMA: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// Largest extra length a covered phone's readings get from the body or bag in the way
/// (`--range-nlos-m`, default 0.6: each covered trace draws its bias from 0 to this, an
/// uncovered one from 0 to a sixth of it). Signals that go round read long, never short.
static RANGE_NLOS_M: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// Share of readings that are multipath outliers, 0.5–3 m long (`--range-outliers`, default
/// 0.03), and of rounds that fail and report nothing (`--range-loss`, default 0.1).
static RANGE_OUTLIERS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
static RANGE_LOSS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
/// A session starts 300–1,000 ms (BLE connection and the UWB key exchange) after the phone
/// first comes within this of the door, and readings stop beyond it plus 2 m.
const RANGE_START_M: f64 = 6.0;

/// One trace's ranging: when readings come and how they err. Drawn from its own generator
/// (seeded from the trace's without advancing it), so turning ranging on leaves every RSSI,
/// motion and report draw as it was.
struct Ranger {
    rng: Rng,
    bias_m: f64,
    /// When the session is up (set once the phone first comes near).
    up_at: Option<u64>,
    next_at: u64,
}

impl Ranger {
    fn for_trace(rng: &Rng, offset_db: f64) -> Option<Ranger> {
        let share = RANGING.get().copied().unwrap_or(0.0);
        let mut own = Rng(rng.0 ^ 0x5241_4E47_4544_2121);
        if own.uniform() >= share {
            return None;
        }
        let nlos = RANGE_NLOS_M.get().copied().unwrap_or(0.6);
        let bias_m = if offset_db < -1.5 {
            own.range(0.0, nlos)
        } else {
            own.range(0.0, nlos / 6.0)
        };
        Some(Ranger {
            rng: own,
            bias_m,
            up_at: None,
            next_at: 0,
        })
    }

    /// The reading due at `t_ms` with the phone at `d` metres, if any.
    fn reading(&mut self, t_ms: u64, d: f64) -> Option<f64> {
        if self.up_at.is_none() && d <= RANGE_START_M {
            let up = t_ms + self.rng.range(300.0, 1_000.0) as u64;
            self.up_at = Some(up);
            self.next_at = up;
        }
        if self.up_at.is_none() || t_ms < self.next_at || d > RANGE_START_M + 2.0 {
            return None;
        }
        self.next_at += (1000.0 / RANGE_HZ.get().copied().unwrap_or(5.0)) as u64;
        if self.rng.uniform() < RANGE_LOSS.get().copied().unwrap_or(0.1) {
            return None;
        }
        let outlier = if self.rng.uniform() < RANGE_OUTLIERS.get().copied().unwrap_or(0.03) {
            self.rng.range(0.5, 3.0)
        } else {
            0.0
        };
        let sigma = RANGE_SIGMA.get().copied().unwrap_or(0.1);
        Some((d + self.bias_m + outlier + sigma * self.rng.normal()).max(0.0))
    }
}

/// Which bar an arrival test had to clear: the wearer's motion picks it (see `WalkUpParams`).
#[derive(Clone, Copy, PartialEq)]
enum Bar {
    Walking,
    /// Still, within `still_window_ms` of stopping.
    JustStopped,
    /// No motion data, or still for longer.
    Other,
}

/// One arrival test the engine ran: when, against which bar, and what it found.
#[derive(Clone, Copy)]
struct Test {
    t_ms: u64,
    bar: Bar,
    evidence: f64,
    /// What the phone reported at the time.
    carry: Carry,
    pace: Option<f64>,
}

/// Runs one trace; returns the unlock times, and every arrival test when `tests` is given.
fn run(
    trace: &Trace,
    radio: Radio,
    params: WalkUpParams,
    rng: &mut Rng,
    mut tests: Option<&mut Vec<Test>>,
) -> Vec<u64> {
    let mut params = params;
    let oracle = ORACLE_CARRY.get().copied().unwrap_or(false);
    if oracle {
        let known = (radio.offset_db - 0.5, radio.offset_db + 0.5);
        params.covered_offset_db = known;
        params.uncovered_offset_db = known;
        params.covered_doubt = 0.0;
        params.carry_doubt = 0.0;
    }
    let mut ranger = Ranger::for_trace(rng, radio.offset_db);
    // Drawn whatever the flags, so that the oracle leaves every other draw as it was.
    let reported = report_carry(rng, radio.offset_db);
    if let Some(&(sigma, width, doubt)) = CALIBRATED_CARRY.get() {
        let truth = if radio.offset_db < -1.5 {
            Carry::Covered
        } else {
            Carry::Uncovered
        };
        // From a side stream, so that every other draw stays as it was without the flag.
        let mut side = Rng(rng.0 ^ 0x5DEE_CE66_D1CE_4E5B);
        let centre = radio.offset_db + sigma * side.normal();
        let known = (centre - width, centre + width);
        match reported {
            Carry::Covered if truth == Carry::Covered => {
                params.covered_offset_db = known;
                params.covered_doubt = doubt;
            }
            Carry::Uncovered if truth == Carry::Uncovered => {
                params.uncovered_offset_db = known;
                params.carry_doubt = doubt;
            }
            _ => {}
        }
    }
    let mut e = WalkUpEngine::new(params);
    e.set_enabled("door", true);
    e.set_carry(if oracle {
        if radio.offset_db < -1.5 {
            Carry::Covered
        } else {
            Carry::Uncovered
        }
    } else {
        reported
    });
    let mut pace = report_pace(rng, trace.walking_m_s);
    let mut out = vec![];
    let slow_sigma = shadowing_db().min(radio.sigma);
    let fast_sigma = (radio.sigma.powi(2) - slow_sigma.powi(2)).sqrt();
    let (mut slow, mut last_t) = (0.0, 0);
    let mut motion = trace.motion.iter().peekable();
    // The engine's bar: the motion, and its first reading since it changed.
    let mut since: Option<u64> = None;
    for &(t, d) in &trace.samples {
        while let Some(&&(at, m)) = motion.peek()
            && at <= t
        {
            if m != e.motion() {
                since = None;
            }
            e.set_motion(m);
            motion.next();
        }
        if t >= PACE_AFTER_MS
            && let Some(v) = pace.take()
        {
            e.set_pace(Some(v));
        }
        if slow_sigma > 0.0 {
            // AR(1) keeps the slow part's variance at slow_sigma² whatever the reading gaps.
            let rho = (-((t - last_t) as f64) / SHADOWING_TAU_MS).exp();
            slow = rho * slow + (1.0 - rho * rho).sqrt() * slow_sigma * rng.normal();
            last_t = t;
        }
        if let Some(r) = ranger.as_mut().and_then(|r| r.reading(t, d))
            && let Some(dec) = e.observe_range("door", t, r)
        {
            out.push(dec.t_ms);
        }
        if rng.uniform() < loss() {
            continue; // missed advertisement
        }
        let rssi = TX as f64 - 10.0 * radio.n * d.max(0.05).log10()
            + radio.offset_db
            + slow
            + fast_sigma * rng.normal();
        if rssi < -100.0 {
            continue;
        }
        let rssi = rssi.round().clamp(-100.0, -20.0) as i16;
        let since = *since.get_or_insert(t);
        if let Some(dec) = e.observe("door", t, rssi, TX) {
            out.push(dec.t_ms);
        }
        if let Some(tests) = tests.as_deref_mut()
            && let Some((at, Some(evidence))) = e.last_test("door")
            && at == t
        {
            let bar = match e.motion() {
                Motion::Walking => Bar::Walking,
                Motion::Still if t - since <= params.still_window_ms => Bar::JustStopped,
                _ => Bar::Other,
            };
            tests.push(Test {
                t_ms: t,
                bar,
                evidence,
                carry: e.carry(),
                pace: e.pace(),
            });
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Approach,
    /// One approach then leaving: exactly one unlock, before leaving starts.
    ArriveLeave,
    WalkPast(f64),
    /// Stays at 2 m or more (loitering, or standing beside the door): any unlock is false.
    Loiter,
    Leave,
}

/// Which part of the evaluation a family belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Set {
    /// Used to pick the defaults.
    Tune,
    /// Held out in an earlier round, looked at while tuning the current detector.
    Seen,
    /// Not run until the current defaults were frozen.
    HeldOut,
}

impl Set {
    fn label(self) -> &'static str {
        match self {
            Set::Tune => "tune",
            Set::Seen => "seen",
            Set::HeldOut => "held-out",
        }
    }
}

struct Family {
    name: &'static str,
    set: Set,
    kind: Kind,
    radio: Radio,
    make: fn(&mut Rng) -> Trace,
}

fn families() -> Vec<Family> {
    let std = Radio {
        n: 2.0,
        sigma: 4.0,
        offset_db: 0.0,
    };
    let harsh = Radio {
        n: 2.2,
        sigma: 5.0,
        offset_db: 0.0,
    };
    let noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: 0.0,
    };
    let pocket = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -3.0,
    };
    let in_hand = Radio {
        n: 2.0,
        sigma: 4.0,
        offset_db: 2.0,
    };
    // Round 1 tuned on the first four; round 2 (quantile, distance) also looked at the next
    // seven. Round 3 (the arrival test) was tuned looking at all fifteen, round 4 (binned GLS)
    // at these and the round-3 families, round 5 (motion) at those and the round-4 families;
    // its held-out run changed the detector again (round 6), and round 7 (how the phone is
    // carried) was designed knowing round 6's held-out results, and round 8 (the carry
    // ranges) knowing round 7's, round 9 (the walking pace) knowing round 8's, round 10
    // knowing round 9's and round 11 knowing round 10's, so only the `round11_holdout`
    // families were untouched when the current defaults were frozen.
    let mut families = vec![
        Family {
            name: "approach, stop at door",
            set: Set::Tune,
            kind: Kind::Approach,
            radio: std,
            make: |r| approach(r, (1.0, 1.5), 0.0),
        },
        Family {
            name: "walk-past 2 m",
            set: Set::Tune,
            kind: Kind::WalkPast(2.0),
            radio: std,
            make: |r| walk_past(r, 2.0, (1.0, 1.5)),
        },
        Family {
            name: "walk-past 3 m",
            set: Set::Tune,
            kind: Kind::WalkPast(3.0),
            radio: std,
            make: |r| walk_past(r, 3.0, (1.0, 1.5)),
        },
        Family {
            name: "leave",
            set: Set::Tune,
            kind: Kind::Leave,
            radio: std,
            make: leave,
        },
        Family {
            name: "approach slow, σ5 n2.2",
            set: Set::Tune,
            kind: Kind::Approach,
            radio: harsh,
            make: |r| approach(r, (0.6, 0.9), 30.0),
        },
        Family {
            name: "approach brisk, diagonal",
            set: Set::Tune,
            kind: Kind::Approach,
            radio: std,
            make: |r| approach(r, (1.5, 1.9), 45.0),
        },
        Family {
            name: "walk-past 1.5 m",
            set: Set::Tune,
            kind: Kind::WalkPast(1.5),
            radio: std,
            make: |r| walk_past(r, 1.5, (1.0, 1.5)),
        },
        Family {
            name: "walk-past 2 m slow, σ5",
            set: Set::Tune,
            kind: Kind::WalkPast(2.0),
            radio: noisy,
            make: |r| walk_past(r, 2.0, (0.6, 0.9)),
        },
        Family {
            name: "walk-past 5 m",
            set: Set::Tune,
            kind: Kind::WalkPast(5.0),
            radio: std,
            make: |r| walk_past(r, 5.0, (1.0, 1.5)),
        },
        Family {
            name: "loiter at 3 m",
            set: Set::Tune,
            kind: Kind::Loiter,
            radio: std,
            make: |r| loiter(r, 3.0),
        },
        Family {
            name: "leave, σ5 n2.2",
            set: Set::Tune,
            kind: Kind::Leave,
            radio: harsh,
            make: leave,
        },
        Family {
            name: "approach, pause at 3 m, pocket",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: pocket,
            make: approach_with_pause,
        },
        Family {
            name: "walk-past 2 m, phone in hand",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: in_hand,
            make: |r| walk_past(r, 2.0, (0.8, 1.6)),
        },
        Family {
            name: "walk-past 3 m, σ5 n2.2",
            set: Set::Seen,
            kind: Kind::WalkPast(3.0),
            radio: harsh,
            make: |r| walk_past(r, 3.0, (0.7, 1.5)),
        },
        Family {
            name: "arrive, wait, leave",
            set: Set::Seen,
            kind: Kind::ArriveLeave,
            radio: noisy,
            make: arrive_then_leave,
        },
    ];
    families.extend(round3_holdout());
    families.extend(round4_holdout());
    families.extend(round5_holdout());
    families.extend(round6_holdout());
    families.extend(round7_holdout());
    families.extend(round8_holdout());
    families.extend(round9_holdout());
    families.extend(round10_holdout());
    families.extend(round11_holdout());
    families
}

/// Families written after round 10 left slow and slowing walkers short of the targets, before
/// round 11 was designed, and not run until its defaults were frozen. Two new path shapes: an
/// arrival along a corridor wall that turns in at the door, and a walk-past that turns back.
fn round11_holdout() -> Vec<Family> {
    let pocket = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -3.0,
    };
    let hand_up = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 2.0,
    };
    let bag_indoor = Radio {
        n: 2.3,
        sigma: 5.0,
        offset_db: -6.0,
    };
    let hand_high = Radio {
        n: 2.1,
        sigma: 4.0,
        offset_db: 3.0,
    };
    let pocket_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: -4.0,
    };
    let hand_indoor = Radio {
        n: 2.2,
        sigma: 4.5,
        offset_db: 3.0,
    };
    vec![
        Family {
            name: "R11 approach along the wall, turn in, pocket −3",
            set: Set::HeldOut,
            kind: Kind::Approach,
            radio: pocket,
            make: |r| approach_along_wall(r, (1.0, 1.4)),
        },
        Family {
            name: "R11 walk-past 2 m, turn back, hand +2",
            set: Set::HeldOut,
            kind: Kind::WalkPast(2.0),
            radio: hand_up,
            make: |r| walk_past_turning_back(r, 2.0, (0.9, 1.4)),
        },
        Family {
            name: "R11 approach slow, bag −6 n2.3 σ5",
            set: Set::HeldOut,
            kind: Kind::Approach,
            radio: bag_indoor,
            make: |r| approach(r, (0.6, 0.9), 20.0),
        },
        Family {
            name: "R11 approach brisk slowing, hand +3 n2.1",
            set: Set::HeldOut,
            kind: Kind::Approach,
            radio: hand_high,
            make: |r| approach_slowing(r, (1.3, 1.8)),
        },
        Family {
            name: "R11 stop at 2 m, wait, pocket −4 σ5",
            set: Set::HeldOut,
            kind: Kind::Loiter,
            radio: pocket_noisy,
            make: |r| stop_short(r, 2.0),
        },
        Family {
            name: "R11 arrive, wait, leave, hand +3 n2.2",
            set: Set::HeldOut,
            kind: Kind::ArriveLeave,
            radio: hand_indoor,
            make: arrive_then_leave,
        },
    ]
}

/// Families written after round 9 showed the fit's constant-speed walk to be what keeps the
/// pace from helping (it cannot pause or slow down), before round 10 was designed, and not run
/// until its defaults were frozen; seen since.
fn round10_holdout() -> Vec<Family> {
    let hand = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 1.0,
    };
    let bag = Radio {
        n: 2.1,
        sigma: 4.5,
        offset_db: -5.0,
    };
    let pocket_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: -3.0,
    };
    let hand_high = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 4.0,
    };
    let hand_up_indoor = Radio {
        n: 2.2,
        sigma: 5.0,
        offset_db: 2.0,
    };
    let pocket = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -2.0,
    };
    vec![
        Family {
            name: "R10 approach, pause at 2 m, hand +1",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: hand,
            make: |r| approach_pausing_at(r, 2.0, (1_000.0, 3_000.0), (1.0, 1.4)),
        },
        Family {
            name: "R10 approach slowing, bag −5 n2.1",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: bag,
            make: |r| approach_slowing(r, (0.9, 1.4)),
        },
        Family {
            name: "R10 approach slow, pause at 4 m, pocket −3 σ5",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: pocket_noisy,
            make: |r| approach_pausing_at(r, 4.0, (1_500.0, 3_000.0), (0.6, 0.9)),
        },
        Family {
            name: "R10 stop at 2.5 m, wait, hand +4",
            set: Set::Seen,
            kind: Kind::Loiter,
            radio: hand_high,
            make: |r| stop_short(r, 2.5),
        },
        Family {
            name: "R10 walk-past 2 m, pause, hand +2 n2.2 σ5",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_up_indoor,
            make: |r| walk_past_with_pause(r, 2.0, (0.7, 1.1)),
        },
        Family {
            name: "R10 arrive slowing, wait, leave, pocket −2",
            set: Set::Seen,
            kind: Kind::ArriveLeave,
            radio: pocket,
            make: arrive_slowing_then_leave,
        },
    ]
}

/// Families written after round 8 left slow walkers and people stopping at 2 m with a raised
/// phone short of the targets, before round 9 was designed, and not run until its defaults
/// were frozen; round 10 was designed knowing their results, so they count as seen now.
fn round9_holdout() -> Vec<Family> {
    let bag_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: -4.0,
    };
    let hand_up_indoor = Radio {
        n: 2.2,
        sigma: 4.5,
        offset_db: 2.0,
    };
    let pocket = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -3.0,
    };
    let hand_high_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: 3.0,
    };
    let hand_high = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 3.0,
    };
    let hand_up_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: 2.0,
    };
    vec![
        Family {
            name: "R9 approach slow, bag −4 σ5",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: bag_noisy,
            make: |r| approach(r, (0.55, 0.85), 15.0),
        },
        Family {
            name: "R9 approach slow, hand +2 n2.2",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: hand_up_indoor,
            make: |r| approach(r, (0.6, 0.9), -25.0),
        },
        Family {
            name: "R9 approach brisk, pocket −3",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: pocket,
            make: |r| approach(r, (1.4, 1.8), 5.0),
        },
        Family {
            name: "R9 stop at 2 m, wait, hand +3 σ5",
            set: Set::Seen,
            kind: Kind::Loiter,
            radio: hand_high_noisy,
            make: |r| stop_short(r, 2.0),
        },
        Family {
            name: "R9 walk-past 2 m slow, hand +3",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_high,
            make: |r| walk_past(r, 2.0, (0.6, 0.9)),
        },
        Family {
            name: "R9 walk-past 2 m, pause, hand +2 σ5",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_up_noisy,
            make: |r| walk_past_with_pause(r, 2.0, (0.9, 1.3)),
        },
    ]
}

/// Families written after the round-7 run showed hand-held approaches losing detection to the
/// carry report's range for an uncovered phone, before round 8 changed it, and not run until
/// its defaults were frozen; round 9 was designed knowing their results, so they count as seen
/// now.
fn round8_holdout() -> Vec<Family> {
    let hand = Radio {
        n: 2.1,
        sigma: 4.5,
        offset_db: 1.0,
    };
    let hand_low = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 0.0,
    };
    let hand_up = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 2.0,
    };
    let hand_high_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: 4.0,
    };
    let pocket_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: -3.0,
    };
    vec![
        Family {
            name: "R8 approach, hand +1 n2.1",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: hand,
            make: |r| approach(r, (0.9, 1.3), 10.0),
        },
        Family {
            name: "R8 approach slow, hand",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: hand_low,
            make: |r| approach(r, (0.6, 0.9), -20.0),
        },
        Family {
            name: "R8 arrive, wait, leave, hand +2",
            set: Set::Seen,
            kind: Kind::ArriveLeave,
            radio: hand_up,
            make: arrive_then_leave,
        },
        Family {
            name: "R8 walk-past 2 m, hand +4 σ5",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_high_noisy,
            make: |r| walk_past(r, 2.0, (1.0, 1.4)),
        },
        Family {
            name: "R8 stop at 2 m, wait, hand +2",
            set: Set::Seen,
            kind: Kind::Loiter,
            radio: hand_up,
            make: |r| stop_short(r, 2.1),
        },
        Family {
            name: "R8 approach, pocket −3 σ5",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: pocket_noisy,
            make: |r| approach(r, (1.0, 1.4), 30.0),
        },
    ]
}

/// Families written after the round-6 run showed the two cases RSSI and motion still miss
/// (a slow walker with a bagged phone, someone stopping at 2 m with a raised phone), before
/// round 7 was designed, and not run until its defaults were frozen; round 8 was designed
/// knowing their results, so they count as seen now.
fn round7_holdout() -> Vec<Family> {
    let pocket_indoor = Radio {
        n: 2.2,
        sigma: 4.5,
        offset_db: -5.0,
    };
    let hand_up_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: 3.0,
    };
    let hand_high = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 4.0,
    };
    let pocket_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: -3.0,
    };
    let hand_up_indoor = Radio {
        n: 2.2,
        sigma: 4.5,
        offset_db: 3.0,
    };
    let bag = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -5.0,
    };
    vec![
        Family {
            name: "R7 approach slow, pocket −5 n2.2",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: pocket_indoor,
            make: |r| approach(r, (0.6, 0.9), 20.0),
        },
        Family {
            name: "R7 approach, hand +3 σ5",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: hand_up_noisy,
            make: |r| approach(r, (0.9, 1.4), -15.0),
        },
        Family {
            name: "R7 stop at 2 m, wait, hand +4",
            set: Set::Seen,
            kind: Kind::Loiter,
            radio: hand_high,
            make: |r| stop_short(r, 2.2),
        },
        Family {
            name: "R7 walk-past 2 m slow, pocket σ5",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: pocket_noisy,
            make: |r| walk_past(r, 2.0, (0.6, 0.9)),
        },
        Family {
            name: "R7 walk-past 2 m, pause, hand +3 n2.2",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_up_indoor,
            make: |r| walk_past_with_pause(r, 2.1, (1.0, 1.4)),
        },
        Family {
            name: "R7 leave, bag −5",
            set: Set::Seen,
            kind: Kind::Leave,
            radio: bag,
            make: leave,
        },
    ]
}

/// Families written after the round-5 held-out run showed people who stop at about 2 m with a
/// raised phone unlocking, before the detector was changed in response, and not run until it
/// was frozen again; round 7 was designed knowing their results, so they count as seen now.
fn round6_holdout() -> Vec<Family> {
    let pocket = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -3.0,
    };
    let hand_up = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 2.5,
    };
    let bag_indoor = Radio {
        n: 2.3,
        sigma: 4.5,
        offset_db: -4.0,
    };
    let hand_high_noisy = Radio {
        n: 2.0,
        sigma: 5.0,
        offset_db: 3.5,
    };
    vec![
        Family {
            name: "R6 approach, bag −4 n2.3",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: bag_indoor,
            make: |r| approach(r, (0.8, 1.2), 25.0),
        },
        Family {
            name: "R6 approach brisk, hand +2.5",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: hand_up,
            make: |r| approach(r, (1.3, 1.7), 5.0),
        },
        Family {
            name: "R6 stop at 2.5 m, wait, pocket",
            set: Set::Seen,
            kind: Kind::Loiter,
            radio: pocket,
            make: |r| stop_short(r, 2.6),
        },
        Family {
            name: "R6 walk-past 2 m, pause, σ5 +3.5",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_high_noisy,
            make: |r| walk_past_with_pause(r, 2.1, (1.0, 1.5)),
        },
        Family {
            name: "R6 walk-past 2 m brisk, hand +2.5",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_up,
            make: |r| walk_past(r, 2.0, (1.3, 1.8)),
        },
        Family {
            name: "R6 arrive, wait, leave, bag n2.3",
            set: Set::Seen,
            kind: Kind::ArriveLeave,
            radio: bag_indoor,
            make: arrive_then_leave,
        },
    ]
}

/// Families written before the round-5 detector (motion-aware evidence thresholds) was tuned,
/// and run once after it was frozen. Two of them target what motion could get wrong: stopping
/// for a few seconds while passing at 2 m, and walking up to 2 m and standing there; both
/// unlocked (5–7%), so the detector changed and these count as seen.
fn round5_holdout() -> Vec<Family> {
    let pocket_indoor = Radio {
        n: 2.2,
        sigma: 5.0,
        offset_db: -4.0,
    };
    let bag = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -5.0,
    };
    let hand_up = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 3.0,
    };
    let hand_high = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 4.0,
    };
    vec![
        Family {
            name: "R5 approach, pocket −4 n2.2 σ5",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: pocket_indoor,
            make: |r| approach(r, (0.9, 1.3), 15.0),
        },
        Family {
            name: "R5 approach slow, bag −5 dB",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: bag,
            make: |r| approach(r, (0.6, 0.9), 0.0),
        },
        Family {
            name: "R5 walk-past 2 m, pause, hand +3",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_up,
            make: |r| walk_past_with_pause(r, 2.0, (0.9, 1.4)),
        },
        Family {
            name: "R5 stop at 2 m, wait, hand +3",
            set: Set::Seen,
            kind: Kind::Loiter,
            radio: hand_up,
            make: |r| stop_short(r, 2.2),
        },
        Family {
            name: "R5 walk-past 2.5 m slow, hand +4",
            set: Set::Seen,
            kind: Kind::WalkPast(2.5),
            radio: hand_high,
            make: |r| walk_past(r, 2.5, (0.7, 1.0)),
        },
        Family {
            name: "R5 arrive, wait, leave, pocket σ5",
            set: Set::Seen,
            kind: Kind::ArriveLeave,
            radio: pocket_indoor,
            make: arrive_then_leave,
        },
    ]
}

/// Families written before the round-4 detector (binned fit with a correlated-noise floor,
/// 30 ms advertising) was tuned, and not run until it was frozen; round 5 was designed knowing
/// their results, so they count as seen now.
fn round4_holdout() -> Vec<Family> {
    let pocket_indoor = Radio {
        n: 2.3,
        sigma: 5.0,
        offset_db: -4.0,
    };
    let deep_bag = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -6.0,
    };
    let pocket = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -3.0,
    };
    let hand_high = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 4.0,
    };
    let bag = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -5.0,
    };
    vec![
        Family {
            name: "R4 approach slow, pocket n2.3 σ5",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: pocket_indoor,
            make: |r| approach(r, (0.7, 1.0), 10.0),
        },
        Family {
            name: "R4 approach brisk, bag −6 dB",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: deep_bag,
            make: |r| approach(r, (1.4, 1.8), 30.0),
        },
        Family {
            name: "R4 walk-past 2 m slow, pocket",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: pocket,
            make: |r| walk_past(r, 2.0, (0.6, 0.9)),
        },
        Family {
            name: "R4 walk-past 2 m brisk, hand +4",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: hand_high,
            make: |r| walk_past(r, 2.0, (1.3, 1.8)),
        },
        Family {
            name: "R4 arrive, wait, leave, bag",
            set: Set::Seen,
            kind: Kind::ArriveLeave,
            radio: bag,
            make: arrive_then_leave,
        },
        Family {
            name: "R4 leave, bag",
            set: Set::Seen,
            kind: Kind::Leave,
            radio: bag,
            make: leave,
        },
    ]
}

/// Families written before the round-3 detector was tuned and not run until it was frozen;
/// round 4 was designed knowing their results, so they count as seen now.
fn round3_holdout() -> Vec<Family> {
    let bag = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -5.0,
    };
    let indoor_hand = Radio {
        n: 2.5,
        sigma: 4.0,
        offset_db: 2.0,
    };
    let hand_up = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: 3.0,
    };
    let corridor = Radio {
        n: 1.8,
        sigma: 4.0,
        offset_db: 0.0,
    };
    let pocket = Radio {
        n: 2.0,
        sigma: 4.5,
        offset_db: -3.0,
    };
    vec![
        Family {
            name: "R3 approach, bag −5 dB, 20°",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: bag,
            make: |r| approach(r, (0.9, 1.4), 20.0),
        },
        Family {
            name: "R3 approach indoor n2.5, hand",
            set: Set::Seen,
            kind: Kind::Approach,
            radio: indoor_hand,
            make: |r| approach(r, (1.0, 1.5), 0.0),
        },
        Family {
            name: "R3 walk-past 2.5 m, hand +3",
            set: Set::Seen,
            kind: Kind::WalkPast(2.5),
            radio: hand_up,
            make: |r| walk_past(r, 2.5, (0.8, 1.6)),
        },
        Family {
            name: "R3 walk-past 2 m, corridor n1.8",
            set: Set::Seen,
            kind: Kind::WalkPast(2.0),
            radio: corridor,
            make: |r| walk_past(r, 2.0, (1.0, 1.5)),
        },
        Family {
            name: "R3 leave, pocket",
            set: Set::Seen,
            kind: Kind::Leave,
            radio: pocket,
            make: leave,
        },
        Family {
            name: "R3 arrive, wait, leave, pocket",
            set: Set::Seen,
            kind: Kind::ArriveLeave,
            radio: pocket,
            make: arrive_then_leave,
        },
    ]
}

#[derive(Default)]
struct Stats {
    traces: usize,
    detected: usize,
    any_unlock: usize,
    doubles: usize,
    latencies: Vec<f64>,
}

fn evaluate(f: &Family, params: WalkUpParams, n: usize, seed: u64) -> Stats {
    let mut rng = Rng(seed);
    let mut s = Stats::default();
    for _ in 0..n {
        let trace = (f.make)(&mut rng);
        let unlocks = run(&trace, f.radio, params, &mut rng, None);
        s.traces += 1;
        if !unlocks.is_empty() {
            s.any_unlock += 1;
        }
        if unlocks.len() > 1 {
            s.doubles += 1;
        }
        if matches!(f.kind, Kind::Approach | Kind::ArriveLeave)
            && let (Some(r), Some(&u)) = (trace.reached_1m, unlocks.first())
        {
            let lat = u as f64 - r as f64;
            if lat <= 1500.0 {
                s.detected += 1;
            }
            s.latencies.push(lat);
        }
    }
    s
}

/// Evaluates every family (in parallel: the families are independent and seeded apart).
fn evaluate_all(families: &[Family], params: WalkUpParams, n: usize, seed: u64) -> Vec<Stats> {
    std::thread::scope(|scope| {
        let running: Vec<_> = families
            .iter()
            .enumerate()
            .map(|(i, f)| scope.spawn(move || evaluate(f, params, n, seed + i as u64)))
            .collect();
        running
            .into_iter()
            .map(|h| h.join().expect("evaluation panicked"))
            .collect()
    })
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn report(params: WalkUpParams, n: usize, seen_only: bool, only: Option<&str>) -> bool {
    println!("walk-up engine: {params:?}");
    println!(
        "{n} traces per family; radio: adverts every {} ms + 0–10 ms, {:.0}% missed; {:.1} dB of each family's σ correlated over {SHADOWING_TAU_MS} ms",
        advert_ms(),
        loss() * 100.0,
        shadowing_db()
    );
    if MOTION.get().copied().unwrap_or(true) {
        let still_ms = STILL_LATENCY_MS.get().copied().unwrap_or(700.0);
        println!(
            "motion: still reported {:.0}–{:.0} ms after stopping, walking 200–600 ms after starting, {} spurious stills per second of walking",
            still_ms - 200.0,
            still_ms + 200.0,
            FALSE_STILL_PER_S.get().copied().unwrap_or(0.02)
        );
    } else {
        println!("motion: none (RSSI alone)");
    }
    if PACE.get().copied().unwrap_or(true) && MOTION.get().copied().unwrap_or(true) {
        println!(
            "pace: reported from {PACE_AFTER_MS} ms, the walking speed times e^(σ·N(0,1)) with σ {}, unknown for {:.0}% of traces",
            PACE_ERROR.get().copied().unwrap_or(0.15),
            PACE_UNKNOWN.get().copied().unwrap_or(0.10) * 100.0
        );
    } else {
        println!("pace: none reported");
    }
    if CARRY.get().copied().unwrap_or(true) {
        println!(
            "carry: {:.0}% of traces unknown, {:.0}% of covered phones reported uncovered, {:.0}% of uncovered ones covered\n",
            CARRY_UNKNOWN.get().copied().unwrap_or(0.10) * 100.0,
            CARRY_WRONG.get().copied().unwrap_or(0.05) * 100.0,
            CARRY_WRONG.get().copied().unwrap_or(0.05) * 20.0
        );
    } else {
        println!("carry: none reported\n");
    }
    let ranging = RANGING.get().copied().unwrap_or(0.0);
    if ranging > 0.0 {
        println!(
            "ranging: {:.0}% of traces, {} Hz from 0.3–1 s after coming within {RANGE_START_M} m, σ {} m, covered phones up to {} m long, {:.0}% outliers, {:.0}% failed rounds\n",
            ranging * 100.0,
            RANGE_HZ.get().copied().unwrap_or(5.0),
            RANGE_SIGMA.get().copied().unwrap_or(0.1),
            RANGE_NLOS_M.get().copied().unwrap_or(0.6),
            RANGE_OUTLIERS.get().copied().unwrap_or(0.03) * 100.0,
            RANGE_LOSS.get().copied().unwrap_or(0.1) * 100.0,
        );
        let r = params.ranging;
        println!(
            "ranging rule: {:?} (fused assumes σ {} m, learned over {} levels up to {} m, {:.0}% outliers up to {} m long, covered phones up to {} m long, uncovered {} m; test from {} m)\n",
            r.rule,
            r.sigma_m,
            r.noise_levels,
            r.sigma_m * (1u32 << r.noise_levels.saturating_sub(1).min(31)) as f64,
            r.outlier_share * 100.0,
            r.outlier_span_m,
            r.covered_bias_m,
            r.uncovered_bias_m,
            r.gate_m
        );
    }
    println!(
        "{:<32} {:>8} {:>9} {:>10} {:>10} {:>10} {:>8}",
        "family", "set", "unlocked", "in 1.5 s", "p50 ms", "p99 ms", "double"
    );
    let mut ok = true;
    let mut results = vec![];
    // `--seen-only` while designing a round: the held-out families stay unrun.
    let families: Vec<Family> = families()
        .into_iter()
        .filter(|f| !seen_only || f.set != Set::HeldOut)
        .filter(|f| only.is_none_or(|o| f.name.contains(o)))
        .collect();
    let stats = evaluate_all(&families, params, n, 0x5EED_0000);
    for (f, mut s) in families.into_iter().zip(stats) {
        let rate = s.any_unlock as f64 / s.traces as f64 * 100.0;
        let (within, p50, p99) = if matches!(f.kind, Kind::Approach | Kind::ArriveLeave) {
            (
                format!("{:.2}%", s.detected as f64 / s.traces as f64 * 100.0),
                format!("{:.0}", pct(&mut s.latencies, 0.5)),
                format!("{:.0}", pct(&mut s.latencies, 0.99)),
            )
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        println!(
            "{:<32} {:>8} {:>8.2}% {:>10} {:>10} {:>10} {:>8}",
            f.name,
            f.set.label(),
            rate,
            within,
            p50,
            p99,
            s.doubles
        );
        let pass = match f.kind {
            Kind::Approach => s.detected as f64 >= 0.99 * s.traces as f64,
            Kind::WalkPast(d) if d >= 2.0 => s.any_unlock as f64 <= 0.001 * s.traces as f64,
            Kind::Leave => s.any_unlock == 0,
            Kind::ArriveLeave => s.detected as f64 >= 0.99 * s.traces as f64,
            Kind::Loiter => s.any_unlock as f64 <= 0.001 * s.traces as f64,
            Kind::WalkPast(_) => true,
        };
        ok &= pass && s.doubles == 0;
        results.push((f, s));
    }
    println!("\nsummary over all families (targets BRIEF §5):");
    summary(&results, |_| true);
    if results.iter().any(|(f, _)| f.set == Set::HeldOut) {
        println!("\nsummary over the held-out families only:");
        summary(&results, |f| f.set == Set::HeldOut);
    }
    ok
}

fn summary(results: &[(Family, Stats)], include: impl Fn(&Family) -> bool) {
    let agg = |pred: &dyn Fn(&Family) -> bool| {
        let (mut t, mut hit, mut det) = (0, 0, 0);
        let mut lats = vec![];
        for (_, s) in results.iter().filter(|(f, _)| include(f) && pred(f)) {
            t += s.traces;
            hit += s.any_unlock;
            det += s.detected;
            lats.extend_from_slice(&s.latencies);
        }
        (t, hit, det, lats)
    };
    let (t, _, det, mut lats) = agg(&|f| matches!(f.kind, Kind::Approach | Kind::ArriveLeave));
    println!(
        "  detection rate (unlock within 1.5 s of reaching 1 m): {:.2}% of {t} approaches (target ≥ 99%); latency p50 {:.0} ms, p95 {:.0} ms",
        det as f64 / t as f64 * 100.0,
        pct(&mut lats, 0.5),
        pct(&mut lats, 0.95)
    );
    let (t, hit, _, _) = agg(&|f| matches!(f.kind, Kind::WalkPast(d) if d >= 2.0));
    println!(
        "  false unlocks, walk-pasts ≥ 2 m: {hit} of {t} = {:.3}% (target ≤ 0.1%)",
        hit as f64 / t as f64 * 100.0
    );
    let (t, hit, _, _) = agg(&|f| f.kind == Kind::Leave);
    println!("  unlocks when leaving: {hit} of {t} (target 0)");
    let (t, hit, _, _) = agg(&|f| f.kind == Kind::Loiter);
    println!("  unlocks loitering or standing at ≥ 2 m: {hit} of {t}");
}

/// The bars' trade-off from one run (`--bars`): the engine runs with bars it never clears and
/// records every arrival test, so the first unlock under any bars can be read off afterwards
/// (a test does not depend on the bars until one is cleared). Prints detection, walk-pasts at
/// ≥ 2 m and people standing that unlock, for a grid of walking and still bars; then, at the
/// engine's bars, the approaches by what the phone reported (carry right, unknown or wrong;
/// pace or none) and how many of each unlocked in time. With `KEYWAY_BARS_DUMP` set, every
/// approach that missed prints its tests: ms from reaching 1 m, the bar (`w` walking, `s` just
/// stopped, `o` other) and the evidence.
fn bars(base: WalkUpParams, n: usize, seen_only: bool, only: Option<&str>) {
    let params = WalkUpParams {
        min_evidence: f64::INFINITY,
        walking_evidence: f64::INFINITY,
        still_evidence: f64::INFINITY,
        ..base
    };
    let families: Vec<Family> = families()
        .into_iter()
        .filter(|f| !seen_only || f.set != Set::HeldOut)
        .filter(|f| only.is_none_or(|o| f.name.contains(o)))
        .collect();
    // Per family, per trace: when it reached 1 m, and its tests.
    let recorded: Vec<Vec<(Option<u64>, Vec<Test>)>> = std::thread::scope(|scope| {
        let running: Vec<_> = families
            .iter()
            .enumerate()
            .map(|(i, f)| {
                scope.spawn(move || {
                    let mut rng = Rng(0x5EED_0000 + i as u64);
                    (0..n)
                        .map(|_| {
                            let mut trace = (f.make)(&mut rng);
                            // Only the first 1.5 s past 1 m count for an approach.
                            if let (Kind::Approach | Kind::ArriveLeave, Some(r)) =
                                (f.kind, trace.reached_1m)
                            {
                                trace.samples.retain(|&(t, _)| t <= r + 1500);
                            }
                            let mut tests = vec![];
                            run(&trace, f.radio, params, &mut rng, Some(&mut tests));
                            (trace.reached_1m, tests)
                        })
                        .collect()
                })
            })
            .collect();
        running
            .into_iter()
            .map(|h| h.join().expect("evaluation panicked"))
            .collect()
    });
    println!(
        "bars over {} families, {n} traces each (other: no motion data, or still past the window, at {})",
        families.len(),
        base.min_evidence
    );
    println!(
        "{:>8} {:>6} {:>10} {:>11} {:>9}",
        "walking", "still", "detected", "walk-past", "standing"
    );
    for walking in [5.0, 6.0, 7.0, 8.0, 9.0] {
        for still in [4.0, 4.5, 5.0, 5.5, 6.0] {
            let first = |tests: &[Test]| {
                tests
                    .iter()
                    .find(|t| {
                        t.evidence
                            >= match t.bar {
                                Bar::Walking => walking,
                                Bar::JustStopped => still,
                                Bar::Other => base.min_evidence,
                            }
                    })
                    .map(|t| t.t_ms)
            };
            let (mut approaches, mut detected, mut passes, mut passed, mut stood) = (0, 0, 0, 0, 0);
            for (f, traces) in families.iter().zip(&recorded) {
                for (reached, tests) in traces {
                    let unlock = first(tests);
                    match f.kind {
                        Kind::Approach | Kind::ArriveLeave => {
                            approaches += 1;
                            if let (Some(r), Some(u)) = (reached, unlock)
                                && u <= r + 1500
                            {
                                detected += 1;
                            }
                        }
                        Kind::WalkPast(d) if d >= 2.0 => {
                            passes += 1;
                            passed += usize::from(unlock.is_some());
                        }
                        Kind::Loiter => stood += usize::from(unlock.is_some()),
                        _ => {}
                    }
                }
            }
            println!(
                "{walking:>8} {still:>6} {:>9.2}% {:>10.3}% {stood:>9}",
                detected as f64 / approaches.max(1) as f64 * 100.0,
                passed as f64 / passes.max(1) as f64 * 100.0,
            );
        }
    }
    // Where the approaches that miss at today's bars come from: what the phone reported.
    println!(
        "approaches by report, at walking {} / still {}:",
        base.walking_evidence, base.still_evidence
    );
    let mut classes: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (f, traces) in families.iter().zip(&recorded) {
        if !matches!(f.kind, Kind::Approach | Kind::ArriveLeave) {
            continue;
        }
        let truth = if f.radio.offset_db < -1.5 {
            Carry::Covered
        } else {
            Carry::Uncovered
        };
        for (reached, tests) in traces {
            let Some(last) = tests.last() else {
                classes.entry("never tested".into()).or_default().0 += 1;
                continue;
            };
            let carry = match last.carry {
                Carry::Unknown => "carry unknown",
                c if c == truth => "carry right",
                _ => "carry wrong",
            };
            let pace = if last.pace.is_some() {
                "pace"
            } else {
                "no pace"
            };
            let hit = tests.iter().any(|t| {
                t.evidence
                    >= match t.bar {
                        Bar::Walking => base.walking_evidence,
                        Bar::JustStopped => base.still_evidence,
                        Bar::Other => base.min_evidence,
                    }
                    && reached.is_some_and(|r| t.t_ms <= r + 1500)
            });
            if !hit && std::env::var_os("KEYWAY_BARS_DUMP").is_some() {
                let r = reached.unwrap_or(0) as i64;
                let series: Vec<String> = tests
                    .iter()
                    .map(|t| {
                        let bar = match t.bar {
                            Bar::Walking => "w",
                            Bar::JustStopped => "s",
                            Bar::Other => "o",
                        };
                        format!("{}{bar}{:.1}", t.t_ms as i64 - r, t.evidence)
                    })
                    .collect();
                println!("MISS {} [{carry}, {pace}] {}", f.name, series.join(" "));
            }
            let c = classes.entry(format!("{carry}, {pace}")).or_default();
            c.0 += 1;
            c.1 += usize::from(hit);
        }
    }
    for (class, (n, hit)) in classes {
        println!(
            "  {class:<24} {n:>6} {:>8.2}%",
            hit as f64 / n.max(1) as f64 * 100.0
        );
    }
}

fn tune(base: WalkUpParams, n: usize) {
    println!("sweep on the tune and seen families ({n} traces each); false = walk-pasts at >= 2 m");
    let mut grid = vec![];
    // Round 5 swept walking 5–10 × still 0–5 nats (fit 4–5 s) with motion, and the no-motion
    // fallback's evidence 4–5.5 (`--no-motion`); after its held-out run, round 6 added the
    // still window and swept still 2–5 (still 4: detection as without motion, walk-past
    // false unlocks 13× fewer). Round 7 added the carry report and swept both bars again
    // (300 traces): walking 6/7/8 × still 3/4 gave 98.20/97.14/97.92/96.84/97.59/96.51%
    // detection and 0.476/0.286/0.310/0.119/0.310/0.119% false; 7 and 8 tie on false
    // unlocks here, and in the report (`--seen-only`, 300 traces, its own seed) walking 7
    // added two held-up walk-pasts over 8 (0.119% against 0.071%), so 8 and 4 stay. The carry
    // doubt was set to 0.05 beforehand; in that report with walking 7, 0.02 let more
    // walk-pasts through (0.190% against 0.119%) and 0.10 lost detection (96.84% against
    // 97.29%).
    // Round 8: the range an uncovered phone's offset may take (round 7 chose −2…+5 dB before
    // any run; its held-out run showed hand-held approaches losing detection). 300 traces:
    // −2…+5 96.02% / 0.104% / 8 standing or loitering; −2…+4 96.39% / 0.312% / 18; −3…+4
    // 96.47% / 0.312% / 20; −2…+3 96.79% / 0.792% / 35. A cap below +5 lets raised phones
    // passing at 2 m read as arrivals, so −2…+5 stays and round 8 changed nothing.
    // Round 9: the walking pace from the step counter (the R9 families written first). On the
    // seen-families report (`--seen-only`, 300 traces; detection / walk-pasts at ≥ 2 m /
    // standing or loitering): pace ignored 96.97% / 0.118% / 15; pace with doubt 0.1 and
    // spread 0.25 97.57% / 0.176% / 26 (doubt 0.3: 97.32 / 0.176 / 25; spread 0.4: 97.49 /
    // 0.157 / 23; only the alternative held to the pace: 97.51 / 0.176 / 28); with the still
    // bar raised to 4.5 to match the false unlocks, 96.93% / 0.098% / 19: slow walkers gained
    // (a slow bag 81.00 → 87.00%), brisk and pausing ones lost (at the door 99.33 → 97.67%,
    // pausing at 3 m 97.00 → 92.33%: the fit's constant-speed walk cannot pause, and a free
    // speed was standing in for that). Adding "paused beside the door while passing" to the
    // alternative raised false unlocks (0.216%): more alternatives average a worse fit in.
    // No net gain, so the engine ignores the pace (doubt 1) and round 9 changed nothing.
    // Round 10 (the R10 families written first): explicit prior weights for the hypotheses,
    // and walks that slow down over the last 1–2 m or pause 2–4 m out, so the pace no longer
    // has to cost pausing walkers. On the seen-families report (`--seen-only`, 300 traces, R9
    // now seen; detection / walk-pasts at ≥ 2 m / standing or loitering at ≥ 2 m): round 9's
    // detector 96.01% / 0.140% / 34; the pace (doubt 0.1) with the still bar at 4.5: 96.71 /
    // 0.105 / 28, at 5: 96.00 / 0.035 / 19; the pace and both gaits (0.25 each) at 4: 97.63 /
    // 0.246 / 47, at 4.5: 97.05 / 0.140 / 35, at 5: 96.49 / 0.053 / 24; at 4.5 with slowing
    // only 96.82 / 0.123 / 29, pausing only 96.95 / 0.140 / 39; both gaits without the pace
    // (still 4) 96.22 / 0.193 / 39. Against the pace alone at 5, the gaits won back pausing at
    // 3 m (90.33 → 93.67%), brisk (96.33 → 97.00%) and slow bagged walkers (84.00 → 85.67%)
    // for one more walk-past and five more people standing at 2 m. A bar for standing longer
    // than the still window (6 or 7 nats, round 9's detector) changed nothing: those false
    // unlocks come within the window. Chosen: the pace, both gaits and a still bar of 5, which
    // beats round 9's detector on all three counts. It fits about 3.3× the hypotheses; with
    // the whitening now a Kalman filter (O(bins) each), a test takes 6.5 ms here against
    // round 9's 3.0 ms (5.4 ms with a pace).
    // Round 11 (the R11 families written first): `--bars` on the seen families (300 traces,
    // R10 now seen; detection / walk-pasts at ≥ 2 m / standing) with walking × still bars:
    // 8/5 (round 10) 94.98% / 0.050% / 25; 7/5 95.89 / 0.050 / 25; 6/5 96.58 / 0.167 / 25;
    // 7/4.5 96.66 / 0.133 / 38; 7/5.5 95.13 / 0.033 / 19; 5/4 98.21 / 0.617 / 55. In time at
    // 8/5 by report: carry right with a pace 97.03% of 6,858, without 93.77% of 786; carry
    // unknown 90.02% / 86.87%; carry wrong 84.16% / 79.49%; 43 never tested within 1.5 s (the
    // gate opens late for bagged phones). Tried and not kept: the motion report as a
    // likelihood of each hypothesis (slow families 88.93% against 88.97% at 8/5); a gate at
    // 2.2 m (+0.26 points on the slow families, more tests); a doubt of 0.01 for covered
    // reports (`--covered-doubt`: slow bagged walkers +5 points, but R6's paused walk-past with
    // a raised phone went from 0 to 3 of 300, 7 of 6,000 in all, 0.117%); a faster logarithm
    // (slower than libm's).
    // Chosen: walking 7, still 5.
    for (pace_doubt, slowing_and_paused, still_evidence) in [
        (1.0, 0.0, 4.0),
        (0.1, 0.0, 5.0),
        (0.1, 0.25, 4.5),
        (0.1, 0.25, 5.0),
    ] {
        grid.push(WalkUpParams {
            pace_doubt,
            still_evidence,
            walks: Walks {
                slowing: slowing_and_paused,
                paused: slowing_and_paused,
                ..base.walks
            },
            ..base
        });
    }
    if !MOTION.get().copied().unwrap_or(true) {
        grid = [4.0, 4.5, 5.0, 5.5]
            .into_iter()
            .map(|min_evidence| WalkUpParams {
                min_evidence,
                ..base
            })
            .collect();
    }
    for p in grid {
        let (mut det, mut apps, mut fp, mut past, mut leave) = (0, 0, 0, 0, 0);
        let looked_at: Vec<Family> = families()
            .into_iter()
            .filter(|f| f.set != Set::HeldOut)
            .collect();
        let stats = evaluate_all(&looked_at, p, n, 0xAAAA_0000);
        for (f, s) in looked_at.iter().zip(stats) {
            match f.kind {
                Kind::Approach | Kind::ArriveLeave => {
                    det += s.detected;
                    apps += s.traces;
                }
                Kind::WalkPast(d) if d >= 2.0 => {
                    fp += s.any_unlock;
                    past += s.traces;
                }
                Kind::Leave | Kind::Loiter => leave += s.any_unlock,
                Kind::WalkPast(_) => {}
            }
        }
        println!(
            "evidence {:.2} walking {:.2} still {:.2} for {} ms uncovered {:?} dB pace doubt {} slowing {} paused {} gate {} m fit {} ms: detect {:.2}% false {:.3}% leave/loiter {leave}",
            p.min_evidence,
            p.walking_evidence,
            p.still_evidence,
            p.still_window_ms,
            p.uncovered_offset_db,
            p.pace_doubt,
            p.walks.slowing,
            p.walks.paused,
            p.gate_distance_m,
            p.fit_ms,
            det as f64 / apps as f64 * 100.0,
            fp as f64 / past as f64 * 100.0
        );
    }
}

/// The mobile builds `scripts/size-mobile-core` makes: (target triple, library file).
const MOBILE_LIBRARIES: [(&str, &str); 2] = [
    ("aarch64-linux-android", "libkeyway_shared.so"),
    ("aarch64-apple-ios", "libkeyway_shared.dylib"),
];

/// Stripped size of each release build of the core found: `KEYWAY_CORE_LIB` (paths separated
/// by `:`), else this bench's own target directory, for the host and for the mobile targets
/// `scripts/size-mobile-core` builds.
fn library_size() {
    let paths: Vec<std::path::PathBuf> = match std::env::var("KEYWAY_CORE_LIB") {
        Ok(list) => std::env::split_paths(&list).collect(),
        Err(_) => {
            // The bench runs from <target>/release/deps/.
            let exe = std::env::current_exe().unwrap_or_default();
            let Some(target) = exe.ancestors().nth(3) else {
                return;
            };
            let mut found = vec![target.join("release/libkeyway_shared.so")];
            for (triple, file) in MOBILE_LIBRARIES {
                found.push(target.join(format!("{triple}/release/{file}")));
            }
            found.into_iter().filter(|p| p.exists()).collect()
        }
    };
    if paths.is_empty() {
        println!(
            "\ncore library size: no release build found (`cargo build --release -p keyway-shared --no-default-features`, `scripts/size-mobile-core`, or set KEYWAY_CORE_LIB)"
        );
        return;
    }
    for path in paths {
        let raw = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let tmp = std::env::temp_dir().join("keyway-core-stripped");
        // llvm-strip reads every architecture; binutils' strip only the host's.
        let stripped = ["llvm-strip", "llvm-strip-14", "strip"]
            .iter()
            .find_map(|tool| {
                std::process::Command::new(tool)
                    .arg("-s")
                    .arg(&path)
                    .arg("-o")
                    .arg(&tmp)
                    .status()
                    .ok()
                    .filter(|s| s.success())
                    .and_then(|_| std::fs::metadata(&tmp).ok())
                    .map(|m| m.len())
            });
        let arch = MOBILE_LIBRARIES
            .into_iter()
            .map(|(triple, _)| triple)
            .find(|t| path.to_string_lossy().contains(t))
            .unwrap_or(std::env::consts::ARCH);
        match stripped {
            Some(s) => println!(
                "\ncore library for {arch} {}: {:.2} MiB, stripped {:.2} MiB",
                path.display(),
                raw as f64 / 1048576.0,
                s as f64 / 1048576.0
            ),
            None => println!(
                "\ncore library for {arch} {}: {:.2} MiB (no strip tool for it)",
                path.display(),
                raw as f64 / 1048576.0
            ),
        }
    }
}

/// Cold start of the core: construct it and restore a signed-in session with a cached door
/// list from the file store (what a phone does at launch before any network answer).
fn cold_start() {
    use keyway_shared::app::{Effect, Event, Keyway};
    use keyway_shared::runtime::FileStore;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let org = "0a0a0a0a-0000-4000-8000-000000000001";
    let session = serde_json::json!({
        "token": "t", "user": {"id": "u", "email": "a@b", "name": "A"},
        "memberships": [{"org": {"id": org, "name": "Acme"}, "role": "member"}],
        "current_org": org
    });
    store
        .set("session", session.to_string().as_bytes())
        .unwrap();
    let locks: Vec<serde_json::Value> = (0..50)
        .map(|i| serde_json::json!({"id": format!("lock-{i}"), "place_id": "p", "name": format!("Door {i}"), "short_id": "01020304"}))
        .collect();
    let cache = serde_json::json!({"places": [{"id": "p", "name": "HQ"}], "locks": locks, "fetched_at_ms": 1});
    store
        .set(&format!("cache/{org}"), cache.to_string().as_bytes())
        .unwrap();
    let mut times = vec![];
    for _ in 0..20 {
        let t = std::time::Instant::now();
        let core: crux_core::Core<Keyway> = crux_core::Core::new();
        let mut pending = core.process_event(Event::Start {
            api_base: "http://x".into(),
        });
        while let Some(effect) = pending.pop() {
            if let Effect::KeyValue(mut req) = effect {
                let out = store.execute(&req.operation);
                pending.extend(core.resolve(&mut req, out).unwrap());
            }
        }
        let view = core.view();
        assert!(view.signed_in && view.places[0].locks.len() == 50);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let p50 = pct(&mut times, 0.5);
    println!(
        "\ncold start (core + restore session and 50 cached doors from files): p50 {p50:.2} ms (target ≤ 10 ms; this build's profile: {})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}

/// Wall time of one arrival test on a full 5 s window heard 20 times a second (a phone near a
/// door runs one at most every 50 ms), without a pace and with one (taken into account as
/// the engine's `pace_doubt` says).
fn arrival_cost(params: WalkUpParams) {
    use keyway_shared::walkup::arrival::{self, Model, Noise, Offsets, Pace};
    let readings: std::collections::VecDeque<(u64, i16)> = (0..100u64)
        .map(|i| {
            let d = (5.0 - 0.05 * i as f64).max(0.5);
            (
                5_000 + i * 50,
                (TX as f64 - 20.0 * d.log10()).round() as i16,
            )
        })
        .collect();
    let model = Model {
        tx_power: TX,
        path_loss_exponent: 2.0,
        noise: Noise {
            per_reading_db: params.noise_db,
            correlated_db: params.correlated_noise_db,
            correlation_ms: params.correlation_ms as f64,
        },
        walks: params.walks,
    };
    let paced = Pace {
        reported: Some(1.0),
        spread: params.pace_spread,
        doubt: params.pace_doubt,
    };
    for (label, pace) in [("no pace", Pace::ANY), ("a pace", paced)] {
        let mut times = vec![];
        for _ in 0..200 {
            let t = std::time::Instant::now();
            let e = arrival::evidence(&readings, 10_000, &model, Offsets::ANY, pace);
            std::hint::black_box(e);
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        println!(
            "arrival test, 5 s at 20 readings/s, {label}: p50 {:.0} µs",
            pct(&mut times, 0.5)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--traces")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000usize);
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let mut params = WalkUpParams::default();
    if let Some(v) = arg("--shadowing") {
        SHADOWING_DB.set(v).expect("set once");
    }
    if let Some(v) = arg("--advert-ms") {
        ADVERT_MS.set(v).expect("set once");
    }
    if let Some(v) = arg("--loss") {
        LOSS.set(v).expect("set once");
    }
    if let Some(v) = arg("--correlated-db") {
        params.correlated_noise_db = v;
    }
    if let Some(v) = arg("--correlation-ms") {
        params.correlation_ms = v as u64;
    }
    if let Some(v) = arg("--evidence") {
        params.min_evidence = v;
    }
    if let Some(v) = arg("--walking-evidence") {
        params.walking_evidence = v;
    }
    if let Some(v) = arg("--still-evidence") {
        params.still_evidence = v;
    }
    if let Some(v) = arg("--still-window-ms") {
        params.still_window_ms = v as u64;
    }
    if let Some(v) = arg("--still-latency-ms") {
        STILL_LATENCY_MS.set(v).expect("set once");
    }
    if let Some(v) = arg("--false-still-per-s") {
        FALSE_STILL_PER_S.set(v).expect("set once");
    }
    if args.iter().any(|a| a == "--no-motion") {
        MOTION.set(false).expect("set once");
    }
    if args.iter().any(|a| a == "--no-pace") {
        PACE.set(false).expect("set once");
    }
    if let Some(v) = arg("--pace-error") {
        PACE_ERROR.set(v).expect("set once");
    }
    if let Some(v) = arg("--pace-unknown") {
        PACE_UNKNOWN.set(v).expect("set once");
    }
    if let Some(v) = arg("--pace-spread") {
        params.pace_spread = v;
    }
    if let Some(v) = arg("--pace-doubt") {
        params.pace_doubt = v;
    }
    if let Some(v) = arg("--passing") {
        params.walks.passing = v;
    }
    if let Some(v) = arg("--slowing") {
        params.walks.slowing = v;
    }
    if let Some(v) = arg("--paused") {
        params.walks.paused = v;
    }
    if args.iter().any(|a| a == "--oracle-carry") {
        ORACLE_CARRY.set(true).expect("set once");
    }
    if let Some(sigma) = arg("--calibrated-carry") {
        let width = arg("--calibration-width").unwrap_or((2.0 * sigma).max(0.5));
        let doubt = arg("--calibration-doubt").unwrap_or(0.05);
        CALIBRATED_CARRY
            .set((sigma, width, doubt))
            .expect("set once");
    }
    if args.iter().any(|a| a == "--no-carry") {
        CARRY.set(false).expect("set once");
    }
    if let Some(v) = arg("--carry-unknown") {
        CARRY_UNKNOWN.set(v).expect("set once");
    }
    if let Some(v) = arg("--carry-wrong") {
        CARRY_WRONG.set(v).expect("set once");
    }
    if let Some(v) = arg("--carry-doubt") {
        params.carry_doubt = v;
    }
    if let Some(v) = arg("--covered-doubt") {
        params.covered_doubt = v;
    }
    if let Some(v) = arg("--uncovered-max-db") {
        params.uncovered_offset_db.1 = v;
    }
    if let Some(v) = arg("--gate-m") {
        params.gate_distance_m = v;
    }
    if let Some(v) = arg("--fit-ms") {
        params.fit_ms = v as u64;
    }
    if let Some(v) = arg("--window-ms") {
        params.window_ms = v as u64;
    }
    for (flag, cell) in [
        ("--ranging", &RANGING),
        ("--range-hz", &RANGE_HZ),
        ("--range-sigma", &RANGE_SIGMA),
        ("--range-nlos-m", &RANGE_NLOS_M),
        ("--range-outliers", &RANGE_OUTLIERS),
        ("--range-loss", &RANGE_LOSS),
    ] {
        if let Some(v) = arg(flag) {
            cell.set(v).expect("set once");
        }
    }
    if let Some(v) = arg("--range-unlock-m") {
        params.ranging.unlock_m = v;
    }
    // The fused rule's assumptions (round 13).
    if let Some(v) = arg("--range-fit-sigma") {
        params.ranging.sigma_m = v;
    }
    if let Some(v) = arg("--range-fit-levels") {
        params.ranging.noise_levels = v as usize;
    }
    if let Some(v) = arg("--range-fit-bias-m") {
        params.ranging.covered_bias_m = v;
    }
    if let Some(v) = arg("--range-gate-m") {
        params.ranging.gate_m = v;
    }
    if let Some(v) = arg("--range-gate-max-scatter-m") {
        params.ranging.gate_max_scatter_m = v;
    }
    if let Some(v) = arg("--range-recede-m") {
        params.ranging.max_recede_m = v;
    }
    if let Some(i) = args.iter().position(|a| a == "--range-rule") {
        params.ranging.rule = match args.get(i + 1).map(String::as_str) {
            Some("direct") => keyway_shared::walkup::ranging::RangeRule::Direct,
            Some("fused") => keyway_shared::walkup::ranging::RangeRule::Fused,
            other => panic!("--range-rule takes direct or fused, not {other:?}"),
        };
    }
    let only = args
        .iter()
        .position(|a| a == "--family")
        .and_then(|i| args.get(i + 1));
    if args.iter().any(|a| a == "--bars") {
        // Bars replay RSSI tests only; a ranged unlock would go uncounted.
        assert!(
            RANGING.get().is_none_or(|&r| r == 0.0),
            "--bars does not model ranging; leave out --ranging"
        );
        bars(
            params,
            n,
            args.iter().any(|a| a == "--seen-only"),
            only.map(String::as_str),
        );
        return;
    }
    if args.iter().any(|a| a == "--tune") {
        tune(params, n.min(1000));
        return;
    }
    let ok = report(
        params,
        n,
        args.iter().any(|a| a == "--seen-only"),
        only.map(String::as_str),
    );
    println!(
        "\nall family targets met: {}",
        if ok { "yes" } else { "NO" }
    );
    library_size();
    cold_start();
    arrival_cost(params);
}
