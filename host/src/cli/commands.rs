//! One function per subcommand.

use std::path::{Path, PathBuf};

use scheduler_api::client::{Client, ClientError, StreamItem};
use scheduler_api::{
    Event, HistoryFilter, ImportRequest, ListQuery, MoveTarget, SettingsPatch, Task, TaskResult,
};
use serde::Serialize;
use serde_json::json;

use super::args::*;
use super::wait::{self, Ended};
use super::{CliError, EXIT_OK, EXIT_REFUSED, EXIT_TASK_FAILED, client, enqueue, output};

/// Runs one subcommand; `Ok` carries the exit status.
pub async fn run(cmd: ClientCommand) -> Result<i32, CliError> {
    match cmd {
        ClientCommand::Enqueue(a) => enqueue_cmd(*a).await,
        ClientCommand::Ls(a) => ls(a).await,
        ClientCommand::Show(a) => show(a).await,
        ClientCommand::Watch(a) => watch(a).await,
        ClientCommand::Pause(a) => {
            let m = client(&a.conn).pause().await?;
            message(a.out, &m);
            Ok(EXIT_OK)
        }
        ClientCommand::Resume(a) => {
            let m = client(&a.conn).resume().await?;
            message(a.out, &m);
            Ok(EXIT_OK)
        }
        ClientCommand::Run(a) => {
            let m = client(&a.conn).run_task(&a.id).await?;
            message(a.out, &m);
            Ok(EXIT_OK)
        }
        ClientCommand::Move(a) => {
            let target = MoveTarget::parse(&a.target);
            let m = client(&a.conn).move_task(&a.id, &target).await?;
            message(a.out, &m);
            Ok(EXIT_OK)
        }
        ClientCommand::Rm(a) => rm(a).await,
        ClientCommand::Requeue(a) => requeue(a).await,
        ClientCommand::Bookmark(a) => bookmark(a).await,
        ClientCommand::Results(a) => results(a).await,
        ClientCommand::Settings(a) => settings(a).await,
        ClientCommand::Export(a) => export(a).await,
        ClientCommand::Import(a) => import(a).await,
    }
}

