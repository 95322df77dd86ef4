"""DataExploration.ipynb: the data analysis as a notebook that reads without a kernel.

The notebook loads the job's `data_exploration.json` (written before training) and shows
it: summary, insights with their fixes, the target, each feature's prediction power, the
correlation matrix, anomalous rows and per-column statistics. It is executed once with
nbclient so that its tables and plots are embedded.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

EXPLORATION = "DataExploration.ipynb"

_CELLS: list[tuple[str, str]] = [
    ("md", "# Data exploration: {job}\n\nWritten by tabpilot before training. Everything "
           "below is read from `data_exploration.json` beside this notebook; rerun it to see "
           "the same analysis, or change it."),
    ("code", "import json\nfrom pathlib import Path\n\nimport matplotlib.pyplot as plt\n"
             "import pandas as pd\n\npd.set_option('display.max_columns', 50)\n"
             "report = json.loads(Path('data_exploration.json').read_text())\n"
             "print(f\"{{report['rows']}} rows ({{report['sampled_rows']}} analysed), "
             "{{report['columns']}} columns, problem type {{report['problem_type']}}\")\n"
             "pd.Series(report['kinds']).value_counts().rename('columns').to_frame()"),
    ("md", "## Insights\n\nMost severe first; each comes with a suggested fix."),
    ("code", "insights = pd.DataFrame(report['insights'], columns=['severity', 'kind', "
             "'message', 'fix', 'columns'])\ninsights"),
    ("md", "## Target"),
    ("code", "target = report['target']\nif 'class_counts' in target:\n"
             "    counts = pd.Series(target['class_counts'])\n"
             "    counts.plot.bar(title='class counts')\n    plt.show()\n"
             "    display(counts.to_frame('rows'))\nelse:\n"
             "    display(pd.Series(target).to_frame('target'))"),
    ("md", "## Prediction power\n\nMutual information with the target, scaled to 0..1."),
    ("code", "power = pd.Series(report['prediction_power'], dtype=float).sort_values()\n"
             "if len(power):\n    power.tail(25).plot.barh(figsize=(6, max(2, len(power.tail(25)) "
             "* 0.3)), title='prediction power')\n    plt.show()\npower.sort_values("
             "ascending=False).to_frame('power')"),
    ("md", "## Correlations between numeric columns"),
    ("code", "corr = pd.DataFrame(report['correlation']['matrix'], "
             "index=report['correlation']['columns'], columns=report['correlation']['columns'])"
             "\nif len(corr):\n    fig, ax = plt.subplots(figsize=(5, 4))\n"
             "    im = ax.imshow(corr, vmin=-1, vmax=1, cmap='coolwarm')\n"
             "    ax.set_xticks(range(len(corr)), corr.columns, rotation=90)\n"
             "    ax.set_yticks(range(len(corr)), corr.columns)\n    fig.colorbar(im)\n"
             "    plt.show()\ncorr.round(2)"),
    ("md", "## Anomalous rows\n\nPositions, in the analysed sample, of the rows an "
           "IsolationForest finds most unusual."),
    ("code", "report['anomalous_rows']"),
    ("md", "## Column statistics\n\nThe columns named by an insight come first."),
    ("code", "pd.DataFrame(report['column_stats'])"),
]


def exploration_notebook(job_dir: Path, job: str, execute: bool = True,
                         timeout: int = 120) -> Path:
    """Write (and by default execute) DataExploration.ipynb in the job folder."""
    nb = new_notebook()
    for kind, text in _CELLS:
        source = text.format(job=job)
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if execute:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=timeout, startup_timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(job_dir)}}).execute()
    path = job_dir / EXPLORATION
    nbformat.write(nb, path)
    return path
