"""The footer of every page: which version and commit built the book, its licences, and where to
report a wrong number.

The version comes from ``pyproject.toml``; the commit from ``git`` at build time (with "+ local
changes" when the work tree differs from it), else from ``$THINKING_AHEAD_COMMIT``, else "unknown".
The repository is the one named in ``_config.yml`` (``repository.url``), its only home.
"""

from __future__ import annotations

import datetime
import html
import os
import subprocess
import tomllib
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def build_info(root: Path) -> dict[str, str]:
    """``version``, ``commit`` (short hash, or a fallback) and ``date`` (UTC) of this build."""
    try:
        version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        version = "unknown"
    commit = _git(root, "rev-parse", "--short=12", "HEAD")
    if commit:
        if _git(root, "status", "--porcelain", "--untracked-files=no"):
            commit += " + local changes"
    else:
        commit = os.environ.get("THINKING_AHEAD_COMMIT") or "unknown (built outside a git checkout)"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return {"version": version, "commit": commit, "date": date}


def footer_html(info: dict[str, str], repository: str | None) -> str:
    version, commit, date = (html.escape(info[k]) for k in ("version", "commit", "date"))
    built = f"Thinking Ahead {version}, built {date} from commit <code>{commit}</code>."
    if repository:
        repository = repository.rstrip("/")
        url = html.escape(repository)
        if " " not in info["commit"]:
            built = (f"Thinking Ahead {version}, built {date} from commit "
                     f'<a href="{url}/commit/{commit}"><code>{commit}</code></a>.')
        report = f' Found a wrong number or a claim that does not hold? <a href="{url}/issues">Open an issue</a>.'
    else:
        report = ""
    licences = (' Code: <a href="https://opensource.org/license/mit">MIT</a>; text and figures: '
                '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>.')
    return f'<p class="build-info">{built}{report}{licences}</p>'


def _set_footer(app, config) -> None:
    options = dict(config.html_theme_options or {})
    info = build_info(Path(app.srcdir))
    options["extra_footer"] = footer_html(info, options.get("repository_url"))
    config.html_theme_options = options


def setup(app):
    app.connect("config-inited", _set_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
