"""The settings' documentation, written from their declarations in `stock_platform.config`.

`.env.example` and the README's settings table each hold a generated block
between two marker lines; `write_docs` rewrites the blocks and a test fails when
a file no longer matches the declarations, so a setting added, renamed or given
a new default shows up in both places or nowhere. `stock-platform config` uses
`setting_sources` to say where each effective value came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr

from stock_platform.config import ENV_FILE, Settings, setting_env_name, setting_meta, setting_text

__all__ = [
    "ENV_EXAMPLE_MARKERS",
    "README_MARKERS",
    "SettingDoc",
    "render_env_example",
    "render_readme_table",
    "replace_block",
    "setting_docs",
    "setting_sources",
    "write_docs",
]

ENV_EXAMPLE_MARKERS = (
    "# ==== BEGIN settings: generated from stock_platform/config.py (make settings-docs); edit there ====",
    "# ==== END settings ====",
)
README_MARKERS = (
    "<!-- BEGIN settings table: generated from stock_platform/config.py (make settings-docs); edit there -->",
    "<!-- END settings table -->",
)


@dataclass(frozen=True)
class SettingDoc:
    """What the documentation says about one setting."""

    name: str
    variable: str
    group: str
    default: str  # the declared default as its variable's text ("" for an unset secret)
    description: str
    secret: bool
    derived: str | None  # how the default follows other settings, if it does
    compose_sets: bool  # docker-compose.yml fixes it for the containers


def setting_docs() -> list[SettingDoc]:
    """Every setting in declaration order."""
    docs = []
    for name, info in Settings.model_fields.items():
        meta = setting_meta(info)
        default = "" if info.default_factory is not None else setting_text(info.default)
        docs.append(
            SettingDoc(
                name=name, variable=setting_env_name(name), group=str(meta["group"]), default=default,
                description=info.description or "", secret=info.annotation is SecretStr, derived=meta.get("derived"),
                compose_sets=bool(meta.get("compose_sets")),
            )
        )  # fmt: skip
    return docs


def render_env_example() -> str:
    """The settings block of `.env.example`: each setting's meaning, then its line with the default.

    Settings docker-compose.yml fixes for the containers, or whose default follows other settings, are
    commented out: uncommenting such a line would pin a value that should follow.
    """
    lines = [ENV_EXAMPLE_MARKERS[0]]
    group = None
    for doc in setting_docs():
        if doc.group != group:
            group = doc.group
            lines += ["", f"# ---- {group} ----"]
        note = f" Default: {doc.derived}." if doc.derived else ""
        lines.append(f"# {doc.description}{note}")
        prefix = "# " if doc.derived or doc.compose_sets else ""
        value = f'"{doc.default}"' if " " in doc.default else doc.default
        lines.append(f"{prefix}{doc.variable}={value}")
    lines.append(ENV_EXAMPLE_MARKERS[1])
    return "\n".join(lines) + "\n"


def render_readme_table() -> str:
    """The README's settings table: variable, default, meaning."""
    lines = [README_MARKERS[0], "", "| Variable | Default | Meaning |", "|---|---|---|"]
    for doc in setting_docs():
        if doc.derived:
            default = f"{doc.derived}"
        elif doc.secret:
            default = "(unset; a secret)"
        else:
            default = f"`{doc.default}`" if doc.default else "(empty)"
        meaning = doc.description.replace("|", "\\|")
        lines.append(f"| `{doc.variable}` | {default} | {meaning} |")
    lines += ["", README_MARKERS[1]]
    return "\n".join(lines) + "\n"


def replace_block(text: str, markers: tuple[str, str], block: str) -> str:
    """`text` with the lines from the first marker to the second (inclusive) replaced by `block`."""
    begin, end = text.find(markers[0]), text.find(markers[1])
    if begin < 0 or end < begin:
        raise ValueError(f"markers not found: {markers[0]!r} ... {markers[1]!r}")
    end = text.find("\n", end)
    end = len(text) if end < 0 else end + 1
    return text[:begin] + block + text[end:]


def write_docs(root: Path) -> list[Path]:
    """Rewrite the generated blocks of `.env.example` and README.md under `root`; the files that changed."""
    changed = []
    for name, markers, block in (
        (".env.example", ENV_EXAMPLE_MARKERS, render_env_example()),
        ("README.md", README_MARKERS, render_readme_table()),
    ):
        path = root / name
        old = path.read_text()
        new = replace_block(old, markers, block)
        if new != old:
            path.write_text(new)
            changed.append(path)
    return changed


def setting_sources(environ: Mapping[str, str] | None = None, env_file: Path = Path(ENV_FILE)) -> dict[str, str]:
    """Where each setting's effective value came from: environment, .env, derived or default.

    The same precedence as `Settings` (environment, then `.env`, then the declared or derived default),
    with an empty variable counting as unset as it does there.
    """
    env = os.environ if environ is None else environ
    dotenv = {k: v for k, v in dotenv_values(env_file).items() if v} if env_file.is_file() else {}
    sources = {}
    for doc in setting_docs():
        if env.get(doc.variable, "").strip():
            sources[doc.name] = "environment"
        elif doc.variable in dotenv:
            sources[doc.name] = str(env_file)
        elif doc.derived:
            sources[doc.name] = f"derived ({doc.derived})"
        else:
            sources[doc.name] = "default"
    return sources


if __name__ == "__main__":
    for path in write_docs(Path.cwd()):
        print(f"rewrote {path}")
