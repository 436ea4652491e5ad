//! Which sites may post to sessiond (CSRF) and where a login may send the
//! browser afterwards (no open redirect). Both use the same list: sessiond's
//! own origin, as the browser sees it, plus `browser.allowed_origins`.

use crate::app::App;
use axum::http::{header, HeaderMap};

/// The `host[:port]` the browser addressed (the proxy passes `Host` on).
fn own_authority(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

/// `scheme://authority` of a URL, lowercased; `None` if it is not absolute
/// http(s).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// Sessiond's own origin as the browser sees it: the `Host` it addressed,
/// over HTTPS — or also plain HTTP when the browser reached it that way (no
/// TLS of sessiond's own and no `X-Forwarded-Proto: https` from a proxy).
/// An `http://` URL of our own host from an HTTPS page would be a downgrade.
/// (A client-sent `X-Forwarded-Proto: https` can only make this stricter.)
#[derive(Clone, Copy)]
struct Own<'a> {
    authority: Option<&'a str>,
    plain_http: bool,
}

impl<'a> Own<'a> {
    fn of(app: &App, headers: &'a HeaderMap) -> Own<'a> {
        Own {
            authority: own_authority(headers),
            plain_http: app.config.server.tls_cert.is_none()
                && !headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")),
        }
    }
}

/// Whether `url`'s origin is sessiond's own or one of `allowed_origins`.
fn allowed(own: Own<'_>, allowed_origins: &[String], url: &str) -> bool {
    let Some(origin) = origin_of(url) else {
        return false;
    };
    let (scheme, authority) = origin.split_once("://").unwrap_or(("", ""));
    let own_scheme = scheme == "https" || own.plain_http;
    own.authority
        .is_some_and(|own| own_scheme && own.eq_ignore_ascii_case(authority))
        || allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&origin))
}

/// CSRF check for a state-changing POST. Browsers send `Origin` on every
/// POST (and `Referer` unless told not to): the origin must be sessiond's own
/// or a configured one. A request with neither, and no `Sec-Fetch-Site`, is
/// not from a browser (curl, a back end), so there is no ambient cookie to
/// abuse and it passes.
pub fn check_post(app: &App, headers: &HeaderMap) -> Result<(), &'static str> {
    check_post_for(
        Own::of(app, headers),
        &app.config.browser.allowed_origins,
        headers,
    )
}

/// A state-changing browser POST that passed [`check_post`]: naming it in a
/// handler's arguments is the CSRF check (403 `csrf` otherwise).
pub struct SameOrigin;

impl axum::extract::FromRequestParts<std::sync::Arc<App>> for SameOrigin {
    type Rejection = crate::http::error::Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &std::sync::Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        check_post(app, &parts.headers)
            .map(|()| SameOrigin)
            .map_err(crate::http::error::Error::CrossSite)
    }
}

/// [`check_post`] with sessiond's own origin and the allowed ones given.
fn check_post_for(
    own: Own<'_>,
    allowed_origins: &[String],
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    let ok = |url: &str| allowed(own, allowed_origins, url);
    // A header that is present but not text (non-ASCII bytes) counts as
    // present and wrong, never as absent: absent is what lets non-browser
    // clients through. (Found by the property test below.)
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{0}unreadable"))
    };
    if let Some(origin) = text(header::ORIGIN) {
        return if origin != "null" && ok(origin) {
            Ok(())
        } else {
            Err("cross-site request refused: the Origin header is not this site or an allowed origin")
        };
    }
    if let Some(referer) = text(header::REFERER) {
        return if ok(referer) {
            Ok(())
        } else {
            Err("cross-site request refused: the Referer is not this site or an allowed origin")
        };
    }
    match headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("unreadable"))
    {
        Some("same-origin") | Some("none") | None => Ok(()),
        Some(_) => Err("cross-site request refused: no Origin or Referer from another site"),
    }
}

/// Where to send the browser after a login: `next` if it is a path on this
/// site or a URL of an allowed origin, else `/`.
pub fn safe_next(app: &App, headers: &HeaderMap, next: Option<&str>) -> String {
    safe_next_for(
        Own::of(app, headers),
        &app.config.browser.allowed_origins,
        next,
    )
}

/// [`safe_next`] with sessiond's own origin and the allowed ones given.
fn safe_next_for(own: Own<'_>, allowed_origins: &[String], next: Option<&str>) -> String {
    let Some(next) = next.filter(|n| !n.is_empty()) else {
        return "/".into();
    };
    if next.chars().any(|c| c.is_control() || c == '\\') {
        return "/".into();
    }
    if next.starts_with('/') && !next.starts_with("//") {
        return next.to_owned();
    }
    if allowed(own, allowed_origins, next) {
        return next.to_owned();
    }
    "/".into()
}

