//! The uniffi edge: a small object API for Kotlin, Swift and Python shells. Crux types stay
//! behind it; events cross as JSON, the view model as typed records (or JSON), errors as [`KeywayError`], and no
//! panic crosses the boundary (each call runs under `catch_unwind`).
//!
//! ```text
//! core = KeywayCore(CoreConfig(api_base, data_dir), observer)        # observer.on_render()
//! core.send_event('{"login": {"email": "..", "password": ".."}}')
//! view = core.view()                    # typed records; core.view_json() gives the same as JSON
//! ```
//! Shells with their own BLE stack or secure-hardware key use
//! [`KeywayCore::with_platform`] and feed advertisements with [`KeywayCore::ble_advert`];
//! [`gatt_layout`], [`gatt_fragment`] and [`GattReassembler`] keep the GATT framing in Rust.

use crate::app::Event;
use crate::app::view::ViewModel;
use crate::effects::HeardAdvert;
use crate::runtime::ble::{BleError, BleTransport, Heard, NoRadio, now_ms};
use crate::runtime::{DeviceKey, RenderObserver, Runtime, RuntimeConfig, SharedSigner};
use crate::walkup::motion::MotionDetector;
use crate::walkup::pace::PaceMeter;
use crate::walkup::{Carry, Motion};
use futures::future::BoxFuture;
use keyway_protocol::keys::der_signature_to_fixed;
use keyway_protocol::{PublicKey, Signature};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum KeywayError {
    #[error("invalid event: {message}")]
    InvalidEvent { message: String },
    #[error("storage: {message}")]
    Storage { message: String },
    #[error("platform: {message}")]
    Platform { message: String },
    #[error("internal error: {message}")]
    Internal { message: String },
}

/// A foreign implementation (BLE, key) that throws something other than `KeywayError`
/// becomes `Platform` instead of a panic on the Rust side.
impl From<uniffi::UnexpectedUniFFICallbackError> for KeywayError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        KeywayError::Platform { message: e.reason }
    }
}

fn guarded<T>(f: impl FnOnce() -> Result<T, KeywayError>) -> Result<T, KeywayError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let message = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        Err(KeywayError::Internal { message })
    })
}

