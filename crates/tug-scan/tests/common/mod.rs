//! Shared test helpers: temp trees and generated (never committed) secrets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture_db() -> PathBuf {
    fixtures().join("advisory-db")
}

pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Deterministic pseudo-random text from `alphabet` (secrets are generated
/// at test time so none sits in the repository).
pub fn rand_str(seed: u64, len: usize, alphabet: &str) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chars[(x % chars.len() as u64) as usize]
        })
        .collect()
}

/// A GitHub-format token (`ghp_`, `npm_`…) with a valid CRC32 checksum.
pub fn checksummed(prefix: &str, seed: u64) -> String {
    let body = rand_str(seed, 30, ALNUM);
    format!("{prefix}{body}{}", tug_scan::secret::crc32_base62(&body))
}

pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const HEX: &str = "0123456789abcdef";

/// One planted secret: the rule expected to find it, the file line that
/// holds it, and the secret text that must never be printed.
pub struct Planted {
    pub rule: &'static str,
    pub line: String,
    pub secret: String,
}

pub fn planted() -> Vec<Planted> {
    let r = |s, n, a| rand_str(s, n, a);
    let mut v = Vec::new();
    let mut add = |rule, line: String, secret: String| v.push(Planted { rule, line, secret });
    let s = format!("AKIA{}", r(1, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
    add("TUGS001", format!("aws_access_key_id = {s}"), s);
    let s = r(2, 40, B64);
    add("TUGS002", format!("aws_secret_access_key = \"{s}\""), s);
    let s = r(3, 40, HEX);
    add(
        "TUGS003",
        format!("  \"type\": \"service_account\", \"private_key_id\": \"{s}\","),
        s,
    );
    let s = format!("{}==", r(4, 86, B64));
    add("TUGS004", format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={s};EndpointSuffix=core.windows.net"), s);
    let s = checksummed("ghp_", 5);
    add("TUGS005", format!("token: {s}"), s);
    let s = format!("github_pat_{}_{}", r(6, 22, ALNUM), r(7, 59, ALNUM));
    add("TUGS006", format!("GH={s}"), s);
    let s = format!("glpat-{}", r(8, 20, ALNUM));
    add("TUGS007", format!("gitlab: {s}"), s);
    let s = format!(
        "xoxb-{}-{}-{}",
        482910375561u64,
        9301847562013u64,
        r(9, 24, ALNUM)
    );
    add("TUGS008", format!("slack = '{s}'"), s);
    let s = format!(
        "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/{}",
        r(10, 24, ALNUM)
    );
    add("TUGS009", format!("webhook: {s}"), s);
    let s = format!("sk_live_{}", r(11, 24, ALNUM));
    add("TUGS010", format!("stripe.api_key = \"{s}\""), s);
    let s = format!("SK{}", r(12, 32, HEX));
    add("TUGS011", format!("twilio: {s}"), s);
    let s = format!("SG.{}.{}", r(13, 22, ALNUM), r(14, 43, ALNUM));
    add("TUGS012", format!("sendgrid={s}"), s);
    let s = checksummed("npm_", 15);
    add(
        "TUGS013",
        format!("//registry.npmjs.org/:_authToken={s}"),
        s,
    );
    let s = format!("pypi-AgEIcHlwaS5vcmc{}", r(16, 70, ALNUM));
    add("TUGS014", format!("password = {s}"), s);
    let body = format!("{}\n{}\n{}", r(17, 64, B64), r(18, 64, B64), r(19, 40, B64));
    add(
        "TUGS015",
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"),
        r(17, 64, B64),
    );
    let s = format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjo5OTk5OTk5OTk5fQ.{}",
        r(20, 43, ALNUM)
    );
    add("TUGS016", format!("Authorization: Bearer {s}"), s);
    let s = r(21, 14, ALNUM);
    add(
        "TUGS017",
        format!("DATABASE_URL=postgres://admin:{s}@db.internal:5432/app"),
        s,
    );
    let s = r(22, 16, ALNUM);
    add(
        "TUGS018",
        format!("conn = \"Server=tcp:db.example.net,1433;Database=app;User Id=app;Password={s};\""),
        s,
    );
    let s = r(23, 32, ALNUM);
    add("TUGS019", format!("SERVICE_API_TOKEN = \"{s}\""), s);
    v
}

/// Lines that look like secrets but are not (placeholders, low entropy,
/// near misses): none may be reported.
pub fn decoys() -> Vec<String> {
    vec![
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE".into(),
        format!("ref = ghp_{}", rand_str(30, 35, ALNUM)),
        "token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
        "API_TOKEN = \"changeme\"".into(),
        "API_TOKEN = \"${API_TOKEN}\"".into(),
        "DB_PASSWORD: <your-token-here>".into(),
        "API_KEY = \"aaaaaaaabbbbbbbbaaaa\"".into(),
        "DATABASE_URL=postgres://app:${DB_PASS}@db:5432/app".into(),
        "url = https://user:changeme@example.com/".into(),
        format!("stripe = sk_test_{}", rand_str(31, 24, ALNUM)),
        "slack = xoxb-short".into(),
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
            rand_str(32, 64, B64)
        ),
        "header = eyJhbGciOiJub25lIn0.e30.".into(),
        format!("ok = {} # tug:allow-secret", checksummed("ghp_", 33)),
        format!("ok = {} // tug:allow-secret", checksummed("npm_", 34)),
        "password_file = /run/secrets/db_password".into(),
        "let token = get_token(); // token_expiry_seconds".into(),
    ]
}
