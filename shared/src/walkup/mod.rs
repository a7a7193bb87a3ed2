//! The walk-up (hands-free) engine: decides, from a stream of advertisement RSSI readings,
//! when a phone has arrived at a door. Pure and clock-free: every reading carries its own
//! timestamp, so phones, the CLI's trace replay and the bench all run the same code.
//!
//! Per lock, the engine
//! 1. smooths RSSI with a sliding time-window median followed by an EWMA (medians shrug off
//!    the deep fades and spikes of shadowing; the EWMA removes what jitter is left);
//! 2. turns smoothed RSSI into a distance estimate with the log-distance path-loss model,
//!    `d = 10^((tx_power - rssi) / (10 n))`, where `tx_power` is the advertised RSSI at 1 m;
//! 3. arms only after the phone was seen far away (beyond `arm_distance_m`): a phone that
//!    first hears the door while already standing next to it (someone leaving) never unlocks;
//! 4. once the estimate is within `gate_distance_m` and the signal is not falling (never while
//!    moving away), runs the [`arrival`] test on the readings of the last `fit_ms`, which
//!    tells an arrival from a pass-by by the shape of the signal rather than its level (the
//!    level shifts by a few dB with how the phone is carried; when the phone reports its
//!    [`Carry`], the test allows only the shifts that carry makes likely);
//! 5. fires once when that evidence reaches the bar the wearer's [`Motion`] sets
//!    (`walking_evidence` while they walk, `still_evidence` for `still_window_ms` after they
//!    stop, `min_evidence` otherwise or without motion data), then disarms until the phone has
//!    gone beyond `arm_distance_m` again and `cooldown_ms` has passed (one unlock per
//!    approach).
//!
//! Where the phone can range to a door (UWB, Channel Sounding: [`WalkUpEngine::observe_range`]),
//! the arrival test fits the measured distances too, and while enough keep coming their
//! estimate gates it (see [`ranging`]; round 12's rule, by which they decided alone, remains
//! as [`ranging::RangeRule::Direct`]).
//!
//! Proximity is not proof of presence: a relay defeats any RSSI logic. The door applies its own
//! RSSI check on walk-up requests; only the door's own ranging could stop a relay.

pub mod arrival;
pub mod motion;
pub mod pace;
pub mod ranging;

use ranging::RangeRule;
use std::collections::{HashMap, HashSet, VecDeque};

/// Tunable parameters. Defaults are tuned by `benches/walkup.rs` on its tuning families.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WalkUpParams {
    /// Path-loss exponent `n` (2 in free space, 2–3 indoors).
    pub path_loss_exponent: f64,
    /// Sliding median window.
    pub window_ms: u64,
    /// Minimum readings inside the window before any decision.
    pub min_samples: usize,
    /// Which quantile of the window's readings to smooth (0.5 = median; lower is more
    /// conservative: most readings must be strong).
    pub quantile: f64,
    /// EWMA weight of the newest median, per 100 ms (scaled to the reading gap, so smoothing
    /// does not depend on how often the door advertises).
    pub ewma_alpha: f64,
    /// The arrival test runs only while the smoothed distance estimate is within this (it
    /// reads long for a phone in a pocket or bag, so this is wider than the 1 m target).
    pub gate_distance_m: f64,
    /// Raw readings the arrival test fits.
    pub fit_ms: u64,
    /// Per-reading RSSI noise the arrival test assumes, dB (one standard deviation).
    pub noise_db: f64,
    /// The part of `noise_db` that is correlated over several 100 ms bins (body shadowing),
    /// which averaging many readings does not remove, dB.
    pub correlated_noise_db: f64,
    /// Over how long that part stays correlated (exponential decay), ms.
    pub correlation_ms: u64,
    /// Log-likelihood ratio of arrival over pass-by (nats) needed to unlock when the phone
    /// reports no motion (a replayed trace, a shell without motion sensors).
    pub min_evidence: f64,
    /// The same while the phone reports its wearer walking: someone walking at the door is
    /// more often passing than arriving, so RSSI alone must be surer. (8 until round 11: with
    /// the pace and gaits in the fit, 7 lets no more walk-pasts through and unlocks more
    /// arrivals in time; see `benches/walkup.rs`.)
    pub walking_evidence: f64,
    /// The same once the wearer has stopped: passers-by keep walking, people at a door stop.
    pub still_evidence: f64,
    /// For how long after the wearer stopped `still_evidence` applies; then `min_evidence`
    /// again. Someone arriving is unlocked within about a second of stopping; someone who
    /// stopped short and waits would otherwise get test after test at a lower bar. (Since
    /// round 10 both bars are 5 nats: with the pace and gaits in the fit, a lower still bar
    /// let more people standing at 2 m through than it unlocked arrivals sooner.)
    pub still_window_ms: u64,
    /// How often the phone's report that it is uncovered ([`Carry::Uncovered`]) is wrong (a
    /// loose bag, a mesh pocket, the sensor facing a gap); the arrival test then allows any
    /// offset with this weight.
    pub carry_doubt: f64,
    /// The same for a report that it is covered ([`Carry::Covered`]): a thumb over the sensor
    /// of a phone in the hand. (Parameters saved before round 11 load today's value, not
    /// their `carry_doubt`.)
    #[serde(default = "default_covered_doubt")]
    pub covered_doubt: f64,
    /// Carry offsets (dB, low and high) likely for a phone reported [`Carry::Covered`].
    pub covered_offset_db: (f64, f64),
    /// The same for [`Carry::Uncovered`].
    pub uncovered_offset_db: (f64, f64),
    /// How far (as a factor `1 + pace_spread`) the wearer's true walking speed may lie from
    /// the pace the phone reports ([`WalkUpEngine::set_pace`]).
    pub pace_spread: f64,
    /// How often the reported pace is further off than that; the arrival test then allows
    /// any walking speed with this weight (1 ignores the pace). The pace unlocks slow walkers
    /// sooner; on its own it cost pausing walkers (the fit's walk could not pause), which the
    /// paused and slowing gaits of [`WalkUpParams::walks`] give back (see
    /// `benches/walkup.rs`, rounds 9 and 10).
    pub pace_doubt: f64,
    /// How likely people are to pass, to slow down before stopping, or to pause on the way
    /// (prior weights of the arrival test's hypotheses; `Walks::STRAIGHT` is the test before
    /// round 10, every walk at one speed and stopping dead).
    #[serde(default = "default_walks")]
    pub walks: arrival::Walks,
    /// The engine (re-)arms only once the phone has been estimated beyond this distance.
    pub arm_distance_m: f64,
    /// Minimum time between two unlocks of one lock.
    pub cooldown_ms: u64,
    /// Look-back for the trend check.
    pub trend_ms: u64,
    /// The smoothed RSSI may fall by at most this much over `trend_ms` (dB) for an unlock.
    pub max_fall_db: f64,
    /// A lock not heard for this long resets to unarmed-far (it went out of range).
    pub lost_after_ms: u64,
    /// The rule for doors the phone ranges to (UWB, Channel Sounding).
    #[serde(default)]
    pub ranging: ranging::RangingParams,
}

