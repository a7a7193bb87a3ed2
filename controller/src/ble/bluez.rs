//! A real BLE peripheral through BlueZ (`bluer`): LE advertising with the Keyway service
//! data and a GATT server with the control point (write without response) and the response
//! characteristic (notify), UUIDs from `keyway_protocol::gatt`.
//!
//! One GATT application serves every lock of the controller; a phone names the lock in
//! HELLO, so links from BlueZ carry no lock hint. Each lock has its own advertisement,
//! re-registered when its payload changes (the proximity code rotates every 30 s). BlueZ gives
//! a peripheral no RSSI for an incoming connection, so [`PeripheralLink::rssi`] is `None` and
//! walk-up requests are refused with `too_far` on this transport (tap-to-unlock works).
//!
//! To test end to end later: run the controller with `--radio bluez --adapter hci0` inside
//! the VM recipe of the brief (two `btvirt` controllers), and a btleplug central on hci1.

use super::{
    AbortOnDrop, Advertiser, LinkClosed, LockRadio, PeripheralLink, ServedLock, Transport,
    TransportError,
};
use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::gatt::local::{
    Application, ApplicationHandle, Characteristic, CharacteristicControlEvent,
    CharacteristicNotify, CharacteristicNotifyMethod, CharacteristicWrite,
    CharacteristicWriteMethod, Service, characteristic_control,
};
use bluer::gatt::{CharacteristicReader, CharacteristicWriter};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use keyway_protocol::Id;
use keyway_protocol::gatt::{CONTROL_POINT_UUID, RESPONSE_UUID, SERVICE_UUID};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

pub struct BluezTransport {
    adapter: bluer::Adapter,
    // Kept alive for as long as the transport: dropping it ends the D-Bus session.
    _session: bluer::Session,
    gatt: tokio::sync::Mutex<Option<(ApplicationHandle, AbortOnDrop)>>,
}

impl std::fmt::Debug for BluezTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BluezTransport")
            .field("adapter", &self.adapter.name())
            .finish()
    }
}

fn uuid(s: &str) -> bluer::Uuid {
    bluer::Uuid::parse_str(s).expect("protocol UUIDs are valid")
}

impl BluezTransport {
    /// Connects to bluetoothd and powers the adapter (`None`: the default adapter).
    pub async fn new(adapter: Option<&str>) -> Result<Self, TransportError> {
        let session = bluer::Session::new().await.map_err(|e| {
            TransportError::Unavailable(format!(
                "BlueZ is not reachable ({e}). The bluez radio needs a running bluetoothd on the \
                 system D-Bus and a Bluetooth adapter; use --radio sim:127.0.0.1:PORT to run \
                 without Bluetooth"
            ))
        })?;
        let adapter = match adapter {
            Some(name) => session.adapter(name),
            None => session.default_adapter().await,
        }
        .map_err(|e| {
            TransportError::Unavailable(format!(
                "no Bluetooth adapter available ({e}); check `bluetoothctl list`, or use \
                 --radio sim:127.0.0.1:PORT"
            ))
        })?;
        adapter.set_powered(true).await.map_err(|e| {
            TransportError::Unavailable(format!(
                "cannot power on Bluetooth adapter {}: {e}",
                adapter.name()
            ))
        })?;
        tracing::info!(adapter = adapter.name(), "BlueZ adapter ready");
        Ok(Self {
            adapter,
            _session: session,
            gatt: tokio::sync::Mutex::new(None),
        })
    }

