//! The README's newcomer commands, run as written (with the test server's
//! address and binary path substituted), so the README cannot rot.

mod common;

use common::{Options, Server, BIN};

#[tokio::test]
async fn readme_commands_work_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains("cargo run --release -- serve -d sessiond-data"),
        "the start command changed; update this test"
    );
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.contains("user add alice"))
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(block.len() > 5, "README steps not found");

    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(Options {
        dir: Some(tmp.path().to_owned()),
        default_password_file: true,
        ..Options::default().args(&["-d", "sessiond-data"])
    });
    let script = block
        .join("\n")
        .replace("./target/release/sessiond", BIN)
        .replace("127.0.0.1:4431", &s.addr);
    let stdout = common::run_bash(&script, tmp.path(), &[]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "added user alice to sessiond-data/passwd");
    assert_eq!(lines[1].len(), 64, "{stdout}");
    assert_eq!(
        &lines[2..],
        [
            "alice",
            "auth/file",
            "YES",
            "alice",
            "auth/file",
            "",
            "NO",
            "OK",
            "NO"
        ],
        "{stdout}"
    );
}

/// The README's "several instances on one Redis" block, as written, with free
/// ports and a throwaway key prefix.
#[tokio::test]
async fn readme_two_instances_on_one_redis() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.contains("user add alice -f shared-passwd"))
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(block.len() > 5, "README steps not found");
    let redis = std::env::var("SESSIOND_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (a, b) = (
        common::free_port().to_string(),
        common::free_port().to_string(),
    );
    let prefix = format!("sessiond-readme-{}", sessiond_core::token::random_hex(6));
    let script = format!(
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{}",
        block
            .join("\n")
            .replace("./target/release/sessiond", BIN)
            .replace("4431", &a)
            .replace("4432", &b)
            .replace("redis://127.0.0.1:6379", &redis)
    );
    let tmp = tempfile::tempdir().unwrap();
    // the keys this leaves in the shared Redis go when the test ends,
    // failed or not
    let _keys = common::RedisKeys(redis.clone(), prefix.clone());
    let stdout = common::run_bash(
        &script,
        tmp.path(),
        &[
            ("SESSIOND_STORE__PREFIX", &prefix),
            ("SESSIOND_LOG", "warn"),
        ],
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.contains("is listening on"))
        .collect();
    assert_eq!(
        lines,
        [
            "added user alice to shared-passwd",
            "YES",
            "alice",
            "auth/file",
            ""
        ],
        "{stdout}"
    );
}
