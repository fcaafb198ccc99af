//! `autoscale:` → a HorizontalPodAutoscaler (autoscaling/v2) with the very
//! behavior tug's own autoscaler follows: the same bounds, the same CPU
//! target, the same stabilization windows and rate policies.

use super::{meta, Cx};
use crate::object::Object;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;
use tug_spec::{Autoscale, PolicyKind, ScaleRules, SelectPolicy};

/// The HPA of service `name`, or errors at the settings an HPA cannot carry.
pub(super) fn hpa(
    cx: &mut Cx,
    name: &str,
    ns: &str,
    labels: &BTreeMap<String, String>,
    a: &Autoscale,
    cpu_limit: Option<f64>,
) -> Option<Object> {
    fn at<'a>(name: &'a str, k: &'a str) -> [&'a str; 4] {
        ["services", name, "autoscale", k]
    }
    let mut ok = true;
    if a.min == 0 {
        cx.err(
            &at(name, "min"),
            "`autoscale.min: 0` (scale to zero) has no HorizontalPodAutoscaler meaning: an HPA keeps at least one replica",
            Some("set `min: 1` for Kubernetes; scaling to zero there takes KEDA or Knative".into()),
        );
        ok = false;
    }
    for (key, set) in [
        ("target_inflight", a.target_inflight.is_some()),
        ("target_rps", a.target_rps.is_some()),
    ] {
        if set {
            cx.err(
                &at(name, key),
                format!("`autoscale.{key}` is counted by tug's gateway, which does not run on Kubernetes: an HPA has no such metric without a custom metrics adapter"),
                Some("scale on `target_cpu` for Kubernetes".into()),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    // tug measures CPU in percent of the service's CPU (one CPU when unset):
    // the same target as an average value holds whatever the pod requests.
    let percent = f64::from(a.target_cpu.unwrap_or(tug_spec::DEFAULT_TARGET_CPU));
    let average = percent / 100.0 * cpu_limit.unwrap_or(1.0);
    let milli = (average * 1000.0).round().max(1.0) as i64;
    Some(Object::HorizontalPodAutoscaler(HorizontalPodAutoscaler {
        metadata: meta(name, ns, labels.clone()),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: name.into(),
            },
            min_replicas: Some(i32::try_from(a.min).unwrap_or(i32::MAX)),
            max_replicas: i32::try_from(a.max).unwrap_or(i32::MAX),
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "AverageValue".into(),
                        average_value: Some(Quantity(format!("{milli}m"))),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: Some(HorizontalPodAutoscalerBehavior {
                scale_up: Some(rules(&a.behavior.scale_up)),
                scale_down: Some(rules(&a.behavior.scale_down)),
            }),
        },
        status: None,
    }))
}

fn rules(r: &ScaleRules) -> HPAScalingRules {
    // The spec accepts whole seconds only, within the HPA's limits.
    let secs = |d: tug_spec::Duration| i32::try_from(d.std().as_secs()).unwrap_or(i32::MAX);
    HPAScalingRules {
        stabilization_window_seconds: Some(secs(r.stabilization)),
        select_policy: Some(
            match r.select {
                SelectPolicy::Max => "Max",
                SelectPolicy::Min => "Min",
                SelectPolicy::Disabled => "Disabled",
            }
            .into(),
        ),
        policies: Some(
            r.policies
                .iter()
                .map(|p| HPAScalingPolicy {
                    type_: match p.kind {
                        PolicyKind::Pods => "Pods",
                        PolicyKind::Percent => "Percent",
                    }
                    .into(),
                    value: i32::try_from(p.value).unwrap_or(i32::MAX),
                    period_seconds: secs(p.period),
                })
                .collect(),
        ),
        ..HPAScalingRules::default()
    }
}
