"""Build the reference site from the claim records (specs/) and the committed results (results/).

Nothing on the site is typed by hand: each page's question comes from its claim record, the
answer and every verdict are derived from the statements (harness/answers.py,
harness/claims.py), the grids and evidence figures are read from results/claims/*.json, the
code is read from project/ with ``inspect.getsource``.
"""

import ast
import html
import inspect
import json
import os
import re
import shutil
import sys
from pathlib import Path

from harness import ROOT
from harness.claims import resolve

BENCH_DIR = ROOT / "docs" / "benchmarks"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
OUT = ROOT / "_site"
# The environment whose evidence figures a claim page shows: the default Django of README's
# first command (requirements.txt), on the default Python.
EVIDENCE_ENV = "dj52-py311"


# A grid cell's words: what the statement is there, not the verdict vocabulary ("✓ refuted" reads
# as a contradiction to a newcomer).
WORDS = {"holds": "holds", "refuted": "does not hold"}
MARKS = {"passed": "✓", "contradicted": "✗", "error": "!", "not run": "–"}


class SiteError(Exception):
    pass


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()


# --- reading --------------------------------------------------------------------------------


def load_claims():
    from harness.render import ordered_claims

    claims = ordered_claims()
    for claim in claims:
        missing = [name for name in ("question", "topic", "code") if not getattr(claim, name)]
        if missing:
            raise SiteError(f"{claim.module}: CLAIM lacks {', '.join(missing)} (harness/claims.py)")
    return claims


def load_results(claims):
    from harness.results import committed_claims

    results = committed_claims()
    absent = [claim.id for claim in claims if claim.id not in results]
    if absent:
        raise SiteError(f"no committed results for {absent}: python -m harness.results collect ...")
    return results


def series_of(results):
    """The grids' columns: {release: {"envs": [env, ...], "django": release}}, oldest first: one
    column per Django release the results ran (5.0.14, and 5.0.0 to 5.0.3 where a record says
    behaviour changed in a patch release), the environments of one release on several Pythons
    together."""
    from harness.results import _env_order
    from harness.versions import parse

    found = {}
    for payload in results.values():
        for env, entry in payload["environments"].items():
            version = entry["environment"]["django"]
            item = found.setdefault(version, {"envs": [], "django": version})
            if env not in item["envs"]:
                item["envs"].append(env)
    for item in found.values():
        item["envs"].sort(key=_env_order)
    return dict(sorted(found.items(), key=lambda kv: parse(kv[1]["django"])))


def place_order():
    from harness.claims import all_places

    return [where.label for where in all_places()]


def columns_of(payload, series):
    """The grid columns a claim has results in (a patch release's column only where it ran)."""
    return {label: item for label, item in series.items()
            if any(env in payload["environments"] for env in item["envs"])}  # fmt: skip


def grids(claim, payload, columns):
    """Per statement: rows = places, columns = Django versions; a cell merges the column's envs
    (the same release on several Pythons)."""
    from harness import status as statuses

    order = place_order()
    out = {}
    for statement in claim.statements:
        rows = {}
        for name, item in columns.items():
            for env in item["envs"]:
                entry = payload["environments"].get(env)
                if not entry:
                    continue
                for place, cell in entry["cells"].get(statement.id, {}).items():
                    rows.setdefault(place, {}).setdefault(name, []).append(cell)
        table = []
        for place in sorted(rows, key=lambda p: order.index(p) if p in order else len(order)):
            cells = []
            for name in columns:
                found = rows[place].get(name, [])
                if not found:
                    cells.append(None)
                    continue
                expected = sorted({c["expected"] for c in found})
                status = statuses.combine(c["status"] for c in found)
                cells.append({"expected": "/".join(expected), "status": status,
                              "text": statuses.cell_text("/".join(expected), status),
                              "mark": MARKS[status], "words": " / ".join(WORDS[e] for e in expected)})
            table.append({"place": place, "cells": cells})
        out[statement.id] = table
    return out


def evidence(payload, env=EVIDENCE_ENV):
    entry = payload["environments"].get(env)
    if not entry:
        return env, "", []
    items = []
    for test, records in sorted(entry["evidence"].items()):
        for record in records:
            fields = [(k, _figure(v)) for k, v in record.items() if k != "label"]
            items.append({"test": test.split("::", 1)[-1], "label": record.get("label", ""),
                          "fields": fields})
    return env, entry["environment"]["django"], items


