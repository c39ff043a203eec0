// The beneficiaries' app: one page over the app API (/api/app/v1/), routed by the URL's hash.
// Every text comes from the page (#strings, translated by Django); amounts, dates and rules
// arrive formatted in the page's language from the API, which is asked in that language.

const CONFIG = JSON.parse(document.getElementById("config").textContent);
const S = JSON.parse(document.getElementById("strings").textContent);
const LANG = document.documentElement.lang;

const main = document.getElementById("main");
const screen = document.getElementById("screen");
const messages = document.getElementById("messages");
const nav = document.getElementById("nav");
const holder = document.getElementById("holder");
const viewOnly = document.getElementById("view-only");

// --- small tools ----------------------------------------------------------------------------

function t(key, values = {}) {
  return S[key].replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
}

// An element from a tag, attributes and children; strings become text, never markup.
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  return fill(node, ...children);
}

// Puts the children in the node, in place of what it held; null, undefined and false are left out.
function fill(node, ...children) {
  node.replaceChildren(
    ...children.flat().filter((child) => child !== null && child !== undefined && child !== false),
  );
  return node;
}

let uid = 0;
const newId = (prefix) => `${prefix}-${++uid}`;

const dateTime = new Intl.DateTimeFormat(LANG, {
  dateStyle: "long",
  timeStyle: "short",
  timeZone: CONFIG.timeZone,
});
const kilometres = new Intl.NumberFormat(LANG, { maximumFractionDigits: 1 });

// --- the session: app tokens kept on this device ----------------------------------------------

const SESSION_KEY = "aidwallet.session";
const CONTACT_KEY = "aidwallet.contact";

const session = {
  read() {
    try {
      return JSON.parse(localStorage.getItem(SESSION_KEY)) ?? { wallets: [], current: 0 };
    } catch {
      return { wallets: [], current: 0 };
    }
  },
  get wallets() {
    return this.read().wallets;
  },
  get current() {
    const { wallets, current } = this.read();
    return wallets[current] ?? null;
  },
  save(wallets, current = 0) {
    localStorage.setItem(SESSION_KEY, JSON.stringify({ wallets, current }));
  },
  choose(index) {
    this.save(this.wallets, index);
  },
  clear() {
    localStorage.removeItem(SESSION_KEY);
  },
};

const readOnly = () => Boolean(session.current?.read_only);

// --- the API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

async function api(path, { method = "GET", body, token = session.current?.token } = {}) {
  const headers = { Accept: "application/json", "Accept-Language": LANG };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // The API's `next` links are absolute, and behind a proxy they may say http: for an https
  // page; only their path and query are used.
  const next = path.startsWith("http") ? new URL(path) : null;
  let response;
  try {
    response = await fetch(next ? next.pathname + next.search : CONFIG.api + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "offline", S.offline);
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null; // not JSON: a proxy's error page
    }
  }
  if (response.ok) return { data, response };
  const error = data?.error ?? {};
  if (response.status === 401 && token) {
    signedOut(error.message ?? S.signed_out);
    throw new ApiError(401, "signed_out", error.message ?? S.signed_out);
  }
  // DRF's own words for its rate limits are not for people; other 429s (a locked payment
  // code) say theirs.
  if (response.status === 429 && error.code === "rate_limited") {
    const seconds = Number(response.headers.get("Retry-After")) || 60;
    const minutes = Math.max(1, Math.ceil(seconds / 60));
    throw new ApiError(429, error.code, t("too_many_tries", { minutes }));
  }
  throw new ApiError(
    response.status,
    error.code ?? "error",
    error.message ?? S.error,
    error.field ?? null,
  );
}

// --- messages and errors ----------------------------------------------------------------------

let keepMessages = false;

function announce(text, kind = "info") {
  const prefix = { error: S.prefix_error, success: S.prefix_success }[kind];
  messages.replaceChildren(
    h(
      "p",
      { class: `message message-${kind}` },
      prefix ? h("strong", {}, `${prefix} `) : null,
      text,
    ),
  );
}

// A field's error is said next to it, tied to it, and the field gets the focus.
function fieldError(input, text) {
  const id = `${input.id}-error`;
  document.getElementById(id)?.remove();
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", [input.dataset.hint, id].filter(Boolean).join(" "));
  input.insertAdjacentElement(
    "beforebegin",
    h("p", { class: "field-error", id }, h("strong", {}, `${S.prefix_error} `), text),
  );
  input.focus();
}

function clearFieldError(input) {
  document.getElementById(`${input.id}-error`)?.remove();
  input.removeAttribute("aria-invalid");
  if (input.dataset.hint) input.setAttribute("aria-describedby", input.dataset.hint);
  else input.removeAttribute("aria-describedby");
}

function field({ label, hint, ...attrs }) {
  const id = newId("field");
  const hintId = hint ? `${id}-hint` : null;
  const input = h("input", { id, "aria-describedby": hintId, "data-hint": hintId, ...attrs });
  return {
    input,
    node: h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      hint ? h("p", { class: "hint", id: hintId }, hint) : null,
      input,
    ),
  };
}

// One request at a time per form or button: a second tap while waiting does nothing.
async function busy(node, work) {
  if (node.dataset.busy) return;
  node.dataset.busy = "1";
  node.setAttribute("aria-busy", "true");
  try {
    await work();
  } catch (error) {
    if (error.code !== "signed_out")
      announce(error instanceof ApiError ? error.message : S.error, "error");
  } finally {
    delete node.dataset.busy;
    node.removeAttribute("aria-busy");
  }
}

