//! Helpers for tests that need a real engine.

use crate::docker::DockerRuntime;
use crate::{BuildRequest, Runtime};
use std::collections::BTreeMap;

/// Connects to the engine, or explains loudly why the calling test is skipped.
/// With `TUG_REQUIRE_ENGINE=1` a missing engine is a failure instead.
pub async fn engine_or_skip(test: &str) -> Option<DockerRuntime> {
    match DockerRuntime::connect().await {
        Ok(rt) => Some(rt),
        Err(e) if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") => {
            panic!("{test}: TUG_REQUIRE_ENGINE=1 but {e}")
        }
        Err(e) => {
            eprintln!("\n!!! SKIPPED {test}: {e}\n!!! run scripts/engine.sh to start one\n");
            None
        }
    }
}

/// Connects to the Podman API socket named by `TUG_PODMAN_HOST` (set up by
/// scripts/podman.sh), or explains loudly why the calling test is skipped.
/// With `TUG_REQUIRE_ENGINE=1`, a set but silent socket is a failure, and so
/// is an engine there that is not Podman.
pub async fn podman_or_skip(test: &str) -> Option<DockerRuntime> {
    let required = std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1");
    let Some(addr) = std::env::var("TUG_PODMAN_HOST")
        .ok()
        .filter(|a| !a.is_empty())
    else {
        eprintln!(
            "\n!!! SKIPPED {test}: TUG_PODMAN_HOST is not set\n!!! run `export TUG_PODMAN_HOST=$(bash scripts/podman.sh)`\n"
        );
        return None;
    };
    match DockerRuntime::connect_to(&addr).await {
        Ok(rt) if rt.engine().name == "podman" => Some(rt),
        Ok(rt) => panic!(
            "{test}: TUG_PODMAN_HOST={addr} is {}, not Podman",
            rt.engine()
        ),
        Err(e) if required => panic!("{test}: TUG_REQUIRE_ENGINE=1 but {e}"),
        Err(e) => {
            eprintln!("\n!!! SKIPPED {test}: {e}\n!!! run scripts/podman.sh to start it\n");
            None
        }
    }
}

/// A tar archive of `files` (path, mode, contents).
pub fn tar_of(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, mode, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, *data).expect("in-memory tar");
    }
    b.into_inner().expect("in-memory tar")
}

/// `tug-test/busybox:1`: Debian's static busybox in a scratch image, built once.
pub async fn busybox_image(rt: &DockerRuntime) -> String {
    let tag = "tug-test/busybox:1".to_string();
    if rt
        .inspect_image(&tag)
        .await
        .expect("inspect image")
        .is_some()
    {
        return tag;
    }
    let busybox = std::fs::read("/bin/busybox").expect(
        "/bin/busybox is missing: install Debian's busybox-static (scripts/engine.sh does)",
    );
    let dockerfile =
        b"FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n";
    let context = tar_of(&[
        ("Dockerfile", 0o644, dockerfile),
        ("busybox", 0o755, &busybox),
    ]);
    let req = BuildRequest {
        tag: tag.clone(),
        context_tar: context,
        dockerfile: "Dockerfile".into(),
        args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
    };
    rt.build_image(req, &|_| {})
        .await
        .expect("build busybox test image");
    tag
}
