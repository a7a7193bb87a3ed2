//! The server's REST contract (`docs/interfaces.md`) as types, and the one helper that turns an
//! API call into an Http effect whose output is `Result<T, ApiError>`.

use super::{Effect, Event};
use crux_core::Command;
use crux_core::command::RequestBuilder;
use crux_http::protocol::{HttpHeader, HttpRequest, HttpResult};
use keyway_protocol::{Reason, TrustedKeys};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// What the runtime puts in a transport error's text when the server's TLS certificate was
/// refused: an attacker in the path, a captive portal, or a server with a private CA. The
/// request still counts as a network failure (so BLE stays the fallback at a door), but the
/// person is told why.
pub const UNTRUSTED_SERVER: &str =
    "cannot verify the server's identity (TLS certificate not trusted)";

/// Why an API call failed, in a form events can carry and tests can compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApiError {
    /// The request could not be sent, or got no answer (offline, DNS, refused, reset).
    #[error("no network: {message}")]
    Network { message: String },
    /// The request was sent and no answer came in time: the server may have acted on it.
    #[error("no answer in time")]
    TimedOut,
    /// The server answered with an error envelope.
    #[error("{code}: {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The server answered something that does not match the contract.
    #[error("unexpected response: {message}")]
    Decode { message: String },
}

impl ApiError {
    /// The shared-vocabulary reason, when the server gave one (or the network is down).
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ApiError::Network { .. } | ApiError::TimedOut => Some(Reason::NoNetwork),
            ApiError::Server { code, .. } => Reason::from_code(code),
            ApiError::Decode { .. } => None,
        }
    }

    pub fn is_network(&self) -> bool {
        matches!(self, ApiError::Network { .. } | ApiError::TimedOut)
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiError::Server { status: 401, .. })
    }

    /// A message fit to show a person.
    pub fn user_message(&self) -> String {
        match (self.reason(), self) {
            (_, ApiError::Network { message }) if message.contains(UNTRUSTED_SERVER) => {
                UNTRUSTED_SERVER.to_owned()
            }
            (Some(r), _) => r.message().to_owned(),
            (None, ApiError::Server { message, .. }) if !message.is_empty() => message.clone(),
            (None, ApiError::Server { code, .. }) => code.replace('_', " "),
            (None, ApiError::Decode { .. }) => "unexpected answer from the server".to_owned(),
            (None, ApiError::Network { .. } | ApiError::TimedOut) => {
                Reason::NoNetwork.message().to_owned()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// One API call before it becomes an effect.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub method: &'static str,
    pub url: String,
    pub token: Option<String>,
    pub body: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
}

impl ApiCall {
    pub fn new(method: &'static str, base: &str, path: &str) -> Self {
        Self {
            method,
            url: format!("{}/api/v1{}", base.trim_end_matches('/'), path),
            token: None,
            body: None,
            idempotency_key: None,
        }
    }

    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn idempotency_key(mut self, key: String) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    pub fn into_http(self) -> HttpRequest {
        let mut headers = vec![HttpHeader {
            name: "Accept".into(),
            value: "application/json".into(),
        }];
        if let Some(t) = &self.token {
            headers.push(HttpHeader {
                name: "Authorization".into(),
                value: format!("Bearer {t}"),
            });
        }
        if let Some(k) = &self.idempotency_key {
            headers.push(HttpHeader {
                name: "Idempotency-Key".into(),
                value: k.clone(),
            });
        }
        let body = match &self.body {
            Some(v) => {
                headers.push(HttpHeader {
                    name: "Content-Type".into(),
                    value: "application/json".into(),
                });
                serde_json::to_vec(v).unwrap_or_default()
            }
            None => vec![],
        };
        HttpRequest {
            method: self.method.to_owned(),
            url: self.url,
            headers,
            body,
        }
    }

    /// The Http effect, its output decoded as `T`.
    pub fn send<T>(self) -> RequestBuilder<Effect, Event, impl Future<Output = ApiResult<T>>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        Command::request_from_shell(self.into_http()).map(decode::<T>)
    }
}

/// Decodes a shell's HTTP result against the contract.
pub fn decode<T: DeserializeOwned>(result: HttpResult) -> ApiResult<T> {
    let response = match result {
        HttpResult::Ok(r) => r,
        HttpResult::Err(crux_http::HttpError::Timeout) => return Err(ApiError::TimedOut),
        HttpResult::Err(e) => {
            return Err(ApiError::Network {
                message: e.to_string(),
            });
        }
    };
    if (200..300).contains(&response.status) {
        let body: &[u8] = if response.body.is_empty() {
            b"null"
        } else {
            &response.body
        };
        return serde_json::from_slice(body).map_err(|e| ApiError::Decode {
            message: e.to_string(),
        });
    }
    match serde_json::from_slice::<ErrorEnvelope>(&response.body) {
        Ok(env) => Err(ApiError::Server {
            status: response.status,
            code: env.error.code,
            message: env.error.message,
        }),
        Err(_) => Err(ApiError::Server {
            status: response.status,
            code: format!("http_{}", response.status),
            message: String::new(),
        }),
    }
}

// ---- contract types ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// Empty for guests (invite logins have no email).
    #[serde(default, deserialize_with = "nullable_string")]
    pub email: String,
    #[serde(default, deserialize_with = "nullable_string")]
    pub name: String,
}

