//! Waiting for a condition in asynchronous tests.

use std::time::Duration;

/// Polls `check` every 20 ms until it returns `Some`, for at most `secs` seconds; panics with
/// `what` when time runs out.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    observe(secs, what, || {
        let next = check();
        async move { next.await.ok_or_else(String::new) }
    })
    .await
}

/// Like [`eventually`], but `check` says what it saw when it is not satisfied yet (`Err`), and
/// the panic when time runs out quotes the last thing seen, so a timeout explains itself.
pub async fn observe<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = match check().await {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}{}{seen}",
            if seen.is_empty() { "" } else { "; last seen: " }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
