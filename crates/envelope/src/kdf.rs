//! The Concat KDF of NIST SP 800-56A §5.8.1 as profiled by RFC 7518 §4.6.2, with SHA-256.

use aws_lc_rs::digest::{Context, SHA256};
use zeroize::Zeroizing;

/// Derives `out_len` bytes from the shared secret `z`.
///
/// `OtherInfo` = `AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo`, where the first
/// three are each a 32-bit big-endian length followed by the bytes, and `SuppPubInfo` is
/// the key length in *bits* as 32-bit big-endian. `SuppPrivInfo` is empty. For
/// `ECDH-ES+A256KW`, `algorithm_id` is `b"ECDH-ES+A256KW"` and `out_len` is 32; for direct
/// `ECDH-ES` (RFC 7518 Appendix C) it is the `enc` value and the content key length.
///
/// # Panics
/// Never for `out_len` below 512 MiB; longer outputs overflow the bit length and are not
/// used by any JOSE algorithm, so they are clamped to what SHA-256 rounds can give.
pub fn concat_kdf(
    z: &[u8],
    algorithm_id: &[u8],
    apu: &[u8],
    apv: &[u8],
    out_len: usize,
) -> Zeroizing<Vec<u8>> {
    let bits = u32::try_from(out_len.saturating_mul(8)).unwrap_or(u32::MAX);
    let mut out = Zeroizing::new(Vec::with_capacity(out_len + 32));
    let mut counter: u32 = 1;
    while out.len() < out_len {
        let mut h = Context::new(&SHA256);
        h.update(&counter.to_be_bytes());
        h.update(z);
        for part in [algorithm_id, apu, apv] {
            h.update(&len32(part).to_be_bytes());
            h.update(part);
        }
        h.update(&bits.to_be_bytes());
        let block = Zeroizing::new(h.finish().as_ref().to_vec());
        out.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    out.truncate(out_len);
    out
}

fn len32(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}
