//! The agent-scheduler browser extension.
