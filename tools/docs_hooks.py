"""MkDocs hooks: the pages that are generated from the code at build time.

A page holds a marker line, and the build replaces it with what the code says now, so the
page cannot drift from it:

- ``<!-- generated: cli -->``: every command and option of ``openai-compat``, walked from the
  real argument parser (``openai_compat.cli.build_parser``);
- ``<!-- generated: openapi -->``: every route of the application, from the OpenAPI document
  the application itself serves (``create_app(...).openapi()``, on a throw-away data
  directory; nothing is started and no request is sent).

The checkout's ``src/`` comes first on the import path, so the site describes this checkout
whatever else is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

CLI_MARKER = "<!-- generated: cli -->"
OPENAPI_MARKER = "<!-- generated: openapi -->"
# argparse wraps help to the terminal's width: fixed, so the page is the same everywhere.
HELP_WIDTH = "80"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    found: list[tuple[str, str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name, ""), sub))
    return found


def _option_rows(parser: argparse.ArgumentParser) -> list[tuple[str, list[list[str]]]]:
    groups: list[tuple[str, list[list[str]]]] = []
    for group in parser._action_groups:
        rows = []
        for action in group._group_actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            names = ", ".join(f"`{n}`" for n in action.option_strings) or f"`{action.dest}`"
            takes = action.nargs != 0
            metavar = action.metavar or (action.dest.upper() if action.option_strings else "")
            if takes and action.option_strings and metavar:
                names += f" `{metavar}`"
            if action.choices is not None and takes:
                names += " (" + " \\| ".join(f"`{c}`" for c in action.choices) + ")"
            default = ""
            if action.default not in (None, False, argparse.SUPPRESS) and takes:
                default = f"`{action.default}`"
            help_text = (action.help or "") % {"default": action.default, "prog": parser.prog}
            required = " (required)" if action.required and action.option_strings else ""
            rows.append([names, _cell(help_text) + required, default])
        if rows:
            groups.append((group.title or "options", rows))
    return groups


def cli_reference() -> str:
    """The Markdown reference of every command, from the parser ``openai-compat`` runs."""
    from openai_compat.cli import build_parser

    os.environ["COLUMNS"] = HELP_WIDTH
    parser = build_parser()
    parts = ["## `openai-compat`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, help_text, sub in _subcommands(parser):
        parts += [f"## `openai-compat {name}`", "", f"{help_text[:1].upper()}{help_text[1:]}.", ""]
        parts += ["```text", sub.format_usage().strip(), "```", ""]
        if sub.description and sub.description != help_text:
            parts += [sub.description, ""]
        for title, rows in _option_rows(sub):
            parts += [f"**{title[:1].upper()}{title[1:]}**", ""]
            parts += ["| option | meaning | default |", "|---|---|---|"]
            parts += [f"| {' | '.join(row)} |" for row in rows]
            parts.append("")
    return "\n".join(parts)


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    kind = schema.get("type")
    return f"`{kind}`" if kind else "any"


def openapi_document() -> dict[str, Any]:
    """The application's own OpenAPI document (a throw-away data directory, nothing started)."""
    from openai_compat.app import AppSettings, create_app

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(AppSettings(data_dir=Path(data_dir), token="docs-build-" + "x" * 16))
        try:
            return app.openapi()
        finally:
            app.state.container.services.store.engine.dispose()


def openapi_reference(document: dict[str, Any]) -> str:
    """The Markdown reference of every operation and schema of ``document``."""
    info = document["info"]
    parts = [
        f"OpenAPI {document['openapi']}, **{info['title']} {info['version']}**: "
        f"{len(document['paths'])} paths, {len(document['components']['schemas'])} schemas.",
        "",
    ]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            parts += [f"### `{method.upper()} {path}`", ""]
            if op.get("summary"):
                parts += [f"**{op['summary']}**", ""]
            if op.get("description"):
                parts += [op["description"].strip(), ""]
            params = op.get("parameters", [])
            if params:
                parts += [
                    "| parameter | in | type | required | description |",
                    "|---|---|---|---|---|",
                ]
                for p in params:
                    parts.append(
                        f"| `{p['name']}` | {p['in']} | {_schema_name(p.get('schema', {}))} | "
                        f"{'yes' if p.get('required') else 'no'} | "
                        f"{_cell(p.get('description', ''))} |"
                    )
                parts.append("")
            body = op.get("requestBody")
            if body:
                kinds = ", ".join(
                    f"`{media}` {_schema_name(c.get('schema', {}))}"
                    for media, c in body.get("content", {}).items()
                )
                parts += [f"Body: {kinds}", ""]
            parts += ["| status | answer | body |", "|---|---|---|"]
            for status, response in op["responses"].items():
                kinds = ", ".join(
                    f"`{media}` {_schema_name(c.get('schema', {}))}"
                    for media, c in response.get("content", {}).items()
                )
                parts.append(f"| {status} | {_cell(response.get('description', ''))} | {kinds} |")
            parts.append("")
    parts += ["## Schemas", ""]
    for name, schema in sorted(document["components"]["schemas"].items()):
        parts += [f"### {name}", ""]
        if schema.get("description"):
            parts += [_cell(schema["description"]), ""]
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        if properties:
            parts += ["| field | type | required | description |", "|---|---|---|---|"]
            for field, prop in properties.items():
                parts.append(
                    f"| `{field}` | {_schema_name(prop)} | {'yes' if field in required else 'no'}"
                    f" | {_cell(prop.get('description', prop.get('title', '')))} |"
                )
            parts.append("")
        elif "enum" in schema:
            parts += ["One of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"]), ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the markers of a page with the reference generated from the code."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if OPENAPI_MARKER in markdown:
        markdown = markdown.replace(OPENAPI_MARKER, openapi_reference(openapi_document()))
    return markdown