/// [`guarded`] for the calls that return nothing (adverts and sensor readings, sent many
/// times a second and never awaited): a panic is logged and the reading dropped, so their
/// signatures stay plain functions for the shells.
fn guarded_quietly(call: &str, f: impl FnOnce()) {
    if let Err(e) = guarded(|| {
        f();
        Ok(())
    }) {
        tracing::error!("KeywayCore.{call}: {e}; the reading was dropped");
    }
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct CoreConfig {
    /// Server base URL, e.g. `https://keyway.example`.
    pub api_base: String,
    /// Directory for the session, caches and the software device key.
    pub data_dir: String,
}

/// Told after every view model change; read the view with `view_json`.
#[uniffi::export(foreign)]
pub trait CoreObserver: Send + Sync {
    fn on_render(&self);
}

/// A shell's own BLE stack. Calls block the calling runtime thread; adverts are pushed with
/// [`KeywayCore::ble_advert`] between `start_scan` and `stop_scan`.
#[uniffi::export(foreign)]
pub trait BleShell: Send + Sync {
    fn start_scan(&self) -> Result<(), KeywayError>;
    fn stop_scan(&self);
    fn connect(&self, peer: String) -> Result<u64, KeywayError>;
    /// Writes one protocol message to the door's control point and returns its reply message.
    /// The shell splits the message with [`gatt_fragment`] and joins the door's notifications
    /// with a [`GattReassembler`], so the GATT framing stays in Rust.
    fn exchange(&self, connection: u64, message: Vec<u8>) -> Result<Vec<u8>, KeywayError>;
    fn disconnect(&self, connection: u64);
}

/// A device key held by the platform (Android Keystore, Secure Enclave).
#[uniffi::export(foreign)]
pub trait KeyShell: Send + Sync {
    /// The P-256 public key: 65 bytes uncompressed (`04||X||Y`), or the 91-byte DER
    /// SubjectPublicKeyInfo (Android's `getEncoded()`). Anything else makes
    /// `with_platform` fail with `Platform`.
    fn public_key(&self) -> Vec<u8>;
    /// ECDSA P-256 SHA-256 signature, fixed 64-byte or DER.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, KeywayError>;
}

/// The DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, a 66-byte
/// BIT STRING) before its 65-byte uncompressed point: what Android's
/// `PublicKey.getEncoded()` gives.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The platform key's public key: a 65-byte uncompressed P-256 point (`04||X||Y`), or the
/// same in a P-256 SubjectPublicKeyInfo (91 bytes of DER).
fn platform_public_key(bytes: &[u8]) -> Result<PublicKey, KeywayError> {
    let point = match bytes.len() {
        91 if bytes[..26] == P256_SPKI_PREFIX => &bytes[26..],
        _ => bytes,
    };
    PublicKey::from_slice(point).map_err(|_| KeywayError::Platform {
        message: format!(
            "the platform key's public key is {} bytes starting {}: expected a 65-byte \
             uncompressed P-256 point (04||X||Y) or a 91-byte P-256 SubjectPublicKeyInfo (DER)",
            bytes.len(),
            hex::encode(&bytes[..bytes.len().min(8)])
        ),
    })
}

/// A platform key, its public key read and checked once when the core is made.
struct ForeignKey {
    shell: Arc<dyn KeyShell>,
    public: PublicKey,
}

impl ForeignKey {
    fn new(shell: Arc<dyn KeyShell>) -> Result<Self, KeywayError> {
        let public = platform_public_key(&shell.public_key())?;
        Ok(Self { shell, public })
    }
}

impl DeviceKey for ForeignKey {
    fn device_public_key(&self) -> PublicKey {
        self.public
    }

    /// The shell's own error when it cannot sign (the user cancelled, the key is gone).
    fn device_sign(&self, msg: &[u8]) -> Result<Signature, String> {
        let sig = self.shell.sign(msg.to_vec()).map_err(|e| match e {
            KeywayError::Platform { message } => format!("the device key cannot sign: {message}"),
            other => format!("the device key cannot sign: {other}"),
        })?;
        match <[u8; 64]>::try_from(sig.as_slice()) {
            Ok(fixed) => Ok(Signature(fixed)),
            Err(_) => der_signature_to_fixed(&sig).map_err(|e| {
                format!(
                    "the device key's signature ({} bytes) is neither 64 bytes nor DER: {e}",
                    sig.len()
                )
            }),
        }
    }
}

struct ForeignBle {
    shell: Arc<dyn BleShell>,
    adverts: Arc<Mutex<Option<mpsc::Sender<Heard>>>>,
}

impl ForeignBle {
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<dyn BleShell>) -> T + Send + 'static,
    ) -> BoxFuture<'static, Result<T, BleError>> {
        let shell = self.shell.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(shell))
                .await
                .map_err(BleError::new)
        })
    }
}

impl BleTransport for ForeignBle {
    fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<Heard>, BleError>> {
        let (tx, rx) = mpsc::channel(256);
        *self.adverts.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        let started = self.blocking(|s| s.start_scan());
        Box::pin(async move {
            started.await?.map_err(BleError::new)?;
            Ok(rx)
        })
    }
    fn stop_scan(&self) -> BoxFuture<'static, ()> {
        self.adverts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let f = self.blocking(|s| s.stop_scan());
        Box::pin(async move {
            let _ = f.await;
        })
    }
    fn connect(&self, peer: String) -> BoxFuture<'static, Result<u64, BleError>> {
        let f = self.blocking(move |s| s.connect(peer));
        Box::pin(async move { f.await?.map_err(BleError::new) })
    }
    fn exchange(&self, c: u64, m: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, BleError>> {
        let f = self.blocking(move |s| s.exchange(c, m));
        Box::pin(async move { f.await?.map_err(BleError::new) })
    }
    fn disconnect(&self, c: u64) -> BoxFuture<'static, ()> {
        let f = self.blocking(move |s| s.disconnect(c));
        Box::pin(async move {
            let _ = f.await;
        })
    }
}

