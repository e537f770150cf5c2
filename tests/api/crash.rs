//! Crash safety through the real binary: writes that each append an event, SIGKILL at
//! random moments over several rounds, then a restart. Every acknowledged write must be
//! there, and every event must be in the log exactly once with dense, ordered offsets.

use crate::process::{self, client, stop};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

fn souk(data: &Path) -> Command {
    process::souk(data, &[])
}

fn start(data: &Path) -> (Child, String) {
    process::serve(souk(data))
}

async fn register(client: &reqwest::Client, url: &str, email: &str) -> Option<u16> {
    let res = client
        .post(format!("{url}/api/v1/auth/register"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD, "name": "Crash Test"}))
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_and_their_events_survive_sigkill() {
    crate::helpers::init_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("test-config.toml"), "").unwrap();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    for round in 0..4 {
        let (mut child, url) = start(&data);
        let client = client(&data);
        let mut writers = Vec::new();
        for w in 0..8 {
            let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let email = format!("r{round}w{w}n{i}@crash.example");
                    match register(&client, &url, &email).await {
                        Some(201) => acked.lock().unwrap().push(email),
                        Some(s) if s != 429 => panic!("register answered {s}"),
                        Some(_) => {}
                        None => break, // the server is gone
                    }
                }
            }));
        }
        let pause = rand::rng().random_range(300..1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("SIGKILL sent");
        child.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "too few writes acknowledged to mean anything: {}",
        acked.len()
    );

    // Every acknowledged account exists: registering it again is a conflict.
    let (child, url) = start(&data);
    let client = client(&data);
    for email in &acked {
        assert_eq!(
            register(&client, &url, email).await,
            Some(409),
            "{email} was lost"
        );
    }
    // A clean stop flushes the relay, so the log holds every committed event.
    stop(child);

    let out = souk(&data)
        .args(["log", "tail", "--topic", "users"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut per_email: HashMap<String, usize> = HashMap::new();
    let mut offsets: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let rec: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            ids.insert(rec["id"].as_str().unwrap().to_string()),
            "event twice: {line}"
        );
        offsets
            .entry(rec["partition"].as_u64().unwrap())
            .or_default()
            .push(rec["offset"].as_u64().unwrap());
        if rec["type"] == "User.Registered" {
            *per_email
                .entry(rec["payload"]["email"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for email in &acked {
        assert_eq!(
            per_email.get(email),
            Some(&1),
            "{email}: event missing or repeated"
        );
    }
    assert!(
        per_email.values().all(|n| *n == 1),
        "an event was appended twice"
    );
    for (partition, offs) in offsets {
        let dense: Vec<u64> = (0..offs.len() as u64).collect();
        assert_eq!(
            offs, dense,
            "partition {partition} offsets are not dense and ordered"
        );
    }
}
