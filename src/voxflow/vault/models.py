from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from voxflow.core.db import Base, UTCDateTime, utcnow


class Secret(Base):
    """One encrypted value: a secret the team named, or an OAuth connection's tokens.

    `ciphertext` is `voxflow.vault.crypto.Sealed.encode()`: the value under its own data key,
    and the data key wrapped by master key `key_version`, both bound to org id and row id.
    """

    __tablename__ = "secrets"
    __table_args__ = (
        Index("uq_secrets_org_id_name", "org_id", "name", unique=True),
        # Rotation walks the rows still wrapped by an older master key.
        Index("ix_secrets_key_version", "key_version"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # "secret": listed and referenced as {{ secrets.NAME }}; "connection": OAuth tokens of an
    # integrations connection, named "connection:<id>" (a name no secret can take).
    kind: Mapped[str] = mapped_column(String(16), default="secret")
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    ciphertext: Mapped[str] = mapped_column(Text)
    key_version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
