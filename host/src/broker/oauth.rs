//! One connection's OAuth client: the `oauth2` crate's standard flows
//! (authorization code with PKCE, refresh) and a revocation request (RFC
//! 7009, or GitHub's REST API), pointed at the connection's endpoints, with the preset's quirks
//! applied to what the provider answers, and OpenID Connect discovery for
//! `provider = "oidc"`.

use super::http::{HttpClient, HttpError};
use super::presets::{self, Preset, Revocation};
use super::{AtProvider, BrokerError};
use crate::manifest::{ClientAuth, OAuthSettings, ProviderKind, SecretSource};
use crate::secret::Secret;
use crate::vault::TokenRecord;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicRevocationErrorResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    TokenResponse as _, TokenUrl,
};
use url::Url;

/// The endpoints in use, after discovery and overrides.
#[derive(Debug, Clone)]
pub(super) struct Endpoints {
    authorize: Url,
    token: Url,
    /// The revocation endpoint, none, or why it cannot be known.
    revoke: Result<Option<Url>, String>,
}

/// Tokens a provider issued.
pub(super) struct Reply {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub expires_in: Option<u64>,
    pub scopes: Option<Vec<String>>,
}

/// Why a token request failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// `invalid_grant`: the code or refresh token is dead.
    InvalidGrant,
    /// Another OAuth error; the code and, when given, a description.
    Rejected(String),
    /// No usable answer (network, status, format); a host fault.
    Broken(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::InvalidGrant => f.write_str("invalid_grant"),
            Failure::Rejected(what) | Failure::Broken(what) => f.write_str(what),
        }
    }
}

/// A connection's provider, ready to talk to.
pub(super) struct Provider {
    connection: String,
    settings: OAuthSettings,
    preset: Preset,
    client_secret: Option<ClientSecret>,
    discovered: tokio::sync::OnceCell<Endpoints>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("connection", &self.connection)
            .field("provider", &self.settings.provider)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Reads the client secret and prepares the client for `connection`.
    pub fn new(connection: &str, settings: &OAuthSettings) -> Result<Provider, BrokerError> {
        let secret_error = |detail: String| BrokerError::ClientSecret {
            connection: connection.to_string(),
            detail,
        };
        let client_secret = match &settings.client_secret {
            None => None,
            Some(SecretSource::Env(var)) => {
                let value = std::env::var(var)
                    .map_err(|_| secret_error(format!("environment variable {var} is not set")))?;
                Some(ClientSecret::new(value.trim().to_string()))
            }
            Some(SecretSource::File(path)) => {
                let value = std::fs::read_to_string(path)
                    .map_err(|e| secret_error(format!("{}: {e}", path.display())))?;
                Some(ClientSecret::new(value.trim().to_string()))
            }
        };
        if client_secret
            .as_ref()
            .is_some_and(|s| s.secret().is_empty())
        {
            return Err(secret_error("the client secret is empty".into()));
        }
        Ok(Provider {
            connection: connection.to_string(),
            preset: presets::preset(&settings.provider),
            settings: settings.clone(),
            client_secret,
            discovered: tokio::sync::OnceCell::new(),
        })
    }

    /// The config this provider was built from.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Scopes to ask for at consent: the config's, the preset's and `extra`.
    pub fn consent_scopes(&self, extra: &[String]) -> Vec<String> {
        let mut scopes: Vec<String> = self.settings.scopes.clone();
        scopes.extend(extra.iter().cloned());
        scopes.extend(
            self.preset
                .quirks
                .always_scopes
                .iter()
                .map(|s| s.to_string()),
        );
        let mut seen = std::collections::BTreeSet::new();
        scopes.retain(|s| seen.insert(s.clone()));
        scopes
    }

    /// The scopes a reply grants, given what was asked for.
    pub fn granted(&self, requested: &[String], reply: Option<Vec<String>>) -> Vec<String> {
        presets::granted_scopes(&self.preset.quirks, requested, reply)
    }

    /// The issuer the callback's `iss` parameter must name, if known.
    pub fn issuer(&self) -> Option<&Url> {
        match &self.settings.provider {
            ProviderKind::Oidc { issuer } => Some(issuer),
            _ => None,
        }
    }

