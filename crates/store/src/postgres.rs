//! The PostgreSQL store (`sqlx`). Its schema is created by migrations at
//! start-up (`migrations/postgres/`), inside a schema of its own (default
//! `sessiond`), and expired rows are deleted by the background sweep.
//!
//! Each operation is one statement or one short transaction: a login locks
//! only its user's generation row, a replace moves the row's primary key, and
//! data writes compare the version in the `UPDATE` itself.

use crate::types::{DataWrite, GroupChange, GroupRole, StoreOptions, UserSession};
use crate::{Access, Store};
use crate::{SessionStore, StoreError, StoreResult};
use async_trait::async_trait;
use sessiond_core::limiter::{Backoff, Failures};
use sessiond_core::session::{
    classify, Classification, SessionData, SessionRecord, UserState, Validity,
};
use sessiond_core::{NewSession, Timestamp, TokenHash};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// The SQL that moves a session's `last_access` to the parameter `$now` and
/// its `ends_at` to `$end`, only ever forward: an update that read earlier
/// but lands later must not pull the end back (a NULL end, "never", stays
/// NULL). Every write of those columns after the insert goes through it.
macro_rules! access_forward {
    ($now:literal, $end:literal) => {
        concat!(
            "last_access = GREATEST(last_access, ",
            $now,
            "), ",
            "ends_at = CASE WHEN ends_at IS NULL OR ",
            $end,
            "::BIGINT IS NULL THEN ",
            $end,
            "::BIGINT ELSE GREATEST(ends_at, ",
            $end,
            "::BIGINT) END"
        )
    };
}

/// Rows the sweep deletes per statement.
const SWEEP_BATCH: i64 = 5_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Columns every session query selects: the record's parts and its user's
/// supersede state.
const SESSION_COLUMNS: &str = "s.id, s.record, s.last_access, s.data, s.data_version, \
     u.generation AS user_generation, u.superseded_at";

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("postgres: {e}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("postgres session column {what}"))
}

/// Connections for checks, at most (beside the pool of 16 for the rest).
const CHECK_CONNECTIONS: usize = 16;

/// How long a check may take, waiting for a connection included: the
/// statement timeout (2 s) and a little for the round trip.
const CHECK_TIMEOUT: Duration = Duration::from_millis(2500);

pub struct PostgresStore {
    pool: PgPool,
    /// The check path's own connections (`lease.rs`): sqlx's pool pings
    /// every connection it takes back, a second round trip per check.
    checks: crate::lease::Pool<PgConnection>,
    /// How a check connection is opened.
    connect: PgConnectOptions,
    opts: StoreOptions,
    schema: String,
    description: String,
}

