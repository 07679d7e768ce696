"""Added latency of `rollout serve` over a direct call to the same fake OpenAI backend, beside a
reference gateway (LiteLLM's proxy) measured in the same run.

Three processes on 127.0.0.1: a fake OpenAI-compatible backend (Starlette on uvicorn, fixed
reply), the gateway (one uvicorn worker; identity with an ES256 JWT, kill switch + release flag
through OpenFeature/flagd, boundaries on input and output, retrieval, a durable JSONL audit
record with group commit) and, when its executable is found (``--litellm``, default
``litellm`` on PATH), LiteLLM's proxy pointing at the same backend. The client (httpx,
keep-alive) interleaves the targets request by request, then drives each with 8 concurrent
clients. Targets: added p50 <= 1.0 ms and p99 <= 3 ms sequentially; throughput at 8 clients
>= the reference gateway's.

    .venv/bin/python benchmarks/gateway_http.py [--requests 1000] [--litellm PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

REPLY = {
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000, "model": "fake",
    "choices": [{"index": 0, "message": {"role": "assistant",
                                         "content": "The primary on-call acknowledges within 15 minutes. "
                                                    "[oncall-escalation]"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
}
QUESTION = "How quickly must the primary on-call acknowledge a page?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_backend(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    body = json.dumps(REPLY).encode()

    async def chat(request):  # noqa: ANN001, ANN202
        await request.body()
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, http="httptools")


def run_gateway(port: int, state: Path, backend: str) -> None:
    import uvicorn

    from controller.bundle.models import load_bundle
    from controller.gateway.asgi import create_app
    from controller.gateway.server import ServeConfig, uvicorn_config
    from controller.models.openai import OpenAICompatibleAdapter
    from controller.service.compose import StatePaths, build_gateway

    bundle = load_bundle(REPO / "workflows/internal-docs-qa")
    gateway = build_gateway(bundle, state, adapter_factory=lambda release, retriever: OpenAICompatibleAdapter(
        base_url=backend, api_key_env=None))
    app = create_app(gateway, flags_path=StatePaths(state).flags(bundle.id))
    uvicorn.Server(uvicorn_config(app, ServeConfig(workflow="", state=str(state), port=port))).run()


def prepare(state: Path) -> str:
    from controller.adapters.devidp import DevIdp
    from controller.adapters.flag_file import write_flag_document
    from controller.bundle.models import load_bundle
    from controller.core.flags import render_flag_document
    from controller.core.release import create_release, model_choice
    from controller.service.compose import StatePaths, ensure_live_flags, open_local_store

    bundle = load_bundle(REPO / "workflows/internal-docs-qa")
    store = open_local_store(state)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    paths = StatePaths(state)
    ensure_live_flags(bundle, paths)
    doc = render_flag_document(bundle.workflow, {"internal": digest}, killed=False)
    write_flag_document(paths.flags(bundle.id), doc)
    idp = DevIdp(paths.idp)
    idp.ensure()
    sso = bundle.workflow.sso.idp
    import datetime as dt

    return idp.mint("alice.moreau@corp.example", ["eng", "ai-pilot"], issuer=sso.issuer, audience=sso.audience,
                    ttl=dt.timedelta(minutes=50))


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({proc.returncode})")
        try:
            httpx.post(url, json={"model": "x", "messages": []}, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["bench", "backend", "gateway"], default="bench")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", default="")
    parser.add_argument("--backend", default="")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--litellm", default=shutil.which("litellm") or "")
    args = parser.parse_args()
    if args.role == "backend":
        run_backend(args.port)
        return 0
    if args.role == "gateway":
        run_gateway(args.port, Path(args.state), args.backend)
        return 0

    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="rollout-bench-http-"))
    procs: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    try:
        state = tmp / "state"
        token = prepare(state)
        bport, gport = free_port(), free_port()
        backend = f"http://127.0.0.1:{bport}"
        me = [sys.executable, str(Path(__file__).resolve())]
        procs.append(subprocess.Popen([*me, "--role", "backend", "--port", str(bport)], env=env))
        wait_up(f"{backend}/v1/chat/completions", procs[-1])
        procs.append(subprocess.Popen([*me, "--role", "gateway", "--port", str(gport), "--state", str(state),
                                       "--backend", backend], env=env))
        gateway = f"http://127.0.0.1:{gport}"
        wait_up(f"{gateway}/v1/chat/completions", procs[-1])
        targets = {
            "direct": (f"{backend}/v1/chat/completions", "fake", "none"),
            "rollout": (f"{gateway}/v1/chat/completions", "internal-docs-qa", token),
        }
        litellm_version = None
        if args.litellm:
            lport = free_port()
            cfg = tmp / "litellm.yaml"
            cfg.write_text(
                "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/fake\n"
                f"      api_base: {backend}/v1\n      api_key: sk-fake\n"
                "litellm_settings:\n  telemetry: false\n")
            import secrets

            master = "sk-" + secrets.token_hex(16)  # made per run, never stored
            lenv = {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                    "LITELLM_MASTER_KEY": master}
            procs.append(subprocess.Popen([args.litellm, "--config", str(cfg), "--port", str(lport),
                                           "--host", "127.0.0.1"], env=lenv, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_up(f"http://127.0.0.1:{lport}/v1/chat/completions", procs[-1], timeout=180)
            targets["litellm"] = (f"http://127.0.0.1:{lport}/v1/chat/completions", "bench", master)
            pip = Path(args.litellm).parent / "pip"
            out = subprocess.run([str(pip), "show", "litellm"], capture_output=True, text=True).stdout
            litellm_version = next((ln.split(":", 1)[1].strip() for ln in out.splitlines()
                                    if ln.startswith("Version:")), "?")

        def call(client: httpx.Client, name: str) -> float:
            url, model, key = targets[name]
            t = time.perf_counter()
            r = client.post(url, headers={"Authorization": f"Bearer {key}"},
                            json={"model": model, "messages": [{"role": "user", "content": QUESTION}]})
            elapsed = (time.perf_counter() - t) * 1000
            if r.status_code != 200 or "15 minutes" not in r.text:
                raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:200]}")
            return elapsed

        lat: dict[str, list[float]] = {n: [] for n in targets}
        with httpx.Client(timeout=30, trust_env=False) as client:
            for name in targets:  # warm up every connection and cache
                for _ in range(50):
                    call(client, name)
            for _ in range(args.requests):
                for name in targets:
                    lat[name].append(call(client, name))

        def throughput(name: str, clients: int = 8, seconds: float = 5.0) -> float:
            done = [0] * clients
            stop = time.monotonic() + seconds

            def worker(i: int) -> None:
                with httpx.Client(timeout=30, trust_env=False) as c:
                    while time.monotonic() < stop:
                        call(c, name)
                        done[i] += 1

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(done) / seconds

        rps = {name: throughput(name) for name in targets}
        base50, base99 = statistics.median(lat["direct"]), percentile(lat["direct"], 99)
        print(f"{args.requests} interleaved sequential requests per target; 8 clients for 5 s each")
        if litellm_version:
            print(f"reference gateway: LiteLLM proxy {litellm_version}")
        print(f"{'target':<10} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} {'req/s @8':>9}")
        for name in targets:
            p50, p99 = statistics.median(lat[name]), percentile(lat[name], 99)
            print(f"{name:<10} {p50:8.2f} {p99:8.2f} {p50 - base50:10.2f} {p99 - base99:10.2f} {rps[name]:9.0f}")
        added50 = statistics.median(lat["rollout"]) - base50
        added99 = percentile(lat["rollout"], 99) - base99
        ok = True
        for label, passed in [
            (f"added p50 {added50:.2f} ms <= 1.0 ms", added50 <= 1.0),
            (f"added p99 {added99:.2f} ms <= 3.0 ms", added99 <= 3.0),
        ] + ([(f"throughput @8 {rps['rollout']:.0f} >= LiteLLM's {rps['litellm']:.0f} req/s",
               rps["rollout"] >= rps["litellm"])] if "litellm" in rps else []):
            print(f"{'PASS' if passed else 'FAIL'}  {label}")
            ok = ok and passed
        return 0 if ok else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
