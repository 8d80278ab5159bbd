//! The image-field walker (`agent_scheduler::model::images`) through the real HTTP API, one
//! table-driven check per route generated from the walker's own table, [`IMAGE_FIELDS`]: a
//! field registered there is covered here without a new line of test.
//!
//! For every image field of every task type (txt2img, img2img, control), a URL or a file path
//! is refused with 422 naming the concrete nested path (`control[1].image`,
//! `ip_adapter[1].images[1]`) by enqueue, by `PUT /task/{id}` and by import (a rejection with
//! the reason), and nothing changes; a string where a list or an object leads to the field is
//! refused naming that place; the same field with base64 or a data URL is accepted;
//! and the listings (`/queue`, `/history`, `/task/{id}`) carry none of the image data, lists
//! longer than the SQL-side bound and images among script arguments included.

use agent_scheduler::model::images::{IMAGE_FIELDS, SCRIPT_ARG_FIELDS, SQL_ARRAY_BOUND, images};
use scheduler_api::client::Method;
use scheduler_api::{
    EnqueueRequest, ErrorCode, HistoryFilter, ImportRejection, ImportRequest, ListQuery,
    TaskStatus, TaskType, UpdateTaskRequest, routes,
};
use scheduler_tests::inprocess::{InProcessHost, refused};
use serde_json::{Map, Value, json};

/// A 1×1 PNG, base64 (its first characters, `iVBORw0KGgo`, mark image data in a listing).
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const PNG_MARK: &str = "iVBORw0KGgo";

/// What the host must never take for an image: URLs and file paths of every shape.
const NOT_IMAGES: &[&str] = &[
    "https://example.com/a.png",
    "http://169.254.169.254/latest",
    "file:///etc/passwd",
    "/home/u/face.png",
    "C:\\Users\\u\\face.png",
    "../face.png",
];

const TYPES: [TaskType; 3] = [TaskType::Txt2img, TaskType::Img2img, TaskType::Control];

fn data_url() -> String {
    format!("data:image/png;base64,{PNG}")
}

/// The smallest valid body of a type (img2img needs an input image, a Control unit its image).
fn base(t: TaskType) -> Map<String, Value> {
    let mut b = json!({"prompt": "walker", "steps": 2, "width": 64, "height": 64, "seed": 1});
    match t {
        TaskType::Txt2img => {}
        TaskType::Img2img => b["init_images"] = json!([data_url()]),
        TaskType::Control => {
            b["control"] = json!([{"unit_type": "controlnet", "process": "Canny",
                                   "model": "tiny-controlnet", "image": data_url()}]);
        }
    }
    b.as_object().cloned().expect("an object")
}

