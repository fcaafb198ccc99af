//! `autoscale:` → HorizontalPodAutoscaler: the same bounds, target and
//! behavior as tug's own autoscaler, and errors where an HPA has no meaning.
//! (The shop example's HPA is also in the golden files and goes through
//! kubernetes-validate and checkov with the rest of the render.)

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

fn render(yaml: &str) -> Result<Vec<tug_kube::Object>, String> {
    let stack = tug_spec::parse_str(yaml, "tug.yaml".as_ref()).unwrap();
    tug_kube::render(&stack, yaml, &tug_kube::RenderOptions::default()).map_err(|e| e.to_string())
}

fn hpa(objects: &[tug_kube::Object]) -> HorizontalPodAutoscaler {
    objects
        .iter()
        .find_map(|o| match o {
            tug_kube::Object::HorizontalPodAutoscaler(h) => Some(h.clone()),
            _ => None,
        })
        .expect("an HPA")
}

#[test]
fn bounds_target_and_behavior_carry_over() {
    let objects = render(
        "name: s\nservices:\n  api:\n    image: x:1\n    resources: { cpu: 0.5 }\n    autoscale:\n      min: 2\n      max: 9\n      target_cpu: 70%\n      behavior:\n        scale_up: { stabilization: 30s, select: min, policies: [{ pods: 2, period: 20s }] }\n",
    )
    .unwrap();
    let h = hpa(&objects);
    let v = serde_json::to_value(&h).unwrap();
    assert_eq!(v["apiVersion"], "autoscaling/v2");
    assert_eq!(h.metadata.name.as_deref(), Some("api"));
    assert_eq!(
        v["spec"],
        serde_json::json!({
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "api" },
            "minReplicas": 2,
            "maxReplicas": 9,
            // 70 % of half a CPU.
            "metrics": [{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "AverageValue", "averageValue": "350m" } } }],
            "behavior": {
                "scaleUp": { "stabilizationWindowSeconds": 30, "selectPolicy": "Min", "policies": [{ "type": "Pods", "value": 2, "periodSeconds": 20 }] },
                "scaleDown": { "stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [{ "type": "Percent", "value": 100, "periodSeconds": 15 }] }
            }
        })
    );
    // The Deployment leaves the count to the HPA.
    let deployment = objects
        .iter()
        .find_map(|o| match o {
            tug_kube::Object::Deployment(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(deployment.spec.replicas, None);
}

#[test]
fn the_default_target_is_80_percent_of_one_cpu() {
    let h =
        hpa(&render("name: s\nservices:\n  api: { image: x:1, autoscale: { max: 3 } }\n").unwrap());
    let v = serde_json::to_value(&h).unwrap();
    assert_eq!(
        v["spec"]["metrics"][0]["resource"]["target"]["averageValue"],
        "800m"
    );
    assert_eq!(
        v["spec"]["behavior"]["scaleUp"]["policies"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn what_an_hpa_cannot_carry_is_an_error_at_its_position() {
    let e = render(
        "name: s\nservices:\n  api:\n    image: x:1\n    port: 80\n    autoscale:\n      min: 0\n      idle: 5m\n      max: 3\n      target_rps: 100\n",
    )
    .unwrap_err();
    for expected in [
        "tug.yaml:7:7: `autoscale.min: 0` (scale to zero) has no HorizontalPodAutoscaler meaning",
        "tug.yaml:10:7: `autoscale.target_rps` is counted by tug's gateway",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
}
