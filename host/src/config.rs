//! The host's configuration: parsed once (CLI / environment in `main.rs`), validated here,
//! passed explicitly. No globals. Plain values only: it imports nothing of the host but the
//! model's callback rules, so every layer may read it (`http::serve` takes its
//! [`ServeLimits`]); the handles made from it (the disk watch, the store) are built by
//! [`crate::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A secret that never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the queue is stored (`--database`).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Database {
    /// The SQLite file in the data directory (`queue.sqlite3`): the default.
    #[default]
    DataDir,
    /// A SQLite file elsewhere (`sqlite:PATH`; made absolute against the working directory
    /// when parsed).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`), which several hosts can
    /// share. Its password never shows (`Debug`, logs, errors).
    Postgres(String),
}

impl Database {
    /// Reads a `--database` value: `sqlite:PATH` (relative to `cwd`), `postgres://…` or
    /// `postgresql://…`; an empty value is the default. The error names the flag, never the
    /// password.
    pub fn parse(value: &str, cwd: &std::path::Path) -> Result<Database, String> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(Database::DataDir);
        }
        if let Some(path) = v.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("--database sqlite:PATH needs a file path".into());
            }
            return Ok(Database::Sqlite(cwd.join(path)));
        }
        if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            return Ok(Database::Postgres(v.to_owned()));
        }
        Err(format!(
            "--database {}: not a database URL (give sqlite:PATH, postgres://USER:PASSWORD@HOST:PORT/DB \
             or postgresql://…)",
            crate::sdnext::redacted(v)
        ))
    }

    /// What it is, as logs show it: `sqlite <path>` or `postgres <host>:<port>/<db>` (no
    /// user, no password).
    pub fn describe(&self, data_dir: &std::path::Path) -> String {
        match self {
            Database::DataDir => format!("sqlite {}", data_dir.join("queue.sqlite3").display()),
            Database::Sqlite(p) => format!("sqlite {}", p.display()),
            Database::Postgres(url) => format!("postgres {}", postgres_place(url)),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::DataDir => f.write_str("DataDir"),
            Database::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Database::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&crate::sdnext::redacted(url))
                .finish(),
        }
    }
}

/// `host:port/db` of a PostgreSQL URL (port 5432 when not given; no user, no password, no
/// query).
pub fn postgres_place(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let with_port = if hostport.ends_with(']') || !hostport.contains(':') {
        format!("{hostport}:5432")
    } else {
        hostport.to_owned()
    };
    format!("{with_port}/{db}")
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// SD.Next base URLs (`user:pass@` allowed).
    pub backends: Vec<String>,
    /// Folder of the database (SQLite), the result files, the host id and the lock.
    pub data_dir: PathBuf,
    /// Where the queue is stored (`--database`).
    pub database: Database,
    /// This host's id (`--host-id`); `None`: the one in `<data-dir>/host-id`, made once.
    pub host_id: Option<String>,
    /// Bearer token required on every request, when set.
    pub token: Option<Secret>,
    /// Extra allowed `Origin` values.
    pub allow_origins: Vec<String>,
    /// Force the queue paused at start (overrides the persisted pause to `true`).
    pub start_paused: bool,
    /// Loopback / private callback targets allowed when listening beyond loopback
    /// (`--allow-callback-host`).
    pub allow_callback_hosts: Vec<crate::model::callback::AllowedHost>,
    /// The server loop's connection cap and header-read timeout.
    pub limits: ServeLimits,
    /// Test-only fault injection (`AGENT_SCHEDULER_TEST_FAULTS`); `None` in production.
    /// Its route exists only in builds with the `fault-injection` feature.
    pub test_faults: Option<TestFaults>,
    /// The web app's folder (`--webapp`); `None`: found beside the binary, if built.
    pub webapp: Option<PathBuf>,
    /// The clock every stored time is read from: the system's, a manual one in tests.
    pub clock: crate::clock::Clock,
}

