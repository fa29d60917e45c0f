//! `strom server` as a user meets it: help, a bad config value, a port already in use.

use std::process::Command;

fn strom(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strom")).args(args).output().expect("run strom")
}

#[test]
fn help_explains_the_server_with_examples() {
    let out = strom(&["server", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--config") && text.contains("--override") && text.contains("Examples"), "{text}");
}

#[test]
fn an_invalid_value_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = strom(&[
        "server",
        "--override",
        &format!("log.dirs={}", dir.path().display()),
        "--override",
        "num.partitions=zero",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("num.partitions") && err.contains("zero"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = strom(&["server", "--config", "/nonexistent/server.properties"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/server.properties"), "{err}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tmp");
    let out = strom(&[
        "server",
        "--override",
        &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        "--override",
        &format!("log.dirs={}", dir.path().display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn unknown_and_zookeeper_keys_only_warn() {
    let dir = tempfile::tempdir().expect("tmp");
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "zookeeper.connect=localhost:2181\nno.such.key=1\nlisteners=PLAINTEXT://127.0.0.1:0\n")
        .expect("write");
    let child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["server", "--config", props.to_str().expect("utf8"), "--override"])
        .arg(format!("log.dirs={}", dir.path().join("data").display()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "clean exit on SIGTERM");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zookeeper.connect does not apply"), "{err}");
    assert!(err.contains("unknown config no.such.key"), "{err}");
    assert!(err.contains("shut down cleanly"), "{err}");
}
