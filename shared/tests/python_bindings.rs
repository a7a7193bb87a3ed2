//! Runs `tests/python/test_bindings.py` against uniffi-generated Python bindings of this
//! library: a cheap check that the exported API is usable outside Rust. Builds the
//! cdylib and the `uniffi-bindgen` binary with the same cargo and target directory. Skips (passing) when
//! python3 is missing.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_bindings_work() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not found: skipping");
        return;
    }
    // .../target/debug/deps/python_bindings-xxxx -> .../target/debug
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap().to_path_buf();
    let lib = profile_dir.join("libkeyway_shared.so");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--quiet",
            "-p",
            "keyway-shared",
            "-p",
            "uniffi-bindgen",
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "building the cdylib and uniffi-bindgen failed"
    );
    assert!(lib.exists(), "{} missing", lib.display());
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(profile_dir.join("uniffi-bindgen"))
        .current_dir(workspace)
        .arg("generate")
        .arg("--library")
        .arg(&lib)
        .args(["--language", "python", "--no-format", "--out-dir"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "uniffi-bindgen generate failed");
    std::fs::copy(&lib, out.path().join("libkeyway_shared.so")).unwrap();
    let output = Command::new("python3")
        .arg(manifest.join("tests/python/test_bindings.py"))
        .env("KEYWAY_PY_BINDINGS", out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python test failed:\n{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}
