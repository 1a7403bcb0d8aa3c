"""One action class registered on its own (entry point ``slugify``)."""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Action, ActionContext


class SlugifyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=1000, description="The title to turn into a slug.")


class SlugifyOutput(BaseModel):
    slug: str


class Slugify(Action):
    """Turn a title into a URL slug (ASCII, lower case, dashes). Touches nothing."""

    name = "text.slugify"
    description = "Turn a title into a lower-case ASCII slug with dashes."
    category = "text"
    risk = "low"
    idempotent = True
    default_timeout_s = 10
    Params = SlugifyParams
    Output = SlugifyOutput

    def run(self, params: SlugifyParams, ctx: ActionContext) -> SlugifyOutput:
        ascii_text = unicodedata.normalize("NFKD", params.text).encode("ascii", "ignore").decode()
        return SlugifyOutput(slug=re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-"))
