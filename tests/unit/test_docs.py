"""README.md and docs/ against the code: the size README is held to, the config groups tables against the files
under src/extf/conf/, and every relative link."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "src" / "extf" / "conf"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_GROUPS = {"hydra"}  # Hydra's own settings, not a choice users make


def conf_groups() -> dict[str, set[str]]:
    return {d.name: {f.stem for f in d.glob("*.yaml")} for d in CONF.iterdir()
            if d.is_dir() and d.name not in NOT_GROUPS and not d.name.startswith("_")}


def group_tables(text: str) -> list[dict[str, set[str]]]:
    """Each markdown table whose header starts with `| group | options |`: {group: options}."""
    tables, rows = [], None
    for line in text.splitlines():
        if re.match(r"\|\s*group\s*\|\s*options\s*\|", line):
            rows = {}
            tables.append(rows)
        elif rows is not None and line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(cells[0]) <= {"-", ":"}:
                continue
            rows[cells[0].strip("`")] = {o.strip() for o in cells[1].split(",") if o.strip()}
        else:
            rows = None
    return tables


def test_readme_is_what_a_newcomer_needs_at_most_10_kb():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 10_240, f"README.md is {size} bytes: move details to docs/"


@pytest.mark.parametrize("doc", [ROOT / "README.md", ROOT / "docs" / "guide.md"], ids=lambda p: p.name)
def test_config_groups_table_lists_every_group_and_option_under_conf(doc):
    tables = group_tables(doc.read_text())
    assert tables, f"{doc.name} has no `| group | options |` table"
    expected = conf_groups()
    for table in tables:
        assert table == expected, (
            f"{doc.name}'s config table differs from src/extf/conf/: missing groups {set(expected) - set(table)}, "
            f"unknown groups {set(table) - set(expected)}, options that differ: "
            f"{ {g: (sorted(table[g] ^ expected[g])) for g in set(table) & set(expected) if table[g] != expected[g]} }")


def test_group_table_parser_sees_a_missing_option():
    table = group_tables("| group | options | what |\n|---|---|---|\n| `model` | cnn, mlp | x |\n")[0]
    assert table == {"model": {"cnn", "mlp"}}
    assert table != {"model": {"cnn", "mlp", "rnn"}}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_point_to_files_that_exist(doc):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    missing = [link for link in links if "://" not in link and not (doc.parent / link).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"
