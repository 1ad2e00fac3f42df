from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from voxflow.core.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """Who did what to a secret or a connection, and when; never a value."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_id_id", "org_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # time-ordered
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # "user", "api_key", "call" or "system", and its id ("" for system).
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))  # "secret.created", "connection.deleted", …
    target_type: Mapped[str] = mapped_column(String(16))  # "secret", "connection", "vault"
    target_id: Mapped[str] = mapped_column(String(40))
    target_name: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON, never secret material
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
