//! A throw-away PostgreSQL database per test: [`TestDb::create`] makes a database with a
//! random name on the server `AGENT_SCHEDULER_TEST_PG` names (default: the role and server
//! `.ci/setup` makes, [`DEFAULT_URL`]) and drops it when the value is dropped. The server is
//! a prerequisite like the others ([`crate::harness::available`]): when it cannot be reached
//! the test fails under `CI=true` and elsewhere prints `skipped: …` and gets `None`.

use std::time::Duration;

use tokio_postgres::{Config, NoTls};

/// The server and role `.ci/setup` makes (password auth on loopback).
pub const DEFAULT_URL: &str =
    "postgres://agent_scheduler_test:agent_scheduler_test@127.0.0.1:5432/postgres";

/// The URL of the server the tests use (a database the role may connect to; the tests make
/// their own databases beside it).
pub fn server_url() -> String {
    std::env::var("AGENT_SCHEDULER_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A database that exists for one test, dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    name: String,
    admin: Config,
}

async fn admin_client(config: &Config) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = config.clone();
    config.connect_timeout(Duration::from_secs(5));
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

impl TestDb {
    /// A new empty database, or `None` (skipped, outside CI) when the server cannot be
    /// reached.
    pub async fn create() -> Option<TestDb> {
        let url = server_url();
        let admin: Config = match url.parse() {
            Ok(c) => c,
            Err(e) => panic!("AGENT_SCHEDULER_TEST_PG is not a PostgreSQL URL ({e}): {url}"),
        };
        let client = match admin_client(&admin).await {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("PostgreSQL at {}: {e}", redacted(&url));
                None
            }
        };
        let client = crate::harness::available(
            "a PostgreSQL server (AGENT_SCHEDULER_TEST_PG)",
            client,
            "bash .ci/setup, or point AGENT_SCHEDULER_TEST_PG at a server whose role may create databases",
        )?;
        let name = format!("as_test_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let db_url = with_dbname(&url, &name);
        Some(TestDb {
            url: db_url,
            name,
            admin,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes the database unreachable: it takes no new connection and every open one is
    /// ended (as a server gone away looks to its clients). [`TestDb::reconnect`] undoes it.
    pub async fn disconnect(&self) {
        let client = admin_client(&self.admin)
            .await
            .expect("connect to the test server");
        client
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                self.name
            ))
            .await
            .expect("ALTER DATABASE … ALLOW_CONNECTIONS false");
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .expect("end the database's connections");
    }

    /// Makes the database reachable again.
    pub async fn reconnect(&self) {
        let client = admin_client(&self.admin)
            .await
            .expect("connect to the test server");
        client
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ))
            .await
            .expect("ALTER DATABASE … ALLOW_CONNECTIONS true");
    }
}

/// `url` without its password (for messages).
fn redacted(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!(
                "{}{user}:***@{host}{}",
                &url[..scheme_end],
                &rest[authority_end..]
            )
        }
        None => url.to_owned(),
    }
}

/// `url` with its database replaced by `name`.
fn with_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user:pass@host:port/db — the database is the path after the authority.
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside or outside a runtime: a thread of its own with its own runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = admin_client(&admin).await.ok()?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_show_no_password() {
        assert_eq!(
            redacted("postgres://u:secret@127.0.0.1:5432/postgres"),
            "postgres://u:***@127.0.0.1:5432/postgres"
        );
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn the_database_is_replaced_in_the_url() {
        assert_eq!(
            with_dbname("postgres://u:p@127.0.0.1:5432/postgres", "x"),
            "postgres://u:p@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_dbname("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
