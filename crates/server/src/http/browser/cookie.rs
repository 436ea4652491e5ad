//! The cookies: the session cookie (read from `Cookie` headers, written as
//! `Set-Cookie` with the realm's attributes; the `cookie` crate does the
//! encoding) and the ticket cookie of a ticket realm (by hand: see
//! [`ticket_value`]).

use crate::config::{CookieConfig, SameSite};
use crate::tickets::TicketCookie;
use axum::http::{header, HeaderMap, HeaderValue};
use cookie::time::Duration as CookieDuration;
use cookie::Cookie;
use sessiond_core::Token;

/// The session token the browser sent for `cfg`, if any. Of several cookies
/// with the name (a browser may hold one per path), the first is used.
pub fn session_token(headers: &HeaderMap, cfg: &CookieConfig) -> Option<Token> {
    let name = cfg.wire_name();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| Token::from_client(c.value()))
}

fn base(cfg: &CookieConfig, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(cfg.wire_name(), value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(cfg.secure);
    c.set_same_site(match cfg.same_site {
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::None => cookie::SameSite::None,
    });
    if let Some(domain) = &cfg.domain {
        c.set_domain(domain.clone());
    }
    c
}

/// `Set-Cookie` for a new session. `max_age` makes the cookie outlive the
/// browser (remember-me, or a realm with an absolute lifetime); without it
/// the cookie ends with the browser session.
pub fn set(cfg: &CookieConfig, token: &Token, max_age: Option<u64>) -> HeaderValue {
    let mut c = base(cfg, token.expose().to_owned());
    if let Some(secs) = max_age {
        c.set_max_age(CookieDuration::seconds(
            i64::try_from(secs).unwrap_or(i64::MAX),
        ));
    }
    HeaderValue::from_str(&c.encoded().to_string()).expect("cookie text is a valid header")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear(cfg: &CookieConfig) -> HeaderValue {
    let mut c = base(cfg, String::new());
    c.make_removal();
    HeaderValue::from_str(&c.encoded().to_string()).expect("cookie text is a valid header")
}

/// The ticket cookie's value in a request, if any (the first non-empty one).
/// Split by hand, not with the `cookie` crate the session cookie uses:
/// peers' values may be quoted and hold spaces (webob, Zope), and the
/// quotes must reach the codec, which strips them deliberately.
pub fn ticket_value<'h>(c: &TicketCookie, headers: &'h HeaderMap) -> Option<&'h str> {
    cookie_named(headers, &c.name)
}

/// The first non-empty value of the cookie `name` in a request's `Cookie`
/// headers, split by hand (see [`ticket_value`]).
fn cookie_named<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, value)| *n == name && !value.is_empty())
        .map(|(_, value)| value)
}

fn ticket_attributes(c: &TicketCookie) -> String {
    let mut a = format!("; Path={}; HttpOnly", c.path);
    if let Some(d) = &c.domain {
        a.push_str(&format!("; Domain={d}"));
    }
    if c.secure {
        a.push_str("; Secure");
    }
    a.push_str(match c.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    a
}

/// `Set-Cookie` for a ticket. The value is written as is: base64 and raw
/// tickets are made of cookie-safe characters only (checked when encoded),
/// and percent-encoding them would break the peers that read them.
pub fn set_ticket(c: &TicketCookie, value: &str) -> HeaderValue {
    let text = format!("{}={value}{}", c.name, ticket_attributes(c));
    HeaderValue::from_str(&text).expect("cookie-safe value and attributes")
}

/// `Set-Cookie` removing the ticket.
pub fn clear_ticket(c: &TicketCookie) -> HeaderValue {
    let text = format!(
        "{}={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        c.name,
        ticket_attributes(c)
    );
    HeaderValue::from_str(&text).expect("cookie-safe attributes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Any Cookie header: the ticket cookie is found or not, never a
        /// panic; a ticket value (quoted or not) comes back as it was sent.
        #[test]
        fn ticket_cookie_headers(
            junk in prop_oneof![".{0,80}", "([a-z_]{0,8}=[^;]{0,12}; ?){0,6}"],
            value in "\"?[A-Za-z0-9+/=!_ -]{1,40}\"?",
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&junk) {
                headers.append(header::COOKIE, v);
                let _ = cookie_named(&headers, "auth_tkt");
            }
            let value = value.trim().to_owned();
            prop_assume!(!value.is_empty());
            let mut headers = HeaderMap::new();
            headers.append(
                header::COOKIE,
                HeaderValue::from_str(&format!("a=1; auth_tkt={value}; b=2")).unwrap(),
            );
            prop_assert_eq!(cookie_named(&headers, "auth_tkt"), Some(value.as_str()));
        }

        /// Any Cookie header is read or ignored, never a panic; a cookie
        /// sessiond set is found again among arbitrary others.
        #[test]
        fn cookie_headers(
            junk in prop_oneof![".{0,80}", "([a-zA-Z_-]{0,8}=[^;]{0,12}; ?){0,6}"],
            token in "[A-Za-z0-9]{16,64}",
        ) {
            let cfg = CookieConfig { secure: false, ..CookieConfig::default() };
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&junk) {
                headers.append(header::COOKIE, v);
                let _ = session_token(&headers, &cfg);
            }
            let set = set(&cfg, &Token::from_client(token.clone()), None);
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let mut headers = HeaderMap::new();
            headers.append(header::COOKIE, HeaderValue::from_str(&format!("{pair}; other=1")).unwrap());
            prop_assert_eq!(
                session_token(&headers, &cfg).map(|t| t.expose().to_owned()),
                Some(token)
            );
        }
    }

    #[test]
    fn safe_defaults_use_the_host_prefix() {
        let cfg = CookieConfig::default();
        let t = Token::generate();
        let v = set(&cfg, &t, Some(3600)).to_str().unwrap().to_owned();
        assert!(
            v.starts_with(&format!("__Host-sessiond={}", t.expose())),
            "{v}"
        );
        for part in [
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Max-Age=3600",
        ] {
            assert!(v.contains(part), "{part} missing: {v}");
        }
        assert!(!v.contains("Domain"), "{v}");
        let cleared = clear(&cfg).to_str().unwrap().to_owned();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[test]
    fn domain_or_plain_http_drop_the_prefix() {
        let cfg = CookieConfig {
            domain: Some("example.com".into()),
            ..CookieConfig::default()
        };
        assert_eq!(cfg.wire_name(), "sessiond");
        let cfg = CookieConfig {
            secure: false,
            ..CookieConfig::default()
        };
        let v = set(&cfg, &Token::generate(), None)
            .to_str()
            .unwrap()
            .to_owned();
        assert!(v.starts_with("sessiond="), "{v}");
        assert!(!v.contains("Secure") && !v.contains("Max-Age"), "{v}");
    }

    #[test]
    fn reads_the_cookie_among_others() {
        let cfg = CookieConfig::default();
        let t = Token::generate();
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; sessiond=wrong"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("b=2; __Host-sessiond={}", t.expose())).unwrap(),
        );
        assert_eq!(session_token(&h, &cfg).unwrap().hash(), t.hash());
        assert!(session_token(&HeaderMap::new(), &cfg).is_none());
    }
}