/// What the core makes of the shell's accelerometer samples.
#[derive(Debug, Default)]
struct Accelerometer {
    motion: MotionDetector,
    pace: PaceMeter,
}

/// The mobile core with its Rust effect runtime.
#[derive(uniffi::Object)]
pub struct KeywayCore {
    runtime: Runtime,
    adverts: Arc<Mutex<Option<mpsc::Sender<Heard>>>>,
    accelerometer: Mutex<Accelerometer>,
    // Dropped last: the runtime's tasks live here.
    _tokio: tokio::runtime::Runtime,
}

impl std::fmt::Debug for KeywayCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywayCore").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl KeywayCore {
    /// A core with no Bluetooth (cloud unlocks only) and a software device key.
    #[uniffi::constructor]
    pub fn new(
        config: CoreConfig,
        observer: Arc<dyn CoreObserver>,
    ) -> Result<Arc<Self>, KeywayError> {
        Self::with_platform(config, observer, None, None)
    }

    /// A core using the shell's BLE stack and/or device key.
    #[uniffi::constructor]
    pub fn with_platform(
        config: CoreConfig,
        observer: Arc<dyn CoreObserver>,
        ble: Option<Arc<dyn BleShell>>,
        key: Option<Arc<dyn KeyShell>>,
    ) -> Result<Arc<Self>, KeywayError> {
        guarded(|| {
            let tokio = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("keyway-core")
                .enable_all()
                .build()
                .map_err(|e| KeywayError::Internal {
                    message: e.to_string(),
                })?;
            let adverts = Arc::new(Mutex::new(None));
            let transport: Arc<dyn BleTransport> = match ble {
                Some(shell) => Arc::new(ForeignBle {
                    shell,
                    adverts: adverts.clone(),
                }),
                None => Arc::new(NoRadio),
            };
            let signer: Option<SharedSigner> = match key {
                Some(k) => Some(Arc::new(ForeignKey::new(k)?)),
                None => None,
            };
            let render: RenderObserver = Arc::new(move || observer.on_render());
            let runtime = Runtime::with_handle(
                RuntimeConfig {
                    api_base: config.api_base,
                    data_dir: config.data_dir.into(),
                    ca_file: None,
                },
                transport,
                signer,
                render,
                tokio.handle().clone(),
            )
            .map_err(|e| match e.kind() {
                // The file store fails with a specific kind; `Other` is the HTTPS set-up.
                std::io::ErrorKind::Other => KeywayError::Platform {
                    message: e.to_string(),
                },
                _ => KeywayError::Storage {
                    message: e.to_string(),
                },
            })?;
            Ok(Arc::new(Self {
                runtime,
                adverts,
                accelerometer: Mutex::default(),
                _tokio: tokio,
            }))
        })
    }

    /// Sends a shell event as JSON, e.g. `"logout"` or `{"unlock": {"lock": "<id>"}}`.
    pub fn send_event(&self, event_json: String) -> Result<(), KeywayError> {
        guarded(|| {
            let event: Event =
                serde_json::from_str(&event_json).map_err(|e| KeywayError::InvalidEvent {
                    message: e.to_string(),
                })?;
            self.runtime.send(event);
            Ok(())
        })
    }

    /// The current view model as typed records (what Kotlin and Swift screens render).
    pub fn view(&self) -> Result<ViewModel, KeywayError> {
        guarded(|| Ok(self.runtime.view()))
    }

    /// The current view model as JSON, the same fields as [`KeywayCore::view`].
    pub fn view_json(&self) -> Result<String, KeywayError> {
        guarded(|| {
            serde_json::to_string(&self.runtime.view()).map_err(|e| KeywayError::Internal {
                message: e.to_string(),
            })
        })
    }

    /// An advertisement heard by the shell's BLE stack while scanning.
    pub fn ble_advert(&self, peer: String, payload: Vec<u8>, rssi: i16) {
        guarded_quietly("ble_advert", || {
            let tx = self
                .adverts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(tx) = tx {
                let _ = tx.try_send(Heard::Advert(HeardAdvert {
                    peer,
                    payload,
                    rssi,
                    at_ms: now_ms(),
                }));
            }
        })
    }
}

