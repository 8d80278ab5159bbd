//! Test-only: `POST /agent-scheduler/v1/test/faults` `{"disk_full": bool, "files_full": bool,
//! "hold_finishes": bool}` turns the "no space" fault on or off (the store and the results
//! writer, or the results writer only), and holds every run's end before anything of it is
//! written (`hold_finishes`, so a test can act between a run's answer and its record).
//! Compiled only with the `fault-injection` feature and merged into the router only when the
//! process started with `AGENT_SCHEDULER_TEST_FAULTS`; not in the OpenAPI document.

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use serde::Deserialize;

use crate::disk::Disk;
use crate::queue::Queue;

/// The faults to set.
#[derive(Debug, Deserialize)]
struct Faults {
    #[serde(default)]
    disk_full: bool,
    #[serde(default)]
    files_full: bool,
    #[serde(default)]
    hold_finishes: bool,
}

/// The route, bound to the host's disk and queue.
pub fn router(disk: Arc<Disk>, queue: Arc<Queue>) -> Router {
    Router::new().route(
        "/agent-scheduler/v1/test/faults",
        post(move |axum::Json(f): axum::Json<Faults>| {
            let (disk, queue) = (disk.clone(), queue.clone());
            async move {
                tracing::warn!(
                    "test fault injection: disk_full={} files_full={} hold_finishes={}",
                    f.disk_full,
                    f.files_full,
                    f.hold_finishes
                );
                disk.inject(f.disk_full, f.files_full);
                queue.hold_finishes(f.hold_finishes);
                axum::Json(serde_json::json!({"success": true}))
            }
        }),
    )
}
