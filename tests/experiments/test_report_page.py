"""The report's HTML page in a real headless Chromium: every label of every chart lies inside its drawing (none
is clipped), with long model names and a long run; and the charts of a comparison over time are there."""

from __future__ import annotations

import pytest

from tests.experiments.recorded import rows_for, shadow_rows, stored_totals
from tests.gateway.test_page import browser  # noqa: F401 (the fixture: Debian's chromium through Playwright)
from zooserve.gateway.experiments.config import parse
from zooserve.gateway.experiments.page import render
from zooserve.gateway.experiments.report import build_report

pytestmark = pytest.mark.e2e
CONFIG = """
experiments:
  - name: long_names
    control: control_variant_with_a_long_name
    variants:
      - {name: control_variant_with_a_long_name, model: amoebanet_a_n6_f448, weight: 1}
      - {name: treatment, model: pyramidnet200_a450, weight: 1}
      - {name: never_labelled, model: resnet18, weight: 1}
"""
MODELS = {"amoebanet_a_n6_f448", "pyramidnet200_a450", "resnet18"}
OUTSIDE = """() => [...document.querySelectorAll('svg')].flatMap(svg => {
    const box = svg.getBoundingClientRect();
    return [...svg.querySelectorAll('text')].map(text => [text.textContent, text.getBoundingClientRect()])
        .filter(([, r]) => r.left < box.left - 0.5 || r.right > box.right + 0.5
                           || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
        .map(([label]) => label);
})"""


def test_no_label_is_clipped(browser, tmp_path):  # noqa: F811
    experiment = parse(CONFIG, "x.yaml", MODELS).experiments[0]
    control = rows_for(experiment.control, "amoebanet_a_n6_f448", 4000, 0.999, 0.01, 12000, 1)
    treatment = rows_for("treatment", "pyramidnet200_a450", 4000, 0.90, 0.2, 900, 2)
    unlabelled = [dict(r, label_index=None) for r in rows_for("never_labelled", "resnet18", 50, 0.5, 0, 30, 3)]
    rows = control + treatment + unlabelled + shadow_rows(treatment, "amoebanet_a_n6_f448", 0.7, 4)
    report = build_report(experiment, stored_totals(rows, tmp_path, experiment=experiment.name))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.set_content(render(report))
        assert page.evaluate(OUTSIDE) == []
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        titles = page.eval_on_selector_all("svg[role=img]", "nodes => nodes.map(n => n.getAttribute('aria-label'))")
        assert "treatment - control_variant_with_a_long_name: accuracy, estimate and 95% confidence sequence" in titles
        # never_labelled: no labels, and too few requests for an error rate of about 1%
        assert page.locator("p.empty").count() == 2
    finally:
        page.close()
