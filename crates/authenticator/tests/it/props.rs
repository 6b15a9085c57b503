//! Property test: the PIN counters against a reference model over random sequences of
//! attempts and reinserts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use authenticator::{CtapError, Error, KeyProgrammer, Pin, VirtualYubiKey};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Step {
    Wrong,
    Right,
    Reinsert,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![4 => Just(Step::Wrong), 2 => Just(Step::Right), 1 => Just(Step::Reinsert)]
}

/// The rules written as plainly as possible.
#[derive(Debug)]
struct Model {
    retries: u8,
    this_insertion: u8,
}

impl Model {
    fn attempt(&mut self, right: bool) -> Result<(), CtapError> {
        if self.retries == 0 {
            return Err(CtapError::PinBlocked);
        }
        if self.this_insertion >= 3 {
            return Err(CtapError::PinAuthBlocked {
                retries: self.retries,
            });
        }
        if right {
            self.retries = 8;
            self.this_insertion = 0;
            return Ok(());
        }
        self.retries -= 1;
        self.this_insertion += 1;
        match (self.retries, self.this_insertion) {
            (0, _) => Err(CtapError::PinBlocked),
            (r, 3) => Err(CtapError::PinAuthBlocked { retries: r }),
            (r, _) => Err(CtapError::PinInvalid { retries: r }),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pin_counters_follow_the_yubikey_rules(steps in prop::collection::vec(step(), 1..40)) {
        let mut key = VirtualYubiKey::new(
            "YubiKey 5 NFC".parse().unwrap(), "5.7.1".parse().unwrap(), Some(1)).unwrap();
        let pin = Pin::new("1234");
        key.set_pin(&pin).unwrap();
        let mut model = Model { retries: 8, this_insertion: 0 };
        for s in steps {
            match s {
                Step::Reinsert => {
                    key.power_cycle();
                    model.this_insertion = 0;
                }
                Step::Wrong | Step::Right => {
                    let right = matches!(s, Step::Right);
                    let tried = if right { pin.clone() } else { Pin::new("9999") };
                    // change_pin to the same PIN: a pure PIN check with no other effect.
                    let got = key.change_pin(&tried, &pin).map_err(|e| match e {
                        Error::Ctap(c) => c,
                        other => panic!("{other}"),
                    });
                    prop_assert_eq!(got, model.attempt(right));
                }
            }
            let s = key.summary();
            prop_assert_eq!(s.pin_retries, model.retries);
            prop_assert_eq!(s.pin_failures_since_insertion, model.this_insertion);
            // Round trip through the file keeps every counter.
            let again = VirtualYubiKey::from_json(&key.to_json().unwrap()).unwrap().summary();
            prop_assert_eq!(again.pin_retries, model.retries);
        }
    }
}