/// One field of the walker's table filled in: `{top key: value}` where the outermost list
/// (`[]`) has `n` elements and every inner one 2, the LAST image reached (the last element of
/// every list) is `leaf`, and every other image is good (bare base64 or a data URL,
/// alternating). Returns the top-level key, its value and the concrete path of `leaf`
/// (`control[1].image`, `ip_adapter[1].images[1]`).
fn fill(field: &str, n: usize, leaf: &Value) -> (String, Value, String) {
    fn build(steps: &[&str], n: usize, leaf: &Value, bad: bool, k: &mut usize) -> Value {
        let Some((step, rest)) = steps.split_first() else {
            *k += 1;
            return if bad {
                leaf.clone()
            } else if k.is_multiple_of(2) {
                json!(PNG)
            } else {
                json!(data_url())
            };
        };
        match step.strip_suffix("[]") {
            Some(key) => {
                let items: Vec<Value> = (0..n)
                    .map(|i| build(rest, 2, leaf, bad && i + 1 == n, k))
                    .collect();
                json!({ key: items })
            }
            None => json!({ *step: build(rest, n, leaf, bad, k) }),
        }
    }
    // `a[].b[]` → steps `a[]`, `b[]` (a trailing `[]` is the list of images itself).
    let steps: Vec<&str> = field.split('.').collect();
    let mut k = 0;
    let v = build(&steps, n, leaf, true, &mut k);
    let (top, value) = v
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one top-level key");
    let mut len = n;
    let at = steps
        .iter()
        .map(|s| match s.strip_suffix("[]") {
            Some(key) => {
                let last = len - 1;
                len = 2;
                format!("{key}[{last}]")
            }
            None => (*s).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(".");
    (top, value, at)
}

fn body_with(t: TaskType, top: &str, value: Value) -> Map<String, Value> {
    let mut b = base(t);
    b.insert(top.to_owned(), value);
    b
}

fn request(m: Map<String, Value>) -> EnqueueRequest {
    serde_json::from_value(Value::Object(m)).expect("an enqueue body")
}

fn refusal(at: &str) -> String {
    format!("{at} must be base64 or a data URL (URLs and file paths are not accepted)")
}

/// Fields SD.Next's request contract refuses whatever they hold: Control's `inputs` and
/// `inits` are typed as server-side images (SD.Next answers 422 "Input should be an instance
/// of Image" to base64 there), so even good images are a 422 at the door, naming the first.
fn contract_refuses(t: TaskType, field: &str) -> bool {
    t == TaskType::Control && matches!(field, "inputs[]" | "inits[]")
}

/// The contract's refusal of such a field: its first element's path.
fn assert_contract_refusal<T: std::fmt::Debug>(
    r: Result<T, scheduler_api::client::ClientError>,
    field: &str,
) {
    let e = r.expect_err("the contract refuses it");
    let body = e.body().expect("a refusal body");
    assert_eq!(e.status(), Some(422), "{field}: {e}");
    assert_eq!(
        body.path.as_deref(),
        Some(format!("{}[0]", field.trim_end_matches("[]")).as_str()),
        "{field}: {e}"
    );
}

/// Every case: (type, field, bad value) with the body's top-level key and value, and the path.
fn cases() -> Vec<(TaskType, &'static str, &'static str, String, Value, String)> {
    let mut out = Vec::new();
    for t in TYPES {
        for field in IMAGE_FIELDS {
            for bad in NOT_IMAGES {
                let (top, value, at) = fill(field, 2, &json!(bad));
                out.push((t, *field, *bad, top, value, at));
            }
        }
    }
    out
}

#[test]
fn the_generator_reaches_every_field_where_the_walker_looks() {
    for field in IMAGE_FIELDS {
        let (top, value, at) = fill(field, 2, &json!("LEAF"));
        let mut body = Map::new();
        body.insert(top, value);
        let found = images(&body).expect("well-formed");
        let leaf: Vec<&String> = found
            .iter()
            .filter(|(_, v)| **v == json!("LEAF"))
            .map(|(p, _)| p)
            .collect();
        assert_eq!(leaf, [&at], "{field}");
        assert_eq!(at.ends_with(']'), field.ends_with("[]"), "{field} → {at}");
    }
    let messages: Vec<String> = wrong_containers("ip_adapter[].images[]")
        .into_iter()
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(
        messages,
        [
            "ip_adapter must be a list",
            "ip_adapter[1] must be an object",
            "ip_adapter[1].images must be a list"
        ]
    );
    let messages: Vec<String> = wrong_containers("face.source_images[]")
        .into_iter()
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(
        messages,
        [
            "face must be an object",
            "face.source_images must be a list"
        ]
    );
}

/// Every place on the way to an image field where the walker expects a container (`face` an
/// object, `control` a list, `control[1]` an object, `ip_adapter[1].images` a list), holding a
/// string instead: the top-level key, its value, and the host's message.
fn wrong_containers(field: &str) -> Vec<(String, Value, String)> {
    /// `Some(key)` for an object key, `None` for "each element of a list".
    fn steps(field: &str) -> Vec<Option<&str>> {
        let mut out = Vec::new();
        for seg in field.split('.') {
            match seg.strip_suffix("[]") {
                Some(k) => out.extend([Some(k), None]),
                None => out.push(Some(seg)),
            }
        }
        out
    }
    /// The value below `steps[i..]`; on the bad branch the value at `cut` is a string.
    fn build(steps: &[Option<&str>], i: usize, bad: bool, cut: usize) -> Value {
        if bad && i == cut {
            return json!("not a container");
        }
        match steps.get(i) {
            None => json!(PNG),
            Some(Some(k)) => json!({ *k: build(steps, i + 1, bad, cut) }),
            Some(None) => json!([
                build(steps, i + 1, false, cut),
                build(steps, i + 1, bad, cut)
            ]),
        }
    }
    let st = steps(field);
    (1..st.len())
        .map(|cut| {
            let v = build(&st, 0, true, cut);
            let (top, value) = v
                .as_object()
                .and_then(|o| o.iter().next())
                .map(|(k, v)| (k.clone(), v.clone()))
                .expect("one top-level key");
            let mut at = String::new();
            for s in &st[..cut] {
                match s {
                    Some(k) if at.is_empty() => at.push_str(k),
                    Some(k) => at.push_str(&format!(".{k}")),
                    None => at.push_str("[1]"),
                }
            }
            let what = if st[cut].is_none() {
                "a list"
            } else {
                "an object"
            };
            (top, value, format!("{at} must be {what}"))
        })
        .collect()
}

/// Enqueue: a string where the walker expects a list or an object on the way to any image
/// field is a 422 naming that place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_refuses_a_wrong_container_on_the_way_to_every_field_by_its_path() {
    let h = InProcessHost::start(&["a"]).await;
    h.api.pause().await.expect("pause");
    let mut n = 0;
    for t in TYPES {
        for field in IMAGE_FIELDS {
            for (top, value, message) in wrong_containers(field) {
                let e = refused(
                    h.api.enqueue(t, &request(body_with(t, &top, value))).await,
                    422,
                    &message,
                );
                assert_eq!(e.code, Some(ErrorCode::Invalid), "{t:?} {field}");
                n += 1;
            }
        }
    }
    assert!(n >= TYPES.len() * IMAGE_FIELDS.len(), "{n} cases");
    assert_eq!(h.queue_ids().await, Vec::<String>::new(), "nothing queued");
    h.stop().await;
}

/// Enqueue: every non-image in every field of every type is a 422 naming the field's path,
/// and nothing is queued; the same field with good images is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_refuses_a_non_image_in_every_field_of_every_type_by_its_path() {
    let h = InProcessHost::start(&["a"]).await;
    h.api.pause().await.expect("pause");
    let cases = cases();
    assert_eq!(
        cases.len(),
        TYPES.len() * IMAGE_FIELDS.len() * NOT_IMAGES.len()
    );
    for (t, field, bad, top, value, at) in &cases {
        let e = refused(
            h.api
                .enqueue(*t, &request(body_with(*t, top, value.clone())))
                .await,
            422,
            &refusal(at),
        );
        assert_eq!(e.code, Some(ErrorCode::Invalid), "{t:?} {field} {bad}");
    }
    assert_eq!(h.queue_ids().await, Vec::<String>::new(), "nothing queued");
    let mut accepted = 0;
    for t in TYPES {
        for field in IMAGE_FIELDS {
            let (top, value, _) = fill(field, 2, &json!(PNG));
            let r = h.api.enqueue(t, &request(body_with(t, &top, value))).await;
            if contract_refuses(t, field) {
                assert_contract_refusal(r, field);
                continue;
            }
            r.unwrap_or_else(|e| panic!("{t:?} {field} with images: {e}"));
            accepted += 1;
        }
    }
    assert_eq!(accepted, TYPES.len() * IMAGE_FIELDS.len() - 2);
    assert_eq!(h.queue_ids().await.len(), accepted);
    h.stop().await;
}

