// director's status page: /status (JSON) drawn as tables every 2 s; plain DOM, no build.
"use strict";

const controls = document.querySelector('meta[name="director-controls"]').content === "1";
const token = document.querySelector('meta[name="director-token"]').content;
const REFRESH_MS = 2000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function num(v) {
  return el("td", { class: "num" }, v === null || v === undefined ? "-" : v);
}

function human(n) {
  if (!n) return "0";
  const units = ["", "k", "M", "G"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : String(n)) + units[i];
}

// recent check results, oldest first: a green bar for a success, a red one for a failure
function sparkline(history) {
  const bits = (history || "").slice(-30);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", String(30 * 3));
  svg.setAttribute("height", "12");
  [...bits].forEach((b, i) => {
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * 3));
    r.setAttribute("y", b === "1" ? "2" : "0");
    r.setAttribute("width", "2");
    r.setAttribute("height", b === "1" ? "10" : "12");
    r.setAttribute("fill", b === "1" ? "#2a2" : "#c22");
    svg.append(r);
  });
  svg.setAttribute("data-history", bits);
  return svg;
}

// an override's kind in the cell; who asked (uid, pid, via the page) on hover
function overrideCell(ov) {
  const td = el("td", { class: "override" });
  if (!ov) return td;
  const parts = [];
  if (ov.drain) parts.push(ov.drain);
  if (ov.weight !== null && ov.weight !== undefined) parts.push("weight " + ov.weight);
  if ("handover" in ov) parts.push("handover");
  td.textContent = parts.join(", ");
  const who = ov.who || ov.handover || "";
  const since = ov.since ? " at " + new Date(ov.since * 1000).toLocaleTimeString() : "";
  if (who) td.setAttribute("title", "asked by " + who + since);
  return td;
}

function say(text, error) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = error ? "error" : "";
}

async function act(body) {
  try {
    const r = await fetch("api/ctl", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Director-Token": token },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const reply = await r.json();
    say(reply.message, !reply.ok);
  } catch (e) {
    say("request failed: " + e, true);
  }
  refresh();
}

function actions(vs, rs) {
  const base = { vs: vs.name, rs: rs.address + ":" + rs.port };
  const ov = rs.override || {};
  const cell = el("td", { class: "actions" });
  if (ov.drain) {
    cell.append(el("button", { class: "enable", onclick: () => act({ ...base, cmd: "enable" }) },
                   "enable"));
  } else {
    cell.append(el("button", { class: "drain", onclick: () => act({ ...base, cmd: "drain" }) },
                   "drain"));
  }
  const w = el("input", { class: "w", type: "number", min: "0", max: "65535",
                          value: String(rs.weight) });
  cell.append(w, el("button", {
    class: "weight",
    onclick: () => {
      const n = Number(w.value);
      if (w.value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 65535) {
        say("weight must be a whole number 0..65535", true);
        return;
      }
      act({ ...base, cmd: "weight", weight: n });
    },
  }, "set weight"));
  if (rs.override) {
    cell.append(el("button", { class: "clear", onclick: () => act({ ...base, cmd: "clear" }) },
                   "clear"));
  }
  return cell;
}

function rsClass(rs) {
  const ov = rs.override || {};
  if (ov.drain === "draining") return "draining";
  if (ov.drain === "drained") return "drained";
  if (!rs.alive) return "down";
  return rs.effective_weight === null ? "out" : "up";
}

function drawVrrp(vrrp) {
  const body = document.querySelector("#vrrp tbody");
  body.replaceChildren();
  if (!vrrp) {
    body.append(el("tr", {}, el("td", { colspan: "8" }, "no VRRP child")));
    return;
  }
  for (const i of vrrp.instances) {
    body.append(el("tr", { "data-instance": i.name },
      el("td", {}, i.name),
      el("td", {}, el("span", { class: "state " + i.state }, i.state)),
      num(i.priority + (i.priority !== i.base_priority ? " (base " + i.base_priority + ")" : "")),
      el("td", {}, i.master_ip || "-"),
      el("td", {}, (i.vips || []).join(" ")),
      el("td", {}, i.interface + " / " + i.vrid),
      num(i.stats ? i.stats.advert_sent : "-"),
      overrideCell(i.override)));
  }
}

function drawLvs(lvs) {
  const box = document.getElementById("lvs");
  box.replaceChildren();
  document.getElementById("dryrun").textContent = lvs && lvs.dry_run ? "(dry run: no IPVS)" : "";
  if (!lvs) {
    box.append(el("p", {}, "no checker child"));
    return;
  }
  for (const vs of lvs.virtual_servers) {
    const st = vs.stats || {};
    box.append(el("h3", {}, vs.name + "  " + (vs.lb_algo || "") + " " + (vs.lb_kind || "") + "  ",
      vs.quorum_up === false ? el("span", { class: "quorumdown" }, "QUORUM DOWN") : "",
      "  conns " + (st.conns || 0) + ", " + (st.cps || 0) + "/s"));
    const head = ["Real server", "Status", "Last check", "Checks", "Weight", "Effective",
                  "Override", "Active", "Inactive", "Conn/s", "In B/s", "Out B/s"];
    if (controls) head.push("Actions");
    const table = el("table", { class: "grid vs", "data-vs": vs.name },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))));
    const body = el("tbody");
    for (const rs of vs.real_servers) {
      const checks = rs.checkers || [];
      const failing = checks.find((c) => !c.up);
      const reason = failing ? (failing.type + ": " + (failing.last_failure || "down"))
        : (checks.length ? checks.map((c) => c.type).join(", ") + " ok" : "no checker");
      const s = rs.stats || {};
      const row = el("tr", { class: rsClass(rs), "data-rs": rs.address + ":" + rs.port },
        el("td", {}, rs.address + ":" + rs.port),
        el("td", { class: "status" }, rs.alive ? "UP" : "DOWN"),
        el("td", {}, reason),
        el("td", {}, ...checks.map((c) => sparkline(c.history))),
        num(rs.configured_weight + (rs.weight !== rs.configured_weight ? " (dyn " + rs.weight + ")" : "")),
        el("td", { class: "num effective" }, rs.effective_weight === null ? "out" : rs.effective_weight),
        overrideCell(rs.override),
        num(rs.activeconns), num(rs.inactconns), num(s.cps || 0),
        num(human(s.inbps || 0)), num(human(s.outbps || 0)));
      if (controls) row.append(actions(vs, rs));
      body.append(row);
    }
    table.append(body);
    box.append(table);
  }
}

async function refresh() {
  try {
    const r = await fetch("status", { cache: "no-store" });
    const st = await r.json();
    drawVrrp(st.vrrp);
    // keep a weight being typed: redraw the servers only when no input has the focus
    if (!(document.activeElement && document.activeElement.matches("input.w"))) drawLvs(st.lvs);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("updated").textContent = "cannot read /status: " + e;
  }
}

document.getElementById("host").textContent = location.host;
document.getElementById("mode").textContent = controls ? "controls on (loopback)" : "read only";
refresh();
setInterval(refresh, REFRESH_MS);
