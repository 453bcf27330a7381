"""The image the Kubernetes egress gateway runs: `vectraguard image build --gateway`.

The default image (it has Debian's python3) plus this Vectra Guard's own
Python package, copied from where it is imported from: no pip, no registry.
The gateway needs nothing outside the standard library (kube/gateway.py
imports only the network code), so no other package goes in. Tagged
`localhost/vectraguard/gateway:<version>` (push it to the cluster's
registry yourself); its entrypoint is `vectraguard kube gateway`, run as
the sandbox user (1000), so the Deployment gives only the options.
Built by Podman's build endpoint from a Containerfile with one COPY and no
RUN: nothing executes during the build. A code change without a new
version keeps the tag: `--rebuild` builds it again.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import vectraguard
from vectraguard import errors
from vectraguard.images import importer, recipe
from vectraguard.images.build import IMPORT_TIMEOUT_S, BuildResult, Report
from vectraguard.runtime.podman_api import open_client, podman_errors

REPOSITORY = "localhost/vectraguard/gateway"
KIND = "gateway"
APP_DIR = "/opt/vectraguard-gateway"
PORT = 3128
LABEL_VERSION = "io.vectraguard.version"


def gateway_ref(version: str = vectraguard.__version__) -> str:
    """The tag: the version, with what an image tag cannot hold (`+` of a local version) as `-`."""
    return f"{REPOSITORY}:{re.sub(r'[^A-Za-z0-9_.-]', '-', version)[:128]}"


def containerfile(base: str, version: str) -> str:
    return "\n".join([
        f"FROM {base}",
        f"COPY vectraguard {APP_DIR}/vectraguard",
        f"ENV PYTHONPATH={APP_DIR} PYTHONDONTWRITEBYTECODE=1 VECTRAGUARD_FORKSERVER=off",
        f"USER {recipe.SANDBOX_UID}:{recipe.SANDBOX_UID}",
        "WORKDIR /",
        f"EXPOSE {PORT}",
        f"LABEL {recipe.LABEL}={KIND} {LABEL_VERSION}={version}",
        'ENTRYPOINT ["python3", "-P", "-m", "vectraguard", "kube", "gateway"]',
        "CMD []",
        "",
    ])


def build_gateway_image(*, rebuild: bool, report: Report, suite: str = recipe.DEFAULT_SUITE) -> BuildResult:
    """Build the gateway image unless it exists (or `rebuild`); ImageNotFound (125) without the default image."""
    ref, base = gateway_ref(), recipe.image_ref(recipe.checked_suite(suite))
    with open_client(timeout=IMPORT_TIMEOUT_S) as client:
        previous = importer.existing_id(client, ref)
        if previous and not rebuild:
            report(f"{ref} already exists ({previous}); skipping the build (--rebuild builds it again)")
            return BuildResult(ref, previous, skipped=True)
        if importer.existing_id(client, base) is None:
            raise errors.ImageNotFound(f"vectraguard: image build --gateway: the default image {base} is not built",
                                       hint="build it first: vectraguard image build")
        with tempfile.TemporaryDirectory(prefix="vectraguard-gateway-") as context:
            package = Path(vectraguard.__file__).resolve().parent
            shutil.copytree(package, Path(context) / "vectraguard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            (Path(context) / "Containerfile").write_text(containerfile(base, vectraguard.__version__))
            report(f"building {ref} from {base} and {package}…")
            with podman_errors("podman build"):
                image, _ = client.images.build(path=context, dockerfile="Containerfile", tag=ref, pull=False,
                                               rm=True, forcerm=True)
        image_id = importer.full_id(str(image.id))
        if previous and previous != image_id and importer.remove_if_unused(client, previous):
            report(f"removed the image it replaces ({previous})")
    report(f"done: {ref} {image_id}")
    return BuildResult(ref, image_id, skipped=False)
