//! Optional bearer-token auth. A token file lists one `<role> <token>` per line (`#`
//! starts a comment). A `client` token may do everything; a `worker` token may hold a
//! worker session and read jobs, but not submit or cancel them. Tokens are compared in
//! constant time against every configured token, so timing tells nothing about which
//! prefix matched.

use std::path::Path;
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything: submit, cancel, signal, read, hold a worker session.
    Client,
    /// Hold a worker session and read jobs.
    Worker,
}

/// The configured tokens and their roles.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(Role, Vec<u8>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.entries.len())
    }
}

impl Tokens {
    /// Tokens from `(role, token)` pairs, unchecked (see [`Tokens::parse`]).
    pub fn new(entries: Vec<(Role, String)>) -> Tokens {
        Tokens {
            entries: entries
                .into_iter()
                .map(|(r, t)| (r, t.into_bytes()))
                .collect(),
        }
    }

    /// Parses a token file's text; errors name the line.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(role), Some(token), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!(
                    "line {}: expected `<client|worker> <token>`",
                    n + 1
                ));
            };
            let role = match role {
                "client" => Role::Client,
                "worker" => Role::Worker,
                other => return Err(format!("line {}: unknown role {other:?}", n + 1)),
            };
            if token.len() < 16 {
                return Err(format!(
                    "line {}: a token must be at least 16 characters",
                    n + 1
                ));
            }
            entries.push((role, token.to_string()));
        }
        if entries.is_empty() {
            return Err("no tokens".to_string());
        }
        Ok(Tokens::new(entries))
    }

    /// Reads and parses a token file; errors name the file and the line.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The role of a presented token, checking every entry without stopping early.
    pub fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut found = None;
        for (role, token) in &self.entries {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(*role);
            }
        }
        found
    }
}

/// Authenticates a request and records its role in the request's extensions. Without
/// tokens every caller is a client.
#[derive(Clone, Debug, Default)]
pub struct Authenticator {
    tokens: Option<Tokens>,
}

impl Authenticator {
    /// Checks `tokens` when given; without any, every caller is a client.
    pub fn new(tokens: Option<Tokens>) -> Authenticator {
        Authenticator { tokens }
    }

    /// Passes a request with a known bearer token (or any, without tokens), its role
    /// recorded; refuses the rest with UNAUTHENTICATED.
    pub fn check<T>(&self, mut request: Request<T>) -> Result<Request<T>, Status> {
        let role = match &self.tokens {
            None => Role::Client,
            Some(tokens) => {
                let header = request
                    .metadata()
                    .get("authorization")
                    .ok_or_else(|| Status::unauthenticated("missing authorization header"))?;
                let presented = header.as_bytes().strip_prefix(b"Bearer ").ok_or_else(|| {
                    Status::unauthenticated("authorization must be `Bearer <token>`")
                })?;
                tokens
                    .role_of(presented)
                    .ok_or_else(|| Status::unauthenticated("unknown token"))?
            }
        };
        request.extensions_mut().insert(role);
        Ok(request)
    }
}

/// Refuses a request whose caller may not change jobs.
pub fn require_client<T>(request: &Request<T>) -> Result<(), Status> {
    match request.extensions().get::<Role>() {
        Some(Role::Client) => Ok(()),
        _ => Err(Status::permission_denied(
            "a worker token cannot submit, cancel or signal jobs",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::parse("# ops\nclient c-0123456789abcdef\nworker w-0123456789abcdef # pool\n")
            .unwrap()
    }

    #[test]
    fn roles_follow_the_token_file() {
        let t = tokens();
        assert_eq!(t.role_of(b"c-0123456789abcdef"), Some(Role::Client));
        assert_eq!(t.role_of(b"w-0123456789abcdef"), Some(Role::Worker));
        assert_eq!(t.role_of(b"w-0123456789abcdeX"), None);
        assert_eq!(t.role_of(b""), None);
    }

    #[test]
    fn malformed_token_files_name_the_line() {
        assert_eq!(
            Tokens::parse("admin x0123456789abcdefg").unwrap_err(),
            "line 1: unknown role \"admin\""
        );
        assert!(Tokens::parse("\nclient short")
            .unwrap_err()
            .starts_with("line 2"));
        assert!(Tokens::parse("# nothing\n").is_err());
    }

    #[test]
    fn requests_without_a_valid_bearer_token_are_unauthenticated() {
        let auth = Authenticator::new(Some(tokens()));
        assert_eq!(
            auth.check(Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            auth.check(wrong).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut worker = Request::new(());
        worker.metadata_mut().insert(
            "authorization",
            "Bearer w-0123456789abcdef".parse().unwrap(),
        );
        let worker = auth.check(worker).unwrap();
        assert_eq!(
            require_client(&worker).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
    }
}
