//! `tug up`/`down`/`ps`/`logs` against the real engine, with examples/hello
//! built from source into a FROM-scratch image.

mod common;

use common::*;
use std::process::Command;

#[test]
fn up_converges_is_idempotent_and_replaces_only_what_changed() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "conv",
        &(service("web", "    replicas: 2\n")
            + &service("api", "    depends_on: { web: healthy }\n")),
    );
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let (web, api) = (s.ids("web"), s.ids("api"));
    assert_eq!((web.len(), api.len()), (2, 1));

    // ps shows an endpoint per replica that answers.
    let ps = s.run(&["ps", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["state"], "running");
        assert_eq!(r["health"], "healthy");
        let endpoint = r["endpoint"].as_str().unwrap();
        let mut conn = std::net::TcpStream::connect(endpoint).unwrap();
        use std::io::{Read, Write};
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).unwrap();
        assert!(body.contains("hello from"), "{body}");
    }

    // Nothing changed: nothing touched.
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("up to date"),
        "{}",
        text(&out)
    );
    assert_eq!((s.ids("web"), s.ids("api")), (web.clone(), api.clone()));

    // One service changed: only its replicas are replaced.
    s.write(
        &(service("web", "    replicas: 2\n")
            + &service(
                "api",
                "    depends_on: { web: healthy }\n    env: { VERSION: '2' }\n",
            )),
    );
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.ids("web"), web);
    let new_api = s.ids("api");
    assert_eq!(new_api.len(), 1);
    assert_ne!(new_api, api);

    // Logs of every replica, prefixed.
    let logs = s.run(&["logs", "web", "--tail", "5"]);
    let l = String::from_utf8_lossy(&logs.stdout);
    assert!(
        l.contains("web-0 |") && l.contains("web-1 |") && l.contains("listening on :8080"),
        "{}",
        text(&logs)
    );

    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(s.ids("web").is_empty() && s.ids("api").is_empty());
}

#[test]
fn containers_are_hardened() {
    if !engine() {
        return;
    }
    let s = TestStack::new("hard", &service("web", ""));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = &s.ids("web")[0];
    let fmt = "{{.HostConfig.ReadonlyRootfs}}|{{.HostConfig.CapDrop}}|{{.HostConfig.SecurityOpt}}|{{.HostConfig.PidsLimit}}|{{.HostConfig.Memory}}|{{.Config.User}}|{{index .HostConfig.Tmpfs \"/tmp\"}}|{{(index (index .NetworkSettings.Ports \"8080/tcp\") 0).HostIp}}";
    let o = Command::new("docker")
        .args(["inspect", "--format", fmt, id])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(got, "true|[ALL]|[no-new-privileges:true]|256|536870912|10001:10001|rw,nosuid,nodev,size=64m,mode=1777|127.0.0.1");
}

#[test]
fn engine_unreachable_has_its_own_exit_code() {
    // Asking for the engine explicitly: no fallback, a distinct exit code.
    for how in ["flag", "file"] {
        let s = TestStack::new("unreach", "  web:\n    image: x:1\n");
        let mut c = tug();
        c.arg("-f").arg(s.file());
        if how == "flag" {
            c.args(["--runtime", "docker"]);
        } else {
            let yaml = std::fs::read_to_string(s.file()).unwrap();
            std::fs::write(s.file(), format!("runtime: docker\n{yaml}")).unwrap();
        }
        let out = c
            .arg("up")
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("TUG_STATE_DIR", s.state())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{how}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot reach the container engine at unix:///nonexistent/docker.sock: start Docker or Podman, or set DOCKER_HOST"), "{err}");
        // Nothing was created: keep Drop's `down` from running.
        std::mem::forget(s);
    }
}

