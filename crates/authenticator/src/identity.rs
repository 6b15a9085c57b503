//! Who the key says it is: model, firmware, serial number, and the AAGUID that real keys
//! of that model and firmware report (shared/spec/entra.md §7, from the FIDO MDS table
//! Microsoft publishes and the firmware mapping of entraYK).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// A firmware version, `major.minor.patch` (e.g. 5.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Firmware {
    /// Major (5 for every model here).
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Patch.
    pub patch: u8,
}

impl Firmware {
    /// A version from its parts.
    pub const fn new(major: u8, minor: u8, patch: u8) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// CTAP 2.1 getInfo `firmwareVersion` (0x0E): YubiKeys report 0xMMmmpp.
    pub fn as_ctap(&self) -> u32 {
        (u32::from(self.major) << 16) | (u32::from(self.minor) << 8) | u32::from(self.patch)
    }

    /// Whether authenticatorConfig (setMinPINLength, forcePINChange) exists: 5.7 and later.
    pub fn has_authenticator_config(&self) -> bool {
        *self >= Self::new(5, 7, 0)
    }

    /// Whether credProtect exists: 5.2 and later.
    pub fn has_cred_protect(&self) -> bool {
        *self >= Self::new(5, 2, 0)
    }

    /// How many discoverable credentials fit: 100 from 5.7, 25 before.
    pub fn max_discoverable_credentials(&self) -> usize {
        if *self >= Self::new(5, 7, 0) { 100 } else { 25 }
    }
}

