//! `plan(desired, observed) -> Plan`: the rules, with no I/O.
//!
//! A replica is identified by (service, replica index) and is current when
//! its config hash matches the desired one. Everything else is derived:
//! missing replicas are created, stopped current ones started, outdated ones
//! replaced, extra ones and orphans removed, duplicates collapsed.
//!
//! A service idling at zero (`keep_idle`) keeps its current replica 0
//! stopped instead of removed, so a wake only starts it; an outdated one
//! is removed (the wake creates it anew).

use std::collections::BTreeMap;
use tug_runtime::ContainerState;

/// What one service should look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredService {
    pub hash: String,
    pub replicas: u32,
    /// A one-shot service (restart: no): exited with 0 counts as done.
    pub completes: bool,
    /// Scales to zero (`autoscale: { min: 0 }`): at zero replicas its
    /// current replica 0 is stopped and kept for the next wake.
    pub keep_idle: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub network: String,
    pub volumes: Vec<String>,
    pub services: BTreeMap<String, DesiredService>,
}

/// A container of the stack as read back from its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub replica: Option<u32>,
    pub hash: String,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    pub created: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub network_exists: bool,
    pub volumes: Vec<String>,
    pub containers: Vec<ObservedContainer>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoveReason {
    /// Its service is no longer in tug.yaml.
    Orphan,
    /// Its replica index is beyond `replicas`.
    ScaledDown,
    /// Another container holds the same replica.
    Duplicate,
    /// Its configuration changed.
    Outdated,
    /// It is dead and cannot be started again.
    Dead,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub id: String,
    pub name: String,
    pub service: String,
    /// From the container's label; `None` when the label is missing or bad.
    pub replica: Option<u32>,
    /// Running now: it may be serving traffic, so it is drained first.
    pub running: bool,
    pub reason: RemoveReason,
}

/// The work for one service, applied in dependency order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicePlan {
    /// Outdated or dead containers removed before their replacements are created.
    pub replace: Vec<Removal>,
    /// Replica indexes to create and start.
    pub create: Vec<u32>,
    /// Existing current containers to start.
    pub start: Vec<String>,
}

impl ServicePlan {
    pub fn is_empty(&self) -> bool {
        self.replace.is_empty() && self.create.is_empty() && self.start.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create_network: Option<String>,
    pub create_volumes: Vec<String>,
    /// Removed first: orphans, replicas scaled away, duplicates.
    pub remove: Vec<Removal>,
    /// Replicas of services going idle at zero: stopped (drained first)
    /// and kept, so a wake starts them without creating anything.
    pub idle: Vec<Removal>,
    /// Only services with work to do.
    pub services: BTreeMap<String, ServicePlan>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create_network.is_none()
            && self.create_volumes.is_empty()
            && self.remove.is_empty()
            && self.idle.is_empty()
            && self.services.is_empty()
    }
}

fn removal(c: &ObservedContainer, reason: RemoveReason) -> Removal {
    Removal {
        id: c.id.clone(),
        name: c.name.clone(),
        service: c.service.clone(),
        replica: c.replica,
        running: c.state == ContainerState::Running,
        reason,
    }
}

