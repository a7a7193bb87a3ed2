//! Provisioning: the controller key, its registration with the server, and the stored identity.
//!
//! `controller.key` holds the PKCS#8 P-256 key (mode 0600); `identity.json` the ids the
//! server assigned, the server URL and the organization keys pinned at provisioning.

use crate::fsutil;
use crate::http;
use keyway_protocol::{Id, SigningKey, TrustedKeys};
use ring::rand::SystemRandom;
use std::path::Path;

pub const KEY_FILE: &str = "controller.key";
pub const IDENTITY_FILE: &str = "identity.json";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub controller_id: Id,
    pub org_id: Id,
    /// Base URL of the server, e.g. `http://127.0.0.1:8080` or `https://keyway.example`.
    pub server: String,
    /// The organization keys the server named at provisioning: the first configuration must
    /// be sealed by one of them (or a key their endorsements lead to). Absent in data
    /// directories provisioned before pinning; their cached configuration's keys stand in.
    #[serde(default)]
    pub pinned: Option<TrustedKeys>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("this data directory is already provisioned (controller {0}); use a fresh one")]
    AlreadyProvisioned(Id),
    #[error("the data directory is not provisioned; run `keyway-controller provision` first")]
    NotProvisioned,
    #[error("the stored controller key is invalid")]
    BadKey,
    #[error("key generation failed")]
    Rng,
    #[error("provisioning request failed: {0}")]
    Http(#[from] http::HttpError),
    #[error("the server refused provisioning ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error("unexpected provisioning answer: {0}")]
    BadAnswer(String),
}

#[derive(serde::Serialize)]
struct ProvisionRequest<'a> {
    token: &'a str,
    public_key: String,
}

#[derive(serde::Deserialize)]
struct ProvisionResponse {
    controller_id: Id,
    org_id: Id,
    #[serde(default)]
    trusted_keys: Option<TrustedKeys>,
}

/// Generates the controller key, registers it with `server` using the one-time `token`, and
/// stores key and identity in `data_dir`. `ca_file` adds trusted roots for an https server.
pub async fn provision(
    server: &str,
    token: &str,
    data_dir: &Path,
    ca_file: Option<&Path>,
) -> Result<Identity, IdentityError> {
    std::fs::create_dir_all(data_dir)?;
    if let Some(existing) = fsutil::read_json::<Identity>(&data_dir.join(IDENTITY_FILE))? {
        return Err(IdentityError::AlreadyProvisioned(existing.controller_id));
    }
    let rng = SystemRandom::new();
    // Reuse a key from an interrupted earlier attempt so a retried token registers the same key.
    let key_path = data_dir.join(KEY_FILE);
    let key = match std::fs::read(&key_path) {
        Ok(pkcs8) => SigningKey::from_pkcs8(&pkcs8, &rng).map_err(|_| IdentityError::BadKey)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, pkcs8) = SigningKey::generate(&rng).map_err(|_| IdentityError::Rng)?;
            fsutil::atomic_write(&key_path, &pkcs8, 0o600)?;
            key
        }
        Err(e) => return Err(e.into()),
    };
    let server = server.trim_end_matches('/').to_string();
    let body = serde_json::to_vec(&ProvisionRequest {
        token,
        public_key: key.public_key().to_hex(),
    })
    .expect("request serializes");
    let url = format!("{server}/api/v1/controllers/provision");
    let resp = http::post_json(&url, &body, ca_file).await?;
    if !(200..300).contains(&resp.status) {
        return Err(IdentityError::Refused {
            status: resp.status,
            body: String::from_utf8_lossy(&resp.body)
                .chars()
                .take(500)
                .collect(),
        });
    }
    let answer: ProvisionResponse =
        serde_json::from_slice(&resp.body).map_err(|e| IdentityError::BadAnswer(e.to_string()))?;
    let identity = Identity {
        controller_id: answer.controller_id,
        org_id: answer.org_id,
        server,
        pinned: answer.trusted_keys,
    };
    fsutil::write_json(&data_dir.join(IDENTITY_FILE), &identity, 0o600)?;
    Ok(identity)
}

/// Loads identity and key from a provisioned data directory.
pub fn load(data_dir: &Path) -> Result<(Identity, SigningKey, Vec<u8>), IdentityError> {
    let identity = fsutil::read_json::<Identity>(&data_dir.join(IDENTITY_FILE))?
        .ok_or(IdentityError::NotProvisioned)?;
    let pkcs8 = std::fs::read(data_dir.join(KEY_FILE))?;
    let key =
        SigningKey::from_pkcs8(&pkcs8, &SystemRandom::new()).map_err(|_| IdentityError::BadKey)?;
    Ok((identity, key, pkcs8))
}
