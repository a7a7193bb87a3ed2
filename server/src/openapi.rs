//! The OpenAPI 3 document, generated from the route table below, checked in as
//! `server/openapi.json` (a test keeps them equal; `KEYWAY_UPDATE_OPENAPI=1 cargo test`
//! rewrites the file) and served at `/api/v1/openapi.json`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub async fn serve() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| serde_json::to_string_pretty(&document()).unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response()
}

/// (method, path, summary, tag, request schema, success status, response schema, auth)
type Op = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    Option<&'static str>,
    bool,
);

const OPS: &[Op] = &[
    (
        "post",
        "/logins",
        "Log in with email and password",
        "logins",
        Some("LoginRequest"),
        201,
        Some("Login"),
        false,
    ),
    (
        "get",
        "/logins",
        "List your active sessions",
        "logins",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "delete",
        "/logins/current",
        "Log out",
        "logins",
        None,
        204,
        None,
        true,
    ),
    (
        "delete",
        "/logins/{id}",
        "Revoke one of your sessions",
        "logins",
        None,
        204,
        None,
        true,
    ),
    (
        "get",
        "/me",
        "The caller and their memberships",
        "logins",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "post",
        "/orgs",
        "Create an organization (you become its owner)",
        "orgs",
        Some("NameRequest"),
        201,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/orgs",
        "Your organizations and roles",
        "orgs",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "get",
        "/orgs/{org}",
        "Get an organization",
        "orgs",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/members",
        "List members (manager)",
        "members",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/members",
        "Add a member (admin)",
        "members",
        Some("AddMember"),
        201,
        Some("Object"),
        true,
    ),
    (
        "put",
        "/orgs/{org}/members/{user}",
        "Change a member's role (admin)",
        "members",
        Some("RoleRequest"),
        200,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/orgs/{org}/members/{user}",
        "Remove a member (admin)",
        "members",
        None,
        204,
        None,
        true,
    ),
    (
        "get",
        "/orgs/{org}/api_keys",
        "List API keys (admin)",
        "api_keys",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/api_keys",
        "Create an API key (admin); the token is shown once",
        "api_keys",
        Some("ApiKeyRequest"),
        201,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/orgs/{org}/api_keys/{id}",
        "Revoke an API key (admin)",
        "api_keys",
        None,
        204,
        None,
        true,
    ),
    (
        "get",
        "/orgs/{org}/keys",
        "Organization signing keys and trusted key set (admin)",
        "keys",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/keys/rotate",
        "Rotate the signing key with overlap (owner)",
        "keys",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/keys/retire_previous",
        "End the rotation overlap (owner)",
        "keys",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/revocations",
        "Current signed revocation list",
        "keys",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/places",
        "List places",
        "places",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/places",
        "Create a place (admin)",
        "places",
        Some("CreatePlace"),
        201,
        Some("Place"),
        true,
    ),
    (
        "get",
        "/places/{id}",
        "Get a place",
        "places",
        None,
        200,
        Some("Place"),
        true,
    ),
    (
        "put",
        "/places/{id}",
        "Update a place (admin)",
        "places",
        Some("UpdatePlace"),
        200,
        Some("Place"),
        true,
    ),
    (
        "delete",
        "/places/{id}",
        "Delete an empty place (admin)",
        "places",
        None,
        204,
        None,
        true,
    ),
    (
        "post",
        "/places/{id}/lockdown",
        "Start or end lockdown of a place (manager)",
        "places",
        Some("Lockdown"),
        200,
        Some("Place"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/locks",
        "List locks (members see the locks they may open)",
        "locks",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/locks",
        "Create a lock (admin)",
        "locks",
        Some("CreateLock"),
        201,
        Some("Lock"),
        true,
    ),
    (
        "get",
        "/locks/{id}",
        "Get a lock",
        "locks",
        None,
        200,
        Some("Lock"),
        true,
    ),
    (
        "put",
        "/locks/{id}",
        "Update a lock, bind it to a controller (admin)",
        "locks",
        Some("UpdateLock"),
        200,
        Some("Lock"),
        true,
    ),
    (
        "delete",
        "/locks/{id}",
        "Delete a lock (admin)",
        "locks",
        None,
        204,
        None,
        true,
    ),
    (
        "post",
        "/locks/{id}/lockdown",
        "Start or end lockdown of a lock (manager)",
        "locks",
        Some("Lockdown"),
        200,
        Some("Lock"),
        true,
    ),
    (
        "post",
        "/locks/{id}/unlock",
        "Cloud unlock (Idempotency-Key header supported)",
        "locks",
        Some("UnlockRequest"),
        200,
        Some("UnlockResult"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/controllers",
        "List controllers (manager)",
        "controllers",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/controllers",
        "Create a controller and its provisioning token (admin)",
        "controllers",
        Some("NameRequest"),
        201,
        Some("Object"),
        true,
    ),
    (
        "post",
        "/controllers/provision",
        "Redeem a provisioning token with the controller's public key",
        "controllers",
        Some("Provision"),
        201,
        Some("Object"),
        false,
    ),
    (
        "get",
        "/controllers/{id}",
        "Get a controller (manager)",
        "controllers",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/controllers/{id}",
        "Delete a controller (admin)",
        "controllers",
        None,
        204,
        None,
        true,
    ),
    (
        "post",
        "/controllers/{id}/provisioning_token",
        "New provisioning token (admin)",
        "controllers",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/groups",
        "List groups (manager)",
        "groups",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/groups",
        "Create a group (admin)",
        "groups",
        Some("CreateGroup"),
        201,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/groups/{id}",
        "Get a group (manager)",
        "groups",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/groups/{id}",
        "Delete a group (admin)",
        "groups",
        None,
        204,
        None,
        true,
    ),
    (
        "post",
        "/groups/{id}/locks",
        "Add a lock to a group (admin)",
        "groups",
        Some("GroupLock"),
        201,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/groups/{id}/locks/{lock}",
        "Remove a lock from a group (admin)",
        "groups",
        None,
        204,
        None,
        true,
    ),
    (
        "get",
        "/orgs/{org}/schedules",
        "List weekly schedules (manager)",
        "schedules",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/schedules",
        "Create a weekly schedule (admin)",
        "schedules",
        Some("CreateSchedule"),
        201,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/schedules/{id}",
        "Delete an unused schedule (admin)",
        "schedules",
        None,
        204,
        None,
        true,
    ),
    (
        "get",
        "/orgs/{org}/role_assignments",
        "List role assignments (manager)",
        "role_assignments",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/role_assignments",
        "Grant a group to a user with a validity window (manager)",
        "role_assignments",
        Some("CreateAssignment"),
        201,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/role_assignments/{id}",
        "Remove a role assignment (manager)",
        "role_assignments",
        None,
        204,
        None,
        true,
    ),
    (
        "post",
        "/devices",
        "Register a device key",
        "devices",
        Some("RegisterDevice"),
        201,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/devices",
        "List your devices",
        "devices",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "delete",
        "/devices/{id}",
        "Remove a device and revoke its credentials",
        "devices",
        None,
        204,
        None,
        true,
    ),
    (
        "post",
        "/devices/{id}/credentials",
        "Issue an offline credential for an organization",
        "devices",
        Some("IssueCredential"),
        200,
        Some("Credential"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/invites",
        "List invites (manager)",
        "invites",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/invites",
        "Create a visitor invite (manager); the code is shown once",
        "invites",
        Some("CreateInvite"),
        201,
        Some("Object"),
        true,
    ),
    (
        "post",
        "/invites/redeem",
        "Redeem an invite code for a guest login",
        "invites",
        Some("Redeem"),
        201,
        Some("Login"),
        false,
    ),
    (
        "get",
        "/invites/{id}",
        "Get an invite (manager)",
        "invites",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/invites/{id}",
        "Revoke an invite (manager)",
        "invites",
        None,
        204,
        None,
        true,
    ),
    (
        "get",
        "/orgs/{org}/events",
        "Audit log with filters and cursor pagination (manager)",
        "events",
        None,
        200,
        Some("EventPage"),
        true,
    ),
    (
        "get",
        "/orgs/{org}/events.csv",
        "Audit log as CSV (manager)",
        "events",
        None,
        200,
        None,
        true,
    ),
    (
        "get",
        "/orgs/{org}/webhooks",
        "List webhooks (admin)",
        "webhooks",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "post",
        "/orgs/{org}/webhooks",
        "Create a webhook (admin); the whsec_ secret is shown once",
        "webhooks",
        Some("CreateWebhook"),
        201,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/webhooks/{id}",
        "Get a webhook with its delivery health (admin)",
        "webhooks",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "delete",
        "/webhooks/{id}",
        "Delete a webhook (admin)",
        "webhooks",
        None,
        204,
        None,
        true,
    ),
    (
        "post",
        "/webhooks/{id}/enable",
        "Re-enable a disabled webhook (admin)",
        "webhooks",
        None,
        200,
        Some("Object"),
        true,
    ),
    (
        "get",
        "/webhooks/{id}/deliveries",
        "Delivery log of a webhook (admin)",
        "webhooks",
        None,
        200,
        Some("List"),
        true,
    ),
    (
        "get",
        "/openapi.json",
        "This document",
        "meta",
        None,
        200,
        Some("Object"),
        false,
    ),
];

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn obj(required: &[&str], props: Value) -> Value {
    let mut o = json!({"type": "object", "additionalProperties": false, "properties": props});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn schemas() -> Value {
    let s = json!({"type": "string"});
    let name = json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"});
    let hex_key = json!({"type": "string", "pattern": "^04[0-9a-fA-F]{128}$"});
    let email = json!({"type": "string", "format": "email", "maxLength": 254});
    let uuid = json!({"type": "string", "format": "uuid"});
    let int = json!({"type": "integer", "format": "int64"});
    let num = json!({"type": "number"});
    let boolean = json!({"type": "boolean"});
    let role = json!({"type": "string", "enum": ["owner", "admin", "manager", "member", "guest"]});
    let nullable = |v: &Value| {
        let mut v = v.clone();
        v["nullable"] = json!(true);
        v
    };
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["code", "message"], "properties": {"code": s, "message": s}}}},
        "Object": {"type": "object"},
        "List": {"type": "object", "required": ["items", "total"], "properties": {
            "items": {"type": "array", "items": {"type": "object"}}, "total": int, "limit": int, "offset": int}},
        "EventPage": {"type": "object", "required": ["items", "total", "limit"], "properties": {
            "items": {"type": "array", "items": {"type": "object"}}, "total": int, "limit": int,
            "next_cursor": nullable(&int)}},
        "LoginRequest": obj(&["email", "password"], json!({"email": s, "password": s, "device_name": s})),
        "Login": {"type": "object", "required": ["token", "user", "memberships"], "properties": {
            "token": s, "user": {"type": "object"}, "memberships": {"type": "array", "items": {"type": "object"}}}},
        "NameRequest": obj(&["name"], json!({"name": name})),
        "RoleRequest": obj(&["role"], json!({"role": role})),
        "AddMember": obj(&["email", "role"], json!({"email": email, "name": name,
            "password": {"type": "string", "minLength": 8, "maxLength": 1024}, "role": role})),
        "ApiKeyRequest": obj(&["name", "role"], json!({"name": name, "role": role})),
        "CreatePlace": obj(&["name", "time_zone"], json!({"name": name, "time_zone": s, "latitude": num, "longitude": num})),
        "UpdatePlace": obj(&[], json!({"name": name, "time_zone": s, "latitude": nullable(&num), "longitude": nullable(&num)})),
        "Place": {"type": "object", "properties": {"id": uuid, "name": s, "time_zone": s,
            "latitude": nullable(&num), "longitude": nullable(&num), "lockdown": boolean}},
        "Lockdown": obj(&["lockdown"], json!({"lockdown": boolean})),
        "CreateLock": obj(&["place_id", "name"], json!({"place_id": uuid, "name": name, "controller_id": uuid,
            "walk_up_allowed": boolean, "geofence_radius_m": num, "reader_restriction": boolean,
            "tx_power": {"type": "integer", "minimum": -128, "maximum": 127}})),
        "UpdateLock": obj(&[], json!({"place_id": uuid, "name": name, "controller_id": nullable(&uuid),
            "walk_up_allowed": boolean, "geofence_radius_m": nullable(&num), "reader_restriction": boolean,
            "tx_power": {"type": "integer", "minimum": -128, "maximum": 127}})),
        "Lock": {"type": "object", "properties": {"id": uuid, "place_id": uuid, "name": s,
            "controller_id": nullable(&uuid), "walk_up_allowed": boolean,
            "geofence_radius_m": nullable(&num), "reader_restriction": boolean, "lockdown": boolean,
            "online": boolean, "short_id": s, "tx_power": int}},
        "UnlockRequest": obj(&[], json!({"proximity_proof": {"type": "integer", "minimum": 0, "maximum": 4294967295u64},
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180}})),
        "UnlockResult": {"type": "object", "required": ["granted", "command_id", "duplicate"], "properties": {
            "granted": boolean, "event_id": nullable(&uuid), "command_id": uuid, "duplicate": boolean}},
        "Provision": obj(&["token", "public_key"], json!({"token": s, "public_key": hex_key})),
        "CreateGroup": obj(&["name"], json!({"name": name, "lock_ids": {"type": "array", "items": uuid}})),
        "GroupLock": obj(&["lock_id"], json!({"lock_id": uuid})),
        "CreateSchedule": obj(&["name", "windows"], json!({"name": name, "windows": {"type": "array", "items":
            obj(&["days", "start", "end"], json!({"days": {"type": "array", "items": {"type": "string",
                "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}, "start": s, "end": s}))}})),
        "CreateAssignment": obj(&["user_id", "group_id"], json!({"user_id": uuid, "group_id": uuid,
            "schedule_id": uuid, "valid_from": int, "valid_until": int})),
        "RegisterDevice": obj(&["public_key", "name"], json!({"public_key": hex_key, "name": name})),
        "IssueCredential": obj(&["org"], json!({"org": uuid})),
        "Credential": {"type": "object", "required": ["credential", "not_after", "trusted_keys", "refresh_after"],
            "properties": {"id": uuid, "credential": s, "not_after": int, "refresh_after": int,
            "issued_at": int, "trusted_keys": {"type": "object"}}},
        "CreateInvite": obj(&["name", "valid_until"], json!({"name": name, "email": s, "phone": s,
            "lock_ids": {"type": "array", "items": uuid}, "group_id": uuid, "valid_from": int,
            "valid_until": int, "daily_start": s, "daily_end": s, "max_unlocks": int})),
        "Redeem": obj(&["code"], json!({"code": s})),
        "CreateWebhook": obj(&["url", "event_types"], json!({"url": s, "event_types": {"type": "array", "items": s}})),
    })
}

/// What the cloud unlock's error statuses tell the caller about the door.
const UNLOCK_ERRORS: &[(&str, &str)] = &[
    (
        "403",
        "refused (a Reason code, or forbidden); nothing opened",
    ),
    (
        "409",
        "door_offline: the command was not delivered, nothing opened, another route (Bluetooth) \
         may be tried; not_configured: the lock has no controller; conflict: the \
         Idempotency-Key is in use for another lock or by a request in progress",
    ),
    (
        "504",
        "unconfirmed: the command reached the door, or may have, and no answer came in time; \
         the door may have opened. Do not try another route; a retry with the same \
         Idempotency-Key reuses the command id, which the door runs at most once",
    ),
];

pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, tag, req, status, resp, auth) in OPS {
        let mut op = json!({"summary": summary, "tags": [tag],
            "operationId": format!("{method}_{}", path.trim_matches('/').replace(['/', '{', '}', '.'], "_"))});
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true,
                               "schema": {"type": "string", "format": "uuid"}})
            })
            .collect();
        let mut params = params;
        if path.ends_with("/unlock") {
            params.push(
                json!({"name": "Idempotency-Key", "in": "header", "required": false,
                "schema": {"type": "string", "pattern": "^[ -~]{1,200}$"}}),
            );
        }
        if *method == "get"
            && (resp == &Some("List") || resp == &Some("EventPage") || path.ends_with(".csv"))
        {
            for (name, schema) in [
                (
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 500}),
                ),
                (
                    "offset",
                    json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000}),
                ),
            ] {
                if name == "offset" && resp != &Some("List") {
                    continue; // the audit log pages by cursor
                }
                params.push(
                    json!({"name": name, "in": "query", "required": false, "schema": schema}),
                );
            }
        }
        if path.contains("/events") {
            for (name, schema) in [
                (
                    "since",
                    json!({"type": "integer", "minimum": 0, "maximum": 100_000_000_000i64}),
                ),
                (
                    "until",
                    json!({"type": "integer", "minimum": 0, "maximum": 100_000_000_000i64}),
                ),
                ("lock", json!({"type": "string", "format": "uuid"})),
                ("place", json!({"type": "string", "format": "uuid"})),
                ("actor", json!({"type": "string", "format": "uuid"})),
                ("type", json!({"type": "string", "maxLength": 100})),
                ("success", json!({"type": "boolean"})),
                (
                    "cursor",
                    json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
                ),
            ] {
                params.push(
                    json!({"name": name, "in": "query", "required": false, "schema": schema}),
                );
            }
        }
        if !params.is_empty() {
            op["parameters"] = json!(params);
        }
        if let Some(req) = req {
            op["requestBody"] = json!({"required": *req != "UnlockRequest",
                "content": {"application/json": {"schema": r(req)}}});
        }
        let mut responses = Map::new();
        let ok = match resp {
            Some(s) => {
                json!({"description": "success", "content": {"application/json": {"schema": r(s)}}})
            }
            None if path.ends_with(".csv") => {
                json!({"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}})
            }
            None => json!({"description": "success"}),
        };
        responses.insert(status.to_string(), ok);
        let err = json!({"description": "error with a stable machine code",
            "content": {"application/json": {"schema": r("Error")}}});
        let mut codes = vec!["400", "404", "413"];
        if *auth {
            // Every authenticated call counts against the caller's request budget.
            codes.extend(["401", "403", "429"]);
        }
        if path.ends_with("/unlock") {
            codes.extend(["409", "429", "504"]);
        }
        if *method == "post" || *method == "put" || *method == "delete" {
            codes.push("409");
        }
        if *path == "/logins" && *method == "post" {
            codes.extend(["401", "429"]);
        }
        if *path == "/invites/redeem" || *path == "/controllers/provision" {
            codes.extend(["401", "403", "409"]);
        }
        codes.sort();
        codes.dedup();
        for c in codes {
            responses.insert(c.to_string(), err.clone());
        }
        if path.ends_with("/unlock") {
            for (c, description) in UNLOCK_ERRORS {
                responses[*c]["description"] = json!(description);
            }
        }
        op["responses"] = Value::Object(responses);
        if *auth {
            op["security"] = json!([{"bearer": []}]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Keyway API", "version": "1.0.0",
                 "description": "Keyway companion server. Controllers connect to the WebSocket GET /controllers/connect (keyway-channel messages; not describable here). Errors: {\"error\": {\"code\", \"message\"}} with stable codes (Reason codes for denials)."},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "Session secret (kws_...) or API key (kwk_...)"}},
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let generated = serde_json::to_string_pretty(&super::document()).unwrap() + "\n";
        if std::env::var("KEYWAY_UPDATE_OPENAPI").is_ok() {
            std::fs::write(path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap();
        assert!(
            on_disk == generated,
            "server/openapi.json is stale: run KEYWAY_UPDATE_OPENAPI=1 cargo test -p keyway-server openapi"
        );
    }
}