#[uniffi::export]
impl KeywayCore {
    /// One accelerometer sample in m/s² (gravity included, any axes), 50–100 a second while
    /// walk-up is scanning. The core tells walking from standing (see `walkup::motion`),
    /// estimates the walking pace from the steps (see `walkup::pace`), and sends the walk-up
    /// engine only the changes.
    pub fn accelerometer(&self, x: f64, y: f64, z: f64) {
        guarded_quietly("accelerometer", || {
            let now = now_ms();
            self.accelerometer_changed(|a| {
                (a.motion.push(now, x, y, z), a.pace.push(now, x, y, z))
            });
        })
    }

    /// The shell stopped the accelerometer: the engine goes back to RSSI alone.
    pub fn accelerometer_stopped(&self) {
        guarded_quietly("accelerometer_stopped", || {
            self.accelerometer_changed(|a| (a.motion.stop(), a.pace.stop()));
        })
    }

    /// The proximity sensor (the one that darkens the screen during a call) became covered
    /// (a pocket or a bag) or uncovered (in the hand); shells send its changes while walk-up
    /// is scanning.
    pub fn proximity(&self, covered: bool) {
        guarded_quietly("proximity", || {
            let carry = if covered {
                Carry::Covered
            } else {
                Carry::Uncovered
            };
            self.runtime.send(Event::SetCarry(carry));
        })
    }

    /// The shell stopped the proximity sensor: the engine no longer knows how it is carried.
    pub fn proximity_stopped(&self) {
        guarded_quietly("proximity_stopped", || {
            self.runtime.send(Event::SetCarry(Carry::Unknown));
        })
    }

    /// A distance in metres that the platform's secure ranging (UWB: Nearby Interaction,
    /// androidx.core.uwb; or Bluetooth Channel Sounding) measured to the door heard as
    /// `peer` (the same peer as its advertisements). Walk-up weighs the distances beside the
    /// RSSI, learning how noisy the stack is, and while they come from a precise stack they
    /// also gate it; a failed round may be sent as NaN or a negative value and is ignored.
    pub fn ranging(&self, peer: String, distance_m: f64) {
        guarded_quietly("ranging", || {
            self.runtime.send(Event::Ranged(crate::app::walkup::Ranged {
                peer,
                distance_m,
                at_ms: now_ms(),
            }));
        })
    }
}

