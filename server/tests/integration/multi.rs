//! Two server instances on one PostgreSQL database: an unlock arriving at the instance that
//! does not hold the controller's connection still reaches the door (LISTEN/NOTIFY relay).

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

    // A controller that does not answer: B reports door_offline after its bounded wait.
    ctl.set_answer(Answer::Silent);
    let (s, v) = b.unlock(&org.front, &org.member, json!({}), None).await;
    assert_eq!((s, code(&v)), (409, "door_offline"));
}
