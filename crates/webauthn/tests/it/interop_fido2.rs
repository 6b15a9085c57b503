//! Independent check with Yubico's python-fido2 (`interop/fido2_rp.py`, pinned venv):
//! registrations and assertions built and verified in Python are accepted here with the
//! same AAGUID, credential id and key, and python-fido2 agrees with what we parse.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::{Value, json};
use webauthn::{
    AssertionExpectations, AttestationPolicy, AttestationType, Error, RegisteredCredential,
    RegistrationExpectations, TrustRoots, b64, verify_assertion, verify_registration,
};

const RP_ID: &str = "interop.example";
const ORIGIN: &str = "https://interop.example";

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("member {k}"))
}

fn bytes(v: &Value, k: &str) -> Vec<u8> {
    b64::decode("test", s(v, k)).unwrap()
}

fn made() -> Value {
    testkit::run_python(
        "fido2_rp.py",
        &json!({"mode": "make", "rp_id": RP_ID, "origin": ORIGIN}),
    )
}

fn register(r: &Value) -> Result<RegisteredCredential, Error> {
    let policy = match r["root_pem"].as_str() {
        Some(pem) => AttestationPolicy::Required(TrustRoots::from_pem(pem).unwrap()),
        None => AttestationPolicy::Optional(TrustRoots::default()),
    };
    let mut e = RegistrationExpectations::new(RP_ID, s(r, "challenge"), policy);
    e.require_uv = true;
    verify_registration(
        &e,
        &bytes(r, "client_data_json"),
        &bytes(r, "attestation_object"),
    )
}

fn ours_json(c: &RegisteredCredential) -> Value {
    let ext = c.extensions.as_ref().map(|x| {
        let mut m = serde_json::Map::new();
        if let Some(p) = x.cred_protect {
            m.insert("credProtect".into(), json!(p));
        }
        if let Some(h) = x.hmac_secret {
            m.insert("hmac-secret".into(), json!(h));
        }
        Value::Object(m)
    });
    json!({
        "fmt": c.fmt,
        "aaguid": c.aaguid.to_string(),
        "credential_id": b64::encode(&c.credential_id),
        "public_key_cose": b64::encode(&c.public_key_cose),
        "sign_count": c.sign_count,
        "uv": c.uv,
        "extensions": ext,
    })
}

