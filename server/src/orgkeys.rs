//! Organization signing keys (PKCS#8 in the database), rotation with overlap, and the signed
//! revocation list.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_protocol::door_trust::KeyEndorsement;
use keyway_protocol::revocation::{MAX_REVOKED, RevocationList};
use keyway_protocol::{SigningKey, TrustedKey, TrustedKeys};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::util::{new_id, now_s, pid};

/// Creates an organization with a fresh signing key and its owner (one transaction: never
/// an organization without a key or without an owner); returns its id.
pub async fn create_org(state: &AppState, name: &str, owner: &str) -> ApiResult<String> {
    let id = new_id(&state.rng);
    let now = now_s();
    let mut tx = state.pool().begin().await?;
    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    add_key(state, &mut *tx, &id, None).await?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
    )
    .bind(&id)
    .bind(owner)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Adds a new active key; `replacing`: the key it takes over from, which endorses it.
async fn add_key<'e>(
    state: &AppState,
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    org_id: &str,
    replacing: Option<&SigningKey>,
) -> ApiResult<String> {
    let (key, pkcs8) = SigningKey::generate(&state.rng)?;
    let id = new_id(&state.rng);
    let endorsement = match replacing {
        Some(old) => Some(
            STANDARD.encode(
                KeyEndorsement {
                    org: pid(org_id),
                    public_key: key.public_key(),
                    endorsed_at: now_s() as u64,
                }
                .sign(old, &state.rng)?,
            ),
        ),
        None => None,
    };
    sqlx::query(
        "INSERT INTO org_keys (id, org_id, key_id, public_key, pkcs8, status, created_at, \
         endorsement) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(key.key_id().to_string())
    .bind(key.public_key().to_hex())
    .bind(seal_key(
        state.settings.key_encryption_key.as_ref(),
        &state.rng,
        &pkcs8,
    )?)
    .bind(now_s())
    .bind(endorsement)
    .execute(db)
    .await?;
    Ok(id)
}

/// Oldest key first. Creation times are whole seconds and a rotation may follow an
/// organization's creation within one, so status breaks the tie (two rotations are at
/// least a minute apart: `previous_key_out_of_use`).
const KEY_AGE_ORDER: &str = "created_at, CASE status WHEN 'retired' THEN 0 \
    WHEN 'previous' THEN 1 ELSE 2 END, retired_at, id";

/// Endorses keys rotated in before endorsements existed (each by the key before it), so
/// controllers still holding an older key can follow. Run at start; a no-op once done.
pub async fn backfill_endorsements(state: &AppState) -> ApiResult<usize> {
    let rows: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(sql!(
        "SELECT id, org_id, pkcs8, public_key, endorsement FROM org_keys \
         ORDER BY org_id, {KEY_AGE_ORDER}"
    ))
    .fetch_all(state.pool())
    .await?;
    let mut done = 0;
    for pair in rows.windows(2) {
        let [(_, org_a, older, _, _), (id_b, org_b, _, newer_hex, None)] = pair else {
            continue;
        };
        if org_a != org_b {
            continue;
        }
        // One organization's unreadable key must not keep the server from starting: its
        // controllers then need re-provisioning to follow that rotation, which is said.
        match endorse_stored(state, org_b, older, newer_hex) {
            Ok(endorsement) => {
                sqlx::query(
                    "UPDATE org_keys SET endorsement = $1 WHERE id = $2 AND endorsement IS NULL",
                )
                .bind(endorsement)
                .bind(id_b)
                .execute(state.pool())
                .await?;
                done += 1;
            }
            Err(e) => tracing::error!(
                org = org_b.as_str(),
                error = %e,
                "cannot endorse an organization key rotated before endorsements; controllers \
                 that missed that rotation must be provisioned again"
            ),
        }
    }
    Ok(done)
}

fn endorse_stored(
    state: &AppState,
    org: &str,
    older_pkcs8: &str,
    newer_hex: &str,
) -> anyhow::Result<String> {
    let kek = state.settings.key_encryption_key.as_ref();
    let older = SigningKey::from_pkcs8(&open_key(kek, older_pkcs8)?, &state.rng)?;
    let newer = keyway_protocol::PublicKey::from_slice(&hex::decode(newer_hex)?)?;
    let endorsement = KeyEndorsement {
        org: pid(org),
        public_key: newer,
        endorsed_at: now_s() as u64,
    }
    .sign(&older, &state.rng)?;
    Ok(STANDARD.encode(endorsement))
}

/// The organization's key endorsements (base64), oldest first: every rotation, retired keys'
/// too, so a controller offline through several rotations still finds its way.
pub async fn endorsements(state: &AppState, org_id: &str) -> ApiResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(sql!(
        "SELECT endorsement FROM org_keys WHERE org_id = $1 AND endorsement IS NOT NULL \
         ORDER BY {KEY_AGE_ORDER}"
    ))
    .bind(org_id)
    .fetch_all(state.pool())
    .await?;
    Ok(rows.into_iter().map(|(e,)| e).collect())
}

