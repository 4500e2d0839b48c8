"""The demo app: a small "Relay API" with a SQLite database (SQLAlchemy), a fake LLM, a job queue and
the Web Vitals ingest, instrumented with obs_instrument in a few lines (see `create_app`)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import Engine, create_engine, event, text

from .fake_llm import FakeLLM, ProviderError

log = logging.getLogger("obs_demo")
PAGES = ["/", "/chat", "/chat/[id]", "/docs/[...slug]", "/settings", "/pricing"]
BROKEN_REPORTS = frozenset({13})  # GET /api/reports/13 always answers 500


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    price: float = Field(ge=0, le=100_000)


class ChatIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=128)
    message: str = Field(min_length=1, max_length=8000)
    model: str = "demo-small"


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(max_length=256)


def _pw(p: str) -> str:
    return hashlib.sha256(b"obs-demo:" + p.encode()).hexdigest()


def make_engine(path: str) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 10},
                           pool_size=5, max_overflow=5)

    @event.listens_for(engine, "connect")
    def _wal(dbapi_conn, _):
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    with engine.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)"))
        c.execute(text("CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL)"))
        c.execute(text("CREATE TABLE IF NOT EXISTS chat_log (id INTEGER PRIMARY KEY, user_hash TEXT, model TEXT, "
                       "input_tokens INTEGER, output_tokens INTEGER)"))
        if c.execute(text("SELECT COUNT(*) FROM items")).scalar_one() == 0:
            rng = random.Random(7)
            words = ["relay", "vector", "prompt", "token", "cache", "index", "stream", "agent", "model", "search"]
            c.execute(text("INSERT INTO items (name, price) VALUES (:n, :p)"),
                      [{"n": f"{rng.choice(words)}-{rng.choice(words)}-{i}", "p": round(rng.uniform(1, 200), 2)}
                       for i in range(1, 201)])
            c.execute(text("INSERT INTO users (username, password_hash) VALUES (:u, :p)"),
                      [{"u": f"user{i}", "p": _pw("demo")} for i in range(1, 51)])
    return engine


def create_app(instrument: bool | None = None, db_path: str | None = None, speed: float | None = None,
               **obs_options) -> FastAPI:
    """`instrument=False` builds the same app without the helper (the benchmark's baseline)."""
    if instrument is None:
        from obs_instrument.config import env_bool
        instrument = env_bool("OBS_INSTRUMENT", True)
    speed = float(os.environ.get("OBS_DEMO_SPEED", "1")) if speed is None else speed
    db_path = db_path or os.environ.get("OBS_DEMO_DB", "/tmp/obs-demo.sqlite")
    engine = make_engine(db_path)
    llm = FakeLLM(speed=speed)
    jobs: asyncio.Queue = asyncio.Queue(maxsize=10_000)

    async def worker():
        while True:
            await jobs.get()
            await asyncio.sleep(random.uniform(0.05, 0.3) * speed)
            jobs.task_done()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        tasks = [asyncio.create_task(worker()) for _ in range(2)]
        yield
        for t in tasks:
            t.cancel()
        engine.dispose()

    app = FastAPI(title="obs-demo", lifespan=lifespan)
    obs = None
    if instrument:
        from obs_instrument import instrument_app
        # The whole opt-in: metrics + traces + JSON logs + SQL timing + Web Vitals ingest. How many proxies
        # in front append X-Forwarded-For is deployment knowledge, so it is a setting (compose:
        # OBS_WEBVITALS_TRUSTED_PROXY_HOPS=1, the load generator playing the proxy for many browsers).
        obs = instrument_app(app, service_name=obs_options.pop("service_name", None) or os.environ.get("OTEL_SERVICE_NAME") or "obs-demo", engine=engine,
                             web_vitals={"pages": PAGES}, **obs_options)
        obs.track_queue("jobs", jobs.qsize)

    def _llm_span(model: str, user_id: str):
        if obs is None:
            return contextlib.nullcontext(None)
        return obs.llm_call("chat", model, provider="fake", user_id=user_id)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/api/ping")
    async def ping():
        return {"pong": True}

    @app.get("/api/items")
    def list_items(limit: int = 20):
        with engine.connect() as c:
            rows = c.execute(text("SELECT id, name, price FROM items ORDER BY id DESC LIMIT :l"),
                             {"l": max(1, min(limit, 100))}).mappings().all()
        return [dict(r) for r in rows]

    @app.get("/api/items/{item_id}")
    def get_item(item_id: int):
        with engine.connect() as c:
            row = c.execute(text("SELECT id, name, price FROM items WHERE id = :i"), {"i": item_id}).mappings().first()
        if row is None:
            raise HTTPException(404, "no such item")
        return dict(row)

    @app.post("/api/items", status_code=201)
    def create_item(item: ItemIn):
        with engine.begin() as c:
            new_id = c.execute(text("INSERT INTO items (name, price) VALUES (:n, :p) RETURNING id"),
                               {"n": item.name, "p": item.price}).scalar_one()
        log.info("item created", extra={"item_id": new_id})
        return {"id": new_id}

    @app.get("/api/search")
    async def search(q: str = ""):
        # The slow endpoint: a ranking step that takes 100 ms to >1 s, then a LIKE scan.
        await asyncio.sleep(min(3.0, random.lognormvariate(-1.6, 0.7)) * speed)

        def query():
            with engine.connect() as c:
                return c.execute(text("SELECT id, name FROM items WHERE name LIKE :q LIMIT 10"),
                                 {"q": f"%{q[:40]}%"}).mappings().all()
        rows = await asyncio.to_thread(query)
        return {"results": [dict(r) for r in rows]}

    @app.post("/api/chat")
    async def chat(body: ChatIn):
        model = body.model if body.model in ("demo-large", "demo-small") else "demo-small"
        try:
            with _llm_span(model, body.user_id) as call:
                reply = await llm.complete(model, "You are Relay, a concise assistant.", [body.message])
                if call is not None:
                    call.set_usage(reply.input_tokens, reply.output_tokens, reply.model, reply.finish_reason)
        except ProviderError:
            log.warning("llm provider error", extra={"model": model})
            raise HTTPException(502, "upstream model unavailable") from None
        user_hash = obs.hash_user_id(body.user_id) if obs else "-"

        def store():
            with engine.begin() as c:
                c.execute(text("INSERT INTO chat_log (user_hash, model, input_tokens, output_tokens) "
                               "VALUES (:u, :m, :i, :o)"),
                          {"u": user_hash, "m": model, "i": reply.input_tokens, "o": reply.output_tokens})
        await asyncio.to_thread(store)
        return {"reply": reply.text, "model": model, "usage": {"input_tokens": reply.input_tokens,
                                                              "output_tokens": reply.output_tokens}}

    @app.post("/api/login")
    def login(body: LoginIn):
        with engine.connect() as c:
            row = c.execute(text("SELECT password_hash FROM users WHERE username = :u"), {"u": body.username}).first()
        if row is None or row[0] != _pw(body.password):
            reason = "unknown_user" if row is None else "invalid_password"
            if obs:
                obs.record_auth("password", False, reason)
            log.warning("login failed", extra={"reason": reason,
                                               "user_hash": obs.hash_user_id(body.username) if obs else None})
            raise HTTPException(401, "invalid credentials")
        if obs:
            obs.record_auth("password", True)
        return {"token": hashlib.sha256(os.urandom(16)).hexdigest()}

    @app.get("/api/reports/{report_id}")
    async def report(report_id: int):
        await asyncio.sleep(random.uniform(0.2, 0.9) * speed)
        if report_id in BROKEN_REPORTS:
            # The demo's designed bug: this report's data crashes the renderer on every request (an
            # unhandled exception -> 500, error span, ERROR log). The load generator opens it at a fixed
            # share of its traffic, so the 5xx ratio is steady (demo/README.md, "Error mix").
            raise RuntimeError(f"report {report_id} renderer crashed")
        return {"report": report_id, "rows": random.randint(10, 500)}

    @app.post("/api/jobs", status_code=202)
    async def enqueue(count: int = 1):
        n = max(1, min(count, 100))
        for _ in range(n):
            jobs.put_nowait({"kind": "reindex"})
        return {"queued": n, "depth": jobs.qsize()}

    app.state.engine = engine
    return app
