// The world map (templates/map.html): every published city on a canvas, grouped where dense, filtered as the
// form above it says, with a card for the city chosen and its partnerships drawn. Nothing comes from outside:
// the land is the shipped outline (/map/land.json), the cities one compact JSON (/map/cities.json).
// Canvas, not SVG: 25,000 SVG circles make a page that crawls; the canvas redraws only what is in view.
(() => {
  "use strict";
  const view = document.getElementById("map-view");
  if (!view) return;
  const canvas = view.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const form = document.getElementById("map-filters");
  const statusLine = document.getElementById("map-status");
  const card = document.getElementById("map-card");
  const placeholder = [...card.childNodes]; // what the card says while no city is chosen
  const say = (key, values = {}) =>
    (view.dataset["t" + key[0].toUpperCase() + key.slice(1)] || key).replace(/\{(\w+)\}/g, (_, name) => values[name]);
  const numbers = new Intl.NumberFormat(view.dataset.lang);

  const MIN_ZOOM = 1;
  const MAX_ZOOM = 256;
  const CELL = 36; // a group gathers the cities in a square this many pixels wide at its zoom level
  const HIT = 14; // how near (pixels) a click or the centre must be to a mark
  const COLORS = { sea: "#dbe8f3", land: "#f3efe4", coast: "#b8b0a0", city: "#b00020", group: "#0b5cad",
    partner: "#12324f", link: "#0b5cad", chosen: "#ffb000", text: "#ffffff" };

  let world = { width: 960, height: 480 };
  let land = null; // Path2D of the land, in world units
  let cities = []; // {id, name, lon, lat, country, offers, needs, corridors, partners, x, y}
  let byId = new Map();
  let themeIndex = new Map(); // theme id -> its digit in offers / needs
  let shown = []; // indexes of the cities the filters let through
  let groupsCache = new Map(); // zoom level -> groups of `shown`
  let marks = []; // what the last frame drew, for hit tests: {group, r} (placed again at each test: the size may change)
  let chosen = null; // the city whose card is open
  let zoom = 1;
  let centre = { x: 480, y: 240 }; // world units at the middle of the canvas
  let box = { w: 0, h: 0 }; // the canvas's size in CSS pixels, read once per resize (not per city drawn)

  // ---- geometry -------------------------------------------------------------------------------------------
  const size = () => box;
  const scale = () => (size().w / world.width) * zoom;
  const project = (lon, lat) => ({ x: ((lon + 180) / 360) * world.width, y: ((90 - lat) / 180) * world.height });
  const toScreen = (x, y) => {
    const { w, h } = size();
    const s = scale();
    return { x: (x - centre.x) * s + w / 2, y: (y - centre.y) * s + h / 2 };
  };
  const toWorld = (sx, sy) => {
    const { w, h } = size();
    const s = scale();
    return { x: (sx - w / 2) / s + centre.x, y: (sy - h / 2) / s + centre.y };
  };
  const level = () => Math.round(Math.log2(zoom));

  function keepInside() {
    const { w, h } = size();
    const s = scale();
    if (!(s > 0)) return;
    const halfW = Math.min(w / 2 / s, world.width / 2);
    const halfH = Math.min(h / 2 / s, world.height / 2);
    centre.x = Math.min(Math.max(centre.x, halfW), world.width - halfW);
    centre.y = Math.min(Math.max(centre.y, halfH), world.height - halfH);
  }

  function zoomTo(next, anchor) {
    next = Math.min(Math.max(next, MIN_ZOOM), MAX_ZOOM);
    const { w, h } = size();
    const at = anchor || { x: w / 2, y: h / 2 };
    if (!(scale() > 0)) { zoom = next; changed(); return; } // not laid out yet: nothing to keep still
    const before = toWorld(at.x, at.y);
    zoom = next;
    const after = toWorld(at.x, at.y);
    centre.x += before.x - after.x;
    centre.y += before.y - after.y;
    changed();
  }

  function panBy(dx, dy) {
    const s = scale();
    if (!(s > 0)) return;
    centre.x -= dx / s;
    centre.y -= dy / s;
    changed();
  }

  function lookAt(x, y, nextZoom) {
    centre = { x, y };
    zoom = Math.min(Math.max(nextZoom, MIN_ZOOM), MAX_ZOOM);
    changed();
  }

  // ---- filters and groups ---------------------------------------------------------------------------------
  function filters() {
    const data = new FormData(form);
    return {
      offers: data.get("offers") || "",
      needs: data.get("needs") || "",
      level: Number(data.get("level") || 3),
      corridor: data.get("corridor") || "",
      country: String(data.get("country") || "").trim().toUpperCase(),
    };
  }

  // The same rules as the list (profiles' directory): a theme at the level or above, the corridor, the country.
  function applyFilters() {
    const f = filters();
    const offers = themeIndex.get(f.offers);
    const needs = themeIndex.get(f.needs);
    const country = /^[A-Z]{2}$/.test(f.country) ? f.country : "";
    shown = [];
    cities.forEach((c, i) => {
      if (offers !== undefined && Number(c.offers[offers]) < f.level) return;
      if (needs !== undefined && Number(c.needs[needs]) < f.level) return;
      if (f.corridor && !c.corridors.includes(f.corridor)) return;
      if (country && c.country !== country) return;
      shown.push(i);
    });
    groupsCache = new Map();
    // The address carries the filters: a reload or a bookmark shows the same cities (the list takes the form's).
    const query = new URLSearchParams();
    if (f.offers) query.set("offers", f.offers);
    if (f.needs) query.set("needs", f.needs);
    if (f.offers || f.needs) query.set("level", f.level);
    if (f.corridor) query.set("corridor", f.corridor);
    if (country) query.set("country", country);
    history.replaceState(null, "", location.pathname + (query.toString() ? "?" + query : ""));
    view.dataset.shown = shown.length;
    changed();
  }

  // Grid groups in world units per zoom level: a city stays in the same group while one pans, and each level
  // splits the groups of the one before. A group is drawn at the mean place of its cities.
  function groups() {
    const key = level();
    if (groupsCache.has(key)) return groupsCache.get(key);
    const cell = CELL / ((size().w / world.width) * 2 ** key);
    const cells = new Map();
    for (const i of shown) {
      const c = cities[i];
      const id = Math.floor(c.x / cell) * 100003 + Math.floor(c.y / cell); // rows are far fewer than 100,003
      let g = cells.get(id);
      if (!g) cells.set(id, (g = { members: [], x: 0, y: 0 }));
      g.members.push(i);
      g.x += c.x;
      g.y += c.y;
    }
    const found = [...cells.values()].map((g) => ({ members: g.members, x: g.x / g.members.length, y: g.y / g.members.length }));
    groupsCache.set(key, found);
    return found;
  }

  // ---- drawing --------------------------------------------------------------------------------------------
  function fitCanvas() {
    // A canvas out of layout for a moment (hidden, or mid full-page screenshot) keeps its last size: a zero
    // size would make the scale 0 and every centre computed from it NaN, for good.
    if (!canvas.clientWidth || !canvas.clientHeight) return;
    const ratio = window.devicePixelRatio || 1;
    box = { w: canvas.clientWidth, h: canvas.clientHeight };
    canvas.width = Math.round(box.w * ratio);
    canvas.height = Math.round(box.h * ratio);
    groupsCache = new Map(); // a group's width is in pixels
  }

  function draw() {
    const ratio = window.devicePixelRatio || 1;
    const { w, h } = size();
    const s = scale();
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const origin = toScreen(0, 0);
    ctx.save();
    ctx.setTransform(ratio * s, 0, 0, ratio * s, ratio * origin.x, ratio * origin.y);
    ctx.fillStyle = COLORS.sea;
    ctx.fillRect(0, 0, world.width, world.height);
    if (land) {
      ctx.fillStyle = COLORS.land;
      ctx.fill(land);
      ctx.strokeStyle = COLORS.coast;
      ctx.lineWidth = 0.6 / s;
      ctx.stroke(land);
    }
    ctx.restore();

    let links = 0;
    const partners = new Set();
    if (chosen) {
      const from = toScreen(chosen.x, chosen.y);
      ctx.strokeStyle = COLORS.link;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (const id of chosen.partners) {
        const other = byId.get(id);
        if (!other) continue;
        const to = toScreen(other.x, other.y);
        ctx.moveTo(from.x, from.y);
        ctx.lineTo(to.x, to.y);
        partners.add(other);
        links++;
      }
      ctx.stroke();
    }

    marks = [];
    let clusters = 0;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = "bold 11px system-ui, sans-serif";
    for (const g of groups()) {
      const p = toScreen(g.x, g.y);
      if (p.x < -30 || p.y < -30 || p.x > w + 30 || p.y > h + 30) continue;
      if (g.members.length > 1) {
        const r = Math.min(9 + 6 * Math.log10(g.members.length), 22);
        ctx.fillStyle = COLORS.group;
        ctx.globalAlpha = 0.85;
        ctx.beginPath();
        ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
        ctx.fill();
        ctx.globalAlpha = 1;
        ctx.fillStyle = COLORS.text;
        ctx.fillText(compactCount(g.members.length), p.x, p.y);
        marks.push({ r, group: g });
        clusters++;
      } else {
        ctx.fillStyle = COLORS.city;
        ctx.beginPath();
        ctx.arc(p.x, p.y, 3.5, 0, 2 * Math.PI);
        ctx.fill();
        marks.push({ r: 3.5, group: g });
      }
    }
    // The chosen city and its partners stay visible (and on top) whatever the groups and filters.
    for (const c of partners) dot(c, COLORS.partner, 4.5);
    if (chosen) dot(chosen, COLORS.chosen, 6);
    if (document.activeElement === view) crosshair(w, h);
    Object.assign(view.dataset, { zoom: zoom.toFixed(2), marks: marks.length, clusters, links,
      centre: `${((centre.x / world.width) * 360 - 180).toFixed(2)},${(90 - (centre.y / world.height) * 180).toFixed(2)}` });
  }

  function dot(c, color, r) {
    const p = toScreen(c.x, c.y);
    ctx.fillStyle = color;
    ctx.strokeStyle = COLORS.partner;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }

  function crosshair(w, h) {
    ctx.strokeStyle = COLORS.partner;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(w / 2 - 8, h / 2);
    ctx.lineTo(w / 2 + 8, h / 2);
    ctx.moveTo(w / 2, h / 2 - 8);
    ctx.lineTo(w / 2, h / 2 + 8);
    ctx.stroke();
  }

  const compactCount = (n) => (n >= 10000 ? Math.round(n / 1000) + "k" : n >= 1000 ? (n / 1000).toFixed(1) + "k" : String(n));

  // One redraw per frame however many events asked, and a status line once the view has settled.
  let frame = 0;
  let settle = 0;
  function changed() {
    keepInside();
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
    clearTimeout(settle);
    settle = setTimeout(announce, 400);
  }

  function announce() {
    const parts = [say("status", { shown: numbers.format(shown.length), total: numbers.format(cities.length),
      zoom: numbers.format(Math.round(zoom * 10) / 10) })];
    const near = nearest(size().w / 2, size().h / 2);
    if (near && document.activeElement === view) parts.push(say("centre", { name: describe(near.group) }));
    statusLine.textContent = parts.join(" · ");
  }

  const describe = (g) =>
    g.members.length > 1 ? say("group", { count: numbers.format(g.members.length) })
      : `${cities[g.members[0]].name} (${cities[g.members[0]].country})`;

  function nearest(x, y) {
    let best = null;
    let bestDistance = Infinity;
    for (const m of marks) {
      const p = toScreen(m.group.x, m.group.y);
      const d = Math.hypot(p.x - x, p.y - y);
      if (d <= Math.max(m.r, HIT) && d < bestDistance) {
        best = m;
        bestDistance = d;
      }
    }
    return best;
  }

  // A city opens its card; a group zooms in until its cities fill most of the view, so that it parts (at least
  // twice as near; cities that share one place are listed instead once the map is as near as it goes).
  function activate(mark) {
    const g = mark.group;
    if (g.members.length === 1) return choose(cities[g.members[0]]);
    if (zoom >= MAX_ZOOM) return showGroup(g);
    let [left, right, top, bottom] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const i of g.members) {
      const c = cities[i];
      [left, right, top, bottom] = [Math.min(left, c.x), Math.max(right, c.x), Math.min(top, c.y), Math.max(bottom, c.y)];
    }
    const base = size().w / world.width;
    const fit = 0.7 * Math.min(size().w / ((right - left) * base), size().h / ((bottom - top) * base));
    lookAt((left + right) / 2, (top + bottom) / 2, Math.max(fit, zoom * 2));
  }

  // ---- the card -------------------------------------------------------------------------------------------
  function el(tag, text, attrs = {}) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  const themeName = (id) => form.querySelector(`#map-offers option[value="${id}"]`)?.textContent || id;
  const corridorName = (id) => form.querySelector(`#map-corridor option[value="${id}"]`)?.textContent || id;

  function themeList(levels) {
    const items = [];
    for (const [id, i] of themeIndex) if (Number(levels[i]) > 0) items.push([id, Number(levels[i])]);
    items.sort((a, b) => b[1] - a[1]);
    return items.length ? items.map(([id, n]) => `${themeName(id)} (${n})`).join(", ") : say("none");
  }

  function choose(city) {
    chosen = city;
    view.dataset.selected = city ? city.id : "";
    if (!city) {
      card.replaceChildren(...placeholder.map((node) => node.cloneNode(true)));
      return changed();
    }
    const title = el("h2", city.name, { id: "map-card-title", tabindex: "-1" });
    const facts = el("dl");
    const fact = (term, value) => facts.append(el("dt", term), value instanceof Node ? value : el("dd", value));
    fact(say("country"), city.country);
    fact(say("offers"), themeList(city.offers));
    fact(say("needs"), themeList(city.needs));
    if (city.corridors.length) fact(say("corridors"), city.corridors.map(corridorName).join(", "));
    const partnerList = el("ul", undefined, { class: "map-partners" });
    const partners = city.partners.map((id) => byId.get(id)).filter(Boolean);
    for (const other of partners) {
      const item = el("li");
      const button = el("button", `${other.name} (${other.country})`, { type: "button", class: "as-link" });
      button.addEventListener("click", () => chooseFromCard(other));
      item.append(button);
      partnerList.append(item);
    }
    const partnersDd = el("dd");
    partnersDd.append(partners.length ? partnerList : say("none"));
    fact(`${say("partnerships")} (${numbers.format(partners.length)})`, partnersDd);
    const links = el("p");
    links.append(el("a", say("cityPage"), { href: `/cities/${city.id}` }), " · ",
      el("a", say("suggestions"), { href: `/cities/${city.id}/partners` }));
    card.replaceChildren(title, facts, links);
    statusLine.textContent = `${city.name} (${city.country}) · ${say("partnerships")}: ${numbers.format(partners.length)}`;
    changed();
  }

  // The city with its partners in view: as near as they fit (no nearer than 8×), the city at the centre.
  function centreOn(city) {
    let reach = 0;
    for (const id of city.partners) {
      const other = byId.get(id);
      if (other) reach = Math.max(reach, Math.abs(other.x - city.x) / size().w, Math.abs(other.y - city.y) / size().h);
    }
    const base = size().w / world.width;
    lookAt(city.x, city.y, reach ? Math.min(0.45 / (reach * base), 8) : 8);
  }

  // At the deepest zoom a group whose cities share one place lists them in the card instead.
  function showGroup(g) {
    const list = el("ul", undefined, { class: "map-partners" });
    for (const i of g.members.slice(0, 200)) {
      const button = el("button", `${cities[i].name} (${cities[i].country})`, { type: "button", class: "as-link" });
      button.addEventListener("click", () => chooseFromCard(cities[i]));
      const item = el("li");
      item.append(button);
      list.append(item);
    }
    const title = el("h2", say("group", { count: numbers.format(g.members.length) }), { id: "map-card-title" });
    card.replaceChildren(title, list);
  }

  // ---- input ----------------------------------------------------------------------------------------------
  function openCentre() {
    const m = nearest(size().w / 2, size().h / 2);
    if (m) activate(m);
  }

  // A city chosen in the card: the card is rebuilt, so the keyboard's place moves to its new title.
  function chooseFromCard(city) {
    choose(city);
    centreOn(city);
    card.querySelector("h2").focus();
  }

  const KEYS = {
    ArrowLeft: () => panBy(size().w / 6, 0),
    ArrowRight: () => panBy(-size().w / 6, 0),
    ArrowUp: () => panBy(0, size().h / 6),
    ArrowDown: () => panBy(0, -size().h / 6),
    "+": () => zoomTo(zoom * 2),
    "=": () => zoomTo(zoom * 2),
    "-": () => zoomTo(zoom / 2),
    "_": () => zoomTo(zoom / 2),
    "0": () => lookAt(world.width / 2, world.height / 2, 1),
    Home: () => lookAt(world.width / 2, world.height / 2, 1),
    Escape: () => choose(null),
    Enter: () => openCentre(),
    " ": () => openCentre(),
  };
  view.addEventListener("keydown", (event) => {
    const act = KEYS[event.key];
    if (!act || event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault();
    act();
  });
  view.addEventListener("focus", changed);
  view.addEventListener("blur", changed);

  view.addEventListener("wheel", (event) => {
    event.preventDefault();
    const rect = canvas.getBoundingClientRect();
    zoomTo(zoom * Math.pow(2, -event.deltaY / 300), { x: event.clientX - rect.left, y: event.clientY - rect.top });
  }, { passive: false });

  let drag = null;
  view.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    view.setPointerCapture(event.pointerId);
    drag = { x: event.clientX, y: event.clientY, startX: event.clientX, startY: event.clientY };
  });
  view.addEventListener("pointermove", (event) => {
    if (!drag) return;
    panBy(event.clientX - drag.x, event.clientY - drag.y);
    drag.x = event.clientX;
    drag.y = event.clientY;
  });
  view.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const moved = Math.hypot(event.clientX - drag.startX, event.clientY - drag.startY);
    drag = null;
    if (moved > 4) return;
    const rect = canvas.getBoundingClientRect();
    const m = nearest(event.clientX - rect.left, event.clientY - rect.top);
    if (m) activate(m);
  });
  view.addEventListener("pointercancel", () => { drag = null; });

  document.getElementById("map-zoom-in").addEventListener("click", () => zoomTo(zoom * 2));
  document.getElementById("map-zoom-out").addEventListener("click", () => zoomTo(zoom / 2));
  document.getElementById("map-reset").addEventListener("click", () => lookAt(world.width / 2, world.height / 2, 1));
  form.addEventListener("input", applyFilters);
  form.addEventListener("change", applyFilters);
  new ResizeObserver(() => { fitCanvas(); changed(); }).observe(canvas);

  // ---- loading --------------------------------------------------------------------------------------------
  async function load() {
    fitCanvas();
    draw();
    try {
      const [landResponse, citiesResponse] = await Promise.all([
        fetch(view.dataset.land, { credentials: "same-origin" }),
        fetch(view.dataset.cities, { credentials: "same-origin" }),
      ]);
      const isJson = (r) => r.ok && (r.headers.get("content-type") || "").startsWith("application/json");
      if (!isJson(landResponse) || !isJson(citiesResponse)) throw new Error("not loaded");
      const outline = await landResponse.json();
      world = { width: outline.width, height: outline.height };
      land = new Path2D(outline.path);
      const data = await citiesResponse.json();
      themeIndex = new Map(data.themes.map((id, i) => [id, i]));
      cities = data.cities.map((c) => ({ ...c, ...project(c.lon, c.lat) }));
      byId = new Map(cities.map((c) => [c.id, c]));
    } catch (error) {
      statusLine.textContent = say("failed");
      return;
    }
    centre = { x: world.width / 2, y: world.height / 2 };
    view.dataset.total = cities.length;
    const wanted = new URLSearchParams(location.search).get("city"); // e.g. a city page's "on the map"
    applyFilters();
    if (wanted && byId.has(wanted)) {
      choose(byId.get(wanted));
      centreOn(byId.get(wanted));
    }
    announce();
    view.dataset.ready = "true";
  }
  load();
})();
