"""The review page's templates: plain HTML forms, no script, every value escaped by jinja2's
autoescape (a row's cell or a label is data, never markup)."""

from __future__ import annotations

import jinja2

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}Review{% endblock %} - tabpilot</title>
<style>
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
.note{background:#eef6ee;padding:.5rem 1rem}.error{background:#fbeaea;padding:.5rem 1rem}
.muted{color:#666;font-size:.9em}label{display:block;margin:.3rem 0}
button{margin-top:.6rem;padding:.3rem 1rem}
</style></head><body>
{% if reviewer %}<form method="post" action="/review/logout" style="float:right">
<input type="hidden" name="csrf" value="{{ csrf }}"><span class="muted">{{ reviewer }}</span>
<button type="submit">Sign out</button></form>{% endif %}
{% block body %}{% endblock %}
</body></html>"""

_LOGIN = """{% extends "base" %}{% block title %}Sign in{% endblock %}{% block body %}
<h1>Review: sign in</h1>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
<form method="post" action="/review/login">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label>Reviewer <input name="reviewer" autocomplete="username" required></label>
<label>Token <input name="token" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
<p class="muted">Your token came from <code>tabpilot review reviewer add NAME</code>.</p>
{% endblock %}"""

_TASK = """{% extends "base" %}{% block title %}Review{% endblock %}{% block body %}
{% if done %}<p class="note">{{ done }}</p>{% endif %}
{% if error %}<p class="error">{{ error }}</p>{% endif %}
{% if not task %}
<h1>Nothing to review</h1><p>The queue is empty for you. <a href="/review/">Look again</a>.</p>
{% else %}
<h1>{{ task.flow.title }}</h1>
<p>{{ task.flow.description }}</p>
<p class="muted">Loop {{ task.loop }}
{%- if content.endpointName %}, endpoint {{ content.endpointName }}{% endif %}
{%- if content.inferenceId %}, inference id {{ content.inferenceId }}{% endif %}
{%- if content.reason %} ({{ content.reason }}){% endif %}; your lease ends {{ until }} UTC.</p>
<h2>Row</h2>
<table>{% for name, value in row %}<tr><th>{{ name }}</th>
<td>{{ value if value is not none else "(missing)" }}</td></tr>{% endfor %}</table>
{% if content.prediction is defined %}
<h2>Model</h2>
<p>Prediction: <strong>{{ content.prediction }}</strong></p>
{% if probabilities %}<table><tr><th>label</th><th>probability</th></tr>
{% for label, p in probabilities %}<tr><td>{{ label }}</td><td>{{ "%.3f"|format(p) }}</td></tr>
{% endfor %}</table>{% endif %}
{% endif %}
<h2>Your label</h2>
<form method="post" action="/review/answer">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="loop" value="{{ task.loop }}">
{% if task.labels %}{% for label in task.labels %}
<label><input type="radio" name="label" value="{{ label }}" required> {{ label }}</label>
{% endfor %}{% else %}<label>Label <input name="label" required></label>{% endif %}
<button type="submit">Submit</button>
</form>
{% endif %}
{% endblock %}"""

ENV = jinja2.Environment(loader=jinja2.DictLoader({"base": _BASE, "login": _LOGIN, "task": _TASK}),
                         autoescape=True)


def render(name: str, **values: object) -> str:
    values.setdefault("reviewer", None)
    values.setdefault("error", None)
    return ENV.get_template(name).render(**values)
