"""python -m obs_demo serve | loadgen"""
from __future__ import annotations

import logging
import os
import sys


def _plain_json_logging() -> None:
    # The loadgen (and the uninstrumented baseline) log JSON too, without the OTel exporters.
    from obs_instrument.logs import configure_logging
    configure_logging(os.environ.get("OTEL_SERVICE_NAME", "obs-demo-loadgen"),
                      os.environ.get("DEPLOYMENT_ENVIRONMENT", "local"), "INFO")


def serve() -> int:
    import uvicorn

    from .app import create_app
    app = create_app()
    if getattr(app.state, "obs", None) is None:
        _plain_json_logging()
    uvicorn.run(app, host=os.environ.get("LISTEN_HOST", "0.0.0.0"), port=int(os.environ.get("LISTEN_PORT", "8000")),
                log_config=None, access_log=False, server_header=False,
                timeout_graceful_shutdown=5)
    return 0


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "serve"
    if cmd == "serve":
        return serve()
    if cmd == "loadgen":
        _plain_json_logging()
        from .loadgen import main as loadgen_main
        return loadgen_main(argv[1:])
    print(f"usage: python -m obs_demo serve|loadgen [options] (got {cmd!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main(sys.argv[1:]))
