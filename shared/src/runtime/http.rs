//! HTTP effects through reqwest with rustls (on ring).

use crate::app::api::UNTRUSTED_SERVER;
use crux_http::HttpError;
use crux_http::protocol::{HttpHeader, HttpRequest, HttpResponse, HttpResult};
use std::path::Path;
use std::time::Duration;

/// The largest response body read (the API's answers are kilobytes; a directory of
/// thousands of doors stays well under it). Larger ones fail without being read whole.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

/// The server answered, too much to read: reported as a timeout (the server may have acted
/// on the request, so an unlock must not go by BLE as well), the size logged.
fn too_large(size: impl std::fmt::Display, url: &str) -> HttpError {
    tracing::warn!(
        url,
        "the response is {size} bytes, over the {} MiB limit",
        MAX_BODY_BYTES / (1024 * 1024)
    );
    HttpError::Timeout
}

/// A reqwest client builder with ring installed as the TLS crypto provider (reqwest is built
/// without one; building a client before a provider is installed panics).
pub fn http_client() -> reqwest::ClientBuilder {
    // Err only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// rustls's refusal of the server's certificate, when that is what `e` comes down to.
fn certificate_refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(refusal @ rustls::Error::InvalidCertificate(_)) = e.downcast_ref() {
        return Some(refusal.to_string());
    }
    // An io::Error's `source()` skips the error it wraps, so look inside it first.
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return certificate_refusal(inner);
    }
    e.source().and_then(certificate_refusal)
}

impl HttpClient {
    /// Trusts the system's CA certificates, plus the PEM ones in `ca_file` when given.
    pub fn new(ca_file: Option<&Path>) -> std::io::Result<Self> {
        let mut builder = http_client()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5));
        if let Some(path) = ca_file {
            let bad = |e: String| std::io::Error::other(format!("CA file {}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| {
            // In practice: no system root certificates for TLS (rustls-platform-verifier).
            std::io::Error::other(format!(
                "cannot set up HTTPS (are the system CA certificates installed?): {e:?}"
            ))
        })?;
        Ok(Self { client })
    }

    pub async fn execute(&self, req: &HttpRequest) -> HttpResult {
        let method = match reqwest::Method::from_bytes(req.method.as_bytes()) {
            Ok(m) => m,
            Err(e) => return HttpResult::Err(HttpError::Url(e.to_string())),
        };
        let mut builder = self.client.request(method, &req.url);
        for h in &req.headers {
            builder = builder.header(&h.name, &h.value);
        }
        if !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        // `Io` only when the request certainly did not reach the server (no connection);
        // anything later (a reset after sending, a lost answer) is `Timeout`: the server may
        // have acted on it, and the core must not repeat an unlock by another route.
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) if e.is_builder() => return HttpResult::Err(HttpError::Url(e.to_string())),
            // Before `is_timeout`: a connect that timed out is both, and sent nothing.
            Err(e) if e.is_connect() => {
                let message = match certificate_refusal(&e) {
                    Some(refusal) => format!("{UNTRUSTED_SERVER}: {refusal}"),
                    None => e.to_string(),
                };
                return HttpResult::Err(HttpError::Io(message));
            }
            Err(_) => return HttpResult::Err(HttpError::Timeout),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| HttpHeader {
                name: k.to_string(),
                value: v.to_str().unwrap_or_default().to_owned(),
            })
            .collect();
        if let Some(length) = response.content_length()
            && length > MAX_BODY_BYTES as u64
        {
            return HttpResult::Err(too_large(length, &req.url));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return HttpResult::Err(too_large("more than that", &req.url));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                // The server answered and the body was lost: it did act on the request.
                Err(_) => return HttpResult::Err(HttpError::Timeout),
            }
        }
        HttpResult::Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::routing::get;

    async fn server() -> String {
        let chunks = |n: usize| {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            Body::from_stream(futures::stream::iter(
                (0..n).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            ))
        };
        let app = Router::new()
            .route("/small", get(|| async { "hello" }))
            .route("/at-limit", get(|| async { vec![b'x'; MAX_BODY_BYTES] }))
            .route(
                "/declared",
                get(|| async { vec![b'x'; MAX_BODY_BYTES + 1] }),
            )
            // Chunked: no length declared, 5 MiB sent.
            .route("/streamed", get(move || async move { chunks(80) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn get_request(url: String) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url,
            headers: vec![],
            body: vec![],
        }
    }

    #[tokio::test]
    async fn response_bodies_are_capped() {
        let base = server().await;
        let client = HttpClient::new(None).unwrap();
        let get = async |path: &str| client.execute(&get_request(format!("{base}{path}"))).await;
        match get("/small").await {
            HttpResult::Ok(r) => assert_eq!(r.body, b"hello"),
            HttpResult::Err(e) => panic!("{e}"),
        }
        match get("/at-limit").await {
            HttpResult::Ok(r) => assert_eq!(r.body.len(), MAX_BODY_BYTES),
            HttpResult::Err(e) => panic!("{e}"),
        }
        // The server answered (and may have acted): not a plain network error.
        for path in ["/declared", "/streamed"] {
            match get(path).await {
                HttpResult::Err(HttpError::Timeout) => {}
                HttpResult::Err(e) => panic!("{path}: {e}"),
                HttpResult::Ok(r) => panic!("{path}: {} bytes read", r.body.len()),
            }
        }
    }

    #[tokio::test]
    async fn only_a_request_that_never_left_is_a_plain_network_error() {
        let client = HttpClient::new(None).unwrap();
        // Nothing listens: the request never left.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = format!("http://{}/x", closed.local_addr().unwrap());
        drop(closed);
        let result = client.execute(&get_request(refused)).await;
        assert!(
            matches!(result, HttpResult::Err(HttpError::Io(_))),
            "{result:?}"
        );
        // The server read the request and hung up without answering: it may have acted on
        // it, so this is not a plain network error (an unlock must not go by BLE as well).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
        });
        let result = client
            .execute(&get_request(format!("http://{addr}/x")))
            .await;
        assert!(
            matches!(result, HttpResult::Err(HttpError::Timeout)),
            "{result:?}"
        );
    }
}