/// The default connection cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default header-read timeout.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits of the HTTP server loop (`--max-connections`, `--header-read-timeout`; see
/// `http::serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to receive a whole request head.
    pub header_read_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Faults a test asks for at start (`AGENT_SCHEDULER_TEST_FAULTS=1`, or `disk_full` to start
/// on a "full disk"); with them the `POST /agent-scheduler/v1/test/faults` route is served
/// by builds with the `fault-injection` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFaults {
    /// Start with the store and the results writer failing with "no space".
    pub disk_full: bool,
}

impl TestFaults {
    /// Reads `AGENT_SCHEDULER_TEST_FAULTS` (`1` or `disk_full`).
    pub fn from_env() -> Option<TestFaults> {
        let v = std::env::var("AGENT_SCHEDULER_TEST_FAULTS").ok()?;
        match v.trim() {
            "" | "0" => None,
            other => Some(TestFaults {
                disk_full: other.split(',').any(|w| w.trim() == "disk_full"),
            }),
        }
    }
}

impl Config {
    /// A config for tests: one backend, the given data dir, no token.
    pub fn for_test(backend: &str, data_dir: PathBuf) -> Config {
        Config {
            backends: vec![backend.to_owned()],
            data_dir,
            database: Database::DataDir,
            host_id: None,
            token: None,
            allow_origins: Vec::new(),
            start_paused: false,
            allow_callback_hosts: Vec::new(),
            test_faults: None,
            limits: ServeLimits::default(),
            webapp: None,
            clock: crate::clock::Clock::system(),
        }
    }

    /// Refuses a listen address beyond loopback without a token.
    pub fn check_listen(&self, addr: SocketAddr) -> Result<(), String> {
        if !addr.ip().is_loopback() && self.token.is_none() {
            return Err(format!(
                "refusing to listen on {addr} without --token: the queue would be open to the network \
                 (use --token TOKEN, or listen on 127.0.0.1)"
            ));
        }
        if self.backends.is_empty() {
            return Err("at least one --backend is needed".into());
        }
        Ok(())
    }
}

/// The default data folder: `$XDG_DATA_HOME/agent-scheduler`, else
/// `~/.local/share/agent-scheduler`, else `./agent-scheduler-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("agent-scheduler");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/agent-scheduler");
    }
    PathBuf::from("agent-scheduler-data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_beyond_loopback_needs_a_token() {
        let mut c = Config::for_test("http://127.0.0.1:7860", PathBuf::from("/tmp/x"));
        assert!(c.check_listen("127.0.0.1:7861".parse().unwrap()).is_ok());
        assert!(c.check_listen("[::1]:7861".parse().unwrap()).is_ok());
        let err = c.check_listen("0.0.0.0:7861".parse().unwrap()).unwrap_err();
        assert!(err.contains("--token"));
        c.token = Some(Secret("t".into()));
        assert!(c.check_listen("0.0.0.0:7861".parse().unwrap()).is_ok());
        assert_eq!(format!("{:?}", c.token), "Some(Secret(***))");
    }

    #[test]
    fn database_urls_are_read_and_never_show_the_password() {
        let cwd = std::path::Path::new("/work");
        assert_eq!(Database::parse("", cwd), Ok(Database::DataDir));
        assert_eq!(
            Database::parse("sqlite:q.db", cwd),
            Ok(Database::Sqlite(PathBuf::from("/work/q.db")))
        );
        assert_eq!(
            Database::parse("sqlite:/abs/q.db", cwd),
            Ok(Database::Sqlite(PathBuf::from("/abs/q.db")))
        );
        let url = "postgresql://u:s3cret@db.example:6543/queue?sslmode=disable";
        let pg = Database::parse(url, cwd).unwrap();
        assert_eq!(pg, Database::Postgres(url.into()));
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert_eq!(
            pg.describe(cwd),
            "postgres db.example:6543/queue",
            "no user, no password"
        );
        assert_eq!(
            Database::Postgres("postgres://h/d".into()).describe(cwd),
            "postgres h:5432/d"
        );
        let bad = Database::parse("mysql://u:s3cret@h/d", cwd).unwrap_err();
        assert!(bad.contains("--database"), "{bad}");
        assert!(!bad.contains("s3cret"), "{bad}");
        assert!(Database::parse("sqlite:", cwd).is_err());
    }
}
