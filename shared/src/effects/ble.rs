//! BLE operations. Scanning is a stream of advertisements with RSSI; an unlock is a
//! connection over which whole protocol messages are exchanged (the shell does GATT
//! fragmentation with `keyway_protocol::gatt`: write to the control point, reassemble the
//! notified reply).

use crux_core::capability::Operation;
use serde::{Deserialize, Serialize};

/// Start or stop scanning for Keyway doors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanOperation {
    /// Streams [`ScanItem`]s until `Stop`.
    Start,
    /// Notification: stop the running scan.
    Stop,
}

/// A Keyway advertisement as heard by the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeardAdvert {
    /// Transport address or handle to connect to this door later.
    pub peer: String,
    /// Service data payload (`keyway_protocol::advert`, 10 bytes).
    pub payload: Vec<u8>,
    pub rssi: i16,
    /// Wall clock when heard, unix milliseconds.
    pub at_ms: u64,
}

/// A distance the phone's secure ranging (UWB, Bluetooth Channel Sounding) measured to a door
/// it heard, named by the BLE peer it ranged with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranged {
    pub peer: String,
    pub distance_m: f64,
    /// On the clock advertisements are stamped with.
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanItem {
    Advert(HeardAdvert),
    /// Where the radio itself ranges (the simulated radio): a distance to a door it heard.
    Ranged(Ranged),
    /// The scan could not run or stopped on its own (radio off, permission missing).
    Failed {
        message: String,
    },
}

impl Operation for ScanOperation {
    type Output = ScanItem;
}

/// One step of a connection to a door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BleOperation {
    Connect {
        peer: String,
    },
    /// Write one protocol message, wait for the door's reply message.
    Exchange {
        connection: u64,
        message: Vec<u8>,
    },
    /// Notification: close the connection.
    Disconnect {
        connection: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BleOutput {
    Connected { connection: u64 },
    Reply { message: Vec<u8> },
    Error { message: String },
}

impl Operation for BleOperation {
    type Output = BleOutput;
}