function signedOut(text) {
  session.clear();
  announce(text);
  keepMessages = true;
  location.hash = "#/sign-in";
}

// --- the frame: header, menu --------------------------------------------------------------------

function updateFrame() {
  const wallet = session.current;
  nav.hidden = !wallet;
  holder.textContent = wallet
    ? wallet.read_only
      ? t("holder_viewing", { name: wallet.wallet_holder })
      : wallet.wallet_holder
    : "";
  viewOnly.hidden = !wallet?.read_only;
  viewOnly.textContent = wallet?.read_only ? t("view_only", { name: wallet.wallet_holder }) : "";
  for (const item of nav.querySelectorAll("[data-writes]")) item.hidden = readOnly();
  const current = location.hash.split("/").slice(0, 2).join("/") || "#/";
  for (const link of nav.querySelectorAll("a")) {
    const target = link.getAttribute("href");
    const here = target === current || (target === "#/" && current.startsWith("#/pockets"));
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// --- screens --------------------------------------------------------------------------------
// Each returns the nodes of the screen; its first h1 gets the focus when the screen changes.

function signInScreen() {
  const heading = h("h1", {}, S.sign_in_title);
  const body = h("div");

  function askContact(previous = "") {
    const contact = field({
      label: S.contact_label,
      hint: S.contact_hint,
      type: "text",
      autocomplete: "username",
      autocapitalize: "none",
      spellcheck: "false",
      required: true,
      value: previous,
    });
    const form = h(
      "form",
      { novalidate: true },
      h("p", {}, S.sign_in_intro),
      contact.node,
      h("button", { type: "submit", class: "button" }, S.send_code),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearFieldError(contact.input);
      const value = contact.input.value.trim();
      if (!value) return fieldError(contact.input, S.contact_missing);
      busy(form, async () => {
        try {
          await api("auth/code", { method: "POST", body: { contact: value }, token: null });
          sessionStorage.setItem(CONTACT_KEY, value);
          askCode(value);
        } catch (error) {
          if (error.field === "contact") fieldError(contact.input, error.message);
          else throw error;
        }
      });
    });
    body.replaceChildren(form);
  }

  function askCode(contact) {
    const code = field({
      label: S.code_label,
      hint: S.code_hint,
      type: "text",
      inputmode: "numeric",
      autocomplete: "one-time-code",
      pattern: "[0-9 ]*",
      maxlength: "9",
      required: true,
    });
    const form = h(
      "form",
      { novalidate: true },
      // One sentence, the server's caution included: the app cannot know whether the
      // contact is recorded, and must not say "we sent a code" when it may not have.
      h("p", { class: "sent" }, t("code_sent_if_known", { contact, minutes: CONFIG.codeMinutes })),
      code.node,
      h("button", { type: "submit", class: "button" }, S.sign_in),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearFieldError(code.input);
      const digits = code.input.value.replace(/\s/g, "");
      if (!/^[0-9]{6}$/.test(digits)) return fieldError(code.input, S.code_format);
      busy(form, async () => {
        try {
          const { data } = await api("auth/token", {
            method: "POST",
            body: { contact, code: digits },
            token: null,
          });
          sessionStorage.removeItem(CONTACT_KEY);
          const wallets = [data, ...data.other_wallets].map(
            ({ token, read_only, wallet_holder }) => ({ token, read_only, wallet_holder }),
          );
          session.save(wallets);
          if (wallets.length > 1) chooseWallet();
          else location.hash = "#/";
        } catch (error) {
          if (error.field === "code" || error.status === 429) fieldError(code.input, error.message);
          else throw error;
        }
      });
    });
    const again = h("button", { type: "button", class: "button secondary" }, S.send_new_code);
    again.addEventListener("click", () =>
      busy(again, async () => {
        const { data } = await api("auth/code", { method: "POST", body: { contact }, token: null });
        announce(data.message, "success");
        code.input.focus();
      }),
    );
    const other = h("button", { type: "button", class: "button secondary" }, S.use_other_contact);
    other.addEventListener("click", () => {
      sessionStorage.removeItem(CONTACT_KEY);
      askContact(contact);
      body.querySelector("input").focus();
    });
    body.replaceChildren(form, h("div", { class: "actions" }, again, other));
    if (body.isConnected) code.input.focus(); // not on a reload, where the title takes it
  }

  function chooseWallet() {
    heading.textContent = S.choose_wallet_title;
    body.replaceChildren(h("p", {}, S.choose_wallet_intro), walletChoices());
    heading.focus();
  }

  const pending = sessionStorage.getItem(CONTACT_KEY);
  if (pending) askCode(pending);
  else askContact();
  return [heading, body];
}

// The wallets this device is signed in to: an aidant may help several people.
function walletChoices({ showCurrent = false } = {}) {
  const { wallets, current } = session.read();
  return h(
    "ul",
    { class: "choices" },
    wallets.map((wallet, index) => {
      const button = h(
        "button",
        {
          type: "button",
          class: "button secondary",
          "aria-current": showCurrent && index === current ? "true" : null,
        },
        wallet.read_only
          ? t("wallet_of", { name: wallet.wallet_holder })
          : t("my_wallet", { name: wallet.wallet_holder }),
      );
      button.addEventListener("click", () => {
        session.choose(index);
        if (location.hash === "#/") route();
        else location.hash = "#/";
      });
      return h("li", {}, button);
    }),
  );
}

