"""Search trees as JSON and as a self-contained HTML page (no CDN: it opens from disk offline).

``tree_to_json(state)`` takes the final state of the MCTS graph; ``write_tree_html(state,
"tree.html")`` writes a page with collapsible nodes showing each action, visits, mean value and
reward-model score, with the chosen path highlighted.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = ["tree_to_json", "write_tree_html", "write_tree_json"]


def tree_to_json(state: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready description of a finished search: task, nodes, chosen path, counters."""
    best = state.get("best")
    return {
        "task_id": state.get("task_id"),
        "intent": best.intent if best is not None else None,
        "chosen_path": list(state.get("path", [])),
        "best_node": state.get("best_node"),
        "success": (best.evaluation.success if best is not None and best.evaluation else None),
        "policy_calls": state.get("policy_calls"),
        "reward_model_calls": state.get("reward_model_calls"),
        "iterations": state.get("iteration"),
        "nodes": {node_id: dict(node) for node_id, node in state.get("nodes", {}).items()},
    }


def write_tree_json(state: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`tree_to_json` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tree_to_json(state), indent=2))
    return path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #222; }}
h1 {{ font-size: 1.2rem; margin: 0 0 .3rem; }}
.meta {{ color: #555; margin-bottom: 1rem; }}
ul {{ list-style: none; padding-left: 1.3rem; border-left: 1px dotted #bbb; margin: 0; }}
details > summary {{ cursor: pointer; }}
.node {{ display: inline-block; padding: 1px 6px; border-radius: 4px; margin: 1px 0; }}
.chosen > details > summary .node, .chosen > .leaf .node {{ background: #ffe9a8; font-weight: 600; }}
.action {{ font-family: ui-monospace, monospace; }}
.stat {{ color: #666; font-size: 12px; margin-left: .5rem; }}
.terminal {{ color: #0a7; font-size: 12px; margin-left: .4rem; }}
.leaf {{ padding-left: 1.05rem; }}
</style></head><body>
<h1>{title}</h1>
<div class="meta" id="meta"></div>
<div id="tree"></div>
<script type="application/json" id="data">{data}</script>
<script>
const data = JSON.parse(document.getElementById("data").textContent);
const chosen = new Set(data.chosen_path);
const fmt = (x) => (x === null || x === undefined) ? "–" : Number(x).toFixed(3);
document.getElementById("meta").textContent =
  `intent: ${{data.intent}} · iterations ${{data.iterations}} · policy calls ${{data.policy_calls}}` +
  ` · reward-model calls ${{data.reward_model_calls}} · chosen node ${{data.best_node}}` +
  ` · success (evaluator): ${{data.success}}`;
function label(n) {{
  const span = document.createElement("span");
  span.className = "node";
  const mean = n.visits ? n.value_sum / n.visits : null;
  span.innerHTML = "";
  const a = document.createElement("span"); a.className = "action";
  a.textContent = n.action === null ? "(root) " + n.observation : n.action;
  const s = document.createElement("span"); s.className = "stat";
  s.textContent = `${{n.id}} · visits ${{n.visits}} · mean ${{fmt(mean)}} · score ${{fmt(n.score)}}`;
  span.append(a, s);
  if (n.terminal) {{ const t = document.createElement("span"); t.className = "terminal";
    t.textContent = "terminal: " + n.observation; span.append(t); }}
  return span;
}}
function build(id) {{
  const n = data.nodes[id];
  const li = document.createElement("li");
  if (chosen.has(id)) li.className = "chosen";
  if (!n.children.length) {{
    const div = document.createElement("div"); div.className = "leaf"; div.append(label(n));
    li.append(div); return li;
  }}
  const det = document.createElement("details");
  det.open = chosen.has(id) || id === "0";
  const sum = document.createElement("summary"); sum.append(label(n)); det.append(sum);
  const ul = document.createElement("ul");
  for (const c of n.children) ul.append(build(c));
  det.append(ul); li.append(det); return li;
}}
const root = document.createElement("ul"); root.style.borderLeft = "none";
root.append(build("0"));
document.getElementById("tree").append(root);
</script></body></html>
"""


def write_tree_html(state: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Write the search tree of a finished MCTS run as one offline HTML file."""
    payload = json.dumps(tree_to_json(state)).replace("</", "<\\/")
    title = title or f"ARMAP-M search tree · task {state.get('task_id')}"
    page = _PAGE.format(title=html.escape(title), data=payload)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
