//! The connector's vocabulary as types: a request's state ([`RequestState`]) and its
//! identity provider ([`Idp`]), stored as text, and the state change a step wants
//! ([`Transition`]): a compare-and-set on the state it was read in.

use crate::store::RequestRow;
use std::fmt;

/// Where a request stands (docs/connector.md "States" has who moves it, to what).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Recorded; the shipment (and in Okta mode the enrollment) is being made.
    Creating,
    /// Deleted while creating: what was made is being undone.
    Cancelling,
    /// The shipment exists; polled until the fulfiller ships.
    Open,
    /// Okta mode with `approval = "admin"`: activated, waiting for an admin.
    AwaitingApproval,
    /// Registered; the PIN is being delivered.
    PinPending,
    /// Registered and the PIN delivered.
    Complete,
    /// Needs an admin (`last_error` says why).
    Error,
    /// Deleted here or at the fulfiller.
    Deleted,
}

impl RequestState {
    /// Every state, in the order of the flow.
    pub const ALL: [Self; 8] = [
        Self::Creating,
        Self::Cancelling,
        Self::Open,
        Self::AwaitingApproval,
        Self::PinPending,
        Self::Complete,
        Self::Error,
        Self::Deleted,
    ];

    /// The stored (and API) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Cancelling => "cancelling",
            Self::Open => "open",
            Self::AwaitingApproval => "awaiting_approval",
            Self::PinPending => "pin_pending",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Deleted => "deleted",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the runner acts on a request in this state (every other one is final,
    /// or waits for an admin).
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            Self::Creating | Self::Open | Self::PinPending | Self::Cancelling
        )
    }

    /// The guide's shipments-table state (Okta mode): `ongoing`, `error`, `complete`,
    /// or `deleted` (which the table would no longer show).
    pub const fn table_state(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Complete => "complete",
            Self::Deleted => "deleted",
            _ => "ongoing",
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for RequestState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown request state {s:?}"))
    }
}

impl std::str::FromStr for RequestState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("unknown request state {s:?}"))
    }
}

/// Which identity provider a request registers the key with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Idp {
    /// Microsoft Entra ID (the connector's API; Graph registers the credential).
    Entra,
    /// Okta (its preregistration API enrolls, activates and mails the PIN).
    Okta,
}

impl Idp {
    /// The stored (and API) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Entra => "entra",
            Self::Okta => "okta",
        }
    }

    /// The identity provider of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "entra" => Some(Self::Entra),
            "okta" => Some(Self::Okta),
            _ => None,
        }
    }
}

impl fmt::Display for Idp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Idp {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown identity provider {s:?}"))
    }
}

/// A state change a step or an admin wants: the request as it should be written, and
/// the state it was read in. [`crate::store::Store::apply`] writes it only while the
/// stored state is still `from` (a compare-and-set): a change that lost to another
/// writer writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a transition does nothing until the store applies it"]
pub struct Transition {
    /// The request as it is to be written.
    pub row: RequestRow,
    /// The state it was read in.
    pub from: RequestState,
}

impl RequestRow {
    /// This request moved to `to` (other fields may be changed on the result's `row`
    /// before it is applied); the write is conditional on the state it has now.
    pub fn to(&self, to: RequestState) -> Transition {
        let mut row = self.clone();
        row.state = to;
        Transition {
            row,
            from: self.state,
        }
    }

    /// This request into `error` with `message` (what an admin reads).
    pub fn failed(&self, message: &str) -> Transition {
        let mut t = self.to(RequestState::Error);
        t.row.last_error = Some(message.to_owned());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_name_and_nothing_else_does() {
        for s in RequestState::ALL {
            assert_eq!(RequestState::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(RequestState::parse("Open"), None);
        assert!(RequestState::try_from("shipped".to_owned()).is_err());
        assert_eq!(Idp::parse("okta"), Some(Idp::Okta));
        assert_eq!(Idp::parse("google"), None);
    }

    #[test]
    fn the_runner_acts_only_on_the_four_moving_states() {
        let active: Vec<_> = RequestState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(
            active,
            [
                RequestState::Creating,
                RequestState::Cancelling,
                RequestState::Open,
                RequestState::PinPending
            ]
        );
    }
}
