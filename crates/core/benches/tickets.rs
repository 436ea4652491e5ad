//! Ticket verification in-process, per digest, against the work a
//! server-side session check does before its store lookup (hashing the
//! token): `cargo bench -p sessiond-core --bench tickets`.

use criterion::{criterion_group, criterion_main, Criterion};
use sessiond_core::ticket::{
    decode_cookie_value, encode_cookie_value, sign, verify, AddressBinding, CookieEncoding,
    DigestKind, Ticket, TicketFormat,
};
use sessiond_core::Token;
use std::hint::black_box;

fn tickets(c: &mut Criterion) {
    let secret = b"a-benchmark-secret-of-some-length".as_slice();
    let ticket = Ticket {
        user: "alice".into(),
        tokens: vec!["staff".into()],
        user_data: String::new(),
        issued: 1_800_000_000,
    };
    let token = Token::generate();
    c.bench_function("baseline: session token hash", |b| {
        b.iter(|| black_box(&token).hash())
    });
    for kind in [
        DigestKind::HmacSha256,
        DigestKind::Sha512,
        DigestKind::Sha256,
        DigestKind::Md5,
    ] {
        let format = TicketFormat::new(kind);
        let raw = sign(format, secret, &ticket, AddressBinding::Ignore).unwrap();
        let cookie = encode_cookie_value(kind, CookieEncoding::Base64, &raw).unwrap();
        c.bench_function(&format!("verify cookie {}", kind.name()), |b| {
            b.iter(|| {
                let raw = decode_cookie_value(kind, black_box(&cookie)).unwrap();
                verify(format, [secret], &raw, AddressBinding::Ignore).unwrap()
            })
        });
    }
}

criterion_group!(benches, tickets);
criterion_main!(benches);
