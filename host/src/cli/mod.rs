//! The command line beside `serve`: every queue operation through the typed client of
//! `scheduler-api` (`enqueue`, `ls`, `show`, `watch`, `pause`, `resume`, `run`, `move`, `rm`,
//! `requeue`, `bookmark`, `results`, `settings`, `export`, `import`), for people and for
//! scripts (`--json`, exit codes); and `migrate-store` (`migrate`), which talks to no host: it
//! copies a stopped host's SQLite queue into PostgreSQL.
//!
//! Owns: the subcommands' flags (`args`), turning flags into requests (`enqueue`), waiting
//! on the event stream (`wait`), and printing (`output`). Must not: touch the database or the
//! host's internals; it is an HTTP client like any other (`migrate-store` excepted).

mod args;
mod commands;
mod enqueue;
mod migrate;
mod output;
mod wait;

pub use args::{ClientCommand, Conn};
pub use migrate::{MigrateStoreArgs, main as migrate_store};

use scheduler_api::client::{Client, ClientError};

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: an unexpected error (an answer that does not decode, a file that cannot be
/// written).
pub const EXIT_ERROR: i32 = 1;
/// Exit status: bad flags or unreadable input (clap uses 2 for usage errors too).
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the host refused the request (any 4xx/5xx answer).
pub const EXIT_REFUSED: i32 = 3;
/// Exit status: the host could not be reached.
pub const EXIT_UNREACHABLE: i32 = 4;
/// Exit status: a task waited for (`enqueue --wait`, `watch ID`) ended failed, interrupted
/// or deleted.
pub const EXIT_TASK_FAILED: i32 = 5;

/// The exit-status table printed by `--help` (a macro so `concat!` can append it).
macro_rules! exit_help {
    () => {
        "\
Exit status:
  0  success
  1  unexpected error (an answer that does not decode, a file that cannot be written)
  2  bad flags or unreadable input
  3  the host refused the request (4xx/5xx; its message is printed)
  4  the host is not reachable
  5  a task waited for (enqueue --wait, watch ID) ended failed, interrupted or deleted

Environment: AGENT_SCHEDULER_URL (--url), AGENT_SCHEDULER_TOKEN (--token)."
    };
}
pub(crate) use exit_help;

/// The exit-status table printed by `--help`.
pub const EXIT_HELP: &str = exit_help!();

/// Why a subcommand stopped.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or input.
    #[error("{0}")]
    Usage(String),
    /// The host refused, could not be reached, or answered something unexpected.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A local file could not be read or written.
    #[error("{0}")]
    Io(String),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Client(e) if e.is_unreachable() => EXIT_UNREACHABLE,
            CliError::Client(ClientError::Refused { .. }) => EXIT_REFUSED,
            CliError::Client(ClientError::InvalidRequest(_)) => EXIT_USAGE,
            CliError::Client(_) | CliError::Io(_) => EXIT_ERROR,
        }
    }
}

/// Runs a subcommand to the end and returns the process exit status.
pub fn main(cmd: ClientCommand) -> i32 {
    let json = cmd.json_output();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent-scheduler: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    match rt.block_on(commands::run(cmd)) {
        Ok(code) => code,
        Err(e) => {
            output::error(&e, json);
            e.exit_code()
        }
    }
}

/// The client for the connection flags.
fn client(conn: &Conn) -> Client {
    Client::new(&conn.url).with_token(conn.token.clone())
}
