//! A container user as numeric ids, the way the engine resolves it when
//! the container starts: `uid`, `uid:gid`, `name`, `name:group`, names
//! looked up in the image's /etc/passwd and /etc/group. tug needs the ids
//! before any container runs, to own what it writes for the service
//! (volume roots, secrets), so it reads those two files from the image.

/// Why a user or group name has no id in the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("the image has no /etc/passwd to look `{0}` up in")]
    NoPasswd(String),
    #[error("no user `{0}` in the image's /etc/passwd")]
    NoUser(String),
    #[error("the image has no /etc/group to look `{0}` up in")]
    NoGroupFile(String),
    #[error("no group `{0}` in the image's /etc/group")]
    NoGroup(String),
}

/// `uid` or `uid:gid`, all numeric; `None` when a part is a name. A lone
/// uid's group is the uid (what tug writes is then the user's own).
pub fn numeric(user: &str) -> Option<(u32, u32)> {
    let (u, g) = user.split_once(':').unwrap_or((user, user));
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// Resolves `user` with the image's /etc/passwd and /etc/group (when it
/// has them). A name's group defaults to its primary group in passwd.
pub fn resolve(
    user: &str,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<(u32, u32), UserError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(uid) => (uid, uid),
        Err(_) => {
            let passwd = passwd.ok_or_else(|| UserError::NoPasswd(u.to_string()))?;
            lookup(passwd, u)
                .and_then(|f| Some((f.first()?.parse().ok()?, f.get(1)?.parse().ok()?)))
                .ok_or_else(|| UserError::NoUser(u.to_string()))?
        }
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let group = group.ok_or_else(|| UserError::NoGroupFile(g.to_string()))?;
                lookup(group, g)
                    .and_then(|f| f.first()?.parse().ok())
                    .ok_or_else(|| UserError::NoGroup(g.to_string()))?
            }
        },
    };
    Ok((uid, gid))
}

/// The fields after the password of the line of `file` (passwd or group
/// format: `name:x:id:...`) whose name is `name`.
fn lookup<'a>(file: &'a [u8], name: &str) -> Option<Vec<&'a str>> {
    std::str::from_utf8(file).ok()?.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then(|| f.skip(1).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n# a comment\napp:x:1001:1002::/home/app:/bin/sh\nbroken:x:nope:1\n";
    const GROUP: &[u8] = b"root:x:0:\napp:x:1002:\nshared:x:1500:app\n";

    #[test]
    fn names_are_resolved_from_passwd_and_group() {
        let r = |u| resolve(u, Some(PASSWD), Some(GROUP));
        assert_eq!(r("app"), Ok((1001, 1002)));
        assert_eq!(r("app:shared"), Ok((1001, 1500)));
        assert_eq!(r("app:7"), Ok((1001, 7)));
        assert_eq!(r("1001:shared"), Ok((1001, 1500)));
        assert_eq!(r("2000"), Ok((2000, 2000)));
        assert_eq!(r("root"), Ok((0, 0)));
    }

    #[test]
    fn what_cannot_be_resolved_says_why() {
        let r = |u| resolve(u, Some(PASSWD), Some(GROUP));
        assert_eq!(r("nobody"), Err(UserError::NoUser("nobody".into())));
        assert_eq!(r("broken"), Err(UserError::NoUser("broken".into())));
        assert_eq!(r("app:wheel"), Err(UserError::NoGroup("wheel".into())));
        assert_eq!(
            resolve("app", None, None),
            Err(UserError::NoPasswd("app".into()))
        );
        assert_eq!(
            resolve("app:staff", Some(PASSWD), None),
            Err(UserError::NoGroupFile("staff".into()))
        );
        assert_eq!(
            UserError::NoUser("nobody".into()).to_string(),
            "no user `nobody` in the image's /etc/passwd"
        );
    }

    #[test]
    fn numeric_users_need_no_files() {
        assert_eq!(numeric("10001"), Some((10001, 10001)));
        assert_eq!(numeric("10001:20"), Some((10001, 20)));
        assert_eq!(numeric("app"), None);
        assert_eq!(numeric("10001:staff"), None);
    }
}
