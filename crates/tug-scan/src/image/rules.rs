//! Checks of an image's configuration and file modes, as a static registry:
//! each rule with an example that fires and one that does not.

use crate::finding::Severity;

pub struct ImageRule {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub fix: &'static str,
}

pub const ROOT_USER: &str = "IMG001";
pub const NO_HEALTHCHECK: &str = "IMG002";
pub const SECRET_IN_ENV: &str = "IMG003";
pub const SECRET_IN_LABEL: &str = "IMG004";
pub const WORLD_WRITABLE: &str = "IMG005";
pub const SETUID: &str = "IMG006";

pub static RULES: &[ImageRule] = &[
    ImageRule {
        id: ROOT_USER,
        severity: Severity::High,
        title: "image runs as root",
        fix: "set a non-root USER (e.g. `USER 10001:10001`), or `security.user` in tug.yaml",
    },
    ImageRule {
        id: NO_HEALTHCHECK,
        severity: Severity::Low,
        title: "image exposes a port but has no HEALTHCHECK",
        fix: "add a HEALTHCHECK, or a `health:` check for the service in tug.yaml",
    },
    ImageRule {
        id: SECRET_IN_ENV,
        severity: Severity::Critical,
        title: "secret in the image environment",
        fix: "pass secrets at run time (`env` from a secret store), never bake them into ENV",
    },
    ImageRule {
        id: SECRET_IN_LABEL,
        severity: Severity::Critical,
        title: "secret in an image label",
        fix: "remove the secret from the label and rotate it: labels are readable by anyone who can pull",
    },
    ImageRule {
        id: WORLD_WRITABLE,
        severity: Severity::Medium,
        title: "world-writable file or directory",
        fix: "drop the o+w bit (`chmod o-w`), or make a shared directory sticky (`chmod +t`)",
    },
    ImageRule {
        id: SETUID,
        severity: Severity::Medium,
        title: "setuid or setgid binary",
        fix: "remove the setuid/setgid bit (`chmod u-s,g-s`) unless the image truly needs it",
    },
];

pub fn rule(id: &str) -> &'static ImageRule {
    RULES
        .iter()
        .find(|r| r.id == id)
        .expect("image rule ids are constants of this module")
}

/// Whether `User` in an image config means root (empty is root too).
pub fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("").trim();
    name.is_empty() || name == "root" || name == "0"
}

/// World-writable, and not a sticky directory (like /tmp).
pub fn is_world_writable(mode: u32, is_dir: bool) -> bool {
    mode & 0o002 != 0 && !(is_dir && mode & 0o1000 != 0)
}

pub fn is_setuid(mode: u32) -> bool {
    mode & 0o6000 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_registered_once() {
        let ids = [
            ROOT_USER,
            NO_HEALTHCHECK,
            SECRET_IN_ENV,
            SECRET_IN_LABEL,
            WORLD_WRITABLE,
            SETUID,
        ];
        for id in ids {
            assert_eq!(RULES.iter().filter(|r| r.id == id).count(), 1, "{id}");
        }
        assert_eq!(RULES.len(), ids.len());
    }

    #[test]
    fn predicates_fire_and_pass() {
        for root in ["", "root", "0", "0:0", "root:wheel"] {
            assert!(is_root_user(root), "{root:?}");
        }
        for user in ["10001", "10001:10001", "app", "app:app"] {
            assert!(!is_root_user(user), "{user:?}");
        }
        assert!(is_world_writable(0o666, false));
        assert!(is_world_writable(0o777, true));
        assert!(!is_world_writable(0o1777, true));
        assert!(!is_world_writable(0o755, false));
        assert!(is_setuid(0o4755) && is_setuid(0o2755));
        assert!(!is_setuid(0o755));
    }
}
