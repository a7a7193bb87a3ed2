//! Malformed input: clear 4xx with an error code, never a 500.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn malformed_requests_get_4xx_codes() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let url = |p: &str| format!("{}/api/v1{p}", srv.base);
        let places = format!("/orgs/{}/places", org.id);
        let send =
            |method: reqwest::Method, path: String, body: &'static str, ctype: &'static str| {
                let req = srv
                    .http
                    .request(method, url(&path))
                    .bearer_auth(&org.owner)
                    .header("content-type", ctype)
                    .body(body);
                async move {
                    let r = req.send().await.unwrap();
                    let s = r.status().as_u16();
                    (
                        s,
                        r.json::<serde_json::Value>().await.unwrap_or(json!(null)),
                    )
                }
            };
        let cases = [
            (
                send(
                    reqwest::Method::POST,
                    places.clone(),
                    "{not json",
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    places.clone(),
                    r#"{"name":"x","time_zone":"UTC","extra":1}"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    places.clone(),
                    r#"{"name":"x"}"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    places.clone(),
                    r#"{"name":"x","time_zone":"Mars/Base"}"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    places.clone(),
                    r#"{"name":"x","time_zone":"UTC","latitude":123}"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    places.clone(),
                    r#"{"name":"x","time_zone":"UTC"}"#,
                    "text/plain",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    places.clone(),
                    r#"[]"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::GET,
                    "/locks/not-a-uuid".into(),
                    "",
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::GET,
                    "/locks/00000000-0000-4000-8000-000000000000".into(),
                    "",
                    "application/json",
                )
                .await,
                404,
                "not_found",
            ),
            (
                send(
                    reqwest::Method::GET,
                    "/orgs/xyz/places".into(),
                    "",
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    format!("/locks/{}/unlock", org.front),
                    r#"{"proximity_proof":"abc"}"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    format!("/locks/{}/unlock", org.front),
                    r#"{"nope":1}"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::GET,
                    "/no/such/endpoint".into(),
                    "",
                    "application/json",
                )
                .await,
                404,
                "not_found",
            ),
            (
                send(
                    reqwest::Method::PATCH,
                    places.clone(),
                    "",
                    "application/json",
                )
                .await,
                405,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::GET,
                    format!("{places}?limit=abc"),
                    "",
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
            (
                send(
                    reqwest::Method::POST,
                    format!("/orgs/{}/schedules", org.id),
                    r#"{"name":"s","windows":[{"days":["funday"],"start":"8","end":"9"}]}"#,
                    "application/json",
                )
                .await,
                400,
                "invalid_request",
            ),
        ];
        for (i, ((s, v), want_status, want_code)) in cases.into_iter().enumerate() {
            assert_eq!((s, code(&v)), (want_status, want_code), "case {i}: {v}");
        }
        // Oversized body.
        let big = format!(r#"{{"name":"{}","time_zone":"UTC"}}"#, "x".repeat(200_000));
        let r = srv
            .http
            .post(url(&places))
            .bearer_auth(&org.owner)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(code(&v), "payload_too_large");
        let big = format!(r#"{{"latitude":1{}}}"#, "0".repeat(200_000));
        let r = srv
            .http
            .post(url(&format!("/locks/{}/unlock", org.front)))
            .bearer_auth(&org.owner)
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        // Oversized idempotency key.
        let r = srv
            .http
            .post(url(&format!("/locks/{}/unlock", org.front)))
            .bearer_auth(&org.owner)
            .header("Idempotency-Key", "k".repeat(300))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // Malformed bearer tokens.
        let r = srv
            .http
            .get(url("/me"))
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    })
    .await;
}
