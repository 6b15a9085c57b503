//! Fulfilment through the envelope (issue #4 item 6), independent of how the key itself
//! is made: open every request with the transport keys (any failure refuses the whole
//! order), choose the PIN (the requested one, or a generated one: CSPRNG digits, never
//! trivial), have a [`KeyFactory`] make the key with the PIN, min PIN length, forced
//! change and one credential per request, then seal a signed response to each request's
//! response key. Plaintext requests, the PIN and credential private data live only on
//! this call's stack (the PIN is zeroized on drop) and in the key's state file.
//!
//! The `VirtualYubiKey` adapter (crate `authenticator`) implements [`KeyFactory`].

use super::program::{Order, ProgramError, Programmed, Programmer};
use envelope::{
    CredentialRequest, CredentialResponse, Pin, PinChoice, PinRequest, PinResponse, Request,
    Response,
};
use yubienterprise::fpr::ProductData;
use yubienterprise::org::Product;

/// What the key must become.
pub struct KeySpec<'a> {
    /// The ordered model.
    pub product: &'a Product,
    /// Its serial number.
    pub serial: u32,
    /// Its firmware version.
    pub firmware_version: &'a str,
    /// The PIN to set, if any.
    pub pin: Option<&'a Pin>,
    /// The minimum PIN length to set.
    pub min_pin_length: u8,
    /// Whether the key demands a PIN change on first use.
    pub force_pin_change: bool,
    /// One credential to make per request (origin + creation options), in order.
    pub credentials: &'a [CredentialRequest],
}

/// The made key.
pub struct MadeKey {
    /// The key's AAGUID (UUID text).
    pub aaguid: String,
    /// One WebAuthn `PublicKeyCredential` (registration, JSON form) per credential
    /// request, in order.
    pub credentials: Vec<serde_json::Value>,
    /// The key's state file: what the recipient holds.
    pub key_state: String,
}

/// Makes keys.
pub trait KeyFactory: Send + Sync {
    /// Creates a key of `spec.product`, sets the PIN and its policy, makes the
    /// credentials.
    fn make_key(&self, spec: &KeySpec<'_>) -> Result<MadeKey, ProgramError>;

    /// Whether a key can be made now ([`Programmer::ready`]). Default: always.
    fn ready(&self) -> Result<(), ProgramError> {
        Ok(())
    }
}

/// The [`Programmer`] that speaks the envelope and delegates the key to `K`.
pub struct EnvelopeProgrammer<K> {
    keys: K,
}

impl<K: KeyFactory> EnvelopeProgrammer<K> {
    /// With this key factory.
    pub fn new(keys: K) -> Self {
        Self { keys }
    }
}

fn fail(msg: impl Into<String>) -> ProgramError {
    ProgramError(msg.into())
}

/// Opens the PIN request and every credential request; refuses on the first failure.
pub fn open_requests(
    order: &Order<'_>,
) -> Result<(PinRequest, Vec<CredentialRequest>), ProgramError> {
    let pin = match envelope::open_request(order.pin_request, order.transport_keys) {
        Ok(Request::Pin(p)) => p,
        Ok(Request::Credential(_)) => {
            return Err(fail("the PIN request is a credential request"));
        }
        Err(e) => return Err(fail(format!("the PIN request could not be opened: {e}"))),
    };
    let mut creds = Vec::with_capacity(order.credential_requests.len());
    for (i, jwe) in order.credential_requests.iter().enumerate() {
        match envelope::open_request(jwe, order.transport_keys) {
            Ok(Request::Credential(c)) => creds.push(c),
            Ok(Request::Pin(_)) => {
                return Err(fail(format!("credential request {i} is a PIN request")));
            }
            Err(e) => {
                return Err(fail(format!(
                    "credential request {i} could not be opened: {e}"
                )));
            }
        }
    }
    Ok((pin, creds))
}

/// A PIN of `length` random decimal digits from the OS CSPRNG, never trivial (see
/// [`is_trivial_pin`]).
pub fn generate_pin(length: u8) -> Result<Pin, ProgramError> {
    let n = usize::from(length);
    if !envelope::PIN_LEN.contains(&n) {
        return Err(fail(format!(
            "a generated PIN must have 4 to 63 digits, not {n}"
        )));
    }
    for _ in 0..1000 {
        let mut digits = zeroize::Zeroizing::new(String::with_capacity(n));
        while digits.len() < n {
            let b = crate::rng::bytes::<64>().ok_or_else(|| fail("the system RNG failed"))?;
            // Rejection sampling: 250 = 25 × 10, so every digit is equally likely.
            for x in b.iter().filter(|x| **x < 250).take(n - digits.len()) {
                digits.push(char::from(b'0' + x % 10));
            }
        }
        if !is_trivial_pin(&digits) {
            return Ok(Pin::new(digits.as_str()));
        }
    }
    Err(fail("could not generate a non-trivial PIN"))
}

/// All the same digit (`000000`), or a straight run up or down (`123456`, `987654`,
/// also wrapping: `890123`).
pub fn is_trivial_pin(pin: &str) -> bool {
    let d: Vec<u8> = pin.bytes().collect();
    if d.len() < 2 || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let steps: Vec<u8> = d.windows(2).map(|w| (w[1] + 10 - w[0]) % 10).collect();
    steps.iter().all(|s| *s == 0) || steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == 9)
}

