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

/// The project's `shared/` folder: `$SHARED_DIR` when set, else `../shared` beside the
/// repository (or beside the folder holding a git worktree, e.g. `worktrees/name`).
pub fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SHARED_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let root = workspace_root();
    let beside = root.join("../shared");
    if beside.is_dir() {
        return beside;
    }
    let above = root.join("../../shared");
    if above.is_dir() { above } else { beside }
}

/// The recorded API fixtures (`shared/fixtures/sdnext/api`, with its `INDEX.tsv`), an
/// [`available`](crate::harness::available) prerequisite: `None` (the test returns) when
/// absent outside CI; absent under `CI=true`, the test fails.
pub fn sdnext_api_fixtures() -> Option<PathBuf> {
    let dir = shared_dir().join("fixtures/sdnext/api");
    crate::harness::available(
        &format!("the recorded SD.Next fixtures at {}", dir.display()),
        dir.join("INDEX.tsv").is_file().then_some(dir.clone()),
        "the project's shared/ folder beside the repository, as ../shared, or SHARED_DIR",
    )
}

/// One recorded SD.Next page (`shared/fixtures/sdnext/ui/NAME`), an
/// [`available`](crate::harness::available) prerequisite.
pub fn sdnext_ui_page(name: &str) -> Option<PathBuf> {
    let p = shared_dir().join("fixtures/sdnext/ui").join(name);
    crate::harness::available(
        &format!("the recorded SD.Next page {}", p.display()),
        p.is_file().then_some(p.clone()),
        "the project's shared/ folder beside the repository, as ../shared, or SHARED_DIR",
    )
}