/// `PUT /task/{id}`: a params patch with a non-image anywhere is a 422 naming the path, and
/// the stored request stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_refuses_a_non_image_in_every_field_of_every_type_by_its_path() {
    let h = InProcessHost::start(&["a"]).await;
    h.api.pause().await.expect("pause");
    let mut ids = Vec::new();
    for t in TYPES {
        let id = h
            .api
            .enqueue(t, &request(base(t)))
            .await
            .expect("enqueue")
            .task_id;
        let before = h.api.task_request(&id).await.expect("request").request;
        ids.push((t, id, before));
    }
    for (t, field, bad, top, value, at) in cases() {
        let (_, id, _) = ids.iter().find(|(x, _, _)| *x == t).expect("a task");
        let mut params = Map::new();
        params.insert(top, value);
        let edit = UpdateTaskRequest {
            params: Some(params),
            ..UpdateTaskRequest::default()
        };
        let e = refused(
            h.api.update_task(id, &edit).await,
            422,
            &format!("invalid params: {}", refusal(&at)),
        );
        assert_eq!(e.code, Some(ErrorCode::Invalid), "{t:?} {field} {bad}");
    }
    for (t, id, before) in &ids {
        let now = h.api.task_request(id).await.expect("request").request;
        assert_eq!(&now, before, "{t:?}: the refused edits changed nothing");
    }
    // The same patches with images are taken.
    for (t, id, _) in &ids {
        for field in IMAGE_FIELDS {
            let (top, value, _) = fill(field, 2, &json!(PNG));
            let mut params = Map::new();
            params.insert(top.clone(), value.clone());
            let edit = UpdateTaskRequest {
                params: Some(params),
                ..UpdateTaskRequest::default()
            };
            let r = h.api.update_task(id, &edit).await;
            if contract_refuses(*t, field) {
                assert_contract_refusal(r, field);
                continue;
            }
            r.unwrap_or_else(|e| panic!("{t:?} {field} with images: {e}"));
            let now = h.api.task_request(id).await.expect("request").request;
            assert_eq!(now[&top], value, "{t:?} {field}");
        }
    }
    h.stop().await;
}