impl KeywayCore {
    fn accelerometer_changed(
        &self,
        f: impl FnOnce(&mut Accelerometer) -> (Option<Motion>, Option<Option<f64>>),
    ) {
        let (motion, pace) = f(&mut self.accelerometer.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(motion) = motion {
            self.runtime.send(Event::SetMotion(motion));
        }
        if let Some(pace) = pace {
            self.runtime.send(Event::SetPace(pace));
        }
    }
}

/// Decodes a Keyway advertisement payload to `(short id hex, tx power, proximity code)`;
/// handy for shells showing raw scan results.
#[uniffi::export]
pub fn decode_advert(payload: Vec<u8>) -> Result<AdvertInfo, KeywayError> {
    guarded(|| {
        let a = keyway_protocol::advert::Advertisement::decode(&payload).map_err(|e| {
            KeywayError::InvalidEvent {
                message: e.to_string(),
            }
        })?;
        Ok(AdvertInfo {
            short_id: hex::encode(a.lock_short_id),
            tx_power: a.tx_power,
            proximity_code: a.proximity_code,
            walk_up: a.walk_up(),
        })
    })
}

/// The Keyway GATT service a shell's BLE stack talks to.
#[derive(Debug, Clone, uniffi::Record)]
pub struct GattLayout {
    /// Service UUID; adverts carry their payload as service data under it.
    pub service_uuid: String,
    /// Phone → door fragments (write without response).
    pub control_point_uuid: String,
    /// Door → phone fragments (notify).
    pub response_uuid: String,
}

#[uniffi::export]
pub fn gatt_layout() -> GattLayout {
    use keyway_protocol::gatt;
    GattLayout {
        service_uuid: gatt::SERVICE_UUID.into(),
        control_point_uuid: gatt::CONTROL_POINT_UUID.into(),
        response_uuid: gatt::RESPONSE_UUID.into(),
    }
}

/// Splits a protocol message into the ATT payloads to write for the link's ATT MTU.
#[uniffi::export]
pub fn gatt_fragment(message: Vec<u8>, att_mtu: u32) -> Result<Vec<Vec<u8>>, KeywayError> {
    guarded(|| {
        keyway_protocol::gatt::fragment(&message, att_mtu as usize).map_err(|e| {
            KeywayError::InvalidEvent {
                message: e.to_string(),
            }
        })
    })
}

/// Joins the door's notifications into one reply message (one per exchange).
#[derive(Debug, Default, uniffi::Object)]
pub struct GattReassembler(Mutex<keyway_protocol::gatt::Reassembler>);

#[uniffi::export]
impl GattReassembler {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Feeds one notification; returns the message when its last fragment arrives. A bad
    /// fragment is an error and drops the partial message.
    pub fn push(&self, fragment: Vec<u8>) -> Result<Option<Vec<u8>>, KeywayError> {
        guarded(|| {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&fragment)
                .map_err(|e| KeywayError::InvalidEvent {
                    message: e.to_string(),
                })
        })
    }
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct AdvertInfo {
    pub short_id: String,
    pub tx_power: i8,
    pub proximity_code: u32,
    pub walk_up: bool,
}

/// The core library version.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyway_protocol::SigningKey;
    use ring::rand::SystemRandom;

    #[derive(Debug)]
    struct Quiet;

    impl CoreObserver for Quiet {
        fn on_render(&self) {}
    }

    /// A platform key that reports `public` and signs with `key`, or fails with `refusal`.
    struct TestKey {
        public: Vec<u8>,
        key: SigningKey,
        refusal: Option<String>,
    }

    impl TestKey {
        fn new(encode: impl FnOnce(&[u8]) -> Vec<u8>) -> Self {
            let key = SigningKey::generate(&SystemRandom::new()).unwrap().0;
            Self {
                public: encode(&key.public_key().0),
                key,
                refusal: None,
            }
        }
    }

    impl KeyShell for TestKey {
        fn public_key(&self) -> Vec<u8> {
            self.public.clone()
        }

        fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, KeywayError> {
            match &self.refusal {
                Some(message) => Err(KeywayError::Platform {
                    message: message.clone(),
                }),
                None => Ok(self
                    .key
                    .sign(&SystemRandom::new(), &message)
                    .unwrap()
                    .0
                    .to_vec()),
            }
        }
    }

    fn spki(point: &[u8]) -> Vec<u8> {
        [&P256_SPKI_PREFIX[..], point].concat()
    }

    fn core_with_key(key: TestKey) -> Result<Arc<KeywayCore>, KeywayError> {
        let dir = tempfile::tempdir().unwrap();
        KeywayCore::with_platform(
            CoreConfig {
                api_base: "http://127.0.0.1:9".into(),
                data_dir: dir.path().to_string_lossy().into_owned(),
            },
            Arc::new(Quiet),
            None,
            Some(Arc::new(key)),
        )
    }

