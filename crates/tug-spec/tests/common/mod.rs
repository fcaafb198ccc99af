//! Readers the tug-spec test binaries share.

use tug_spec::FileMount;

/// A mount as `(target, uid, gid, mode)`.
pub type OwnerAndMode<'a> = (&'a str, Option<u32>, Option<u32>, Option<u32>);

/// Each mount's [`OwnerAndMode`], in order.
pub fn owner_and_mode(mounts: &[FileMount]) -> Vec<OwnerAndMode<'_>> {
    mounts
        .iter()
        .map(|f| (f.target.as_str(), f.uid, f.gid, f.mode))
        .collect()
}
