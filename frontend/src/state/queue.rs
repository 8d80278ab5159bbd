//! The queue/history model and how host events change it.

use super::ExtOptions;
pub use scheduler_api::HistoryFilter;
use scheduler_api::{
    Event, PreviewEvent, ProgressEvent, QueueEvent, QueueResponse, Task, TaskChange, TaskEvent,
    TaskStatus,
};

/// What must be re-fetched after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reload {
    /// `/queue`.
    pub queue: bool,
    /// `/history`.
    pub history: bool,
}

impl Reload {
    /// Nothing.
    pub const NONE: Reload = Reload {
        queue: false,
        history: false,
    };
    /// Both lists.
    pub const ALL: Reload = Reload {
        queue: true,
        history: true,
    };
    /// Merges two reload sets.
    pub fn or(self, o: Reload) -> Reload {
        Reload {
            queue: self.queue || o.queue,
            history: self.history || o.history,
        }
    }
}

/// Running and pending tasks plus live progress.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueModel {
    /// Running tasks (several backends may run at once).
    pub running: Vec<Task>,
    /// Pending tasks, in queue order.
    pub pending: Vec<Task>,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Why the host will not start tasks now, apart from the pause (`"disk full"`).
    pub hold_reason: Option<String>,
    /// Total pending + running as the host counts it.
    pub total: i64,
    /// Where the next page of pending tasks starts (keyset cursor), if there is one.
    pub next_cursor: Option<String>,
    /// Latest progress of a running task.
    pub progress: Option<ProgressEvent>,
    /// Latest preview of a running task.
    pub preview: Option<PreviewEvent>,
}

impl QueueModel {
    /// Replaces the lists with a `/queue` answer (keeps progress of a still-running task).
    pub fn set_queue(&mut self, r: QueueResponse) {
        let (running, pending): (Vec<Task>, Vec<Task>) = r
            .pending_tasks
            .into_iter()
            .partition(|t| t.status == TaskStatus::Running);
        self.running = running;
        self.pending = pending;
        self.paused = r.paused;
        self.hold_reason = r.hold_reason.clone();
        self.total = r.total_pending_tasks;
        self.next_cursor = r.next_cursor.clone();
        let keep = |id: &str| self.running.iter().any(|t| t.id == id);
        if self.progress.as_ref().is_some_and(|p| !keep(&p.task_id)) {
            self.progress = None;
        }
        if self.preview.as_ref().is_some_and(|p| !keep(&p.task_id)) {
            self.preview = None;
        }
    }

    /// Appends a further page of pending tasks (scrolling down a long queue).
    pub fn append_pending(&mut self, r: QueueResponse) {
        let known: std::collections::HashSet<String> =
            self.pending.iter().map(|t| t.id.clone()).collect();
        self.pending.extend(
            r.pending_tasks
                .into_iter()
                .filter(|t| t.status == TaskStatus::Pending && !known.contains(&t.id)),
        );
        self.total = r.total_pending_tasks;
        self.next_cursor = r.next_cursor;
    }

    /// Applies one host event; returns what must be re-fetched.
    pub fn apply(&mut self, ev: &Event) -> Reload {
        match ev {
            Event::Task(TaskEvent {
                task_id,
                status,
                change,
                ..
            }) => match change {
                TaskChange::Deleted => {
                    self.pending.retain(|t| &t.id != task_id);
                    Reload {
                        queue: *status == TaskStatus::Running,
                        history: status.is_finished(),
                    }
                }
                TaskChange::Finished => {
                    self.running.retain(|t| &t.id != task_id);
                    self.pending.retain(|t| &t.id != task_id);
                    if self
                        .progress
                        .as_ref()
                        .is_some_and(|p| &p.task_id == task_id)
                    {
                        self.progress = None;
                    }
                    if self.preview.as_ref().is_some_and(|p| &p.task_id == task_id) {
                        self.preview = None;
                    }
                    Reload::ALL
                }
                TaskChange::Started => {
                    if let Some(i) = self.pending.iter().position(|t| &t.id == task_id) {
                        let mut t = self.pending.remove(i);
                        t.status = TaskStatus::Running;
                        self.running.push(t);
                        Reload::NONE
                    } else {
                        Reload {
                            queue: true,
                            history: false,
                        }
                    }
                }
                TaskChange::Created | TaskChange::Moved => Reload {
                    queue: !status.is_finished(),
                    history: status.is_finished(),
                },
                TaskChange::Updated => Reload {
                    queue: !status.is_finished(),
                    history: status.is_finished(),
                },
            },
            Event::Progress(p) => {
                self.progress = Some(p.clone());
                Reload::NONE
            }
            Event::Preview(p) => {
                self.preview = Some(p.clone());
                Reload::NONE
            }
            Event::Queue(QueueEvent {
                paused,
                pending,
                running,
                hold_reason,
            }) => {
                self.paused = *paused;
                self.hold_reason = hold_reason.clone();
                self.total = pending + running;
                Reload::NONE
            }
            Event::Reset(_) => Reload::ALL,
        }
    }

    /// Moves `id` locally (optimistic update before the host answers).
    pub fn apply_move(&mut self, id: &str, target: &MoveTarget) {
        let Some(from) = self.pending.iter().position(|t| t.id == id) else {
            return;
        };
        let t = self.pending.remove(from);
        let at = match target {
            MoveTarget::Top => 0,
            MoveTarget::Bottom => self.pending.len(),
            MoveTarget::Before(over) => self
                .pending
                .iter()
                .position(|x| &x.id == over)
                .unwrap_or(self.pending.len()),
        };
        self.pending.insert(at, t);
    }
}

pub use scheduler_api::MoveTarget;

