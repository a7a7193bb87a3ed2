//! Wiring for `keyway-controller run`: the core, the server channel, the BLE transport and
//! one task per served lock, plus housekeeping (relay timers, held-open, status file).

use crate::ble::bluez::BluezTransport;
use crate::ble::sim::SimTransport;
use crate::ble::{AbortOnDrop, Advertiser, LockRadio, Transport};
use crate::channel::{self, ChannelOptions};
use crate::core::{Core, CoreOptions};
use crate::identity;
use crate::session;
use crate::status;
use crate::store::Store;
use keyway_protocol::Id;
use keyway_sim_radio::{HubConfig, Position, RadioHub};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which BLE stack serves the doors.
#[derive(Debug, Clone)]
pub enum Radio {
    /// Host a simulated radio hub on this address.
    Sim { addr: SocketAddr, hub: HubConfig },
    /// Use an already running hub (tests restart the controller against the same air).
    SimHub(Arc<RadioHub>),
    /// BlueZ on this adapter (default adapter when `None`).
    Bluez {
        adapter: Option<String>,
        /// `None`: BlueZ's default.
        advertising_interval: Option<std::time::Duration>,
    },
    /// No BLE (cloud commands only).
    None,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub data_dir: PathBuf,
    pub radio: Radio,
    /// Door positions on the simulated floor plan.
    pub positions: HashMap<Id, Position>,
    /// `None`: derived from the provisioned server URL.
    pub channel: Option<ChannelOptions>,
    /// More trusted CA certificates (PEM) for an https server.
    pub ca_file: Option<PathBuf>,
    pub core: CoreOptions,
}

impl RunOptions {
    pub fn new(data_dir: impl Into<PathBuf>, radio: Radio) -> Self {
        Self {
            data_dir: data_dir.into(),
            radio,
            positions: HashMap::new(),
            channel: None,
            ca_file: None,
            core: CoreOptions::default(),
        }
    }
}

/// A running controller. Dropping it stops every task (like pulling the plug).
#[derive(Debug)]
pub struct Controller {
    core: Arc<Core>,
    // Held while running: a second process on the same data directory would interleave
    // its event log with ours.
    _lock: std::fs::File,
    hub: Option<Arc<RadioHub>>,
    tasks: Vec<AbortOnDrop>,
}

impl Controller {
    pub async fn start(opts: RunOptions) -> anyhow::Result<Self> {
        let (identity, _key, pkcs8) = identity::load(&opts.data_dir)?;
        let lock = lock_data_dir(&opts.data_dir)?;
        let channel_opts = match opts.channel.clone() {
            Some(c) => c,
            None => ChannelOptions::for_server(&identity.server, opts.ca_file.as_deref())
                .map_err(anyhow::Error::msg)?,
        };
        let store = Store::new(&opts.data_dir);
        let (core, recovery) = Core::open(identity, pkcs8, store, opts.core.clone())?;
        if recovery.truncated_tail_bytes > 0 || recovery.skipped_records > 0 {
            tracing::warn!(?recovery, "event log was repaired at start");
        }
        let (transport, hub): (Option<Arc<dyn Transport>>, Option<Arc<RadioHub>>) = match opts.radio
        {
            Radio::Sim { addr, hub } => {
                let hub = Arc::new(RadioHub::bind(addr, hub).await.map_err(|e| {
                    anyhow::anyhow!("cannot open the simulated radio on {addr}: {e}")
                })?);
                tracing::info!(addr = %hub.local_addr(), "simulated radio hub listening");
                (
                    Some(Arc::new(SimTransport::new(
                        hub.clone(),
                        opts.positions.clone(),
                    ))),
                    Some(hub),
                )
            }
            Radio::SimHub(hub) => (
                Some(Arc::new(SimTransport::new(
                    hub.clone(),
                    opts.positions.clone(),
                ))),
                Some(hub),
            ),
            Radio::Bluez {
                adapter,
                advertising_interval,
            } => (
                Some(Arc::new(
                    BluezTransport::new(adapter.as_deref(), advertising_interval).await?,
                )),
                None,
            ),
            Radio::None => (None, None),
        };
        let mut tasks = vec![AbortOnDrop(tokio::spawn(channel::run(
            core.clone(),
            channel_opts,
        )))];
        if let Some(t) = transport {
            tasks.push(AbortOnDrop(tokio::spawn(manage_doors(core.clone(), t))));
        }
        tasks.push(AbortOnDrop(tokio::spawn(housekeeping(
            core.clone(),
            opts.data_dir.clone(),
        ))));
        Ok(Self {
            core,
            _lock: lock,
            hub,
            tasks,
        })
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Address of the simulated radio hub, when there is one.
    pub fn radio_addr(&self) -> Option<SocketAddr> {
        self.hub.as_ref().map(|h| h.local_addr())
    }

    /// Stops every task and waits until they are gone.
    pub async fn shutdown(mut self) {
        for mut t in self.tasks.drain(..) {
            t.0.abort();
            let _ = (&mut t.0).await;
        }
    }
}

/// The data directory's lock file name.
pub const LOCK_FILE: &str = "controller.lock";

fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!("another keyway-controller is running on {}", dir.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Whether a controller process currently holds the data directory.
pub fn data_dir_in_use(dir: &std::path::Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .open(dir.join(LOCK_FILE))
    else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

struct Served {
    tx_power: i8,
    advertiser: Box<dyn Advertiser>,
    _guard: Box<dyn Send + Sync>,
    _accept: AbortOnDrop,
}

/// Keeps the transport's served locks equal to the configuration and adverts current.
async fn manage_doors(core: Arc<Core>, transport: Arc<dyn Transport>) {
    let mut changed = core.config_changed.subscribe();
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    let mut served: HashMap<Id, Served> = HashMap::new();
    loop {
        let locks = core.locks();
        served.retain(|id, s| {
            locks
                .iter()
                .any(|l| l.id == *id && l.tx_power == s.tx_power)
        });
        let default_lock = locks.first().map(|l| l.id);
        for l in &locks {
            let Some(ad) = core.advertisement(l.id) else {
                continue;
            };
            let payload = ad.encode().to_vec();
            if let Some(s) = served.get(&l.id) {
                s.advertiser.set_advertisement(&payload);
                continue;
            }
            let radio = LockRadio {
                lock: l.id,
                name: l.name.clone(),
                advertisement: payload,
                tx_power: l.tx_power,
            };
            match transport.serve_lock(radio).await {
                Ok(s) => {
                    tracing::info!(lock = %l.id, transport = transport.name(), "serving lock");
                    let mut conns = s.connections;
                    let c = core.clone();
                    let fallback = default_lock.unwrap_or(l.id);
                    let accept = tokio::spawn(async move {
                        while let Some(link) = conns.recv().await {
                            tokio::spawn(session::serve_link(c.clone(), link, fallback));
                        }
                    });
                    served.insert(
                        l.id,
                        Served {
                            tx_power: l.tx_power,
                            advertiser: s.advertiser,
                            _guard: s.guard,
                            _accept: AbortOnDrop(accept),
                        },
                    );
                }
                Err(e) => tracing::error!(lock = %l.id, error = %e, "cannot serve lock"),
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = refresh.tick() => {}
        }
    }
}

async fn housekeeping(core: Arc<Core>, dir: PathBuf) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        core.tick();
        if n.is_multiple_of(10)
            && let Err(e) = status::write(&dir, &core.status())
        {
            tracing::warn!(error = %e, "writing status file");
        }
        n += 1;
    }
}
