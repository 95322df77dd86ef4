"""DataExploration.ipynb: the data analysis as a notebook that reads without a kernel.

The notebook loads the job's `data_exploration.json` (written before training) and shows
it: summary, insights with their fixes, possible target leaks (their evidence and a plot of
each against the target), the target, each feature's prediction power, the target per
category or bin of the most predictive columns (charts from reports/charts.py), the
correlation matrix, anomalous rows, a text job's words per class and per-column
statistics (numeric and categorical apart). It is executed once with nbclient so that its
tables and plots are embedded.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

EXPLORATION = "DataExploration.ipynb"

# each suspected leak: its numbers, then the column against the target (a scatter of
# points, or a heatmap of row counts shaded by each column value's share)
_LEAKS = """\
leaks = [i for i in report['insights'] if i['kind'] == 'target_leakage']
if not leaks:
    print('no column looks like a target leak')
for leak in leaks:
    evidence = dict(leak.get('evidence') or {{}})
    plot = evidence.pop('plot', None)
    column = leak['columns'][0] if leak['columns'] else 'row order'
    print(f"[{{leak['severity']}}] {{leak['message']}}\\n  fix: {{leak['fix']}}")
    numbers = {{**{{k: v for k, v in evidence.items() if k != 'metrics'}},
               **evidence.get('metrics', {{}})}}
    display(pd.Series(numbers, dtype=object).to_frame(f'evidence: {{column}}'))
    if plot and plot['type'] == 'scatter':
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.scatter(plot['x'], plot['y'], s=8, alpha=0.6)
        ax.set(xlabel=column, ylabel='target', title=f'{{column}} against the target')
        plt.show()
    elif plot:
        counts = pd.DataFrame(plot['counts'], index=plot['rows'], columns=plot['columns'])
        shares = counts.div(counts.sum(axis=1).clip(lower=1), axis=0)
        fig, ax = plt.subplots(figsize=(2 + 0.8 * len(counts.columns), 1 + 0.4 * len(counts)))
        im = ax.imshow(shares, cmap='Blues', vmin=0, vmax=1, aspect='auto')
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                ax.text(j, i, counts.iat[i, j], ha='center', va='center', fontsize=8)
        ax.set_xticks(range(counts.shape[1]), counts.columns, rotation=45, ha='right')
        ax.set_yticks(range(counts.shape[0]), counts.index)
        ax.set(xlabel='target', ylabel=column, title=f'{{column}}: rows by target')
        fig.colorbar(im, label='share of the row')
        plt.show()"""

# charts.target_by_group per column (older reports have no 'target_by_column')
_TARGET_BY_COLUMN = """\
by_column = report.get('target_by_column') or {{'columns': []}}
if not by_column['columns']:
    print('no numeric or categorical column to group the target by')
for item in by_column['columns']:
    display(charts.target_by_group(item['column'], item['groups'], by_column['overall'],
                                   report['problem_type']))"""

# numbers for numeric columns; count, distinct, top value and its share for the others
_STATS = """\
stats = pd.DataFrame(report['column_stats'])
analysed = report['sampled_rows']
numeric = stats[stats['kind'] == 'numeric']
numeric_cols = [c for c in ['column', 'missing_fraction', 'unique', 'mean', 'std', 'min',
                            'max', 'skew'] if c in stats.columns]
if len(numeric):
    display(numeric[numeric_cols].set_index('column').round(4))
others = stats[stats['kind'] != 'numeric']
rows = []
for _, s in others.iterrows():
    count = round(analysed * (1 - s['missing_fraction']))
    top = s['top_values'] if isinstance(s.get('top_values'), dict) else {{}}
    value, n = next(iter(top.items()), (None, 0))
    rows.append({{'column': s['column'], 'kind': s['kind'], 'count': count,
                 'missing_fraction': round(s['missing_fraction'], 4), 'distinct': s['unique'],
                 'top value': value, 'top share': round(n / count, 4) if count else None}})
if rows:
    display(pd.DataFrame(rows).set_index('column'))"""

# a text job's (tabpilot/text): the words that weigh most per class, from each explained
# candidate's explanations.json (written at the job's end, before this notebook runs)
_WORDS = """\
board = JOB_DIR / 'leaderboard.csv'
order = list(pd.read_csv(board)['candidate']) if board.is_file() else []
explained = {{p.parent.name: json.loads(p.read_text()).get('text')
             for p in (JOB_DIR / 'candidates').glob('*/explanations.json')}}
explained = {{n: t for n, t in explained.items() if t}}
if not explained:
    print('no words to show: not a text classification job, or no candidate explained')
