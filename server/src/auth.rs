//! Who is calling: bearer session secrets (`kws_...`) and API keys (`kwk_...`), roles,
//! password hashing (argon2id) and login throttling.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::util::{now_s, sha256_hex};

/// Organization roles, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Guest,
    Member,
    Manager,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Member => "member",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "guest" => Role::Guest,
            "member" => Role::Member,
            "manager" => Role::Manager,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            _ => return None,
        })
    }
    /// Owners and admins open every lock of their organization.
    pub fn opens_everything(self) -> bool {
        self >= Role::Admin
    }
}

#[derive(Debug, Clone)]
pub enum Principal {
    User {
        user_id: String,
        session_id: String,
    },
    ApiKey {
        key_id: String,
        org_id: String,
        role: Role,
    },
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
}

impl Caller {
    pub fn user_id(&self) -> Option<&str> {
        match &self.principal {
            Principal::User { user_id, .. } => Some(user_id),
            Principal::ApiKey { .. } => None,
        }
    }

    /// The caller's user id, or 403 for API keys on user-only endpoints.
    pub fn require_user(&self) -> ApiResult<&str> {
        self.user_id().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                "this endpoint needs a user login",
            )
        })
    }

    /// Actor id recorded in the audit log.
    pub fn actor(&self) -> (String, &'static str) {
        match &self.principal {
            Principal::User { user_id, .. } => (user_id.clone(), "user"),
            Principal::ApiKey { key_id, .. } => (key_id.clone(), "api_key"),
        }
    }

    /// The caller's role in `org`; not being a member reads as "no such organization".
    pub async fn role_in(&self, state: &AppState, org_id: &str) -> ApiResult<Role> {
        match &self.principal {
            Principal::ApiKey {
                org_id: o, role, ..
            } => {
                if o == org_id {
                    Ok(*role)
                } else {
                    Err(ApiError::not_found("organization"))
                }
            }
            Principal::User { user_id, .. } => {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2",
                )
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(state.pool())
                .await?;
                row.and_then(|(r,)| Role::parse(&r))
                    .ok_or_else(|| ApiError::not_found("organization"))
            }
        }
    }

    /// Role check: at least `min` in `org`, else 403 (or 404 when not a member at all).
    pub async fn require(&self, state: &AppState, org_id: &str, min: Role) -> ApiResult<Role> {
        let role = self.role_in(state, org_id).await?;
        if role < min {
            return Err(ApiError::forbidden());
        }
        Ok(role)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(ApiError::unauthorized)?
            .trim();
        if token.is_empty() || token.len() > 200 {
            return Err(ApiError::unauthorized());
        }
        let hash = sha256_hex(token);
        let caller = authenticate(state, token, &hash).await?;
        // Per-caller request budget, counted once the token is known to be valid: keyed by
        // any token's hash, random tokens would each get a budget and grow the map without
        // bound.
        let budget_key = match &caller.principal {
            Principal::User { session_id, .. } => format!("req:s:{session_id}"),
            Principal::ApiKey { key_id, .. } => format!("req:k:{key_id}"),
        };
        if !state.throttle.take(
            &budget_key,
            state.settings.requests_per_second,
            Duration::from_secs(1),
        ) {
            return Err(ApiError::rate_limited());
        }
        Ok(caller)
    }
}

/// The caller a bearer token names: an API key (`kwk_`) or an unexpired session.
async fn authenticate(state: &AppState, token: &str, hash: &str) -> ApiResult<Caller> {
    if token.starts_with("kwk_") {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT id, org_id, role FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(state.pool())
        .await?;
        let (key_id, org_id, role) = row.ok_or_else(ApiError::unauthorized)?;
        let role = Role::parse(&role).ok_or_else(ApiError::unauthorized)?;
        return Ok(Caller {
            principal: Principal::ApiKey {
                key_id,
                org_id,
                role,
            },
        });
    }
    let now = now_s();
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT id, user_id FROM sessions WHERE token_hash = $1 AND revoked_at IS NULL \
         AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(state.pool())
    .await?;
    let (session_id, user_id) = row.ok_or_else(ApiError::unauthorized)?;
    Ok(Caller {
        principal: Principal::User {
            user_id,
            session_id,
        },
    })
}

fn argon() -> Argon2<'static> {
    // OWASP minimum for argon2id: 19 MiB, 2 passes.
    let params = Params::new(19 * 1024, 2, 1, None).expect("argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str, rng: &ring::rand::SystemRandom) -> anyhow::Result<String> {
    let salt_bytes = crate::util::random_bytes::<16>(rng);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?;
    Ok(hash.to_string())
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| argon().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Fixed-window request budgets per key (a caller's token hash, a user's unlocks), in memory
/// per instance: they bound load, not guessing (login attempts: `login_limits`, shared).
#[derive(Debug, Default)]
pub struct Throttle {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    /// Counts one hit and says whether it stayed within `max` per `window`.
    pub fn take(&self, key: &str, max: u32, window: Duration) -> bool {
        let mut map = self.windows.lock().expect("throttle lock");
        let entry = map.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        let within = entry.1 <= max;
        // Keys are authenticated callers and users, but bound the map all the same.
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < PRUNE_AFTER);
        }
        within
    }
}

/// Longer than any window `take` is called with.
const PRUNE_AFTER: Duration = Duration::from_secs(60);
