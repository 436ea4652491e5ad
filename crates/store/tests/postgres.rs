//! The conformance suite on PostgreSQL (`SESSIOND_TEST_POSTGRES_URL`, default
//! this machine's postgres://root@127.0.0.1:5432/test). Each harness gets a
//! schema of its own, created by the store's migrations and dropped afterwards.

mod conformance;

use conformance::{service_url, Harness, RETENTION};
use sessiond_store::{PostgresStore, StoreOptions};
use sqlx::Row;
use std::sync::Arc;

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
    Some(Harness {
        store: store.into_store(),
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