impl Default for WalkUpParams {
    fn default() -> Self {
        Self {
            path_loss_exponent: 2.0,
            window_ms: 800,
            min_samples: 4,
            quantile: 0.5,
            ewma_alpha: 0.35,
            gate_distance_m: 1.6,
            fit_ms: 5_000,
            noise_db: 4.5,
            correlated_noise_db: 2.0,
            correlation_ms: 500,
            min_evidence: 5.0,
            walking_evidence: 7.0,
            still_evidence: 5.0,
            still_window_ms: 1_000,
            carry_doubt: 0.05,
            covered_doubt: 0.05,
            covered_offset_db: (-8.0, -1.0),
            uncovered_offset_db: (-2.0, 5.0),
            pace_spread: 0.25,
            pace_doubt: 0.1,
            walks: arrival::Walks {
                slowing: 0.25,
                paused: 0.25,
                ..arrival::Walks::STRAIGHT
            },
            arm_distance_m: 3.0,
            cooldown_ms: 10_000,
            trend_ms: 800,
            max_fall_db: 1.5,
            lost_after_ms: 15_000,
            ranging: ranging::RangingParams::default(),
        }
    }
}

/// Parameters saved before walks had weights get today's, not `Walks::STRAIGHT`.
fn default_walks() -> arrival::Walks {
    WalkUpParams::default().walks
}

/// Parameters saved before covered reports had their own doubt get today's.
fn default_covered_doubt() -> f64 {
    WalkUpParams::default().covered_doubt
}

/// What the phone's motion sensors say about its wearer (the shell's step detector or
/// accelerometer); phone-wide, not per lock.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, uniffi::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Motion {
    /// No motion data (no sensor, no permission, or sensing paused).
    #[default]
    Unknown,
    Walking,
    Still,
}

/// How the phone is carried, from its proximity sensor (the one that darkens the screen
/// during a call); phone-wide. It bounds the carry offset the arrival test may fit: a phone
/// in a pocket or bag reads weaker than its distance, one in the hand about right or stronger
/// when held up towards the door.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, uniffi::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Carry {
    /// No sensor, no report, or sensing paused.
    #[default]
    Unknown,
    /// The sensor is covered: a pocket or a bag.
    Covered,
    /// The sensor is open: in the hand, or on a table.
    Uncovered,
}

impl Carry {
    /// Carry offsets the arrival test allows for this report (see
    /// [`WalkUpParams::covered_offset_db`]): a covered phone loses a few dB to cloth and
    /// body; an open one is at most slightly shadowed by the hand holding it, and stronger
    /// when held up.
    pub fn offsets(self, params: &WalkUpParams) -> arrival::Offsets {
        // A doubt outside 0..=1 (or NaN) would make the evidence meaningless; ignoring the
        // report (doubt 1: any offset) is then the safe reading.
        let sane = |doubt: f64| {
            if (0.0..=1.0).contains(&doubt) {
                doubt
            } else {
                1.0
            }
        };
        match self {
            Carry::Unknown => arrival::Offsets::ANY,
            Carry::Covered => arrival::Offsets {
                likely: params.covered_offset_db,
                doubt: sane(params.covered_doubt),
            },
            Carry::Uncovered => arrival::Offsets {
                likely: params.uncovered_offset_db,
                doubt: sane(params.carry_doubt),
            },
        }
    }

    /// The ways of carrying the phone the fused ranging test weighs, given this report: a
    /// covered phone reads weak and long (cloth, the wearer's body), an uncovered one about
    /// right or strong, and nearly true in range. A report is trusted as its doubt says; no
    /// report weighs both alike.
    pub fn classes(self, params: &WalkUpParams) -> [arrival::CarryClass; 2] {
        let covered_weight = match self {
            Carry::Covered => 1.0 - params.covered_doubt,
            Carry::Uncovered => params.carry_doubt,
            Carry::Unknown => 0.5,
        };
        // A doubt that is no probability makes the weights meaningless: weigh both alike.
        let covered_weight = match (0.0..=1.0).contains(&covered_weight) {
            true => covered_weight,
            false => 0.5,
        };
        let r = &params.ranging;
        [
            arrival::CarryClass {
                offsets: params.covered_offset_db,
                max_bias_m: r.covered_bias_m,
                weight: covered_weight,
            },
            arrival::CarryClass {
                offsets: params.uncovered_offset_db,
                max_bias_m: r.uncovered_bias_m,
                weight: 1.0 - covered_weight,
            },
        ]
    }
}

/// An unlock decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WalkUpDecision {
    pub t_ms: u64,
    pub lock: String,
    /// Smoothed distance estimate at the decision, metres.
    pub distance_m: f64,
    /// The ranged estimate at the decision (median of the newest readings), metres, while
    /// ranging readings come.
    pub ranged_m: Option<f64>,
}

/// What the engine currently believes about one lock (for live displays).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LockProximity {
    pub lock: String,
    pub smoothed_rssi: f64,
    pub distance_m: f64,
    pub armed: bool,
    pub approaching: bool,
    /// The last arrival test's log-likelihood ratio (nats; see [`arrival::evidence`]), `None`
    /// until a test found a finite one (or when the last had too few readings): how close the
    /// phone came to unlocking.
    pub evidence: Option<f64>,
    /// The ranged distance (median of the last readings) while the phone ranges to this
    /// door, metres.
    #[serde(default)]
    pub ranged_m: Option<f64>,
}

