//! Phone side of the hub: what the mobile core's simulated BLE transport and tests use.

use crate::wire::{HubEvent, MAX_LINE_LEN, PhoneOp};
use keyway_protocol::advert::Advertisement;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("radio hub socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("radio hub closed the connection")]
    HubGone,
    #[error("radio hub refused: {0}")]
    Hub(String),
    #[error("connect to {door} failed: {error}")]
    ConnectFailed { door: String, error: String },
    #[error("link closed")]
    LinkClosed,
    #[error("timed out")]
    Timeout,
}

/// One advertisement as the phone received it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvertSeen {
    pub door: String,
    /// Decoded Keyway advertisement, when the payload is one.
    pub advertisement: Option<Advertisement>,
    pub data: Vec<u8>,
    pub rssi: i16,
    /// Hub time of reception, ms since the hub started.
    pub at_ms: u64,
}

/// One distance a door ranged to the phone (hubs that range only).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeen {
    pub door: String,
    pub metres: f64,
    /// Hub time of the reading, ms since the hub started.
    pub at_ms: u64,
}

enum LinkEvent {
    Notify(Vec<u8>),
    Disconnected(String),
}

struct Connected {
    att_mtu: usize,
    rssi: i16,
}

#[derive(Default)]
struct Routes {
    pending: HashMap<u64, oneshot::Sender<Result<Connected, SimError>>>,
    links: HashMap<u64, mpsc::UnboundedSender<LinkEvent>>,
    errors: Vec<String>,
}

/// A simulated phone connected to a radio hub.
pub struct SimPhone {
    out: mpsc::Sender<String>,
    adverts: broadcast::Sender<AdvertSeen>,
    ranges: broadcast::Sender<RangeSeen>,
    routes: Arc<Mutex<Routes>>,
    next_link: AtomicU64,
    phone_id: u64,
    att_mtu: usize,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl std::fmt::Debug for SimPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPhone")
            .field("phone_id", &self.phone_id)
            .finish()
    }
}

