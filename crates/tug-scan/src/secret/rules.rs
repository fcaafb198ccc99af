//! The secret rule registry. Each rule is data: a pattern anchored on the
//! provider's documented format, the words that must appear in a file for it
//! to run, an optional structural check (a checksum, a decodable payload),
//! and a firing and a passing example that a test runs.
//!
//! Examples hold slots such as `{{A36}}` (36 random letters and digits) that
//! [`example`] fills at test time, so no working-looking secret sits in the
//! source and a scan of this repository stays quiet.

use crate::finding::Severity::{self, Critical, High, Low, Medium};

/// A structural check run on a match before it is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    None,
    /// GitHub and npm tokens: the last 6 characters are the base62 CRC32 of
    /// the 30 random ones before them.
    Crc32Base62,
    /// Base64 of `user:password` with a real-looking password (Docker
    /// `auths`, HTTP Basic, `.npmrc` `_auth`).
    BasicAuth,
    /// Base64 of printable text that is not a placeholder (Kubernetes
    /// Secret `data`).
    Base64Text,
}

pub struct SecretRule {
    pub id: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub(crate) pattern: &'static str,
    /// Capture group holding the secret (0 = whole match).
    pub(crate) group: usize,
    /// Minimum Shannon entropy (bits per char) of the secret.
    pub(crate) min_entropy: f64,
    /// Lower-case words one of which must appear in a file for the rule to run.
    pub keywords: &'static [&'static str],
    pub check: Check,
    /// A line the rule reports (slots filled by [`example`]).
    pub fires: &'static str,
    /// A near miss the rule does not report.
    pub passes: &'static str,
}

impl SecretRule {
    pub fn pattern(&self) -> &'static str {
        self.pattern
    }
    /// The "secret assigned to a credential-like name" rule, which runs with
    /// code-aware filters instead of a provider format.
    pub fn is_generic(&self) -> bool {
        self.id == GENERIC_ID
    }
}

pub const GENERIC_ID: &str = "TUGS019";

#[allow(clippy::too_many_arguments)]
const fn rule(
    id: &'static str,
    name: &'static str,
    title: &'static str,
    severity: Severity,
    keywords: &'static [&'static str],
    pattern: &'static str,
    fires: &'static str,
    passes: &'static str,
) -> SecretRule {
    SecretRule {
        id,
        name,
        title,
        severity,
        pattern,
        group: 1,
        min_entropy: 3.0,
        keywords,
        check: Check::None,
        fires,
        passes,
    }
}

impl SecretRule {
    const fn entropy(mut self, e: f64) -> Self {
        self.min_entropy = e;
        self
    }
    const fn group(mut self, g: usize) -> Self {
        self.group = g;
        self
    }
    const fn check(mut self, c: Check) -> Self {
        self.check = c;
        self
    }
}

/// A value assigned to a name that mentions the provider (`DATADOG_API_KEY=…`),
/// for providers whose keys have no prefix of their own.
macro_rules! keyed {
    ($kw:literal, $val:literal) => {
        concat!(
            r#"(?i)"#,
            $kw,
            r#"[\w.\-]{0,30}["']?\s*(?::=|=>|[:=,])\s*["'\x60]?((?-i:"#,
            $val,
            r#"))(?:[^A-Za-z0-9_\-]|$)"#
        )
    };
}

/// A prefixed token bounded on both sides.
macro_rules! token {
    ($val:literal) => {
        concat!(
            r#"(?:^|[^A-Za-z0-9_\-])("#,
            $val,
            r#")(?:[^A-Za-z0-9_\-]|$)"#
        )
    };
}

