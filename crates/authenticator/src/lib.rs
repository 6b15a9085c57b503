//! The key in your hand: a `KeyProgrammer` trait and `VirtualYubiKey`, a software
//! CTAP 2.1 authenticator that behaves like a YubiKey 5 for pre-registration.
#![forbid(unsafe_code)]
