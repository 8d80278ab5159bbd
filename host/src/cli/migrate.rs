//! `agent-scheduler migrate-store --from sqlite:PATH --to postgres://…`: moves a stopped
//! host's SQLite queue into PostgreSQL ([`crate::store::pg::copy`] does the work and the
//! checks; this parses the flags, prints the report and picks the exit status). Unlike the
//! other subcommands it talks to no host: it reads the file and writes the database.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use crate::store::pg::copy::{MigrateError, MigrateOptions, migrate_store};

/// `migrate-store`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Copies every task (ids, order, history, bookmarks, groups, attempts, results), the result
images and thumbnails, the events (ids kept), settings, the paused flag, added backends and
their speeds, idempotency keys and the callback outbox into PostgreSQL, in one transaction,
then checks the copy (rows and sha256 per table, sha256 of every file) and commits only if
everything matches. The source is only read; a host running on it is refused.

Examples:
  agent-scheduler migrate-store --from sqlite:$HOME/.local/share/agent-scheduler/queue.sqlite3 \\
      --to postgres://scheduler:secret@db.lan:5432/scheduler

Exit status:
  0  copied and checked
  1  an error, or the copy did not match (nothing was committed)
  2  bad flags
  3  refused: a host is using the source, the target is not empty (without
     --into-non-empty), a task id exists in the target, or the source is newer")]
pub struct MigrateStoreArgs {
    /// The SQLite queue to copy: `sqlite:PATH` (or a plain path) to `queue.sqlite3`; its
    /// result files are the `results/` folder beside it.
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// The PostgreSQL database to copy into (its migrations are applied first).
    #[arg(long, value_name = "postgres://USER:PASSWORD@HOST:PORT/DB")]
    pub to: String,
    /// Append to a database that already holds tasks, events or backends (new ids; the
    /// copied pending tasks go after its queue; its settings stay).
    #[arg(long)]
    pub into_non_empty: bool,
}

/// Runs `migrate-store`; the process exit status.
pub fn main(args: MigrateStoreArgs) -> i32 {
    let from = args.from.strip_prefix("sqlite:").unwrap_or(&args.from);
    let opts = MigrateOptions {
        from: PathBuf::from(from),
        to: args.to,
        into_non_empty: args.into_non_empty,
    };
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
    match rt.block_on(migrate_store(&opts)) {
        Ok(report) => {
            print!("{report}");
            println!(
                "migrated {} into the PostgreSQL database",
                opts.from.display()
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("agent-scheduler migrate-store: {e}");
            match e {
                MigrateError::Usage(_) => EXIT_USAGE,
                MigrateError::Refused(_) => EXIT_REFUSED,
                MigrateError::Failed(_) | MigrateError::Mismatch(_) => EXIT_ERROR,
            }
        }
    }
}
