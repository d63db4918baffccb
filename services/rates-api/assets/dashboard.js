// The DVC Pulse dashboard: reads /v1/metrics, /v1/rates and /v1/series and
// draws them. `?from=YYYY-MM-DD&to=YYYY-MM-DD` pins the period; by default it
// is today in Vietnam, refreshed every 10 seconds. Every figure carries its
// raw value in data-value (for tests and copy-paste).
"use strict";

const params = new URLSearchParams(location.search);
const todayVN = () => new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);
const pinned = params.has("to") || params.has("from");
const REFRESH_MS = 10000;
const KINDS = [["ministry", "Bộ, ngành", "Ministries"], ["province", "Địa phương", "Provinces"]];

function period() {
  const to = params.get("to") || todayVN();
  return { from: params.get("from") || to, to };
}

function addDays(day, n) {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

async function get(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function format(metric, value) {
  if (value === null || value === undefined) return "—";
  return metric.kind === "rate" ? `${(100 * value).toFixed(1)}%` : Math.round(value).toLocaleString("vi-VN");
}

function figure(metric, group, value, className) {
  const span = document.createElement("span");
  span.className = className || "";
  span.dataset.metric = metric.name;
  span.dataset.group = group;
  span.dataset.value = value === null || value === undefined ? "" : String(value);
  span.textContent = format(metric, value);
  return span;
}

function title(metric) {
  const h = document.createElement("h3");
  h.textContent = metric.title_vi;
  const en = document.createElement("span");
  en.className = "en";
  en.textContent = metric.title_en;
  h.appendChild(en);
  return h;
}

function rates(metric, groupBy, p) {
  return get(`/v1/rates?metric=${metric.name}&from=${p.from}&to=${p.to}&group_by=${groupBy}`);
}

async function drawCards(catalog, p) {
  const answers = await Promise.all(catalog.map((m) => Promise.all([rates(m, "national", p), rates(m, "authority_kind", p)])));
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  catalog.forEach((metric, i) => {
    const [national, kinds] = answers[i];
    const card = document.createElement("div");
    card.className = "card";
    card.appendChild(title(metric));
    const row = national.rows.find((r) => r.group === "national");
    card.appendChild(figure(metric, "national", row ? row.value : null, "national"));
    const line = document.createElement("div");
    line.className = "kinds";
    for (const [kind, vi, en] of KINDS) {
      const cell = document.createElement("div");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = `${vi} · ${en}`;
      cell.appendChild(label);
      const r = kinds.rows.find((x) => x.group === kind);
      cell.appendChild(figure(metric, kind, r ? r.value : null));
      line.appendChild(cell);
    }
    card.appendChild(line);
    cards.appendChild(card);
  });
}

let sortState = { column: 0, ascending: true };

async function drawTable(catalog, p) {
  const answers = await Promise.all(catalog.map((m) => rates(m, "authority_code", p)));
  const codes = [...new Set(answers.flatMap((a) => a.rows.map((r) => r.group)))].sort();
  // The directory's name for each code (rows of codes it does not list have none).
  const names = new Map(answers.flatMap((a) => a.rows.filter((r) => r.name).map((r) => [r.group, r.name])));
  const table = document.getElementById("authorities");
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  const first = document.createElement("th");
  first.textContent = "Bộ/tỉnh · Authority";
  head.appendChild(first);
  catalog.forEach((metric) => {
    const th = document.createElement("th");
    th.textContent = metric.title_vi;
    th.title = metric.title_en;
    head.appendChild(th);
  });
  const body = table.createTBody();
  for (const code of codes) {
    const tr = body.insertRow();
    tr.insertCell().textContent = names.has(code) ? `${names.get(code)} (${code})` : code;
    catalog.forEach((metric, i) => {
      const r = answers[i].rows.find((x) => x.group === code);
      tr.insertCell().appendChild(figure(metric, code, r ? r.value : null));
    });
  }
  [...head.cells].forEach((th, column) => {
    th.addEventListener("click", () => {
      sortState = { column, ascending: sortState.column === column ? !sortState.ascending : column === 0 };
      sortTable(table);
    });
  });
  sortTable(table);
}

function sortTable(table) {
  const { column, ascending } = sortState;
  const key = (tr) => {
    if (column === 0) return tr.cells[0].textContent;
    const raw = tr.cells[column].firstChild.dataset.value;
    return raw === "" ? null : Number(raw);
  };
  const rows = [...table.tBodies[0].rows];
  rows.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    if (x === y) return 0;
    if (x === null) return 1; // no figure: always last
    if (y === null) return -1;
    return (x < y ? -1 : 1) * (ascending ? 1 : -1);
  });
  rows.forEach((tr) => table.tBodies[0].appendChild(tr));
  [...table.tHead.rows[0].cells].forEach((th, i) => {
    th.className = i === column ? (ascending ? "sorted asc" : "sorted") : "";
  });
}

