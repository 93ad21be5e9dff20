"""Open rendered report pages in headless Chromium: check they render, take screenshots.

    python -m askshift.report.browser reports/index.html reports/parts/*.html [--screenshots DIR]

`check_page` loads a copy of the page, with a small probe script added at the top of <head>, from
a fresh temporary folder, so anything the page would fetch from next to itself or the network
fails and is reported: the page must be self-contained. The probe records script errors and
failed resource loads, and on `load` lists every <img> that did not decode (naturalWidth == 0).
Chromium prints the DOM after the load (`--dump-dom`), from which the probe's result is read.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")

PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) errors.push("failed to load " + (t.src || t.href).slice(0, 120));
    else errors.push("script error: " + (e.message || "unknown"));
  }, true);
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
                     .map(function (i) { return (i.getAttribute("src") || "").slice(0, 120); });
    var out = document.createElement("pre");
    out.id = "__askshift_probe";
    out.textContent = JSON.stringify({images: imgs.length, broken: broken, errors: errors,
      svgs: document.querySelectorAll("svg").length, tables: document.querySelectorAll("table").length,
      title: document.title, text_length: (document.body && document.body.innerText || "").length});
    document.body.appendChild(out);
  });
})();
</script>"""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    page: str
    images: int = 0
    broken: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tables: int = 0
    svgs: int = 0
    title: str = ""
    text_length: int = 0
    dom: str = ""

    @property
    def ok(self) -> bool:
        return not self.broken and not self.errors and self.text_length > 0


def _run(chromium: str, args: list[str], user_dir: Path, timeout: int) -> subprocess.CompletedProcess:
    cmd = [chromium, *FLAGS, f"--user-data-dir={user_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check_page(page: str | Path, chromium: str | None = None, timeout: int = 90) -> PageCheck:
    """Load `page` (a copy, with the probe) in headless Chromium and report what went wrong."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found (looked for: " + ", ".join(CANDIDATES) + ")")
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="askshift-browser-") as tmp:
        tmp = Path(tmp)
        probed = re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + PROBE, text, count=1, flags=re.I)
        copy = tmp / "page" / page.name
        copy.parent.mkdir()
        copy.write_text(probed, encoding="utf-8")
        r = _run(chromium, ["--virtual-time-budget=15000", "--run-all-compositor-stages-before-draw",
                            "--dump-dom", copy.as_uri()], tmp / "profile", timeout)
    m = re.search(r'<pre id="__askshift_probe">(.*?)</pre>', r.stdout, re.S)
    if not m:
        return PageCheck(str(page), errors=[f"the page did not finish loading (chromium exit "
                                            f"{r.returncode}): {r.stderr.strip()[-500:]}"], dom=r.stdout)
    import html as _html

    probe = json.loads(_html.unescape(m.group(1)))
    return PageCheck(str(page), probe["images"], probe["broken"], probe["errors"], probe["tables"],
                     probe["svgs"], probe["title"], probe["text_length"], r.stdout)


def screenshot(page: str | Path, out: str | Path, width: int = 1280, height: int = 2400,
               chromium: str | None = None, timeout: int = 90) -> Path:
    """A PNG of the page's first `height` pixels at `width`."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="askshift-browser-") as tmp:
        r = _run(chromium, [f"--window-size={width},{height}", "--virtual-time-budget=15000",
                            f"--screenshot={out}", Path(page).resolve().as_uri()], Path(tmp), timeout)
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {r.returncode}): {r.stderr[-500:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pages", nargs="+")
    ap.add_argument("--screenshots", metavar="DIR", help="also save a screenshot of each page here")
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args(argv)
    if find_chromium() is None:
        print("error: no Chromium on PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    bad = 0
    for p in args.pages:
        c = check_page(p)
        bad += not c.ok
        print(f"{'ok  ' if c.ok else 'FAIL'} {p}: {c.images} images ({len(c.broken)} broken), "
              f"{c.tables} tables, {len(c.errors)} errors{': ' + '; '.join(c.errors) if c.errors else ''}")
        if args.screenshots:
            screenshot(p, Path(args.screenshots) / (Path(p).stem + ".png"), height=args.height)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
