//! The radio hub: doors register in-process, phones connect over loopback TCP.

use crate::model::{Noise, PathLoss, Position, Script};
use crate::wire::{HubEvent, MAX_LINE_LEN, PhoneOp};
use keyway_protocol::advert::Advertisement;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the simulated air behaves.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub model: PathLoss,
    /// Seed of the shadowing noise.
    pub seed: u64,
    /// Default advertising interval for doors that do not set one, ms.
    pub advertising_interval_ms: u64,
    /// ATT MTU of every link; writes and notifications carry at most `att_mtu - 3` bytes.
    pub att_mtu: usize,
    /// A connect fails when the phone-side sample is weaker than this, dBm.
    pub connect_min_rssi: i16,
    /// Phone transmit power referenced to 1 m, used for the RSSI the door hears, dBm.
    pub phone_tx_power_at_1m: f64,
    /// BLE connection interval, ms. When non-zero, link traffic moves only at connection
    /// events (every interval after the link came up; fragments sent back to back share an
    /// event) and a connect waits for the door's next advertising event plus one interval.
    /// 0 delivers immediately.
    pub connection_interval_ms: u64,
    /// When set, doors range to phones (UWB, Channel Sounding): to connected phones when the
    /// door asks ([`DoorLink::range_m`]), and to scanning phones within
    /// [`RANGING_REACH_M`] every [`RANGING_INTERVAL_MS`] (a `range` event, the phone's half
    /// of a ranging session). Each range is the true distance plus Gaussian error of this σ,
    /// metres. `None`: no ranging.
    pub ranging_sigma_m: Option<f64>,
}

/// Scanning phones are ranged within this distance of a door, metres: a ranging session
/// comes up once the phone is near enough for the door to matter.
pub const RANGING_REACH_M: f64 = 6.0;
/// A scanning phone is ranged to each door within reach at most this often, ms (5 Hz, as UWB
/// stacks range).
pub const RANGING_INTERVAL_MS: u64 = 200;

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            model: PathLoss::default(),
            seed: 0x6b65_7977_6179,
            // Short, as a mains-powered door can afford: phones find it sooner and walk-up hears
            // it ~20-30 times a second.
            advertising_interval_ms: 30,
            att_mtu: 185,
            connect_min_rssi: -95,
            phone_tx_power_at_1m: -59.0,
            connection_interval_ms: 0,
            ranging_sigma_m: None,
        }
    }
}

/// A door's radio as registered by the controller.
#[derive(Debug, Clone)]
pub struct DoorSpec {
    /// Name phones use to connect (the controller uses the lock id in UUID form).
    pub id: String,
    pub position: Position,
    /// Received power at 1 m of this door's advertisements, dBm.
    pub tx_power_at_1m: i8,
    /// `None` uses the hub default.
    pub advertising_interval_ms: Option<u64>,
    /// Service-data payload (normally an encoded [`Advertisement`]).
    pub advertisement: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("a door named {0:?} is already registered")]
    DuplicateDoor(String),
}

/// The link is gone; nothing more can be sent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("link closed")]
pub struct LinkClosed;

enum Motion {
    At(Position),
    Script { started: Instant, script: Script },
}

impl Motion {
    fn position(&self, now: Instant) -> Position {
        match self {
            Motion::At(p) => *p,
            Motion::Script { started, script } => {
                let t = now.saturating_duration_since(*started).as_millis() as u64;
                script.position_at(t).unwrap_or_default()
            }
        }
    }
}

struct DoorEntry {
    generation: u64,
    position: Position,
    tx_power: f64,
    interval_ms: u64,
    advert: Vec<u8>,
    advertising: bool,
    incoming: mpsc::Sender<DoorLink>,
}

struct LinkEntry {
    door: String,
    to_door: mpsc::Sender<Vec<u8>>,
    timing: Arc<Mutex<LinkTiming>>,
}

/// Connection-event bookkeeping of one link: fragments of one message sent back to back
/// share a connection event; an answer goes out at the earliest in the next event.
#[derive(Debug)]
struct LinkTiming {
    established: Instant,
    /// Last event used and whether it carried phone → door traffic.
    last: Option<(u64, bool)>,
}

