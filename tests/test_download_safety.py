"""``kedro data download|upload`` against crafted DagsHub-compatible servers on 127.0.0.1: files
land only inside --local-dir-path, the token goes only to --host, plain http needs
--allow-http, and a rejected token is one line naming DAGSHUB_USER_TOKEN."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from power_modelling.cli import cli
from power_modelling.data_versioning import DataCommandError, _inside, checked_host
from tests.helpers import make_project

TOKEN = "secret-test-token"
REPO = ["--owner", "someone", "--name", "jetson-data"]
API = "/api/v1/repos/someone/jetson-data"
REMOTE = "data/01_raw/jetson"


@dataclass
class FakeServer:
    """A DagsHub-compatible server: ``routes`` maps a request path to (status, headers, body);
    every request is recorded with its Authorization header."""

    url: str = ""
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def json(self, path: str, value: object) -> None:
        self.routes[path] = (200, {"Content-Type": "application/json"}, json.dumps(value).encode())

    def file(self, path: str, content: bytes) -> None:
        self.routes[path] = (200, {}, content)

    def redirect(self, path: str, location: str) -> None:
        self.routes[path] = (302, {"Location": location}, b"")


def _serve(fake: FakeServer, status_for_all: int | None = None) -> http.server.HTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append((self.path.split("?")[0], self.headers.get("Authorization")))
            status, headers, body = fake.routes.get(self.path.split("?")[0], (404, {}, b""))
            if status_for_all is not None:
                status, headers, body = status_for_all, {}, b""
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[FakeServer, FakeServer]]:
    """The configured host and a second host (another origin) that a listing may name."""
    fakes = (FakeServer(), FakeServer())
    running = [_serve(fake) for fake in fakes]
    try:
        yield fakes
    finally:
        for server in running:
            server.shutdown()
            server.server_close()


@pytest.fixture
def refusing_server(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    fake = FakeServer()
    server = _serve(fake, status_for_all=request.param)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _invoke(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["data", *args], env={"DAGSHUB_USER_TOKEN": TOKEN})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output.strip().splitlines()


def _download(host: FakeServer, local: Path, *extra: str) -> tuple[int, list[str]]:
    return _invoke(
        "download", *REPO, "--local-dir-path", str(local), "--remote-dir-path", REMOTE,
        "--host", host.url, *extra,
    )  # fmt: skip


def _listing(main: FakeServer, entries: list[dict]) -> None:
    main.json(API, {"default_branch": "main"})
    main.json(f"{API}/content/main/{REMOTE}", entries)


def _file(path: str, url: str) -> dict:
    return {"path": path, "type": "file", "versioning": "dvc", "download_url": url}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_files_from_a_second_host_or_redirect_never_get_the_token(
    servers: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    main, other = servers
    _listing(
        main,
        [
            _file(f"{REMOTE}/own.txt", f"{main.url}{API}/raw/main/{REMOTE}/own.txt"),
            _file(f"{REMOTE}/elsewhere.txt", f"{other.url}/files/elsewhere.txt"),
            _file(f"{REMOTE}/sub/redirected.txt", f"{main.url}{API}/raw/main/redirected"),
            {"path": f"{REMOTE}/sub", "type": "dir", "versioning": "dvc"},
        ],
    )
    main.json(f"{API}/content/main/{REMOTE}/sub", [])
    main.file(f"{API}/raw/main/{REMOTE}/own.txt", b"own")
    main.redirect(f"{API}/raw/main/redirected", f"{other.url}/files/redirected.txt")
    other.file("/files/elsewhere.txt", b"elsewhere")
    other.file("/files/redirected.txt", b"redirected")

    local = tmp_path / "out"
    code, lines = _download(main, local, "--allow-http")
    assert code == 0, lines
    assert _files(local) == {
        "own.txt": b"own",
        "elsewhere.txt": b"elsewhere",
        "sub/redirected.txt": b"redirected",
    }
    assert {auth for _, auth in main.requests} == {f"Bearer {TOKEN}"}
    assert sorted(path for path, _ in other.requests) == [
        "/files/elsewhere.txt",
        "/files/redirected.txt",
    ]
    assert {auth for _, auth in other.requests} == {None}


@pytest.mark.parametrize(
    "bad",
    [
        f"{REMOTE}/../../06_models/PLANTED_model.pkl",
        f"{REMOTE}/../../../../outside.txt",
        "{outside}/absolute.txt",
        "data/01_raw/other_dataset/x.txt",  # not under the requested folder
        f"{REMOTE}/./x.txt",
        f"{REMOTE}//x.txt",
    ],
)
def test_paths_leading_outside_the_folder_are_refused_and_nothing_is_written(
    servers: tuple[FakeServer, FakeServer], tmp_path: Path, bad: str
) -> None:
    main, _ = servers
    project = tmp_path / "project"
    local = project / "data" / "01_raw" / "jetson"
    outside = tmp_path / "outside"
    outside.mkdir()
    bad = bad.format(outside=outside)
    _listing(
        main,
        [
            _file(f"{REMOTE}/good.txt", f"{main.url}{API}/raw/main/{REMOTE}/good.txt"),
            _file(bad, f"{main.url}{API}/raw/main/payload"),
        ],
    )
    main.file(f"{API}/raw/main/{REMOTE}/good.txt", b"good")
    main.file(f"{API}/raw/main/payload", b"payload")

    code, lines = _download(main, local, "--allow-http")
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: refusing to download {bad!r}")
    assert lines[0].endswith("(nothing was downloaded)")
    assert _files(tmp_path) == {}  # not even the good file: every path is checked first
    assert not any("/raw/" in path for path, _ in main.requests)


def test_a_symbolic_link_out_of_the_folder_is_refused(
    servers: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    main, _ = servers
    local, outside = tmp_path / "out", tmp_path / "outside"
    local.mkdir()
    outside.mkdir()
    (local / "models").symlink_to(outside)
    _listing(main, [_file(f"{REMOTE}/models/x.pkl", f"{main.url}{API}/raw/main/x")])
    main.file(f"{API}/raw/main/x", b"payload")

    code, lines = _download(main, local, "--allow-http")
    assert code == 1
    assert "leads outside" in lines[0]
    assert "symbolic link" in lines[0]
    assert list(outside.iterdir()) == []


def test_a_download_url_that_is_not_http_is_refused(
    servers: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    main, _ = servers
    _listing(main, [_file(f"{REMOTE}/passwd", "file:///etc/passwd")])
    code, lines = _download(main, tmp_path / "out", "--allow-http")
    assert (code, lines) == (1, ["Error: refusing to fetch file:///etc/passwd: not an https URL"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["download", "upload"])
def test_plain_http_needs_allow_http(
    servers: tuple[FakeServer, FakeServer], tmp_path: Path, command: str
) -> None:
    main, _ = servers
    tmp_path.joinpath("data.txt").write_text("x")
    code, lines = _invoke(command, *REPO, "--local-dir-path", str(tmp_path), "--host", main.url)
    assert code == 1
    assert lines == [
        f"Error: refusing to send DAGSHUB_USER_TOKEN over plain http to {main.url}: use an "
        "https:// host, or --allow-http for a trusted local server"
    ]
    assert main.requests == []  # nothing was sent


@pytest.mark.parametrize("refusing_server", [401, 403], indirect=True)
@pytest.mark.parametrize("command", ["download", "upload"])
def test_rejected_token_is_one_line(
    refusing_server: FakeServer, tmp_path: Path, command: str
) -> None:
    tmp_path.joinpath("data.txt").write_text("x")
    code, lines = _invoke(
        command, *REPO, "--local-dir-path", str(tmp_path), "--host", refusing_server.url,
        "--allow-http",
    )  # fmt: skip
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {command} ")
    assert lines[0].endswith("(check DAGSHUB_USER_TOKEN)")


@pytest.mark.integration
@pytest.mark.parametrize("refusing_server", [401], indirect=True)
def test_kedro_data_download_with_a_rejected_token_prints_no_traceback(
    refusing_server: FakeServer, tmp_path: Path
) -> None:
    project = make_project(tmp_path, models=())
    env = {**os.environ, "DO_NOT_TRACK": "true", "DAGSHUB_USER_TOKEN": TOKEN}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "data", "download", *REPO,
         "--local-dir-path", "data/01_raw/jetson", "--host", refusing_server.url,
         "--allow-http"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: download from someone/jetson-data failed: {refusing_server.url} answered 401 "
        f"for {API} (check DAGSHUB_USER_TOKEN)"
    )
    assert not (project / "data" / "01_raw" / "jetson").exists()


def test_hosts_and_paths_unit() -> None:
    assert checked_host("https://dagshub.com/") == "https://dagshub.com"
    assert checked_host("http://127.0.0.1:8080", allow_http=True) == "http://127.0.0.1:8080"
    for host in ("dagshub.com", "ftp://dagshub.com", "https://"):
        with pytest.raises(DataCommandError, match="must be an https:// URL"):
            checked_host(host)
    assert _inside(Path("out"), "a/b.txt") == Path("out/a/b.txt")
    for relative in ("../x", "/x", "a/../../x", "a\\..\\x", "", "a/"):
        with pytest.raises(DataCommandError, match="refusing to download"):
            _inside(Path("out"), relative)
