// The app's service worker: it keeps the page and its files so that the app starts without a
// network, and shows the messages pushed to the installed app. It never keeps an answer of the
// API: balances and codes always come fresh.
const CACHE = {{ cache_name|safe }};
const SHELL = {{ shell_url|safe }};
const ASSETS = {{ asset_urls|safe }};
const APP_NAME = {{ app_name|safe }};
const ICON = {{ icon_url|safe }};
const KEEP = [SHELL, ...ASSETS];
{% include "core/sw_keep.js" %}

// The page from the network when there is one (it carries the chosen language), else the copy
// kept; the files, whose URLs change with their content, from the copy kept.
async function page(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(SHELL, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(SHELL);
    if (kept) return kept;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === SHELL) {
    event.respondWith(page(request));
  } else if (ASSETS.includes(url.pathname + url.search)) {
    event.respondWith(asset(request));
  }
  // Anything else, the API first of all, goes to the network untouched.
});

// A pushed message is {"title", "body", "kind"} (see notifications/push.py).
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data?.json() ?? {};
  } catch {
    message = { body: event.data?.text() };
  }
  const screen = message.kind?.startsWith("payment") ? "#/history" : "#/";
  event.waitUntil(
    self.registration.showNotification(message.title || APP_NAME, {
      body: message.body ?? "",
      icon: ICON,
      tag: message.kind,
      data: { url: SHELL + screen },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = event.notification.data?.url ?? SHELL;
  event.waitUntil(
    self.clients.matchAll({ type: "window" }).then((windows) => {
      const open = windows.find((client) => new URL(client.url).pathname === SHELL);
      return open ? open.focus() : self.clients.openWindow(target);
    }),
  );
});
