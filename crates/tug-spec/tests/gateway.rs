//! `gateway:` and `route:`: defaults, every form, and conflicts at file:line:col.

mod common;

use common::errors;
use std::net::SocketAddr;
use std::path::Path;
use tug_spec::{parse_str, AccessLog, Balance, HashKey, Upstream};

#[test]
fn fixture_reads_every_form() {
    let s = tug_spec::load(Path::new("tests/fixtures/valid/gateway.yaml")).unwrap();
    let g = s.gateway.unwrap();
    assert_eq!(
        g.listen,
        vec![
            "127.0.0.1:8000".parse::<SocketAddr>().unwrap(),
            "0.0.0.0:8443".parse().unwrap()
        ]
    );
    assert_eq!(g.access_log, AccessLog::Combined);
    assert_eq!(g.max_body_size.0, 10 << 20);
    let api = &s.services["api"].routes;
    assert_eq!(api.len(), 2);
    assert_eq!(api[0].host.as_deref(), Some("api.localhost"));
    assert_eq!(api[0].balance, Balance::RoundRobin);
    assert_eq!(api[1].path, "/api", "a trailing slash is the same prefix");
    assert!(api[1].strip_prefix);
    assert_eq!(api[1].retry.attempts, 3);
    assert_eq!(api[1].retry.on, vec![502, 503]);
    assert_eq!(api[1].timeouts.connect.std().as_secs(), 1);
    assert_eq!(
        api[1].balance,
        Balance::Hash(HashKey::Header("x-user".into()))
    );
    let web = &s.services["web"].routes;
    assert_eq!(web[0].balance, Balance::Hash(HashKey::Client));
    assert_eq!(web[0].path, "/");
    assert_eq!(web[0].upstream, Upstream::Http1);
    assert_eq!(s.services["grpc"].routes[0].upstream, Upstream::H2c);
}

#[test]
fn defaults() {
    let s = parse_str(
        "name: a\ngateway: {}\nservices:\n  w:\n    image: x\n    port: 80\n    route: {}\n",
        Path::new("tug.yaml"),
    )
    .unwrap();
    let g = s.gateway.unwrap();
    assert_eq!(g.listen, vec!["127.0.0.1:8000".parse().unwrap()]);
    assert_eq!(g.access_log, AccessLog::Json);
    let r = &s.services["w"].routes[0];
    assert_eq!((r.host.as_deref(), r.path.as_str()), (None, "/"));
    assert_eq!(r.balance, Balance::P2c);
    assert_eq!(r.retry.on, vec![502, 503, 504]);
    assert_eq!(r.retry.attempts, 2);
    assert_eq!(r.upstream, Upstream::Http1);
}

#[test]
fn listen_addresses() {
    for (text, want) in [
        (":8000", "127.0.0.1:8000"),
        ("8000", "127.0.0.1:8000"),
        ("0.0.0.0:80", "0.0.0.0:80"),
        ("[::1]:9000", "[::1]:9000"),
    ] {
        assert_eq!(
            tug_spec::listen_address(text).unwrap(),
            want.parse::<SocketAddr>().unwrap(),
            "{text}"
        );
    }
    for bad in ["localhost:80", ":0", "abc", ":99999"] {
        assert!(tug_spec::listen_address(bad).is_err(), "{bad}");
    }
}

#[test]
fn conflict_names_both_services() {
    let e = errors(
        "name: a\ngateway: { listen: [\":8000\"] }\nservices:\n  one:\n    image: x\n    port: 80\n    route: { host: a.localhost, path: /api }\n  two:\n    image: x\n    port: 80\n    route:\n      - { host: b.localhost }\n      - { host: a.localhost, path: /api/ }\n",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].line, e[0].col), (13, 9));
    assert_eq!(
        e[0].message,
        "route conflict on a.localhost /api: services `one` (at 7:12) and `two` both claim it"
    );
    assert!(e[0]
        .to_string()
        .starts_with("/tmp/tug-spec-tests/tug.yaml:13:9: "));
}

#[test]
fn bad_routes_are_located() {
    let base = "name: a\ngateway: {}\nservices:\n  w:\n    image: x\n    port: 80\n";
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "    route: { path: api }\n",
            7,
            20,
            "`w.route.path` must be a path starting with `/`, found `api`",
        ),
        (
            "    route: { host: \"http://x\" }\n",
            7,
            20,
            "`w.route.host`: `http://x` is not a host name",
        ),
        (
            "    route: { balance: roundrobin }\n",
            7,
            23,
            "`w.route.balance`: unknown method `roundrobin`",
        ),
        (
            "    route: { retry: { on: [404] } }\n",
            7,
            28,
            "`w.route.retry.on` lists 5xx statuses, found `404`",
        ),
        (
            "    route: { timeouts: { connect: 0 } }\n",
            7,
            35,
            "`w.route.timeouts.connect` must be longer than 0",
        ),
        (
            "    route: { upstream: h2 }\n",
            7,
            24,
            "`w.route.upstream`: unknown protocol `h2`",
        ),
        (
            "    route: { hots: a }\n",
            7,
            14,
            "unknown key `hots` in `w.route`",
        ),
    ];
    for (body, l, c, m) in cases {
        let e = errors(&format!("{base}{body}"));
        assert_eq!(e.len(), 1, "{body}: {e:#?}");
        assert_eq!(
            (e[0].line, e[0].col, e[0].message.as_str()),
            (*l, *c, *m),
            "{body}"
        );
    }
}

#[test]
fn route_needs_gateway_and_port() {
    let e = errors("name: a\nservices:\n  w:\n    image: x\n    route: {}\n");
    let msgs: Vec<&str> = e.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "service `w` has a route but no `port`",
            "a route needs a gateway to serve it"
        ]
    );
    assert!(e[1].hint.as_deref().unwrap().contains("gateway: { listen"));
}

#[test]
fn bad_listen_is_located() {
    let e = errors("name: a\ngateway: { listen: [\":8000\", \"localhost:80\"] }\n");
    assert_eq!((e[0].line, e[0].col), (2, 30));
    assert_eq!(
        e[0].message,
        "`gateway.listen`: `localhost:80` is not a listen address"
    );
}
