//! Visitor invites: redeem a code (typed, or inside a link) for a guest session without a
//! password. The answer has the shape of a login, so the session flow takes over from there.

use super::api::{ApiCall, LoginResponse};
use super::{Cmd, Event, Model};
use crux_core::Command;
use crux_core::render::render;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteState {
    pub busy: bool,
    pub error: Option<String>,
    pub accepted: bool,
}

/// Extracts the code from `https://…/invite#ABC` (the server's links), `https://…/invite?code=ABC`,
/// `https://…/invites/ABC`, `keyway://invite/ABC` or a bare `ABC`.
pub fn parse_code(input: &str) -> Option<String> {
    let input = input.trim();
    if input.is_empty() {
        return None;
    }
    // A `code=` in the query names the code even when a fragment (a page anchor, a
    // tracker's) follows it.
    let (before_fragment, fragment) = input.split_once('#').unwrap_or((input, ""));
    if let Some((_, query)) = before_fragment.split_once('?') {
        for pair in query.split('&') {
            if let Some(v) = pair.strip_prefix("code=")
                && is_code(v)
            {
                return Some(v.to_owned());
            }
        }
    }
    if input.contains('#') {
        let fragment = fragment.strip_prefix("code=").unwrap_or(fragment);
        return is_code(fragment).then(|| fragment.to_owned());
    }
    let path = input.split(['?', '#']).next().unwrap_or(input);
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    is_code(last).then(|| last.to_owned())
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn redeem(model: &mut Model, input: String) -> Cmd {
    let Some(code) = parse_code(&input) else {
        model.invite.error = Some("this invite code is not valid".into());
        return render();
    };
    model.invite = InviteState {
        busy: true,
        ..Default::default()
    };
    let call = ApiCall::new("POST", &model.api_base, "/invites/redeem")
        .json(serde_json::json!({ "code": code }));
    Command::all([
        render(),
        call.send::<LoginResponse>()
            .then_send(|result| Event::LoggedIn {
                result,
                via_invite: true,
            }),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Keyway;
    use crate::app::testkit::*;
    use crux_core::App;

    #[test]
    fn parses_codes_and_links() {
        assert_eq!(parse_code(" ABC123 ").as_deref(), Some("ABC123"));
        assert_eq!(
            parse_code("https://k.example/invite?code=XyZ&x=1").as_deref(),
            Some("XyZ")
        );
        assert_eq!(
            parse_code("https://k.example/invites/abc-9/").as_deref(),
            Some("abc-9")
        );
        assert_eq!(parse_code("keyway://invite/Q1").as_deref(), Some("Q1"));
        assert_eq!(
            parse_code("http://127.0.0.1:8080/invite#tcOjE2DJdCfM2Hh").as_deref(),
            Some("tcOjE2DJdCfM2Hh")
        );
        assert_eq!(parse_code("https://k.example/invite#"), None);
        // The query's code, not a page anchor after it.
        assert_eq!(
            parse_code("https://k.example/invite?code=QRS&utm=x#section-2").as_deref(),
            Some("QRS")
        );
        assert_eq!(parse_code(""), None);
        assert_eq!(parse_code("not a code!"), None);
    }

    #[test]
    fn redeeming_a_link_creates_a_guest_session() {
        let app = Keyway;
        let mut model = started_model();
        let mut cmd = app.update(
            Event::RedeemInvite {
                code: "https://k.example/invite?code=VISIT42".into(),
            },
            &mut model,
        );
        assert!(app.view(&model).invite.busy);
        let mut req = take_http(&mut cmd);
        assert!(req.operation.url.ends_with("/api/v1/invites/redeem"));
        assert!(
            !req.operation
                .headers
                .iter()
                .any(|h| h.name == "Authorization")
        );
        let body: serde_json::Value = serde_json::from_slice(&req.operation.body).unwrap();
        assert_eq!(body["code"], "VISIT42");
        req.resolve(ok_json(201, login_json())).unwrap();
        let ev = cmd.events().next().unwrap();
        let _ = app.update(ev, &mut model);
        let v = app.view(&model);
        assert!(v.signed_in && v.guest && v.invite.accepted);
    }

    #[test]
    fn unknown_invite_is_explained() {
        let app = Keyway;
        let mut model = started_model();
        let mut cmd = app.update(
            Event::RedeemInvite {
                code: "NOPE".into(),
            },
            &mut model,
        );
        take_http(&mut cmd)
            .resolve(error_json(404, "not_found", "no such invite"))
            .unwrap();
        let ev = cmd.events().next().unwrap();
        let _ = app.update(ev, &mut model);
        let v = app.view(&model);
        assert!(!v.signed_in);
        assert_eq!(
            v.invite.error.as_deref(),
            Some("this invite code is not valid")
        );
    }
}
