//! From a pipeline to the units that run: matrix jobs expanded, the jobs a
//! user asked for selected with everything they need, in dependency order.
//! Pure: no I/O.

use crate::model::{Job, Pipeline};
use std::collections::{BTreeMap, BTreeSet};

/// One job instance: a job, or one combination of a matrix job.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// `test` or `test (stable, linux)`.
    pub name: String,
    pub job: String,
    /// The matrix combination (empty for a plain job).
    pub matrix: BTreeMap<String, String>,
    /// Indices of the units this one waits for.
    pub needs: Vec<usize>,
}

impl Unit {
    /// A name safe for files and container names: `test-stable-linux`.
    pub fn slug(&self) -> String {
        let mut s = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                s.push(c);
            } else if !s.ends_with('-') {
                s.push('-');
            }
        }
        s.trim_matches('-').to_string()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("no job `{0}` in this pipeline")]
    UnknownJob(String, Vec<String>),
    #[error("the jobs' `needs` form a cycle")]
    Cycle,
}

/// Units of `pipeline` in dependency order; with `only`, just those jobs and
/// what they need (transitively).
pub fn plan(pipeline: &Pipeline, only: &[String]) -> Result<Vec<Unit>, PlanError> {
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    if only.is_empty() {
        wanted.extend(pipeline.jobs.keys().map(String::as_str));
    } else {
        let mut stack: Vec<&str> = Vec::new();
        for j in only {
            if !pipeline.jobs.contains_key(j) {
                return Err(PlanError::UnknownJob(
                    j.clone(),
                    pipeline.jobs.keys().cloned().collect(),
                ));
            }
            stack.push(j);
        }
        while let Some(j) = stack.pop() {
            if wanted.insert(j) {
                if let Some(job) = pipeline.jobs.get(j) {
                    stack.extend(job.needs.iter().map(String::as_str));
                }
            }
        }
    }
    let order = topo(pipeline, &wanted)?;
    let mut units: Vec<Unit> = Vec::new();
    let mut of_job: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for name in order {
        let job = &pipeline.jobs[name];
        let needs: Vec<usize> = job
            .needs
            .iter()
            .flat_map(|n| of_job.get(n.as_str()).cloned().unwrap_or_default())
            .collect();
        let mut ids = Vec::new();
        for combo in combinations(job) {
            ids.push(units.len());
            units.push(Unit {
                name: unit_name(name, job, &combo),
                job: name.to_string(),
                matrix: combo,
                needs: needs.clone(),
            });
        }
        of_job.insert(name, ids);
    }
    Ok(units)
}

fn combinations(job: &Job) -> Vec<BTreeMap<String, String>> {
    match &job.matrix {
        Some(m) => m.combinations(),
        None => vec![BTreeMap::new()],
    }
}

fn unit_name(job: &str, def: &Job, combo: &BTreeMap<String, String>) -> String {
    if combo.is_empty() {
        return job.to_string();
    }
    // Axis order first, then keys only an `include` brings.
    let mut vals: Vec<&str> = Vec::new();
    if let Some(m) = &def.matrix {
        for axis in m.axes.keys() {
            if let Some(v) = combo.get(axis) {
                vals.push(v);
            }
        }
        for (k, v) in combo {
            if !m.axes.contains_key(k) {
                vals.push(v);
            }
        }
    }
    format!("{job} ({})", vals.join(", "))
}

/// Kahn's algorithm in name order, so the order is stable.
fn topo<'p>(pipeline: &'p Pipeline, wanted: &BTreeSet<&'p str>) -> Result<Vec<&'p str>, PlanError> {
    let mut indeg: BTreeMap<&str, usize> = wanted.iter().map(|j| (*j, 0)).collect();
    for j in wanted {
        for n in &pipeline.jobs[*j].needs {
            if wanted.contains(n.as_str()) {
                *indeg.entry(j).or_default() += 1;
            }
        }
    }
    let mut ready: BTreeSet<&str> = indeg
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(j, _)| *j)
        .collect();
    let mut out = Vec::new();
    while let Some(j) = ready.pop_first() {
        out.push(j);
        for k in wanted {
            if pipeline.jobs[*k].needs.iter().any(|n| n == j) {
                let d = indeg.entry(k).or_default();
                *d -= 1;
                if *d == 0 {
                    ready.insert(k);
                }
            }
        }
    }
    if out.len() != wanted.len() {
        return Err(PlanError::Cycle);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Matrix;

    fn job(needs: &[&str]) -> Job {
        Job {
            needs: needs.iter().map(|s| s.to_string()).collect(),
            ..Job::default()
        }
    }

    fn pipeline(jobs: Vec<(&str, Job)>) -> Pipeline {
        Pipeline {
            jobs: jobs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ..Pipeline::default()
        }
    }

    #[test]
    fn matrix_expands_and_dependents_wait_for_every_combination() {
        let mut test = job(&["lint"]);
        test.matrix = Some(Matrix {
            axes: [("rust".to_string(), vec!["stable".into(), "beta".into()])].into(),
            ..Matrix::default()
        });
        let p = pipeline(vec![
            ("lint", job(&[])),
            ("test", test),
            ("ship", job(&["test"])),
        ]);
        let u = plan(&p, &[]).unwrap();
        let names: Vec<&str> = u.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["lint", "test (stable)", "test (beta)", "ship"]);
        assert_eq!(u[1].needs, [0]);
        assert_eq!(u[3].needs, [1, 2]);
        assert_eq!(u[1].slug(), "test-stable");
        assert_eq!(u[1].matrix["rust"], "stable");
    }

    #[test]
    fn only_selects_what_a_job_needs() {
        let p = pipeline(vec![
            ("a", job(&[])),
            ("b", job(&["a"])),
            ("c", job(&["b"])),
            ("d", job(&[])),
        ]);
        let u = plan(&p, &["b".into()]).unwrap();
        let names: Vec<&str> = u.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(matches!(
            plan(&p, &["x".into()]),
            Err(PlanError::UnknownJob(j, _)) if j == "x"
        ));
    }

    #[test]
    fn a_cycle_is_an_error_not_a_hang() {
        let p = pipeline(vec![("a", job(&["b"])), ("b", job(&["a"]))]);
        assert_eq!(plan(&p, &[]), Err(PlanError::Cycle));
    }
}
