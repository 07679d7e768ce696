"""The one publish path of the flag document, for every sink (file, S3, Kubernetes).

``publish_flags`` asks each sink to swap its live document for the rendered one, and the pure
rule ``controller.core.flags.publish_hold`` decides, against the live bytes, whether it may:
publishing never releases an engaged kill switch unless the command is the explicit release
(``rollout kill --release``). A held sink keeps its document and the result says why; the
operator records the kill or releases it. Kill > rollback > promote, in every sink alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controller.core.flags import publish_hold
from controller.ports import FlagSink

__all__ = ["Published", "publish_flags", "publish_to"]


@dataclass(frozen=True)
class Published:
    sink: str
    written: bool
    held_because: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"sink": self.sink, "written": self.written, "held_because": self.held_because}


def publish_to(
    sink: FlagSink,
    rendered: bytes,
    kill_switch_flag: str,
    *,
    releasing_kill: bool = False,
    released_at: str | None = None,
) -> Published:
    """Publish ``rendered`` to one sink unless ``publish_hold`` says the live document must stay."""
    held: list[str] = []

    def decide(live: bytes | None) -> bytes | None:
        held.clear()
        reason = publish_hold(
            live, rendered, kill_switch_flag, releasing_kill=releasing_kill, released_at=released_at
        )
        if reason is not None:
            held.append(reason)
            return None
        return None if live == rendered else rendered

    written = sink.swap(decide)
    return Published(sink.describe(), written, held[0] if held else None)


def publish_flags(
    sinks: Iterable[FlagSink],
    rendered: bytes,
    kill_switch_flag: str,
    *,
    releasing_kill: bool = False,
    released_at: str | None = None,
) -> tuple[Published, ...]:
    """Publish to each sink in order (the local file first: a kill must not wait on a cluster)."""
    return tuple(
        publish_to(s, rendered, kill_switch_flag, releasing_kill=releasing_kill, released_at=released_at)
        for s in sinks
    )