impl LinkTiming {
    fn new() -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            established: Instant::now(),
            last: None,
        }))
    }
}

/// How long a transmission in direction `to_door` must wait for its connection event.
fn until_event(timing: &Mutex<LinkTiming>, interval_ms: u64, to_door: bool) -> Duration {
    if interval_ms == 0 {
        return Duration::ZERO;
    }
    let mut t = timing.lock().unwrap();
    let interval = interval_ms as u128 * 1_000_000;
    let elapsed = Instant::now()
        .saturating_duration_since(t.established)
        .as_nanos();
    // The earliest event not yet over (an event "lasts" 1 ms for back-to-back fragments).
    let earliest = if elapsed % interval < 1_000_000 {
        elapsed / interval
    } else {
        elapsed / interval + 1
    } as u64;
    let event = match t.last {
        None => earliest,
        Some((e, dir)) if dir == to_door => earliest.max(e),
        Some((e, _)) => earliest.max(e + 1),
    };
    t.last = Some((event, to_door));
    let at = event as u128 * interval;
    Duration::from_nanos(at.saturating_sub(elapsed) as u64)
}

struct PhoneEntry {
    name: String,
    motion: Motion,
    scanning: bool,
    out: mpsc::Sender<String>,
    links: HashMap<u64, LinkEntry>,
    /// When each door last ranged this phone while it scanned.
    last_ranged: HashMap<String, Instant>,
}

#[derive(Default)]
struct State {
    doors: HashMap<String, DoorEntry>,
    phones: HashMap<u64, PhoneEntry>,
    next_phone: u64,
    next_generation: u64,
}

struct Shared {
    cfg: HubConfig,
    start: Instant,
    noise: Mutex<Noise>,
    state: Mutex<State>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn sample(&self, tx: f64, d: f64) -> Option<i16> {
        self.cfg
            .model
            .receive(tx, d, &mut self.noise.lock().unwrap())
    }

    fn at_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A ranged distance from `door` to the scanning phone `p`, `dist` away, when the hub
    /// ranges, the phone is within reach and the door has not ranged it in the last interval.
    fn range_scanning(
        &self,
        p: &mut PhoneEntry,
        door: &str,
        dist: f64,
        now: Instant,
    ) -> Option<f64> {
        let sigma = self.cfg.ranging_sigma_m?;
        if dist > RANGING_REACH_M {
            // Out of reach the session ends; coming back starts a new one at once.
            p.last_ranged.remove(door);
            return None;
        }
        let due = p.last_ranged.get(door).is_none_or(|&last| {
            now.saturating_duration_since(last) >= Duration::from_millis(RANGING_INTERVAL_MS)
        });
        if !due {
            return None;
        }
        p.last_ranged.insert(door.to_owned(), now);
        Some(self.ranged(sigma, dist))
    }

    /// One ranged reading of a true distance `dist`: Gaussian error of σ `sigma`, never below 0.
    fn ranged(&self, sigma: f64, dist: f64) -> f64 {
        let error = sigma * self.noise.lock().unwrap().gaussian();
        (dist + error).max(0.0)
    }
}

/// The simulated air around one controller. Dropping it closes every phone socket.
pub struct RadioHub {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for RadioHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadioHub")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for RadioHub {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.shared.shutdown.send(true);
    }
}

