//! JWK and JWKS parsing: strict JSON (no duplicate members), EC P-384 points on the
//! curve, private scalars matching their points, alg against use, x5c/x5t shapes.
#![no_main]

use envelope::{Jwks, PrivateJwk, PublicJwk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(k) = PublicJwk::parse(text) {
        // Whatever parses re-serialises to something that parses to the same key.
        let again = PublicJwk::parse(&k.to_json()).expect("a parsed JWK round-trips");
        assert_eq!(again, k);
    }
    if let Ok(k) = PrivateJwk::parse(text) {
        let again = PrivateJwk::parse(&k.to_json()).expect("a parsed private JWK round-trips");
        assert_eq!(again.public(), k.public());
    }
    if let Ok(set) = Jwks::parse(text) {
        let again = Jwks::parse(&set.to_json()).expect("a parsed JWKS round-trips");
        assert_eq!(again, set);
    }
});
