//! The lineage page: `GET /lineage` and its assets under `/lineage/...`.
//!
//! Three static files compiled into the binary (`assets/lineage/`): the HTML
//! shell, a small self-contained script that fetches the `/v1` JSON routes
//! (`signals.search`, `lineage.export`, `explain`, `sub.ls`) and draws the graph
//! as SVG in columns producer → signal → subscription → firing → target, and a
//! style sheet. Nothing is fetched from elsewhere and nothing is built: no npm.
//! The page itself needs no token (it holds no data); its data requests carry
//! the admin token the user gives it (an input kept in `sessionStorage`, or a
//! `#token=` fragment, which the page removes from the address bar). The
//! answers forbid inline scripts and any other origin (Content-Security-Policy).

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::shared::Shared;

const INDEX_HTML: &str = include_str!("../../assets/lineage/index.html");
const LINEAGE_JS: &str = include_str!("../../assets/lineage/lineage.js");
const LINEAGE_CSS: &str = include_str!("../../assets/lineage/lineage.css");

/// Only this origin, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page's routes, merged into the HTTP listener's router.
pub(crate) fn routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route(
            "/lineage",
            get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route("/lineage/{asset}", get(asset))
}

async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "lineage.js" => page("text/javascript; charset=utf-8", LINEAGE_JS),
        "lineage.css" => page("text/css; charset=utf-8", LINEAGE_CSS),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