impl Drop for SimPhone {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl SimPhone {
    /// Connects to the hub at `addr` and identifies as `name`.
    pub async fn connect(addr: impl ToSocketAddrs, name: &str) -> Result<Self, SimError> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let (out, mut out_rx) = mpsc::channel::<String>(1024);
        let writer = tokio::spawn(async move {
            while let Some(mut line) = out_rx.recv().await {
                line.push('\n');
                if write.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let (adverts, _) = broadcast::channel(1024);
        let (ranges, _) = broadcast::channel(256);
        let routes = Arc::new(Mutex::new(Routes::default()));
        let (welcome_tx, welcome_rx) = oneshot::channel();
        let reader = tokio::spawn(read_loop(
            BufReader::new(read),
            adverts.clone(),
            ranges.clone(),
            routes.clone(),
            welcome_tx,
        ));
        let mut phone = Self {
            out,
            adverts,
            ranges,
            routes,
            next_link: AtomicU64::new(1),
            phone_id: 0,
            att_mtu: 0,
            reader,
            writer,
        };
        phone
            .send(&PhoneOp::Hello {
                name: name.to_string(),
            })
            .await?;
        let (id, mtu) = tokio::time::timeout(Duration::from_secs(5), welcome_rx)
            .await
            .map_err(|_| SimError::Timeout)?
            .map_err(|_| SimError::HubGone)?;
        phone.phone_id = id;
        phone.att_mtu = mtu;
        Ok(phone)
    }

    pub fn phone_id(&self) -> u64 {
        self.phone_id
    }

    /// The ATT MTU the hub gives every link.
    pub fn att_mtu(&self) -> usize {
        self.att_mtu
    }

    async fn send(&self, op: &PhoneOp) -> Result<(), SimError> {
        let line = serde_json::to_string(op).expect("ops serialize");
        self.send_line(line).await
    }

    /// Sends a raw line (tests use it to check the hub survives garbage).
    pub async fn send_line(&self, line: String) -> Result<(), SimError> {
        self.out.send(line).await.map_err(|_| SimError::HubGone)
    }

    /// Error events the hub sent so far (oldest first); clears the list.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut self.routes.lock().unwrap().errors)
    }

    /// Stands still at `(x, y)` metres.
    pub async fn set_position(&self, x: f64, y: f64) -> Result<(), SimError> {
        self.send(&PhoneOp::Position { x, y }).await
    }

    /// Walks along `(t_ms, x, y)` points starting now (see [`crate::Script`]).
    pub async fn run_script(&self, points: &[(u64, f64, f64)]) -> Result<(), SimError> {
        self.send(&PhoneOp::Script {
            points: points.to_vec(),
        })
        .await
    }

    pub async fn set_scanning(&self, on: bool) -> Result<(), SimError> {
        self.send(&PhoneOp::Scan { on }).await
    }

    /// A stream of advertisements from now on. Slow receivers miss some (lagged), as on air.
    pub fn adverts(&self) -> broadcast::Receiver<AdvertSeen> {
        self.adverts.subscribe()
    }

    /// A stream of the distances doors range to this phone from now on (empty unless the hub
    /// ranges). Slow receivers miss some (lagged).
    pub fn ranges(&self) -> broadcast::Receiver<RangeSeen> {
        self.ranges.subscribe()
    }

    /// Waits for the next advertisement of `door` (or any door when `None`).
    pub async fn next_advert(
        &self,
        door: Option<&str>,
        timeout: Duration,
    ) -> Result<AdvertSeen, SimError> {
        let mut rx = self.adverts();
        tokio::time::timeout(timeout, async {
            loop {
                match rx.recv().await {
                    Ok(a) if door.is_none_or(|d| d == a.door) => return Ok(a),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Err(SimError::HubGone),
                }
            }
        })
        .await
        .map_err(|_| SimError::Timeout)?
    }

    /// Opens a GATT link to `door` (the name it advertises under).
    pub async fn connect_door(&self, door: &str) -> Result<Link, SimError> {
        let link = self.next_link.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        {
            let mut r = self.routes.lock().unwrap();
            r.pending.insert(link, tx);
            r.links.insert(link, ev_tx);
        }
        self.send(&PhoneOp::Connect {
            link,
            door: door.to_string(),
        })
        .await?;
        let connected = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .map_err(|_| SimError::Timeout)?
            .map_err(|_| SimError::HubGone);
        let connected = match connected.and_then(|r| r) {
            Ok(c) => c,
            Err(e) => {
                self.routes.lock().unwrap().links.remove(&link);
                return Err(e);
            }
        };
        Ok(Link {
            id: link,
            door: door.to_string(),
            att_mtu: connected.att_mtu,
            rssi: connected.rssi,
            out: self.out.clone(),
            events: ev_rx,
            open: true,
        })
    }
}

/// The phone's end of a GATT link to a door.
#[derive(Debug)]
pub struct Link {
    id: u64,
    door: String,
    att_mtu: usize,
    rssi: i16,
    out: mpsc::Sender<String>,
    events: mpsc::UnboundedReceiver<LinkEvent>,
    open: bool,
}

impl std::fmt::Debug for LinkEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkEvent::Notify(d) => write!(f, "Notify({} bytes)", d.len()),
            LinkEvent::Disconnected(r) => write!(f, "Disconnected({r})"),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.open {
            let line = serde_json::to_string(&PhoneOp::Disconnect { link: self.id })
                .expect("ops serialize");
            let _ = self.out.try_send(line);
        }
    }
}

impl Link {
    pub fn door(&self) -> &str {
        &self.door
    }

    pub fn att_mtu(&self) -> usize {
        self.att_mtu
    }

    /// Phone-side RSSI sampled when the link came up.
    pub fn rssi(&self) -> i16 {
        self.rssi
    }

