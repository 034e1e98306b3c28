"""Nothing under infra/ (nor .dockerignore) holds a credential: no AWS access key id, no value given to
a secret key, no long random-looking token. Credentials reach pods from the Secret prefpipe-s3 only,
and the README creates it from the shell's own variables. The scanner is shown to find the test
suite's dummy credentials (tests/conftest.py S3Server), so a pass means it looked."""
from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT, S3Server

ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b")
# a value given to a secret-ish name; placeholders (<...>) and references ($VAR, {{ var }}) are fine
SECRET_VALUE = re.compile(r"(?i)(?:aws_secret_access_key|aws_session_token|secret_key|password|token)[\"']?"
                          r"\s*[:=]\s*[\"']?(?![\"'<${\s])([^\s\"',}]{8,})")
RANDOM_TOKEN = re.compile(r"(?<![\w/+=.-])(?=[A-Za-z0-9/+=]*[0-9])(?=[A-Za-z0-9/+=]*[a-z])"
                          r"(?=[A-Za-z0-9/+=]*[A-Z])[A-Za-z0-9/+=]{32,}(?![\w/+=.-])")


def scanned_files() -> list[Path]:
    return sorted(p for p in (ROOT / "infra").rglob("*") if p.is_file()) + [ROOT / ".dockerignore"]


def findings(text: str) -> list[str]:
    patterns = (ACCESS_KEY_ID, SECRET_VALUE, RANDOM_TOKEN)
    return [match.group(0) for pattern in patterns for match in pattern.finditer(text)]


def test_the_scanner_finds_credentials_and_passes_placeholders():
    planted = (f"AWS_ACCESS_KEY_ID={S3Server.access_key}\n"
               f"aws_secret_access_key = {S3Server.secret_key}\n"
               "  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1'\n")
    assert len(findings(planted)) >= 3
    assert findings('AWS_SECRET_ACCESS_KEY: "<secret access key>"\n'
                    '--from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"\n') == []


def test_nothing_in_infra_looks_like_a_credential():
    files = scanned_files()
    assert len(files) >= 15 and ROOT / "infra" / "k8s" / "s3-secret.template.yaml" in files
    found = {p.relative_to(ROOT).as_posix(): hits for p in files if (hits := findings(p.read_text()))}
    assert not found, f"credential-looking strings: {found}"
