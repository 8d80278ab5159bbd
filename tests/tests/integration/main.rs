//! The one integration test binary. Each area is a module; add `mod name;` below and a file
//! `tests/tests/integration/name.rs` to add one.

mod fake_fixtures;
