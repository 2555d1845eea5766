//! The addresses a client may use: its URLs split on commas, each host name resolved to
//! every address it has, and the tonic endpoint for each.

use super::diagnose::{AddressError, Cause};
use super::{ClientError, ClientOptions};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tonic::codegen::http::Uri;
use tonic::transport::Endpoint;

/// One address to try.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// How errors name it: the URL, plus the address when a name had several.
    pub name: String,
    pub tls: bool,
    pub addr: SocketAddr,
    /// The URL's host, which a TLS certificate is checked against by default (the
    /// simulated transport has no TLS).
    #[cfg_attr(madsim, allow(dead_code))]
    pub host: String,
}

/// A URL once checked: scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Parsed {
    url: String,
    tls: bool,
    host: String,
    port: u16,
}

/// Splits `list` on commas and checks each URL.
fn parse_list(list: &str) -> Result<Vec<Parsed>, ClientError> {
    let urls: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Err(ClientError::Url {
            url: list.to_string(),
            why: "no coordinator URL given".into(),
        });
    }
    urls.into_iter().map(parse).collect()
}

fn parse(url: &str) -> Result<Parsed, ClientError> {
    let bad = |why: &str| ClientError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad("must start with http:// or https://")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("has no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("must not have a path: a coordinator is host and port"));
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Parsed {
        url: url.trim_end_matches('/').to_string(),
        tls,
        host,
        port,
    })
}

/// Every address of every URL in `options`, and the URLs whose names did not resolve.
pub(crate) async fn resolve(
    options: &ClientOptions,
) -> Result<(Vec<Target>, Vec<AddressError>), ClientError> {
    let mut targets: Vec<Target> = Vec::new();
    let mut failed = Vec::new();
    for p in parse_list(&options.url)? {
        let addrs = match p.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, p.port)],
            Err(_) => match lookup(&p.host, p.port, options.connect_timeout).await {
                Ok(addrs) => addrs,
                Err(cause) => {
                    failed.push(AddressError {
                        address: p.url.clone(),
                        cause,
                    });
                    continue;
                }
            },
        };
        let several = addrs.len() > 1;
        for addr in addrs {
            if targets.iter().any(|t| t.addr == addr && t.tls == p.tls) {
                continue;
            }
            let name = if several {
                format!("{} ({})", p.url, addr.ip())
            } else {
                p.url.clone()
            };
            targets.push(Target {
                name,
                tls: p.tls,
                addr,
                host: p.host.clone(),
            });
        }
    }
    Ok((targets, failed))
}

async fn lookup(host: &str, port: u16, within: Duration) -> Result<Vec<SocketAddr>, Cause> {
    let found = tokio::time::timeout(within, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Cause::Resolve(format!("no answer within {} ms", within.as_millis())))?
        .map_err(|e| Cause::Resolve(e.to_string()))?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in found {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(Cause::Resolve("the name has no addresses".into()));
    }
    Ok(addrs)
}

impl Target {
    /// The endpoint for this address; TLS checks the certificate against the URL's
    /// host (or `options.domain`), not the address.
    pub(super) fn endpoint(&self, options: &ClientOptions) -> Result<Endpoint, String> {
        let scheme = if self.tls { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{}", self.addr))
            .map_err(|e| e.to_string())?
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(20));
        if self.tls {
            self.with_tls(endpoint, options)
        } else {
            Ok(endpoint)
        }
    }

    #[cfg(not(madsim))]
    fn with_tls(&self, endpoint: Endpoint, options: &ClientOptions) -> Result<Endpoint, String> {
        use tonic::transport::{Certificate, ClientTlsConfig};
        let mut tls = ClientTlsConfig::new().timeout(options.connect_timeout);
        if let Some(ca) = &options.ca {
            let pem = std::fs::read(ca).map_err(|e| format!("reading {}: {e}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        let domain = options.domain.clone().unwrap_or_else(|| self.host.clone());
        tls = tls.domain_name(domain);
        endpoint.tls_config(tls).map_err(|e| e.to_string())
    }

    /// The simulated transport has no TLS: an `https://` URL connects in the clear.
    #[cfg(madsim)]
    fn with_tls(&self, endpoint: Endpoint, _options: &ClientOptions) -> Result<Endpoint, String> {
        Ok(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_lists_split_on_commas_and_each_url_is_checked() {
        let parsed = parse_list("http://10.0.0.1:7070, https://coord.example:7443/,").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0],
            Parsed {
                url: "http://10.0.0.1:7070".into(),
                tls: false,
                host: "10.0.0.1".into(),
                port: 7070
            }
        );
        assert!(parsed[1].tls && parsed[1].host == "coord.example" && parsed[1].port == 7443);
        assert_eq!(parse("http://[::1]:7070").unwrap().host, "::1");
        assert_eq!(parse("http://h").unwrap().port, 80);
        let err = |s: &str| parse_list(s).unwrap_err().to_string();
        assert!(err("").contains("no coordinator URL given"));
        assert!(err(" , ").contains("no coordinator URL given"));
        assert!(err("127.0.0.1:7070").contains("must start with http:// or https://"));
        assert!(err("ftp://h:1").contains("must start with http:// or https://"));
        assert!(err("http://h:1/jobs").contains("must not have a path"));
        assert!(err("http://h:1,http//oops").contains("\"http//oops\""));
    }

    #[tokio::test]
    async fn a_name_resolves_to_each_of_its_addresses_and_duplicates_go() {
        let options = ClientOptions::new("http://localhost:7070,http://127.0.0.1:7070");
        let (targets, failed) = resolve(&options).await.unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        let v4 = targets
            .iter()
            .filter(|t| t.addr == "127.0.0.1:7070".parse().unwrap())
            .count();
        assert_eq!(v4, 1, "{targets:?}");
        assert!(targets
            .iter()
            .all(|t| t.host == "localhost" || t.host == "127.0.0.1"));
        let nowhere = ClientOptions::new("http://no-such-host.invalid:7070");
        let (targets, failed) = resolve(&nowhere).await.unwrap();
        assert!(targets.is_empty());
        assert!(matches!(failed[0].cause, Cause::Resolve(_)), "{failed:?}");
    }
}
