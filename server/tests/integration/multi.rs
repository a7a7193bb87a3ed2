//! PostgreSQL only. Two server instances on one database: an unlock arriving at the instance
//! that does not hold the controller's connection still reaches the door (LISTEN/NOTIFY
//! relay). And a pool whose connections the database killed recovers.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn unlock_through_the_instance_without_the_controller() {
    let Ok(url) = std::env::var("KEYWAY_TEST_PG_URL") else {
        eprintln!("skipping multi-instance test: set KEYWAY_TEST_PG_URL=postgres://... to enable");
        return;
    };
    let a = TestServer::postgres(&url, test_settings()).await;
    let b = a.same_database().await;
    eventually(|| async { a.state.hub.is_listening() && b.state.hub.is_listening() }).await;
    let org = make_org(&a, "acme").await;
    let ctl = connect_controller(&a, &org).await;

    let (s, v) = b
        .unlock(&org.front, &org.member, json!({}), Some("k1"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["granted"], true);
    assert_eq!(ctl.seen.lock().unwrap().actuated.len(), 1);
    // The idempotent replay works from the other instance too.
    let (s, v) = a
        .unlock(&org.front, &org.member, json!({}), Some("k1"))
        .await;
    assert_eq!((s, v["duplicate"].as_bool()), (200, Some(true)));
    assert_eq!(ctl.seen.lock().unwrap().actuated.len(), 1);

    // A change made through B reaches the controller held by A.
    b.post(
        &format!("/locks/{}/lockdown", org.front),
        &org.manager,
        json!({"lockdown": true}),
    )
    .await;
    ctl.wait(|s| s.configs.last().unwrap().locks.iter().any(|l| l.lockdown))
        .await;
    b.post(
        &format!("/locks/{}/lockdown", org.front),
        &org.manager,
        json!({"lockdown": false}),
    )
    .await;

    // A controller that does not answer: B reports unconfirmed (the command went out, the
    // door may have opened) after its bounded wait.
    ctl.set_answer(Answer::Silent);
    let (s, v) = b.unlock(&org.front, &org.member, json!({}), None).await;
    assert_eq!((s, code(&v)), (504, "unconfirmed"));
}

/// PostgreSQL killed every connection of the pool (a restart, a failover, a proxy's idle cut):
/// the next requests after a second of quiet are served on fresh connections, reads and writes.
#[tokio::test]
async fn connections_killed_while_idle_are_replaced() {
    let Ok(url) = std::env::var("KEYWAY_TEST_PG_URL") else {
        eprintln!(
            "skipping PostgreSQL restart test: set KEYWAY_TEST_PG_URL=postgres://... to enable"
        );
        return;
    };
    let srv = TestServer::postgres(&url, test_settings()).await;
    let org = make_org(&srv, "acme").await;
    assert_eq!(srv.get("/me", &org.member).await.0, 200);

    let killer = sqlx::AnyPool::connect(&srv.state.db.url).await.unwrap();
    let killed: (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&killer)
    .await
    .unwrap();
    killer.close().await;
    assert!(killed.0 > 0, "the pool held no connection to kill");

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(srv.get("/me", &org.member).await.0, 200);
    let (s, v) = srv
        .post(
            &format!("/orgs/{}/places", org.id),
            &org.owner,
            json!({"name": "Annex", "time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        srv.get(&format!("/orgs/{}/places", org.id), &org.member)
            .await
            .0,
        200
    );
}
