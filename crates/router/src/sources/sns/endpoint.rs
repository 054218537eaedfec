//! The `POST /sns/{source}` handler: checks a delivery, then confirms, logs or
//! ingests it.
//!
//! Order of the checks (cheap ones first, so junk never causes a certificate
//! fetch): the source exists; raw delivery or JSON; the JSON shape and `Type`;
//! `SignatureVersion`; `SigningCertURL`; `TopicArn` in the allow-list;
//! `Timestamp` within `max_age` (and at most [`MAX_CLOCK_SKEW`] ahead); the
//! signature. Replies: 200 when handled; 404 unknown source; 400 a body that is
//! not an SNS message; 403 a message that fails an authenticity check
//! (certificate URL, topic, timestamp, signature, raw delivery not enabled);
//! 422 the adapter's reject; 503 when a retry may help (certificate or
//! SubscribeURL fetch failed, adapter retry, store failure) — SNS redelivers
//! on 5xx, and a redelivered notification keeps its `MessageId`, which is the
//! default signal id, so it is a duplicate.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use signalbox_model::{ErrorReply, FieldError};

use super::message::{MessageType, SnsMessage};
use super::rule::Rule;
use super::state::{Endpoints, SourceState};
use super::verify::{self, CertError};
use crate::config::sns::MAX_CLOCK_SKEW;
use crate::sources::adapter_output::{DecodeFailure, DefaultId, MessageOrigin, decode, incoming};

/// The transport name of SNS signals (origin, metrics).
pub(crate) const TRANSPORT: &str = "sns";

/// A message that is not taken: the rule, the status and why.
#[derive(Debug)]
struct Reject {
    rule: Rule,
    status: StatusCode,
    why: String,
}

impl Reject {
    fn new(rule: Rule, status: StatusCode, why: impl Into<String>) -> Reject {
        Reject {
            rule,
            status,
            why: why.into(),
        }
    }

    fn bad(rule: Rule, why: impl Into<String>) -> Reject {
        Reject::new(rule, StatusCode::BAD_REQUEST, why)
    }

    fn forbidden(rule: Rule, why: impl Into<String>) -> Reject {
        Reject::new(rule, StatusCode::FORBIDDEN, why)
    }
}

/// A failure that is not the sender's fault (503: SNS retries).
#[derive(Debug)]
struct Unavailable(String);

enum Outcome {
    Done(Response),
    Rejected(Reject),
    Unavailable(Unavailable),
}

impl From<Reject> for Outcome {
    fn from(r: Reject) -> Outcome {
        Outcome::Rejected(r)
    }
}

