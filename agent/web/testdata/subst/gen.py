#!/usr/bin/env python3
"""Writes the .golden files: each input page run through Python's own
string.Template.safe_substitute, the old agent's substitution, with the
values the Go test uses. Pages are read as bytes (latin-1 maps each byte to
one character and back), as the old agent's Python 2 did.

    cd agent/web/testdata/subst && python3 gen.py
"""
import glob
from string import Template

VARS = dict(hostname="app1.example.com", application="wordpress",
            version1="0.1.0", version2="3.5.1", curtime="07:08")

for name in sorted(glob.glob("*")):
    if name.endswith((".golden", ".py")):
        continue
    with open(name, "rb") as f:
        page = f.read().decode("latin-1")
    out = Template(page).safe_substitute(VARS).encode("latin-1")
    with open(name + ".golden", "wb") as f:
        f.write(out)
    print(name + ".golden")
