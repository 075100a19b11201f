import Base
import RunStore

/// What `explore.html` shows beyond the index's aggregates, read from the store with the rest: every probe with its
/// prompt and responses, every run's log-probability of each response at each evaluation, and with per-token rows
/// each response's tokens (text, log-probability at the first and last evaluation, the argmax at the last).
struct ExploreData {
    struct Probe: Equatable {
        var id: Int64
        var idx: Int
        var split: String
        var prompt: String
    }
    struct Response: Equatable {
        var id: Int64
        var probeID: Int64
        var category: String
        var text: String
    }
    struct Tokens {
        var firstStep: Int
        var lastStep: Int
        /// Per response: token ids, log-probabilities at the first and last step (nil where that step did not score
        /// the response), and the argmax id at the last step.
        var rows: [Int64: (ids: [Int], first: [Double?], last: [Double?], argmax: [Int])]
        /// Per response and position, the token whose probability rose most since the starting weights at the last step
        /// and its gain (`token_logprobs.gain_token`, schema version 7); empty without them.
        var gains: [Int64: [Int: (token: Int, gain: Double)]] = [:]
        /// The text of each id (`token_texts`, schema version 6; empty before).
        var texts: [Int: String]
    }

    var probes: [Probe] = []
    var responses: [Response] = []
    /// Per run: steps, and per response its log-probability at each of them (nil: not scored then).
    var scores: [Int64: (steps: [Int], values: [Int64: [Double?]])] = [:]
    var tokens: [Int64: Tokens] = [:]

    /// A run's scores as the page shows them: its evaluated steps, and per response its log-probability at each (nil:
    /// not scored then). From the rows `ReportData.load` reads for the run's changes (ordered by step), not read again.
    static func scoreTable(_ rows: [ReportData.ScoreRow]) -> (steps: [Int], values: [Int64: [Double?]])? {
        guard !rows.isEmpty else { return nil }
        let steps = Array(Set(rows.map(\.step))).sorted()
        let column = Dictionary(uniqueKeysWithValues: steps.enumerated().map { ($1, $0) })
        var values: [Int64: [Double?]] = [:]
        for row in rows {
            values[row.responseID, default: [Double?](repeating: nil, count: steps.count)][column[row.step]!] = row.logprob
        }
        return (steps, values)
    }