#[test]
fn an_engine_named_by_docker_host_never_falls_back_to_processes() {
    let s = TestStack::new("fallback", &service("web", ""));
    // DOCKER_HOST names the engine: no silent switch, for any command.
    for args in [&["up", "-d"][..], &["ps"], &["logs"], &["down"]] {
        let out = s
            .command(args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot reach the container engine at unix:///nonexistent/docker.sock (DOCKER_HOST names the engine to use)"), "{args:?}: {err}");
        assert!(err.contains("`--runtime process`"), "{err}");
    }
    // Asked for, local processes run the stack.
    let s = TestStack::on(Some("process"), "fallback", &service("web", ""));
    let out = s.command(&["up", "-d"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let ps = s.command(&["ps", "-o", "json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    let endpoint = rows[0]["endpoint"].as_str().unwrap().to_string();
    assert!(get(&endpoint, "/").contains("hello from web-0"), "{rows}");
    let out = s.command(&["down"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(get(&endpoint, "/").is_empty(), "the process is gone");
}

#[test]
fn health_that_never_passes_names_service_probe_and_logs() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "sick",
        &service("web", "    env: { HELLO_UNHEALTHY: '1' }\n"),
    );
    let out = s.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web` failed: replica 0 is unhealthy after 3 failed checks"),
        "{err}"
    );
    assert!(
        err.contains("last health probe: GET http://127.0.0.1:") && err.contains("/health: 503"),
        "{err}"
    );
    assert!(
        err.contains("listening on :8080"),
        "last logs missing: {err}"
    );
}

#[test]
fn replica_that_exits_at_once_is_reported_with_its_logs() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "exit",
        &service("web", "    env: { HELLO_EXIT: '3' }\n    restart: no\n"),
    );
    let out = s.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web` failed: replica 0 exited with code 3"),
        "{err}"
    );
    assert!(
        err.contains("exiting with 3 as asked by HELLO_EXIT"),
        "{err}"
    );
}

#[test]
fn host_port_in_use_is_reported() {
    if !engine() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = TestStack::new("port", &service("web", &format!("    publish: {port}\n")));
    let out = s.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web` failed")
            && err.contains(&format!("host port {port} is already in use")),
        "{err}"
    );
    drop(taken);
    // Once the port is free, the next `up` converges.
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn missing_image_and_failing_build_name_service_and_image() {
    if !engine() {
        return;
    }
    let s = TestStack::new("img", "  web:\n    image: tug-test/not-here:0\n");
    let out = s.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "service `web`: image tug-test/not-here:0: not found locally and the pull failed"
        ),
        "{err}"
    );

    let b = TestStack::new("build", "  web:\n    build: { context: . }\n");
    std::fs::write(
        b.dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY missing-file /x\n",
    )
    .unwrap();
    let out = b.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web`: image") && err.contains("build failed"),
        "{err}"
    );
    assert!(
        err.contains("missing-file"),
        "the build error is shown: {err}"
    );
}

#[test]
fn sigkill_during_up_then_up_converges_without_duplicates() {
    if !engine() {
        return;
    }
    let s = TestStack::new("kill", &service("web", "    replicas: 3\n"));
    // Warm the image so the kills land in the container phase.
    s.up();
    assert!(s.run(&["down"]).status.success());
    for delay_ms in [150u64, 400, 700, 1000] {
        let mut child = tug()
            .arg("-f")
            .arg(s.file())
            .args(["up", "-d"])
            .env("NO_COLOR", "1")
            .env("TUG_STATE_DIR", s.dir.path().join("state"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let out = s.run(&["up", "-d"]);
        assert!(
            out.status.success(),
            "after kill at {delay_ms}ms: {}",
            text(&out)
        );
        let ids = s.ids("web");
        assert_eq!(ids.len(), 3, "after kill at {delay_ms}ms: {ids:?}");
        let ps = s.run(&["ps", "-o", "json"]);
        let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
        let mut replicas: Vec<u64> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["replica"].as_u64().unwrap())
            .collect();
        replicas.sort();
        assert_eq!(replicas, vec![0, 1, 2]);
        assert!(rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "running"));
        // Vary the starting point: sometimes from nothing, sometimes from a running stack.
        if delay_ms % 2 == 0 {
            assert!(s.run(&["down"]).status.success());
        }
    }
}

#[test]
fn down_leaves_foreign_containers_alone() {
    if !engine() {
        return;
    }
    let s = TestStack::new("foreign", &service("web", ""));
    s.up();
    // A container tug did not create, named like the stack's.
    let img = image_of(&s.ids("web")[0]);
    let foreign = format!("{}-web-9-foreign", s.name);
    let o = Command::new("docker")
        .args(["create", "--name", &foreign, &img])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(s.run(&["down"]).status.success());
    let still = Command::new("docker")
        .args(["inspect", &foreign])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &foreign]).output();
    assert!(still.status.success(), "the foreign container was removed");
}

#[test]
fn down_names_a_foreign_container_that_holds_the_stack_network() {
    if !engine() {
        return;
    }
    let s = TestStack::new("netheld", &service("web", ""));
    s.up();
    let img = image_of(&s.ids("web")[0]);
    let net = format!("tug_{}", s.name);
    let foreign = format!("{}-holder", s.name);
    let o = Command::new("docker")
        .args(["run", "-d", "--name", &foreign, "--network", &net, &img])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let held = s.run(&["down"]);
    let _ = Command::new("docker").args(["rm", "-f", &foreign]).output();
    let msg = text(&held);
    assert!(!held.status.success(), "{msg}");
    assert!(
        msg.contains(&foreign)
            && msg.contains(&format!("docker network disconnect {net} {foreign}")),
        "names the container and the fix: {msg}"
    );
    // Once it is gone, the next down finishes the job.
    let again = s.run(&["down"]);
    assert!(again.status.success(), "{}", text(&again));
    let gone = Command::new("docker")
        .args(["network", "inspect", &net])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the network is left");
}

#[test]
fn failed_rollout_is_rolled_back_and_old_replicas_keep_serving() {
    if !engine() {
        return;
    }
    let s = TestStack::new("roll", &service("web", "    replicas: 2\n"));
    s.up();
    let old = s.ids("web");
    s.write(&service(
        "web",
        "    replicas: 2\n    env: { HELLO_UNHEALTHY: '1' }\n",
    ));
    let out = s.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rolled back to the previous 2 replica(s)"),
        "{err}"
    );
    assert_eq!(s.ids("web"), old);
    let ps = s.run(&["ps", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "running" && r["health"] == "healthy"),
        "{rows}"
    );
}

