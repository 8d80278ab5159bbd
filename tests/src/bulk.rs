//! Bulk set-up of large queues for benchmarks: fills a data directory's database directly
//! through the host's store (`agent_scheduler::store`), so a 100k + 100k queue is built in
//! seconds without growing the public API. Every status change still goes through the
//! transition function (claim, then the end of the run).

use std::path::Path;

use agent_scheduler::clock::Clock;
use agent_scheduler::model::NewTask;
use agent_scheduler::model::transition::{Event, Policy, RunEnd};
use agent_scheduler::store::{Store, StoreError, tasks, transitions};
use scheduler_api::TaskType;
use serde_json::{Map, Value, json};

/// The word found in every other prompt (a "common word" for search benchmarks).
pub const COMMON_WORD: &str = "masterpiece";

/// The checkpoints seeded tasks cycle through (`a`, `b`, `c`).
pub const SEED_CHECKPOINTS: [&str; 3] = ["a", "b", "c"];

const WORDS: &[&str] = &[
    "fox",
    "castle",
    "forest",
    "river",
    "portrait",
    "city",
    "night",
    "sunset",
    "dragon",
    "robot",
    "garden",
    "ocean",
    "mountain",
    "desert",
    "winter",
    "rain",
    "neon",
    "village",
    "temple",
    "bridge",
    "lantern",
    "owl",
    "cat",
    "ship",
    "tower",
    "meadow",
    "storm",
    "glacier",
    "market",
    "library",
    "train",
    "harbor",
    "canyon",
    "volcano",
    "orchard",
    "cathedral",
    "alley",
    "lake",
    "moon",
    "comet",
];

/// The ids a seeding wrote: finished ones (oldest first) and pending ones (queue order).
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// Finished (`done`) task ids, oldest first.
    pub finished: Vec<String>,
    /// Pending task ids, in queue order.
    pub pending: Vec<String>,
}

fn prompt(i: usize) -> String {
    let mut words: Vec<&str> = (0..8)
        .map(|k| WORDS[(i.wrapping_mul(7919) + k * 104_729) % WORDS.len()])
        .collect();
    if i.is_multiple_of(2) {
        words.push(COMMON_WORD);
    }
    format!("{} seed{i}", words.join(" "))
}

/// One small txt2img task: 1 step, 8×8, checkpoint `a`/`b`/`c` in turn.
pub fn seed_task(i: usize) -> NewTask {
    let request: Map<String, Value> = match json!({
        "prompt": prompt(i),
        "negative_prompt": "blurry",
        "steps": 1,
        "width": 8,
        "height": 8,
        "seed": i,
        "sampler_name": "Euler a",
        "cfg_scale": 6,
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    NewTask {
        id: uuid::Uuid::new_v4().to_string(),
        task_type: TaskType::Txt2img,
        name: None,
        request,
        page_snapshot: None,
        checkpoint: Some(SEED_CHECKPOINTS[i % SEED_CHECKPOINTS.len()].to_owned()),
        vae: None,
        callback_url: None,
        bookmarked: false,
        group_id: None,
    }
}

const CHUNK: usize = 5_000;

/// Writes `finished` done tasks (finished one second apart, oldest first) and then `pending`
/// pending tasks into `<data_dir>/queue.sqlite3` (created and migrated if needed). The host
/// must not be running on that directory.
pub fn seed_database(
    data_dir: &Path,
    finished: usize,
    pending: usize,
) -> Result<Seeded, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Migration(e.to_string()))?;
    let store = Store::open(&data_dir.join("queue.sqlite3"))?;
    let policy = Policy::from(&scheduler_api::Settings::default());
    let mut out = Seeded::default();
    let now = Clock::system().now_ms();
    let start = now - finished as i64 * 1000;
    let mut i = 0;
    while out.finished.len() < finished {
        let n = CHUNK.min(finished - out.finished.len());
        let batch: Vec<NewTask> = (i..i + n).map(seed_task).collect();
        let ids: Vec<String> = batch.iter().map(|t| t.id.clone()).collect();
        store.call_sync(move |c| tasks::insert_tasks(c, &batch, None, now))?;
        let mut events = Vec::with_capacity(2 * n);
        for (k, id) in ids.iter().enumerate() {
            events.push((
                id.clone(),
                Event::Claim {
                    backend: "http://seed".into(),
                    fence: (i + k) as i64 + 1,
                },
            ));
            events.push((
                id.clone(),
                Event::Finished {
                    end: RunEnd::Done,
                    at: start + (i + k) as i64 * 1000,
                },
            ));
        }
        store.call_sync(move |c| transitions::apply_batch(c, &events, &policy, now))?;
        out.finished.extend(ids);
        i += n;
    }
    while out.pending.len() < pending {
        let n = CHUNK.min(pending - out.pending.len());
        let batch: Vec<NewTask> = (i..i + n).map(seed_task).collect();
        out.pending.extend(batch.iter().map(|t| t.id.clone()));
        store.call_sync(move |c| tasks::insert_tasks(c, &batch, None, now))?;
        i += n;
    }
    Ok(out)
}