// Who gives an aid and whom to call: the logo (or the name's initial), the name, the phone.
function giver(funder, line = funder.name) {
  const initial = funder.name.trim().charAt(0).toUpperCase();
  return h(
    "div",
    { class: "giver" },
    funder.logo_url
      ? h("img", { src: funder.logo_url, alt: "", width: "44", height: "44" })
      : h("span", { class: "monogram", "aria-hidden": "true" }, initial),
    h(
      "div",
      {},
      h("p", { class: "funder" }, line),
      funder.phone
        ? h(
            "p",
            {},
            h(
              "a",
              { class: "link phone", href: `tel:${funder.phone}` },
              // The number on one line: "04 76" at the end of a line and "00 00 22" on the
              // next is misdialled.
              t("call_funder", { phone: funder.phone_display.replace(/ /g, "\u00a0") }),
            ),
          )
        : null,
    ),
  );
}

async function homeScreen() {
  const [{ data: pockets }, { data: person }, { data: cards }] = await Promise.all([
    api("pockets"),
    api("me"),
    api("cards"),
  ]);
  const nodes = [
    h("h1", {}, S.home_title),
    h(
      "p",
      {},
      person.aidant
        ? t("home_intro_aidant", { name: person.first_name })
        : t("home_intro", { name: person.first_name }),
    ),
  ];
  for (const total of pockets.totals) {
    nodes.push(
      h(
        "p",
        { class: "total" },
        h("span", { class: "label" }, S.total_available),
        h("span", { class: "amount" }, total.available_display),
      ),
    );
  }
  if (!readOnly() && pockets.data.length) {
    nodes.push(
      h(
        "a",
        { class: "button primary-action", href: "#/pay" },
        svgIcon("M4 4h6v6H4z M14 4h6v6h-6z M4 14h6v6H4z M14 14h2v2h-2z M18 18h2v2h-2z"),
        S.pay_button,
      ),
    );
  }
  for (const card of cards.data.filter((card) => card.status === "frozen")) {
    nodes.push(
      h(
        "div",
        { class: "frozen", role: "status" },
        h(
          "p",
          {},
          h("strong", {}, `${S.prefix_warning} `),
          card.last4 ? t("home_card_frozen", { last4: card.last4 }) : S.home_card_frozen_no_digits,
        ),
        h("p", {}, h("a", { class: "link", href: "#/card" }, S.home_card_frozen_link)),
      ),
    );
  }
  if (pockets.data.length === 0) nodes.push(h("p", { class: "empty" }, S.no_aid));
  for (const pocket of pockets.data) {
    const title = newId("pocket");
    nodes.push(
      h(
        "article",
        { class: "card pocket", "aria-labelledby": title },
        h("h2", { id: title }, pocket.aid_name),
        giver(pocket.funder, pocket.given_by),
        h(
          "p",
          { class: "available" },
          h("span", { class: "label" }, S.available),
          " ",
          h("span", { class: "amount" }, pocket.available_display),
        ),
        pocket.held > 0 ? h("p", {}, t("held", { amount: pocket.held_display })) : null,
        pocket.expiry_warning
          ? h(
              "p",
              { class: "warning" },
              h("span", { "aria-hidden": "true" }, "⚠ "),
              h("strong", {}, `${S.prefix_warning} `),
              pocket.expiry_warning,
            )
          : null,
        pocket.valid_until_phrase
          ? h("p", { class: "validity" }, t("valid_phrase", { until: pocket.valid_until_phrase }))
          : null,
        pocket.rules.length
          ? [
              h("h3", {}, S.rules_title),
              h(
                "ul",
                { class: "rules" },
                pocket.rules.map((rule) => h("li", {}, rule)),
              ),
            ]
          : null,
        pocket.no_shop
          ? h("p", { class: "no-shop" }, pocket.no_shop)
          : h(
              "a",
              { class: "button secondary", href: `#/pockets/${pocket.id}/where` },
              S.where_link,
            ),
      ),
    );
  }
  return nodes;
}

// A line icon, decorative: the words next to it say what it means.
function svgIcon(path) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
  line.setAttribute("d", path);
  svg.append(line);
  return svg;
}

