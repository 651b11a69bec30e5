"""The core stays pure: importing it never loads Flask, SQLAlchemy or Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MODULES = ["app.kiket", "app.kiket.loader", "app.kiket.merge", "app.kiket.resolve", "app.kiket.schema",
           "app.kiket.bundled", "app.kiket.yamlload", "app.kiket.model", "app.kiket.codes"]


def test_importing_the_core_loads_no_framework():
    code = ("import sys, " + ", ".join(MODULES) + "\n"
            "import app.kiket as k; k.load_revision\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'redis', 'rq'))\n"
            "print(','.join(bad))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_every_emitted_code_is_registered():
    from app.kiket import codes, conditions, templating

    for module in (conditions, templating):
        for code, (severity, _) in module.CODES.items():
            assert code in codes.CODES, code
            assert codes.CODES[code][0] == severity, code
    source = "\n".join(p.read_text() for p in (ROOT / "app" / "kiket").glob("*.py"))
    import re

    used = set(re.findall(r'diag\(\s*"([a-z_]+)"', source)) | set(re.findall(r'Diagnostic\(\s*"([a-z_]+)"', source))
    used |= set(re.findall(r'_diag\(out, "([a-z_]+)"', source))
    assert used and used <= set(codes.CODES), used - set(codes.CODES)