for name in sorted(explained, key=lambda n: order.index(n) if n in order else len(order))[:2]:
    text = explained[name]
    print(f"{{name}}: {{text['units']}} ({{text['rows']}} documents of {{text['column']!r}})")
    display(pd.DataFrame({{label: pd.Series([f"{{w['word']}} ({{w['weight']:.3f}})" for w in found])
                          for label, found in text['classes'].items()}}).fillna(''))"""

_CELLS: list[tuple[str, str]] = [
    ("md", "# Data exploration: {job}\n\nWritten by tabpilot before training. Everything "
           "below is read from `data_exploration.json` beside this notebook; rerun it to see "
           "the same analysis, or change it."),
    ("code", "import json\nimport os\n\nimport matplotlib.pyplot as plt\n"
             "import pandas as pd\n\nfrom tabpilot.reports.datafiles import find_job_dir\n\n"
             "from tabpilot.reports import charts\n\n"
             "pd.set_option('display.max_columns', 50)\n"
             "pd.set_option('display.max_colwidth', None)  # messages and fixes in full\n"
             "# this notebook's folder, wherever it was copied and whatever the working "
             "directory\n# (VS Code and Jupyter tell the kernel the notebook's file; or set "
             "TABPILOT_JOB_DIR)\n"
             "JOB_DIR = find_job_dir({job!r}, os.environ.get('TABPILOT_JOB_DIR'),\n"
             "                       near=[globals().get('__vsc_ipynb_file__'), "
             "os.environ.get('JPY_SESSION_NAME')],\n"
             "                       recorded={recorded!r})\n"
             "report = json.loads((JOB_DIR / 'data_exploration.json').read_text())\n"
             "print(f\"{{report['rows']}} rows ({{report['sampled_rows']}} analysed), "
             "{{report['columns']}} columns, problem type {{report['problem_type']}}\")\n"
             "pd.Series(report['kinds']).value_counts().rename('columns').to_frame()"),
    ("md", "## Insights\n\nMost severe first; each comes with a suggested fix."),
    ("code", "insights = pd.DataFrame(report['insights'], columns=['severity', 'kind', "
             "'message', 'fix', 'columns'])\ninsights"),
    ("md", "## Possible target leaks\n\nColumns that predict the target too well to be "
           "true: filled in after the outcome, or derived from the target. Each comes with the "
           "numbers behind the suspicion and a plot of the column against the target. Drop "
           "a leak unless its value is known when you predict."),
    ("code", _LEAKS),
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
    ("md", "## The target by column\n\nFor the most predictive numeric and categorical "
           "columns: the target per category or per numeric bin (quantile bins of similar "
           "size), each with its row count; the dashed line is the whole table's value."),
    ("code", _TARGET_BY_COLUMN),
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
    ("md", "## Words per class (text classification)\n\nFor a text job: the words that "
           "weigh most towards each class in the best explained candidates, by word "
           "occlusion (tabpilot.text.explain). Empty for tabular jobs."),
    ("code", _WORDS),
    ("md", "## Column statistics\n\nThe columns named by an insight come first; numeric "
           "and categorical columns apart, each with the statistics that mean something for "
           "it."),
    ("code", _STATS),
]


def exploration_notebook(job_dir: Path, job: str, execute: bool = True,
                         timeout: int = 120) -> Path:
    """Write (and by default execute) DataExploration.ipynb in the job folder."""
    return write_notebook(_CELLS, job_dir, EXPLORATION, execute, timeout, job=job)


def write_notebook(cells: list[tuple[str, str]], job_dir: Path, name: str, execute: bool,
                   timeout: int, job: str | None = None) -> Path:
    """`cells` (("md" | "code", text with `{job}` and `{recorded}`)) as `job_dir/name`,
    executed in the job folder first when `execute`; a failing cell raises here."""
    nb = new_notebook()
    for kind, text in cells:
        source = text.format(job=job or job_dir.name, recorded=str(job_dir.resolve()))
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if execute:
        from nbclient import NotebookClient

        # in the job folder: a TABPILOT_JOB_DIR the user set for another job must not
        # lead this run elsewhere
        env = {k: v for k, v in os.environ.items() if k != "TABPILOT_JOB_DIR"}
        # the kernel's own start-up chatter (a warning about its TCP transport) is not
        # the user's business: its stderr is dropped; a failure still raises here
        NotebookClient(nb, timeout=timeout, startup_timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(job_dir)}}).execute(
                           env=env, stderr=subprocess.DEVNULL)
    path = job_dir / name
    nbformat.write(nb, path)
    return path