impl FromStr for Firmware {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::UnknownIdentity(format!(
                "firmware {s:?} is not a version like 5.7.1 (major.minor.patch)"
            ))
        };
        let mut parts = s.trim().split('.');
        let mut next = || -> Result<u8, Error> {
            parts
                .next()
                .ok_or_else(bad)?
                .parse::<u8>()
                .map_err(|_| bad())
        };
        let fw = Self::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(fw)
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Firmware {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Firmware {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The models this crate can be. Each maps firmware lines to the AAGUID real keys report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Model {
    /// YubiKey 5 NFC.
    YubiKey5Nfc,
    /// YubiKey 5C NFC (same AAGUIDs as the 5 NFC).
    YubiKey5CNfc,
    /// YubiKey 5 (USB-A, no NFC).
    YubiKey5,
    /// YubiKey 5C.
    YubiKey5C,
    /// YubiKey 5 Nano.
    YubiKey5Nano,
    /// YubiKey 5C Nano.
    YubiKey5CNano,
    /// YubiKey 5Ci (USB-C and Lightning).
    YubiKey5Ci,
    /// YubiKey 5 NFC FIPS.
    YubiKey5NfcFips,
    /// YubiKey 5C NFC FIPS.
    YubiKey5CNfcFips,
    /// YubiKey 5 FIPS (USB-A, no NFC); "YubiKey FIPS" in YubiEnterprise product lists.
    YubiKey5Fips,
    /// YubiKey 5C FIPS; "YubiKey C FIPS".
    YubiKey5CFips,
    /// YubiKey 5 Nano FIPS; "YubiKey Nano FIPS".
    YubiKey5NanoFips,
    /// YubiKey 5C Nano FIPS; "YubiKey C Nano FIPS".
    YubiKey5CNanoFips,
    /// Security Key NFC.
    SecurityKeyNfc,
    /// Security Key C NFC.
    SecurityKeyCNfc,
    /// Security Key NFC, Enterprise Edition.
    SecurityKeyNfcEnterprise,
    /// Security Key C NFC, Enterprise Edition.
    SecurityKeyCNfcEnterprise,
}

/// AAGUID lines: (lowest firmware, highest firmware, AAGUID), inclusive on major.minor.
type AaguidLine = ((u8, u8), (u8, u8), &'static str);

const YK5_NFC: &[AaguidLine] = &[
    ((5, 1), (5, 1), "fa2b99dc-9e39-4257-8f92-4a30d23c4118"),
    ((5, 2), (5, 4), "2fc0579f-8113-47ea-b116-bb5a8db9202a"),
    ((5, 7), (5, 7), "a25342c0-3cdc-4414-8e46-f4807fca511c"),
];
const YK5_USB: &[AaguidLine] = &[
    ((5, 1), (5, 1), "cb69481e-8ff7-4039-93ec-0a2729a154a8"),
    ((5, 2), (5, 4), "ee882879-721c-4913-9775-3dfcce97072a"),
    ((5, 7), (5, 7), "19083c3d-8383-4b18-bc03-8f1c9ab2fd1b"),
];
const YK5CI: &[AaguidLine] = &[
    ((5, 2), (5, 4), "c5ef55ff-ad9a-4b9f-b580-adebafe026d0"),
    ((5, 7), (5, 7), "a02167b9-ae71-4ac7-9a07-06432ebb6f1c"),
];
const YK5_NFC_FIPS: &[AaguidLine] = &[
    ((5, 4), (5, 4), "c1f9a0bc-1dd2-404a-b27f-8e29047a43fd"),
    ((5, 7), (5, 7), "fcc0118f-cd45-435b-8da1-9782b2da0715"),
];
const YK5_USB_FIPS: &[AaguidLine] = &[((5, 4), (5, 4), "73bb0cd4-e502-49b8-9c6f-b59445bf720b")];
const SK_NFC: &[AaguidLine] = &[
    ((5, 1), (5, 1), "6d44ba9b-f6ec-2e49-b930-0c8fe920cb73"),
    ((5, 2), (5, 4), "149a2021-8ef6-4133-96b8-81f8d5b7f1f5"),
    ((5, 7), (5, 7), "e77e3c64-05e3-428b-8824-0cbeb04b829d"),
];
const SK_NFC_EE: &[AaguidLine] = &[
    ((5, 4), (5, 4), "0bb43545-fd2c-4185-87dd-feb0b2916ace"),
    ((5, 7), (5, 7), "47ab2fb4-66ac-4184-9ae1-86be814012d5"),
];

impl Model {
    /// Every model, in the order `prereg key create --help` lists them.
    pub const ALL: &'static [Model] = &[
        Self::YubiKey5Nfc,
        Self::YubiKey5CNfc,
        Self::YubiKey5,
        Self::YubiKey5C,
        Self::YubiKey5Nano,
        Self::YubiKey5CNano,
        Self::YubiKey5Ci,
        Self::YubiKey5NfcFips,
        Self::YubiKey5CNfcFips,
        Self::YubiKey5Fips,
        Self::YubiKey5CFips,
        Self::YubiKey5NanoFips,
        Self::YubiKey5CNanoFips,
        Self::SecurityKeyNfc,
        Self::SecurityKeyCNfc,
        Self::SecurityKeyNfcEnterprise,
        Self::SecurityKeyCNfcEnterprise,
    ];

    /// The marketing name, e.g. "YubiKey 5 NFC".
    pub fn name(&self) -> &'static str {
        match self {
            Self::YubiKey5Nfc => "YubiKey 5 NFC",
            Self::YubiKey5CNfc => "YubiKey 5C NFC",
            Self::YubiKey5 => "YubiKey 5",
            Self::YubiKey5C => "YubiKey 5C",
            Self::YubiKey5Nano => "YubiKey 5 Nano",
            Self::YubiKey5CNano => "YubiKey 5C Nano",
            Self::YubiKey5Ci => "YubiKey 5Ci",
            Self::YubiKey5NfcFips => "YubiKey 5 NFC FIPS",
            Self::YubiKey5CNfcFips => "YubiKey 5C NFC FIPS",
            Self::YubiKey5Fips => "YubiKey 5 FIPS",
            Self::YubiKey5CFips => "YubiKey 5C FIPS",
            Self::YubiKey5NanoFips => "YubiKey 5 Nano FIPS",
            Self::YubiKey5CNanoFips => "YubiKey 5C Nano FIPS",
            Self::SecurityKeyNfc => "Security Key NFC",
            Self::SecurityKeyCNfc => "Security Key C NFC",
            Self::SecurityKeyNfcEnterprise => "Security Key NFC Enterprise Edition",
            Self::SecurityKeyCNfcEnterprise => "Security Key C NFC Enterprise Edition",
        }
    }

    /// Whether the key has NFC (it then reports transports `["nfc", "usb"]`).
    pub fn has_nfc(&self) -> bool {
        !matches!(
            self,
            Self::YubiKey5
                | Self::YubiKey5C
                | Self::YubiKey5Nano
                | Self::YubiKey5CNano
                | Self::YubiKey5Ci
                | Self::YubiKey5Fips
                | Self::YubiKey5CFips
                | Self::YubiKey5NanoFips
                | Self::YubiKey5CNanoFips
        )
    }

    /// WebAuthn transports, as a browser reports them for this key.
    pub fn transports(&self) -> Vec<&'static str> {
        if self.has_nfc() {
            vec!["nfc", "usb"]
        } else {
            vec!["usb"]
        }
    }

    fn lines(&self) -> &'static [AaguidLine] {
        match self {
            Self::YubiKey5Nfc | Self::YubiKey5CNfc => YK5_NFC,
            Self::YubiKey5 | Self::YubiKey5C | Self::YubiKey5Nano | Self::YubiKey5CNano => YK5_USB,
            Self::YubiKey5Ci => YK5CI,
            Self::YubiKey5NfcFips | Self::YubiKey5CNfcFips => YK5_NFC_FIPS,
            Self::YubiKey5Fips
            | Self::YubiKey5CFips
            | Self::YubiKey5NanoFips
            | Self::YubiKey5CNanoFips => YK5_USB_FIPS,
            Self::SecurityKeyNfc | Self::SecurityKeyCNfc => SK_NFC,
            Self::SecurityKeyNfcEnterprise | Self::SecurityKeyCNfcEnterprise => SK_NFC_EE,
        }
    }

    /// The AAGUID real keys of this model report on `firmware`, or an error naming the
    /// firmware lines this crate knows for the model.
    pub fn aaguid(&self, firmware: Firmware) -> Result<Uuid, Error> {
        let fw = (firmware.major, firmware.minor);
        for (lo, hi, aaguid) in self.lines() {
            if fw >= *lo && fw <= *hi {
                return Uuid::parse_str(aaguid)
                    .map_err(|e| Error::UnknownIdentity(format!("AAGUID table entry: {e}")));
            }
        }
        let known: Vec<String> = self
            .lines()
            .iter()
            .map(|(lo, hi, _)| {
                if lo == hi {
                    format!("{}.{}", lo.0, lo.1)
                } else {
                    format!("{}.{}-{}.{}", lo.0, lo.1, hi.0, hi.1)
                }
            })
            .collect();
        Err(Error::UnknownIdentity(format!(
            "no known AAGUID for {} firmware {firmware}; firmware lines known for this model: {}",
            self.name(),
            known.join(", ")
        )))
    }
}