/// The key new objects are signed with.
pub async fn active_key(state: &AppState, org_id: &str) -> ApiResult<SigningKey> {
    active_key_on(state, state.pool(), org_id).await
}

/// [`active_key`] on a given connection or transaction.
pub async fn active_key_on<'e>(
    state: &AppState,
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    org_id: &str,
) -> ApiResult<SigningKey> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT pkcs8 FROM org_keys WHERE org_id = $1 AND status = 'active' \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(org_id)
    .fetch_optional(db)
    .await?;
    let (pkcs8,) = row.ok_or_else(|| anyhow::anyhow!("organization has no active key"))?;
    let raw = open_key(state.settings.key_encryption_key.as_ref(), &pkcs8)?;
    Ok(SigningKey::from_pkcs8(&raw, &state.rng)?)
}

/// How long an instance signs cloud commands with the active key it read before reading it
/// again. A rotation on this instance takes effect at once; one on another instance within
/// this time, while doors still trust the previous key through the overlap.
const SIGNING_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The active key, cached per organization: every cloud unlock signs its command with it,
/// and reading, unsealing and parsing the key each time would cost more than the signature.
pub async fn signing_key(state: &AppState, org_id: &str) -> ApiResult<std::sync::Arc<SigningKey>> {
    if let Some((at, key)) = state.signing_keys.lock().expect("key cache").get(org_id)
        && at.elapsed() < SIGNING_KEY_TTL
    {
        return Ok(key.clone());
    }
    let key = std::sync::Arc::new(active_key(state, org_id).await?);
    state
        .signing_keys
        .lock()
        .expect("key cache")
        .insert(org_id.to_owned(), (std::time::Instant::now(), key.clone()));
    Ok(key)
}

/// Keys verifiers should accept: the active key and, during rotation, the previous one.
pub async fn trusted_keys(state: &AppState, org_id: &str) -> ApiResult<TrustedKeys> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT public_key FROM org_keys WHERE org_id = $1 AND status IN ('active', 'previous') \
         ORDER BY CASE status WHEN 'active' THEN 0 ELSE 1 END, created_at DESC",
    )
    .bind(org_id)
    .fetch_all(state.pool())
    .await?;
    let org = pid(org_id);
    let mut keys = Vec::new();
    for (hex_key,) in rows {
        let raw = hex::decode(hex_key).map_err(|_| anyhow::anyhow!("stored public key"))?;
        let public_key = keyway_protocol::PublicKey::from_slice(&raw)?;
        keys.push(TrustedKey { org, public_key });
    }
    Ok(TrustedKeys::new(keys))
}

