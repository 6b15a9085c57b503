//! Opaque, stateless challenges and user handles.
//!
//! Real Graph challenges are a JWE that carries its own expiry (entra.md §1). Ours carry
//! the same facts under an HMAC-SHA256 with a per-run key: `EXS1 | purpose | user object
//! id | expiry (u64 BE) | nonce (16) | mac (32)`, base64url. The MAC says "issued here",
//! the purpose and object id bind it to one ceremony for one user, the expiry is checked
//! against the sandbox clock, and the nonce is what "already used" remembers.

use aws_lc_rs::hmac;
use uuid::Uuid;

const MAGIC: &[u8; 4] = b"EXS1";
const LEN: usize = 4 + 1 + 16 + 8 + 16 + 32;

/// What a challenge was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `creationOptions` → `POST fido2Methods`.
    Register = 1,
    /// `signin/begin` → `signin/finish`.
    SignIn = 2,
}

/// A challenge that verified.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opened {
    pub purpose: Purpose,
    pub user: Uuid,
    pub expires: u64,
    pub nonce: [u8; 16],
}

/// The per-run key.
pub(crate) struct ChallengeKey(hmac::Key);

impl ChallengeKey {
    pub(crate) fn generate() -> Result<Self, String> {
        let secret = crate::rng::bytes::<32>().ok_or("the random generator failed")?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &secret)))
    }

    /// A fresh challenge.
    pub(crate) fn issue(
        &self,
        purpose: Purpose,
        user: Uuid,
        expires: u64,
    ) -> Result<String, String> {
        let nonce = crate::rng::bytes::<16>().ok_or("the random generator failed")?;
        let mut b = Vec::with_capacity(LEN);
        b.extend_from_slice(MAGIC);
        b.push(purpose as u8);
        b.extend_from_slice(user.as_bytes());
        b.extend_from_slice(&expires.to_be_bytes());
        b.extend_from_slice(&nonce);
        let tag = hmac::sign(&self.0, &b);
        b.extend_from_slice(tag.as_ref());
        Ok(webauthn::b64::encode(b))
    }

    /// `None` when the text is not a challenge this sandbox issued.
    pub(crate) fn open(&self, text: &str) -> Option<Opened> {
        let b = webauthn::b64::decode("challenge", text).ok()?;
        if b.len() != LEN || &b[..4] != MAGIC {
            return None;
        }
        let (body, tag) = b.split_at(LEN - 32);
        hmac::verify(&self.0, body, tag).ok()?;
        let purpose = match body[4] {
            1 => Purpose::Register,
            2 => Purpose::SignIn,
            _ => return None,
        };
        let user = Uuid::from_slice(&body[5..21]).ok()?;
        let expires = u64::from_be_bytes(body[21..29].try_into().ok()?);
        let nonce: [u8; 16] = body[29..45].try_into().ok()?;
        Some(Opened {
            purpose,
            user,
            expires,
            nonce,
        })
    }

    /// The user handle Entra-style: `OF:` and 48 bytes (51 in all), fixed per user.
    pub(crate) fn user_handle(&self, tenant: &str, user: Uuid) -> Vec<u8> {
        let mut msg = b"user-handle:".to_vec();
        msg.extend_from_slice(tenant.as_bytes());
        msg.extend_from_slice(user.as_bytes());
        let tag = hmac::sign(&self.0, &msg);
        let mut out = b"OF:".to_vec();
        out.extend_from_slice(user.as_bytes());
        out.extend_from_slice(&tag.as_ref()[..32]);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn challenges_open_only_with_their_key_and_unchanged() {
        let k = ChallengeKey::generate().unwrap();
        let other = ChallengeKey::generate().unwrap();
        let u = Uuid::from_u128(7);
        let c = k.issue(Purpose::Register, u, 1000).unwrap();
        let o = k.open(&c).unwrap();
        assert_eq!((o.purpose, o.user, o.expires), (Purpose::Register, u, 1000));
        assert!(other.open(&c).is_none());
        let mut b = webauthn::b64::decode("c", &c).unwrap();
        b[22] ^= 1;
        assert!(k.open(&webauthn::b64::encode(&b)).is_none());
        assert!(k.open("not-a-challenge").is_none());
        assert_eq!(k.user_handle("t", u).len(), 51);
        assert!(k.user_handle("t", u).starts_with(b"OF:"));
    }
}
