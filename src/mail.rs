//! The small mailer used until the notification service exists: SMTP through lettre when
//! `[mail] smtp_host` is set, else one .eml file per message under `<data_dir>/mail/`.
//! It sends what it is given; it never logs a message body (bodies carry tokens).

use crate::config::{Config, MailConfig, SmtpSecurity};
use crate::error::{Error, Result};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

pub enum Sink {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

pub struct Mailer {
    from: Mailbox,
    sink: Sink,
}

impl Mailer {
    pub fn new(config: &Config) -> Result<Mailer> {
        let m = &config.mail;
        let from: Mailbox = m
            .from
            .parse()
            .map_err(|e| Error::Internal(format!("mail.from is not a mailbox: {e}")))?;
        let sink = if m.smtp_host.is_empty() {
            Sink::Files(config.data_dir.join("mail"))
        } else {
            Sink::Smtp(smtp(m)?)
        };
        Ok(Mailer { from, sink })
    }

    /// Where the file sink writes, if it is the sink in use.
    pub fn file_dir(&self) -> Option<&PathBuf> {
        match &self.sink {
            Sink::Files(d) => Some(d),
            Sink::Smtp(_) => None,
        }
    }

    pub fn build(&self, to: &str, subject: &str, text: &str) -> Result<Message> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| Error::Internal(format!("recipient is not a mailbox: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body(text))
            .map_err(|e| Error::Internal(format!("building mail: {e}")))
    }

    /// Delivers one message and returns when the sink has it.
    pub async fn send(&self, to: &str, subject: &str, text: &str) -> Result<()> {
        let msg = self.build(to, subject, text)?;
        match &self.sink {
            Sink::Files(dir) => {
                crate::auth::keys::ensure_private_dir(dir)?;
                // UUIDv7 names sort in sending order.
                let path = dir.join(format!("{}.eml", uuid::Uuid::now_v7()));
                tokio::fs::write(&path, msg.formatted())
                    .await
                    .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
            }
            Sink::Smtp(t) => t
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| Error::Unavailable {
                    message: format!("mail server: {e}"),
                    retry_after_secs: 60,
                }),
        }
    }

    /// Sends without making the caller wait for a remote server (so response time says
    /// nothing about whether a message went out); failures are logged.
    pub async fn dispatch(self: &std::sync::Arc<Self>, to: String, subject: String, text: String) {
        match self.sink {
            Sink::Files(_) => {
                if let Err(e) = self.send(&to, &subject, &text).await {
                    tracing::error!(error = %e, "mail not written");
                }
            }
            Sink::Smtp(_) => {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.send(&to, &subject, &text).await {
                        tracing::error!(error = %e, "mail not sent");
                    }
                });
            }
        }
    }
}

/// 7bit when the text allows it, so links and tokens stay readable in the raw message
/// (an admin reading the file sink, a test looking for a token); else lettre picks.
fn body(text: &str) -> Body {
    Body::new_with_encoding(text.to_string(), ContentTransferEncoding::SevenBit)
        .unwrap_or_else(|_| Body::new(text.to_string()))
}

fn smtp(m: &MailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let err = |e: lettre::transport::smtp::Error| Error::Internal(format!("mail.smtp_host: {e}"));
    let builder = match m.smtp_security {
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&m.smtp_host).map_err(err)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&m.smtp_host).map_err(err)?
        }
        SmtpSecurity::Plain => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&m.smtp_host)
        }
    };
    let mut builder = builder
        .port(m.smtp_port)
        .timeout(Some(Duration::from_secs(m.timeout_secs)));
    if !m.smtp_username.is_empty() {
        let pw = m
            .smtp_password
            .as_ref()
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(m.smtp_username.clone(), pw));
    }
    Ok(builder.build())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_sink_writes_one_eml_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let m = Mailer::new(&config).unwrap();
        m.send(
            "ada@example.com",
            "Hello",
            "line one\nhttps://x/y?token=abc",
        )
        .await
        .unwrap();
        m.send("bob@example.com", "Again", "two").await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 2);
        let mut texts: Vec<String> = files
            .into_iter()
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
            .collect();
        texts.sort();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("To: ada@example.com") && t.contains("Subject: Hello"))
        );
    }
}
