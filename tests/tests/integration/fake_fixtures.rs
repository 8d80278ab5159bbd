//! Fake vs fixtures (to come).
