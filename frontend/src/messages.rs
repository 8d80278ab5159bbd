//! What crosses between the extension's contexts and modules, typed once and pure serde
//! (compiled natively and for wasm32, so both ends and the native tests share one
//! definition):
//! - the `chrome.runtime` messages, one variant per need (no generic relay): the content
//!   script and the panel's modals ("Send to") ask the service worker ([`ToWorker`]); the
//!   service worker asks the content script of an SD.Next tab ([`ToContent`]). Every answer
//!   is a [`Reply`]: `{"ok": true, "data": …}` or `{"ok": false, "error": "…"}`. A tab is a
//!   [`Tab`] (its prefix on the wire), so a message naming another is refused whole;
//! - what the panel asks its modal module to show ([`ModalSpec`]), handed over as JSON by
//!   the page's loader (`sdqOpenModal`), not by `chrome.runtime`.

use scheduler_api::{EnqueueRequest, Task, TaskType};

use crate::capture::Tab;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// To the service worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ToWorker {
    /// The host's checkpoint titles (content script: the Enqueue dropdown).
    /// Answer: `Vec<String>`.
    Checkpoints,
    /// Queue a request the content script captured. Answer: [`scheduler_api::EnqueueResponse`].
    Enqueue {
        /// Which endpoint.
        task_type: TaskType,
        /// The body.
        request: EnqueueRequest,
    },
    /// Fill the SD.Next tab's form with a task's parameters (panel: "Send to txt2img /
    /// img2img"). Answer: [`Filled`].
    FillPage {
        /// The tab to fill.
        tab: Tab,
        /// The task's parameters (a listing's: without images).
        params: Map<String, Value>,
        /// The task: the worker then fills from its full stored request (images, the
        /// checkpoint and the script included) instead of `params`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
    },
}

/// To the content script of an SD.Next tab (from the service worker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ToContent {
    /// Capture the form of a tab (`None`: the visible one). Answer: [`Captured`].
    Capture {
        /// The tab to read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tab: Option<Tab>,
    },
    /// Fill the form of a tab with a task's parameters. Answer: [`Filled`].
    Fill {
        /// The tab to fill.
        tab: Tab,
        /// The task's parameters.
        params: Map<String, Value>,
    },
    /// Show a toast in the page. Answer: `()`.
    Toast {
        /// The text.
        text: String,
        /// Shown as an error.
        #[serde(default)]
        error: bool,
    },
}

/// Answer to [`ToContent::Capture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Captured {
    /// The endpoint the request is for.
    pub task_type: TaskType,
    /// The tab it was read from.
    pub tab: Tab,
    /// The enqueue body.
    pub request: EnqueueRequest,
}

/// Answer to [`ToContent::Fill`] and [`ToWorker::FillPage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filled {
    /// How many fields were written.
    pub filled: usize,
}

/// The answer envelope of every message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply<T> {
    /// Whether `data` is the answer.
    pub ok: bool,
    /// The answer.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> From<Result<T, String>> for Reply<T> {
    fn from(r: Result<T, String>) -> Self {
        match r {
            Ok(data) => Reply {
                ok: true,
                data: Some(data),
                error: None,
            },
            Err(e) => Reply {
                ok: false,
                data: None,
                error: Some(e),
            },
        }
    }
}

impl<T: DeserializeOwned> Reply<T> {
    /// Decodes an answer: the data, or the error text.
    pub fn decode(answer: Value) -> Result<T, String> {
        if answer.is_null() {
            return Err("no answer from the extension".into());
        }
        let r: Reply<T> = serde_json::from_value(answer).map_err(|e| format!("bad answer: {e}"))?;
        match (r.ok, r.data) {
            (true, Some(d)) => Ok(d),
            (true, None) => serde_json::from_value(Value::Null)
                .map_err(|_| "the answer carries no data".to_owned()),
            (false, _) => Err(r.error.unwrap_or_else(|| "failed".into())),
        }
    }
}

/// `Reply<()>`'s success as JSON (`{"ok": true}`).
pub fn ok_reply() -> Value {
    serde_json::json!({"ok": true})
}

/// What the panel asks the modal module to show (the viewer, a group's comparison sheet,
/// the edit form): the modal module is its own wasm module (the panel alone would pass the
/// size limit), loaded when first needed; this crosses between them as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalSpec {
    /// The host's base URL.
    pub base: String,
    /// Its bearer token (empty: none).
    pub token: String,
    /// Whether this is the web app (no "send to").
    pub web: bool,
    /// What to show.
    pub modal: Modal,
}

/// One modal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Modal {
    /// The full-size viewer over these tasks, opened at `start`.
    Viewer {
        /// The list it walks through.
        tasks: Vec<Task>,
        /// The task it opens on.
        start: usize,
    },
    /// The comparison sheet of a group.
    Sheet {
        /// The group.
        group_id: String,
    },
    /// The edit form of a pending task.
    Edit {
        /// The task.
        task: Box<Task>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_tagged_by_type_in_kebab_case() {
        let m = ToWorker::FillPage {
            tab: Tab::Img2img,
            params: json!({"prompt": "p"}).as_object().unwrap().clone(),
            task_id: None,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "fill-page", "tab": "img2img", "params": {"prompt": "p"}})
        );
        let with_task: ToWorker = serde_json::from_value(
            json!({"type": "fill-page", "tab": "control", "params": {}, "task_id": "t1"}),
        )
        .unwrap();
        assert!(
            matches!(with_task, ToWorker::FillPage { tab: Tab::Control, task_id: Some(ref t), .. } if t == "t1")
        );
        // A tab the extension does not know is refused with the message.
        assert!(
            serde_json::from_value::<ToWorker>(
                json!({"type": "fill-page", "tab": "extras", "params": {}})
            )
            .is_err()
        );
        let mut request = EnqueueRequest {
            checkpoint: Some("*".into()),
            ..EnqueueRequest::default()
        };
        request.params.insert("prompt".into(), json!("x"));
        let m = ToWorker::Enqueue {
            task_type: TaskType::Img2img,
            request,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            json!({"type": "enqueue", "task_type": "img2img",
                   "request": {"checkpoint": "*", "prompt": "x"}})
        );
        assert_eq!(serde_json::from_value::<ToWorker>(v).unwrap(), m);
        assert_eq!(
            serde_json::to_value(ToContent::Capture { tab: None }).unwrap(),
            json!({"type": "capture"})
        );
        assert!(serde_json::from_value::<ToWorker>(json!({"type": "host", "path": "/"})).is_err());
    }

    #[test]
    fn replies_carry_data_or_an_error() {
        let ok: Reply<Filled> = Ok(Filled { filled: 3 }).into();
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v, json!({"ok": true, "data": {"filled": 3}}));
        assert_eq!(Reply::<Filled>::decode(v), Ok(Filled { filled: 3 }));
        let err = serde_json::to_value(Reply::<Filled>::from(Err("no tab".into()))).unwrap();
        assert_eq!(err, json!({"ok": false, "error": "no tab"}));
        assert_eq!(Reply::<Filled>::decode(err), Err("no tab".into()));
        assert_eq!(Reply::<()>::decode(ok_reply()), Ok(()));
        assert_eq!(
            Reply::<()>::decode(Value::Null),
            Err("no answer from the extension".into())
        );
    }
}
