//! Who may open which lock when: the one access decision used by cloud unlocks, lock
//! listings and offline credential issuance.
//!
//! - owners and admins open every lock of their organization;
//! - managers and members open the locks of groups they hold a role assignment for, inside
//!   the assignment's validity window and its weekly schedule (the lock's place time zone);
//! - guests open what their redeemed invite covers, inside its window, daily hours and
//!   unlock limit, until it is revoked.

use keyway_protocol::Reason;
use keyway_protocol::credential::{Schedule, Window};
use sqlx::Row;

use crate::auth::Role;
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct LockInfo {
    pub id: String,
    pub org_id: String,
    pub place_id: String,
    pub name: String,
    pub controller_id: Option<String>,
    pub walk_up_allowed: bool,
    pub geofence_radius_m: Option<f64>,
    pub reader_restriction: bool,
    pub lockdown: bool,
    pub proximity_secret: String,
    pub tx_power: i64,
    pub place_lockdown: bool,
    pub time_zone: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub online: bool,
}

pub const LOCK_SELECT: &str = "SELECT l.id, l.org_id, l.place_id, l.name, l.controller_id, \
    l.walk_up_allowed, l.geofence_radius_m, l.reader_restriction, l.lockdown, \
    l.proximity_secret, l.tx_power, p.lockdown AS place_lockdown, p.time_zone, p.latitude, \
    p.longitude, COALESCE(c.online, 0) AS online FROM locks l JOIN places p ON p.id = l.place_id \
    LEFT JOIN controllers c ON c.id = l.controller_id";

pub fn lock_from_row(r: &sqlx::any::AnyRow) -> Result<LockInfo, sqlx::Error> {
    Ok(LockInfo {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        place_id: r.try_get("place_id")?,
        name: r.try_get("name")?,
        controller_id: r.try_get("controller_id")?,
        walk_up_allowed: r.try_get::<i64, _>("walk_up_allowed")? != 0,
        geofence_radius_m: r.try_get("geofence_radius_m")?,
        reader_restriction: r.try_get::<i64, _>("reader_restriction")? != 0,
        lockdown: r.try_get::<i64, _>("lockdown")? != 0,
        proximity_secret: r.try_get("proximity_secret")?,
        tx_power: r.try_get("tx_power")?,
        place_lockdown: r.try_get::<i64, _>("place_lockdown")? != 0,
        time_zone: r.try_get("time_zone")?,
        latitude: r.try_get("latitude")?,
        longitude: r.try_get("longitude")?,
        online: r.try_get::<i64, _>("online")? != 0,
    })
}

pub async fn load_lock(state: &AppState, id: &str) -> ApiResult<Option<LockInfo>> {
    let row = sqlx::query(sql!("{LOCK_SELECT} WHERE l.id = $1"))
        .bind(id)
        .fetch_optional(state.pool())
        .await?;
    Ok(match row {
        Some(r) => Some(lock_from_row(&r)?),
        None => None,
    })
}

/// What allowed an unlock.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    Role,
    Assignment,
    Invite { invite_id: String, limited: bool },
}

