"""Sandbox images: built locally from Debian packages, never pulled.

recipe   what goes into the default image (packages, user, image config)
rootfs   building the root filesystem with mmdebstrap
scratch  the build's temporary directories, always removed
importer loading the rootfs tar into Podman as a tagged image
record   the JSON note of the last build (ref, id, packages)
build    the `vectraguard image build` sequence, with progress
catalog  the images carrying Vectra Guard's label (`image list`)
unpacked the image unpacked on disk for isolation lite (`image unpack`, lookup)
"""
