//! Radio propagation: log-distance path loss with Gaussian shadowing.
//!
//! `rssi = tx_power_at_1m − 10·n·log10(d) + N(0, σ²)`, clamped to `[min_dbm, max_dbm]`. The noise
//! comes from a seedable SplitMix64 generator: this is simulation, not security, so runs are
//! reproducible from a seed.

/// Log-distance path-loss model with shadowing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathLoss {
    /// Path-loss exponent `n` (2.0 in free space, 2.5–4 indoors).
    pub exponent: f64,
    /// Standard deviation of the shadowing noise, dB.
    pub shadowing_sigma_db: f64,
    /// Weakest reportable RSSI; weaker packets are not received at all.
    pub min_dbm: f64,
    /// Strongest reportable RSSI (receiver saturation).
    pub max_dbm: f64,
}

impl Default for PathLoss {
    fn default() -> Self {
        Self {
            exponent: 2.0,
            shadowing_sigma_db: 4.0,
            min_dbm: -100.0,
            max_dbm: -20.0,
        }
    }
}

/// Distances below this are treated as this (the formula diverges at 0).
const MIN_DISTANCE_M: f64 = 0.05;

impl PathLoss {
    /// Expected RSSI at `distance_m`, without noise and without clamping.
    pub fn mean_rssi(&self, tx_power_at_1m: f64, distance_m: f64) -> f64 {
        tx_power_at_1m - 10.0 * self.exponent * distance_m.max(MIN_DISTANCE_M).log10()
    }

    /// One noisy RSSI sample, unclamped.
    pub fn sample_raw(&self, tx_power_at_1m: f64, distance_m: f64, noise: &mut Noise) -> f64 {
        self.mean_rssi(tx_power_at_1m, distance_m) + noise.gaussian() * self.shadowing_sigma_db
    }

    /// One noisy RSSI sample clamped to `[min_dbm, max_dbm]`, rounded to whole dBm.
    pub fn rssi(&self, tx_power_at_1m: f64, distance_m: f64, noise: &mut Noise) -> i16 {
        self.clamp(self.sample_raw(tx_power_at_1m, distance_m, noise))
    }

    /// A received packet's RSSI, or `None` when the sample falls below the sensitivity floor.
    pub fn receive(&self, tx_power_at_1m: f64, distance_m: f64, noise: &mut Noise) -> Option<i16> {
        let raw = self.sample_raw(tx_power_at_1m, distance_m, noise);
        (raw >= self.min_dbm).then(|| self.clamp(raw))
    }

    fn clamp(&self, raw: f64) -> i16 {
        raw.clamp(self.min_dbm, self.max_dbm).round() as i16
    }
}

/// Seedable noise source (SplitMix64 + Box–Muller). Simulation only; never for keys.
#[derive(Debug, Clone)]
pub struct Noise {
    state: u64,
    spare: Option<f64>,
}

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal sample.
    pub fn gaussian(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// A position in metres on the floor plan.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

impl Position {
    pub fn distance(&self, other: &Position) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }
}

/// A walk: `(t_ms, x, y)` points, linearly interpolated; before the first point the phone
/// stands at the first, after the last it stands at the last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub points: Vec<(u64, f64, f64)>,
}

impl Script {
    /// Position `t_ms` after the script started. Points must be sorted by time.
    pub fn position_at(&self, t_ms: u64) -> Option<Position> {
        let first = self.points.first()?;
        if t_ms <= first.0 {
            return Some(Position {
                x: first.1,
                y: first.2,
            });
        }
        for pair in self.points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if t_ms <= b.0 {
                let span = (b.0 - a.0).max(1) as f64;
                let f = (t_ms - a.0) as f64 / span;
                return Some(Position {
                    x: a.1 + (b.1 - a.1) * f,
                    y: a.2 + (b.2 - a.2) * f,
                });
            }
        }
        let last = self.points.last()?;
        Some(Position {
            x: last.1,
            y: last.2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_follows_log_distance() {
        let m = PathLoss::default();
        assert!((m.mean_rssi(-59.0, 1.0) - -59.0).abs() < 1e-9);
        assert!((m.mean_rssi(-59.0, 10.0) - -79.0).abs() < 1e-9);
        let m4 = PathLoss { exponent: 4.0, ..m };
        assert!((m4.mean_rssi(-59.0, 10.0) - -99.0).abs() < 1e-9);
    }

    #[test]
    fn noise_is_seeded_gaussian_and_rssi_is_clamped() {
        let mut a = Noise::new(7);
        let mut b = Noise::new(7);
        let xs: Vec<f64> = (0..20_000).map(|_| a.gaussian()).collect();
        let ys: Vec<f64> = (0..20_000).map(|_| b.gaussian()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");

        let m = PathLoss::default();
        let mut n = Noise::new(1);
        for d in [0.0, 0.01, 1.0, 5.0, 1000.0] {
            let r = m.rssi(-40.0, d, &mut n);
            assert!((-100..=-20).contains(&r), "{r} at {d}");
        }
        assert_eq!(m.receive(-59.0, 100_000.0, &mut n), None);
    }

    #[test]
    fn scripts_interpolate_linearly() {
        let s = Script {
            points: vec![(0, 0.0, 0.0), (1000, 10.0, 0.0), (2000, 10.0, 10.0)],
        };
        assert_eq!(s.position_at(500), Some(Position { x: 5.0, y: 0.0 }));
        assert_eq!(s.position_at(1500), Some(Position { x: 10.0, y: 5.0 }));
        assert_eq!(s.position_at(9000), Some(Position { x: 10.0, y: 10.0 }));
        assert_eq!(Script::default().position_at(0), None);
    }
}
