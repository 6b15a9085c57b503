//! PIN lengths as a FIDO2 key counts them: at most 63 bytes of UTF-8 (CTAP 2.1 §6.5.5.5),
//! at least 4 code points.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use envelope::{Error, KeyUse, Pin, PinChoice, PinRequest, PrivateJwk, Request};

fn request(pin: PinChoice, min_pin_length: u8) -> Request {
    let response_key = PrivateJwk::generate("rk-1", KeyUse::Enc).unwrap();
    Request::Pin(PinRequest {
        response_key: response_key.public().clone(),
        pin,
        min_pin_length,
        force_pin_change: true,
    })
}

fn seal(r: &Request) -> envelope::Result<String> {
    let transport = PrivateJwk::generate("t-1", KeyUse::Enc).unwrap();
    envelope::seal_request(r, transport.public())
}

#[test]
fn static_pin_over_63_bytes_is_refused_even_under_63_characters() {
    // 32 characters, 64 bytes: a key would refuse it.
    let pin = "ü".repeat(32);
    let err = seal(&request(
        PinChoice::Static {
            value: Pin::new(pin),
        },
        4,
    ))
    .unwrap_err();
    assert!(
        matches!(&err, Error::Payload(m) if m.contains("64 bytes") && !m.contains('ü')),
        "{err:?}"
    );
    // 31 of them (62 bytes) are fine.
    seal(&request(
        PinChoice::Static {
            value: Pin::new("ü".repeat(31)),
        },
        4,
    ))
    .unwrap();
}

#[test]
fn a_pin_shorter_than_min_pin_length_still_seals_for_the_fulfiller_to_refuse() {
    // The fulfiller refuses it naming both numbers; the envelope does not hide that.
    seal(&request(PinChoice::Generate { length: 6 }, 8)).unwrap();
    // Code points count towards the minimum: six two-byte characters are six.
    seal(&request(
        PinChoice::Static {
            value: Pin::new("éééééé"),
        },
        6,
    ))
    .unwrap();
}
