"""Secrets from AWS Secrets Manager, and the provider a project's ``secrets:`` settings build.

A project may route some secret names to one provider (``AirWatch: aws``) and read the rest
from the default chain (environment, mounted files, ``$TDM_HOME/secrets.yml``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from tdm.effects.secrets import (
    ChainSecrets,
    DirectorySecrets,
    EnvSecrets,
    FileSecrets,
    Secret,
    SecretsProvider,
    _missing,
    _secret,
    _secrets_of,
)
from tdm.errors import SecretNotFoundError

__all__ = ["PROVIDER_KINDS", "AwsSecrets", "RoutedSecrets", "providers_from_settings"]


class AwsSecrets:
    """Secrets from AWS Secrets Manager: each secret's string is a JSON object of keys.

    A secret whose value is not a JSON object is one key, ``value``. Sections are cached per
    provider. Credentials come from boto3's usual chain (environment, profile, role).

    Args:
        region: the AWS region (default: boto3's configuration).
        endpoint_url: another endpoint (a VPC endpoint, or a local test server).
        prefix: prepended to every secret name (``"prod/"`` + ``"AirWatch"``).
        profile: a named AWS profile.
        attempts: total tries per request (botocore's standard retry mode).
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        prefix: str = "",
        profile: str | None = None,
        attempts: int = 3,
    ) -> None:
        self.attempts = attempts
        self.region = region
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self.profile = profile
        self._client: Any = None
        self._cache: dict[str, dict[str, Secret]] = {}
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise SecretNotFoundError(
                    "AWS Secrets Manager needs boto3; install it with: "
                    "pip install 'tdm-pipelines[aws]'"
                ) from None
            from botocore.config import Config

            session = boto3.session.Session(profile_name=self.profile)
            self._client = session.client(
                "secretsmanager",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=Config(
                    retries={"max_attempts": self.attempts, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=30,
                ),
            )
        return self._client

    def section(self, name: str) -> Mapping[str, Secret]:
        with self._lock:
            if name in self._cache:
                return self._cache[name]

        client = self._get_client()
        from botocore.exceptions import BotoCoreError, ClientError

        secret_id = self.prefix + name
        try:
            response = client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code == "ResourceNotFoundException":
                _missing(name, self.describe(), self._names())
            raise SecretNotFoundError(
                f"AWS Secrets Manager refused secret {secret_id!r} ({code}); check that the "
                "credentials may call secretsmanager:GetSecretValue on it"
            ) from None
        except BotoCoreError as exc:
            raise SecretNotFoundError(
                f"cannot read secret {secret_id!r} from AWS Secrets Manager: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        raw = response.get("SecretString")
        if raw is None:
            raw = bytes(response.get("SecretBinary", b"")).decode("utf-8", "replace")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        values = (
            _secrets_of(name, parsed, self.describe())
            if isinstance(parsed, Mapping)
            else {"value": _secret(name, "value", raw)}
        )
        with self._lock:
            self._cache[name] = values
        return values

    def _names(self) -> list[str]:
        try:
            pages = self._get_client().get_paginator("list_secrets").paginate()
            names = [s["Name"] for page in pages for s in page.get("SecretList", [])]
        except Exception:  # listing is a courtesy for the message; it may be forbidden
            return []
        return [n[len(self.prefix) :] for n in names if n.startswith(self.prefix)]

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        region = f" ({self.region})" if self.region else ""
        prefix = f" with prefix {self.prefix!r}" if self.prefix else ""
        return f"AWS Secrets Manager{region}{where}{prefix}"

    def __repr__(self) -> str:
        return f"AwsSecrets(region={self.region!r}, prefix={self.prefix!r})"


class RoutedSecrets:
    """Sends some secret names to a chosen provider and every other name to ``default``."""

    def __init__(self, routes: Mapping[str, SecretsProvider], default: SecretsProvider) -> None:
        self.routes = dict(routes)
        self.default = default

    def section(self, name: str) -> Mapping[str, Secret]:
        return self.routes.get(name, self.default).section(name)

    def describe(self) -> str:
        return self.default.describe()

    def __repr__(self) -> str:
        return f"RoutedSecrets({sorted(self.routes)!r}, default={self.default!r})"


PROVIDER_KINDS = ("env", "directory", "file", "aws")
"""The provider kinds a ``secrets:`` setting or a secret reference may name."""


def providers_from_settings(
    settings: Mapping[str, Any] | None = None, *, routes: Mapping[str, str] | None = None
) -> SecretsProvider:
    """Build the provider a project's ``secrets:`` settings describe.

    Settings (all optional): ``order`` (provider kinds, default env, directory when
    ``TDM_SECRETS_DIR`` or ``directory`` is set, then file), ``directory``, ``file``,
    ``env_prefix`` and ``aws`` (``region``, ``endpoint_url``, ``prefix``, ``profile``).
    ``routes`` sends a secret name to one provider kind (``"default"`` = the chain).

    >>> providers_from_settings({"order": ["env"]})
    ChainSecrets(EnvSecrets(prefix='TDM_SECRET__'),)
    """
    settings = settings or {}
    made: dict[str, SecretsProvider] = {}

    def make(kind: str) -> SecretsProvider:
        if kind not in made:
            if kind == "env":
                made[kind] = EnvSecrets(prefix=settings.get("env_prefix", "TDM_SECRET__"))
            elif kind == "directory":
                made[kind] = DirectorySecrets(settings.get("directory"))
            elif kind == "file":
                made[kind] = FileSecrets(settings.get("file"))
            elif kind == "aws":
                made[kind] = AwsSecrets(**dict(settings.get("aws") or {}))
            else:
                raise SecretNotFoundError(
                    f"unknown secrets provider {kind!r}; use one of {', '.join(PROVIDER_KINDS)}"
                )
        return made[kind]

    order = settings.get("order")
    if order is None:
        has_dir = bool(settings.get("directory") or os.environ.get("TDM_SECRETS_DIR"))
        order = ["env", *(["directory"] if has_dir else []), "file"]
    chain = ChainSecrets(*(make(k) for k in order))
    routed = {n: make(k) for n, k in (routes or {}).items() if k != "default"}
    return RoutedSecrets(routed, chain) if routed else chain