#[test]
fn scale_history_rollback_and_restart() {
    if !engine() {
        return;
    }
    let s = TestStack::new("hist", &service("web", "    replicas: 2\n"));
    // Nothing to roll back to yet.
    let out = s.run(&["rollback"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("has no earlier good revision to roll back to"),
        "{}",
        text(&out)
    );

    s.up();
    let first = s.ids("web");
    let out = s.run(&["scale", "web=3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.ids("web").len(), 3);
    assert!(
        first.iter().all(|id| s.ids("web").contains(id)),
        "scaling up keeps the existing replicas"
    );

    let out = s.run(&["scale", "db=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no service `db` in stack")
            && String::from_utf8_lossy(&out.stderr).contains("known services are web")
    );

    // A new version, then back to the previous good revision.
    s.write(&service(
        "web",
        "    replicas: 3\n    env: { VERSION: '2' }\n",
    ));
    s.up();
    let v2 = s.ids("web");
    let out = s.run(&["rollback"]);
    assert!(out.status.success(), "{}", text(&out));
    let back = s.ids("web");
    assert_eq!(back.len(), 3);
    assert!(
        back.iter().all(|id| !v2.contains(id)),
        "version 2 replicas were replaced"
    );
    let ps = s.run(&["ps", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    let endpoint = rows[0]["endpoint"].as_str().unwrap().to_string();
    let body = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&endpoint).unwrap();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut b = String::new();
        c.read_to_string(&mut b).unwrap();
        b
    };
    assert!(body.contains("(version 1.0.0)"), "{body}");

    let h = s.run(&["history", "-o", "json"]);
    let revs: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    let messages: Vec<&str> = revs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["rollback to revision 2", "up", "scale web=3", "up"],
        "{revs}"
    );
    assert!(revs
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["outcome"] == "succeeded"));

    // Rolling restart keeps the containers, restarts each.
    let started = |id: &str| {
        String::from_utf8_lossy(
            &Command::new("docker")
                .args(["inspect", "--format", "{{.State.StartedAt}}", id])
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .to_string()
    };
    let before: Vec<String> = back.iter().map(|id| started(id)).collect();
    let out = s.run(&["restart", "web"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.ids("web"), back);
    let after: Vec<String> = back.iter().map(|id| started(id)).collect();
    assert!(
        before.iter().zip(&after).all(|(a, b)| a != b),
        "{before:?} {after:?}"
    );
}

#[test]
fn agent_supervises_restarts_replaces_and_refuses_a_twin() {
    if !engine() {
        return;
    }
    let s = TestStack::new("agent", &service("web", "    replicas: 2\n"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("agent supervising stack"),
        "{}",
        text(&out)
    );

    // A second agent for the same stack refuses, naming the first.
    let out = s.run(&["agent"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("an agent for stack")
            && err.contains("is already running (pid")
            && err.contains("agent.sock"),
        "{err}"
    );

    // A replica removed behind tug's back comes back.
    let ids = s.ids("web");
    Command::new("docker")
        .args(["rm", "-f", &ids[0]])
        .output()
        .unwrap();
    wait_until("the removed replica is recreated", || {
        s.ids("web").len() == 2 && !s.ids("web").contains(&ids[0])
    });

    // A replica stopped by hand (the engine will not restart it) is restarted by the agent.
    let keep = s.ids("web");
    Command::new("docker")
        .args(["stop", "-t", "1", &keep[0]])
        .output()
        .unwrap();
    wait_until("the stopped replica runs again", || {
        s.ps().iter().filter(|r| r["state"] == "running").count() == 2
    });
    assert_eq!(s.ids("web"), keep, "restarted in place, not replaced");

    // A replica whose health check starts failing is replaced.
    let rows = s.ps();
    let endpoint = rows[0]["endpoint"].as_str().unwrap().to_string();
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&endpoint).unwrap();
        c.write_all(b"GET /sick HTTP/1.0\r\n\r\n").unwrap();
        let mut b = String::new();
        c.read_to_string(&mut b).unwrap();
    }
    let before = s.ids("web");
    wait_until("the sick replica is replaced", || {
        let now = s.ids("web");
        now.len() == 2 && now.iter().filter(|id| before.contains(id)).count() == 1
    });
    wait_until("both replicas healthy", || {
        s.ps().iter().filter(|r| r["health"] == "healthy").count() == 2
    });

    // What the agent did is in the event stream.
    let ev = s.run(&["events", "-o", "json"]);
    let kinds: Vec<String> = String::from_utf8_lossy(&ev.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["event"]["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(kinds.iter().any(|k| k == "restarting"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "replacing"), "{kinds:?}");

    // down goes through the agent, which then exits.
    assert!(s.run(&["down"]).status.success());
    assert!(!s
        .dir
        .path()
        .join("state")
        .join(&s.name)
        .join("agent.sock")
        .exists());
}

#[test]
fn attached_up_stops_the_stack_on_ctrl_c() {
    if !engine() {
        return;
    }
    let s = TestStack::new("attach", &service("web", ""));
    let mut child = tug()
        .arg("-f")
        .arg(s.file())
        .arg("up")
        .env("NO_COLOR", "1")
        .env("TUG_STATE_DIR", s.dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the attached stack is healthy", || {
        s.ps().iter().any(|r| r["health"] == "healthy")
    });
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("stopping stack") && err.contains("stopped 1 container(s)"),
        "{err}"
    );
    let rows = s.ps();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0]["state"].as_str().unwrap().starts_with("exited"),
        "{rows:?}"
    );
    // The next `up` starts it again.
    s.up();
}

#[test]
fn sigkill_during_a_rolling_update_then_up_completes_it() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "killroll",
        &service("web", "    replicas: 3\n    env: { VERSION: '1' }\n"),
    );
    s.up();
    for (n, delay_ms) in [600u64, 1500, 2500].into_iter().enumerate() {
        s.write(&service(
            "web",
            &format!("    replicas: 3\n    env: {{ VERSION: '{}' }}\n", n + 2),
        ));
        let mut child = s
            .command(&["up", "-d"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let out = s.run(&["up", "-d"]);
        assert!(
            out.status.success(),
            "after kill at {delay_ms}ms: {}",
            text(&out)
        );
        let rows = s.ps();
        assert_eq!(
            rows.len(),
            3,
            "after kill at {delay_ms}ms: no duplicate, no orphan: {rows:?}"
        );
        let mut replicas: Vec<u64> = rows
            .iter()
            .map(|r| r["replica"].as_u64().unwrap())
            .collect();
        replicas.sort();
        assert_eq!(replicas, [0, 1, 2]);
        for r in &rows {
            assert_eq!(r["health"], "healthy", "{rows:?}");
            let body = get(r["endpoint"].as_str().unwrap(), "/");
            assert!(
                body.contains(&format!("(version {})", n + 2)),
                "after kill at {delay_ms}ms: {body}"
            );
        }
    }
}

#[test]
fn a_lost_history_store_never_stops_supervision() {
    if !engine() {
        return;
    }
    let s = TestStack::new("lost", &service("web", "    replicas: 2\n"));
    s.up();
    let dir = s.state().join(&s.name);
    for f in ["tug.db", "tug.db-wal", "tug.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    // Supervision goes on: a removed replica comes back.
    let ids = s.ids("web");
    Command::new("docker")
        .args(["rm", "-f", &ids[0]])
        .output()
        .unwrap();
    wait_until("the removed replica is recreated", || {
        s.ids("web").len() == 2 && !s.ids("web").contains(&ids[0])
    });
    let h = s.run(&["history", "-o", "json"]);
    let revs: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert!(
        revs.as_array().unwrap().iter().any(|r| r["message"]
            .as_str()
            .unwrap()
            .starts_with("rebuilt from labels")),
        "{revs}"
    );
}

#[test]
fn logs_follow_streams_through_the_agent() {
    if !engine() {
        return;
    }
    let s = TestStack::new("follow", &service("web", ""));
    s.up();
    assert!(
        s.state().join(&s.name).join("agent.sock").exists(),
        "an agent runs"
    );
    let mut child = s
        .command(&["logs", "--follow", "--tail", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let endpoint = s.ps()[0]["endpoint"].as_str().unwrap().to_string();
    let _ = get(&endpoint, "/crash");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("web-0 | hello: crashing as asked by GET /crash"),
        "{text}"
    );
}

#[test]
fn events_follow_is_a_server_sent_stream_from_the_agent() {
    if !engine() {
        return;
    }
    let s = TestStack::new("sse", &service("web", ""));
    s.up();
    let mut child = s
        .command(&["events", "--follow", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(s.run(&["scale", "web=2"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // The history from before, then what the scale did, as it happened.
    assert!(
        events
            .iter()
            .any(|e| e["event"]["event"] == "creating" && e["event"]["replica"] == 0),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"]["event"] == "creating" && e["event"]["replica"] == 1),
        "{events:?}"
    );
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, once each: {ids:?}"
    );
}
