//! Property tests of every core parser that reads request input (no
//! nightly toolchain here, so these stand in for fuzzing): each runs 10,000
//! cases, must never panic, and must refuse what it cannot read with an
//! error rather than a wrong answer.

use proptest::prelude::*;
use sessiond_core::duration::{format_duration, parse_duration, parse_signed_seconds};
use sessiond_core::forwarded::{forwarded_client, parse_hop};
use sessiond_core::keyring::Keyring;
use sessiond_core::names::check_name;
use sessiond_core::ticket::{
    decode_cookie_value, encode_cookie_value, sign, verify, AddressBinding, CookieEncoding,
    DigestKind, Ticket, TicketError, TicketFormat,
};
use std::net::IpAddr;
use std::time::Duration;

const CASES: u32 = 10_000;
const SECRET: &[u8] = b"a-ticket-secret-of-enough-length";

fn digests() -> impl Strategy<Value = DigestKind> {
    prop_oneof![
        Just(DigestKind::HmacSha256),
        Just(DigestKind::Md5),
        Just(DigestKind::Sha256),
        Just(DigestKind::Sha512),
    ]
}

/// Text that looks like the thing parsed more often than random text does.
fn ticketish() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,120}",
        "[0-9a-f]{32,128}[0-9a-f]{8}[a-z,!\n\"% ]{0,40}",
        "[A-Za-z0-9+/=_-]{0,200}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Durations: any text is a value or an error, never a panic; whatever
    /// parses formats back to the same duration.
    #[test]
    fn durations(text in prop_oneof![
        ".{0,40}",
        "[-+]?[0-9.]{0,12} ?[a-zA-Z]{0,8}([ ,:;]{0,2}[-+]?[0-9.]{0,6}[a-zA-Z]{0,6}){0,4}",
    ]) {
        let _ = parse_signed_seconds(&text);
        if let Ok(d) = parse_duration(&text) {
            prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    /// Any duration up to the cap formats and parses back.
    #[test]
    fn durations_round_trip(ms in 0u64..1_000_000_000_000) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }

    /// Ticket cookies from anyone: decoding and verifying arbitrary values
    /// never panics and never accepts what the secret did not sign.
    #[test]
    fn foreign_tickets_are_refused(digest in digests(), value in ticketish()) {
        if let Ok(raw) = decode_cookie_value(digest, &value) {
            let verified =
                verify(TicketFormat::new(digest), [SECRET], &raw, AddressBinding::Ignore);
            prop_assert!(verified.is_err(), "accepted an unsigned ticket: {:?}", value);
        }
    }

    /// Tickets signed with the secret verify, whatever the fields; a user id
    /// that is no login name is refused at verification, not passed on.
    #[test]
    fn signed_tickets_verify(
        digest in digests(),
        user in "[^!,\0]{1,40}",
        tokens in proptest::collection::vec("[a-z0-9_]{1,8}", 0..4),
        data in "[^!\0]{0,30}",
        issued in any::<u32>(),
        bound in proptest::option::of(any::<[u8; 4]>()),
    ) {
        let ticket = Ticket { user: user.clone(), tokens, user_data: data, issued };
        let binding = match bound {
            Some(b) => AddressBinding::Client(IpAddr::from(b)),
            None => AddressBinding::Ignore,
        };
        let format = TicketFormat::new(digest);
        let Ok(raw) = sign(format, SECRET, &ticket, binding) else {
            return Ok(());
        };
        let value = encode_cookie_value(digest, CookieEncoding::Base64, &raw).unwrap();
        let raw = decode_cookie_value(digest, &value).unwrap();
        match verify(format, [SECRET], &raw, binding) {
            Ok(v) => {
                prop_assert!(check_name("user", &user).is_ok());
                prop_assert_eq!(v.ticket, ticket);
            }
            Err(TicketError::BadUser(_)) => prop_assert!(check_name("user", &user).is_err()),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    /// Sealed credentials: arbitrary bytes never open (and never panic); a
    /// sealed value opens only for its owner.
    #[test]
    fn keyring_opening(
        junk in proptest::collection::vec(any::<u8>(), 0..200),
        plain in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let ring = Keyring::from_hex_lines(&Keyring::generate_hex()).unwrap();
        prop_assert!(ring.open(&junk, b"alice").is_err());
        let sealed = ring.seal(&plain, b"alice");
        prop_assert_eq!(ring.open(&sealed, b"alice").unwrap(), plain);
        prop_assert!(ring.open(&sealed, b"bob").is_err());
    }

    /// Keyring files: any text loads or is refused with a reason.
    #[test]
    fn keyring_files(text in prop_oneof![".{0,200}", "([0-9a-fA-F]{60,68}\n?){0,3}"]) {
        let _ = Keyring::from_hex_lines(&text);
    }

    /// X-Forwarded-For: never a panic, and the answer is what a plain
    /// reading of the rule gives — the right-most entry that is not a trusted
    /// proxy, looking no further left than the first unusable entry — with
    /// an oracle written separately from the code (entries split and parsed
    /// here with the standard library only).
    #[test]
    fn forwarded_for(
        entries in proptest::collection::vec(prop_oneof![
            any::<[u8; 4]>().prop_map(|b| IpAddr::from(b).to_string()),
            any::<[u16; 8]>().prop_map(|s| format!("[{}]:443", std::net::Ipv6Addr::from(s))),
            any::<[u8; 4]>().prop_map(|b| format!("{}:{}", IpAddr::from(b), b[0])),
            ".{0,12}",
        ], 0..6),
        trust_mask in any::<u8>(),
    ) {
        let header = entries.join(",");
        let trusted = |ip: &IpAddr| match ip {
            IpAddr::V4(v4) => v4.octets()[0] & trust_mask == 0,
            IpAddr::V6(_) => false,
        };
        let got = forwarded_client([header.as_str()], trusted);
        // The oracle: parse each entry as the header's grammar allows.
        let parse = |e: &str| -> Option<IpAddr> {
            let e = e.trim();
            e.parse::<IpAddr>().ok()
                .or_else(|| e.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
                .or_else(|| e.strip_prefix('[')?.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
        };
        let mut expected = None;
        for e in header.split(',').rev() {
            match parse(e) {
                None => break,
                Some(ip) if !trusted(&ip) => { expected = Some(ip); break; }
                Some(ip) => expected = Some(ip),
            }
        }
        prop_assert_eq!(got, expected, "{}", header);
        if let Some(client) = got {
            prop_assert!(header.split(',').any(|e| parse_hop(e) == Some(client)), "{}", header);
        }
    }
}
