//! Peer servers that nobody here wrote, installed by `scripts/peers.sh`
//! into `.peers/` and started on loopback ports chosen by the kernel.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// A running peer. It exits when this process exits: it watches the pipe
/// held in `_lifeline`.
pub struct Peer {
    /// Base URL, such as `http://127.0.0.1:40123`.
    pub url: String,
    /// Port it listens on.
    pub port: u16,
    _child: Mutex<Child>,
    _lifeline: Mutex<ChildStdin>,
}

/// The project's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Python interpreter of the peers' virtual environment.
pub fn python() -> PathBuf {
    let python = root().join(".peers/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/peers.sh first (scripts/test.sh does)",
        python.display()
    );
    python
}

/// The shared httpbin server of this test process.
pub fn httpbin() -> &'static Peer {
    static PEER: OnceLock<Peer> = OnceLock::new();
    PEER.get_or_init(|| {
        start(Command::new(python()).arg(root().join("tests/peers/httpbin_server.py")))
    })
}

/// Node.js, for the npm peers installed in `.peers/node`.
pub fn node() -> PathBuf {
    let module = root().join(".peers/node/node_modules/oidc-provider");
    assert!(
        module.exists(),
        "{} is missing: run scripts/peers.sh first (scripts/test.sh does)",
        module.display()
    );
    PathBuf::from("node")
}

/// A new `oidc-provider` (npm) authorization server for one test, with
/// `settings` (a JSON object; see tests/peers/oidc_server.mjs).
pub fn oidc_provider(settings: &str) -> Peer {
    start(
        Command::new(node())
            .arg(root().join("tests/peers/oidc_server.mjs"))
            .arg(settings),
    )
}

fn start(command: &mut Command) -> Peer {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a peer server");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the peer's port");
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("peer printed {line:?} instead of its port"));
    let lifeline = child.stdin.take().unwrap();
    Peer {
        url: format!("http://127.0.0.1:{port}"),
        port,
        _child: Mutex::new(child),
        _lifeline: Mutex::new(lifeline),
    }
}
