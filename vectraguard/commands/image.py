"""`vectraguard image build`, `image unpack` and `image list`."""

from __future__ import annotations

import argparse
import os
import sys

from vectraguard import errors, output
from vectraguard.config import profiles
from vectraguard.config.layers import Layer
from vectraguard.images import build, catalog, recipe, unpacked
from vectraguard.output import printable
from vectraguard.runtime.podman_api import open_client, podman_errors


def main(args: argparse.Namespace) -> int:
    if args.image_command == "build":
        return build_command(args)
    if args.image_command == "unpack":
        return unpack_command(args)
    if args.image_command == "prune":
        return prune_command(args)
    return list_command(args)


def _reporter(args: argparse.Namespace) -> build.Report:
    def report(text: str) -> None:
        if not args.quiet:
            print(f"vectraguard: {text}", file=sys.stderr, flush=True)

    return report


def build_command(args: argparse.Namespace) -> int:
    report = _reporter(args)
    if args.agent and args.profile:
        raise errors.UsageError("vectraguard: image build: give --agent or --profile, not both")
    if args.set and not args.profile:
        raise errors.UsageError("vectraguard: image build --set: give the profile whose variant it changes (--profile)",
                                hint="e.g. vectraguard image build --profile dev --set image.packages+=jq")
    if args.gateway:
        return _gateway_command(args, report)
    if args.profile:
        plan = _profile_plan(args)
    else:
        plan = _agent_plan(args) if args.agent else recipe.default_plan(args.suite or recipe.DEFAULT_SUITE)
    from vectraguard.runtime import engine as engines

    engine = engines.for_images(args.engine)
    result = build.build_image(plan, args.mirror, rebuild=args.rebuild, report=report,
                               echo=args.verbose >= 1 and not args.quiet, verbose=args.verbose >= 2,
                               show_progress=not args.quiet, unpack=engine == "podman", engine=engine)
    # The one result, on stdout, for scripts: id=$(vectraguard -q image build)
    print(result.id)
    return 0


def _gateway_command(args: argparse.Namespace, report: build.Report) -> int:
    from vectraguard.images import gateway_image

    given = [flag for flag, value in (("--agent", args.agent), ("--profile", args.profile), ("--mirror", args.mirror))
             if value]
    if given:
        raise errors.UsageError(f"vectraguard: image build --gateway: {given[0]} does not apply",
                                hint="the gateway image is the default image plus Vectra Guard's own package")
    result = gateway_image.build_gateway_image(rebuild=args.rebuild, report=report,
                                               suite=args.suite or recipe.DEFAULT_SUITE)
    print(result.id)
    return 0


def _agent_plan(args: argparse.Namespace) -> recipe.ImagePlan:
    """The image agent NAME's definition asks for; its suite is the image tag
    unless --suite says otherwise."""
    sources = profiles.Sources.for_directory(os.getcwd(), ignore_project=args.ignore_project)
    profile = profiles.resolve(args.agent, [], sources)
    if profile.agent is None:
        raise errors.UsageError(f"vectraguard: profile {args.agent!r} is not an agent definition",
                                hint="`vectraguard agent list` lists the agents")
    tag = profile.image.rpartition(":")[2] if ":" in profile.image.rpartition("/")[2] else recipe.DEFAULT_SUITE
    r = profile.agent.recipe
    return recipe.agent_plan(args.agent, profile.image, args.suite or tag, r.debian, r.npm, r.pip)


def _profile_plan(args: argparse.Namespace) -> recipe.ImagePlan:
    """The variant profile NAME's `image.packages` ask for (images/variant.py); --suite does not apply:
    the suite is the tag of its `image.ref`."""
    from vectraguard.images import variant

    sources = profiles.Sources.for_directory(os.getcwd(), ignore_project=args.ignore_project)
    profile = profiles.resolve(args.profile, _image_settings(args.set), sources)
    if not profile.image_packages:
        raise errors.UsageError(f"vectraguard: profile {args.profile!r} names no image.packages: it runs {profile.image}",
                                hint="`vectraguard image build` builds the default image")
    if args.suite:
        raise errors.UsageError("vectraguard: image build --profile: the suite is the tag of the profile's image.ref",
                                hint="set image.ref: localhost/vectraguard/default:SUITE in the profile instead of --suite")
    return variant.variant_plan(variant.suite_of(profile.image_base), profile.image_packages)


def _image_settings(items: list[str]) -> list[Layer]:
    """--set KEY=VALUE as a run's command line layer (config/flags.py), for image keys only: what a run's
    first-use hint repeats (commands/run.py build_ahead) so that this builds the variant that run uses."""
    if not items:
        return []
    from vectraguard.config import flags

    for item in items:
        key = flags.parse_set_flag(item)[0]
        if key.split(".")[0] != "image":
            raise errors.UsageError(f"vectraguard: image build --set {key}: only image keys shape an image",
                                    hint="e.g. --set image.packages+=jq")
    none = argparse.Namespace(set=items, env=[], mount=[], allow=[], publish=[], pids=None, network=None)
    return [flags.flags_layer(none)]


def unpack_command(args: argparse.Namespace) -> int:
    """Unpack an image loaded into Podman some other way, for isolation lite; print the tree's path."""
    with open_client(timeout=build.IMPORT_TIMEOUT_S) as client:
        tree = unpacked.unpack_image(client, args.ref, report=_reporter(args))
    print(tree.path)
    return 0


def prune_command(args: argparse.Namespace) -> int:
    """Remove Vectra Guard's untagged images (images/prune.py); 1 when one could not be removed."""
    from vectraguard.images import prune

    with open_client(timeout=build.IMPORT_TIMEOUT_S) as client, podman_errors("pruning images"):
        done = prune.prune(client)
    if args.json:
        output.print_json([item.as_json() for item in done])
    elif not done:
        print("nothing to prune: no untagged Vectra Guard image")
    else:
        for item in done:
            short = item.id.removeprefix("sha256:")[:12]
            print(f"removed {short} ({item.kind}, {_size(item.size)})" if item.removed
                  else f"kept {short} ({item.kind}): {printable(item.reason)}")
        freed = sum(item.size for item in done if item.removed)
        print(f"{sum(item.removed for item in done)} removed ({_size(freed)} as Podman counts each image)")
    return 0 if all(item.removed for item in done) else 1


def list_command(args: argparse.Namespace) -> int:
    entries = catalog.list_images()
    if args.json:
        output.print_json([entry.as_json() for entry in entries])
        return 0
    if not entries:
        print("vectraguard: no Vectra Guard images yet; build one with `vectraguard image build`", file=sys.stderr)
        return 0
    output.print_table([_row(entry) for entry in entries], ["ref", "id", "created", "size", "packages"])
    return 0


def _row(entry: catalog.ImageEntry) -> dict[str, str]:
    return {
        "ref": entry.ref,
        "id": entry.id.removeprefix("sha256:")[:12],
        "created": entry.created.astimezone().strftime("%Y-%m-%d %H:%M"),
        "size": _size(entry.size),
        # A variant's extra Debian packages (its label): which of the variant-HASH images holds what.
        "packages": ", ".join(entry.packages),
    }


def _size(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB" if size >= 1 << 20 else f"{size / 1024:.0f} KiB"
