//! The agent-scheduler host: a durable task queue that feeds SD.Next servers.
pub mod config;
pub mod queue;
pub mod results;
pub mod sdnext;
pub mod store;
