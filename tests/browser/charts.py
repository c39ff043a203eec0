"""Checks of the dashboards' charts in the browser: every label inside its chart and none over
another, by the boxes the browser drew them in."""

LABEL_BOXES = """() => Array.from(document.querySelectorAll('svg.pygal-chart')).map((svg) => {
  const frame = svg.getBoundingClientRect();
  const labels = Array.from(svg.querySelectorAll('text'))
    .filter((text) => text.textContent.trim() && text.getBBox().width > 0
      && getComputedStyle(text).display !== 'none' && getComputedStyle(text).opacity !== '0')
    .map((text) => {
      const box = text.getBoundingClientRect();
      return {text: text.textContent.trim(), left: box.left, right: box.right, top: box.top,
              bottom: box.bottom};
    });
  return {chart: svg.getAttribute('aria-label'), labels,
          frame: {left: frame.left, right: frame.right, top: frame.top, bottom: frame.bottom}};
})"""

SLACK = 0.5  # a pixel's rounding


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"] - SLACK
        and b["left"] < a["right"] - SLACK
        and a["top"] < b["bottom"] - SLACK
        and b["top"] < a["bottom"] - SLACK
    )


def label_problems(page) -> list[str]:
    """Each label cut short or drawn outside its chart (clipped), and each pair of labels drawn
    over each other, in words; [] when every label can be read."""
    problems = []
    for chart in page.evaluate(LABEL_BOXES):
        frame, labels = chart["frame"], chart["labels"]
        for label in labels:
            if label["text"].endswith(("…", "...")):
                problems.append(f"{chart['chart']}: {label['text']!r} is cut short")
            if (
                label["left"] < frame["left"] - SLACK
                or label["right"] > frame["right"] + SLACK
                or label["top"] < frame["top"] - SLACK
                or label["bottom"] > frame["bottom"] + SLACK
            ):
                problems.append(f"{chart['chart']}: {label['text']!r} is clipped")
        for index, label in enumerate(labels):
            for other in labels[index + 1 :]:
                if _overlap(label, other):
                    problems.append(
                        f"{chart['chart']}: {label['text']!r} overlaps {other['text']!r}"
                    )
    return problems
