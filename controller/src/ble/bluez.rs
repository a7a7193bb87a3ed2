//! A real BLE peripheral through BlueZ (`bluer`): LE advertising with the Keyway service
//! data and a GATT server with the control point (write without response) and the response
//! characteristic (notify), UUIDs from `keyway_protocol::gatt`.
//!
//! One GATT application serves every lock of the controller; a phone names the lock in
//! HELLO, so links from BlueZ carry no lock hint. Each lock has its own advertisement,
//! registered again when its payload changes (the proximity code rotates every 30 s) and
//! 300 ms after each phone that had a link disconnects. The second is for Linux (seen on
//! 6.1 and 6.12): after a disconnect it restarts advertising with the instance the connection had
//! stopped, and if that instance was replaced meanwhile (a rotation during the link) it
//! advertises the stale data as non-connectable from a random address, so phones hear a door
//! they cannot connect to until the next rotation. BlueZ gives a peripheral no RSSI for an
//! incoming connection, so [`PeripheralLink::rssi`] is `None` and walk-up requests are
//! refused with `too_far` on this transport (tap-to-unlock works).
//!
//! `scripts/ble-vm-test` runs this end to end against a real BlueZ in a VM: the controller
//! with `--radio bluez:hci0`, the `keyway` CLI (btleplug) as the phone on `ble:hci1`, over two
//! `btvirt` controllers.

use super::{
    AbortOnDrop, Advertiser, LinkClosed, LockRadio, PeripheralLink, ServedLock, Transport,
    TransportError,
};
use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::gatt::CharacteristicWriter;
use bluer::gatt::local::{
    Application, ApplicationHandle, Characteristic, CharacteristicControl,
    CharacteristicControlEvent, CharacteristicNotify, CharacteristicNotifyMethod,
    CharacteristicWrite, CharacteristicWriteMethod, Service, characteristic_control,
};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use keyway_protocol::Id;
use keyway_protocol::gatt::{self, CONTROL_POINT_UUID, RESPONSE_UUID, SERVICE_UUID};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub struct BluezTransport {
    adapter: bluer::Adapter,
    // Kept alive for as long as the transport: dropping it ends the D-Bus session.
    _session: bluer::Session,
    gatt: tokio::sync::Mutex<Option<Gatt>>,
    /// `None`: BlueZ's default.
    advertising_interval: Option<Duration>,
    /// Counts phone links that ended (their phone gone); each served lock re-advertises
    /// after a change.
    links_ended: watch::Sender<u64>,
}

/// How long after a link ends the adverts are registered again: the kernel restarts
/// advertising when the disconnect completes, which the new registration must follow.
const READVERTISE_AFTER_LINK: Duration = Duration::from_millis(300);

/// How long an ended link waits for its phone to disconnect before it counts as ended.
const DISCONNECT_WAIT: Duration = Duration::from_secs(10);

/// Phone links, in arrival order, for whichever served lock takes the next one.
type LinkStream = Arc<tokio::sync::Mutex<mpsc::Receiver<Box<dyn PeripheralLink>>>>;

/// The registered GATT application and the links it produces.
struct Gatt {
    _app: ApplicationHandle,
    _router: AbortOnDrop,
    links: LinkStream,
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
    pub async fn new(
        adapter: Option<&str>,
        advertising_interval: Option<Duration>,
    ) -> Result<Self, TransportError> {
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
            advertising_interval,
            links_ended: watch::channel(0).0,
        })
    }

    /// Registers the GATT application the first time; returns its link stream.
    async fn links(&self) -> Result<LinkStream, TransportError> {
        let mut gatt = self.gatt.lock().await;
        if let Some(g) = gatt.as_ref() {
            return Ok(g.links.clone());
        }
        let (writes_tx, writes) = mpsc::unbounded_channel();
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
                            // One D-Bus call per write, not AcquireWrite's socket: BlueZ 5.66
                            // (Debian 12) keeps pointers to the writes that arrive while the
                            // socket is being acquired and sends whatever its buffer holds
                            // later, so a HELLO's first fragments were lost; and its one
                            // socket per characteristic is shared by all phones.
                            method: CharacteristicWriteMethod::Fun(Box::new(move |value, req| {
                                let _ = writes_tx.send((req.device_address, value));
                                Box::pin(async { Ok(()) })
                            })),
                            ..Default::default()
                        }),
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
        let ended = LinkEnded {
            adapter: self.adapter.clone(),
            count: self.links_ended.clone(),
        };
        let task = tokio::spawn(route_links(writes, response, tx, ended));
        let links: LinkStream = Arc::new(tokio::sync::Mutex::new(rx));
        *gatt = Some(Gatt {
            _app: handle,
            _router: AbortOnDrop(task),
            links: links.clone(),
        });
        Ok(links)
    }
}