    #[test]
    fn a_platform_key_is_a_point_or_its_spki() {
        let point = TestKey::new(<[u8]>::to_vec).public;
        assert_eq!(platform_public_key(&point).unwrap().0.as_slice(), point);
        assert_eq!(spki(&point).len(), 91);
        assert_eq!(
            platform_public_key(&spki(&point)).unwrap().0.as_slice(),
            point
        );
        for bad in [
            point[1..].to_vec(),                        // 64 bytes: X||Y without the 04
            spki(&point)[..90].to_vec(),                // truncated DER
            [&[0x31][..], &spki(&point)[1..]].concat(), // 91 bytes, not a P-256 SPKI
            vec![],
        ] {
            match platform_public_key(&bad) {
                Err(KeywayError::Platform { message }) => {
                    assert!(
                        message.contains(&format!("is {} bytes", bad.len())),
                        "{message}"
                    )
                }
                other => panic!("{} bytes accepted: {other:?}", bad.len()),
            }
        }
    }

    #[test]
    fn with_platform_refuses_a_public_key_it_cannot_use() {
        // Before, a wrong-length key was replaced by zeros and registered as such.
        let err = core_with_key(TestKey::new(|p| p[1..].to_vec())).unwrap_err();
        assert!(
            matches!(&err, KeywayError::Platform { message } if message.contains("64 bytes")),
            "{err:?}"
        );
        // Android's DER encoding is taken as the point it holds.
        assert!(core_with_key(TestKey::new(spki)).is_ok());
        let shell = TestKey::new(spki);
        let expected = shell.key.public_key();
        let foreign = ForeignKey::new(Arc::new(shell)).unwrap();
        assert_eq!(foreign.device_public_key(), expected);
    }

    #[test]
    fn a_platform_signing_failure_keeps_its_message() {
        let key = TestKey {
            refusal: Some("user cancelled the biometric prompt".into()),
            ..TestKey::new(<[u8]>::to_vec)
        };
        let foreign = ForeignKey::new(Arc::new(key)).unwrap();
        let err = foreign.device_sign(b"hello").unwrap_err();
        assert!(err.contains("user cancelled the biometric prompt"), "{err}");
        // And a working one signs (64-byte fixed signatures pass through).
        let ok = ForeignKey::new(Arc::new(TestKey::new(<[u8]>::to_vec))).unwrap();
        let sig = ok.device_sign(b"hello").unwrap();
        assert!(ok.device_public_key().verify(b"hello", &sig));
    }

    /// An observer that panics once armed, as a shell's buggy callback might.
    #[derive(Debug, Default)]
    struct Panicky(std::sync::atomic::AtomicBool);

    impl CoreObserver for Panicky {
        fn on_render(&self) {
            if self.0.load(std::sync::atomic::Ordering::SeqCst) {
                panic!("observer exploded");
            }
        }
    }

    #[test]
    fn sensor_calls_never_unwind_into_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let observer = Arc::new(Panicky::default());
        let core = KeywayCore::new(
            CoreConfig {
                api_base: "http://127.0.0.1:9".into(),
                data_dir: dir.path().to_string_lossy().into_owned(),
            },
            observer.clone(),
        )
        .unwrap();
        observer.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let calls: [(&str, &dyn Fn()); 7] = [
            ("proximity", &|| core.proximity(true)),
            ("proximity_stopped", &|| core.proximity_stopped()),
            ("accelerometer", &|| core.accelerometer(0.0, 0.0, 9.8)),
            ("accelerometer_stopped", &|| core.accelerometer_stopped()),
            ("ranging", &|| core.ranging("door".into(), 1.0)),
            ("ble_advert", &|| {
                core.ble_advert("door".into(), vec![1], -60)
            }),
            ("the helper itself", &|| {
                guarded_quietly("test", || panic!("boom"))
            }),
        ];
        for (name, call) in calls {
            let unwound = std::panic::catch_unwind(AssertUnwindSafe(call)).is_err();
            assert!(!unwound, "{name} let a panic through");
        }
        // The core still answers.
        observer.0.store(false, std::sync::atomic::Ordering::SeqCst);
        core.proximity(false);
        assert!(
            core.view_json()
                .unwrap()
                .contains("\"carry\":\"uncovered\"")
        );
    }
}