pub fn parse_windows(text: &str) -> Vec<Window> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The access decision for `user` (with `role` in the lock's org) at `now` (unix s).
/// `use_held`: the command already holds an invite use (a retry of one that may have
/// opened the door), so a use limit reached by that very use does not refuse it.
pub async fn check_grant(
    state: &AppState,
    user_id: &str,
    role: Role,
    lock: &LockInfo,
    now: i64,
    use_held: bool,
) -> ApiResult<Result<Grant, Reason>> {
    if role.opens_everything() {
        return Ok(Ok(Grant::Role));
    }
    if role == Role::Guest {
        return check_invite(state, user_id, lock, now, use_held).await;
    }
    let rows = sqlx::query(
        "SELECT ra.valid_from, ra.valid_until, s.windows FROM role_assignments ra \
         JOIN group_locks gl ON gl.group_id = ra.group_id \
         LEFT JOIN schedules s ON s.id = ra.schedule_id \
         WHERE ra.org_id = $1 AND ra.user_id = $2 AND gl.lock_id = $3",
    )
    .bind(&lock.org_id)
    .bind(user_id)
    .bind(&lock.id)
    .fetch_all(state.pool())
    .await?;
    if rows.is_empty() {
        return Ok(Err(Reason::NoAccess));
    }
    let mut best = Reason::Expired;
    let rank = |r: Reason| match r {
        Reason::OutsideSchedule => 3,
        Reason::NotYetValid => 2,
        _ => 1,
    };
    for r in rows {
        let from: Option<i64> = r.try_get("valid_from")?;
        let until: Option<i64> = r.try_get("valid_until")?;
        let windows: Option<String> = r.try_get("windows")?;
        let verdict = window_verdict(from, until, now).and_then(|()| {
            schedule_verdict(windows.as_deref().map(parse_windows), &lock.time_zone, now)
        });
        match verdict {
            Ok(()) => return Ok(Ok(Grant::Assignment)),
            Err(reason) if rank(reason) > rank(best) => best = reason,
            Err(_) => {}
        }
    }
    Ok(Err(best))
}

fn window_verdict(from: Option<i64>, until: Option<i64>, now: i64) -> Result<(), Reason> {
    if from.is_some_and(|f| now < f) {
        return Err(Reason::NotYetValid);
    }
    if until.is_some_and(|u| now >= u) {
        return Err(Reason::Expired);
    }
    Ok(())
}

fn schedule_verdict(windows: Option<Vec<Window>>, tz: &str, now: i64) -> Result<(), Reason> {
    let Some(windows) = windows else {
        return Ok(());
    };
    let schedule = Schedule {
        time_zone: tz.to_owned(),
        windows,
    };
    match schedule.allows(now.max(0) as u64) {
        Ok(true) => Ok(()),
        _ => Err(Reason::OutsideSchedule),
    }
}

/// An invite row as the access checks need it.
#[derive(Debug, Clone)]
pub struct InviteInfo {
    pub id: String,
    pub org_id: String,
    pub group_id: Option<String>,
    pub lock_ids: Vec<String>,
    pub valid_from: i64,
    pub valid_until: i64,
    pub daily_start_minute: Option<i64>,
    pub daily_end_minute: Option<i64>,
    pub max_unlocks: Option<i64>,
    pub unlock_count: i64,
    pub revoked: bool,
}

impl InviteInfo {
    /// The daily window as a schedule (every weekday).
    pub fn daily_windows(&self) -> Option<Vec<Window>> {
        match (self.daily_start_minute, self.daily_end_minute) {
            (Some(s), Some(e)) => Some(vec![Window {
                weekdays: 0x7f,
                start_minute: s as u16,
                end_minute: e as u16,
            }]),
            _ => None,
        }
    }
}

pub async fn guest_invite(state: &AppState, user_id: &str) -> ApiResult<Option<InviteInfo>> {
    guest_invite_on(&mut *state.pool().acquire().await?, user_id).await
}

/// [`guest_invite`] on a given connection (a transaction's, so that it needs no second one).
pub async fn guest_invite_on(
    db: &mut sqlx::AnyConnection,
    user_id: &str,
) -> ApiResult<Option<InviteInfo>> {
    let row = sqlx::query(
        "SELECT id, org_id, group_id, lock_ids, valid_from, valid_until, daily_start_minute, \
         daily_end_minute, max_unlocks, unlock_count, revoked_at FROM invites \
         WHERE guest_user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let lock_ids: String = r.try_get("lock_ids")?;
    Ok(Some(InviteInfo {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        group_id: r.try_get("group_id")?,
        lock_ids: serde_json::from_str(&lock_ids).unwrap_or_default(),
        valid_from: r.try_get("valid_from")?,
        valid_until: r.try_get("valid_until")?,
        daily_start_minute: r.try_get("daily_start_minute")?,
        daily_end_minute: r.try_get("daily_end_minute")?,
        max_unlocks: r.try_get("max_unlocks")?,
        unlock_count: r.try_get("unlock_count")?,
        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    }))
}

/// Lock ids an invite covers (its explicit locks plus its group's).
pub async fn invite_locks(state: &AppState, invite: &InviteInfo) -> ApiResult<Vec<String>> {
    invite_locks_on(&mut *state.pool().acquire().await?, invite).await
}

async fn invite_locks_on(
    db: &mut sqlx::AnyConnection,
    invite: &InviteInfo,
) -> ApiResult<Vec<String>> {
    let mut ids = invite.lock_ids.clone();
    if let Some(group) = &invite.group_id {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT lock_id FROM group_locks WHERE group_id = $1")
                .bind(group)
                .fetch_all(&mut *db)
                .await?;
        ids.extend(rows.into_iter().map(|(id,)| id));
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

async fn check_invite(
    state: &AppState,
    user_id: &str,
    lock: &LockInfo,
    now: i64,
    use_held: bool,
) -> ApiResult<Result<Grant, Reason>> {
    let Some(invite) = guest_invite(state, user_id).await? else {
        return Ok(Err(Reason::NoAccess));
    };
    if invite.org_id != lock.org_id || !invite_locks(state, &invite).await?.contains(&lock.id) {
        return Ok(Err(Reason::NoAccess));
    }
    if invite.revoked {
        return Ok(Err(Reason::Revoked));
    }
    if let Err(r) = window_verdict(Some(invite.valid_from), Some(invite.valid_until), now) {
        return Ok(Err(r));
    }
    if let Err(r) = schedule_verdict(invite.daily_windows(), &lock.time_zone, now) {
        return Ok(Err(r));
    }
    if !use_held && invite.max_unlocks.is_some_and(|m| invite.unlock_count >= m) {
        return Ok(Err(Reason::UseLimitExceeded));
    }
    Ok(Ok(Grant::Invite {
        invite_id: invite.id,
        limited: invite.max_unlocks.is_some(),
    }))
}

/// A lock the holder may open now, with the limits an offline credential must carry.
#[derive(Debug, Clone)]
pub struct LockGrant {
    pub lock_id: String,
    pub place_id: String,
    pub time_zone: String,
    /// `None`: no end (role-based access).
    pub valid_until: Option<i64>,
    /// `None`: any time of day.
    pub windows: Option<Vec<Window>>,
}

/// An (end, hours) pair: `None` end = no end, `None` hours = any time.
type Terms = (Option<i64>, Option<Vec<Window>>);

/// One pair of terms for a lock several assignments grant, never allowing more than one of
/// them does (an offline credential cannot be taken back). Merged only where the merge is
/// exact: same hours (the latest end), or same end (the hours together). Otherwise one
/// assignment's own terms: any time of day before other hours, then the latest end. What
/// the credential leaves out, cloud unlock still grants.
fn combine_terms(terms: Vec<Terms>) -> Option<Terms> {
    let later = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (None, _) | (_, None) => None,
        (Some(a), Some(b)) => Some(a.max(b)),
    };
    let first = terms.first()?.clone();
    if terms.iter().all(|(_, w)| *w == first.1) {
        let until = terms.iter().skip(1).fold(first.0, |u, (v, _)| later(u, *v));
        return Some((until, first.1));
    }
    if terms.iter().all(|(u, _)| *u == first.0) {
        let mut windows = Some(Vec::new());
        for (_, w) in &terms {
            windows = match (windows, w) {
                (None, _) | (_, None) => None,
                (Some(mut a), Some(b)) => {
                    for w in b {
                        if !a.contains(w) {
                            a.push(*w);
                        }
                    }
                    Some(a)
                }
            };
        }
        return Some((first.0, windows));
    }
    // Ends compare with "no end" as the latest.
    terms
        .into_iter()
        .max_by_key(|(u, w)| (w.is_none(), u.is_none(), u.unwrap_or(0)))
}

/// Every lock of `org` the user may open at `now` (schedules not applied; they travel in
/// the credential).
pub async fn openable_locks(
    state: &AppState,
    org_id: &str,
    user_id: &str,
    role: Role,
    now: i64,
) -> ApiResult<Vec<LockGrant>> {
    let mut db = state.pool().acquire().await?;
    openable_locks_on(&mut db, org_id, user_id, role, now).await
}

/// [`openable_locks`] on a given connection: credential issuance reads on its transaction,
/// which holds row locks, rather than waiting for a second connection from a pool that
/// requests queued on those locks may have drained.
pub async fn openable_locks_on(
    db: &mut sqlx::AnyConnection,
    org_id: &str,
    user_id: &str,
    role: Role,
    now: i64,
) -> ApiResult<Vec<LockGrant>> {
    let all: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT l.id, l.place_id, p.time_zone FROM locks l JOIN places p ON p.id = l.place_id \
         WHERE l.org_id = $1 ORDER BY l.name, l.id",
    )
    .bind(org_id)
    .fetch_all(&mut *db)
    .await?;
    if role.opens_everything() {
        return Ok(all
            .into_iter()
            .map(|(lock_id, place_id, time_zone)| LockGrant {
                lock_id,
                place_id,
                time_zone,
                valid_until: None,
                windows: None,
            })
            .collect());
    }
    let mut out = Vec::new();
    if role == Role::Guest {
        let Some(invite) = guest_invite_on(db, user_id).await? else {
            return Ok(out);
        };
        if invite.org_id != org_id
            || invite.revoked
            || now < invite.valid_from
            || now >= invite.valid_until
            || invite.max_unlocks.is_some_and(|m| invite.unlock_count >= m)
        {
            return Ok(out);
        }
        let ids = invite_locks_on(db, &invite).await?;
        for (lock_id, place_id, time_zone) in all {
            if ids.contains(&lock_id) {
                out.push(LockGrant {
                    lock_id,
                    place_id,
                    time_zone,
                    valid_until: Some(invite.valid_until),
                    windows: invite.daily_windows(),
                });
            }
        }
        return Ok(out);
    }
    let rows = sqlx::query(
        "SELECT gl.lock_id, ra.valid_until, s.windows FROM role_assignments ra \
         JOIN group_locks gl ON gl.group_id = ra.group_id \
         LEFT JOIN schedules s ON s.id = ra.schedule_id \
         WHERE ra.org_id = $1 AND ra.user_id = $2 \
         AND (ra.valid_from IS NULL OR ra.valid_from <= $3) \
         AND (ra.valid_until IS NULL OR ra.valid_until > $3)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut *db)
    .await?;
    for (lock_id, place_id, time_zone) in all {
        let mut terms = Vec::new();
        for r in &rows {
            if r.try_get::<String, _>("lock_id")? != lock_id {
                continue;
            }
            let until: Option<i64> = r.try_get("valid_until")?;
            let windows = r
                .try_get::<Option<String>, _>("windows")?
                .map(|w| parse_windows(&w));
            terms.push((until, windows));
        }
        if let Some((valid_until, windows)) = combine_terms(terms) {
            out.push(LockGrant {
                lock_id,
                place_id,
                time_zone,
                valid_until,
                windows,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod combine_tests {
    use super::*;

    fn w(start_minute: u16) -> Window {
        Window {
            weekdays: 0x1f,
            start_minute,
            end_minute: start_minute + 60,
        }
    }

    #[test]
    fn several_assignments_never_combine_into_more_than_one_grants() {
        // Any time until T1, and hours S with no end: not "any time, no end".
        let t1 = Some(1_000);
        let got = combine_terms(vec![(t1, None), (None, Some(vec![w(600)]))]);
        assert_eq!(got, Some((t1, None)));
        // Same hours: the later end. Same end: both hours.
        assert_eq!(
            combine_terms(vec![(t1, Some(vec![w(600)])), (None, Some(vec![w(600)]))]),
            Some((None, Some(vec![w(600)])))
        );
        assert_eq!(
            combine_terms(vec![(t1, Some(vec![w(600)])), (t1, Some(vec![w(720)]))]),
            Some((t1, Some(vec![w(600), w(720)])))
        );
        assert_eq!(
            combine_terms(vec![(t1, Some(vec![w(600)])), (t1, None)]),
            Some((t1, None))
        );
        // Different hours and ends: the one that lasts longer.
        assert_eq!(
            combine_terms(vec![
                (Some(5), Some(vec![w(600)])),
                (Some(9), Some(vec![w(720)]))
            ]),
            Some((Some(9), Some(vec![w(720)])))
        );
        assert_eq!(combine_terms(vec![]), None);
    }
}
