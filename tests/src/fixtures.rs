//! Locating the recorded SD.Next fixtures (`<workspace root>/../shared/fixtures/sdnext/api`).
//! They are read at run time, never copied into the repository.

use std::path::PathBuf;

/// The workspace root (the parent of this package's folder).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The fixture folder, or `None` (with a skip message on stderr) when it is absent.
pub fn sdnext_api_fixtures(test: &str) -> Option<PathBuf> {
    let dir = workspace_root().join("../shared/fixtures/sdnext/api");
    if dir.join("INDEX.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP {test}: SD.Next fixtures not found at {} (../shared is absent)",
            dir.display()
        );
        None
    }
}
