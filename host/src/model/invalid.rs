//! Why a request was refused: [`Invalid`], the error of the model's checks of what a person
//! or a client sends (an enqueue body, its image fields, a callback URL, an import item).
//! Always a 422. A module of its own so that every check can name it without importing
//! another check.

/// Why a body was refused (always a 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
