//! The PostgreSQL store: the same tables and meaning as the SQLite store, in a database
//! several hosts can share. Chosen by a `postgres://…` URL.
//!
//! Owns: its append-only migrations (`host/migrations-pg/`, applied in one transaction under
//! an advisory lock, so hosts starting together do not race), a small connection pool
//! (tokio-postgres with deadpool-postgres), and every PostgreSQL query, by concern:
//! - [`rows`]: the columns of listing and full rows (image fields stripped in the database),
//!   lifecycles (locked for the decision), ranks;
//! - `store.rs`: [`crate::store::api::TaskStore`] for [`PgStore`]: inserts, edits, listings,
//!   search, the claim (`FOR UPDATE SKIP LOCKED`, the policy's choice, a fence and a lease),
//!   every transition written as decided, moves, bulk changes, exports, settings, backends,
//!   events (ids in commit order, a `NOTIFY` as the wake-up), the callback outbox, speeds;
//! - [`blobs`]: result images and thumbnails as chunked `bytea` rows, streamed in and out;
//! - [`copy`]: `migrate-store`, a SQLite queue and its result files copied in, checked;
//! - [`listen`]: what the hosts tell each other at once (event ids, wake-ups, transient
//!   events), on a connection of its own that reconnects by itself.
//!
//! Backends: each row of the shared `backends` table is driven by one host at a time, under a
//! lease (`driver`, `driver_until` in database time) its host renews and another host takes
//! once it expires.
//!
//! Concurrency: each method is one transaction (READ COMMITTED; a compound read is one
//! REPEATABLE READ snapshot). A decision reads the task's lifecycle `FOR UPDATE`; the one
//! `UPDATE` that writes a status is still guarded by the status it was decided from (and a
//! run's writes by its fence). Changes of the queue's order (ranks at the head or the tail,
//! moves, run now) take one advisory lock, so two hosts never compute the same slot; claims
//! do not take it (they change no rank) and skip each other's locked rows. Counts are kept by
//! triggers as appended deltas (no hot row), folded by whoever gets a try-lock.
//!
//! Must not: decide anything (the transition function and the policy do), touch the file
//! system, or keep a connection across the caller's awaits (each method takes one from the
//! pool and gives it back).

pub mod blobs;
pub mod copy;
pub mod listen;
pub mod rows;
mod store;
pub mod tls;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};

use super::StoreError;

/// The migrations, in order; the index + 1 is the version after applying it.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations-pg/0001_init.sql"),
    ),
    (
        "0002_shared",
        include_str!("../../../migrations-pg/0002_shared.sql"),
    ),
    (
        "0003_backend_figures",
        include_str!("../../../migrations-pg/0003_backend_figures.sql"),
    ),
    (
        "0004_fewer_round_trips",
        include_str!("../../../migrations-pg/0004_fewer_round_trips.sql"),
    ),
    (
        "0005_search_apart",
        include_str!("../../../migrations-pg/0005_search_apart.sql"),
    ),
];

/// Connections kept open per host.
const POOL_SIZE: usize = 8;
/// How long a claim's lease lasts unless renewed (the default; a setting in phase B).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// Advisory lock keys (one namespace per purpose).
pub(super) mod locks {
    /// Applying migrations.
    pub const MIGRATE: i64 = 0x6167_7363_0001;
    /// Changing the queue's order (ranks).
    pub const ORDER: i64 = 0x6167_7363_0002;
    /// Appending to the event log (ids in commit order).
    pub const EVENTS: i64 = 0x6167_7363_0003;
}

/// The channel events are announced on (`NOTIFY`, the payload is the last id).
pub const EVENTS_CHANNEL: &str = "agent_scheduler_events";
/// The channel a change that may make a task claimable is announced on (by triggers; no
/// payload).
pub const WAKE_CHANNEL: &str = "agent_scheduler_wake";
/// The channel transient events are published on (the payload: [`listen`]).
pub const LIVE_CHANNEL: &str = "agent_scheduler_live";

pub(super) type PgResult<T> = Result<T, StoreError>;

type Params<'a> = [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Queries through the connection's statement cache: each statement is parsed and planned
/// once per connection (then a generic plan may serve it), and a call is one round trip
/// instead of two (prepare, then execute).
#[async_trait::async_trait]
pub(super) trait Cached: deadpool_postgres::GenericClient {
    /// Rows of `sql`.
    async fn q(&self, sql: &str, params: &Params<'_>) -> PgResult<Vec<tokio_postgres::Row>> {
        let st = self.prepare_cached(sql).await?;
        Ok(self.query(&st, params).await?)
    }
    /// The one row of `sql`.
    async fn q1(&self, sql: &str, params: &Params<'_>) -> PgResult<tokio_postgres::Row> {
        let st = self.prepare_cached(sql).await?;
        Ok(self.query_one(&st, params).await?)
    }
    /// The row of `sql`, if any.
    async fn q_opt(&self, sql: &str, params: &Params<'_>) -> PgResult<Option<tokio_postgres::Row>> {
        let st = self.prepare_cached(sql).await?;
        Ok(self.query_opt(&st, params).await?)
    }
    /// Runs `sql`; the rows it changed.
    async fn x(&self, sql: &str, params: &Params<'_>) -> PgResult<u64> {
        let st = self.prepare_cached(sql).await?;
        Ok(self.execute(&st, params).await?)
    }
}

