//! The clientPIN state machine, as a YubiKey 5 runs it (CTAP 2.1 §6.5 and
//! authenticatorConfig §6.11):
//!
//! - 8 attempts in total; 3 wrong PINs in one power cycle block further attempts until the
//!   key is removed and reinserted (PIN_AUTH_BLOCKED); at 0 the PIN is blocked for good
//!   (PIN_BLOCKED) and only a reset helps. A correct PIN restores the counter to 8.
//! - A new PIN has at least `min_length` code points (default 4) and at most 63 bytes.
//!   The minimum can only be raised; a reset puts it back to 4.
//! - forcePINChange: while set, no PIN token is issued (PIN_POLICY_VIOLATION), so every
//!   operation that needs user verification fails until the PIN is changed, and the new
//!   PIN must differ from the old one.
//!
//! The PIN itself is never kept: only `SHA-256(salt || LEFT(SHA-256(pin), 16))` with a
//! random 16-byte salt, plus its length in code points (which the minimum-length policy
//! needs to decide whether raising the minimum forces a change).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::CtapError;
use crate::secret::{Pin, ct_eq, random_bytes};

/// Attempts a fresh (or just-unlocked) PIN has.
pub const MAX_PIN_RETRIES: u8 = 8;
/// Wrong PINs allowed per power cycle before a reinsert is needed.
pub const MAX_FAILURES_PER_INSERTION: u8 = 3;
/// The default (and lowest) minimum PIN length, in code points.
pub const DEFAULT_MIN_PIN_LENGTH: u8 = 4;
/// The longest PIN CTAP accepts, in UTF-8 bytes.
pub const MAX_PIN_BYTES: usize = 63;

/// What the key stores about its PIN.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredPin {
    /// Random salt, base64url.
    #[serde(with = "crate::b64")]
    salt: Vec<u8>,
    /// `SHA-256(salt || LEFT(SHA-256(pin), 16))`, base64url.
    #[serde(with = "crate::b64")]
    hash: Vec<u8>,
    /// Length of the PIN in code points.
    code_points: u8,
}

impl StoredPin {
    fn new(pin: &Pin) -> Result<Self, CtapError> {
        let salt = random_bytes(16).map_err(|_| CtapError::NotAllowed("no randomness"))?;
        let hash = Self::digest(&salt, pin);
        Ok(Self {
            salt,
            hash,
            code_points: u8::try_from(pin.code_points()).unwrap_or(u8::MAX),
        })
    }

    fn digest(salt: &[u8], pin: &Pin) -> Vec<u8> {
        // LEFT(SHA-256(PIN), 16), as CTAP's pinHashEnc carries it, salted.
        let pin_hash = crate::crypto::sha256(pin.as_bytes());
        let mut salted = Zeroizing::new(Vec::with_capacity(salt.len() + 16));
        salted.extend_from_slice(salt);
        salted.extend_from_slice(pin_hash.get(..16).unwrap_or_default());
        crate::crypto::sha256(&salted).to_vec()
    }

    fn matches(&self, pin: &Pin) -> bool {
        ct_eq(&Self::digest(&self.salt, pin), &self.hash)
    }
}

/// PIN state: hash, counters, policy. Persisted in the key file.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PinState {
    pin: Option<StoredPin>,
    retries: u8,
    failures_this_insertion: u8,
    min_length: u8,
    force_change: bool,
}

impl Default for PinState {
    fn default() -> Self {
        Self {
            pin: None,
            retries: MAX_PIN_RETRIES,
            failures_this_insertion: 0,
            min_length: DEFAULT_MIN_PIN_LENGTH,
            force_change: false,
        }
    }
}

impl PinState {
    pub(crate) fn is_set(&self) -> bool {
        self.pin.is_some()
    }
    pub(crate) fn retries(&self) -> u8 {
        self.retries
    }
    pub(crate) fn failures_this_insertion(&self) -> u8 {
        self.failures_this_insertion
    }
    pub(crate) fn min_length(&self) -> u8 {
        self.min_length
    }
    pub(crate) fn force_change(&self) -> bool {
        self.force_change
    }

    /// A power cycle: the per-insertion window starts over. The total counter does not.
    pub(crate) fn power_cycle(&mut self) {
        self.failures_this_insertion = 0;
    }

    /// setPIN: only on a key without a PIN.
    pub(crate) fn set(&mut self, new: &Pin) -> Result<(), CtapError> {
        if self.pin.is_some() {
            return Err(CtapError::NotAllowed(
                "the key already has a PIN; change it with the current PIN, or reset the key",
            ));
        }
        self.check_policy(new)?;
        self.pin = Some(StoredPin::new(new)?);
        self.retries = MAX_PIN_RETRIES;
        self.failures_this_insertion = 0;
        Ok(())
    }

