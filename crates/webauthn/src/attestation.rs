//! Attestation objects (WebAuthn §6.5) and the `packed` (§8.2) and `none` (§8.7)
//! statement formats, checked under an [`AttestationPolicy`].

use ciborium::Value;

use crate::auth_data::AuthenticatorData;
use crate::cbor;
use crate::options::{ALG_ES256, ALG_ES384, ALG_RS256};
use crate::x509::{Cert, Hash, SigKey};
use crate::{Error, MAX_INPUT};

const WHAT: &str = "attestation object";
/// More certificates than this in x5c is refused.
const MAX_CHAIN: usize = 8;

/// A decoded attestation object: `{fmt, attStmt, authData}`.
#[derive(Debug, Clone)]
pub struct AttestationObject {
    pub fmt: String,
    /// The statement as decoded CBOR; interpreted per `fmt`.
    pub att_stmt: Value,
    /// authData bytes exactly as received (signed over by the statement).
    pub auth_data_bytes: Vec<u8>,
    pub auth_data: AuthenticatorData,
}

impl AttestationObject {
    /// Parse the CBOR attestation object and the authenticator data inside it.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_INPUT {
            return Err(Error::TooLarge {
                what: WHAT,
                max: MAX_INPUT,
            });
        }
        let value = cbor::decode_exact(WHAT, bytes)?;
        let entries = cbor::map(WHAT, &value)?;
        let fmt = match cbor::get_text(entries, "fmt") {
            Some(Value::Text(t)) => t.clone(),
            _ => return Err(cbor::cbor_err(WHAT, "missing text member fmt")),
        };
        let att_stmt = match cbor::get_text(entries, "attStmt") {
            Some(v @ Value::Map(_)) => v.clone(),
            _ => return Err(cbor::cbor_err(WHAT, "missing map member attStmt")),
        };
        let auth_data_bytes = match cbor::get_text(entries, "authData") {
            Some(Value::Bytes(b)) => b.clone(),
            _ => return Err(cbor::cbor_err(WHAT, "missing bytes member authData")),
        };
        let auth_data = AuthenticatorData::parse(&auth_data_bytes)?;
        Ok(Self {
            fmt,
            att_stmt,
            auth_data_bytes,
            auth_data,
        })
    }

    /// The certificate chain (x5c) of a packed statement, DER each; empty otherwise.
    pub fn x5c(&self) -> Vec<Vec<u8>> {
        let Value::Map(entries) = &self.att_stmt else {
            return Vec::new();
        };
        match cbor::get_text(entries, "x5c") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Bytes(b) => Some(b.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Trust anchors for attestation chains (ECDSA P-256/P-384 or RSA roots).
#[derive(Debug, Clone, Default)]
pub struct TrustRoots {
    certs: Vec<Cert>,
}

impl TrustRoots {
    /// Every PEM `CERTIFICATE` block in `pem`; text around the blocks (as in vendor
    /// bundles such as Yubico's `yubico-ca-certs.txt`) is ignored.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let mut out = Vec::new();
        let mut rest = pem;
        while let Some(start) = rest.find(BEGIN) {
            let after = rest.get(start..).unwrap_or_default();
            let Some(end) = after.find(END) else {
                return Err(Error::TrustRoot(format!(
                    "certificate {} has no END line",
                    out.len() + 1
                )));
            };
            let block = after.get(..end + END.len()).unwrap_or_default();
            let cert = <x509_cert::Certificate as x509_cert::der::DecodePem>::from_pem(block)
                .map_err(|e| Error::TrustRoot(format!("certificate {}: {e}", out.len() + 1)))?;
            let der = x509_cert::der::Encode::to_der(&cert)
                .map_err(|e| Error::TrustRoot(e.to_string()))?;
            out.push(
                Cert::parse(&der)
                    .map_err(|e| Error::TrustRoot(format!("certificate {}: {e}", out.len() + 1)))?,
            );
            rest = after.get(end + END.len()..).unwrap_or_default();
        }
        if out.is_empty() {
            return Err(Error::TrustRoot("no CERTIFICATE block found".into()));
        }
        Ok(Self { certs: out })
    }

    /// DER certificates.
    pub fn from_der<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, Error> {
        let certs = ders
            .into_iter()
            .map(|d| Cert::parse(d).map_err(|e| Error::TrustRoot(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Self { certs })
    }

    /// Add the roots of `other`.
    pub fn extend(&mut self, other: TrustRoots) {
        self.certs.extend(other.certs);
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Subjects of the roots, for messages.
    pub fn subjects(&self) -> Vec<String> {
        self.certs.iter().map(Cert::subject).collect()
    }
}

/// What attestation a registration must carry.
#[derive(Debug, Clone)]
pub enum AttestationPolicy {
    /// `packed` with an x5c chain that reaches one of these roots; self attestation
    /// and `none` are refused ([`Error::AttestationRequired`]).
    Required(TrustRoots),
    /// Any of `packed` (x5c or self) or `none`. Statement signatures must still
    /// verify; an x5c chain that does not reach these roots is accepted with
    /// `attested: false`.
    Optional(TrustRoots),
    /// Attestation is ignored: the statement is not verified and the result is
    /// never attested.
    None,
}

/// How the statement was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationType {
    /// packed with x5c, chain verified to a configured root.
    Trusted,
    /// packed with x5c whose signature verified but whose chain did not reach a
    /// configured root (only under [`AttestationPolicy::Optional`]).
    Untrusted,
    /// packed without x5c: signed by the credential key itself.
    SelfAttestation,
    /// `fmt: "none"`, or attestation ignored by policy.
    None,
}

/// Options for attestation checks that need caller-provided context.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChainOptions {
    /// Seconds since the Unix epoch; when set, every certificate in the chain and
    /// the root must be inside its validity period.
    pub now: Option<u64>,
}

/// Verify the statement of `obj` over `client_data_hash` under `policy`.
pub fn verify_statement(
    obj: &AttestationObject,
    client_data_hash: &[u8; 32],
    policy: &AttestationPolicy,
    chain: ChainOptions,
) -> Result<AttestationType, Error> {
    if matches!(policy, AttestationPolicy::None) {
        return Ok(AttestationType::None);
    }
    let required = matches!(policy, AttestationPolicy::Required(_));
    let outcome = match obj.fmt.as_str() {
        "none" => {
            let Value::Map(entries) = &obj.att_stmt else {
                return Err(Error::AttestationStatement("attStmt is not a map".into()));
            };
            if !entries.is_empty() {
                return Err(Error::AttestationStatement(
                    "none attestation must have an empty attStmt".into(),
                ));
            }
            AttestationType::None
        }
        "packed" => verify_packed(obj, client_data_hash, policy, chain)?,
        other => return Err(Error::UnsupportedFormat(other.to_owned())),
    };
    if required && outcome != AttestationType::Trusted {
        let what = match outcome {
            AttestationType::SelfAttestation => "packed self attestation".to_owned(),
            _ => obj.fmt.clone(),
        };
        return Err(Error::AttestationRequired(what));
    }
    Ok(outcome)
}

fn verify_packed(
    obj: &AttestationObject,
    client_data_hash: &[u8; 32],
    policy: &AttestationPolicy,
    chain: ChainOptions,
) -> Result<AttestationType, Error> {
    let stmt_err = |m: &str| Error::AttestationStatement(m.to_owned());
    let entries = cbor::map("attStmt", &obj.att_stmt)?;
    for (k, _) in entries {
        match k {
            Value::Text(t) if t == "alg" || t == "sig" || t == "x5c" => {}
            Value::Text(t) if t == "ecdaaKeyId" => {
                return Err(Error::UnsupportedFormat("packed with ECDAA".into()));
            }
            _ => return Err(stmt_err("unknown member in packed attStmt")),
        }
    }
    let alg = cbor::get_text(entries, "alg")
        .and_then(cbor::as_int)
        .and_then(|a| i64::try_from(a).ok())
        .ok_or_else(|| stmt_err("alg missing or not an integer"))?;
    let sig = match cbor::get_text(entries, "sig") {
        Some(Value::Bytes(b)) => b.as_slice(),
        _ => return Err(stmt_err("sig missing or not bytes")),
    };
    let mut signed = Vec::with_capacity(obj.auth_data_bytes.len() + 32);
    signed.extend_from_slice(&obj.auth_data_bytes);
    signed.extend_from_slice(client_data_hash);
    let credential = obj
        .auth_data
        .attested_credential
        .as_ref()
        .ok_or(Error::MissingCredentialData)?;

    let x5c = match cbor::get_text(entries, "x5c") {
        None => None,
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_CHAIN => {
            let mut certs = Vec::with_capacity(items.len());
            for item in items {
                let Value::Bytes(der) = item else {
                    return Err(stmt_err("x5c entries must be bytes"));
                };
                certs.push(Cert::parse(der)?);
            }
            Some(certs)
        }
        Some(_) => {
            return Err(stmt_err(
                "x5c must be a non-empty array of at most 8 certificates",
            ));
        }
    };

    let Some(certs) = x5c else {
        // Self attestation: signed by the credential key with its own alg.
        let key_alg = credential.public_key.alg();
        if alg != key_alg {
            return Err(Error::AttestationAlgMismatch {
                stmt: alg,
                key: key_alg,
            });
        }
        credential
            .public_key
            .verify(&signed, sig)
            .map_err(|e| match e {
                Error::AssertionSignature => Error::AttestationSignature,
                other => other,
            })?;
        return Ok(AttestationType::SelfAttestation);
    };

    let Some(leaf) = certs.first() else {
        return Err(stmt_err("x5c is empty"));
    };
    // alg names the curve as well as the hash (RFC 9053 §2.1: ES256 is P-256, ES384 is
    // P-384), so it must be the leaf key's.
    let hash = match (alg, leaf.key()) {
        (ALG_ES256, SigKey::P256(_)) => Hash::Sha256,
        (ALG_ES384, SigKey::P384(_)) => Hash::Sha384,
        (ALG_RS256, SigKey::Rsa(_)) => Hash::Sha256,
        (ALG_ES256 | ALG_ES384 | ALG_RS256, key) => {
            return Err(stmt_err(&format!(
                "alg {alg} does not fit the attestation certificate's key ({})",
                key.describe()
            )));
        }
        (other, _) => return Err(Error::UnsupportedAlgorithm(other)),
    };
    if !leaf.key().verify(hash, &signed, sig) {
        return Err(Error::AttestationSignature);
    }
    leaf.check_packed_leaf()?;
    if let Some(aaguid) = leaf.fido_aaguid()?
        && aaguid != *credential.aaguid.as_bytes()
    {
        return Err(Error::AaguidMismatch);
    }

    let roots = match policy {
        AttestationPolicy::Required(r) | AttestationPolicy::Optional(r) => r,
        AttestationPolicy::None => return Ok(AttestationType::None),
    };
    match verify_chain(&certs, roots, chain) {
        Ok(()) => Ok(AttestationType::Trusted),
        Err(e) if matches!(policy, AttestationPolicy::Optional(_)) => {
            // Optional: the statement signature verified; the chain is informative.
            let _ = e;
            Ok(AttestationType::Untrusted)
        }
        Err(e) => Err(e),
    }
}

/// Each certificate signed by the next, intermediates are CAs, and some certificate
/// in the chain is a configured root or signed by one.
fn verify_chain(certs: &[Cert], roots: &TrustRoots, opts: ChainOptions) -> Result<(), Error> {
    if let Some(now) = opts.now {
        for (index, c) in certs.iter().enumerate() {
            if !c.valid_at(now) {
                return Err(Error::CertificateExpired { index });
            }
        }
    }
    for (index, pair) in certs.windows(2).enumerate() {
        let [child, parent] = pair else { continue };
        // Below x5c[index + 1]: the leaf, then x5c[1..=index], all intermediates.
        parent.check_issuer(index, &format!("x5c[{}]", index + 1))?;
        if !child.is_signed_by(parent) {
            return Err(Error::ChainSignature {
                index,
                issuer: parent.subject(),
            });
        }
    }
    // Trusted when some certificate in the chain is a configured anchor or is issued by
    // one (so an intermediate can be configured as the anchor too). An anchor is a CA:
    // a configured leaf, or a root that could not issue what it signed, anchors nothing.
    let mut anchor_error = None;
    let trusted = certs.iter().enumerate().any(|(index, c)| {
        roots.certs.iter().any(|root| {
            if !opts.now.is_none_or(|now| root.valid_at(now)) {
                return false;
            }
            let checked = if c.same_as(root) {
                // x5c[index] is the anchor: a CA with `index - 1` intermediates below.
                match index.checked_sub(1) {
                    Some(below) => root.check_issuer(below, "trust root"),
                    None => Err(Error::Certificate(format!(
                        "the configured trust root {} is the leaf itself, not a CA",
                        root.subject()
                    ))),
                }
            } else if c.is_signed_by(root) {
                root.check_issuer(index, "trust root")
            } else {
                return false;
            };
            match checked {
                Ok(()) => true,
                Err(e) => {
                    anchor_error.get_or_insert(e);
                    false
                }
            }
        })
    });
    if trusted {
        Ok(())
    } else {
        Err(anchor_error.unwrap_or(Error::UntrustedChain))
    }
}
