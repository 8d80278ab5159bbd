//! Test support: the fake SD.Next server and the harness that starts real processes.
