//! A deliberately tiny HTTP/1.1 client for the one request the controller makes outside the
//! WebSocket (provisioning): `http://` for a server on the same host, `https://` through
//! [`crate::tls`] otherwise.

use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("unsupported URL {0:?} (only http:// or https://host[:port]/path is supported)")]
    BadUrl(String),
    #[error("connecting to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("TLS with {0}: {1}")]
    Handshake(String, std::io::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed HTTP response")]
    Malformed,
    #[error("response larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("timed out")]
    Timeout,
    #[error(
        "plain-text URL {0:?} to another host: the server's config tells a controller which keys to trust, so only https:// (or a server on this host, http://127.0.0.1) is allowed"
    )]
    PlainTextOffHost(String),
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Where a URL points.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// The host as written, without the port (an IPv6 literal keeps its brackets).
    pub host: String,
    /// `host:port`, the port made explicit.
    pub authority: String,
    pub path: String,
}

/// `http(s)://host[:port]/path` (or `ws(s)://`) → its [`Target`].
pub fn split_url(url: &str) -> Result<Target, HttpError> {
    let bad = || HttpError::BadUrl(url.to_string());
    let (tls, rest) = [
        ("http://", false),
        ("ws://", false),
        ("https://", true),
        ("wss://", true),
    ]
    .iter()
    .find_map(|(scheme, tls)| url.strip_prefix(scheme).map(|rest| (*tls, rest)))
    .ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let (host, authority) = match authority.rsplit_once(':') {
        Some((host, port)) if !authority.ends_with(']') => {
            port.parse::<u16>().map_err(|_| bad())?;
            (host.to_string(), authority.to_string())
        }
        _ => {
            let port = if tls { 443 } else { 80 };
            (authority.to_string(), format!("{authority}:{port}"))
        }
    };
    Ok(Target {
        tls,
        host,
        authority,
        path: path.to_string(),
    })
}

impl Target {
    /// Refuses plain text to any host but this one. Configs are sealed (`docs/protocol.md`
    /// §2), but provisioning pins the org keys from the server's answer and the channel
    /// carries the door's event log: neither should cross a network in the clear.
    pub fn require_tls_off_host(&self, url: &str) -> Result<(), HttpError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if self.tls || loopback {
            Ok(())
        } else {
            Err(HttpError::PlainTextOffHost(url.to_string()))
        }
    }
}

/// POSTs a JSON body and returns status and body; `ca_file` adds trusted roots for https.
pub async fn post_json(
    url: &str,
    body: &[u8],
    ca_file: Option<&Path>,
) -> Result<Response, HttpError> {
    tokio::time::timeout(Duration::from_secs(30), post_inner(url, body, ca_file))
        .await
        .map_err(|_| HttpError::Timeout)?
}

async fn post_inner(url: &str, body: &[u8], ca_file: Option<&Path>) -> Result<Response, HttpError> {
    let target = split_url(url)?;
    target.require_tls_off_host(url)?;
    let tcp = TcpStream::connect(&target.authority)
        .await
        .map_err(|e| HttpError::Connect(target.authority.clone(), e))?;
    if !target.tls {
        return exchange(tcp, &target, body).await;
    }
    let config = crate::tls::client_config(ca_file)?;
    let name =
        crate::tls::server_name(&target.host).ok_or_else(|| HttpError::BadUrl(url.into()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| HttpError::Handshake(target.authority.clone(), e))?;
    exchange(tls, &target, body).await
}

async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    target: &Target,
    body: &[u8],
) -> Result<Response, HttpError> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.authority,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    let read = (&mut stream)
        .take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut raw)
        .await;
    match read {
        Ok(_) => {}
        // A server that closes without TLS close_notify after a complete response (common
        // behind proxies) still sent the whole answer; a truncated one fails to parse.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    if raw.len() > MAX_RESPONSE {
        return Err(HttpError::TooLarge);
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response, HttpError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(HttpError::Malformed)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| HttpError::Malformed)?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Malformed)?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n).ok_or(HttpError::Malformed)?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut input: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let nl = input
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(HttpError::Malformed)?;
        let size_text = std::str::from_utf8(&input[..nl]).map_err(|_| HttpError::Malformed)?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed)?;
        input = &input[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(input.get(..size).ok_or(HttpError::Malformed)?);
        input = input.get(size + 2..).ok_or(HttpError::Malformed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_responses_parse() {
        let t = split_url("http://127.0.0.1:8080/api/v1/x").unwrap();
        assert_eq!(
            (
                t.tls,
                t.host.as_str(),
                t.authority.as_str(),
                t.path.as_str()
            ),
            (false, "127.0.0.1", "127.0.0.1:8080", "/api/v1/x")
        );
        let t = split_url("http://example").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("example:80", "/"));
        let t = split_url("https://keyway.example/api").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.authority.as_str()),
            (true, "keyway.example", "keyway.example:443")
        );
        let t = split_url("https://[::1]:8443/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority.as_str()),
            ("[::1]", "[::1]:8443")
        );
        let t = split_url("https://[::1]/").unwrap();
        assert_eq!(t.authority, "[::1]:443");
        for bad in [
            "ftp://example/",
            "http://user@example/",
            "http://example:port/",
            "https://",
        ] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
        let r = parse_response(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, b"{}".as_slice()));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn plain_text_only_to_this_host() {
        for ok in [
            "http://127.0.0.1:8080/x",
            "http://127.3.0.1/x",
            "ws://localhost:80/x",
            "http://[::1]:8080/x",
            "https://keyway.example/x",
            "wss://10.0.0.5/x",
        ] {
            let t = split_url(ok).unwrap();
            assert!(t.require_tls_off_host(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://keyway.example/x",
            "ws://10.0.0.5:8080/x",
            "http://[fe80::1]/x",
            "http://127.0.0.1.example/x",
        ] {
            let t = split_url(refused).unwrap();
            let err = t.require_tls_off_host(refused).unwrap_err().to_string();
            assert!(err.contains("https://"), "{refused}: {err}");
        }
    }
}
