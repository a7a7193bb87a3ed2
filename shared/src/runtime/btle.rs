//! BLE through btleplug (BlueZ on Linux, CoreBluetooth, WinRT): the transport the CLI uses
//! on a laptop with a radio. Messages are fragmented with `keyway_protocol::gatt` at the
//! minimum ATT MTU, since btleplug does not report the negotiated one on every platform.

use super::ble::{BleError, BleTransport, Heard, now_ms};
use crate::effects::HeardAdvert;
use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter, WriteType};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures::StreamExt;
use futures::future::BoxFuture;
use keyway_protocol::gatt::{self, Reassembler};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a leftover link to the door to go down before connecting anew.
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

struct Link {
    peripheral: Peripheral,
    notifications: futures::stream::BoxStream<'static, btleplug::api::ValueNotification>,
}

/// btleplug transport over one adapter.
#[derive(Clone)]
pub struct BtleplugTransport {
    adapter: Adapter,
    links: Arc<Mutex<HashMap<u64, Link>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
    /// The core wants a scan; it is paused while a connection is made.
    scanning: Arc<AtomicBool>,
    /// Every door connected to, for [`BtleplugTransport::close`].
    opened: Arc<Mutex<HashSet<PeripheralId>>>,
}

impl std::fmt::Debug for BtleplugTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtleplugTransport").finish_non_exhaustive()
    }
}

