//! The BFF as an OpenID Connect client: authorization code with PKCE (S256), `state` and
//! `nonce`, as a confidential client (`client_secret_post`). The browser only ever carries
//! the code; the tokens come back on the server's own request to the token endpoint and stay
//! in the session.
//!
//! Who the user is comes from the ACCESS token, verified exactly as the task API verifies it
//! (same [`crate::Authenticator`]: issuer, audience, signature against the JWKS), so a session
//! can only exist for someone the task API would accept. The ID token, received directly from
//! the token endpoint over the server's own connection, is checked for `iss`, `aud` and the
//! `nonce` of this sign-in (OpenID Connect Core 3.1.3.7 allows TLS to stand in for its
//! signature on this channel).

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::session::{random_token, same, Secret};

#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

pub struct OidcClient {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: String,
    /// RFC 8707 resource indicator, for providers that pick the access token's audience by it.
    pub resource: Option<String>,
    pub redirect_uri: String,
    discovery: OnceCell<Discovery>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcClientError {
    #[error("the issuer's discovery document could not be read: {0}")]
    Discovery(String),
    #[error("the token endpoint refused the code: {0}")]
    Token(String),
    #[error("the ID token is not acceptable: {0}")]
    IdToken(&'static str),
}

/// What the token endpoint returned.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: Secret,
    pub expires_in: Option<u64>,
}

/// The start of a sign-in: where to send the browser, and what the callback must check.
#[derive(Debug)]
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: Secret,
}

/// The S256 challenge of a PKCE verifier.
pub fn challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

impl OidcClient {
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: Option<Secret>,
        scopes: &str,
        resource: Option<String>,
        redirect_uri: String,
    ) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            scopes: scopes.to_owned(),
            resource,
            redirect_uri,
            discovery: OnceCell::new(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    async fn discovery(&self) -> Result<&Discovery, OidcClientError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let response = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| OidcClientError::Discovery(e.to_string()))?;
                response
                    .json::<Discovery>()
                    .await
                    .map_err(|e| OidcClientError::Discovery(e.to_string()))
            })
            .await
    }

    /// A new authorization request.
    pub async fn authorize(&self) -> Result<Authorization, OidcClientError> {
        let discovery = self.discovery().await?;
        let (state, nonce, verifier) = (random_token(), random_token(), random_token());
        let mut url = url::Url::parse(&discovery.authorization_endpoint)
            .map_err(|e| OidcClientError::Discovery(e.to_string()))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &self.scopes)
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(resource) = &self.resource {
                query.append_pair("resource", resource);
            }
        }
        Ok(Authorization {
            url: url.into(),
            state,
            nonce,
            verifier: Secret(verifier),
        })
    }

    /// Trades the code for tokens and checks the ID token against this sign-in's nonce.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &Secret,
        nonce: &str,
    ) -> Result<Tokens, OidcClientError> {
        let discovery = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", verifier.0.as_str()),
            ("client_id", self.client_id.as_str()),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.0.as_str()));
        }
        if let Some(resource) = &self.resource {
            form.push(("resource", resource.as_str()));
        }
        let response = self
            .http
            .post(&discovery.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcClientError::Token(e.to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| OidcClientError::Token(e.to_string()))?;
        if !status.is_success() {
            // The provider's error code only: its description may echo request values.
            let code = body["error"].as_str().unwrap_or("unknown").to_owned();
            return Err(OidcClientError::Token(format!("{status} {code}")));
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or(OidcClientError::IdToken("missing"))?;
        self.check_id_token(id_token, nonce)?;
        let access_token = body["access_token"]
            .as_str()
            .ok_or(OidcClientError::Token("no access_token".to_owned()))?;
        Ok(Tokens {
            access_token: Secret(access_token.to_owned()),
            expires_in: body["expires_in"].as_u64(),
        })
    }

    fn check_id_token(&self, token: &str, nonce: &str) -> Result<(), OidcClientError> {
        let payload = token
            .split('.')
            .nth(1)
            .ok_or(OidcClientError::IdToken("not a JWT"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| OidcClientError::IdToken("not a JWT"))?;
        let claims: Value =
            serde_json::from_slice(&bytes).map_err(|_| OidcClientError::IdToken("not a JWT"))?;
        if claims["iss"].as_str().map(|s| s.trim_end_matches('/')) != Some(self.issuer.as_str()) {
            return Err(OidcClientError::IdToken("wrong issuer"));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(aud) => *aud == self.client_id,
            Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(&self.client_id)),
            _ => false,
        };
        if !audience_ok {
            return Err(OidcClientError::IdToken("wrong audience"));
        }
        if !claims["nonce"].as_str().is_some_and(|n| same(n, nonce)) {
            return Err(OidcClientError::IdToken("wrong nonce"));
        }
        let now = jiff::Timestamp::now().as_second();
        if claims["exp"].as_i64().is_none_or(|exp| exp + 30 < now) {
            return Err(OidcClientError::IdToken("expired"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_the_base64url_sha256_of_the_verifier() {
        // Computed independently: node -e 'crypto.createHash("sha256").update(v).digest("base64url")'.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gXFrnjXJk"),
            "zV3AAKmAaXPrsN56DVpwb1IgQ_pQBSqT0fzU9afH1Sk"
        );
    }
}
