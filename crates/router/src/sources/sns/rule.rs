//! The rules an SNS message can break: each is the `field` of the error reply
//! and the `reason` label of `signalbox_sns_rejected_total`.

/// The rule a rejected SNS message broke; its name is the `field` of the
/// error reply and the `reason` label of `signalbox_sns_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No SNS source of that name (404).
    Source,
    /// The body is not an SNS JSON message.
    Body,
    /// `Type` is missing or unknown.
    Type,
    /// `MessageId` is missing.
    MessageId,
    /// `SignatureVersion` is not 1 or 2.
    SignatureVersion,
    /// `SigningCertURL` is not an https SNS host, or its certificate is unusable.
    SigningCertUrl,
    /// `TopicArn` is not in the source's allow-list.
    TopicArn,
    /// `Timestamp` is unparsable, older than `max_age` or in the future.
    Timestamp,
    /// The signature does not verify.
    Signature,
    /// `SubscribeURL` is missing or not an https SNS host.
    SubscribeUrl,
    /// A raw delivery to a source without `raw_delivery = true`.
    RawDelivery,
    /// The adapter rejected the notification.
    Adapter,
}

impl Rule {
    /// Every rule, in the order of the metrics rows.
    pub const ALL: [Rule; 12] = [
        Rule::Source,
        Rule::Body,
        Rule::Type,
        Rule::MessageId,
        Rule::SignatureVersion,
        Rule::SigningCertUrl,
        Rule::TopicArn,
        Rule::Timestamp,
        Rule::Signature,
        Rule::SubscribeUrl,
        Rule::RawDelivery,
        Rule::Adapter,
    ];

    /// The name used in replies and metrics (the SNS key where there is one).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Source => "source",
            Rule::Body => "body",
            Rule::Type => "Type",
            Rule::MessageId => "MessageId",
            Rule::SignatureVersion => "SignatureVersion",
            Rule::SigningCertUrl => "SigningCertURL",
            Rule::TopicArn => "TopicArn",
            Rule::Timestamp => "Timestamp",
            Rule::Signature => "Signature",
            Rule::SubscribeUrl => "SubscribeURL",
            Rule::RawDelivery => "x-amz-sns-rawdelivery",
            Rule::Adapter => "adapter",
        }
    }
}
