//! `tug scale` and `POST /v1/scale` stay within `autoscale:`, else within
//! the stack-wide limit.

use std::path::Path;
use tug_engine::ops::{scaled, OpsError, MAX_REPLICAS};

fn stack() -> tug_spec::Stack {
    tug_spec::parse_str(
        "name: s\nservices:\n  api: { image: x, port: 80, autoscale: { min: 2, max: 5 } }\n  db: { image: y }\n",
        Path::new("/tmp/scale-bounds/tug.yaml"),
    )
    .unwrap()
}

fn message(r: Result<tug_spec::Stack, OpsError>) -> String {
    match r {
        Err(OpsError::Invalid(m)) => m,
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|s| s.services["api"].replicas)
        ),
    }
}

#[test]
fn autoscaled_services_stay_within_their_bounds() {
    let s = stack();
    let m = message(scaled(&s, &["api=6".into()]));
    assert_eq!(
        m,
        "`api=6`: service `api` autoscales from 2 to 5 replicas (`autoscale.min` and `autoscale.max` in /tmp/scale-bounds/tug.yaml): pick a number in that range, 0 to stop it, or change the bounds in the file"
    );
    assert!(message(scaled(&s, &["api=1".into()])).contains("autoscale.min"));
    assert_eq!(
        scaled(&s, &["api=5".into()]).unwrap().services["api"].replicas,
        5
    );
    assert_eq!(
        scaled(&s, &["api=0".into()]).unwrap().services["api"].replicas,
        0
    );
}

#[test]
fn other_services_stay_within_the_stack_limit() {
    let s = stack();
    let m = message(scaled(&s, &[format!("db={}", MAX_REPLICAS + 1)]));
    assert_eq!(m, "`db=257`: at most 256 replicas per service");
    assert_eq!(
        scaled(&s, &["db=7".into()]).unwrap().services["db"].replicas,
        7
    );
}
