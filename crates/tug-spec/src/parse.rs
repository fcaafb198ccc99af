//! Reading tug.yaml: YAML → model, then resolution and validation.

use crate::model::*;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a file, located at `file:line:col` (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one pass, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Reads and resolves the stack file at `path`.
pub fn load(path: &Path) -> Result<Stack, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("cannot read file: {e}"),
            hint: None,
        }])
    })?;
    parse_str(&text, path)
}

/// Parses `text` as if read from `file` (used in messages and to resolve relative paths).
pub fn parse_str(text: &str, file: &Path) -> Result<Stack, SpecErrors> {
    let err = |line: usize, col: usize, message: String| SpecError {
        file: file.to_path_buf(),
        line,
        col,
        message,
        hint: None,
    };
    let mut stack: Stack = serde_yaml_ng::from_str(text).map_err(|e| {
        let (l, c) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        SpecErrors(vec![err(l, c, e.to_string())])
    })?;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    stack.file = file.to_path_buf();
    let mut errors = Vec::new();
    for (name, svc) in stack.services.iter_mut() {
        for m in svc.volumes.iter_mut() {
            if let MountSource::Bind(p) = &mut m.source {
                *p = dir.join(&*p);
            }
        }
        if let Some(b) = &mut svc.build {
            if let Some(c) = &mut b.context {
                *c = dir.join(&*c);
            }
        }
        for f in &svc.env_file {
            let path = dir.join(f);
            match std::fs::read_to_string(&path) {
                Ok(t) => {
                    for line in t.lines() {
                        let line = line.trim();
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        if let Some((k, v)) = line.split_once('=') {
                            svc.env
                                .entry(k.trim().to_string())
                                .or_insert_with(|| v.to_string());
                        }
                    }
                }
                Err(e) => errors.push(err(
                    1,
                    1,
                    format!("service `{name}`: env_file {}: {e}", path.display()),
                )),
            }
        }
        for dep in svc.depends_on.keys() {
            if dep == name {
                errors.push(err(1, 1, format!("service `{name}` depends on itself")));
            }
        }
    }
    let names: Vec<String> = stack.services.keys().cloned().collect();
    for (name, svc) in &stack.services {
        for dep in svc.depends_on.keys() {
            if !names.contains(dep) {
                errors.push(err(
                    1,
                    1,
                    format!("service `{name}` depends on unknown service `{dep}`"),
                ));
            }
        }
    }
    stack.dir = dir;
    if errors.is_empty() {
        Ok(stack)
    } else {
        Err(SpecErrors(errors))
    }
}
