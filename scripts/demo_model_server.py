"""A stand-in for a team's self-hosted OpenAI-compatible endpoint (vLLM), for `make demo` only.

It speaks the real `/v1/chat/completions` wire format on 127.0.0.1 so that release 2 of the
demo goes through the project's real `openai-compatible` adapter. Behind it is the offline
extractive baseline over the bundle's corpus. When the file named by `--degrade-flag` exists,
it simulates the incident the demo needs, clearly labelled: the vendor swapped the model behind
the endpoint and it now answers confidently without sources (a regression the golden set
catches).

    python scripts/demo_model_server.py --corpus workflows/internal-docs-qa/corpus \
        --port-file PATH --degrade-flag PATH
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.bundle.models import CorpusDoc  # noqa: E402
from controller.core.retrieval import Retriever  # noqa: E402
from controller.models.base import ModelRequest  # noqa: E402
from controller.models.local import LocalExtractiveAdapter, question_from_prompt  # noqa: E402

DEGRADED_ANSWER = "Sure! Based on industry best practice, the answer is: within 2 hours, escalate to your manager."
BASELINE_MARK = "by the offline extractive baseline"


def in_own_words(model_id: str, text: str) -> str:
    """The simulated endpoint answers as itself, not with the offline baseline's header (whose
    sentence next to ``model: northwind-docs-7b`` was misleading); the quoted, cited facts stay."""
    first, _, rest = text.partition("\n")
    if BASELINE_MARK not in first:
        return text
    return f"{model_id} (simulated self-hosted model, demo only) answers from the cited docs:\n{rest}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--degrade-flag", type=Path, required=True)
    args = parser.parse_args()
    docs = [CorpusDoc(p.stem, p, p.read_text(encoding="utf-8")) for p in sorted(args.corpus.glob("*.md"))]
    model = LocalExtractiveAdapter(Retriever.from_docs(docs))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            prompt = body["messages"][-1]["content"]
            if args.degrade_flag.exists():
                text = DEGRADED_ANSWER
            else:
                text = model.complete(
                    ModelRequest(
                        model_id=body["model"], system="", prompt=prompt, question=question_from_prompt(prompt)
                    )
                ).text
                text = in_own_words(body["model"], text)
            reply = {
                "id": f"chatcmpl-{time.time_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4,
                          "total_tokens": (len(prompt) + len(text)) // 4},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *a: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    args.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
