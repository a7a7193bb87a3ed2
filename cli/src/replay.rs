//! `keyway walk --replay FILE`: feeds a recorded or simulated trace through the phones' walk-up
//! engine. Input CSV with header `t_ms,lock,rssi`, rows in time order; walk-up is on for every
//! lock in the file. An optional `motion` column (`walking`, `still`, `unknown`, or empty for
//! no change) replays what the phone's motion detector said, from that row on, and an optional
//! `carry` column (`covered`, `uncovered`, `unknown`, or empty) what its proximity sensor said,
//! and an optional `pace` column (walking speed in m/s, `unknown`, or empty) what its step
//! counter said; without them the engine decides on RSSI alone. An optional `range_m` column
//! replays a secure-ranging distance (UWB, Channel Sounding) measured at that row's time; a
//! row with a range may leave `rssi` empty. Fields may be double-quoted (as Python's csv
//! module writes with `QUOTE_ALL` or `QUOTE_NONNUMERIC`), and numbers must be finite. Output:
//! one JSON line per unlock decision, `{"t_ms":..,"lock":..}`, nothing else on stdout.

use anyhow::{Context, bail};
use keyway_shared::walkup::{Carry, Motion, WalkUpEngine, WalkUpParams};
use serde::Serialize;
use std::io::{BufRead, Write};

/// One output line, its keys in this order.
#[derive(Debug, Serialize)]
struct Decision<'a> {
    t_ms: u64,
    lock: &'a str,
}

/// The fields of one CSV record, trimmed, each either bare or double-quoted with `""` for a
/// quote inside (RFC 4180, as Python's csv module writes). Quoted fields cannot span lines.
fn split_record(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('"') {
            let mut field = String::new();
            let mut chars = quoted.char_indices();
            let after = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            field.push('"');
                            chars.next();
                        } else {
                            break &quoted[i + 1..];
                        }
                    }
                    Some((_, c)) => field.push(c),
                    None => return Err(format!("unterminated quoted field {trimmed:?}")),
                }
            };
            fields.push(field);
            let after = after.trim_start();
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None if after.is_empty() => return Ok(fields),
                None => return Err(format!("text after a quoted field: {after:?}")),
            }
        } else {
            match trimmed.split_once(',') {
                Some((field, next)) => {
                    fields.push(field.trim().to_owned());
                    rest = next;
                }
                None => {
                    fields.push(trimmed.trim().to_owned());
                    return Ok(fields);
                }
            }
        }
    }
}

/// A finite number (Rust, like Python, would read `NaN` and `inf`: a NaN RSSI became 0 dBm).
fn finite(v: &str, what: &str, line: usize) -> anyhow::Result<f64> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .with_context(|| format!("line {line}: {what} {v:?} is not a finite number"))
}

/// One trace row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub t_ms: u64,
    pub lock: String,
    /// The advertisement's RSSI (`None` on a row that only carries a range).
    pub rssi: Option<i16>,
    /// A ranged distance to the lock measured at this time, metres.
    pub range_m: Option<f64>,
    /// The motion detector's report from this row on, if it changed.
    pub motion: Option<Motion>,
    /// The proximity sensor's report from this row on, if it changed.
    pub carry: Option<Carry>,
    /// The step counter's pace (m/s) from this row on, if it changed (`Some(None)`: none).
    pub pace: Option<Option<f64>>,
}

