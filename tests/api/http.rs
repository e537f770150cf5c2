//! HTTPS, errors, rate limits, metrics and graceful shutdown, through a real server.

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_over_https() {
    let app = spawn_app().await;
    let res = app.get("/health").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}
