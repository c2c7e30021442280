"""Headless Chromium driven over its DevTools protocol, for the book's browser tests.

A small client (no Selenium, no Playwright): Chromium starts with ``--remote-debugging-port=0``,
writes the port it chose to ``DevToolsActivePort`` in its profile folder, and one page target is
driven through a websocket. Every wait is bounded; :class:`Chromium` and :func:`serve` are context
managers that stop the browser and the HTTP server they start. Lives in tests/, not in the package.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a free port), as a reader's browser would get it; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Page:
    """One tab: commands with a timeout, and the events (console, network) seen since the last :meth:`goto`."""

    ws: Any
    timeout: float
    events: list[dict] = field(default_factory=list)
    _next_id: int = 0

    def send(self, method: str, **params: Any) -> dict:
        """One DevTools command; returns its result, keeps the events that arrive meanwhile."""
        self._next_id += 1
        ident = self._next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"{method}: no answer in {self.timeout:.0f} s")

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds`` (late resource loads, console messages)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                message = json.loads(self.ws.recv())
            except Exception:  # websocket timeout: nothing more arrived
                return
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The JSON value of a JavaScript expression in the page; a thrown error raises."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise, timeout=int(self.timeout * 1000))
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event (bounded); forgets the previous page's events."""
        self.events = []
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: no load event in {self.timeout:.0f} s")
            self.pump(0.2)

    def click(self, x: float, y: float) -> None:
        """A real left click (mouse down and up) at viewport coordinates."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed resource loads since the last :meth:`goto`."""
        found = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                found.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                          for a in p.get("args", [])))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                found.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}".strip())
            elif e["method"] == "Network.loadingFailed" and not p.get("canceled"):
                found.append(f"failed load: {p.get('errorText')} ({p.get('type')})")
        return found

    def requested(self) -> list[str]:
        """Every URL the page asked for since the last :meth:`goto`."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, width: int = 1280) -> None:
        """The whole page as a PNG: the viewport is stretched to the page's height first, so that
        sticky headers stay at the top instead of floating over the middle."""
        import base64

        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=int(height), deviceScaleFactor=1,
                  mobile=False)
        try:
            self.evaluate("window.scrollTo(0, 0)")
            self.pump(0.5)
            data = self.send("Page.captureScreenshot", format="png")["data"]
        finally:
            self.send("Emulation.clearDeviceMetricsOverride")
        path.write_bytes(base64.b64decode(data))


class Chromium:
    """Headless Chromium with DevTools on a free port; ``with Chromium(binary, profile) as page: ...``."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0, width: int = 1280, height: int = 900):
        self.binary, self.profile, self.timeout = binary, Path(profile), timeout
        self.size = (width, height)
        self.proc: subprocess.Popen | None = None
        self.ws: Any = None

    def __enter__(self) -> Page:
        import websocket  # websocket-client, in the dev extra

        self.profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = self._port()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as r:
                targets = [t for t in json.load(r) if t.get("type") == "page"]
            if not targets:
                raise RuntimeError("Chromium opened no page")
            self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=self.timeout,
                                                  suppress_origin=True)
            page = Page(self.ws, self.timeout)
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.send(f"{domain}.enable")
            page.send("Network.setCacheDisabled", cacheDisabled=True)
            return page
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Chromium exited with code {self.proc.returncode} before DevTools was up")
            lines = marker.read_text().splitlines() if marker.exists() else []
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError(f"Chromium wrote no DevToolsActivePort in {self.timeout:.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
