"""Writes the PrometheusRule's rule groups as a Prometheus rules file for compose's Prometheus.

    python deploy/prometheus/sync_rules.py          rewrite deploy/prometheus/rules/zooserve.rules.yml
    python deploy/prometheus/sync_rules.py --check  exit 1 if the file is not what the PrometheusRule says

k8s/components/monitoring/prometheusrule.yaml is the one place the alerts are written; tests/deploy runs --check's
logic, `promtool check rules` and `promtool test rules` on the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"
TARGET = ROOT / "deploy" / "prometheus" / "rules" / "zooserve.rules.yml"
HEADER = (
    "# Generated from k8s/components/monitoring/prometheusrule.yaml by deploy/prometheus/sync_rules.py: edit\n"
    "# that file, then run the script. Loaded by compose's Prometheus (deploy/prometheus/prometheus.yml).\n"
)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # multi-line PromQL stays a readable block, as in the source
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def rules_file(source: Path = SOURCE) -> str:
    rule = yaml.safe_load(source.read_text())
    if rule.get("kind") != "PrometheusRule":
        raise ValueError(f"{source} is not a PrometheusRule")
    body = yaml.dump({"groups": rule["spec"]["groups"]}, Dumper=_Dumper, sort_keys=False, width=120,
                     allow_unicode=True)
    return HEADER + body


def main(argv: list[str]) -> int:
    text = rules_file()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python {Path(__file__).relative_to(ROOT)}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
