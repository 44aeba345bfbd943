//! Throws tens of thousands of mutated policies at the reader: each must come back as a
//! policy or as an error with a position inside the document, never a panic or a hang.
//!
//! `HAKONIWA_FUZZ_SEED` and `HAKONIWA_FUZZ_ROUNDS` override the seed and the round count;
//! a failure prints the seed and the document.

use std::panic::{AssertUnwindSafe, catch_unwind};

use hakoniwa::{Error, SandboxPolicy};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "=",
    ".",
    ",",
    "\n",
    "\r\n",
    "#",
    "\\",
    "\\u",
    "\\U0010FFFF",
    "\\uD800",
    "{{",
    "}}",
    "{{ os_env \"HOME\" }}",
    "0x",
    "0o",
    "0b",
    "-",
    "+",
    "_",
    "9",
    "1e5",
    "1.5",
    "inf",
    "nan",
    "1979-05-27",
    "07:32:00",
    "true",
    "false",
    "é",
    "\u{1F600}",
    "\t",
    " ",
    "\0",
    "\u{7f}",
    "a.b.c",
    "\"k\"",
    "mounts",
    "target",
    "source",
    "fstype",
    "rw",
    "env",
    "limits",
    "9223372036854775808",
    "-9223372036854775809",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut docs: Vec<Vec<u8>> = hakoniwa::EMBEDDED
        .iter()
        .map(|(_, _, t)| t.as_bytes().to_vec())
        .collect();
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/toml");
    for folder in ["valid", "invalid", "unsupported"] {
        if let Ok(entries) = std::fs::read_dir(format!("{corpus}/{folder}")) {
            for entry in entries.flatten() {
                docs.push(std::fs::read(entry.path()).unwrap_or_default());
            }
        }
    }
    docs.push(b"a = [[[[1]]]]\nb = { c = { d = [ { e = 'f' } ] } }\n[x.y]\n[[z]]\n".to_vec());
    docs
}

fn mutate(rng: &mut Rng, docs: &[Vec<u8>]) -> Vec<u8> {
    let mut doc = docs[rng.below(docs.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(doc.len() + 1);
        match rng.below(6) {
            0 if !doc.is_empty() => {
                let i = rng.below(doc.len());
                doc[i] = rng.next() as u8;
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                doc.splice(at..at, token.iter().copied());
            }
            2 => {
                let end = (at + rng.below(16)).min(doc.len());
                doc.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(64)).min(doc.len());
                let copy = doc[at..end].to_vec();
                let to = rng.below(doc.len() + 1);
                doc.splice(to..to, copy);
            }
            4 => {
                let other = &docs[rng.below(docs.len())];
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(128)).min(other.len());
                doc.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())].repeat(1 + rng.below(200));
                doc.splice(at..at, token.bytes());
            }
        }
    }
    doc
}

/// The document's outcome is acceptable: parsed, or refused at a position inside it.
fn check(doc: &[u8]) -> Result<(), String> {
    let lines = doc.iter().filter(|b| **b == b'\n').count() + 1;
    if let Err(e) = hakoniwa::__private::toml_to_json(doc)
        && e.is_empty()
    {
        return Err("empty error from the TOML reader".into());
    }
    let Ok(text) = std::str::from_utf8(doc) else {
        return Ok(());
    };
    match SandboxPolicy::from_str(text) {
        Ok(_) => Ok(()),
        Err(Error::Policy {
            file,
            line,
            column,
            message,
        }) => {
            if file != "policy" || line == 0 || column == 0 || line > lines || message.is_empty() {
                return Err(format!(
                    "bad position or message: {file}:{line}:{column}: {message}"
                ));
            }
            Ok(())
        }
        Err(other) => Err(format!("not a policy error: {other}")),
    }
}

#[test]
fn mutated_policies_give_a_policy_or_a_positioned_error() {
    let seed = std::env::var("HAKONIWA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_u64);
    let rounds = std::env::var("HAKONIWA_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000);
    let docs = seeds();
    assert!(
        docs.len() > 3,
        "the TOML corpus under tests/toml should be present"
    );
    let mut rng = Rng(seed | 1);
    for round in 0..rounds {
        let doc = mutate(&mut rng, &docs);
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&doc)));
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(why)) => why,
            Err(_) => "panicked".to_string(),
        };
        panic!(
            "round {round} of seed {seed:#x} (rerun with HAKONIWA_FUZZ_SEED={seed}): {failure}\ndocument: {:?}",
            String::from_utf8_lossy(&doc)
        );
    }
}

#[test]
fn deep_nesting_and_huge_inputs_are_refused_not_crashed() {
    for doc in [
        "a = ".to_string() + &"[".repeat(100_000),
        "a = ".to_string() + &"{b = ".repeat(100_000),
        "a".to_string() + &".a".repeat(100_000) + " = 1",
        "[".to_string() + &"a.".repeat(100_000) + "a]",
        "#".repeat(9 << 20),
    ] {
        match SandboxPolicy::from_str(&doc) {
            Err(Error::Policy { line: 1, .. }) => {}
            other => panic!("expected a positioned error, got {other:?}"),
        }
    }
}