/// Whether `name` can be used as the schema name without quoting.
fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl PostgresStore {
    /// Connects to `url`, creates `schema` if needed and runs the migrations.
    pub async fn connect(
        url: &str,
        schema: &str,
        opts: StoreOptions,
    ) -> StoreResult<PostgresStore> {
        if !valid_schema(schema) {
            return Err(StoreError::Open(format!(
                "postgres schema {schema:?}: use lowercase letters, digits and _ (at most 63)"
            )));
        }
        let open = |e: sqlx::Error| StoreError::Open(format!("postgres: {e}"));
        let base = PgConnectOptions::from_str(url).map_err(open)?;
        let description = format!(
            "postgres {}:{}/{} schema {schema}",
            base.get_host(),
            base.get_port(),
            base.get_database().unwrap_or("")
        );
        // Create the schema on a plain connection first: search_path cannot
        // point at a schema that does not exist yet.
        {
            let setup = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(base.clone())
                .await
                .map_err(open)?;
            let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&setup)
                .await;
            // Two instances starting together may race on the catalog.
            if let Err(e) = created {
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                )
                .bind(schema)
                .fetch_one(&setup)
                .await
                .map_err(open)?;
                if !exists {
                    return Err(open(e));
                }
            }
            setup.close().await;
        }
        // Migrations run without the request timeouts below: they may wait
        // for another instance's migration lock, and a first index build
        // on a large table takes longer than a request may.
        {
            let migrating = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(base.clone().options([("search_path", schema)]))
                .await
                .map_err(open)?;
            MIGRATOR
                .run(&migrating)
                .await
                .map_err(|e| StoreError::Open(format!("postgres migrations: {e}")))?;
            migrating.close().await;
        }
        // A stuck database must fail a request within the store's budget
        // (503, retry) rather than hold it until the HTTP timeout:
        // statements get 2 s, lock waits 1 s.
        let connect = base.options([
            ("search_path", schema),
            ("statement_timeout", "2000"),
            ("lock_timeout", "1000"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(connect.clone())
            .await
            .map_err(open)?;
        Ok(PostgresStore {
            pool,
            checks: crate::lease::Pool::new(CHECK_CONNECTIONS),
            connect,
            opts,
            schema: schema.to_owned(),
            description,
        })
    }

    /// What the start-up line shows (no password).
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn decode(row: &PgRow) -> StoreResult<(TokenHash, SessionRecord, UserState)> {
        let id: Vec<u8> = row.try_get("id").map_err(|_| corrupt("id"))?;
        let id = TokenHash(id.try_into().map_err(|_| corrupt("id"))?);
        let text: String = row.try_get("record").map_err(|_| corrupt("record"))?;
        let mut record: SessionRecord =
            serde_json::from_str(&text).map_err(|_| corrupt("record"))?;
        record.last_access = Timestamp(
            row.try_get("last_access")
                .map_err(|_| corrupt("last_access"))?,
        );
        let data: String = row.try_get("data").map_err(|_| corrupt("data"))?;
        record.data = serde_json::from_str(&data).map_err(|_| corrupt("data"))?;
        let version: i64 = row
            .try_get("data_version")
            .map_err(|_| corrupt("data_version"))?;
        record.data_version = version.max(0) as u64;
        let generation: Option<i64> = row
            .try_get("user_generation")
            .map_err(|_| corrupt("generation"))?;
        let superseded_at: Option<i64> = row
            .try_get("superseded_at")
            .map_err(|_| corrupt("superseded_at"))?;
        let user = UserState {
            generation: generation.unwrap_or(0).max(0) as u64,
            superseded_at: superseded_at.map(Timestamp),
            epoch: 0,
        };
        Ok((id, record, user))
    }

    /// Reads a session (locking it inside `tx`), classifies it, deletes it if gone.
    async fn lookup(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        id: &TokenHash,
        realm: &str,
        now: Timestamp,
        lock: bool,
    ) -> StoreResult<Option<(SessionRecord, Classification)>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s LEFT JOIN users u \
             ON u.realm = s.realm AND u.username = s.username WHERE s.id = $1{}",
            if lock { " FOR UPDATE OF s" } else { "" }
        );
        let Some(row) = sqlx::query(&sql)
            .bind(id.0.as_slice())
            .fetch_optional(&mut **tx)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let (_, record, user) = Self::decode(&row)?;
        match classify(&record, &user, realm, now, self.opts.superseded_retention) {
            Classification::OtherRealm => Ok(None),
            Classification::Gone => {
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(id.0.as_slice())
                    .execute(&mut **tx)
                    .await
                    .map_err(unavailable)?;
                Ok(None)
            }
            c => Ok(Some((record, c))),
        }
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(unavailable)
    }
}

fn ends_at(record: &SessionRecord) -> Option<i64> {
    record.ends_at().map(|t| t.0)
}

async fn commit(tx: Transaction<'_, Postgres>) -> StoreResult<()> {
    tx.commit().await.map_err(unavailable)
}

