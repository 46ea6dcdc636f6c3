"""`python -m bench.moto_server -H 127.0.0.1 -p PORT`: moto's server app behind HTTP/1.1 keep-alive connections.

`moto_server` closes every connection after one request; DynamoDB and S3 keep them alive, so a benchmark against it
would charge the puller for connections a Lambda in AWS does not open. The server is the local runtime's
(`possync.local.moto_http`), run here in a process of its own so that only the puller's CPU is measured.
"""

from __future__ import annotations

import argparse
import os

from possync.local.moto_http import KeepAliveHandler, server

__all__ = ["KeepAliveHandler", "main", "server"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    server(args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
