//! The command line (`agent-scheduler enqueue|ls|show|watch|…`): the REAL binary's
//! subcommands (a process each) against the host in this process driving the fake SD.Next,
//! with exact exit statuses (0 ok, 2 usage, 3 refused, 4 unreachable, 5 a task ended failed).

use std::process::Stdio;

use fake_sdnext::{CountOrBool, FakeConfigPatch};
use scheduler_api::client::Client;
use scheduler_api::{
    EnqueueResponse, ExportItem, HistoryResponse, ImportResponse, QueueResponse, Settings,
    StoredRequest, Task, TaskStatus, TaskType,
};
use scheduler_tests::harness::{host_binary, wait_for};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::host_support::*;

/// What a run of the binary printed, and its exit status.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the expected JSON ({e}): {self:?}"))
    }
}

/// Runs `agent-scheduler ARGS` with only the `AGENT_SCHEDULER_*` variables of `env`.
async fn cli_env(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut cmd = tokio::process::Command::new(host_binary());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AGENT_SCHEDULER_") {
            cmd.env_remove(&k);
        }
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start agent-scheduler");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let out = tokio::time::timeout(LONG, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("agent-scheduler {args:?} ended within {LONG:?}"))
        .expect("wait for agent-scheduler");
    Run {
        code: out.status.code().expect("exit status"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `agent-scheduler ARGS --url HOST`.
async fn cli(url: &str, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--url", url]);
    cli_env(&all, &[], None).await
}

fn assert_code(r: &Run, code: i32) {
    assert_eq!(r.code, code, "exit status of {r:?}");
}

async fn paused_ab() -> Stack {
    Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "b"])
            .loaded("a"),
        &["--start-paused"],
    )
    .await
}

async fn queued(c: &Client, prompt: &str) -> String {
    let mut r = scheduler_api::EnqueueRequest::default();
    for (k, v) in [
        ("prompt", json!(prompt)),
        ("steps", json!(3)),
        ("width", json!(64)),
        ("height", json!(64)),
    ] {
        r.params.insert(k.into(), v);
    }
    c.enqueue(TaskType::Txt2img, &r).await.unwrap().task_id
}

/// Writes the image of a `data:image/png;base64,` URL to `path`.
fn write_png(path: &std::path::Path, data_url: &str) {
    use base64::Engine;
    let b64 = data_url.strip_prefix("data:image/png;base64,").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    std::fs::write(path, bytes).unwrap();
}