    /// Builds the authorization URL with a fresh state and PKCE (S256)
    /// challenge; returns the URL, the state and the verifier.
    pub async fn authorize_url(
        &self,
        http: &HttpClient,
        redirect: &Url,
        scopes: &[String],
    ) -> Result<(Url, CsrfToken, PkceCodeVerifier), BrokerError> {
        let endpoints = self.endpoints(http).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = BasicClient::new(ClientId::new(self.settings.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(endpoints.authorize.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        let quirks = &self.preset.quirks;
        if quirks.slack_user_scope {
            request = request.add_extra_param("user_scope", scopes.join(","));
        } else {
            request = request.add_scopes(scopes.iter().map(|s| Scope::new(s.clone())));
        }
        for (name, value) in quirks.authorize_params {
            request = request.add_extra_param(*name, *value);
        }
        let (url, state) = request.url();
        Ok((url, state, verifier))
    }

    /// Exchanges an authorization code.
    pub async fn exchange(
        &self,
        http: &HttpClient,
        code: &str,
        verifier: PkceCodeVerifier,
        redirect: &Url,
    ) -> Result<Reply, Failure> {
        let endpoints = self
            .endpoints(http)
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let client = self
            .client(&endpoints)
            .set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
        let send = self.via(http);
        let reply = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(verifier)
            .request_async(&send)
            .await;
        self.reply(reply)
    }

    /// Spends `refresh` for a new access token (and maybe a new refresh
    /// token).
    pub async fn refresh(
        &self,
        http: &HttpClient,
        refresh: &Secret,
        scopes: &[String],
    ) -> Result<Reply, Failure> {
        let endpoints = self
            .endpoints(http)
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let client = self.client(&endpoints);
        let token = RefreshToken::new(refresh.oauth_param());
        let send = self.via(http);
        let mut request = client.exchange_refresh_token(&token);
        if self.preset.quirks.scopes_on_refresh {
            let scopes = presets::refresh_scopes(scopes);
            request = request.add_scopes(scopes.into_iter().map(Scope::new));
        }
        let reply = request.request_async(&send).await;
        self.reply(reply)
    }

    /// How this provider's revocation endpoint is called.
    pub fn revocation(&self) -> Revocation {
        self.preset.revocation
    }

    /// Revokes the link `record` holds at the provider, the way its
    /// [`Revocation`] kind says.
    pub async fn revoke(
        &self,
        http: &HttpClient,
        record: &TokenRecord,
    ) -> Result<AtProvider, Failure> {
        let endpoints = self
            .endpoints(http)
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let Some(url) = endpoints.revoke.map_err(Failure::Broken)? else {
            return Ok(AtProvider::NoEndpoint);
        };
        match self.preset.revocation {
            Revocation::Rfc7009 => {
                let (token, is_refresh) = match &record.refresh_token {
                    Some(r) => (r, true),
                    None => (&record.access_token, false),
                };
                self.revoke_rfc7009(http, url, token, is_refresh).await
            }
            Revocation::GithubRest => self.revoke_github(http, url, &record.access_token).await,
        }
    }

    /// RFC 7009: posts `token` with its type hint.
    ///
    /// Written here rather than taken from the `oauth2` crate, which refuses
    /// any endpoint that is not https, loopback included, and treats a
    /// provider that answers an error with status 200 as success.
    async fn revoke_rfc7009(
        &self,
        http: &HttpClient,
        url: Url,
        token: &Secret,
        is_refresh: bool,
    ) -> Result<AtProvider, Failure> {
        let value = zeroize::Zeroizing::new(token.oauth_param());
        let hint = if is_refresh {
            "refresh_token"
        } else {
            "access_token"
        };
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", &value)
            .append_pair("token_type_hint", hint);
        let mut request = http::Request::post(url.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        let id = &self.settings.client_id;
        match (
            self.settings.client_auth.unwrap_or(self.preset.client_auth),
            &self.client_secret,
        ) {
            (ClientAuth::Basic, Some(secret)) => {
                // RFC 6749 section 2.3.1: form-encode both, then Basic.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request = request.header(
                    http::header::AUTHORIZATION,
                    basic(&enc(id), &enc(secret.secret()))?,
                );
            }
            (_, secret) => {
                form.append_pair("client_id", id);
                if let Some(secret) = secret {
                    form.append_pair("client_secret", secret.secret());
                }
            }
        }
        let body = zeroize::Zeroizing::new(form.finish());
        let request = request
            .body(body.as_bytes().to_vec())
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let response = self
            .via(http)
            .send(request)
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        if response.status().is_success() {
            return Ok(AtProvider::Revoked);
        }
        let status = response.status();
        let reply: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        match reply["error"].as_str() {
            Some(code) => Err(Failure::Rejected(format!("{code} (status {status})"))),
            None => Err(Failure::Broken(format!("status {status}"))),
        }
    }

    /// GitHub's REST API: `DELETE url` with the client's Basic credentials
    /// and the access token in a JSON body. GitHub names the grant by an
    /// access token only, never by a refresh token.
    async fn revoke_github(
        &self,
        http: &HttpClient,
        url: Url,
        token: &Secret,
    ) -> Result<AtProvider, Failure> {
        let Some(secret) = &self.client_secret else {
            return Err(Failure::Broken(
                "GitHub revokes only with the client secret; set client_secret_env or client_secret_file".into(),
            ));
        };
        let value = zeroize::Zeroizing::new(token.oauth_param());
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "access_token": value.as_str() }))
                .expect("a JSON object serializes"),
        );
        // Plain Basic credentials: this is GitHub's API, not a token
        // endpoint, so RFC 6749's form-encoding does not apply.
        let request = http::Request::delete(url.as_str())
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-github-api-version", "2022-11-28")
            .header(
                http::header::AUTHORIZATION,
                basic(&self.settings.client_id, secret.secret())?,
            )
            .body(body.to_vec())
            .map_err(|e| Failure::Broken(e.to_string()))?;
        // Sent as is: GitHub's API answers in its own shape, not OAuth's.
        let response = http
            .send(request)
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(AtProvider::Revoked);
        }
        if matches!(status.as_u16(), 404 | 422) {
            return Ok(AtProvider::AlreadyGone);
        }

        // GitHub explains a refusal in `message`; it is quoted unless it
        // repeats a credential.
        let reply: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        let message = provider_text(&reply["message"]);
        let leaks = [value.as_str(), secret.secret().as_str()]
            .iter()
            .any(|s| message.contains(s));
        if message.is_empty() || leaks {
            Err(Failure::Rejected(format!("status {status}")))
        } else {
            Err(Failure::Rejected(format!("status {status}: {message:?}")))
        }
    }

    fn client(
        &self,
        endpoints: &Endpoints,
    ) -> oauth2::Client<
        BasicErrorResponse,
        oauth2::basic::BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        BasicRevocationErrorResponse,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        let auth = self.settings.client_auth.unwrap_or(self.preset.client_auth);
        let mut client = BasicClient::new(ClientId::new(self.settings.client_id.clone()))
            .set_token_uri(TokenUrl::from_url(endpoints.token.clone()))
            .set_auth_type(match auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Post => AuthType::RequestBody,
            });
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(secret.clone());
        }
        client
    }

    /// The HTTP client the `oauth2` crate sends through: `http`, with the
    /// preset's quirks applied to every answer.
    fn via<'a>(&'a self, http: &'a HttpClient) -> Via<'a> {
        Via {
            http,
            quirks: &self.preset.quirks,
        }
    }

    fn reply(
        &self,
        result: Result<
            oauth2::basic::BasicTokenResponse,
            RequestTokenError<HttpError, BasicErrorResponse>,
        >,
    ) -> Result<Reply, Failure> {
        let response = result.map_err(classify::<BasicErrorResponse>)?;
        let secret = |bytes: &str, what: &str| {
            Secret::new(bytes.as_bytes().to_vec())
                .map_err(|e| Failure::Broken(format!("the provider's {what} is not usable: {e}")))
        };
        Ok(Reply {
            access: secret(response.access_token().secret(), "access token")?,
            refresh: response
                .refresh_token()
                .map(|r| secret(r.secret(), "refresh token"))
                .transpose()?,
            expires_in: response.expires_in().map(|d| d.as_secs()),
            scopes: response
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect()),
        })
    }

    /// The endpoints: discovered once for `oidc`, else the preset's, with
    /// the config's overrides on top.
    async fn endpoints(&self, http: &HttpClient) -> Result<Endpoints, BrokerError> {
        let found = self
            .discovered
            .get_or_try_init(|| async {
                let mut e = match &self.settings.provider {
                    ProviderKind::Oidc { issuer } => self.discover(http, issuer).await?,
                    _ => Endpoints {
                        authorize: (self.settings.endpoints.authorize.clone())
                            .or(self.preset.authorize.clone())
                            .ok_or_else(|| self.missing("authorize_url"))?,
                        token: (self.settings.endpoints.token.clone())
                            .or(self.preset.token.clone())
                            .ok_or_else(|| self.missing("token_url"))?,
                        revoke: Ok(self.preset.revoke.clone()),
                    },
                };
                let o = &self.settings.endpoints;
                if let Some(u) = &o.authorize {
                    e.authorize = u.clone();
                }
                if let Some(u) = &o.token {
                    e.token = u.clone();
                }
                if let Some(u) = &o.revoke {
                    e.revoke = Ok(Some(u.clone()));
                } else if self.preset.revocation == Revocation::GithubRest {
                    e.revoke =
                        presets::github_grant_url(o.token.as_ref(), &self.settings.client_id)
                            .map(Some);
                }
                Ok::<_, BrokerError>(e)
            })
            .await?;
        Ok(found.clone())
    }

    fn missing(&self, key: &str) -> BrokerError {
        BrokerError::Provider {
            connection: self.connection.clone(),
            detail: format!("no {key} configured"),
        }
    }

    async fn discover(&self, http: &HttpClient, issuer: &Url) -> Result<Endpoints, BrokerError> {
        let fail = |detail: String| BrokerError::Provider {
            connection: self.connection.clone(),
            detail: format!("discovery at {issuer}: {detail}"),
        };
        let well_known = format!(
            "{}/.well-known/openid-configuration",
            issuer.as_str().trim_end_matches('/')
        );
        let request = http::Request::get(&well_known)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| fail(e.to_string()))?;
        let response = http.send(request).await.map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("status {}", response.status())));
        }

        #[derive(serde::Deserialize)]
        struct Document {
            issuer: String,
            authorization_endpoint: String,
            token_endpoint: String,
            revocation_endpoint: Option<String>,
        }
        let doc: Document = serde_json::from_slice(response.body())
            .map_err(|e| fail(format!("not a discovery document: {e}")))?;
        // The issuer must be exactly the configured one, or a server could
        // pose as another (OpenID Connect Discovery 1.0, section 4.3).
        let reported = Url::parse(&doc.issuer)
            .map_err(|_| fail(format!("issuer {:?} is not a URL", doc.issuer)))?;
        if reported != *issuer {
            return Err(fail(format!(
                "the document names issuer {:?}, not the configured {:?}",
                doc.issuer,
                issuer.as_str()
            )));
        }
        let endpoint = |text: &str| crate::manifest::oauth::parse_endpoint(text).map_err(fail);
        Ok(Endpoints {
            authorize: endpoint(&doc.authorization_endpoint)?,
            token: endpoint(&doc.token_endpoint)?,
            revoke: Ok(doc
                .revocation_endpoint
                .as_deref()
                .map(endpoint)
                .transpose()?),
        })
    }
}

