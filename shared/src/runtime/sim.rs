//! BLE over the simulated radio (`keyway-sim-radio`): a [`SimPhone`] on the radio hub's
//! loopback socket. Adverts are stamped with this machine's wall clock (the hub's own clock
//! starts at zero), links use the hub's ATT MTU for GATT fragmentation. A hub that ranges
//! (`--sim-ranging-sigma-m`) also reports distances to the doors near a scanning phone, which
//! the scan passes on beside the adverts, as a shell forwards its UWB or Channel Sounding
//! readings.

use super::ble::{BleError, BleTransport, Heard, now_ms};
use crate::effects::{HeardAdvert, Ranged};
use futures::future::BoxFuture;
use keyway_protocol::gatt::{self, Reassembler};
use keyway_sim_radio::phone::{Link, SimPhone};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, broadcast, mpsc};

const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Phone-side transport over a radio hub.
#[derive(Clone)]
pub struct SimTransport {
    phone: Arc<SimPhone>,
    links: Arc<Mutex<HashMap<u64, Link>>>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for SimTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTransport")
            .field("phone", &self.phone)
            .finish_non_exhaustive()
    }
}

impl SimTransport {
    /// Connects to the hub at `addr` (`HOST:PORT`) as a phone called `name`.
    pub async fn connect(addr: &str, name: &str) -> Result<Self, BleError> {
        let phone = SimPhone::connect(addr, name).await.map_err(BleError::new)?;
        // Scanning is driven by the core's scan effect.
        phone.set_scanning(false).await.map_err(BleError::new)?;
        Ok(Self {
            phone: Arc::new(phone),
            links: Arc::default(),
            next: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Walks the phone along `(t_ms, x, y)` points, `t_ms` relative to now.
    pub async fn run_script(&self, points: &[(u64, f64, f64)]) -> Result<(), BleError> {
        self.phone.run_script(points).await.map_err(BleError::new)
    }

    /// Stands still at `(x, y)` metres.
    pub async fn set_position(&self, x: f64, y: f64) -> Result<(), BleError> {
        self.phone.set_position(x, y).await.map_err(BleError::new)
    }
}

impl BleTransport for SimTransport {
    fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<Heard>, BleError>> {
        let phone = self.phone.clone();
        Box::pin(async move {
            let mut adverts = phone.adverts();
            let mut ranges = phone.ranges();
            phone.set_scanning(true).await.map_err(BleError::new)?;
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(async move {
                loop {
                    let heard = tokio::select! {
                        a = adverts.recv() => match a {
                            Ok(a) => Heard::Advert(HeardAdvert {
                                peer: a.door,
                                payload: a.data,
                                rssi: a.rssi,
                                at_ms: now_ms(),
                            }),
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => break,
                        },
                        r = ranges.recv() => match r {
                            Ok(r) => Heard::Range(Ranged {
                                peer: r.door,
                                distance_m: r.metres,
                                at_ms: now_ms(),
                            }),
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => break,
                        },
                    };
                    if tx.send(heard).await.is_err() {
                        break;
                    }
                }
            });
            Ok(rx)
        })
    }

    fn stop_scan(&self) -> BoxFuture<'static, ()> {
        let phone = self.phone.clone();
        Box::pin(async move {
            let _ = phone.set_scanning(false).await;
        })
    }

    fn connect(&self, peer: String) -> BoxFuture<'static, Result<u64, BleError>> {
        let this = self.clone();
        Box::pin(async move {
            let link = this
                .phone
                .connect_door(&peer)
                .await
                .map_err(BleError::new)?;
            let id = this.next.fetch_add(1, Ordering::Relaxed);
            this.links.lock().await.insert(id, link);
            Ok(id)
        })
    }

    fn exchange(
        &self,
        connection: u64,
        message: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, BleError>> {
        let this = self.clone();
        Box::pin(async move {
            let mut links = this.links.lock().await;
            let link = links
                .get_mut(&connection)
                .ok_or_else(|| BleError::new("not connected"))?;
            for frag in gatt::fragment(&message, link.att_mtu()).map_err(BleError::new)? {
                link.write(&frag).await.map_err(BleError::new)?;
            }
            let mut reassembler = Reassembler::new();
            tokio::time::timeout(REPLY_TIMEOUT, async {
                while let Some(frag) = link.next_notification().await {
                    if let Some(msg) = reassembler.push(&frag).map_err(BleError::new)? {
                        return Ok(msg);
                    }
                }
                Err(BleError::new("door closed the link"))
            })
            .await
            .map_err(|_| BleError::new("door did not answer in time"))?
        })
    }

    fn disconnect(&self, connection: u64) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            if let Some(link) = this.links.lock().await.remove(&connection) {
                link.close().await;
            }
        })
    }
}
