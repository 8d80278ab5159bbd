//! The intake service: enqueue (with checkpoint expansion and idempotency keys) and import.
//! Bodies arrive typed ([`EnqueueRequest`]); [`TaskSpec::parse`] gives them meaning.

use std::collections::HashSet;
use std::sync::Arc;

use scheduler_api::{EnqueueRequest, EnqueueResponse, ImportRejection, ImportResponse, TaskType};
use serde_json::Value;

use crate::backends::Backends;
use crate::callbacks::check_url;
use crate::error::HostError;
use crate::model::Invalid;
use crate::model::callback::CallbackRules;
use crate::model::import::import_item;
use crate::model::spec::{expand_checkpoints, expansion_ids};
use crate::model::{CheckpointSpec, NewTask, TaskSpec};
use crate::queue::Queue;
use crate::store::{Store, tasks};

/// Enqueue and import.
pub struct Intake {
    store: Store,
    queue: Arc<Queue>,
    backends: Arc<Backends>,
    callback_rules: Arc<CallbackRules>,
}

impl Intake {
    /// The service. `callback_rules` say where callback URLs may point.
    pub fn new(
        store: Store,
        queue: Arc<Queue>,
        backends: Arc<Backends>,
        callback_rules: Arc<CallbackRules>,
    ) -> Intake {
        Intake {
            store,
            queue,
            backends,
            callback_rules,
        }
    }

    /// Refuses a callback URL that points where callbacks may not go (422).
    async fn check_callback(&self, url: Option<&str>) -> Result<(), Invalid> {
        match url {
            Some(u) => check_url(&self.callback_rules, u).await.map_err(Invalid),
            None => Ok(()),
        }
    }

    /// Enqueues a body (expanding `*` / `<folder>/*`), idempotently per key.
    pub async fn enqueue(
        &self,
        task_type: TaskType,
        body: EnqueueRequest,
        idempotency_key: Option<String>,
    ) -> Result<EnqueueResponse, HostError> {
        if let Some(key) = &idempotency_key {
            let k = key.clone();
            if let Some(prev) = self
                .store
                .read(move |c| tasks::idempotent_answer(c, &k))
                .await?
            {
                return decode_answer(&prev);
            }
        }
        let spec = TaskSpec::parse(task_type, body)?;
        self.check_callback(spec.callback_url.as_deref()).await?;
        let titles: Vec<String> = if spec.checkpoint.is_pattern() {
            self.backends
                .checkpoints()
                .await?
                .into_iter()
                .map(|c| c.title)
                .collect()
        } else {
            Vec::new()
        };
        let checkpoints = expand_checkpoints(&spec.checkpoint, &titles)?;
        let ids = expansion_ids(checkpoints.len());
        // One "all checkpoints" / folder enqueue is a group (its comparison sheet).
        let group_id = spec
            .checkpoint
            .is_pattern()
            .then(|| uuid::Uuid::new_v4().to_string());
        let tasks: Vec<NewTask> = ids
            .iter()
            .zip(checkpoints)
            .map(|(id, ck)| NewTask {
                id: id.clone(),
                task_type,
                name: spec.name.clone(),
                request: spec.request.clone(),
                page_snapshot: spec.page_snapshot.clone(),
                checkpoint: ck,
                vae: spec.vae.clone(),
                callback_url: spec.callback_url.clone(),
                bookmarked: false,
                group_id: group_id.clone(),
            })
            .collect();
        let answer = EnqueueResponse {
            task_id: ids[0].clone(),
            task_ids: ids,
        };
        let answer_json =
            serde_json::to_string(&answer).map_err(|e| HostError::Internal(e.to_string()))?;
        match self
            .queue
            .insert(tasks, idempotency_key.map(|k| (k, answer_json)))
            .await?
        {
            Some(prev) => decode_answer(&prev),
            None => Ok(answer),
        }
    }

    /// Imports an export array; every rejected item is reported, valid ones are appended.
    pub async fn import(&self, content: &str) -> Result<ImportResponse, HostError> {
        let items: Vec<Value> = match serde_json::from_str::<Value>(content) {
            Ok(Value::Array(a)) => a,
            Ok(_) => {
                return Err(HostError::Invalid(
                    "Import failed: content is not a JSON array".into(),
                ));
            }
            Err(e) => {
                return Err(HostError::Invalid(format!(
                    "Import failed: content is not JSON: {e}"
                )));
            }
        };
        let mut rejected = Vec::new();
        let mut tasks: Vec<NewTask> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let mut parsed = import_item(item).and_then(|it| {
                let spec = TaskSpec::parse(it.task_type, it.body)?;
                Ok((it.id, it.bookmarked, spec))
            });
            if let Ok((_, _, spec)) = &parsed
                && let Err(e) = self.check_callback(spec.callback_url.as_deref()).await
            {
                parsed = Err(e);
            }
            match parsed {
                Ok((id, bookmarked, spec)) => tasks.push(NewTask {
                    id: id.unwrap_or_default(),
                    task_type: spec.task_type,
                    name: spec.name,
                    request: spec.request,
                    page_snapshot: spec.page_snapshot,
                    checkpoint: match spec.checkpoint {
                        CheckpointSpec::Title(t) => Some(t),
                        _ => None,
                    },
                    vae: spec.vae,
                    callback_url: spec.callback_url,
                    bookmarked,
                    group_id: None,
                }),
                Err(e) => rejected.push(ImportRejection {
                    index,
                    id: item.get("id").and_then(Value::as_str).map(str::to_owned),
                    reason: e.0,
                }),
            }
        }
        // Keep ids that are free; give the others new ones.
        let taken = self
            .queue
            .exists(tasks.iter().map(|t| t.id.clone()).collect())
            .await?;
        let mut seen = HashSet::new();
        for (t, taken) in tasks.iter_mut().zip(taken) {
            if t.id.is_empty() || taken || !seen.insert(t.id.clone()) {
                t.id = uuid::Uuid::new_v4().to_string();
            }
        }
        let imported: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        if !tasks.is_empty() {
            self.queue.insert(tasks, None).await?;
        }
        Ok(ImportResponse {
            success: true,
            message: format!(
                "Imported {} tasks; {} rejected",
                imported.len(),
                rejected.len()
            ),
            imported,
            rejected,
        })
    }
}

fn decode_answer(stored: &str) -> Result<EnqueueResponse, HostError> {
    serde_json::from_str(stored).map_err(|e| HostError::Internal(e.to_string()))
}
