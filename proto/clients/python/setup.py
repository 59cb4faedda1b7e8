"""Compiles Baton's protos into the package while it is built.

The contract lives in `proto/baton` of the repository; this package is
built from a checkout (`pip install ./proto/clients/python`), so the stubs
are generated from the very protos of that checkout, never copied by hand.
"""

import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent
PACKAGE = "baton_client._proto"


def generate(out: Path) -> None:
    """Writes the messages (`_pb2`, with `.pyi` types) and the service stubs
    (`_pb2_grpc`) of every proto under `baton/` into `out`, imported as
    `baton_client._proto.baton…` so they cannot clash with another copy."""
    import importlib.resources

    from grpc_tools import protoc

    files = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / "baton").rglob("*.proto"))
    if not files:
        raise SystemExit(f"no protos under {PROTO_ROOT / 'baton'}: build from a Baton checkout")
    well_known = Path(str(importlib.resources.files("grpc_tools"))) / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *files,
        ]
    )
    if status != 0:
        raise SystemExit(f"protoc failed on {PROTO_ROOT} (status {status})")
    for path in out.rglob("*.py*"):
        text = path.read_text()
        # protoc writes absolute imports (`from baton.type.v1 import …`).
        fixed = re.sub(r"^from baton\.", f"from {PACKAGE}.baton.", text, flags=re.M)
        fixed = re.sub(r"^import baton\.", f"import {PACKAGE}.baton.", fixed, flags=re.M)
        if fixed != text:
            path.write_text(fixed)
    for directory in [out, *(d for d in out.rglob("*") if d.is_dir())]:
        (directory / "__init__.py").touch()


class BuildWithStubs(build_py):
    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib) / "baton_client" / "_proto")


setup(cmdclass={"build_py": BuildWithStubs})
