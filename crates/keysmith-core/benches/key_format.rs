//! The in-memory part of verification (issue 2 target: under 1 µs per key), and key
//! generation. Run with `cargo bench -p keysmith-core`.

use criterion::{Criterion, criterion_group, criterion_main};
use keysmith_core::{KeyPrefix, PresentedKey, generate_v1};
use std::hint::black_box;

fn key_format(c: &mut Criterion) {
    let prefix = KeyPrefix::default();
    c.bench_function("generate_v1", |b| b.iter(|| generate_v1(black_box(&prefix))));

    let key = generate_v1(&prefix).expect("csprng");
    let stored = key.digest;
    let plaintext = key.plaintext.expose().to_owned();
    c.bench_function("verify_in_memory (parse + checksum + sha256 + ct compare)", |b| {
        b.iter(|| {
            let parsed = PresentedKey::parse(black_box(&plaintext)).expect("valid");
            parsed.digest().ct_eq(black_box(&stored))
        })
    });

    let mut mistyped = plaintext.clone().into_bytes();
    mistyped[40] = if mistyped[40] == b'a' { b'b' } else { b'a' };
    let mistyped = String::from_utf8(mistyped).expect("ascii");
    c.bench_function("reject_bad_checksum", |b| {
        b.iter(|| PresentedKey::parse(black_box(&mistyped)).is_err())
    });
}

criterion_group!(benches, key_format);
criterion_main!(benches);