/// Rotation: the previous key is retired, the active key becomes previous (still trusted,
/// so credentials signed with it keep working until they expire), a new key becomes active.
/// One transaction: a server killed half-way must not leave the organization without an
/// active key (nothing could be signed) or with its trusted key retired.
pub async fn rotate(state: &AppState, org_id: &str) -> ApiResult<()> {
    let now = now_s();
    let mut tx = state.pool().begin().await?;
    // Lock the organization first: two rotations at once must endorse in a chain (K1 → K2
    // → K3), not both from K1, or a door holding only K2 could not follow; and the second
    // must see the first's replacement when it checks the previous key's age.
    crate::db::lock_org(&mut tx, org_id).await?;
    previous_key_out_of_use(&mut tx, org_id, now).await?;
    let replaced = active_key_on(state, &mut *tx, org_id).await?;
    retire_previous_on(&mut tx, org_id, now).await?;
    sqlx::query("UPDATE org_keys SET status = 'previous' WHERE org_id = $1 AND status = 'active'")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    add_key(state, &mut *tx, org_id, Some(&replaced)).await?;
    tx.commit().await?;
    state.signing_keys.lock().expect("key cache").remove(org_id);
    state.hub.refresh_org(org_id, false);
    Ok(())
}

/// Ends the overlap: the previous key stops being trusted.
pub async fn retire_previous(state: &AppState, org_id: &str) -> ApiResult<()> {
    let now = now_s();
    let mut tx = state.pool().begin().await?;
    crate::db::lock_org(&mut tx, org_id).await?;
    previous_key_out_of_use(&mut tx, org_id, now).await?;
    retire_previous_on(&mut tx, org_id, now).await?;
    tx.commit().await?;
    state.signing_keys.lock().expect("key cache").remove(org_id);
    state.hub.refresh_org(org_id, false);
    Ok(())
}

