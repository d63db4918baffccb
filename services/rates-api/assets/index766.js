// The Decision 766 index page: reads /v1/index766 and
// /v1/index766/procedures and draws the ranking of ministries and
// provinces, or (with ?unit=CODE) one unit's indicators, agencies, months
// and procedures. `?period=` pins the period (default: this month). Every
// figure carries its raw value in data-* attributes (for tests).
"use strict";

const params = new URLSearchParams(location.search);
const GROUPS = ["CKMB", "TDGQ", "CLGQ", "TTTT", "MDSH", "MDHL"];
const points = (v) => (v === null || v === undefined ? "—" : v.toFixed(2));

function thisMonthVN() {
  return new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 7);
}

async function get(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function cell(row, text, attrs, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text instanceof Node) td.appendChild(text);
  else td.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) td.dataset[k] = v === null ? "" : String(v);
  row.appendChild(td);
  return td;
}

function header(table, columns) {
  const tr = document.createElement("tr");
  for (const [vi, en] of columns) {
    const th = document.createElement("th");
    th.textContent = vi;
    if (en) {
      const span = document.createElement("span");
      span.className = "en";
      span.textContent = en;
      th.appendChild(span);
    }
    tr.appendChild(th);
  }
  table.replaceChildren(tr);
}

function link(text, query) {
  const a = document.createElement("a");
  a.href = `?${new URLSearchParams(query)}`;
  a.textContent = text;
  return a;
}

function groupColumns(answer) {
  const first = answer.rows[0];
  return first ? first.groups.map((g) => [g.group, `${g.name_en} (${g.max})`]) : GROUPS.map((g) => [g, ""]);
}

// A ranking table: rank, unit, total, band, the six groups.
function drawRanking(table, answer, rows, unitLink) {
  const projected = answer.provisional ? [["Dự kiến cuối kỳ", "Projected at the end"]] : [];
  header(table, [["Hạng", "Rank"], ["Đơn vị", "Unit"], ["Tổng điểm", "Total (100)"], ...projected, ["Xếp loại", "Band"],
    ...groupColumns(answer)]);
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.unit = r.unit;
    cell(tr, String(r.rank), { rank: r.rank });
    const label = r.name ? `${r.name} (${r.unit})` : r.unit;
    cell(tr, unitLink ? link(label, { period: answer.period, unit: r.unit }) : label, {}, "name");
    cell(tr, points(r.total), { total: r.total });
    if (answer.provisional) cell(tr, points(r.projection.total), { projected: r.projection.total });
    cell(tr, r.band ? `${r.band} (${r.band_en})` : "", {}, "band");
    for (const g of r.groups) cell(tr, points(g.score), { group: g.group, score: g.score });
    table.appendChild(tr);
  }
}

function showPeriod(answer) {
  const p = document.getElementById("period");
  p.textContent = `${answer.period}: ${answer.from} – ${answer.to}`;
  if (answer.provisional) {
    const span = document.createElement("span");
    span.className = "provisional";
    span.textContent = " · tạm tính, kỳ chưa kết thúc (provisional: the period is not over)";
    p.appendChild(span);
  }
}

async function drawAll(period) {
  const answer = await get(`/v1/index766?period=${period}&level=authority`);
  showPeriod(answer);
  for (const kind of ["ministry", "province"]) {
    drawRanking(document.getElementById(kind), answer, answer.rows.filter((r) => r.kind === kind), true);
  }
}

