"""The figure rules and the Snakemake report, end to end on small synthetic tables.

A copy of the workflow runs in a temporary directory on the tiny config (one measure). Every
upstream output is a placeholder marked up to date with ``--touch``, the result tables are small
synthetic ones (tests/figure_tables.py), and the figures and the run page are drawn by the same
entry points the figure rules call. Then:

- touching a file under ``src/alignpatterns/figures/`` (in the copy) makes ``snakemake -n`` plan
  the figure rules and nothing else;
- ``snakemake --report`` builds the report, which is opened from disk in a real headless browser
  (Debian's chromium, driven over the DevTools protocol on a pipe): every figure image must
  decode, no console message of level error ("SEVERE") may appear, and a screenshot is saved.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from alignpatterns import io

from . import figure_tables as T

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
MEASURE = "lp-ridge-pearson"
SUBJECTS = ["01", "02", "03", "04"]
ROIS = ["V1", "V2", "V3", "V4"]
# Console messages that may appear in a report opened offline: the report's own Tailwind
# "CDN should not be used in production" warning. Anything of level error fails the test.
ALLOWED = (re.compile(r"cdn\.tailwindcss\.com"),)


def _snakemake(wd: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "--snakefile", str(wd / "Snakefile"), "--directory", str(wd),
           "--configfile", str(wd / "test.yaml"), "--cores", "2", *extra]
    env = {**os.environ, "PYTHONPATH": str(wd / "src")}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=wd, timeout=300, env=env)
    if check:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _planned_rules(res: subprocess.CompletedProcess) -> set[str]:
    """Rule names of the 'Job stats' table of a dry run."""
    text = res.stdout + res.stderr
    if "Nothing to be done" in text:
        return set()
    block = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = [ln.split() for ln in block.strip().splitlines()[2:]]
    return {r[0] for r in rows if len(r) == 2 and r[0] != "total"}


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """A workflow copy in a temp dir with every output present and up to date."""
    wd = tmp_path_factory.mktemp("report")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("workflow", "resources", "profiles", "config", "envs"):
        shutil.copytree(REPO / name, wd / name, ignore=ignore)
    shutil.copytree(REPO / "src", wd / "src", ignore=ignore)
    shutil.copy(REPO / "Snakefile", wd / "Snakefile")
    cfg = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    cfg["measures"] = [MEASURE]
    (wd / "test.yaml").write_text(yaml.safe_dump(cfg))

    # Every output of the DAG as a placeholder, then real tables where figures read them. Times
    # are set in DAG order (code < placeholders < tables < figures), so the workflow is up to
    # date without running it (and, lacking metadata, only modification times decide).
    t0 = time.time() - 3600
    for p in wd.rglob("*"):
        os.utime(p, (t0 - 10, t0 - 10))
    summary = _snakemake(wd, "--summary").stdout.splitlines()
    outputs = [ln.split("\t")[0] for ln in summary[1:] if "\t" in ln]
    for out in outputs:
        p = wd / out
        if out.rstrip("/") == cfg["dataset"]["root"]:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
        os.utime(p, (t0, t0))
    models = [(m["name"], m["weights"]) for m in cfg["models"]]
    tables = T.all_tables(rois=ROIS, subjects=SUBJECTS, models=models, measures=[MEASURE])
    resolved = {"rois": ROIS, "models": cfg["models"], "measures": [MEASURE], "apa": cfg["apa"]}
    for name, df in tables.items():
        path = wd / "results" / "tables" / f"{name}.parquet"
        io.write_table(df, path, name, resolved)
        os.utime(path, (t0, t0))  # same time as the placeholders around it: not newer

    # Draw the figures and the run page with the entry points the rules call.
    from alignpatterns.config import roi_set
    from alignpatterns.figures.render import FIGURE_KINDS, render
    from alignpatterns.figures.run_info import write_run_info

    streams = {s: [r for r in rs if r in ROIS] for s, rs in roi_set("synthetic")["streams"].items()
               if set(rs) & set(ROIS)}
    paths = {name: str(wd / "results" / "tables" / f"{name}.parquet") for name in tables}
    drawn = [write_run_info(resolved, wd / "results" / "report" / "run_info.html")]
    for kind in FIGURE_KINDS:
        stem = f"{kind}_{MEASURE}" if kind != "trained_vs_untrained" else kind
        drawn += render(kind, resolved, paths, wd / "results" / "figures" / f"{stem}.png",
                        measure=MEASURE, streams=streams)
    for p in drawn:
        os.utime(p, (t0 + 20, t0 + 20))
    return wd


@pytest.mark.workflow
def test_every_configured_figure_is_a_workflow_output(workflow_copy):
    from alignpatterns.figures.render import FIGURE_KINDS, PER_MEASURE

    figs = sorted(p.name for p in (workflow_copy / "results" / "figures").iterdir())
    expect = sorted([f"{k}_{MEASURE}.{e}" for k in PER_MEASURE for e in ("png", "pdf")]
                    + ["trained_vs_untrained.png", "trained_vs_untrained.pdf"])
    assert figs == expect
    assert set(FIGURE_KINDS) == set(PER_MEASURE) | {"trained_vs_untrained"}
    for f in figs:
        assert (workflow_copy / "results" / "figures" / f).stat().st_size > 3000, f


@pytest.mark.workflow
def test_editing_figure_code_reruns_only_figure_rules(workflow_copy):
    from alignpatterns.figures.render import FIGURE_KINDS

    assert _planned_rules(_snakemake(workflow_copy, "-n")) == set()
    # Snakemake compares checksums of small inputs, so a bare mtime change is not enough:
    # edit the file as a developer would (in the copy), then restore it.
    f = workflow_copy / "src/alignpatterns/figures/_common.py"
    text = f.read_text()
    f.write_text(text + "\n# edited\n")
    try:
        planned = _planned_rules(_snakemake(workflow_copy, "-n"))
    finally:
        f.write_text(text)
    assert planned == {f"figure_{k}" for k in FIGURE_KINDS} | {"all"}


class DevTools:
    """Minimal Chrome DevTools protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, chromium: str, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                "--remote-debugging-pipe", "--window-size=1400,1000", "about:blank"]
        shell = " ".join(f"'{a}'" for a in args) + f" 3<&{cmd_r} 4>&{res_w}"
        self.log = profile.parent / "chromium.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(["bash", "-c", f"exec {shell}"], pass_fds=(cmd_r, res_w),
                                         stdout=log, stderr=log)
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read(self, timeout: float) -> dict:
        import select

        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._res_r], [], [], timeout)
            if not ready:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium closed the pipe; its log ends:\n{tail}")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: bool = True,
             timeout: float = 30.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        end = time.time() + timeout
        while time.time() < end:
            ev = self._read(end - time.time())
            if ev.get("method") == method:
                return ev
            self.events.append(ev)
        raise TimeoutError(method)

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd_w)
        os.close(self._res_r)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


