//! Instruction cost of `Key::parse` on benchmark-like keys, for callgrind:
//!
//! ```sh
//! cargo build --release -p zmap-core --no-default-features --example key_parse_cost
//! valgrind --tool=callgrind --toggle-collect='key_parse_cost::parse_one' \
//!     target/release/examples/key_parse_cost
//! ```
//!
//! `parse_one` is the only collected function (inclusive of `Key::parse`,
//! whether or not that is inlined into it) and runs once per key, so the
//! instruction total divided by `KEYS` is the cost of one parse (plus a
//! call and a return). The keys are built before collection starts.

use std::hint::black_box;

use zmap_core::{Key, Result};

const KEYS: usize = 10_000;

#[inline(never)]
fn parse_one(raw: &[u8]) -> Result<Key<'_>> {
    Key::parse(raw)
}

fn main() {
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("/g0/v{}/c.{i}", i % 100))
        .collect();
    let mut ok = 0usize;
    for key in &keys {
        let parsed = black_box(parse_one(black_box(key.as_bytes())));
        ok += parsed.is_ok() as usize;
    }
    assert_eq!(ok, KEYS);
}
