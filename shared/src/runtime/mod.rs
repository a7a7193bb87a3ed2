//! The Rust effect runtime: runs the crux core and executes its effects with real IO.
//! HTTP through reqwest (rustls), KeyValue in files, Time with tokio timers, BLE through a
//! [`BleTransport`], device signing through a [`signer::DeviceKey`] (on tokio's blocking
//! pool: a platform key may wait for the user). Phones may plug their own BLE and key into the
//! FFI; the CLI uses this directly. An HTTP failure is a plain network error only when the
//! request never reached the server; anything later reads as a timeout (it may have acted).

pub mod ble;
#[cfg(feature = "btleplug")]
pub mod btle;
mod files;
pub mod http;
pub mod kv;
pub mod signer;
pub mod sim;

use crate::app::{Effect, Event, Keyway, ViewModel};
use crate::effects::{
    BleOperation, BleOutput, ScanItem, ScanOperation, SigningOperation, SigningOutput,
};
pub use ble::{BleError, BleTransport, Heard, NoRadio};
use crux_core::Core;
use crux_time::{TimeRequest, TimeResponse};
pub use kv::FileStore;
pub use signer::{DeviceKey, SharedSigner, SoftwareSigner};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// Where the runtime keeps its state and which server it talks to.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub api_base: String,
    pub data_dir: PathBuf,
    /// PEM CA certificates to trust beside the system's (a server with a private CA, as in
    /// a lab); the shells leave it `None`.
    pub ca_file: Option<PathBuf>,
}

/// An HTTP request the runtime made for the core, answered or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOutcome {
    pub method: String,
    pub url: String,
    /// The response's status, or why no response came (unreachable, timed out, ...).
    pub result: Result<u16, String>,
}

/// Called after every render effect (from a runtime thread).
pub type RenderObserver = Arc<dyn Fn() + Send + Sync>;

/// The core plus its effect executors. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("api_base", &self.inner.api_base)
            .finish()
    }
}

struct Inner {
    api_base: String,
    core: Core<Keyway>,
    http: http::HttpClient,
    kv: FileStore,
    ble: Arc<dyn BleTransport>,
    signer: SharedSigner,
    observer: RenderObserver,
    handle: tokio::runtime::Handle,
    timers: Mutex<HashMap<usize, AbortHandle>>,
    scan: Mutex<Option<AbortHandle>>,
    scan_control: ScanControl,
    /// HTTP requests sent and not yet answered (and their answers handled by the core).
    http_in_flight: tokio::sync::watch::Sender<usize>,
    http_outcomes: tokio::sync::broadcast::Sender<HttpOutcome>,
}

/// Keeps the transport's `start_scan` and `stop_scan` calls in the order the core asked for
/// them: each Start or Stop takes the next generation, calls run one at a time, and a call
/// whose generation is older than one already made is skipped (a Stop that lost the race to
/// a later Start must not end that scan).
#[derive(Default)]
struct ScanControl {
    asked: std::sync::atomic::AtomicU64,
    /// The generation of the last call made to the transport.
    made: tokio::sync::Mutex<u64>,
}

