//! The simulated radio: each lock is a door on a [`keyway_sim_radio::RadioHub`] named by
//! its lock id (UUID text), at a configurable position.

use super::{
    AbortOnDrop, Advertiser, LinkClosed, LockRadio, PeripheralLink, ServedLock, Transport,
    TransportError,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use keyway_protocol::Id;
use keyway_sim_radio::{DoorControl, DoorLink, DoorSpec, Position, RadioHub};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct SimTransport {
    hub: Arc<RadioHub>,
    positions: HashMap<Id, Position>,
}

impl SimTransport {
    /// `positions` places doors on the floor plan; unlisted doors stand at (0, 0).
    pub fn new(hub: Arc<RadioHub>, positions: HashMap<Id, Position>) -> Self {
        Self { hub, positions }
    }

    pub fn hub(&self) -> &Arc<RadioHub> {
        &self.hub
    }
}

struct SimLink {
    link: DoorLink,
    lock: Id,
}

impl PeripheralLink for SimLink {
    fn next_write(&mut self) -> BoxFuture<'_, Option<Vec<u8>>> {
        self.link.next_write().boxed()
    }

    fn notify<'a>(&'a mut self, fragment: &'a [u8]) -> BoxFuture<'a, Result<(), LinkClosed>> {
        async move { self.link.notify(fragment).await.map_err(|_| LinkClosed) }.boxed()
    }

    fn rssi(&self) -> Option<i16> {
        self.link.rssi()
    }

    fn range_m(&self) -> Option<f64> {
        self.link.range_m()
    }

    fn att_mtu(&self) -> usize {
        self.link.att_mtu()
    }

    fn lock(&self) -> Option<Id> {
        Some(self.lock)
    }

    fn peer(&self) -> String {
        format!("sim:{}", self.link.peer())
    }

    fn close(&mut self) {
        self.link.close();
    }
}

struct SimAdvertiser(DoorControl);

impl Advertiser for SimAdvertiser {
    fn set_advertisement(&self, payload: &[u8]) {
        self.0.set_advertisement(payload);
    }
}

impl Transport for SimTransport {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn serve_lock(&self, radio: LockRadio) -> BoxFuture<'_, Result<ServedLock, TransportError>> {
        async move {
            let mut door = self
                .hub
                .add_door(DoorSpec {
                    id: radio.lock.to_string(),
                    position: self.positions.get(&radio.lock).copied().unwrap_or_default(),
                    tx_power_at_1m: radio.tx_power,
                    advertising_interval_ms: None,
                    advertisement: radio.advertisement,
                })
                .map_err(|e| TransportError::Failed(e.to_string()))?;
            let control = door.control();
            let (tx, rx) = mpsc::channel::<Box<dyn PeripheralLink>>(16);
            let lock = radio.lock;
            let task = tokio::spawn(async move {
                while let Some(link) = door.accept().await {
                    if tx.send(Box::new(SimLink { link, lock })).await.is_err() {
                        break;
                    }
                }
            });
            Ok(ServedLock {
                connections: rx,
                advertiser: Box::new(SimAdvertiser(control)),
                guard: Box::new(AbortOnDrop(task)),
            })
        }
        .boxed()
    }
}