impl RadioHub {
    /// Listens for phones on `addr` (use a loopback address; port 0 picks one).
    pub async fn bind(addr: impl ToSocketAddrs, cfg: HubConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            noise: Mutex::new(Noise::new(cfg.seed)),
            cfg,
            start: Instant::now(),
            state: Mutex::new(State::default()),
            shutdown,
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        tracing::debug!(%peer, "phone socket accepted");
                        tokio::spawn(serve_phone(s.clone(), stream));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "radio hub accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(Self {
            shared,
            addr,
            accept,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &HubConfig {
        &self.shared.cfg
    }

    /// Number of phones currently identified on the hub.
    pub fn phone_count(&self) -> usize {
        self.shared.state.lock().unwrap().phones.len()
    }

    /// Registers a door; it advertises until the returned radio is dropped.
    pub fn add_door(&self, spec: DoorSpec) -> Result<DoorRadio, HubError> {
        let (tx, rx) = mpsc::channel(16);
        let generation = {
            let mut st = self.shared.state.lock().unwrap();
            if st.doors.contains_key(&spec.id) {
                return Err(HubError::DuplicateDoor(spec.id));
            }
            st.next_generation += 1;
            let generation = st.next_generation;
            st.doors.insert(
                spec.id.clone(),
                DoorEntry {
                    generation,
                    position: spec.position,
                    tx_power: spec.tx_power_at_1m as f64,
                    interval_ms: spec
                        .advertising_interval_ms
                        .unwrap_or(self.shared.cfg.advertising_interval_ms)
                        .max(1),
                    advert: spec.advertisement,
                    advertising: true,
                    incoming: tx,
                },
            );
            generation
        };
        let ticker = tokio::spawn(advertise(self.shared.clone(), spec.id.clone(), generation));
        Ok(DoorRadio {
            control: DoorControl {
                id: spec.id,
                generation,
                shared: self.shared.clone(),
            },
            incoming: rx,
            ticker,
        })
    }
}

/// Cloneable handle to change what a registered door advertises and where it stands.
#[derive(Clone)]
pub struct DoorControl {
    id: String,
    generation: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DoorControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorControl").field("id", &self.id).finish()
    }
}

impl DoorControl {
    pub fn id(&self) -> &str {
        &self.id
    }

    fn with_entry(&self, f: impl FnOnce(&mut DoorEntry)) {
        let mut st = self.shared.state.lock().unwrap();
        if let Some(d) = st.doors.get_mut(&self.id)
            && d.generation == self.generation
        {
            f(d);
        }
    }

    pub fn set_advertisement(&self, payload: &[u8]) {
        self.with_entry(|d| d.advert = payload.to_vec());
    }

    pub fn set_tx_power(&self, tx_power_at_1m: i8) {
        self.with_entry(|d| d.tx_power = tx_power_at_1m as f64);
    }

    pub fn set_position(&self, position: Position) {
        self.with_entry(|d| d.position = position);
    }

    pub fn set_advertising(&self, on: bool) {
        self.with_entry(|d| d.advertising = on);
    }
}

/// A registered door: advertises on the hub and accepts phone links.
pub struct DoorRadio {
    control: DoorControl,
    incoming: mpsc::Receiver<DoorLink>,
    ticker: JoinHandle<()>,
}

impl std::fmt::Debug for DoorRadio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorRadio")
            .field("id", &self.control.id)
            .finish()
    }
}

impl Drop for DoorRadio {
    fn drop(&mut self) {
        self.ticker.abort();
        let mut st = self.control.shared.state.lock().unwrap();
        if st
            .doors
            .get(&self.control.id)
            .is_some_and(|d| d.generation == self.control.generation)
        {
            st.doors.remove(&self.control.id);
        }
        // The door powered off: every phone linked to it sees the link drop.
        let mut gone = Vec::new();
        for p in st.phones.values_mut() {
            let ids: Vec<u64> = p
                .links
                .iter()
                .filter(|(_, l)| l.door == self.control.id)
                .map(|(id, _)| *id)
                .collect();
            for link in ids {
                p.links.remove(&link);
                gone.push((p.out.clone(), link));
            }
        }
        drop(st);
        for (out, link) in gone {
            let _ = out.try_send(encode(&HubEvent::Disconnected {
                link,
                reason: "door gone".into(),
            }));
        }
    }
}

impl DoorRadio {
    pub fn control(&self) -> DoorControl {
        self.control.clone()
    }

    /// The next phone that connected; `None` once the hub is gone.
    pub async fn accept(&mut self) -> Option<DoorLink> {
        self.incoming.recv().await
    }
}

/// The door's end of one phone connection.
pub struct DoorLink {
    door: String,
    phone_name: String,
    phone: u64,
    link: u64,
    writes: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    closed: bool,
    timing: Arc<Mutex<LinkTiming>>,
}

impl std::fmt::Debug for DoorLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorLink")
            .field("door", &self.door)
            .field("phone", &self.phone_name)
            .field("link", &self.link)
            .finish()
    }
}

