//! Audit log: admin changes and unlock attempts, filters, cursor pagination, CSV.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn filters_cursor_and_csv() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let _ctl = connect_controller(&srv, &org).await;
        for _ in 0..3 {
            assert_eq!(
                srv.unlock(&org.front, &org.member, json!({}), None).await.0,
                200
            );
        }
        srv.post(
            &format!("/locks/{}/lockdown", org.lab),
            &org.manager,
            json!({"lockdown": true}),
        )
        .await;
        assert_eq!(
            srv.unlock(&org.lab, &org.member, json!({}), None).await.0,
            403
        );

        let base = format!("/orgs/{}/events", org.id);
        let (_, all) = srv.get(&format!("{base}?limit=500"), &org.manager).await;
        let types: Vec<&str> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        for t in [
            "lock.created",
            "group.created",
            "member.added",
            "controller.provisioned",
            "lock.lockdown_started",
            "unlock.attempt",
        ] {
            assert!(types.contains(&t), "{t} missing");
        }
        let (_, front) = srv
            .get(
                &format!("{base}?lock={}&type=unlock.attempt", org.front),
                &org.manager,
            )
            .await;
        assert_eq!(front["total"], 3);
        let (_, failed) = srv
            .get(&format!("{base}?success=false"), &org.manager)
            .await;
        assert_eq!(failed["total"], 1);
        assert_eq!(failed["items"][0]["reason"], "lockdown");
        let (_, by_actor) = srv
            .get(
                &format!("{base}?actor={}&place={}", org.member_id, org.place),
                &org.manager,
            )
            .await;
        assert_eq!(by_actor["total"], 4);
        let future = chrono::Utc::now().timestamp() + 3600;
        let (_, none) = srv
            .get(&format!("{base}?since={future}"), &org.manager)
            .await;
        assert_eq!(none["total"], 0);

        // Cursor pagination walks every event once, newest first.
        let mut seen = Vec::new();
        let mut cursor: Option<i64> = None;
        loop {
            let path = match cursor {
                Some(c) => format!("{base}?limit=3&cursor={c}"),
                None => format!("{base}?limit=3"),
            };
            let (s, page) = srv.get(&path, &org.manager).await;
            assert_eq!(s, 200);
            for e in page["items"].as_array().unwrap() {
                seen.push(e["seq"].as_i64().unwrap());
            }
            match page["next_cursor"].as_i64() {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len() as i64, all["total"].as_i64().unwrap());
        assert!(seen.windows(2).all(|w| w[0] > w[1]));

        let resp = srv
            .http
            .get(format!("{}/api/v1{base}.csv?type=unlock.attempt", srv.base))
            .bearer_auth(&org.manager)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = resp.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("seq,id,at,type"));
        assert_eq!(lines.len(), 5);
        assert!(lines[1].contains("lockdown"));
        // Bad filters are 400.
        let (s, v) = srv.get(&format!("{base}?lock=nope"), &org.manager).await;
        assert_eq!((s, code(&v)), (400, "invalid_request"));
        let (s, _) = srv
            .get(&format!("{base}?success=maybe"), &org.manager)
            .await;
        assert_eq!(s, 400);
    })
    .await;
}
