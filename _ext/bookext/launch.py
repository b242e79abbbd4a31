"""Where the book is published from: the repository behind the launch buttons and the reader's notebooks.

The repository is, in order: the environment variable BOOK_REPOSITORY_URL (set but empty: none), the Sphinx
setting ``book_repository_url`` (_config.yml, sphinx.config), or the checkout's own git remote (the remote of the
current branch's upstream, else ``origin``, else the only remote). An ssh or git remote becomes its https address,
credentials are dropped, and a local path is no repository: without one the book has no launch buttons.
Launch buttons open the reader's notebooks on the branch ``scripts/publish-book`` pushes (gh-pages).
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"
ENV_VAR = "BOOK_REPOSITORY_URL"

_SCP_LIKE = re.compile(r"^[\w.+-]+@(?P<host>[\w.-]+):(?P<path>[^/].*)$")     # git@github.com:org/repo.git


def https_url(remote: str | None) -> str | None:
    """The https address of a git remote, or None for a local path or anything that is not a hosted repository.

    ``git@github.com:org/repo.git``, ``ssh://git@github.com/org/repo``, ``git://...`` and
    ``https://user:token@github.com/org/repo.git`` all give ``https://github.com/org/repo``.
    """
    remote = (remote or "").strip()
    scp = _SCP_LIKE.match(remote)
    if scp and "://" not in remote:
        host, path, port = scp["host"], scp["path"], None
    else:
        parts = urlsplit(remote)
        if parts.scheme not in {"https", "http", "ssh", "git", "git+ssh", "ssh+git"} or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
        port = parts.port if parts.scheme in {"https", "http"} else None   # an ssh port says nothing about https
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if path.count("/") < 1 or not all(path.split("/")):
        return None
    return f"https://{host}{f':{port}' if port else ''}/{path}"


@dataclass(frozen=True)
class Repository:
    """A hosted repository the book is built from, and the commit built (None when not known)."""

    url: str
    commit: str | None = None
    pages_branch: str = "gh-pages"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path.strip("/")

    @property
    def on_github(self) -> bool:
        return self.host == "github.com"

    def pip_requirement(self) -> str:
        """What ``pip install`` needs to get hlmlib, with the chapters' extra, at the commit the book was built from."""
        return f"hlmlib[book] @ git+{self.url}" + (f"@{self.commit}" if self.commit else "")

    def site_url(self) -> str | None:
        """Where GitHub Pages serves the published book (None off GitHub: the address is the host's choice)."""
        if not self.on_github:
            return None
        owner, name = self.path.split("/")[:2]
        return f"https://{owner}.github.io/" + ("" if name.lower() == f"{owner.lower()}.github.io" else f"{name}/")

    def binder_url(self, notebook: str) -> str:
        """mybinder.org, building the published branch and opening ``notebook`` (a path in that branch)."""
        urlpath = "urlpath=" + quote(f"lab/tree/{notebook}", safe="")
        if self.on_github:
            return f"{BINDER}/v2/gh/{self.path}/{self.pages_branch}?{urlpath}"
        if self.host == "gitlab.com":
            return f"{BINDER}/v2/gl/{quote(self.path, safe='')}/{self.pages_branch}?{urlpath}"
        return f"{BINDER}/v2/git/{quote(self.url, safe='')}/{self.pages_branch}?{urlpath}"

    def colab_url(self, notebook: str) -> str | None:
        """Colab opening ``notebook`` from the published branch; Colab reads notebooks from GitHub only."""
        if not self.on_github:
            return None
        return f"{COLAB}/github/{self.path}/blob/{self.pages_branch}/{notebook}"


def _git(srcdir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(srcdir), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def git_remote(srcdir: Path) -> str | None:
    """The URL of the checkout's remote: the upstream's remote, else ``origin``, else the only one."""
    remotes = (_git(srcdir, "remote") or "").split()
    upstream = _git(srcdir, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    name = next((r for r in remotes if upstream and upstream.startswith(r + "/")), None)
    if name is None:
        name = "origin" if "origin" in remotes else (remotes[0] if len(remotes) == 1 else None)
    return _git(srcdir, "remote", "get-url", name) if name else None


def repository(srcdir: Path, setting: str | None = None, pages_branch: str = "gh-pages") -> Repository | None:
    """The repository the book at ``srcdir`` is published from (see the module's docstring), or None."""
    if ENV_VAR in os.environ:
        remote = os.environ[ENV_VAR]
    elif setting:
        remote = setting
    else:
        remote = git_remote(srcdir)
    url = https_url(remote)
    if url is None:
        return None
    return Repository(url, commit=_git(srcdir, "rev-parse", "HEAD"), pages_branch=pages_branch)
