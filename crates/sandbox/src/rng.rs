//! Randomness from the operating system.

/// Fills `N` random bytes. `None` only if the OS generator fails.
pub(crate) fn bytes<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).ok()?;
    Some(b)
}

/// A uniform number in [0, 1); 1.0 (never "hit") if the generator fails.
pub(crate) fn unit() -> f64 {
    match bytes::<8>() {
        Some(b) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        None => 1.0,
    }
}
