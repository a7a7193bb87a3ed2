//! A full disk mid-append: the failed record is cut off again, so the next one is whole,
//! takes the same sequence number, and survives a reopen. The disk is "filled" with the
//! process's file size limit (RLIMIT_FSIZE, set from outside with util-linux's `prlimit`):
//! writes past it fail with EFBIG. The limit applies to the whole process, so this test has
//! a binary of its own.

use std::process::Command;

use keyway_channel::{DoorEvent, DoorEventKind, Method};
use keyway_controller::events::EventLog;
use keyway_protocol::{Id, Reason};

fn attempt(lock: u8) -> DoorEvent {
    DoorEvent {
        seq: 0,
        at_ms: 1_700_000_000_000,
        kind: DoorEventKind::UnlockAttempt,
        lock: Id([lock; 16]),
        method: Some(Method::Ble),
        granted: Some(false),
        reason: Some(Reason::MalformedFrame),
        credential: None,
        holder: None,
        command_id: None,
    }
}

/// Sets this process's file size limit (`None`: unlimited).
fn set_file_size_limit(bytes: Option<u64>) {
    let soft = bytes.map_or("unlimited".to_string(), |b| b.to_string());
    let status = Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string()])
        .arg(format!("--fsize={soft}:unlimited"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success());
}

#[test]
fn a_failed_append_is_cut_off_and_the_next_one_survives() {
    // Writing past the limit raises SIGXFSZ, which would kill the process; ignored, the
    // write fails with EFBIG instead. Std Rust cannot ignore a signal, but an ignored signal
    // stays ignored across exec: so this test runs itself again under `sh` with `trap ''`.
    if std::env::var_os("KEYWAY_TEST_XFSZ_IGNORED").is_none() {
        let name = "a_failed_append_is_cut_off_and_the_next_one_survives";
        let out = Command::new("sh")
            .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture"])
            .env("KEYWAY_TEST_XFSZ_IGNORED", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let (mut log, _) = EventLog::open(dir.path()).unwrap();
    log.append(attempt(1)).unwrap();
    let size = std::fs::metadata(dir.path().join("events.log"))
        .unwrap()
        .len();

    // Room for part of a record only: the write fails after some bytes landed.
    set_file_size_limit(Some(size + 20));
    let err = log.append(attempt(2)).unwrap_err();
    assert!(err.to_string().contains("I/O"), "{err}");
    assert_eq!(
        std::fs::metadata(dir.path().join("events.log"))
            .unwrap()
            .len(),
        size,
        "the fragment is cut off"
    );
    assert_eq!(log.last_seq(), 1);

    // Space again: the next record is whole and takes the next number.
    set_file_size_limit(None);
    let third = log.append(attempt(3)).unwrap();
    assert_eq!(third.seq, 2);
    drop(log);

    let (log, recovery) = EventLog::open(dir.path()).unwrap();
    assert_eq!(recovery.truncated_tail_bytes, 0);
    assert_eq!(recovery.skipped_records, 0);
    let kept: Vec<_> = log.pending().map(|e| (e.seq, e.lock)).collect();
    assert_eq!(kept, [(1, Id([1; 16])), (2, Id([3; 16]))]);
}
