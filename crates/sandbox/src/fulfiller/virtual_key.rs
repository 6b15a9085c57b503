//! The [`KeyFactory`] that programs a `VirtualYubiKey` (crate `authenticator`), the way a
//! fulfilment line programs a real one: a factory-fresh key of the ordered model and the
//! customization's firmware with the order's serial, programmed by the steps every key
//! goes through ([`program_fido_key`]: PIN, credentials, PIN policy), then unplugged
//! (power cycle).

use super::fulfil::{KeyFactory, KeySpec, MadeKey};
use super::key_steps::program_fido_key;
use super::program::ProgramError;
use authenticator::{Firmware, Model, VirtualYubiKey};

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
        let credentials = program_fido_key(&mut key, spec)?;
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
