//! The generic rule: a literal assigned to a credential-like name
//! (`API_TOKEN=…`, `storageAccountKey: "…"`, `'password' => '…'`).
//!
//! Source code assigns such names all day without holding a secret, so a
//! value is only reported when it looks like data: not a regular
//! expression, not a format template (`%s`, `{}`), not a field access or a
//! call (`creds.RefreshToken`, `get_token()`), not a type, path or URL.

/// Lower-case words one of which must appear in a file for the rule to run.
pub const KEYWORDS: &[&str] = &["token", "secret", "passw", "pwd", "key", "credential"];

/// Name (group 1), opening quote of the value (group 2), value (group 3).
/// The name ends at the credential word, so `password_file` or
/// `tokenizer` never match; camelCase names match through `(?i)`.
pub const PATTERN: &str = r#"(?i)\b([A-Za-z0-9_.\-]*?(?:token|secret|passwd|password|pwd|api_?key|access_?key|private_?key|secret_?key|account_?key|signing_?key|master_?key|encryption_?key|client_?secret|auth_?key|credentials?))["'\]]{0,2}[ \t]*(?::=|=>|=|:)[ \t]*(["'\x60]?)([^\s"'\x60]{8,256})"#;

/// The value to report out of a match, or `None` when it is code or a
/// placeholder rather than a secret.
pub fn value<'a>(name: &str, quote: &str, raw: &'a str) -> Option<&'a str> {
    let quoted = !quote.is_empty();
    let mut v = raw;
    if !quoted {
        v = v.trim_end_matches([';', ',', ')', ']', '}']);
    }
    // `password == "…"` is a comparison, `=>`/`->` leftovers are syntax.
    if v.starts_with([
        '=', '>', '-', '&', '*', '!', '|', '?', '@', '#', '/', '.', '~', '%', '$',
    ]) {
        return None;
    }
    let n = v.chars().count();
    if n < 8 || (!quoted && n < 12) {
        return None;
    }
    if super::is_placeholder(v) || is_template(v) || is_regex(v) || is_path_or_url(v) {
        return None;
    }
    if v.contains(['<', '>', '(', '[', '{']) {
        // Generics, calls and indexing: `Option<String>`, `get(x)`, `m[k]`.
        return None;
    }
    if !quoted && (is_code_reference(v) || is_snake_identifier(v)) {
        return None;
    }
    // Data has a digit and a letter; names of things (`SECRET_KEY`,
    // `apiTokenHeader`) rarely do.
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let letters = v.chars().filter(char::is_ascii_alphabetic).count();
    if digits == 0 || letters == 0 {
        return None;
    }
    if is_identifier_words(v) || looks_like_version_or_number(v) {
        return None;
    }
    // A key id or a flag, not the key: `token_id`, `secret_name`.
    // Or a hash of the secret (`hashed_secret`, `token_sha256`).
    let lname = name.to_ascii_lowercase();
    if lname.ends_with("_id")
        || lname.ends_with("name")
        || [
            "hash",
            "digest",
            "checksum",
            "fingerprint",
            "sha1",
            "sha256",
        ]
        .iter()
        .any(|w| lname.contains(w))
    {
        return None;
    }
    Some(v)
}

/// `%s`, `%d`, `{}`, `{0}`, `${x}`, `#{x}`, `{{x}}`, `<%= x %>`.
fn is_template(v: &str) -> bool {
    const MARKS: &[&str] = &[
        "%s", "%d", "%v", "%q", "%x", "%(", "{}", "{0", "{1", "${", "#{", "{{", "<%", "$(",
    ];
    MARKS.iter().any(|m| v.contains(m))
}

/// Regular-expression literals: escapes like `\d`, classes like `[a-z]`,
/// groups like `(?i)`, or many metacharacters at once.
fn is_regex(v: &str) -> bool {
    // Base64 (`eD4++rS…/…=`) uses `+` and `/` as data.
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
    {
        return false;
    }
    const MARKS: &[&str] = &[
        "\\d", "\\w", "\\s", "\\b", "\\.", "\\-", "(?", "[^", "a-z", "A-Z", "0-9", ".*", ".+",
        "]{", "]+", "]*", "|",
    ];
    if MARKS.iter().any(|m| v.contains(m)) {
        return true;
    }
    if v.starts_with('^') || v.ends_with('$') {
        return true;
    }
    let meta = v
        .chars()
        .filter(|c| {
            matches!(
                c,
                '(' | ')' | '[' | ']' | '{' | '}' | '|' | '*' | '+' | '?' | '\\'
            )
        })
        .count();
    meta >= 3
}