pub fn parse(input: impl BufRead) -> anyhow::Result<Vec<Row>> {
    let mut lines = input.lines().enumerate();
    let header = loop {
        match lines.next() {
            Some((_, l)) => {
                let l = l?;
                if !l.trim().is_empty() {
                    break l;
                }
            }
            None => return Ok(vec![]),
        }
    };
    let header = header.trim().trim_start_matches('\u{feff}');
    let cols: Vec<String> = split_record(header)
        .map_err(|e| anyhow::anyhow!("header: {e}"))?
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let idx = |name: &str| {
        cols.iter()
            .position(|c| c == name)
            .with_context(|| format!("header has no `{name}` column (want t_ms,lock,rssi)"))
    };
    let (ti, li, ri) = (idx("t_ms")?, idx("lock")?, idx("rssi")?);
    let mi = cols.iter().position(|c| c == "motion");
    let ci = cols.iter().position(|c| c == "carry");
    let pi = cols.iter().position(|c| c == "pace");
    let gi = cols.iter().position(|c| c == "range_m");
    let mut rows = Vec::new();
    for (n, line) in lines {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let n = n + 1;
        let fields = split_record(&line).map_err(|e| anyhow::anyhow!("line {n}: {e}"))?;
        let get = |i: usize| {
            fields
                .get(i)
                .map(String::as_str)
                .with_context(|| format!("line {n}: missing column"))
        };
        // An optional column: absent or empty is `None`.
        let optional = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let t_ms = finite(get(ti)?, "t_ms", n)?;
        let range_m = match optional(gi) {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .with_context(|| {
                        format!("line {n}: range_m {v:?} is not a distance in metres")
                    })?,
            ),
        };
        let rssi = match get(ri)? {
            "" if range_m.is_some() => None,
            v => Some(finite(v, "rssi", n)?.round().clamp(-127.0, 20.0) as i16),
        };
        let lock = get(li)?.to_owned();
        if lock.is_empty() || t_ms < 0.0 {
            bail!("line {n}: empty lock or negative time");
        }
        // An optional report column: empty or absent is no change.
        fn report<T: serde::de::DeserializeOwned>(
            field: Option<&str>,
            what: &str,
            values: &str,
            line: usize,
        ) -> anyhow::Result<Option<T>> {
            match field {
                None => Ok(None),
                Some(v) => named(v)
                    .map(Some)
                    .with_context(|| format!("line {line}: {what} {v:?} is not {values}")),
            }
        }
        rows.push(Row {
            t_ms: t_ms as u64,
            lock,
            rssi,
            range_m,
            motion: report(optional(mi), "motion", "walking, still or unknown", n)?,
            carry: report(optional(ci), "carry", "covered, uncovered or unknown", n)?,
            pace: match optional(pi) {
                None => None,
                Some(v) if v.eq_ignore_ascii_case("unknown") => Some(None),
                Some(v) => Some(Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite() && *p > 0.0)
                        .with_context(|| {
                            format!("line {n}: pace {v:?} is not a speed in m/s or unknown")
                        })?,
                )),
            },
        });
    }
    Ok(rows)
}

/// A report value by its name in any case (`Still`, `covered`), as the engine's types spell
/// them in JSON.
pub fn named<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_ascii_lowercase())).ok()
}

