//! Issue 16's review findings on the virtual key: the exclude list checks every matching
//! credential, and the key advertises no PIN/UV auth protocol it does not speak.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use authenticator::{
    CtapError, Error, KeyProgrammer, MakeCredentialRequest, RelyingParty, User, VirtualYubiKey,
};

fn key() -> VirtualYubiKey {
    VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.7.1".parse().unwrap(),
        Some(31636842),
    )
    .unwrap()
}

fn request(user: &[u8], cred_protect: u8, exclude_list: Vec<Vec<u8>>) -> MakeCredentialRequest {
    MakeCredentialRequest {
        client_data_hash: [7; 32],
        client_data_json: None,
        rp: RelyingParty {
            id: "login.microsoft.com".into(),
            name: Some("Microsoft".into()),
        },
        user: User {
            id: user.to_vec(),
            name: Some("john@contoso.com".into()),
            display_name: Some("John Doe".into()),
        },
        algorithms: vec![-7],
        exclude_list,
        resident_key: false,
        user_verification: false,
        cred_protect: Some(cred_protect),
        hmac_secret: false,
    }
}

#[test]
fn exclude_list_refuses_when_any_matching_credential_is_visible_not_just_the_first() {
    let mut k = key();
    // No PIN, no UV: a credProtect 3 credential is invisible to the exclude list, a
    // credProtect 1 credential is not.
    let hidden = k
        .make_credential(&request(b"u1", 3, vec![]), None)
        .unwrap()
        .credential_id;
    let visible = k
        .make_credential(&request(b"u2", 1, vec![]), None)
        .unwrap()
        .credential_id;

    // Only the hidden one listed: not excluded (CTAP 2.1 §6.1.2 step 7, credProtect 3).
    k.make_credential(&request(b"u3", 1, vec![hidden.clone()]), None)
        .unwrap();

    // Both listed, the hidden one first: the visible one must still exclude.
    let got = k.make_credential(&request(b"u4", 1, vec![hidden, visible]), None);
    assert!(
        matches!(got, Err(Error::Ctap(CtapError::CredentialExcluded))),
        "{got:?}"
    );
}

#[test]
fn get_info_advertises_no_pin_uv_auth_protocol_the_key_does_not_speak() {
    // The PIN reaches the virtual key through KeyProgrammer, not through protocol 1 or
    // 2 (ECDH, encrypted PIN, HMAC'd pinUvAuthParam), so none is claimed.
    for firmware in ["5.4.3", "5.7.1"] {
        let k = VirtualYubiKey::new(
            "YubiKey 5 NFC".parse().unwrap(),
            firmware.parse().unwrap(),
            None,
        )
        .unwrap();
        let info = k.get_info().unwrap();
        assert!(info.pin_uv_auth_protocols.is_empty());
        // Nor the option that promises tokens with permissions over such a protocol.
        assert!(!info.options.contains_key("pinUvAuthToken"), "{firmware}");
    }
}