#[derive(Debug, Default)]
struct Track {
    /// Readings for the median (`window_ms`).
    window: VecDeque<(u64, i16)>,
    /// Readings for the arrival test (`fit_ms`).
    recent: VecDeque<(u64, i16)>,
    smoothed: Option<f64>,
    /// (t_ms, smoothed) history for the trend check.
    history: VecDeque<(u64, f64)>,
    armed: bool,
    /// When the arrival test last ran: at most twice per [`arrival::BIN_MS`], whatever the
    /// advertising rate.
    last_test: Option<u64>,
    /// What that test found (`None` with too few readings or a result that is no number).
    last_evidence: Option<f64>,
    /// Ranged distances within `ranging.window_ms`, metres…
    ranges: VecDeque<(u64, f64)>,
    /// …and within `fit_ms` of the newest, for the fused arrival test.
    fit_ranges: VecDeque<(u64, f64)>,
    /// Armed by ranging: ranged beyond `ranging.arm_m` since the last unlock.
    range_armed: bool,
    last_unlock: Option<u64>,
    last_seen: u64,
    tx_power: i8,
}

/// Walk-up engine over many locks. Feed readings with [`WalkUpEngine::observe`].
#[derive(Debug, Default)]
pub struct WalkUpEngine {
    params: WalkUpParams,
    enabled: HashSet<String>,
    tracks: HashMap<String, Track>,
    motion: Motion,
    /// Time of the first reading after the last motion change (`None` until one arrives).
    motion_since: Option<u64>,
    carry: Carry,
    /// The wearer's walking speed as the phone last reported it, m/s.
    pace: Option<f64>,
}

/// Distance for an RSSI under the log-distance model.
pub fn distance_from_rssi(rssi: f64, tx_power: i8, n: f64) -> f64 {
    10f64.powf((tx_power as f64 - rssi) / (10.0 * n))
}

/// RSSI expected at `distance_m` under the log-distance model.
pub fn rssi_at(distance_m: f64, tx_power: i8, n: f64) -> f64 {
    tx_power as f64 - 10.0 * n * distance_m.max(0.01).log10()
}

impl WalkUpEngine {
    pub fn new(params: WalkUpParams) -> Self {
        Self {
            params,
            ..Self::default()
        }
    }

    pub fn params(&self) -> &WalkUpParams {
        &self.params
    }

    /// Per-lock opt-in. Disabling forgets the lock's track.
    pub fn set_enabled(&mut self, lock: &str, enabled: bool) {
        if enabled {
            self.enabled.insert(lock.to_owned());
        } else {
            self.enabled.remove(lock);
            self.tracks.remove(lock);
        }
    }

    pub fn is_enabled(&self, lock: &str) -> bool {
        self.enabled.contains(lock)
    }

    /// The wearer's motion changed (shells report changes, and `Unknown` when they stop
    /// sensing). Applies to readings from then on; the next reading's time stamps the change,
    /// so the engine needs no clock of its own.
    pub fn set_motion(&mut self, motion: Motion) {
        if motion != self.motion {
            self.motion = motion;
            self.motion_since = None;
        }
    }

    pub fn motion(&self) -> Motion {
        self.motion
    }

    /// How the phone is carried changed (shells report changes, and `Unknown` when they stop
    /// sensing); applies to the arrival tests from now on.
    pub fn set_carry(&mut self, carry: Carry) {
        self.carry = carry;
    }

    pub fn carry(&self) -> Carry {
        self.carry
    }

    /// The wearer's walking pace (m/s) as the phone's step cadence estimates it, kept
    /// after they stop (an arrival is judged by how they walked up); `None` when the shell
    /// stops sensing. A pace that is not a positive finite number counts as `None`.
    pub fn set_pace(&mut self, pace: Option<f64>) {
        self.pace = pace.filter(|v| v.is_finite() && *v > 0.0);
    }

    pub fn pace(&self) -> Option<f64> {
        self.pace
    }

