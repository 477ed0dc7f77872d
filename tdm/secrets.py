"""Secrets providers and the :class:`Secret` value type (public names).

>>> from tdm.secrets import MappingSecrets
>>> MappingSecrets({"S3": {"key": "abc"}}).section("S3")["key"]
Secret('***')
"""

from tdm.effects.secret_routing import AwsSecrets, RoutedSecrets
from tdm.effects.secrets import (
    ChainSecrets,
    DirectorySecrets,
    EnvSecrets,
    FileSecrets,
    MappingSecrets,
    ScrubbedError,
    Secret,
    SecretsProvider,
    default_secrets,
    scrub,
    tdm_home,
)

__all__ = [
    "AwsSecrets",
    "ChainSecrets",
    "DirectorySecrets",
    "EnvSecrets",
    "FileSecrets",
    "MappingSecrets",
    "RoutedSecrets",
    "ScrubbedError",
    "Secret",
    "SecretsProvider",
    "default_secrets",
    "scrub",
    "tdm_home",
]
