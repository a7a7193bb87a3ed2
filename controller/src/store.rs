//! What the controller keeps on disk besides identity and events, so it serves its doors
//! offline after a restart: the last configuration, revocation list and trusted-time anchor
//! (`config.json`, `revocations.json`, `clock.json`) and the door state that makes
//! actuation at-most-once and enforces use limits (`state.json`). All written atomically.

use crate::fsutil;
use keyway_channel::{CommandResult, ControllerConfig};
use keyway_protocol::Id;
use keyway_protocol::handshake::DoorMemory;
use keyway_protocol::time::{TimeBounds, TrustedClock};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

/// How many cloud command results are remembered for de-duplication.
pub const COMMAND_RESULTS_KEPT: usize = 4096;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedConfig {
    pub config: ControllerConfig,
    /// Local wall clock when it arrived, unix ms (for "config age").
    pub received_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedRevocations {
    /// The signed list as received (base64); re-verified on load.
    pub list: String,
    pub serial: u64,
}

/// Door state that must survive restarts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DoorState {
    /// Highest event sequence whose effects are recorded here; later events in the log are
    /// replayed on start (a crash between the log append and this file's write).
    pub applied_seq: u64,
    /// Per lock: executed BLE commands and the use counts of use-limited credentials.
    /// Files written before the counts kept credentials' ends still load (see
    /// [`keyway_protocol::handshake::UseCount`]).
    pub memories: BTreeMap<Id, DoorMemory>,
    /// Cloud command results by command id, oldest first.
    pub commands: VecDeque<CommandResult>,
}

impl DoorState {
    pub fn command(&self, id: Id) -> Option<&CommandResult> {
        self.commands.iter().find(|c| c.command_id == id)
    }

    pub fn remember_command(&mut self, result: CommandResult) {
        if self.commands.len() == COMMAND_RESULTS_KEPT {
            self.commands.pop_front();
        }
        self.commands.push_back(result);
    }

    /// Drops, on every lock, the use counts of credentials that trusted time shows ended
    /// (see [`DoorMemory::prune_uses`]); returns how many.
    pub fn prune_uses(&mut self, time: TimeBounds) -> usize {
        self.memories.values_mut().map(|m| m.prune_uses(time)).sum()
    }
}

/// File locations inside the data directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn load_config(&self) -> std::io::Result<Option<CachedConfig>> {
        fsutil::read_json(&self.path("config.json"))
    }

    pub fn save_config(&self, c: &CachedConfig) -> std::io::Result<()> {
        fsutil::write_json(&self.path("config.json"), c, 0o600)
    }

    pub fn load_revocations(&self) -> std::io::Result<Option<CachedRevocations>> {
        fsutil::read_json(&self.path("revocations.json"))
    }

    pub fn save_revocations(&self, r: &CachedRevocations) -> std::io::Result<()> {
        fsutil::write_json(&self.path("revocations.json"), r, 0o600)
    }

    /// The last `status.json` the running controller wrote (its `updated_at_ms` is the
    /// latest host time this data directory has seen).
    pub fn load_status(&self) -> std::io::Result<Option<crate::status::Status>> {
        fsutil::read_json(&self.path(crate::status::STATUS_FILE))
    }

    pub fn load_clock(&self) -> std::io::Result<Option<TrustedClock>> {
        fsutil::read_json(&self.path("clock.json"))
    }

    /// Forgets the trusted-time anchor (the next run must not take it up again).
    pub fn clear_clock(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.path("clock.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn save_clock(&self, c: &TrustedClock) -> std::io::Result<()> {
        fsutil::write_json(&self.path("clock.json"), c, 0o600)
    }

    pub fn load_state(&self) -> std::io::Result<Option<DoorState>> {
        fsutil::read_json(&self.path("state.json"))
    }

    pub fn save_state(&self, s: &DoorState) -> std::io::Result<()> {
        fsutil::write_json(&self.path("state.json"), s, 0o600)
    }
}
