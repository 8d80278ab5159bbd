//! The intake service: enqueue (with checkpoint expansion and idempotency keys) and import.
//! Bodies arrive typed ([`EnqueueRequest`]); [`TaskSpec::parse`] gives them meaning, and the
//! pool's request contract ([`crate::model::contract`]) checks them before anything is
//! written: a refusal names the field's path and leaves no task, event or idempotency key.
//! An import is read as a stream ([`ImportReader`]): one item at a time, each checked like
//! an enqueue, at most `import_max_items` of them.
//!
//! Everything it reads and writes goes through the [`Queue`]: an idempotency key is looked
//! up once, before the body is checked (a retry gets the first answer, whatever the contract
//! says now), and the insert that stores the answer takes the key only if it is still free
//! (two first requests with one key: one inserts, the other gets its answer).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use scheduler_api::{
    EnqueueRequest, EnqueueResponse, IMPORT_REJECTIONS_SHOWN, ImportRejection, ImportResponse,
    TaskType,
};
use serde_json::Value;

use crate::backends::Backends;
use crate::callbacks::check_url;
use crate::error::HostError;
use crate::model::Invalid;
use crate::model::callback::CallbackRules;
use crate::model::contract::{Contract, Violation};
use crate::model::import::{ImportReader, ReadError, import_item};
use crate::model::spec::{expand_checkpoints, expansion_ids};
use crate::model::{CheckpointSpec, NewTask, TaskSpec};
use crate::queue::Queue;

/// Enqueue and import.
pub struct Intake {
    queue: Arc<Queue>,
    backends: Arc<Backends>,
    callback_rules: Arc<CallbackRules>,
}

/// What an import gathered so far.
#[derive(Default)]
struct Gathered {
    tasks: Vec<NewTask>,
    rejected: Vec<ImportRejection>,
    rejected_count: usize,
}

impl Intake {
    /// The service. `callback_rules` say where callback URLs may point.
    pub fn new(
        queue: Arc<Queue>,
        backends: Arc<Backends>,
        callback_rules: Arc<CallbackRules>,
    ) -> Intake {
        Intake {
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

    /// Checks a parsed body against the pool's request contract (types, the checks SD.Next
    /// lacks, names); a name no list has refreshes the lists in the background.
    fn check_contract(&self, contract: &Contract, spec: &TaskSpec) -> Result<(), Violation> {
        let checkpoint = match &spec.checkpoint {
            CheckpointSpec::Title(t) => Some(t.as_str()),
            _ => None,
        };
        crate::model::contract::check_text("name", spec.name.as_deref())?;
        contract
            .check(
                spec.task_type,
                &spec.request,
                checkpoint,
                spec.vae.as_deref(),
            )
            .inspect_err(|v| {
                if v.unknown_name {
                    self.backends.refresh_on_miss();
                }
            })
    }

    /// Enqueues a body (expanding `*` / `<folder>/*`), idempotently per key.
    pub async fn enqueue(
        &self,
        task_type: TaskType,
        body: EnqueueRequest,
        idempotency_key: Option<String>,
    ) -> Result<EnqueueResponse, HostError> {
        if let Some(key) = &idempotency_key
            && let Some(prev) = self.queue.idempotent_answer(key.clone()).await?
        {
            return decode_answer(&prev);
        }
        let spec = TaskSpec::parse(task_type, body)?;
        self.check_contract(&self.backends.contract(), &spec)?;
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

    /// Imports an export (`{"content": "<JSON text of an array>"}`) read from `body` as it
    /// arrives: each item is checked like an enqueue; rejected ones are counted and the
    /// first [`IMPORT_REJECTIONS_SHOWN`] reported; the valid ones are appended at the end,
    /// in one write. More than `max_items` items: 413, nothing imported.
    pub async fn import<S>(&self, mut body: S, max_items: u32) -> Result<ImportResponse, HostError>
    where
        S: Stream<Item = Result<Bytes, HostError>> + Unpin,
    {
        let contract = self.backends.contract();
        let mut reader = ImportReader::new();
        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut got = Gathered::default();
        let mut index = 0usize;
        let mut end = false;
        while !end {
            match body.next().await {
                Some(chunk) => reader.feed(&chunk?, &mut items).map_err(read_error)?,
                None => {
                    reader.finish(&mut items).map_err(read_error)?;
                    end = true;
                }
            }
            if reader.items() > max_items as usize {
                return Err(HostError::TooLarge(format!(
                    "the import holds more than {max_items} items (setting import_max_items); nothing was imported"
                )));
            }
            for item in items.drain(..) {
                self.import_one(index, &item, &contract, &mut got).await?;
                index += 1;
            }
        }
        let Gathered {
            mut tasks,
            rejected,
            rejected_count,
        } = got;
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
                rejected_count
            ),
            imported,
            rejected,
            rejected_count,
        })
    }

    /// One item of an import: kept as a task, or counted (and listed) as rejected.
    async fn import_one(
        &self,
        index: usize,
        raw: &[u8],
        contract: &Contract,
        got: &mut Gathered,
    ) -> Result<(), HostError> {
        let item: Value = serde_json::from_slice(raw).map_err(|e| {
            HostError::Invalid(format!(
                "Import failed: content is not JSON: item {index}: {e}"
            ))
        })?;
        // Kept: (id, bookmarked, spec); rejected: (reason, path).
        type Parsed = Result<(Option<String>, bool, TaskSpec), (String, Option<String>)>;
        let parsed: Parsed = match import_item(&item).and_then(|it| {
            let spec = TaskSpec::parse(it.task_type, it.body)?;
            Ok((it.id, it.bookmarked, spec))
        }) {
            Err(e) => Err((e.0, None)),
            Ok((id, bookmarked, spec)) => match self.check_contract(contract, &spec) {
                Err(v) => Err((v.message, Some(v.path))),
                Ok(()) => match self.check_callback(spec.callback_url.as_deref()).await {
                    Err(e) => Err((e.0, None)),
                    Ok(()) => Ok((id, bookmarked, spec)),
                },
            },
        };
        match parsed {
            Ok((id, bookmarked, spec)) => got.tasks.push(NewTask {
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
            Err((reason, path)) => {
                got.rejected_count += 1;
                if got.rejected.len() < IMPORT_REJECTIONS_SHOWN {
                    got.rejected.push(ImportRejection {
                        index,
                        id: item.get("id").and_then(Value::as_str).map(str::to_owned),
                        reason,
                        path,
                    });
                }
            }
        }
        Ok(())
    }
}

fn read_error(e: ReadError) -> HostError {
    match e {
        ReadError::Malformed(m) => HostError::BadRequest(format!("malformed JSON body: {m}")),
        ReadError::Invalid(m) => HostError::Invalid(m),
    }
}

fn decode_answer(stored: &str) -> Result<EnqueueResponse, HostError> {
    serde_json::from_str(stored).map_err(|e| HostError::Internal(e.to_string()))
}