    /// Checks a PIN, counting the attempt. On success the counter is back at 8.
    pub(crate) fn verify(&mut self, pin: &Pin) -> Result<(), CtapError> {
        let Some(stored) = &self.pin else {
            return Err(CtapError::PinNotSet);
        };
        if self.retries == 0 {
            return Err(CtapError::PinBlocked);
        }
        if self.failures_this_insertion >= MAX_FAILURES_PER_INSERTION {
            return Err(CtapError::PinAuthBlocked {
                retries: self.retries,
            });
        }
        if stored.matches(pin) {
            self.retries = MAX_PIN_RETRIES;
            self.failures_this_insertion = 0;
            return Ok(());
        }
        self.retries -= 1;
        self.failures_this_insertion += 1;
        if self.retries == 0 {
            Err(CtapError::PinBlocked)
        } else if self.failures_this_insertion >= MAX_FAILURES_PER_INSERTION {
            Err(CtapError::PinAuthBlocked {
                retries: self.retries,
            })
        } else {
            Err(CtapError::PinInvalid {
                retries: self.retries,
            })
        }
    }

    /// getPinUvAuthTokenUsingPinWithPermissions: the PIN is checked (and counted) first;
    /// a correct PIN under forcePINChange still gets no token.
    pub(crate) fn verify_for_token(&mut self, pin: &Pin) -> Result<(), CtapError> {
        self.verify(pin)?;
        if self.force_change {
            return Err(CtapError::PinPolicyViolation(
                "the PIN must be changed before this key can be used (forcePINChange is set)",
            ));
        }
        Ok(())
    }

    /// changePIN: current PIN checked (and counted), then the new PIN's policy.
    pub(crate) fn change(&mut self, current: &Pin, new: &Pin) -> Result<(), CtapError> {
        self.verify(current)?;
        self.check_policy(new)?;
        if self.force_change && self.pin.as_ref().is_some_and(|p| p.matches(new)) {
            return Err(CtapError::PinPolicyViolation(
                "the new PIN must differ from the current one (forcePINChange is set)",
            ));
        }
        self.pin = Some(StoredPin::new(new)?);
        self.force_change = false;
        Ok(())
    }

    /// setMinPINLength with forceChangePin (the caller has checked the PIN token).
    pub(crate) fn set_min_length(
        &mut self,
        new_min: Option<u8>,
        force_change: bool,
    ) -> Result<(), CtapError> {
        if force_change && self.pin.is_none() {
            return Err(CtapError::PinNotSet);
        }
        if let Some(new_min) = new_min {
            if new_min < self.min_length {
                return Err(CtapError::PinPolicyViolation(
                    "the minimum PIN length can only be raised; a reset sets it back to 4",
                ));
            }
            if usize::from(new_min) > MAX_PIN_BYTES {
                return Err(CtapError::PinPolicyViolation(
                    "the minimum PIN length cannot exceed 63",
                ));
            }
            self.min_length = new_min;
            if self.pin.as_ref().is_some_and(|p| p.code_points < new_min) {
                self.force_change = true;
            }
        }
        if force_change {
            self.force_change = true;
        }
        Ok(())
    }

    fn check_policy(&self, new: &Pin) -> Result<(), CtapError> {
        if new.code_points() < usize::from(self.min_length) {
            return Err(CtapError::PinPolicyViolation(
                "the new PIN is shorter than the key's minimum PIN length",
            ));
        }
        if new.as_bytes().len() > MAX_PIN_BYTES {
            return Err(CtapError::PinPolicyViolation(
                "the new PIN is longer than 63 bytes",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_pin(pin: &str) -> PinState {
        let mut s = PinState::default();
        s.set(&Pin::new(pin)).unwrap();
        s
    }

    #[test]
    fn stored_pin_is_a_salted_hash_not_the_pin() {
        let s = with_pin("1234");
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("1234"), "{json}");
        // Same PIN, different salt, different hash.
        let t = with_pin("1234");
        assert_ne!(serde_json::to_string(&t).unwrap(), json);
    }

    #[test]
    fn wrong_pin_counts_down_and_correct_pin_restores_eight() {
        let mut s = with_pin("1234");
        assert_eq!(
            s.verify(&"0000".into()),
            Err(CtapError::PinInvalid { retries: 7 })
        );
        assert_eq!(
            s.verify(&"0000".into()),
            Err(CtapError::PinInvalid { retries: 6 })
        );
        s.verify(&"1234".into()).unwrap();
        assert_eq!(s.retries(), 8);
    }
}