    /// Feeds one advertisement reading; returns a decision when this reading completes an
    /// approach. Readings must be in time order per lock.
    pub fn observe(
        &mut self,
        lock: &str,
        t_ms: u64,
        rssi: i16,
        tx_power: i8,
    ) -> Option<WalkUpDecision> {
        if !self.enabled.contains(lock) {
            return None;
        }
        let p = self.params;
        let since = *self.motion_since.get_or_insert(t_ms);
        let needed = match self.motion {
            Motion::Unknown => p.min_evidence,
            Motion::Walking => p.walking_evidence,
            Motion::Still if t_ms.saturating_sub(since) <= p.still_window_ms => p.still_evidence,
            Motion::Still => p.min_evidence,
        };
        let track = self.tracks.entry(lock.to_owned()).or_default();
        track.touch(t_ms, &p);
        track.tx_power = tx_power;
        push_within(&mut track.window, (t_ms, rssi), p.window_ms);
        push_within(&mut track.recent, (t_ms, rssi), p.fit_ms);
        if track.window.len() < p.min_samples {
            return None;
        }
        let median = quantile(track.window.iter().map(|&(_, r)| r as f64), p.quantile);
        let smoothed = match (track.smoothed, track.history.back()) {
            (Some(prev), Some(&(prev_t, _))) => {
                let gap = t_ms.saturating_sub(prev_t) as f64 / 100.0;
                let alpha = 1.0 - (1.0 - p.ewma_alpha).powf(gap);
                prev + alpha * (median - prev)
            }
            _ => median,
        };
        track.smoothed = Some(smoothed);
        track.history.push_back((t_ms, smoothed));
        while track.history.len() > 2 && t_ms.saturating_sub(track.history[1].0) >= p.trend_ms {
            track.history.pop_front();
        }
        let distance = distance_from_rssi(smoothed, tx_power, p.path_loss_exponent);
        // Direct rule: ranging takes over while enough of it comes and it saw the phone far
        // (observe_range); a session that came up too near to arm leaves it to RSSI.
        let ranging_now = track.ranging_decides(t_ms, &p);
        if track.range_armed && ranging_now && p.ranging.rule == RangeRule::Direct {
            return None; // observe_range decides alone
        }
        // Fused: while ranges come, they gate the test whoever armed it. A stack that ranges
        // twice a second cannot refute "walked in during the last half second" from one
        // standing 2 m out, and RSSI fooled by a raised phone would then decide.
        // A stack whose readings scatter widely gates nothing: its median lags and strays.
        // RSSI's arming and gate then decide when the test runs, and the test, which learns
        // the noise, weighs what the readings are worth.
        let fused = p.ranging.rule == RangeRule::Fused;
        let precise = || {
            ranging::scatter(&track.fit_ranges).is_none_or(|s| s <= p.ranging.gate_max_scatter_m)
        };
        let estimate = (fused && ranging_now && precise())
            .then(|| ranging::estimate(&track.ranges, &p.ranging))
            .flatten();
        if let Some(estimate) = estimate
            && (estimate.receding || !estimate.within(p.ranging.gate_m, &p.ranging, self.carry))
        {
            return None;
        }
        // Once ranging armed it, RSSI's arming and gate do not count (a bag reads far at the
        // door).
        if !(track.range_armed && estimate.is_some()) {
            let cooled = track.cooled(t_ms, &p);
            if distance > p.arm_distance_m && cooled {
                track.armed = true;
            }
            if !track.armed || distance > p.gate_distance_m {
                return None;
            }
        }
        if trend_fall(&track.history, t_ms, p.trend_ms) > p.max_fall_db {
            return None;
        }
        if track
            .last_test
            .is_some_and(|last| t_ms.saturating_sub(last) < arrival::BIN_MS / 2)
        {
            return None;
        }
        track.last_test = Some(t_ms);
        track.last_evidence = None;
        let model = arrival::Model {
            tx_power,
            path_loss_exponent: p.path_loss_exponent,
            noise: arrival::Noise {
                per_reading_db: p.noise_db,
                correlated_db: p.correlated_noise_db,
                correlation_ms: p.correlation_ms as f64,
            },
            walks: p.walks,
        };
        // The fused rule fits whatever ranges came within the window, whoever armed: a
        // session that came up too near to arm still tells a phone 2 m out from one at the
        // door. (Kept ranges are trimmed only as new ones come: a session that stopped leaves
        // its last readings behind, which must not count as recent.)
        let ranges: Vec<(u64, f64)> = match p.ranging.rule {
            RangeRule::Fused => track
                .fit_ranges
                .iter()
                .filter(|&&(t, _)| t_ms.saturating_sub(t) <= p.fit_ms)
                .copied()
                .collect(),
            RangeRule::Direct => vec![],
        };
        let evidence = arrival::evidence_ranged(
            &track.recent,
            t_ms,
            &model,
            self.carry.offsets(&p),
            arrival::Pace {
                reported: self.pace,
                spread: p.pace_spread,
                doubt: p.pace_doubt,
            },
            Some(arrival::Ranges {
                readings: &ranges,
                noise: p.ranging.noise(),
                carries: self.carry.classes(&p),
            }),
        )?;
        track.last_evidence = Some(evidence);
        // NaN never unlocks, as evidence or as a bar.
        if evidence.is_nan() || needed.is_nan() || evidence < needed {
            return None;
        }
        Some(track.fire(lock, t_ms, distance, &p))
    }

    /// Feeds one secure-ranging measurement (UWB, Channel Sounding) of the distance to
    /// `lock`, metres. Under the fused rule (the default) the next advertisement's arrival
    /// test weighs it and this returns `None`; under [`ranging::RangeRule::Direct`] it returns
    /// a decision when it completes an approach, once ranging saw the phone far and while
    /// enough readings are recent (`ranging.readings` within `ranging.window_ms`). Readings
    /// must be in time order per lock; failed rounds (NaN, negative) are ignored.
    pub fn observe_range(
        &mut self,
        lock: &str,
        t_ms: u64,
        distance_m: f64,
    ) -> Option<WalkUpDecision> {
        if !self.enabled.contains(lock) || !ranging::usable(distance_m) {
            return None;
        }
        let p = self.params;
        let track = self.tracks.entry(lock.to_owned()).or_default();
        track.touch(t_ms, &p);
        push_within(&mut track.ranges, (t_ms, distance_m), p.ranging.window_ms);
        push_within(&mut track.fit_ranges, (t_ms, distance_m), p.fit_ms);
        if track.ranges.len() == 1 {
            // Ranging (re)starts: it arms by its own readings only. RSSI's arming may rest on
            // a bagged phone reading far while it stands at the door (someone leaving).
            track.range_armed = false;
        }
        let estimate = ranging::estimate(&track.ranges, &p.ranging)?;
        let cooled = track.cooled(t_ms, &p);
        if estimate.far(&p.ranging) && cooled {
            track.range_armed = true;
        }
        if p.ranging.rule != RangeRule::Direct {
            return None; // the arrival test decides, on the next advertisement
        }
        if !track.range_armed || !cooled || !estimate.arrived(&p.ranging, self.carry) {
            return None;
        }
        Some(track.fire(lock, t_ms, estimate.distance_m, &p))
    }

    /// When the arrival test last ran for `lock`, and what it found (`None` with too few
    /// readings or a result that is no number).
    pub fn last_test(&self, lock: &str) -> Option<(u64, Option<f64>)> {
        let track = self.tracks.get(lock)?;
        Some((track.last_test?, track.last_evidence))
    }

    /// Current estimates for enabled locks, nearest first.
    pub fn snapshot(&self) -> Vec<LockProximity> {
        let mut out: Vec<LockProximity> = self
            .tracks
            .iter()
            .filter_map(|(lock, t)| {
                let s = t.smoothed?;
                Some(LockProximity {
                    lock: lock.clone(),
                    smoothed_rssi: s,
                    distance_m: distance_from_rssi(s, t.tx_power, self.params.path_loss_exponent),
                    armed: t.armed || t.range_armed,
                    approaching: trend_fall(&t.history, t.last_seen, self.params.trend_ms) < -0.5,
                    evidence: t.last_evidence,
                    ranged_m: t
                        .ranging_decides(t.last_seen, &self.params)
                        .then(|| ranging::estimate(&t.ranges, &self.params.ranging))
                        .flatten()
                        .map(|e| e.distance_m),
                })
            })
            .collect();
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        out
    }
}

impl Track {
    /// A reading of either kind arrived at `t_ms`. Unheard for a while (out of range, or
    /// scanning paused), the track starts over, unarmed, so a phone that reappears next to
    /// the door (someone leaving) does not unlock.
    fn touch(&mut self, t_ms: u64, p: &WalkUpParams) {
        if self.last_seen != 0 && t_ms.saturating_sub(self.last_seen) > p.lost_after_ms {
            let last_unlock = self.last_unlock;
            *self = Track {
                last_unlock,
                ..Track::default()
            };
        }
        self.last_seen = t_ms;
    }

