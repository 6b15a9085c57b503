//! The steps that program a FIDO2 key for a shipment, whatever the key (the
//! `VirtualYubiKey` of [`super::VirtualKeys`], or a real YubiKey over USB at a depot built
//! with the `usb` feature): refuse a key that is not factory fresh; set the PIN; make
//! each credential from the IdP's creation options at the given origin (the platform
//! half, `authenticator::client`, with the PIN for user verification); then raise the
//! minimum PIN length and set forcePINChange (last: while it is set the key refuses user
//! verification).

use super::fulfil::KeySpec;
use super::program::ProgramError;
use authenticator::{DEFAULT_MIN_PIN_LENGTH, KeyProgrammer};

fn fail(msg: String) -> ProgramError {
    ProgramError(msg)
}

/// Refuses a key that is not factory fresh (it has a PIN): programming it would mix
/// someone else's PIN or credentials into the shipment.
pub fn require_fresh<K: KeyProgrammer + ?Sized>(key: &K) -> Result<(), ProgramError> {
    let info = key
        .get_info()
        .map_err(|e| fail(format!("reading the key's information: {e}")))?;
    if info.options.get("clientPin") == Some(&true) {
        return Err(fail(
            "the key already has a PIN, so it is not factory fresh: reset it (for a YubiKey: \
             `ykman fido reset` right after plugging it in) or take a new one"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Programs `key` as `spec` says and returns one WebAuthn registration
/// (`PublicKeyCredential`, JSON form) per credential request, in order.
pub fn program_fido_key<K: KeyProgrammer + ?Sized>(
    key: &mut K,
    spec: &KeySpec<'_>,
) -> Result<Vec<serde_json::Value>, ProgramError> {
    require_fresh(key)?;
    let pin = spec.pin.map(|p| authenticator::Pin::new(p.expose()));
    if let Some(p) = &pin {
        key.set_pin(p)
            .map_err(|e| fail(format!("the key refused the PIN: {e}")))?;
    }
    let mut credentials = Vec::with_capacity(spec.credentials.len());
    for (i, c) in spec.credentials.iter().enumerate() {
        let options = c.public_key.to_string();
        let reg = authenticator::client::make_credential(key, &options, &c.origin, pin.as_ref())
            .map_err(|e| {
                fail(format!(
                    "credential request {i}: the key made no credential: {e}"
                ))
            })?;
        credentials.push(
            serde_json::to_value(&reg).map_err(|e| fail(format!("credential request {i}: {e}")))?,
        );
    }
    // forcePINChange only means something once a PIN is set.
    let force = spec.force_pin_change && pin.is_some();
    if spec.min_pin_length > DEFAULT_MIN_PIN_LENGTH || force {
        key.set_min_pin_length(pin.as_ref(), Some(spec.min_pin_length), force)
            .map_err(|e| fail(format!("setting the PIN policy: {e}")))?;
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfiller::Seed;
    use authenticator::VirtualYubiKey;

    #[test]
    fn a_key_that_already_has_a_pin_is_refused_untouched() {
        let seed = Seed::default();
        let product = &seed.products[0];
        let mut key = VirtualYubiKey::new(
            product.product_name.parse().unwrap(),
            "5.7.1".parse().unwrap(),
            Some(7),
        )
        .unwrap();
        key.set_pin(&authenticator::Pin::new("2468013579")).unwrap();
        let pin = envelope::Pin::new("97531864");
        let err = program_fido_key(
            &mut key,
            &KeySpec {
                product,
                serial: 7,
                firmware_version: "5.7.1",
                pin: Some(&pin),
                min_pin_length: 8,
                force_pin_change: true,
                credentials: &[],
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("already has a PIN"), "{err}");
        assert!(err.contains("ykman fido reset"), "{err}");
        let s = key.summary();
        assert!(!s.force_pin_change, "the key was left as it was");
        assert_eq!(s.min_pin_length, authenticator::DEFAULT_MIN_PIN_LENGTH);
    }
}
