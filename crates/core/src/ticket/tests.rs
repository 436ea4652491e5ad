use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The secret, user and time of plone.session's `tktauth` doctest, whose
/// published tickets these tests reproduce.
const SECRET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ISSUED: u32 = 1216720800;

fn jbloggs() -> Ticket {
    Ticket {
        user: "jbloggs".into(),
        tokens: vec![],
        user_data: String::new(),
        issued: ISSUED,
    }
}

fn md5() -> TicketFormat {
    TicketFormat::new(DigestKind::Md5)
}

#[test]
fn md5_matches_plone_doctest_vectors() {
    let t = sign(md5(), SECRET, &jbloggs(), AddressBinding::Ignore).unwrap();
    assert_eq!(t, b"c7c7300ac5cf529656444123aca345294885afa0jbloggs!");
    let with_data = Ticket {
        tokens: vec!["foo".into(), "bar".into()],
        user_data: "Joe Bloggs".into(),
        ..jbloggs()
    };
    let t = sign(md5(), SECRET, &with_data, AddressBinding::Ignore).unwrap();
    assert_eq!(
        t,
        b"eea3630e98177bdbf0e7f803e1632b7e4885afa0jbloggs!foo,bar!Joe Bloggs"
    );
    let v = verify(md5(), [SECRET], &t, AddressBinding::Ignore).unwrap();
    assert_eq!(v.ticket, with_data);
    assert_eq!(v.key_index, 0);
}

#[test]
fn hmac_matches_plone_doctest_vector() {
    let f = TicketFormat::new(DigestKind::HmacSha256);
    let t = sign(f, SECRET, &jbloggs(), AddressBinding::Ignore).unwrap();
    assert_eq!(t.len(), 32 + 8 + "jbloggs!".len());
    assert!(t.starts_with(b"\xf3\x08\x98\x99\x83\xb0;\xef\x95\x94\xee"));
    assert!(t.ends_with(b"\xbe\xf6X\x114885afa0jbloggs!"));
    assert!(verify(f, [SECRET], &t, AddressBinding::Ignore).is_ok());
}

#[test]
fn sha_variants_have_their_digest_lengths_and_round_trip() {
    for (kind, len) in [(DigestKind::Sha256, 64), (DigestKind::Sha512, 128)] {
        let f = TicketFormat::new(kind);
        let t = sign(f, SECRET, &jbloggs(), AddressBinding::Ignore).unwrap();
        assert_eq!(&t[len..], b"4885afa0jbloggs!");
        assert!(t[..len].iter().all(u8::is_ascii_hexdigit));
        assert!(verify(f, [SECRET], &t, AddressBinding::Ignore).is_ok());
        // A ticket of one digest type is not one of another.
        assert!(verify(md5(), [SECRET], &t, AddressBinding::Ignore).is_err());
    }
}

