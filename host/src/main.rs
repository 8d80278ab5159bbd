//! `agent-scheduler` binary: parses flags and dispatches: `serve` sets up logging, binds and
//! calls [`agent_scheduler::run`]; `migrate-store` copies a stopped host's SQLite queue into
//! PostgreSQL; every other subcommand is a client of a running host
//! ([`agent_scheduler::cli`]).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use agent_scheduler::config::{Config, Database, Secret, default_data_dir};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "agent-scheduler",
    version,
    about = "A durable task queue that feeds SD.Next servers over HTTP.",
    long_about = "A durable task queue that feeds SD.Next servers over HTTP.\n\n\
`serve` runs the host; `migrate-store` copies a stopped host's queue into PostgreSQL; \
every other subcommand talks to a running host (--url, default http://127.0.0.1:7861) \
through its HTTP API.",
    after_help = agent_scheduler::cli::EXIT_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the host: the queue, its HTTP API and one worker per SD.Next backend.
    Serve(ServeArgs),
    /// Copy a stopped host's SQLite queue (tasks, results, events, settings, backends) into
    /// PostgreSQL, check the copy and commit it (talks to no host).
    MigrateStore(agent_scheduler::cli::MigrateStoreArgs),
    #[command(flatten)]
    Client(agent_scheduler::cli::ClientCommand),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port; the first stdout line is always
    /// `listening on http://ADDR` with the real address. Beyond loopback, --token is required.
    #[arg(long, value_name = "ADDR", env = "AGENT_SCHEDULER_LISTEN", default_value = scheduler_api::DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// SD.Next base URL; repeat for several backends (env: comma-separated).
    /// `http://user:pass@host:port` sends HTTP Basic credentials.
    #[arg(long = "backend", value_name = "URL", env = "AGENT_SCHEDULER_BACKEND", value_delimiter = ',',
          default_value = scheduler_api::DEFAULT_BACKEND)]
    backends: Vec<String>,

    /// Folder for the queue database and the result images
    /// [default: $XDG_DATA_HOME/agent-scheduler or ~/.local/share/agent-scheduler].
    #[arg(long, value_name = "DIR", env = "AGENT_SCHEDULER_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Where the queue is stored: `sqlite:PATH` (relative to the working directory), or a
    /// PostgreSQL database several hosts can share, `postgres://USER:PASSWORD@HOST:PORT/DB`
    /// (or `postgresql://…`) [default: the SQLite file in --data-dir]. The data directory
    /// still holds the host id, the lock and the result images.
    #[arg(
        long,
        value_name = "URL",
        env = "AGENT_SCHEDULER_DATABASE",
        hide_env_values = true
    )]
    database: Option<String>,

    /// This host's id, the owner of its claims in a shared database [default: the one in
    /// `<data-dir>/host-id`, made once from the host name and 6 random hex digits].
    #[arg(long, value_name = "ID", env = "AGENT_SCHEDULER_HOST_ID")]
    host_id: Option<String>,

    /// Require `Authorization: Bearer TOKEN` on every request.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "AGENT_SCHEDULER_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// Another allowed browser Origin (the extension's origin and the backends' origins are
    /// always allowed); repeatable (env: comma-separated).
    #[arg(
        long = "allow-origin",
        value_name = "ORIGIN",
        env = "AGENT_SCHEDULER_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,

    /// Start with the queue paused (persisted, like pressing pause).
    #[arg(long, env = "AGENT_SCHEDULER_START_PAUSED")]
    start_paused: bool,

    /// A loopback or private callback target to allow when listening beyond loopback: an IP,
    /// a CIDR network or a host name; repeatable (env: comma-separated). The host's own
    /// address and link-local/metadata addresses are never allowed.
    #[arg(
        long = "allow-callback-host",
        value_name = "IP|CIDR|NAME",
        env = "AGENT_SCHEDULER_ALLOW_CALLBACK_HOST",
        value_delimiter = ','
    )]
    allow_callback_hosts: Vec<String>,

    /// Open connections at most; at the cap new ones wait until one closes.
    #[arg(long, value_name = "N", env = "AGENT_SCHEDULER_MAX_CONNECTIONS", default_value_t = agent_scheduler::config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,

    /// Seconds a connection has to send a whole request head before it is closed.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "AGENT_SCHEDULER_HEADER_READ_TIMEOUT",
        default_value_t = 30
    )]
    header_read_timeout: u64,

    /// The web app's folder (the task panel served at `/`) [default: `webapp` beside the
    /// binary's folder, i.e. `target/webapp` as `bash frontend/build.sh` makes it].
    #[arg(long, value_name = "DIR", env = "AGENT_SCHEDULER_WEBAPP")]
    webapp: Option<PathBuf>,
}

fn main() {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::MigrateStore(args) => {
            std::process::exit(agent_scheduler::cli::migrate_store(args))
        }
        Command::Client(cmd) => std::process::exit(agent_scheduler::cli::main(cmd)),
    }
}

fn serve(args: ServeArgs) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut allow_callback_hosts = Vec::new();
    for a in args
        .allow_callback_hosts
        .iter()
        .filter(|a| !a.trim().is_empty())
    {
        match agent_scheduler::model::callback::AllowedHost::parse(a) {
            Ok(h) => allow_callback_hosts.push(h),
            Err(e) => {
                eprintln!("agent-scheduler: {e}");
                std::process::exit(2);
            }
        }
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let database = match Database::parse(args.database.as_deref().unwrap_or(""), &cwd) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("agent-scheduler: {e}");
            std::process::exit(2);
        }
    };
    let config = Config {
        backends: args
            .backends
            .into_iter()
            .filter(|b| !b.trim().is_empty())
            .collect(),
        data_dir: args.data_dir.unwrap_or_else(default_data_dir),
        database,
        host_id: args.host_id.filter(|h| !h.trim().is_empty()),
        token: args.token.filter(|t| !t.is_empty()).map(Secret),
        allow_origins: args.allow_origins,
        start_paused: args.start_paused,
        allow_callback_hosts,
        limits: agent_scheduler::config::ServeLimits {
            max_connections: args.max_connections.max(1),
            header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout.max(1)),
        },
        test_faults: if cfg!(feature = "fault-injection") {
            agent_scheduler::config::TestFaults::from_env()
        } else {
            None
        },
        webapp: args.webapp,
        clock: agent_scheduler::clock::Clock::system(),
    };
    if let Err(e) = config.check_listen(args.listen) {
        eprintln!("agent-scheduler: {e}");
        std::process::exit(2);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent-scheduler: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on http://{addr}");
            let _ = out.flush();
        }
        tracing::info!("data directory: {}", config.data_dir.display());
        agent_scheduler::run(config, listener, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        eprintln!("agent-scheduler: {e}");
        std::process::exit(1);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