    /// Whether enough ranged distances for this lock are recent at `t_ms` to decide by
    /// (see [`ranging::RangingParams::window_ms`]); RSSI decides otherwise.
    fn ranging_decides(&self, t_ms: u64, p: &WalkUpParams) -> bool {
        let recent = self
            .ranges
            .iter()
            .filter(|&&(t, _)| t_ms.saturating_sub(t) <= p.ranging.window_ms)
            .count();
        recent >= p.ranging.readings.max(1)
    }

    /// Unlocks `lock` at `t_ms`: one unlock per approach, whichever measure decided, so both
    /// disarm until the phone has been far again.
    fn fire(&mut self, lock: &str, t_ms: u64, distance_m: f64, p: &WalkUpParams) -> WalkUpDecision {
        let ranged_m = self
            .ranging_decides(t_ms, p)
            .then(|| ranging::estimate(&self.ranges, &p.ranging))
            .flatten()
            .map(|e| e.distance_m);
        self.armed = false;
        self.range_armed = false;
        self.last_unlock = Some(t_ms);
        WalkUpDecision {
            t_ms,
            lock: lock.to_owned(),
            distance_m,
            ranged_m,
        }
    }

    fn cooled(&self, t_ms: u64, p: &WalkUpParams) -> bool {
        self.last_unlock
            .is_none_or(|u| t_ms.saturating_sub(u) >= p.cooldown_ms)
    }
}

/// Appends a reading and drops those older than `keep_ms` before it.
fn push_within<T>(readings: &mut VecDeque<(u64, T)>, reading: (u64, T), keep_ms: u64) {
    let now = reading.0;
    readings.push_back(reading);
    while let Some(&(t, _)) = readings.front() {
        if now.saturating_sub(t) > keep_ms {
            readings.pop_front();
        } else {
            break;
        }
    }
}

/// How far the smoothed RSSI fell over the last `trend_ms` (negative = rising).
fn trend_fall(history: &VecDeque<(u64, f64)>, now: u64, trend_ms: u64) -> f64 {
    let Some(&(_, latest)) = history.back() else {
        return 0.0;
    };
    let earlier = history
        .iter()
        .find(|(t, _)| now.saturating_sub(*t) <= trend_ms)
        .map(|&(_, v)| v)
        .unwrap_or(latest);
    earlier - latest
}

