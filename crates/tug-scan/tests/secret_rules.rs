//! The secret rule registry: every rule's firing and passing example, the
//! structural checks (GitHub CRC32, base64 payloads) and the code-aware
//! generic rule.

use std::collections::HashSet;
use tug_scan::secret::{self, example, rules, scan_text, Allowlist};
use tug_scan::{render, Report, ScannerKind};

fn scan(text: &str) -> Vec<tug_scan::Finding> {
    scan_text(text, "f", &Allowlist::default())
}

#[test]
fn registry_ids_and_names_are_unique_and_wide() {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for r in rules() {
        assert!(ids.insert(r.id), "duplicate id {}", r.id);
        assert!(names.insert(r.name), "duplicate name {}", r.name);
        assert!(
            regex::Regex::new(r.pattern()).is_ok(),
            "{}: pattern does not compile",
            r.id
        );
        assert!(
            r.keywords.iter().all(|k| *k == k.to_ascii_lowercase()),
            "{}: keywords are matched case-insensitively; write them lower-case",
            r.id
        );
    }
    assert!(rules().len() >= 150, "{} rules", rules().len());
}

#[test]
fn every_rule_fires_on_its_example_and_not_on_its_near_miss() {
    let mut failures = Vec::new();
    for (i, r) in rules().iter().enumerate() {
        let fires = example(r.fires, i as u64 + 1);
        let found = scan(&format!("first line\n{fires}\n"));
        let ids: Vec<&str> = found.iter().map(|f| f.rule_id.as_str()).collect();
        if ids != [r.id] {
            failures.push(format!(
                "{} should fire once on {fires:?}, got {ids:?}",
                r.id
            ));
        } else if !(2..=1 + fires.lines().count()).contains(&found[0].line) {
            failures.push(format!("{} reported line {}", r.id, found[0].line));
        }
        let passes = example(r.passes, i as u64 + 1);
        let found = scan(&format!("{passes}\n"));
        if found.iter().any(|f| f.rule_id == r.id) {
            failures.push(format!("{} fired on its near miss {passes:?}", r.id));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_never_reach_any_output() {
    let all: String = rules()
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}\n", example(r.fires, i as u64 + 1)))
        .collect();
    let findings = scan(&all);
    assert!(findings.len() >= rules().len(), "{}", findings.len());
    let report = Report {
        scanners: vec![ScannerKind::Secret],
        findings,
        ..Default::default()
    };
    let outputs = [
        render::table(&report),
        render::json(&report),
        render::sarif(&report),
    ];
    // Every long generated run of an example (the secret part) stays hidden.
    for (i, r) in rules().iter().enumerate() {
        let line = example(r.fires, i as u64 + 1);
        for part in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
            if part.len() < 16 || r.fires.contains(part) {
                continue;
            }
            for out in &outputs {
                assert!(!out.contains(part), "{}: {part} leaked", r.id);
            }
        }
    }
}

#[test]
fn github_tokens_need_a_valid_crc32() {
    // Independent vectors: Python's zlib.crc32, base62 0-9A-Za-z, 6 digits.
    assert_eq!(
        secret::crc32_base62("abcdefghijklmnopqrstuvwxyz0123"),
        "2LolCm"
    );
    assert_eq!(
        secret::crc32_base62("tug000000000000000000000000000"),
        "3BwX4E"
    );
    let good = "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";
    let bad = "ghp_abcdefghijklmnopqrstuvwxyz01232LolCn";
    let found = scan(&format!("GH_TOKEN={good}\n"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule_id, "TUGS005");
    assert!(scan(&format!("GH_TOKEN={bad}\n"))
        .iter()
        .all(|f| f.rule_id != "TUGS005"));
    let npm = "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";
    assert_eq!(
        scan(&format!("//r/:_authToken={npm}\n"))[0].rule_id,
        "TUGS013"
    );
}

#[test]
fn one_line_private_key_with_escapes() {
    let body: String = example("{{B64}}\\n{{B64}}\\n{{B40}}", 7);
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"x@y.iam.gserviceaccount.com\"\n}}\n"
    );
    let found = scan(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].rule_id.as_str(), found[0].line), ("TUGS015", 3));
    // Also written on one line with spaces instead of breaks.
    let spaced = format!(
        "key=-----BEGIN RSA PRIVATE KEY----- {} -----END RSA PRIVATE KEY-----\n",
        example("{{B64}} {{B64}}", 8)
    );
    assert_eq!(scan(&spaced)[0].rule_id, "TUGS015");
}

