//! The agent-scheduler host: a durable task queue that feeds SD.Next servers.
