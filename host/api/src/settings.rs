//! Host settings.

use serde::{Deserialize, Serialize};

/// Host settings (`GET /settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settings {
    /// Start the host with the queue paused.
    pub start_paused: bool,
    /// Delete finished, non-bookmarked tasks older than this; null keeps them forever.
    pub history_retention_days: Option<u32>,
    /// Put failed tasks back in the queue (bounded by `max_attempts`).
    pub auto_requeue_failed: bool,
    /// How many times a task may be started before it stays failed.
    pub max_attempts: u32,
    /// Seconds before the first retry of a task whose generation request failed after it
    /// was sent while its backend was up (dropped answer, reset, gateway 502/503/504,
    /// garbage); the delay doubles with each attempt, up to an hour. Default 10.
    #[serde(default = "default_retry_backoff_s")]
    pub retry_backoff_s: u32,
    /// Seconds a generation request may take to end after the host asked SD.Next to stop
    /// it (delete, stall, timeout); then the host abandons the request, ends the task and
    /// holds the backend as `stalled` until it is idle. Default 5.
    #[serde(default = "default_interrupt_grace_s")]
    pub interrupt_grace_s: u32,
    /// Seconds without any change in a running task's progress (`progress`,
    /// `sampling_step`, `job`, `job_no` of `/sdapi/v1/progress`) before the stall watchdog
    /// interrupts it and fails it with "backend stalled". Default 600.
    #[serde(default = "default_stall_timeout_s")]
    pub stall_timeout_s: u32,
    /// Seconds between two checks of a stalled backend's `/sdapi/v1/progress`. Default 60.
    #[serde(default = "default_stall_recheck_s")]
    pub stall_recheck_s: u32,
    /// Seconds a task may run in all before it is interrupted and failed; null (default):
    /// no limit.
    #[serde(default)]
    pub task_timeout_s: Option<u32>,
    /// MiB of a generation answer the host reads at most; a larger answer fails the task
    /// without being held. Default 512.
    #[serde(default = "default_max_answer_mib")]
    pub max_answer_mib: u32,
    /// Checkpoint-aware order: a backend takes the first pending task whose checkpoint (and
    /// VAE) it has loaded, within the starvation bound below; off = strict FIFO. Default on.
    #[serde(default = "default_group_by_checkpoint")]
    pub group_by_checkpoint: bool,
    /// A task overtaken this many times by later tasks goes first. Default 32.
    #[serde(default = "default_max_overtakes")]
    pub max_overtakes: u32,
    /// A task first overtaken this many minutes ago goes first. Default 30.
    #[serde(default = "default_max_overtaken_minutes")]
    pub max_overtaken_minutes: u32,
    /// Items one `POST /import` may hold; past it the import is refused (413) and nothing
    /// is imported. Default 10000.
    #[serde(default = "default_import_max_items")]
    pub import_max_items: u32,
    /// Seconds a claim on a shared (PostgreSQL) database stays this host's without being
    /// renewed; the host renews its claims every third of it, and a claim left unrenewed
    /// (its host gone) is recovered by another host after it. Unused on SQLite. Default 15.
    #[serde(default = "default_lease_s")]
    pub lease_s: u32,
}

fn default_lease_s() -> u32 {
    Settings::default().lease_s
}

fn default_import_max_items() -> u32 {
    Settings::default().import_max_items
}

fn default_group_by_checkpoint() -> bool {
    Settings::default().group_by_checkpoint
}

fn default_max_overtakes() -> u32 {
    Settings::default().max_overtakes
}

fn default_max_overtaken_minutes() -> u32 {
    Settings::default().max_overtaken_minutes
}

fn default_max_answer_mib() -> u32 {
    Settings::default().max_answer_mib
}

fn default_retry_backoff_s() -> u32 {
    Settings::default().retry_backoff_s
}

fn default_interrupt_grace_s() -> u32 {
    Settings::default().interrupt_grace_s
}

fn default_stall_timeout_s() -> u32 {
    Settings::default().stall_timeout_s
}

fn default_stall_recheck_s() -> u32 {
    Settings::default().stall_recheck_s
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            start_paused: false,
            history_retention_days: Some(30),
            auto_requeue_failed: false,
            max_attempts: 3,
            retry_backoff_s: 10,
            interrupt_grace_s: 5,
            stall_timeout_s: 600,
            stall_recheck_s: 60,
            task_timeout_s: None,
            max_answer_mib: 512,
            group_by_checkpoint: true,
            max_overtakes: 32,
            max_overtaken_minutes: 30,
            import_max_items: 10_000,
            lease_s: 15,
        }
    }
}

/// `PUT /settings`: only the fields present change. `history_retention_days: null` means forever.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingsPatch {
    /// See [`Settings::start_paused`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_paused: Option<bool>,
    /// See [`Settings::history_retention_days`]; `Some(None)` = keep forever.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>))]
    pub history_retention_days: Option<Option<u32>>,
    /// See [`Settings::auto_requeue_failed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_requeue_failed: Option<bool>,
    /// See [`Settings::max_attempts`] (1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// See [`Settings::retry_backoff_s`] (1..=3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff_s: Option<u32>,
    /// See [`Settings::interrupt_grace_s`] (1..=300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_grace_s: Option<u32>,
    /// See [`Settings::stall_timeout_s`] (1..=86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_timeout_s: Option<u32>,
    /// See [`Settings::stall_recheck_s`] (1..=3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_recheck_s: Option<u32>,
    /// See [`Settings::task_timeout_s`] (1..=604800; null = no limit).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>))]
    pub task_timeout_s: Option<Option<u32>>,
    /// See [`Settings::max_answer_mib`] (1..=4096).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_answer_mib: Option<u32>,
    /// See [`Settings::group_by_checkpoint`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by_checkpoint: Option<bool>,
    /// See [`Settings::max_overtakes`] (0..=10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overtakes: Option<u32>,
    /// See [`Settings::max_overtaken_minutes`] (0..=10080).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overtaken_minutes: Option<u32>,
    /// See [`Settings::import_max_items`] (1..=1000000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_max_items: Option<u32>,
    /// See [`Settings::lease_s`] (3..=600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<u32>,
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<u32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
        Option::<u32>::deserialize(d).map(Some)
    }
}
