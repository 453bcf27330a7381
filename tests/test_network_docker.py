"""The network suite (tests/test_network.py) again, every sandbox run on Docker Engine (`--engine docker`):
the allowlist proxy and forwarders planted in the started container's network namespace before its
command runs (runtime/docker/runtime.py), every server started by the test in a private namespace.

Skipped when no Docker daemon answers. The rootless case is Podman's (the test user has no Docker).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tests.test_network as net
from tests.test_network import *

del test_rootless_allowlist_works_through_a_podman_unshare_helper  # noqa: F821 - Podman's own rootless path


@pytest.fixture(scope="module", autouse=True)
def _on_docker(docker_test_image: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(net, "P", [*net.P, "--engine", "docker"])
        yield