#[test]
fn docker_config_auths_are_decoded() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let pass = example("{{A20}}", 3);
    let cfg = format!(
        "{{\n  \"auths\": {{\n    \"registry.example.com\": {{\n      \"auth\": \"{}\"\n    }},\n    \"other.example.com\": {{ \"auth\": \"{}\" }},\n    \"third.example.com\": {{ \"auth\": \"{}\" }}\n  }}\n}}\n",
        b64(&format!("deploy:{pass}")),
        b64("deploy:"),
        b64("no colon here at all"),
    );
    let found = scan(&cfg);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].rule_id.as_str(), found[0].line), ("TUGS106", 4));
    let json = render::json(&Report {
        findings: found,
        ..Default::default()
    });
    assert!(!json.contains(&pass));
}

#[test]
fn generic_rule_ignores_code() {
    for line in [
        r#"let token_re = Regex::new(r"(?i)token\s*=\s*([a-z0-9]{32})").unwrap();"#,
        r#"password_pattern = re.compile(r'password\s*[:=]\s*["\']?([^\s"\']{8,})')"#,
        r#"    "password": "^[A-Za-z0-9!@#$%^&*]{12,64}$","#,
        r#"url := fmt.Sprintf("https://%s:%s@%s/v1", user, token, host)"#,
        r#"let url = format!("https://{}:{}@{}/v1", user, token, host);"#,
        r#"refreshToken := creds.RefreshToken"#,
        r#"token = self.session.get_token(scope)"#,
        r#"api_key: Option<String>,"#,
        r#"const SECRET_KEY: &str = "SECRET_KEY_BASE";"#,
        r#"if password == "correct-horse-battery-9" {"#,
        r#"accessToken = accessTokenFromResponse2;"#,
        r#"DB_PASSWORD_FILE=/run/secrets/db_password"#,
        r#"token: ${{ secrets.GITHUB_TOKEN }}"#,
    ] {
        let found = scan(line);
        assert!(found.is_empty(), "{line}: {found:#?}");
    }
}

#[test]
fn generic_rule_finds_data_in_any_naming_style() {
    for line in [
        "storageAccountKey = \"q8Zk2mV9xLp4Rt7Wb3Nc\"",
        "STORAGE_ACCOUNT_KEY=q8Zk2mV9xLp4Rt7Wb3Nc",
        "    clientSecret: 'q8Zk2mV9xLp4Rt7Wb3Nc'",
        "$config['db_password'] = 'q8Zk2mV9xLp4Rt7Wb3Nc';",
        "\"apiKey\": \"q8Zk2mV9xLp4Rt7Wb3Nc\",",
        "signing_key := \"q8Zk2mV9xLp4Rt7Wb3Nc\"",
    ] {
        let found = scan(line);
        assert_eq!(found.len(), 1, "{line}: {found:#?}");
        assert_eq!(found[0].rule_id, "TUGS019", "{line}");
        assert_eq!(found[0].redacted.as_deref(), Some("q8Zk…(20 chars)"));
    }
}

#[test]
fn kubernetes_secret_data_is_decoded() {
    use base64::Engine;
    let v = base64::engine::general_purpose::STANDARD.encode(example("{{A16}}", 9));
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  db-password: {v}\n  username: YWRtaW4=\n"
    );
    let found = scan(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].rule_id.as_str(), found[0].line), ("TUGS162", 6));
}
