//! The flood's randomness: a small seeded generator (one per message, so that message `i` of a seed
//! is always the same), and the hostile values drawn from it: text, tokens real and forged,
//! protobuf bodies that are garbage or nearly right.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// xorshift64*, seeded through splitmix64: plenty for choosing inputs, and reproducible.
pub struct Rng(u64);

impl Rng {
    /// The generator of message `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Random bytes, fewer than `max`.
    pub fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max);
        self.bytes(len)
    }

    /// Any character: mostly ASCII (control characters included), some from anywhere in Unicode.
    fn char(&mut self) -> char {
        let code = match self.below(4) {
            0 | 1 => self.below(0x80) as u32,
            2 => self.below(0x800) as u32,
            _ => self.below(0x11_0000) as u32,
        };
        char::from_u32(code).unwrap_or('\u{FFFD}')
    }

    fn chars(&mut self, len: usize) -> String {
        (0..len).map(|_| self.char()).collect()
    }

    /// A short length, sometimes zero.
    fn short(&mut self) -> usize {
        self.below(48)
    }
}

/// Tokens and ids the flood has seen: real ones make the hostile input reach deeper (a mutated
/// genuine token gets past the first checks).
#[derive(Default)]
pub struct Known {
    pub access: Vec<String>,
    pub refresh: Vec<String>,
    pub user_ids: Vec<String>,
}

impl Known {
    /// Keeps a token the server issued, in a bounded pool.
    pub fn keep(pool: &mut Vec<String>, token: String, rng: &mut Rng) {
        const POOL: usize = 64;
        if pool.len() < POOL {
            pool.push(token);
        } else {
            let slot = rng.below(POOL);
            pool[slot] = token;
        }
    }
}

/// Text for any string field: empty, short and strange, around the limits (256 and 1,024 bytes,
/// 8 KiB), a real token, a real token damaged, a forged one.
pub fn text(rng: &mut Rng, known: &Known) -> String {
    match rng.below(12) {
        0 => String::new(),
        1 => {
            let len = rng.short() + 1;
            (0..len)
                .map(|_| (b' ' + rng.below(95) as u8) as char)
                .collect()
        }
        2 | 3 => {
            let len = rng.short() + 1;
            rng.chars(len)
        }
        4 => "é".repeat(120 + rng.below(20)) + &"a".repeat(rng.below(20)),
        5 => "x".repeat(*rng.pick(&[255, 256, 257, 1023, 1024, 1025])),
        6 => "t".repeat(*rng.pick(&[8191, 8192, 8193, 9000])),
        7 => real(rng, known),
        8 => {
            let token = real(rng, known);
            damaged(rng, &token)
        }
        9 => format!("lk_rt_{}", URL_SAFE_NO_PAD.encode(rng.bytes(32))),
        10 => forged_jwt(rng, known),
        _ => String::from_utf8_lossy(&rng.some_bytes(48)).into_owned(),
    }
}

/// One of the tokens the server issued, if any.
pub fn real(rng: &mut Rng, known: &Known) -> String {
    let pool = if rng.chance(50) {
        &known.access
    } else {
        &known.refresh
    };
    if pool.is_empty() {
        return String::new();
    }
    rng.pick(pool).clone()
}

/// `token` with a character changed, cut short, or grown.
pub fn damaged(rng: &mut Rng, token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    if chars.is_empty() {
        return rng.chars(3);
    }
    let at = rng.below(chars.len());
    match rng.below(4) {
        0 => chars[at] = rng.char(),
        1 => chars.truncate(at),
        2 => chars.insert(at, rng.char()),
        _ => chars.extend(rng.chars(4).chars()),
    }
    chars.into_iter().collect()
}

/// A JWT of the right shape: a header naming some algorithm, key and type, claims lifted from a
/// real token or made up, and a signature that is not one.
fn forged_jwt(rng: &mut Rng, known: &Known) -> String {
    let alg = *rng.pick(&["none", "EdDSA", "ES256", "RS256", "HS256", "", "eddsa"]);
    let genuine = known.access.first().map(String::as_str).unwrap_or("");
    let mut parts = genuine.split('.');
    let kid = rng.pick(&["", "x", "../../etc/passwd"]).to_string();
    let header = match rng.below(3) {
        0 => serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string(),
        1 => {
            serde_json::json!({"alg": alg, "jku": "http://evil", "jwk": {"kty": "OKP"}}).to_string()
        }
        _ => rng.chars(12),
    };
    let _ = parts.next();
    let claims = match (rng.below(2), parts.next()) {
        (0, Some(real)) => real.to_owned(),
        _ => URL_SAFE_NO_PAD.encode(rng.chars(20)),
    };
    let len = *rng.pick(&[0, 32, 64, 256]);
    let signature = URL_SAFE_NO_PAD.encode(rng.bytes(len));
    format!("{}.{claims}.{signature}", URL_SAFE_NO_PAD.encode(header))
}

/// Bytes that are not the message: random, random protobuf fields, or `valid` damaged; and, once
/// in a while, past the 64 KiB request limit.
pub fn garbage(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    match rng.below(40) {
        0 => {
            let len = 64 * 1024 + 1 + rng.below(1024);
            rng.bytes(len)
        }
        1..=12 => rng.some_bytes(300),
        13..=26 => (0..rng.below(8)).flat_map(|_| field(rng)).collect(),
        _ => {
            let mut bytes = valid.to_vec();
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(3) {
                    0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                    1 => bytes.truncate(at),
                    _ => {
                        let inserted = rng.some_bytes(6);
                        bytes.splice(at..at, inserted).for_each(drop);
                    }
                }
            }
            bytes
        }
    }
}

/// One protobuf field: a key with any field number and wire type, and a payload that may or may
/// not fit it (a length that lies, a varint cut short).
fn field(rng: &mut Rng) -> Vec<u8> {
    let number = if rng.chance(80) {
        1 + rng.below(6) as u64
    } else {
        rng.next() >> 35
    };
    let mut out = varint(number << 3 | rng.below(8) as u64);
    match rng.below(4) {
        0 => out.extend(varint(rng.next() >> rng.below(64))),
        1 => {
            let payload = rng.some_bytes(48);
            let len = if rng.chance(80) {
                payload.len() as u64
            } else {
                rng.next() >> rng.below(64)
            };
            out.extend(varint(len));
            out.extend(payload);
        }
        2 => {
            let len = *rng.pick(&[4, 8]);
            out.extend(rng.bytes(len));
        }
        _ => out.push(0x80 | rng.next() as u8),
    }
    out
}

fn varint(value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    prost::encoding::encode_varint(value, &mut out);
    out
}