def _figure(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- code and source links ---------------------------------------------------------------------


def source_of(dotted):
    obj = resolve(dotted)
    obj = inspect.unwrap(obj) if callable(obj) else obj
    return inspect.getsource(obj)


DOTTED = re.compile(r"\b((?:django|asgiref)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def source_line(dotted):
    """(file, line) where ``dotted`` is defined in the installed packages, or None. A name whose
    value has no source of its own (a class attribute, a property, a settings dict) is found as
    its assignment or def in its owner's source; a name this version does not have is None."""
    owner_name, _, leaf = dotted.rpartition(".")
    try:
        obj = resolve(dotted)
        target = inspect.unwrap(obj) if callable(obj) else obj
        if inspect.ismodule(target):
            return Path(inspect.getsourcefile(target)), 1
        return Path(inspect.getsourcefile(target)), inspect.getsourcelines(target)[1]
    except (ImportError, AttributeError, TypeError, OSError):
        pass
    try:
        owner = resolve(owner_name)
        lines, first = inspect.getsourcelines(owner)
        path = Path(inspect.getsourcefile(owner))
    except (ImportError, AttributeError, TypeError, OSError):
        return None
    first = first or 1  # a module's lines start at 0
    pattern = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(leaf)}\b|^\s*{re.escape(leaf)}\s*[:=]")
    for offset, text in enumerate(lines):
        if pattern.match(text):
            return path, first + offset
    return None


def source_link(dotted):
    """A GitHub link to where ``dotted`` is defined, in the installed version; None if it is not
    found there."""
    import asgiref
    import django

    found = source_line(dotted)
    if not found:
        return None
    path, line = found
    for package, repo, version in (
        (django, "django/django", django.get_version()),
        (asgiref, "django/asgiref", asgiref.__version__),
    ):
        base = Path(package.__file__).parent.parent
        if path.is_relative_to(base / package.__name__):
            relative = path.relative_to(base).as_posix()
            return f"https://github.com/{repo}/blob/{version}/{relative}#L{line}"
    return None


def linked_mechanism(text):
    """The mechanism's text, HTML-escaped, with each Django / asgiref name linked to its source."""
    out, last = [], 0
    for match in DOTTED.finditer(text):
        name = match.group(1).rstrip(".")
        link = source_link(name)
        out.append(html.escape(text[last:match.start(1)]))
        code = f"<code>{html.escape(name)}</code>"
        out.append(f'<a href="{link}">{code}</a>' if link else code)
        last = match.start(1) + len(name)
    out.append(html.escape(text[last:]))
    return "".join(out)


def module_docstring(module_name):
    path = ROOT / (module_name.replace(".", "/") + ".py")
    return ast.get_docstring(ast.parse(path.read_text())) or ""


# --- the build ------------------------------------------------------------------------------------


def build(out=OUT):
    import jinja2
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    from harness.claims import TOPICS
    from harness.servers import SERVERS
    from harness.status import LEGEND
    from harness import answers
    from sitegen import changes

    claims = load_claims()
    results = load_results(claims)
    series = series_of(results)
    formatter = HtmlFormatter(nowrap=False, cssclass="code")
    lexer = PythonLexer()

    def code(dotted):
        try:
            text = source_of(dotted)
        except Exception as error:  # a name that does not resolve is a record error
            raise SiteError(f"code {dotted!r} does not resolve: {error}") from None
        return {"name": dotted, "html": highlight(text, lexer, formatter)}

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    import django

    from harness.servers import SERVERS as _SERVERS

    common = {"django_shown": django.get_version(), "series": series, "legend": LEGEND,
              "topics": TOPICS, "server_names": list(_SERVERS)}
    if out.exists():
        shutil.rmtree(out)
    (out / "claims").mkdir(parents=True)
    (out / "specs").mkdir()
    (out / "static").mkdir()
    for path in STATIC.iterdir():
        shutil.copy(path, out / "static" / path.name)
    (out / "static" / "pygments.css").write_text(formatter.get_style_defs(".code"))

    servers = [(name, kind.interface) for name, kind in SERVERS.items()]
    entries = []
    for number, claim in enumerate(claims, 1):
        payload = results[claim.id]
        answer = answers.answer_as_tested(claim, results)
        columns = columns_of(payload, series)
        claim_grids = grids(claim, payload, columns)
        # Each server's answer where its tests ran: on SQLite, or on PostgreSQL for a claim
        # tested only there.
        tested = {p.server: p for p in reversed(answers.places_tested(payload)) if p.server}
        per_place = {
            name: {s: answers.answer_at(claim, tested[name], item["django"])
                   for s, item in series.items()}
            for name, _ in servers if name in tested
        }  # fmt: skip
        evidence_env, evidence_django, figures = evidence(payload)
        page = {
            "number": number, "claim": claim, "answer": answer, "verdict_text": claim.verdict_text,
            "record": claim.as_dict(), "grids": claim_grids, "columns": columns,
            "code": [code(name) for name in claim.code],
            "instead": [code(name) for name in claim.instead],
            "mechanism": linked_mechanism(claim.mechanism),
            "explanation": module_docstring(claim.module),
            "spec_page": f"../specs/{claim.module.split('.')[-1]}.html",
            "spec_path": claim.module.replace(".", "/") + ".py",
            "evidence_env": evidence_env, "evidence_django": evidence_django, "figures": figures,
        }
        (out / "claims" / f"{claim.id}.html").write_text(
            env.get_template("claim.html").render(**common, **page, root="../"))
        spec_path = ROOT / page["spec_path"]
        (out / "specs" / f"{spec_path.stem}.html").write_text(
            env.get_template("source.html").render(
                **common, root="../", title=page["spec_path"], claim=claim,
                html=highlight(spec_path.read_text(), lexer, formatter)))
        entries.append({
            "claim": claim, "answer": answer, "per_place": per_place,
            "search": " ".join([claim.id, claim.question, claim.claim, claim.source, answer.text,
                                *answer.instead,
                                *(f"{st.text} {st.reality}" for st in claim.statements)]).lower(),
        })

    by_topic = {key: [e for e in entries if e["claim"].topic == key] for key in TOPICS}
    (out / "index.html").write_text(env.get_template("index.html").render(
        **common, root="", by_topic=by_topic, servers=[n for n, _ in servers],
        count=len(entries), per_place_json={e["claim"].id: e["per_place"] for e in entries}))
    (out / "changes.html").write_text(env.get_template("changes.html").render(
        **common, root="", releases=changes.between_versions(claims)))
    _bench(env, common, out)
    from harness.servers import ServerConfig

    (out / "servers.html").write_text(env.get_template("servers.html").render(
        **common, root="", servers=server_rows(results), spec_threads=ServerConfig().threads,
        gunicorn=gunicorn_defaults(), evidence_env=EVIDENCE_ENV))
    return out


def server_rows(results):
    """How the spec runs each server (its command line, from harness/servers.py), the version the
    committed results ran, and, for gunicorn, the defaults the spec and the benchmark depart from
    (read from gunicorn itself and from bench/)."""
    import sys as _sys

    from harness.servers import SERVERS, ServerConfig

    versions = {}
    for payload in results.values():
        entry = payload["environments"].get(EVIDENCE_ENV)
        if entry:
            versions.update(entry["environment"]["servers"])
    rows = []
    for name, kind in SERVERS.items():
        argv = [str(a) for a in kind.build_argv(kind, ServerConfig(), 8000)]
        argv = ["python" if a == _sys.executable else a.replace(str(ROOT) + "/", "") for a in argv]
        env = " ".join(f"{key}={value}" for key, value in kind.env)
        version = versions.get(name, "")
        rows.append({"name": name, "description": kind.description, "interface": kind.interface.upper(),
                     "argv": (f"{env} " if env else "") + " ".join(argv).replace("8000", "PORT"),
                     "version": f"{kind.package} {version}" if version else ""})
    return rows


def gunicorn_defaults():
    import gunicorn.config

    from bench.__main__ import GUNICORN_THREADS

    settings = gunicorn.config.make_settings()
    return {"worker_class": settings["worker_class"].default, "workers": settings["workers"].default,
            "threads": settings["threads"].default, "keepalive": settings["keepalive"].default,
            "bench_threads": GUNICORN_THREADS}


def _bench(env, common, out):
    import markdown

    (out / "bench").mkdir()
    for path in BENCH_DIR.glob("*.png"):
        shutil.copy(path, out / "bench" / path.name)
    text = (BENCH_DIR / "README.md").read_text()
    body = markdown.markdown(text, extensions=["tables"])
    (out / "bench" / "index.html").write_text(env.get_template("page.html").render(
        **common, root="../", title="Benchmark: how much does async help", body=body))


def main(argv=None):
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the site (_site/)")
    parser.add_argument("--screenshots", action="store_true",
                        help="also regenerate docs/screenshots/*.png in headless Chromium")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    setup_django()
    try:
        out = build(args.out.resolve())
    except SiteError as error:
        print(f"site not built: {error}", file=sys.stderr)
        return 1
    pages = len(list(out.rglob("*.html")))
    print(f"built {pages} pages in {out} in {time.perf_counter() - started:.1f} s; "
          f"open {out / 'index.html'}")
    if args.screenshots:
        from sitegen import screenshots

        return screenshots.take(out)
    return 0