    /// Registers the GATT application once; returns the connection stream the first time.
    async fn ensure_gatt(
        &self,
    ) -> Result<Option<mpsc::Receiver<Box<dyn PeripheralLink>>>, TransportError> {
        let mut gatt = self.gatt.lock().await;
        if gatt.is_some() {
            return Ok(None);
        }
        let (control_point, control_point_handle) = characteristic_control();
        let (response, response_handle) = characteristic_control();
        let app = Application {
            services: vec![Service {
                uuid: uuid(SERVICE_UUID),
                primary: true,
                characteristics: vec![
                    Characteristic {
                        uuid: uuid(CONTROL_POINT_UUID),
                        write: Some(CharacteristicWrite {
                            write_without_response: true,
                            method: CharacteristicWriteMethod::Io,
                            ..Default::default()
                        }),
                        control_handle: control_point_handle,
                        ..Default::default()
                    },
                    Characteristic {
                        uuid: uuid(RESPONSE_UUID),
                        notify: Some(CharacteristicNotify {
                            notify: true,
                            method: CharacteristicNotifyMethod::Io,
                            ..Default::default()
                        }),
                        control_handle: response_handle,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let handle = self
            .adapter
            .serve_gatt_application(app)
            .await
            .map_err(|e| TransportError::Failed(format!("registering the GATT service: {e}")))?;
        let (tx, rx) = mpsc::channel::<Box<dyn PeripheralLink>>(16);
        let task = tokio::spawn(pair_links(control_point, response, tx));
        *gatt = Some((handle, AbortOnDrop(task)));
        Ok(Some(rx))
    }
}

/// Matches each phone's notification session with its writes (by device address).
async fn pair_links(
    mut control_point: bluer::gatt::local::CharacteristicControl,
    mut response: bluer::gatt::local::CharacteristicControl,
    tx: mpsc::Sender<Box<dyn PeripheralLink>>,
) {
    let notifiers: Arc<Mutex<HashMap<bluer::Address, CharacteristicWriter>>> = Default::default();
    loop {
        tokio::select! {
            ev = response.next() => match ev {
                Some(CharacteristicControlEvent::Notify(writer)) => {
                    notifiers.lock().unwrap().insert(writer.device_address(), writer);
                }
                Some(_) => {}
                None => break,
            },
            ev = control_point.next() => match ev {
                Some(CharacteristicControlEvent::Write(req)) => {
                    let addr = req.device_address();
                    let Ok(reader) = req.accept() else { continue };
                    let writer = notifiers.lock().unwrap().remove(&addr);
                    let link = BluezLink { reader, writer, addr };
                    if tx.send(Box::new(link)).await.is_err() {
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }
}

struct BluezLink {
    reader: CharacteristicReader,
    writer: Option<CharacteristicWriter>,
    addr: bluer::Address,
}

impl PeripheralLink for BluezLink {
    fn next_write(&mut self) -> BoxFuture<'_, Option<Vec<u8>>> {
        async move { self.reader.recv().await.ok() }.boxed()
    }

    fn notify<'a>(&'a mut self, fragment: &'a [u8]) -> BoxFuture<'a, Result<(), LinkClosed>> {
        async move {
            let w = self.writer.as_ref().ok_or(LinkClosed)?;
            w.send(fragment).await.map_err(|_| LinkClosed)
        }
        .boxed()
    }

    fn rssi(&self) -> Option<i16> {
        None
    }

    fn att_mtu(&self) -> usize {
        // bluer's notifier MTU is already the usable value length (ATT MTU − 5); the write
        // side reports the raw ATT MTU.
        let att_mtu = match &self.writer {
            Some(w) => w.mtu() + 3,
            None => self.reader.mtu(),
        };
        att_mtu.max(keyway_protocol::gatt::MIN_ATT_MTU)
    }

    fn lock(&self) -> Option<Id> {
        None
    }

    fn peer(&self) -> String {
        format!("ble:{}", self.addr)
    }

    fn close(&mut self) {
        self.writer = None;
    }
}

struct BluezAdvertiser(watch::Sender<Vec<u8>>);

impl Advertiser for BluezAdvertiser {
    fn set_advertisement(&self, payload: &[u8]) {
        self.0.send_if_modified(|p| {
            let changed = p.as_slice() != payload;
            if changed {
                *p = payload.to_vec();
            }
            changed
        });
    }
}

fn advertisement(name: &str, payload: &[u8]) -> Advertisement {
    Advertisement {
        advertisement_type: bluer::adv::Type::Peripheral,
        service_data: BTreeMap::from([(uuid(SERVICE_UUID), payload.to_vec())]),
        discoverable: Some(true),
        // The service data fills the 31-byte legacy advertisement; BlueZ puts the name in
        // the scan response.
        local_name: Some(name.chars().take(20).collect()),
        ..Default::default()
    }
}

impl Transport for BluezTransport {
    fn name(&self) -> &'static str {
        "bluez"
    }

    fn serve_lock(&self, radio: LockRadio) -> BoxFuture<'_, Result<ServedLock, TransportError>> {
        async move {
            let connections = match self.ensure_gatt().await? {
                Some(rx) => rx,
                None => mpsc::channel(1).1, // links arrive through the first lock's stream
            };
            let (payload_tx, mut payload_rx) = watch::channel(radio.advertisement.clone());
            let adapter = self.adapter.clone();
            let first: AdvertisementHandle = adapter
                .advertise(advertisement(&radio.name, &radio.advertisement))
                .await
                .map_err(|e| TransportError::Failed(format!("starting advertising: {e}")))?;
            let name = radio.name.clone();
            let task = tokio::spawn(async move {
                let mut handle = Some(first);
                while payload_rx.changed().await.is_ok() {
                    let payload = payload_rx.borrow_and_update().clone();
                    drop(handle.take());
                    match adapter.advertise(advertisement(&name, &payload)).await {
                        Ok(h) => handle = Some(h),
                        Err(e) => tracing::warn!(error = %e, "re-advertising failed"),
                    }
                }
            });
            Ok(ServedLock {
                connections,
                advertiser: Box::new(BluezAdvertiser(payload_tx)),
                guard: Box::new(AbortOnDrop(task)),
            })
        }
        .boxed()
    }
}
