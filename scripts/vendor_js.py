#!/usr/bin/env python3
"""Vendor the site's JavaScript into ``_static/vendor/`` so the book works offline.

The static site needs three pieces of third-party JavaScript, which Jupyter Book would
otherwise load from CDNs:

* ``@jupyter-widgets/html-manager`` (``dist/embed-amd.js`` and the Font Awesome fonts it
  loads next to itself): renders the widgets whose state is embedded in the pages;
* ``requirejs`` (``require.js``): the AMD loader ``embed-amd.js`` needs;
* ``mathjax`` 3 (``es5/tex-chtml.js`` plus the fonts and the components it loads lazily).

The files are committed, so building the book needs nothing but Python. This script
refreshes them from the npm registry (``npm pack``; needs ``npm``) and records what was
vendored (package, version, licence, tarball integrity, each file's sha256) in
``_static/vendor/manifest.json``.

    python scripts/vendor_js.py            # re-vendor the versions pinned below
    python scripts/vendor_js.py --check    # verify the committed files against the manifest (no network)

To upgrade, change a version in ``PACKAGES``, run the script, rebuild the book and run the
browser test (``pytest tests/browser``). The html-manager major version must match the
ipywidgets that builds the book (html-manager 1.x for ipywidgets 8).
"""

import argparse
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "_static" / "vendor"
MANIFEST = VENDOR / "manifest.json"

# name -> what to take from the package tarball (paths inside ``package/``, glob patterns
# allowed) and where it goes under _static/vendor/.
PACKAGES = {
    "@jupyter-widgets/html-manager": {
        "version": "1.0.15",
        "license": "BSD-3-Clause (bundles Font Awesome Free 5: fonts SIL OFL 1.1, code MIT; "
        "jQuery, Lumino and others: see THIRD-PARTY-NOTICES.txt)",
        "dest": "html-manager",
        "files": {
            "dist/embed-amd.js": "embed-amd.js",
            # Font Awesome, loaded by URL relative to embed-amd.js when a widget shows an
            # icon; browsers take woff2 (woff as a fallback), never eot/ttf/svg.
            "dist/*.woff2": ".",
            "dist/*.woff": ".",
            "dist/embed.js.LICENSE.txt": "THIRD-PARTY-NOTICES.txt",
        },
        # The package ships no licence file; ipywidgets' own (same repository, same
        # licence) comes with the Python package.
        "license_from_python": "ipywidgets",
    },
    "requirejs": {
        "version": "2.3.8",
        "license": "MIT",
        "dest": "requirejs",
        "files": {"require.js": "require.js"},
    },
    "mathjax": {
        "version": "3.2.2",
        "license": "Apache-2.0",
        "dest": "mathjax",
        "files": {
            "LICENSE": "LICENSE",
            "es5/tex-chtml.js": "tex-chtml.js",
            # CommonHTML output fonts, loaded relative to tex-chtml.js
            "es5/output/chtml/fonts/woff-v2/*.woff": "output/chtml/fonts/woff-v2",
            # TeX extensions that `autoload` fetches on first use (\boldsymbol, \color, ...)
            "es5/input/tex/extensions/*.js": "input/tex/extensions",
            # the right-click menu and what it can switch on
            "es5/ui/*.js": "ui",
            "es5/a11y/assistive-mml.js": "a11y",
        },
    },
}

REQUIREJS_LICENSE = """\
MIT License

Copyright jQuery Foundation and other contributors, https://jquery.org/

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def npm_pack(name, version, workdir):
    """Download ``name@version`` from the npm registry; returns (tarball path, npm's metadata)."""
    if shutil.which("npm") is None:
        sys.exit("npm is needed to refresh the vendored files (the committed ones need nothing)")
    result = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    info = json.loads(result.stdout)[0]
    return Path(workdir) / info["filename"], info


def _python_license(distribution):
    from importlib.metadata import distribution as dist

    for file in dist(distribution).files or []:
        if file.name.upper().startswith("LICENSE"):
            return Path(file.locate()).read_text(encoding="utf-8")
    raise SystemExit(f"no licence file found in the {distribution} Python package")


def vendor():
    manifest = {
        "about": "Third-party JavaScript served by the book itself (offline site). "
        "Written by scripts/vendor_js.py; do not edit by hand.",
        "packages": {},
    }
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, spec in PACKAGES.items():
            tarball, info = npm_pack(name, spec["version"], tmp)
            unpacked = tmp / (spec["dest"] + "-src")
            with tarfile.open(tarball) as tar:
                tar.extractall(unpacked, filter="data")
            package = unpacked / "package"
            dest = VENDOR / spec["dest"]
            files = {}
            for pattern, target in spec["files"].items():
                matches = sorted(
                    p
                    for p in package.rglob("*")
                    if p.is_file() and fnmatch.fnmatch(p.relative_to(package).as_posix(), pattern)
                )
                if not matches:
                    raise SystemExit(f"{name}@{spec['version']}: nothing matches {pattern!r}")
                for source in matches:
                    if "*" in pattern:
                        out = dest / target / source.name
                    else:
                        out = dest / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, out)
            if name == "requirejs":
                (dest / "LICENSE").write_text(REQUIREJS_LICENSE, encoding="utf-8")
            if spec.get("license_from_python"):
                (dest / "LICENSE").write_text(_python_license(spec["license_from_python"]), encoding="utf-8")
            for path in sorted(p for p in dest.rglob("*") if p.is_file()):
                files[path.relative_to(VENDOR).as_posix()] = sha256(path)
            manifest["packages"][name] = {
                "version": info["version"],
                "license": spec["license"],
                "source": f"npm registry: {name}@{info['version']} ({info['filename']})",
                "integrity": info.get("integrity"),
                "files": files,
            }
            print(f"vendored {name}@{info['version']}: {len(files)} files in _static/vendor/{spec['dest']}/")
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def check():
    """Problems with the committed files (empty list: all good). Needs no network."""
    if not MANIFEST.exists():
        return [f"{MANIFEST.relative_to(ROOT)} is missing: run python scripts/vendor_js.py"]
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    problems, listed = [], set()
    for name, spec in PACKAGES.items():
        entry = manifest["packages"].get(name)
        if entry is None:
            problems.append(f"{name} is not vendored")
            continue
        if entry["version"] != spec["version"]:
            problems.append(f"{name}: vendored {entry['version']}, scripts/vendor_js.py pins {spec['version']}")
        for relative, digest in entry["files"].items():
            listed.add(relative)
            path = VENDOR / relative
            if not path.exists():
                problems.append(f"_static/vendor/{relative} is missing")
            elif sha256(path) != digest:
                problems.append(f"_static/vendor/{relative} differs from what was vendored")
    extra = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - listed - {"manifest.json"}
    problems += [f"_static/vendor/{relative} is not in the manifest" for relative in sorted(extra)]
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the committed files; no network")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        print("vendored JavaScript: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
        return 1 if problems else 0
    vendor()
    return 0


if __name__ == "__main__":
    sys.exit(main())
