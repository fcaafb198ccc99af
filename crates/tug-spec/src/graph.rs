//! Cycles in the name graphs of a stack (`depends_on`, `needs`).

use std::collections::BTreeMap;

/// Every cycle of `graph`, each once, as the path that closes it
/// (`a -> b -> a`): an iterative colouring DFS in name order. Edges to
/// names not in the graph are ignored (they are reported elsewhere).
pub(crate) fn cycles<'a, V, I>(
    graph: &'a BTreeMap<String, V>,
    edges: impl Fn(&'a V) -> I,
) -> Vec<Vec<&'a str>>
where
    I: Iterator<Item = &'a String>,
{
    #[derive(Clone, Copy, PartialEq)]
    enum C {
        White,
        Grey,
        Black,
    }
    let mut found = Vec::new();
    let mut colour: BTreeMap<&str, C> = graph.keys().map(|k| (k.as_str(), C::White)).collect();
    for start in graph.keys() {
        if colour[start.as_str()] != C::White {
            continue;
        }
        let mut path: Vec<&str> = vec![start];
        let mut iters = vec![edges(&graph[start])];
        colour.insert(start, C::Grey);
        while let Some(it) = iters.last_mut() {
            match it.next() {
                Some(next) => match colour.get(next.as_str()).copied() {
                    Some(C::White) => {
                        colour.insert(next, C::Grey);
                        path.push(next);
                        iters.push(edges(&graph[next]));
                    }
                    Some(C::Grey) => {
                        let from = path.iter().position(|p| *p == next).unwrap_or(0);
                        let mut names: Vec<&str> = path[from..].to_vec();
                        names.push(next);
                        found.push(names);
                    }
                    _ => {}
                },
                None => {
                    iters.pop();
                    if let Some(done) = path.pop() {
                        colour.insert(done, C::Black);
                    }
                }
            }
        }
    }
    found
}
