//! The Rust effect runtime: runs the crux core and executes its effects with real IO.
//! HTTP through reqwest (rustls), KeyValue in files, Time with tokio timers, BLE through a
//! [`BleTransport`], device signing through a [`DeviceSigner`]. Phones may plug their own BLE
//! and key into the FFI; the CLI uses this directly.

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
pub use signer::{SharedSigner, SoftwareSigner};
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
                self.spawn(async move {
                    let result = rt.inner.http.execute(&req.operation).await;
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
                    let task = self.spawn(async move {
                        match rt.inner.ble.start_scan().await {
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
                    if let Some(t) = self.inner.scan.lock().unwrap().take() {
                        t.abort();
                    }
                    self.spawn(async move { rt.inner.ble.stop_scan().await });
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
                let signer = self.inner.signer.clone();
                let out = match &req.operation {
                    SigningOperation::PublicKey => SigningOutput::PublicKey {
                        key: signer.public_key().0.to_vec(),
                    },
                    SigningOperation::Sign { message } => match signer.sign(message) {
                        Ok(sig) => SigningOutput::Signature {
                            signature: sig.0.to_vec(),
                        },
                        Err(e) => SigningOutput::Error {
                            message: e.to_string(),
                        },
                    },
                };
                self.resolve(&mut req, out);
            }
        }
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

/// A render observer that bumps a watch counter, for shells that await view changes.
pub fn render_counter() -> (RenderObserver, tokio::sync::watch::Receiver<u64>) {
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let observer: RenderObserver = Arc::new(move || {
        tx.send_modify(|n| *n += 1);
    });
    (observer, rx)
}
