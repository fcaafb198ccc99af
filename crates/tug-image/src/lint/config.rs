//! `.tug-lint.yaml` (and hadolint's `.hadolint.yaml`, whose keys it shares).

use super::Severity;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Linter configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Rule IDs never reported.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// Severity changes per rule.
    #[serde(default, rename = "override")]
    pub overrides: Overrides,
    /// Registries FROM may pull from (DL3026); empty allows all.
    #[serde(default, alias = "trusted-registries")]
    pub trusted_registries: Vec<String>,
    /// Default for `--failure-threshold` (hadolint's key).
    #[serde(default, alias = "failure-threshold")]
    pub failure_threshold: Option<String>,
    /// Labels the final image must carry, with the type of their value
    /// (`text`, `url`, `hash`, `rfc3339`, `semver`, `email`, `spdx`).
    #[serde(default, rename = "label-schema", alias = "labelSchema")]
    pub label_schema: std::collections::BTreeMap<String, LabelType>,
    /// Labels outside `label-schema` are reported (DL3050).
    #[serde(default, rename = "strict-labels", alias = "strictLabels")]
    pub strict_labels: bool,
    /// Also run the rules outside hadolint's defaults (`tug lint --strict`).
    #[serde(default)]
    pub strict: bool,
}

/// The type of a label's value in `label-schema`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelType {
    Text,
    Url,
    Hash,
    Rfc3339,
    Semver,
    Email,
    Spdx,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Overrides {
    #[serde(default)]
    pub error: Vec<String>,
    #[serde(default)]
    pub warning: Vec<String>,
    #[serde(default)]
    pub info: Vec<String>,
    #[serde(default)]
    pub style: Vec<String>,
}

/// A configuration file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
}

/// File names looked for in a directory, in order.
pub const CONFIG_FILES: [&str; 4] = [
    ".tug-lint.yaml",
    ".tug-lint.yml",
    ".hadolint.yaml",
    ".hadolint.yml",
];

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                col,
                message: e.to_string(),
            }
        })?;
        if let Some(t) = &config.failure_threshold {
            if t != "none" && Severity::parse(t).is_none() {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line: 1,
                    col: 1,
                    message: format!(
                        "failure-threshold `{t}`: expected error, warning, info, style or none"
                    ),
                });
            }
        }
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// The first config file found in `dir`.
    pub fn find(dir: &Path) -> Option<PathBuf> {
        CONFIG_FILES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    }

    pub fn is_ignored(&self, id: &str) -> bool {
        self.ignored.iter().any(|x| x.eq_ignore_ascii_case(id))
    }

    pub fn severity_of(&self, id: &str) -> Option<Severity> {
        let o = &self.overrides;
        [
            (&o.error, Severity::Error),
            (&o.warning, Severity::Warning),
            (&o.info, Severity::Info),
            (&o.style, Severity::Style),
        ]
        .into_iter()
        .find(|(ids, _)| ids.iter().any(|x| x.eq_ignore_ascii_case(id)))
        .map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tug_and_hadolint_keys() {
        let c = Config::parse(
            "ignored: [DL3008]\noverride:\n  error: [DL3015]\ntrustedRegistries: [docker.io, 'localhost:5000']\nfailure-threshold: warning\nlabel-schema: {}\n",
            Path::new("x.yaml"),
        )
        .unwrap();
        assert!(c.is_ignored("dl3008"));
        assert_eq!(c.severity_of("DL3015"), Some(Severity::Error));
        assert_eq!(c.trusted_registries.len(), 2);
        assert_eq!(c.failure_threshold.as_deref(), Some("warning"));
    }

    #[test]
    fn bad_yaml_has_a_position() {
        let e = Config::parse("ignored: [DL3008\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("c.yaml:"), "{e}");
        let e = Config::parse("ignored: 3\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.to_string().contains("c.yaml:1:"), "{e}");
    }
}
