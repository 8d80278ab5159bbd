//! Test support: the fake SD.Next server and the harness that starts real processes.
//!
//! - [`fake_sdnext`]: an in-process (or stand-alone, binary `fake-sdnext`) SD.Next stand-in
//!   that follows the recorded behaviour of a real server, quirks included.
//! - [`harness`]: start the real `agent-scheduler` and `fake-sdnext` binaries as child
//!   processes, wait on conditions, talk to the host with typed requests.

pub mod fake_sdnext;
pub mod fixtures;
pub mod harness;
