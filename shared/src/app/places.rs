//! Places and locks of the current organization, with an offline cache: the last good list is
//! stored per organization and shown, marked stale, whenever the network cannot confirm it.

use super::api::{ApiCall, ApiError, ApiResult, List, Lock, Place};
use super::{Cmd, Event, Model, keys, kv_put};
use crux_core::Command;
use crux_core::render::render;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    pub org: Option<String>,
    pub places: Vec<Place>,
    pub locks: Vec<Lock>,
    /// Showing cached data the network has not confirmed.
    pub stale: bool,
    /// The network confirmed the list since the organization was selected.
    pub fresh: bool,
    pub loading: bool,
    pub notice: Option<String>,
}

/// What is persisted under `cache/<org>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryCache {
    pub places: Vec<Place>,
    pub locks: Vec<Lock>,
    #[serde(default)]
    pub fetched_at_ms: u64,
}

/// The server's largest page.
pub const PAGE: usize = 500;
/// Safety stop for a misbehaving server (50,000 items).
const MAX_PAGES: usize = 100;

/// Fetches every page of a list endpoint (`?limit=&offset=` with `total`).
async fn fetch_all<T>(
    ctx: &crux_core::command::CommandContext<super::Effect, Event>,
    base: &str,
    token: &str,
    path: &str,
) -> ApiResult<Vec<T>>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let offset = items.len();
        let page = ApiCall::new("GET", base, &format!("{path}?limit={PAGE}&offset={offset}"))
            .token(token)
            .send::<List<T>>()
            .into_future(ctx.clone())
            .await?;
        let n = page.items.len();
        items.extend(page.items);
        if n == 0 || n < PAGE || items.len() as u64 >= page.total {
            break;
        }
    }
    Ok(items)
}

pub fn fetch(base: &str, token: &str, org: &str, epoch: u64) -> Cmd {
    let (base, token, org) = (base.to_owned(), token.to_owned(), org.to_owned());
    Command::new(move |ctx| async move {
        let result = async {
            let places = fetch_all(&ctx, &base, &token, &format!("/orgs/{org}/places")).await?;
            let locks = fetch_all(&ctx, &base, &token, &format!("/orgs/{org}/locks")).await?;
            Ok::<_, ApiError>((places, locks))
        }
        .await;
        ctx.send_event(Event::DirectoryFetched { epoch, org, result });
    })
}

/// Applies a cached list unless the network already answered.
pub fn apply_cache(model: &mut Model, org: &str, cache: Option<DirectoryCache>) {
    if model.directory.fresh || model.current_org() != Some(org) {
        return;
    }
    if let Some(cache) = cache {
        model.directory.org = Some(org.to_owned());
        model.directory.places = cache.places;
        model.directory.locks = cache.locks;
        model.directory.stale = true;
        model.sync_engine();
    }
}

pub fn cache_loaded(model: &mut Model, org: String, cache: Option<DirectoryCache>) -> Cmd {
    apply_cache(model, &org, cache);
    render()
}