/// Computes what must change to go from `observed` to `desired`.
#[tracing::instrument(name = "plan", level = "info", skip_all, fields(services = desired.services.len()))]
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    let mut p = Plan {
        create_network: (!observed.network_exists).then(|| desired.network.clone()),
        create_volumes: desired
            .volumes
            .iter()
            .filter(|v| !observed.volumes.contains(v))
            .cloned()
            .collect(),
        ..Plan::default()
    };
    let mut by_service: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    for (service, containers) in &by_service {
        if !desired.services.contains_key(*service) {
            p.remove
                .extend(containers.iter().map(|c| removal(c, RemoveReason::Orphan)));
        }
    }
    for (name, want) in &desired.services {
        let have = by_service.get(name.as_str()).cloned().unwrap_or_default();
        let mut sp = ServicePlan::default();
        // Idle at zero: the best current replica 0 stays, stopped.
        let kept = (want.replicas == 0 && want.keep_idle)
            .then(|| {
                have.iter()
                    .filter(|c| c.replica == Some(0) && c.hash == want.hash)
                    .filter(|c| !matches!(c.state, ContainerState::Dead | ContainerState::Removing))
                    .min_by_key(|c| {
                        (
                            c.state != ContainerState::Running,
                            std::cmp::Reverse(c.created),
                            c.id.clone(),
                        )
                    })
            })
            .flatten();
        if let Some(c) = kept {
            if matches!(
                c.state,
                ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
            ) {
                p.idle.push(removal(c, RemoveReason::ScaledDown));
            }
        }
        for c in &have {
            if kept.is_some_and(|k| k.id == c.id) {
                continue;
            }
            if c.replica.is_none_or(|r| r >= want.replicas) {
                p.remove.push(removal(c, RemoveReason::ScaledDown));
            }
        }
        for i in 0..want.replicas {
            let mut current: Vec<&ObservedContainer> = have
                .iter()
                .copied()
                .filter(|c| c.replica == Some(i) && c.hash == want.hash)
                .collect();
            for c in have
                .iter()
                .filter(|c| c.replica == Some(i) && c.hash != want.hash)
            {
                sp.replace.push(removal(c, RemoveReason::Outdated));
            }
            // Keep the best current container: running first, then the newest.
            current.sort_by_key(|c| {
                (
                    c.state != ContainerState::Running,
                    std::cmp::Reverse(c.created),
                    c.id.clone(),
                )
            });
            let mut it = current.into_iter();
            match it.next() {
                None => sp.create.push(i),
                Some(c) => match c.state {
                    ContainerState::Running
                    | ContainerState::Restarting
                    | ContainerState::Paused => {}
                    ContainerState::Exited if want.completes && c.exit_code == Some(0) => {}
                    ContainerState::Dead | ContainerState::Removing => {
                        sp.replace.push(removal(c, RemoveReason::Dead));
                        sp.create.push(i);
                    }
                    ContainerState::Created | ContainerState::Exited => sp.start.push(c.id.clone()),
                },
            }
            p.remove
                .extend(it.map(|c| removal(c, RemoveReason::Duplicate)));
        }
        if !sp.is_empty() {
            p.services.insert(name.clone(), sp);
        }
    }
    p
}

/// One step of a rolling replacement: stop `stop_first` old replicas, start
/// the new `start` ones and wait until they are healthy, then stop the old
/// `stop_after` ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutStep {
    pub stop_first: Vec<u32>,
    pub start: Vec<u32>,
    pub stop_after: Vec<u32>,
}

/// The surge and unavailability a rollout really uses: stop-first order (or
/// a fixed host port) means no surge and at least one replica down.
pub fn effective_rollout(max_surge: u32, max_unavailable: u32, stop_first: bool) -> (u32, u32) {
    if stop_first || max_surge == 0 {
        (0, max_unavailable.max(1))
    } else {
        (max_surge, max_unavailable)
    }
}

