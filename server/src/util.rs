//! Small helpers: clock, ids, random secrets and hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyway_protocol::Id;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{ApiError, ApiResult};

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Fresh random UUID text from the system CSPRNG.
pub fn new_id(rng: &SystemRandom) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b).expect("system rng");
    // Stamp UUID v4 bits so the ids look like what clients expect.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Id(b).to_uuid_string()
}

pub fn random_bytes<const N: usize>(rng: &SystemRandom) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill(&mut b).expect("system rng");
    b
}

/// A bearer-style secret: prefix + 32 random bytes base64url.
pub fn new_secret(rng: &SystemRandom, prefix: &str) -> String {
    format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>(rng))
    )
}

/// Crockford base32: no I, L, O or U, so a code read aloud or typed from paper survives.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A visitor invite code: 128 random bits as 26 Crockford base32 characters. Unlike base64url it
/// never starts with `-` (which command lines read as a flag) and has no look-alike characters.
pub fn new_invite_code(rng: &SystemRandom) -> String {
    let bytes = random_bytes::<16>(rng);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut out = String::with_capacity(26);
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(CROCKFORD[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(CROCKFORD[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The canonical form of a typed invite code: case, spaces and dashes ignored, and the
/// look-alikes O/I/L read as 0/1, as Crockford base32 prescribes.
pub fn normalize_invite_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// A reqwest client builder with ring installed as the TLS crypto provider (reqwest is built
/// without one; building a client before a provider is installed panics).
pub fn http_client() -> reqwest::ClientBuilder {
    // Err only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// SHA-256 hex of a secret; secrets are stored only in this form.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        secret.as_bytes(),
    ))
}

/// Validates a path id as a UUID and returns its canonical text.
pub fn parse_id(raw: &str, what: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::invalid(format!("{what} id is not a valid UUID")))
}

/// Protocol id from stored UUID text.
pub fn pid(uuid_text: &str) -> Id {
    Id::parse(uuid_text).unwrap_or_default()
}

pub fn b(v: i64) -> bool {
    v != 0
}

/// Great-circle distance in metres.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let r = 6_371_000.0_f64;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * a.sqrt().asin()
}

/// Floats are bound as text and cast in SQL: sqlx's `Any` driver types a NULL `f64` as
/// `float4` on PostgreSQL, which poisons the cached statement for later non-NULL `float8`
/// values ("incorrect binary data format"). Text parameters have one type either way.
pub fn f64_text(v: Option<f64>) -> Option<String> {
    v.filter(|x| x.is_finite()).map(|x| x.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_codes_are_canonical_base32_and_survive_retyping() {
        let rng = SystemRandom::new();
        for _ in 0..200 {
            let code = new_invite_code(&rng);
            assert_eq!(code.len(), 26);
            assert!(code.bytes().all(|b| CROCKFORD.contains(&b)), "{code}");
            assert_eq!(normalize_invite_code(&code), code);
            let typed = format!(" {}-{} ", &code[..13], &code[13..]).to_lowercase();
            assert_eq!(normalize_invite_code(&typed), code);
        }
        assert_eq!(normalize_invite_code("o1l-I"), "0111");
    }
}
