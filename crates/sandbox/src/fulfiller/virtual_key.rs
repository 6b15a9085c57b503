//! The [`KeyFactory`] that programs a `VirtualYubiKey` (crate `authenticator`), the way a
//! fulfilment line programs a real one: a factory-fresh key of the ordered model and the
//! customization's firmware with the order's serial; set the PIN; make each credential
//! from the IdP's creation options at the given origin (with the PIN for user
//! verification); then raise the minimum PIN length and set forcePINChange (last: while
//! it is set the key refuses user verification); unplug it (power cycle).

use super::fulfil::{KeyFactory, KeySpec, MadeKey};
use super::program::ProgramError;
use authenticator::{DEFAULT_MIN_PIN_LENGTH, Firmware, KeyProgrammer, Model, VirtualYubiKey};

/// Programs virtual keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct VirtualKeys;

fn fail(msg: String) -> ProgramError {
    ProgramError(msg)
}

impl KeyFactory for VirtualKeys {
    fn make_key(&self, spec: &KeySpec<'_>) -> Result<MadeKey, ProgramError> {
        let model: Model = spec.product.product_name.parse().map_err(|e| {
            fail(format!(
                "product {} ({}) has no virtual key model: {e}",
                spec.product.product_id, spec.product.product_name
            ))
        })?;
        let firmware: Firmware = spec
            .firmware_version
            .parse()
            .map_err(|e| fail(format!("firmware {:?}: {e}", spec.firmware_version)))?;
        let mut key = VirtualYubiKey::new(model, firmware, Some(spec.serial))
            .map_err(|e| fail(format!("making a {model} {firmware}: {e}")))?;
        let pin = spec.pin.map(|p| authenticator::Pin::new(p.expose()));
        if let Some(p) = &pin {
            key.set_pin(p)
                .map_err(|e| fail(format!("the key refused the PIN: {e}")))?;
        }
        let mut credentials = Vec::with_capacity(spec.credentials.len());
        for (i, c) in spec.credentials.iter().enumerate() {
            let options = c.public_key.to_string();
            let reg =
                authenticator::client::make_credential(&mut key, &options, &c.origin, pin.as_ref())
                    .map_err(|e| {
                        fail(format!(
                            "credential request {i}: the key made no credential: {e}"
                        ))
                    })?;
            credentials.push(
                serde_json::to_value(&reg)
                    .map_err(|e| fail(format!("credential request {i}: {e}")))?,
            );
        }
        // forcePINChange only means something once a PIN is set.
        let force = spec.force_pin_change && pin.is_some();
        if spec.min_pin_length > DEFAULT_MIN_PIN_LENGTH || force {
            key.set_min_pin_length(pin.as_ref(), Some(spec.min_pin_length), force)
                .map_err(|e| fail(format!("setting the PIN policy: {e}")))?;
        }
        key.power_cycle();
        let key_state = key
            .to_json()
            .map_err(|e| fail(format!("writing the key state: {e}")))?;
        Ok(MadeKey {
            aaguid: key.identity().aaguid.to_string(),
            credentials,
            key_state: key_state.as_str().to_owned(),
        })
    }
}