impl<K: KeyFactory> Programmer for EnvelopeProgrammer<K> {
    fn ready(&self) -> Result<(), ProgramError> {
        self.keys.ready()
    }

    fn program(&self, order: &Order<'_>) -> Result<Programmed, ProgramError> {
        let (pin_req, cred_reqs) = open_requests(order)?;
        let min = pin_req.min_pin_length;
        let pin = match &pin_req.pin {
            PinChoice::Generate { length } => {
                if *length < min {
                    return Err(fail(format!(
                        "the PIN request asks for {length} digits but a minimum PIN length of {min}"
                    )));
                }
                Some(generate_pin(*length)?)
            }
            PinChoice::Static { value } => {
                if value.expose().chars().count() < usize::from(min) {
                    return Err(fail(format!(
                        "the requested PIN is shorter than the minimum PIN length of {min}"
                    )));
                }
                Some(value.clone())
            }
            PinChoice::None => None,
        };
        let made = self.keys.make_key(&KeySpec {
            product: order.product,
            serial: order.serial,
            firmware_version: order.firmware_version,
            pin: pin.as_ref(),
            min_pin_length: min,
            force_pin_change: pin_req.force_pin_change,
            credentials: &cred_reqs,
        })?;
        if made.credentials.len() != cred_reqs.len() {
            return Err(fail(
                "the key made a different number of credentials than requested",
            ));
        }
        let serial = order.serial.to_string();
        let iat = crate::time::now();
        let mut cred_responses = Vec::with_capacity(cred_reqs.len());
        for (i, (req, credential)) in cred_reqs.iter().zip(made.credentials).enumerate() {
            let resp = Response::Credential(CredentialResponse {
                request_hash: String::new(),
                serial: serial.clone(),
                firmware_version: order.firmware_version.to_owned(),
                aaguid: made.aaguid.clone(),
                credential,
                iat,
            });
            let jwe = envelope::seal_response(
                &resp,
                &order.credential_requests[i],
                order.signing_key,
                &req.response_key,
            )
            .map_err(|e| fail(format!("sealing credential response {i}: {e}")))?;
            cred_responses.push(jwe);
        }
        let pin_response = match pin {
            Some(pin) => {
                let resp = Response::Pin(PinResponse {
                    request_hash: String::new(),
                    serial: serial.clone(),
                    pin,
                    force_pin_change: pin_req.force_pin_change,
                    iat,
                });
                envelope::seal_response(
                    &resp,
                    order.pin_request,
                    order.signing_key,
                    &pin_req.response_key,
                )
                .map_err(|e| fail(format!("sealing the PIN response: {e}")))?
            }
            // No PIN was set: there is nothing to tell.
            None => String::new(),
        };
        Ok(Programmed {
            product_data: ProductData {
                serial_number: serial,
                firmware_version: order.firmware_version.to_owned(),
                fido_pin_response: pin_response,
                fido_credential_responses: cred_responses,
            },
            key_state: made.key_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_pins_are_recognised() {
        for p in ["000000", "1111", "123456", "987654", "890123", "3210"] {
            assert!(is_trivial_pin(p), "{p}");
        }
        for p in ["123457", "482917", "112233", "1357"] {
            assert!(!is_trivial_pin(p), "{p}");
        }
    }

    #[test]
    fn generated_pins_are_digits_of_the_length_and_not_trivial() {
        for len in [4u8, 6, 8, 63] {
            for _ in 0..50 {
                let p = generate_pin(len).unwrap();
                assert_eq!(p.expose().len(), usize::from(len));
                assert!(p.expose().bytes().all(|b| b.is_ascii_digit()));
                assert!(!is_trivial_pin(p.expose()));
            }
        }
        assert!(generate_pin(3).is_err());
        assert!(generate_pin(64).is_err());
    }

    #[test]
    fn generated_pins_use_every_digit() {
        let mut seen = [false; 10];
        for _ in 0..50 {
            for b in generate_pin(8).unwrap().expose().bytes() {
                seen[usize::from(b - b'0')] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }
}