    /// One ATT write (one GATT fragment) to the door's control point.
    pub async fn write(&self, fragment: &[u8]) -> Result<(), SimError> {
        if !self.open {
            return Err(SimError::LinkClosed);
        }
        let line = serde_json::to_string(&PhoneOp::Write {
            link: self.id,
            data: hex::encode(fragment),
        })
        .expect("ops serialize");
        self.out.send(line).await.map_err(|_| SimError::HubGone)
    }

    /// The next notification (one fragment); `None` once the link is down.
    pub async fn next_notification(&mut self) -> Option<Vec<u8>> {
        if !self.open {
            return None;
        }
        match self.events.recv().await {
            Some(LinkEvent::Notify(d)) => Some(d),
            Some(LinkEvent::Disconnected(reason)) => {
                tracing::debug!(link = self.id, %reason, "link closed by the hub");
                self.open = false;
                None
            }
            None => {
                self.open = false;
                None
            }
        }
    }

    /// Whether the link is still up as far as this end knows.
    pub fn is_open(&self) -> bool {
        self.open
    }

    pub async fn close(mut self) {
        if std::mem::replace(&mut self.open, false) {
            let line = serde_json::to_string(&PhoneOp::Disconnect { link: self.id })
                .expect("ops serialize");
            let _ = self.out.send(line).await;
        }
    }
}

async fn read_loop(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    adverts: broadcast::Sender<AdvertSeen>,
    ranges: broadcast::Sender<RangeSeen>,
    routes: Arc<Mutex<Routes>>,
    welcome: oneshot::Sender<(u64, usize)>,
) {
    let mut welcome = Some(welcome);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) if buf.last() != Some(&b'\n') => break,
            Ok(_) => {}
        }
        let Ok(ev) = serde_json::from_slice::<HubEvent>(&buf[..buf.len() - 1]) else {
            tracing::warn!("radio hub sent an unreadable line");
            continue;
        };
        match ev {
            HubEvent::Welcome { phone, att_mtu } => {
                if let Some(w) = welcome.take() {
                    let _ = w.send((phone, att_mtu));
                }
            }
            HubEvent::Advert {
                door,
                data,
                rssi,
                at_ms,
                ..
            } => {
                let Ok(data) = hex::decode(&data) else {
                    continue;
                };
                let _ = adverts.send(AdvertSeen {
                    door,
                    advertisement: Advertisement::decode(&data).ok(),
                    data,
                    rssi,
                    at_ms,
                });
            }
            HubEvent::Range {
                door,
                metres,
                at_ms,
            } => {
                let _ = ranges.send(RangeSeen {
                    door,
                    metres,
                    at_ms,
                });
            }
            HubEvent::Connected {
                link,
                att_mtu,
                rssi,
                ..
            } => {
                if let Some(tx) = routes.lock().unwrap().pending.remove(&link) {
                    let _ = tx.send(Ok(Connected { att_mtu, rssi }));
                }
            }
            HubEvent::ConnectFailed { link, door, error } => {
                if let Some(tx) = routes.lock().unwrap().pending.remove(&link) {
                    let _ = tx.send(Err(SimError::ConnectFailed { door, error }));
                }
            }
            HubEvent::Notify { link, data } => {
                let Ok(data) = hex::decode(&data) else {
                    continue;
                };
                if let Some(tx) = routes.lock().unwrap().links.get(&link) {
                    let _ = tx.send(LinkEvent::Notify(data));
                }
            }
            HubEvent::Disconnected { link, reason } => {
                if let Some(tx) = routes.lock().unwrap().links.remove(&link) {
                    let _ = tx.send(LinkEvent::Disconnected(reason));
                }
            }
            HubEvent::Error { message } => {
                tracing::debug!(%message, "radio hub error");
                let mut r = routes.lock().unwrap();
                if r.errors.len() < 256 {
                    r.errors.push(message);
                }
            }
        }
    }
    // Hub gone: every open link ends, every pending connect fails.
    let mut r = routes.lock().unwrap();
    r.pending.clear();
    for (_, tx) in r.links.drain() {
        let _ = tx.send(LinkEvent::Disconnected("hub gone".into()));
    }
}