/// The axum handler of `POST /sns/{source}`.
pub(crate) async fn handle(
    State(ep): State<Arc<Endpoints>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let outcome = match ep.sns.source(&source) {
        None => Outcome::Rejected(Reject::new(
            Rule::Source,
            StatusCode::NOT_FOUND,
            format!("no SNS source {source:?}; configured: {:?}", ep.sns.names()),
        )),
        Some(src) => process(&ep, &src, &headers, &body).await,
    };
    match outcome {
        Outcome::Done(response) => response,
        Outcome::Rejected(r) => {
            tracing::warn!(
                source = %source,
                rule = r.rule.name(),
                reason = %r.why,
                "SNS message rejected"
            );
            ep.shared.metrics.reject("sns", r.rule.name());
            ep.count_rejected(r.rule);
            let reply = ErrorReply::invalid(&FieldError::new(r.rule.name(), r.why));
            (r.status, axum::Json(reply)).into_response()
        }
        Outcome::Unavailable(Unavailable(why)) => {
            tracing::warn!(source = %source, reason = %why, "SNS message not taken; SNS will retry");
            let reply = ErrorReply::unavailable(why);
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(reply)).into_response()
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn process(
    ep: &Endpoints,
    src: &Arc<SourceState>,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    let raw =
        header(headers, "x-amz-sns-rawdelivery").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if raw {
        return raw_delivery(ep, src, headers, body).await;
    }
    let msg = match SnsMessage::parse(body) {
        Ok(m) => m,
        Err((rule, why)) => return Reject::bad(rule, why).into(),
    };
    if let Err(r) = authenticate(ep, src, &msg).await {
        return r;
    }
    match msg.kind {
        MessageType::Notification => {
            let mut metadata = vec![
                ("message-id".to_string(), msg.message_id.clone()),
                ("type".to_string(), msg.kind.as_str().to_string()),
                ("timestamp".to_string(), msg.timestamp.clone()),
                ("raw".to_string(), "false".to_string()),
                ("source".to_string(), src.config.name.clone()),
            ];
            if let Some(subject) = &msg.subject {
                metadata.push(("subject".to_string(), subject.clone()));
            }
            deliver(
                ep,
                src,
                headers,
                body,
                &msg.topic_arn,
                &msg.message_id,
                metadata,
            )
            .await
        }
        MessageType::SubscriptionConfirmation => confirm(ep, src, &msg).await,
        MessageType::UnsubscribeConfirmation => {
            tracing::info!(
                source = %src.config.name,
                topic = %msg.topic_arn,
                "SNS unsubscribe confirmation received (the subscription is being deleted; visit SubscribeURL to keep it)"
            );
            Outcome::Done(
                (
                    StatusCode::OK,
                    axum::Json(json!({"type": msg.kind.as_str(), "topic_arn": msg.topic_arn})),
                )
                    .into_response(),
            )
        }
    }
}

/// Every check of a JSON message; `Err` is the outcome to answer with.
async fn authenticate(ep: &Endpoints, src: &SourceState, msg: &SnsMessage) -> Result<(), Outcome> {
    if !matches!(msg.signature_version.as_str(), "1" | "2") {
        return Err(Reject::forbidden(
            Rule::SignatureVersion,
            format!(
                "unsupported SignatureVersion {:?}: 1 (SHA1withRSA) or 2 (SHA256withRSA)",
                msg.signature_version
            ),
        )
        .into());
    }
    let cert_url = verify::check_cert_url(&msg.signing_cert_url)
        .map_err(|rule| Reject::forbidden(Rule::SigningCertUrl, rule))?;
    check_topic(src, &msg.topic_arn)?;
    let now = SystemTime::now();
    check_timestamp(&msg.timestamp, src.config.max_age, now)?;
    let cert = match src.pinned.get(&msg.signing_cert_url) {
        Some(cert) => cert.clone(),
        None => {
            let url = verify::fetch_url(&cert_url, src.endpoint.as_ref());
            match ep.sns.certs.get(&ep.sns.client, &url).await {
                Ok(cert) => cert,
                Err(CertError::Fetch(why)) => {
                    return Err(Outcome::Unavailable(Unavailable(format!(
                        "cannot fetch the signing certificate: {why}"
                    ))));
                }
                Err(CertError::Bad(why)) => {
                    return Err(Reject::forbidden(Rule::SigningCertUrl, why).into());
                }
            }
        }
    };
    cert.verify(
        &msg.signature_version,
        msg.string_to_sign().as_bytes(),
        &msg.signature,
        now,
    )
    .map_err(|why| Reject::forbidden(Rule::Signature, why))?;
    Ok(())
}

fn check_topic(src: &SourceState, topic: &str) -> Result<(), Reject> {
    if src.topics.contains(topic) {
        Ok(())
    } else {
        Err(Reject::forbidden(
            Rule::TopicArn,
            format!(
                "topic {topic:?} is not in sources.sns[{}].topic_arns",
                src.config.name
            ),
        ))
    }
}

fn check_timestamp(text: &str, max_age: Duration, now: SystemTime) -> Result<(), Reject> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            Reject::bad(
                Rule::Timestamp,
                format!("{text:?} is not an ISO 8601 time: {e}"),
            )
        })?;
    let at = SystemTime::from(at);
    if let Ok(age) = now.duration_since(at) {
        if age > max_age {
            return Err(Reject::forbidden(
                Rule::Timestamp,
                format!(
                    "the message is {} old, more than max_age {}",
                    humantime::format_duration(Duration::from_secs(age.as_secs())),
                    humantime::format_duration(max_age)
                ),
            ));
        }
    } else if let Ok(ahead) = at.duration_since(now)
        && ahead > MAX_CLOCK_SKEW
    {
        return Err(Reject::forbidden(
            Rule::Timestamp,
            format!(
                "the message is {} in the future (more than {} of clock skew)",
                humantime::format_duration(Duration::from_secs(ahead.as_secs())),
                humantime::format_duration(MAX_CLOCK_SKEW)
            ),
        ));
    }
    Ok(())
}

/// A raw message delivery: unsigned; only the topic is checked.
async fn raw_delivery(
    ep: &Endpoints,
    src: &Arc<SourceState>,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    if !src.config.raw_delivery {
        return Reject::forbidden(
            Rule::RawDelivery,
            format!(
                "raw message delivery is not enabled for this source (sources.sns[{}].raw_delivery = false); raw deliveries are not signed",
                src.config.name
            ),
        )
        .into();
    }
    match header(headers, "x-amz-sns-message-type") {
        Some("Notification") => {}
        other => {
            return Reject::bad(
                Rule::Type,
                format!(
                    "a raw delivery must be a Notification (x-amz-sns-message-type), not {other:?}"
                ),
            )
            .into();
        }
    }
    let Some(topic) = header(headers, "x-amz-sns-topic-arn") else {
        return Reject::forbidden(Rule::TopicArn, "header x-amz-sns-topic-arn is missing").into();
    };
    if let Err(r) = check_topic(src, topic) {
        return r.into();
    }
    let Some(message_id) = header(headers, "x-amz-sns-message-id").filter(|v| !v.is_empty()) else {
        return Reject::bad(Rule::MessageId, "header x-amz-sns-message-id is missing").into();
    };
    let metadata = vec![
        ("message-id".to_string(), message_id.to_string()),
        ("type".to_string(), "Notification".to_string()),
        ("raw".to_string(), "true".to_string()),
        ("source".to_string(), src.config.name.clone()),
    ];
    deliver(ep, src, headers, body, topic, message_id, metadata).await
}

