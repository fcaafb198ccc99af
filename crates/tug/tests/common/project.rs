//! A project in a temp dir with its own state directory, for the pipeline
//! tests: runs tug there, lists its runs and its pipelines' containers.

use super::tug;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The head of the `deploy` workflows the `--from` tests run: dispatched
/// with an input `wait` (seconds a step sleeps). Their `concurrency:` and
/// `jobs:` follow it.
pub const DEPLOY_ON_DISPATCH: &str = r#"name: deploy
on:
  workflow_dispatch:
    inputs:
      wait: { default: "0" }
"#;

pub struct Project {
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl Project {
    /// tug.yaml is `name: <prefix><pid>` followed by `rest`.
    pub fn new(prefix: &str, rest: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("{prefix}{}", std::process::id());
        std::fs::write(dir.path().join("tug.yaml"), format!("name: {name}\n{rest}")).unwrap();
        Project { dir, name }
    }
    /// tug.yaml with `pipelines:` then `pipelines` (indented by the caller).
    pub fn with_pipelines(prefix: &str, pipelines: &str) -> Project {
        Project::new(prefix, &format!("pipelines:\n{pipelines}"))
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn state(&self) -> PathBuf {
        self.path().join("..").join(format!("{}-state", self.name))
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = tug();
        c.current_dir(self.path())
            .env("TUG_STATE_DIR", self.state())
            .env("NO_COLOR", "1")
            .args(args);
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// Started in the background: stderr in `log`, stdout in `log.out`.
    pub fn spawn(&self, args: &[&str], log: &str) -> (Child, PathBuf) {
        let err = self.path().join(log);
        let child = self
            .cmd(args)
            .stdout(std::fs::File::create(self.path().join(format!("{log}.out"))).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        (child, err)
    }
    /// The containers of this stack's pipeline `pipeline`.
    pub fn containers(&self, pipeline: &str) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-a", "-q", "--filter"])
            .arg(format!("label=dev.tug.pipeline={}/{pipeline}", self.name))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
    /// `tug pipeline runs -o json`, newest first.
    pub fn runs(&self) -> serde_json::Value {
        let out = self.run(&["pipeline", "runs", "-o", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Project {
    /// Removes what its pipelines left (of any pipeline of this stack) and
    /// the state directory.
    fn drop(&mut self) {
        let listed = Command::new("docker")
            .args(["ps", "-a", "--filter", "label=dev.tug.pipeline"])
            .args(["--format", "{{.ID}} {{.Label \"dev.tug.pipeline\"}}"])
            .output();
        if let Ok(out) = listed {
            let mine = format!("{}/", self.name);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((id, p)) = line.split_once(' ') {
                    if p.starts_with(&mine) {
                        let _ = Command::new("docker").args(["rm", "-f", id]).output();
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(self.state());
    }
}
