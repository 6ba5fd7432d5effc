"""The README's two screenshots (the index and one claim page), taken from the built site."""

import sys

from harness import ROOT
from sitegen.browser import NoBrowser, chromium

SHOTS = ROOT / "docs" / "screenshots"
# The claim page shown: the quiz's time.sleep question, whose answer differs by server.
CLAIM_SHOWN = "blocking-call-in-async-view"


def take(site):
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1100, "height": 760}, device_scale_factor=1)
            SHOTS.mkdir(parents=True, exist_ok=True)
            for name, path in (("index", "index.html"), ("claim", f"claims/{CLAIM_SHOWN}.html")):
                page.goto((site / path).as_uri())
                page.screenshot(path=SHOTS / f"{name}.png")
                print(f"wrote {(SHOTS / f'{name}.png').relative_to(ROOT)}")
    except NoBrowser as error:
        print(f"screenshots not taken: {error}", file=sys.stderr)
        return 1
    return 0
