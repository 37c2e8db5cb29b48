"""Secrets at rest and in use: the sign-in token and the key that encrypts stored secrets
(``credentials``), the configuration's secret fields split out, masked and merged back
(``fields``), stored secrets kept to the endpoint origin they were saved for (``reuse``), and
``ENV["NAME"]`` values read from the environment when used, never the application's own
settings (``env_refs``).
"""

from .credentials import (
    KeyCipher,
    Provisioned,
    bearer_matches,
    owner_only_dir,
    provision_secret_key,
    provision_token,
    tokens_match,
    weak_token_warning,
)
from .env_refs import application_setting_refs, env_ref_name, has_env_refs, resolve_env_refs
from .fields import MASK, SecretFields, secret_paths
from .reuse import moved_secret_problems

__all__ = [
    "MASK",
    "KeyCipher",
    "Provisioned",
    "SecretFields",
    "application_setting_refs",
    "bearer_matches",
    "env_ref_name",
    "has_env_refs",
    "moved_secret_problems",
    "owner_only_dir",
    "provision_secret_key",
    "provision_token",
    "resolve_env_refs",
    "secret_paths",
    "tokens_match",
    "weak_token_warning",
]
