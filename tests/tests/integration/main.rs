//! The one integration test binary. Each area is a module: add `mod name;` below and a file
//! `tests/tests/integration/name.rs` next to this one. Shared helpers live in the
//! `scheduler_tests` library (`harness`, `fixtures`); the fake SD.Next is the `fake_sdnext` crate.

mod api_client;
mod bounds_backends;
mod bounds_callbacks;
mod bounds_connections;
mod bounds_exports;
mod bounds_faults_route;
mod bounds_full_disk;
mod bounds_ids;
mod browser_e2e;
mod browser_workbench;
mod cli;
mod contract_table;
mod fake_behaviour;
mod fake_fixtures;
mod harness_host;
mod harness_selftest;
mod host_api;
mod host_backends;
mod host_callbacks;
mod host_clock;
mod host_control;
mod host_disk;
mod host_door;
mod host_faults;
mod host_fence;
mod host_hostile_input;
mod host_http_limits;
mod host_images;
mod host_inprocess;
mod host_policy;
mod host_pool;
mod host_queue;
mod host_resilience;
mod host_security;
mod host_store;
mod host_support;
mod host_workbench;
mod live_capture;
mod live_sdnext;
mod migrate_store;
mod multihost;
mod results_storage;
mod sdnext_client;
mod store_contract;
