//! A recording HTTP server for tests: axum on 127.0.0.1 (random port). It records every
//! request (method, path with query, headers, body) and answers from a script: a response per
//! request number (1-based, counted over the whole server), or else a default responder that
//! may look at the request (e.g. to answer a batch with one result per message). A scripted
//! response can be delayed, to make a client time out after its request arrived.
//!
//! Use it as `crate::support::recording_http`. It stops when dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// 1-based, in arrival order.
    pub number: usize,
    pub method: String,
    /// Path and query, e.g. `/v3/mg.example.com/messages.mime`.
    pub path: String,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics if it is not JSON: a test failure).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request {} body is not JSON ({e}): {}",
                self.number,
                self.body_text()
            )
        })
    }

    /// The parts of a multipart/form-data body (panics if it is not one).
    pub fn form_parts(&self) -> Vec<FormPart> {
        let content_type = self.header("content-type").unwrap_or_default();
        parse_multipart(content_type, &self.body)
            .unwrap_or_else(|e| panic!("request {} is not multipart/form-data: {e}", self.number))
    }
}

/// One part of a multipart/form-data body.
#[derive(Debug, Clone)]
pub struct FormPart {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl FormPart {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct ScriptedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (the request is recorded first).
    pub delay: Duration,
}

impl ScriptedResponse {
    pub fn status(status: u16) -> ScriptedResponse {
        ScriptedResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, value: serde_json::Value) -> ScriptedResponse {
        ScriptedResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> ScriptedResponse {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<String>) -> ScriptedResponse {
        self.body = body.into();
        self
    }

    pub fn after(mut self, delay: Duration) -> ScriptedResponse {
        self.delay = delay;
        self
    }
}

type Responder = Arc<dyn Fn(&RecordedRequest) -> ScriptedResponse + Send + Sync>;

struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    script: Mutex<HashMap<usize, ScriptedResponse>>,
    default: Mutex<Responder>,
    counter: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server; stops when dropped.
pub struct RecordingServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl RecordingServer {
    /// Starts on 127.0.0.1:0; answers 200 with an empty JSON object until told otherwise.
    pub async fn start() -> RecordingServer {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(HashMap::new()),
            default: Mutex::new(Arc::new(|_: &RecordedRequest| {
                ScriptedResponse::json(200, serde_json::json!({}))
            })),
            counter: AtomicUsize::new(0),
        });
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the recording server");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RecordingServer { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The answer to request number `number` (1-based).
    pub fn script(&self, number: usize, response: ScriptedResponse) {
        lock(&self.shared.script).insert(number, response);
    }

    /// The answers to the next requests, in order (after those already received).
    pub fn script_next(&self, responses: Vec<ScriptedResponse>) {
        let first = self.shared.counter.load(Ordering::SeqCst) + 1;
        let mut script = lock(&self.shared.script);
        for (i, r) in responses.into_iter().enumerate() {
            script.insert(first + i, r);
        }
    }

    /// The answer to every request without a scripted one.
    pub fn respond_with(
        &self,
        responder: impl Fn(&RecordedRequest) -> ScriptedResponse + Send + Sync + 'static,
    ) {
        *lock(&self.shared.default) = Arc::new(responder);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let mut r = lock(&self.shared.requests).clone();
        r.sort_by_key(|r| r.number);
        r
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let number = shared.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let request = RecordedRequest {
        number,
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| uri.path().to_string()),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let scripted = lock(&shared.script).remove(&number);
    let response = match scripted {
        Some(r) => r,
        None => {
            let responder = Arc::clone(&lock(&shared.default));
            responder(&request)
        }
    };
    lock(&shared.requests).push(request);
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    let mut out_headers = HeaderMap::new();
    for (name, value) in &response.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out_headers.append(n, v);
        }
    }
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, out_headers, response.body).into_response()
}

/// Splits a multipart/form-data body (RFC 7578) into its parts.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<FormPart>, String> {
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(format!("content type is `{content_type}`"));
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or("no boundary")?;
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let find = |hay: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(d.len())
            .position(|w| w == d)
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut pos = find(body, 0).ok_or("no first delimiter")?;
    loop {
        let after = pos + d.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let start = after + 2; // CRLF after the delimiter
        let next = find(body, start).ok_or("unterminated part")?;
        // The CRLF before the next delimiter belongs to it.
        let part = &body[start..next - 2];
        let split = part
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("part without a blank line")?;
        let head = String::from_utf8_lossy(&part[..split]).into_owned();
        let data = part[split + 4..].to_vec();
        let mut name = None;
        let mut filename = None;
        let mut part_type = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                for param in v.split(';').skip(1) {
                    if let Some((pk, pv)) = param.trim().split_once('=') {
                        let pv = pv.trim().trim_matches('"').to_string();
                        match pk.trim() {
                            "name" => name = Some(pv),
                            "filename" => filename = Some(pv),
                            _ => {}
                        }
                    }
                }
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(v.trim().to_string());
            }
        }
        parts.push(FormPart {
            name: name.ok_or("part without a name")?,
            filename,
            content_type: part_type,
            data,
        });
        pos = next;
    }
    Ok(parts)
}