async function whereScreen(pocketId) {
  const { data: pocket } = await api(`pockets/${pocketId}`);
  const resultsTitle = newId("shops");
  const results = h("section", { "aria-labelledby": resultsTitle });
  const postcode = field({
    label: S.postcode_label,
    hint: S.postcode_hint,
    type: "text",
    inputmode: "numeric",
    autocomplete: "postal-code",
    maxlength: "5",
    pattern: "[0-9]{5}",
  });

  async function show(query, heading, { quiet = false } = {}) {
    const { data } = await api(`pockets/${pocketId}/merchants?${new URLSearchParams(query)}`);
    const list = h("ol", { class: "places" });
    const more = h("div");
    fill(
      results,
      h("h2", { id: resultsTitle }, heading),
      data.count ? placesMap(data.origin, data.results) : null,
      data.count
        ? list
        : h("p", { class: pocket.no_shop ? "no-shop" : "empty" }, pocket.no_shop ?? S.no_shop),
      more,
    );
    append(list, more, data);
    if (!quiet) announce(t("shops_found", { count: data.count }));
  }

  function append(list, more, page) {
    for (const place of page.results) {
      const number = list.children.length + 1;
      list.append(
        h(
          "li",
          { class: "card place" },
          h(
            "div",
            { class: "place-head" },
            // The shop's number on the map; the map's own text says so.
            number <= MAP_SHOPS && place.latitude !== null
              ? h("span", { class: "number", "aria-hidden": "true" }, String(number))
              : null,
            h("h3", {}, place.name),
          ),
          h("p", { class: "category" }, place.category),
          h("p", {}, place.address, h("br"), `${place.postcode} ${place.city}`),
          place.distance_km === null
            ? null
            : h(
                "p",
                { class: "distance" },
                t("distance", { distance: kilometres.format(place.distance_km) }),
              ),
        ),
      );
    }
    more.replaceChildren();
    if (!page.next) return;
    const button = h("button", { type: "button", class: "button secondary" }, S.more_shops);
    button.addEventListener("click", () =>
      busy(button, async () => {
        const first = list.children.length;
        append(list, more, (await api(page.next)).data);
        focusHeading(list.children[first], "h3");
      }),
    );
    more.append(button);
  }

  const locate = h("button", { type: "button", class: "button" }, S.use_position);
  locate.addEventListener("click", () =>
    busy(locate, async () => {
      announce(S.locating);
      const position = await new Promise((resolve, reject) =>
        navigator.geolocation.getCurrentPosition(
          resolve,
          () => reject(new ApiError(0, "no_position", S.no_position)),
          { timeout: 15000, maximumAge: 300000 },
        ),
      );
      const { latitude, longitude } = position.coords;
      await show({ lat: latitude.toFixed(5), lon: longitude.toFixed(5) }, S.shops_near_you);
    }),
  );

  const form = h(
    "form",
    { class: "postcode", novalidate: true },
    postcode.node,
    h("button", { type: "submit", class: "button secondary" }, S.search),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearFieldError(postcode.input);
    const value = postcode.input.value.trim();
    if (!/^[0-9]{5}$/.test(value)) return fieldError(postcode.input, S.postcode_format);
    busy(form, () => show({ postcode: value }, t("shops_near_postcode", { postcode: value })));
  });

  await show({}, S.shops_all, { quiet: true });
  return [
    h("h1", {}, pocket.where_title),
    h("p", {}, S.where_intro),
    "geolocation" in navigator ? locate : null,
    form,
    results,
    h("p", {}, h("a", { class: "link", href: "#/" }, S.back_home)),
  ];
}

const MAP_SHOPS = 9;
const SVG = "http://www.w3.org/2000/svg";

