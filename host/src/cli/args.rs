//! The subcommands and their flags (clap).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};
use scheduler_api::TaskType;

use super::EXIT_HELP;

/// Where the host is and how to authenticate.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// The host's URL.
    #[arg(long, value_name = "URL", env = "AGENT_SCHEDULER_URL",
          default_value = scheduler_api::DEFAULT_HOST_URL)]
    pub url: String,
    /// Bearer token to send (hosts started with --token).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "AGENT_SCHEDULER_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// The output format.
#[derive(Args, Debug, Clone, Copy)]
pub struct Output {
    /// Print the host's answer as JSON (for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Every subcommand that talks to a running host.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Queue a generation from JSON (the SD.Next request plus checkpoint, vae, name,
    /// callback_url) and/or flags.
    #[command(after_help = EXIT_HELP)]
    Enqueue(Box<EnqueueArgs>),
    /// List the queue (running tasks, then pending ones in order), or the history.
    #[command(after_help = EXIT_HELP)]
    Ls(LsArgs),
    /// Show one task.
    #[command(after_help = EXIT_HELP)]
    Show(ShowArgs),
    /// Follow the host's events live: task changes, progress, queue counters.
    #[command(after_help = EXIT_HELP)]
    Watch(WatchArgs),
    /// Pause the queue (a running task finishes).
    #[command(after_help = EXIT_HELP)]
    Pause(Plain),
    /// Resume the queue.
    #[command(after_help = EXIT_HELP)]
    Resume(Plain),
    /// Run a pending task next, even while the queue is paused.
    #[command(after_help = EXIT_HELP)]
    Run(IdArgs),
    /// Move a pending task to the top, to the bottom, or before another pending task.
    #[command(after_help = EXIT_HELP)]
    Move(MoveArgs),
    /// Delete tasks (a running one is interrupted first).
    #[command(after_help = EXIT_HELP)]
    Rm(IdsArgs),
    /// Queue a copy of a finished task, or every failed task again (--failed).
    #[command(after_help = EXIT_HELP)]
    Requeue(RequeueArgs),
    /// Bookmark tasks (clears and retention keep them); --off removes the bookmark.
    #[command(after_help = EXIT_HELP)]
    Bookmark(BookmarkArgs),
    /// Save a finished task's images into a folder, or as a zip.
    #[command(after_help = EXIT_HELP)]
    Results(ResultsArgs),
    /// Show the host settings, or change them with flags.
    #[command(after_help = EXIT_HELP)]
    Settings(SettingsArgs),
    /// Write the pending tasks (full requests) as JSON, to stdout or a file.
    #[command(after_help = EXIT_HELP)]
    Export(ExportArgs),
    /// Import tasks from an export (this host's or the original AgentScheduler's).
    #[command(after_help = EXIT_HELP)]
    Import(ImportArgs),
}

impl ClientCommand {
    /// Whether the output is JSON (errors are printed as JSON too).
    pub fn json_output(&self) -> bool {
        match self {
            ClientCommand::Enqueue(a) => a.json.is_some(),
            ClientCommand::Ls(a) => a.out.json,
            ClientCommand::Show(a) => a.out.json,
            ClientCommand::Watch(a) => a.out.json,
            ClientCommand::Pause(a) | ClientCommand::Resume(a) => a.out.json,
            ClientCommand::Run(a) => a.out.json,
            ClientCommand::Move(a) => a.out.json,
            ClientCommand::Rm(a) => a.out.json,
            ClientCommand::Requeue(a) => a.out.json,
            ClientCommand::Bookmark(a) => a.out.json,
            ClientCommand::Results(a) => a.output.json,
            ClientCommand::Settings(a) => a.out.json,
            ClientCommand::Export(_) => true,
            ClientCommand::Import(a) => a.out.json,
        }
    }
}

fn task_type(s: &str) -> Result<TaskType, String> {
    TaskType::parse(s).ok_or_else(|| format!("`{s}` is not one of txt2img, img2img, control"))
}

/// `enqueue`.
#[derive(Args, Debug)]
#[command(after_long_help = concat!("\
The request is the body of POST /agent-scheduler/v1/queue/<type>: every SD.Next field
(prompt, steps, init_images, ...) plus checkpoint (a title, `*` for every checkpoint, or
`<folder>/*`), vae, name and callback_url. Flags override the fields of --json FILE.

