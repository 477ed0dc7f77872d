"""Smoke tests: every service fixture in tests.servers.fixtures really works."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
import pytest

from tests.servers.fixtures import (
    ApiError,
    AzuriteServer,
    FakeApi,
    MotoS3Server,
    RequestInfo,
    SmtpServer,
    TlsFiles,
)

if TYPE_CHECKING:
    from distributed import Client


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"a": range(5), "b": list("vwxyz")})


# ---- S3 (moto) ---------------------------------------------------------------------------------
def test_s3_parquet_roundtrip(s3_server: MotoS3Server, frame: pd.DataFrame) -> None:
    import s3fs

    s3_server.reset()
    bucket = s3_server.make_bucket("tdm-smoke")
    url = f"s3://{bucket}/data/df.parquet"
    frame.to_parquet(url, storage_options=s3_server.storage_options)
    pd.testing.assert_frame_equal(
        pd.read_parquet(url, storage_options=s3_server.storage_options), frame
    )
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    assert fs.ls(f"{bucket}/data") == [f"{bucket}/data/df.parquet"]
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")

    s3_server.reset()
    assert "tdm-smoke" not in s3fs.S3FileSystem(**s3_server.storage_options).ls("")


# ---- Azure Blob (Azurite) ----------------------------------------------------------------------
def test_azurite_parquet_roundtrip(azurite: AzuriteServer, frame: pd.DataFrame) -> None:
    import adlfs

    container = azurite.make_container("tdm-smoke")
    assert azurite.make_container("tdm-smoke") == container  # idempotent
    so = azurite.storage_options
    frame.to_parquet(f"abfs://{container}/data/df.parquet", storage_options=so)
    pd.testing.assert_frame_equal(
        pd.read_parquet(f"az://{container}/data/df.parquet", storage_options=so), frame
    )
    assert adlfs.AzureBlobFileSystem(**so).ls(f"{container}/data") == [
        f"{container}/data/df.parquet"
    ]
    assert azurite.blob_endpoint == f"http://127.0.0.1:{azurite.port}/devstoreaccount1"
    assert azurite.process.poll() is None

    azurite.reset()
    with azurite.blob_service_client() as client:
        assert [c.name for c in client.list_containers()] == []


# ---- SMTP (aiosmtpd) ---------------------------------------------------------------------------
def _mail(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "pipeline@tdm.test"
    msg["To"] = "ops@tdm.test"
    msg["Subject"] = subject
    msg.set_content("run finished ✓")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="report.csv")
    return msg


def test_smtp_captures_messages(smtp_server: SmtpServer) -> None:
    smtp_server.clear()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        client.send_message(_mail("nightly report"))
    [msg] = smtp_server.wait_for(1)
    assert msg["Subject"] == "nightly report"
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "run finished ✓"
    [attachment] = msg.iter_attachments()
    assert attachment.get_filename() == "report.csv"
    assert attachment.get_content() == "a,b\n1,2\n"
    assert smtp_server.mails[0].rcpt_tos == ["ops@tdm.test"]
    smtp_server.clear()
    assert smtp_server.messages == []


def test_smtp_auth(smtp_auth_server: SmtpServer) -> None:
    server = smtp_auth_server
    server.clear()
    assert (server.username, server.password) == ("tdm", "s3cret-pass")
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:  # no AUTH -> refused
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(_mail("no auth"))
        assert refused.value.smtp_code == 530
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:  # wrong password -> 535
        with pytest.raises(smtplib.SMTPAuthenticationError) as denied:
            client.login(server.username, "wrong")
        assert denied.value.smtp_code == 535
    assert server.auth_attempts and not any(a.success for a in server.auth_attempts)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.login(server.username, server.password)
        client.send_message(_mail("with auth"))
    assert server.auth_attempts[-1].success
    assert server.auth_attempts[-1].username == "tdm"
    assert [m["Subject"] for m in server.messages] == ["with auth"]
    assert server.mails[0].username == "tdm"


def test_smtp_over_ssl(smtp_ssl_server: SmtpServer, tls_files: TlsFiles) -> None:
    server = smtp_ssl_server
    server.clear()
    context = tls_files.client_context()
    with smtplib.SMTP_SSL(server.host, server.port, timeout=5, context=context) as client:
        client.login(server.username, server.password)
        client.send_message(_mail("over ssl"))
    assert server.mails[0].tls == "TLSv1.3" and server.mails[0].username == "tdm"
    with pytest.raises(ssl.SSLCertVerificationError):  # the throwaway CA is not trusted
        smtplib.SMTP_SSL(server.host, server.port, timeout=5, context=ssl.create_default_context())


def test_smtp_starttls_required(smtp_starttls_server: SmtpServer, tls_files: TlsFiles) -> None:
    server = smtp_starttls_server
    server.clear()
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:  # in the clear: no AUTH
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(_mail("in the clear"))
        assert refused.value.smtp_code == 530  # Must issue a STARTTLS command first
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.starttls(context=tls_files.client_context())
        client.ehlo()
        assert client.has_extn("auth")
        client.login(server.username, server.password)
        client.send_message(_mail("after starttls"))
    assert [m["Subject"] for m in server.messages] == ["after starttls"]
    assert server.mails[0].tls == "TLSv1.3"


def test_tls_files_name_the_hosts(tls_files: TlsFiles) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(tls_files.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert tls_files.key_file.stat().st_mode & 0o077 == 0


# ---- fake REST API -----------------------------------------------------------------------------
def _collect(api: FakeApi, style: str) -> list[int]:
    """Walk every page of /items/<style>; return the item ids."""
    ids: list[int] = []
    with httpx.Client(base_url=api.url, timeout=5) as client:
        if style == "page":
            page: int | None = 1
            while page is not None:
                body = client.get("/items/page", params={"page": page, "per_page": 40}).json()
                ids += [item["id"] for item in body["data"]]
                page = body["next_page"]
        elif style == "offset":
            offset: int | None = 0
            while offset is not None:
                body = client.get("/items/offset", params={"offset": offset, "limit": 40}).json()
                ids += [item["id"] for item in body["data"]]
                offset = body["next_offset"]
        elif style == "cursor":
            params: dict[str, Any] = {"limit": 40}
            while True:
                body = client.get("/items/cursor", params=params).json()
                ids += [item["id"] for item in body["data"]]
                if body["next_cursor"] is None:
                    break
                params["cursor"] = body["next_cursor"]
        elif style == "nexturl":
            url: str | None = "/items/nexturl?per_page=40"
            while url is not None:
                body = client.get(url).json()
                ids += [item["id"] for item in body["data"]]
                url = body["next"]
        elif style == "link":
            response = client.get("/items/link", params={"per_page": 40})
            while True:
                ids += [item["id"] for item in response.json()]
                if "next" not in response.links:
                    break
                response = client.get(response.links["next"]["url"])
        else:
            raise AssertionError(style)
    return ids


@pytest.mark.parametrize("style", ["page", "offset", "cursor", "nexturl", "link"])
def test_fake_api_pagination(fresh_fake_api: FakeApi, style: str) -> None:
    assert _collect(fresh_fake_api, style) == list(range(230))
    assert fresh_fake_api.count == 6  # ceil(230 / 40) requests
    fresh_fake_api.total = 7
    assert _collect(fresh_fake_api, style) == list(range(7))


def test_fake_api_errors_and_builtins(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    assert httpx.get(f"{api.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{api.url}/items/12").json() == {"id": 12, "name": "item-0012"}
    assert httpx.get(f"{api.url}/items/999").status_code == 404
    assert httpx.get(f"{api.url}/nope").status_code == 404
    assert httpx.post(f"{api.url}/items/page").status_code == 405
    assert httpx.get(f"{api.url}/items/page", params={"page": "x"}).status_code == 400
    assert httpx.get(f"{api.url}/items/cursor", params={"cursor": "garbage!"}).status_code == 400
    assert httpx.get(f"{api.url}/status/418").status_code == 418
    echo = httpx.post(f"{api.url}/echo", params={"q": "1"}, json={"x": 1}, headers={"X-Key": "k"})
    assert echo.json()["json"] == {"x": 1}
    assert echo.json()["query"] == {"q": "1"}
    assert echo.json()["headers"]["x-key"] == "k"


def test_fake_api_fault_injection(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.fail_next(2, status=503, retry_after="0")
    with httpx.Client(base_url=api.url, timeout=5) as client:
        statuses = [client.get("/items/page").status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        assert api.log[0].headers["host"].startswith("127.0.0.1")
        api.fail_next(1, status=429, retry_after=None, path="/items/offset")
        assert client.get("/items/page").status_code == 200  # path filter: not this one
        failed = client.get("/items/offset")
        assert failed.status_code == 429 and "retry-after" not in failed.headers

        api.fail_every(3, status=429, retry_after="1")
        statuses = [client.get("/health").status_code for _ in range(6)]
        assert statuses == [200, 200, 429, 200, 200, 429]
        assert client.get("/health").headers.get("retry-after") is None
        api.fail_every(0)
        assert [client.get("/health").status_code for _ in range(3)] == [200] * 3
    assert api.injected == 5
    assert api.count == len(api.log) == 15
    assert api.hits("/items/page") == 4


def test_fake_api_custom_routes(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api

    def get_user(req: RequestInfo) -> tuple[int, Any, dict[str, str]]:
        if req.headers.get("authorization") != "Bearer t0ken":
            raise ApiError(401, "unauthorized", {"WWW-Authenticate": "Bearer"})
        uid = req.path_params["uid"]
        return 200, {"id": uid, "fields": req.query.get("fields")}, {"X-User": uid}

    api.route("/users/{uid}", get_user, methods=["GET"])

    @api.route("/users", methods=["POST"])
    async def create_user(req: RequestInfo) -> tuple[int, Any]:
        await asyncio.sleep(0)
        return 201, {"created": req.json["name"]}

    @api.route("/items/page")  # custom routes override built-ins
    def broken(req: RequestInfo) -> Any:
        raise RuntimeError("boom")

    with httpx.Client(base_url=api.url, timeout=5) as client:
        assert client.get("/users/42").status_code == 401
        ok = client.get(
            "/users/42", params={"fields": "a,b"}, headers={"Authorization": "Bearer t0ken"}
        )
        assert ok.json() == {"id": "42", "fields": "a,b"} and ok.headers["x-user"] == "42"
        assert client.post("/users", json={"name": "ada"}).json() == {"created": "ada"}
        assert client.get("/items/page").status_code == 500
    assert "boom" in api.errors[0]
    api.reset()  # drops custom routes
    assert httpx.get(f"{api.url}/items/page").status_code == 200
    assert httpx.get(f"{api.url}/users/1").status_code == 404


def test_fake_api_concurrency(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.latency_s = 0.2
    n = 20

    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=n)
        async with httpx.AsyncClient(base_url=api.url, limits=limits, timeout=10) as client:
            responses = await asyncio.gather(*(client.get(f"/items/{i}") for i in range(n)))
        return [r.json()["id"] for r in responses]

    assert asyncio.run(main()) == list(range(n))
    assert api.max_in_flight >= n // 2, api.max_in_flight  # concurrent (no timed assertion)
    # The server counts a request done after its response is sent, so the client can see the
    # last response a moment before the counter drops: wait (briefly) for it.
    deadline = time.monotonic() + 2
    while api.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.in_flight == 0


# ---- Dask --------------------------------------------------------------------------------------
def test_dask_cluster(dask_client: Client) -> None:
    import dask.dataframe as dd

    assert len(dask_client.scheduler_info()["workers"]) == 2
    assert dask_client.submit(sum, [1, 2, 3]).result() == 6
    pdf = pd.DataFrame({"k": [i % 7 for i in range(1000)], "v": range(1000)})
    result = dd.from_pandas(pdf, npartitions=4).groupby("k").v.sum().compute(scheduler=dask_client)
    pd.testing.assert_series_equal(result.sort_index(), pdf.groupby("k").v.sum().sort_index())


def test_dask_default_client(dask_default_client: Client) -> None:
    import dask
    from distributed import get_client

    assert get_client() is dask_default_client
    assert dask.delayed(sum)([1, 2]).compute() == 3
