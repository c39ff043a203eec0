"""The chart label check can fail: labels drawn over each other, or outside their chart."""

from tests.browser.charts import label_problems

CHART = """<svg class="pygal-chart" aria-label="Test" width="300" height="100"
  xmlns="http://www.w3.org/2000/svg" style="display:block">
  <text x="10" y="50" font-size="14">{first}</text>
  <text x="{second_x}" y="50" font-size="14">{second}</text>
</svg>"""


def test_overlapping_and_clipped_labels_are_found(page):
    page.set_content(CHART.format(first="1 000,00 €", second="2 000,00 €", second_x=30))
    assert label_problems(page) == ["Test: '1 000,00 €' overlaps '2 000,00 €'"]

    page.set_content(CHART.format(first="1 000,00 €", second="Alimentation", second_x=270))
    assert label_problems(page) == ["Test: 'Alimentation' is clipped"]

    page.set_content(CHART.format(first="0…", second="2 000,00 €", second_x=150))
    assert label_problems(page) == ["Test: '0…' is cut short"]

    page.set_content(CHART.format(first="1 000,00 €", second="2 000,00 €", second_x=150))
    assert label_problems(page) == []