Examples:
  agent-scheduler enqueue txt2img --prompt 'a red fox' --steps 20 --size 512x768 --wait --out shots/
  agent-scheduler enqueue txt2img --json request.json --checkpoint 'sdxl/*' --wait
  jq '.prompt = \"x\"' base.json | agent-scheduler enqueue img2img --json - --init-image in.png
  agent-scheduler enqueue control --json units.json --init-image in.png --size 1024x1024 --wait
    (units.json: {\"control\": [{\"process\": \"Canny\", \"model\": \"...\"}]}: each unit
    without an image gets in.png)

A request SD.Next would refuse is refused by the host before it is queued (exit 3): the
message names the field (steps must be an integer, got \"many\"; unknown sampler X; known: ...).

", super::exit_help!()))]
pub struct EnqueueArgs {
    /// txt2img, img2img or control.
    #[arg(value_name = "TYPE", value_parser = task_type)]
    pub kind: TaskType,
    /// Read the request from FILE (`-` = stdin) and print JSON. Given without a value it only
    /// switches the output to JSON. Put it after TYPE.
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "")]
    pub json: Option<String>,
    /// Prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Negative prompt.
    #[arg(long)]
    pub negative: Option<String>,
    /// Sampling steps.
    #[arg(long)]
    pub steps: Option<u32>,
    /// CFG scale.
    #[arg(long)]
    pub cfg: Option<f64>,
    /// Seed (-1 = random).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// Image size, WIDTHxHEIGHT (e.g. 512x768); `width`/`height`, for control
    /// `width_before`/`height_before`.
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// Sampler name.
    #[arg(long)]
    pub sampler: Option<String>,
    /// Checkpoint title; `*` queues one task per checkpoint, `<folder>/*` one per checkpoint
    /// of that folder.
    #[arg(long)]
    pub checkpoint: Option<String>,
    /// VAE name.
    #[arg(long)]
    pub vae: Option<String>,
    /// Task name.
    #[arg(long)]
    pub name: Option<String>,
    /// Images per batch (batch_size).
    #[arg(long)]
    pub batch: Option<u32>,
    /// Number of batches (`n_iter`, for control `batch_count`).
    #[arg(long)]
    pub count: Option<u32>,
    /// An input image file (img2img: `init_images`; control: the `image` of each unit that
    /// has none, else `init_control`); repeatable.
    #[arg(long = "init-image", value_name = "FILE")]
    pub init_images: Vec<PathBuf>,
    /// Denoising strength (img2img, control).
    #[arg(long)]
    pub denoise: Option<f64>,
    /// Any other request field, KEY=VALUE (VALUE is JSON, or else a string); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// URL that gets a multipart POST with the images when the task ends.
    #[arg(long)]
    pub callback_url: Option<String>,
    /// Idempotency key: sending the same key again returns the first answer.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Wait until every queued task has ended (exit status 5 if one failed).
    #[arg(long)]
    pub wait: bool,
    /// Save the images of the queued tasks into DIR when they end (implies --wait).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

/// `ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// List finished tasks (newest first) instead of the queue.
    #[arg(long)]
    pub history: bool,
    /// History filter: all, done, failed, interrupted or bookmarked (implies --history).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Search text (prompt, name, checkpoint).
    #[arg(long, short = 'q', value_name = "TEXT")]
    pub search: Option<String>,
    /// How many tasks.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// How many to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: i64,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Task id.
    pub id: String,
    /// Show the full stored request (images and page snapshot included) instead.
    #[arg(long)]
    pub request: bool,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Only these tasks; exit when all of them have ended (status 5 if one failed).
    pub ids: Vec<String>,
    /// Exit when the queue is empty (nothing pending or running).
    #[arg(long)]
    pub until_idle: bool,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// Subcommands without arguments.
#[derive(Args, Debug)]
pub struct Plain {
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// One task id.
#[derive(Args, Debug)]
pub struct IdArgs {
    /// Task id.
    pub id: String,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// Several task ids.
#[derive(Args, Debug)]
pub struct IdsArgs {
    /// Task ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `move`.
#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The pending task to move.
    pub id: String,
    /// `top`, `bottom`, or the id of the pending task it goes before.
    pub target: String,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `requeue`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["id", "failed"])))]
pub struct RequeueArgs {
    /// The finished task to copy.
    pub id: Option<String>,
    /// Requeue every failed task instead.
    #[arg(long)]
    pub failed: bool,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `bookmark`.
#[derive(Args, Debug)]
pub struct BookmarkArgs {
    /// Task ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Remove the bookmark instead.
    #[arg(long)]
    pub off: bool,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `results`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("dest").required(true).args(["out", "zip"])))]
pub struct ResultsArgs {
    /// The finished task.
    pub id: String,
    /// Save each image as stored (`<id>-<n>.png|jpg`) into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Save the images as one zip FILE.
    #[arg(long, value_name = "FILE")]
    pub zip: Option<PathBuf>,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `settings`.
#[derive(Args, Debug)]
pub struct SettingsArgs {
    /// Start the host with the queue paused.
    #[arg(long, value_name = "BOOL")]
    pub start_paused: Option<bool>,
    /// Delete finished, non-bookmarked tasks after N days (`never` keeps them).
    #[arg(long, value_name = "N|never")]
    pub retention_days: Option<String>,
    /// Put failed tasks back in the queue (up to --max-attempts runs).
    #[arg(long, value_name = "BOOL")]
    pub auto_requeue: Option<bool>,
    /// How many times a task may be started (1-100).
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Seconds before the first retry of a task whose request failed (doubles per try).
    #[arg(long, value_name = "SECONDS")]
    pub retry_backoff_s: Option<u32>,
    /// Items one import may hold (1-1000000); a larger import is refused whole.
    #[arg(long, value_name = "N")]
    pub import_max_items: Option<u32>,
    /// Seconds a claim on a shared (PostgreSQL) database stays this host's unrenewed
    /// (3-600).
    #[arg(long, value_name = "SECONDS")]
    pub lease_s: Option<u32>,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}

/// `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

/// `import`.
#[derive(Args, Debug)]
#[command(after_long_help = concat!("Exit status 3 when the host rejects the file or any item of it \
(the other items are imported; each rejection is printed).

", super::exit_help!()))]
pub struct ImportArgs {
    /// The export file (`-` = stdin).
    #[arg(value_name = "FILE|-")]
    pub file: String,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub conn: Conn,
}
