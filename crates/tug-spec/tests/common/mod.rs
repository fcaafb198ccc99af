//! Readers the tug-spec test binaries share.

use tug_spec::FileMount;

/// Each mount as `(target, uid, gid, mode)`, in order.
pub fn owner_and_mode(mounts: &[FileMount]) -> Vec<(&str, Option<u32>, Option<u32>, Option<u32>)> {
    mounts
        .iter()
        .map(|f| (f.target.as_str(), f.uid, f.gid, f.mode))
        .collect()
}
