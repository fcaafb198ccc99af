//! Positions of keys in a stack file, for consumers of the resolved model
//! (the Kubernetes renderer) that must report a problem at `file:line:col`.

use crate::yaml::{self, Node};

/// 1-based `(line, col)` of the key at `path` (e.g. `["services", "web",
/// "publish"]`) in `text`, or of its deepest ancestor present in the file
/// (a defaulted field points at its service). Numeric segments index lists.
pub fn locate(text: &str, path: &[&str]) -> (usize, usize) {
    let Ok((Some(root), _)) = yaml::parse(text) else {
        return (1, 1);
    };
    let mut at = (root.line, root.col);
    let mut node: &Node = &root;
    for seg in path {
        if let Some(items) = node.as_seq() {
            match seg.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(n) => {
                    at = (n.line, n.col);
                    node = n;
                }
                None => break,
            }
            continue;
        }
        let Some((k, v)) = node
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.scalar() == Some(seg)))
        else {
            break;
        };
        at = (k.line, k.col);
        node = v;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn finds_keys_and_falls_back_to_the_deepest_ancestor() {
        let t = "name: s\nservices:\n  web:\n    image: x:1\n    volumes:\n      - /a:/b\n";
        assert_eq!(locate(t, &["services", "web", "image"]), (4, 5));
        assert_eq!(locate(t, &["services", "web", "resources", "pids"]), (3, 3));
        assert_eq!(locate(t, &["services", "web", "volumes", "0"]), (6, 9));
        assert_eq!(locate("", &["services"]), (1, 1));
    }
}