    /// Everything beside `scores` (each run's `scoreTable`): the probes and responses the runs scored, and the token rows.
    static func load(store: RunStore, runs: [RunRecord], scores: [Int64: (steps: [Int], values: [Int64: [Double?]])]) throws -> ExploreData {
        var out = ExploreData()
        out.scores = scores
        guard !runs.isEmpty else { return out }
        let responseIDs = Set(scores.values.flatMap(\.values.keys))
        /// Rows of `sql` (a statement with "IN (%@)") for every id, in chunks: SQLite limits the parameters of one statement.
        func rows(_ sql: String, ids: [Int64]) throws -> [[SQLiteValue]] {
            var out: [[SQLiteValue]] = []
            for first in stride(from: 0, to: ids.count, by: 500) {
                let chunk = ids[first..<min(ids.count, first + 500)]
                out += try store.query(sql.replacingOccurrences(of: "%@", with: chunk.map { _ in "?" }.joined(separator: ",")), chunk.map { .integer($0) })
            }
            return out
        }
        out.responses = try rows("SELECT id, probe_id, category, text FROM responses WHERE id IN (%@) ORDER BY id", ids: responseIDs.sorted()).map {
            Response(id: $0[0].int64 ?? 0, probeID: $0[1].int64 ?? 0, category: $0[2].string ?? "", text: $0[3].string ?? "")
        }
        out.probes = try rows("SELECT id, idx, split, prompt FROM probes WHERE id IN (%@)", ids: Array(Set(out.responses.map(\.probeID))).sorted()).map {
            Probe(id: $0[0].int64 ?? 0, idx: $0[1].int ?? 0, split: $0[2].string ?? "", prompt: $0[3].string ?? "")
        }
        out.probes.sort { ($0.idx, $0.id) < ($1.idx, $1.id) }
        guard try store.storedSchemaVersion() >= 3 else { return out }
        let hasTexts = try store.storedSchemaVersion() >= 6
        for run in runs {
            let id = SQLiteValue.integer(run.id)
            let range = try store.query("SELECT min(step), max(step) FROM token_logprobs WHERE run_id = ?", [id])[0]
            guard let firstStep = range[0].int, let lastStep = range[1].int else { continue }
            var rows: [Int64: (ids: [Int], first: [Double?], last: [Double?], argmax: [Int])] = [:]
            var used = Set<Int>()
            for row in try store.query(
                "SELECT step, response_id, position, token, logprob, argmax FROM token_logprobs WHERE run_id = ? AND step IN (?, ?) ORDER BY response_id, position, step",
                [id, .integer(Int64(firstStep)), .integer(Int64(lastStep))]) {
                guard let step = row[0].int, let response = row[1].int64, let position = row[2].int, let token = row[3].int,
                      let lp = row[4].double, let argmax = row[5].int else { continue }
                var r = rows[response] ?? ([], [], [], [])
                if position >= r.ids.count {
                    r.ids.append(token)
                    r.first.append(nil)
                    r.last.append(nil)
                    r.argmax.append(argmax)
                }
                if step == firstStep { r.first[position] = lp }
                if step == lastStep {
                    r.last[position] = lp
                    r.argmax[position] = argmax
                }
                used.insert(token)
                used.insert(argmax)
                rows[response] = r
            }
            var texts: [Int: String] = [:]
            if hasTexts {
                for row in try store.query("SELECT token, text FROM token_texts WHERE run_id = ?", [id]) {
                    if let t = row[0].int, used.contains(t) { texts[t] = row[1].string ?? "" }
                }
            }
            var gains: [Int64: [Int: (token: Int, gain: Double)]] = [:]
            if try store.storedSchemaVersion() >= 7 {
                for row in try store.query(
                    "SELECT response_id, position, gain_token, gain FROM token_logprobs WHERE run_id = ? AND step = ? AND gain_token IS NOT NULL",
                    [id, .integer(Int64(lastStep))]) {
                    guard let response = row[0].int64, let position = row[1].int, let token = row[2].int, let gain = row[3].double else { continue }
                    gains[response, default: [:]][position] = (token, gain)
                    used.insert(token)
                }
            }
            if hasTexts, !gains.isEmpty {
                for row in try store.query("SELECT token, text FROM token_texts WHERE run_id = ?", [id]) {
                    if let t = row[0].int, used.contains(t), texts[t] == nil { texts[t] = row[1].string ?? "" }
                }
            }
            out.tokens[run.id] = Tokens(firstStep: firstStep, lastStep: lastStep, rows: rows, gains: gains, texts: texts)
        }
        return out
    }
}

extension ReportBuilder {
    /// A number for the page: 4 decimals are plenty for nats and keep the file small.
    static func short(_ v: Double?) -> JSONValue {
        guard let v, v.isFinite else { return .null }
        return .number((v * 10_000).rounded() / 10_000)
    }