/// Import: each item with a non-image anywhere is rejected with the path as its reason; the
/// good items of the same file are imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_non_image_in_every_field_of_every_type_with_the_path() {
    let h = InProcessHost::start(&["a"]).await;
    h.api.pause().await.expect("pause");
    let cases = cases();
    let mut items: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (t, _, _, top, value, _))| {
            json!({"id": format!("bad-{i}"), "type": t.as_str(),
                   "params": body_with(*t, top, value.clone())})
        })
        .collect();
    let mut good = 0;
    let mut refused_by_contract = Vec::new();
    for t in TYPES {
        for field in IMAGE_FIELDS {
            let (top, value, _) = fill(field, 2, &json!(data_url()));
            if contract_refuses(t, field) {
                refused_by_contract.push((items.len(), *field));
            } else {
                good += 1;
            }
            items.push(json!({"type": t.as_str(), "params": body_with(t, &top, value)}));
        }
    }
    let content = serde_json::to_string(&items).expect("json");
    let r = h
        .api
        .import(&ImportRequest { content })
        .await
        .expect("import answers");
    let want: Vec<ImportRejection> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, _, _, _, _, at))| ImportRejection {
            index: i,
            id: Some(format!("bad-{i}")),
            reason: refusal(at),
            path: None,
        })
        .collect();
    assert_eq!(r.rejected[..cases.len()], want[..]);
    // Good images in Control's inputs / inits: the contract's rejection, with the path.
    let by_contract: Vec<(usize, Option<String>)> = r.rejected[cases.len()..]
        .iter()
        .map(|x| (x.index, x.path.clone()))
        .collect();
    let want: Vec<(usize, Option<String>)> = refused_by_contract
        .iter()
        .map(|(i, f)| (*i, Some(format!("{}[0]", f.trim_end_matches("[]")))))
        .collect();
    assert_eq!(by_contract, want);
    let rejected = cases.len() + refused_by_contract.len();
    assert_eq!(r.rejected_count, rejected);
    assert_eq!(r.imported.len(), good);
    assert_eq!(
        r.message,
        format!("Imported {good} tasks; {rejected} rejected")
    );
    assert_eq!(h.queue_ids().await.len(), good);
    h.stop().await;
}