#[async_trait]
impl crate::FailureCounters for PostgresStore {
    async fn failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        let row: Option<(i32, i64)> =
            sqlx::query_as("SELECT count, last FROM login_failures WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(row.map(|(count, last)| Failures {
            count: count.max(0) as u32,
            last: Timestamp(last),
        }))
    }

    async fn record_failure(
        &self,
        key: &str,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Failures> {
        let window = i64::try_from(backoff.window.as_secs()).unwrap_or(i64::MAX / 4);
        // One statement: the upsert's row lock orders racing failures.
        let count: i32 = sqlx::query_scalar(
            "INSERT INTO login_failures (key, count, last, forget_at) VALUES ($1, 1, $2, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN login_failures.forget_at <= $2 THEN 1 \
                     ELSE LEAST(login_failures.count, 2147483646) + 1 END, \
             last = $2, forget_at = $2 + $3 RETURNING count",
        )
        .bind(key)
        .bind(now.0)
        .bind(window)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(Failures {
            count: count.max(0) as u32,
            last: now,
        })
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

impl PostgresStore {
    /// This store with the abilities it offers: it enumerates users' sessions and shares failed-login counts with every instance.
    pub fn into_store(self: std::sync::Arc<Self>) -> Store {
        let s = self;
        Store::new(s.clone()).with_users(s.clone()).with_failures(s)
    }
}

impl PostgresStore {
    /// A check on one connection: the session and its user's generation in
    /// one statement (prepared once per connection), and a second only to
    /// delete a dead record or move the last access on.
    async fn check_on(
        &self,
        conn: &mut PgConnection,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s LEFT JOIN users u \
             ON u.realm = s.realm AND u.username = s.username WHERE s.id = $1"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(id.0.as_slice())
            .fetch_optional(&mut *conn)
            .await
            .map_err(unavailable)?
        else {
            return Ok(Validity::Unknown);
        };
        let (_, mut record, user) = Self::decode(&row)?;
        Ok(
            match classify(&record, &user, realm, now, self.opts.superseded_retention) {
                Classification::OtherRealm => Validity::Unknown,
                Classification::Gone => {
                    sqlx::query(
                        "DELETE FROM sessions WHERE id = $1 AND ends_at IS NOT DISTINCT FROM $2",
                    )
                    .bind(id.0.as_slice())
                    .bind(ends_at(&record))
                    .execute(&mut *conn)
                    .await
                    .map_err(unavailable)?;
                    if sessiond_core::session::expired_on_sight(&record, &user, now) {
                        Validity::Expired(record)
                    } else {
                        Validity::Unknown
                    }
                }
                Classification::Superseded => Validity::Superseded(record),
                Classification::Current => {
                    if access == Access::Touch && record.needs_touch(now, self.opts.touch_interval)
                    {
                        record.last_access = now;
                        // Touches only the access columns: a concurrent data
                        // write is never overwritten.
                        sqlx::query(concat!(
                            "UPDATE sessions SET ",
                            access_forward!("$2", "$3"),
                            " WHERE id = $1"
                        ))
                        .bind(id.0.as_slice())
                        .bind(now.0)
                        .bind(ends_at(&record))
                        .execute(&mut *conn)
                        .await
                        .map_err(unavailable)?;
                    }
                    Validity::Current(record)
                }
            },
        )
    }
}

/// How often each instance sends itself a heartbeat on the notification
/// channel, so that a listening connection that died silently is noticed
/// (the near cache counts four missed beats as a lost channel).
const HEARTBEAT: Duration = Duration::from_millis(250);

impl PostgresStore {
    /// Feeds a near cache from this schema's notifications (migration 0004:
    /// triggers announce every change of a session row or a user's
    /// supersede state, at commit). Runs as long as the runtime; while the
    /// listening connection is down the cache is not used, and it is
    /// emptied before it is used again.
    pub fn spawn_invalidations(&self, inv: crate::Invalidator) {
        let (pool, schema) = (self.pool.clone(), self.schema.clone());
        inv.expect_heartbeat(HEARTBEAT);
        let beats = (pool.clone(), schema.clone());
        tokio::spawn(async move {
            loop {
                // The beat reaches every instance on this schema: each
                // hears the others' too, and that is fine.
                let _ = sqlx::query("SELECT pg_notify($1, 'h')")
                    .bind(&beats.1)
                    .execute(&beats.0)
                    .await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
        inv.spawn_follower("postgres", move |inv| {
            let (pool, schema) = (pool.clone(), schema.clone());
            async move { listen(&pool, &schema, &inv).await }
        });
    }
}

/// Listens until the connection fails; says why.
async fn listen(pool: &PgPool, schema: &str, inv: &crate::Invalidator) -> String {
    let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => return e.to_string(),
    };
    if let Err(e) = listener.listen(schema).await {
        return e.to_string();
    }
    inv.restored();
    inv.heard();
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => {
                inv.heard();
                let payload = n.payload();
                match payload.split_at_checked(1) {
                    Some(("s", hex_id)) => {
                        if let Some(id) = hex::decode(hex_id)
                            .ok()
                            .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        {
                            inv.session(&TokenHash(id));
                        }
                    }
                    Some(("u", user)) => inv.user(user),
                    _ => {} // a heartbeat
                }
            }
            Ok(None) => return "connection lost".into(),
            Err(e) => return e.to_string(),
        }
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn create(
        &self,
        id: TokenHash,
        new: NewSession,
        now: Timestamp,
    ) -> StoreResult<SessionRecord> {
        let mut tx = self.begin().await?;
        let generation: i64 = if new.policy.supersede {
            sqlx::query_scalar(
                "INSERT INTO users (realm, username, generation, superseded_at) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (realm, username) DO UPDATE \
                 SET generation = users.generation + 1, superseded_at = EXCLUDED.superseded_at \
                 RETURNING generation",
            )
            .bind(&new.realm)
            .bind(&new.identity.user)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?
        } else {
            sqlx::query_scalar("SELECT generation FROM users WHERE realm = $1 AND username = $2")
                .bind(&new.realm)
                .bind(&new.identity.user)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?
                .unwrap_or(0)
        };
        let record = SessionRecord::issue(new, generation.max(0) as u64, now);
        let mut shell = record.clone();
        shell.data = SessionData::new();
        let shell =
            serde_json::to_string(&shell).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id, realm, username, record, generation, supersede, created, \
             last_access, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.0.as_slice())
        .bind(&record.realm)
        .bind(&record.identity.user)
        .bind(shell)
        .bind(record.generation as i64)
        .bind(record.supersede)
        .bind(record.created.0)
        .bind(record.last_access.0)
        .bind(ends_at(&record))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        commit(tx).await?;
        Ok(record)
    }

    // With Access::Touch, last access moves on when due.
    async fn check(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity> {
        let work = async {
            let mut conn = self
                .checks
                .lease(|| PgConnection::connect_with(&self.connect))
                .await
                .map_err(unavailable)?;
            let answer = self.check_on(&mut conn, id, realm, now, access).await?;
            conn.done();
            Ok(answer)
        };
        tokio::time::timeout(CHECK_TIMEOUT, work)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("postgres: no answer within {CHECK_TIMEOUT:?}"))
            })?
    }

    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let mut tx = self.begin().await?;
        let found = self.lookup(&mut tx, &id, realm, now, true).await?;
        if found.is_some() {
            sqlx::query("DELETE FROM sessions WHERE id = $1")
                .bind(id.0.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        commit(tx).await?;
        Ok(found.map(|(record, _)| record))
    }

    async fn replace(
        &self,
        old: TokenHash,
        new: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let mut tx = self.begin().await?;
        let found = self.lookup(&mut tx, &old, realm, now, true).await?;
        let result = match found {
            Some((mut record, Classification::Current)) => {
                record.last_access = now;
                sqlx::query(concat!(
                    "UPDATE sessions SET id = $2, ",
                    access_forward!("$3", "$4"),
                    " WHERE id = $1"
                ))
                .bind(old.0.as_slice())
                .bind(new.0.as_slice())
                .bind(now.0)
                .bind(ends_at(&record))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                Some(record)
            }
            _ => None,
        };
        commit(tx).await?;
        Ok(result)
    }

    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>> {
        Ok(match self.validate(id, realm, now).await? {
            Validity::Current(record) => Some((record.data, record.data_version)),
            _ => None,
        })
    }

    async fn write_data(
        &self,
        id: TokenHash,
        realm: &str,
        expected_version: u64,
        data: SessionData,
        now: Timestamp,
    ) -> StoreResult<DataWrite> {
        let mut tx = self.begin().await?;
        let Some((mut record, Classification::Current)) =
            self.lookup(&mut tx, &id, realm, now, true).await?
        else {
            commit(tx).await?;
            return Ok(DataWrite::NotFound);
        };
        if record.data_version != expected_version {
            commit(tx).await?;
            return Ok(DataWrite::Conflict {
                current_version: record.data_version,
            });
        }
        record.last_access = now;
        let text = serde_json::to_string(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(concat!(
            "UPDATE sessions SET data = $2, data_version = data_version + 1, ",
            access_forward!("$3", "$4"),
            " WHERE id = $1"
        ))
        .bind(id.0.as_slice())
        .bind(text)
        .bind(now.0)
        .bind(ends_at(&record))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        commit(tx).await?;
        Ok(DataWrite::Written {
            version: expected_version + 1,
        })
    }

    async fn purge(&self, now: Timestamp) -> StoreResult<u64> {
        // In batches, each well inside the statement timeout, so a sweep
        // that fell behind on a large table still makes progress.
        let mut expired = 0;
        loop {
            let batch = sqlx::query(
                "DELETE FROM sessions WHERE id IN \
                 (SELECT id FROM sessions WHERE ends_at <= $1 LIMIT $2)",
            )
            .bind(now.0)
            .bind(SWEEP_BATCH)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?
            .rows_affected();
            expired += batch;
            if batch < SWEEP_BATCH as u64 {
                break;
            }
        }
        let retention = i64::try_from(self.opts.superseded_retention.as_secs()).unwrap_or(i64::MAX);
        let superseded = sqlx::query(
            "DELETE FROM sessions s USING users u \
             WHERE u.realm = s.realm AND u.username = s.username \
             AND s.supersede AND s.generation < u.generation \
             AND COALESCE(u.superseded_at, s.created) + $2 <= $1",
        )
        .bind(now.0)
        .bind(retention)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        sqlx::query("DELETE FROM login_failures WHERE forget_at <= $1")
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(expired + superseded)
    }

    async fn end_user_sessions(&self, user: &str, _now: Timestamp) -> StoreResult<Option<u64>> {
        let done = sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(Some(done.rows_affected()))
    }
}

#[async_trait]
impl crate::UserSessions for PostgresStore {
    async fn list_user_sessions(
        &self,
        realm: &str,
        user: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSession>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s LEFT JOIN users u \
             ON u.realm = s.realm AND u.username = s.username \
             WHERE s.realm = $1 AND s.username = $2 ORDER BY s.created, s.generation, s.id"
        );
        let rows = sqlx::query(&sql)
            .bind(realm)
            .bind(user)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut live = Vec::new();
        for row in &rows {
            let (id, record, state) = Self::decode(row)?;
            let class = classify(&record, &state, realm, now, self.opts.superseded_retention);
            if let c @ (Classification::Current | Classification::Superseded) = class {
                live.push(UserSession {
                    id,
                    record,
                    superseded: c == Classification::Superseded,
                });
            }
        }
        Ok(live)
    }

    async fn revoke_user_sessions(
        &self,
        realm: &str,
        user: &str,
        keep: Option<TokenHash>,
        _now: Timestamp,
    ) -> StoreResult<u64> {
        let keep = keep.map(|k| k.0.to_vec()).unwrap_or_default();
        let done =
            sqlx::query("DELETE FROM sessions WHERE realm = $1 AND username = $2 AND id <> $3")
                .bind(realm)
                .bind(user)
                .bind(keep)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl crate::TicketMarks for PostgresStore {
    async fn raise_ticket_not_before(
        &self,
        realm: &str,
        user: &str,
        at: Timestamp,
    ) -> StoreResult<Timestamp> {
        // One statement: the row lock of the upsert orders racing raises.
        let text: String = sqlx::query_scalar(
            "INSERT INTO keys (slot, key) VALUES ($1, $2) ON CONFLICT (slot) DO UPDATE \
             SET key = CASE WHEN keys.key ~ '^-?[0-9]+$' AND keys.key::BIGINT >= EXCLUDED.key::BIGINT \
             THEN keys.key ELSE EXCLUDED.key END RETURNING key",
        )
        .bind(crate::not_before_slot(realm, user))
        .bind(at.0.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        crate::parse_not_before(&text)
    }
}

#[async_trait]
impl crate::KeySlots for PostgresStore {
    async fn get_key(&self, slot: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT key FROM keys WHERE slot = $1")
            .bind(slot)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn put_key(&self, slot: &str, key: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO keys (slot, key) VALUES ($1, $2) \
             ON CONFLICT (slot) DO UPDATE SET key = EXCLUDED.key",
        )
        .bind(slot)
        .bind(key)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(unavailable)
    }
}

#[async_trait]
impl crate::Groups for PostgresStore {
    async fn create_group(
        &self,
        group: &str,
        realm: &str,
        user: &str,
        key: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let created = sqlx::query(
            "INSERT INTO group_keys (grp, key) VALUES ($1, $2) ON CONFLICT (grp) DO NOTHING",
        )
        .bind(group)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected()
            == 1;
        if created {
            sqlx::query(
                "INSERT INTO group_roles (grp, realm, username, role) VALUES ($1, $2, $3, 'admin') \
                 ON CONFLICT (grp, realm, username) DO UPDATE SET role = 'admin'",
            )
            .bind(group)
            .bind(realm)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        commit(tx).await?;
        Ok(created)
    }

    async fn group_role(
        &self,
        group: &str,
        realm: &str,
        user: &str,
    ) -> StoreResult<Option<GroupRole>> {
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM group_roles WHERE grp = $1 AND realm = $2 AND username = $3",
        )
        .bind(group)
        .bind(realm)
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(role.as_deref().and_then(GroupRole::parse))
    }

    async fn group_key(&self, group: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT key FROM group_keys WHERE grp = $1")
            .bind(group)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn update_group(
        &self,
        group: &str,
        realm: &str,
        caller: &str,
        changes: &[GroupChange],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        // Lock the group so membership changes apply one after another.
        let exists = sqlx::query("SELECT 1 FROM group_keys WHERE grp = $1 FOR UPDATE")
            .bind(group)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .is_some();
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM group_roles WHERE grp = $1 AND realm = $2 AND username = $3",
        )
        .bind(group)
        .bind(realm)
        .bind(caller)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        if !exists || role.as_deref() != Some("admin") {
            commit(tx).await?;
            return Ok(false);
        }
        for change in changes {
            match change.role {
                Some(role) => sqlx::query(
                    "INSERT INTO group_roles (grp, realm, username, role) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (grp, realm, username) DO UPDATE SET role = EXCLUDED.role",
                )
                .bind(group)
                .bind(realm)
                .bind(&change.user)
                .bind(role.as_str()),
                None => sqlx::query(
                    "DELETE FROM group_roles WHERE grp = $1 AND realm = $2 AND username = $3",
                )
                .bind(group)
                .bind(realm)
                .bind(&change.user),
            }
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        commit(tx).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("sessiond"));
        assert!(valid_schema("sessiond_test_01"));
        assert!(!valid_schema("Sessiond"));
        assert!(!valid_schema("a; DROP TABLE x"));
        assert!(!valid_schema("1abc"));
        assert!(!valid_schema(""));
    }
}
