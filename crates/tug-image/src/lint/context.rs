//! Facts about the build context that some rules need (TUG004).

use std::path::Path;

/// What the linter knows about the directory the Dockerfile is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextFacts {
    /// Whether the context was looked at at all (not for stdin).
    pub scanned: bool,
    pub has_dockerignore: bool,
    /// Why the context is large, when it is.
    pub large: Option<String>,
}

/// Above this many bytes a context without .dockerignore is reported.
pub const LARGE_CONTEXT: u64 = 10 * 1024 * 1024;

impl ContextFacts {
    /// Looks at the directory holding `dockerfile`. Stops counting as soon as
    /// the context is known to be large.
    pub fn scan(dockerfile: &Path) -> ContextFacts {
        let dir = match dockerfile.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let mut own_ignore = dockerfile.as_os_str().to_os_string();
        own_ignore.push(".dockerignore");
        let has_dockerignore =
            dir.join(".dockerignore").is_file() || Path::new(&own_ignore).is_file();
        let large = if dir.join("target").is_dir() {
            Some("it has a target/ directory".to_string())
        } else {
            let mut total = 0u64;
            let mut stack = vec![dir.clone()];
            let mut seen = 0usize;
            while let Some(d) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in entries.flatten() {
                    seen += 1;
                    let Ok(ft) = e.file_type() else { continue };
                    if ft.is_dir() {
                        stack.push(e.path());
                    } else if ft.is_file() {
                        total += e.metadata().map(|m| m.len()).unwrap_or(0);
                    }
                }
                if total > LARGE_CONTEXT || seen > 200_000 {
                    break;
                }
            }
            (total > LARGE_CONTEXT)
                .then(|| format!("it holds more than {} MB", LARGE_CONTEXT / (1024 * 1024)))
        };
        ContextFacts {
            scanned: true,
            has_dockerignore,
            large,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_real_directories() {
        let dir = tempfile::tempdir().unwrap();
        let df = dir.path().join("Dockerfile");
        std::fs::write(&df, "FROM scratch\n").unwrap();
        let f = ContextFacts::scan(&df);
        assert!(f.scanned && !f.has_dockerignore && f.large.is_none());
        std::fs::create_dir(dir.path().join("target")).unwrap();
        assert!(ContextFacts::scan(&df).large.is_some());
        std::fs::remove_dir(dir.path().join("target")).unwrap();
        std::fs::write(
            dir.path().join("big.bin"),
            vec![0u8; (LARGE_CONTEXT + 1) as usize],
        )
        .unwrap();
        assert!(ContextFacts::scan(&df).large.is_some());
        std::fs::write(dir.path().join(".dockerignore"), "big.bin\n").unwrap();
        assert!(ContextFacts::scan(&df).has_dockerignore);
    }
}
