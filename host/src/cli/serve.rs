//! `airlock serve`: serve the tools to agent runtimes over MCP (stdio or
//! streamable HTTP) and the HTTP API.

use airlock::runtime::Host;
use airlock::serve::{Acting, ServeError, Server};
use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Serve one MCP session on standard input and output.
    #[arg(long, required_unless_present = "http", conflicts_with = "http")]
    stdio: bool,
    /// Serve MCP (at /mcp) and the HTTP API on this address, such as
    /// 127.0.0.1:8080; port 0 picks a free one. The bound address is printed
    /// on standard output.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// The user a --stdio session acts for (default: [serve] user).
    #[arg(long, conflicts_with = "http")]
    user: Option<String>,
}

pub async fn run(config: &airlock::manifest::Config, args: Args) -> anyhow::Result<i32> {
    let audit = super::open_audit(config)?;
    let host = Arc::new(Host::load(config, audit.clone())?);
    let server = Arc::new(Server::new(host, audit, config));
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));

    if args.stdio {
        let user = args
            .user
            .or_else(|| config.serve.user.clone())
            .ok_or_else(|| ServeError::NoUser(config.file.display().to_string()))?;
        airlock::vault::check_name("user", &user)?;
        let acting = Acting {
            caller: "mcp-stdio".into(),
            user,
        };
        airlock::serve::serve_stdio(server, acting, shutdown).await?;
        return Ok(0);
    }

    let addr = args.http.expect("clap requires --stdio or --http");
    if server.callers().is_empty() {
        return Err(ServeError::NoCallers(config.file.display().to_string()).into());
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let sessions = CancellationToken::new();
    // The consent routes are the only ones reachable without a caller
    // credential; each is bound by its signed link or single-use state.
    let app = airlock::serve::router(server.clone(), consent_router(&server), sessions.clone());
    println!("listening on http://{bound}");
    tracing::info!(%bound, tools = server.host().tools().len(), "serving");
    airlock::serve::serve_http(server, listener, app, sessions, shutdown).await?;
    Ok(0)
}

/// `GET /consent/start` and `GET /consent/callback`, served by the same
/// broker the host fetches tokens from, so a completed consent is used by
/// the very next call.
fn consent_router(server: &Server) -> axum::Router {
    let broker = server.host().egress().broker.clone();
    let handler = move |request: axum::extract::Request| {
        let broker = broker.clone();
        // The routes never read a body; drop it so the future is Send.
        let (parts, _body) = request.into_parts();
        let request = http::Request::from_parts(parts, ());
        async move { airlock::broker::consent_routes(&broker, &request).await }
    };
    axum::Router::new()
        .route("/consent/start", axum::routing::get(handler.clone()))
        .route("/consent/callback", axum::routing::get(handler))
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn signal_shutdown(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot watch SIGTERM");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