# JavaScript run in the report: decode every embedded figure (the report's `results` global)
# as an <img> in the page and report which failed.
_CHECK_IMAGES = """
(async () => {
  const out = [];
  for (const [path, r] of Object.entries(results)) {
    if (!String(r.mime_type).startsWith("image/")) continue;
    const img = document.createElement("img");
    const done = new Promise(res => { img.onload = () => res(true); img.onerror = () => res(false); });
    img.src = r.data_uri;
    document.body.appendChild(img);
    const ok = await done;
    out.push({path, ok, width: img.naturalWidth, height: img.naturalHeight});
    img.remove();
  }
  return JSON.stringify(out);
})()
"""

# Open the first result row's viewer (the eye icon) in the report's result table.
_OPEN_FIRST = """
(() => {
  const row = document.querySelector("tbody tr, tr:not(:first-child)");
  const el = row && row.querySelector("a, button");
  if (!el) return false;
  el.click();
  return true;
})()
"""

# The figures shown in the report's own viewer right now: [complete, naturalWidth] each.
_SHOWN = """
JSON.stringify([...document.images].filter(i => i.src.startsWith("data:image/png"))
  .map(i => [i.complete, i.naturalWidth]))
"""

_CLICK = """
(() => {
  const el = [...document.querySelectorAll("a, button")]
    .find(e => e.children.length <= 2 && e.textContent.trim() === %s);
  if (!el) return false;
  el.click();
  return true;
})()
"""


