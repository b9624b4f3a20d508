"""infra/modules/observability: every alert policy points at a runbook section that exists, and back."""

from __future__ import annotations

import re

from tests.infra.harness import INFRA

MODULE = INFRA / "modules" / "observability"
OPERATIONS = INFRA.parent / "docs" / "operations.md"


def runbook_sections() -> set[str]:
    text = OPERATIONS.read_text()
    alerts = text.split("## Alerts", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^### (.+)$", alerts, flags=re.MULTILINE))


def sections_named_by_policies() -> set[str]:
    text = (MODULE / "alerts.tf").read_text()
    inline = [name for name in re.findall(r'local\.runbook\} \\"([^"\\]+)\\"', text) if "$" not in name]
    from_locals = re.findall(r'section\s*=\s*"([^"]+)"', text)
    return set(inline) | set(from_locals)


def test_every_alert_names_a_runbook_section_and_every_section_an_alert() -> None:
    assert sections_named_by_policies() == runbook_sections()


def test_the_root_module_applies_the_observability_module() -> None:
    main = (INFRA / "main.tf").read_text()
    assert 'source = "./modules/observability"' in main
