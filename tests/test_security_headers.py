"""The Content-Security-Policy's style hashes are those of the style sheets the vendored
YASGUI bundle inserts (see web/security_headers.py): recomputed from the bundle itself."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from twinning_kg.web.app import STATIC_DIR
from twinning_kg.web.security_headers import CONTENT_SECURITY_POLICY, YASGUI_STYLE_HASHES


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def test_yasgui_style_hashes_match_the_vendored_bundle() -> None:
    bundle = (STATIC_DIR / "yasgui" / "yasgui.min.js").read_text(encoding="utf-8")
    grips = re.findall(r'createStyle\(i,"((?:[^"\\]|\\.)*)"\)', bundle)
    assert len(grips) == 1, "the column resizer's grip style sheet"
    cursor = re.search(r'dragCursor:"([^"]+)"', bundle).group(1)
    assert '"*{cursor:"+r.opt.dragCursor+"!important}"' in bundle
    expected = {_csp_hash(json.loads(f'"{grips[0]}"')), _csp_hash(f"*{{cursor:{cursor}!important}}")}
    assert set(YASGUI_STYLE_HASHES) == expected
    style_src = next(d for d in CONTENT_SECURITY_POLICY.split("; ") if d.startswith("style-src "))
    assert style_src.split()[1:] == ["'self'", *YASGUI_STYLE_HASHES]
    assert "unsafe" not in CONTENT_SECURITY_POLICY