fn is_path_or_url(v: &str) -> bool {
    v.contains("://")
        || v.starts_with("http")
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("~/")
        || v.starts_with("file:")
        || v.starts_with("arn:")
}

/// `creds.RefreshToken`, `os.environ.get`, `Config::TOKEN`, `this->key`.
fn is_code_reference(v: &str) -> bool {
    let mut parts = 0;
    for seg in v.split(['.', ':', '>']).filter(|s| !s.is_empty()) {
        let seg = seg.trim_end_matches(['-', '?']);
        let mut cs = seg.chars();
        let Some(first) = cs.next() else { return false };
        if !(first.is_ascii_alphabetic() || first == '_' || first == '$') {
            return false;
        }
        if !cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            return false;
        }
        parts += 1;
    }
    parts >= 2 && (v.contains('.') || v.contains("::") || v.contains("->"))
}

/// `D3DKMT_PRESENTHISTORYTOKEN`, `x25519_generate_private_key`,
/// `MI_UserCredentials_0`: a constant, type or function named in code.
fn is_snake_identifier(v: &str) -> bool {
    if !v.contains('_')
        || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || v.starts_with(|c: char| c.is_ascii_digit())
    {
        return false;
    }
    v.split('_').filter(|s| !s.is_empty()).all(|seg| {
        seg.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            || seg
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            || is_identifier_words(seg)
            || seg.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && seg
                    .chars()
                    .skip(1)
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

/// camelCase or snake_case words (`userPassword2`, `db_password_v2`).
fn is_identifier_words(v: &str) -> bool {
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return false;
    }
    // Split into words at `_` and lower→upper steps; words of 3+ letters
    // with at most a trailing number are names, random text is not.
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in v.chars() {
        if c == '_' {
            words.push(std::mem::take(&mut cur));
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c);
    }
    words.push(cur);
    let words: Vec<&String> = words.iter().filter(|w| !w.is_empty()).collect();
    if words.len() < 2 {
        return false;
    }
    words.iter().all(|w| {
        let letters = w.trim_end_matches(|c: char| c.is_ascii_digit());
        // `X509`, `Sha256`: one letter may lead a number.
        (letters.len() >= 2 || (letters.len() == 1 && w.len() > 1))
            && letters.chars().all(|c| c.is_ascii_alphabetic())
            && (letters.chars().skip(1).all(|c| c.is_ascii_lowercase())
                || letters.chars().all(|c| c.is_ascii_uppercase()))
            && w.len() - letters.len() <= 4
    })
}

/// `1.2.3`, `2024-01-01`, `3600s`.
fn looks_like_version_or_number(v: &str) -> bool {
    let letters = v.chars().filter(char::is_ascii_alphabetic).count();
    letters <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_not_a_secret() {
        for (name, q, v) in [
            ("refresh_token", "", "creds.RefreshToken"),
            ("token", "", "self.config.api_token;"),
            ("password", "\"", "^[a-zA-Z0-9]{8,}$"),
            ("token", "\"", "https://%s:%s@api.example.com"),
            ("password", "\"", "{}:{}@{}/db"),
            ("apiKey", "", "getApiKey()"),
            ("token", "", "Option<String>"),
            ("secret_key", "'", "SECRET_KEY_BASE"),
            ("accessToken", "", "accessTokenFromResponse1"),
            ("password", "\"", "/run/secrets/db_password"),
            ("token", "", "Config::DEFAULT_TOKEN"),
            ("token_id", "\"", "a1b2c3d4e5f6a7b8"),
            ("PresentHistoryToken", "", "D3DKMT_PRESENTHISTORYTOKEN,"),
            ("generate_private_key", "", "x25519_generate_private_key,"),
            ("credentials", "", "MI_UserCredentials_0,"),
            ("MsV1_0ChangePassword", "", "MSV1_0_PROTOCOL_MESSAGE_TYPE"),
            ("InheritPrivateKey", "", "X509RequestInheritOptions"),
        ] {
            assert_eq!(value(name, q, v), None, "{name} = {v}");
        }
    }

    #[test]
    fn data_is_a_secret() {
        for (name, q, v) in [
            ("storageAccountKey", "\"", "q8Zk2mV9xLp4Rt7Wb3Nc"),
            ("API_TOKEN", "", "9f8e7d6c5b4a39281706f5e4"),
            ("API_TOKEN", "", "kX9_pQ2mZ7vR4tL8wN3b"),
            ("password", "'", "S3cure!Passw0rd#2024"),
        ] {
            assert_eq!(value(name, q, v), Some(v), "{name} = {v}");
        }
    }
}
