//! The durable event log: every attempt and door-sensor event, appended and fsynced before
//! anyone is told the outcome, uploaded in sequence order, trimmed only after the server
//! acknowledged it.
//!
//! `events.log` holds one record per line: `<check> <json>\n`, where `check` is the first
//! 8 hex digits of SHA-256 over the JSON. A torn or corrupt tail (power loss mid-write) is cut
//! off on open; a corrupt line in the middle is skipped and reported. `events.ack` holds the
//! highest acknowledged sequence number (atomic write), so sequence numbers never restart even
//! when the log is empty.

use crate::fsutil;
use keyway_channel::DoorEvent;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const LOG_FILE: &str = "events.log";
const ACK_FILE: &str = "events.ack";

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("event log I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("event log has an uncut failed append; refusing to append until it is rewritten")]
    Poisoned,
}

/// What [`EventLog::open`] had to repair.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of a torn or corrupt tail that were cut off.
    pub truncated_tail_bytes: u64,
    /// Corrupt records found before the tail and skipped.
    pub skipped_records: usize,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct AckFile {
    acked_up_to: u64,
}

/// Append-only, fsynced event log with acknowledgement-based trimming.
#[derive(Debug)]
pub struct EventLog {
    dir: PathBuf,
    file: File,
    pending: VecDeque<DoorEvent>,
    acked: u64,
    last_seq: u64,
    /// A failed append could not be cut off (see [`EventLog::append`]).
    poisoned: bool,
}

fn check(json: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, json);
    hex::encode(&d.as_ref()[..4])
}

