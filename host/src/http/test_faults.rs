//! Test-only: `POST /agent-scheduler/v1/test/faults` `{"disk_full": bool, "files_full": bool}`
//! turns the "no space" fault on or off (the store and the results writer, or the results
//! writer only). Compiled only with the `fault-injection` feature and merged into the router
//! only when the process started with `AGENT_SCHEDULER_TEST_FAULTS`; not in the OpenAPI
//! document.

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use serde::Deserialize;

use crate::disk::Disk;

/// The faults to set.
#[derive(Debug, Deserialize)]
struct Faults {
    #[serde(default)]
    disk_full: bool,
    #[serde(default)]
    files_full: bool,
}

/// The route, bound to the host's disk.
pub fn router(disk: Arc<Disk>) -> Router {
    Router::new().route(
        "/agent-scheduler/v1/test/faults",
        post(move |axum::Json(f): axum::Json<Faults>| {
            let disk = disk.clone();
            async move {
                tracing::warn!(
                    "test fault injection: disk_full={} files_full={}",
                    f.disk_full,
                    f.files_full
                );
                disk.inject(f.disk_full, f.files_full);
                axum::Json(serde_json::json!({"success": true}))
            }
        }),
    )
}