/// Linear-interpolated quantile `q` in `0..=1` (0.5 is the median).
fn quantile(values: impl Iterator<Item = f64>, q: f64) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NEG_INFINITY;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TX: i8 = -59;

    /// Noise-free reading at `d` metres.
    fn at(d: f64) -> i16 {
        rssi_at(d, TX, 2.0).round() as i16
    }

    fn engine() -> WalkUpEngine {
        let mut e = WalkUpEngine::new(WalkUpParams::default());
        e.set_enabled("front", true);
        e
    }

    /// Feeds a straight walk from `from` to `to` metres at 1.2 m/s, 10 readings/s, then
    /// `hold_ms` standing at `to`. Returns decisions.
    fn walk(e: &mut WalkUpEngine, t0: u64, from: f64, to: f64, hold_ms: u64) -> Vec<u64> {
        walk_every(100, e, t0, from, to, hold_ms)
    }

    /// [`walk`] with a reading every `gap_ms`.
    fn walk_every(
        gap_ms: u64,
        e: &mut WalkUpEngine,
        t0: u64,
        from: f64,
        to: f64,
        hold_ms: u64,
    ) -> Vec<u64> {
        let mut out = vec![];
        let dur = ((from - to).abs() / 1.2 * 1000.0) as u64;
        let mut t = t0;
        while t <= t0 + dur + hold_ms {
            let frac = ((t - t0) as f64 / dur.max(1) as f64).min(1.0);
            let d = from + (to - from) * frac;
            if let Some(dec) = e.observe("front", t, at(d), TX) {
                out.push(dec.t_ms);
            }
            t += gap_ms;
        }
        out
    }

    #[test]
    fn approach_unlocks_once() {
        let mut e = engine();
        let hits = walk(&mut e, 1_000, 10.0, 0.5, 5_000);
        assert_eq!(hits.len(), 1, "{hits:?}");
    }

    #[test]
    fn the_last_arrival_test_is_on_show() {
        let mut e = WalkUpEngine::new(WalkUpParams {
            min_evidence: f64::INFINITY,
            ..WalkUpParams::default()
        });
        e.set_enabled("front", true);
        assert_eq!(e.last_test("front"), None);
        // Far away: no test yet, but the lock is tracked.
        walk(&mut e, 1_000, 10.0, 8.0, 0);
        assert_eq!(e.last_test("front"), None);
        assert_eq!(e.snapshot()[0].evidence, None);
        // At the door with a bar never cleared: tests keep running and show what they found.
        let hits = walk(&mut e, 3_000, 8.0, 0.5, 3_000);
        assert!(hits.is_empty());
        let (at, evidence) = e.last_test("front").unwrap();
        assert!(at > 3_000);
        let evidence = evidence.unwrap();
        assert!(evidence > 5.0, "{evidence}");
        assert_eq!(e.snapshot()[0].evidence, Some(evidence));
    }

    #[test]
    fn parameters_saved_before_walks_covered_doubt_and_ranging_load_with_todays() {
        let mut saved = serde_json::to_value(WalkUpParams::default()).unwrap();
        saved.as_object_mut().unwrap().remove("walks");
        saved.as_object_mut().unwrap().remove("covered_doubt");
        saved.as_object_mut().unwrap().remove("ranging");
        let loaded: WalkUpParams = serde_json::from_value(saved).unwrap();
        assert_eq!(loaded, WalkUpParams::default());
    }

    #[test]
    fn each_carry_report_has_its_own_doubt_and_a_senseless_one_ignores_the_report() {
        let params = WalkUpParams {
            carry_doubt: 0.2,
            covered_doubt: 0.01,
            ..WalkUpParams::default()
        };
        assert_eq!(Carry::Covered.offsets(&params).doubt, 0.01);
        assert_eq!(Carry::Uncovered.offsets(&params).doubt, 0.2);
        assert_eq!(Carry::Unknown.offsets(&params), arrival::Offsets::ANY);
        for bad in [f64::NAN, -0.1, 1.5] {
            let params = WalkUpParams {
                carry_doubt: bad,
                covered_doubt: bad,
                ..WalkUpParams::default()
            };
            assert_eq!(Carry::Covered.offsets(&params).doubt, 1.0, "{bad}");
            assert_eq!(Carry::Uncovered.offsets(&params).doubt, 1.0, "{bad}");
        }
    }

    #[test]
    fn the_pace_is_used_and_a_wrong_one_still_unlocks_once() {
        // The same approach at 1.2 m/s with no pace, the true one and a wrong one: each
        // unlocks once, and the true pace no later than none.
        let mut decisions = vec![];
        for pace in [None, Some(1.2), Some(0.6)] {
            let mut e = engine();
            e.set_pace(pace);
            assert_eq!(e.pace(), pace);
            let hits = walk(&mut e, 1_000, 10.0, 0.5, 5_000);
            assert_eq!(hits.len(), 1, "pace {pace:?}: {hits:?}");
            decisions.push(hits[0]);
        }
        assert!(decisions[1] <= decisions[0], "{decisions:?}");
        // What is not a speed is no pace.
        let mut e = engine();
        for bad in [f64::NAN, -1.0, 0.0, f64::INFINITY] {
            e.set_pace(Some(bad));
            assert_eq!(e.pace(), None, "{bad}");
        }
    }

    #[test]
    fn a_door_heard_thirty_times_a_second_unlocks_once_in_time() {
        for gap_ms in [33, 100] {
            let mut e = engine();
            let hits = walk_every(gap_ms, &mut e, 1_000, 10.0, 0.5, 5_000);
            assert_eq!(hits.len(), 1, "every {gap_ms} ms: {hits:?}");
            // 1 m is reached 7.5 s into the walk.
            let late = hits[0] as i64 - 8_500;
            assert!(
                late <= 1_500,
                "every {gap_ms} ms: {late} ms after reaching 1 m"
            );
        }
    }

    /// A walk like [`walk`] whose RSSI reads `rssi_offset_db` off (a bag, a raised hand) and
    /// whose phone ranges to the door every 100 ms while within `range_within_m`, reading
    /// `range_bias_m` long. Returns (decision time, true distance then).
    fn walk_ranged(
        e: &mut WalkUpEngine,
        (from, to, hold_ms): (f64, f64, u64),
        rssi_offset_db: f64,
        (range_within_m, range_bias_m): (f64, f64),
    ) -> Vec<(u64, f64)> {
        let mut out = vec![];
        let dur = ((from - to).abs() / 1.2 * 1000.0) as u64;
        let t0 = 1_000;
        // RSSI every 50 ms, a range on every other one.
        for t in (t0..=t0 + dur + hold_ms).step_by(50) {
            let frac = ((t - t0) as f64 / dur.max(1) as f64).min(1.0);
            let d = from + (to - from) * frac;
            let rssi = (rssi_at(d, TX, 2.0) + rssi_offset_db).round() as i16;
            let mut decisions = vec![e.observe("front", t, rssi, TX)];
            if (t - t0) % 100 == 0 && d <= range_within_m {
                decisions.push(e.observe_range("front", t, d + range_bias_m));
            }
            out.extend(decisions.into_iter().flatten().map(|dec| (dec.t_ms, d)));
        }
        out
    }

    /// An engine that decides by the given ranging rule.
    fn ruled_engine(rule: RangeRule) -> WalkUpEngine {
        let mut e = WalkUpEngine::new(WalkUpParams {
            ranging: ranging::RangingParams {
                rule,
                ..Default::default()
            },
            ..WalkUpParams::default()
        });
        e.set_enabled("front", true);
        e
    }

    fn direct_engine() -> WalkUpEngine {
        ruled_engine(RangeRule::Direct)
    }

    fn fused_engine() -> WalkUpEngine {
        ruled_engine(RangeRule::Fused)
    }

    /// A walk to `to` m whose RSSI reads `rssi_off` dB off and whose phone ranges twice a
    /// second (Channel-Sounding-like) within 6 m, reading 0.2 m long and ±0.25 m noisy (two
    /// readings long, two short). Returns (decision time, true distance then).
    fn walk_ranged_slowly(e: &mut WalkUpEngine, to: f64, rssi_off: f64) -> Vec<(u64, f64)> {
        walk_ranged_wobbling(e, to, rssi_off, 0.25, 1_000)
    }

    /// [`walk_ranged_slowly`] with readings `wobble` m long for `period_ms`, then as short.
    fn walk_ranged_wobbling(
        e: &mut WalkUpEngine,
        to: f64,
        rssi_off: f64,
        wobble: f64,
        period_ms: u64,
    ) -> Vec<(u64, f64)> {
        let mut out = vec![];
        let dur = ((10.0 - to) / 1.2 * 1000.0) as u64;
        for t in (1_000..=1_000 + dur + 6_000).step_by(50) {
            let d = 10.0 + (to - 10.0) * ((t - 1_000) as f64 / dur as f64).min(1.0);
            let rssi = (rssi_at(d, TX, 2.0) + rssi_off).round() as i16;
            out.extend(e.observe("front", t, rssi, TX).map(|dec| (dec.t_ms, d)));
            if t % 500 == 0 && d <= 6.0 {
                let wobble = if (t / period_ms).is_multiple_of(2) {
                    wobble
                } else {
                    -wobble
                };
                let r = d + 0.2 + wobble;
                out.extend(e.observe_range("front", t, r).map(|dec| (dec.t_ms, d)));
            }
        }
        out
    }

    #[test]
    fn fused_ranging_unlocks_a_bag_at_the_door_and_not_a_raised_phone_short_of_it() {
        let covered = |mut e: WalkUpEngine| {
            e.set_carry(Carry::Covered);
            e
        };
        // 12 dB of bag: RSSI alone never gets near the gate; two noisy ranges a second do.
        assert!(
            walk_ranged(
                &mut covered(engine()),
                (10.0, 0.5, 6_000),
                -12.0,
                (0.0, 0.0)
            )
            .is_empty()
        );
        for e in [fused_engine(), direct_engine()] {
            let unlocks = walk_ranged_slowly(&mut covered(e), 0.5, -12.0);
            assert_eq!(unlocks.len(), 1, "{unlocks:?}");
        }
        // The fused test waits for the phone to be within 1 m; the median of three slow
        // readings decides where it happens to be.
        let fused = walk_ranged_slowly(&mut covered(fused_engine()), 0.5, -12.0);
        assert!(fused[0].1 <= 1.0, "{fused:?}");
        // Held up 4 dB, stopping 2 m out, reported covered: ranging keeps both rules shut.
        for e in [fused_engine(), direct_engine()] {
            assert!(walk_ranged_slowly(&mut covered(e), 2.0, 4.0).is_empty());
        }
        // A stack whose readings scatter by ±0.6 m from one to the next gates nothing: the
        // test runs when RSSI's own gate lets it, and RSSI through the bag never gets near.
        let scattered = walk_ranged_wobbling(&mut covered(fused_engine()), 0.5, -12.0, 0.6, 500);
        assert!(scattered.is_empty(), "{scattered:?}");
        // The same stack with the phone in the hand: RSSI gates, the test decides.
        let in_hand = walk_ranged_wobbling(&mut fused_engine(), 0.5, 0.0, 0.6, 500);
        assert_eq!(in_hand.len(), 1, "{in_hand:?}");
    }

    #[test]
    fn a_ranged_bagged_phone_unlocks_once_at_the_door() {
        // 12 dB of bag reads as four times the distance: RSSI alone never gets near the gate.
        let mut rssi_only = engine();
        assert!(walk_ranged(&mut rssi_only, (10.0, 0.5, 5_000), -12.0, (0.0, 0.0)).is_empty());
        let mut e = engine();
        let unlocks = walk_ranged(&mut e, (10.0, 0.5, 5_000), -12.0, (6.0, 0.2));
        assert_eq!(unlocks.len(), 1, "{unlocks:?}");
        let (_, d) = unlocks[0];
        assert!((0.5..=1.1).contains(&d), "unlocked at {d} m");
        let shown = &e.snapshot()[0];
        assert!((shown.ranged_m.unwrap() - 0.7).abs() < 1e-9, "{shown:?}");
    }

    #[test]
    fn ranging_that_starts_at_the_door_never_arms() {
        // Someone leaving with the phone deep in a bag (18 dB down): its RSSI reads 4 m, which
        // arms the RSSI side while they stand at the door; ranging comes up a second later.
        let mut e = engine();
        let mut unlocks = vec![];
        let rssi_at_door = (rssi_at(0.5, TX, 2.0) - 18.0).round() as i16;
        for t in (1_000..3_000).step_by(50) {
            unlocks.extend(e.observe("front", t, rssi_at_door, TX));
        }
        assert!(e.snapshot()[0].armed, "the bag fooled RSSI's arming");
        for t in (3_000..4_000).step_by(100) {
            unlocks.extend(e.observe("front", t, rssi_at_door, TX));
            unlocks.extend(e.observe_range("front", t + 50, 0.8));
        }
        unlocks.extend(e.observe_range("front", 4_050, 1.5));
        assert!(unlocks.is_empty(), "{unlocks:?}");
    }

    #[test]
    fn a_session_that_comes_up_too_near_to_arm_leaves_the_approach_to_rssi() {
        // Ranged only from 2 m in (a brisk walker, a slow session): never seen far by range.
        let mut e = engine();
        let unlocks = walk_ranged(&mut e, (10.0, 0.4, 5_000), 0.0, (2.0, 0.0));
        assert_eq!(unlocks.len(), 1, "{unlocks:?}");
        assert!(unlocks[0].1 <= 1.0, "{unlocks:?}");
    }

    #[test]
    fn ranging_overrules_a_raised_phone_that_reads_near() {
        // Walked up to 2 m and held up 4 dB, but reported covered: to RSSI that is a bagged
        // phone at the door (with a low bar, so the report alone decides).
        let fooled = || {
            let mut e = WalkUpEngine::new(WalkUpParams {
                min_evidence: 2.0,
                ..WalkUpParams::default()
            });
            e.set_enabled("front", true);
            e.set_carry(Carry::Covered);
            e
        };
        let unlocks = walk_ranged(&mut fooled(), (10.0, 2.0, 6_000), 4.0, (0.0, 0.0));
        assert_eq!(unlocks.len(), 1, "RSSI alone is fooled");
        assert!(walk_ranged(&mut fooled(), (10.0, 2.0, 6_000), 4.0, (6.0, 0.0)).is_empty());
    }

    #[test]
    fn ranging_never_unlocks_leaving_or_passing() {
        let mut e = engine();
        assert!(walk_ranged(&mut e, (0.4, 10.0, 2_000), 0.0, (20.0, 0.0)).is_empty());
        // Ranged from the start, the walk-past is armed and comes no nearer than 2 m.
        let mut e = engine();
        let mut unlocks = vec![];
        for (i, t) in (1_000..20_000).step_by(100).enumerate() {
            let x = -10.0 + 1.2 * i as f64 / 10.0;
            let d = (x * x + 4.0f64).sqrt();
            unlocks.extend(e.observe("front", t, at(d), TX));
            unlocks.extend(e.observe_range("front", t + 50, d));
        }
        assert!(unlocks.is_empty(), "{unlocks:?}");
    }

    #[test]
    fn one_ranged_unlock_per_approach_and_failed_rounds_ignored() {
        // Ranges alone (no advertisement heard between them) decide only by the direct rule.
        let mut e = direct_engine();
        let mut unlocks = vec![];
        let mut t = 1_000;
        let mut feed = |e: &mut WalkUpEngine, d: f64, unlocks: &mut Vec<u64>| {
            unlocks.extend(e.observe_range("front", t, d).map(|dec| dec.t_ms));
            unlocks.extend(
                e.observe_range("front", t + 50, f64::NAN)
                    .map(|dec| dec.t_ms),
            );
            t += 100;
        };
        // 0.5 m per reading, 5 m/s: a run, so the half-second median lags by a metre.
        let walk_in = [
            5.0, 4.5, 4.0, 3.5, 3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.6, 0.6, 0.6, 0.6,
        ];
        for d in walk_in {
            feed(&mut e, d, &mut unlocks);
        }
        assert_eq!(unlocks.len(), 1);
        // Standing at the door for a minute: no second unlock.
        for _ in 0..600 {
            feed(&mut e, 0.6, &mut unlocks);
        }
        assert_eq!(unlocks.len(), 1);
        // Back out beyond 3 m and in again, past the cooldown: the next approach unlocks.
        for d in [1.0, 2.0, 3.0, 3.5, 4.0, 4.0, 4.0, 4.0]
            .into_iter()
            .chain(walk_in)
        {
            feed(&mut e, d, &mut unlocks);
        }
        assert_eq!(unlocks.len(), 2);
        // A lock without walk-up takes no readings.
        assert!(e.observe_range("back", t, 0.5).is_none());
    }

    #[test]
    fn when_ranging_stops_rssi_decides_again() {
        // Ranged from 10 m down to 4 m only (the session dropped); RSSI finishes the approach.
        let mut e = engine();
        let mut unlocks = vec![];
        let dur = ((10.0 - 0.4) / 1.2 * 1000.0) as u64;
        for t in (1_000..=1_000 + dur + 4_000).step_by(50) {
            let d = 10.0 - 9.6 * (((t - 1_000) as f64) / dur as f64).min(1.0);
            unlocks.extend(e.observe("front", t, at(d), TX));
            if t % 100 == 0 && d > 4.0 {
                unlocks.extend(e.observe_range("front", t, d));
            }
        }
        assert_eq!(unlocks.len(), 1, "{unlocks:?}");
    }

    #[test]
    fn leaving_never_unlocks() {
        let mut e = engine();
        assert!(walk(&mut e, 1_000, 0.5, 10.0, 2_000).is_empty());
    }

    #[test]
    fn walk_past_at_three_metres_does_not_unlock() {
        for gap_ms in [33, 100] {
            let mut e = engine();
            let hits = (0..=20_000u64)
                .step_by(gap_ms)
                .filter(|&t| {
                    // 1 m/s from 10 m before the door to 10 m after, 3 m out.
                    let x = t as f64 / 1000.0 - 10.0;
                    let d = (x * x + 9.0).sqrt();
                    e.observe("front", t, at(d), TX).is_some()
                })
                .count();
            assert_eq!(hits, 0, "every {gap_ms} ms");
        }
    }

    #[test]
    fn disabled_lock_never_unlocks_and_rearm_needs_leaving() {
        let mut e = WalkUpEngine::new(WalkUpParams::default());
        assert!(walk(&mut e, 0, 10.0, 0.5, 2_000).is_empty());
        let mut e = engine();
        assert_eq!(walk(&mut e, 0, 10.0, 0.5, 2_000).len(), 1);
        // Loitering at the door after the unlock does not unlock again, even after cooldown.
        assert!(walk(&mut e, 20_000, 0.5, 0.6, 20_000).is_empty());
        // Leave and come back: a second approach unlocks again.
        assert!(walk(&mut e, 60_000, 0.6, 8.0, 1_000).is_empty());
        assert_eq!(walk(&mut e, 70_000, 8.0, 0.5, 2_000).len(), 1);
    }

    /// An engine for "front" with `params`, told the wearer's `motion`.
    fn moving_engine(params: WalkUpParams, motion: Motion) -> WalkUpEngine {
        let mut e = WalkUpEngine::new(params);
        e.set_enabled("front", true);
        e.set_motion(motion);
        e
    }

    #[test]
    fn the_wearers_motion_picks_the_evidence_needed() {
        // Walking asks for certainty no approach reaches; once they stand still the same
        // readings at the door unlock, once.
        let never_walking = WalkUpParams {
            walking_evidence: f64::INFINITY,
            ..WalkUpParams::default()
        };
        let mut e = moving_engine(never_walking, Motion::Walking);
        assert!(walk(&mut e, 0, 10.0, 0.5, 0).is_empty(), "walking");
        e.set_motion(Motion::Still);
        assert_eq!(e.motion(), Motion::Still);
        let hits = walk(&mut e, 8_000, 0.5, 0.5, 2_000);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert!(hits[0] <= 8_100, "at the first reading standing: {hits:?}");
        // Standing longer than `still_window_ms` (stopped short, waiting): back to
        // `min_evidence`, here one no reading reaches. The same steps with an endless window
        // unlock, so it is the window that refuses.
        for (window_ms, unlocks) in [(1_000, 0), (u64::MAX, 1)] {
            let params = WalkUpParams {
                min_evidence: f64::INFINITY,
                still_window_ms: window_ms,
                ..never_walking
            };
            let mut e = moving_engine(params, Motion::Walking);
            assert!(walk(&mut e, 0, 10.0, 1.5, 0).is_empty());
            e.set_motion(Motion::Still);
            let mut hits = walk(&mut e, 7_000, 1.5, 1.5, 1_500);
            hits.extend(walk(&mut e, 8_600, 1.5, 0.5, 3_000));
            assert_eq!(hits.len(), unlocks, "window {window_ms} ms: {hits:?}");
        }
        // Without motion data the engine falls back to `min_evidence`.
        let params = WalkUpParams {
            min_evidence: f64::INFINITY,
            ..WalkUpParams::default()
        };
        let mut e = moving_engine(params, Motion::Still);
        e.set_motion(Motion::Unknown);
        assert!(walk(&mut e, 0, 10.0, 0.5, 3_000).is_empty(), "unknown");
    }

    #[test]
    fn walking_past_with_the_phone_held_up_does_not_unlock() {
        // 2 m out at 1.5 m/s, phone held up (+4 dB), a reading every 33 ms: the level of a
        // pocketed phone at the door, the shape of a pass-by.
        let mut e = moving_engine(WalkUpParams::default(), Motion::Walking);
        let hits = (0..=14_000u64)
            .step_by(33)
            .filter(|&t| {
                let x = 1.5 * t as f64 / 1000.0 - 10.0;
                let rssi = rssi_at((x * x + 4.0).sqrt(), TX, 2.0) + 4.0;
                e.observe("front", t, rssi.round() as i16, TX).is_some()
            })
            .count();
        assert_eq!(hits, 0);
    }

    #[test]
    fn distance_model_round_trips() {
        let r = rssi_at(2.0, TX, 2.0);
        assert!((distance_from_rssi(r, TX, 2.0) - 2.0).abs() < 1e-9);
        assert!((rssi_at(1.0, TX, 2.0) - TX as f64).abs() < 1e-9);
    }
}
