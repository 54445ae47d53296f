//! A browser's view of the web role's backend-for-frontend: a session cookie and its CSRF
//! token, sent with every call of the typed client it hands out.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{reply_of, TestClient};

pub struct Browser {
    /// Where it browses; a test may move it to another instance of the web role.
    pub base: String,
    http: reqwest::Client,
    /// The whole `Set-Cookie` of the session cookie, attributes included.
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    /// A new anonymous session at `base`.
    pub async fn open(base: &str) -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser::open_with(http, base).await
    }

    /// [`Browser::open`] through `http` (one that trusts a test certificate, say), which must
    /// not follow redirects.
    pub async fn open_with(http: reqwest::Client, base: &str) -> Browser {
        let client = TestClient::with_http(http.clone(), base);
        let response = client
            .request(Method::GET, "/bff/session")
            .send()
            .await
            .expect("GET /bff/session");
        let cookie = session_cookie(&response).expect("a session cookie");
        let body: Value = reply_of(response, StatusCode::OK).await.body;
        Browser {
            base: base.to_owned(),
            http,
            cookie,
            csrf: body["csrfToken"].as_str().expect("csrf").to_owned(),
        }
    }

    /// The typed client, sending this session's cookie and CSRF token.
    pub fn client(&self) -> TestClient {
        TestClient::with_http(self.http.clone(), &self.base)
            .header("cookie", self.cookie_header())
            .header("x-csrf-token", &self.csrf)
    }

    /// Posts a local sign-in as `user` and takes the new session cookie, if any; the response.
    pub async fn sign_in(&mut self, user: &str) -> reqwest::Response {
        let response = self
            .client()
            .request(Method::POST, "/bff/auth/local")
            .json(&json!({ "user": user }))
            .send()
            .await
            .expect("POST /bff/auth/local");
        if let Some(cookie) = session_cookie(&response) {
            self.cookie = cookie;
        }
        response
    }

    /// Signs in as `user` and takes the new session's CSRF token.
    pub async fn signed_in_as(&mut self, user: &str) {
        let response = self.sign_in(user).await;
        let body: Value = reply_of(response, StatusCode::OK).await.body;
        self.csrf = body["csrfToken"].as_str().expect("csrf").to_owned();
    }

    /// `chime_session=…`, as a `Cookie` header sends it.
    pub fn cookie_header(&self) -> String {
        self.cookie.split(';').next().unwrap_or_default().to_owned()
    }
}

/// The whole `Set-Cookie` of the session cookie, attributes included.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("chime_session="))
        .map(str::to_owned)
}