function svgNode(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

// A map drawn from coordinates alone, with no map tiles: asking a tile server for the tiles
// around a person would tell it where they are. The point distances are measured from, and the
// first shops of the list, numbered as in the list, with a ring at a round distance for scale.
function placesMap(origin, places) {
  const shops = places.filter((place) => place.latitude !== null).slice(0, MAP_SHOPS);
  if (!shops.length) return null;
  const points = shops.map((place) => [place.latitude, place.longitude]);
  if (origin) points.push([origin.latitude, origin.longitude]);
  const latitudes = points.map(([lat]) => lat);
  const middle = (Math.min(...latitudes) + Math.max(...latitudes)) / 2;
  const squeeze = Math.cos((middle * Math.PI) / 180); // a degree of longitude is shorter
  const xy = ([lat, lon]) => [lon * squeeze, -lat];
  const projected = points.map(xy);
  const xs = projected.map(([x]) => x);
  const ys = projected.map(([, y]) => y);
  const [width, height, margin] = [340, 220, 22];
  const extent = (values) => Math.max(...values) - Math.min(...values);
  const span = Math.max(extent(xs), extent(ys), 0.005);
  const scale = Math.min((width - 2 * margin) / span, (height - 2 * margin) / span);
  const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
  const cy = (Math.min(...ys) + Math.max(...ys)) / 2;
  const at = (point) => {
    const [x, y] = xy(point);
    return [width / 2 + (x - cx) * scale, height / 2 + (y - cy) * scale];
  };
  const svg = svgNode("svg", {
    class: "map",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "map-title",
  });
  svg.append(svgNode("title", { id: "map-title" }, t("map_label", { count: shops.length })));
  if (origin) {
    const [ox, oy] = at([origin.latitude, origin.longitude]);
    // A ring at a round number of kilometres (a degree of latitude is 111 km).
    const pixelsPerKm = scale / 111.2;
    const ringKm = [0.5, 1, 2, 5, 10, 20, 50, 100].find((km) => km * pixelsPerKm >= 40) ?? 100;
    svg.append(
      svgNode("circle", { class: "ring", cx: ox, cy: oy, r: ringKm * pixelsPerKm }),
      svgNode(
        "text",
        { class: "ring-label", x: ox + 4, y: oy - ringKm * pixelsPerKm - 8 },
        t("map_ring", { distance: kilometres.format(ringKm) }),
      ),
      svgNode("circle", { class: "you", cx: ox, cy: oy, r: 9 }),
    );
  }
  shops.forEach((place, index) => {
    const [x, y] = at([place.latitude, place.longitude]);
    svg.append(
      svgNode("circle", { class: "shop", cx: x, cy: y, r: 11 }),
      svgNode("text", { x, y }, String(index + 1)),
    );
  });
  return h(
    "figure",
    { class: "map-figure" },
    svg,
    h("figcaption", { class: "hint" }, origin ? S.map_legend : S.map_legend_no_origin),
  );
}

// After "show more", the first new item's heading takes the focus: the person reads on from it.
function focusHeading(item, selector) {
  const heading = item?.querySelector(selector);
  if (!heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}

function paymentTitle(status) {
  return {
    approved: S.payment_approved,
    partially_approved: S.payment_partial,
    declined: S.payment_declined,
  }[status];
}

const EVENT_TITLES = {
  aid_granted: "event_aid_granted",
  aid_ended: "event_aid_ended",
  refund: "event_refund",
};

async function historyScreen() {
  const { data } = await api("history");
  const title = h("h1", {}, S.history_title);
  if (data.results.length === 0) return [title, h("p", { class: "empty" }, S.no_history)];
  const list = h("ol", { class: "events" });
  const more = h("div");

  function append(page) {
    for (const event of page.results) {
      const payment = event.payment;
      const declined = payment?.status === "declined";
      const credit = event.signed_amount_display?.startsWith("+");
      const content = [
        h(
          "div",
          {},
          h(
            "h2",
            { class: "title" },
            declined ? h("span", { "aria-hidden": "true" }, "✕ ") : null,
            payment ? paymentTitle(payment.status) : S[EVENT_TITLES[event.type]],
          ),
          h("p", {}, event.summary),
          h("p", { class: "date" }, dateTime.format(new Date(event.at))),
          payment
            ? h("p", { class: "more" }, declined ? S.why_refused_link : S.details_link)
            : null,
        ),
        h(
          "p",
          { class: "money" },
          event.signed_amount_display
            ? h("span", { class: `signed${credit ? " credit" : ""}` }, event.signed_amount_display)
            : null,
          event.note ? h("span", { class: "note" }, event.note) : null,
        ),
      ];
      // A payment's whole row opens its details: a big target, not a small link in it.
      const row = payment
        ? h(
            "a",
            { class: "row", href: `#/history/${encodeURIComponent(payment.reference)}` },
            content,
          )
        : h("div", { class: "row" }, content);
      list.append(h("li", { class: `card event${declined ? " declined" : ""}` }, row));
    }
    more.replaceChildren();
    if (!page.next) return;
    const button = h("button", { type: "button", class: "button secondary" }, S.more_events);
    button.addEventListener("click", () =>
      busy(button, async () => {
        const first = list.children.length;
        append((await api(page.next)).data);
        focusHeading(list.children[first], "h2");
      }),
    );
    more.append(button);
  }

  append(data);
  return [title, list, more];
}

async function paymentScreen(reference) {
  const { data: payment } = await api(`history/${encodeURIComponent(reference)}`);
  const nodes = [
    h("h1", {}, paymentTitle(payment.status)),
    h(
      "p",
      { class: "payment-line" },
      t("payment_line", { amount: payment.amount_display, merchant: payment.merchant_name }),
    ),
    h("p", { class: "date" }, dateTime.format(new Date(payment.at))),
  ];
  if (payment.reason) {
    nodes.push(
      h(
        "section",
        { class: "explanation" },
        h("h2", {}, payment.status === "declined" ? S.why_refused : S.why_partial),
        h("p", {}, payment.reason.message),
        payment.nearby ? h("p", { class: "nearby" }, payment.nearby.message) : null,
      ),
    );
  }
  if (payment.pockets.length) {
    nodes.push(
      h("h2", {}, S.paid_with),
      h(
        "ul",
        {},
        payment.pockets.map((part) =>
          h("li", {}, t("paid_part", { aid: part.aid_name, amount: part.amount_display })),
        ),
      ),
    );
  }
  const amounts = [
    [payment.held, "amount_held", payment.held_display],
    [payment.captured, "amount_captured", payment.captured_display],
    [payment.refunded, "amount_refunded", payment.refunded_display],
  ].filter(([amount]) => amount > 0);
  if (amounts.length)
    nodes.push(
      h(
        "ul",
        { class: "amounts" },
        amounts.map(([, key, display]) => h("li", {}, t(key, { amount: display }))),
      ),
    );
  const refused = payment.checks.filter((check) => !check.accepted);
  if (refused.length && payment.status !== "approved") {
    nodes.push(
      h("h2", {}, S.checks_title),
      h(
        "ul",
        { class: "checks" },
        payment.checks.map((check) =>
          h(
            "li",
            {},
            t("check_line", {
              aid: check.aid_name,
              answer: check.accepted ? S.check_accepted : check.message,
            }),
          ),
        ),
      ),
    );
  }
  if (payment.funders.length) {
    nodes.push(
      h(
        "section",
        { class: "contact-box" },
        h("h2", {}, S.questions_title),
        payment.funders.map((funder) => giver(funder)),
      ),
    );
  }
  nodes.push(h("p", {}, h("a", { class: "link", href: "#/history" }, S.back_history)));
  return nodes;
}

const CARD_STATUS = {
  active: "card_active",
  frozen: "card_frozen",
  lost: "card_lost",
  inactive: "card_inactive",
  canceled: "card_lost",
};

async function cardScreen() {
  const { data } = await api("cards");
  const nodes = [h("h1", {}, S.card_title)];
  if (data.data.length === 0) {
    nodes.push(
      h("p", { class: "empty" }, S.no_card),
      readOnly() ? null : h("a", { class: "button secondary", href: "#/pay" }, S.pay_instead),
    );
    return nodes;
  }
  for (const card of data.data) nodes.push(cardArticle(card));
  return nodes;
}

function cardArticle(card) {
  const title = newId("card");
  const article = h("article", { class: "card", "aria-labelledby": title });

  function action(path, label, done, kind = "button") {
    const button = h("button", { type: "button", class: kind, "data-action": path }, label);
    button.addEventListener("click", () =>
      busy(button, async () => {
        const { data } = await api(`cards/${encodeURIComponent(card.reference)}/${path}`, {
          method: "POST",
        });
        Object.assign(card, data);
        render();
        announce(S[done], "success");
        article.querySelector("[data-action]")?.focus();
      }),
    );
    return button;
  }

  function confirmLost() {
    const question = newId("confirm");
    const back = h("button", { type: "button", class: "button secondary" }, S.lost_cancel);
    back.addEventListener("click", () => {
      render();
      article.querySelector(".report-lost")?.focus();
    });
    const panel = h(
      "div",
      { class: "confirm", role: "group", "aria-labelledby": question },
      h("p", { id: question, class: "question", tabindex: "-1" }, S.lost_question),
      h("p", {}, S.lost_warning),
      action("report-lost", S.lost_confirm, "done_lost", "button danger"),
      back,
    );
    article.querySelector(".actions").replaceWith(panel);
    panel.querySelector(".question").focus();
  }

  function render() {
    const buttons = [];
    if (!readOnly()) {
      if (card.status === "active") buttons.push(action("freeze", S.freeze, "done_frozen"));
      if (card.status === "frozen") buttons.push(action("unfreeze", S.unfreeze, "done_unfrozen"));
      if (["active", "frozen", "inactive"].includes(card.status)) {
        const lost = h(
          "button",
          { type: "button", class: "button secondary report-lost" },
          S.report_lost,
        );
        lost.addEventListener("click", confirmLost);
        buttons.push(lost);
      }
    }
    fill(
      article,
      h(
        "h2",
        { id: title },
        card.last4 ? t("card_ending", { last4: card.last4 }) : S.card_no_digits,
      ),
      h("p", { class: "kind" }, card.kind === "virtual" ? S.card_virtual : S.card_physical),
      h(
        "p",
        { class: `status status-${card.status}` },
        h("strong", {}, `${S.card_status} `),
        S[CARD_STATUS[card.status]],
      ),
      card.status === "active" && !readOnly() ? h("p", { class: "hint" }, S.freeze_hint) : null,
      h("div", { class: "actions" }, buttons),
    );
  }

  render();
  return article;
}

let countdown = null;

function payScreen() {
  const nodes = [h("h1", {}, S.pay_title)];
  if (readOnly()) return [...nodes, h("p", {}, S.pay_read_only)];
  const area = h("div", { class: "pay" });
  const create = h("button", { type: "button", class: "button" }, S.show_code);

  function show(code, lifetime) {
    clearInterval(countdown);
    const groups = code.code.split(" ");
    const spoken = groups.map((group) => group.split("").join(" ")).join(", ");
    const left = h("p", { class: "time-left" });
    // Said to screen readers here, not in the messages above the code: a message there would
    // push the code and its QR code down the screen while the shop scans it.
    const said = h("p", { class: "visually-hidden", "aria-live": "polite" });
    const again = h("button", { type: "button", class: "button" }, S.new_code);
    again.addEventListener("click", () => busy(again, newCode));
    const ends = Date.now() + lifetime;
    let warned = false;
    const tick = () => {
      const remaining = ends - Date.now();
      if (remaining <= 0) {
        clearInterval(countdown);
        area.querySelector(".code")?.classList.add("expired");
        left.textContent = S.code_expired;
        said.textContent = S.code_expired;
        return;
      }
      const total = Math.floor(remaining / 1000);
      left.textContent = t("time_left", {
        minutes: Math.floor(total / 60),
        seconds: String(total % 60).padStart(2, "0"),
      });
      if (!warned && total <= 60) {
        warned = true;
        said.textContent = S.one_minute_left;
      }
    };
    area.replaceChildren(
      h("p", { class: "code-label" }, S.code_intro),
      h(
        "p",
        { class: "code" },
        h(
          "span",
          { "aria-hidden": "true", class: "digits" },
          groups.map((group) => h("span", { class: "group" }, group)),
        ),
        h("span", { class: "visually-hidden" }, spoken),
      ),
      left,
      said,
      h("img", {
        class: "qr",
        src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qr_svg)}`,
        alt: t("qr_alt", { code: code.code }),
      }),
      again,
    );
    tick();
    countdown = setInterval(tick, 1000);
  }

  async function newCode() {
    const { data, response } = await api("payment-codes", { method: "POST", body: {} });
    // The code's lifetime by the server's clock, so a phone whose clock is off still counts right.
    const serverNow = Date.parse(response.headers.get("Date") ?? "") || Date.now();
    show(data, Date.parse(data.expires_at) - serverNow);
    // No message above the code: it would push the code and its countdown down the screen.
    // The focus goes to the code's label, which a screen reader reads out.
    messages.replaceChildren();
    area.querySelector(".code-label").setAttribute("tabindex", "-1");
    area.querySelector(".code-label").focus();
  }

  create.addEventListener("click", () => busy(create, newCode));
  area.append(h("p", {}, S.pay_intro), create);
  return [...nodes, area];
}

async function settingsScreen() {
  const nodes = [h("h1", {}, S.settings_title)];

  const languages = h(
    "div",
    { class: "actions" },
    CONFIG.languages.map(([code, name]) => {
      const button = h(
        "button",
        {
          type: "button",
          class: "button secondary",
          lang: code,
          "aria-pressed": String(code === LANG),
        },
        name,
      );
      button.addEventListener("click", () =>
        busy(button, async () => {
          if (!readOnly()) {
            try {
              await api("me", { method: "PATCH", body: { language: code } });
            } catch (error) {
              // Offline the app still switches; the messages keep their language until the
              // next switch that reaches the server.
              if (error.code === "signed_out") return;
            }
          }
          // Django reads this cookie to render the page in the chosen language.
          document.cookie = `${CONFIG.languageCookie}=${code}; path=${CONFIG.scope}; max-age=31536000; samesite=lax`;
          location.reload();
        }),
      );
      return button;
    }),
  );
  nodes.push(
    h(
      "section",
      {},
      h("h2", {}, S.language_title),
      h("p", {}, readOnly() ? S.language_intro_view : S.language_intro),
      languages,
    ),
  );

  if (!readOnly()) nodes.push(await messagesSection(), await aidantsSection());

  if (session.wallets.length > 1) {
    nodes.push(
      h("section", {}, h("h2", {}, S.wallets_title), walletChoices({ showCurrent: true })),
    );
  }

  const signOut = h("button", { type: "button", class: "button secondary" }, S.sign_out);
  signOut.addEventListener("click", () =>
    busy(signOut, async () => {
      await Promise.allSettled(
        session.wallets.map(({ token }) => api("auth/sign-out", { method: "POST", token })),
      );
      signedOut(S.signed_out_done);
    }),
  );
  const everywhere = h(
    "button",
    { type: "button", class: "button secondary" },
    S.sign_out_everywhere,
  );
  everywhere.addEventListener("click", () =>
    busy(everywhere, async () => {
      for (const { token } of session.wallets) {
        await api("auth/sign-out-everywhere", { method: "POST", token });
      }
      signedOut(S.signed_out_everywhere_done);
    }),
  );
  nodes.push(
    h(
      "section",
      {},
      h("h2", {}, S.sign_out_title),
      h("div", { class: "actions" }, signOut),
      h("p", {}, S.sign_out_everywhere_hint),
      h("div", { class: "actions" }, everywhere),
    ),
  );
  return nodes;
}

// Which messages arrive on which channel; and web push on this phone, when the platform sends it.
async function messagesSection() {
  const { data } = await api("notification-preferences");
  const pushKey = data.push_public_key;
  const section = h("section", {}, h("h2", {}, S.messages_title), h("p", {}, S.messages_intro));
  const kinds = new Map();
  for (const preference of data.preferences) {
    if (preference.channel === "push" && !pushKey) continue;
    if (!kinds.has(preference.kind)) kinds.set(preference.kind, []);
    kinds.get(preference.kind).push(preference);
  }
  const locked = [...kinds.values()]
    .filter((choices) => choices[0].locked)
    .map((choices) => choices[0].kind_display);
  const form = h("form", { novalidate: true });
  for (const choices of kinds.values()) {
    if (choices[0].locked) continue;
    form.append(
      h(
        "fieldset",
        {},
        h("legend", {}, choices[0].kind_display),
        choices.map((choice) => {
          const id = newId("choice");
          return h(
            "div",
            { class: "check" },
            h("input", {
              type: "checkbox",
              id,
              checked: choice.enabled,
              "data-kind": choice.kind,
              "data-channel": choice.channel,
            }),
            h("label", { for: id }, CONFIG.channels[choice.channel]),
          );
        }),
      ),
    );
  }
  form.append(h("button", { type: "submit", class: "button secondary" }, S.messages_save));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      const choices = {};
      for (const box of form.querySelectorAll("input[type=checkbox]")) {
        choices[box.dataset.kind] ??= {};
        choices[box.dataset.kind][box.dataset.channel] = box.checked;
      }
      await api("notification-preferences", { method: "PUT", body: { choices } });
      announce(S.messages_saved, "success");
    });
  });
  section.append(form);
  if (locked.length) section.append(h("p", {}, t("messages_always", { kinds: locked.join(", ") })));
  if (pushKey && "PushManager" in window && "serviceWorker" in navigator) {
    // Without an active service worker (a first visit, a browser that refused it) there is
    // nothing to receive the messages: the part is left out.
    const registration = await navigator.serviceWorker.getRegistration(CONFIG.scope);
    if (registration?.active) section.append(await pushPart(registration, pushKey));
  }
  return section;
}

async function pushPart(registration, publicKey) {
  const part = h("div", {}, h("h3", {}, S.push_title));

  async function render() {
    const subscription = await registration.pushManager.getSubscription();
    const button = h(
      "button",
      { type: "button", class: "button secondary", "data-push": "" },
      subscription ? S.push_off : S.push_on,
    );
    button.addEventListener("click", () =>
      busy(button, async () => {
        if (subscription) {
          await api("push-subscriptions", {
            method: "DELETE",
            body: { endpoint: subscription.endpoint },
          });
          await subscription.unsubscribe();
          announce(S.push_is_off, "success");
        } else {
          if ((await Notification.requestPermission()) !== "granted")
            throw new ApiError(0, "push_denied", S.push_denied);
          const created = await registration.pushManager.subscribe({
            userVisibleOnly: true,
            applicationServerKey: base64url(publicKey),
          });
          await api("push-subscriptions", { method: "POST", body: created.toJSON() });
          announce(S.push_is_on, "success");
        }
        await render();
        part.querySelector("button").focus();
      }),
    );
    fill(
      part,
      part.firstChild,
      h("p", {}, subscription ? S.push_state_on : S.push_state_off),
      button,
    );
  }

  await render();
  return part;
}

function base64url(text) {
  const binary = atob(
    text
      .replace(/-/g, "+")
      .replace(/_/g, "/")
      .padEnd(Math.ceil(text.length / 4) * 4, "="),
  );
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

async function aidantsSection() {
  const section = h("section", {}, h("h2", {}, S.aidants_title), h("p", {}, S.aidants_intro));
  const list = h("ul", { class: "aidants" });

  function item(aidant) {
    const remove = h(
      "button",
      { type: "button", class: "button secondary" },
      t("aidant_remove", { name: aidant.name || aidant.contact }),
    );
    remove.addEventListener("click", () =>
      busy(remove, async () => {
        await api(`aidants/${aidant.id}`, { method: "DELETE" });
        remove.closest("li").remove();
        nobody.hidden = list.children.length > 0;
        announce(t("aidant_removed", { name: aidant.name || aidant.contact }), "success");
        section.querySelector("h2").setAttribute("tabindex", "-1");
        section.querySelector("h2").focus();
      }),
    );
    return h(
      "li",
      { class: "card" },
      h("p", {}, h("strong", {}, aidant.name || S.aidant_unnamed), h("br"), aidant.contact),
      remove,
    );
  }

  const { data } = await api("aidants");
  const nobody = h("p", { class: "empty" }, S.no_aidant);
  nobody.hidden = data.data.length > 0;
  list.append(...data.data.map(item));

  const contact = field({
    label: S.aidant_contact_label,
    hint: S.aidant_contact_hint,
    type: "text",
    autocapitalize: "none",
    spellcheck: "false",
  });
  const name = field({ label: S.aidant_name_label, type: "text", maxlength: "100" });
  const form = h(
    "form",
    { novalidate: true },
    h("h3", {}, S.aidant_add_title),
    contact.node,
    name.node,
    h("button", { type: "submit", class: "button secondary" }, S.aidant_add),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearFieldError(contact.input);
    if (!contact.input.value.trim()) return fieldError(contact.input, S.contact_missing);
    busy(form, async () => {
      try {
        const { data: aidant, response } = await api("aidants", {
          method: "POST",
          body: { contact: contact.input.value.trim(), name: name.input.value.trim() },
        });
        if (response.status === 201) list.append(item(aidant));
        nobody.hidden = true;
        contact.input.value = "";
        name.input.value = "";
        announce(t("aidant_added", { name: aidant.name || aidant.contact }), "success");
      } catch (error) {
        if (error.field === "contact") fieldError(contact.input, error.message);
        else throw error;
      }
    });
  });
  section.append(nobody, list, form);
  return section;
}

function problemScreen(error) {
  const retry = h("button", { type: "button", class: "button" }, S.try_again);
  retry.addEventListener("click", route);
  return [
    h("h1", {}, error.status === 404 ? S.not_found_title : S.problem_title),
    h("p", {}, error.message),
    retry,
  ];
}

// --- routing ----------------------------------------------------------------------------------

const ROUTES = [
  [/^#\/sign-in$/, signInScreen, true],
  [/^#\/$/, homeScreen],
  [/^#\/pockets\/(\d+)\/where$/, whereScreen],
  [/^#\/history$/, historyScreen],
  [/^#\/history\/([\w-]+)$/, paymentScreen],
  [/^#\/card$/, cardScreen],
  [/^#\/pay$/, payScreen],
  [/^#\/settings$/, settingsScreen],
];

let routing = 0;

async function route({ focus = true } = {}) {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/")) return; // an anchor in the page, not a screen
  let [pattern, screenOf, isPublic] = ROUTES.find(([pattern]) => pattern.test(hash)) ?? [];
  if (!screenOf) return location.replace("#/");
  if (!isPublic && !session.current) return location.replace("#/sign-in");
  if (isPublic && session.current) return location.replace("#/");
  const params = hash.match(pattern).slice(1);
  const turn = ++routing;
  clearInterval(countdown);
  if (!keepMessages) messages.replaceChildren();
  keepMessages = false;
  updateFrame();
  main.setAttribute("aria-busy", "true");
  screen.replaceChildren(h("p", { class: "loading" }, S.loading));
  let nodes;
  try {
    nodes = await screenOf(...params);
  } catch (error) {
    if (error.code === "signed_out") return;
    nodes = problemScreen(error);
  }
  if (turn !== routing) return; // the person moved on meanwhile
  main.removeAttribute("aria-busy");
  fill(screen, nodes);
  const heading = screen.querySelector("h1");
  document.title = `${heading.textContent} – ${S.app_name}`;
  heading.setAttribute("tabindex", "-1");
  if (focus) heading.focus();
}

document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", () => route());
route({ focus: false });

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register(CONFIG.serviceWorker, { scope: CONFIG.scope }).catch(() => {
    // Without it the app works the same, only not offline.
  });
}