    /// Everything the page needs, as one JSON value.
    func exploreJSON() -> JSONValue {
        let e = data.explore
        var runs: [JSONValue] = []
        var scores: [String: JSONValue] = [:], tokens: [String: JSONValue] = [:], curves: [String: JSONValue] = [:]
        for run in data.runs {
            let key = String(run.id)
            let steps = e.scores[run.id]?.steps ?? []
            runs.append(.object(["id": .number(Double(run.id)), "name": .string(run.name), "stage": ReportData.stage(of: run).map { .string($0) } ?? .null,
                                 "seed": .number(Double(run.seed)), "steps": .array(steps.map { .number(Double($0)) })]))
            if let s = e.scores[run.id] {
                scores[key] = .object(Dictionary(uniqueKeysWithValues: s.values.map { (String($0.key), JSONValue.array($0.value.map(Self.short))) }))
            }
            if let c = changes[run.id] {
                var byKey: [String: JSONValue] = [:]
                for (k, byStep) in c.byStep {
                    byKey[k.category + "|" + k.split] = .array(c.steps.map { Self.short(byStep[$0]?.mean) })
                }
                curves[key] = .object(["steps": .array(c.steps.map { .number(Double($0)) }), "series": .object(byKey)])
            }
            if let t = e.tokens[run.id] {
                var rows: [String: JSONValue] = [:]
                for (response, r) in t.rows {
                    var row: [String: JSONValue] = [
                        "ids": .array(r.ids.map { .number(Double($0)) }), "first": .array(r.first.map(Self.short)),
                        "last": .array(r.last.map(Self.short)), "argmax": .array(r.argmax.map { .number(Double($0)) }),
                    ]
                    if let g = t.gains[response] {
                        row["gain"] = .array(r.ids.indices.map { i in g[i].map { JSONValue.array([.number(Double($0.token)), Self.short($0.gain)]) } ?? .null })
                    }
                    rows[String(response)] = .object(row)
                }
                tokens[key] = .object([
                    "firstStep": .number(Double(t.firstStep)), "lastStep": .number(Double(t.lastStep)), "rows": .object(rows),
                    "texts": .object(Dictionary(uniqueKeysWithValues: t.texts.map { (String($0.key), JSONValue.string($0.value)) })),
                ])
            }
        }
        // A probe is its index in the probe file: runs whose seeds draw other `random` responses have probe sets (and
        // probe ids) of their own, but the same probes. The page lists each index once and names responses by it.
        let idxOf = Dictionary(e.probes.map { ($0.id, $0.idx) }, uniquingKeysWith: { a, _ in a })
        var listed = Set<Int>()
        let probes = e.probes.filter { listed.insert($0.idx).inserted }
        return .object([
            "experiment": .string(data.experiment.name),
            "categories": .array(data.categories.map { .string($0) }),
            "labels": .object(Dictionary(uniqueKeysWithValues: data.categories.map { ($0, JSONValue.string(data.label(ofCategory: $0))) })),
            "colors": .object(Dictionary(uniqueKeysWithValues: data.categories.map { ($0, JSONValue.string(data.style(ofCategory: $0).color)) })),
            "splits": .array(data.splits.map { .string($0) }),
            "runs": .array(runs),
            "probes": .array(probes.map { p in
                .object(["idx": .number(Double(p.idx)), "split": .string(p.split), "prompt": .string(p.prompt)])
            }),
            "responses": .array(e.responses.map { r in
                .object(["id": .number(Double(r.id)), "probe": .number(Double(idxOf[r.probeID] ?? -1)), "category": .string(r.category),
                         "text": .string(r.text)])
            }),
            "scores": .object(scores), "curves": .object(curves), "tokens": .object(tokens),
        ])
    }

