//! The conformance suite on PostgreSQL (`SESSIOND_TEST_POSTGRES_URL`, default
//! this machine's postgres://root@127.0.0.1:5432/test). Each harness gets a
//! schema of its own, created by the store's migrations and dropped afterwards.

mod conformance;

use conformance::{eventually, peek_until, service_url, Harness, RETENTION};
use sessiond_core::session::Validity;
use sessiond_core::{Identity, NewSession, RealmPolicy, Timestamp, Token};
use sessiond_store::{Invalidator, NearCacheConfig, PostgresStore, SessionStore, StoreOptions};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

fn url() -> Option<String> {
    service_url(
        "SESSIOND_TEST_POSTGRES_URL",
        Some("postgres://root@127.0.0.1:5432/test"),
    )
}

/// Drops the harness's schema when the test ends.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&pool)
                            .await;
                    }
                })
        })
        .join()
        .unwrap();
    }
}

async fn harness() -> Option<Harness> {
    harness_with(false).await
}

async fn harness_with(near_cache: bool) -> Option<Harness> {
    let url = url()?;
    let schema = format!("sessiond_test_{}", sessiond_core::token::random_hex(6));
    let store = Arc::new(
        PostgresStore::connect(
            &url,
            &schema,
            StoreOptions {
                superseded_retention: RETENTION,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("connect to postgres"),
    );
    let dumped = store.clone();
    let front = if near_cache {
        cached(&store).await.0
    } else {
        store.clone().into_store()
    };
    Some(Harness {
        store: front,
        dump: Box::new(move || {
            let store = dumped.clone();
            Box::pin(async move {
                let mut text = String::new();
                for table in ["sessions", "users", "keys", "group_keys", "group_roles"] {
                    let rows = sqlx::query(&format!("SELECT t::text AS row FROM {table} t"))
                        .fetch_all(store.pool())
                        .await
                        .unwrap();
                    for row in rows {
                        text.push_str(&row.get::<String, _>("row"));
                        text.push('\n');
                    }
                }
                text.into_bytes()
            })
        }),
        guard: Box::new(DropSchema { url, schema }),
        sweeps: true,
        enumerates: true,
    })
}

conformance_suite!(harness);

/// `store` behind a near cache fed by its notifications, once they flow.
async fn cached(store: &Arc<PostgresStore>) -> (sessiond_store::Store, Invalidator) {
    let config = NearCacheConfig {
        capacity: 1000,
        max_age: Duration::from_secs(60),
    };
    let opts = StoreOptions::default();
    let (front, inv) = store.clone().into_store().with_near_cache(config, &opts);
    store.spawn_invalidations(inv.clone());
    let live = eventually(Duration::from_secs(5), || inv.is_live()).await;
    assert!(live, "listening within 5 s");
    (front, inv)
}

mod near_cache {
    use super::*;

    async fn cached_harness() -> Option<Harness> {
        harness_with(true).await
    }

    conformance_suite!(cached_harness);
}

/// What another instance does reaches a cached instance through the
/// notifications: a revocation and a superseding login, each within a
/// second; and with the listening connection killed, checks go to the
/// database until it is back.
#[tokio::test]
async fn another_instances_writes_reach_the_near_cache() {
    let Some(url) = url() else { return };
    let schema = format!("sessiond_test_{}", sessiond_core::token::random_hex(6));
    let _drop = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let opts = StoreOptions::default;
    let a = Arc::new(PostgresStore::connect(&url, &schema, opts()).await.unwrap());
    let b = PostgresStore::connect(&url, &schema, opts()).await.unwrap();
    let (front, inv) = cached(&a).await;
    let now = Timestamp(1_700_000_000);
    let login = |user: &str| NewSession {
        realm: "rc".into(),
        identity: Identity::new(user, "pam"),
        policy: RealmPolicy::default(),
        credential_end: None,
        client_addr: None,
        device: None,
        credentials: None,
    };
    // revoked elsewhere
    let t = Token::generate();
    b.create(t.hash(), login("alice"), now).await.unwrap();
    assert!(matches!(
        front.peek(t.hash(), "rc", now).await.unwrap(),
        Validity::Current(_)
    ));
    b.revoke(t.hash(), "rc", now).await.unwrap();
    peek_until(&front, t.hash(), now, |v| *v == Validity::Unknown).await;
    // superseded elsewhere
    let t = Token::generate();
    b.create(t.hash(), login("bob"), now).await.unwrap();
    assert!(matches!(
        front.peek(t.hash(), "rc", now).await.unwrap(),
        Validity::Current(_)
    ));
    b.create(Token::generate().hash(), login("bob"), now)
        .await
        .unwrap();
    peek_until(&front, t.hash(), now, |v| {
        matches!(v, Validity::Superseded(_))
    })
    .await;
    // the listening connection killed: the next checks read the database
    let t = Token::generate();
    b.create(t.hash(), login("carol"), now).await.unwrap();
    assert!(matches!(
        front.peek(t.hash(), "rc", now).await.unwrap(),
        Validity::Current(_)
    ));
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN %' AND query LIKE $1",
    )
    .bind(format!("%{schema}%"))
    .execute(a.pool())
    .await
    .unwrap();
    let lost = eventually(Duration::from_secs(2), || !inv.is_live()).await;
    assert!(lost, "the loss is noticed");
    // from here until it listens again, nothing cached may answer
    b.revoke(t.hash(), "rc", now).await.unwrap();
    assert_eq!(
        front.peek(t.hash(), "rc", now).await.unwrap(),
        Validity::Unknown
    );
    // and it listens again, on a new connection, with an empty cache
    let back = eventually(Duration::from_secs(5), || inv.is_live()).await;
    assert!(back, "listening again");
    let t = Token::generate();
    b.create(t.hash(), login("dave"), now).await.unwrap();
    assert!(matches!(
        front.peek(t.hash(), "rc", now).await.unwrap(),
        Validity::Current(_)
    ));
    b.revoke(t.hash(), "rc", now).await.unwrap();
    peek_until(&front, t.hash(), now, |v| *v == Validity::Unknown).await;
}

#[tokio::test]
async fn a_second_instance_finds_the_schema_migrated() {
    let Some(url) = url() else { return };
    let schema = format!("sessiond_test_{}", sessiond_core::token::random_hex(6));
    let _drop = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let opts = StoreOptions::default;
    let (a, b) = tokio::join!(
        PostgresStore::connect(&url, &schema, opts()),
        PostgresStore::connect(&url, &schema, opts())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let again = PostgresStore::connect(&url, &schema, opts()).await.unwrap();
    for s in [&a, &b, &again] {
        assert_eq!(s.schema(), schema);
    }
    let err = PostgresStore::connect(&url, "Bad-Name", opts())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("lowercase"), "{err}");
}
