"""`strom schemas`: list, read, register, check and delete schemas, and set compatibility,
through a schema registry's REST API (Strom's or Confluent's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from strom.cli.common import fail, stdout_console, table

app = typer.Typer(
    help="List, read, register, check and delete schemas in a schema registry.",
    no_args_is_help=True,
)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

Registry = Annotated[
    str,
    typer.Option(
        "--registry",
        "-r",
        envvar="STROM_REGISTRY",
        help="The registry's URL.",
        show_default=True,
    ),
]
Subject = Annotated[str, typer.Argument(help="The subject.", show_default=False)]
Version = Annotated[str, typer.Argument(help="A version number, or latest.")]
SchemaFile = Annotated[
    Path, typer.Argument(help="A file holding the schema (- for stdin).", show_default=False)
]
SchemaType = Annotated[
    str, typer.Option("--type", "-t", help="AVRO, JSON or PROTOBUF.", case_sensitive=False)
]
DEFAULT_URL = "http://127.0.0.1:8081"


def _call(method: str, url: str, path: str, body: object = None, **params: Any) -> Any:
    query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items() if v}
    try:
        r = httpx.request(
            method,
            url.rstrip("/") + path,
            params=query,
            content=None if body is None else json.dumps(body),
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
            timeout=30,
        )
    except httpx.HTTPError as e:
        fail(f"cannot reach the registry at {url}: {e}")
    try:
        answer = r.json()
    except ValueError:
        answer = r.text
    if r.status_code >= 400:
        if isinstance(answer, dict) and "message" in answer:
            fail(f"{answer['message']} (error {answer.get('error_code')})")
        fail(f"the registry answered HTTP {r.status_code}: {answer}")
    return answer


def _subject_path(subject: str) -> str:
    return "/subjects/" + quote(subject, safe="")


def _read_schema(path: Path) -> str:
    if str(path) == "-":
        return typer.get_text_stream("stdin").read()
    try:
        return path.read_text()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")


def _body(schema_file: Path, schema_type: str, references: list[str] | None) -> dict:
    body: dict[str, Any] = {"schema": _read_schema(schema_file)}
    if schema_type.upper() != "AVRO":
        body["schemaType"] = schema_type.upper()
    refs = []
    for item in references or ():
        name, _, rest = item.partition("=")
        subject, _, version = rest.rpartition(":")
        if not (name and subject and version.isdigit()):
            fail(f"--reference wants NAME=SUBJECT:VERSION, got {item!r}")
        refs.append({"name": name, "subject": subject, "version": int(version)})
    if refs:
        body["references"] = refs
    return body


def _print_json(value: object) -> None:
    stdout_console().print_json(json.dumps(value))


@app.command("list")
def list_subjects(
    registry: Registry = DEFAULT_URL,
    prefix: Annotated[str | None, typer.Option(help="Only subjects starting so.")] = None,
    deleted: Annotated[bool, typer.Option(help="Include soft-deleted subjects.")] = False,
) -> None:
    """List the subjects."""
    for subject in _call("GET", registry, "/subjects", subjectPrefix=prefix, deleted=deleted):
        typer.echo(subject)


@app.command()
def versions(
    subject: Subject,
    registry: Registry = DEFAULT_URL,
    deleted: Annotated[bool, typer.Option(help="Include soft-deleted versions.")] = False,
) -> None:
    """List a subject's versions with their ids and types."""
    t = table("VERSION", "ID", "TYPE", "REFERENCES", right=("VERSION", "ID"))
    for number in _call("GET", registry, _subject_path(subject) + "/versions", deleted=deleted):
        v = _call("GET", registry, f"{_subject_path(subject)}/versions/{number}", deleted=deleted)
        refs = ", ".join(
            f"{r['name']}={r['subject']}:{r['version']}" for r in v.get("references", [])
        )
        t.add_row(str(v["version"]), str(v["id"]), v.get("schemaType", "AVRO"), refs)
    stdout_console().print(t)


