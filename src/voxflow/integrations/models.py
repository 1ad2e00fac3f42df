from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from voxflow.core.db import Base, UTCDateTime, utcnow


class Connection(Base):
    """An org's authorised account at an OAuth provider; its tokens live in the vault."""

    __tablename__ = "connections"
    __table_args__ = (
        Index("ix_connections_org_id_id", "org_id", "id"),
        Index("uq_connections_org_id_name", "org_id", "name", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))
    # What workflows call it by: `connection: "Sales CRM"` in an airtable.* action.
    name: Mapped[str] = mapped_column(String(100))
    # "active", or "needs_reauth" once the provider refused the refresh token (invalid_grant).
    status: Mapped[str] = mapped_column(String(16), default="active")
    # The vault row (kind "connection") holding the token set as JSON.
    secret_id: Mapped[str] = mapped_column(ForeignKey("secrets.id"))
    scopes: Mapped[str] = mapped_column(Text, default="")
    # When the access token expires (copied out of the vault so refresh timing needs no decrypt).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OAuthState(Base):
    """A started authorisation: single-use, 10 minutes, bound to user, org and provider."""

    __tablename__ = "oauth_states"
    __table_args__ = (Index("ix_oauth_states_expires_at", "expires_at"),)

    # SHA-256 of the `state` sent to the provider: the database never holds the value itself.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(40))
    connection_name: Mapped[str] = mapped_column(String(100))
    return_to: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    # PKCE verifier, kept here and never sent to the browser.
    code_verifier: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