/// Sends one request and rewrites the answer into the standard shape.
pub(super) struct Via<'a> {
    http: &'a HttpClient,
    quirks: &'a presets::Quirks,
}

impl Via<'_> {
    async fn send(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
        let response = self.http.send(request).await?;
        Ok(presets::normalize(self.quirks, response))
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for Via<'_> {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// An `Authorization: Basic` value for `id:secret`, marked sensitive.
fn basic(id: &str, secret: &str) -> Result<http::HeaderValue, Failure> {
    let pair = zeroize::Zeroizing::new(format!("{id}:{secret}"));
    let value = zeroize::Zeroizing::new(format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pair.as_bytes())
    ));
    let mut header = http::HeaderValue::from_str(&value)
        .map_err(|_| Failure::Broken("client credentials do not fit a header".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

/// Maps an `oauth2` error to what the broker acts on, dropping any response
/// bytes (which may hold tokens).
fn classify<T>(error: RequestTokenError<HttpError, T>) -> Failure
where
    T: oauth2::ErrorResponse + serde::Serialize + 'static,
{
    match error {
        RequestTokenError::ServerResponse(e) => {
            let json = serde_json::to_value(&e).unwrap_or_default();
            let code = json["error"]
                .as_str()
                .unwrap_or("unknown_error")
                .to_string();
            // Slack names a dead refresh token its own way.
            if matches!(code.as_str(), "invalid_grant" | "invalid_refresh_token") {
                return Failure::InvalidGrant;
            }
            let description = provider_text(&json["error_description"]);
            if description.is_empty() {
                Failure::Rejected(code)
            } else {
                Failure::Rejected(format!("{code}: {description}"))
            }
        }
        RequestTokenError::Request(e) => Failure::Broken(e.to_string()),
        RequestTokenError::Parse(e, _) => Failure::Broken(format!(
            "the provider's answer is not a token response (at {})",
            e.path()
        )),
        RequestTokenError::Other(e) => Failure::Broken(e),
    }
}

/// A provider's explanation, as text fit to quote: control characters
/// dropped, cut to 200 characters; empty when it is not a string.
fn provider_text(value: &serde_json::Value) -> String {
    value
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}