@app.command()
def get(
    subject: Annotated[
        str | None, typer.Argument(help="The subject (or use --id).", show_default=False)
    ] = None,
    version: Version = "latest",
    schema_id: Annotated[int | None, typer.Option("--id", help="A schema id.")] = None,
    registry: Registry = DEFAULT_URL,
    raw: Annotated[bool, typer.Option(help="Print the schema alone.")] = False,
) -> None:
    """Show a subject's version (default latest), or the schema with an id."""
    if schema_id is not None:
        answer = _call("GET", registry, f"/schemas/ids/{schema_id}")
    elif subject:
        answer = _call("GET", registry, f"{_subject_path(subject)}/versions/{quote(version)}")
    else:
        fail("give a subject or --id")
    if raw:
        typer.echo(answer["schema"])
    else:
        _print_json(answer)


References = Annotated[
    list[str] | None,
    typer.Option(
        "--reference", help="A reference NAME=SUBJECT:VERSION (repeatable).", show_default=False
    ),
]


@app.command()
def register(
    subject: Subject,
    schema_file: SchemaFile,
    schema_type: SchemaType = "AVRO",
    reference: References = None,
    registry: Registry = DEFAULT_URL,
    normalize: Annotated[bool, typer.Option(help="Register the normalized form.")] = False,
) -> None:
    """Register a schema under a subject; prints its id."""
    answer = _call(
        "POST",
        registry,
        _subject_path(subject) + "/versions",
        _body(schema_file, schema_type, reference),
        normalize=normalize,
    )
    typer.echo(answer["id"])


@app.command()
def check(
    subject: Subject,
    schema_file: SchemaFile,
    version: Annotated[
        str | None,
        typer.Option(help="Check against this version only (default: as the level says)."),
    ] = None,
    schema_type: SchemaType = "AVRO",
    reference: References = None,
    registry: Registry = DEFAULT_URL,
) -> None:
    """Would this schema be compatible with the subject? Exit status 1 if not."""
    path = f"/compatibility{_subject_path(subject)}/versions"
    if version is not None:
        path += "/" + quote(version)
    answer = _call("POST", registry, path, _body(schema_file, schema_type, reference), verbose=True)
    if answer.get("is_compatible"):
        typer.echo("compatible")
        return
    typer.echo("incompatible")
    for message in answer.get("messages") or []:
        typer.echo(f"  {message}")
    raise typer.Exit(1)


@app.command()
def delete(
    subject: Subject,
    version: Annotated[
        str | None, typer.Argument(help="One version (default: the whole subject).")
    ] = None,
    permanent: Annotated[bool, typer.Option(help="Remove for good (after a soft delete).")] = False,
    registry: Registry = DEFAULT_URL,
) -> None:
    """Delete a subject or one of its versions (soft, or --permanent after a soft delete)."""
    path = _subject_path(subject)
    if version is not None:
        path += "/versions/" + quote(version)
    answer = _call("DELETE", registry, path, permanent=permanent)
    gone = answer if isinstance(answer, list) else [answer]
    typer.echo(f"deleted version(s) {', '.join(str(v) for v in gone)} of {subject}")


@app.command()
def config(
    subject: Annotated[
        str | None, typer.Argument(help="A subject (default: the global setting).")
    ] = None,
    compatibility: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="A level to set: BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, "
            "FULL, FULL_TRANSITIVE or NONE.",
        ),
    ] = None,
    unset: Annotated[bool, typer.Option(help="Remove the subject's own level.")] = False,
    registry: Registry = DEFAULT_URL,
) -> None:
    """Show or set the compatibility level (of a subject, or the global one)."""
    path = "/config" + ("/" + quote(subject, safe="") if subject else "")
    if compatibility is not None:
        answer = _call("PUT", registry, path, {"compatibility": compatibility})
        typer.echo(answer["compatibility"])
    elif unset:
        _call("DELETE", registry, path)
        typer.echo(f"{subject or 'global'}: level removed")
    else:
        answer = _call("GET", registry, path, defaultToGlobal=True)
        typer.echo(answer["compatibilityLevel"])
