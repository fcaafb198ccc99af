//! One contract, every Runtime: the fake must behave like the engine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tug_runtime::fake::FakeRuntime;
use tug_runtime::testing::{busybox_image, engine_or_skip};
use tug_runtime::*;

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn contract<R: Runtime>(rt: &R, image: &str) {
    let stack = unique("contract");
    let labels = BTreeMap::from([(labels::STACK.to_string(), stack.clone())]);
    let filter = stack_filter(&stack);
    let net = format!("{stack}-net");
    let vol = format!("{stack}-data");

    // Networks and volumes: idempotent create, found by label, idempotent remove.
    rt.create_network(&net, &labels).await.unwrap();
    rt.create_network(&net, &labels).await.unwrap();
    assert_eq!(rt.list_networks(&filter).await.unwrap(), vec![net.clone()]);
    rt.create_volume(&vol, &labels).await.unwrap();
    rt.create_volume(&vol, &labels).await.unwrap();
    assert_eq!(rt.list_volumes(&filter).await.unwrap(), vec![vol.clone()]);

    // A missing image is NotFound.
    let mut spec = ContainerSpec::new(format!("{stack}-missing"), "tug-test/does-not-exist:0");
    spec.labels = labels.clone();
    assert!(matches!(
        rt.create_container(&spec).await,
        Err(RuntimeError::NotFound(_))
    ));

    // Create: labelled, listed as created; the same name again is a conflict.
    let mut spec = ContainerSpec::new(format!("{stack}-a"), image);
    spec.labels = labels.clone();
    spec.labels.insert(labels::SERVICE.into(), "a".into());
    spec.port = Some(8080);
    spec.network = Some(net.clone());
    spec.mounts.push(MountSpec {
        source: MountKind::Volume(vol.clone()),
        target: "/data".into(),
        read_only: false,
    });
    spec.tmpfs.push("/tmp".into());
    spec.stop_grace = Duration::from_secs(1);
    let id = rt.create_container(&spec).await.unwrap();
    assert!(matches!(
        rt.create_container(&spec).await,
        Err(RuntimeError::Conflict(_))
    ));
    let listed = rt.list_containers(&filter).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].name, spec.name);
    assert_eq!(listed[0].state, ContainerState::Created);
    assert_eq!(listed[0].label(labels::SERVICE), Some("a"));

    // Start: running, published on an ephemeral host port.
    rt.start_container(&id).await.unwrap();
    let info = rt.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(info.state, ContainerState::Running);
    assert!(info.host_port.is_some_and(|p| p > 0), "{info:?}");

    // A fixed host port taken by a running container: PortInUse on start.
    let port = free_port();
    let mut p1 = ContainerSpec::new(format!("{stack}-p1"), image);
    p1.labels = labels.clone();
    p1.port = Some(8080);
    p1.publish = Some(port);
    p1.stop_grace = Duration::from_secs(1);
    let mut p2 = p1.clone();
    p2.name = format!("{stack}-p2");
    let id1 = rt.create_container(&p1).await.unwrap();
    rt.start_container(&id1).await.unwrap();
    let id2 = rt.create_container(&p2).await.unwrap();
    assert!(matches!(
        rt.start_container(&id2).await,
        Err(RuntimeError::PortInUse { .. })
    ));
    assert_eq!(
        rt.inspect_container(&id1).await.unwrap().unwrap().host_port,
        Some(port)
    );

    // Other stacks' containers are not listed.
    assert_eq!(
        rt.list_containers(&stack_filter(&unique("other")))
            .await
            .unwrap(),
        vec![]
    );

    // Stop, remove (twice), inspect unknown.
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        rt.inspect_container(&id).await.unwrap().unwrap().state,
        ContainerState::Exited
    );
    for c in [&id, &id1, &id2] {
        rt.remove_container(c).await.unwrap();
        rt.remove_container(c).await.unwrap();
    }
    assert!(rt.inspect_container(&id).await.unwrap().is_none());
    assert!(rt.list_containers(&filter).await.unwrap().is_empty());

    rt.remove_network(&net).await.unwrap();
    rt.remove_network(&net).await.unwrap();
    rt.remove_volume(&vol).await.unwrap();
    rt.remove_volume(&vol).await.unwrap();
    assert!(rt.list_networks(&filter).await.unwrap().is_empty());
    assert!(rt.list_volumes(&filter).await.unwrap().is_empty());
}

#[tokio::test]
async fn fake_runtime_keeps_the_contract() {
    let rt = FakeRuntime::new();
    rt.add_image("tug-test/busybox:1", "");
    contract(&rt, "tug-test/busybox:1").await;
}

#[tokio::test]
async fn docker_runtime_keeps_the_contract() {
    let Some(rt) = engine_or_skip("docker_runtime_keeps_the_contract").await else {
        return;
    };
    let image = busybox_image(&rt).await;
    contract(&rt, &image).await;
}

#[tokio::test]
async fn docker_logs_and_health() {
    let Some(rt) = engine_or_skip("docker_logs_and_health").await else {
        return;
    };
    let image = busybox_image(&rt).await;
    let stack = unique("logs");
    let mut spec = ContainerSpec::new(format!("{stack}-x"), &image);
    spec.labels.insert(labels::STACK.into(), stack.clone());
    spec.command = Some(vec![
        "/bin/busybox".into(),
        "sh".into(),
        "-c".into(),
        "echo one; echo two >&2; exec /bin/busybox sleep 30".into(),
    ]);
    spec.healthcheck = Some(ExecHealth {
        test: vec!["/bin/busybox".into(), "true".into()],
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(1),
        retries: 2,
        start_period: Duration::ZERO,
    });
    spec.stop_grace = Duration::from_secs(1);
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let mut healthy = false;
    for _ in 0..50 {
        if rt.inspect_container(&id).await.unwrap().unwrap().health == EngineHealth::Healthy {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    use futures_util::StreamExt;
    let lines: Vec<LogLine> = rt
        .logs(&id, None, false)
        .map(|l| l.unwrap())
        .collect()
        .await;
    rt.remove_container(&id).await.unwrap();
    assert!(healthy, "exec health check never turned healthy");
    assert!(
        lines.contains(&LogLine {
            stream: LogStream::Stdout,
            text: "one".into()
        }),
        "{lines:?}"
    );
    assert!(
        lines.contains(&LogLine {
            stream: LogStream::Stderr,
            text: "two".into()
        }),
        "{lines:?}"
    );
}
