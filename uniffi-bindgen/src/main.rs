//! `uniffi-bindgen`: generates Kotlin, Swift and Python bindings for the Keyway mobile core.
//! Run from inside the workspace (library mode reads `cargo metadata`):
//! `cargo run -p uniffi-bindgen -- generate --library <path>/libkeyway_shared.so --language python --out-dir out --no-format`

fn main() {
    uniffi::uniffi_bindgen_main()
}
