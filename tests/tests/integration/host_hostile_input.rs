//! Hostile input against the host in this process (issue 7, finding 9 and the enqueue
//! bodies): property tests over search strings and enqueue bodies. No input may produce a
//! 5xx, and a refused enqueue leaves the queue unchanged.

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use scheduler_api::client::{Client, Method};
use scheduler_api::{ListQuery, TaskType, routes};
use serde_json::{Map, Value, json};

use crate::host_support::*;

/// The queue listing's total and ids (running first), for "unchanged" checks.
async fn snapshot(c: &Client) -> (i64, Vec<String>) {
    let q = c
        .queue(&ListQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("queue");
    (
        q.total_pending_tasks,
        q.pending_tasks.into_iter().map(|t| t.id).collect(),
    )
}

async fn search_status(c: &Client, route: &str, q: &str) -> (u16, String) {
    let path = scheduler_api::client::with_query(route, &[("q", q.to_owned())]);
    let r = c.raw(Method::Get, &path).send().await.expect("GET with q");
    (r.status, r.text())
}

/// Strings a user (or an attacker) might type: FTS5 syntax, quotes, NUL and other control
/// characters, unicode, and plain words.
fn search_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex(
            r#"[\x00-\x1f"*^():+\-{}\[\]NEARORAND a-z0-9\u{301}\u{200b}]{0,24}"#
        )
        .expect("regex"),
        Just("\0".to_owned()),
        Just("\"\0\"".to_owned()),
        Just("fox\0\"".to_owned()),
    ]
}

#[test]
fn no_search_text_produces_a_5xx_and_words_keep_their_meaning() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = rt.block_on(async {
        let s = Stack::start(FakeArgs::fast_a(), &["--start-paused"]).await;
        let c = s.client().clone();
        enqueue(&c, "red fox jumps", json!({"name": "night"})).await;
        let done = enqueue(&c, "quoted \"fox\" story", json!({})).await;
        // One finished task, for the history's search.
        c.run_task(&done).await.expect("run now");
        wait_done(&c, &done).await;
        s
    });
    let c = s.client().clone();
    // Today's meaning: every word literally, the last one as a prefix; NUL is dropped.
    rt.block_on(async {
        let hits = |q: &'static str| {
            let c = c.clone();
            async move {
                let r = c
                    .queue(&ListQuery {
                        q: Some(q.to_owned()),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("q={q:?}: {e}"));
                r.total_pending_tasks
            }
        };
        assert_eq!(hits("fox ju").await, 1, "last word as a prefix");
        assert_eq!(hits("ju fox").await, 0, "earlier words are whole words");
        assert_eq!(hits("red\0 fox").await, 1, "NUL dropped");
        assert_eq!(hits("\0").await, 1, "nothing left to search: everything");
        assert_eq!(
            hits("\"fox\0\"").await,
            1,
            "quotes are plain characters, not syntax"
        );
        let (status, _) = search_status(&c, routes::HISTORY, "\"story\0").await;
        assert_eq!(status, 200);
    });
    let mut runner = TestRunner::new(PropConfig {
        cases: 300,
        failure_persistence: None,
        ..PropConfig::default()
    });
    runner
        .run(&search_text(), |q| {
            rt.block_on(async {
                for route in [routes::QUEUE, routes::HISTORY] {
                    let (status, body) = search_status(&c, route, &q).await;
                    if status != 200 {
                        return Err(TestCaseError::fail(format!(
                            "{route}?q={q:?} answered {status}: {body}"
                        )));
                    }
                }
                Ok(())
            })
        })
        .expect("no search text produces an error");
}

/// JSON values of every kind, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        prop_oneof![
            Just("data:image/png;base64,iVBORw0KGgo="),
            Just("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="),
            Just("http://169.254.169.254/latest/meta-data"),
            Just("/etc/passwd"),
            Just("file:///etc/passwd"),
            Just("*"),
            Just("a/*"),
            Just("http://127.0.0.1:1/agent-scheduler/v1/history/clear"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((field_name(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Field names the host reads, SD.Next image fields, and random ones.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("prompt"),
            Just("steps"),
            Just("n_iter"),
            Just("batch_size"),
            Just("width"),
            Just("init_images"),
            Just("mask"),
            Just("checkpoint"),
            Just("vae"),
            Just("name"),
            Just("callback_url"),
            Just("page_snapshot"),
            Just("override_settings"),
            Just("sd_model_checkpoint"),
            Just("sd_vae"),
            Just("ip_adapter"),
            Just("images"),
            Just("control"),
            Just("init_control"),
            Just("face"),
            Just("send_images"),
        ]
        .prop_map(str::to_owned),
        "[a-z_]{1,12}",
    ]
}

fn enqueue_body() -> impl Strategy<Value = (TaskType, Value)> {
    let body = prop_oneof![
        proptest::collection::vec((field_name(), json_value()), 0..8)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        json_value(),
    ];
    (
        prop_oneof![Just(TaskType::Txt2img), Just(TaskType::Img2img)],
        body,
    )
}

#[test]
fn no_enqueue_body_produces_a_5xx_and_a_refusal_changes_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = rt.block_on(Stack::start(FakeArgs::fast_a(), &["--start-paused"]));
    let c = s.client().clone();
    let mut runner = TestRunner::new(PropConfig {
        cases: 300,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let refused = std::cell::Cell::new(0u32);
    runner
        .run(&enqueue_body(), |(kind, body)| {
            rt.block_on(async {
                let before = snapshot(&c).await;
                let r = c
                    .raw(Method::Post, kind.queue_route())
                    .body(body.to_string(), "application/json")
                    .send()
                    .await
                    .expect("POST");
                let status = r.status;
                let text = r.text();
                if status >= 500 {
                    return Err(TestCaseError::fail(format!(
                        "{body} answered {status}: {text}"
                    )));
                }
                let after = snapshot(&c).await;
                if status >= 400 {
                    refused.set(refused.get() + 1);
                    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if answer["success"] != json!(false) || !answer["message"].is_string() {
                        return Err(TestCaseError::fail(format!(
                            "{status} without the error body: {text}"
                        )));
                    }
                    if after != before {
                        return Err(TestCaseError::fail(format!(
                            "refused ({status}) but the queue changed: {body}"
                        )));
                    }
                } else {
                    if after.0 <= before.0 {
                        return Err(TestCaseError::fail(format!(
                            "accepted ({status}) but nothing was queued: {body}"
                        )));
                    }
                }
                Ok(())
            })
        })
        .expect("no enqueue body produces a server error");
    assert!(refused.get() > 0, "the generator produced refusals");
}
