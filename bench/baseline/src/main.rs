//! The benchmarks' yardstick: a bare axum 0.8 server with none of sessiond's
//! middleware, same HTTP stack, same TCP_NODELAY. What sessiond does per
//! request is measured as a fraction of what this does.
//!
//! * `GET /healthz` answers a constant, as sessiond's own `/healthz` does
//!   (`bench/path.sh`).
//! * With `BASELINE_REDIS_URL`, `GET /redis` answers one Redis `GET` through
//!   the client and connection kind sessiond uses (redis-rs, one multiplexed
//!   connection); with `BASELINE_REDIS_CLUSTER` (comma-separated node URLs),
//!   `GET /redis-cluster` the same through redis-rs's cluster client.
//! * With `BASELINE_PG_URL`, `GET /pg` answers `pgbench -S`'s statement
//!   (a primary-key read of `pgbench_accounts`) on 16 sqlx connections, one
//!   statement in flight on each, as sessiond's checks run.
//!
//! Those three are the ceiling of "HTTP in front of one store round trip"
//! on this machine (`bench/stores.sh`): wrk, the server and the store share
//! the same cores, so a bare store client that speaks no HTTP
//! (`redis-benchmark`, `pgbench`) is not reachable by any HTTP front end,
//! and sessiond is measured against both.
//!
//!   bench-baseline [ADDR]     (default 127.0.0.1:0; prints `listening on http://…`)

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::get;
use sqlx::Connection;

/// The key `bench/stores.sh` sets before `redis-benchmark` runs.
const REDIS_KEY: &str = "sessiond-bench:plain";
/// sessiond's check connections to PostgreSQL.
const PG_CONNECTIONS: usize = 16;

#[derive(Clone, Default)]
struct Stores {
    redis: Option<redis::aio::MultiplexedConnection>,
    cluster: Option<redis::cluster_async::ClusterConnection>,
    pg: Option<Arc<Pg>>,
}

/// A fixed set of connections, each used by one request at a time.
struct Pg {
    url: String,
    idle: parking_lot::Mutex<Vec<sqlx::PgConnection>>,
    slots: tokio::sync::Semaphore,
    next: AtomicU32,
}

type Answer = Result<String, (StatusCode, String)>;

fn failed(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
}

fn unset(var: &str) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, format!("{var} is not set\n"))
}

/// One `GET` of the key `bench/stores.sh` set, on either kind of connection.
async fn read_key(conn: &mut impl redis::aio::ConnectionLike) -> Answer {
    let v: Option<String> = redis::cmd("GET")
        .arg(REDIS_KEY)
        .query_async(conn)
        .await
        .map_err(failed)?;
    Ok(v.unwrap_or_default())
}

async fn redis_get(State(s): State<Stores>) -> Answer {
    read_key(&mut s.redis.ok_or_else(|| unset("BASELINE_REDIS_URL"))?).await
}

async fn cluster_get(State(s): State<Stores>) -> Answer {
    read_key(&mut s.cluster.ok_or_else(|| unset("BASELINE_REDIS_CLUSTER"))?).await
}

async fn pg_select(State(s): State<Stores>) -> Answer {
    let pg = s.pg.ok_or_else(|| unset("BASELINE_PG_URL"))?;
    let _slot = pg.slots.acquire().await.map_err(failed)?;
    // A request cancelled mid-statement (wrk closing its connections) drops
    // its connection, which may hold half an answer; a new one replaces it.
    let idle = pg.idle.lock().pop();
    let mut conn = match idle {
        Some(c) => c,
        None => sqlx::PgConnection::connect(&pg.url).await.map_err(failed)?,
    };
    // pgbench -S at scale 1: a random one of 100,000 accounts
    let aid = (pg.next.fetch_add(7919, Ordering::Relaxed) % 100_000 + 1) as i32;
    let balance: Result<i32, _> =
        sqlx::query_scalar("SELECT abalance FROM pgbench_accounts WHERE aid = $1")
            .bind(aid)
            .fetch_one(&mut conn)
            .await;
    pg.idle.lock().push(conn);
    Ok(format!("{}\n", balance.map_err(failed)?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let mut stores = Stores::default();
    if let Ok(url) = std::env::var("BASELINE_REDIS_URL") {
        let client = redis::Client::open(url)?;
        stores.redis = Some(client.get_multiplexed_async_connection().await?);
    }
    if let Ok(nodes) = std::env::var("BASELINE_REDIS_CLUSTER") {
        let client = redis::cluster::ClusterClient::new(nodes.split(',').collect::<Vec<_>>())?;
        stores.cluster = Some(client.get_async_connection().await?);
    }
    if let Ok(url) = std::env::var("BASELINE_PG_URL") {
        let mut idle = Vec::new();
        for _ in 0..PG_CONNECTIONS {
            idle.push(sqlx::PgConnection::connect(&url).await?);
        }
        stores.pg = Some(Arc::new(Pg {
            url,
            idle: parking_lot::Mutex::new(idle),
            slots: tokio::sync::Semaphore::new(PG_CONNECTIONS),
            next: AtomicU32::new(0),
        }));
    }

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route(
            "/healthz",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "ok\n") }),
        )
        .route("/redis", get(redis_get))
        .route("/redis-cluster", get(cluster_get))
        .route("/pg", get(pg_select))
        .with_state(stores);
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
