//! Connecting to a coordinator: the endpoint, optional TLS with a CA file, and the
//! bearer token sent with every call.

use crate::proto::job_service_client::JobServiceClient;
use crate::proto::worker_service_client::WorkerServiceClient;
use std::path::PathBuf;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
#[cfg(not(madsim))]
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Where and how to reach a coordinator.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// `http://host:port`, or `https://host:port` for TLS.
    pub url: String,
    pub token: Option<String>,
    /// PEM CA certificate that signed the coordinator's certificate; without it the
    /// system's roots are not consulted, so TLS needs it.
    pub ca: Option<PathBuf>,
    /// The name the certificate is checked against, when it differs from the URL host.
    pub domain: Option<String>,
    /// Largest message accepted or sent.
    pub max_message_bytes: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid coordinator URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token is not a valid header value")]
    Token,
    #[error("connecting to {url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone, Debug)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(not(madsim))]
pub type Jobs = JobServiceClient<InterceptedService<Channel, BearerToken>>;
#[cfg(not(madsim))]
pub type Workers = WorkerServiceClient<InterceptedService<Channel, BearerToken>>;
// The simulated clients carry their interceptor as a type parameter instead.
#[cfg(madsim)]
pub type Jobs = JobServiceClient<Channel, BearerToken>;
#[cfg(madsim)]
pub type Workers = WorkerServiceClient<Channel, BearerToken>;

impl ClientOptions {
    pub fn new(url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            url: url.into(),
            ..ClientOptions::default()
        }
    }

    fn endpoint(&self) -> Result<Endpoint, ClientError> {
        let url_err = |why: String| ClientError::Url {
            url: self.url.clone(),
            why,
        };
        let endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|e| url_err(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(20));
        if self.url.starts_with("https://") {
            self.with_tls(endpoint, url_err)
        } else if self.url.starts_with("http://") {
            Ok(endpoint)
        } else {
            Err(url_err("must start with http:// or https://".into()))
        }
    }

    #[cfg(not(madsim))]
    fn with_tls(
        &self,
        endpoint: Endpoint,
        url_err: impl Fn(String) -> ClientError,
    ) -> Result<Endpoint, ClientError> {
        use tonic::transport::{Certificate, ClientTlsConfig};
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).map_err(|source| ClientError::Read {
                path: ca.clone(),
                source,
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some(domain) = &self.domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint.tls_config(tls).map_err(|e| url_err(e.to_string()))
    }

    /// The simulated transport has no TLS: an `https://` URL connects in the clear.
    #[cfg(madsim)]
    fn with_tls(
        &self,
        endpoint: Endpoint,
        _url_err: impl Fn(String) -> ClientError,
    ) -> Result<Endpoint, ClientError> {
        Ok(endpoint)
    }

    fn bearer(&self) -> Result<BearerToken, ClientError> {
        match &self.token {
            None => Ok(BearerToken(None)),
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| BearerToken(Some(v)))
                .map_err(|_| ClientError::Token),
        }
    }

    pub async fn channel(&self) -> Result<Channel, ClientError> {
        self.endpoint()?
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                url: self.url.clone(),
                source,
            })
    }

    pub async fn jobs(&self) -> Result<Jobs, ClientError> {
        let channel = self.channel().await?;
        let mut client = JobServiceClient::with_interceptor(channel, self.bearer()?);
        if let Some(n) = self.max_message_bytes {
            client = client
                .max_decoding_message_size(n)
                .max_encoding_message_size(n);
        }
        Ok(client)
    }

    pub async fn workers(&self) -> Result<Workers, ClientError> {
        let channel = self.channel().await?;
        let mut client = WorkerServiceClient::with_interceptor(channel, self.bearer()?);
        if let Some(n) = self.max_message_bytes {
            client = client
                .max_decoding_message_size(n)
                .max_encoding_message_size(n);
        }
        Ok(client)
    }
}

/// Reads a client token file: its first non-empty line, trimmed.
pub fn read_token(path: &std::path::Path) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or(ClientError::Token)
}
