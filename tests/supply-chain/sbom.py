#!/usr/bin/env python3
"""CycloneDX 1.6 JSON SBOM of the Baton image: the `baton` binary's crates and the base's Debian packages.

Usage: sbom.py OUTPUT.json [DEB ...]   (needs cyclonedx-python-lib[json-validation]; check.sh installs it)

Crates: `cargo tree -p baton -e normal,no-proc-macro --target x86_64-unknown-linux-gnu` (the features of
`cargo build -p baton`; only what is linked into the binary, no dev/build deps, no proc-macros), with
licences and sources from `cargo metadata` and SHA-256 checksums from Cargo.lock.
Debian packages: Package/Version/Architecture of each .deb given (the ones helm/image/base.sh unpacks);
without any, those of libc6, libgcc-s1 and ca-certificates installed on this host (dpkg-query), which
may differ from what apt-get download fetched for the base. Env: SBOM_IMAGE (image name),
SBOM_IMAGE_VERSION (default: baton's version), CARGO_OFFLINE=0 to let cargo reach crates.io.
"""
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

ROOT = Path(__file__).resolve().parents[2]
TARGET = "x86_64-unknown-linux-gnu"  # the image's only platform
BASE_PACKAGES = ["libc6", "libgcc-s1", "ca-certificates"]  # what helm/image/base.sh downloads


def cargo(*args):
    cmd = ["cargo", *args, "--locked"]
    if os.environ.get("CARGO_OFFLINE", "1") != "0":
        cmd.append("--offline")  # CI has the registry cache; no network needed
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def linked_packages():
    """(name, version) of `baton` and of every crate linked into it, with the edges between them.

    `cargo tree -p baton` resolves features exactly as `cargo build -p baton` does; the resolve graph of
    `cargo metadata` unifies the whole workspace (and weak `dep?/feature`s), listing crates the binary
    does not contain (sqlx-mysql, quinn, ...). `-e normal,no-proc-macro` drops dev/build edges and
    proc-macro crates: they run at build time and are not linked into the binary.
    """
    out = cargo("tree", "-p", "baton", "-e", "normal,no-proc-macro", "--target", TARGET,
                "--prefix", "depth", "--format", "{p}", "--color", "never")
    edges, stack = {}, []  # stack[d] = the node at depth d on the current path
    for line in out.splitlines():
        m = re.fullmatch(r"(\d+)(\S+) v(\S+)( \(.*\))?", line)
        depth, node, seen = int(m[1]), (m[2], m[3]), line.endswith("(*)")
        del stack[depth:]
        if stack:
            edges[stack[-1]].add(node)
        stack.append(node)
        if not seen:  # "(*)": printed before, with its dependencies
            edges.setdefault(node, set())
    return next(iter(edges)), edges  # the first line is baton itself


def lock_checksums():
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    return {(p["name"], p["version"]): p["checksum"] for p in lock["package"] if "checksum" in p}


def crate_licenses(pkg, factory):
    if pkg["license"]:
        # Old manifests write "MIT/Apache-2.0"; SPDX spells it with OR.
        return [factory.make_from_string(pkg["license"].replace(" / ", " OR ").replace("/", " OR "))]
    if pkg["license_file"]:  # e.g. rsip: no SPDX field, only a LICENSE file (see deny.toml)
        return [factory.make_from_string(f"see {Path(pkg['license_file']).name} (no SPDX expression in Cargo.toml)")]
    return []


def debian_packages(debs):
    fields = ["Package", "Version", "Architecture"]
    if debs:
        out = [subprocess.run(["dpkg-deb", "-f", d, *fields], check=True, capture_output=True, text=True).stdout
               for d in debs]
        return [dict(line.split(": ", 1) for line in o.splitlines()) for o in out]
    fmt = "".join(f"{f}: ${{{f}}}\\n" for f in fields) + "\\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt, *BASE_PACKAGES], check=True, capture_output=True, text=True)
    return [dict(line.split(": ", 1) for line in block.splitlines()) for block in out.stdout.strip().split("\n\n")]


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.exit(__doc__.splitlines()[2])
    output, debs = Path(argv[1]), argv[2:]
    root, edges = linked_packages()
    meta = json.loads(cargo("metadata", "--format-version", "1", "--filter-platform", TARGET))
    pkgs = {(p["name"], p["version"]): p for p in meta["packages"]}  # licences and sources
    checksums = lock_checksums()
    factory = LicenseFactory()

    bom = Bom()
    image = Component(type=ComponentType.CONTAINER, name=os.environ.get("SBOM_IMAGE", "ghcr.io/baton-dev/baton"),
                      version=os.environ.get("SBOM_IMAGE_VERSION", root[1]), bom_ref="image")
    bom.metadata.component = image

    comps = {}
    for key in edges:
        p, (name, version) = pkgs[key], key
        c = Component(
            type=ComponentType.APPLICATION if key == root else ComponentType.LIBRARY,
            name=name, version=version, bom_ref=f"cargo:{name}@{version}",
            purl=PackageURL("cargo", name=name, version=version),
            licenses=crate_licenses(p, factory),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=checksums[key])] if key in checksums else [],
            # Workspace crates are compiled into /usr/local/bin/baton, not fetched from crates.io.
            properties=[Property(name="baton:source", value="workspace" if p["source"] is None else "crates.io")])
        comps[key] = c
        bom.components.add(c)

    deb_comps = []
    for d in debian_packages(debs):
        c = Component(type=ComponentType.LIBRARY, name=d["Package"], version=d["Version"],
                      bom_ref=f"deb:{d['Package']}@{d['Version']}",
                      purl=PackageURL("deb", "debian", d["Package"], d["Version"],
                                      qualifiers={"arch": d["Architecture"], "distro": "debian-12"}),
                      properties=[Property(name="baton:source", value=".deb file" if debs else "dpkg-query on the host")])
        deb_comps.append(c)
        bom.components.add(c)

    bom.register_dependency(image, [comps[root], *deb_comps])
    for pid, deps in edges.items():
        bom.register_dependency(comps[pid], [comps[d] for d in deps])

    text = JsonV1Dot6(bom).output_as_string(indent=2)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error:
        sys.exit(f"sbom.py: the SBOM does not validate against CycloneDX 1.6: {error}")
    output.write_text(text + "\n")
    crates = sum(1 for k in edges if pkgs[k]["source"] is not None)
    print(f"sbom.py: {output}: CycloneDX 1.6, {len(comps)} crates ({crates} from crates.io, "
          f"{len(comps) - crates} workspace), {len(deb_comps)} Debian packages; valid")


if __name__ == "__main__":
    main(sys.argv)