async fn wait_status(c: &Client, id: &str, status: TaskStatus) {
    wait_for(&format!("task {id} {}", status.as_str()), LONG, || async {
        c.task(id).await.is_ok_and(|t| t.status == status)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_with_flags_waits_and_saves_the_images() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let url = s.url.clone();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("shots");
    let r = cli(
        &url,
        &[
            "enqueue",
            "txt2img",
            "--prompt",
            "a red fox",
            "--negative",
            "blurry",
            "--steps",
            "3",
            "--cfg",
            "6.5",
            "--seed",
            "-1",
            "--size",
            "64x96",
            "--sampler",
            "Euler a",
            "--name",
            "fox",
            "--batch",
            "2",
            "--count",
            "1",
            "--out",
            dir.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_code(&r, 0);
    let v: Value = r.json();
    let id = v["task_id"].as_str().unwrap().to_owned();
    assert_eq!(v["tasks"][0]["status"], "done");
    assert_eq!(v["files"].as_array().map(Vec::len), Some(2), "{v}");
    let first = dir.join(format!("{id}-0.jpg"));
    assert_eq!(v["files"][0]["path"], json!(first));
    assert_eq!(&std::fs::read(&first).unwrap()[..2], &[0xFF, 0xD8]);
    assert!(dir.join(format!("{id}-1.jpg")).is_file());
    let stored = s.client().clone().task_request(&id).await.unwrap();
    let want = json!({"prompt": "a red fox", "negative_prompt": "blurry", "steps": 3,
        "cfg_scale": 6.5, "seed": -1, "width": 64, "height": 96, "sampler_name": "Euler a",
        "batch_size": 2, "n_iter": 1});
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&stored.request[k], v, "field {k}: {:?}", stored.request);
    }
    assert_eq!(stored.name.as_deref(), Some("fox"));

    // Text output: the ids, then one line per task and the files.
    let r = cli(
        &url,
        &[
            "enqueue", "txt2img", "--prompt", "quiet", "--steps", "2", "--size", "64x64",
        ],
    )
    .await;
    assert_code(&r, 0);
    let id = r.stdout.trim().to_owned();
    assert_eq!(
        s.client().clone().task(&id).await.unwrap().params["prompt"],
        "quiet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_reads_json_from_a_file_or_stdin_and_fans_out_checkpoints() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = paused_ab().await;
    let url = s.url.clone();
    let api = s.client().clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("req.json");
    std::fs::write(
        &file,
        r#"{"prompt": "from a file", "steps": 4, "name": "file", "checkpoint": "a"}"#,
    )
    .unwrap();
    let r = cli(
        &url,
        &[
            "enqueue",
            "txt2img",
            "--json",
            file.to_str().unwrap(),
            "--checkpoint",
            "*",
            "--steps",
            "5",
        ],
    )
    .await;
    assert_code(&r, 0);
    let ans: EnqueueResponse = r.json();
    assert_eq!(ans.task_ids.len(), 2, "one task per checkpoint: {ans:?}");
    let t = api.task(&ans.task_ids[1]).await.unwrap();
    assert_eq!(
        (
            t.params["prompt"].clone(),
            t.params["steps"].clone(),
            t.name
        ),
        (json!("from a file"), json!(5), Some("file".to_owned()))
    );

    let png = png_data_url();
    let input = dir.path().join("in.png");
    write_png(&input, &png);
    let r = cli_env(
        &[
            "enqueue",
            "img2img",
            "--json",
            "-",
            "--init-image",
            input.to_str().unwrap(),
            "--set",
            "denoising_strength=0.4",
            "--set",
            "styles=[\"s1\"]",
            "--set",
            "note=plain text",
        ],
        &[("AGENT_SCHEDULER_URL", &url)],
        Some(&json!({"prompt": "from stdin"}).to_string()),
    )
    .await;
    assert_code(&r, 0);
    let ans: EnqueueResponse = r.json();
    let stored: StoredRequest = api.task_request(&ans.task_id).await.unwrap();
    assert_eq!(stored.task_type, TaskType::Img2img);
    assert_eq!(stored.request["prompt"], "from stdin");
    assert_eq!(stored.request["denoising_strength"], 0.4);
    assert_eq!(stored.request["styles"], json!(["s1"]));
    assert_eq!(stored.request["note"], "plain text");
    assert_eq!(stored.request["init_images"], json!([png]));

    // An idempotency key sent twice queues once.
    let args = [
        "enqueue",
        "txt2img",
        "--prompt",
        "once",
        "--idempotency-key",
        "k-1",
        "--json",
    ];
    let a1: EnqueueResponse = cli(&url, &args).await.json();
    let a2: EnqueueResponse = cli(&url, &args).await.json();
    assert_eq!(a1, a2);
}

/// Control tasks from the command line: units from `--json FILE`, the flags written under
/// `/control`'s own names (`width_before`/`height_before`, `batch_count`; `--init-image` is
/// the image of the unit that has none: SD.Next's `inputs` takes no base64), run to the end
/// with `--out`; a unit image that is a URL is the host's 422 naming the unit (exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_control_queues_units_with_controls_field_names_and_saves_the_images() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let url = s.url.clone();
    let api = s.client().clone();
    let dir = tempfile::tempdir().unwrap();
    let png = png_data_url();
    let input = dir.path().join("in.png");
    write_png(&input, &png);
    let units = dir.path().join("units.json");
    let unit = json!({"unit_type": "controlnet", "process": "Canny", "model": "tiny-controlnet",
                      "strength": 1.0});
    std::fs::write(
        &units,
        json!({"prompt": "a control fox", "control": [unit]}).to_string(),
    )
    .unwrap();
    let out = dir.path().join("shots");
    let r = cli(
        &url,
        &[
            "enqueue",
            "control",
            "--json",
            units.to_str().unwrap(),
            "--init-image",
            input.to_str().unwrap(),
            "--size",
            "64x96",
            "--count",
            "1",
            "--steps",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_code(&r, 0);
    let v: Value = r.json();
    let id = v["task_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            v["tasks"][0]["type"].clone(),
            v["tasks"][0]["status"].clone()
        ),
        (json!("control"), json!("done")),
        "{v}"
    );
    let files: Vec<Value> = v["files"].as_array().cloned().unwrap_or_default();
    let saved: Vec<String> = files
        .iter()
        .map(|f| f["path"].as_str().unwrap_or_default().to_owned())
        .collect();
    let results = api.results(&id).await.unwrap();
    assert_eq!(saved.len(), results.len(), "every result saved: {v}");
    for (i, f) in saved.iter().enumerate() {
        let img = api.image(&id, i).await.unwrap();
        let name = format!("{id}-{i}.{}", img.extension());
        assert_eq!(f, out.join(name).to_str().unwrap());
        assert_eq!(std::fs::read(f).unwrap(), img.bytes, "{f}");
    }
    let stored = api.task_request(&id).await.unwrap();
    assert_eq!(stored.task_type, TaskType::Control);
    let mut with_image = unit.clone();
    with_image["image"] = json!(png);
    let want = json!({"prompt": "a control fox", "steps": 2, "width_before": 64,
        "height_before": 96, "batch_count": 1, "control": [with_image]});
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&stored.request[k], v, "field {k}");
    }
    for k in [
        "width",
        "height",
        "n_iter",
        "init_images",
        "inputs",
        "init_control",
    ] {
        assert_eq!(stored.request.get(k), None, "no txt2img name {k}");
    }

    let r = cli(
        &url,
        &[
            "enqueue",
            "control",
            "--prompt",
            "x",
            "--set",
            r#"control=[{"model": "m", "image": "https://example.com/a.png"}]"#,
        ],
    )
    .await;
    assert_code(&r, 3);
    assert_eq!(
        r.stderr.trim_end(),
        "agent-scheduler: the host refused the request (422 invalid): control[0].image must be \
         base64 or a data URL (URLs and file paths are not accepted)"
    );
    assert_eq!(
        api.history(scheduler_api::HistoryFilter::All, &Default::default())
            .await
            .unwrap()
            .total,
        1,
        "only the good task was queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_unreadable_input_exit_2_and_an_unreachable_host_4() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = Stack::start(FakeArgs::fast_a(), &["--start-paused"]).await;
    let url = s.url.clone();
    for args in [
        &["enqueue", "txt2img", "--size", "512"][..],
        &["enqueue", "txt2img", "--json", "/no/such/file.json"],
        &["enqueue", "sketch", "--prompt", "x"],
        &["enqueue", "txt2img", "--set", "novalue"],
        &["ls", "--status", "sideways"],
        &["settings", "--retention-days", "soon"],
        &["results", "some-id"],
        &["frobnicate"],
    ] {
        let r = cli(&url, args).await;
        assert_code(&r, 2);
    }
    let r = cli_env(
        &["enqueue", "txt2img", "--json", "-"],
        &[("AGENT_SCHEDULER_URL", &url)],
        Some("[1, 2]"),
    )
    .await;
    assert_code(&r, 2);
    assert_eq!(
        s.client()
            .queue(&Default::default())
            .await
            .unwrap()
            .total_pending_tasks,
        0,
        "nothing was queued"
    );

    let (_held, addr) = scheduler_tests::harness::refusing_address();
    let closed = format!("http://{addr}");
    let r = cli(&closed, &["ls"]).await;
    assert_code(&r, 4);
    assert!(r.stderr.contains("host not reachable"), "{r:?}");
    let r = cli(&closed, &["pause", "--json"]).await;
    assert_code(&r, 4);
    assert_eq!(r.json::<Value>()["code"], "unreachable");
    let r = cli(&closed, &["enqueue", "txt2img", "--prompt", "x", "--wait"]).await;
    assert_code(&r, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_fails_makes_wait_and_watch_exit_5() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let url = s.url.clone();
    s.fake().configure(&FakeConfigPatch {
        fail_next_with_empty: Some(CountOrBool::Count(1)),
        ..FakeConfigPatch::default()
    });
    let r = cli(
        &url,
        &[
            "enqueue", "txt2img", "--prompt", "doomed", "--steps", "2", "--size", "64x64", "--wait",
        ],
    )
    .await;
    assert_code(&r, 5);
    let line = r.stdout.lines().next().unwrap_or_default().to_owned();
    let id = line.split(' ').next().unwrap().to_owned();
    assert!(line.starts_with(&format!("{id} failed: ")), "{r:?}");
    assert_eq!(
        s.client().clone().task(&id).await.unwrap().status,
        TaskStatus::Failed
    );
    let r = cli(&url, &["watch", &id]).await;
    assert_code(&r, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_show_and_history_list_what_the_host_has() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = paused_ab().await;
    let url = s.url.clone();
    let api = s.client().clone();
    let one = queued(&api, "first zebra").await;
    let two = queued(&api, "second okapi").await;

    let r = cli(&url, &["ls", "--json"]).await;
    assert_code(&r, 0);
    let q: QueueResponse = r.json();
    let ids: Vec<&str> = q.pending_tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!((ids, q.paused), (vec![one.as_str(), two.as_str()], true));
    let r = cli(&url, &["ls"]).await;
    assert_code(&r, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r:?}");
    assert!(
        lines[1].starts_with(&one) && lines[1].contains("first zebra"),
        "{r:?}"
    );
    assert_eq!(
        lines[3],
        "2 of 2 running or pending task(s); the queue is paused"
    );
    let r = cli(&url, &["ls", "-q", "okapi", "--json"]).await;
    let q: QueueResponse = r.json();
    assert_eq!(q.pending_tasks.len(), 1);
    assert_eq!(q.pending_tasks[0].id, two);
    let r = cli(&url, &["ls", "--limit", "1", "--offset", "1", "--json"]).await;
    assert_eq!(r.json::<QueueResponse>().pending_tasks[0].id, two);

    let r = cli(&url, &["show", &one, "--json"]).await;
    assert_code(&r, 0);
    let t: Task = r.json();
    assert_eq!(
        (t.id.as_str(), t.status),
        (one.as_str(), TaskStatus::Pending)
    );
    let r = cli(&url, &["show", &one]).await;
    assert_code(&r, 0);
    assert!(r.stdout.contains("\nstatus       pending\n"), "{r:?}");
    assert!(r.stdout.contains("\nposition     0\n"), "{r:?}");
    let r = cli(&url, &["show", &one, "--request"]).await;
    assert_code(&r, 0);
    assert_eq!(r.json::<StoredRequest>().request["prompt"], "first zebra");
    let r = cli(&url, &["show", "no-such-task", "--json"]).await;
    assert_code(&r, 3);
    assert_eq!(
        r.json::<Value>(),
        json!({"success": false, "status": 404, "message": "Task not found", "code": "task_not_found"})
    );

    api.run_task(&one).await.unwrap();
    wait_status(&api, &one, TaskStatus::Done).await;
    let r = cli(&url, &["ls", "--history", "--json"]).await;
    assert_code(&r, 0);
    let h: HistoryResponse = r.json();
    assert_eq!((h.total, h.tasks[0].id.as_str()), (1, one.as_str()));
    let r = cli(&url, &["ls", "--status", "failed", "--json"]).await;
    assert_eq!(r.json::<HistoryResponse>().total, 0);
    let r = cli(&url, &["ls", "--status", "done"]).await;
    assert_code(&r, 0);
    assert_eq!(r.stdout.lines().last(), Some("1 of 1 finished task(s)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_control_subcommands_change_the_host() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = paused_ab().await;
    let url = s.url.clone();
    let api = s.client().clone();
    let a = queued(&api, "a").await;
    let b = queued(&api, "b").await;
    let c = queued(&api, "c").await;
    let order = || async {
        api.queue(&Default::default())
            .await
            .unwrap()
            .pending_tasks
            .into_iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };

    let r = cli(&url, &["move", &c, "top"]).await;
    assert_code(&r, 0);
    assert_eq!(r.stdout, "Task moved to top\n");
    let r = cli(&url, &["move", &a, &c]).await;
    assert_code(&r, 0);
    assert_eq!(order().await, vec![a.clone(), c.clone(), b.clone()]);
    let r = cli(&url, &["move", &a, "bottom", "--json"]).await;
    assert_code(&r, 0);
    assert_eq!(r.json::<Value>()["message"], "Task moved to bottom");
    assert_eq!(order().await, vec![c.clone(), b.clone(), a.clone()]);
    let r = cli(&url, &["move", "no-such-task", "top"]).await;
    assert_code(&r, 3);

    let r = cli(&url, &["bookmark", &a, &b]).await;
    assert_code(&r, 0);
    assert!(api.task(&a).await.unwrap().bookmarked);
    assert!(api.task(&b).await.unwrap().bookmarked);
    let r = cli(&url, &["bookmark", "--off", &b]).await;
    assert_code(&r, 0);
    assert!(!api.task(&b).await.unwrap().bookmarked);

    let r = cli(&url, &["run", &c]).await;
    assert_code(&r, 0);
    wait_status(&api, &c, TaskStatus::Done).await;
    assert!(api.health().await.unwrap().paused, "run does not resume");
    let r = cli(&url, &["requeue", &c, "--json"]).await;
    assert_code(&r, 0);
    let copy = r.json::<Value>()["task_id"].as_str().unwrap().to_owned();
    assert_eq!(api.task(&copy).await.unwrap().status, TaskStatus::Pending);
    let r = cli(&url, &["requeue", "--failed"]).await;
    assert_code(&r, 0);
    assert_eq!(r.stdout, "No failed tasks\n");
    let r = cli(&url, &["requeue", "no-such-task"]).await;
    assert_code(&r, 3);
    assert!(r.stderr.contains("(404 task_not_found)"), "{r:?}");

    let r = cli(&url, &["rm", &b, "no-such-task", &copy]).await;
    assert_code(&r, 3);
    assert_eq!(order().await, vec![a.clone()]);
    let extra = queued(&api, "extra").await;
    let r = cli(&url, &["rm", &extra]).await;
    assert_code(&r, 0);
    assert_eq!(r.stdout, format!("{extra}: Task deleted\n"));
    assert_eq!(order().await, vec![a.clone()]);

    let r = cli(&url, &["resume"]).await;
    assert_code(&r, 0);
    assert_eq!(r.stdout, "Queue resumed.\n");
    assert!(!api.health().await.unwrap().paused);
    let r = cli(&url, &["pause", "--json"]).await;
    assert_code(&r, 0);
    assert_eq!(r.json::<Value>()["message"], "Queue paused.");
    assert!(api.health().await.unwrap().paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_tasks_until_they_end_or_the_queue_is_idle() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = paused_ab().await;
    let url = s.url.clone();
    let api = s.client().clone();
    let r = cli(&url, &["watch", "--until-idle"]).await;
    assert_code(&r, 0);
    assert_eq!(r.stdout, "", "an idle queue ends the watch at once");

    let id = queued(&api, "watched").await;
    // Started as a child whose stderr says when it is connected; only then does the task run.
    let mut child = tokio::process::Command::new(host_binary())
        .args(["watch", &id, "--json", "--url", &url])
        .env_remove("AGENT_SCHEDULER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start agent-scheduler watch");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(LONG, stderr.next_line())
        .await
        .expect("the watcher connects within the deadline")
        .unwrap();
    assert_eq!(first.as_deref(), Some(format!("watching {url}").as_str()));
    api.resume().await.unwrap();
    let out = tokio::time::timeout(LONG, child.wait_with_output())
        .await
        .expect("watch ends when the task has ended")
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::new(),
    };
    assert_code(&r, 0);
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finished = events
        .iter()
        .find(|e| e["event"] == "task" && e["data"]["change"] == "finished")
        .unwrap_or_else(|| panic!("no finished event: {r:?}"));
    assert_eq!(finished["data"]["task_id"], json!(id));
    assert_eq!(finished["data"]["status"], "done");
    assert!(finished["id"].is_u64(), "{finished}");

    let r = cli(&url, &["watch", "--until-idle"]).await;
    assert_code(&r, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_settings_export_and_import_round_trip() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = paused_ab().await;
    let url = s.url.clone();
    let api = s.client().clone();
    let done = queued(&api, "to keep").await;
    let pending = queued(&api, "to export").await;
    api.run_task(&done).await.unwrap();
    wait_status(&api, &done, TaskStatus::Done).await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imgs");
    let r = cli(&url, &["results", &done, "--out", out.to_str().unwrap()]).await;
    assert_code(&r, 0);
    let file = out.join(format!("{done}-0.jpg"));
    assert_eq!(r.stdout.trim(), file.to_str().unwrap());
    assert_eq!(&std::fs::read(&file).unwrap()[..2], &[0xFF, 0xD8]);
    let zip = dir.path().join("r.zip");
    let r = cli(&url, &["results", &done, "--zip", zip.to_str().unwrap()]).await;
    assert_code(&r, 0);
    assert_eq!(&std::fs::read(&zip).unwrap()[..4], b"PK\x03\x04");
    let r = cli(&url, &["results", &pending, "--out", out.to_str().unwrap()]).await;
    assert_code(&r, 3);
    assert!(r.stderr.contains("(409 conflict)"), "{r:?}");

    let r = cli(&url, &["settings", "--json"]).await;
    assert_code(&r, 0);
    assert_eq!(r.json::<Settings>(), api.settings().await.unwrap());
    let r = cli(
        &url,
        &[
            "settings",
            "--max-attempts",
            "5",
            "--retention-days",
            "never",
            "--auto-requeue",
            "true",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert_eq!(
        r.stdout,
        "start_paused            false\nhistory_retention_days  never\nauto_requeue_failed     true\nmax_attempts            5\nretry_backoff_s         10\ninterrupt_grace_s       5\nstall_timeout_s         600\nstall_recheck_s         60\ntask_timeout_s          none\nmax_answer_mib          512\nimport_max_items        10000\n"
    );
    let s2 = api.settings().await.unwrap();
    assert_eq!(
        (
            s2.max_attempts,
            s2.history_retention_days,
            s2.auto_requeue_failed
        ),
        (5, None, true)
    );
    let r = cli(&url, &["settings", "--max-attempts", "0"]).await;
    assert_code(&r, 3);
    assert!(r.stderr.contains("(422 invalid)"), "{r:?}");

    let export = dir.path().join("export.json");
    let r = cli(&url, &["export", "--out", export.to_str().unwrap()]).await;
    assert_code(&r, 0);
    let items: Vec<ExportItem> =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].id, pending);
    let r = cli(&url, &["export"]).await;
    assert_code(&r, 0);
    assert_eq!(
        serde_json::from_str::<Vec<ExportItem>>(&r.stdout).unwrap(),
        items
    );
    // A file that cannot be written is the unexpected error, 1.
    let nowhere = dir.path().join("no-such-folder").join("export.json");
    let r = cli(&url, &["export", "--out", nowhere.to_str().unwrap()]).await;
    assert_code(&r, 1);
    assert!(
        r.stderr.starts_with(&format!(
            "agent-scheduler: cannot write {}: ",
            nowhere.display()
        )),
        "{r:?}"
    );
    let r = cli(
        &url,
        &["results", &done, "--zip", nowhere.to_str().unwrap()],
    )
    .await;
    assert_code(&r, 1);

    api.delete_task(&pending).await.unwrap();
    let r = cli(&url, &["import", export.to_str().unwrap(), "--json"]).await;
    assert_code(&r, 0);
    let imp: ImportResponse = r.json();
    assert_eq!(imp.imported.len(), 1);
    let back = api.task(&imp.imported[0]).await.unwrap();
    assert_eq!(back.params["prompt"], "to export");

    let r = cli_env(
        &["import", "-"],
        &[("AGENT_SCHEDULER_URL", &url)],
        Some(r#"[{"id": "x", "type": "txt2img", "params": {"prompt": "ok"}}, {"type": "bogus", "params": {}}]"#),
    )
    .await;
    assert_code(&r, 3);
    assert_eq!(r.stdout.lines().count(), 1, "one imported: {r:?}");
    assert!(r.stderr.contains("item 1 rejected"), "{r:?}");
    let r = cli_env(
        &["import", "-"],
        &[("AGENT_SCHEDULER_URL", &url)],
        Some("{}"),
    )
    .await;
    assert_code(&r, 3);
    assert!(r.stderr.contains("(422 invalid)"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_the_flag_or_the_environment() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = Stack::start(FakeArgs::fast_a(), &["--token", "s3cret"]).await;
    let url = s.url.clone();
    let r = cli(&url, &["ls"]).await;
    assert_code(&r, 3);
    assert!(r.stderr.contains("(401 unauthorized)"), "{r:?}");
    let r = cli(&url, &["ls", "--token", "s3cret", "--json"]).await;
    assert_code(&r, 0);
    assert_eq!(r.json::<QueueResponse>().total_pending_tasks, 0);
    let r = cli_env(
        &["pause"],
        &[
            ("AGENT_SCHEDULER_URL", &url),
            ("AGENT_SCHEDULER_TOKEN", "s3cret"),
        ],
        None,
    )
    .await;
    assert_code(&r, 0);
    let r = cli_env(
        &["watch", "--until-idle"],
        &[
            ("AGENT_SCHEDULER_URL", &url),
            ("AGENT_SCHEDULER_TOKEN", "wrong"),
        ],
        None,
    )
    .await;
    assert_code(&r, 3);
}

/// A task waited for that is deleted ends `enqueue --wait` and `watch ID` with 5 (and
/// `<id> deleted` on stdout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_deleted_while_waited_for_exits_5() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = paused_ab().await;
    let url = s.url.clone();
    let api = s.client().clone();
    let spawn = |args: &[&str]| {
        tokio::process::Command::new(host_binary())
            .args(args)
            .args(["--url", &url])
            .env_remove("AGENT_SCHEDULER_TOKEN")
            .env_remove("AGENT_SCHEDULER_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start agent-scheduler")
    };
    let waiter = spawn(&["enqueue", "txt2img", "--prompt", "doomed", "--wait"]);
    // `--wait` opens the event stream before it enqueues: once the task exists, it listens.
    let id = wait_for_id(&api).await;
    let mut watcher = spawn(&["watch", &id]);
    let mut stderr = tokio::io::BufReader::new(watcher.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(LONG, stderr.next_line())
        .await
        .expect("the watcher connects within the deadline")
        .unwrap();
    assert_eq!(first.as_deref(), Some(format!("watching {url}").as_str()));
    api.delete_task(&id).await.unwrap();
    for (what, child) in [("enqueue --wait", waiter), ("watch", watcher)] {
        let out = tokio::time::timeout(LONG, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{what} ends when the task is deleted"))
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{what}: {out:?}");
        if what == "enqueue --wait" {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{id} deleted\n")
            );
        }
    }
}

async fn wait_for_id(api: &Client) -> String {
    scheduler_tests::harness::wait_until("the task is queued", LONG, || async {
        api.queue(&Default::default())
            .await
            .ok()
            .and_then(|q| q.pending_tasks.first().map(|t| t.id.clone()))
    })
    .await
}

/// `--help` and `help SUBCOMMAND` answer 0 with the exit-status table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_subcommands_and_the_exit_statuses() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let r = cli_env(&["--help"], &[], None).await;
    assert_code(&r, 0);
    for sub in [
        "serve", "enqueue", "ls", "show", "watch", "pause", "resume", "run", "move", "rm",
        "requeue", "bookmark", "results", "settings", "export", "import",
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "--help lists {sub}: {}",
            r.stdout
        );
    }
    let r = cli_env(&["help", "enqueue"], &[], None).await;
    assert_code(&r, 0);
    assert!(
        r.stdout.contains(agent_scheduler::cli::EXIT_HELP),
        "{}",
        r.stdout
    );
}
