//! The SNS HTTP/HTTPS message format: parsing the JSON document SNS POSTs to a
//! subscribed endpoint, and the canonical string its signature covers.
//!
//! AWS documents three message types with these name-value pairs: `Type`,
//! `MessageId`, `Token` (confirmations), `TopicArn`, `Subject` (notifications,
//! only when the publisher gave one), `Message`, `Timestamp`,
//! `SignatureVersion`, `Signature`, `SigningCertURL`, `SubscribeURL`
//! (confirmations), `UnsubscribeURL` (notifications) and `MessageAttributes`
//! (notifications). The string to sign is `Key\nValue\n` for each signed key,
//! in byte order of the key names: for a `Notification` `Message`, `MessageId`,
//! `Subject` (if present), `Timestamp`, `TopicArn`, `Type`; for a
//! `SubscriptionConfirmation` or `UnsubscribeConfirmation` `Message`,
//! `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type`.

use serde_json::{Map, Value};

use super::rule::Rule;

/// The three message types SNS sends to HTTP/HTTPS endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageType {
    /// A published message.
    Notification,
    /// Sent after `Subscribe`: visit `SubscribeURL` to confirm.
    SubscriptionConfirmation,
    /// Sent after `Unsubscribe`.
    UnsubscribeConfirmation,
}

