//! rustkit: a flowhost task library in Rust, built with rustc alone (no
//! cargo, no crates) for wasm32-unknown-unknown. extism.rs is the
//! calling convention by hand, json.rs a small JSON reader and writer.
//!
//! Each task is an exported function of no arguments that returns 0 (its
//! output set) or 1 (its error set); `extism::run` does the reading and
//! writing, so a task is a plain function from its inputs to a value.

mod extism;
mod json;

use extism::Input;
use json::Json;

/// reverse: the text, its characters in reverse order.
#[no_mangle]
pub extern "C" fn reverse() -> i32 {
    extism::run("reverse", |input| Ok(Json::Str(input.str("text")?.chars().rev().collect())))
}

/// caesar: the text with each ASCII letter shifted by shift places
/// (negative shifts back); other characters are kept.
#[no_mangle]
pub extern "C" fn caesar() -> i32 {
    extism::run("caesar", |input| {
        let text = input.str("text")?;
        let shift = input.int("shift", -1_000_000, 1_000_000)?.rem_euclid(26) as u8;
        let rot = |c: char, base: u8| (((c as u8 - base + shift) % 26) + base) as char;
        Ok(Json::Str(
            text.chars()
                .map(|c| match c {
                    'a'..='z' => rot(c, b'a'),
                    'A'..='Z' => rot(c, b'A'),
                    _ => c,
                })
                .collect(),
        ))
    })
}

/// fib: the n-th Fibonacci number, exactly (fib(0) = 0, fib(93) is the
/// largest that fits in 64 bits).
#[no_mangle]
pub extern "C" fn fib() -> i32 {
    extism::run("fib", |input| {
        let n = input.int("n", 0, 93)?;
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..n {
            let next = a + b;
            a = b;
            b = next;
        }
        Ok(Json::Int(a as i128))
    })
}

/// primes: the prime numbers up to limit, by the sieve of Eratosthenes.
#[no_mangle]
pub extern "C" fn primes() -> i32 {
    extism::run("primes", |input| {
        let limit = input.int("limit", 0, 10_000_000)? as usize;
        let mut composite = vec![false; limit + 1];
        let mut out = Vec::new();
        for i in 2..=limit {
            if composite[i] {
                continue;
            }
            out.push(Json::Int(i as i128));
            let mut j = i * i;
            while j <= limit {
                composite[j] = true;
                j += i;
            }
        }
        Ok(Json::Arr(out))
    })
}

/// word_freq: how often each word of the text occurs (words are runs of
/// letters and digits, lower-cased), as an object in order of first
/// appearance; with top set, only the top most frequent ones.
#[no_mangle]
pub extern "C" fn word_freq() -> i32 {
    extism::run("word_freq", |input: &Input| {
        let text = input.str("text")?;
        let top = input.int("top", 0, 1_000_000)? as usize;
        let mut counts: Vec<(String, i128)> = Vec::new();
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let word = word.to_lowercase();
            match counts.iter_mut().find(|(w, _)| *w == word) {
                Some((_, n)) => *n += 1,
                None => counts.push((word, 1)),
            }
        }
        if top > 0 {
            counts.sort_by(|a, b| b.1.cmp(&a.1)); // stable: ties keep their order
            counts.truncate(top);
        }
        if counts.len() > 10_000 {
            extism::log(&format!("word_freq: {} distinct words", counts.len()));
        }
        Ok(Json::Obj(counts.into_iter().map(|(w, n)| (w, Json::Int(n))).collect()))
    })
}