impl FromStr for Model {
    type Err = Error;

    /// Accepts the model name, case-insensitively, with or without a trailing
    /// "by Yubico", and the short FIPS names YubiEnterprise lists ("YubiKey C FIPS").
    fn from_str(s: &str) -> Result<Self, Error> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let mut want = words.join(" ");
        if want.to_ascii_lowercase().ends_with(" by yubico") {
            want.truncate(want.len() - " by yubico".len());
        }
        let alias = |w: &str| match w.to_ascii_lowercase().as_str() {
            "yubikey fips" => Some(Self::YubiKey5Fips),
            "yubikey c fips" => Some(Self::YubiKey5CFips),
            "yubikey nano fips" => Some(Self::YubiKey5NanoFips),
            "yubikey c nano fips" => Some(Self::YubiKey5CNanoFips),
            _ => None,
        };
        Self::ALL
            .iter()
            .find(|m| m.name().eq_ignore_ascii_case(&want))
            .copied()
            .or_else(|| alias(&want))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                Error::UnknownIdentity(format!(
                    "unknown model {want:?}; known models: {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Model {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Model {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Model, firmware, serial number and AAGUID: what `ykman info` and getInfo show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The model.
    pub model: Model,
    /// The firmware version.
    pub firmware: Firmware,
    /// The serial number printed on the key (8 digits on current keys).
    pub serial: u32,
    /// The AAGUID, fixed by model and firmware.
    pub aaguid: Uuid,
}

impl Identity {
    /// An identity, with the AAGUID looked up from model and firmware.
    pub fn new(model: Model, firmware: Firmware, serial: u32) -> Result<Self, Error> {
        Ok(Self {
            model,
            firmware,
            serial,
            aaguid: model.aaguid(firmware)?,
        })
    }
}

/// A random 8-digit serial number (10000000..=99999999).
pub fn random_serial() -> Result<u32, Error> {
    let mut b = [0u8; 4];
    crate::crypto::fill_random(&mut b)?;
    Ok(10_000_000 + u32::from_le_bytes(b) % 90_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yubikey_5_nfc_aaguids_follow_the_firmware_line() {
        let m: Model = "YubiKey 5 NFC".parse().unwrap();
        let aaguid = |fw: &str| m.aaguid(fw.parse().unwrap()).unwrap().to_string();
        assert_eq!(aaguid("5.7.1"), "a25342c0-3cdc-4414-8e46-f4807fca511c");
        assert_eq!(aaguid("5.7.4"), "a25342c0-3cdc-4414-8e46-f4807fca511c");
        assert_eq!(aaguid("5.2.7"), "2fc0579f-8113-47ea-b116-bb5a8db9202a");
        assert_eq!(aaguid("5.4.3"), "2fc0579f-8113-47ea-b116-bb5a8db9202a");
        assert_eq!(aaguid("5.1.2"), "fa2b99dc-9e39-4257-8f92-4a30d23c4118");
    }

    #[test]
    fn unknown_firmware_line_is_refused_with_the_known_lines() {
        let err = Model::YubiKey5Nfc
            .aaguid("5.8.0".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("5.2-5.4") && err.contains("5.7"), "{err}");
    }

    #[test]
    fn models_parse_case_insensitively_and_round_trip() {
        for m in Model::ALL {
            assert_eq!(m.name().to_lowercase().parse::<Model>().unwrap(), *m);
        }
        assert!("Yubikey 9".parse::<Model>().is_err());
        assert_eq!(
            "Security Key NFC by Yubico".parse::<Model>().unwrap(),
            Model::SecurityKeyNfc
        );
        assert_eq!(
            "YubiKey  C FIPS".parse::<Model>().unwrap(),
            Model::YubiKey5CFips
        );
    }

    #[test]
    fn firmware_parses_three_parts_only() {
        assert_eq!("5.7.1".parse::<Firmware>().unwrap().as_ctap(), 0x050701);
        assert!("5.7".parse::<Firmware>().is_err());
        assert!("5.7.1.2".parse::<Firmware>().is_err());
        assert!("5.x.1".parse::<Firmware>().is_err());
    }

    #[test]
    fn random_serials_have_eight_digits() {
        for _ in 0..100 {
            let s = random_serial().unwrap();
            assert_eq!(s.to_string().len(), 8);
        }
    }
}
