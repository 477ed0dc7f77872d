"""The original tdm README's worked example, rebuilt: a device inventory from an MDM REST API.

1. Query Devices: ``GET /api/mdm/devices/search`` (paged), records under ``Devices``.
2. Query Security: one ``GET /api/mdm/devices/{Uuid}/security`` per device (32 at a time);
   a retired device answers 404 and is skipped instead of failing the run.
3. Join the two on ``Uuid`` (left join: every device stays, with or without security data).
4. Rename the columns, keep them in a fixed order, normalise the hand-typed US states to
   USPS codes, stamp the run's load date, and write a CSV.

Credentials never appear here: the ``AirWatch`` secret (``~/.tdm/secrets.yml`` or
``TDM_SECRET__AIRWATCH__CODE`` / ``..._KEY`` variables) holds the tenant ``code`` and the Basic
``key``. The same pipeline is declared in ``pipeline.yml``.

Run it offline against the bundled demo API::

    python examples/device_inventory/pipeline.py --output output/devices.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tdm
from tdm import files, rest
from tdm.transforms import (
    append_date_column,
    join,
    rename_columns,
    select,
    standardize_us_state,
)

HERE = Path(__file__).resolve().parent

COLUMNS = {
    "Id_Value": "id",
    "Uuid": "device_id",
    "SerialNumber": "serial_number",
    "Model": "model",
    "Platform": "platform",
    "State": "state",
    "Encrypted": "encrypted",
    "PasscodePresent": "passcode_present",
    "Compromised": "compromised",
}


def build(base_url: str, output: str, *, page_size: int = 500) -> tdm.Pipeline:
    """The device-inventory pipeline for the MDM API at ``base_url``, writing ``output``."""
    airwatch = {
        "headers": {"aw-tenant-code": rest.secret_field("code")},
        "auth": rest.api_key(header="Authorization", key="key", prefix="Basic "),
        "secret": "AirWatch",
    }
    devices = rest.get(
        f"{base_url}/api/mdm/devices/search",
        records="Devices",
        paginate=rest.page_number(
            size=page_size, param="page", size_param="pagesize", start=0, total="Total"
        ),
        label="Query Devices",
        **airwatch,
    )
    security = devices >> rest.fetch_each(
        f"{base_url}/api/mdm/devices/{{Uuid}}/security",
        records="SecurityItems",
        concurrency=32,
        on_status={404: "skip"},
        include_parent=["Uuid"],
        label="Query Security",
        **airwatch,
    )
    return (
        join(on="Uuid", how="left").named("Join Security")(devices, security)
        >> rename_columns(COLUMNS).named("Rename Columns")
        >> select(list(COLUMNS.values())).named("Select Columns")
        >> standardize_us_state("state").named("Normalize State")
        >> append_date_column("load_date", fmt="%Y-%m-%d").named("Add Load Date")
        >> files.write(output, format="csv", label="Write CSV")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Device inventory from the demo MDM API")
    parser.add_argument("--output", default="output/devices.csv")
    parser.add_argument("--base-url", help="an MDM API to call (default: start the demo API)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import demo_api

    from tdm.effects.secrets import ChainSecrets, MappingSecrets, default_secrets

    # The demo's credentials, for the demo API only; a real run reads ~/.tdm/secrets.yml.
    demo = MappingSecrets({"AirWatch": {"code": demo_api.TENANT_CODE, "key": demo_api.API_KEY}})
    runtime = tdm.Runtime(secrets=ChainSecrets(default_secrets(), demo))
    if args.base_url:
        report = tdm.run(build(args.base_url, args.output), runtime=runtime)
    else:
        with demo_api.serve() as base_url:
            report = tdm.run(build(base_url, args.output, page_size=2), runtime=runtime)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