let charts = [];

async function drawTrends(catalog, p) {
  const from = addDays(p.to, -29);
  const days = Array.from({ length: 30 }, (_, i) => addDays(from, i));
  const series = await Promise.all(catalog.map((m) => Promise.all(["national", "authority_kind"].map((g) =>
    get(`/v1/series?metric=${m.name}&from=${from}&to=${p.to}&group_by=${g}`)))));
  charts.forEach((c) => c.destroy());
  charts = [];
  const trends = document.getElementById("trends");
  trends.replaceChildren();
  catalog.forEach((metric, i) => {
    const rows = series[i].flatMap((s) => s.rows);
    const line = (group) => days.map((d) => {
      const r = rows.find((x) => x.day === d && x.group === group);
      if (!r || r.value === null) return null;
      return metric.kind === "rate" ? 100 * r.value : r.value;
    });
    const box = document.createElement("div");
    box.className = "trend";
    box.appendChild(title(metric));
    trends.appendChild(box);
    const x = days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
    const unit = metric.kind === "rate" ? "%" : "";
    charts.push(new uPlot({
      width: 360, height: 170,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: [
        {},
        { label: "Toàn quốc", stroke: "#1f6feb", width: 2, spanGaps: true, value: (u, v) => v == null ? "—" : v.toFixed(1) + unit },
        { label: "Bộ, ngành", stroke: "#bf8700", spanGaps: true, value: (u, v) => v == null ? "—" : v.toFixed(1) + unit },
        { label: "Địa phương", stroke: "#1a7f37", spanGaps: true, value: (u, v) => v == null ? "—" : v.toFixed(1) + unit },
      ],
      axes: [{}, { size: metric.kind === "rate" ? 56 : 96 }],
    }, [x, line("national"), line("ministry"), line("province")], box));
  });
}

async function refresh(withTrends) {
  const status = document.getElementById("status");
  const p = period();
  document.getElementById("period").textContent =
    p.from === p.to ? `Ngày ${p.to} · Day ${p.to} (Asia/Ho_Chi_Minh)` : `Từ ${p.from} đến ${p.to} · ${p.from} to ${p.to}`;
  try {
    const catalog = (await get("/v1/metrics")).metrics;
    await Promise.all([drawCards(catalog, p), drawTable(catalog, p), withTrends ? drawTrends(catalog, p) : null]);
    status.className = "";
    status.textContent = `Cập nhật lúc ${new Date().toLocaleTimeString("vi-VN")} · updated${pinned ? "" : ", refreshing every 10 s"}`;
    document.body.dataset.loaded = "true";
  } catch (error) {
    status.className = "error";
    status.textContent = `Không tải được dữ liệu · could not load: ${error.message}`;
  }
}

let rounds = 0;
refresh(true);
if (!pinned) setInterval(() => refresh(++rounds % 6 === 0), REFRESH_MS);