/// Routes each phone's writes to its link (by device address), starting a link at a phone's
/// first write and giving it the phone's notification session.
async fn route_links(
    mut writes: mpsc::UnboundedReceiver<(bluer::Address, Vec<u8>)>,
    mut response: CharacteristicControl,
    tx: mpsc::Sender<Box<dyn PeripheralLink>>,
    ended: LinkEnded,
) {
    let mut notifiers: HashMap<bluer::Address, CharacteristicWriter> = HashMap::new();
    let mut links: HashMap<bluer::Address, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    loop {
        tokio::select! {
            ev = response.next() => match ev {
                Some(CharacteristicControlEvent::Notify(writer)) => {
                    notifiers.retain(|_, w| !w.is_closed().unwrap_or(true));
                    notifiers.insert(writer.device_address(), writer);
                }
                Some(_) => {}
                None => break,
            },
            write = writes.recv() => {
                let Some((addr, value)) = write else { break };
                let value = match links.get(&addr) {
                    Some(link) => match link.send(value) {
                        Ok(()) => continue,
                        Err(mpsc::error::SendError(value)) => value,
                    },
                    None => value,
                };
                // No live link for this phone: its first write starts one.
                links.retain(|_, link| !link.is_closed());
                let (link_tx, link_rx) = mpsc::unbounded_channel();
                let _ = link_tx.send(value);
                links.insert(addr, link_tx);
                let link = BluezLink {
                    writes: link_rx,
                    order: FragmentOrder::default(),
                    writer: notifiers.remove(&addr),
                    addr,
                    ended: ended.clone(),
                };
                if tx.send(Box::new(link)).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// How long a link waits for a missing fragment before handing over what it holds.
const REORDER_WAIT: Duration = Duration::from_millis(500);

/// Restores the phone's write order. bluer serves every D-Bus write on a task of its own, so
/// writes that BlueZ delivered in order can reach the link out of order; the fragment
/// header's sequence number (0 at each message's first fragment) puts them back in order.
#[derive(Default)]
struct FragmentOrder {
    next: u8,
    held: Vec<Vec<u8>>,
}

impl FragmentOrder {
    /// The next fragment in sequence, if it has arrived.
    fn pop(&mut self) -> Option<Vec<u8>> {
        let i = self
            .held
            .iter()
            .position(|f| gatt::fragment_seq(f).is_some_and(|(seq, _)| seq == self.next))?;
        Some(self.take(i))
    }

    /// Gives up on a gap: the oldest held fragment, for the reassembler to judge.
    fn pop_oldest(&mut self) -> Option<Vec<u8>> {
        (!self.held.is_empty()).then(|| self.take(0))
    }

    fn take(&mut self, i: usize) -> Vec<u8> {
        let f = self.held.remove(i);
        self.next = match gatt::fragment_seq(&f) {
            Some((seq, false)) => (seq + 1) & 0x3F,
            _ => 0, // a message's last fragment (or garbage): the next message starts at 0
        };
        f
    }
}

struct BluezLink {
    writes: mpsc::UnboundedReceiver<Vec<u8>>,
    order: FragmentOrder,
    writer: Option<CharacteristicWriter>,
    addr: bluer::Address,
    ended: LinkEnded,
}

/// Counts a link as ended once its phone has disconnected: adverts registered again while
/// the phone is still connected (the door refused it and hung up first) would be replaced
/// once more at its disconnect.
#[derive(Clone)]
struct LinkEnded {
    adapter: bluer::Adapter,
    count: watch::Sender<u64>,
}

impl Drop for BluezLink {
    fn drop(&mut self) {
        let (ended, addr) = (self.ended.clone(), self.addr);
        let counted = async move {
            let deadline = tokio::time::Instant::now() + DISCONNECT_WAIT;
            while tokio::time::Instant::now() < deadline {
                let connected = match ended.adapter.device(addr) {
                    Ok(device) => device.is_connected().await.unwrap_or(false),
                    Err(_) => false,
                };
                if !connected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ended.count.send_modify(|n| *n = n.wrapping_add(1));
        };
        // Dropped outside a runtime only at shutdown, when nothing advertises any more.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(counted);
        }
    }
}

impl PeripheralLink for BluezLink {
    fn next_write(&mut self) -> BoxFuture<'_, Option<Vec<u8>>> {
        async move {
            loop {
                if let Some(f) = self.order.pop() {
                    return Some(f);
                }
                let holding = !self.order.held.is_empty();
                let gone = async {
                    match &self.writer {
                        Some(w) => w.closed().await.unwrap_or(()),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    write = self.writes.recv() => self.order.held.push(write?),
                    // The phone's notification session ended: it disconnected or gave up.
                    () = gone => {
                        tracing::debug!(peer = %self.addr, "notification session closed");
                        return None;
                    }
                    () = tokio::time::sleep(REORDER_WAIT), if holding => {
                        return self.order.pop_oldest();
                    }
                }
            }
        }
        .boxed()
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
        // bluer's notifier MTU is already the usable value length (ATT MTU − 5).
        let att_mtu = self.writer.as_ref().map_or(0, |w| w.mtu() + 3);
        att_mtu.max(gatt::MIN_ATT_MTU)
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

fn advertisement(name: &str, payload: &[u8], interval: Option<Duration>) -> Advertisement {
    Advertisement {
        advertisement_type: bluer::adv::Type::Peripheral,
        service_data: BTreeMap::from([(uuid(SERVICE_UUID), payload.to_vec())]),
        discoverable: Some(true),
        // The service data fills the 31-byte legacy advertisement; BlueZ puts the name in
        // the scan response.
        local_name: Some(name.chars().take(20).collect()),
        min_interval: interval,
        max_interval: interval.map(|i| i + Duration::from_millis(10)),
        ..Default::default()
    }
}

/// Registers the advertisement again with a new payload, retrying until BlueZ accepts it.
/// bluer unregisters a dropped advertisement in the background, so the old one may still hold
/// its slot for a moment ("Maximum advertisements reached"); giving up would leave the door
/// silent until the next rotation.
async fn readvertise(
    adapter: &bluer::Adapter,
    name: &str,
    payload: &[u8],
    interval: Option<Duration>,
) -> AdvertisementHandle {
    let mut delay = Duration::from_millis(20);
    let mut failures = 0u32;
    loop {
        match adapter
            .advertise(advertisement(name, payload, interval))
            .await
        {
            Ok(handle) => return handle,
            Err(e) => {
                failures += 1;
                if failures == 10 {
                    tracing::warn!(error = %e, "re-advertising keeps failing; still retrying");
                } else {
                    tracing::debug!(error = %e, failures, "re-advertising failed; retrying");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl Transport for BluezTransport {
    fn name(&self) -> &'static str {
        "bluez"
    }

    fn serve_lock(&self, radio: LockRadio) -> BoxFuture<'_, Result<ServedLock, TransportError>> {
        async move {
            // Links carry no lock (the phone names it in HELLO), so each served lock takes
            // the next one when it can: dropping a lock (removed, or served again with new
            // settings) loses no link and leaves the others answering.
            let links = self.links().await?;
            let (link_tx, connections) = mpsc::channel(1);
            let forward = tokio::spawn(async move {
                while let Ok(permit) = link_tx.reserve().await {
                    let Some(link) = links.lock().await.recv().await else {
                        break;
                    };
                    permit.send(link);
                }
            });
            let (payload_tx, mut payload_rx) = watch::channel(radio.advertisement.clone());
            let adapter = self.adapter.clone();
            let interval = self.advertising_interval;
            let first: AdvertisementHandle = adapter
                .advertise(advertisement(&radio.name, &radio.advertisement, interval))
                .await
                .map_err(|e| TransportError::Failed(format!("starting advertising: {e}")))?;
            let name = radio.name.clone();
            let mut links_ended = self.links_ended.subscribe();
            let task = tokio::spawn(async move {
                let mut handle = Some(first);
                loop {
                    tokio::select! {
                        changed = payload_rx.changed() => if changed.is_err() { break },
                        changed = links_ended.changed() => {
                            if changed.is_err() {
                                break;
                            }
                            tokio::time::sleep(READVERTISE_AFTER_LINK).await;
                            links_ended.borrow_and_update();
                        }
                    }
                    let payload = payload_rx.borrow_and_update().clone();
                    drop(handle.take());
                    handle = Some(readvertise(&adapter, &name, &payload, interval).await);
                }
            });
            Ok(ServedLock {
                connections,
                advertiser: Box::new(BluezAdvertiser(payload_tx)),
                guard: Box::new((AbortOnDrop(task), AbortOnDrop(forward))),
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::FragmentOrder;
    use keyway_protocol::gatt::{self, Reassembler};

    fn deliver(order: &mut FragmentOrder, r: &mut Reassembler, got: &mut Vec<Vec<u8>>) {
        while let Some(f) = order.pop() {
            if let Some(m) = r.push(&f).unwrap() {
                got.push(m);
            }
        }
    }

    #[test]
    fn fragment_order_restores_the_phone_s_write_order() {
        let hello: Vec<u8> = (0..84).collect();
        let auth: Vec<u8> = (0..200).rev().collect();
        let (mut order, mut r, mut got) = (FragmentOrder::default(), Reassembler::new(), vec![]);
        for msg in [&hello, &auth] {
            let mut frags = gatt::fragment(msg, gatt::MIN_ATT_MTU).unwrap();
            let n = frags.len();
            frags.swap(0, 1);
            frags.swap(n - 2, n - 1);
            for f in frags {
                order.held.push(f);
                deliver(&mut order, &mut r, &mut got);
            }
        }
        assert_eq!(got, vec![hello, auth]);
        assert!(order.held.is_empty());
    }

    #[test]
    fn a_gap_is_handed_over_for_the_reassembler_to_refuse() {
        let frags = gatt::fragment(&[7u8; 60], gatt::MIN_ATT_MTU).unwrap();
        let mut order = FragmentOrder::default();
        order.held.push(frags[1].clone()); // the first fragment never arrives
        assert_eq!(order.pop(), None);
        let f = order.pop_oldest().unwrap();
        assert!(Reassembler::new().push(&f).is_err());
    }
}
