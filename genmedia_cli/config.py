"""Where the API is and which key to use: flags, then env vars, then `~/.config/genmedia/config.toml`.

The config file (TOML) may hold `url`, `scheduling_url` and `api_key`. The key is read only from the
environment or that file, never from a flag, so it does not end up in shell history or `ps`.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from genmedia_cli.errors import UsageError

DEFAULT_URL = "http://localhost:8080"
DEFAULT_SCHEDULING_URL = "http://localhost:8082"
_KEYS = ("url", "scheduling_url", "api_key")


@dataclass(frozen=True)
class Config:
    """The endpoints and the API key of one invocation."""

    url: str
    scheduling_url: str
    api_key: str | None

    def require_key(self) -> str:
        """The API key, or a usage error that says where to put one."""
        if not self.api_key:
            raise UsageError("no API key: set GENMEDIA_API_KEY or api_key in "
                             f"{config_path()} (an operator mints one with `genmedia api-key create NAME`)")
        return self.api_key


def config_path() -> Path:
    """GENMEDIA_CONFIG, else $XDG_CONFIG_HOME/genmedia/config.toml, else ~/.config/genmedia/config.toml."""
    if os.environ.get("GENMEDIA_CONFIG"):
        return Path(os.environ["GENMEDIA_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "genmedia" / "config.toml"


def _read_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"{path}: not a readable TOML file ({err})") from None
    unknown = sorted(set(data) - set(_KEYS))
    if unknown or not all(isinstance(data[k], str) for k in data if k in _KEYS):
        raise UsageError(f"{path}: only string settings {', '.join(_KEYS)} are allowed (found {unknown or data})")
    if "api_key" in data and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        sys.stderr.write(f"genmedia: warning: {path} holds an API key and others can read it (chmod 600 it)\n")
    return {k: data[k] for k in _KEYS if k in data}


def load_config(url: str | None = None, scheduling_url: str | None = None) -> Config:
    """Flags win over GENMEDIA_URL / GENMEDIA_SCHEDULING_URL / GENMEDIA_API_KEY, which win over the file."""
    file = _read_file(config_path())
    return Config(
        url=(url or os.environ.get("GENMEDIA_URL") or file.get("url") or DEFAULT_URL).rstrip("/"),
        scheduling_url=(scheduling_url or os.environ.get("GENMEDIA_SCHEDULING_URL") or file.get("scheduling_url")
                        or DEFAULT_SCHEDULING_URL).rstrip("/"),
        api_key=os.environ.get("GENMEDIA_API_KEY") or file.get("api_key") or None,
    )
