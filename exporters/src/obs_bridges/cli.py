"""``obs-bridge <railway|vercel|supabase|github|github-webhook|ingest|simulator>``: one entry point for every
process.

``github-webhook`` is the GitHub bridge with its webhook receiver in the same process: the receiver and the
poller must share one ledger of what was counted, or a run both see would be counted twice."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from obs_bridges import __version__, config, log

EXPORTERS = ("railway", "vercel", "supabase", "github")


def _load(name: str):
    if name == "github":
        from obs_bridges import github as m
    elif name == "vercel":
        from obs_bridges import vercel as m
    elif name == "railway":
        from obs_bridges import railway as m
    elif name == "supabase":
        from obs_bridges import supabase as m
    else:  # pragma: no cover
        raise ValueError(name)
    return m


def run_exporter(name: str, env=None, *, webhooks: bool = False) -> int:
    env = os.environ if env is None else env
    from prometheus_client import disable_created_metrics

    disable_created_metrics()
    log.setup(f"{name}-exporter", (env.get("LOG_LEVEL") or "info").strip() or "info")
    lg = log.get(f"obs_bridges.{name}")
    try:
        from obs_bridges import privileges

        dropped = privileges.drop_if_root(env)
        if dropped:
            lg.info("started as root: volumes given to the image's user, now running as it",
                    extra=log.kv(uid=dropped[0], gid=dropped[1]))
        exp = _load(name).build(env)
        receiver = _receiver(exp, env) if webhooks else None
    except config.ConfigError as e:
        lg.error(f"invalid configuration: {e}", extra=log.kv(exit_code=2))
        return 2
    from obs_bridges import httpserver

    try:
        srv = httpserver.serve(exp, exp.settings.listen_addr, exp.settings.listen_port)
    except OSError as e:
        lg.error(f"cannot listen on {exp.settings.listen_addr}:{exp.settings.listen_port}: {e.strerror or e} "
                 "(set LISTEN_ADDR / LISTEN_PORT)", extra=log.kv(exit_code=1))
        return 1
    tok_ok = exp.settings.token.configured
    lg.info("exporter starting", extra=log.kv(
        version=__version__, mode="demo" if exp.settings.demo else "live",
        listen=f"{exp.settings.listen_addr}:{srv.server_address[1]}",
        api=exp.settings.api_url, token_configured=tok_ok,
        upstreams={u.name: u.interval for u in exp.upstreams}))
    if not tok_ok:
        v = exp.settings.token.name
        lg.warning(f"{v} is not set: the exporter serves /metrics with {name}_up 0 and retries with backoff; "
                   f"set {v} or {v}_FILE (or {config.DEMO_ENV} for demo data)")
    servers = [srv]
    if receiver is not None:
        try:
            servers.append(_serve_receiver(receiver, lg))
        except OSError as e:
            s = receiver.settings
            lg.error(f"cannot listen on {s.listen_addr}:{s.port} for webhooks: {e.strerror or e} "
                     "(set GITHUB_WEBHOOK_LISTEN_ADDR / GITHUB_WEBHOOK_PORT)", extra=log.kv(exit_code=1))
            srv.server_close()
            return 1
    exp.start()
    return _serve_until_signal(servers, exp.stop)


def _receiver(exp, env):
    from obs_bridges import github_receiver

    return github_receiver.Receiver(exp, github_receiver.load_settings(env, exp.settings), exp.registry,
                                    clock=exp.clock)


def _serve_receiver(receiver, lg):
    from obs_bridges import github_receiver

    srv = github_receiver.serve(receiver)
    s = receiver.settings
    secret = s.secret.read()
    lg.info("webhook receiver listening", extra=log.kv(
        listen=f"{s.listen_addr}:{srv.server_address[1]}", path=github_receiver.PATH, secret_from=s.secret.name,
        max_requests_per_second=s.max_rps))
    if secret.value is None:
        lg.warning(f"deliveries are refused (503) until the webhook secret can be read: {secret.problem}; "
                   "polling goes on at GITHUB_POLL_INTERVAL_SECONDS")
    return srv


def _serve_until_signal(servers: list, on_stop) -> int:
    done = threading.Event()

    def _sig(*_):
        done.set()

    signal.signal(signal.SIGTERM, _sig)
    signal.signal(signal.SIGINT, _sig)
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    done.wait()
    on_stop()
    for s in servers:
        s.shutdown()
        s.server_close()
    log.get("obs_bridges").info("stopped")
    return 0


def run_simulator(argv: list[str], env=None) -> int:
    env = os.environ if env is None else env
    log.setup("simulator", (env.get("LOG_LEVEL") or "info").strip() or "info")
    try:
        from obs_bridges.simulator import server as sim
    except ModuleNotFoundError as e:  # graphql-core comes with the extra, not with every exporter
        if e.name != "graphql":
            raise
        log.get("obs_bridges.simulator").error("cannot start the simulator: graphql-core is not installed; "
                                               "install obs-bridges[simulator] (pip install 'obs-bridges[simulator]')")
        return 1

    p = argparse.ArgumentParser(prog="obs-bridge simulator", description="Serve the four platform APIs "
                                "from a seeded synthetic world.")
    # Loopback unless told otherwise: its control API (/_control/*) is unauthenticated, so reaching it
    # from other hosts is an explicit choice (compose and Railway set LISTEN_ADDR).
    p.add_argument("--listen-addr", default=(env.get("LISTEN_ADDR") or "").strip() or "127.0.0.1")
    p.add_argument("--port", type=int, default=int(env.get("LISTEN_PORT") or config.DEFAULT_PORTS["simulator"]))
    sim.add_world_args(p, env)
    args = p.parse_args(argv)
    try:
        srv = sim.make_server(args.listen_addr, args.port, sim.world_from_args(args))
    except (OSError, ValueError) as e:
        log.get("obs_bridges.simulator").error(f"cannot start the simulator: {e}")
        return 1
    log.get("obs_bridges.simulator").info("simulator listening", extra=log.kv(
        listen=f"{args.listen_addr}:{srv.server_address[1]}", seed=args.seed))
    return _serve_until_signal([srv], lambda: None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="obs-bridge", description="Prometheus bridges for Railway, Vercel, "
                                "Supabase and GitHub Actions, and their API simulator.")
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("command", choices=EXPORTERS + ("github-webhook", "ingest", "simulator"))
    p.add_argument("args", nargs=argparse.REMAINDER)
    ns = p.parse_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    if ns.command == "simulator":
        return run_simulator(argv[1:])
    if ns.command == "ingest":
        if len(argv) > 1:
            p.error("ingest takes no arguments: it is configured by environment variables")
        from obs_bridges import ingest_server

        return ingest_server.run()
    if ns.command == "github-webhook":
        if len(argv) > 1:
            p.error("github-webhook takes no arguments: it is configured by environment variables")
        return run_exporter("github", webhooks=True)
    if len(argv) > 1:
        from obs_bridges import supabase_tools

        if ns.command == "supabase":
            return supabase_tools.main(argv[1:])
        p.error(f"{ns.command} takes no arguments: it is configured by environment variables")
    return run_exporter(ns.command)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