fn message(out: Output, m: &scheduler_api::MessageResponse) {
    if out.json {
        output::print_json(m);
    } else {
        println!("{}", m.message);
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> CliError {
    CliError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// One image file written by `--out`.
#[derive(Debug, Clone, Serialize)]
struct Saved {
    task_id: String,
    index: usize,
    path: PathBuf,
    content_type: String,
    infotext: Option<String>,
}

/// Saves every stored image of `t` into `dir` as `<id>-<n>.<ext>`.
async fn save_images(c: &Client, t: &Task, dir: &Path) -> Result<Vec<Saved>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let infotexts = t
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<TaskResult>(r).ok())
        .map(|r| r.infotexts)
        .unwrap_or_default();
    let mut saved = Vec::new();
    for index in 0..t.image_count as usize {
        let img = c.image(&t.id, index).await?;
        let path = dir.join(format!("{}-{index}.{}", t.id, img.extension()));
        std::fs::write(&path, &img.bytes).map_err(|e| io("write", &path, e))?;
        saved.push(Saved {
            task_id: t.id.clone(),
            index,
            path,
            content_type: img.content_type,
            infotext: infotexts.get(index).cloned(),
        });
    }
    Ok(saved)
}

/// The JSON of `enqueue --wait`.
#[derive(Serialize)]
struct Waited {
    task_id: String,
    task_ids: Vec<String>,
    /// Every task as it ended (deleted ones are missing).
    tasks: Vec<Task>,
    /// Ids of tasks deleted before they ended.
    deleted: Vec<String>,
    /// Image files saved (`--out`).
    files: Vec<Saved>,
}

async fn enqueue_cmd(a: EnqueueArgs) -> Result<i32, CliError> {
    let req = enqueue::build_request(&a)?;
    let c = client(&a.conn);
    let json_out = a.json.is_some();
    let wait = a.wait || a.out.is_some();
    // The stream is open before the tasks exist, so no ending can be missed.
    let mut stream = if wait {
        Some(wait::open(&c).await?)
    } else {
        None
    };
    let answer = match &a.idempotency_key {
        Some(k) => c.enqueue_idempotent(a.kind, &req, k).await?,
        None => c.enqueue(a.kind, &req).await?,
    };
    let Some(stream) = stream.as_mut() else {
        if json_out {
            output::print_json(&answer);
        } else {
            for id in &answer.task_ids {
                println!("{id}");
            }
        }
        return Ok(EXIT_OK);
    };
    if !json_out {
        eprintln!(
            "queued {} task(s); waiting for them to end…",
            answer.task_ids.len()
        );
    }
    let ended = wait::until_ended(&c, stream, &answer.task_ids, |item| {
        if !json_out && let StreamItem::Lost(e) = item {
            eprintln!("event stream lost ({e}); reconnecting…");
        }
    })
    .await?;
    let mut tasks = Vec::new();
    let mut deleted = Vec::new();
    let mut files = Vec::new();
    let mut all_done = true;
    for id in &answer.task_ids {
        all_done &= ended.get(id).is_some_and(Ended::is_done);
        match ended.get(id) {
            Some(Ended::Finished(t)) => {
                if let Some(dir) = &a.out {
                    files.extend(save_images(&c, t, dir).await?);
                }
                if !json_out {
                    println!(
                        "{} {}{}",
                        t.id,
                        t.status.as_str(),
                        t.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    );
                }
                tasks.push((**t).clone());
            }
            _ => {
                if !json_out {
                    println!("{id} deleted");
                }
                deleted.push(id.clone());
            }
        }
    }
    if json_out {
        output::print_json(&Waited {
            task_id: answer.task_id,
            task_ids: answer.task_ids,
            tasks,
            deleted,
            files,
        });
    } else {
        for f in &files {
            println!("{}", f.path.display());
        }
    }
    Ok(if all_done { EXIT_OK } else { EXIT_TASK_FAILED })
}

async fn ls(a: LsArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    let q = ListQuery {
        limit: Some(a.limit),
        offset: Some(a.offset),
        q: a.search.clone(),
        ..ListQuery::default()
    };
    if a.history || a.status.is_some() {
        let s = a.status.as_deref().unwrap_or("all");
        let filter = HistoryFilter::parse(s).ok_or_else(|| {
            CliError::Usage(format!(
                "--status {s}: expected all, done, failed, interrupted or bookmarked"
            ))
        })?;
        let h = c.history(filter, &q).await?;
        if a.out.json {
            output::print_json(&h);
        } else {
            output::task_table(&h.tasks);
            println!("{} of {} finished task(s)", h.tasks.len(), h.total);
        }
    } else {
        let r = c.queue(&q).await?;
        if a.out.json {
            output::print_json(&r);
        } else {
            output::task_table(&r.pending_tasks);
            println!(
                "{} of {} running or pending task(s){}",
                r.pending_tasks.len(),
                r.total_pending_tasks,
                if r.paused {
                    "; the queue is paused"
                } else {
                    ""
                }
            );
        }
    }
    Ok(EXIT_OK)
}

async fn show(a: ShowArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    if a.request {
        // Always JSON: it is the request as stored.
        output::print_json(&c.task_request(&a.id).await?);
    } else {
        let t = c.task(&a.id).await?;
        if a.out.json {
            output::print_json(&t);
        } else {
            output::task_details(&t);
        }
    }
    Ok(EXIT_OK)
}

async fn watch(a: WatchArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    let json_out = a.out.json;
    let print = |item: &StreamItem| match item {
        StreamItem::Event { id, event } => {
            if json_out {
                // One JSON object per line: {"id", "event", "data"}.
                let mut v = serde_json::to_value(event).unwrap_or_default();
                v["id"] = json!(id);
                println!("{v}");
            } else {
                println!("{}", output::event_line(event));
            }
        }
        StreamItem::Lost(e) => eprintln!("event stream lost ({e}); reconnecting…"),
        StreamItem::Opened => eprintln!("watching {} (reconnected)", c.base()),
        StreamItem::Heartbeat => {}
    };
    let mut stream = wait::open(&c).await?;
    eprintln!("watching {}", c.base());
    if !a.ids.is_empty() {
        let ended = wait::until_ended(&c, &mut stream, &a.ids, print).await?;
        let ok = a
            .ids
            .iter()
            .all(|id| ended.get(id).is_some_and(Ended::is_done));
        return Ok(if ok { EXIT_OK } else { EXIT_TASK_FAILED });
    }
    let idle = |r: &scheduler_api::QueueResponse| r.total_pending_tasks == 0;
    if a.until_idle && idle(&c.queue(&ListQuery::default()).await?) {
        return Ok(EXIT_OK);
    }
    while let Some(item) = stream.next().await {
        print(&item);
        if !a.until_idle {
            continue;
        }
        let now_idle = match &item {
            StreamItem::Event {
                event: Event::Queue(q),
                ..
            } => q.pending == 0 && q.running == 0,
            // Reconnected, or events were missed: ask the host.
            StreamItem::Opened
            | StreamItem::Event {
                event: Event::Reset(_),
                ..
            } => idle(&c.queue(&ListQuery::default()).await?),
            _ => false,
        };
        if now_idle {
            return Ok(EXIT_OK);
        }
    }
    Ok(EXIT_OK)
}

/// Runs `f` for every id; refusals are printed and make the exit status 3, an unreachable
/// host stops at once.
async fn each<F, Fut>(ids: &[String], out: Output, f: F) -> Result<i32, CliError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<scheduler_api::MessageResponse, ClientError>>,
{
    let mut code = EXIT_OK;
    let mut answers = Vec::new();
    for id in ids {
        match f(id.clone()).await {
            Ok(m) => {
                if !out.json {
                    println!("{id}: {}", m.message);
                }
                answers.push(json!({"id": id, "success": m.success, "message": m.message}));
            }
            Err(ClientError::Refused { status, body }) => {
                eprintln!(
                    "agent-scheduler: {id}: the host refused the request ({status}): {}",
                    body.message
                );
                answers.push(json!({"id": id, "success": false, "status": status,
                    "message": body.message, "code": body.code}));
                code = EXIT_REFUSED;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if out.json {
        output::print_json(&answers);
    }
    Ok(code)
}

async fn rm(a: IdsArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    each(&a.ids, a.out, |id| {
        let c = c.clone();
        async move { c.delete_task(&id).await }
    })
    .await
}

async fn bookmark(a: BookmarkArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    let on = !a.off;
    each(&a.ids, a.out, |id| {
        let c = c.clone();
        async move { c.bookmark(&id, on).await }
    })
    .await
}

async fn requeue(a: RequeueArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    match a.id {
        Some(id) => {
            let r = c.requeue(&id).await?;
            if a.out.json {
                output::print_json(&r);
            } else {
                println!("{}", r.task_id);
            }
            Ok(EXIT_OK)
        }
        None => {
            let m = c.requeue_failed().await?;
            message(a.out, &m);
            Ok(EXIT_OK)
        }
    }
}

async fn results(a: ResultsArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    if let Some(zip) = &a.zip {
        let bytes = c.results_zip(&a.id).await?;
        std::fs::write(zip, &bytes).map_err(|e| io("write", zip, e))?;
        if a.output.json {
            output::print_json(&json!({"task_id": a.id, "zip": zip, "bytes": bytes.len()}));
        } else {
            println!("{}", zip.display());
        }
        return Ok(EXIT_OK);
    }
    let dir = a.out.clone().unwrap_or_default();
    let t = c.task(&a.id).await?;
    if !t.status.is_finished() {
        // The host's own answer (409) for the results of an unfinished task.
        c.results(&a.id).await?;
    }
    let saved = save_images(&c, &t, &dir).await?;
    if a.output.json {
        output::print_json(&saved);
    } else {
        for s in &saved {
            println!("{}", s.path.display());
        }
    }
    Ok(EXIT_OK)
}

async fn settings(a: SettingsArgs) -> Result<i32, CliError> {
    let c = client(&a.conn);
    let retention = match a.retention_days.as_deref() {
        None => None,
        Some("never") => Some(None),
        Some(n) => Some(Some(n.parse::<u32>().map_err(|_| {
            CliError::Usage(format!(
                "--retention-days {n}: expected a number of days or `never`"
            ))
        })?)),
    };
    let patch = SettingsPatch {
        start_paused: a.start_paused,
        history_retention_days: retention,
        auto_requeue_failed: a.auto_requeue,
        max_attempts: a.max_attempts,
        retry_backoff_s: a.retry_backoff_s,
        import_max_items: a.import_max_items,
        lease_s: a.lease_s,
        ..SettingsPatch::default()
    };
    let s = if patch == SettingsPatch::default() {
        c.settings().await?
    } else {
        c.update_settings(&patch).await?
    };
    if a.out.json {
        output::print_json(&s);
    } else {
        output::settings(&s);
    }
    Ok(EXIT_OK)
}

async fn export(a: ExportArgs) -> Result<i32, CliError> {
    const PAGE: i64 = 1000;
    let c = client(&a.conn);
    let mut items = Vec::new();
    loop {
        let page = c.export(Some(PAGE), Some(items.len() as i64)).await?;
        let n = page.len() as i64;
        items.extend(page);
        if n < PAGE {
            break;
        }
    }
    let text = serde_json::to_string_pretty(&items)
        .map_err(|e| CliError::Io(format!("cannot encode the export: {e}")))?;
    match &a.out {
        Some(path) => {
            std::fs::write(path, text + "\n").map_err(|e| io("write", path, e))?;
            eprintln!("exported {} task(s) to {}", items.len(), path.display());
        }
        None => println!("{text}"),
    }
    Ok(EXIT_OK)
}

async fn import(a: ImportArgs) -> Result<i32, CliError> {
    let content = enqueue::read_input(&a.file)?;
    let r = client(&a.conn).import(&ImportRequest { content }).await?;
    if a.out.json {
        output::print_json(&r);
    } else {
        for id in &r.imported {
            println!("{id}");
        }
        eprintln!("{}", r.message);
    }
    for rej in &r.rejected {
        eprintln!(
            "agent-scheduler: item {}{} rejected: {}",
            rej.index,
            rej.id
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default(),
            rej.reason
        );
    }
    Ok(if r.rejected.is_empty() {
        EXIT_OK
    } else {
        EXIT_REFUSED
    })
}
