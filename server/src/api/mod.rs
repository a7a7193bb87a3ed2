//! The `/api/v1` router: one module per resource, one handler per operation.

pub mod controllers;
pub mod devices;
pub mod events;
pub mod groups;
pub mod invites;
pub mod locks;
pub mod logins;
pub mod me;
pub mod orgs;
pub mod places;
pub mod role_assignments;
pub mod schedules;
pub mod webhooks;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/logins", post(logins::create).get(logins::list))
        .route("/logins/current", delete(logins::delete_current))
        .route("/logins/{id}", delete(logins::delete))
        .route("/me", get(me::get))
        .route("/orgs", post(orgs::create).get(orgs::list_mine))
        .route("/orgs/{org}", get(orgs::get))
        .route(
            "/orgs/{org}/members",
            get(orgs::list_members).post(orgs::create_member),
        )
        .route(
            "/orgs/{org}/members/{user}",
            put(orgs::update_member).delete(orgs::delete_member),
        )
        .route(
            "/orgs/{org}/api_keys",
            get(orgs::list_api_keys).post(orgs::create_api_key),
        )
        .route("/orgs/{org}/api_keys/{id}", delete(orgs::delete_api_key))
        .route("/orgs/{org}/keys", get(orgs::list_keys))
        .route("/orgs/{org}/keys/rotate", post(orgs::rotate_key))
        .route(
            "/orgs/{org}/keys/retire_previous",
            post(orgs::retire_previous_key),
        )
        .route("/orgs/{org}/revocations", get(orgs::revocations))
        .route(
            "/orgs/{org}/places",
            get(places::list_places).post(places::create),
        )
        .route(
            "/places/{id}",
            get(places::get).put(places::update).delete(places::delete),
        )
        .route("/places/{id}/lockdown", post(places::lockdown))
        .route(
            "/orgs/{org}/locks",
            get(locks::list_locks).post(locks::create),
        )
        .route(
            "/locks/{id}",
            get(locks::get).put(locks::update).delete(locks::delete),
        )
        .route("/locks/{id}/lockdown", post(locks::lockdown))
        .route("/locks/{id}/unlock", post(locks::unlock::unlock))
        .route(
            "/orgs/{org}/controllers",
            get(controllers::list_controllers).post(controllers::create),
        )
        .route("/controllers/provision", post(controllers::provision))
        .route("/controllers/connect", get(crate::channel::connect))
        .route(
            "/controllers/{id}",
            get(controllers::get).delete(controllers::delete),
        )
        .route(
            "/controllers/{id}/provisioning_token",
            post(controllers::new_token),
        )
        .route(
            "/orgs/{org}/groups",
            get(groups::list_groups).post(groups::create_group),
        )
        .route(
            "/groups/{id}",
            get(groups::get_group).delete(groups::delete_group),
        )
        .route("/groups/{id}/locks", post(groups::add_group_lock))
        .route(
            "/groups/{id}/locks/{lock}",
            delete(groups::remove_group_lock),
        )
        .route(
            "/orgs/{org}/schedules",
            get(schedules::list_schedules).post(schedules::create_schedule),
        )
        .route("/schedules/{id}", delete(schedules::delete_schedule))
        .route(
            "/orgs/{org}/role_assignments",
            get(role_assignments::list_assignments).post(role_assignments::create_assignment),
        )
        .route(
            "/role_assignments/{id}",
            delete(role_assignments::delete_assignment),
        )
        .route(
            "/devices",
            post(devices::register).get(devices::list_devices),
        )
        .route("/devices/{id}", delete(devices::delete))
        .route("/devices/{id}/credentials", post(devices::issue))
        .route(
            "/orgs/{org}/invites",
            get(invites::list_invites).post(invites::create),
        )
        .route("/invites/redeem", post(invites::redeem))
        .route("/invites/{id}", get(invites::get).delete(invites::revoke))
        .route("/orgs/{org}/events", get(events::list_events))
        .route("/orgs/{org}/events.csv", get(events::export_csv))
        .route(
            "/orgs/{org}/webhooks",
            get(webhooks::list_hooks).post(webhooks::create),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get).delete(webhooks::delete),
        )
        .route("/webhooks/{id}/enable", post(webhooks::enable))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/openapi.json", get(crate::openapi::serve))
}
