//! The real `souk` binary as a child process, for the crash tests: started on a data dir
//! with test-friendly settings, killed or stopped, and reached over its own certificate.

use crate::helpers::client_trusting;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_souk");

/// `souk` on `data` with no config file from the working directory: defaults, no rate
/// limit, quiet logs and light password hashing (these tests are about durability, not
/// argon2's cost), then `env` on top.
pub fn souk(data: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data")
        .arg(data)
        .arg("--config")
        .arg(data.join("test-config.toml"))
        .env("SOUK_HTTP__RATE_LIMIT__ENABLED", "false")
        .env("SOUK_TELEMETRY__LEVEL", "warn")
        .env("SOUK_AUTH__ARGON2_MEMORY_KIB", "64")
        .env("SOUK_AUTH__ARGON2_ITERATIONS", "1")
        .envs(env.iter().copied());
    cmd
}

/// Runs `cmd serve` on a free port and returns the child and its base URL.
pub fn serve(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("souk starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("souk printed its address before exiting")
            .expect("stdout readable");
        if let Some(url) = line.strip_prefix("souk: listening on ") {
            break url.trim().to_string();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// Stops the child gracefully (SIGTERM) and asserts it exited cleanly.
pub fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert!(code.success(), "souk exited with {code} after SIGTERM");
}

/// A client trusting the certificate the server generated in `data`.
pub fn client(data: &Path) -> reqwest::Client {
    let pem = std::fs::read(data.join("keys/tls-cert.pem")).expect("certificate written");
    client_trusting(&pem, |b| b.timeout(Duration::from_secs(20)))
}