pub static RULES: &[SecretRule] = &[
    // --- Cloud providers -------------------------------------------------
    rule("TUGS001", "aws-access-key-id", "AWS access key ID", High, &["akia", "asia", "abia", "acca"],
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        "aws_access_key_id = AKIA{{W16}}", "aws_access_key_id = AKIA{{W12}}"),
    rule("TUGS002", "aws-secret-access-key", "AWS secret access key", Critical, &["secret"],
        r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        "aws_secret_access_key = \"{{B40}}\"", "aws_secret_access_key = \"{{B30}}\"").entropy(4.0),
    rule("TUGS003", "gcp-service-account-key", "GCP service account key", Critical, &["private_key_id"],
        r#""private_key_id"\s*:\s*"([a-f0-9]{40})""#,
        "  \"type\": \"service_account\", \"private_key_id\": \"{{H40}}\",", "\"private_key_id\": \"{{H20}}\""),
    rule("TUGS004", "azure-storage-key", "Azure storage account key", Critical, &["accountkey"],
        r"AccountKey=([A-Za-z0-9+/]{86}==)",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={{B86}}==;EndpointSuffix=core.windows.net",
        "AccountKey=UseDevelopmentStorage").entropy(4.0),
    rule("TUGS005", "github-token", "GitHub token", High, &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        token!(r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}"),
        "token: ghp_{{G30}}", "token: ghp_{{A36}}").entropy(3.5).check(Check::Crc32Base62),
    rule("TUGS006", "github-fine-grained-token", "GitHub fine-grained token", High, &["github_pat_"],
        r"\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
        "GH=github_pat_{{A22}}_{{A59}}", "GH=github_pat_{{A22}}").entropy(3.5),
    rule("TUGS007", "gitlab-token", "GitLab personal access token", High, &["glpat-"],
        r"\b(glpat-[A-Za-z0-9_\-]{20,})\b",
        "gitlab: glpat-{{A20}}", "gitlab: glpat-{{A12}}"),
    rule("TUGS008", "slack-token", "Slack token", High, &["xox"],
        r"\b(xox[abposr]-(?:\d-)?[A-Za-z0-9]{6,}-[A-Za-z0-9-]{8,})",
        "slack = 'xoxb-{{D12}}-{{D13}}-{{A24}}'", "slack = 'xoxb-short'"),
    rule("TUGS009", "slack-webhook", "Slack incoming webhook", Medium, &["hooks.slack.com"],
        r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,}/[A-Z0-9]{6,}/[A-Za-z0-9]{20,})",
        "webhook: https://hooks.slack.com/services/T{{U8}}/B{{U8}}/{{A24}}",
        "webhook: https://hooks.slack.com/services/Txxxxxxxx/Bxxxxxxxx/xxxxxxxxxxxxxxxxxxxxxxxx").entropy(3.5),
    rule("TUGS010", "stripe-live-key", "Stripe live secret key", Critical, &["_live_"],
        r"\b((?:sk|rk)_live_[A-Za-z0-9]{24,})\b",
        "stripe.api_key = \"sk_live_{{A24}}\"", "stripe.api_key = \"sk_test_{{A24}}\"").entropy(3.5),
    rule("TUGS011", "twilio-api-key", "Twilio API key", High, &["sk"],
        r"\b(SK[0-9a-fA-F]{32})\b",
        "twilio: SK{{H32}}", "twilio: SK{{H20}}").entropy(3.2),
    rule("TUGS012", "sendgrid-api-key", "SendGrid API key", High, &["sg."],
        r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})\b",
        "sendgrid={{SG}}", "sendgrid=SG.{{A10}}.{{A10}}").entropy(4.0),
    rule("TUGS013", "npm-token", "npm access token", High, &["npm_"],
        token!(r"npm_[A-Za-z0-9]{36}"),
        "//registry.npmjs.org/:_authToken=npm_{{G30}}", "//registry.npmjs.org/:_authToken=npm_{{A36}}")
        .entropy(3.5).check(Check::Crc32Base62),
    rule("TUGS014", "pypi-token", "PyPI upload token", High, &["pypi-ageichlwas5vcmc"],
        r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        "password = pypi-AgEIcHlwaS5vcmc{{A70}}", "password = pypi-AgEIcHlwaS5vcmc{{A20}}").entropy(4.0),
    rule("TUGS015", "private-key", "Private key", Critical, &["private key"],
        r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----(?:\s|\\[rn])*(?:[A-Za-z0-9-]+:[^\n\\]*(?:\n|\\n)(?:\s|\\[rn])*)*((?:[A-Za-z0-9+/=]|\\[rn]|\s){32,})",
        "-----BEGIN RSA PRIVATE KEY-----\n{{B64}}\n{{B64}}\n{{B40}}\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN PUBLIC KEY-----\n{{B64}}\n-----END PUBLIC KEY-----").group(2).entropy(4.0),
    rule("TUGS016", "jwt", "JSON Web Token", Medium, &["eyj"],
        r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,})",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjo5OTk5OTk5OTk5fQ.{{b43}}",
        "header = eyJhbGciOiJub25lIn0.e30.").entropy(4.0),
    rule("TUGS017", "password-in-url", "Password in URL", High, &["://"],
        r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^:/\s@'\x22]{1,64}:([^@/\s'\x22]{4,128})@[A-Za-z0-9][A-Za-z0-9.\-_]*",
        "DATABASE_URL=postgres://admin:{{A14}}@db.internal:5432/app",
        "DATABASE_URL=postgres://app:${DB_PASS}@db:5432/app").entropy(2.5),
    rule("TUGS018", "connection-string-password", "Password in connection string", High, &["password", "pwd"],
        r"(?i)\b(?:server|host|data source)\s*=[^;\n]+;[^\n]*?\b(?:password|pwd)\s*=\s*([^;'\x22\s]{4,})",
        "conn = \"Server=tcp:db.example.net,1433;Database=app;User Id=app;Password={{A16}};\"",
        "conn = \"Server=tcp:db.example.net,1433;Database=app;Integrated Security=true;\"").entropy(2.5),
    SecretRule {
        id: GENERIC_ID,
        name: "generic-secret-assignment",
        title: "Secret assigned to a credential-like name",
        severity: Medium,
        pattern: super::generic::PATTERN,
        group: 3,
        min_entropy: 3.5,
        keywords: super::generic::KEYWORDS,
        check: Check::None,
        fires: "storageAccountKey = \"{{A32}}\"",
        passes: "refresh_token := creds.RefreshToken",
    },
    rule("TUGS020", "gcp-api-key", "Google API key", High, &["aiza"],
        token!(r"AIza[0-9A-Za-z_\-]{35}"),
        "maps_key = AIza{{b35}}", "maps_key = AIza{{b20}}"),
    rule("TUGS021", "gcp-oauth-client-secret", "Google OAuth client secret", High, &["gocspx-"],
        token!(r"GOCSPX-[A-Za-z0-9_\-]{28}"),
        "client_secret: GOCSPX-{{b28}}", "client_secret: GOCSPX-{{b12}}"),
    rule("TUGS022", "gcp-oauth-access-token", "Google OAuth access token", High, &["ya29."],
        token!(r"ya29\.[0-9A-Za-z_\-]{30,}"),
        "Authorization: Bearer ya29.{{b60}}", "scope = ya29.short"),
    rule("TUGS023", "azure-ad-client-secret", "Azure AD client secret", High, &["q~"],
        r"(?:^|[\\'\x22\x60\s>=:(,)])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:$|[\\'\x22\x60\s<),])",
        "AZURE_CLIENT_SECRET={{A3}}8Q~{{A34}}", "AZURE_CLIENT_SECRET={{A3}}8Q~{{A10}}"),
    rule("TUGS024", "azure-sas-key", "Azure shared access key", Critical, &["sharedaccesskey="],
        r"SharedAccessKey=([A-Za-z0-9+/]{43}=)",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={{B43}}=",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=<key>").entropy(4.0),
    rule("TUGS025", "azure-sas-token", "Azure SAS token signature", High, &["sig="],
        r"[?&]sv=\d{4}-\d\d-\d\d&[^\s'\x22]*?\bsig=([A-Za-z0-9%+/=]{40,})",
        "https://acct.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01&sig={{A44}}%3D",
        "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=<signature>").entropy(3.5),
    rule("TUGS026", "azure-app-config", "Azure App Configuration connection string", High, &["azconfig.io"],
        r"Endpoint=https://[a-z0-9\-]+\.azconfig\.io;Id=[^;\s]+;Secret=([A-Za-z0-9+/=]{40,})",
        "Endpoint=https://cfg.azconfig.io;Id=abc1-l0-s0:x;Secret={{B44}}",
        "Endpoint=https://cfg.azconfig.io;Id=abc1-l0-s0:x;Secret=").entropy(3.5),
    rule("TUGS027", "azure-devops-pat", "Azure DevOps personal access token", High, &["azdo"],
        token!(r"[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}"),
        "AZURE_DEVOPS_PAT={{A76}}AZDO{{A4}}", "AZURE_DEVOPS_PAT={{A40}}AZDO{{A4}}"),
    rule("TUGS028", "alibaba-access-key-id", "Alibaba Cloud access key ID", High, &["ltai"],
        token!(r"LTAI[A-Za-z0-9]{20}"),
        "aliyun_key = LTAI{{A20}}", "aliyun_key = LTAI{{A10}}"),
    rule("TUGS029", "digitalocean-token", "DigitalOcean token", High, &["dop_v1_", "doo_v1_", "dor_v1_"],
        token!(r"do[por]_v1_[a-f0-9]{64}"),
        "DIGITALOCEAN_TOKEN=dop_v1_{{H64}}", "DIGITALOCEAN_TOKEN=dop_v1_{{H32}}"),
    rule("TUGS030", "heroku-api-key", "Heroku API key", High, &["hrku-"],
        token!(r"HRKU-AA[0-9A-Za-z_\-]{58}"),
        "HEROKU_API_KEY=HRKU-AA{{b58}}", "HEROKU_API_KEY=HRKU-AA{{b20}}"),
    rule("TUGS031", "heroku-api-key-uuid", "Heroku API key", High, &["heroku"],
        keyed!("heroku", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "HEROKU_API_KEY={{uuid}}", "HEROKU_APP_NAME=my-app"),
    rule("TUGS032", "cloudflare-api-token", "Cloudflare API token", High, &["cloudflare"],
        keyed!("cloudflare", r"[A-Za-z0-9_\-]{40}"),
        "CLOUDFLARE_API_TOKEN={{b40}}", "CLOUDFLARE_ZONE=example.com"),
    rule("TUGS033", "cloudflare-origin-ca-key", "Cloudflare Origin CA key", High, &["v1.0-"],
        token!(r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}"),
        "origin_ca_key = v1.0-{{H24}}-{{H146}}", "version = v1.0-{{H24}}"),
    rule("TUGS034", "databricks-token", "Databricks access token", High, &["dapi"],
        token!(r"dapi[a-f0-9]{32}(?:-\d)?"),
        "DATABRICKS_TOKEN=dapi{{H32}}", "DATABRICKS_TOKEN=dapi{{H16}}"),
    rule("TUGS035", "vault-service-token", "HashiCorp Vault token", High, &["hvs.", "hvb."],
        token!(r"hv[sb]\.[A-Za-z0-9_\-]{90,}"),
        "VAULT_TOKEN=hvs.{{b95}}", "VAULT_TOKEN=hvs.{{b20}}"),
    rule("TUGS036", "terraform-cloud-token", "Terraform Cloud API token", High, &["atlasv1"],
        token!(r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9\-_=]{60,70}"),
        "token = \"{{a14}}.atlasv1.{{b67}}\"", "token = \"{{a14}}.atlasv1.short\""),
    rule("TUGS037", "doppler-token", "Doppler token", High, &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."],
        token!(r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}"),
        "DOPPLER_TOKEN=dp.pt.{{A43}}", "DOPPLER_TOKEN=dp.pt.{{A10}}"),
    rule("TUGS038", "pulumi-token", "Pulumi access token", High, &["pul-"],
        token!(r"pul-[a-f0-9]{40}"),
        "PULUMI_ACCESS_TOKEN=pul-{{H40}}", "PULUMI_ACCESS_TOKEN=pul-{{H20}}"),
    rule("TUGS039", "flyio-token", "Fly.io access token", High, &["fo1_", "fm1", "fm2_"],
        token!(r"(?:fo1_[\w-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,}={0,2}|fm2_[A-Za-z0-9+/]{100,}={0,3})"),
        "FLY_API_TOKEN=fo1_{{b43}}", "FLY_API_TOKEN=fo1_{{b10}}"),
    rule("TUGS040", "tailscale-key", "Tailscale key", High, &["tskey-"],
        token!(r"tskey-(?:api|auth|client|webhook|scim)-[A-Za-z0-9]{8,}-[A-Za-z0-9]{20,}"),
        "TS_AUTHKEY=tskey-auth-k{{A10}}CNTRL-{{A32}}", "TS_AUTHKEY=tskey-auth-XXXX"),
    rule("TUGS041", "age-secret-key", "age secret key", Critical, &["age-secret-key-1"],
        r"\bAGE-SECRET-KEY-1([QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b",
        "AGE-SECRET-KEY-1{{age58}}", "AGE-SECRET-KEY-1{{age20}}"),
    rule("TUGS042", "scaleway-secret-key", "Scaleway secret key", High, &["scw"],
        keyed!("scw_secret", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "SCW_SECRET_KEY={{uuid}}", "SCW_DEFAULT_REGION=fr-par"),
    rule("TUGS043", "openshift-token", "OpenShift user token", High, &["sha256~"],
        token!(r"sha256~[\w\-]{43}"),
        "oc login --token=sha256~{{b43}}", "oc login --token=sha256~{{b10}}"),
    rule("TUGS044", "aws-session-token", "AWS session token", High, &["session_token", "sessiontoken"],
        r#"(?i)aws_?session_?token["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{100,})"#,
        "aws_session_token = {{B160}}", "aws_session_token = {{B40}}").entropy(4.0),
    rule("TUGS045", "amazon-mws-token", "Amazon MWS auth token", High, &["amzn.mws."],
        r"\b(amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b",
        "mws_token = amzn.mws.{{uuid}}", "mws_token = amzn.mws.example"),
    rule("TUGS046", "ibm-cloud-api-key", "IBM Cloud API key", High, &["ibm"],
        keyed!("ibm[\\w.\\-]{0,10}api_?key", r"[A-Za-z0-9_\-]{44}"),
        "IBMCLOUD_API_KEY={{b44}}", "IBMCLOUD_API_KEY={{b20}}"),
    rule("TUGS047", "linode-token", "Linode personal access token", High, &["linode"],
        keyed!("linode", r"[a-f0-9]{64}"),
        "LINODE_TOKEN={{H64}}", "LINODE_REGION=eu-west"),
    rule("TUGS048", "vultr-api-key", "Vultr API key", High, &["vultr"],
        keyed!("vultr", r"[A-Z0-9]{36}"),
        "VULTR_API_KEY={{U36}}", "VULTR_REGION=ams"),
    rule("TUGS049", "netlify-token", "Netlify access token", High, &["netlify"],
        keyed!("netlify", r"nfp_[A-Za-z0-9]{36,40}|[A-Za-z0-9_\-]{43}"),
        "NETLIFY_AUTH_TOKEN=nfp_{{A36}}", "NETLIFY_SITE=my-site"),
    rule("TUGS050", "vercel-token", "Vercel access token", High, &["vercel"],
        keyed!("vercel", r"[A-Za-z0-9]{24}"),
        "VERCEL_TOKEN={{A24}}", "VERCEL_PROJECT=my-app"),
    // --- Version control and CI -------------------------------------------
    rule("TUGS051", "gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", High, &["glptt-"],
        token!(r"glptt-[0-9a-f]{40}"),
        "trigger = glptt-{{H40}}", "trigger = glptt-{{H20}}"),
    rule("TUGS052", "gitlab-runner-registration-token", "GitLab runner registration token", High, &["gr1348941"],
        token!(r"GR1348941[A-Za-z0-9_\-]{20}"),
        "registration-token: GR1348941{{b20}}", "registration-token: GR1348941{{b8}}"),
    rule("TUGS053", "gitlab-runner-token", "GitLab runner authentication token", High, &["glrt-"],
        token!(r"glrt-(?:t\d_)?[A-Za-z0-9_\-]{20,}"),
        "token = \"glrt-{{b20}}\"", "token = \"glrt-{{b8}}\""),
    rule("TUGS054", "gitlab-deploy-token", "GitLab deploy token", High, &["gldt-"],
        token!(r"gldt-[A-Za-z0-9_\-]{20,}"),
        "CI_DEPLOY_PASSWORD=gldt-{{b20}}", "CI_DEPLOY_PASSWORD=gldt-{{b8}}"),
    rule("TUGS055", "gitlab-other-token", "GitLab token", High, &["glft-", "glsoat-", "glcbt-", "glimt-", "gloas-", "glagent-", "glffct-"],
        token!(r"(?:glft|glsoat|glimt|glffct)-[A-Za-z0-9_\-]{20,}|glcbt-[0-9a-fA-F]{1,5}_[A-Za-z0-9_\-]{20}|gloas-[a-f0-9]{64}|glagent-[A-Za-z0-9_\-]{50}"),
        "feed = glft-{{b20}}", "feed = glft-{{b8}}"),
    rule("TUGS056", "bitbucket-app-password", "Bitbucket app password", High, &["atbb"],
        token!(r"ATBB[A-Za-z0-9_=.\-]{32}"),
        "BITBUCKET_APP_PASSWORD=ATBB{{A32}}", "BITBUCKET_APP_PASSWORD=ATBB{{A10}}"),
    rule("TUGS057", "atlassian-api-token", "Atlassian API token", High, &["atatt3"],
        token!(r"ATATT3[A-Za-z0-9_\-=]{186}"),
        "JIRA_API_TOKEN=ATATT3{{b186}}", "JIRA_API_TOKEN=ATATT3{{b40}}"),
    rule("TUGS058", "circleci-token", "CircleCI personal token", High, &["ccipat_"],
        token!(r"CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}"),
        "CIRCLECI_TOKEN=CCIPAT_{{A22}}_{{H40}}", "CIRCLECI_TOKEN=CCIPAT_{{A22}}"),
    rule("TUGS059", "buildkite-token", "Buildkite API token", High, &["bkua_"],
        token!(r"bkua_[a-z0-9]{40}"),
        "BUILDKITE_API_TOKEN=bkua_{{a40}}", "BUILDKITE_API_TOKEN=bkua_{{a20}}"),
    rule("TUGS060", "octopus-deploy-api-key", "Octopus Deploy API key", High, &["api-"],
        token!(r"API-[A-Z0-9]{26}"),
        "OCTOPUS_API_KEY=API-{{U26}}", "OCTOPUS_API_KEY=API-{{U10}}"),
    rule("TUGS061", "harness-pat", "Harness access token", High, &["pat.", "sat."],
        token!(r"(?:pat|sat)\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}"),
        "HARNESS_TOKEN=pat.{{b22}}.{{A24}}.{{A20}}", "HARNESS_TOKEN=pat.{{b22}}"),
    rule("TUGS062", "sonarqube-token", "SonarQube token", High, &["squ_", "sqp_", "sqa_"],
        token!(r"sq[upa]_[a-f0-9]{40}"),
        "SONAR_TOKEN=squ_{{H40}}", "SONAR_TOKEN=squ_{{H20}}"),
    rule("TUGS063", "artifactory-api-key", "JFrog Artifactory API key", High, &["akcp"],
        token!(r"AKCp[A-Za-z0-9]{69}"),
        "ARTIFACTORY_API_KEY=AKCp{{A69}}", "ARTIFACTORY_API_KEY=AKCp{{A20}}"),
    rule("TUGS064", "artifactory-reference-token", "JFrog reference token", High, &["cmvmdgtu"],
        token!(r"cmVmdGtu[A-Za-z0-9]{56}"),
        "JFROG_TOKEN=cmVmdGtu{{A56}}", "JFROG_TOKEN=cmVmdGtu{{A20}}"),
    rule("TUGS065", "sourcegraph-token", "Sourcegraph access token", High, &["sgp_"],
        token!(r"sgp_(?:[a-fA-F0-9]{16}|local)_[a-fA-F0-9]{40}"),
        "SRC_ACCESS_TOKEN=sgp_{{H16}}_{{H40}}", "SRC_ACCESS_TOKEN=sgp_{{H16}}"),
    rule("TUGS066", "travis-ci-token", "Travis CI access token", High, &["travis"],
        keyed!("travis", r"[A-Za-z0-9]{22}"),
        "TRAVIS_API_TOKEN={{A22}}", "TRAVIS_OS_NAME=linux"),
    rule("TUGS067", "codecov-token", "Codecov upload token", Medium, &["codecov"],
        keyed!("codecov", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "CODECOV_TOKEN={{uuid}}", "CODECOV_FLAGS=unit"),
    // --- Chat and messaging -------------------------------------------------
    rule("TUGS068", "slack-app-token", "Slack app-level token", High, &["xapp-"],
        token!(r"xapp-\d-[A-Z0-9]+-\d+-[A-Za-z0-9]+"),
        "SLACK_APP_TOKEN=xapp-1-A{{U10}}-{{D13}}-{{H64}}", "SLACK_APP_TOKEN=xapp-1-A"),
    rule("TUGS069", "slack-config-token", "Slack configuration token", High, &["xoxe"],
        token!(r"xoxe\.xox[bp]-\d-[A-Z0-9]{163,166}|xoxe-\d-[A-Z0-9]{146}"),
        "SLACK_CONFIG_TOKEN=xoxe.xoxp-1-{{U164}}", "SLACK_CONFIG_TOKEN=xoxe.xoxp-1-{{U20}}"),
    rule("TUGS070", "discord-bot-token", "Discord bot token", High, &["discord"],
        keyed!("discord", r"[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}"),
        "DISCORD_TOKEN=M{{A23}}.{{A6}}.{{b27}}", "DISCORD_GUILD=1234"),
    rule("TUGS071", "discord-webhook", "Discord webhook URL", Medium, &["discord"],
        r"(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/[A-Za-z0-9_\-]{60,68})",
        "hook: https://discord.com/api/webhooks/{{D18}}/{{b68}}",
        "hook: https://discord.com/api/webhooks/{{D18}}/XXXX"),
    rule("TUGS072", "telegram-bot-token", "Telegram bot token", High, &[":aa"],
        token!(r"\d{8,10}:AA[0-9A-Za-z_\-]{33}"),
        "TELEGRAM_BOT_TOKEN={{D10}}:AA{{b33}}", "TELEGRAM_BOT_TOKEN={{D10}}:AA{{b10}}"),
    rule("TUGS073", "teams-webhook", "Microsoft Teams webhook URL", Medium, &["webhook.office.com"],
        r"(https://[a-z0-9]+\.webhook\.office\.com/webhookb2/[a-z0-9\-]+@[a-z0-9\-]+/IncomingWebhook/[a-z0-9]{32}/[a-z0-9\-]+)",
        "url: https://acme.webhook.office.com/webhookb2/{{uuid}}@{{uuid}}/IncomingWebhook/{{a32}}/{{uuid}}",
        "url: https://acme.webhook.office.com/webhookb2/"),
    rule("TUGS074", "twitter-bearer-token", "Twitter/X bearer token", High, &["aaaaaaaaaaaaaaaaaaaaa"],
        r"\b(A{22}[A-Za-z0-9%]{80,120})",
        "TWITTER_BEARER_TOKEN=AAAAAAAAAAAAAAAAAAAAAA{{A90}}", "TWITTER_BEARER_TOKEN=AAAAAAAAAAAAAAAAAAAAAA{{A20}}")
        .entropy(3.5),
    rule("TUGS075", "facebook-access-token", "Facebook access token", High, &["eaa"],
        token!(r"EAA[MC][A-Za-z0-9]{100,}"),
        "FB_TOKEN=EAAC{{A120}}", "FB_TOKEN=EAAC{{A30}}"),
    rule("TUGS076", "mattermost-token", "Mattermost access token", High, &["mattermost"],
        keyed!("mattermost", r"[a-z0-9]{26}"),
        "MATTERMOST_TOKEN={{a26}}", "MATTERMOST_URL=https://chat.example.net"),
    // --- Payments and commerce ---------------------------------------------
    rule("TUGS077", "stripe-webhook-secret", "Stripe webhook signing secret", High, &["whsec_"],
        token!(r"whsec_[A-Za-z0-9]{32,}"),
        "STRIPE_WEBHOOK_SECRET=whsec_{{A32}}", "STRIPE_WEBHOOK_SECRET=whsec_{{A10}}"),
    rule("TUGS078", "square-access-token", "Square access token", High, &["eaaa", "sq0atp-"],
        token!(r"EAAA[A-Za-z0-9_\-]{60}|sq0atp-[0-9A-Za-z_\-]{22}"),
        "SQUARE_ACCESS_TOKEN=EAAA{{b60}}", "SQUARE_ACCESS_TOKEN=EAAA{{b20}}"),
    rule("TUGS079", "square-oauth-secret", "Square OAuth secret", High, &["sq0csp-"],
        token!(r"sq0csp-[0-9A-Za-z_\-]{43}"),
        "SQUARE_SECRET=sq0csp-{{b43}}", "SQUARE_SECRET=sq0csp-{{b10}}"),
    rule("TUGS080", "braintree-access-token", "PayPal Braintree access token", Critical, &["access_token$production$"],
        r"\b(access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32})\b",
        "BRAINTREE=access_token$production${{a16}}${{H32}}", "BRAINTREE=access_token$sandbox${{a16}}${{H32}}"),
    rule("TUGS081", "shopify-token", "Shopify access token", High, &["shpat_", "shpca_", "shppa_", "shpss_"],
        token!(r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
        "SHOPIFY_TOKEN=shpat_{{H32}}", "SHOPIFY_TOKEN=shpat_{{H16}}"),
    rule("TUGS082", "flutterwave-secret-key", "Flutterwave secret key", High, &["flwseck"],
        token!(r"FLWSECK(?:_TEST)?-[a-h0-9]{32}-X"),
        "FLW_SECRET_KEY=FLWSECK-{{H32}}-X", "FLW_SECRET_KEY=FLWSECK-{{H10}}-X"),
    rule("TUGS083", "plaid-access-token", "Plaid access token", High, &["access-production-", "access-development-"],
        token!(r"access-(?:production|development)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "PLAID_ACCESS_TOKEN=access-production-{{uuid}}", "PLAID_ACCESS_TOKEN=access-sandbox-{{uuid}}"),
    rule("TUGS084", "gocardless-token", "GoCardless live access token", High, &["live_"],
        keyed!("gocardless", r"live_[A-Za-z0-9\-_=]{40}"),
        "GOCARDLESS_ACCESS_TOKEN=live_{{b40}}", "GOCARDLESS_ACCESS_TOKEN=sandbox_{{b40}}"),
    rule("TUGS085", "mollie-api-key", "Mollie live API key", High, &["mollie"],
        keyed!("mollie", r"live_[A-Za-z0-9]{30}"),
        "MOLLIE_API_KEY=live_{{A30}}", "MOLLIE_API_KEY=test_{{A30}}"),
    rule("TUGS086", "razorpay-secret", "Razorpay key secret", High, &["razorpay"],
        keyed!("razorpay[\\w.\\-]{0,10}secret", r"[A-Za-z0-9]{24}"),
        "RAZORPAY_KEY_SECRET={{A24}}", "RAZORPAY_KEY_ID=rzp_live_x"),
    rule("TUGS087", "coinbase-key", "Coinbase API secret", High, &["coinbase"],
        keyed!("coinbase[\\w.\\-]{0,10}secret", r"[A-Za-z0-9+/]{32,88}={0,2}"),
        "COINBASE_API_SECRET={{B64}}", "COINBASE_API_SECRET=none"),
    // --- AI APIs ----------------------------------------------------------------
    rule("TUGS088", "openai-api-key", "OpenAI API key", High, &["t3blbkfj"],
        token!(r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,74}T3BlbkFJ[A-Za-z0-9_\-]{20,74}"),
        "OPENAI_API_KEY=sk-proj-{{b40}}T3BlbkFJ{{b40}}", "OPENAI_API_KEY=sk-proj-{{b40}}"),
    rule("TUGS089", "anthropic-api-key", "Anthropic API key", High, &["sk-ant-"],
        token!(r"sk-ant-(?:api03|admin01)-[A-Za-z0-9_\-]{93}AA"),
        "ANTHROPIC_API_KEY=sk-ant-api03-{{b93}}AA", "ANTHROPIC_API_KEY=sk-ant-api03-{{b20}}"),
    rule("TUGS090", "huggingface-token", "Hugging Face access token", High, &["hf_", "api_org_"],
        token!(r"hf_[A-Za-z]{34}|api_org_[A-Za-z]{34}"),
        "HF_TOKEN=hf_{{M34}}", "HF_TOKEN=hf_{{M20}}"),
    rule("TUGS091", "groq-api-key", "Groq API key", High, &["gsk_"],
        token!(r"gsk_[A-Za-z0-9]{52}"),
        "GROQ_API_KEY=gsk_{{A52}}", "GROQ_API_KEY=gsk_{{A20}}"),
    rule("TUGS092", "replicate-token", "Replicate API token", High, &["r8_"],
        token!(r"r8_[A-Za-z0-9]{37}"),
        "REPLICATE_API_TOKEN=r8_{{A37}}", "REPLICATE_API_TOKEN=r8_{{A20}}"),
    rule("TUGS093", "perplexity-api-key", "Perplexity API key", High, &["pplx-"],
        token!(r"pplx-[A-Za-z0-9]{48}"),
        "PPLX_API_KEY=pplx-{{A48}}", "PPLX_API_KEY=pplx-{{A20}}"),
    rule("TUGS094", "xai-api-key", "xAI API key", High, &["xai-"],
        token!(r"xai-[A-Za-z0-9]{80}"),
        "XAI_API_KEY=xai-{{A80}}", "XAI_API_KEY=xai-{{A20}}"),
    rule("TUGS095", "langsmith-api-key", "LangSmith API key", High, &["lsv2_"],
        token!(r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}"),
        "LANGSMITH_API_KEY=lsv2_pt_{{H32}}_{{H10}}", "LANGSMITH_API_KEY=lsv2_pt_{{H32}}"),
    rule("TUGS096", "pinecone-api-key", "Pinecone API key", High, &["pcsk_"],
        token!(r"pcsk_[A-Za-z0-9]{5,7}_[A-Za-z0-9]{60,70}"),
        "PINECONE_API_KEY=pcsk_{{A6}}_{{A63}}", "PINECONE_API_KEY=pcsk_{{A6}}"),
    rule("TUGS097", "openrouter-api-key", "OpenRouter API key", High, &["sk-or-v1-"],
        token!(r"sk-or-v1-[a-f0-9]{64}"),
        "OPENROUTER_API_KEY=sk-or-v1-{{H64}}", "OPENROUTER_API_KEY=sk-or-v1-{{H20}}"),
    rule("TUGS098", "cohere-api-key", "Cohere API key", High, &["cohere", "co_api_key"],
        keyed!("co(?:here|_api)", r"[A-Za-z0-9]{40}"),
        "COHERE_API_KEY={{A40}}", "COHERE_MODEL=command-r"),
    rule("TUGS099", "mistral-api-key", "Mistral API key", High, &["mistral"],
        keyed!("mistral", r"[A-Za-z0-9]{32}"),
        "MISTRAL_API_KEY={{A32}}", "MISTRAL_MODEL=mistral-large-latest"),
    // --- Package registries -------------------------------------------------
    rule("TUGS100", "rubygems-api-key", "RubyGems API key", High, &["rubygems_"],
        token!(r"rubygems_[a-f0-9]{48}"),
        "GEM_HOST_API_KEY=rubygems_{{H48}}", "GEM_HOST_API_KEY=rubygems_{{H20}}"),
    rule("TUGS101", "nuget-api-key", "NuGet API key", High, &["oy2"],
        token!(r"oy2[a-z0-9]{43}"),
        "NUGET_API_KEY=oy2{{a43}}", "NUGET_API_KEY=oy2{{a20}}"),
    rule("TUGS102", "crates-io-token", "crates.io API token", High, &["cio"],
        token!(r"cio[A-Za-z0-9]{32}"),
        "CARGO_REGISTRY_TOKEN=cio{{A32}}", "CARGO_REGISTRY_TOKEN=cio{{A12}}"),
    rule("TUGS103", "docker-hub-token", "Docker Hub access token", High, &["dckr_pat_", "dckr_oat_"],
        token!(r"dckr_(?:pat|oat)_[A-Za-z0-9_\-]{27,}"),
        "DOCKERHUB_TOKEN=dckr_pat_{{b27}}", "DOCKERHUB_TOKEN=dckr_pat_{{b10}}"),
    rule("TUGS104", "clojars-token", "Clojars deploy token", High, &["clojars_"],
        token!(r"CLOJARS_[a-z0-9]{60}"),
        "CLOJARS_PASSWORD=CLOJARS_{{a60}}", "CLOJARS_PASSWORD=CLOJARS_{{a20}}"),
    rule("TUGS105", "postman-api-key", "Postman API key", High, &["pmak-"],
        token!(r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
        "POSTMAN_API_KEY=PMAK-{{H24}}-{{H34}}", "POSTMAN_API_KEY=PMAK-{{H24}}"),
    rule("TUGS106", "docker-config-auth", "Registry credentials in a Docker config", High, &["auth"],
        r#""auth"\s*:\s*"([A-Za-z0-9+/]{8,}={0,2})""#,
        "{\"auths\": {\"registry.example.com\": {\"auth\": \"{{basic}}\"}}}",
        "{\"auths\": {\"registry.example.com\": {\"auth\": \"\"}}}").check(Check::BasicAuth).entropy(2.5),
    rule("TUGS107", "basic-auth-header", "HTTP Basic credentials", High, &["basic "],
        r"(?i:authorization)[\x22']?\s*[:=]\s*[\x22']?(?i:basic)\s+([A-Za-z0-9+/]{8,}={0,2})",
        "Authorization: Basic {{basic}}", "Authorization: Basic $CREDENTIALS").check(Check::BasicAuth).entropy(2.5),
    rule("TUGS108", "npmrc-auth", "Registry credentials in .npmrc", High, &["_auth"],
        r"(?m)^\s*(?://[^\s=]+:)?_auth\s*=\s*([A-Za-z0-9+/]{8,}={0,2})\s*$",
        "//registry.example.com/:_auth={{basic}}", "//registry.example.com/:_auth=${NPM_AUTH}")
        .check(Check::BasicAuth).entropy(2.5),
    rule("TUGS109", "npmrc-password", "Registry password in .npmrc", High, &["_password"],
        r"(?m)^\s*(?://[^\s=]+:)?_password\s*=\s*([A-Za-z0-9+/]{8,}={0,2})\s*$",
        "//registry.example.com/:_password={{B24}}", "//registry.example.com/:_password=${NPM_PASS}").entropy(3.0),
    // --- Databases and data platforms ----------------------------------------
    rule("TUGS110", "planetscale-token", "PlanetScale token or password", High, &["pscale_"],
        token!(r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.\-]{32,64}"),
        "PLANETSCALE_PASSWORD=pscale_pw_{{b43}}", "PLANETSCALE_PASSWORD=pscale_pw_{{b10}}"),
    rule("TUGS111", "supabase-token", "Supabase access token", High, &["sbp_", "sb_secret_"],
        token!(r"sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_\-]{31,}"),
        "SUPABASE_ACCESS_TOKEN=sbp_{{H40}}", "SUPABASE_ACCESS_TOKEN=sbp_{{H20}}"),
    rule("TUGS112", "neon-api-key", "Neon API key", High, &["napi_"],
        token!(r"napi_[a-z0-9]{64}"),
        "NEON_API_KEY=napi_{{a64}}", "NEON_API_KEY=napi_{{a20}}"),
    rule("TUGS113", "mongodb-atlas-key", "MongoDB Atlas private API key", High, &["mongodb", "atlas"],
        keyed!("(?:mongodb|atlas)[\\w.\\-]{0,12}private_?key", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "MONGODB_ATLAS_PRIVATE_KEY={{uuid}}", "MONGODB_ATLAS_PUBLIC_KEY=abcdefgh"),
    rule("TUGS114", "snowflake-password", "Snowflake password", High, &["snowflake"],
        keyed!("snowflake[\\w.\\-]{0,12}password", r"[^\s'\x22]{8,}"),
        "SNOWFLAKE_PASSWORD={{A16}}", "SNOWFLAKE_ACCOUNT=xy12345").entropy(3.3),
    rule("TUGS115", "jdbc-password", "Password in a JDBC URL", High, &["jdbc:"],
        r"(?i)jdbc:[a-z0-9]+:[^\s'\x22]*[?;&]password=([^&;\s'\x22]{4,})",
        "url=jdbc:mysql://db:3306/app?user=app&password={{A14}}", "url=jdbc:mysql://db:3306/app?user=app")
        .entropy(2.5),
    rule("TUGS116", "redis-cloud-key", "Redis Cloud API key", High, &["redis"],
        keyed!("redis[\\w.\\-]{0,12}(?:api|secret)_?key", r"[A-Za-z0-9]{40,60}"),
        "REDISCLOUD_SECRET_KEY={{A50}}", "REDIS_HOST=cache"),
    // --- Email, SMS, observability, SaaS -----------------------------------------
    rule("TUGS117", "mailgun-api-key", "Mailgun API key", High, &["key-", "mailgun"],
        token!(r"key-[0-9a-f]{32}"),
        "MAILGUN_API_KEY=key-{{H32}}", "MAILGUN_API_KEY=key-{{H16}}"),
    rule("TUGS118", "mailchimp-api-key", "Mailchimp API key", High, &["-us"],
        token!(r"[0-9a-f]{32}-us\d{1,2}"),
        "MAILCHIMP_KEY={{H32}}-us14", "MAILCHIMP_KEY={{H16}}-us14"),
    rule("TUGS119", "brevo-api-key", "Brevo (Sendinblue) API key", High, &["xkeysib-"],
        token!(r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
        "BREVO_API_KEY=xkeysib-{{H64}}-{{A16}}", "BREVO_API_KEY=xkeysib-{{H20}}"),
    rule("TUGS120", "resend-api-key", "Resend API key", High, &["re_"],
        token!(r"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}"),
        "RESEND_API_KEY=re_{{A8}}_{{A24}}", "RESEND_API_KEY=re_{{A8}}"),
    rule("TUGS121", "postmark-token", "Postmark server token", High, &["postmark"],
        keyed!("postmark", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "POSTMARK_SERVER_TOKEN={{uuid}}", "POSTMARK_FROM=noreply@example.com"),
    rule("TUGS122", "twilio-auth-token", "Twilio auth token", High, &["twilio"],
        keyed!("twilio[\\w.\\-]{0,10}auth_?token", r"[0-9a-f]{32}"),
        "TWILIO_AUTH_TOKEN={{H32}}", "TWILIO_ACCOUNT_SID=AC"),
    rule("TUGS123", "datadog-api-key", "Datadog API or application key", High, &["datadog", "dd_api_key", "dd_app_key"],
        keyed!("(?:datadog|dd_ap[ip])", r"[a-f0-9]{32}|[a-f0-9]{40}"),
        "DD_API_KEY={{H32}}", "DD_SITE=datadoghq.eu"),
    rule("TUGS124", "new-relic-key", "New Relic key", High, &["nrak-", "nrjs-", "nrii-"],
        token!(r"NRAK-[A-Z0-9]{27}|NRJS-[a-f0-9]{19}|NRII-[A-Za-z0-9_\-]{32}"),
        "NEW_RELIC_API_KEY=NRAK-{{U27}}", "NEW_RELIC_API_KEY=NRAK-{{U10}}"),
    rule("TUGS125", "grafana-token", "Grafana token", High, &["glc_", "glsa_", "eyjrijoi"],
        token!(r"glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|eyJrIjoi[A-Za-z0-9]{70,400}={0,2}"),
        "GRAFANA_TOKEN=glsa_{{A32}}_{{H8}}", "GRAFANA_TOKEN=glsa_{{A10}}"),
    rule("TUGS126", "dynatrace-token", "Dynatrace API token", High, &["dt0c01."],
        token!(r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}"),
        "DT_API_TOKEN=dt0c01.{{U24}}.{{U64}}", "DT_API_TOKEN=dt0c01.{{U24}}"),
    rule("TUGS127", "sentry-token", "Sentry auth token", High, &["sntrys_", "sntryu_"],
        token!(r"sntrys_eyJ[A-Za-z0-9+/=_\-]{60,}|sntryu_[a-f0-9]{64}"),
        "SENTRY_AUTH_TOKEN=sntryu_{{H64}}", "SENTRY_AUTH_TOKEN=sntryu_{{H20}}"),
    rule("TUGS128", "honeycomb-key", "Honeycomb API key", High, &["honeycomb"],
        keyed!("honeycomb", r"hc[a-z]{2}[a-z]_[a-z0-9]{58}|[A-Za-z0-9]{22}|[a-f0-9]{32}"),
        "HONEYCOMB_API_KEY={{A22}}", "HONEYCOMB_DATASET=prod"),
    rule("TUGS129", "pagerduty-key", "PagerDuty API key", High, &["pagerduty"],
        keyed!("pagerduty", r"[A-Za-z0-9_+\-]{20}"),
        "PAGERDUTY_TOKEN=u+{{A18}}", "PAGERDUTY_SERVICE=web"),
    rule("TUGS130", "okta-token", "Okta API token", High, &["okta"],
        keyed!("okta", r"00[A-Za-z0-9_\-]{40}"),
        "OKTA_API_TOKEN=00{{b40}}", "OKTA_DOMAIN=acme.okta.com"),
    rule("TUGS131", "snyk-token", "Snyk API token", High, &["snyk"],
        keyed!("snyk", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "SNYK_TOKEN={{uuid}}", "SNYK_ORG=acme"),
    rule("TUGS132", "algolia-admin-key", "Algolia API key", High, &["algolia"],
        keyed!("algolia", r"[a-f0-9]{32}"),
        "ALGOLIA_ADMIN_KEY={{H32}}", "ALGOLIA_APP_ID=ABCDEF1234"),
    rule("TUGS133", "notion-token", "Notion integration token", High, &["secret_", "ntn_"],
        token!(r"secret_[A-Za-z0-9]{43}|ntn_\d{11}[A-Za-z0-9]{35}"),
        "NOTION_TOKEN=ntn_{{D11}}{{A35}}", "NOTION_TOKEN=ntn_{{D11}}"),
    rule("TUGS134", "airtable-pat", "Airtable personal access token", High, &["pat"],
        token!(r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
        "AIRTABLE_TOKEN=pat{{A14}}.{{H64}}", "AIRTABLE_TOKEN=pat{{A14}}"),
    rule("TUGS135", "linear-api-key", "Linear API key", High, &["lin_api_"],
        token!(r"lin_api_[A-Za-z0-9]{40}"),
        "LINEAR_API_KEY=lin_api_{{A40}}", "LINEAR_API_KEY=lin_api_{{A20}}"),
    rule("TUGS136", "figma-token", "Figma access token", High, &["figd_"],
        token!(r"figd_[A-Za-z0-9_\-]{40}"),
        "FIGMA_TOKEN=figd_{{b40}}", "FIGMA_TOKEN=figd_{{b20}}"),
    rule("TUGS137", "contentful-token", "Contentful personal access token", High, &["cfpat-"],
        token!(r"CFPAT-[A-Za-z0-9_\-]{43}"),
        "CONTENTFUL_TOKEN=CFPAT-{{b43}}", "CONTENTFUL_TOKEN=CFPAT-{{b10}}"),
    rule("TUGS138", "shippo-token", "Shippo API token", High, &["shippo_live_"],
        token!(r"shippo_live_[a-f0-9]{40}"),
        "SHIPPO_TOKEN=shippo_live_{{H40}}", "SHIPPO_TOKEN=shippo_test_{{H40}}"),
    rule("TUGS139", "typeform-token", "Typeform access token", High, &["tfp_"],
        token!(r"tfp_[A-Za-z0-9_\-.=]{59}"),
        "TYPEFORM_TOKEN=tfp_{{b59}}", "TYPEFORM_TOKEN=tfp_{{b20}}"),
    rule("TUGS140", "mapbox-secret-token", "Mapbox secret token", High, &["sk.eyj"],
        token!(r"sk\.eyJ[A-Za-z0-9_\-]{50,}\.[A-Za-z0-9_\-]{20,}"),
        "MAPBOX_TOKEN=sk.eyJ{{b60}}.{{b22}}", "MAPBOX_TOKEN=pk.eyJ{{b60}}.{{b22}}"),
    rule("TUGS141", "easypost-key", "EasyPost API key", High, &["ezak"],
        token!(r"EZAK[a-z0-9]{54}"),
        "EASYPOST_API_KEY=EZAK{{a54}}", "EASYPOST_API_KEY=EZAK{{a20}}"),
    rule("TUGS142", "duffel-token", "Duffel API token", High, &["duffel_live_"],
        token!(r"duffel_live_[A-Za-z0-9_\-=]{43}"),
        "DUFFEL_TOKEN=duffel_live_{{b43}}", "DUFFEL_TOKEN=duffel_test_{{b43}}"),
    rule("TUGS143", "prefect-key", "Prefect API key", High, &["pnu_"],
        token!(r"pnu_[A-Za-z0-9]{36}"),
        "PREFECT_API_KEY=pnu_{{A36}}", "PREFECT_API_KEY=pnu_{{A20}}"),
    rule("TUGS144", "readme-key", "ReadMe API key", High, &["rdme_"],
        token!(r"rdme_[a-z0-9]{70}"),
        "README_API_KEY=rdme_{{a70}}", "README_API_KEY=rdme_{{a20}}"),
    rule("TUGS145", "onepassword-service-token", "1Password service account token", Critical, &["ops_eyj"],
        token!(r"ops_eyJ[A-Za-z0-9+/]{250,}={0,3}"),
        "OP_SERVICE_ACCOUNT_TOKEN=ops_eyJ{{B260}}", "OP_SERVICE_ACCOUNT_TOKEN=ops_eyJ{{B20}}"),
    rule("TUGS146", "onepassword-secret-key", "1Password secret key", Critical, &["a3-"],
        token!(r"A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}"),
        "secret key: A3-{{U6}}-{{U11}}-{{U5}}-{{U5}}-{{U5}}", "secret key: A3-{{U6}}"),
    rule("TUGS147", "hubspot-token", "HubSpot private app token", High, &["pat-na1-", "pat-eu1-"],
        token!(r"pat-(?:na|eu)1-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "HUBSPOT_TOKEN=pat-na1-{{uuid}}", "HUBSPOT_TOKEN=pat-na1-example"),
    rule("TUGS148", "firebase-fcm-key", "Firebase Cloud Messaging server key", High, &["apa91b"],
        token!(r"AAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{134}"),
        "FCM_SERVER_KEY=AAAA{{b7}}:APA91b{{b134}}", "FCM_SERVER_KEY=AAAA{{b7}}:APA91b{{b20}}"),
    rule("TUGS149", "salesforce-token", "Salesforce access token", High, &["00d"],
        token!(r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9_.]{90,}"),
        "SF_ACCESS_TOKEN=00D{{A15}}!{{A96}}", "SF_ACCESS_TOKEN=00D{{A15}}!short"),
    rule("TUGS150", "putty-private-key", "PuTTY private key", Critical, &["putty-user-key-file-"],
        r"PuTTY-User-Key-File-\d: [^\n]+\n(?:[^\n]*\n){1,4}?Private-Lines: \d+\n([A-Za-z0-9+/=\n]{64,})",
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: k\nPublic-Lines: 2\n{{B64}}\nPrivate-Lines: 1\n{{B64}}\n",
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n").entropy(4.0),
    rule("TUGS151", "infracost-key", "Infracost API key", High, &["ico-"],
        token!(r"ico-[A-Za-z0-9]{32}"),
        "INFRACOST_API_KEY=ico-{{A32}}", "INFRACOST_API_KEY=ico-{{A10}}"),
    rule("TUGS152", "segment-token", "Segment public API token", High, &["sgp_"],
        token!(r"sgp_[A-Za-z0-9]{64}"),
        "SEGMENT_TOKEN=sgp_{{A64}}", "SEGMENT_TOKEN=sgp_{{A20}}"),
    rule("TUGS153", "frameio-token", "Frame.io API token", High, &["fio-u-"],
        token!(r"fio-u-[A-Za-z0-9\-_=]{64}"),
        "FRAMEIO_TOKEN=fio-u-{{b64}}", "FRAMEIO_TOKEN=fio-u-{{b20}}"),
    rule("TUGS154", "lob-key", "Lob live API key", High, &["live_"],
        keyed!("lob", r"live_[a-f0-9]{35}"),
        "LOB_API_KEY=live_{{H35}}", "LOB_API_KEY=test_{{H35}}"),
    rule("TUGS155", "zendesk-token", "Zendesk API token", High, &["zendesk"],
        keyed!("zendesk", r"[A-Za-z0-9]{40}"),
        "ZENDESK_API_TOKEN={{A40}}", "ZENDESK_SUBDOMAIN=acme"),
    rule("TUGS156", "intercom-token", "Intercom access token", High, &["intercom"],
        keyed!("intercom", r"[A-Za-z0-9=_\-]{60}"),
        "INTERCOM_ACCESS_TOKEN={{b60}}", "INTERCOM_APP_ID=abc"),
    rule("TUGS157", "asana-token", "Asana personal access token", High, &["asana"],
        keyed!("asana", r"[0-9]/[0-9]{13,16}(?::|/)[A-Za-z0-9]{32}"),
        "ASANA_TOKEN=1/{{D16}}:{{A32}}", "ASANA_WORKSPACE=12345"),
    rule("TUGS158", "dropbox-token", "Dropbox access token", High, &["sl."],
        token!(r"sl\.(?:u\.)?[A-Za-z0-9_\-]{130,}"),
        "DROPBOX_TOKEN=sl.u.{{b140}}", "DROPBOX_TOKEN=sl.{{b20}}"),
    rule("TUGS159", "ngrok-token", "ngrok auth token", High, &["ngrok"],
        keyed!("ngrok", r"[0-9A-Za-z]{27}_[0-9A-Za-z]{21}"),
        "NGROK_AUTHTOKEN={{A27}}_{{A21}}", "NGROK_REGION=eu"),
    rule("TUGS160", "launchdarkly-key", "LaunchDarkly SDK or API key", High, &["sdk-", "api-"],
        keyed!("launchdarkly", r"(?:sdk|api)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        "LAUNCHDARKLY_SDK_KEY=sdk-{{uuid}}", "LAUNCHDARKLY_ENV=prod"),
    rule("TUGS161", "confluent-secret", "Confluent Cloud API secret", High, &["confluent"],
        keyed!("confluent[\\w.\\-]{0,12}secret", r"[A-Za-z0-9+/]{64}"),
        "CONFLUENT_API_SECRET={{A64}}", "CONFLUENT_CLUSTER=lkc-1"),
    rule("TUGS162", "kubernetes-secret-data", "Credential in a Kubernetes Secret", Low, &["kind: secret"],
        r"(?m)^\s+[A-Za-z0-9_.\-]*(?i:password|passwd|token|secret|api[_-]?key|credentials?)[A-Za-z0-9_.\-]*:\s*['\x22]?([A-Za-z0-9+/]{8,}={0,2})['\x22]?\s*$",
        "kind: Secret\ndata:\n  db-password: {{pwb}}\n", "kind: Secret\ndata:\n  db-password: \"\"\n")
        .check(Check::Base64Text).entropy(2.5),
];

/// Fills the `{{…}}` slots of an example with deterministic text: `{{A36}}`
/// letters and digits, `{{a}}` lower-case alnum, `{{U}}` upper-case alnum,
/// `{{H}}` hex, `{{B}}` base64, `{{b}}` base64url, `{{D}}` digits, `{{M}}`
/// letters, `{{W}}` base32 (A-Z2-7), `{{G30}}` 30 letters and digits plus a
/// GitHub-style CRC32, `{{uuid}}`, `{{SG}}` a SendGrid key, `{{basic}}`
/// base64 of `user:password`, `{{pwb}}` base64 of a password, `{{age58}}`
/// bech32 text.
pub fn example(template: &str, seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut pick = |alphabet: &str, n: usize| -> String {
        let a = alphabet.as_bytes();
        (0..n)
            .map(|_| a[(next() % a.len() as u64) as usize] as char)
            .collect()
    };
    const UP: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const LO: &str = "abcdefghijklmnopqrstuvwxyz";
    const DIG: &str = "0123456789";
    let alnum = format!("{UP}{LO}{DIG}");
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let slot = &rest[start + 2..start + end];
        rest = &rest[start + end + 2..];
        let (kind, n) = slot.split_at(
            slot.find(|c: char| c.is_ascii_digit())
                .unwrap_or(slot.len()),
        );
        let n: usize = n.parse().unwrap_or(0);
        let text = match kind {
            "A" => pick(&alnum, n),
            "a" => pick(&format!("{LO}{DIG}"), n),
            "U" => pick(&format!("{UP}{DIG}"), n),
            "H" => pick("0123456789abcdef", n),
            "B" => pick(&format!("{alnum}+/"), n),
            "b" => pick(&format!("{alnum}-_"), n),
            "D" => pick(DIG, n),
            "M" => pick(&format!("{UP}{LO}"), n),
            "W" => pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n),
            "age" => pick("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", n),
            "G" => {
                let body = pick(&alnum, n);
                let sum = super::crc32_base62(&body);
                format!("{body}{sum}")
            }
            "uuid" => {
                let h = pick("0123456789abcdef", 32);
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
            "SG" => format!("SG.{}.{}", pick(&alnum, 22), pick(&alnum, 43)),
            "basic" => {
                use base64::Engine;
                let creds = format!("ci-bot:{}", pick(&alnum, 20));
                base64::engine::general_purpose::STANDARD.encode(creds)
            }
            "pwb" => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(pick(&alnum, 18))
            }
            _ => String::new(),
        };
        out.push_str(&text);
    }
    out.push_str(rest);
    out
}
