//! Protocol messages over a [`Link`]: GATT fragmentation and a whole phone-side unlock.

use crate::phone::{Link, SimError};
use keyway_protocol::gatt::{self, FragmentError, Reassembler};
use keyway_protocol::handshake::{Action, HandshakeError, Initiator, ResultBody};
use keyway_protocol::keys::DeviceSigner;
use keyway_protocol::{CryptoError, Id, Reason, TrustedKeys};
use ring::rand::SecureRandom;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Link(#[from] SimError),
    #[error("fragmentation: {0}")]
    Fragment(#[from] FragmentError),
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the door did not answer in time")]
    Timeout,
}

impl ExchangeError {
    /// The shared-vocabulary reason, when the failure has one.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ExchangeError::Handshake(h) => h.reason(),
            ExchangeError::Fragment(f) => Some(f.reason()),
            _ => None,
        }
    }
}

/// Writes one protocol message as GATT fragments sized for the link's MTU.
pub async fn send_message(link: &Link, message: &[u8]) -> Result<(), ExchangeError> {
    for frag in gatt::fragment(message, link.att_mtu())? {
        link.write(&frag).await?;
    }
    Ok(())
}

/// Reads notifications until one whole message is reassembled.
pub async fn recv_message(link: &mut Link, timeout: Duration) -> Result<Vec<u8>, ExchangeError> {
    let mut reassembler = Reassembler::new();
    tokio::time::timeout(timeout, async {
        loop {
            let frag = link.next_notification().await.ok_or(SimError::LinkClosed)?;
            if let Some(msg) = reassembler.push(&frag)? {
                return Ok(msg);
            }
        }
    })
    .await
    .map_err(|_| ExchangeError::Timeout)?
}

/// What the phone wants and what it holds for one unlock.
#[derive(Clone, Copy)]
pub struct UnlockRequest<'a> {
    pub lock: Id,
    pub action: Action,
    /// Organization keys the phone trusts (to verify the door first).
    pub trusted: &'a TrustedKeys,
    /// Phone clock, unix seconds (door certificate validity).
    pub now_unix: u64,
    /// Stays the same across retries of one user intent (at-most-once).
    pub command_id: Id,
    /// The org-signed credential bytes.
    pub credential: &'a [u8],
    pub signer: &'a (dyn DeviceSigner + Sync),
    /// Per-message wait for the door.
    pub timeout: Duration,
}

impl std::fmt::Debug for UnlockRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockRequest")
            .field("lock", &self.lock)
            .field("action", &self.action)
            .field("command_id", &self.command_id)
            .finish()
    }
}

/// Runs HELLO → CHALLENGE → AUTH → RESULT with a real [`Initiator`] over `link`.
/// A door ERROR frame surfaces as `ExchangeError::Handshake(Rejected(reason))`.
pub async fn unlock(
    link: &mut Link,
    rng: &(dyn SecureRandom + Sync),
    req: UnlockRequest<'_>,
) -> Result<ResultBody, ExchangeError> {
    let (mut initiator, hello) = Initiator::start(rng, req.lock, req.action)?;
    send_message(link, &hello).await?;
    let challenge = recv_message(link, req.timeout).await?;
    let sign = initiator.on_challenge(&challenge, req.trusted, req.now_unix, req.command_id)?;
    let signature = req.signer.sign(&sign.message)?;
    let auth = initiator.auth_frame(req.credential, &signature)?;
    send_message(link, &auth).await?;
    let result = recv_message(link, req.timeout).await?;
    Ok(initiator.on_result(&result)?)
}