fn encode_record(event: &DoorEvent) -> Vec<u8> {
    let json = serde_json::to_vec(event).expect("events serialize");
    let mut line = check(&json).into_bytes();
    line.push(b' ');
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

fn decode_record(line: &[u8]) -> Option<DoorEvent> {
    let (tag, json) = (line.get(..8)?, line.get(9..)?);
    if line.get(8) != Some(&b' ') || tag != check(json).as_bytes() {
        return None;
    }
    serde_json::from_slice(json).ok()
}

impl EventLog {
    /// Opens (or creates) the log in `dir`, repairing a torn tail.
    pub fn open(dir: &Path) -> Result<(Self, Recovery), EventLogError> {
        let path = dir.join(LOG_FILE);
        let acked = fsutil::read_json::<AckFile>(&dir.join(ACK_FILE))?
            .map(|a| a.acked_up_to)
            .unwrap_or(0);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut recovery = Recovery::default();
        let mut pending = VecDeque::new();
        let mut last_seq = acked;
        let mut good_end = 0usize;
        let mut offset = 0usize;
        let mut corrupt_since_good = 0usize;
        while offset < bytes.len() {
            let Some(nl) = bytes[offset..].iter().position(|b| *b == b'\n') else {
                break; // torn final line, handled below
            };
            let line = &bytes[offset..offset + nl];
            offset += nl + 1;
            match decode_record(line) {
                Some(ev) if ev.seq > last_seq => {
                    last_seq = ev.seq;
                    recovery.skipped_records += corrupt_since_good;
                    corrupt_since_good = 0;
                    good_end = offset;
                    if ev.seq > acked {
                        pending.push_back(ev);
                    }
                }
                Some(_) => {
                    // Already acknowledged (trim interrupted) or out of order: not pending.
                    recovery.skipped_records += corrupt_since_good;
                    corrupt_since_good = 0;
                    good_end = offset;
                }
                None => corrupt_since_good += 1,
            }
        }
        let needs_rewrite = good_end < bytes.len() || recovery.skipped_records > 0;
        recovery.truncated_tail_bytes = (bytes.len() - good_end) as u64;
        if needs_rewrite {
            tracing::warn!(
                truncated_tail_bytes = recovery.truncated_tail_bytes,
                skipped_records = recovery.skipped_records,
                "event log repaired after an interrupted write"
            );
        }
        let file = open_append(&path)?;
        // Make a newly created log's directory entry durable before the first append.
        fsutil::sync_dir(dir)?;
        let mut log = Self {
            dir: dir.to_path_buf(),
            file,
            pending,
            acked,
            last_seq,
            poisoned: false,
        };
        if needs_rewrite {
            log.rewrite()?;
        }
        Ok((log, recovery))
    }

    /// Appends `event` with the next sequence number and fsyncs it; returns the sequence.
    /// A failed append (a full disk, an I/O error) is cut off again, so the next record
    /// starts on a line of its own and takes the same sequence number, as if this one had
    /// never been tried: otherwise it would be glued to the fragment and skipped as corrupt
    /// on the next start, although it may have been acted on.
    pub fn append(&mut self, mut event: DoorEvent) -> Result<DoorEvent, EventLogError> {
        if self.poisoned {
            return Err(EventLogError::Poisoned);
        }
        event.seq = self.last_seq + 1;
        let end = self.file.metadata()?.len();
        let written = self
            .file
            .write_all(&encode_record(&event))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(end).and_then(|()| self.file.sync_data()) {
                // The fragment stays; open() cuts a torn tail, but a later record glued to
                // it would be lost, so refuse to append until the log is reopened.
                tracing::error!(error = %cut, "cannot cut a failed append off the event log");
                self.poisoned = true;
            }
            return Err(e.into());
        }
        self.last_seq = event.seq;
        self.pending.push_back(event.clone());
        Ok(event)
    }

    /// Events not yet acknowledged with `seq > after`, oldest first, at most `max`.
    pub fn pending_after(&self, after: u64, max: usize) -> Vec<DoorEvent> {
        self.pending
            .iter()
            .filter(|e| e.seq > after)
            .take(max)
            .cloned()
            .collect()
    }

    pub fn pending_count(&self) -> u64 {
        self.pending.len() as u64
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Every unacknowledged event (recovery replays them into the door state).
    pub fn pending(&self) -> impl Iterator<Item = &DoorEvent> {
        self.pending.iter()
    }

    /// The server stored everything up to `up_to`: remember that, then trim the log.
    pub fn ack(&mut self, up_to: u64) -> Result<(), EventLogError> {
        let up_to = up_to.min(self.last_seq);
        if up_to <= self.acked {
            return Ok(());
        }
        // The ack file is the truth; a crash before the rewrite only leaves acked lines behind,
        // which open() skips.
        fsutil::write_json(
            &self.dir.join(ACK_FILE),
            &AckFile { acked_up_to: up_to },
            0o600,
        )?;
        self.acked = up_to;
        while self.pending.front().is_some_and(|e| e.seq <= up_to) {
            self.pending.pop_front();
        }
        self.rewrite()
    }

    fn rewrite(&mut self) -> Result<(), EventLogError> {
        let mut bytes = Vec::new();
        for e in &self.pending {
            bytes.extend_from_slice(&encode_record(e));
        }
        let path = self.dir.join(LOG_FILE);
        fsutil::atomic_write(&path, &bytes, 0o600)?;
        self.file = open_append(&path)?;
        // The rewritten file holds whole records only.
        self.poisoned = false;
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyway_channel::DoorEventKind;
    use keyway_protocol::Id;

    fn ev() -> DoorEvent {
        DoorEvent {
            seq: 0,
            at_ms: 1,
            kind: DoorEventKind::DoorOpened,
            lock: Id([1; 16]),
            method: None,
            granted: None,
            reason: None,
            credential: None,
            holder: None,
            command_id: None,
        }
    }

    #[test]
    fn sequences_survive_reopen_and_ack_trims() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, rec) = EventLog::open(dir.path()).unwrap();
        assert_eq!(rec, Recovery::default());
        for _ in 0..5 {
            log.append(ev()).unwrap();
        }
        log.ack(3).unwrap();
        drop(log);
        let (mut log, _) = EventLog::open(dir.path()).unwrap();
        let seqs: Vec<u64> = log.pending_after(0, 100).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4, 5]);
        log.ack(5).unwrap();
        drop(log);
        let (mut log, _) = EventLog::open(dir.path()).unwrap();
        assert_eq!(log.pending_count(), 0);
        assert_eq!(log.append(ev()).unwrap().seq, 6);
    }

    #[test]
    fn torn_and_corrupt_lines_are_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = EventLog::open(dir.path()).unwrap();
        for _ in 0..3 {
            log.append(ev()).unwrap();
        }
        drop(log);
        let path = dir.path().join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        // Corrupt the middle record's JSON, then add a torn tail.
        let second = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
        bytes[second + 20] ^= 0x20;
        bytes.extend_from_slice(b"0123abcd {\"seq\":4,");
        fs::write(&path, &bytes).unwrap();
        let (mut log, rec) = EventLog::open(dir.path()).unwrap();
        assert_eq!(rec.skipped_records, 1);
        assert!(rec.truncated_tail_bytes > 0);
        let seqs: Vec<u64> = log.pending_after(0, 100).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 3]);
        assert_eq!(log.append(ev()).unwrap().seq, 4);
        drop(log);
        let (log, rec) = EventLog::open(dir.path()).unwrap();
        assert_eq!(rec, Recovery::default());
        assert_eq!(log.pending_count(), 3);
    }
}
