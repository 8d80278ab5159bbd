//! Test support: the harness that starts real processes, and the recorded fixtures.
//!
//! The fake SD.Next is its own crate (`tests/fake-sdnext`, library `fake_sdnext` and binary
//! `fake-sdnext`); it does not depend on the host.
//!
//! - [`bulk`]: large queues written straight through the host's store (benchmarks).
//! - [`door`]: the requests SD.Next refuses, each with its path, reason and valid twin.
//! - [`fake_args`]: the fake SD.Next's options, typed ([`fake_args::FakeArgs`]), for a fake
//!   process or an in-process one alike.
//! - [`fixtures`]: where the recorded SD.Next data lives (`../shared/fixtures`).
//! - [`inprocess`]: the real host inside the test process (`agent_scheduler::run` on port 0),
//!   driven through the typed client.
//! - [`pg`]: a throw-away PostgreSQL database per test (`AGENT_SCHEDULER_TEST_PG`).
//! - [`harness`]: start the real `agent-scheduler` and `fake-sdnext` binaries as child
//!   processes, wait on conditions, talk to the host with typed requests.

pub mod bulk;
pub mod door;
pub mod fake_args;
pub mod fixtures;
pub mod harness;
pub mod inprocess;
pub mod pg;
