//! The enabled SD.Next sites (`crate::state::sites` is the pure part): the popup and the
//! options page enable one on the user's click (the origin's optional host permission is
//! requested in that gesture, then the site is stored); the service worker keeps the
//! registered content scripts equal to the stored sites whose permission is still granted
//! ([`sync`]: at its start, when the stored list changes, when a permission is added or
//! removed — revoking one in the browser's own UI removes the site and its scripts).

use serde_json::{Value, json};

use super::chrome;
use crate::state::sites::{self, STORAGE_KEY, Site};

/// Id of the registered content script (the Rust side) for the enabled sites.
pub const CONTENT_ID: &str = "sdq-sites";
/// Id of the registered page-world bridge for the enabled sites.
pub const BRIDGE_ID: &str = "sdq-sites-bridge";

/// The stored sites.
pub async fn stored() -> Vec<Site> {
    sites::from_json(&chrome::storage_get(STORAGE_KEY).await)
}

async fn save(list: &[Site]) {
    chrome::storage_set(STORAGE_KEY, &serde_json::to_value(list).unwrap_or_default()).await;
}

/// Stores `site` as enabled (after its permission was granted); the worker then registers
/// its content scripts.
pub async fn add(site: Site) {
    save(&sites::with(&stored().await, site)).await;
}

/// Disables a site: its permission is given back, it leaves the list, and the worker
/// unregisters its content scripts.
pub async fn remove(pattern: &str) -> Result<(), String> {
    save(&sites::without(&stored().await, pattern)).await;
    chrome::permissions_remove(&[pattern.to_owned()]).await
}

/// The content script and the bridge into an open tab right away (a page enabled from the
/// popup gets its Enqueue button without a reload). Each script guards against a second run.
pub async fn inject(tab: i32) -> Result<(), String> {
    chrome::execute_files(tab, &["bridge.js"], true).await?;
    chrome::execute_files(tab, &["content.js"], false).await
}

/// Makes the registered content scripts match the stored sites whose host permission is
/// granted (sites whose permission was revoked are dropped from the list). Returns the
/// patterns now registered.
pub async fn sync() -> Result<Vec<String>, String> {
    let list = stored().await;
    let mut kept = Vec::with_capacity(list.len());
    for s in &list {
        if chrome::permissions_contain(std::slice::from_ref(&s.pattern)).await {
            kept.push(s.clone());
        }
    }
    if kept.len() != list.len() {
        save(&kept).await;
    }
    let want: Vec<String> = kept.iter().map(|s| s.pattern.clone()).collect();
    let have = chrome::registered_scripts(&[CONTENT_ID, BRIDGE_ID]).await;
    let matches_of = |id: &str| -> Option<Vec<String>> {
        let s = have.iter().find(|s| s["id"] == id)?;
        serde_json::from_value(s["matches"].clone()).ok()
    };
    let same = |id: &str| matches_of(id).unwrap_or_default() == want;
    if same(CONTENT_ID) && same(BRIDGE_ID) {
        return Ok(want);
    }
    chrome::unregister_scripts(&[CONTENT_ID, BRIDGE_ID]).await;
    if !want.is_empty() {
        chrome::register_scripts(&scripts(&want)).await?;
    }
    Ok(want)
}

/// The registrations for `patterns`: the same two scripts the manifest declares for
/// loopback, persisted by the browser (and re-checked by [`sync`] at every start).
fn scripts(patterns: &[String]) -> Value {
    json!([
        { "id": CONTENT_ID, "matches": patterns, "js": ["content.js"],
          "runAt": "document_idle", "persistAcrossSessions": true },
        { "id": BRIDGE_ID, "matches": patterns, "js": ["bridge.js"],
          "runAt": "document_idle", "world": "MAIN", "persistAcrossSessions": true },
    ])
}