impl Drop for DoorLink {
    fn drop(&mut self) {
        self.close();
    }
}

impl DoorLink {
    pub fn door(&self) -> &str {
        &self.door
    }

    /// The phone's self-declared name (logs only).
    pub fn peer(&self) -> &str {
        &self.phone_name
    }

    pub fn att_mtu(&self) -> usize {
        self.shared.cfg.att_mtu
    }

    /// The next ATT write to the control point; `None` once the phone disconnected.
    pub async fn next_write(&mut self) -> Option<Vec<u8>> {
        if self.closed {
            return None;
        }
        self.writes.recv().await
    }

    /// Sends one notification (one fragment, at most `att_mtu - 3` bytes).
    pub async fn notify(&self, fragment: &[u8]) -> Result<(), LinkClosed> {
        if self.closed || fragment.len() > self.att_mtu() - 3 {
            return Err(LinkClosed);
        }
        let out = {
            let st = self.shared.state.lock().unwrap();
            let phone = st.phones.get(&self.phone).ok_or(LinkClosed)?;
            if !phone.links.contains_key(&self.link) {
                return Err(LinkClosed);
            }
            phone.out.clone()
        };
        let line = encode(&HubEvent::Notify {
            link: self.link,
            data: hex::encode(fragment),
        });
        let wait = until_event(&self.timing, self.shared.cfg.connection_interval_ms, false);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        out.send(line).await.map_err(|_| LinkClosed)
    }

    /// A fresh sample of the phone's signal as this door hears it.
    pub fn rssi(&self) -> Option<i16> {
        let (pos, door_pos) = {
            let st = self.shared.state.lock().unwrap();
            let phone = st.phones.get(&self.phone)?;
            let door = st.doors.get(&self.door)?;
            (phone.motion.position(Instant::now()), door.position)
        };
        self.shared.sample(
            self.shared.cfg.phone_tx_power_at_1m,
            pos.distance(&door_pos),
        )
    }

    /// A fresh ranged distance to the phone, metres, when the hub's doors range
    /// ([`HubConfig::ranging_sigma_m`]).
    pub fn range_m(&self) -> Option<f64> {
        let sigma = self.shared.cfg.ranging_sigma_m?;
        let distance = {
            let st = self.shared.state.lock().unwrap();
            let phone = st.phones.get(&self.phone)?;
            let door = st.doors.get(&self.door)?;
            phone
                .motion
                .position(Instant::now())
                .distance(&door.position)
        };
        Some(self.shared.ranged(sigma, distance))
    }

    /// Drops the link; the phone sees `disconnected` with reason `door`.
    pub fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let out = {
            let mut st = self.shared.state.lock().unwrap();
            st.phones
                .get_mut(&self.phone)
                .and_then(|p| p.links.remove(&self.link).is_some().then(|| p.out.clone()))
        };
        if let Some(out) = out {
            let _ = out.try_send(encode(&HubEvent::Disconnected {
                link: self.link,
                reason: "door".into(),
            }));
        }
    }
}

fn encode(ev: &HubEvent) -> String {
    serde_json::to_string(ev).expect("hub events serialize")
}

async fn advertise(shared: Arc<Shared>, door: String, generation: u64) {
    loop {
        let interval = {
            let st = shared.state.lock().unwrap();
            match st.doors.get(&door) {
                Some(d) if d.generation == generation => d.interval_ms,
                _ => return,
            }
        };
        // advDelay: BLE adds 0–10 ms of random delay to each advertising event.
        let jitter = shared.noise.lock().unwrap().next_u64() % 10;
        tokio::time::sleep(Duration::from_millis(interval + jitter)).await;
        let now = Instant::now();
        let mut sends = Vec::new();
        {
            let mut st = shared.state.lock().unwrap();
            let State { doors, phones, .. } = &mut *st;
            let Some(d) = doors.get(&door).filter(|d| d.generation == generation) else {
                return;
            };
            if !d.advertising {
                continue;
            }
            let short_id = Advertisement::decode(&d.advert)
                .ok()
                .map(|a| hex::encode(a.lock_short_id));
            for p in phones.values_mut().filter(|p| p.scanning) {
                let dist = p.motion.position(now).distance(&d.position);
                if let Some(metres) = shared.range_scanning(p, &door, dist, now) {
                    let line = encode(&HubEvent::Range {
                        door: door.clone(),
                        metres,
                        at_ms: shared.at_ms(),
                    });
                    sends.push((p.out.clone(), line));
                }
                if let Some(rssi) = shared.sample(d.tx_power, dist) {
                    let line = encode(&HubEvent::Advert {
                        door: door.clone(),
                        short_id: short_id.clone(),
                        data: hex::encode(&d.advert),
                        rssi,
                        at_ms: shared.at_ms(),
                    });
                    sends.push((p.out.clone(), line));
                }
            }
        }
        for (out, line) in sends {
            // A phone that cannot keep up misses advertisements, as on air.
            let _ = out.try_send(line);
        }
    }
}