impl ScanControl {
    fn next(&self) -> u64 {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// Runs `call` as generation `generation` unless a later one was already made; holds
    /// the control across it. (`call` makes the transport call only once it may: a shell's
    /// transport acts on the call itself, before its future is polled.)
    async fn run<F: Future>(&self, generation: u64, call: impl FnOnce() -> F) -> Option<F::Output> {
        let mut made = self.made.lock().await;
        if *made > generation {
            return None;
        }
        *made = generation;
        Some(call().await)
    }

    /// Every generation asked for has been made or skipped, and no call is running.
    #[cfg(test)]
    async fn settled(&self) -> bool {
        let made = self.made.lock().await;
        *made == self.asked.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Runtime {
    /// Builds the runtime on the current tokio runtime. `signer` defaults to a software key
    /// in `data_dir/device_key.pk8`. Sends `Start` so the session is restored.
    pub fn new(
        config: RuntimeConfig,
        ble: Arc<dyn BleTransport>,
        signer: Option<SharedSigner>,
        observer: RenderObserver,
    ) -> std::io::Result<Self> {
        Self::with_handle(
            config,
            ble,
            signer,
            observer,
            tokio::runtime::Handle::current(),
        )
    }

    pub fn with_handle(
        config: RuntimeConfig,
        ble: Arc<dyn BleTransport>,
        signer: Option<SharedSigner>,
        observer: RenderObserver,
        handle: tokio::runtime::Handle,
    ) -> std::io::Result<Self> {
        files::create_dir(&config.data_dir)?;
        // A device key's temporary copy left by a crash mid-creation.
        files::sweep_temps(&config.data_dir, files::STALE_TEMP);
        let signer = match signer {
            Some(s) => s,
            None => Arc::new(SoftwareSigner::load_or_create(
                &config.data_dir.join("device_key.pk8"),
            )?),
        };
        let rt = Self {
            inner: Arc::new(Inner {
                api_base: config.api_base.clone(),
                core: Core::new(),
                http: http::HttpClient::new(config.ca_file.as_deref())?,
                kv: FileStore::new(config.data_dir.join("kv"))?,
                ble,
                signer,
                observer,
                handle,
                timers: Mutex::new(HashMap::new()),
                scan: Mutex::new(None),
                scan_control: ScanControl::default(),
                http_in_flight: tokio::sync::watch::Sender::new(0),
                http_outcomes: tokio::sync::broadcast::Sender::new(64),
            }),
        };
        rt.send(Event::Start {
            api_base: config.api_base,
        });
        Ok(rt)
    }

    /// Sends an event to the core and starts executing the effects it asks for.
    pub fn send(&self, event: Event) {
        let effects = self.inner.core.process_event(event);
        self.process(effects);
    }

    pub fn view(&self) -> ViewModel {
        self.inner.core.view()
    }

    fn process(&self, effects: Vec<Effect>) {
        for effect in effects {
            self.execute(effect);
        }
    }

    fn resolve<Op: crux_core::capability::Operation>(
        &self,
        request: &mut crux_core::Request<Op>,
        output: Op::Output,
    ) {
        match self.inner.core.resolve(request, output) {
            Ok(effects) => self.process(effects),
            Err(e) => tracing::debug!("effect no longer awaited: {e}"),
        }
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.inner.handle.spawn(fut).abort_handle()
    }

    fn execute(&self, effect: Effect) {
        let rt = self.clone();
        match effect {
            Effect::Render(_) => (self.inner.observer)(),
            Effect::Http(mut req) => {
                self.inner.http_in_flight.send_modify(|n| *n += 1);
                self.spawn(async move {
                    // Leaves the count however the task ends.
                    let _in_flight = InFlight(rt.clone());
                    let result = rt.inner.http.execute(&req.operation).await;
                    let _ = rt.inner.http_outcomes.send(HttpOutcome {
                        method: req.operation.method.clone(),
                        url: req.operation.url.clone(),
                        result: match &result {
                            crux_http::protocol::HttpResult::Ok(r) => Ok(r.status),
                            crux_http::protocol::HttpResult::Err(e) => Err(e.to_string()),
                        },
                    });
                    // Resolved before it counts as done, so requests it leads to are counted.
                    rt.resolve(&mut req, result);
                });
            }
            Effect::KeyValue(mut req) => {
                let result = self.inner.kv.execute(&req.operation);
                self.resolve(&mut req, result);
            }
            Effect::Time(mut req) => match req.operation.clone() {
                TimeRequest::Now => {
                    let now = std::time::SystemTime::now();
                    self.resolve(
                        &mut req,
                        TimeResponse::Now {
                            instant: now.into(),
                        },
                    );
                }
                TimeRequest::NotifyAfter { id, duration } => {
                    let d: std::time::Duration = duration.into();
                    let abort = self.spawn(async move {
                        tokio::time::sleep(d).await;
                        rt.inner.timers.lock().unwrap().remove(&id.0);
                        rt.resolve(&mut req, TimeResponse::DurationElapsed { id });
                    });
                    self.inner.timers.lock().unwrap().insert(id.0, abort);
                }
                TimeRequest::NotifyAt { id, instant } => {
                    let at: std::time::SystemTime = instant.into();
                    let d = at
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default();
                    let abort = self.spawn(async move {
                        tokio::time::sleep(d).await;
                        rt.inner.timers.lock().unwrap().remove(&id.0);
                        rt.resolve(&mut req, TimeResponse::InstantArrived { id });
                    });
                    self.inner.timers.lock().unwrap().insert(id.0, abort);
                }
                TimeRequest::Clear { id } => {
                    if let Some(t) = self.inner.timers.lock().unwrap().remove(&id.0) {
                        t.abort();
                    }
                    self.resolve(&mut req, TimeResponse::Cleared { id });
                }
            },
            Effect::Scan(mut req) => match req.operation {
                ScanOperation::Start => {
                    let generation = self.inner.scan_control.next();
                    // The transport call runs in a task of its own, so that aborting this scan
                    // (a later Start or Stop) never cuts a call short while it holds the
                    // control.
                    let call = {
                        let rt = rt.clone();
                        self.inner.handle.spawn(async move {
                            let ble = rt.inner.ble.clone();
                            rt.inner
                                .scan_control
                                .run(generation, || ble.start_scan())
                                .await
                        })
                    };
                    let task = self.spawn(async move {
                        let Ok(Some(started)) = call.await else {
                            // Superseded before it started: the later operation decides.
                            return;
                        };
                        match started {
                            Ok(mut rx) => {
                                while let Some(heard) = rx.recv().await {
                                    let item = match heard {
                                        Heard::Advert(a) => ScanItem::Advert(a),
                                        Heard::Range(r) => ScanItem::Ranged(r),
                                    };
                                    rt.resolve(&mut req, item);
                                }
                                rt.resolve(
                                    &mut req,
                                    ScanItem::Failed {
                                        message: "scan ended".into(),
                                    },
                                );
                            }
                            Err(e) => rt.resolve(&mut req, ScanItem::Failed { message: e.0 }),
                        }
                    });
                    if let Some(old) = self.inner.scan.lock().unwrap().replace(task) {
                        old.abort();
                    }
                }
                ScanOperation::Stop => {
                    let generation = self.inner.scan_control.next();
                    if let Some(t) = self.inner.scan.lock().unwrap().take() {
                        t.abort();
                    }
                    self.spawn(async move {
                        let ble = rt.inner.ble.clone();
                        rt.inner
                            .scan_control
                            .run(generation, || ble.stop_scan())
                            .await;
                    });
                }
            },
            Effect::Ble(mut req) => {
                self.spawn(async move {
                    let ble = rt.inner.ble.clone();
                    let out = match req.operation.clone() {
                        BleOperation::Connect { peer } => match ble.connect(peer).await {
                            Ok(connection) => BleOutput::Connected { connection },
                            Err(e) => BleOutput::Error { message: e.0 },
                        },
                        BleOperation::Exchange {
                            connection,
                            message,
                        } => match ble.exchange(connection, message).await {
                            Ok(message) => BleOutput::Reply { message },
                            Err(e) => BleOutput::Error { message: e.0 },
                        },
                        BleOperation::Disconnect { connection } => {
                            ble.disconnect(connection).await;
                            return;
                        }
                    };
                    rt.resolve(&mut req, out);
                });
            }
            Effect::Signing(mut req) => {
                // A platform key may wait seconds for the user's presence: never on a runtime
                // worker or the caller's thread.
                let signer = self.inner.signer.clone();
                let operation = req.operation.clone();
                self.spawn(async move {
                    let out = tokio::task::spawn_blocking(move || signing(&*signer, &operation))
                        .await
                        .unwrap_or_else(|e| SigningOutput::Error {
                            message: format!("the device key failed: {e}"),
                        });
                    rt.resolve(&mut req, out);
                });
            }
        }
    }

    /// The number of HTTP requests sent for the core and not yet answered. For shells that
    /// must know when requests the core does not report back on (sign-out's deletions) are
    /// over: send the event, then wait for zero.
    pub fn http_in_flight(&self) -> tokio::sync::watch::Receiver<usize> {
        self.inner.http_in_flight.subscribe()
    }

    /// The outcome of every HTTP request answered from now on (the latest 64 when the
    /// receiver falls behind), each sent before the request leaves [`Runtime::http_in_flight`].
    pub fn http_outcomes(&self) -> tokio::sync::broadcast::Receiver<HttpOutcome> {
        self.inner.http_outcomes.subscribe()
    }

    /// Waits until `done` holds for the view model (checked after each render), or `timeout`.
    pub async fn wait_for(
        &self,
        renders: &tokio::sync::watch::Receiver<u64>,
        timeout: std::time::Duration,
        mut done: impl FnMut(&ViewModel) -> bool,
    ) -> Option<ViewModel> {
        let mut rx = renders.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.view();
            if done(&v) {
                return Some(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }
}

/// One HTTP request in flight, until dropped.
struct InFlight(Runtime);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inner.http_in_flight.send_modify(|n| *n -= 1);
    }
}

/// Runs one signing operation on the device key (blocking: the platform may ask the user).
fn signing(signer: &dyn DeviceKey, operation: &SigningOperation) -> SigningOutput {
    match operation {
        SigningOperation::PublicKey => SigningOutput::PublicKey {
            key: signer.device_public_key().0.to_vec(),
        },
        SigningOperation::Sign { message } => match signer.device_sign(message) {
            Ok(sig) => SigningOutput::Signature {
                signature: sig.0.to_vec(),
            },
            Err(message) => SigningOutput::Error { message },
        },
    }
}

/// A render observer that bumps a watch counter, for shells that await view changes.
pub fn render_counter() -> (RenderObserver, tokio::sync::watch::Receiver<u64>) {
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let observer: RenderObserver = Arc::new(move || {
        tx.send_modify(|n| *n += 1);
    });
    (observer, rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// A radio whose scan starts and stops take effect after a delay, like a platform stack.
    #[derive(Default)]
    struct SlowRadio {
        start_delay_ms: u64,
        stop_delay_ms: u64,
        scanning: Arc<AtomicBool>,
        adverts: Arc<Mutex<Option<mpsc::Sender<Heard>>>>,
    }

    impl BleTransport for SlowRadio {
        fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<Heard>, BleError>> {
            let (scanning, adverts, delay) = (
                self.scanning.clone(),
                self.adverts.clone(),
                self.start_delay_ms,
            );
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let (tx, rx) = mpsc::channel(1);
                *adverts.lock().unwrap() = Some(tx);
                scanning.store(true, Ordering::SeqCst);
                Ok(rx)
            })
        }
        fn stop_scan(&self) -> BoxFuture<'static, ()> {
            let (scanning, delay) = (self.scanning.clone(), self.stop_delay_ms);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                scanning.store(false, Ordering::SeqCst);
            })
        }
        fn connect(&self, _peer: String) -> BoxFuture<'static, Result<u64, BleError>> {
            Box::pin(async { Err(BleError::new("no doors here")) })
        }
        fn exchange(&self, _c: u64, _m: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, BleError>> {
            Box::pin(async { Err(BleError::new("no doors here")) })
        }
        fn disconnect(&self, _c: u64) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    /// A runtime on `radio` with no server, its stored state loaded.
    async fn runtime(radio: Arc<SlowRadio>, dir: &std::path::Path) -> Runtime {
        let (observer, renders) = render_counter();
        let rt = Runtime::new(
            RuntimeConfig {
                api_base: "http://127.0.0.1:9".into(),
                data_dir: dir.into(),
                ca_file: None,
            },
            radio,
            None,
            observer,
        )
        .unwrap();
        rt.wait_for(&renders, Duration::from_secs(5), |v| v.ready)
            .await
            .unwrap();
        rt
    }

    /// Whether the radio scans once every scan call asked of the runtime has run.
    async fn settle(rt: &Runtime, radio: &SlowRadio) -> bool {
        for _ in 0..1_000 {
            if rt.inner.scan_control.settled().await {
                return radio.scanning.load(Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("scan calls still running after 10 s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scan_stop_then_start_ends_scanning() {
        let dir = tempfile::tempdir().unwrap();
        let radio = Arc::new(SlowRadio {
            stop_delay_ms: 50,
            ..SlowRadio::default()
        });
        let rt = runtime(radio.clone(), dir.path()).await;
        rt.send(Event::StartScan);
        assert!(settle(&rt, &radio).await);
        for _ in 0..5 {
            rt.send(Event::StopScan);
            rt.send(Event::StartScan);
            assert!(settle(&rt, &radio).await, "the restarted scan was stopped");
            assert!(rt.view().scanning);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scan_start_then_stop_ends_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let radio = Arc::new(SlowRadio {
            start_delay_ms: 50,
            ..SlowRadio::default()
        });
        let rt = runtime(radio.clone(), dir.path()).await;
        for _ in 0..5 {
            rt.send(Event::StartScan);
            rt.send(Event::StopScan);
            assert!(!settle(&rt, &radio).await, "the stopped scan started");
            assert!(!rt.view().scanning);
        }
    }
}