#[test]
fn address_binding() {
    let ip = |s: &str| AddressBinding::Client(s.parse::<IpAddr>().unwrap());
    let t = sign(md5(), SECRET, &jbloggs(), ip("192.0.2.7")).unwrap();
    assert!(verify(md5(), [SECRET], &t, ip("192.0.2.7")).is_ok());
    assert_eq!(
        verify(md5(), [SECRET], &t, ip("192.0.2.8")),
        Err(TicketError::BadSignature)
    );
    assert_eq!(
        verify(md5(), [SECRET], &t, AddressBinding::Ignore),
        Err(TicketError::BadSignature)
    );
    // A dual-stack socket shows IPv4 clients as mapped addresses.
    assert!(verify(md5(), [SECRET], &t, ip("::ffff:192.0.2.7")).is_ok());
    // "Ignore IP" is the address 0.0.0.0.
    let zero = AddressBinding::Client(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let t = sign(md5(), SECRET, &jbloggs(), AddressBinding::Ignore).unwrap();
    assert!(verify(md5(), [SECRET], &t, zero).is_ok());
    // IPv6 as Pyramid: bound to the address text.
    let v6 = AddressBinding::Client(IpAddr::V6(Ipv6Addr::LOCALHOST));
    let t = sign(md5(), SECRET, &jbloggs(), v6).unwrap();
    assert!(verify(md5(), [SECRET], &t, v6).is_ok());
    assert!(verify(md5(), [SECRET], &t, ip("::2")).is_err());
}

#[test]
fn keyring_first_signs_all_verify() {
    let t = sign(md5(), b"old", &jbloggs(), AddressBinding::Ignore).unwrap();
    let keys: [&[u8]; 2] = [b"new", b"old"];
    let v = verify(md5(), keys, &t, AddressBinding::Ignore).unwrap();
    assert_eq!(v.key_index, 1);
    let keys: [&[u8]; 1] = [b"new"];
    assert_eq!(
        verify(md5(), keys, &t, AddressBinding::Ignore),
        Err(TicketError::BadSignature)
    );
}

#[test]
fn every_changed_field_is_refused() {
    let t = sign(
        md5(),
        SECRET,
        &Ticket {
            tokens: vec!["a".into()],
            user_data: "d".into(),
            ..jbloggs()
        },
        AddressBinding::Ignore,
    )
    .unwrap();
    let text = String::from_utf8(t.clone()).unwrap();
    let tampered = [
        text.replacen("jbloggs", "jbloggz", 1),
        text.replacen("!a!", "!b!", 1),
        text.replacen("!d", "!e", 1),
        text.replacen("4885afa0", "4885afa1", 1),
        format!(
            "{}{}",
            if text.starts_with('0') { "1" } else { "0" },
            &text[1..]
        ),
    ];
    for bad in tampered {
        assert_eq!(
            verify(md5(), [SECRET], bad.as_bytes(), AddressBinding::Ignore),
            Err(TicketError::BadSignature),
            "{bad}"
        );
    }
    // Dropping the tokens changes the signed text.
    let no_tokens = text.replacen("!a!", "!", 1);
    assert!(verify(
        md5(),
        [SECRET],
        no_tokens.as_bytes(),
        AddressBinding::Ignore
    )
    .is_err());
    for cut in [10, 39, 40, 41, text.len() - 1] {
        assert!(
            verify(md5(), [SECRET], &t[..cut], AddressBinding::Ignore).is_err(),
            "cut at {cut}"
        );
    }
    assert_eq!(
        verify(md5(), [b"wrong".as_slice()], &t, AddressBinding::Ignore),
        Err(TicketError::BadSignature)
    );
}

#[test]
fn strict_parsing() {
    let ok = "c7c7300ac5cf529656444123aca345294885afa0jbloggs!";
    let cases = [
        (
            "C7C7300AC5CF529656444123ACA345294885afa0jbloggs!",
            "digest is not lowercase hexadecimal",
        ),
        (
            "c7c7300ac5cf529656444123aca345294885AFA0jbloggs!",
            "timestamp is not 8 lowercase hex digits",
        ),
        (
            "c7c7300ac5cf529656444123aca34529 885afa0jbloggs!",
            "timestamp is not 8 lowercase hex digits",
        ),
        (
            "c7c7300ac5cf529656444123aca345294885afa0jbloggs",
            "no '!' after the user id",
        ),
        (
            "c7c7300ac5cf529656444123aca345294885afa0!data",
            "empty user id",
        ),
        (
            "c7c7300ac5cf529656444123aca345294885afa0u!a!b!c",
            "more than two '!' separators",
        ),
        (
            "c7c7300ac5cf529656444123aca345294885afa0u!a,,b!c",
            "empty token in the tokens list",
        ),
        (
            "c7c7300ac5cf529656444123aca345294885afa0u\0!",
            "contains a NUL character",
        ),
        ("c7c7300ac5cf", "too short"),
    ];
    for (ticket, why) in cases {
        assert_eq!(
            verify(md5(), [SECRET], ticket.as_bytes(), AddressBinding::Ignore),
            Err(TicketError::Malformed(why)),
            "{ticket:?}"
        );
    }
    assert!(verify(md5(), [SECRET], ok.as_bytes(), AddressBinding::Ignore).is_ok());
}

/// Apache writes `user!!data` when it refreshes a ticket that has no tokens.
#[test]
fn leniency_empty_tokens_field() {
    let signed = sign(
        md5(),
        SECRET,
        &Ticket {
            user_data: "x".into(),
            ..jbloggs()
        },
        AddressBinding::Ignore,
    )
    .unwrap();
    let text = String::from_utf8(signed).unwrap();
    let apache_form = text.replacen("jbloggs!x", "jbloggs!!x", 1);
    let v = verify(
        md5(),
        [SECRET],
        apache_form.as_bytes(),
        AddressBinding::Ignore,
    )
    .unwrap();
    assert!(v.ticket.tokens.is_empty());
    assert_eq!(v.ticket.user_data, "x");
}

#[test]
fn signing_refuses_separators_and_nul() {
    let cases = [
        (
            Ticket {
                user: "a!b".into(),
                ..jbloggs()
            },
            "user id",
        ),
        (
            Ticket {
                user: "a,b".into(),
                ..jbloggs()
            },
            "user id",
        ),
        (
            Ticket {
                user: "a\0b".into(),
                ..jbloggs()
            },
            "user id",
        ),
        (
            Ticket {
                user: String::new(),
                ..jbloggs()
            },
            "user id",
        ),
        (
            Ticket {
                tokens: vec!["x,y".into()],
                ..jbloggs()
            },
            "token",
        ),
        (
            Ticket {
                tokens: vec!["x!".into()],
                ..jbloggs()
            },
            "token",
        ),
        (
            Ticket {
                tokens: vec![String::new()],
                ..jbloggs()
            },
            "token",
        ),
        (
            Ticket {
                user_data: "a!b".into(),
                ..jbloggs()
            },
            "user data",
        ),
        (
            Ticket {
                user_data: "a\0b".into(),
                ..jbloggs()
            },
            "user data",
        ),
    ];
    for (t, field) in cases {
        match sign(md5(), SECRET, &t, AddressBinding::Ignore) {
            Err(TicketError::Unsignable { field: f, .. }) => assert_eq!(f, field, "{t:?}"),
            other => panic!("{t:?}: {other:?}"),
        }
    }
    // A comma is fine in user data.
    assert!(sign(
        md5(),
        SECRET,
        &Ticket {
            user_data: "Bloggs, Joe".into(),
            ..jbloggs()
        },
        AddressBinding::Ignore
    )
    .is_ok());
    assert_eq!(
        sign(md5(), b"", &jbloggs(), AddressBinding::Ignore),
        Err(TicketError::NoSecret)
    );
}

#[test]
fn percent_encoded_user_ids_as_pyramid() {
    let f = TicketFormat {
        digest: DigestKind::Md5,
        user_id: UserIdEncoding::Percent,
    };
    let t = Ticket {
        user: "YWxpY2U= é".into(),
        ..jbloggs()
    };
    let raw = sign(f, SECRET, &t, AddressBinding::Ignore).unwrap();
    assert!(raw.ends_with(b"4885afa0YWxpY2U%3D%20%C3%A9!"));
    assert_eq!(
        verify(f, [SECRET], &raw, AddressBinding::Ignore)
            .unwrap()
            .ticket,
        t
    );
    // The digest covers the decoded id: the raw format reads another user.
    assert!(verify(md5(), [SECRET], &raw, AddressBinding::Ignore).is_err());
}

#[test]
fn cookie_encodings() {
    let raw = sign(md5(), SECRET, &jbloggs(), AddressBinding::Ignore).unwrap();
    let b64 = encode_cookie_value(DigestKind::Md5, CookieEncoding::Base64, &raw).unwrap();
    assert_eq!(
        b64,
        "YzdjNzMwMGFjNWNmNTI5NjU2NDQ0MTIzYWNhMzQ1Mjk0ODg1YWZhMGpibG9nZ3Mh"
    );
    let plain = encode_cookie_value(DigestKind::Md5, CookieEncoding::Raw, &raw).unwrap();
    for value in [
        b64.clone(),
        b64.trim_end_matches('=').to_owned(),
        format!("\"{b64}\""),
        plain.clone(),
        format!("\"{plain}\""),
        plain.replace('!', "%21"),
    ] {
        assert_eq!(
            decode_cookie_value(DigestKind::Md5, &value).unwrap(),
            raw,
            "{value}"
        );
    }
    // A ticket with data needs its padding handled: 52 bytes → "==" padding.
    let with_data = sign(
        md5(),
        SECRET,
        &Ticket {
            user_data: "ab".into(),
            ..jbloggs()
        },
        AddressBinding::Ignore,
    )
    .unwrap();
    let b64 = encode_cookie_value(DigestKind::Md5, CookieEncoding::Base64, &with_data).unwrap();
    assert!(b64.ends_with('='), "{b64}");
    assert_eq!(
        decode_cookie_value(DigestKind::Md5, b64.trim_end_matches('=')).unwrap(),
        with_data
    );
    assert!(decode_cookie_value(DigestKind::Md5, "not base64 at all").is_err());
    assert!(decode_cookie_value(DigestKind::Md5, "\"\"").is_err());
    // Binary digests cannot be raw; spaces cannot be in a raw cookie.
    assert!(encode_cookie_value(DigestKind::HmacSha256, CookieEncoding::Raw, &raw).is_err());
    let spaced = sign(
        md5(),
        SECRET,
        &Ticket {
            user_data: "Joe Bloggs".into(),
            ..jbloggs()
        },
        AddressBinding::Ignore,
    )
    .unwrap();
    assert!(encode_cookie_value(DigestKind::Md5, CookieEncoding::Raw, &spaced).is_err());
}

#[test]
fn timing_boundaries_and_refresh() {
    let t = Timing {
        timeout: Some(7200),
        refresh_fraction: 0.5,
        future_skew: 60,
    };
    let i = 1_000_000u32;
    let at = |s: i64| t.check(i, i64::from(i) + s);
    assert_eq!(at(0), Ok(Freshness::Fresh));
    assert_eq!(at(3600), Ok(Freshness::Fresh));
    assert_eq!(at(3601), Ok(Freshness::Refresh));
    assert_eq!(
        at(7200),
        Ok(Freshness::Refresh),
        "the last second is still valid"
    );
    assert_eq!(at(7201), Err(TicketError::Expired));
    assert_eq!(at(-60), Ok(Freshness::Fresh));
    assert_eq!(at(-61), Err(TicketError::FromTheFuture));
    assert_eq!(t.expires(i), Some(i64::from(i) + 7201));
    let never = Timing {
        timeout: None,
        refresh_fraction: 0.5,
        future_skew: 0,
    };
    assert_eq!(
        never.check(i, i64::from(i) + 10_000_000),
        Ok(Freshness::Fresh)
    );
    let hard = Timing {
        refresh_fraction: 0.0,
        ..t
    };
    assert_eq!(hard.check(i, i64::from(i) + 7200), Ok(Freshness::Fresh));
    let always = Timing {
        refresh_fraction: 1.0,
        ..t
    };
    assert_eq!(always.check(i, i64::from(i) + 1), Ok(Freshness::Refresh));
}

#[test]
fn signed_user_ids_are_checked_like_login_names() {
    for user in ["eve\nYES", "eve\r", "\u{7f}x", &"x".repeat(300)] {
        let t = Ticket {
            user: user.to_owned(),
            ..jbloggs()
        };
        // A peer signs anything; verification must still refuse it.
        let raw = sign(md5(), SECRET, &t, AddressBinding::Ignore).unwrap();
        assert!(
            matches!(
                verify(md5(), [SECRET], &raw, AddressBinding::Ignore),
                Err(TicketError::BadUser(_))
            ),
            "{user:?}"
        );
    }
}