async fn retire_previous_on(tx: &mut sqlx::AnyConnection, org_id: &str, now: i64) -> ApiResult<()> {
    sqlx::query(
        "UPDATE org_keys SET status = 'retired', retired_at = $2 WHERE org_id = $1 AND status = 'previous'",
    )
    .bind(org_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Refuses to retire the previous key (by `retire_previous` or a second rotation) while
/// another instance may still sign cloud commands with it: its cached key is at most
/// [`SIGNING_KEY_TTL`] old, and doors refuse a retired key's orders. Whole seconds, so one
/// more.
async fn previous_key_out_of_use(
    tx: &mut sqlx::AnyConnection,
    org_id: &str,
    now: i64,
) -> ApiResult<()> {
    let in_use_for = SIGNING_KEY_TTL.as_secs() as i64 + 1;
    let replaced_at: Option<(i64,)> = sqlx::query_as(
        "SELECT a.created_at FROM org_keys a WHERE a.org_id = $1 AND a.status = 'active' \
         AND EXISTS (SELECT 1 FROM org_keys p WHERE p.org_id = $1 AND p.status = 'previous')",
    )
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((replaced_at,)) = replaced_at else {
        return Ok(());
    };
    let age = (now - replaced_at).max(0);
    if age >= in_use_for {
        return Ok(());
    }
    Err(ApiError::conflict(format!(
        "the previous key was replaced {age}s ago and other server instances may still sign \
         cloud commands with it; retry in {}s",
        in_use_for - age
    )))
}

/// The current signed revocation list (base64) and its serial.
///
/// It names every revoked credential that has not expired. When there are more than a list
/// holds, it names the newest and sets `revoked_before` just past the next one's start, so
/// doors refuse every credential from before that as well: honest holders among them are
/// refused offline (they fall back to the cloud and get a new credential), but no revoked
/// credential is ever left off.
pub async fn revocation_list(state: &AppState, org_id: &str) -> ApiResult<(String, u64)> {
    let now = now_s();
    let (serial,): (i64,) = sqlx::query_as("SELECT revocation_serial FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_optional(state.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, issued_at FROM credentials WHERE org_id = $1 AND revoked_at IS NOT NULL \
         AND not_after > $2 ORDER BY issued_at DESC, id LIMIT $3",
    )
    .bind(org_id)
    .bind(now)
    .bind(MAX_REVOKED as i64 + 1)
    .fetch_all(state.pool())
    .await?;
    let list = RevocationList {
        org: pid(org_id),
        serial: serial as u64,
        issued_at: now as u64,
        ..cut_to_fit(&rows)
    };
    if list.revoked_before > 0 {
        tracing::warn!(
            org = org_id,
            revoked_before = list.revoked_before,
            "more revoked credentials than a list holds: doors refuse every credential valid \
             from before the cut"
        );
    }
    let key = active_key(state, org_id).await?;
    let bytes = list.sign(&key, &state.rng)?;
    Ok((STANDARD.encode(bytes), serial as u64))
}

/// The ids and the cut of a list for revoked credentials `(id, issued_at)`, newest first.
fn cut_to_fit(newest_first: &[(String, i64)]) -> RevocationList {
    let Some((_, oldest_left_off)) = newest_first.get(MAX_REVOKED) else {
        return RevocationList {
            revoked: newest_first.iter().map(|(id, _)| pid(id)).collect(),
            ..Default::default()
        };
    };
    // Everything issued at or before the first one left off is under the cut; the rest
    // (issued strictly later) are at most MAX_REVOKED and named.
    let revoked_before = oldest_left_off - crate::api::devices::NOT_BEFORE_SLACK_S + 1;
    RevocationList {
        revoked_before: revoked_before.max(1) as u64,
        revoked: newest_first
            .iter()
            .take_while(|(_, issued)| issued > oldest_left_off)
            .map(|(id, _)| pid(id))
            .collect(),
        ..Default::default()
    }
}

/// Whose offline credentials a change takes away.
#[derive(Debug, Clone, Copy)]
pub enum Holders<'a> {
    Device(&'a str),
    User(&'a str),
    Invite(&'a str),
    /// Everyone holding the group: by a role assignment or by an invite to it.
    Group(&'a str),
}

/// Marks the holders' unexpired credentials in `org_id` revoked and bumps the serial, on the
/// transaction of the change that takes their access away: a server killed in between must
/// not commit the change and leave the credentials valid (a retry would find nothing left to
/// change). Call [`revocations_changed`] once it has committed.
pub async fn revoke_credentials(
    tx: &mut sqlx::AnyConnection,
    org_id: &str,
    holders: Holders<'_>,
) -> ApiResult<u64> {
    let (condition, value) = match holders {
        Holders::Device(d) => ("device_id = $3", d),
        Holders::User(u) => ("user_id = $3", u),
        Holders::Invite(i) => ("invite_id = $3", i),
        Holders::Group(g) => (
            "(user_id IN (SELECT user_id FROM role_assignments WHERE group_id = $3) \
             OR invite_id IN (SELECT id FROM invites WHERE group_id = $3))",
            g,
        ),
    };
    // The organization's row first, as membership changes and rotations take it: the same
    // lock order everywhere, so two changes cannot deadlock on PostgreSQL.
    sqlx::query("UPDATE orgs SET revocation_serial = revocation_serial + 1 WHERE id = $1")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let now = now_s();
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE credentials SET revoked_at = $1 WHERE org_id = $2 AND {condition} \
         AND revoked_at IS NULL AND not_after > $4"
    )))
    .bind(now)
    .bind(org_id)
    .bind(value)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(n)
}

/// Pushes the organization's new revocation list to its connected controllers.
pub fn revocations_changed(state: &AppState, org_id: &str) {
    state.hub.refresh_org(org_id, true);
}

const SEALED_PREFIX: &str = "enc1:";
const KEY_AAD: &[u8] = b"keyway/v1 organization signing key";

/// Stored form of a PKCS#8 key: AES-256-GCM sealed (`enc1:` + base64 of nonce || ciphertext)
/// when a key-encryption key is configured, else plain base64.
pub fn seal_key(
    kek: Option<&[u8; 32]>,
    rng: &ring::rand::SystemRandom,
    pkcs8: &[u8],
) -> anyhow::Result<String> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let Some(kek) = kek else {
        return Ok(STANDARD.encode(pkcs8));
    };
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, kek).map_err(|_| anyhow::anyhow!("key-encryption key"))?,
    );
    let nonce = crate::util::random_bytes::<12>(rng);
    let mut buf = pkcs8.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(KEY_AAD),
        &mut buf,
    )
    .map_err(|_| anyhow::anyhow!("sealing the organization key failed"))?;
    Ok(format!(
        "{SEALED_PREFIX}{}",
        STANDARD.encode([nonce.as_slice(), &buf].concat())
    ))
}

