"""Serve the real httpbin application on a loopback port for Airlock's tests.

Prints the chosen port on the first line of stdout, then serves until its
standard input closes, which happens when the test process that started it
exits for any reason.
"""

import logging
import os
import sys
import threading

# Only errors: httpbin warns at import about optional extras it runs without.
logging.basicConfig(level=logging.ERROR)

from httpbin import app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)

    def stop_when_parent_goes() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=stop_when_parent_goes, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