@pytest.mark.workflow
@pytest.mark.slow
def test_report_opens_in_headless_chromium(workflow_copy, tmp_path):
    report = workflow_copy / "report.html"
    built = _snakemake(workflow_copy, "--report", str(report))
    assert report.stat().st_size > 100_000
    # every caption renders: docutils reports markup it cannot parse (an empty ``…`` literal
    # from a wildcard a merged rule no longer has) as "(WARNING/2)" while building the report
    assert "(WARNING/" not in built.stdout + built.stderr, built.stderr[-2000:]
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (run tests/report/ensure_chromium.sh)")
        pytest.skip("chromium is not installed (tests/report/ensure_chromium.sh installs it)")

    dt = DevTools(chromium, tmp_path / "profile")
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"}, session=False)
        dt.session = dt.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                       "flatten": True},
                             session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            dt.send(f"{domain}.enable")
        dt.send("Page.navigate", {"url": report.as_uri()})
        dt.wait_event("Page.loadEventFired", timeout=60)
        res = dt.send("Runtime.evaluate", {"expression": _CHECK_IMAGES, "awaitPromise": True,
                                           "returnByValue": True}, timeout=60)
        images = json.loads(res["result"]["value"])
        # open the benchmark figure in the report's own viewer, as a reader would
        for label in ("Conventional alignment", MEASURE):  # a single measure has no submenu
            clicked = dt.send("Runtime.evaluate", {"expression": _CLICK % json.dumps(label),
                                                   "returnByValue": True})
            assert clicked["result"]["value"] or label == MEASURE, f"no menu entry {label!r}"
            time.sleep(0.5)
        dt.send("Runtime.evaluate", {"expression": _OPEN_FIRST})
        time.sleep(1.0)
        shown = json.loads(dt.send("Runtime.evaluate", {"expression": _SHOWN,
                                                        "returnByValue": True})["result"]["value"])
        shot = dt.send("Page.captureScreenshot", {"format": "png"})
        dt.send("Runtime.evaluate", {"expression": "1"})  # flush pending console events
    finally:
        dt.close()

    out = Path(os.environ.get("ALIGNPATTERNS_REPORT_SCREENSHOT", tmp_path / "report.png"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    print(f"report screenshot: {out}")
    assert out.stat().st_size > 10_000

    n_png = len(list((workflow_copy / "results" / "figures").glob("*.png")))
    assert len(images) == n_png, "every figure must be in the report"
    broken = [i["path"] for i in images if not i["ok"] or i["width"] == 0]
    assert not broken, f"figures that do not load in the browser: {broken}"
    assert shown and all(ok and width > 0 for ok, width in shown), shown

    severe = []
    for ev in dt.events:
        if ev.get("method") == "Runtime.exceptionThrown":
            severe.append(json.dumps(ev["params"]["exceptionDetails"])[:300])
        elif ev.get("method") == "Runtime.consoleAPICalled" and ev["params"]["type"] == "error":
            severe.append(" ".join(str(a.get("value", a.get("description", "")))
                                   for a in ev["params"]["args"]))
        elif ev.get("method") == "Log.entryAdded" and ev["params"]["entry"]["level"] == "error":
            e = ev["params"]["entry"]
            severe.append(f"{e.get('text', '')} {e.get('url', '')}")
    severe = [s for s in severe if not any(p.search(s) for p in ALLOWED)]
    assert not severe, f"console messages of level error: {severe}"
