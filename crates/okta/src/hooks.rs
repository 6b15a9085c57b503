//! Event hooks: registration, the one-time verification handshake and the delivered
//! event envelope (`group.user_membership.add`, the WebAuthn preregistration event).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Event type emitted when a user is added to a group.
pub const GROUP_MEMBERSHIP_ADD: &str = "group.user_membership.add";
/// Event type emitted by `initiate-fulfillment-request` (carries the order details).
pub const PREREGISTRATION_EVENT: &str = "user.authenticator.enroll.webauthn_preregistration";
/// The other name the preregistration ("MFA initiated") event is published under;
/// subscribed to and handled like [`PREREGISTRATION_EVENT`] (issue 15: no public
/// sample of its body, so its `debugContext` is read the same way).
pub const PREREGISTER_INITIATE_EVENT: &str = "system.mfa.preregister.initiate";
/// Header carrying the verification challenge on the handshake GET.
pub const VERIFICATION_HEADER: &str = "X-Okta-Verification-Challenge";

/// `POST /api/v1/eventHooks` body and answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `UNVERIFIED` until the handshake, then `VERIFIED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<String>,
    pub events: EventSubscriptions,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

/// Which events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSubscriptions {
    /// `EVENT_TYPE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub items: Vec<String>,
}

/// Where and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// `HTTP`.
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    pub config: ChannelConfig,
}

/// The endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelConfig {
    pub uri: String,
    #[serde(default)]
    pub headers: Vec<HeaderPair>,
    /// Sent on every call; its `value` is a secret and never read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_scheme: Option<AuthScheme>,
}

/// An extra header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderPair {
    pub key: String,
    pub value: String,
}

/// `{"type":"HEADER","key":"Authorization","value":"..."}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthScheme {
    #[serde(rename = "type")]
    pub kind: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl std::fmt::Debug for AuthScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthScheme")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// The hook's answer to the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationResponse {
    pub verification: String,
}

/// What a hook receives: `{"eventType":"com.okta.event_hook", ..., "data":{"events":[..]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    pub event_type: String,
    pub event_type_version: String,
    pub cloud_events_version: String,
    pub source: String,
    pub event_id: String,
    pub event_time: String,
    pub content_type: String,
    pub data: EventData,
}

/// The batch of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    pub events: Vec<LogEvent>,
}

/// A System Log event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub uuid: String,
    pub published: String,
    pub event_type: String,
    pub version: String,
    pub display_message: String,
    pub severity: String,
    pub actor: LogActor,
    #[serde(default)]
    pub target: Vec<LogTarget>,
    pub outcome: Value,
    /// For the preregistration event: `debugData.fulfillmentData` and
    /// `debugData.fulfillmentProvider`.
    #[serde(default)]
    pub debug_context: Value,
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogActor {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub alternate_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What it was done to (`User`, `UserGroup`).
pub type LogTarget = LogActor;