impl MessageType {
    /// Parses the `Type` value.
    pub(crate) fn parse(text: &str) -> Option<MessageType> {
        match text {
            "Notification" => Some(MessageType::Notification),
            "SubscriptionConfirmation" => Some(MessageType::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Some(MessageType::UnsubscribeConfirmation),
            _ => None,
        }
    }

    /// The `Type` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MessageType::Notification => "Notification",
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// One parsed SNS message (the JSON form, not raw delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnsMessage {
    /// `Type`.
    pub kind: MessageType,
    /// `MessageId`: the same on every retry of one message.
    pub message_id: String,
    /// `Token` (confirmations).
    pub token: Option<String>,
    /// `TopicArn`.
    pub topic_arn: String,
    /// `Subject` (notifications, when the publisher gave one).
    pub subject: Option<String>,
    /// `Message`.
    pub message: String,
    /// `Timestamp` (ISO 8601, UTC).
    pub timestamp: String,
    /// `SignatureVersion`: `1` (SHA1withRSA) or `2` (SHA256withRSA).
    pub signature_version: String,
    /// `Signature` (Base64).
    pub signature: String,
    /// `SigningCertURL`.
    pub signing_cert_url: String,
    /// `SubscribeURL` (confirmations).
    pub subscribe_url: Option<String>,
    /// `UnsubscribeURL` (notifications).
    pub unsubscribe_url: Option<String>,
}

/// Why a body is not an SNS message: the rule and what is wrong.
pub(crate) type ParseError = (Rule, String);

impl SnsMessage {
    /// Parses the body SNS POSTs; every required key must be a string.
    pub(crate) fn parse(body: &[u8]) -> Result<SnsMessage, ParseError> {
        let map: Map<String, Value> = match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err((Rule::Body, "the body is not a JSON object".into())),
            Err(e) => return Err((Rule::Body, format!("the body is not JSON: {e}"))),
        };
        let optional = |key: &str| -> Result<Option<String>, ParseError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err((Rule::Body, format!("{key} must be a string"))),
            }
        };
        let required = |key: &str, rule: Rule| -> Result<String, ParseError> {
            optional(key)?.ok_or((rule, format!("{key} is missing")))
        };
        let kind_text = required("Type", Rule::Type)?;
        let kind = MessageType::parse(&kind_text).ok_or((
            Rule::Type,
            format!(
                "unknown Type {kind_text:?}: expected Notification, SubscriptionConfirmation or UnsubscribeConfirmation"
            ),
        ))?;
        let msg = SnsMessage {
            kind,
            message_id: required("MessageId", Rule::MessageId)?,
            token: optional("Token")?,
            topic_arn: required("TopicArn", Rule::TopicArn)?,
            subject: optional("Subject")?,
            message: required("Message", Rule::Body)?,
            timestamp: required("Timestamp", Rule::Timestamp)?,
            signature_version: required("SignatureVersion", Rule::SignatureVersion)?,
            signature: required("Signature", Rule::Signature)?,
            signing_cert_url: required("SigningCertURL", Rule::SigningCertUrl)?,
            subscribe_url: optional("SubscribeURL")?,
            unsubscribe_url: optional("UnsubscribeURL")?,
        };
        if msg.kind != MessageType::Notification {
            if msg.token.is_none() {
                return Err((Rule::Body, format!("Token is missing from a {kind_text}")));
            }
            if msg.subscribe_url.is_none() {
                return Err((
                    Rule::SubscribeUrl,
                    format!("SubscribeURL is missing from a {kind_text}"),
                ));
            }
        }
        if let Some(attrs) = map.get("MessageAttributes")
            && !attrs.is_object()
            && !attrs.is_null()
        {
            return Err((Rule::Body, "MessageAttributes must be an object".into()));
        }
        Ok(msg)
    }

    /// The string the signature covers, exactly as AWS builds it.
    pub(crate) fn string_to_sign(&self) -> String {
        let mut out = String::with_capacity(self.message.len() + 256);
        let mut add = |key: &str, value: &str| {
            out.push_str(key);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        };
        add("Message", &self.message);
        add("MessageId", &self.message_id);
        match self.kind {
            MessageType::Notification => {
                if let Some(subject) = &self.subject {
                    add("Subject", subject);
                }
                add("Timestamp", &self.timestamp);
                add("TopicArn", &self.topic_arn);
            }
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
                add("SubscribeURL", self.subscribe_url.as_deref().unwrap_or(""));
                add("Timestamp", &self.timestamp);
                add("Token", self.token.as_deref().unwrap_or(""));
                add("TopicArn", &self.topic_arn);
            }
        }
        add("Type", self.kind.as_str());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented notification example.
    const NOTIFICATION: &str = r#"{
  "Type" : "Notification",
  "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
  "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
  "Subject" : "My First Message",
  "Message" : "Hello world!",
  "Timestamp" : "2012-05-02T00:54:06.655Z",
  "SignatureVersion" : "1",
  "Signature" : "EXAMPLEw6JRN...",
  "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
  "UnsubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96"
}"#;

    /// AWS's documented subscription confirmation example.
    const CONFIRMATION: &str = r#"{
  "Type" : "SubscriptionConfirmation",
  "MessageId" : "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
  "Token" : "2336412f37...",
  "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
  "Message" : "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
  "SubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37...",
  "Timestamp" : "2012-04-26T20:45:04.751Z",
  "SignatureVersion" : "1",
  "Signature" : "EXAMPLEpH+...",
  "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
}"#;

    #[test]
    fn notification_string_to_sign() {
        let m = SnsMessage::parse(NOTIFICATION.as_bytes()).expect("parses");
        assert_eq!(m.kind, MessageType::Notification);
        assert_eq!(
            m.string_to_sign(),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        let without_subject = NOTIFICATION.replace("\"Subject\" : \"My First Message\",", "");
        let m = SnsMessage::parse(without_subject.as_bytes()).expect("parses");
        assert!(!m.string_to_sign().contains("Subject"));
    }

    #[test]
    fn confirmation_string_to_sign_unescapes_the_message() {
        let m = SnsMessage::parse(CONFIRMATION.as_bytes()).expect("parses");
        assert_eq!(m.kind, MessageType::SubscriptionConfirmation);
        let s = m.string_to_sign();
        assert!(s.starts_with("Message\nYou have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm"), "{s}");
        assert!(s.ends_with("SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37...\nTimestamp\n2012-04-26T20:45:04.751Z\nToken\n2336412f37...\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nSubscriptionConfirmation\n"), "{s}");
    }

    #[test]
    fn bad_bodies_name_the_rule() {
        let cases: [(&str, Rule); 6] = [
            ("not json", Rule::Body),
            ("[1]", Rule::Body),
            (r#"{"Type": "Nope"}"#, Rule::Type),
            (
                &NOTIFICATION.replace("\"Signature\" :", "\"X\" :"),
                Rule::Signature,
            ),
            (
                &NOTIFICATION.replace("\"TopicArn\" :", "\"X\" :"),
                Rule::TopicArn,
            ),
            (
                &CONFIRMATION.replace("\"SubscribeURL\" :", "\"X\" :"),
                Rule::SubscribeUrl,
            ),
        ];
        for (body, rule) in cases {
            let (got, why) = SnsMessage::parse(body.as_bytes()).expect_err(body);
            assert_eq!(got, rule, "{body}: {why}");
        }
    }
}
