//! HTTP answers for the JSON error reply every route shares
//! (`{"error": {"code", "field", "rule", "message"}}`): its `code` picks the
//! status — `invalid` → 400, `not_found` → 404, anything else (`unavailable`)
//! → 503 — for the admin API and the webhook routes alike.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use signalbox_model::ErrorReply;

/// The status an error reply is sent with.
pub(crate) fn status_of(e: &ErrorReply) -> StatusCode {
    match e.error.code.as_str() {
        "invalid" => StatusCode::BAD_REQUEST,
        "not_found" => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The error reply as a response with its status.
pub(crate) fn error_response(e: ErrorReply) -> Response {
    (status_of(&e), axum::Json(e)).into_response()
}
