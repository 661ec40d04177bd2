//! `airlock connect CONNECTION --user U`: link an account from a terminal.
//!
//! Listens on a loopback port, prints the provider's consent URL (and opens
//! a browser when there is a display), serves the callback with the same
//! handler the host mounts (`broker::consent_routes`), and exits once the
//! tokens are stored.

use airlock::broker::{Broker, Linked, consent_routes};
use airlock::vault::LocalVault;
use anyhow::{Context as _, bail};
use hyper_util::rt::TokioIo;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The connection to link, as named in the config.
    connection: String,
    /// The user whose account is linked.
    #[arg(long)]
    user: String,
    /// Scopes to ask for besides the connection's, comma-separated.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// Loopback port to receive the callback on. Default: the port of the
    /// connection's loopback redirect_url, else any free port.
    #[arg(long)]
    port: Option<u16>,
    /// Print the URL only; do not try to open a browser.
    #[arg(long)]
    no_browser: bool,
    /// Seconds to wait for the consent before giving up.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub async fn run(config: &airlock::manifest::Config, args: Args) -> anyhow::Result<i32> {
    let Some(connection) = config.connections.get(&args.connection) else {
        bail!(
            "no connection named {:?} in {}",
            args.connection,
            config.file.display()
        );
    };
    let Some(oauth) = &connection.oauth else {
        bail!(
            "connection {:?} has no OAuth provider; set provider and client_id in {}",
            args.connection,
            config.file.display()
        );
    };
    let vault = Arc::new(LocalVault::open(&config.vault.dir, &config.vault.key)?);
    let broker = Broker::from_config(config, vault)?;

    // The redirect goes to this listener: the configured loopback
    // redirect_url (its path and port), or /consent/callback on any port.
    let configured = oauth
        .redirect_url
        .clone()
        .filter(airlock::manifest::oauth::is_loopback);
    let port = args
        .port
        .or_else(|| configured.as_ref().and_then(|u| u.port()))
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    let port = listener.local_addr()?.port();
    let mut redirect = configured.unwrap_or_else(|| {
        url::Url::parse("http://127.0.0.1/consent/callback").expect("a valid URL")
    });
    redirect
        .set_port(Some(port))
        .map_err(|()| anyhow::anyhow!("redirect URL cannot take a port"))?;

    let url = broker
        .begin_consent_with_redirect(&args.user, &args.connection, &args.scopes, &redirect)
        .await?;
    println!(
        "To link connection {:?} for user {:?}, open this URL in a browser:\n{url}",
        args.connection, args.user
    );
    std::io::stdout().flush()?;
    if !args.no_browser {
        open_browser(&url);
    }

    let wait = Duration::from_secs(args.timeout);
    let linked = tokio::time::timeout(wait, serve(listener, broker))
        .await
        .map_err(|_| anyhow::anyhow!("no consent arrived within {}s", args.timeout))??;
    println!(
        "linked connection {:?} for user {:?}",
        linked.connection, linked.user
    );
    Ok(0)
}

/// Serves consent callbacks until one links the account or reports that
/// the provider refused.
async fn serve(listener: tokio::net::TcpListener, broker: Broker) -> anyhow::Result<Linked> {
    let (done, mut finished) = tokio::sync::mpsc::channel::<anyhow::Result<Linked>>(1);
    loop {
        tokio::select! {
            outcome = finished.recv() => {
                // Let the browser receive the page before the process exits.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return outcome.unwrap_or_else(|| bail!("the callback listener stopped"));
            }
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accepting a callback connection")?;
                let (broker, done) = (broker.clone(), done.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (broker, done) = (broker.clone(), done.clone());
                        async move {
                            let response = consent_routes(&broker, &request).await;
                            let is_callback = request.uri().path().ends_with("/consent/callback");
                            if let Some(linked) = response.extensions().get::<Linked>() {
                                let _ = done.try_send(Ok(linked.clone()));
                            } else if is_callback && response.status().is_client_error() {
                                let _ = done.try_send(Err(anyhow::anyhow!(
                                    "the consent callback failed with status {}; see the log above",
                                    response.status()
                                )));
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

/// Opens `url` in the desktop's browser when there is a display; the URL is
/// printed either way.
fn open_browser(url: &str) {
    let has_display = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || cfg!(target_os = "macos");
    if !has_display {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