/// The listings strip every field the walker knows: a task of each type with every image
/// field filled (lists longer than the bound the SQL side removes element by element) and
/// images among its script arguments shows no image data in `/queue`, `/history` or
/// `/task/{id}`, while its stored request keeps all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_carry_no_image_data_from_any_field() {
    let h = InProcessHost::start(&["a"]).await;
    h.api.pause().await.expect("pause");
    let long = SQL_ARRAY_BOUND + 2;
    let mut short_ids = Vec::new();
    let mut long_ids = Vec::new();
    for t in TYPES {
        for (n, ids) in [(2, &mut short_ids), (long, &mut long_ids)] {
            let mut b = base(t);
            for field in IMAGE_FIELDS.iter().filter(|f| !contract_refuses(t, f)) {
                // The outermost list is long (inner lists have 2 elements).
                let (top, value, _) = fill(field, n, &json!(PNG));
                merge(&mut b, &top, value);
            }
            for f in SCRIPT_ARG_FIELDS {
                // Each in the shape SD.Next takes: a list, or scripts by title with `args`.
                let v = if *f == "alwayson_scripts" {
                    json!({"freeu": {"args": script_args()}})
                } else {
                    script_args()
                };
                b.insert((*f).to_owned(), v);
            }
            let all = images(&b).expect("well-formed").len();
            assert!(all >= (IMAGE_FIELDS.len() - 2) * 2, "{t:?}: {all} images");
            let id = h
                .api
                .enqueue(t, &request(b))
                .await
                .unwrap_or_else(|e| panic!("{t:?} with every image field: {e}"))
                .task_id;
            let stored = h.api.task_request(&id).await.expect("request").request;
            assert_eq!(
                images(&stored).expect("stored").len(),
                all,
                "{t:?} stored whole"
            );
            ids.push(id);
        }
    }
    // The short ones run to the history; the long ones stay queued.
    for id in &short_ids {
        h.api.run_task(id).await.expect("run");
        h.wait_status(id, TaskStatus::Done).await;
    }
    let q = "?limit=100";
    let mut paths = vec![
        format!("{}{q}", routes::QUEUE),
        format!("{}{q}", routes::HISTORY),
    ];
    for id in short_ids.iter().chain(&long_ids) {
        paths.push(routes::task_path(routes::TASK, id));
    }
    for path in &paths {
        let r = h.api.raw(Method::Get, path).send().await.expect("answers");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{path}: {text}");
        assert!(
            !text.contains(PNG_MARK),
            "{path} carries image data: {text}"
        );
    }
    let queue = h
        .api
        .queue(&ListQuery {
            limit: Some(100),
            ..ListQuery::default()
        })
        .await
        .expect("queue");
    let history = h
        .api
        .history(
            HistoryFilter::All,
            &ListQuery {
                limit: Some(100),
                ..ListQuery::default()
            },
        )
        .await
        .expect("history");
    let listed: Vec<_> = queue.pending_tasks.iter().chain(&history.tasks).collect();
    assert_eq!(listed.len(), short_ids.len() + long_ids.len());
    for t in listed {
        let left: Vec<String> = images(&t.params)
            .expect("listed")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(left, Vec::<String>::new(), "{}", t.id);
        let nulled =
            json!([1, "a text", "https://example.com/a.png", null, [null, null], {"args": [null]}]);
        for f in SCRIPT_ARG_FIELDS {
            let want = if *f == "alwayson_scripts" {
                json!({"freeu": {"args": nulled.clone()}})
            } else {
                nulled.clone()
            };
            assert_eq!(t.params[*f], want, "{}: {f}", t.id);
        }
    }
    h.stop().await;
}

/// Positional script arguments with images among them (the Face script's gallery, an image
/// argument), and text that is not an image.
fn script_args() -> Value {
    json!([1, "a text", "https://example.com/a.png", data_url(), [data_url(), PNG], {"args": [data_url()]}])
}

/// Puts `value` at `top`, merging objects and element-wise lists of objects (so `control[]`'s
/// `image` and `override` end up in the same units).
fn merge(b: &mut Map<String, Value>, top: &str, value: Value) {
    fn deep(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    match a.get_mut(&k) {
                        Some(x) => deep(x, v),
                        None => {
                            a.insert(k, v);
                        }
                    }
                }
            }
            (Value::Array(a), Value::Array(b))
                if a.len() == b.len() && b.iter().all(Value::is_object) =>
            {
                for (x, v) in a.iter_mut().zip(b) {
                    deep(x, v);
                }
            }
            (slot, v) => *slot = v,
        }
    }
    match b.get_mut(top) {
        Some(x) => deep(x, value),
        None => {
            b.insert(top.to_owned(), value);
        }
    }
}