fn nullable_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub org: Org,
    pub role: String,
}

/// `POST /logins`, `POST /invites/redeem` and `GET /me` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    #[serde(default)]
    pub token: String,
    pub user: User,
    pub memberships: Vec<Membership>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub id: String,
    pub place_id: String,
    pub name: String,
    #[serde(default)]
    pub controller_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub walk_up_allowed: bool,
    #[serde(default)]
    pub geofence_radius_m: Option<f64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub reader_restriction: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub lockdown: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub online: bool,
    /// Hex of the 4-byte id the lock advertises.
    pub short_id: String,
    #[serde(default = "default_tx_power")]
    pub tx_power: i8,
}

fn default_tx_power() -> i8 {
    -59
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Int(i64),
        Null(()),
    }
    Ok(match B::deserialize(d)? {
        B::Bool(b) => b,
        B::Int(i) => i != 0,
        B::Null(()) => false,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockResponse {
    pub granted: bool,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub command_id: Option<String>,
    #[serde(default)]
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCreated {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialResponse {
    /// Base64 of the signed credential.
    pub credential: String,
    pub not_after: u64,
    pub trusted_keys: TrustedKeys,
    pub refresh_after: u64,
    /// When the server issued it, on the server's clock (unix s); absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crux_http::protocol::HttpResponse;

    #[test]
    fn decodes_error_envelope_and_reason() {
        let r = HttpResponse::status(403)
            .json(serde_json::json!({"error": {"code": "access_expired", "message": "access expired"}}))
            .build();
        let e = decode::<()>(HttpResult::Ok(r)).unwrap_err();
        assert_eq!(e.reason(), Some(Reason::Expired));
        assert_eq!(e.user_message(), "access expired");
        let ok: () = decode(HttpResult::Ok(HttpResponse::status(204).build())).unwrap();
        assert_eq!(ok, ());
    }

    #[test]
    fn an_untrusted_certificate_is_a_network_failure_that_says_why() {
        let e = decode::<()>(HttpResult::Err(crux_http::HttpError::Io(format!(
            "{UNTRUSTED_SERVER}: invalid peer certificate: UnknownIssuer"
        ))))
        .unwrap_err();
        // Still a network failure, so a door falls back to BLE...
        assert!(e.is_network());
        assert_eq!(e.reason(), Some(Reason::NoNetwork));
        // ...but the person learns it is the server's identity, not their connection.
        assert_eq!(e.user_message(), UNTRUSTED_SERVER);
        let offline = decode::<()>(HttpResult::Err(crux_http::HttpError::Io(
            "connection refused".into(),
        )))
        .unwrap_err();
        assert_eq!(offline.user_message(), "no network connection");
    }

    #[test]
    fn guest_login_has_no_email() {
        let r: LoginResponse = serde_json::from_value(serde_json::json!({
            "token": "t", "user": {"id": "g", "email": null, "name": "Visitor"},
            "memberships": [{"org": {"id": "o", "name": "Acme"}, "role": "guest"}]
        }))
        .unwrap();
        assert_eq!(r.user.email, "");
    }

    #[test]
    fn lock_accepts_numeric_booleans() {
        let l: Lock = serde_json::from_value(serde_json::json!({
            "id": "a", "place_id": "p", "name": "Front", "walk_up_allowed": 1,
            "reader_restriction": false, "lockdown": 0, "online": true, "short_id": "01020304",
            "tx_power": -60
        }))
        .unwrap();
        assert!(l.walk_up_allowed && l.online && !l.lockdown);
    }
}