impl BtleplugTransport {
    /// Opens the adapter named `adapter` (the first word of btleplug's adapter info: `hci1` on
    /// Linux), or the first adapter when `None`. BlueZ lists adapters in no fixed order, so
    /// they are sorted by name first: with two radios, "first" is always `hci0`.
    pub async fn new(adapter: Option<&str>) -> Result<Self, BleError> {
        let manager = Manager::new().await.map_err(BleError::new)?;
        let mut adapters = Vec::new();
        for a in manager.adapters().await.map_err(BleError::new)? {
            let info = a.adapter_info().await.map_err(BleError::new)?;
            let name = info
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            adapters.push((name, a));
        }
        adapters.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<String> = adapters.iter().map(|(n, _)| n.clone()).collect();
        let adapter = match adapter {
            None => adapters.into_iter().next(),
            Some(wanted) => adapters.into_iter().find(|(n, _)| n == wanted),
        }
        .map(|(_, a)| a)
        .ok_or_else(|| match adapter {
            None => BleError::new("no Bluetooth adapter found"),
            Some(wanted) => BleError::new(format!(
                "no Bluetooth adapter {wanted} (found: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )),
        })?;
        Ok(Self {
            adapter,
            links: Arc::default(),
            next: Arc::new(1.into()),
            scanning: Arc::default(),
            opened: Arc::default(),
        })
    }

    /// Ends every link to a door this transport opened. The core disconnects in the
    /// background; a shell about to exit (the CLI) calls this first, or BlueZ keeps the link
    /// up, and a door still connected is not heard by the next scan.
    pub async fn close(&self) {
        self.links.lock().await.clear();
        let opened: Vec<PeripheralId> = self.opened.lock().await.drain().collect();
        for id in opened {
            if let Ok(p) = self.adapter.peripheral(&id).await
                && p.is_connected().await.unwrap_or(false)
            {
                let _ = p.disconnect().await;
            }
        }
    }

    async fn scan(&self) -> Result<(), BleError> {
        self.adapter
            .start_scan(ScanFilter::default())
            .await
            .map_err(BleError::new)
    }

    /// Picks up the core's scan again after a connection attempt or session.
    async fn resume_scan(&self) {
        if self.scanning.load(Ordering::Relaxed) {
            let _ = self.scan().await;
        }
    }

    /// Connects to `peer` and subscribes to its response characteristic.
    async fn open(&self, peer: &str) -> Result<u64, BleError> {
        let p = self.find(peer).await?;
        if p.is_connected().await.unwrap_or(false) {
            // Left over from an earlier session whose disconnect may still be under way
            // (a CLI run can exit before BlueZ drops the link): end it first, or it drops
            // in the middle of this session.
            let _ = p.disconnect().await;
            let deadline = tokio::time::Instant::now() + LINGER_TIMEOUT;
            while p.is_connected().await.unwrap_or(false) && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.opened.lock().await.insert(p.id());
        p.connect().await.map_err(BleError::new)?;
        p.discover_services().await.map_err(BleError::new)?;
        let response = p
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == uuid(gatt::RESPONSE_UUID))
            .ok_or_else(|| BleError::new("not a Keyway door (no response characteristic)"))?;
        p.subscribe(&response).await.map_err(BleError::new)?;
        let notifications = p.notifications().await.map_err(BleError::new)?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.links.lock().await.insert(
            id,
            Link {
                peripheral: p,
                notifications: notifications.boxed(),
            },
        );
        Ok(id)
    }

    async fn find(&self, peer: &str) -> Result<Peripheral, BleError> {
        self.adapter
            .peripherals()
            .await
            .map_err(BleError::new)?
            .into_iter()
            .find(|p| p.id().to_string() == peer)
            .ok_or_else(|| BleError::new("door not found; scan first"))
    }
}

impl BleTransport for BtleplugTransport {
    fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<Heard>, BleError>> {
        let this = self.clone();
        Box::pin(async move {
            let service = uuid(gatt::SERVICE_UUID);
            let mut events = this.adapter.events().await.map_err(BleError::new)?;
            // Unfiltered: a door fills its advertisement with service data and lists no service
            // UUIDs, and a UUID scan filter (BlueZ's, in the kernel) only matches UUID lists,
            // so it would drop every door. Adverts are matched on service data below instead.
            this.scan().await?;
            this.scanning.store(true, Ordering::Relaxed);
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(async move {
                while let Some(event) = events.next().await {
                    // A controller serving several doors advertises them all from one
                    // address, so the device's properties only hold its latest advert: take
                    // the payload from the event that carried it, and from the properties
                    // only for events without one.
                    let (id, carried) = match event {
                        CentralEvent::ServiceDataAdvertisement { id, service_data } => {
                            let Some(data) = service_data.get(&service).cloned() else {
                                continue;
                            };
                            (id, Some(data))
                        }
                        CentralEvent::RssiUpdate { id, .. }
                        | CentralEvent::DeviceUpdated(id)
                        | CentralEvent::DeviceDiscovered(id) => (id, None),
                        _ => continue,
                    };
                    let Ok(p) = this.adapter.peripheral(&id).await else {
                        continue;
                    };
                    let Ok(Some(props)) = p.properties().await else {
                        continue;
                    };
                    let Some(data) = carried.or_else(|| props.service_data.get(&service).cloned())
                    else {
                        continue;
                    };
                    let Some(rssi) = props.rssi else {
                        continue;
                    };
                    let advert = HeardAdvert {
                        peer: id.to_string(),
                        payload: data,
                        rssi,
                        at_ms: now_ms(),
                    };
                    if tx.send(Heard::Advert(advert)).await.is_err() {
                        break;
                    }
                }
            });
            Ok(rx)
        })
    }

    fn stop_scan(&self) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            this.scanning.store(false, Ordering::Relaxed);
            let _ = this.adapter.stop_scan().await;
        })
    }

    fn connect(&self, peer: String) -> BoxFuture<'static, Result<u64, BleError>> {
        let this = self.clone();
        Box::pin(async move {
            // BlueZ holds an LE connection back while it discovers: on a dual-mode adapter for
            // up to ~10 s (BR/EDR inquiry between LE scan windows). Pause the scan meanwhile.
            if this.scanning.load(Ordering::Relaxed) {
                let _ = this.adapter.stop_scan().await;
            }
            let connected = this.open(&peer).await;
            if connected.is_err() {
                this.resume_scan().await;
            }
            connected
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
            let control = link
                .peripheral
                .characteristics()
                .into_iter()
                .find(|c| c.uuid == uuid(gatt::CONTROL_POINT_UUID))
                .ok_or_else(|| BleError::new("not a Keyway door (no control point)"))?;
            for frag in gatt::fragment(&message, gatt::MIN_ATT_MTU).map_err(BleError::new)? {
                link.peripheral
                    .write(&control, &frag, WriteType::WithoutResponse)
                    .await
                    .map_err(BleError::new)?;
            }
            let mut reassembler = Reassembler::new();
            let response = uuid(gatt::RESPONSE_UUID);
            tokio::time::timeout(REPLY_TIMEOUT, async {
                while let Some(n) = link.notifications.next().await {
                    if n.uuid != response {
                        continue;
                    }
                    if let Some(msg) = reassembler.push(&n.value).map_err(BleError::new)? {
                        return Ok(msg);
                    }
                }
                Err(BleError::new("door disconnected"))
            })
            .await
            .map_err(|_| BleError::new("door did not answer in time"))?
        })
    }

    fn disconnect(&self, connection: u64) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            if let Some(link) = this.links.lock().await.remove(&connection) {
                let _ = link.peripheral.disconnect().await;
            }
            this.resume_scan().await;
        })
    }
}
