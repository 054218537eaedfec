//! What an admin verb answers: a JSON value, or the error reply
//! `{"error": {"code", "field", "rule", "message"}}` whose `code` says what to
//! do — `invalid` (fix the request), `not_found`, `unavailable` (try again) —
//! and the helper that runs a verb's store work off the async threads. Below
//! every verb module, so that they share it without importing each other.

use std::sync::Arc;

use signalbox_model::{ErrorReply, FieldError};

use crate::shared::Shared;

pub(crate) type AdminResult = Result<serde_json::Value, ErrorReply>;

pub(crate) async fn blocking<F>(shared: &Arc<Shared>, f: F) -> AdminResult
where
    F: FnOnce(&Shared) -> AdminResult + Send + 'static,
{
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || f(&shared))
        .await
        .unwrap_or_else(|e| Err(ErrorReply::unavailable(format!("internal error: {e}"))))
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> ErrorReply {
    ErrorReply::unavailable(e.to_string())
}

pub(crate) fn not_found(field: &str, rule: String) -> ErrorReply {
    let mut reply = ErrorReply::invalid(&FieldError::new(field, rule));
    reply.error.code = "not_found".into();
    reply
}

pub(crate) fn invalid(e: FieldError) -> ErrorReply {
    ErrorReply::invalid(&e)
}
