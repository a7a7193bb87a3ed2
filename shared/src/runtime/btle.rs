//! BLE through btleplug (BlueZ on Linux, CoreBluetooth, WinRT): the transport the CLI uses
//! on a laptop with a radio. Messages are fragmented with `keyway_protocol::gatt` at the
//! minimum ATT MTU, since btleplug does not report the negotiated one on every platform.

use super::ble::{BleError, BleTransport, now_ms};
use crate::effects::HeardAdvert;
use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter, WriteType};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::StreamExt;
use futures::future::BoxFuture;
use keyway_protocol::gatt::{self, Reassembler};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

struct Link {
    peripheral: Peripheral,
    notifications: futures::stream::BoxStream<'static, btleplug::api::ValueNotification>,
}

/// btleplug transport over the first adapter.
#[derive(Clone)]
pub struct BtleplugTransport {
    adapter: Adapter,
    links: Arc<Mutex<HashMap<u64, Link>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for BtleplugTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtleplugTransport").finish_non_exhaustive()
    }
}

impl BtleplugTransport {
    pub async fn new() -> Result<Self, BleError> {
        let manager = Manager::new().await.map_err(BleError::new)?;
        let adapter = manager
            .adapters()
            .await
            .map_err(BleError::new)?
            .into_iter()
            .next()
            .ok_or_else(|| BleError::new("no Bluetooth adapter found"))?;
        Ok(Self {
            adapter,
            links: Arc::default(),
            next: Arc::new(1.into()),
        })
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
    fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<HeardAdvert>, BleError>> {
        let this = self.clone();
        Box::pin(async move {
            let service = uuid(gatt::SERVICE_UUID);
            let mut events = this.adapter.events().await.map_err(BleError::new)?;
            this.adapter
                .start_scan(ScanFilter {
                    services: vec![service],
                })
                .await
                .map_err(BleError::new)?;
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(async move {
                while let Some(event) = events.next().await {
                    let id = match event {
                        CentralEvent::ServiceDataAdvertisement { id, .. }
                        | CentralEvent::RssiUpdate { id, .. }
                        | CentralEvent::DeviceUpdated(id)
                        | CentralEvent::DeviceDiscovered(id) => id,
                        _ => continue,
                    };
                    let Ok(p) = this.adapter.peripheral(&id).await else {
                        continue;
                    };
                    let Ok(Some(props)) = p.properties().await else {
                        continue;
                    };
                    let (Some(data), Some(rssi)) = (props.service_data.get(&service), props.rssi)
                    else {
                        continue;
                    };
                    let advert = HeardAdvert {
                        peer: id.to_string(),
                        payload: data.clone(),
                        rssi,
                        at_ms: now_ms(),
                    };
                    if tx.send(advert).await.is_err() {
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
            let _ = this.adapter.stop_scan().await;
        })
    }

    fn connect(&self, peer: String) -> BoxFuture<'static, Result<u64, BleError>> {
        let this = self.clone();
        Box::pin(async move {
            let p = this.find(&peer).await?;
            p.connect().await.map_err(BleError::new)?;
            p.discover_services().await.map_err(BleError::new)?;
            let response = p
                .characteristics()
                .into_iter()
                .find(|c| c.uuid == uuid(gatt::RESPONSE_UUID))
                .ok_or_else(|| BleError::new("not a Keyway door (no response characteristic)"))?;
            p.subscribe(&response).await.map_err(BleError::new)?;
            let notifications = p.notifications().await.map_err(BleError::new)?;
            let id = this.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            this.links.lock().await.insert(
                id,
                Link {
                    peripheral: p,
                    notifications: notifications.boxed(),
                },
            );
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
        })
    }
}
