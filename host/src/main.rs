//! `agent-scheduler` binary.
fn main() {}
