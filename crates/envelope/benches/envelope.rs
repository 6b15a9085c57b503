//! Envelope operations per second next to the aws-lc P-384 primitives they are built from,
//! so the envelope's own overhead (KDF, AES, JSON, base64) is visible, and next to joserfc
//! (Python over OpenSSL) doing the same operations in the same run. Run with
//! `cargo bench -p envelope`; a summary table follows criterion's output. joserfc runs
//! through the interop venv (`$PREREG_PYTHON`, else `.venv/bin/python`); without one its
//! column is skipped with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a panic is the report

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::agreement::{self, ECDH_P384, UnparsedPublicKey};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P384_SHA384_FIXED, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
};

use criterion::{Criterion, criterion_group};
use envelope::{
    Jwks, KeyUse, Pin, PinChoice, PinRequest, PinResponse, PrivateJwk, Request, Response,
};

struct Setup {
    transport: PrivateJwk,
    response_key: PrivateJwk,
    signing: PrivateJwk,
    trusted: Jwks,
    request: Request,
    request_jwe: String,
    response: Response,
    response_jwe: String,
    secret: agreement::PrivateKey,
    peer: Vec<u8>,
    sk: EcdsaKeyPair,
    vk: Vec<u8>,
    sig: Vec<u8>,
}

const MESSAGE: &[u8] = b"message of about envelope size";

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
    let secret = agreement::PrivateKey::generate(&ECDH_P384).unwrap();
    let peer = agreement::PrivateKey::generate(&ECDH_P384)
        .unwrap()
        .compute_public_key()
        .unwrap()
        .as_ref()
        .to_vec();
    let sk = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let vk = sk.public_key().as_ref().to_vec();
    let sig = sk
        .sign(&SystemRandom::new(), MESSAGE)
        .unwrap()
        .as_ref()
        .to_vec();
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
                agreement::agree(
                    &s.secret,
                    UnparsedPublicKey::new(&ECDH_P384, black_box(&s.peer)),
                    (),
                    |z| {
                        black_box(z);
                        Ok(())
                    },
                )
                .unwrap();
            }),
        ),
        (
            "p384 ecdh (ephemeral keygen + ecdh)",
            Box::new(|| {
                let e = agreement::PrivateKey::generate(&ECDH_P384).unwrap();
                black_box(e.compute_public_key().unwrap());
                agreement::agree(
                    &e,
                    UnparsedPublicKey::new(&ECDH_P384, black_box(&s.peer)),
                    (),
                    |z| {
                        black_box(z);
                        Ok(())
                    },
                )
                .unwrap();
            }),
        ),
        (
            "p384 ecdsa sign",
            Box::new(|| {
                black_box(s.sk.sign(&SystemRandom::new(), black_box(MESSAGE)).unwrap());
            }),
        ),
        (
            "p384 ecdsa verify",
            Box::new(|| {
                signature::UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &s.vk)
                    .verify(black_box(MESSAGE), &s.sig)
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

/// Microseconds per op for every op: the fastest of `ROUNDS` batches of about `BATCH`
/// each, the batches of all ops interleaved. On a shared machine the load changes from
/// second to second; interleaving exposes every op to the same load, and the fastest
/// batch is the one least disturbed, so ratios between ops stay meaningful.
fn interleaved_min_us(ops: &[(&'static str, Op<'_>)]) -> Vec<(&'static str, f64)> {
    const ROUNDS: usize = 15;
    const BATCH: Duration = Duration::from_millis(40);
    let mut best = vec![f64::INFINITY; ops.len()];
    for (_, op) in ops {
        for _ in 0..5 {
            op();
        }
    }
    for _ in 0..ROUNDS {
        for (i, (_, op)) in ops.iter().enumerate() {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < BATCH {
                op();
                n += 1;
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
            best[i] = best[i].min(us);
        }
    }
    ops.iter().map(|(n, _)| *n).zip(best).collect()
}

fn summary() {
    let s = setup();
    let t = interleaved_min_us(&ops(&s));
    let us = |name: &str| t.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap();
    let ecdh = us("p384 ecdh (static)");
    let eph = us("p384 ecdh (ephemeral keygen + ecdh)");
    let sign = us("p384 ecdsa sign");
    let verify = us("p384 ecdsa verify");
    println!(
        "\n{:<34} {:>10} {:>10}   (fastest of 15 interleaved 40 ms batches)",
        "operation", "µs/op", "ops/s"
    );
    for (name, v) in &t {
        println!("{name:<34} {v:>10.1} {:>10.0}", 1e6 / v);
    }
    println!(
        "\n{:<34} {:>10} {:>10} {:>7}",
        "envelope op vs aws-lc floor", "µs/op", "floor µs", "ratio"
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

    match joserfc_rates(&s) {
        Err(reason) => println!("\njoserfc comparison skipped: {reason}"),
        Ok((version, rates)) => {
            println!(
                "\n{:<34} {:>10} {:>10} {:>7}",
                format!("prereg vs joserfc {version}"),
                "prereg/s",
                "joserfc/s",
                "ratio"
            );
            for (name, theirs) in rates {
                let ours = 1e6 / us(&name);
                println!(
                    "{name:<34} {ours:>10.0} {theirs:>10.0} {:>6.2}x",
                    ours / theirs
                );
            }
        }
    }
}

/// The interop venv's Python: `$PREREG_PYTHON`, else the workspace's `.venv`.
fn venv_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PREREG_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let p = testkit::repo_root().join(".venv/bin/python");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "no interop venv ({} missing and PREREG_PYTHON unset; scripts/test creates it)",
            p.display()
        ))
    }
}

/// Runs `interop/jose_bench.py` on the same keys, payloads and tokens; returns joserfc's
/// version and its ops/s per envelope operation.
fn joserfc_rates(s: &Setup) -> Result<(String, Vec<(String, f64)>), String> {
    let python = venv_python()?;
    let script = testkit::repo_root().join("interop/jose_bench.py");
    let private =
        |k: &PrivateJwk| -> serde_json::Value { serde_json::from_str(&k.to_json()).unwrap() };
    let mut response = s.response.to_value().unwrap();
    response["request_hash"] = envelope::request_hash(&s.request_jwe).into();
    let input = serde_json::json!({
        "rounds": 15,
        "batch_seconds": 0.04,
        "transport": private(&s.transport),
        "response_key": private(&s.response_key),
        "signing": private(&s.signing),
        "signing_jwks": s.trusted.to_value(),
        "request_payload": s.request.to_value().unwrap(),
        "response_payload": response,
        "request_jwe": s.request_jwe,
        "response_jwe": s.response_jwe,
    });
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input.to_string().as_bytes())
        .map_err(|e| format!("writing to jose_bench.py: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("jose_bench.py: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "jose_bench.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("jose_bench.py printed no JSON: {e}"))?;
    let version = v["version"].as_str().unwrap_or("?").to_owned();
    let rates = [
        "seal request",
        "open request",
        "seal response (sign+encrypt)",
        "open response (decrypt+verify)",
    ]
    .iter()
    .map(|name| {
        v["ops_per_s"][*name]
            .as_f64()
            .map(|r| ((*name).to_owned(), r))
            .ok_or(format!("jose_bench.py gave no rate for {name}"))
    })
    .collect::<Result<Vec<_>, String>>()?;
    Ok((version, rates))
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
