//! HTTP effects through reqwest with rustls (on ring).

use crux_http::HttpError;
use crux_http::protocol::{HttpHeader, HttpRequest, HttpResponse, HttpResult};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

/// A reqwest client builder with ring installed as the TLS crypto provider (reqwest is built
/// without one; building a client before a provider is installed panics).
pub fn http_client() -> reqwest::ClientBuilder {
    // Err only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

impl HttpClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: http_client()
                .timeout(Duration::from_secs(15))
                .connect_timeout(Duration::from_secs(5))
                .build()?,
        })
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
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return HttpResult::Err(HttpError::Timeout),
            Err(e) if e.is_builder() => return HttpResult::Err(HttpError::Url(e.to_string())),
            Err(e) => return HttpResult::Err(HttpError::Io(e.to_string())),
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
        match response.bytes().await {
            Ok(body) => HttpResult::Ok(HttpResponse {
                status,
                headers,
                body: body.to_vec(),
            }),
            Err(e) => HttpResult::Err(HttpError::Io(e.to_string())),
        }
    }
}
