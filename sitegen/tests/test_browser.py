"""The built site in a real browser (headless Chromium, sitegen/browser.py): every claim has a
page, every internal link resolves, the filter narrows the index, no page logs a console error,
and pages fit a phone's width."""

import os
from urllib.parse import unquote, urlsplit

import pytest

from harness.claims import load_all
from sitegen.browser import NoBrowser, chromium
from sitegen.build import DOTTED, build

PHONE = {"width": 390, "height": 844}  # a common phone viewport, in CSS pixels


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build(tmp_path_factory.mktemp("site") / "_site")


@pytest.fixture(scope="module")
def browser():
    try:
        with chromium() as found:
            yield found
    except NoBrowser as error:
        if os.environ.get("SITE_REQUIRE_BROWSER"):
            pytest.fail(f"{error} (SITE_REQUIRE_BROWSER is set: CI must run these tests)")
        pytest.skip(str(error))


@pytest.fixture
def page(browser):
    context = browser.new_context()
    opened = context.new_page()
    opened.errors = []
    opened.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: opened.errors.append(str(e)))
    yield opened
    context.close()


def test_every_claim_has_a_page_that_opens_with_its_question_and_answer(site, page):
    claims = load_all()
    for claim in claims.values():
        page.goto((site / "claims" / f"{claim.id}.html").as_uri())
        assert page.inner_text("h1") == claim.question
        assert page.locator("p.answer").count() == 1
        assert page.locator("ol.statements > li").count() == len(claim.statements)
        # The mechanism's Django / asgiref names link to their source at the version shown.
        if DOTTED.search(claim.mechanism):
            assert page.locator('#why a[href^="https://github.com/django/"]').count() >= 1, claim.id
    assert sorted(p.stem for p in (site / "claims").glob("*.html")) == sorted(claims)


def test_every_page_links_only_to_what_exists_logs_no_error_and_fits_a_phone(site, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    pages = sorted(site.rglob("*.html"))
    too_wide = []
    ids = {}
    links = []
    for path in pages:
        page.goto(path.as_uri())
        found = page.evaluate("""() => ({
            ids: Array.from(document.querySelectorAll('[id]'), e => e.id),
            hrefs: Array.from(document.querySelectorAll('a[href], link[href], script[src], img[src]'),
                              e => e.href || e.src),
        })""")
        ids[path] = set(found["ids"])
        links += [(path, href) for href in found["hrefs"] if href.startswith("file://")]
        assert errors == [], f"{path.relative_to(site)}: {errors}"
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide.append(f"{path.relative_to(site)}: {width}px")
    context.close()
    assert too_wide == [], f"wider than a {PHONE['width']}px phone screen"
    assert len(pages) > len(load_all()), "fewer pages than claims"
    assert links, "no internal links found"
    broken = []
    for source, href in links:
        parts = urlsplit(href)
        target = type(site)(unquote(parts.path))
        if not target.is_file():
            broken.append(f"{source.relative_to(site)} → {href}")
        elif parts.fragment and target.suffix == ".html" and parts.fragment not in ids.get(target, set()):
            broken.append(f"{source.relative_to(site)} → #{parts.fragment} missing in {target.name}")
    assert broken == []


def test_the_filter_narrows_the_index_and_says_the_answer_on_a_server(site, page):
    page.goto((site / "index.html").as_uri())
    total = page.locator("article.entry").count()
    page.fill("#q", "time.sleep")
    visible = page.locator("article.entry:visible")
    assert 0 < visible.count() < total
    for text in visible.all_inner_texts():
        assert "time.sleep" in text.lower()
    assert page.inner_text("#shown") == f"{visible.count()} of {total} shown"
    # Words in any order, from the statements and answers too, not only the question.
    page.fill("#q", "gthread time.sleep")
    assert "time.sleep" in page.locator("article.entry:visible h3").first.inner_text()
    page.fill("#q", "")
    # The Django choices are the releases the results ran: 4.2.x, the latest 4.2 tested.
    release = next(v for v in page.locator("#version option").all_inner_texts() if v.startswith("4.2."))
    # A version alone: each claim tested on servers says its answer there, server by server.
    page.select_option("#version", release)
    assert page.locator("article.entry:visible").count() == total
    page.fill("#q", "time.sleep")
    [line] = page.locator("article.entry:visible .at-place").all_inner_texts()[:1]
    assert line.startswith(f"On Django {release}: yes on ") and "; no on " in line
    # time.sleep blocks the other requests on the ASGI servers only.
    assert "uvicorn" in line.split("; no on ")[0] and "gunicorn-gthread" in line.split("; no on ")[1]
    page.fill("#q", "")
    page.select_option("#server", "gunicorn-gthread")
    lines = page.locator("article.entry:visible .at-place").all_inner_texts()
    assert lines and all(line.startswith(f"On gunicorn-gthread: Django {release} ") for line in lines)
    page.fill("#q", "no such question anywhere")
    assert page.locator("article.entry:visible").count() == 0
    assert page.inner_text("#shown") == f"0 of {total} shown"


def test_the_filter_fits_a_phone_screen(site, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto((site / "index.html").as_uri())
    for control in ("#q", "#server", "#version"):
        box = phone.locator(control).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
    context.close()


@pytest.mark.parametrize("search, asked", [
    ("time.sleep", "gunicorn-gthread"),  # does time.sleep block other requests on gunicorn gthread?
    ("disconnect", "Django < 5.0"),  # is an async view cancelled on disconnect under 4.2, uvicorn?
    ("__init__", "What is true instead"),  # in which order do middleware __init__s run?
])
def test_a_newcomers_question_is_answered_one_click_from_the_index(site, page, search, asked):
    """The issue's newcomer questions: type into the filter, click the first question, and the
    answer at the top of the page speaks to what was asked."""
    page.goto((site / "index.html").as_uri())
    page.fill("#q", search)
    page.locator("article.entry:visible h3 a").first.click()
    answer = page.locator("main > .answer, main > .answer-parts, main > .instead").all_inner_texts()
    assert asked in " ".join(answer)


def test_the_servers_page_says_how_each_server_runs_and_gunicorns_defaults(site, page):
    import gunicorn.config

    from harness.servers import SERVERS, ServerConfig

    page.goto((site / "servers.html").as_uri())
    for name in SERVERS:
        assert "python " in page.locator(f"tr#{name} code").inner_text()
    assert f"--threads {ServerConfig().threads}" in page.locator("tr#gunicorn-gthread code").inner_text()
    text = page.inner_text("#gunicorn-defaults + p")
    default = gunicorn.config.make_settings()["threads"].default
    assert f"{default} thread per worker" in text
    assert f"gthread worker with {ServerConfig().threads} threads" in text


def test_an_answer_that_depends_shows_badges_for_where_it_differs(site, page):
    from harness.answers import answer_as_tested
    from harness.results import committed_claims

    results = committed_claims()
    page.goto((site / "index.html").as_uri())
    for claim in load_all().values():
        badges = page.locator(f"article#{claim.id} .badge").all_inner_texts()
        found = answer_as_tested(claim, results)
        assert badges == [f"differs: {badge}" for badge in found.badges], claim.id
        assert bool(badges) == (found.word == "Yes when"), claim.id
