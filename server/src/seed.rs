//! Bootstrap: an organization with its owner, and the idempotent demo seed.

use serde_json::json;

use crate::api::invites::{CreateInvite, create_invite};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::util::{new_id, now_s, random_bytes};

pub async fn create_org_with_owner(
    state: &AppState,
    name: &str,
    email: &str,
    password: &str,
) -> ApiResult<String> {
    if password.len() < 8 {
        return Err(ApiError::invalid(
            "owner password must be at least 8 characters",
        ));
    }
    let name = crate::api::orgs::check_name(name)?;
    let user = crate::api::orgs::ensure_user(state, email, email, Some(password)).await?;
    crate::orgkeys::create_org(state, name, &user).await
}

pub const DEMO_PASSWORDS: [(&str, &str, Role); 2] = [
    ("alice@acme.test", "alice-demo-password", Role::Admin),
    ("bob@acme.test", "bob-demo-password", Role::Member),
];
const OWNER: (&str, &str) = ("owner@acme.test", "owner-demo-password");

#[derive(Debug, Clone)]
pub struct DemoSeed {
    pub org_id: String,
    pub place_id: String,
    pub front_door: String,
    pub lab: String,
    pub controller_id: String,
    pub provisioning_token: String,
    /// A fresh week-long visitor invite to the front door, issued on every run.
    pub invite_code: String,
    pub created: bool,
}

impl DemoSeed {
    pub fn describe(&self) -> String {
        let mut users = vec![json!({"email": OWNER.0, "password": OWNER.1, "role": "owner"})];
        for (email, password, role) in DEMO_PASSWORDS {
            users.push(json!({"email": email, "password": password, "role": role}));
        }
        serde_json::to_string_pretty(&json!({
            "demo": "Acme",
            "created": self.created,
            "org_id": self.org_id,
            "place_id": self.place_id,
            "locks": {"Front door": self.front_door, "Lab": self.lab},
            "controller_id": self.controller_id,
            "provisioning_token": self.provisioning_token,
            "visitor_invite_code": self.invite_code,
            "users": users,
        }))
        .unwrap_or_default()
    }
}

/// Creates the demo org once; later runs find it and issue a fresh provisioning token and
/// visitor invite.
pub async fn seed_demo(state: &AppState) -> anyhow::Result<DemoSeed> {
    seed(state)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))
}

async fn seed(state: &AppState) -> ApiResult<DemoSeed> {
    let pool = state.pool();
    let existing: Option<(String,)> = sqlx::query_as(
        "SELECT m.org_id FROM memberships m JOIN users u ON u.id = m.user_id \
         JOIN orgs o ON o.id = m.org_id WHERE u.email = $1 AND o.name = 'Acme'",
    )
    .bind(OWNER.0)
    .fetch_optional(pool)
    .await?;
    if let Some((org,)) = existing {
        let (place_id,): (String,) =
            sqlx::query_as("SELECT id FROM places WHERE org_id = $1 AND name = 'HQ'")
                .bind(&org)
                .fetch_one(pool)
                .await?;
        let lock = |name: &'static str| {
            let org = org.clone();
            async move {
                sqlx::query_as::<_, (String,)>(
                    "SELECT id FROM locks WHERE org_id = $1 AND name = $2",
                )
                .bind(org)
                .bind(name)
                .fetch_one(pool)
                .await
                .map(|(id,)| id)
            }
        };
        let front_door = lock("Front door").await?;
        let lab = lock("Lab").await?;
        let (controller_id,): (String,) = sqlx::query_as(
            "SELECT id FROM controllers WHERE org_id = $1 ORDER BY created_at LIMIT 1",
        )
        .bind(&org)
        .fetch_one(pool)
        .await?;
        let token = crate::util::new_secret(&state.rng, "kwp_");
        sqlx::query(
            "UPDATE controllers SET provisioning_token_hash = $1, provisioning_expires_at = $2 WHERE id = $3",
        )
        .bind(crate::util::sha256_hex(&token))
        .bind(now_s() + 86_400)
        .bind(&controller_id)
        .execute(pool)
        .await?;
        // Invite codes are stored hashed, so an earlier run's code cannot be shown again.
        let invite_code = demo_invite(state, &org, &front_door).await?;
        return Ok(DemoSeed {
            org_id: org,
            place_id,
            front_door,
            lab,
            controller_id,
            provisioning_token: token,
            invite_code,
            created: false,
        });
    }

    let org = create_org_with_owner(state, "Acme", OWNER.0, OWNER.1).await?;
    for (email, password, role) in DEMO_PASSWORDS {
        let name = email.split('@').next().unwrap_or(email);
        let mut name = name.to_owned();
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let user = crate::api::orgs::ensure_user(state, email, &name, Some(password)).await?;
        crate::api::orgs::add_member(state.pool(), &org, &user, role).await?;
    }
    let place_id = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO places (id, org_id, name, time_zone, latitude, longitude, created_at) \
         VALUES ($1, $2, 'HQ', 'Europe/Berlin', 52.52, 13.405, $3)",
    )
    .bind(&place_id)
    .bind(&org)
    .bind(now_s())
    .execute(pool)
    .await?;
    let (controller_id, token) =
        crate::api::controllers::create_controller(state, &org, "HQ controller").await?;
    let mut locks = Vec::new();
    for (name, walk_up) in [("Front door", true), ("Lab", false)] {
        let id = new_id(&state.rng);
        sqlx::query(
            "INSERT INTO locks (id, org_id, place_id, name, controller_id, walk_up_allowed, \
             proximity_secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&org)
        .bind(&place_id)
        .bind(name)
        .bind(&controller_id)
        .bind(i64::from(walk_up))
        .bind(hex::encode(random_bytes::<32>(&state.rng)))
        .bind(now_s())
        .execute(pool)
        .await?;
        locks.push(id);
    }
    let group = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO access_groups (id, org_id, name, created_at) VALUES ($1, $2, 'Staff', $3)",
    )
    .bind(&group)
    .bind(&org)
    .bind(now_s())
    .execute(pool)
    .await?;
    for l in &locks {
        sqlx::query("INSERT INTO group_locks (group_id, lock_id, org_id) VALUES ($1, $2, $3)")
            .bind(&group)
            .bind(l)
            .bind(&org)
            .execute(pool)
            .await?;
    }
    let (bob,): (String,) = sqlx::query_as("SELECT id FROM users WHERE email = 'bob@acme.test'")
        .fetch_one(pool)
        .await?;
    sqlx::query(
        "INSERT INTO role_assignments (id, org_id, user_id, group_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id(&state.rng))
    .bind(&org)
    .bind(&bob)
    .bind(&group)
    .bind(now_s())
    .execute(pool)
    .await?;
    let code = demo_invite(state, &org, &locks[0]).await?;
    Ok(DemoSeed {
        org_id: org,
        place_id,
        front_door: locks[0].clone(),
        lab: locks[1].clone(),
        controller_id,
        provisioning_token: token,
        invite_code: code,
        created: true,
    })
}

/// A visitor invite to `lock` for the next seven days; returns its code.
async fn demo_invite(state: &AppState, org: &str, lock: &str) -> ApiResult<String> {
    let (_, code) = create_invite(
        state,
        state.pool(),
        org,
        "seed",
        &CreateInvite {
            name: "Visitor".into(),
            email: Some("visitor@example.test".into()),
            phone: None,
            lock_ids: vec![lock.to_owned()],
            group_id: None,
            valid_from: None,
            valid_until: now_s() + 7 * 86_400,
            daily_start: None,
            daily_end: None,
            max_unlocks: None,
        },
    )
    .await?;
    Ok(code)
}
