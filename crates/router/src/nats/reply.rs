//! Replies to NATS requests: one JSON body to the request's reply subject.
//! A failed reply is logged and never fatal (the requester times out and may
//! retry; every request signalbox answers is safe to retry).

/// Sends a JSON reply; failures are logged, never fatal.
pub(crate) async fn respond<T: serde::Serialize>(
    client: &async_nats::Client,
    subject: async_nats::Subject,
    body: &T,
) {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not encode a reply");
            return;
        }
    };
    if let Err(e) = client.publish(subject, bytes.into()).await {
        tracing::warn!(error = %e, "could not send a reply");
    }
}