/// A `SubscriptionConfirmation`: GET its SubscribeURL when configured to,
/// otherwise log it.
async fn confirm(ep: &Endpoints, src: &SourceState, msg: &SnsMessage) -> Outcome {
    let text = msg.subscribe_url.as_deref().unwrap_or_default();
    let url = match verify::check_subscribe_url(text) {
        Ok(u) => u,
        Err(rule) => return Reject::forbidden(Rule::SubscribeUrl, rule).into(),
    };
    let name = &src.config.name;
    if !src.config.confirm_subscriptions {
        tracing::info!(
            source = %name,
            topic = %msg.topic_arn,
            subscribe_url = %text,
            "SNS subscription confirmation received; not confirmed (confirm_subscriptions = false): visit the SubscribeURL to confirm"
        );
        return Outcome::Done(
            (
                StatusCode::OK,
                axum::Json(json!({"type": msg.kind.as_str(), "topic_arn": msg.topic_arn, "confirmed": false})),
            )
                .into_response(),
        );
    }
    let target = verify::fetch_url(&url, src.endpoint.as_ref());
    match verify::fetch_limited(&ep.sns.client, &target, 64 * 1024).await {
        Ok(_) => {
            tracing::info!(source = %name, topic = %msg.topic_arn, "SNS subscription confirmed");
            Outcome::Done(
                (
                    StatusCode::OK,
                    axum::Json(json!({"type": msg.kind.as_str(), "topic_arn": msg.topic_arn, "confirmed": true})),
                )
                    .into_response(),
            )
        }
        Err(why) => Outcome::Unavailable(Unavailable(format!(
            "cannot confirm the subscription: {why}"
        ))),
    }
}

/// A checked notification: the adapter decodes it, the signals are committed.
async fn deliver(
    ep: &Endpoints,
    src: &Arc<SourceState>,
    headers: &HeaderMap,
    body: &[u8],
    topic: &str,
    message_id: &str,
    metadata: Vec<(String, String)>,
) -> Outcome {
    let adapter = &src.config.adapter;
    let Some(plugin) = ep.shared.plugins.adapter(adapter) else {
        return Outcome::Unavailable(Unavailable(format!(
            "the adapter {adapter:?} is not loaded"
        )));
    };
    let mut envelope =
        signalbox_plugin::Envelope::new(signalbox_plugin::Transport::Sns, topic, body.to_vec());
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            envelope
                .headers
                .push((name.as_str().to_ascii_lowercase(), v.to_string()));
        }
    }
    envelope.metadata = metadata;
    let received_at_ms = envelope.received_at_ms;
    let signals = match decode(plugin, envelope).await {
        Ok(signals) => signals,
        Err(DecodeFailure::Retry(why)) => {
            return Outcome::Unavailable(Unavailable(format!("adapter {adapter}: {why}")));
        }
        Err(DecodeFailure::Rejected(why)) => {
            return Reject::new(
                Rule::Adapter,
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("adapter {adapter}: {why}"),
            )
            .into();
        }
    };
    ep.shared.metrics.received(TRANSPORT, signals.len() as u64);
    let batch = incoming(
        signals,
        MessageOrigin {
            transport: TRANSPORT,
            address: topic.to_string(),
            adapter,
            details: [
                ("message-id".to_string(), message_id.to_string()),
                ("source".to_string(), src.config.name.clone()),
            ]
            .into_iter()
            .collect(),
            traceparent: None,
            default_id: DefaultId::Message(message_id),
            received_at_ms,
        },
    );
    match ep.shared.commit(batch).await {
        Ok(acks) => {
            Outcome::Done((StatusCode::OK, axum::Json(json!({ "signals": acks }))).into_response())
        }
        Err(e) => Outcome::Unavailable(Unavailable(e.error.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        SystemTime::from(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .expect("time"),
        )
    }

    #[test]
    fn timestamps_within_max_age_and_skew() {
        let now = at("2026-01-01T12:00:00.000Z");
        let hour = Duration::from_secs(3600);
        assert!(check_timestamp("2026-01-01T11:30:00.000Z", hour, now).is_ok());
        assert!(check_timestamp("2026-01-01T12:04:00.000Z", hour, now).is_ok());
        for (text, why) in [
            ("2026-01-01T10:59:00.000Z", "max_age"),
            ("2026-01-01T12:06:00.000Z", "future"),
            ("yesterday", "ISO 8601"),
        ] {
            let r = check_timestamp(text, hour, now).expect_err(text);
            assert_eq!(r.rule, Rule::Timestamp);
            assert!(r.why.contains(why), "{text}: {}", r.why);
        }
    }
}
