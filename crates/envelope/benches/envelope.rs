//! Envelope operations per second next to the P-384 primitives they are built from, so
//! the envelope's own overhead (KDF, AES, JSON, base64) is visible. Run with
//! `cargo bench -p envelope`; a summary table follows criterion's output.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a panic is the report

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use envelope::{
    Jwks, KeyUse, Pin, PinChoice, PinRequest, PinResponse, PrivateJwk, Request, Response,
};
use p384::ecdh::EphemeralSecret;
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use p384::elliptic_curve::Generate;

struct Setup {
    transport: PrivateJwk,
    response_key: PrivateJwk,
    signing: PrivateJwk,
    trusted: Jwks,
    request: Request,
    request_jwe: String,
    response: Response,
    response_jwe: String,
    secret: p384::SecretKey,
    peer: p384::PublicKey,
    sk: SigningKey,
    vk: VerifyingKey,
    sig: Signature,
}

fn setup() -> Setup {
    let transport = PrivateJwk::generate("t", KeyUse::Enc).unwrap();
    let response_key = PrivateJwk::generate("rk", KeyUse::Enc).unwrap();
    let signing = PrivateJwk::generate("s", KeyUse::Sig).unwrap();
    let mut trusted = Jwks::new();
    trusted.add(signing.public().clone()).unwrap();
    let request = Request::Pin(PinRequest {
        response_key: response_key.public().clone(),
        pin: PinChoice::Generate { length: 8 },
        min_pin_length: 6,
        force_pin_change: true,
    });
    let request_jwe = envelope::seal_request(&request, transport.public()).unwrap();
    let response = Response::Pin(PinResponse {
        request_hash: String::new(),
        serial: "31636842".into(),
        pin: Pin::new("05472458"),
        force_pin_change: true,
        iat: 1_764_300_000,
    });
    let response_jwe =
        envelope::seal_response(&response, &request_jwe, &signing, response_key.public()).unwrap();
    let secret = p384::SecretKey::try_generate().unwrap();
    let peer = p384::SecretKey::try_generate().unwrap().public_key();
    let sk = SigningKey::try_generate().unwrap();
    let vk = *sk.verifying_key();
    let sig: Signature = sk.sign(b"message of about envelope size");
    Setup {
        transport,
        response_key,
        signing,
        trusted,
        request,
        request_jwe,
        response,
        response_jwe,
        secret,
        peer,
        sk,
        vk,
        sig,
    }
}

type Op<'a> = Box<dyn Fn() + 'a>;

fn ops(s: &Setup) -> Vec<(&'static str, Op<'_>)> {
    vec![
        (
            "p384 ecdh (static)",
            Box::new(|| {
                black_box(s.secret.diffie_hellman(black_box(&s.peer)));
            }),
        ),
        (
            "p384 ecdh (ephemeral keygen + ecdh)",
            Box::new(|| {
                let e = EphemeralSecret::try_generate().unwrap();
                black_box(e.public_key());
                black_box(e.diffie_hellman(black_box(&s.peer)));
            }),
        ),
        (
            "p384 ecdsa sign",
            Box::new(|| {
                let sig: Signature = s.sk.sign(black_box(b"message of about envelope size"));
                black_box(sig);
            }),
        ),
        (
            "p384 ecdsa verify",
            Box::new(|| {
                s.vk.verify(black_box(b"message of about envelope size"), &s.sig)
                    .unwrap();
            }),
        ),
        (
            "seal request",
            Box::new(|| {
                black_box(envelope::seal_request(&s.request, s.transport.public()).unwrap());
            }),
        ),
        (
            "open request",
            Box::new(|| {
                black_box(
                    envelope::open_request(&s.request_jwe, std::slice::from_ref(&s.transport))
                        .unwrap(),
                );
            }),
        ),
        (
            "seal response (sign+encrypt)",
            Box::new(|| {
                black_box(
                    envelope::seal_response(
                        &s.response,
                        &s.request_jwe,
                        &s.signing,
                        s.response_key.public(),
                    )
                    .unwrap(),
                );
            }),
        ),
        (
            "open response (decrypt+verify)",
            Box::new(|| {
                black_box(
                    envelope::open_response(
                        &s.response_jwe,
                        std::slice::from_ref(&s.response_key),
                        &s.trusted,
                        &s.request_jwe,
                    )
                    .unwrap(),
                );
            }),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group("envelope");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, op) in ops(&s) {
        g.bench_function(name, |b| b.iter(&op));
    }
    g.finish();
}

/// Times each op for about `budget` and returns microseconds per op.
fn per_op_us(op: &dyn Fn(), budget: Duration) -> f64 {
    for _ in 0..5 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        op();
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn summary() {
    let s = setup();
    let budget = Duration::from_millis(700);
    let t: Vec<(&str, f64)> = ops(&s)
        .iter()
        .map(|(n, op)| (*n, per_op_us(op, budget)))
        .collect();
    let us = |name: &str| t.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap();
    let ecdh = us("p384 ecdh (static)");
    let eph = us("p384 ecdh (ephemeral keygen + ecdh)");
    let sign = us("p384 ecdsa sign");
    let verify = us("p384 ecdsa verify");
    println!("\n{:<34} {:>10} {:>10}", "operation", "µs/op", "ops/s");
    for (name, v) in &t {
        println!("{name:<34} {v:>10.1} {:>10.0}", 1e6 / v);
    }
    println!(
        "\n{:<34} {:>10} {:>10} {:>7}",
        "envelope op vs primitive floor", "µs/op", "floor µs", "ratio"
    );
    for (name, floor, parts) in [
        ("seal request", eph, "ephemeral ecdh"),
        ("open request", ecdh, "ecdh"),
        (
            "seal response (sign+encrypt)",
            sign + eph,
            "sign + ephemeral ecdh",
        ),
        (
            "open response (decrypt+verify)",
            ecdh + verify,
            "ecdh + verify",
        ),
    ] {
        let v = us(name);
        println!(
            "{name:<34} {v:>10.1} {floor:>10.1} {:>6.2}x  (floor = {parts})",
            v / floor
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