    /// `explore.html`: one self-contained page (the data embedded as JSON, plain JavaScript, no network) to choose runs,
    /// split and categories, see curves, sort probes by their change, and open a probe (`#probe=IDX`,
    /// `#run=ID&probe=IDX`, `#run=ID&vs=ID2&probe=IDX`) with its prompt, every response's text and log-probability at
    /// each evaluation, and per-token heatmaps. When it has drawn, the page sets `data-selfcheck="ok"` on `<body>`
    /// (or "error: ..."), which the browser test reads.
    func exploreHTML() -> String {
        // "</" may not appear inside a script element; "<\/" is the same JSON string
        let json = exploreJSON().canonical.replacingOccurrences(of: "</", with: "<\\/")
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>\(Self.html("Explore: " + data.experiment.name))</title>
            <style>
            body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1220px; margin: 1em auto; padding: 0 1em; color: #222; font-size: 14px; }
            .controls { display: flex; flex-wrap: wrap; gap: 1em; align-items: center; margin: 0.5em 0 1em; }
            .controls label { white-space: nowrap; }
            table { border-collapse: collapse; font-size: 13px; }
            th, td { border: 1px solid #d0d0d0; padding: 3px 6px; text-align: left; vertical-align: top; }
            th { background: #f3f3f3; cursor: pointer; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
            .prompt, .text { white-space: pre-wrap; background: #f6f6f6; padding: 0.5em; border-radius: 3px; }
            .tok { display: inline-block; padding: 1px 2px; margin: 1px; border-radius: 2px; white-space: pre; font-family: monospace; font-size: 12px; }
            .pair { display: flex; gap: 1.5em; flex-wrap: wrap; } .pair > div { flex: 1 1 540px; min-width: 0; }
            h3 { margin-bottom: 0.3em; } svg text { font-size: 11px; }
            </style>
            </head>
            <body>
            <h1>Explore: \(Self.html(data.experiment.name))</h1>
            <p><a href="index.html">report</a> · <a href="#">overview</a></p>
            <div id="app"><p>This page needs JavaScript.</p></div>
            <script type="application/json" id="data">\(json)</script>
            <script>
            \(Self.exploreScript)
            </script>
            </body>
            </html>

            """
    }

    static let exploreScript = #"""
        "use strict";
        window.addEventListener("error", e => document.body.setAttribute("data-selfcheck", "error: " + e.message));
        const D = JSON.parse(document.getElementById("data").textContent);
        const app = document.getElementById("app");
        const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
        const fmt = (v, d = 3) => v === null || v === undefined ? "" : v.toFixed(d);
        const runById = id => D.runs.find(r => r.id === id);
        const probeByIdx = idx => D.probes.find(p => p.idx === idx);
        const label = c => D.labels[c] || c;
        const state = { run: D.runs.length ? D.runs[0].id : null, vs: null, split: D.splits.includes("heldout") ? "heldout" : D.splits[0],
                        cats: new Set(D.categories), sort: null, desc: true };
        function parseHash() {
          const h = new URLSearchParams(location.hash.slice(1));
          if (h.has("run")) state.run = Number(h.get("run"));
          state.vs = h.has("vs") ? Number(h.get("vs")) : null;
          return h.has("probe") ? Number(h.get("probe")) : null;
        }
        function link(probe) { return "#" + (state.run !== null ? "run=" + state.run + "&" : "") + (state.vs !== null ? "vs=" + state.vs + "&" : "") + "probe=" + probe; }
        // a probe's change in one category for one run: mean over its responses scored at the run's first and last step
        // a response's "probe" is its probe's index in the probe file (the same probe in every run)
        function probeChange(runId, probeIdx, cat) {
          const s = D.scores[runId]; if (!s) return null;
          let sum = 0, n = 0;
          for (const r of D.responses) {
            if (r.probe !== probeIdx || r.category !== cat) continue;
            const v = s[r.id]; if (!v) continue;
            const first = v[0], last = v[v.length - 1];
            if (first !== null && last !== null && first !== undefined && last !== undefined) { sum += last - first; n += 1; }
          }
          return n ? sum / n : null;
        }
        function controls() {
          const opts = sel => D.runs.map(r => `<option value="${r.id}"${r.id === sel ? " selected" : ""}>${esc(r.name)}</option>`).join("");
          return `<div class="controls">
            <label>run <select id="run">${opts(state.run)}</select></label>
            <label>beside <select id="vs"><option value="">(none)</option>${opts(state.vs)}</select></label>
            <label>split <select id="split">${D.splits.map(s => `<option${s === state.split ? " selected" : ""}>${esc(s)}</option>`).join("")}</select></label>
            ${D.categories.map(c => `<label><input type="checkbox" data-cat="${esc(c)}"${state.cats.has(c) ? " checked" : ""}/> ${esc(label(c))}</label>`).join("")}
          </div>`;
        }
        function bindControls(redraw) {
          document.getElementById("run").onchange = e => { state.run = Number(e.target.value); redraw(); };
          document.getElementById("vs").onchange = e => { state.vs = e.target.value === "" ? null : Number(e.target.value); redraw(); };
          document.getElementById("split").onchange = e => { state.split = e.target.value; redraw(); };
          for (const box of document.querySelectorAll("input[data-cat]")) {
            box.onchange = e => { const c = e.target.dataset.cat; if (e.target.checked) state.cats.add(c); else state.cats.delete(c); redraw(); };
          }
        }
        function curveSVG(runId, title) {
          const c = D.curves[runId]; if (!c) return "<p>No evaluations.</p>";
          const W = 560, H = 300, L = 55, R = 10, T = 24, B = 36;
          const series = D.categories.filter(cat => state.cats.has(cat)).map(cat => ({cat, y: c.series[cat + "|" + state.split] || []}));
          const ys = series.flatMap(s => s.y.filter(v => v !== null)).concat([0]);
          const lo = Math.min(...ys), hi = Math.max(...ys), span = (hi - lo) || 1;
          const xs = c.steps, x0 = xs[0], x1 = xs[xs.length - 1], xspan = (x1 - x0) || 1;
          const X = s => L + (s - x0) / xspan * (W - L - R), Y = v => T + (hi - v) / span * (H - T - B);
          let out = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img"><text x="${W / 2}" y="14" text-anchor="middle" font-weight="bold">${esc(title)}</text>`;
          out += `<line x1="${L}" x2="${W - R}" y1="${Y(0)}" y2="${Y(0)}" stroke="#999" stroke-dasharray="4 3"/>`;
          out += `<text x="4" y="${T + 8}">${fmt(hi, 2)}</text><text x="4" y="${H - B}">${fmt(lo, 2)}</text><text x="${L}" y="${H - 8}">step ${x0}</text><text x="${W - R}" y="${H - 8}" text-anchor="end">${x1}</text>`;
          for (const s of series) {
            let d = "";
            s.y.forEach((v, i) => { if (v !== null) d += (d && s.y[i - 1] !== null ? "L" : "M") + X(xs[i]).toFixed(1) + " " + Y(v).toFixed(1); });
            out += `<path d="${d}" fill="none" stroke="${D.colors[s.cat]}" stroke-width="2"><title>${esc(label(s.cat))}</title></path>`;
          }
          return out + "</svg>" + `<div class="legend">${series.map(s => `<span style="color:${D.colors[s.cat]}">━ ${esc(label(s.cat))}</span>`).join(" &nbsp; ")}</div>`;
        }
        function overview() {
          const run = runById(state.run);
          let html = controls();
          html += `<p>Mean change in log-probability since each run's first evaluation (nats), ${esc(state.split)} probes.</p><div class="pair"><div>${curveSVG(state.run, run ? run.name : "")}</div>`;
          if (state.vs !== null) html += `<div>${curveSVG(state.vs, runById(state.vs).name)}</div>`;
          html += `</div><h2>Probes</h2><p>Each probe's change from the run's first to its last evaluation, per category (${esc(run ? run.name : "")}); click a header to sort, a probe to open it.</p>`;
          const cats = D.categories.filter(c => state.cats.has(c));
          let rows = D.probes.filter(p => p.split === state.split).map(p => ({p, v: Object.fromEntries(cats.map(c => [c, probeChange(state.run, p.idx, c)]))}));
          if (state.sort) rows.sort((a, b) => ((a.v[state.sort] ?? -1e9) - (b.v[state.sort] ?? -1e9)) * (state.desc ? -1 : 1));
          html += `<table id="probes"><thead><tr><th>probe</th><th>prompt</th>${cats.map(c => `<th data-sort="${esc(c)}">${esc(label(c))}${state.sort === c ? (state.desc ? " ▼" : " ▲") : ""}</th>`).join("")}</tr></thead><tbody>`;
          for (const r of rows) {
            html += `<tr><td class="num"><a href="${link(r.p.idx)}">${r.p.idx}</a></td><td>${esc(r.p.prompt.slice(0, 90))}${r.p.prompt.length > 90 ? "…" : ""}</td>${cats.map(c => `<td class="num">${fmt(r.v[c])}</td>`).join("")}</tr>`;
          }
          app.innerHTML = html + "</tbody></table>";
          bindControls(overview);
          for (const th of document.querySelectorAll("th[data-sort]")) {
            th.onclick = () => { const c = th.dataset.sort; state.desc = state.sort === c ? !state.desc : true; state.sort = c; overview(); };
          }
        }
        function heat(v) {
          if (v === null || v === undefined) return "#eeeeee";
          const a = Math.min(1, Math.abs(v) / 2);
          return v >= 0 ? `rgba(0, 114, 178, ${a.toFixed(2)})` : `rgba(213, 94, 0, ${a.toFixed(2)})`;
        }
        function tokenRow(runId, responseId) {
          const t = D.tokens[runId]; if (!t) return "";
          const r = t.rows[responseId]; if (!r) return "";
          const text = id => (id in t.texts) ? t.texts[id] : "#" + id;
          const spans = r.ids.map((id, i) => {
            const ch = r.first[i] !== null && r.last[i] !== null ? r.last[i] - r.first[i] : null;
            const tip = `token ${JSON.stringify(text(id))}: log p ${fmt(r.first[i])} at step ${t.firstStep}, ${fmt(r.last[i])} at step ${t.lastStep}` +
              (ch !== null ? ` (change ${fmt(ch)})` : "") + `; argmax at step ${t.lastStep}: ${JSON.stringify(text(r.argmax[i]))}` +
              (r.gain && r.gain[i] ? `; rose most since the start: ${JSON.stringify(text(r.gain[i][0]))} (p +${fmt(r.gain[i][1])})` : "");
            return `<span class="tok" style="background:${heat(ch)}" title="${esc(tip)}">${esc(text(id))}</span>`;
          }).join("");
          const ids = Object.keys(t.texts).length ? "" : " Token ids only: this store predates token_texts (schema 6); a run recorded by a current alignscope shows their text.";
          return `<div class="tokens"><small>tokens, coloured by their change from step ${t.firstStep} to ${t.lastStep} (blue rose, orange fell; hover for values, the argmax and, with eval.tokens, the token that rose most since the start).${ids}</small><br/>${spans}</div>`;
        }
        function probeColumn(runId, probe) {
          const run = runById(runId), s = D.scores[runId] || {};
          let html = `<h3>${esc(run ? run.name : "run " + runId)}</h3>`;
          for (const cat of D.categories.filter(c => state.cats.has(c))) {
            const responses = D.responses.filter(r => r.probe === probe.idx && r.category === cat && s[r.id]);
            for (const r of responses) {
              const values = s[r.id];
              const shown = run.steps.map((step, i) => [step, values[i]]).filter(x => x[1] !== null);
              const table = `<table class="scores"><tr><th>step</th>${shown.map(x => `<th>${x[0]}</th>`).join("")}</tr>` +
                `<tr><td>log p</td>${shown.map(x => `<td class="num">${fmt(x[1])}</td>`).join("")}</tr></table>`;
              html += `<h4>${esc(label(cat))}</h4><div class="text">${esc(r.text)}</div>${table}${tokenRow(runId, r.id)}`;
            }
          }
          return html;
        }
        function probePage(idx) {
          const probe = probeByIdx(idx);
          if (!probe) { app.innerHTML = `<p>No probe ${esc(idx)} in this report.</p>`; return; }
          let html = controls() + `<h2 id="probe" data-probe="${probe.idx}">Probe ${probe.idx} (${esc(probe.split)})</h2><div class="prompt">${esc(probe.prompt)}</div>`;
          html += `<p>Log-probability of each response (nats) at each evaluation.</p><div class="pair"><div>${probeColumn(state.run, probe)}</div>`;
          if (state.vs !== null) html += `<div>${probeColumn(state.vs, probe)}</div>`;
          app.innerHTML = html + "</div>";
          bindControls(() => { location.hash = link(probe.idx); });
        }
        function route() {
          try {
            const probe = parseHash();
            if (probe !== null) probePage(probe); else overview();
            document.body.setAttribute("data-selfcheck", "ok");
          } catch (e) {
            document.body.setAttribute("data-selfcheck", "error: " + e);
            app.insertAdjacentHTML("beforeend", `<pre>${esc(e.stack || e)}</pre>`);
          }
        }
        window.addEventListener("hashchange", route);
        route();
        """#
}