/// Runs the engine over `rows`, writing one JSON line per decision.
pub fn run(
    rows: &[Row],
    tx_power: i8,
    params: WalkUpParams,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let mut engine = WalkUpEngine::new(params);
    for r in rows {
        if !engine.is_enabled(&r.lock) {
            engine.set_enabled(&r.lock, true);
        }
    }
    let mut n = 0;
    for r in rows {
        if let Some(m) = r.motion {
            engine.set_motion(m);
        }
        if let Some(c) = r.carry {
            engine.set_carry(c);
        }
        if let Some(p) = r.pace {
            engine.set_pace(p);
        }
        // The range first, so that the arrival test this row's RSSI may run weighs it.
        let ranged = r
            .range_m
            .and_then(|d| engine.observe_range(&r.lock, r.t_ms, d));
        let heard = r
            .rssi
            .and_then(|rssi| engine.observe(&r.lock, r.t_ms, rssi, tx_power));
        for d in ranged.into_iter().chain(heard) {
            serde_json::to_writer(
                &mut *out,
                &Decision {
                    t_ms: d.t_ms,
                    lock: &d.lock,
                },
            )?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> String {
        // Approach lock A from 10 m to 0.4 m at 1.2 m/s, 10 Hz, noise-free; lock B far away.
        let mut s = String::from("t_ms,lock,rssi\n");
        let mut t = 0u64;
        let mut d = 10.0f64;
        while t < 15_000 {
            let rssi = -59.0 - 20.0 * d.log10();
            s.push_str(&format!("{t},A,{:.0}\n", rssi));
            s.push_str(&format!("{},B,-90\n", t + 5));
            d = (d - 0.12).max(0.4);
            t += 100;
        }
        s
    }

    #[test]
    fn replay_prints_one_line_per_unlock() {
        let rows = parse(trace().as_bytes()).unwrap();
        let mut out = Vec::new();
        let n = run(&rows, -59, WalkUpParams::default(), &mut out).unwrap();
        assert_eq!(n, 1);
        let text = String::from_utf8(out).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        let t = line["t_ms"].as_u64().unwrap();
        assert!(t > 7_000);
        // Exactly the issue's shape, `t_ms` first.
        assert_eq!(text, format!("{{\"t_ms\":{t},\"lock\":\"A\"}}\n"));
    }

    #[test]
    fn non_finite_numbers_are_refused_with_the_value() {
        for (row, want) in [
            ("1,A,NaN", r#"line 2: rssi "NaN" is not a finite number"#),
            ("1,A,nan", r#"line 2: rssi "nan" is not a finite number"#),
            ("1,A,-inf", r#"line 2: rssi "-inf" is not a finite number"#),
            ("inf,A,-60", r#"line 2: t_ms "inf" is not a finite number"#),
            ("NaN,A,-60", r#"line 2: t_ms "NaN" is not a finite number"#),
            ("1,A,loud", r#"line 2: rssi "loud" is not a finite number"#),
        ] {
            let err = parse(format!("t_ms,lock,rssi\n{row}\n").as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn python_quoted_csv_is_read() {
        // csv.writer(f, quoting=csv.QUOTE_ALL), with the \r\n it ends rows with.
        let all = "\"t_ms\",\"lock\",\"rssi\",\"motion\"\r\n\"5\",\"X\",\"-60\",\"still\"\r\n";
        // quoting=csv.QUOTE_NONNUMERIC: numbers bare, text quoted, a quote doubled.
        let nonnumeric = "\"lock\",\"rssi\",\"t_ms\",\"motion\"\n\"X\",-60.0,5.0,\"still\"\n";
        for text in [all, nonnumeric] {
            let rows = parse(text.as_bytes()).unwrap();
            assert_eq!(
                rows,
                [Row {
                    t_ms: 5,
                    lock: "X".into(),
                    rssi: Some(-60),
                    range_m: None,
                    motion: Some(Motion::Still),
                    carry: None,
                    pace: None,
                }]
            );
        }
        let rows = parse("t_ms,lock,rssi\n1,\"Front, \"\"main\"\"\",-60\n".as_bytes()).unwrap();
        assert_eq!(rows[0].lock, r#"Front, "main""#);
        let err = parse("t_ms,lock,rssi\n1,\"A,-60\n".as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2: unterminated quoted field"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_headers_and_rows() {
        assert!(parse("a,b,c\n1,2,3\n".as_bytes()).is_err());
        assert!(parse("t_ms,lock,rssi\n1,A,loud\n".as_bytes()).is_err());
        assert_eq!(parse("".as_bytes()).unwrap(), vec![]);
        // Column order follows the header.
        let rows = parse("lock,rssi,t_ms\nX,-60,5\n".as_bytes()).unwrap();
        assert_eq!(
            rows[0],
            Row {
                t_ms: 5,
                lock: "X".into(),
                rssi: Some(-60),
                range_m: None,
                motion: None,
                carry: None,
                pace: None,
            }
        );
        assert!(parse("t_ms,lock,rssi,motion\n1,A,-60,running\n".as_bytes()).is_err());
        let err = parse("t_ms,lock,rssi,carry\n1,A,-60,pocket\n".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 2: carry "pocket" is not covered, uncovered or unknown"#
        );
        let err = parse("t_ms,lock,rssi,pace\n1,A,-60,fast\n".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 2: pace "fast" is not a speed in m/s or unknown"#
        );
        assert!(parse("t_ms,lock,rssi,pace\n1,A,-60,-1\n".as_bytes()).is_err());
        let rows = parse("t_ms,lock,rssi,pace\n1,A,-60,0.8\n2,A,-60,Unknown\n".as_bytes());
        let paces: Vec<_> = rows.unwrap().iter().map(|r| r.pace).collect();
        assert_eq!(paces, [Some(Some(0.8)), Some(None)]);
    }

    #[test]
    fn a_motion_column_sets_the_evidence_needed() {
        // The same approach, the wearer reported walking throughout: with walking demanding
        // certainty no trace reaches, no unlock; standing at the end, one.
        let walking = trace().replacen("t_ms,lock,rssi", "t_ms,lock,rssi,motion", 1);
        let mut lines: Vec<String> = walking.lines().map(str::to_owned).collect();
        lines[1].push_str(",Walking");
        let params = WalkUpParams {
            walking_evidence: f64::INFINITY,
            ..WalkUpParams::default()
        };
        let rows = parse(lines.join("\n").as_bytes()).unwrap();
        assert_eq!(rows[0].motion, Some(Motion::Walking));
        assert_eq!(rows[1].motion, None);
        assert_eq!(run(&rows, -59, params, &mut Vec::new()).unwrap(), 0);
        // Still from 9 s (the walk reaches 0.4 m at about 8 s).
        let still_at = lines.iter().position(|l| l.starts_with("9000,A")).unwrap();
        lines[still_at].push_str(",still");
        let rows = parse(lines.join("\n").as_bytes()).unwrap();
        assert_eq!(run(&rows, -59, params, &mut Vec::new()).unwrap(), 1);
    }

    /// `rows` noise-free readings of lock A every 100 ms at `distance(row)` plus `offset_db`,
    /// with a `column` whose first row says `value` and the rest nothing.
    fn walk_to(
        column: &str,
        value: &str,
        rows: u64,
        offset_db: f64,
        distance: impl Fn(u64) -> f64,
    ) -> Vec<Row> {
        let mut s = format!("t_ms,lock,rssi,{column}\n");
        for i in 0..rows {
            let value = if i == 0 { value } else { "" };
            let rssi = -59.0 - 20.0 * distance(i).log10() + offset_db;
            s.push_str(&format!("{},A,{rssi:.0},{value}\n", i * 100));
        }
        parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn a_range_column_decides_where_rssi_cannot() {
        // A bag 14 dB down: RSSI alone never unlocks; ranged rows (some with no RSSI) do, once,
        // near the door.
        let mut s = String::from("t_ms,lock,rssi,range_m\n");
        for i in 0..150u64 {
            let d = (10.0 - 0.12 * i as f64).max(0.5);
            let rssi = -59.0 - 20.0 * d.log10() - 14.0;
            s.push_str(&format!("{},A,{rssi:.0},\n", i * 100));
            s.push_str(&format!("{},A,,{:.2}\n", i * 100 + 50, d + 0.1));
        }
        let rssi_only: String = s
            .lines()
            .filter(|l| !l.contains(",,"))
            .map(|l| format!("{l}\n"))
            .collect();
        let replay = |text: &str| {
            let mut out = Vec::new();
            let n = run(
                &parse(text.as_bytes()).unwrap(),
                -59,
                WalkUpParams::default(),
                &mut out,
            );
            (n.unwrap(), out)
        };
        assert_eq!(replay(&rssi_only).0, 0);
        let (n, out) = replay(&s);
        assert_eq!(n, 1);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        // The median of the last half second is within 1.2 m about when the walker reaches
        // 1 m, 7.5 s in.
        let t = line["t_ms"].as_u64().unwrap();
        assert!((7_400..=8_200).contains(&t), "{t}");
        let err = parse("t_ms,lock,rssi,range_m\n1,A,,near\n".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 2: range_m "near" is not a distance in metres"#
        );
        assert!(parse("t_ms,lock,rssi,range_m\n1,A,,\n".as_bytes()).is_err());
    }

    #[test]
    fn a_carry_column_bounds_the_signal_loss_allowed_for() {
        // Walked up to 2 m and stood there, phone held high (+4 dB). Reported covered, that
        // level is a bagged phone at the door; reported in the hand, or not at all, it is not.
        // (A low bar, so the report alone decides.)
        let replay = |carry: &str| {
            let rows = walk_to("carry", carry, 150, 4.0, |i| {
                (10.0 - 0.12 * i as f64).max(2.0)
            });
            let params = WalkUpParams {
                min_evidence: 2.0,
                ..WalkUpParams::default()
            };
            run(&rows, -59, params, &mut Vec::new()).unwrap()
        };
        assert_eq!(replay("covered"), 1);
        assert_eq!(replay("uncovered"), 0);
        assert_eq!(replay(""), 0);
    }

    #[test]
    fn a_pace_column_lets_a_slow_arrival_unlock_sooner() {
        // A slow walker (0.6 m/s) with a bagged phone (−4 dB) walks up to 0.5 m and stays.
        let replay = |pace: &str| {
            let rows = walk_to("pace", pace, 250, -4.0, |i| {
                (8.0 - 0.06 * i as f64).max(0.5)
            });
            let mut out = Vec::new();
            // A lower bar than the default, which this noise-free bag never reaches.
            let params = WalkUpParams {
                min_evidence: 3.0,
                ..WalkUpParams::default()
            };
            assert_eq!(run(&rows, -59, params, &mut out).unwrap(), 1);
            let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
            line["t_ms"].as_u64().unwrap()
        };
        let (unknown, slow) = (replay(""), replay("0.6"));
        assert!(slow < unknown, "{unknown} ms, with the pace {slow} ms");
    }
}
