//! Printing: JSON for scripts, short text for people; errors on stderr (and as JSON on
//! stdout with `--json`).

use scheduler_api::client::ClientError;
use scheduler_api::{Event, Settings, Task, TaskResult, WireTime};
use serde::Serialize;
use serde_json::json;

use super::CliError;

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("agent-scheduler: cannot print JSON: {e}"),
    }
}

/// Prints an error: text on stderr; with `json`, also `{success: false, status, message,
/// code}` on stdout.
pub fn error(e: &CliError, json: bool) {
    match e {
        CliError::Client(ClientError::Refused { status, body }) => {
            let code = body
                .code
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(str::to_owned));
            eprintln!(
                "agent-scheduler: the host refused the request ({status}{}): {}",
                code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
                body.message
            );
            if json {
                let mut v = json!({
                    "success": false, "status": status, "message": body.message, "code": body.code,
                });
                if let Some(p) = &body.path {
                    v["path"] = json!(p);
                }
                print_json(&v);
            }
        }
        other => {
            eprintln!("agent-scheduler: {other}");
            if json {
                let code = if let CliError::Client(c) = other
                    && c.is_unreachable()
                {
                    "unreachable"
                } else {
                    "client_error"
                };
                print_json(&json!({
                    "success": false, "status": null, "message": other.to_string(), "code": code,
                }));
            }
        }
    }
}

fn short(s: &str, n: usize) -> String {
    let s = s.replace(['\n', '\r', '\t'], " ");
    if s.chars().count() <= n {
        s
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The checkpoint a task names (`-` = whatever is loaded).
fn checkpoint(t: &Task) -> String {
    t.params
        .get("checkpoint")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .unwrap_or("-")
        .to_owned()
}

/// `name`, else the prompt.
fn label(t: &Task) -> String {
    t.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| {
        t.params
            .get("prompt")
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_owned()
    })
}

/// One table of tasks.
pub fn task_table(tasks: &[Task]) {
    println!(
        "{:<38} {:<11} {:<8} {:<24} NAME / PROMPT",
        "ID", "STATUS", "TYPE", "CHECKPOINT"
    );
    for t in tasks {
        println!(
            "{:<38} {:<11} {:<8} {:<24} {}",
            t.id,
            format!(
                "{}{}",
                t.status.as_str(),
                if t.bookmarked { "*" } else { "" }
            ),
            t.task_type.as_str(),
            short(&checkpoint(t), 24),
            short(&label(t), 60)
        );
    }
}

fn time(t: &WireTime) -> String {
    match t {
        WireTime::Iso(s) => s.clone(),
        WireTime::Epoch(ms) => {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(*ms) * 1_000_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| ms.to_string())
        }
    }
}

/// `show` as text.
pub fn task_details(t: &Task) {
    let line = |k: &str, v: String| println!("{k:<12} {v}");
    line("id", t.id.clone());
    line("name", t.name.clone().unwrap_or_else(|| "-".into()));
    line("type", t.task_type.as_str().into());
    line(
        "status",
        format!(
            "{}{}",
            t.status.as_str(),
            if t.bookmarked { " (bookmarked)" } else { "" }
        ),
    );
    if let Some(p) = t.position {
        line("position", p.to_string());
    }
    line("checkpoint", checkpoint(t));
    line("created", time(&t.created_at));
    line("updated", time(&t.updated_at));
    line("attempts", t.attempts.to_string());
    if let Some(b) = &t.backend {
        line("backend", b.clone());
    }
    line("images", t.image_count.to_string());
    if let Some(e) = &t.error {
        line("error", e.clone());
    }
    if let Some(r) = t
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<TaskResult>(r).ok())
    {
        for (i, info) in r.infotexts.iter().enumerate() {
            line(&format!("infotext {i}"), short(info, 200));
        }
    }
    println!(
        "params\n{}",
        serde_json::to_string_pretty(&t.params).unwrap_or_default()
    );
}

/// `settings` as text.
pub fn settings(s: &Settings) {
    println!("start_paused            {}", s.start_paused);
    println!(
        "history_retention_days  {}",
        s.history_retention_days
            .map_or("never".to_owned(), |d| d.to_string())
    );
    println!("auto_requeue_failed     {}", s.auto_requeue_failed);
    println!("max_attempts            {}", s.max_attempts);
    println!("retry_backoff_s         {}", s.retry_backoff_s);
    println!("interrupt_grace_s       {}", s.interrupt_grace_s);
    println!("stall_timeout_s         {}", s.stall_timeout_s);
    println!("stall_recheck_s         {}", s.stall_recheck_s);
    println!(
        "task_timeout_s          {}",
        s.task_timeout_s
            .map_or("none".to_owned(), |t| t.to_string())
    );
    println!("max_answer_mib          {}", s.max_answer_mib);
    println!("import_max_items        {}", s.import_max_items);
}

/// One event of `watch` as a text line.
pub fn event_line(e: &Event) -> String {
    match e {
        Event::Task(t) => format!(
            "task {} {} ({}){}",
            t.task_id,
            serde_json::to_value(t.change)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            t.status.as_str(),
            t.name
                .as_deref()
                .map(|n| format!(" {}", short(n, 60)))
                .unwrap_or_default()
        ),
        Event::Progress(p) => format!(
            "progress {} {:.0}% step {}/{}{}",
            p.task_id,
            (p.progress * 100.0).clamp(0.0, 100.0),
            p.step,
            p.steps,
            p.eta_s.map(|s| format!(" eta {s:.0}s")).unwrap_or_default()
        ),
        Event::Preview(p) => format!("preview {}", p.task_id),
        Event::Queue(q) => format!(
            "queue {} pending, {} running{}",
            q.pending,
            q.running,
            if q.paused { ", paused" } else { "" }
        ),
        Event::Reset(_) => "reset (events were missed; lists reloaded)".into(),
    }
}