async fn serve_phone(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let (out, mut out_rx) = mpsc::channel::<String>(4096);
    let writer = tokio::spawn(async move {
        while let Some(mut line) = out_rx.recv().await {
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut shutdown = shared.shutdown.subscribe();
    let mut reader = BufReader::new(read);
    let mut phone: Option<u64> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut limited = (&mut reader).take(MAX_LINE_LEN as u64 + 1);
        let n = tokio::select! {
            r = limited.read_until(b'\n', &mut buf) => r,
            _ = shutdown.changed() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.last() != Some(&b'\n') {
            let message = if buf.len() > MAX_LINE_LEN {
                "line too long".to_string()
            } else {
                "truncated line".to_string()
            };
            let _ = out.send(encode(&HubEvent::Error { message })).await;
            break;
        }
        let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
        if line.trim().is_empty() {
            continue;
        }
        let op = match serde_json::from_str::<PhoneOp>(&line) {
            Ok(op) => op,
            Err(e) => {
                let _ = out
                    .send(encode(&HubEvent::Error {
                        message: format!("bad line: {e}"),
                    }))
                    .await;
                continue;
            }
        };
        if let Err(message) = handle_op(&shared, &mut phone, &out, op).await {
            let _ = out.send(encode(&HubEvent::Error { message })).await;
        }
    }
    if let Some(id) = phone {
        // Dropping the entry drops each link's sender: doors see the phone go away.
        shared.state.lock().unwrap().phones.remove(&id);
    }
    drop(out);
    let _ = writer.await;
}

async fn handle_op(
    shared: &Arc<Shared>,
    phone: &mut Option<u64>,
    out: &mpsc::Sender<String>,
    op: PhoneOp,
) -> Result<(), String> {
    let PhoneOp::Hello { name } = op else {
        let id = phone.ok_or("send hello first")?;
        return handle_phone_op(shared, id, out, op).await;
    };
    if phone.is_some() {
        return Err("hello sent twice".into());
    }
    let id = {
        let mut st = shared.state.lock().unwrap();
        st.next_phone += 1;
        let id = st.next_phone;
        st.phones.insert(
            id,
            PhoneEntry {
                name,
                motion: Motion::At(Position::default()),
                scanning: true,
                out: out.clone(),
                links: HashMap::new(),
                last_ranged: HashMap::new(),
            },
        );
        id
    };
    *phone = Some(id);
    let _ = out
        .send(encode(&HubEvent::Welcome {
            phone: id,
            att_mtu: shared.cfg.att_mtu,
        }))
        .await;
    Ok(())
}

async fn handle_phone_op(
    shared: &Arc<Shared>,
    id: u64,
    out: &mpsc::Sender<String>,
    op: PhoneOp,
) -> Result<(), String> {
    match op {
        PhoneOp::Hello { .. } => unreachable!("handled by the caller"),
        PhoneOp::Position { x, y } => with_phone(shared, id, |p| {
            p.motion = Motion::At(Position { x, y });
            Ok(())
        }),
        PhoneOp::Script { mut points } => {
            if points.is_empty() {
                return Err("script needs at least one point".into());
            }
            points.sort_by_key(|p| p.0);
            with_phone(shared, id, |p| {
                p.motion = Motion::Script {
                    started: Instant::now(),
                    script: Script { points },
                };
                Ok(())
            })
        }
        PhoneOp::Scan { on } => with_phone(shared, id, |p| {
            p.scanning = on;
            Ok(())
        }),
        PhoneOp::Connect { link, door } => {
            if shared.cfg.connection_interval_ms > 0 {
                // The central connects on the door's next advertising event, and the first
                // connection event follows one interval later.
                let adv = {
                    let st = shared.state.lock().unwrap();
                    st.doors.get(&door).map_or(0, |d| d.interval_ms)
                };
                let jitter = shared.noise.lock().unwrap().next_u64() % adv.max(1);
                let delay = jitter + shared.cfg.connection_interval_ms;
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let ev = connect(shared, id, link, &door);
            let _ = out.send(encode(&ev)).await;
            Ok(())
        }
        PhoneOp::Write { link, data } => {
            let bytes = hex::decode(&data).map_err(|e| format!("write data: {e}"))?;
            if bytes.len() > shared.cfg.att_mtu - 3 {
                return Err(format!(
                    "write of {} bytes exceeds ATT MTU {}",
                    bytes.len(),
                    shared.cfg.att_mtu
                ));
            }
            let (to_door, timing) = with_phone(shared, id, |p| {
                p.links
                    .get(&link)
                    .map(|l| (l.to_door.clone(), l.timing.clone()))
                    .ok_or(format!("no link {link}"))
            })?;
            let wait = until_event(&timing, shared.cfg.connection_interval_ms, true);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if to_door.send(bytes).await.is_err() {
                disconnected(shared, id, link, "door gone").await;
            }
            Ok(())
        }
        PhoneOp::Disconnect { link } => {
            disconnected(shared, id, link, "phone").await;
            Ok(())
        }
    }
}

fn with_phone<T>(
    shared: &Shared,
    id: u64,
    f: impl FnOnce(&mut PhoneEntry) -> Result<T, String>,
) -> Result<T, String> {
    let mut st = shared.state.lock().unwrap();
    let p = st.phones.get_mut(&id).ok_or("unknown phone")?;
    f(p)
}

async fn disconnected(shared: &Shared, id: u64, link: u64, reason: &str) {
    let out = {
        let mut st = shared.state.lock().unwrap();
        st.phones
            .get_mut(&id)
            .and_then(|p| p.links.remove(&link).map(|_| p.out.clone()))
    };
    if let Some(out) = out {
        let _ = out
            .send(encode(&HubEvent::Disconnected {
                link,
                reason: reason.into(),
            }))
            .await;
    }
}

fn connect(shared: &Arc<Shared>, id: u64, link: u64, door: &str) -> HubEvent {
    let failed = |error: &str| HubEvent::ConnectFailed {
        link,
        door: door.to_string(),
        error: error.to_string(),
    };
    let mut st = shared.state.lock().unwrap();
    let Some(d) = st.doors.get(door) else {
        return failed("unknown door");
    };
    let (door_pos, tx, incoming) = (d.position, d.tx_power, d.incoming.clone());
    let Some(p) = st.phones.get_mut(&id) else {
        return failed("unknown phone");
    };
    if p.links.contains_key(&link) {
        return failed("link id in use");
    }
    let dist = p.motion.position(Instant::now()).distance(&door_pos);
    let rssi = match shared.sample(tx, dist) {
        Some(r) if r >= shared.cfg.connect_min_rssi => r,
        _ => return failed("out of range"),
    };
    let (to_door, writes) = mpsc::channel(64);
    let timing = LinkTiming::new();
    let door_link = DoorLink {
        door: door.to_string(),
        phone_name: p.name.clone(),
        phone: id,
        link,
        writes,
        shared: shared.clone(),
        closed: false,
        timing: timing.clone(),
    };
    p.links.insert(
        link,
        LinkEntry {
            door: door.to_string(),
            to_door,
            timing,
        },
    );
    if let Err(e) = incoming.try_send(door_link) {
        // The DoorLink inside the error closes on drop, which would need the lock we hold.
        p.links.remove(&link);
        let mut dl = e.into_inner();
        dl.closed = true;
        return failed("door not accepting connections");
    }
    HubEvent::Connected {
        link,
        door: door.to_string(),
        att_mtu: shared.cfg.att_mtu,
        rssi,
    }
}
