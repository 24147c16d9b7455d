"""The scripts the bot has loaded: the last good version of each, kept for when a file breaks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from chatbot.store.repository import Repository, upsert
from chatbot.store.schema import scripts_table


class Scripts(Repository):
    """Reads and writes of the scripts table."""

    def save(self, script_id: str, path: str, digest: str, source: str, *, now: datetime) -> None:
        """Remember the last good version of a script (replicas loading the same folder may
        save it at the same instant: the loser's write runs again, as an update)."""
        values = {
            "path": path,
            "digest": digest,
            "source": source,
            "loaded_at": now,
            "removed_at": None,
        }
        self._racing(lambda conn: upsert(conn, scripts_table, {"script_id": script_id}, values))

    def source_at(self, path: str) -> tuple[str, str] | None:
        """(script id, source) of the last good version loaded from ``path``."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(scripts_table.c.script_id, scripts_table.c.source).where(
                    scripts_table.c.path == path, scripts_table.c.removed_at.is_(None)
                )
            ).first()
        return (row.script_id, row.source) if row else None

    def digest(self, script_id: str) -> str | None:
        """The digest of the version last saved for ``script_id``."""
        with self._tx() as conn:
            return conn.execute(
                sa.select(scripts_table.c.digest).where(scripts_table.c.script_id == script_id)
            ).scalar()

    def mark_removed(self, script_id: str, *, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                scripts_table.update()
                .where(scripts_table.c.script_id == script_id)
                .values(removed_at=now)
            )

    def active_ids(self) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(scripts_table.c.script_id).where(scripts_table.c.removed_at.is_(None))
            )
            return [r.script_id for r in rows]