#[test]
fn python_fido2_registrations_and_assertions_verify_here_and_parsing_agrees() {
    let m = made();
    let regs = m["registrations"].as_array().unwrap();
    assert_eq!(regs.len(), 6);
    let mut stored = std::collections::HashMap::new();
    let mut check_items = Vec::new();
    for r in regs {
        let name = s(r, "name");
        let c = register(r).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = &r["expect"];
        assert_eq!(c.fmt, s(want, "fmt"), "{name}");
        assert_eq!(c.aaguid.to_string(), s(want, "aaguid"), "{name}");
        assert_eq!(
            b64::encode(&c.credential_id),
            s(want, "credential_id"),
            "{name}"
        );
        assert_eq!(
            b64::encode(&c.public_key_cose),
            s(want, "public_key_cose"),
            "{name}"
        );
        assert_eq!(c.attested, want["attested"].as_bool().unwrap(), "{name}");
        let expected_type = match name {
            "packed-x5c-es256" | "packed-x5c-rsa-root" => AttestationType::Trusted,
            "none-es256" => AttestationType::None,
            _ => AttestationType::SelfAttestation,
        };
        assert_eq!(c.attestation_type, expected_type, "{name}");
        check_items.push(json!({
            "attestation_object": s(r, "attestation_object"),
            "client_data_json": s(r, "client_data_json"),
            "ours": ours_json(&c),
        }));
        stored.insert(name.to_owned(), c);
    }

    // Also have python-fido2 parse the committed vectors we accept.
    let vectors = testkit::vectors("attestation-v1.json");
    for v in vectors["valid"].as_array().unwrap() {
        let mut e = RegistrationExpectations::new(
            s(v, "rp_id"),
            s(v, "challenge"),
            AttestationPolicy::Required(TrustRoots::from_pem(s(v, "trust_root_pem")).unwrap()),
        );
        e.origins = vec![s(v, "origin").to_owned()];
        let c = verify_registration(
            &e,
            &bytes(v, "client_data_json"),
            &bytes(v, "attestation_object"),
        )
        .unwrap();
        check_items.push(json!({
            "attestation_object": s(v, "attestation_object"),
            "client_data_json": s(v, "client_data_json"),
            "ours": ours_json(&c),
        }));
    }
    let verdict = testkit::run_python(
        "fido2_rp.py",
        &json!({"mode": "check", "items": check_items}),
    );
    for (i, r) in verdict["results"].as_array().unwrap().iter().enumerate() {
        assert_eq!(r["agree"], true, "item {i} disagrees: {}", r["diffs"]);
    }

    let mut counters: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for a in m["assertions"].as_array().unwrap() {
        let reg = s(a, "registration");
        let cred = &stored[reg];
        let exp = AssertionExpectations {
            rp_id: RP_ID.into(),
            origins: vec![ORIGIN.into()],
            challenge: s(a, "challenge").into(),
            require_uv: true,
            public_key_cose: cred.public_key_cose.clone(),
            sign_count: counters.get(reg).copied().unwrap_or(cred.sign_count),
        };
        let cd = bytes(a, "client_data_json");
        let ad = bytes(a, "authenticator_data");
        let sig = bytes(a, "signature");
        let out = verify_assertion(&exp, &cd, &ad, &sig).unwrap_or_else(|e| panic!("{reg}: {e}"));
        assert_eq!(u64::from(out.sign_count), a["counter"].as_u64().unwrap());
        assert!(out.uv);
        counters.insert(reg.to_owned(), out.sign_count);

        // Replaying the same assertion is a counter failure (possible clone).
        let replay = AssertionExpectations {
            sign_count: out.sign_count,
            ..exp.clone()
        };
        assert!(matches!(
            verify_assertion(&replay, &cd, &ad, &sig),
            Err(Error::SignCountNotIncreased { .. })
        ));
        // A flipped signature bit never verifies.
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            verify_assertion(&exp, &cd, &ad, &bad),
            Err(Error::AssertionSignature)
        );
        // Another challenge is refused before the signature matters.
        let other = AssertionExpectations {
            challenge: "other".into(),
            ..exp.clone()
        };
        assert_eq!(
            verify_assertion(&other, &cd, &ad, &sig),
            Err(Error::ChallengeMismatch)
        );
    }
    assert_eq!(counters["packed-self-es256"], 2);
    assert_eq!(counters["packed-self-es384"], 7);
    assert_eq!(counters["packed-self-rs256"], 3);
}

#[test]
fn python_self_and_none_attestation_are_refused_when_attestation_is_required() {
    let m = made();
    for r in m["registrations"].as_array().unwrap() {
        if r["root_pem"].is_string() {
            continue;
        }
        let mut e = RegistrationExpectations::new(
            RP_ID,
            s(r, "challenge"),
            AttestationPolicy::Required(TrustRoots::default()),
        );
        e.require_uv = true;
        let got = verify_registration(
            &e,
            &bytes(r, "client_data_json"),
            &bytes(r, "attestation_object"),
        );
        assert!(
            matches!(got, Err(Error::AttestationRequired(_))),
            "{}: {got:?}",
            s(r, "name")
        );
    }
}

#[test]
fn packed_statements_python_fido2_refuses_are_refused_here_for_the_same_reason() {
    let made = testkit::run_python(
        "fido2_rp.py",
        &json!({"mode": "make-invalid", "rp_id": RP_ID, "origin": ORIGIN}),
    );
    let cases = made["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for c in cases {
        let name = s(c, "name");
        let roots = match c["root_pem"].as_str() {
            Some(pem) => TrustRoots::from_pem(pem).unwrap(),
            None => TrustRoots::default(),
        };
        let mut e = RegistrationExpectations::new(
            RP_ID,
            s(c, "challenge"),
            AttestationPolicy::Required(roots),
        );
        e.require_uv = true;
        let err = verify_registration(
            &e,
            &bytes(c, "client_data_json"),
            &bytes(c, "attestation_object"),
        )
        .expect_err(name);
        let ok = match name {
            "leaf-without-ou" | "leaf-wrong-ou" | "leaf-is-ca" | "aaguid-extension-critical" => {
                matches!(err, Error::LeafRequirements(_))
            }
            "aaguid-extension-mismatch" => err == Error::AaguidMismatch,
            "intermediate-missing-from-x5c" => err == Error::UntrustedChain,
            "signature-hash-not-alg" => err == Error::AttestationSignature,
            "self-alg-not-key-alg" => err == Error::AttestationAlgMismatch { stmt: -35, key: -7 },
            other => panic!("unknown case {other}"),
        };
        assert!(
            ok,
            "{name}: got {err:?}; python-fido2 said {}",
            s(c, "python_error")
        );
    }
}
