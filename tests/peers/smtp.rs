//! Mail over real SMTP (lettre) into the sink `tests/peers/smtp_sink.py`, which must run on
//! 127.0.0.1:2525 writing to `target/smtp-sink` (or `SOUK_TEST_SMTP_DIR`).

use std::path::PathBuf;
use std::time::Duration;

fn sink_dir() -> PathBuf {
    std::env::var_os("SOUK_TEST_SMTP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/smtp-sink"))
}

fn config(data: &std::path::Path) -> souk::Config {
    let mut c = souk::Config::default();
    c.data_dir = data.to_path_buf();
    c.mail.smtp_host = "127.0.0.1".into();
    c.mail.smtp_port = 2525;
    c.mail.smtp_security = souk::config::SmtpSecurity::Plain;
    c.mail.from = "Souk Test <shop@example.com>".into();
    c.auth.argon2_memory_kib = 64;
    c.auth.argon2_iterations = 1;
    c
}

/// The message in the sink addressed to `to` that contains `needle`, waiting a bounded
/// time for an asynchronous send to land.
async fn find_in_sink(to: &str, needle: &str) -> String {
    for _ in 0..100 {
        if let Ok(rd) = std::fs::read_dir(sink_dir()) {
            for entry in rd.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "eml")
                    && let Ok(text) = std::fs::read_to_string(&p)
                    && text.contains(&format!("X-Envelope-To: {to}"))
                    && text.contains(needle)
                {
                    return text;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no message to {to} containing {needle:?} in {}; is tests/peers/smtp_sink.py running?",
        sink_dir().display()
    );
}

#[tokio::test]
async fn mailer_delivers_over_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = souk::mail::Mailer::new(&config(dir.path())).unwrap();
    assert!(
        mailer.file_dir().is_none(),
        "SMTP is configured, not the file sink"
    );
    let marker = uuid::Uuid::now_v7().to_string();
    mailer
        .send(
            "peer-test@example.com",
            "Peer test",
            &format!("marker {marker}"),
        )
        .await
        .expect("the SMTP sink accepts the message");
    let text = find_in_sink("peer-test@example.com", &marker).await;
    assert!(text.contains("Subject: Peer test"));
    assert!(
        text.contains("From: \"Souk Test\" <shop@example.com>")
            || text.contains("From: Souk Test <shop@example.com>")
    );
    assert!(
        !dir.path().join("mail").exists(),
        "nothing went to the file sink"
    );
}

#[tokio::test]
async fn registration_sends_its_verification_link_over_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let app = souk::App::open(config(dir.path())).unwrap();
    let email = format!("new-{}@example.com", uuid::Uuid::now_v7().simple());
    let input = souk::services::users::RegisterInput {
        email: email.clone(),
        password: "correct horse battery".into(),
        name: "Peer".into(),
    };
    souk::services::users::register(&app.state, input, &Default::default())
        .await
        .unwrap();
    let text = find_in_sink(&email, "Subject: Confirm your email address").await;
    assert!(text.contains("verify-email"), "{text}");
    app.state.store.close();
}