/// Inverse of [`seal_key`]; plain keys stay readable so encryption can be turned on later.
pub fn open_key(kek: Option<&[u8; 32]>, stored: &str) -> anyhow::Result<Vec<u8>> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let Some(sealed) = stored.strip_prefix(SEALED_PREFIX) else {
        return STANDARD
            .decode(stored)
            .map_err(|_| anyhow::anyhow!("stored key is not base64"));
    };
    let kek = kek.ok_or_else(|| {
        anyhow::anyhow!("organization keys are encrypted: set KEYWAY_KEY_ENCRYPTION_KEY")
    })?;
    let raw = STANDARD
        .decode(sealed)
        .map_err(|_| anyhow::anyhow!("stored key is not base64"))?;
    if raw.len() < 12 + 16 {
        anyhow::bail!("stored key is truncated");
    }
    let (nonce, ct) = raw.split_at(12);
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, kek).map_err(|_| anyhow::anyhow!("key-encryption key"))?,
    );
    let mut buf = ct.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("nonce"))?;
    let plain = key
        .open_in_place(nonce, Aad::from(KEY_AAD), &mut buf)
        .map_err(|_| {
            anyhow::anyhow!("organization key does not decrypt with this key-encryption key")
        })?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_list_names_the_newest_and_cuts_below_them() {
        let id = |n: usize| format!("00000000-0000-4000-8000-{n:012}");
        // Newest first, two per second, one more than a list holds.
        let rows: Vec<(String, i64)> = (0..=MAX_REVOKED)
            .map(|n| (id(n), 1_000_000 - (n as i64 + 1) / 2))
            .collect();
        assert_eq!(cut_to_fit(&rows[..MAX_REVOKED]).revoked_before, 0);
        assert_eq!(cut_to_fit(&rows[..MAX_REVOKED]).revoked.len(), MAX_REVOKED);

        let list = cut_to_fit(&rows);
        let left_off_issued = rows[MAX_REVOKED].1;
        // The one left off shares its second with the one before it: both fall under the cut.
        assert_eq!(rows[MAX_REVOKED - 1].1, left_off_issued);
        assert_eq!(list.revoked.len(), MAX_REVOKED - 1);
        for (n, (_, issued)) in rows.iter().enumerate() {
            let not_before = (issued - crate::api::devices::NOT_BEFORE_SLACK_S) as u64;
            let named = list.is_revoked(pid(&id(n)));
            assert!(
                named || not_before < list.revoked_before,
                "row {n} left off"
            );
        }
        // An honest credential issued after the cut is not caught.
        let after = (left_off_issued + 1 - crate::api::devices::NOT_BEFORE_SLACK_S) as u64;
        assert!(after >= list.revoked_before);
    }

    #[test]
    fn keys_seal_and_open_only_with_the_right_kek() {
        let rng = ring::rand::SystemRandom::new();
        let (_, pkcs8) = SigningKey::generate(&rng).unwrap();
        let kek = [7u8; 32];
        let sealed = seal_key(Some(&kek), &rng, &pkcs8).unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert_eq!(open_key(Some(&kek), &sealed).unwrap(), pkcs8);
        assert!(open_key(Some(&[8u8; 32]), &sealed).is_err());
        assert!(open_key(None, &sealed).is_err());
        let plain = seal_key(None, &rng, &pkcs8).unwrap();
        assert_eq!(open_key(Some(&kek), &plain).unwrap(), pkcs8);
    }
}
