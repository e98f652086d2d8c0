//! A hostile provider server for tenancy tests: one HTTP listener on 127.0.0.1 that answers
//! every request the same bad way (an absurd Retry-After, an endless body, no answer at all, a
//! redirect, garbage, AWS throttling), and counts what it was asked.
//!
//! It speaks just enough HTTP/1.1 over a raw socket to misbehave in ways a well-made HTTP
//! server library would not let it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the server misbehaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 429 with `Retry-After` and `X-RateLimit-Reset` as far in the future as the headers go.
    AbsurdRetryAfter,
    /// 200 with a chunked body that never ends.
    EndlessBody,
    /// Reads the request and never answers.
    Hang,
    /// 302 to `location`.
    Redirect {
        /// Where the redirect points.
        location: String,
    },
    /// 200 with a body that is not what any provider sends.
    Garbage,
    /// AWS's `Throttling` error with an absurd `Retry-After`.
    AwsThrottling,
    /// 200 `{}`: only counts the requests (a redirect target).
    Record,
}

/// A running hostile server; stops when dropped.
pub struct HostileServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileServer {
    /// Starts a server that answers every request with `behaviour`.
    pub async fn start(behaviour: Behaviour) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (counted, noted) = (requests.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (behaviour, counted, noted) =
                    (behaviour.clone(), counted.clone(), noted.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &behaviour, &counted, &noted).await;
                });
            }
        });
        Ok(Self {
            addr,
            requests,
            seen,
            task,
        })
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests it received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The request lines it received (`GET /path HTTP/1.1`), in order.
    pub fn request_lines(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads one request head (at most 64 KiB) and the body its Content-Length announces; returns
/// the request line, or `None` when the connection closed.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = (text.lines())
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    let mut have = head.len().saturating_sub(end);
    while have < length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(Some(line))
}

async fn serve(
    mut stream: TcpStream,
    behaviour: &Behaviour,
    requests: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    while let Some(line) = read_request(&mut stream).await? {
        requests.fetch_add(1, Ordering::SeqCst);
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        let reply = match behaviour {
            Behaviour::Hang => {
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
                return Ok(());
            }
            Behaviour::EndlessBody => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                stream.write_all(head.as_bytes()).await?;
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "[".repeat(64 * 1024));
                loop {
                    stream.write_all(chunk.as_bytes()).await?;
                }
            }
            Behaviour::AbsurdRetryAfter => answer(
                "429 Too Many Requests",
                &[
                    ("retry-after", "18446744073709551615"),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "253402300799"),
                ],
                "application/json",
                r#"{"message": "API rate limit exceeded"}"#,
            ),
            Behaviour::Redirect { location } => answer(
                "302 Found",
                &[("location", location.as_str())],
                "application/json",
                "{}",
            ),
            Behaviour::Garbage => answer(
                "200 OK",
                &[],
                "application/json",
                r#"{"token": 42, "expires_at": "the heat death of the universe", "id": [null]}"#,
            ),
            Behaviour::AwsThrottling => answer(
                "400 Bad Request",
                &[("retry-after", "18446744073709551615")],
                "text/xml",
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                 <Message>Rate exceeded</Message></Error><RequestId>hostile</RequestId></ErrorResponse>",
            ),
            Behaviour::Record => answer("200 OK", &[], "application/json", "{}"),
        };
        stream.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

fn answer(status: &str, headers: &[(&str, &str)], content_type: &str, body: &str) -> String {
    let mut reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        reply.push_str(&format!("{name}: {value}\r\n"));
    }
    reply.push_str("\r\n");
    reply.push_str(body);
    reply
}