function drawIndicators(row) {
  const table = document.getElementById("indicators");
  header(table, [["Mã", "Code"], ["Chỉ số", "Indicator"], ["Tử số", "Numerator"], ["Mẫu số", "Denominator"],
    ["Tỷ lệ", "Ratio"], ["Điểm", "Score"], ["Tối đa", "Max"], ["Mất", "Losing"], ["Cần thêm", "To regain all"]]);
  for (const i of row.indicators) {
    const tr = document.createElement("tr");
    tr.dataset.code = i.code;
    cell(tr, i.code, {}, "name");
    const name = document.createElement("span");
    name.textContent = i.name || i.code;
    const en = document.createElement("span");
    en.className = "en";
    en.textContent = i.name_en || "";
    const both = document.createElement("span");
    both.append(name, en);
    cell(tr, both, {}, "name");
    // 2.2's numerator is seconds in all: its ratio column gives the mean.
    cell(tr, i.code === "2.2" ? "" : i.numerator.toLocaleString("vi-VN"), { numerator: i.numerator });
    cell(tr, i.denominator.toLocaleString("vi-VN"), { denominator: i.denominator });
    const ratio = i.code === "2.2" ? (i.average_days === null ? "—" : `${i.average_days} ngày (days)`)
      : i.ratio === null ? "—" : `${(100 * i.ratio).toFixed(1)}%`;
    cell(tr, ratio, { ratio: i.ratio });
    cell(tr, points(i.score), { score: i.score });
    cell(tr, points(i.max));
    cell(tr, i.losing > 0 ? points(i.losing) : "", { losing: i.losing }, i.losing > 0 ? "losing" : "");
    cell(tr, i.to_full > 0 ? i.to_full.toLocaleString("vi-VN") : "", { toFull: i.to_full });
    table.appendChild(tr);
  }
}

