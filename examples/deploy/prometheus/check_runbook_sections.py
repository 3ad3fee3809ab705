#!/usr/bin/env python3
"""Every alert of herald.rules.yml points at a runbook section that exists.

Usage: check_runbook_sections.py RULES_FILE OPERATIONS_MD
Each `- alert:` must have a description naming `docs/operations.md, section
"TITLE"`, and OPERATIONS_MD must have a `### TITLE` heading under
`## Runbook`. Exit 1 naming what is missing.
"""
import re
import sys


def main(rules_path, docs_path):
    with open(rules_path) as f:
        rules = f.read()
    with open(docs_path) as f:
        docs = f.read()
    runbook = docs.split("\n## Runbook\n", 1)
    if len(runbook) != 2:
        return f"{docs_path}: no '## Runbook' section"
    runbook_body = runbook[1].split("\n## ", 1)[0]
    headings = set(re.findall(r"^### (.+)$", runbook_body, re.M))
    errors = []
    # One chunk per alert, from its `- alert:` line to the next.
    for chunk in re.split(r"\n(?=\s*- alert:)", rules)[1:]:
        name = re.search(r"- alert:\s*(\S+)", chunk).group(1)
        flat = re.sub(r"\s+", " ", chunk)
        sections = re.findall(r'docs/operations\.md, section "([^"]+)"', flat)
        if len(sections) != 1:
            errors.append(f"{name}: its description names {len(sections)} runbook sections, not one")
        for section in sections:
            if section not in headings:
                errors.append(f'{name}: section "{section}" is not a ### heading under ## Runbook in {docs_path}')
    if not re.search(r"- alert:", rules):
        errors.append(f"{rules_path}: no alert")
    for e in errors:
        print(e)
    if not errors:
        print(f"runbook sections: every alert of {rules_path} points at one of {sorted(headings)}")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
