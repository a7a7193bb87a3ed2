//! Delivering cloud commands to controllers.
//!
//! [`CommandRelay`] is the seam: the unlock handler asks it to deliver a command and waits
//! for the result. [`InProcessRelay`] reaches controllers connected to this instance through
//! the [`Hub`]; a PostgreSQL LISTEN/NOTIFY relay for multi-instance deployments implements the
//! same trait (publish the command on a channel named after the controller, the owning
//! instance forwards it through its hub and NOTIFYs the result back).

use futures::future::BoxFuture;
use keyway_channel::{CloudCommand, CommandResult, ServerMessage};
use keyway_protocol::Id;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayError {
    /// The command was certainly not delivered: no session for the controller, or it failed
    /// before anything was sent. Nothing can have opened, so another route may be tried.
    Offline,
    /// The command was sent (or may have been) and no answer came in time: the door may
    /// have executed it. Anything uncertain is reported as this, never as `Offline`.
    Timeout,
}

pub trait CommandRelay: Send + Sync + std::fmt::Debug {
    fn deliver(
        &self,
        controller: String,
        command: CloudCommand,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CommandResult, RelayError>>;
}

/// What a controller session task is asked to do.
#[derive(Debug)]
pub enum SessionMsg {
    Send(ServerMessage),
    /// Rebuild and push the configuration.
    RefreshConfig,
    /// Re-sign and push the revocation list.
    RefreshRevocations,
    /// Another connection for the same controller took over.
    Replaced,
}

#[derive(Debug)]
struct Session {
    conn: u64,
    org_id: String,
    tx: mpsc::UnboundedSender<SessionMsg>,
}

/// Controller sessions connected to this instance and commands awaiting results.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: Mutex<HashMap<String, Session>>,
    pending: Mutex<HashMap<Id, Vec<oneshot::Sender<CommandResult>>>>,
    next_conn: AtomicU64,
    /// Where refreshes are published for other instances (multi-instance deployments).
    broadcast: Mutex<Option<mpsc::UnboundedSender<crate::pg_relay::RefreshNote>>>,
    listening: std::sync::atomic::AtomicBool,
}

impl Hub {
    /// Registers a session; an older session of the same controller is told to close.
    pub fn register(
        &self,
        controller: &str,
        org_id: &str,
        tx: mpsc::UnboundedSender<SessionMsg>,
    ) -> u64 {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let old = self.sessions.lock().expect("hub lock").insert(
            controller.to_owned(),
            Session {
                conn,
                org_id: org_id.to_owned(),
                tx,
            },
        );
        if let Some(old) = old {
            let _ = old.tx.send(SessionMsg::Replaced);
        }
        conn
    }

    /// Removes the session if it is still the registered one; true when it was.
    pub fn unregister(&self, controller: &str, conn: u64) -> bool {
        let mut map = self.sessions.lock().expect("hub lock");
        if map.get(controller).is_some_and(|s| s.conn == conn) {
            map.remove(controller);
            true
        } else {
            false
        }
    }

    pub fn is_connected(&self, controller: &str) -> bool {
        self.sessions
            .lock()
            .expect("hub lock")
            .contains_key(controller)
    }

    pub fn connected_count(&self) -> usize {
        self.sessions.lock().expect("hub lock").len()
    }

    pub fn send(&self, controller: &str, msg: SessionMsg) -> bool {
        match self.sessions.lock().expect("hub lock").get(controller) {
            Some(s) => s.tx.send(msg).is_ok(),
            None => false,
        }
    }

    pub fn set_broadcast(&self, tx: mpsc::UnboundedSender<crate::pg_relay::RefreshNote>) {
        *self.broadcast.lock().expect("hub lock") = Some(tx);
    }

    pub fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::Relaxed);
    }

    /// Whether the cross-instance listener is up (always false on a single instance).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    fn publish(&self, note: crate::pg_relay::RefreshNote) {
        if let Some(tx) = self.broadcast.lock().expect("hub lock").as_ref() {
            let _ = tx.send(note);
        }
    }

    /// Asks one controller to refresh its configuration (wherever it is connected).
    pub fn refresh_config(&self, controller: &str) {
        if !self.send(controller, SessionMsg::RefreshConfig) {
            self.publish(crate::pg_relay::RefreshNote {
                instance: String::new(),
                org_id: None,
                controller: Some(controller.to_owned()),
                revocations_only: false,
            });
        }
    }

    /// Asks every connected controller of `org` to refresh (config or revocations), here
    /// and on other instances.
    pub fn refresh_org(&self, org_id: &str, revocations_only: bool) {
        self.refresh_org_local(org_id, revocations_only);
        self.publish(crate::pg_relay::RefreshNote {
            instance: String::new(),
            org_id: Some(org_id.to_owned()),
            controller: None,
            revocations_only,
        });
    }

    /// Refreshes only the sessions held by this instance.
    pub fn refresh_org_local(&self, org_id: &str, revocations_only: bool) {
        for s in self.sessions.lock().expect("hub lock").values() {
            if s.org_id == org_id {
                let _ = s.tx.send(if revocations_only {
                    SessionMsg::RefreshRevocations
                } else {
                    SessionMsg::RefreshConfig
                });
            }
        }
    }

    /// A controller answered a command.
    pub fn complete(&self, result: CommandResult) {
        let waiters = self
            .pending
            .lock()
            .expect("hub lock")
            .remove(&result.command_id);
        for w in waiters.into_iter().flatten() {
            let _ = w.send(result.clone());
        }
    }

    pub fn wait_for(&self, command: Id) -> oneshot::Receiver<CommandResult> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("hub lock")
            .entry(command)
            .or_default()
            .push(tx);
        rx
    }

    pub fn forget(&self, command: Id) {
        let mut map = self.pending.lock().expect("hub lock");
        if let Some(list) = map.get_mut(&command) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                map.remove(&command);
            }
        }
    }
}

/// Relay through this instance's hub.
#[derive(Debug)]
pub struct InProcessRelay {
    hub: std::sync::Arc<Hub>,
}

impl InProcessRelay {
    pub fn new(hub: std::sync::Arc<Hub>) -> Self {
        Self { hub }
    }
}

impl CommandRelay for InProcessRelay {
    fn deliver(
        &self,
        controller: String,
        command: CloudCommand,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CommandResult, RelayError>> {
        Box::pin(async move {
            let id = command.command_id;
            let rx = self.hub.wait_for(id);
            // `send` is false only when nothing was queued for a session: certainly not
            // delivered. Once queued, the command may reach the door whatever happens next.
            if !self.hub.send(
                &controller,
                SessionMsg::Send(ServerMessage::Command { command }),
            ) {
                drop(rx);
                self.hub.forget(id);
                return Err(RelayError::Offline);
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => Ok(result),
                _ => {
                    self.hub.forget(id);
                    Err(RelayError::Timeout)
                }
            }
        })
    }
}