pub fn fetched(model: &mut Model, org: String, result: ApiResult<(Vec<Place>, Vec<Lock>)>) -> Cmd {
    if model.current_org() != Some(org.as_str()) {
        return Command::done(); // answer for an organization no longer shown
    }
    model.directory.loading = false;
    match result {
        Ok((places, locks)) => {
            let cache = DirectoryCache {
                places: places.clone(),
                locks: locks.clone(),
                fetched_at_ms: model.clock_ms,
            };
            model.directory = Directory {
                org: Some(org.clone()),
                places,
                locks,
                stale: false,
                fresh: true,
                loading: false,
                notice: None,
            };
            model.sync_engine();
            Command::all([kv_put(keys::cache(&org), &cache), render()])
        }
        Err(e) if e.is_unauthorized() => {
            super::session::logout_local(model, "your session expired; sign in again")
        }
        Err(e) => {
            model.directory.stale = true;
            model.directory.notice = Some(if e.is_network() {
                "offline: showing saved doors".to_owned()
            } else {
                format!("could not refresh: {}", e.user_message())
            });
            render()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testkit::*;
    use crate::app::{Effect, Keyway};
    use crux_core::App;
    use crux_http::protocol::HttpResult;

    fn refresh(app: &Keyway, model: &mut Model) -> Cmd {
        app.update(Event::Refresh, model)
    }

    #[test]
    fn lists_places_and_locks_and_caches_them() {
        let app = Keyway;
        let mut model = signed_in_model();
        let mut cmd = refresh(&app, &mut model);
        let mut places = take_http_matching(&mut cmd, "/places");
        assert!(
            places
                .operation
                .headers
                .iter()
                .any(|h| h.name == "Authorization" && h.value == "Bearer tok")
        );
        places
            .resolve(ok_json(
                200,
                list_json(vec![serde_json::to_value(place()).unwrap()]),
            ))
            .unwrap();
        let mut locks = take_http_matching(&mut cmd, "/locks");
        locks
            .resolve(ok_json(
                200,
                list_json(vec![serde_json::to_value(lock()).unwrap()]),
            ))
            .unwrap();
        let ev = cmd
            .events()
            .find(|e| matches!(e, Event::DirectoryFetched { .. }))
            .unwrap();
        let mut cmd = app.update(ev, &mut model);
        let effects: Vec<Effect> = cmd.effects().collect();
        assert!(effects.iter().any(|e| matches!(e, Effect::KeyValue(r)
            if matches!(&r.operation, crux_kv::KeyValueOperation::Set { key, .. } if *key == format!("cache/{ORG_A}")))));
        let v = app.view(&model);
        assert!(!v.stale);
        assert_eq!(v.places[0].locks[0].name, "Front door");
    }

    #[test]
    fn pages_through_long_lists() {
        let app = Keyway;
        let mut model = signed_in_model();
        let mut cmd = refresh(&app, &mut model);
        take_http_matching(&mut cmd, "/places")
            .resolve(ok_json(
                200,
                list_json(vec![serde_json::to_value(place()).unwrap()]),
            ))
            .unwrap();
        let page: Vec<serde_json::Value> = (0..PAGE)
            .map(|i| {
                let mut l = lock();
                l.id = format!("lock-{i}");
                serde_json::to_value(l).unwrap()
            })
            .collect();
        let mut first = take_http_matching(&mut cmd, "/locks");
        assert!(first.operation.url.ends_with("?limit=500&offset=0"));
        first
            .resolve(ok_json(
                200,
                serde_json::json!({"items": page, "total": PAGE + 1, "limit": PAGE, "offset": 0}),
            ))
            .unwrap();
        let mut second = take_http_matching(&mut cmd, "/locks");
        assert!(second.operation.url.ends_with("?limit=500&offset=500"));
        second
            .resolve(ok_json(200, serde_json::json!({"items": [serde_json::to_value(lock()).unwrap()], "total": PAGE + 1, "limit": PAGE, "offset": PAGE})))
            .unwrap();
        let ev = cmd
            .events()
            .find(|e| matches!(e, Event::DirectoryFetched { .. }))
            .unwrap();
        let _ = app.update(ev, &mut model);
        assert_eq!(model.directory.locks.len(), PAGE + 1);
    }

    #[test]
    fn offline_keeps_cached_list_marked_stale() {
        let app = Keyway;
        let mut model = signed_in_model();
        let _ = app.update(
            Event::CacheLoaded {
                epoch: model.epoch,
                org: ORG_A.into(),
                cache: Some(DirectoryCache {
                    places: vec![place()],
                    locks: vec![lock()],
                    fetched_at_ms: 1,
                }),
            },
            &mut model,
        );
        let mut cmd = refresh(&app, &mut model);
        take_http_matching(&mut cmd, "/places")
            .resolve(HttpResult::Err(crux_http::HttpError::Io(
                "connection refused".into(),
            )))
            .unwrap();
        let ev = cmd
            .events()
            .find(|e| matches!(e, Event::DirectoryFetched { .. }))
            .unwrap();
        let _ = app.update(ev, &mut model);
        let v = app.view(&model);
        assert!(v.stale);
        assert_eq!(v.places[0].locks.len(), 1);
        assert_eq!(v.notice.as_deref(), Some("offline: showing saved doors"));
    }

    #[test]
    fn expired_session_signs_out() {
        let app = Keyway;
        let mut model = signed_in_model();
        let _ = app.update(
            Event::DirectoryFetched {
                epoch: model.epoch,
                org: ORG_A.into(),
                result: Err(ApiError::Server {
                    status: 401,
                    code: "unauthorized".into(),
                    message: String::new(),
                }),
            },
            &mut model,
        );
        let v = app.view(&model);
        assert!(!v.signed_in);
        assert!(v.auth_error.unwrap().contains("expired"));
    }
}