impl<T: deadpool_postgres::GenericClient + ?Sized> Cached for T {}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            // Connection exceptions (class 08), the server shutting down or terminating the
            // session (57P01-57P03), no connection to be had (53300, or the database not
            // accepting connections, 55000 at connect): the database cannot be reached now.
            if code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
                || (code == "55000" && db.message().contains("accepting connections"))
            {
                return StoreError::Unavailable(format!("{code}: {}", db.message()));
            }
            return StoreError::Postgres(format!("{code}: {}", db.message()));
        }
        // No answer from the server (refused, closed, timed out): not a refusal of the query.
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io || e.to_string().contains("timeout") {
            return StoreError::Unavailable(e.to_string());
        }
        StoreError::Postgres(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        StoreError::Unavailable(format!("no connection: {e}"))
    }
}

/// The PostgreSQL store: a pool of connections to one database, this host's id (the owner
/// of its claims' leases) and the lease's length. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// How to connect (the subscription's own connection, [`listen`]).
    config: std::sync::Arc<tokio_postgres::Config>,
    /// The TLS every connection uses ([`tls`]).
    tls: tls::Tls,
    owner: String,
    /// The lease's length (ms); the host changes it with the `lease_s` setting.
    lease_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("owner", &self.owner)
            .field("lease_ms", &self.lease_ms())
            .finish()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`), applies the
    /// migrations this database lacks, and acts as host `owner` with claims leased for
    /// `lease`.
    pub async fn open(url: &str, owner: &str, lease: Duration) -> PgResult<PgStore> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Postgres(format!("database URL: {e}")))?;
        let tls = tls::connector(&mut config)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Postgres(format!("pool: {e}")))?;
        let store = PgStore {
            pool,
            config: std::sync::Arc::new(config),
            tls,
            owner: owner.to_owned(),
            lease_ms: std::sync::Arc::new(lease_ms(lease).into()),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// This host's id: the owner of its claims' leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The same database as another host (tests: two hosts in one process).
    pub fn as_owner(&self, owner: &str) -> PgStore {
        PgStore {
            owner: owner.to_owned(),
            lease_ms: std::sync::Arc::new(self.lease_ms().into()),
            ..self.clone()
        }
    }

    /// The same store with claims leased for `lease` (its own lease from now on).
    pub fn with_lease(self, lease: Duration) -> PgStore {
        PgStore {
            lease_ms: std::sync::Arc::new(lease_ms(lease).into()),
            ..self
        }
    }

    /// Claims (and renewals) from now on are leased for `lease` (every clone of this store
    /// shares it).
    pub fn set_lease(&self, lease: Duration) {
        self.lease_ms
            .store(lease_ms(lease), std::sync::atomic::Ordering::Relaxed);
    }

    /// The lease's length (ms).
    pub fn lease_ms(&self) -> i64 {
        self.lease_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) async fn conn(&self) -> PgResult<Object> {
        Ok(self.pool.get().await?)
    }

    /// The applied migration version.
    pub async fn version(&self) -> PgResult<i64> {
        let c = self.conn().await?;
        Ok(c.query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?)
    }

    /// Applies every migration newer than the database's version, all in one transaction
    /// under an advisory lock (a second host starting at the same time waits, then finds
    /// nothing to do). Refuses a database written by a newer program.
    pub async fn migrate(&self) -> PgResult<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&locks::MIGRATE])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
               version integer PRIMARY KEY, name text NOT NULL, \
               applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let current: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await?
            .try_get(0)?;
        let latest = MIGRATIONS.len() as i32;
        if current > latest {
            return Err(StoreError::Migration(format!(
                "database schema version {current} is newer than this program ({latest})"
            )));
        }
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Migration(format!("{name}: {}", StoreError::from(e))))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&(i as i32 + 1), name],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// Free text to a PostgreSQL `tsquery`, with SQLite's FTS5 meaning ([`crate::model::search`]):
/// each word's letters and digits are its tokens (a word of several tokens is a phrase),
/// every word required, the last token of the last word a prefix; case-folded. `None` when
/// there is no word.
pub fn tsquery(q: &str) -> Option<String> {
    let words: Vec<Vec<String>> = q
        .split_whitespace()
        .map(|w| {
            w.split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect();
    let n = words.len();
    if n == 0 {
        return None;
    }
    let parts: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, tokens)| {
            let last = tokens.len() - 1;
            let toks: Vec<String> = tokens
                .iter()
                .enumerate()
                .map(|(j, t)| {
                    let prefix = if i == n - 1 && j == last { ":*" } else { "" };
                    format!("'{t}'{prefix}")
                })
                .collect();
            format!("({})", toks.join(" <-> "))
        })
        .collect();
    Some(parts.join(" & "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_becomes_a_tsquery_with_fts5_meaning() {
        assert_eq!(tsquery("  "), None);
        assert_eq!(tsquery("--"), None);
        assert_eq!(tsquery("Fox"), Some("('fox':*)".into()));
        assert_eq!(
            tsquery("red-fox AT dusk"),
            Some("('red' <-> 'fox') & ('at') & ('dusk':*)".into())
        );
        // Quotes, backslashes and operators never reach the query.
        assert_eq!(
            tsquery("it's a\\b & !x"),
            Some("('it' <-> 's') & ('a' <-> 'b') & ('x':*)".into())
        );
    }

    #[test]
    fn listing_rows_strip_every_image_field_in_the_database() {
        let e = rows::stripped_request();
        for key in ["init_images", "mask", "inputs", "inits", "init_control"] {
            assert!(e.contains(&format!("'{key}'")), "{key} is removed");
        }
        for nested in ["'control'", "'ip_adapter'", "'face'", "'face_id'"] {
            assert!(e.contains(nested), "{nested} is descended into");
        }
    }
}