/// A drop of `dragged` at gap `gap` (0 = above the first row, len = below the last) of the
/// pending list `ids`; `None` when it does not change the order.
pub fn drop_target(ids: &[&str], dragged: &str, gap: usize) -> Option<MoveTarget> {
    let from = ids.iter().position(|i| *i == dragged)?;
    let gap = gap.min(ids.len());
    if gap == from || gap == from + 1 {
        return None;
    }
    if gap == 0 {
        Some(MoveTarget::Top)
    } else if gap == ids.len() {
        Some(MoveTarget::Bottom)
    } else {
        Some(MoveTarget::Before(ids[gap].to_owned()))
    }
}

/// The label a history filter shows.
pub fn filter_label(f: HistoryFilter) -> &'static str {
    match f {
        HistoryFilter::All => "All",
        HistoryFilter::Bookmarked => "Bookmarked",
        HistoryFilter::Status(TaskStatus::Done) => "Done",
        HistoryFilter::Status(TaskStatus::Failed) => "Failed",
        HistoryFilter::Status(TaskStatus::Interrupted) => "Interrupted",
        HistoryFilter::Status(_) => "Other",
    }
}

/// What a row leads with: the name, else the prompt's first line, else the id.
pub fn task_label(t: &Task) -> &str {
    t.name
        .as_deref()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            t.params
                .get("prompt")
                .and_then(|v| v.as_str())
                .and_then(|p| p.trim().lines().next())
                .map(str::trim)
                .filter(|p| !p.is_empty())
        })
        .unwrap_or(&t.id)
}

/// The prompt, when the row's label is the task's name (shown under it).
pub fn task_prompt(t: &Task) -> Option<&str> {
    t.name.as_deref().filter(|n| !n.is_empty())?;
    t.params
        .get("prompt")
        .and_then(|v| v.as_str())
        .filter(|p| !p.trim().is_empty())
}

/// `14:05` — a clock time of epoch milliseconds, from the local `(hours, minutes)`.
pub fn fmt_hm(h: u32, m: u32) -> String {
    format!("{h:02}:{m:02}")
}

/// A short text of a task's parameters for the list.
pub fn task_summary(t: &Task) -> String {
    let p = &t.params;
    let g = |k: &str| p.get(k).map(|v| v.to_string().trim_matches('"').to_owned());
    let prompt: String = p
        .get("prompt")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect();
    format!(
        "{prompt} — {} · {} · {} steps · {}×{}",
        g("checkpoint")
            .filter(|c| c != "null")
            .unwrap_or_else(|| "System".into()),
        g("sampler_name").unwrap_or_else(|| "Default".into()),
        g("steps").unwrap_or_else(|| "?".into()),
        g("width").unwrap_or_else(|| "?".into()),
        g("height").unwrap_or_else(|| "?".into()),
    )
}

/// A percentage of a 0..1 progress as `42` (whole) and `42.5` (one decimal), written with
/// integer arithmetic (float formatting would add kilobytes to the wasm).
pub fn percent(progress: f64) -> (String, String) {
    let tenths = (progress * 1000.0).clamp(0.0, 1000.0).round() as u32;
    (
        ((tenths + 5) / 10).to_string(),
        format!("{}.{}", tenths / 10, tenths % 10),
    )
}

/// Formats an ETA in seconds as `1m 05s` / `42s`.
pub fn fmt_eta(eta: Option<f64>) -> String {
    match eta {
        Some(s) if s.is_finite() && s >= 0.0 => {
            let s = s.round() as u64;
            if s >= 60 {
                format!("{}m {:02}s", s / 60, s % 60)
            } else {
                format!("{s}s")
            }
        }
        _ => "–".into(),
    }
}

/// The next `(task, image)` from `(t, i)` one step forward or back, over tasks with
/// `counts[t]` images each (a task without images still takes one step).
pub fn viewer_step(counts: &[u32], (t, i): (usize, usize), forward: bool) -> (usize, usize) {
    let n = |t: usize| counts.get(t).copied().unwrap_or(0).max(1) as usize;
    if forward {
        if i + 1 < n(t) {
            (t, i + 1)
        } else if t + 1 < counts.len() {
            (t + 1, 0)
        } else {
            (t, i)
        }
    } else if i > 0 {
        (t, i - 1)
    } else if t > 0 {
        (t - 1, n(t - 1) - 1)
    } else {
        (t, i)
    }
}

/// A desktop notification decided from an event: `(title, message)`.
pub fn notification_for(
    ev: &Event,
    opts: &ExtOptions,
    prev_queue: Option<&QueueEvent>,
) -> Option<(String, String)> {
    match ev {
        Event::Task(TaskEvent {
            task_id,
            status,
            change: TaskChange::Finished,
            name,
        }) => {
            let label = name.clone().unwrap_or_else(|| task_id.clone());
            match status {
                TaskStatus::Failed if opts.notify_failed => Some(("Task failed".into(), label)),
                TaskStatus::Done if opts.notify_done => Some(("Task done".into(), label)),
                _ => None,
            }
        }
        // Every hold is notified once, when it starts (whatever the options say).
        Event::Queue(QueueEvent {
            hold_reason: Some(reason),
            ..
        }) if prev_queue.is_none_or(|p| p.hold_reason.as_ref() != Some(reason)) => Some((
            format!("Queue on hold: {reason}"),
            "The host will not start tasks until this is resolved; it resumes by itself.".into(),
        )),
        Event::Queue(q) if opts.notify_queue_finished => {
            let was_busy = prev_queue.is_some_and(|p| p.pending + p.running > 0);
            (was_busy && q.pending == 0 && q.running == 0)
                .then(|| ("Queue finished".into(), "Every queued task has run.".into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