function drawGroups(row) {
  const table = document.getElementById("groups");
  header(table, [["Nhóm", "Group"], ["Điểm", "Score"], ["Tối đa", "Max"], ["", ""]]);
  for (const g of row.groups) {
    const tr = document.createElement("tr");
    const name = document.createElement("span");
    name.textContent = `${g.group} · ${g.name}`;
    const en = document.createElement("span");
    en.className = "en";
    en.textContent = g.name_en;
    name.appendChild(en);
    cell(tr, name, { group: g.group }, "name");
    cell(tr, points(g.score), { score: g.score });
    cell(tr, points(g.max));
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${g.max > 0 ? Math.round((160 * g.score) / g.max) : 0}px`;
    cell(tr, bar, {}, "name");
    table.appendChild(tr);
  }
}

// The months of the period's year up to this month: one answer each.
async function drawTrend(unit, period, authority) {
  const year = period.slice(0, 4);
  const last = year === thisMonthVN().slice(0, 4) ? Number(thisMonthVN().slice(5, 7)) : 12;
  const months = Array.from({ length: last }, (_, i) => `${year}-${String(i + 1).padStart(2, "0")}`);
  const query = (m) => authority ? `/v1/index766?period=${m}&level=agency&authority_code=${authority}`
    : `/v1/index766?period=${m}&level=authority`;
  const answers = await Promise.all(months.map((m) => get(query(m))));
  const table = document.getElementById("trend");
  header(table, [["Tháng", "Month"], ["Tổng điểm", "Total"], ["Hạng", "Rank"], ...GROUPS.map((g) => [g, ""])]);
  answers.forEach((answer, i) => {
    const row = answer.rows.find((r) => r.unit === unit);
    const tr = document.createElement("tr");
    tr.dataset.month = months[i];
    cell(tr, months[i]);
    cell(tr, row ? points(row.total) : "—", { total: row ? row.total : null });
    cell(tr, row ? String(row.rank) : "—");
    for (const g of GROUPS) {
      const s = row && row.groups.find((x) => x.group === g);
      cell(tr, s ? points(s.score) : "—");
    }
    table.appendChild(tr);
  });
}

async function drawProcedures(unit, period) {
  const answer = await get(`/v1/index766/procedures?period=${period}&unit=${encodeURIComponent(unit)}`);
  const table = document.getElementById("procedures");
  header(table, [["Thủ tục", "Procedure"], ["Hồ sơ", "Dossiers handled"], ["Trễ hạn", "Not on time"],
    ["2.1 Đúng hạn", "On time"], ["3.3 Trực tuyến", "Filed online"], ["4.1 Kết quả điện tử", "Electronic result"],
    ["Điểm", "Points of these"]]);
  for (const r of answer.rows) {
    const tr = document.createElement("tr");
    tr.dataset.procedure = r.procedure_code;
    cell(tr, r.name ? `${r.name} (${r.procedure_code})` : r.procedure_code, {}, "name");
    cell(tr, r.handled.toLocaleString("vi-VN"), { handled: r.handled });
    cell(tr, r.not_on_time.toLocaleString("vi-VN"), { notOnTime: r.not_on_time });
    for (const code of ["2.1", "3.3", "4.1"]) {
      const i = r.indicators.find((x) => x.code === code);
      cell(tr, i && i.ratio !== null ? `${(100 * i.ratio).toFixed(1)}%` : "—");
    }
    cell(tr, `${points(r.score)} / ${points(r.max)}`);
    table.appendChild(tr);
  }
}

async function drawUnit(unit, period) {
  document.getElementById("ranking").hidden = true;
  document.getElementById("unit").hidden = false;
  const isAuthority = /^[GH][0-9]{2}$/.test(unit);
  const procedures = await get(`/v1/index766/procedures?period=${period}&unit=${encodeURIComponent(unit)}`)
    .catch(() => null);
  const authority = isAuthority ? null : procedures && procedures.authority_code;
  const answer = await get(authority ? `/v1/index766?period=${period}&level=agency&authority_code=${authority}`
    : `/v1/index766?period=${period}&level=authority`);
  showPeriod(answer);
  const row = answer.rows.find((r) => r.unit === unit);
  if (!row) throw new Error(`${unit}: no such unit in ${period}`);
  const title = document.getElementById("unit-title");
  title.dataset.unit = unit;
  title.dataset.total = row.total;
  title.dataset.rank = row.rank;
  title.textContent = `${row.name ? `${row.name} (${unit})` : unit}: ${points(row.total)} điểm, hạng ${row.rank}`;
  const en = document.createElement("small");
  en.textContent = ` ${points(row.total)} points, rank ${row.rank}${row.band ? `, ${row.band_en}` : ""}`;
  title.appendChild(en);
  if (row.projection) {
    const p = document.createElement("div");
    p.className = "provisional";
    p.dataset.projected = row.projection.total;
    p.textContent = `Dự kiến cuối kỳ ${points(row.projection.total)} điểm (projected at the period's end; `
      + `${row.open_dossiers.toLocaleString("vi-VN")} hồ sơ đang xử lý / open dossiers): ${row.projection.method}`;
    title.appendChild(p);
  }
  drawGroups(row);
  drawIndicators(row);
  const agencies = document.getElementById("agencies");
  if (isAuthority) {
    const ranked = await get(`/v1/index766?period=${period}&level=agency&authority_code=${unit}`);
    drawRanking(agencies, ranked, ranked.rows, true);
  } else {
    agencies.replaceChildren();
  }
  await Promise.all([drawTrend(unit, period, authority), procedures ? drawProcedures(unit, period) : null]);
}

async function main() {
  const period = params.get("period") || thisMonthVN();
  document.getElementById("period-input").value = period;
  const unit = params.get("unit");
  if (unit) {
    const form = document.getElementById("choose");
    const keep = document.createElement("input");
    keep.type = "hidden";
    keep.name = "unit";
    keep.value = unit;
    form.appendChild(keep);
  }
  const status = document.getElementById("status");
  try {
    await (unit ? drawUnit(unit, period) : drawAll(period));
    status.textContent = `Cập nhật ${new Date().toLocaleTimeString("vi-VN")} · `;
    const en = document.createElement("span");
    en.className = "en";
    en.textContent = "Scores per docs/INDEX766.md; the current period is provisional";
    status.appendChild(en);
    document.body.dataset.loaded = "true";
  } catch (e) {
    status.className = "error";
    status.textContent = `Lỗi: ${e.message}`;
  }
}

main();
