"""``index.milvus``: the Milvus backend's own settings (pydantic only: no pymilvus import)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MilvusOptions(BaseModel):
    """Where the Milvus index lives: ``index.milvus.uri``, ``collection``, ``token_env``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    uri: str = Field(
        "index/milvus.db",
        description="A .db file (embedded Milvus Lite) or an http(s):// address (a 'milvus-lite server' or a Milvus cluster).",
    )
    collection: str = Field(
        "rag_chunks",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,180}$",
        description="The alias readers use; builds write collections named <collection>__gen_<time> behind it.",
    )
    token_env: str = Field(
        "MILVUS_TOKEN",
        description="The environment variable holding the token (user:password or an API key); never put the token in a file.",
    )

    @field_validator("uri")
    @classmethod
    def _db_or_url(cls, v: str) -> str:
        if not (v.endswith(".db") or v.startswith(("http://", "https://"))):
            raise ValueError(f"must be a .db file (embedded Milvus Lite) or an http(s):// address, got {v!r}")
        return v
