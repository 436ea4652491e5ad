//! An access decision in-process: 100 compiled rules with the request
//! matching the last (every rule tried), beside normalising the path and
//! hashing a session token (the work every check does anyway):
//! `cargo bench -p sessiond-core --bench access`.

use criterion::{criterion_group, criterion_main, Criterion};
use sessiond_core::access::{normalize_path, PolicyKind, RuleSpec, Rules, Target, Who};
use sessiond_core::Token;
use std::hint::black_box;

/// The rules of `bench/access.sh`: 99 misses of four kinds, then the match.
fn hundred_rules() -> Rules {
    let mut specs: Vec<RuleSpec> = (0..99)
        .map(|i| {
            let mut s = RuleSpec {
                policy: PolicyKind::Allow,
                groups: vec![format!("team{i}")],
                ..RuleSpec::default()
            };
            match i % 4 {
                0 => s.paths = vec![format!("/svc{i}"), format!("/static{i}/")],
                1 => s.path_regex = Some(format!("^/api/v[0-9]+/item{i}(/|$)")),
                2 => {
                    s.hosts = vec![
                        format!("*.zone{i}.example.test"),
                        format!("app{i}.example.test"),
                    ]
                }
                _ => {
                    s.methods = vec!["DELETE".into()];
                    s.networks = vec![format!("10.{i}.0.0/16")];
                }
            }
            s
        })
        .collect();
    specs.push(RuleSpec {
        hosts: vec!["app.example.test".into()],
        paths: vec!["/app".into()],
        policy: PolicyKind::Allow,
        groups: vec!["bench".into()],
        ..RuleSpec::default()
    });
    Rules::compile(&specs, PolicyKind::Deny).unwrap()
}

fn access(c: &mut Criterion) {
    let rules = hundred_rules();
    let groups = vec!["bench".to_owned(), "staff".to_owned()];
    let who = Who {
        user: "bench",
        groups: &groups,
        realm: "web",
        source: "auth/file",
    };
    let token = Token::generate();
    c.bench_function("baseline: session token hash", |b| {
        b.iter(|| black_box(&token).hash())
    });
    c.bench_function("normalise /app/page?x=1", |b| {
        b.iter(|| normalize_path(black_box("/app/page?x=1")).unwrap())
    });
    let path = normalize_path("/app/page?x=1").unwrap();
    let target = Target {
        host: Some("app.example.test"),
        path: &path,
        method: Some("GET"),
        client: Some("192.0.2.7".parse().unwrap()),
    };
    c.bench_function("decide: 100 rules, the last matches, and admit", |b| {
        b.iter(|| {
            let d = rules.decide(black_box(&target));
            assert!(d.policy.admits(black_box(&who)).is_ok());
        })
    });
}

criterion_group!(benches, access);
criterion_main!(benches);