/// The steps that replace `replicas`, so that at every moment at most
/// `surge` extra containers run and at least `total - unavailable` replicas
/// are ready (with the values from [`effective_rollout`]).
pub fn rollout_steps(
    replicas: &[u32],
    max_surge: u32,
    max_unavailable: u32,
    stop_first: bool,
) -> Vec<RolloutStep> {
    let (surge, unavailable) = effective_rollout(max_surge, max_unavailable, stop_first);
    let per_step = (surge + unavailable).max(1) as usize;
    replicas
        .chunks(per_step)
        .map(|batch| {
            let first = batch.len().min(unavailable as usize);
            RolloutStep {
                stop_first: batch[..first].to_vec(),
                start: batch.to_vec(),
                stop_after: batch[first..].to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ContainerState::*;

    fn desired(services: &[(&str, &str, u32)]) -> Desired {
        Desired {
            network: "tug_s".into(),
            volumes: vec![],
            services: services
                .iter()
                .map(|(n, h, r)| {
                    (
                        n.to_string(),
                        DesiredService {
                            keep_idle: false,
                            hash: h.to_string(),
                            replicas: *r,
                            completes: false,
                        },
                    )
                })
                .collect(),
        }
    }

    fn c(
        id: &str,
        service: &str,
        replica: u32,
        hash: &str,
        state: ContainerState,
    ) -> ObservedContainer {
        ObservedContainer {
            id: id.into(),
            name: format!("s-{service}-{replica}-{hash}"),
            service: service.into(),
            replica: Some(replica),
            hash: hash.into(),
            state,
            exit_code: None,
            created: 0,
        }
    }

    fn observed(containers: Vec<ObservedContainer>) -> Observed {
        Observed {
            network_exists: true,
            volumes: vec![],
            containers,
        }
    }

    #[test]
    fn rollout_steps_by_policy() {
        let one = |v: &[u32]| v.to_vec();
        // Default: start one new, then stop its old one.
        let s = rollout_steps(&[0, 1, 2], 1, 0, false);
        assert_eq!(s.len(), 3);
        assert!(s
            .iter()
            .all(|st| st.stop_first.is_empty() && st.start == st.stop_after));
        // Two at a time, one of them stopped first.
        let s = rollout_steps(&[0, 1, 2, 3], 1, 1, false);
        assert_eq!(
            s,
            vec![
                RolloutStep {
                    stop_first: one(&[0]),
                    start: one(&[0, 1]),
                    stop_after: one(&[1])
                },
                RolloutStep {
                    stop_first: one(&[2]),
                    start: one(&[2, 3]),
                    stop_after: one(&[3])
                },
            ]
        );
        // Stop-first order and surge 0 both stop before starting.
        for s in [
            rollout_steps(&[0, 1], 1, 0, true),
            rollout_steps(&[0, 1], 0, 0, false),
        ] {
            assert!(
                s.iter()
                    .all(|st| st.stop_first == st.start && st.stop_after.is_empty()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn from_nothing_creates_network_volumes_and_every_replica() {
        let mut d = desired(&[("api", "h1", 3), ("db", "h2", 1)]);
        d.volumes = vec!["s_data".into()];
        let p = plan(&d, &Observed::default());
        assert_eq!(p.create_network.as_deref(), Some("tug_s"));
        assert_eq!(p.create_volumes, vec!["s_data".to_string()]);
        assert_eq!(p.services["api"].create, vec![0, 1, 2]);
        assert_eq!(p.services["db"].create, vec![0]);
        assert!(p.remove.is_empty());
    }

    #[test]
    fn converged_stack_plans_nothing() {
        let d = desired(&[("api", "h1", 2)]);
        let o = observed(vec![
            c("a", "api", 0, "h1", Running),
            c("b", "api", 1, "h1", Running),
        ]);
        assert!(plan(&d, &o).is_empty());
    }

    #[test]
    fn changed_service_is_replaced_and_others_untouched() {
        let d = desired(&[("api", "h2", 2), ("db", "d1", 1)]);
        let o = observed(vec![
            c("a", "api", 0, "h1", Running),
            c("b", "api", 1, "h1", Running),
            c("d", "db", 0, "d1", Running),
        ]);
        let p = plan(&d, &o);
        assert!(!p.services.contains_key("db"));
        let api = &p.services["api"];
        assert_eq!(api.create, vec![0, 1]);
        assert_eq!(
            api.replace
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(api
            .replace
            .iter()
            .all(|r| r.reason == RemoveReason::Outdated));
    }

    #[test]
    fn scale_down_removes_highest_replicas() {
        let d = desired(&[("api", "h1", 1)]);
        let o = observed(vec![
            c("a", "api", 0, "h1", Running),
            c("b", "api", 1, "h1", Running),
            c("x", "api", 2, "h0", Exited),
        ]);
        let p = plan(&d, &o);
        let ids: Vec<_> = p.remove.iter().map(|r| (r.id.as_str(), r.reason)).collect();
        assert_eq!(
            ids,
            [
                ("b", RemoveReason::ScaledDown),
                ("x", RemoveReason::ScaledDown)
            ]
        );
        assert!(p.services.is_empty());
    }

    #[test]
    fn orphans_are_removed() {
        let d = desired(&[("api", "h1", 1)]);
        let o = observed(vec![
            c("a", "api", 0, "h1", Running),
            c("w", "worker", 0, "w1", Running),
        ]);
        let p = plan(&d, &o);
        assert_eq!(
            p.remove,
            vec![Removal {
                id: "w".into(),
                name: "s-worker-0-w1".into(),
                service: "worker".into(),
                replica: Some(0),
                running: true,
                reason: RemoveReason::Orphan
            }]
        );
    }

    #[test]
    fn created_or_exited_current_replicas_are_started_not_recreated() {
        // What a killed `tug up` leaves behind: created but never started.
        let d = desired(&[("api", "h1", 2)]);
        let o = observed(vec![
            c("a", "api", 0, "h1", Created),
            c("b", "api", 1, "h1", Exited),
        ]);
        let p = plan(&d, &o);
        assert_eq!(
            p.services["api"].start,
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(p.services["api"].create.is_empty());
    }

    #[test]
    fn a_service_idling_at_zero_keeps_its_replica_stopped_until_woken() {
        let mut d = desired(&[("api", "h1", 0)]);
        d.services.get_mut("api").unwrap().keep_idle = true;
        let o = observed(vec![
            c("a", "api", 0, "h1", Running),
            c("b", "api", 1, "h1", Running),
        ]);
        let p = plan(&d, &o);
        let ids = |v: &[Removal]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&p.idle), ["a"], "stopped, kept");
        assert_eq!(ids(&p.remove), ["b"]);
        // Stopped already: nothing to do, nothing removed.
        let o = observed(vec![c("a", "api", 0, "h1", Exited)]);
        assert!(plan(&d, &o).is_empty());
        // Woken: started again, not created.
        let mut woken = d.clone();
        woken.services.get_mut("api").unwrap().replicas = 1;
        let p = plan(&woken, &o);
        assert_eq!(p.services["api"].start, ["a"]);
        assert!(p.services["api"].create.is_empty());
        // The spec changed while idle: the stopped replica goes; a wake creates.
        let mut changed = d.clone();
        changed.services.get_mut("api").unwrap().hash = "h2".into();
        assert_eq!(ids(&plan(&changed, &o).remove), ["a"]);
        changed.services.get_mut("api").unwrap().replicas = 1;
        let p = plan(&changed, &o);
        assert_eq!(ids(&p.services["api"].replace), ["a"]);
        assert_eq!(p.services["api"].create, [0]);
        // Without scale to zero, zero replicas removes everything.
        let mut plain = d.clone();
        plain.services.get_mut("api").unwrap().keep_idle = false;
        assert_eq!(ids(&plan(&plain, &o).remove), ["a"]);
    }

    #[test]
    fn completed_one_shot_service_is_left_alone_but_failed_one_reruns() {
        let mut d = desired(&[("migrate", "m1", 1)]);
        d.services.get_mut("migrate").unwrap().completes = true;
        let mut done = c("m", "migrate", 0, "m1", Exited);
        done.exit_code = Some(0);
        assert!(plan(&d, &observed(vec![done.clone()])).is_empty());
        done.exit_code = Some(2);
        assert_eq!(
            plan(&d, &observed(vec![done])).services["migrate"].start,
            vec!["m".to_string()]
        );
    }

    #[test]
    fn duplicates_keep_the_running_one() {
        let d = desired(&[("api", "h1", 1)]);
        let mut old = c("old", "api", 0, "h1", Exited);
        old.created = 5;
        let run = c("run", "api", 0, "h1", Running);
        let p = plan(&d, &observed(vec![old, run]));
        assert_eq!(p.remove.len(), 1);
        assert_eq!(p.remove[0].id, "old");
        assert_eq!(p.remove[0].reason, RemoveReason::Duplicate);
        assert!(p.services.is_empty());
    }

    #[test]
    fn dead_container_is_replaced() {
        let d = desired(&[("api", "h1", 1)]);
        let p = plan(&d, &observed(vec![c("a", "api", 0, "h1", Dead)]));
        assert_eq!(p.services["api"].create, vec![0]);
        assert_eq!(p.services["api"].replace[0].reason, RemoveReason::Dead);
    }

    #[test]
    fn unlabelled_replica_index_is_removed() {
        let d = desired(&[("api", "h1", 1)]);
        let mut odd = c("odd", "api", 0, "h1", Running);
        odd.replica = None;
        let p = plan(&d, &observed(vec![odd, c("a", "api", 0, "h1", Running)]));
        assert_eq!(p.remove[0].id, "odd");
    }

    /// Applies a plan to an observation the way `apply` does, without an engine.
    fn simulate(d: &Desired, o: &Observed, p: &Plan) -> Observed {
        let mut o = o.clone();
        o.network_exists = true;
        o.volumes.extend(p.create_volumes.iter().cloned());
        let gone: Vec<&str> = p
            .remove
            .iter()
            .chain(p.services.values().flat_map(|s| s.replace.iter()))
            .map(|r| r.id.as_str())
            .collect();
        o.containers.retain(|c| !gone.contains(&c.id.as_str()));
        for c in o.containers.iter_mut() {
            if p.idle.iter().any(|r| r.id == c.id) {
                c.state = Exited;
            }
        }
        let mut n = 0;
        for (svc, sp) in &p.services {
            for c in o.containers.iter_mut().filter(|c| sp.start.contains(&c.id)) {
                c.state = Running;
            }
            for &i in &sp.create {
                n += 1;
                o.containers.push(c(
                    &format!("new{n}"),
                    svc,
                    i,
                    &d.services[svc].hash,
                    Running,
                ));
            }
        }
        o
    }

    fn arb_state() -> impl Strategy<Value = ContainerState> {
        prop_oneof![
            Just(Created),
            Just(Running),
            Just(Restarting),
            Just(Exited),
            Just(Dead),
            Just(Paused)
        ]
    }

    proptest! {
        #[test]
        fn rollouts_keep_capacity_and_replace_every_replica(
            total in 1u32..12,
            changed in 0u32..12,
            surge in 0u32..4,
            unavailable in 0u32..4,
            stop_first in any::<bool>(),
        ) {
            let changed = changed.min(total);
            let replicas: Vec<u32> = (0..changed).collect();
            let (s_eff, u_eff) = effective_rollout(surge, unavailable, stop_first);
            // What the user asked for is never exceeded, except that some
            // replica must be able to move at all.
            prop_assert!(s_eff <= surge);
            prop_assert!(u_eff <= unavailable.max(1));
            let steps = rollout_steps(&replicas, surge, unavailable, stop_first);
            let (mut ready, mut running) = (total as i64, total as i64);
            let floor = total as i64 - u_eff as i64;
            let ceiling = total as i64 + s_eff as i64;
            let mut replaced = Vec::new();
            for st in &steps {
                ready -= st.stop_first.len() as i64;
                running -= st.stop_first.len() as i64;
                prop_assert!(ready >= floor, "{steps:?}");
                running += st.start.len() as i64;
                prop_assert!(running <= ceiling, "{steps:?}");
                ready += st.start.len() as i64;
                ready -= st.stop_after.len() as i64;
                running -= st.stop_after.len() as i64;
                prop_assert!(ready >= floor && ready <= total as i64, "{steps:?}");
                let mut olds: Vec<u32> = st.stop_first.iter().chain(&st.stop_after).copied().collect();
                olds.sort();
                prop_assert_eq!(&olds, &st.start, "each new replica replaces its old one in the same step");
                replaced.extend(st.start.iter().copied());
            }
            prop_assert_eq!(replaced, replicas);
            prop_assert_eq!((ready, running), (total as i64, total as i64));
        }

        #[test]
        fn planning_after_applying_yields_an_empty_plan(
            wants in proptest::collection::btree_map("[a-d]", (0u32..3, 0u32..5, any::<bool>(), any::<bool>()), 0..4),
            have in proptest::collection::vec(("[a-e]", 0u32..6, 0u32..3, arb_state(), proptest::option::of(0i64..3), 0i64..10), 0..12),
            net in any::<bool>(),
        ) {
            let d = Desired {
                network: "tug_s".into(),
                volumes: vec!["v".into()],
                services: wants.iter().map(|(n, (h, r, done, idle))| (n.clone(), DesiredService { hash: format!("h{h}"), replicas: *r, completes: *done, keep_idle: *idle })).collect(),
            };
            let o = Observed {
                network_exists: net,
                volumes: vec![],
                containers: have.iter().enumerate().map(|(k, (s, r, h, st, code, t))| ObservedContainer {
                    id: format!("c{k}"), name: format!("c{k}"), service: s.clone(), replica: Some(*r),
                    hash: format!("h{h}"), state: *st, exit_code: *code, created: *t,
                }).collect(),
            };
            let p = plan(&d, &o);
            let after = simulate(&d, &o, &p);
            let again = plan(&d, &after);
            prop_assert!(again.is_empty(), "plan {:?}\nafter {:?}\nagain {:?}", p, after, again);
            // Never more than one container per replica afterwards.
            for (svc, want) in &d.services {
                for i in 0..want.replicas {
                    let n = after.containers.iter().filter(|c| &c.service == svc && c.replica == Some(i)).count();
                    prop_assert_eq!(n, 1);
                }
                // Idle at zero: at most its replica 0 is kept, stopped.
                if want.replicas == 0 {
                    let kept: Vec<_> = after.containers.iter().filter(|c| &c.service == svc).collect();
                    prop_assert!(kept.len() <= usize::from(want.keep_idle));
                    prop_assert!(kept.iter().all(|c| c.replica == Some(0) && c.hash == want.hash && c.state != Running));
                }
            }
        }
    }
}