#[cfg(test)]
mod tests {
    use super::{check_post_for, origin_of, safe_next_for, Own};
    use axum::http::{header, HeaderMap, HeaderValue};
    use proptest::prelude::*;

    const OWN: &str = "sso.example.com:8443";

    /// Sessiond behind HTTPS (the default: secure cookies).
    fn own() -> Own<'static> {
        Own {
            authority: Some(OWN),
            plain_http: false,
        }
    }

    fn allowed_origins() -> Vec<String> {
        vec![
            "https://app.example.com".into(),
            "http://legacy.example.com:8080".into(),
        ]
    }

    /// Text made of the pieces open-redirect tricks are built from.
    fn urlish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/"),
            Just("//"),
            Just("\\"),
            Just("http:"),
            Just("https:"),
            Just("//"),
            Just("app.example.com"),
            Just("evil.com"),
            Just("sso.example.com:8443"),
            Just("legacy.example.com:8080"),
            Just("@"),
            Just(":"),
            Just("%2f"),
            Just("%5c"),
            Just("."),
            Just(".."),
            Just("?"),
            Just("#"),
            Just(" "),
            Just("\t"),
            Just("\n"),
            Just("javascript:"),
            Just("data:"),
            Just("HTTPS://"),
            Just("x"),
            Just("%09"),
            Just("\u{3002}"),
            Just("[::1]"),
            Just("ftp://"),
        ];
        prop_oneof![
            proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
            ".{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// `next=` never leaves this site or the allowed origins, with the
        /// `url` crate (WHATWG URL parsing, as browsers do) as the oracle:
        /// the browser resolves the redirect target against the login
        /// page's URL, and the result's origin must be one we allow.
        #[test]
        fn next_never_leads_elsewhere(next in urlish()) {
            let target = safe_next_for(own(), &allowed_origins(), Some(&next));
            let page = url::Url::parse(&format!("https://{OWN}/session/login_password")).unwrap();
            let resolved = page.join(&target).expect("a valid redirect target");
            let mut ok = vec![page.origin()];
            ok.extend(allowed_origins().iter().map(|o| url::Url::parse(o).unwrap().origin()));
            prop_assert!(ok.contains(&resolved.origin()), "{:?} -> {:?} -> {}", next, target, resolved);
        }

        /// The CSRF check never panics, and lets a request carrying an
        /// Origin through only when that origin is ours or allowed.
        #[test]
        fn origin_check(origin in urlish(), referer in proptest::option::of(urlish()), with_origin in any::<bool>()) {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(OWN));
            let Ok(value) = HeaderValue::from_str(&origin) else { return Ok(()) };
            if with_origin {
                headers.insert(header::ORIGIN, value);
            }
            if let Some(r) = referer.as_deref().and_then(|r| HeaderValue::from_str(r).ok()) {
                headers.insert(header::REFERER, r);
            }
            let passed = check_post_for(own(), &allowed_origins(), &headers).is_ok();
            if with_origin && passed {
                let parsed = url::Url::parse(&origin).map(|u| u.origin());
                let mut ok = vec![url::Url::parse(&format!("https://{OWN}")).unwrap().origin()];
                ok.extend(allowed_origins().iter().map(|o| url::Url::parse(o).unwrap().origin()));
                prop_assert!(parsed.is_ok_and(|o| ok.contains(&o)), "{:?} passed", origin);
            }
        }
    }

    #[test]
    fn an_unreadable_origin_is_refused_not_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(OWN));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_bytes("https://evil.example\u{3002}com".as_bytes()).unwrap(),
        );
        assert!(check_post_for(own(), &allowed_origins(), &headers).is_err());
    }

    #[test]
    fn own_host_over_plain_http_only_without_tls() {
        let next = format!("http://{OWN}/app");
        assert_eq!(safe_next_for(own(), &allowed_origins(), Some(&next)), "/");
        let plain = Own {
            plain_http: true,
            ..own()
        };
        assert_eq!(safe_next_for(plain, &allowed_origins(), Some(&next)), next);
        assert_eq!(
            safe_next_for(
                own(),
                &allowed_origins(),
                Some(&format!("https://{OWN}/app"))
            ),
            format!("https://{OWN}/app")
        );
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://App.example.com:8443/x?y#z").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://evil.com@good.com/"), None);
        assert_eq!(origin_of("//evil.com"), None);
    }
}
